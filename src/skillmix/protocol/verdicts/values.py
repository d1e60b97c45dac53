"""Reading the value a judge gave one criterion: a number, a fraction, a word, a symbol
or a deduction, as the share of the criterion's point that was earned."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Refused:
    """A value is there but cannot be scored; `reason` says why."""

    reason: str


Value = float | Refused

UNCLEAR = Refused("value is not a clear number of points")
_NEGATIVE = Refused("negative value")

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
_WORD_VALUES: dict[str, Value] = {
    **dict.fromkeys(_YES_WORDS, 1),
    **dict.fromkeys(_NO_WORDS, 0),
    **dict.fromkeys(_UNCLEAR_WORDS, UNCLEAR),
}
SYMBOL_VALUES: dict[str, Value] = {
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
SYMBOL_VALUE = re.compile(
    "|".join(re.escape(s) for s in sorted(SYMBOL_VALUES, key=len, reverse=True))
)
_MINUS = "-−–"  # hyphen, minus sign, en dash: "-1", "−1", "–1"
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
NUMBER_VALUE = re.compile(
    rf"(?P<sign>[{_MINUS}](?=[\d.]))?\+?(?P<num>{_NUMBER})"
    rf"(?:\s*(?:/|out\s+of)\s*(?P<den>{_NUMBER}))?"
    r"(?P<unit>\s*(?:points?|pts?)(?![^\W_])\.?)?",
    re.IGNORECASE,
)
# A dash is noise before a value ("— 1 point") unless it is a minus sign glued to a number.
_LEADING_NOISE = re.compile(r"""^(?:[\s*_`"'“”‘’(:=|>→—]|[-–](?![\d.]))*""")
_TRAILING_NOISE = re.compile(r"""^[\s*_`"'“”‘’)\].,;!]*$""")
DEDUCTION_TEXT = re.compile(
    r"(?<![^\W_])(?:deduct\w*|penalt\w*|subtract\w*|points?\s+lost|lost\s+\d)", re.IGNORECASE
)
_DEDUCTION_NUMBER = re.compile(rf"[{_MINUS}]?(?P<num>{_NUMBER})")


def _tidy(value: float) -> float:
    """0 and 1 as ints, a fraction as a float."""
    return int(value) if float(value).is_integer() else value


def number_value(number: float, denominator: float | None = None) -> Value:
    """The share of the point earned: 1 for full marks, 0 for none, fractions kept."""
    if not math.isfinite(number):
        return UNCLEAR
    if number < 0:
        return _NEGATIVE
    if denominator is not None:
        if not math.isfinite(denominator) or denominator <= 0:
            return UNCLEAR
        number = number / denominator
    return _tidy(min(number, 1.0))


def deduction_value(deducted: float, maximum: float = 1.0) -> Value:
    """Points earned when `deducted` of `maximum` points were taken off."""
    deducted = abs(deducted)  # "-1" in a deductions column takes off one point
    if not (math.isfinite(deducted) and math.isfinite(maximum)) or maximum <= 0:
        return UNCLEAR
    if deducted > maximum:
        return Refused(f"{deducted:g} points deducted from at most {maximum:g}")
    return _tidy((maximum - deducted) / maximum)


def read_deduction(text: str, maximum: float = 1.0) -> Value | None:
    """The value of a text that states a deduction ("1", "1 point deducted", "-0.5").

    A deduction that is not a number ("none", "yes") is refused rather than guessed.
    """
    if not text.strip(" *_`|"):
        return None
    number = _DEDUCTION_NUMBER.search(text)
    if number is None:
        return Refused("a deduction that is not a number of points")
    return deduction_value(float(number.group("num")), maximum)


def leading_value(text: str) -> tuple[Value, int] | None:
    """The value at the start of `text` and where it ends, or None if there is none."""
    start = _LEADING_NOISE.match(text)
    at = start.end() if start else 0
    symbol = SYMBOL_VALUE.match(text, at)
    if symbol:
        return SYMBOL_VALUES[symbol.group()], symbol.end()
    word = _WORD_VALUE.match(text, at)
    if word:
        return _WORD_VALUES[word.group().lower()], word.end()
    number = NUMBER_VALUE.match(text, at)
    if number:
        rest = text[number.end() :].lstrip()
        # "10 bees are mentioned" is prose, not a score; "1 (yes)" and "1." are scores.
        if not number.group("unit") and rest[:1].isalpha():
            return None
        if number.group("sign"):
            return _NEGATIVE, number.end()
        den = number.group("den")
        value = number_value(float(number.group("num")), float(den) if den else None)
        return value, number.end()
    return None


def read_value(text: str) -> Value | None:
    """The value a text starts with; a text about a deduction is read as one."""
    if DEDUCTION_TEXT.search(text):
        return read_deduction(text)
    found = leading_value(text)
    return found[0] if found else None


def clean_value(text: str) -> Value | None:
    """The value when `text` is nothing but a value (a table cell like "1", "Yes", "✓")."""
    found = leading_value(text)
    if found and _TRAILING_NOISE.match(text[found[1] :]):
        return found[0]
    return None


_TRAILING_VALUE = re.compile(
    r"(?:(?P<cue>[(\[:=→]|(?<![^\W_])(?:so|thus|hence|therefore|score|points?|verdict|result"
    r"|earned))\s*[*_]*\s*|(?<=\s)|^)"
    r"(?P<value>(?:"
    + SYMBOL_VALUE.pattern
    + "|"
    + _WORD_VALUE.pattern
    + rf"|[{_MINUS}]?\d+(?:\.\d+)?(?:\s*(?:/|out\s+of)\s*\d+(?:\.\d+)?)?(?:\s*(?:points?|pts?))?))"
    r"[\s*_`)\].!]*$",
    re.IGNORECASE,
)
_SELF_EVIDENT = re.compile(r"/|out\s+of|\b(?:points?|pts?)$", re.IGNORECASE)


def trailing_value(text: str) -> Value | None:
    """A value that ends `text` after a cue: "..., so 1", "... (yes)", "... ✓", "... 1/1".

    A bare word or number at the end of a sentence ("... which is correct.") is prose.
    """
    match = _TRAILING_VALUE.search(text)
    if match is None:
        return None
    value_text = match.group("value")
    value = clean_value(value_text)
    if value is None:
        return None
    evident = SYMBOL_VALUE.fullmatch(value_text) or _SELF_EVIDENT.search(value_text)
    return value if match.group("cue") or evident else None
