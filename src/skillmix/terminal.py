"""Foreign text on the terminal: model output, catalog text, server replies, file contents.

Such text is never markup and never terminal control. `safe_text` removes escape
sequences and control characters (a model reply could otherwise move the cursor, retitle
the window or hide lines); `escaped` also escapes Rich markup, for foreign text placed
inside a markup string; `plain` is a Rich `Text` that is never parsed as markup, for
table cells and panels.
"""

from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Text

# ANSI escape sequences as terminals read them: CSI (ESC [ or 0x9b) ... final byte,
# OSC/DCS/APC/PM/SOS strings up to BEL or ST, and two-character ESC sequences.
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -~]?"
)
# Control characters other than newline and tab (C0, DEL, C1), and lone surrogates,
# which no terminal encoding can write.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def safe_text(text: object) -> str:
    """`text` without escape sequences and control characters; newlines and tabs kept.

    A carriage return before a newline is dropped, a lone one becomes a newline (so that
    it cannot overwrite what was printed); a lone surrogate becomes U+FFFD.
    """
    value = str(text).replace("\r\n", "\n").replace("\r", "\n")
    value = _ESCAPE_SEQUENCE.sub("", value)
    return _CONTROL.sub(_replacement, value)


def escaped(text: object) -> str:
    """`safe_text(text)` with Rich markup escaped: `f"[bold]{escaped(name)}[/]"`."""
    return escape(safe_text(text))


def plain(text: object, style: str = "") -> Text:
    """`safe_text(text)` as a Rich `Text`, which is printed as is (no markup)."""
    return Text(safe_text(text), style=style)


def _replacement(match: re.Match[str]) -> str:
    return "\ufffd" if "\ud800" <= match.group() <= "\udfff" else ""
