"""Which criterion a piece of text (a JSON key, a table cell, a line's label) is about."""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from skillmix.prompts.rubric import Criterion


@dataclass(frozen=True)
class Ambiguous:
    """A label that names several criteria equally well."""

    ids: frozenset[str]
    text: str


Label = str | Ambiguous

_LENGTH_ID = "\x00length"  # stands for a sentence-limit criterion the rubric lacks
_LENGTH_TERMS = ("sentence", "sentences", "length", "short enough", "at most")
# A label for a total ("Total", "Overall score"), which is no criterion.
TOTAL = re.compile(
    r"^\W*(?:total|sum\b|(?:overall|final)\s+(?:score|points|total|grade|result))",
    re.IGNORECASE,
)
_TERM_GAP = r"(?:[^\w:|=\n]|_)+"
_SLASH_RUN = re.compile(r"(?<![^\W_])[^\W\d_]+(?:/[^\W\d_]+)+(?![^\W_])")
# Where the head of a parenthetical gloss ends: "loaded question with implicit assumption".
_GLOSS_BREAK = re.compile(
    r"\s(?:with|without|of|for|from|by|about|that|which|where|when|in|on|to|as)\s",
    re.IGNORECASE,
)
# What may stand before a criterion's name in a label ("Skill 2: Correctly illustrates the").
_LABEL_PREFIX = re.compile(
    r"^[\W_]*(?:(?:criteri(?:on|a)|skill|item|requirement|rubric)\s*#?\d*\s*[:.)–—-]?\s+)?"
    r"(?:(?:correctly|clearly|successfully|effectively)\s+)?"
    r"(?:(?:illustrat|demonstrat|show|use|exhibit|employ)\w*\s+(?:of\s+)?)?"
    r"(?:(?:the|an?)\s+)?",
    re.IGNORECASE,
)
_BRACKETED = re.compile(r"\([^()]*\)?|\[[^\[\]]*\]?")
_LETTER = re.compile(r"[^\W\d_]")
_FILLER = re.compile(r"(?<![^\W_])(?:the|a|an|to|of|and|in|on|for|with|its|given)(?![^\W_])", re.I)


def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[^\W_]+", text.lower()))


def _slash_alternatives(text: str) -> list[str]:
    """Readings of a text with slashes: "complex/loaded question" is "complex question"
    or "loaded question"; "metaphor / simile" is "metaphor" or "simile"."""
    return _slash_words(text) + _slash_segments(text)


def _slash_words(text: str) -> list[str]:
    """The text with each word pair joined by a slash replaced by one of its words."""
    runs = list(_SLASH_RUN.finditer(text))[:3]
    if not runs:
        return []
    readings: list[str] = []
    for choice in itertools.islice(itertools.product(*(m.group().split("/") for m in runs)), 16):
        pieces, last = [], 0
        for run, word in zip(runs, choice, strict=True):
            pieces += [text[last : run.start()], word]
            last = run.end()
        readings.append("".join([*pieces, text[last:]]))
    return readings


def _slash_segments(text: str) -> list[str]:
    """The parts of the text between slashes (none without a slash, or in prose full of
    slashes, which is no label)."""
    segments = [segment for segment in text.split("/") if segment.strip()]
    return segments if 1 < len(segments) <= 4 else []


def _name_variants(name: str) -> list[str]:
    """Shorter forms a judge uses for a name with a parenthetical or slash part.

    "complex question (loaded question with implicit assumption)" gives "complex
    question", "loaded question with implicit assumption" and "loaded question";
    "complex/loaded question" gives "complex question" and "loaded question".
    """
    outside = _BRACKETED.sub(" ", name)
    parts = [(outside, False), *((inside, True) for inside in re.findall(r"\(([^()]*)\)", name))]
    variants: list[str] = []
    for part, is_gloss in parts:
        readings = [part] if "/" not in part else _slash_alternatives(part)
        for reading in readings:
            # One side of "complex/loaded question" alone ("complex") is too vague.
            if len(_words(reading)) >= 2 or len(_words(part)) <= 2:
                variants.append(reading)
            head = _GLOSS_BREAK.split(reading, maxsplit=1)[0]
            if is_gloss and head != reading and len(_words(head)) >= 2:
                variants.append(head)
    return [
        v for v in dict.fromkeys(" ".join(v.split()) for v in variants)
        if _words(v) and _words(v) != _words(name)
    ]  # fmt: skip


class Matcher:
    """Assigns a piece of text to the criterion it names most specifically."""

    def __init__(self, criteria: Sequence[Criterion]) -> None:
        primary: list[tuple[str, list[str], tuple[str, ...]]] = []
        self._exact: dict[str, str] = {}
        has_length = False
        for criterion in criteria:
            terms = [criterion.key.replace("_", " "), criterion.label, *criterion.names]
            if criterion.kind == "length":
                has_length = True
                terms += _LENGTH_TERMS
            primary.append((criterion.id, terms, criterion.names))
            self._exact.setdefault(criterion.key.lower(), criterion.id)
            self._exact.setdefault(criterion.id.lower(), criterion.id)
        if not has_length:
            primary.append((_LENGTH_ID, list(_LENGTH_TERMS), ()))
        # A shortened name that is another criterion's own name or alias is not a variant.
        owners: dict[tuple[str, ...], set[str]] = {}
        for cid, terms, _ in primary:
            for term in terms:
                owners.setdefault(_words(term), set()).add(cid)
        self._pending: list[tuple[str, list[str]]] = []
        for cid, terms, names in primary:
            variants = [
                variant
                for name in names
                for variant in _name_variants(name)
                if owners.get(_words(variant), {cid}) <= {cid}
            ]
            self._pending.append((cid, [*terms, *variants]))
        self._compiled: list[tuple[str, re.Pattern[str], int]] | None = None

    @property
    def _terms(self) -> list[tuple[str, re.Pattern[str], int]]:
        # Compiled on first use: a JSON verdict keyed exactly never needs the patterns.
        if self._compiled is None:
            self._compiled = []
            for cid, terms in self._pending:
                for term in dict.fromkeys(t.strip().lower() for t in terms):
                    pattern = _term_pattern(term)
                    if pattern is not None:
                        self._compiled.append((cid, pattern, len(term)))
        return self._compiled

    def match(self, text: str) -> Label | None:
        """The id of the criterion `text` mentions most specifically, `Ambiguous` if
        several equally, None if none."""
        if not text or TOTAL.match(text):
            return None
        return self._best([text], anchored=False)

    def match_label(self, text: str) -> Label | None:
        """Like `match`, but only when `text` is a label: the criterion's name, perhaps
        after "Correctly illustrates" or "Skill 2:", with nothing after it but brackets."""
        text = text.strip()
        if not text or TOTAL.match(text):
            return None
        stripped = _LABEL_PREFIX.sub("", text, count=1)
        return self._best(list(dict.fromkeys([text, stripped])), anchored=True)

    def match_key(self, key: str) -> Label | None:
        """Like `match`, but a JSON key equal to a criterion's key or id wins outright."""
        exact = self._exact.get(key.strip().lower())
        return exact if exact is not None else self.match(key.replace("_", " "))

    def _best(self, texts: list[str], anchored: bool) -> Label | None:
        """The criteria the texts name most specifically, reading each slash both ways.

        A label is read as a whole, or as one word of each "a/b", or as the parts
        between slashes; when anchored, those parts count only if each one is a label.
        """
        winners: set[str] = set()
        for text in texts:
            for reading in [text, *_slash_words(text)]:
                winners |= self._top(reading, anchored)
            segments = [self._top(segment, anchored) for segment in _slash_segments(text)]
            if not anchored or all(segments):
                winners.update(*segments)
        if not winners:
            return None
        if len(winners) == 1:
            return winners.pop()
        return Ambiguous(frozenset(winners), texts[0])

    def _top(self, text: str, anchored: bool) -> set[str]:
        """The criteria whose longest name found in `text` is longest (ties: several)."""
        scores: dict[str, int] = {}
        for cid, pattern, score in self._terms:
            if score > scores.get(cid, 0) and self._found(cid, pattern, text, anchored):
                scores[cid] = score
        top = max(scores.values(), default=0)
        return {cid for cid, score in scores.items() if score == top}

    def _found(self, cid: str, pattern: re.Pattern[str], text: str, anchored: bool) -> bool:
        """Whether `pattern` names `cid` in `text`; anchored, whether `text` is a label
        of `cid`: its name first, then only brackets, filler words and its other names
        ("Pertains to the topic")."""
        if not anchored:
            return pattern.search(text) is not None
        match = pattern.match(text)
        if match is None:
            return False
        rest = _BRACKETED.sub(" ", text[match.end() :])
        for own_cid, own, _ in self._terms:
            if own_cid == cid:
                rest = own.sub(" ", rest)
        return not _LETTER.search(_FILLER.sub(" ", rest))


@functools.lru_cache(maxsize=8192)
def _term_pattern(term: str) -> re.Pattern[str] | None:
    """Words of the term in order, each also matching its inflected forms."""
    words = re.findall(r"[^\W_]+", term)
    if not words:
        return None
    parts = []
    for word in words:
        if len(word) < 4 or not word.isalpha():
            parts.append(re.escape(word) + r"(?:s|es)?(?![^\W_])")
            continue
        # "pertains" matches "pertaining", "sense" matches "sensible", "coheren" matches
        # "coherent": each word is a prefix, also after dropping a common ending.
        stems = {word}
        for ending in ("ing", "ed", "es", "s", "e", "y"):
            if word.endswith(ending) and len(word) - len(ending) >= 4:
                stems.add(word[: -len(ending)])
        alternatives = "|".join(re.escape(s) for s in sorted(stems, key=len, reverse=True))
        parts.append(rf"(?:{alternatives})[^\W_]*")
    return re.compile(r"(?<![^\W_])" + _TERM_GAP.join(parts), re.IGNORECASE)
