"""The checks every write makes on its text: which text SQLite cannot store, and its repair."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from skillmix.store.text import escape_text, has_lone_surrogates, repair_text, unescape_text

# Any code point, lone surrogates (category Cs, which `characters()` leaves out unless
# asked) included, mixed with ASCII so that the ASCII shortcut and the encoder both get
# their turn.
any_text = st.text(
    alphabet=st.characters() | st.characters(categories=["Cs"]) | st.sampled_from("ab \n")
)


@given(any_text)
def test_lone_surrogates_are_exactly_the_code_points_utf8_cannot_encode(text: str):
    assert has_lone_surrogates(text) == (re.search("[\ud800-\udfff]", text) is not None)
    repaired = repair_text(text)
    assert not has_lone_surrogates(repaired)
    repaired.encode("utf-8")  # what SQLite is given
    if not has_lone_surrogates(text):
        assert repaired is text
    assert unescape_text(escape_text(text)) == text


def test_each_kind_of_text_is_judged_right():
    assert not has_lone_surrogates("plain ASCII")
    assert not has_lone_surrogates("caf\u00e9, \u2026 and \U0001f600")  # beyond U+FFFF too
    assert has_lone_surrogates("caf\u00e9 \ud800")
    assert has_lone_surrogates("\udfff")
    assert repair_text("a\ud83d\ude00b\ud800") == "a\U0001f600b\ufffd"
