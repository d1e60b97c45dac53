"""Text that SQLite can store: lone surrogates repaired, the original kept reversibly.

A model reply decoded from JSON may hold a lone surrogate ("\\ud800"), which no UTF-8
database can store. `repair_text` replaces each one with U+FFFD (a well-formed pair becomes
its character); `escape_text` writes the original with Python's backslash escapes, ASCII
only, and `unescape_text` gives back exactly what the model sent.
"""

from __future__ import annotations


def has_lone_surrogates(text: str) -> bool:
    """Whether `text` holds a code point that cannot be encoded as UTF-8 (U+D800 to
    U+DFFF, the only ones): asked by the UTF-8 encoder, several times faster than a
    search on text that is not ASCII, which is most of a run's (every write checks)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def repair_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD; other text is left as it is."""
    if not has_lone_surrogates(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def escape_text(text: str) -> str:
    """`text` in ASCII backslash escapes: `unescape_text(escape_text(t)) == t` for any `t`."""
    return text.encode("unicode_escape").decode("ascii")


def unescape_text(escaped: str) -> str:
    """The text `escape_text` was given."""
    return escaped.encode("ascii").decode("unicode_escape")
