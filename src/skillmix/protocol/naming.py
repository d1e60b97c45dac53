"""The naming penalty: a skill whose name appears in the answer earns no point.

Matching is by whole words, case-insensitive, and aware of English inflection and
derivation ("metaphor" is named by "Metaphors", "metaphorical" and "metaphorically";
"irony" by "ironic"; "hyperbole" by "hyperbolic"), but never by raw substrings ("pun" is
not named by "punch", "spun" or "puny"). Derived forms come from a whitelist of suffixes
applied to the last word of the name; the other words must appear as they are, separated
by spaces or hyphens ("red-herring", "ad-hominem").

`substring_naming` is the published scripts' cruder test, for `--protocol paper`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property, lru_cache

from skillmix.catalog.model import Skill

# Suffixes a word of five letters or more may take as it stands.
_SUFFIXES = (
    "s", "es", "al", "ally", "ic", "ics", "ical", "ically", "ly", "ed", "ing", "er", "ers",
    "ism", "isms", "ist", "ists", "istic", "ize", "izes", "ized", "izing", "ise", "ises",
    "ised", "ising", "ous", "ously", "y",
)  # fmt: skip
# Short words ("pun", "wit", "tone") take only plain inflections: "pun" + "y" is "puny"
# and "pun" + "ic" is "Punic", neither of which names the skill.
_SHORT_SUFFIXES = ("s", "es")
_SHORT_WORD = 4
# Suffixes after a final "e" is dropped: hyperbole -> hyperbolic, satire -> satirist.
_E_DROP_SUFFIXES = (
    "ic", "ical", "ically", "ics", "ing", "ed", "er", "ers", "ism", "ist", "ists", "istic",
    "ous", "ation", "ations", "ize", "ized", "izes", "izing",
)  # fmt: skip
# Suffixes after a final consonant + "y" becomes a stem: irony -> ironic, analogy -> analogous.
# The bare stem never matches ("iron" does not name irony), and neither do verb endings
# ("ironed", "ironing").
_Y_STEM_SUFFIXES = (
    "ic", "ical", "ically", "ics", "ous", "ously", "ious", "ist", "ists", "al", "ally",
)  # fmt: skip
_I_STEM_SUFFIXES = ("es", "ed")
_VOWELS = frozenset("aeiou")

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def find_named_skill(answer: str, surface_forms: Sequence[str]) -> str | None:
    """The text in `answer` that names the skill by one of its surface forms, if any.

    Returns the earliest match (the longest one on a tie), exactly as written in the
    answer, or None when no surface form is named.
    """
    best: re.Match[str] | None = None
    for form in surface_forms:
        for variant in _variants(form):
            if variant.needle is not None and not variant.needle.search(answer):
                continue  # cannot match: its pattern is not even compiled
            match = variant.pattern.search(answer) if variant.pattern else None
            if match and (
                best is None
                or match.start() < best.start()
                or (match.start() == best.start() and match.end() > best.end())
            ):
                best = match
    return best.group(0) if best else None


def naming_penalty(answer: str, skills: Sequence[Skill]) -> dict[str, str]:
    """Skill id -> the text that names it, for every skill the answer names."""
    named: dict[str, str] = {}
    for skill in skills:
        match = find_named_skill(answer, skill.surface_forms)
        if match is not None:
            named[skill.id] = match
    return named


def substring_naming(answer: str, skills: Sequence[Skill]) -> dict[str, str]:
    """The published scripts' naming test (`--protocol paper`): skill id -> the text that
    names it, where a skill is named when its name, cut at its first "(" and lower-cased,
    occurs anywhere in the lower-cased answer, as a raw substring ("pun" in "punch")."""
    named: dict[str, str] = {}
    lowered = answer.lower()
    for skill in skills:
        stem = skill.name.split("(")[0].strip().lower()
        at = lowered.find(stem) if stem else -1
        if at >= 0:
            named[skill.id] = answer[at : at + len(stem)]
    return named


class _Variant:
    """A surface form as matched: its pattern, compiled on first use, and a needle.

    Every match of the pattern contains the needle (matched the same way, ignoring case):
    the first word as written when the form has several, else the start that all forms of
    its last word share ("iron" for irony, ironic, ironies). A pattern takes about a
    millisecond to compile, and a run's answers name few of its skills: an answer without
    the needle is passed over without compiling the pattern at all.
    """

    def __init__(self, form: str):
        self.form = form
        words = _words(form)
        first = words[0] if words else ""
        if len(words) == 1 and _inflected(first):
            start = _shared_start(_inflections(first.lower()))
        else:
            start = re.split(r"['’]", first)[0]
        self.needle = re.compile(re.escape(start), re.IGNORECASE) if start else None

    @cached_property
    def pattern(self) -> re.Pattern[str] | None:
        return _compile(self.form)


@lru_cache(maxsize=4096)
def _variants(form: str) -> tuple[_Variant, ...]:
    """A surface form, and the form without a parenthetical part."""
    variants = [form]
    without_parenthesis = re.sub(r"\s*\([^)]*\)\s*", " ", form).strip()
    if without_parenthesis and without_parenthesis != form.strip():
        variants.append(without_parenthesis)
    return tuple(_Variant(v) for v in variants)


def _words(form: str) -> list[str]:
    return [w for w in re.split(r"[\s\-‐‑–]+", form.strip()) if w]


def _shared_start(words: set[str]) -> str:
    """The longest start every one of `words` has."""
    low, high = min(words), max(words)
    n = 0
    while n < min(len(low), len(high)) and low[n] == high[n]:
        n += 1
    return low[:n]


def _inflected(word: str) -> bool:
    """Whether a last word is matched in its inflected forms (else as written)."""
    return bool(_WORD.fullmatch(word)) and "'" not in word and "’" not in word


def _compile(form: str) -> re.Pattern[str] | None:
    words = _words(form)
    if not words:
        return None
    parts = [_literal(w) for w in words[:-1]]
    last = words[-1]
    if _inflected(last):
        forms = sorted(_inflections(last.lower()), key=len, reverse=True)
        parts.append("(?:" + "|".join(re.escape(f) for f in forms) + ")")
    else:
        parts.append(_literal(last))
    body = r"[\s\-‐‑–]+".join(parts)
    # Lookarounds instead of \b, so that forms starting or ending in punctuation work.
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])", re.IGNORECASE)


def _literal(word: str) -> str:
    """A word matched as written, with either apostrophe."""
    return "['’]".join(re.escape(piece) for piece in re.split(r"['’]", word))


def _inflections(word: str) -> set[str]:
    """The word and the inflected or derived forms that still name it."""
    forms = {word}
    if len(word) <= _SHORT_WORD:
        forms.update(word + s for s in _SHORT_SUFFIXES)
        if word.endswith("e"):
            forms.update({word + "d", word[:-1] + "ing"})
        elif _ends_consonant_vowel_consonant(word):
            # pun -> punned, punning, punny, punster
            doubled = word + word[-1]
            forms.update(doubled + s for s in ("ed", "ing", "y", "er", "ers", "ster", "sters"))
        return forms

    forms.update(word + s for s in _SUFFIXES)
    if word.endswith("e"):
        forms.update({word + "d", word + "r", word + "rs"})
        forms.update(word[:-1] + s for s in _E_DROP_SUFFIXES)
    if word.endswith("y") and word[-2] not in _VOWELS:
        forms.update(word[:-1] + s for s in _Y_STEM_SUFFIXES)
        forms.update(word[:-1] + "i" + s for s in _I_STEM_SUFFIXES)
    if word.endswith("sis"):
        # hypothesis -> hypotheses, hypothetical; ellipsis -> elliptical
        forms.add(word[:-2] + "es")
        forms.update(word[:-3] + "t" + s for s in ("ic", "ical", "ically"))
    if word.endswith("sm"):
        # sarcasm -> sarcastic, euphemism -> euphemistic
        forms.update(word[:-1] + "t" + s for s in ("ic", "ical", "ically"))
    if word.endswith("ma"):
        # enigma -> enigmatic
        forms.update(word + "t" + s for s in ("ic", "ical", "ically"))
    if word.endswith("ication"):
        # personification -> personify, personified
        forms.update(word[:-7] + s for s in ("y", "ies", "ied", "ying"))
    elif word.endswith("ion"):
        # exaggeration -> exaggerate, exaggerated; alliteration -> alliterative
        forms.update(word[:-3] + s for s in ("e", "es", "ed", "ing", "ive", "ively"))
    if word.endswith("nce"):
        # dissonance -> dissonant
        forms.update(word[:-2] + s for s in ("t", "tly"))
    if word.endswith("ity"):
        # ambiguity -> ambiguous
        forms.update(word[:-3] + s for s in ("ous", "ously"))
    return forms


def _ends_consonant_vowel_consonant(word: str) -> bool:
    return (
        len(word) >= 3
        and word[-1] not in _VOWELS | {"w", "x", "y"}
        and word[-2] in _VOWELS
        and word[-3] not in _VOWELS
    )
