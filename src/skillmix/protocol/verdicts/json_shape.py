"""JSON verdicts: fenced or embedded objects and arrays, keyed by field name or label, or
lists of {"criterion", "points"} objects; lenient about Python-style dicts."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from skillmix.protocol.verdicts.entries import Entry
from skillmix.protocol.verdicts.matching import Matcher
from skillmix.protocol.verdicts.values import (
    DEDUCTION_TEXT,
    UNCLEAR,
    Refused,
    Value,
    deduction_value,
    number_value,
    read_deduction,
    read_value,
)

_NAME_FIELDS = frozenset(
    ("criterion", "criteria", "name", "label", "key", "id", "skill", "item", "requirement",
     "aspect", "title", "rubric")
)  # fmt: skip
_VALUE_FIELDS = (
    "points_earned",
    "points earned",
    "earned",
    "points",
    "score",
    "value",
    "verdict",
    "result",
    "pass",
    "passed",
    "met",
    "satisfied",
    "grade",
    "rating",
    "decision",
)
_DEDUCTION_FIELDS = (
    "points_deducted",
    "points deducted",
    "deducted",
    "deduction",
    "deductions",
    "penalty",
)
_MAX_JSON_CANDIDATES = 200


def json_entries(text: str, matcher: Matcher) -> list[Entry]:
    entries: list[Entry] = []
    for document in _json_documents(text):
        entries += _entries_from_json(document, matcher, depth=0)
    return entries


def _json_documents(text: str) -> Iterator[Any]:
    """Every JSON object or array embedded in the text (in fences, prose, anywhere)."""
    decoder = json.JSONDecoder()
    position = 0
    found_any = False
    for _ in range(_MAX_JSON_CANDIDATES):
        starts = [i for i in (text.find("{", position), text.find("[", position)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        try:
            document, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            position = start + 1
            continue
        found_any = True
        yield document
        position = end
    if not found_any:
        lenient = _lenient_json(text)
        if lenient is not None:
            yield lenient


def _lenient_json(text: str) -> Any:
    """Python-style dicts and trailing commas, which some judges write."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    candidate = text[start : end + 1]
    candidate = re.sub(r",\s*([}\]])", r"\1", candidate)
    candidate = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", candidate))
    if '"' not in candidate:
        candidate = candidate.replace("'", '"')
    try:
        return json.loads(candidate)
    except (ValueError, RecursionError):
        return None


def _entries_from_json(document: Any, matcher: Matcher, depth: int) -> list[Entry]:
    if depth > 8:
        return []
    entries: list[Entry] = []
    if isinstance(document, dict):
        fields = {str(k).strip().lower(): v for k, v in document.items()}
        name = next(
            (v for k, v in fields.items() if k in _NAME_FIELDS and isinstance(v, str)), None
        )
        if name is not None and any(f in fields for f in (*_VALUE_FIELDS, *_DEDUCTION_FIELDS)):
            # One item of a list form: {"criterion": "...", "points": 1}.
            label = matcher.match_key(name)
            value = _json_value(document)
            if label is not None and value is not None:
                entries.append((label, value))
            return entries
        for key, value in document.items():
            label = matcher.match_key(str(key))
            parsed = None
            if label is not None:
                deducted = DEDUCTION_TEXT.search(str(key)) and not isinstance(value, dict | list)
                parsed = _json_deduction(value) if deducted else _json_value(value)
            if label is not None and parsed is not None:
                entries.append((label, parsed))
            elif isinstance(value, dict | list):
                entries += _entries_from_json(value, matcher, depth + 1)
    elif isinstance(document, list):
        for item in document:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str):
                label = matcher.match_key(item[0])
                value = _json_value(item[1])
                if label is not None and value is not None:
                    entries.append((label, value))
            else:
                entries += _entries_from_json(item, matcher, depth + 1)
    return entries


def _json_value(value: Any) -> Value | None:
    """The verdict a JSON value carries, or None if it carries none."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return number_value(float(value))
    if isinstance(value, str):
        return read_value(value)
    if value is None:
        return UNCLEAR
    if isinstance(value, dict):
        fields = {str(k).strip().lower(): v for k, v in value.items()}
        for field in _VALUE_FIELDS:
            if field in fields and not isinstance(fields[field], dict | list):
                return _json_value(fields[field])
        for field in _DEDUCTION_FIELDS:
            if field in fields:
                return _json_deduction(fields[field])
    return None


def _json_deduction(value: Any) -> Value | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return deduction_value(float(value))
    if isinstance(value, str):
        return read_deduction(value)
    return Refused("a deduction that is not a number of points")
