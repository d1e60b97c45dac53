"""Parse a judge's verdict into one value per judged criterion.

Judges answer in many shapes: JSON (fenced, nested, keyed by field name or by label, or a
list of {"criterion", "points"} objects), Markdown or ASCII tables with a points column,
"Points earned: 1" lines under a heading naming the criterion, and plain "metaphor: yes"
lines. Each shape is tried in turn and the first that yields a clean value for every
judged criterion wins.

A value is the share of the criterion's point that was earned: 0, 1, or a fraction kept
as the judge gave it (0.5, "1/2", "½"); the vote across grading rounds decides what a
fraction counts for (`skillmix.metrics.majority_vote`). A "points deducted" column or
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
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from skillmix.protocol.rubric import Criterion


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


@dataclass(frozen=True)
class _Refused:
    """A value is there but cannot be scored; `reason` says why."""

    reason: str


@dataclass(frozen=True)
class _Ambiguous:
    """A label that names several criteria equally well."""

    ids: frozenset[str]
    text: str


_Value = float | _Refused
_Label = str | _Ambiguous
_Entry = tuple[_Label, _Value]

_UNCLEAR = _Refused("value is not a clear number of points")
_NEGATIVE = _Refused("negative value")
_LENGTH_ID = "\x00length"  # stands for a sentence-limit criterion the rubric lacks
_LENGTH_TERMS = ("sentence", "sentences", "length", "short enough", "at most")


def parse_verdict(text: str, criteria: Sequence[Criterion]) -> ParsedVerdict | Unparsed:
    """Read a judge's reply into one value per judged criterion, or say why not.

    Never raises on any text (only on a rubric without judged criteria). Criteria that
    are not judged (the sentence limit) are neither required nor reported.
    """
    judged = [c for c in criteria if c.judged]
    if not judged:
        raise ValueError("the rubric has no judged criteria; there is nothing to parse")
    matcher = _Matcher(criteria)
    strategies: list[tuple[str, Callable[[], list[_Entry]]]] = [
        ("json", lambda: _json_entries(text, matcher)),
        ("table", lambda: _table_entries(text, matcher)),
        ("points", lambda: _points_entries(text, matcher)),
        ("lines", lambda: _line_entries(text, matcher)),
    ]
    judged_ids = {c.id for c in judged}
    best: tuple[str, dict[str, float], dict[str, str]] | None = None
    for method, strategy in strategies:
        entries = strategy()
        values, problems, ambiguous = _resolve(entries, judged)
        if not problems:
            return ParsedVerdict(values=values, method=method)
        if ambiguous:
            # The format was recognised but a label could be two criteria: reading the
            # text another way would only be a guess.
            return Unparsed(
                reason=f"ambiguous {method} verdict ({_details(problems)})",
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
        reason=f"incomplete {method} verdict ({_details(problems)})", missing=tuple(problems)
    )


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


def _details(problems: dict[str, str]) -> str:
    return "; ".join(f"{cid}: {why}" for cid, why in problems.items())


def _resolve(
    entries: list[_Entry], judged: list[Criterion]
) -> tuple[dict[str, float], dict[str, str], bool]:
    """Values for the judged criteria, a problem for each one without a clean value, and
    whether any problem is an ambiguous label."""
    given: dict[str, list[_Value]] = {}
    ambiguous: dict[str, str] = {}
    for label, value in entries:
        if isinstance(label, _Ambiguous):
            for cid in label.ids:
                ambiguous.setdefault(cid, label.text)
        else:
            given.setdefault(label, []).append(value)
    values: dict[str, float] = {}
    problems: dict[str, str] = {}
    for criterion in judged:
        found = given.get(criterion.id, [])
        refused = [v for v in found if isinstance(v, _Refused)]
        clean = {v for v in found if not isinstance(v, _Refused)}
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


# --- Which criterion a piece of text is about -------------------------------------------

_TOTAL = re.compile(
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


class _Matcher:
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

    def match(self, text: str) -> _Label | None:
        """The id of the criterion `text` mentions most specifically, `_Ambiguous` if
        several equally, None if none."""
        if not text or _TOTAL.match(text):
            return None
        return self._best([text], anchored=False)

    def match_label(self, text: str) -> _Label | None:
        """Like `match`, but only when `text` is a label: the criterion's name, perhaps
        after "Correctly illustrates" or "Skill 2:", with nothing after it but brackets."""
        text = text.strip()
        if not text or _TOTAL.match(text):
            return None
        stripped = _LABEL_PREFIX.sub("", text, count=1)
        return self._best(list(dict.fromkeys([text, stripped])), anchored=True)

    def match_key(self, key: str) -> _Label | None:
        """Like `match`, but a JSON key equal to a criterion's key or id wins outright."""
        exact = self._exact.get(key.strip().lower())
        return exact if exact is not None else self.match(key.replace("_", " "))

    def _best(self, texts: list[str], anchored: bool) -> _Label | None:
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
        return _Ambiguous(frozenset(winners), texts[0])

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


# --- Values -----------------------------------------------------------------------------

_YES_WORDS = (
    "yes", "y", "true", "pass", "passed", "passes", "met", "satisfied", "correct", "present",
    "achieved", "fulfilled",
)  # fmt: skip
_NO_WORDS = (
    "no", "n", "false", "fail", "failed", "fails", "unmet", "unsatisfied", "incorrect", "absent",
    "unfulfilled", "not met", "not satisfied", "not achieved", "not present", "not fulfilled",
)  # fmt: skip
_UNCLEAR_WORDS = (
    "partial", "partially", "somewhat", "unclear", "unknown", "n/a", "na", "undetermined",
)  # fmt: skip
_WORD_VALUES: dict[str, _Value] = {
    **dict.fromkeys(_YES_WORDS, 1),
    **dict.fromkeys(_NO_WORDS, 0),
    **dict.fromkeys(_UNCLEAR_WORDS, _UNCLEAR),
}
_SYMBOL_VALUES: dict[str, _Value] = {
    **dict.fromkeys(["✓", "✔", "✅", "☑", "🗸", "[x]", "[X]", "[✓]", "[✔]"], 1),
    **dict.fromkeys(["✗", "✘", "❌", "✖", "❎", "×", "[ ]", "[]"], 0),
    "½": 0.5,
}
_WORD_VALUE = re.compile(
    r"(?:"
    + "|".join(re.escape(w) for w in sorted(_WORD_VALUES, key=len, reverse=True))
    + r")(?![^\W_])",
    re.IGNORECASE,
)
_SYMBOL_VALUE = re.compile(
    "|".join(re.escape(s) for s in sorted(_SYMBOL_VALUES, key=len, reverse=True))
)
_MINUS = "-−–"  # hyphen, minus sign, en dash: "-1", "−1", "–1"
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_NUMBER_VALUE = re.compile(
    rf"(?P<sign>[{_MINUS}](?=[\d.]))?\+?(?P<num>{_NUMBER})"
    rf"(?:\s*(?:/|out\s+of)\s*(?P<den>{_NUMBER}))?"
    r"(?P<unit>\s*(?:points?|pts?)(?![^\W_])\.?)?",
    re.IGNORECASE,
)
# A dash is noise before a value ("— 1 point") unless it is a minus sign glued to a number.
_LEADING_NOISE = re.compile(r"""^(?:[\s*_`"'“”‘’(:=|>→—]|[-–](?![\d.]))*""")
_TRAILING_NOISE = re.compile(r"""^[\s*_`"'“”‘’)\].,;!]*$""")
_DEDUCTION_TEXT = re.compile(
    r"(?<![^\W_])(?:deduct\w*|penalt\w*|subtract\w*|points?\s+lost|lost\s+\d)", re.IGNORECASE
)
_DEDUCTION_NUMBER = re.compile(rf"[{_MINUS}]?(?P<num>{_NUMBER})")


def _tidy(value: float) -> float:
    """0 and 1 as ints, a fraction as a float."""
    return int(value) if float(value).is_integer() else value


def _number_value(number: float, denominator: float | None = None) -> _Value:
    """The share of the point earned: 1 for full marks, 0 for none, fractions kept."""
    if not math.isfinite(number):
        return _UNCLEAR
    if number < 0:
        return _NEGATIVE
    if denominator is not None:
        if not math.isfinite(denominator) or denominator <= 0:
            return _UNCLEAR
        number = number / denominator
    return _tidy(min(number, 1.0))


def _deduction_value(deducted: float, maximum: float = 1.0) -> _Value:
    """Points earned when `deducted` of `maximum` points were taken off."""
    deducted = abs(deducted)  # "-1" in a deductions column takes off one point
    if not (math.isfinite(deducted) and math.isfinite(maximum)) or maximum <= 0:
        return _UNCLEAR
    if deducted > maximum:
        return _Refused(f"{deducted:g} points deducted from at most {maximum:g}")
    return _tidy((maximum - deducted) / maximum)


def _deduction(text: str, maximum: float = 1.0) -> _Value | None:
    """The value of a text that states a deduction ("1", "1 point deducted", "-0.5").

    A deduction that is not a number ("none", "yes") is refused rather than guessed.
    """
    if not text.strip(" *_`|"):
        return None
    number = _DEDUCTION_NUMBER.search(text)
    if number is None:
        return _Refused("a deduction that is not a number of points")
    return _deduction_value(float(number.group("num")), maximum)


def _leading_value(text: str) -> tuple[_Value, int] | None:
    """The value at the start of `text` and where it ends, or None if there is none."""
    start = _LEADING_NOISE.match(text)
    at = start.end() if start else 0
    symbol = _SYMBOL_VALUE.match(text, at)
    if symbol:
        return _SYMBOL_VALUES[symbol.group()], symbol.end()
    word = _WORD_VALUE.match(text, at)
    if word:
        return _WORD_VALUES[word.group().lower()], word.end()
    number = _NUMBER_VALUE.match(text, at)
    if number:
        rest = text[number.end() :].lstrip()
        # "10 bees are mentioned" is prose, not a score; "1 (yes)" and "1." are scores.
        if not number.group("unit") and rest[:1].isalpha():
            return None
        if number.group("sign"):
            return _NEGATIVE, number.end()
        den = number.group("den")
        value = _number_value(float(number.group("num")), float(den) if den else None)
        return value, number.end()
    return None


def _read_value(text: str) -> _Value | None:
    """The value a text starts with; a text about a deduction is read as one."""
    if _DEDUCTION_TEXT.search(text):
        return _deduction(text)
    found = _leading_value(text)
    return found[0] if found else None


def _clean_value(text: str) -> _Value | None:
    """The value when `text` is nothing but a value (a table cell like "1", "Yes", "✓")."""
    found = _leading_value(text)
    if found and _TRAILING_NOISE.match(text[found[1] :]):
        return found[0]
    return None


_TRAILING_VALUE = re.compile(
    r"(?:(?P<cue>[(\[:=→]|(?<![^\W_])(?:so|thus|hence|therefore|score|points?|verdict|result"
    r"|earned))\s*[*_]*\s*|(?<=\s)|^)"
    r"(?P<value>(?:"
    + _SYMBOL_VALUE.pattern
    + "|"
    + _WORD_VALUE.pattern
    + rf"|[{_MINUS}]?\d+(?:\.\d+)?(?:\s*(?:/|out\s+of)\s*\d+(?:\.\d+)?)?(?:\s*(?:points?|pts?))?))"
    r"[\s*_`)\].!]*$",
    re.IGNORECASE,
)
_SELF_EVIDENT = re.compile(r"/|out\s+of|\b(?:points?|pts?)$", re.IGNORECASE)


def _trailing_value(text: str) -> _Value | None:
    """A value that ends `text` after a cue: "..., so 1", "... (yes)", "... ✓", "... 1/1".

    A bare word or number at the end of a sentence ("... which is correct.") is prose.
    """
    match = _TRAILING_VALUE.search(text)
    if match is None:
        return None
    value_text = match.group("value")
    value = _clean_value(value_text)
    if value is None:
        return None
    evident = _SYMBOL_VALUE.fullmatch(value_text) or _SELF_EVIDENT.search(value_text)
    return value if match.group("cue") or evident else None


# --- JSON -------------------------------------------------------------------------------

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


def _json_entries(text: str, matcher: _Matcher) -> list[_Entry]:
    entries: list[_Entry] = []
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


def _entries_from_json(document: Any, matcher: _Matcher, depth: int) -> list[_Entry]:
    if depth > 8:
        return []
    entries: list[_Entry] = []
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
                deducted = _DEDUCTION_TEXT.search(str(key)) and not isinstance(value, dict | list)
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


def _json_value(value: Any) -> _Value | None:
    """The verdict a JSON value carries, or None if it carries none."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return _number_value(float(value))
    if isinstance(value, str):
        return _read_value(value)
    if value is None:
        return _UNCLEAR
    if isinstance(value, dict):
        fields = {str(k).strip().lower(): v for k, v in value.items()}
        for field in _VALUE_FIELDS:
            if field in fields and not isinstance(fields[field], dict | list):
                return _json_value(fields[field])
        for field in _DEDUCTION_FIELDS:
            if field in fields:
                return _json_deduction(fields[field])
    return None


def _json_deduction(value: Any) -> _Value | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _deduction_value(float(value))
    if isinstance(value, str):
        return _deduction(value)
    return _Refused("a deduction that is not a number of points")


# --- Tables -----------------------------------------------------------------------------

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


def _is_table_row(line: str) -> bool:
    stripped = line.strip()
    return stripped.startswith("|") or stripped.count("|") >= 2


def _table_entries(text: str, matcher: _Matcher) -> list[_Entry]:
    entries: list[_Entry] = []
    table: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if _is_rule_row(line) and ("|" in line or "+" in line or table):
            continue
        if _is_table_row(line):
            table.append([cell.strip() for cell in line.strip().strip("|").split("|")])
            continue
        if table:
            entries += _entries_from_table(table, matcher)
            table = []
    return entries


def _entries_from_table(rows: list[list[str]], matcher: _Matcher) -> list[_Entry]:
    return _entries_from_columns(rows, matcher) or _entries_from_rows(rows, matcher)


def _entries_from_columns(rows: list[list[str]], matcher: _Matcher) -> list[_Entry]:
    """A table with a column per criterion: | Metaphor | On topic | over | 1 | 0 |.

    A row labelled as a maximum ("Possible") is skipped; a row labelled as a deduction
    is read as one.
    """
    header = rows[0]
    if any(_clean_value(cell) is not None for cell in header):
        return []
    labels = [matcher.match(cell) for cell in header]
    if sum(label is not None for label in labels) < 2:
        return []
    entries: list[_Entry] = []
    for row in rows[1:]:
        row_label = " ".join(
            cell
            for label, cell in zip(labels, row, strict=False)
            if label is None and _clean_value(cell) is None
        )
        if _MAX_HEADER.search(row_label):
            continue
        deducted = bool(_DEDUCTION_HEADER.search(row_label))
        for label, cell in zip(labels, row, strict=False):
            value = _deduction(cell) if deducted else _clean_value(cell)
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


def _entries_from_rows(rows: list[list[str]], matcher: _Matcher) -> list[_Entry]:
    """A table with a row per criterion, with or without a header row."""
    columns = _Columns()
    for index, row in enumerate(rows):
        if any(_clean_value(cell) is not None for cell in row):
            break
        if any(matcher.match(cell) for cell in row):
            break
        found = _columns(row)
        if found is not None:
            columns = found
            rows = rows[index + 1 :]
            break

    special = {columns.value, columns.deducted, columns.maximum} - {None}
    entries: list[_Entry] = []
    for row in rows:
        candidates = [c for c in range(len(row)) if c not in columns.prose and c not in special]
        if columns.label is not None and columns.label in candidates:
            candidates.remove(columns.label)
            candidates.insert(0, columns.label)
        at = next(
            (c for c in candidates if _clean_value(row[c]) is None and matcher.match(row[c])),
            None,
        )
        if at is None:
            continue
        label = matcher.match(row[at])
        value: _Value | None = None
        if columns.deducted is not None:
            value = _row_deduction(row, columns.deducted, columns.maximum)
        elif columns.value is not None:
            value = _read_value(row[columns.value]) if columns.value < len(row) else None
        else:
            cleans = [_clean_value(row[c]) for c in candidates if c != at]
            value = next((v for v in reversed(cleans) if v is not None), None)
        if label is not None and value is not None:
            entries.append((label, value))
    return entries


def _row_deduction(row: list[str], deducted: int, maximum_at: int | None) -> _Value | None:
    """The value of a row that states its deduction (and perhaps its maximum)."""
    if deducted >= len(row):
        return None
    maximum = 1.0
    if maximum_at is not None and maximum_at < len(row):
        number = _NUMBER_VALUE.search(row[maximum_at])
        if number is not None and float(number.group("num")) > 0:
            maximum = float(number.group("num"))
    return _deduction(row[deducted], maximum)


# --- "Points earned" lines and plain "label: value" lines -------------------------------

_LIST_MARKER = re.compile(r"^\s*(?:[-*+•>]+|#{1,6}|\(?\d{1,2}[.):]|\(?[a-z][.)])\s+")
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
_SEPARATOR = re.compile(r"(?::|=>|->|=|\||→|\t|\s[-–—]\s|—|–)\s*")
# A label comes within the first few separators of a line; trying them all on a long
# line of prose would cost quadratic time.
_MAX_SEPARATORS = 12
_POINTS = re.compile(
    r"(?<![^\W_])(?:(?:points?|pts?)(?:\s+(?P<kind>earned|awarded|scored|given|received"
    r"|deducted|lost))?|(?P<deduction>deductions?|penalty)|score|verdict|result|rating)"
    r"\s*(?::|=|\s[-–—]|[-–—]\s)",
    re.IGNORECASE,
)
_NOT_POINTS = re.compile(
    r"(?:max(?:imum)?|total|possible|available|overall|final)\W*$", re.IGNORECASE
)


def _lines(text: str) -> Iterator[tuple[str, str]]:
    """(raw line, line without emphasis and list marker) for each non-blank line."""
    for raw in text.splitlines():
        if raw.strip():
            line = raw.replace("**", "").replace("__", "").replace("`", "")
            yield raw, _LIST_MARKER.sub("", line, count=1).strip()


def _rest_value(rest: str) -> _Value | None:
    """The value in what follows a label: leading ("1", "yes ..."), or trailing after a
    cue ("... so 1"); a deduction ("1 point deducted") is read as one."""
    if _DEDUCTION_TEXT.search(rest):
        return _deduction(rest)
    found = _leading_value(rest)
    return found[0] if found else _trailing_value(rest)


def _labelled_value(line: str, matcher: _Matcher) -> _Entry | None:
    """`line` as "label <separator> value" (or "label ✓", "✅ label"), if it is one."""
    prefix = _SYMBOL_VALUE.match(line)
    if prefix:
        # "✅ Metaphor: the hive is a fortress": the label ends at the first separator.
        head = line[prefix.end() :]
        separator = _SEPARATOR.search(head)
        label = matcher.match(head[: separator.start()] if separator else head)
        return (label, _SYMBOL_VALUES[prefix.group()]) if label is not None else None
    for separator in itertools.islice(_SEPARATOR.finditer(line), _MAX_SEPARATORS):
        label = matcher.match(line[: separator.start()])
        if label is None:
            continue
        value = _rest_value(line[separator.end() :])
        if value is not None:
            return label, value
    if _SEPARATOR.search(line):
        return None
    # No separator: the whole line is the label, with the value after or before it.
    label = matcher.match(line)
    value = _trailing_value(line)
    if value is None:
        prefix = _SYMBOL_VALUE.match(line)
        value = _SYMBOL_VALUES[prefix.group()] if prefix else None
    return (label, value) if label is not None and value is not None else None


def _line_entries(text: str, matcher: _Matcher) -> list[_Entry]:
    entries: list[_Entry] = []
    for raw, line in _lines(text):
        if _is_table_row(raw) or _TOTAL.match(line):
            continue
        entry = _labelled_value(line, matcher)
        if entry is not None:
            entries.append(entry)
    return entries


def _points_entries(text: str, matcher: _Matcher) -> list[_Entry]:
    """ "Points earned: 1" lines, each for the criterion heading on its line or above it.

    A heading is a numbered or bold line naming a criterion, or a line (or the part
    before its first colon) that is a criterion's label; a line of commentary that
    mentions another criterion in passing is not one. "Points deducted: 1" is read as a
    deduction, and a "Grade:" line (the published prompt's total) is not a points line.
    """
    entries: list[_Entry] = []
    pending: _Label | None = None
    for raw, line in _lines(text):
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
        value: _Value | None
        if points.group("deduction") or points.group("kind") in ("deducted", "lost"):
            value = _deduction(rest)
        else:
            found = _leading_value(rest)
            value = found[0] if found else None
        if label is not None and value is not None:
            entries.append((label, value))
        pending = None
    return entries


def _heading(raw: str, text: str, matcher: _Matcher) -> _Label | None:
    """The criterion `text` (a line, or the head of one) is a heading for, if any."""
    text = _ENUMERATOR.sub("", text.strip(), count=1)
    separator = _SEPARATOR.search(text)
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
