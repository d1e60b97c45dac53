"""Extract the student's answer (and explanation) from a free-form reply.

The student is asked to write its text after "Answer:" and its explanation after
"Explanation:". Models decorate, rename, restate and forget these markers, so the
extraction is tolerant: markers in any case, in bold or italics, as Markdown headings,
with a qualifier ("Improved answer:", "Revised Answer:"), with ":" or a dash; the last
answer section wins (turn 2 may restate turn 1); without a marker, the whole reply minus
an explanation section and a leading preamble line ("Here is the improved text:") is the
answer. One layer of wrapping quotes or code fences is removed.

The answer is always a slice of the reply, so nothing is ever invented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Extracted:
    """The answer to grade, the explanation if any, and whether an answer marker was seen."""

    answer: str
    explanation: str | None
    marker_found: bool


_DECORATION = r"[ \t>#*_~`-]*"
_QUALIFIER = (
    r"(?:(?:my|the|your|an?|here(?:'s|’s|[ \t]+is)|final|improved|revised|updated|refined|"
    r"new|rewritten|corrected|edited|modified|shorter|better)[ \t]+){0,3}"
)
# The separator may carry the closing emphasis of the marker ("**Answer:**" or
# "**Answer**:"), but emphasis that opens the answer itself ("_The bees_") is kept.
_SEPARATOR = r"[*_~`]*[ \t]*(?:(?::|[-–—](?=[ \t]))(?:[*_~`]+(?=\s|$))?[ \t]*|(?=\n|$))"
# A marker sits at the start of a line, after optional Markdown decoration, and is
# followed by a separator (":" or a dash) or by the end of the line (a heading).
_ANSWER_MARKER = re.compile(
    rf"^{_DECORATION}{_QUALIFIER}answer(?:[ \t]+\d{{1,2}})?(?:[ \t]*\([^)\n]{{0,40}}\))?"
    + _SEPARATOR,
    re.IGNORECASE | re.MULTILINE,
)
# Without any line-start marker, "Answer:" inside a line still counts (colon required).
_INLINE_ANSWER_MARKER = re.compile(
    r"(?<![\w-])(?:(?:final|improved|revised|updated)[ \t]+)?answer[ \t]*[*_]*:[ \t*_]*",
    re.IGNORECASE,
)
_EXPLANATION_MARKER = re.compile(
    rf"^{_DECORATION}(?:(?:my|the|an?|brief|short)[ \t]+)?"
    rf"(?:explanation|rationale|justification)"
    rf"(?:[ \t]+(?:of|for|on|about|regarding)[ \t][^:\n]{{0,60}}?)?" + _SEPARATOR,
    re.IGNORECASE | re.MULTILINE,
)
# A first line that introduces the text rather than being part of it ("Sure! Here is the
# improved text:"); it must talk about the text, so that "Sure enough, ..." is kept.
_PREAMBLE_OPENING = re.compile(
    r"^[ \t*_#]*(?:sure|certainly|okay|ok|of course|absolutely|great|here(?:'s|’s|[ \t]+is|"
    r"[ \t]+are)|below)\b|:[ \t*_]*$",
    re.IGNORECASE,
)
_PREAMBLE_SUBJECT = re.compile(
    r"\b(?:answer|text|version|revis|improv|rewr[io]t|paragraph|passage|sentences?|response|"
    r"output|attempt|draft|story|piece|below)",
    re.IGNORECASE,
)
# "Answer: The hive hums. Explanation: ..." on one line: the explanation marker follows
# the end of a sentence and needs its colon.
_INLINE_EXPLANATION_MARKER = re.compile(
    r"(?<=[.!?\"”')*_])[ \t]+[*_]*(?:explanation|rationale|justification)[*_]*[ \t]*:[*_]*",
    re.IGNORECASE,
)
_FENCE_OPEN = re.compile(r"\A(?:```|~~~)[^\n]*\n")
_FENCE_CLOSE = re.compile(r"(?:^|\n)[ \t]*(?:```|~~~)[ \t]*\Z")
_QUOTE_PAIRS = {'"': '"', "“": "”", "„": "“", "'": "'", "‘": "’", "«": "»"}


def extract_answer(text: str) -> Extracted:
    """Split a student reply into the answer to grade and its explanation.

    Never raises and never returns None: an empty reply gives an empty answer. When
    several answer sections are present, the last non-empty one is taken; its
    explanation is the first explanation section after it (or else the last one before).
    """
    answers = list(_ANSWER_MARKER.finditer(text)) or list(_INLINE_ANSWER_MARKER.finditer(text))
    explanations = list(_EXPLANATION_MARKER.finditer(text))
    starts = sorted(m.start() for m in [*answers, *explanations])

    def section(marker: re.Match[str]) -> str:
        end = next((s for s in starts if s >= marker.end()), len(text))
        return text[marker.end() : end]

    def explanation_for(answer_marker: re.Match[str] | None) -> str | None:
        after = [m for m in explanations if answer_marker and m.start() > answer_marker.start()]
        before = [m for m in explanations if m not in after]
        chosen = after[0] if after else (before[-1] if before else None)
        return (section(chosen).strip() or None) if chosen else None

    for marker in reversed(answers):
        answer = _clean(section(marker))
        if answer:
            explanation = explanation_for(marker)
            inline = _INLINE_EXPLANATION_MARKER.search(answer)
            if inline:
                explanation = answer[inline.end() :].strip() or explanation
                answer = _clean(answer[: inline.start()])
            return Extracted(answer, explanation, marker_found=True)
    if answers:
        return Extracted("", explanation_for(answers[-1]), marker_found=True)

    body = text[: explanations[0].start()] if explanations else text
    return Extracted(_clean(_drop_preamble(body)), explanation_for(None), marker_found=False)


def _drop_preamble(body: str) -> str:
    """Remove a leading line like "Here is the improved text:" when text follows it."""
    stripped = body.strip()
    first, sep, rest = stripped.partition("\n")
    if (
        sep
        and rest.strip()
        and len(first) <= 160
        and _PREAMBLE_OPENING.search(first)
        and _PREAMBLE_SUBJECT.search(first)
    ):
        return rest
    return stripped


def _clean(answer: str) -> str:
    """Strip whitespace, one layer of code fence and one layer of wrapping quotes.

    Either half of a fence is removed on its own: when the whole reply was fenced, the
    opening fence may sit before the "Answer:" marker and only the closing one follows.
    """
    answer = answer.strip()
    opening = _FENCE_OPEN.match(answer)
    if opening:
        answer = answer[opening.end() :]
    closing = _FENCE_CLOSE.search(answer)
    if closing:
        answer = answer[: closing.start()]
    return _unwrap(answer.strip()).strip()


def _unwrap(answer: str) -> str:
    """Remove one layer of quotes or emphasis that wraps the whole answer."""
    if len(answer) >= 2:
        opening, closing = answer[0], answer[-1]
        inner = answer[1:-1]
        if _QUOTE_PAIRS.get(opening) == closing and _wraps(opening, closing, inner):
            return inner
    for mark in ("**", "__", "*", "_"):
        if (
            len(answer) > 2 * len(mark)
            and answer.startswith(mark)
            and answer.endswith(mark)
            and mark not in answer[len(mark) : -len(mark)]
        ):
            return answer[len(mark) : -len(mark)]
    return answer


def _wraps(opening: str, closing: str, inner: str) -> bool:
    """Whether a quote pair encloses the whole answer rather than two separate quotes."""
    if opening in "'‘":
        # Apostrophes sit inside words; a quote mark inside the text touches a space.
        return not re.search(rf"(?:^|\s)[{opening}{closing}]|[{opening}{closing}](?:\s|$)", inner)
    return opening not in inner and closing not in inner
