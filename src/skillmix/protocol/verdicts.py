"""Parse a judge's verdict into one 0/1 value per judged criterion.

Judges answer in many shapes: JSON (fenced, nested, keyed by field name or by label, or a
list of {"criterion", "points"} objects), Markdown or ASCII tables with a points column,
"Points earned: 1" lines under a line naming the criterion, and plain "metaphor: yes"
lines. Each shape is tried in turn and the first that yields a clean value for every
judged criterion wins.

Two rules keep a bad parse from turning into a wrong score:

* every row or entry is assigned to a criterion by what it says (the criterion's key,
  label or names, tolerant of inflection; the longest match wins), never by its position;
* a criterion that is missing, has an unclear value (0.5, "partially", "N/A") or gets
  two different values makes the whole verdict `Unparsed`, which callers retry and
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
    """A clean 0/1 value for every judged criterion (by criterion id)."""

    values: dict[str, int]
    method: str  # "json", "table", "points" or "lines": the format that was recognised


@dataclass(frozen=True)
class Unparsed:
    """A verdict that could not be read; `missing` lists the criterion ids without a value."""

    reason: str
    missing: tuple[str, ...] = ()


_AMBIGUOUS = -1  # a value is present but is not a clean 0 or 1
_LENGTH_ID = "\x00length"  # stands for a sentence-limit criterion the rubric lacks
_LENGTH_TERMS = ("sentence", "sentences", "length", "short enough", "at most")

_Entry = tuple[str, int]  # (criterion id, 0 / 1 / _AMBIGUOUS)


def parse_verdict(text: str, criteria: Sequence[Criterion]) -> ParsedVerdict | Unparsed:
    """Read a judge's reply into one 0/1 value per judged criterion, or say why not.

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
    best: tuple[str, dict[str, int], dict[str, str]] | None = None
    for method, strategy in strategies:
        entries = strategy()
        values, problems = _resolve(entries, judged)
        if not problems:
            return ParsedVerdict(values=values, method=method)
        found = judged_ids & {cid for cid, _ in entries}
        if found and (best is None or len(values) > len(best[1])):
            best = (method, values, problems)
    if best is None:
        return Unparsed(
            reason="no verdict for any criterion found in the judge's reply",
            missing=tuple(c.id for c in judged),
        )
    method, _, problems = best
    details = "; ".join(f"{cid}: {why}" for cid, why in problems.items())
    return Unparsed(reason=f"incomplete {method} verdict ({details})", missing=tuple(problems))


def verdict_json_schema(criteria: Sequence[Criterion]) -> dict[str, Any]:
    """A JSON schema for constrained decoding: one required 0/1 integer per judged criterion.

    Fields are the criteria keys in rubric order. There is deliberately no free-text
    field: small models can run on inside an unterminated string until the token limit.
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


def _resolve(
    entries: list[_Entry], judged: list[Criterion]
) -> tuple[dict[str, int], dict[str, str]]:
    """Values for the judged criteria, and a problem for each one that has no clean value."""
    seen: dict[str, set[int]] = {}
    for cid, value in entries:
        seen.setdefault(cid, set()).add(value)
    values: dict[str, int] = {}
    problems: dict[str, str] = {}
    for criterion in judged:
        found = seen.get(criterion.id, set())
        if not found:
            problems[criterion.id] = "not found"
        elif _AMBIGUOUS in found:
            problems[criterion.id] = "value is not a clear 0 or 1"
        elif len(found) > 1:
            problems[criterion.id] = "conflicting values"
        else:
            values[criterion.id] = found.pop()
    return values, problems


# --- Which criterion a piece of text is about -------------------------------------------

_TOTAL = re.compile(
    r"^\W*(?:total|sum\b|(?:overall|final)\s+(?:score|points|total|grade|result))",
    re.IGNORECASE,
)
_TERM_GAP = r"(?:[^\w:|=\n]|_)+"


class _Matcher:
    """Assigns a piece of text to the criterion it names most specifically."""

    def __init__(self, criteria: Sequence[Criterion]) -> None:
        self._pending: list[tuple[str, Sequence[str]]] = []
        self._compiled: list[tuple[str, re.Pattern[str], int]] | None = None
        self._exact: dict[str, str] = {}
        has_length = False
        for criterion in criteria:
            terms = [criterion.key.replace("_", " "), criterion.label, *criterion.names]
            if criterion.kind == "length":
                has_length = True
                terms += _LENGTH_TERMS
            self._add(criterion.id, terms)
            self._exact.setdefault(criterion.key.lower(), criterion.id)
            self._exact.setdefault(criterion.id.lower(), criterion.id)
        if not has_length:
            self._add(_LENGTH_ID, _LENGTH_TERMS)

    def _add(self, cid: str, terms: Sequence[str]) -> None:
        self._pending.append((cid, terms))

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

    def match(self, text: str) -> str | None:
        """The id of the criterion `text` names, or None if none or several equally."""
        if not text or _TOTAL.match(text):
            return None
        scores: dict[str, int] = {}
        for cid, pattern, score in self._terms:
            if score > scores.get(cid, 0) and pattern.search(text):
                scores[cid] = score
        if not scores:
            return None
        top = max(scores.values())
        winners = [cid for cid, score in scores.items() if score == top]
        return winners[0] if len(winners) == 1 else None

    def match_key(self, key: str) -> str | None:
        """Like `match`, but a JSON key equal to a criterion's key or id wins outright."""
        exact = self._exact.get(key.strip().lower())
        return exact if exact is not None else self.match(key.replace("_", " "))


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
_WORD_VALUES: dict[str, int] = {
    **dict.fromkeys(_YES_WORDS, 1),
    **dict.fromkeys(_NO_WORDS, 0),
    **dict.fromkeys(_UNCLEAR_WORDS, _AMBIGUOUS),
}
_SYMBOL_VALUES: dict[str, int] = {
    **dict.fromkeys(["✓", "✔", "✅", "☑", "🗸", "[x]", "[X]", "[✓]", "[✔]"], 1),
    **dict.fromkeys(["✗", "✘", "❌", "✖", "❎", "×", "[ ]", "[]"], 0),
    "½": _AMBIGUOUS,
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
_NUMBER_VALUE = re.compile(
    r"\+?(?P<num>\d+(?:\.\d+)?)"
    r"(?:\s*(?:/|out\s+of)\s*(?P<den>\d+(?:\.\d+)?))?"
    r"(?P<unit>\s*(?:points?|pts?)(?![^\W_])\.?)?",
    re.IGNORECASE,
)
_LEADING_NOISE = re.compile(r"""^[\s*_`"'“”‘’(:=|>→–—-]*""")
_TRAILING_NOISE = re.compile(r"""^[\s*_`"'“”‘’)\].,;!]*$""")


def _number_value(number: float, denominator: float | None = None) -> int:
    """1 for full marks, 0 for none; anything in between (0.5, 1/2) is ambiguous."""
    if not math.isfinite(number) or number < 0:
        return _AMBIGUOUS
    if denominator is not None:
        if not math.isfinite(denominator) or denominator <= 0:
            return _AMBIGUOUS
        number = number / denominator
    if number == 0:
        return 0
    return 1 if number >= 1 else _AMBIGUOUS


def _leading_value(text: str) -> tuple[int, int] | None:
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
        den = number.group("den")
        value = _number_value(float(number.group("num")), float(den) if den else None)
        return value, number.end()
    return None


def _clean_value(text: str) -> int | None:
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
    + r"|\d+(?:\.\d+)?(?:\s*(?:/|out\s+of)\s*\d+(?:\.\d+)?)?(?:\s*(?:points?|pts?))?))"
    r"[\s*_`)\].!]*$",
    re.IGNORECASE,
)
_SELF_EVIDENT = re.compile(r"/|out\s+of|\b(?:points?|pts?)$", re.IGNORECASE)


def _trailing_value(text: str) -> int | None:
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
        if name is not None and any(field in fields for field in _VALUE_FIELDS):
            # One item of a list form: {"criterion": "...", "points": 1}.
            cid = matcher.match_key(name)
            value = _json_value(document)
            if cid is not None and value is not None:
                entries.append((cid, value))
            return entries
        for key, value in document.items():
            cid = matcher.match_key(str(key))
            parsed = _json_value(value) if cid is not None else None
            if cid is not None and parsed is not None:
                entries.append((cid, parsed))
            elif isinstance(value, dict | list):
                entries += _entries_from_json(value, matcher, depth + 1)
    elif isinstance(document, list):
        for item in document:
            if isinstance(item, list) and len(item) == 2 and isinstance(item[0], str):
                cid = matcher.match_key(item[0])
                value = _json_value(item[1])
                if cid is not None and value is not None:
                    entries.append((cid, value))
            else:
                entries += _entries_from_json(item, matcher, depth + 1)
    return entries


def _json_value(value: Any) -> int | None:
    """The verdict a JSON value carries, or None if it carries none."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return _number_value(float(value))
    if isinstance(value, str):
        found = _leading_value(value)
        return found[0] if found else None
    if value is None:
        return _AMBIGUOUS
    if isinstance(value, dict):
        fields = {str(k).strip().lower(): v for k, v in value.items()}
        for field in _VALUE_FIELDS:
            if field in fields and not isinstance(fields[field], dict | list):
                return _json_value(fields[field])
    return None


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
    """A table with a column per criterion: | Metaphor | On topic | over | 1 | 0 |."""
    header = rows[0]
    if any(_clean_value(cell) is not None for cell in header):
        return []
    ids = [matcher.match(cell) for cell in header]
    if sum(cid is not None for cid in ids) < 2:
        return []
    entries: list[_Entry] = []
    for row in rows[1:]:
        for cid, cell in zip(ids, row, strict=False):
            value = _clean_value(cell)
            if cid is not None and value is not None:
                entries.append((cid, value))
    return entries


def _entries_from_rows(rows: list[list[str]], matcher: _Matcher) -> list[_Entry]:
    """A table with a row per criterion, with or without a header row."""
    value_col: int | None = None
    label_col: int | None = None
    prose_cols: set[int] = set()
    for index, row in enumerate(rows):
        if any(_clean_value(cell) is not None for cell in row):
            break
        if any(matcher.match(cell) for cell in row):
            break
        ranked = [
            (weight, col)
            for col, cell in enumerate(row)
            for weight, pattern in _VALUE_HEADERS
            if pattern.search(cell) and not _NOT_VALUE_HEADER.search(cell)
        ]
        labels = [col for col, cell in enumerate(row) if _LABEL_HEADER.search(cell)]
        if ranked or labels:
            if ranked:
                # The highest-ranked value column; on a tie the rightmost one.
                value_col = max(ranked)[1]
            label_col = next((c for c in labels if c != value_col), None)
            prose_cols = {c for c, cell in enumerate(row) if _PROSE_HEADER.search(cell)}
            rows = rows[index + 1 :]
            break

    entries: list[_Entry] = []
    for row in rows:
        columns = [c for c in range(len(row)) if c not in prose_cols and c != value_col]
        if label_col is not None and label_col in columns:
            columns.remove(label_col)
            columns.insert(0, label_col)
        label = next(
            (c for c in columns if _clean_value(row[c]) is None and matcher.match(row[c])), None
        )
        if label is None:
            continue
        cid = matcher.match(row[label])
        value: int | None = None
        if value_col is not None and value_col < len(row):
            found = _leading_value(row[value_col])
            value = found[0] if found else None
        else:
            cleans = [_clean_value(row[c]) for c in columns if c != label]
            value = next((v for v in reversed(cleans) if v is not None), None)
        if cid is not None and value is not None:
            entries.append((cid, value))
    return entries


# --- "Points earned" lines and plain "label: value" lines -------------------------------

_LIST_MARKER = re.compile(r"^\s*(?:[-*+•>]+|#{1,6}|\(?\d{1,2}[.):]|\(?[a-z][.)])\s+")
_SEPARATOR = re.compile(r"(?::|=>|->|=|\||→|\t|\s[-–—]\s|—|–)\s*")
# A label comes within the first few separators of a line; trying them all on a long
# line of prose would cost quadratic time.
_MAX_SEPARATORS = 12
_POINTS = re.compile(
    r"(?<![^\W_])(?:(?:points?|pts?)(?:\s+(?:earned|awarded|scored|given|received))?"
    r"|score|verdict|result|grade|rating)\s*(?::|=|\s[-–—]|[-–—]\s)",
    re.IGNORECASE,
)
_NOT_POINTS = re.compile(
    r"(?:max(?:imum)?|total|possible|available|overall|final)\W*$", re.IGNORECASE
)
_HEADER_LIKE = re.compile(r"^\s*(?:#|\*\*|__|[-*+•]\s|\(?\d{1,2}[.):]|criteri)", re.IGNORECASE)


def _lines(text: str) -> Iterator[tuple[str, str]]:
    """(raw line, line without emphasis and list marker) for each non-blank line."""
    for raw in text.splitlines():
        if raw.strip():
            line = raw.replace("**", "").replace("__", "").replace("`", "")
            yield raw, _LIST_MARKER.sub("", line, count=1).strip()


def _labelled_value(line: str, matcher: _Matcher) -> _Entry | None:
    """`line` as "label <separator> value" (or "label ✓", "✅ label"), if it is one."""
    prefix = _SYMBOL_VALUE.match(line)
    if prefix:
        # "✅ Metaphor: the hive is a fortress": the label ends at the first separator.
        head = line[prefix.end() :]
        separator = _SEPARATOR.search(head)
        cid = matcher.match(head[: separator.start()] if separator else head)
        return (cid, _SYMBOL_VALUES[prefix.group()]) if cid is not None else None
    for separator in itertools.islice(_SEPARATOR.finditer(line), _MAX_SEPARATORS):
        cid = matcher.match(line[: separator.start()])
        if cid is None:
            continue
        rest = line[separator.end() :]
        found = _leading_value(rest)
        value = found[0] if found else _trailing_value(rest)
        if value is not None:
            return cid, value
    if _SEPARATOR.search(line):
        return None
    # No separator: the whole line is the label, with the value after or before it.
    cid = matcher.match(line)
    value = _trailing_value(line)
    if value is None:
        prefix = _SYMBOL_VALUE.match(line)
        value = _SYMBOL_VALUES[prefix.group()] if prefix else None
    return (cid, value) if cid is not None and value is not None else None


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
    """ "Points earned: 1" lines, each for the criterion named on its line or above it.

    The criterion "above" is the last header-like line naming one (a numbered, bulleted,
    bold or short line) since the previous points line; a line of reasoning that
    mentions another criterion in passing does not displace it.
    """
    entries: list[_Entry] = []
    pending: str | None = None
    for raw, line in _lines(text):
        points = next(
            (m for m in _POINTS.finditer(line) if not _NOT_POINTS.search(line[: m.start()])),
            None,
        )
        if points is None:
            cid = matcher.match(line)
            if cid is not None and (pending is None or _is_header_like(raw, line)):
                pending = cid
            continue
        head = line[: points.start()]
        cid = _head_criterion(head, matcher) or pending
        found = _leading_value(line[points.end() :])
        if cid is not None and found is not None:
            entries.append((cid, found[0]))
        pending = None
    return entries


def _head_criterion(head: str, matcher: _Matcher) -> str | None:
    """The criterion named before "Points earned" on the same line, label part first."""
    for separator in itertools.islice(_SEPARATOR.finditer(head), _MAX_SEPARATORS):
        cid = matcher.match(head[: separator.start()])
        if cid is not None:
            return cid
    return matcher.match(head)


def _is_header_like(raw: str, line: str) -> bool:
    return bool(_HEADER_LIKE.match(raw)) or line.endswith(":") or len(line) <= 60
