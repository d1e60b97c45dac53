"""What every answer-shape reader yields (a label with a value), and how the entries of
one shape become a value per judged criterion or a problem for each one without one."""

from __future__ import annotations

from skillmix.prompts.rubric import Criterion
from skillmix.protocol.verdicts.matching import Ambiguous, Label
from skillmix.protocol.verdicts.values import Refused, Value

Entry = tuple[Label, Value]


def describe(problems: dict[str, str]) -> str:
    """The problems on one line: "skill:metaphor: not found; topic: conflicting values"."""
    return "; ".join(f"{cid}: {why}" for cid, why in problems.items())


def resolve(
    entries: list[Entry], judged: list[Criterion]
) -> tuple[dict[str, float], dict[str, str], bool]:
    """Values for the judged criteria, a problem for each one without a clean value, and
    whether any problem is an ambiguous label."""
    given: dict[str, list[Value]] = {}
    ambiguous: dict[str, str] = {}
    for label, value in entries:
        if isinstance(label, Ambiguous):
            for cid in label.ids:
                ambiguous.setdefault(cid, label.text)
        else:
            given.setdefault(label, []).append(value)
    values: dict[str, float] = {}
    problems: dict[str, str] = {}
    for criterion in judged:
        found = given.get(criterion.id, [])
        refused = [v for v in found if isinstance(v, Refused)]
        clean = {v for v in found if not isinstance(v, Refused)}
        if criterion.id in ambiguous:
            label = _shorten(ambiguous[criterion.id])
            problems[criterion.id] = f"the label {label!r} could name more than one criterion"
        elif not found:
            problems[criterion.id] = "not found"
        elif refused:
            problems[criterion.id] = refused[0].reason
        elif len(clean) > 1:
            problems[criterion.id] = "conflicting values"
        else:
            values[criterion.id] = clean.pop()
    return values, problems, any(cid in ambiguous for cid in problems)


def _shorten(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
