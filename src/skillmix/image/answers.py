"""Reading the checker's verdict on a prompt and the judge's yes/no answer about an image.

A reply that cannot be read is `Unparsed`, with the reason: it is asked again and, if no
draw can be read, reported as such, never counted as a "no" (as for Skill-Mix grading,
`protocol.verdicts`).

- The check reads one 0/1 value per concept with the grading verdict reader
  (`protocol.verdicts.parse_verdict`), each concept standing as one judged criterion: so
  JSON, tables and "red: 1" lines are read as for a rubric, by label, never by position.
- A yes/no answer is the JSON `{"answer": "yes"}` that structured output gives, or free
  text whose first word is yes or no ("Yes, the cat is red."), or text in which only one
  of the two words stands on its own ("The answer is no."). Both or neither: unparsed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from skillmix.prompts.rubric import Criterion
from skillmix.protocol.verdicts import ParsedVerdict, Unparsed, parse_verdict

__all__ = ["CheckResult", "Unparsed", "YesNo", "check_criteria", "parse_check", "parse_yes_no"]

_TRUE = frozenset({"yes", "true", "1", "y"})
_FALSE = frozenset({"no", "false", "0", "n"})
_FENCE = re.compile(r"^```\w*\s*|\s*```$")
_WORD = re.compile(r"(?<![\w-])(yes|no)(?![\w-])", re.I)
_LEAD = re.compile(r"^[\W_]*(?:(?:final\s+)?answer\s*[:=-]\s*)?[\W_]*", re.I)


@dataclass(frozen=True)
class YesNo:
    """A readable answer: `value` True for yes; `method` "json" or "text"."""

    value: bool
    method: str


def parse_yes_no(text: str) -> YesNo | Unparsed:
    """The judge's answer to one yes/no question, or `Unparsed` saying why not."""
    body = _FENCE.sub("", text.strip())
    if body.startswith("{"):
        found = _json_answer(body)
        if found is not None:
            return found
    lead = _LEAD.sub("", body)
    first = re.match(r"(yes|no)(?![\w-])", lead, re.I)
    if first and not re.match(r"\W*or\s+(yes|no)\b", lead[first.end() :], re.I):
        return YesNo(first.group(1).lower() == "yes", "text")
    words = {w.lower() for w in _WORD.findall(body)}
    if len(words) == 1:
        return YesNo(words == {"yes"}, "text")
    if not body:
        return Unparsed("empty answer")
    reason = "both yes and no in the answer" if words else "no yes or no in the answer"
    return Unparsed(reason)


def _json_answer(body: str) -> YesNo | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        if str(key).strip().lower() in ("answer", "verdict", "result", "response"):
            text = str(value).strip().lower().rstrip(".")
            if isinstance(value, bool):
                return YesNo(value, "json")
            if text in _TRUE or text in _FALSE:
                return YesNo(text in _TRUE, "json")
    return None


# --- the prompt check ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """Which concepts a prompt expresses (concept id -> 0/1) and how the reply was read."""

    expressed: dict[str, int]
    method: str

    @property
    def missing(self) -> list[str]:
        return [cid for cid, value in self.expressed.items() if not value]

    @property
    def passed(self) -> bool:
        return not self.missing


def check_criteria(concepts: Sequence[Mapping[str, Any]]) -> list[Criterion]:
    """The sample's concepts (`ConceptSample.describe`) as criteria for the verdict reader:
    the key is the concept's id, the names its name and phrase."""
    return [
        Criterion(
            id=str(c["id"]),
            kind="skill",
            label=str(c["phrase"]),
            key=str(c["id"]),
            names=tuple(dict.fromkeys((str(c["name"]), str(c["phrase"])))),
        )
        for c in concepts
    ]


def parse_check(text: str, concepts: Sequence[Mapping[str, Any]]) -> CheckResult | Unparsed:
    """The checker's verdict: 1 for a concept the prompt expresses; a fraction counts as 0."""
    verdict = parse_verdict(text, check_criteria(concepts))
    if not isinstance(verdict, ParsedVerdict):
        return verdict
    expressed = {cid: int(value == 1) for cid, value in verdict.values.items()}
    return CheckResult(expressed, verdict.method)
