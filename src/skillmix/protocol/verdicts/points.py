"""Verdicts as "Points earned: 1" lines, each under (or on) a heading naming the criterion."""

from __future__ import annotations

import re

from skillmix.protocol.verdicts.entries import Entry
from skillmix.protocol.verdicts.lines import SEPARATOR, text_lines
from skillmix.protocol.verdicts.matching import Label, Matcher
from skillmix.protocol.verdicts.values import Value, leading_value, read_deduction

# Numbered items and Markdown headings: a line that starts one is a heading.
_NUMBERED = re.compile(
    r"^\s*(?:#{1,6}\s|\(?\d{1,2}[.):]\s|\(?[a-z][.)]\s"
    r"|(?:criteri(?:on|a)|skill|item|requirement|step|part)\s*#?\d{1,2}\b)",
    re.IGNORECASE,
)
_ENUMERATOR = re.compile(
    r"^(?:criteri(?:on|a)|skill|item|requirement|step|part)\s*#?\d{1,2}\s*(?:[:.)–—-]\s*)?",
    re.IGNORECASE,
)
_BOLD_LEAD = re.compile(
    r"^\s*(?:[-*+•>]+\s+|\(?\d{1,2}[.):]\s+|#{1,6}\s+)?(\*\*|__)(?P<text>.+?)\1"
)
_POINTS = re.compile(
    r"(?<![^\W_])(?:(?:points?|pts?)(?:\s+(?P<kind>earned|awarded|scored|given|received"
    r"|deducted|lost))?|(?P<deduction>deductions?|penalty)|score|verdict|result|rating)"
    r"\s*(?::|=|\s[-–—]|[-–—]\s)",
    re.IGNORECASE,
)
_NOT_POINTS = re.compile(
    r"(?:max(?:imum)?|total|possible|available|overall|final)\W*$", re.IGNORECASE
)


def points_entries(text: str, matcher: Matcher) -> list[Entry]:
    """ "Points earned: 1" lines, each for the criterion heading on its line or above it.

    A heading is a numbered or bold line naming a criterion, or a line (or the part
    before its first colon) that is a criterion's label; a line of commentary that
    mentions another criterion in passing is not one. "Points deducted: 1" is read as a
    deduction, and a "Grade:" line (the published prompt's total) is not a points line.
    """
    entries: list[Entry] = []
    pending: Label | None = None
    for raw, line in text_lines(text):
        points = next(
            (m for m in _POINTS.finditer(line) if not _NOT_POINTS.search(line[: m.start()])),
            None,
        )
        if points is None:
            heading = _heading(raw, line, matcher)
            if heading is not None:
                pending = heading
            continue
        head = line[: points.start()]
        label = (_heading(raw, head, matcher) if head.strip() else None) or pending
        rest = line[points.end() :]
        value: Value | None
        if points.group("deduction") or points.group("kind") in ("deducted", "lost"):
            value = read_deduction(rest)
        else:
            found = leading_value(rest)
            value = found[0] if found else None
        if label is not None and value is not None:
            entries.append((label, value))
        pending = None
    return entries


def _heading(raw: str, text: str, matcher: Matcher) -> Label | None:
    """The criterion `text` (a line, or the head of one) is a heading for, if any."""
    text = _ENUMERATOR.sub("", text.strip(), count=1)
    separator = SEPARATOR.search(text)
    label_part = text[: separator.start()] if separator else text
    bold = _BOLD_LEAD.match(raw)
    if bold:
        found = matcher.match(bold.group("text").replace("`", "").strip(" :"))
        if found is not None:
            return found
    if _NUMBERED.match(raw):
        found = matcher.match(label_part)
        if found is not None:
            return found
    return matcher.match_label(label_part)
