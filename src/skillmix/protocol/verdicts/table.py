"""Markdown and ASCII table verdicts: a row per criterion (with a points, score or
deductions column), or a column per criterion."""

from __future__ import annotations

import re
from dataclasses import dataclass

from skillmix.protocol.verdicts.entries import Entry
from skillmix.protocol.verdicts.matching import Matcher
from skillmix.protocol.verdicts.values import (
    NUMBER_VALUE,
    Value,
    clean_value,
    read_deduction,
    read_value,
)

_RULE_CHARS = re.compile(r"[\s:|+=-]+")
_RULE_DASHES = re.compile(r"[-=]{3,}")
_VALUE_HEADERS = (
    (3, re.compile(r"earned|awarded|scored|received|obtained|given", re.IGNORECASE)),
    (
        2,
        re.compile(
            r"score|verdict|result|pass|\bmet\b|grade|rating|value|judg|decision|outcome|yes\s*/\s*no",
            re.IGNORECASE,
        ),
    ),
    (1, re.compile(r"\bpoints?\b|\bpts\b", re.IGNORECASE)),
)
_NOT_VALUE_HEADER = re.compile(r"possible|max|available|out of|total|weight", re.IGNORECASE)
_MAX_HEADER = re.compile(r"possible|max|available|out of|worth", re.IGNORECASE)
_DEDUCTION_HEADER = re.compile(r"deduct|penalt|subtract|\blost\b", re.IGNORECASE)
_LABEL_HEADER = re.compile(
    r"criteri|requirement|item|aspect|rubric|description|skill|check|question", re.IGNORECASE
)
_PROSE_HEADER = re.compile(
    r"reason|explanation|justification|comment|note|evidence|rationale", re.IGNORECASE
)


def _is_rule_row(line: str) -> bool:
    """A Markdown alignment row or an ASCII border ("|---|:-:|", "+=====+")."""
    return bool(_RULE_CHARS.fullmatch(line) and _RULE_DASHES.search(line))


def is_table_row(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("|") or stripped.count("|") >= 2


def table_entries(text: str, matcher: Matcher) -> list[Entry]:
    entries: list[Entry] = []
    table: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if _is_rule_row(line) and ("|" in line or "+" in line or table):
            continue
        if is_table_row(line):
            table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        if table:
            entries += _entries_from_table(table, matcher)
            table = []
    return entries


def _entries_from_table(rows: list[list[str]], matcher: Matcher) -> list[Entry]:
    return _entries_from_columns(rows, matcher) or _entries_from_rows(rows, matcher)


def _entries_from_columns(rows: list[list[str]], matcher: Matcher) -> list[Entry]:
    """A table with a column per criterion: | Metaphor | On topic | over | 1 | 0 |.

    A row labelled as a maximum ("Possible") is skipped; a row labelled as a deduction
    is read as one.
    """
    header = rows[0]
    if any(clean_value(cell) is not None for cell in header):
        return []
    labels = [matcher.match(cell) for cell in header]
    if sum(label is not None for label in labels) < 2:
        return []
    entries: list[Entry] = []
    for row in rows[1:]:
        row_label = " ".join(
            cell
            for label, cell in zip(labels, row, strict=False)
            if label is None and clean_value(cell) is None
        )
        if _MAX_HEADER.search(row_label):
            continue
        deducted = bool(_DEDUCTION_HEADER.search(row_label))
        for label, cell in zip(labels, row, strict=False):
            value = read_deduction(cell) if deducted else clean_value(cell)
            if label is not None and value is not None:
                entries.append((label, value))
    return entries


@dataclass(frozen=True)
class _Columns:
    """What the header row of a row-per-criterion table says about its columns."""

    value: int | None = None  # points earned (or a score, a verdict)
    deducted: int | None = None  # points deducted, read as earned = maximum - deducted
    maximum: int | None = None  # points possible, the maximum for a deduction
    label: int | None = None
    prose: frozenset[int] = frozenset()


def _columns(header: list[str]) -> _Columns | None:
    """The roles of a header row's columns, or None if it is not a header row."""
    ranked = [
        (weight, col)
        for col, cell in enumerate(header)
        for weight, pattern in _VALUE_HEADERS
        if pattern.search(cell)
        and not _NOT_VALUE_HEADER.search(cell)
        and not _DEDUCTION_HEADER.search(cell)
    ]
    deductions = [col for col, cell in enumerate(header) if _DEDUCTION_HEADER.search(cell)]
    labels = [col for col, cell in enumerate(header) if _LABEL_HEADER.search(cell)]
    if not (ranked or deductions or labels):
        return None
    prose = frozenset(c for c, cell in enumerate(header) if _PROSE_HEADER.search(cell))
    # The highest-ranked value column; on a tie the rightmost one.
    weight, value = max(ranked) if ranked else (0, None)
    deducted = maximum = None
    if deductions and weight < 2:
        # Only a deductions column, perhaps beside a bare "Points" (the maximum).
        deducted = deductions[0]
        maxima = [c for c, cell in enumerate(header) if _MAX_HEADER.search(cell)]
        maximum = maxima[0] if maxima else value
        value = None
    used = {value, deducted, maximum}
    label = next((c for c in labels if c not in used), None)
    return _Columns(value, deducted, maximum, label, prose)


def _entries_from_rows(rows: list[list[str]], matcher: Matcher) -> list[Entry]:
    """A table with a row per criterion, with or without a header row."""
    columns = _Columns()
    for index, row in enumerate(rows):
        if any(clean_value(cell) is not None for cell in row):
            break
        if any(matcher.match(cell) for cell in row):
            break
        found = _columns(row)
        if found is not None:
            columns = found
            rows = rows[index + 1 :]
            break

    special = {columns.value, columns.deducted, columns.maximum} - {None}
    entries: list[Entry] = []
    for row in rows:
        candidates = [c for c in range(len(row)) if c not in columns.prose and c not in special]
        if columns.label is not None and columns.label in candidates:
            candidates.remove(columns.label)
            candidates.insert(0, columns.label)
        at = next(
            (c for c in candidates if clean_value(row[c]) is None and matcher.match(row[c])),
            None,
        )
        if at is None:
            continue
        label = matcher.match(row[at])
        value: Value | None = None
        if columns.deducted is not None:
            value = _row_deduction(row, columns.deducted, columns.maximum)
        elif columns.value is not None:
            value = read_value(row[columns.value]) if columns.value < len(row) else None
        else:
            cleans = [clean_value(row[c]) for c in candidates if c != at]
            value = next((v for v in reversed(cleans) if v is not None), None)
        if label is not None and value is not None:
            entries.append((label, value))
    return entries


def _row_deduction(row: list[str], deducted: int, maximum_at: int | None) -> Value | None:
    """The value of a row that states its deduction (and perhaps its maximum)."""
    if deducted >= len(row):
        return None
    maximum = 1.0
    if maximum_at is not None and maximum_at < len(row):
        number = NUMBER_VALUE.search(row[maximum_at])
        if number is not None and float(number.group("num")) > 0:
            maximum = float(number.group("num"))
    return read_deduction(row[deducted], maximum)
