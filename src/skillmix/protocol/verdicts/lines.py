"""Plain "label: value" lines ("Metaphor: yes", "✅ On topic", "... so 1")."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from skillmix.protocol.verdicts.entries import Entry
from skillmix.protocol.verdicts.matching import TOTAL, Matcher
from skillmix.protocol.verdicts.table import is_table_row
from skillmix.protocol.verdicts.values import (
    DEDUCTION_TEXT,
    SYMBOL_VALUE,
    SYMBOL_VALUES,
    Value,
    leading_value,
    read_deduction,
    trailing_value,
)

_LIST_MARKER = re.compile(r"^\s*(?:[-*+•>]+|#{1,6}|\(?\d{1,2}[.):]|\(?[a-z][.)])\s+")
SEPARATOR = re.compile(r"(?::|=>|->|=|\||→|\t|\s[-–—]\s|—|–)\s*")
# A label comes within the first few separators of a line; trying them all on a long
# line of prose would cost quadratic time.
_MAX_SEPARATORS = 12


def text_lines(text: str) -> Iterator[tuple[str, str]]:
    """(raw line, line without emphasis and list marker) for each non-blank line."""
    for raw in text.splitlines():
        if raw.strip():
            line = raw.replace("**", "").replace("__", "").replace("`", "")
            yield raw, _LIST_MARKER.sub("", line, count=1).strip()


def _rest_value(rest: str) -> Value | None:
    """The value in what follows a label: leading ("1", "yes ..."), or trailing after a
    cue ("... so 1"); a deduction ("1 point deducted") is read as one."""
    if DEDUCTION_TEXT.search(rest):
        return read_deduction(rest)
    found = leading_value(rest)
    return found[0] if found else trailing_value(rest)


def _labelled_value(line: str, matcher: Matcher) -> Entry | None:
    """`line` as "label <separator> value" (or "label ✓", "✅ label"), if it is one."""
    prefix = SYMBOL_VALUE.match(line)
    if prefix:
        # "✅ Metaphor: the hive is a fortress": the label ends at the first separator.
        head = line[prefix.end() :]
        separator = SEPARATOR.search(head)
        label = matcher.match(head[: separator.start()] if separator else head)
        return (label, SYMBOL_VALUES[prefix.group()]) if label is not None else None
    for separator in itertools.islice(SEPARATOR.finditer(line), _MAX_SEPARATORS):
        label = matcher.match(line[: separator.start()])
        if label is None:
            continue
        value = _rest_value(line[separator.end() :])
        if value is not None:
            return label, value
    if SEPARATOR.search(line):
        return None
    # No separator: the whole line is the label, with the value after or before it.
    label = matcher.match(line)
    value = trailing_value(line)
    if value is None:
        prefix = SYMBOL_VALUE.match(line)
        value = SYMBOL_VALUES[prefix.group()] if prefix else None
    return (label, value) if label is not None and value is not None else None


def line_entries(text: str, matcher: Matcher) -> list[Entry]:
    entries: list[Entry] = []
    for raw, line in text_lines(text):
        if is_table_row(raw) or TOTAL.match(line):
            continue
        entry = _labelled_value(line, matcher)
        if entry is not None:
            entries.append(entry)
    return entries
