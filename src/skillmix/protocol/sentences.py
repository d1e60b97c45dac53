"""Sentence segmentation for the sentence-limit criterion, which is computed in code.

The core is pysbd, a rule-based segmenter that passes the "Golden Rules" for English
(abbreviations, initials, decimals, ellipses, quotes). Around it we add what matters for
short model-written answers and what pysbd gets wrong:

* line structure: a line break between two complete lines is a boundary, blank lines
  too, while a line that was merely wrapped (it does not end a sentence and the next
  line starts in lowercase, or it ends with a comma) is joined to the next one;
* list bullets, numbering and Markdown heading/quote markers are not part of a sentence;
* typographic variants (curly quotes, "…", ". . .") are normalised before segmenting;
* a handful of pysbd misses are repaired afterwards (see `_repair`).

Sentences are returned as stripped slices of the original text, so the caller can show
exactly what was counted.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pysbd

_TERMINATOR = re.compile(r"""[.!?…]["'”’)\]*_]*$""")
# Used with .match(), which anchors it at the start of a line.
_LIST_MARKER = re.compile(
    r"[ \t]*(?:[-*+•▪‣◦>]|#{1,6}|\d{1,3}[.)]|[a-z]\)|\((?:\d{1,3}|[a-z])\))[ \t]+"
)
_CONTINUES = re.compile(r"[,;(\[{–—-]$")
_SPACED_ELLIPSIS = re.compile(r"\.(?:[ \t]\.){2,}")
_HAS_WORD = re.compile(r"[^\W_]")
_PLAIN = {"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "\t": " ", "\r": " "}

# Abbreviations pysbd sometimes treats as sentence ends when a number or a lowercase word
# follows ("approx. 3 kg", "cf. the hive"); none of them can end a sentence before those.
_ABBREVIATIONS_BEFORE_NUMBER = frozenset(
    ("approx", "appx", "ca", "cf", "e.g", "eg", "i.e", "ie", "fig", "figs", "no", "nos", "vol",
     "vols", "pp", "p", "ch", "sec", "eq", "art", "ref", "vs", "viz", "esp", "incl", "est", "op")
)  # fmt: skip
_ENDS_WITH_ABBREVIATION = re.compile(r"(?<![^\W\d_])([A-Za-z](?:\.?[A-Za-z])*)\.\s*$")
# Boundaries pysbd misses: "!" or "?" (possibly doubled, possibly inside a quote) or a
# quoted sentence ending in ".", then a capitalised word ("Hello!!! World.", '"The bees
# hum." "They fly."'); and a word glued to the next sentence ("hummed.Then they").
_MISSED_BOUNDARY = re.compile(
    r"""(?:[!?]+["')\]]*|\.["')\]]+)\s+(?=["'(\[]?[A-Z])|(?<=[a-z]{3}[.!?])(?=[A-Z][a-z]*\s)"""
)
# Where a sentence surely ends: a lowercase word (not an abbreviation) then a capital.
_SAFE_CUT = re.compile(r"""(?<=[a-z]{4}[.!?])\s+(?=["'(\[]?[A-Z])""")
_CHUNK = 1500
# A quotation that may hold more than one sentence: a terminator, then more text.
_INNER_BOUNDARY = re.compile(r"[.!?]\S*\s+\S")
_LEADING_CLOSER = re.compile(r"""^["')\]]+(?=\s|$)""")


@lru_cache(maxsize=1)
def _segmenter() -> pysbd.Segmenter:
    import pysbd  # 10 ms to import: only once a text may hold more than one sentence

    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[str]:
    """Split `text` into sentences, each a stripped slice of the original text.

    Handles abbreviations ("e.g.", "Dr.", "U.S."), initials, decimal numbers, ellipses,
    quotations, "?" and "!", sentences that start in lowercase, list items, and sentences
    separated only by line breaks. Fragments without a single letter or digit (a lone
    "---" or "...") are not sentences. Deterministic; empty or blank text gives [].
    """
    sentences: list[str] = []
    for start, end in _blocks(text):
        for s, e in _segment_block(text, start, end):
            piece = text[s:e].strip()
            if piece:
                sentences.append(piece)
    return sentences


# A text whose only possible boundary is its final punctuation is one sentence for any
# segmenter: no line break, no quote or bracket, and no ".", "!", "?" or "…" before the end.
_ONE_SENTENCE = re.compile(r"""[^\n.!?…"'“”‘’()\[\]]*[^\W_][^\n.!?…"'“”‘’()\[\]]*[.!?…]?""")


def count_sentences(text: str) -> int:
    """The number of sentences in `text` (see `split_sentences`)."""
    stripped = text.strip()
    if _ONE_SENTENCE.fullmatch(stripped):  # fast path; the segmenter costs ~1 ms
        return 1
    return len(split_sentences(text))


def _blocks(text: str) -> list[tuple[int, int]]:
    """Spans of text between hard line boundaries (soft-wrapped lines are joined)."""
    blocks: list[tuple[int, int]] = []
    after_break = False
    for m in re.finditer(r"[^\n]+", text):
        if not _HAS_WORD.search(m.group()):
            # A blank line or a rule such as "---" separates blocks and joins nothing.
            after_break = True
            continue
        start, end = m.span()
        if blocks and not after_break:
            prev_start, prev_end = blocks[-1]
            gap = text[prev_end:start]
            if gap.count("\n") == 1 and _is_soft_wrap(text[prev_start:prev_end], text[start:end]):
                blocks[-1] = (prev_start, end)
                continue
        blocks.append((start, end))
        after_break = False
    return blocks


def _is_soft_wrap(previous: str, line: str) -> bool:
    """Whether a single line break between two lines falls inside a sentence."""
    if _LIST_MARKER.match(line):
        return False
    last_line = previous.rstrip().rsplit("\n", 1)[-1]
    if _TERMINATOR.search(last_line):
        return False
    if _CONTINUES.search(last_line):
        return True
    first = line.lstrip()[:1]
    return first.islower()


def _normalise(text: str, start: int, end: int) -> tuple[str, list[int]]:
    """The block with typographic variants and list markers normalised.

    Returns the normalised string and, for each of its characters, the index of the
    original character it came from, so that segments map back to the original text.
    """
    chars: list[str] = []
    index: list[int] = []
    line_start = True
    i = start
    block = text[start:end]
    while i < end:
        if line_start:
            marker = _LIST_MARKER.match(block, i - start)
            if marker and marker.end() + start < end:
                i = marker.end() + start
            line_start = False
            continue
        ellipsis = _SPACED_ELLIPSIS.match(block, i - start)
        if ellipsis:
            chars.extend("...")
            index.extend([i, i, ellipsis.end() + start - 1])
            i = ellipsis.end() + start
            continue
        c = text[i]
        if c == "\n":
            chars.append(" ")
            index.append(i)
            line_start = True
        elif c == "…":
            chars.extend("...")
            index.extend([i, i, i])
        else:
            chars.append(_PLAIN.get(c, c))
            index.append(i)
        i += 1
    return "".join(chars), index


def _segment_block(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans (in `text` coordinates) within one block."""
    normal, index = _normalise(text, start, end)
    if not normal.strip():
        return []
    spans = _split_quotations(normal, _sentence_spans(normal, 0, len(normal)))
    mapped: list[tuple[int, int]] = []
    for s, e in spans:
        # A cut inside an expanded character ("…" became "...") must not split it in two.
        s_orig = max(index[s], mapped[-1][1] if mapped else start)
        e_orig = index[e - 1] + 1
        if e_orig > s_orig:
            mapped.append((s_orig, e_orig))
    return mapped


def _sentence_spans(normal: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """Sentence spans of normal[lo:hi]: pysbd, chunk by chunk, then repaired."""
    spans: list[tuple[int, int]] = []
    for c_lo, c_hi in _chunks(normal[lo:hi]):
        spans += _pysbd_spans(normal, lo + c_lo, lo + c_hi)
    return _repair(normal, spans)


def _split_quotations(normal: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Cut spans at the sentence boundaries inside double-quoted passages.

    pysbd keeps a quotation whole, so 'He said, "It rains. We stay."' would count as one
    sentence; each quoted sentence counts, the words before the quotation joining the
    first. Quotes are paired in order; a quotation of one sentence changes nothing.
    """
    quotes = [i for i, c in enumerate(normal) if c == '"']
    cuts: set[int] = set()
    for opening, closing in zip(quotes[::2], quotes[1::2], strict=False):
        if _INNER_BOUNDARY.search(normal, opening + 1, closing):
            cuts.update(s for s, _ in _sentence_spans(normal, opening + 1, closing)[1:])
    if not cuts:
        return spans
    result: list[tuple[int, int]] = []
    for s, e in spans:
        for cut in sorted(c for c in cuts if s < c < e):
            if _HAS_WORD.search(normal, s, cut) and _HAS_WORD.search(normal, cut, e):
                result.append((s, cut))
                s = cut
        result.append((s, e))
    return result


def _chunks(normal: str) -> list[tuple[int, int]]:
    """Cut a long block into pieces of about `_CHUNK` characters for pysbd.

    pysbd's time grows faster than linearly with the length of its input (seconds for a
    few tens of kilobytes), so a long block is cut where a sentence surely ends, or, in
    text without such a place, at a space.
    """
    bounds: list[tuple[int, int]] = []
    lo = 0
    while len(normal) - lo > 2 * _CHUNK:
        cut_at = _SAFE_CUT.search(normal, lo + _CHUNK, lo + 2 * _CHUNK)
        if cut_at:
            cut = cut_at.end()
        else:
            space = normal.rfind(" ", lo + _CHUNK, lo + 2 * _CHUNK)
            cut = space + 1 if space >= 0 else lo + 2 * _CHUNK
        bounds.append((lo, cut))
        lo = cut
    bounds.append((lo, len(normal)))
    return bounds


def _pysbd_spans(normal: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """pysbd's sentences in normal[lo:hi], as spans of `normal`."""
    spans: list[tuple[int, int]] = []
    cursor = lo
    for segment in _segmenter().segment(normal[lo:hi]):
        piece = segment.strip()
        if not piece:
            continue
        at = normal.find(piece, cursor, hi)
        if at < 0:
            # pysbd altered the text (it should not with clean=False); keep the rest of
            # the chunk as one sentence rather than lose characters.
            break
        spans.append((at, at + len(piece)))
        cursor = at + len(piece)
    if normal[cursor:hi].strip():
        spans.append((cursor, hi))
    return spans


def _repair(normal: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Fix pysbd's known misses on the normalised block."""
    split: list[tuple[int, int]] = []
    for s, e in spans:
        for m in _MISSED_BOUNDARY.finditer(normal, s, e):
            cut = m.end()
            split.append((s, cut))
            s = cut
        split.append((s, e))

    merged: list[tuple[int, int]] = []
    for s, e in split:
        piece = normal[s:e].strip()
        if not merged:
            merged.append((s, e))
            continue
        prev_s, prev_e = merged[-1]
        previous = normal[prev_s:prev_e]
        closer = _LEADING_CLOSER.match(piece)
        if closer and re.search(r"[.!?]\s*$", previous):
            # '"The end." Next one.' came back as 'The end.' + '" Next one.'.
            lead = len(normal[s:e]) - len(normal[s:e].lstrip())
            merged[-1] = (prev_s, s + lead + closer.end())
            rest = (s + lead + closer.end(), e)
            if normal[rest[0] : rest[1]].strip():
                merged.append(rest)
            continue
        if not _HAS_WORD.search(piece) or _continues_abbreviation(previous, piece):
            merged[-1] = (prev_s, e)
            continue
        merged.append((s, e))

    # A leading fragment without a word (a lone quote or dash) belongs to what follows.
    if len(merged) > 1 and not _HAS_WORD.search(normal[merged[0][0] : merged[0][1]]):
        merged[1] = (merged[0][0], merged[1][1])
        merged.pop(0)
    return [span for span in merged if _HAS_WORD.search(normal[span[0] : span[1]])]


def _continues_abbreviation(previous: str, piece: str) -> bool:
    """Whether `piece` continues a sentence that pysbd cut after an abbreviation."""
    m = _ENDS_WITH_ABBREVIATION.search(previous)
    if not m or m.group(1).lower() not in _ABBREVIATIONS_BEFORE_NUMBER:
        return False
    first = piece[:1]
    return first.isdigit() or first.islower()
