"""Data for a page's script, as JSON that is safe inside its <script> element."""

from __future__ import annotations

import re
from typing import Any

import orjson
from markupsafe import Markup


def _plain(value: Any) -> Any:
    """What orjson cannot write itself: numpy scalars, as the Python numbers they hold."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def script_json(data: Any) -> Markup:
    """JSON that is safe inside <script type="application/json">: nothing in it can end
    the tag or start a comment, whatever the models wrote. NaN and infinities are written
    as null (JSON has no NaN; browsers refuse a bare `NaN`), by orjson itself."""
    return Markup(script_json_bytes(data).decode())


def script_json_bytes(data: Any) -> bytes:
    """`script_json` as UTF-8 bytes (what a process sends another, without a text copy)."""
    encoded = orjson.dumps(data, default=_plain, option=orjson.OPT_NON_STR_KEYS)
    # Replaced in the UTF-8 bytes (no byte of another character can match), several times
    # faster than in the decoded text of a large page: each ASCII character by a search
    # for one byte, the two line separators in one pass (a search for their common first
    # two bytes; two searches for three bytes took four times as long).
    for raw, escaped in _ASCII_ESCAPES:
        encoded = encoded.replace(raw, escaped)
    return _SEPARATORS.sub(_escape_separator, encoded)


_ASCII_ESCAPES = ((b"<", b"\\u003c"), (b">", b"\\u003e"), (b"&", b"\\u0026"))
_SEPARATORS = re.compile(rb"\xe2\x80[\xa8\xa9]")  # U+2028 and U+2029 in UTF-8
_ESCAPED_SEPARATORS = {"\u2028".encode(): b"\\u2028", "\u2029".encode(): b"\\u2029"}


def _escape_separator(match: re.Match[bytes]) -> bytes:
    return _ESCAPED_SEPARATORS[match.group()]
