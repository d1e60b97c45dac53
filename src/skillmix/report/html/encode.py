"""Data for a page's script, as JSON that is safe inside its <script> element."""

from __future__ import annotations

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
    # faster than in the decoded text of a large page.
    for raw, escaped in _SCRIPT_ESCAPES:
        encoded = encoded.replace(raw, escaped)
    return encoded


_SCRIPT_ESCAPES = tuple(
    (raw.encode(), escaped.encode())
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    )
)
