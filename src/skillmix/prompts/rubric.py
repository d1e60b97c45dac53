"""The Skill-Mix rubric: k + 3 criteria for an item."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from skillmix.catalog.model import Skill, Topic, slug

CriterionKind = Literal["skill", "topic", "sense", "length"]


@dataclass(frozen=True)
class Criterion:
    """One line of the rubric.

    `id` is stable across items ("skill:<skill id>", "topic", "sense", "length");
    `key` is the field name a judge uses in structured output; `names` are the surface
    forms that identify this criterion in a free-text verdict (never its row position).
    """

    id: str
    kind: CriterionKind
    label: str
    key: str
    names: tuple[str, ...]

    @property
    def judged(self) -> bool:
        """Whether the judge decides it (the sentence limit is computed in code)."""
        return self.kind != "length"


def max_sentences(k: int) -> int:
    """The sentence limit of the protocol: max(1, k - 1)."""
    return max(1, k - 1)


_UNITS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """`2` -> `two`, `21` -> `twenty-one`; digits from 100 on (prompts say "two sentences")."""
    if not 0 <= n < 100:
        return str(n)
    if n < 20:
        return _UNITS[n]
    tens, units = divmod(n, 10)
    return _TENS[tens] + (f"-{_UNITS[units]}" if units else "")


def sentence_limit_words(k: int) -> str:
    """The sentence limit for k skills in words: "one sentence", "two sentences"."""
    limit = max_sentences(k)
    return f"{number_words(limit)} sentence{'s' if limit > 1 else ''}"


def build_rubric(
    skills: tuple[Skill, ...] | list[Skill], topic: Topic, *, lowercase_skills: bool = False
) -> list[Criterion]:
    """k skill criteria, then topic, sense and the sentence limit.

    `lowercase_skills` writes skill names in lower case in the labels, as the published
    grading prompt did (`--protocol paper`). Criteria are immutable, so each is made once
    per skill, topic and k and shared by every item's rubric (a run builds one per item
    and grading round, and a report one per item again).
    """
    return [
        *(_skill_criterion(s, lowercase_skills) for s in skills),
        _topic_criterion(topic),
        _SENSE,
        _length_criterion(len(skills)),
    ]


@functools.lru_cache(maxsize=8192)
def _skill_criterion(skill: Skill, lowercase: bool) -> Criterion:
    return Criterion(
        id=f"skill:{skill.id}",
        kind="skill",
        label=f"Correctly illustrates {skill.name.lower() if lowercase else skill.name}",
        key=slug(skill.name),
        names=skill.surface_forms,
    )


@functools.lru_cache(maxsize=8192)
def _topic_criterion(topic: Topic) -> Criterion:
    return Criterion(
        id="topic",
        kind="topic",
        label=f"Pertains to {topic.name}",
        key="on_topic",
        names=("pertains", "topic", topic.name),
    )


_SENSE = Criterion(
    id="sense",
    kind="sense",
    label="Text makes sense",
    key="makes_sense",
    names=("makes sense", "sense", "coheren", "meaningful"),
)


@functools.lru_cache(maxsize=256)
def _length_criterion(k: int) -> Criterion:
    return Criterion(
        id="length",
        kind="length",
        label=f"At most {sentence_limit_words(k)}",
        key="short_enough",
        names=("sentence",),
    )
