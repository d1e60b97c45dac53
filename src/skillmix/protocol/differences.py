"""The two protocols a run can follow, and every deliberate difference from the published
Skill-Mix scripts, in one place.

`skillmix` (the default) keeps our improvements: structured verdicts, independent grading
rounds, the sentence count with a real segmenter, an inflection-aware naming penalty.
`paper` (`--protocol paper`) does what the published scripts did wherever that is a
protocol choice rather than a bug. `DIFFERENCES` lists each aspect in which either
protocol departs from the scripts; `skillmix protocol diff` prints it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from skillmix.config import PROTOCOLS, ProtocolName

AS_PUBLISHED = "as published"


@dataclass(frozen=True)
class ProtocolRules:
    """What a protocol decides about a run."""

    name: ProtocolName
    # "structured": JSON schema where the judge supports it, else one line per criterion;
    # "table": the published Criteria / Points Earned table, never a schema.
    judge_output: Literal["structured", "table"]
    # Whether the judge is shown the sentence-limit criterion (its verdict is never used).
    judge_sees_length: bool
    # Whether skill names are lower-cased in the rubric's labels.
    lowercase_skill_labels: bool
    # "words": whole words with inflections and aliases; "substring": the published test.
    naming_match: Literal["words", "substring"]


RULES: dict[ProtocolName, ProtocolRules] = {
    "skillmix": ProtocolRules(
        name="skillmix",
        judge_output="structured",
        judge_sees_length=False,
        lowercase_skill_labels=False,
        naming_match="words",
    ),
    "paper": ProtocolRules(
        name="paper",
        judge_output="table",
        judge_sees_length=True,
        lowercase_skill_labels=True,
        naming_match="substring",
    ),
}


def rules(protocol: str) -> ProtocolRules:
    """The rules of a protocol by name (`skillmix` or `paper`)."""
    try:
        return RULES[protocol]  # type: ignore[index]
    except KeyError:
        raise ValueError(
            f"unknown protocol '{protocol}': use one of {', '.join(PROTOCOLS)}"
        ) from None


@dataclass(frozen=True)
class Difference:
    """One aspect of the protocol: what the scripts did, what each protocol does, why."""

    aspect: str
    published: str
    skillmix: str
    paper: str  # starts with AS_PUBLISHED when --protocol paper does what the scripts did
    why: str

    @property
    def paper_as_published(self) -> bool:
        return self.paper.startswith(AS_PUBLISHED)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "paper_as_published": self.paper_as_published}


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        aspect="judge output",
        published="a Markdown table with the columns Criteria and Points Earned, a total "
        "row, then an explanation; read by splitting rows on '|'",
        skillmix="a JSON object with one 0/1 field per criterion, constrained by a JSON "
        "schema where the judge supports it; otherwise one 'criterion: points' line each",
        paper=AS_PUBLISHED + " (the table, no schema; read by skillmix's verdict parser)",
        why="constrained output cannot be misread and costs a few dozen tokens",
    ),
    Difference(
        aspect="partial points",
        published="any number in a Points Earned cell is kept (0.5 happens); a criterion "
        "is met when the rounded mean over grading rounds is 1 (a tie rounds to 0)",
        skillmix="the schema allows only 0 or 1; text verdicts keep fractions; a criterion "
        "is met when its mean over parsed rounds exceeds 0.5 (the same rule)",
        paper=AS_PUBLISHED,
        why="a 0/1 field per criterion decodes reliably under constrained decoding",
    ),
    Difference(
        aspect="criteria shown to the judge",
        published="all k+3, including 'At most N sentences', whose point the code then "
        "replaces by its own count",
        skillmix="the k+2 criteria the judge decides; the sentence limit is stated in the "
        "task only",
        paper=AS_PUBLISHED,
        why="the judge's sentence verdict is never used, so asking for it only costs tokens",
    ),
    Difference(
        aspect="skill names in the rubric",
        published="lower-cased ('Correctly illustrates red herring')",
        skillmix="as written in the catalog",
        paper=AS_PUBLISHED,
        why="catalog names are shown as their authors wrote them",
    ),
    Difference(
        aspect="sentence-limit point",
        published="computed in code with a regex (a split at '.', '!' or '?' followed by a "
        "space and a capital letter; Mr., Mrs., Ms., Dr., Prof. protected)",
        skillmix="computed in code with a real sentence segmenter (abbreviations, "
        "initials, quotes, line breaks, lower-case starts)",
        paper="as skillmix: computed in code with our segmenter, not the published regex",
        why="the regex miscounts quoted sentences, line breaks and lower-case starts",
    ),
    Difference(
        aspect="naming penalty",
        published="optional (--filter_explicit_name, used for the leaderboard): a skill "
        "scores 0 when its name, cut at its first '(' and lower-cased, is a substring of "
        "the lower-cased answer",
        skillmix="on by default: the name or an alias as whole words, with inflected and "
        "derived forms ('metaphors', 'metaphorical'), never a raw substring ('pun' is not "
        "named by 'punch')",
        paper=AS_PUBLISHED + " (the substring test; on by default, --no-naming-penalty "
        "turns it off)",
        why="a substring test penalises innocent words and misses inflected names",
    ),
    Difference(
        aspect="grading rounds",
        published="meant as 3 independent gradings, but grade.py stores one record object "
        "for every round of a multi-round call, so all rounds hold the last sample: the "
        "'majority vote' is one judge sample",
        skillmix="independent samples, each with its own seed; majority vote over them",
        paper="as skillmix: independent rounds (the copy is a bug in the scripts, not the "
        "protocol the paper describes)",
        why="the paper describes a vote over independent gradings",
    ),
    Difference(
        aspect="unparseable verdicts",
        published="missing points count as 0; a reply with no readable table scores 0 on "
        "every criterion",
        skillmix="'unparsed': the round is asked again (a new sample, up to parse_attempts "
        "times), then left out of the vote; an item with no parsed round is unscored and "
        "reported, never 0",
        paper="as skillmix",
        why="a parser failure is no evidence about the student",
    ),
    Difference(
        aspect="which row is which criterion",
        published="points are taken in the order of the table's rows and matched to the "
        "rubric by position",
        skillmix="each row is matched to the criterion it names, never by position; an "
        "ambiguous or incomplete verdict is unparsed",
        paper="as skillmix",
        why="a judge that reorders, merges or drops a row would shift every later point",
    ),
    Difference(
        aspect="answer extraction",
        published="the text after the last 'Answer:' up to the first 'Explanation'",
        skillmix="tolerant extraction: markers in any case, bold or as headings, "
        "qualified ('Improved answer:'), wrapping quotes removed, missing markers handled",
        paper="as skillmix",
        why="models decorate and rename the markers",
    ),
    Difference(
        aspect="item sampling",
        published="each combination drawn by shuffling the skill list with Python's "
        "seeded random module (combinations may repeat), a topic per combination",
        skillmix="distinct items (no repeated skill/topic combination) drawn from SHA-256 "
        "of (seed, k, counter): the same items on every machine and Python version; the "
        "skills' order in the prompts shuffled per item the same way, and recorded",
        paper="as skillmix",
        why="reproducible item lists; a repeated item wastes budget and weighs double",
    ),
    Difference(
        aspect="prompt wording",
        published="the scripts' JSON prompt files (prompts/generation/default.json, "
        "prompts/grade/gpt.json)",
        skillmix="our own wording (template set v2) with the published structure: two "
        "student turns, no instruction about naming the skills, skills listed in shuffled "
        "order as bold name, definition and example, the sentence limit in words, a judge "
        "that sees definitions and examples",
        paper="as skillmix, or the scripts' own files read at run time with "
        "--templates-from-reference DIR",
        why="skillmix ships no copy of the published prompt text",
    ),
    Difference(
        aspect="conversation format",
        published="FastChat conversation templates per model (with their default system "
        "prompts for local models)",
        skillmix="plain chat messages without a system prompt; the backend applies the "
        "model's own chat template",
        paper="as skillmix",
        why="one message format for every provider",
    ),
    Difference(
        aspect="seeds",
        published="no seed sent to hosted models; local sampling unseeded",
        skillmix="a seed derived from (run seed, item, round) sent to every backend that "
        "takes one; temperature only when set (local models 0.7), 512 tokens, as published",
        paper="as skillmix",
        why="re-running a run reproduces its answers where the backend honours seeds",
    ),
    Difference(
        aspect="uncertainty",
        published="mean over items ± standard error",
        skillmix="mean over items with a 95% bootstrap interval; unscored items reported apart",
        paper="as skillmix",
        why="bootstrap intervals stay inside [0, 1] for rates near 0 or 1",
    ),
)


def differences_json() -> dict[str, Any]:
    """The differences and the protocols' rules as plain data (`protocol diff --json`)."""
    return {
        "protocols": {name: asdict(r) for name, r in RULES.items()},
        "differences": [d.to_dict() for d in DIFFERENCES],
    }
