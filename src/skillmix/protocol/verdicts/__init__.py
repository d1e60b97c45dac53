"""Parse a judge's verdict into one value per judged criterion.

Judges answer in many shapes: JSON (fenced, nested, keyed by field name or by label, or a
list of {"criterion", "points"} objects), Markdown or ASCII tables with a points column,
"Points earned: 1" lines under a heading naming the criterion, and plain "metaphor: yes"
lines. Each shape is tried in turn and the first that yields a clean value for every
judged criterion wins.

A value is the share of the criterion's point that was earned: 0, 1, or a fraction kept
as the judge gave it (0.5, "1/2", "½"); the vote across grading rounds decides what a
fraction counts for (`skillmix.scoring.metrics.majority_vote`). A "points deducted" column or
line is read as a deduction (1 - deducted), never as points earned.

Rules that keep a bad parse from turning into a wrong score:

* every row or entry is assigned to a criterion by what it says (the criterion's key,
  label, names and aliases, tolerant of case, punctuation, inflection, a "Correctly
  illustrates" prefix, and of a name shortened to its part before or inside a
  parenthesis or on one side of a slash; the longest match wins), never by its position;
* a label that names two criteria equally well is ambiguous and makes the verdict
  `Unparsed`: it is never resolved by a guess;
* a "Points earned" line belongs to the criterion heading above it (a numbered, bold or
  label-only line), not to a line of commentary that mentions another criterion;
* a criterion that is missing, has an unusable value (negative, "N/A", "partially") or
  gets two different values makes the whole verdict `Unparsed`, which callers retry and
  report instead of scoring as 0.

The sentence-limit criterion is computed in code, so anything the judge says about it
is recognised (so that it is not mistaken for another criterion) and then ignored.

The package has one module per job: `matching` assigns a label to a criterion, `values`
reads a value, `json_shape`, `table`, `points` and `lines` each read one answer shape
into entries, and `entries` turns the entries of one shape into values or problems.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from skillmix.prompts.rubric import Criterion
from skillmix.protocol.verdicts.entries import Entry, describe, resolve
from skillmix.protocol.verdicts.json_shape import json_entries
from skillmix.protocol.verdicts.lines import line_entries
from skillmix.protocol.verdicts.matching import Matcher
from skillmix.protocol.verdicts.points import points_entries
from skillmix.protocol.verdicts.table import table_entries

__all__ = ["ParsedVerdict", "Unparsed", "parse_verdict", "verdict_json_schema"]


@dataclass(frozen=True)
class ParsedVerdict:
    """A value in [0, 1] for every judged criterion (by criterion id).

    Whole values are the ints 0 and 1; a fraction the judge gave (0.5) is a float.
    """

    values: dict[str, float]
    method: str  # "json", "table", "points" or "lines": the format that was recognised


@dataclass(frozen=True)
class Unparsed:
    """A verdict that could not be read; `missing` lists the criterion ids without a value."""

    reason: str
    missing: tuple[str, ...] = ()


def parse_verdict(text: str, criteria: Sequence[Criterion]) -> ParsedVerdict | Unparsed:
    """Read a judge's reply into one value per judged criterion, or say why not.

    Never raises on any text (only on a rubric without judged criteria). Criteria that
    are not judged (the sentence limit) are neither required nor reported.
    """
    judged = [c for c in criteria if c.judged]
    if not judged:
        raise ValueError("the rubric has no judged criteria; there is nothing to parse")
    clean = _exact_json(text, judged)
    if clean is not None:
        return clean
    matcher = Matcher(criteria)
    strategies: list[tuple[str, Callable[[], list[Entry]]]] = [
        ("json", lambda: json_entries(text, matcher)),
        ("table", lambda: table_entries(text, matcher)),
        ("points", lambda: points_entries(text, matcher)),
        ("lines", lambda: line_entries(text, matcher)),
    ]
    judged_ids = {c.id for c in judged}
    best: tuple[str, dict[str, float], dict[str, str]] | None = None
    for method, strategy in strategies:
        entries = strategy()
        values, problems, ambiguous = resolve(entries, judged)
        if not problems:
            return ParsedVerdict(values=values, method=method)
        if ambiguous:
            # The format was recognised but a label could be two criteria: reading the
            # text another way would only be a guess.
            return Unparsed(
                reason=f"ambiguous {method} verdict ({describe(problems)})",
                missing=tuple(problems),
            )
        found = judged_ids & {label for label, _ in entries if isinstance(label, str)}
        if found and (best is None or len(values) > len(best[1])):
            best = (method, values, problems)
    if best is None:
        return Unparsed(
            reason="no verdict for any criterion found in the judge's reply",
            missing=tuple(c.id for c in judged),
        )
    method, _, problems = best
    return Unparsed(
        reason=f"incomplete {method} verdict ({describe(problems)})", missing=tuple(problems)
    )


def _exact_json(text: str, judged: Sequence[Criterion]) -> ParsedVerdict | None:
    """The fast path for what structured output produces: one JSON object with exactly the
    judged criteria's keys, each 0 or 1. Anything else (None) takes the general path,
    which reads this shape the same way."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        return None
    try:
        pairs = json.loads(body, object_pairs_hook=list)
    except ValueError:
        return None
    if not isinstance(pairs, list) or len(pairs) != len(judged):
        return None
    ids = {c.key: c.id for c in judged}
    values: dict[str, float] = {}
    for key, value in pairs:
        cid = ids.get(key)
        if cid is None or cid in values or type(value) is not int or value not in (0, 1):
            return None
        values[cid] = value
    return ParsedVerdict(values={c.id: values[c.id] for c in judged}, method="json")


def verdict_json_schema(criteria: Sequence[Criterion]) -> dict[str, Any]:
    """A JSON schema for constrained decoding: one required 0/1 integer per judged criterion.

    Fields are the criteria keys in rubric order. There is deliberately no free-text
    field: small models can run on inside an unterminated string until the token limit.
    Fractions are accepted only from free text; structured output is 0 or 1.
    """
    judged = [c for c in criteria if c.judged]
    if not judged:
        raise ValueError("the rubric has no judged criteria; a verdict schema would be empty")
    keys = [c.key for c in judged]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(
            f"criteria share the JSON key(s) {duplicates}; give the skills distinct names"
        )
    return {
        "type": "object",
        "properties": {key: {"type": "integer", "enum": [0, 1]} for key in keys},
        "required": keys,
        "additionalProperties": False,
    }
