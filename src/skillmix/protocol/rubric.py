"""The Skill-Mix rubric: k + 3 criteria for an item."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from skillmix.catalog.model import Skill, Topic

CriterionKind = Literal["skill", "topic", "sense", "length"]


def slug(text: str) -> str:
    """`Red herring` -> `red_herring`: a JSON-safe key."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


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


def build_rubric(skills: tuple[Skill, ...] | list[Skill], topic: Topic) -> list[Criterion]:
    """k skill criteria, then topic, sense and the sentence limit."""
    k = len(skills)
    limit = max_sentences(k)
    rubric = [
        Criterion(
            id=f"skill:{s.id}",
            kind="skill",
            label=f"Correctly illustrates {s.name}",
            key=slug(s.name),
            names=s.surface_forms,
        )
        for s in skills
    ]
    rubric += [
        Criterion(
            id="topic",
            kind="topic",
            label=f"Pertains to {topic.name}",
            key="on_topic",
            names=("pertains", "topic", topic.name),
        ),
        Criterion(
            id="sense",
            kind="sense",
            label="Text makes sense",
            key="makes_sense",
            names=("makes sense", "sense", "coheren", "meaningful"),
        ),
        Criterion(
            id="length",
            kind="length",
            label=f"At most {limit} sentence{'s' if limit > 1 else ''}",
            key="short_enough",
            names=("sentence",),
        ),
    ]
    return rubric
