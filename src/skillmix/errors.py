"""One error model: a `SkillmixError` is a problem the user can fix; anything else is a bug.

Library code raises the subclass that fits where it knows what went wrong, with a message
that says what and where, and a hint that says what to do. The `skillmix` command catches
`SkillmixError` in one place, prints one line (and the hint) and exits with `exit_code`;
every other exception is a bug and keeps its traceback.

    SkillmixError            exit 1
    ├── InputError           a file, flag or setting is wrong (also a ValueError)
    ├── ModelError           a model could not answer (skillmix.models re-exports it)
    ├── StoreError           the run store cannot be read or written
    └── BudgetError          --max-cost was reached: paused, not failed (exit 3)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # pydantic is not needed to raise or catch these (`skillmix --help`)
    from pydantic import ValidationError


class SkillmixError(Exception):
    """A problem the user can fix: `str(err)` says what was wrong, `hint` what to do."""

    exit_code: ClassVar[int] = 1
    hint: str = ""

    def __init__(self, message: str = "", *, hint: str = ""):
        super().__init__(message)
        if hint:
            self.hint = hint


class InputError(SkillmixError, ValueError):
    """A file, flag or setting the user gave is wrong (unreadable, malformed, out of range)."""


class ModelError(SkillmixError, RuntimeError):
    """A model could not answer; `retryable` says whether trying again may help."""

    def __init__(self, message: str = "", *, retryable: bool = False, hint: str = ""):
        super().__init__(message, hint=hint)
        self.retryable = retryable


class StoreError(SkillmixError, RuntimeError):
    """The run store cannot be opened, read or written."""


class BudgetError(SkillmixError):
    """The spending limit was reached: the job is paused and a re-run continues it."""

    exit_code: ClassVar[int] = 3


# --- turning what libraries raise into one-line user errors ----------------------------------


def validation_message(
    err: ValidationError, where: str = "", names: Mapping[str, str] | None = None
) -> str:
    """A pydantic `ValidationError` as one line: each bad field, what is wrong, what was given.

    `where: temperature: should be greater than or equal to 0 (got -1.0); max_tokens: ...`
    `names` shows a field (dotted) as the user named it, e.g. `{"judges": "--judge"}`.
    """
    parts = []
    for error in err.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "value"
        field = (names or {}).get(field, field)
        message = " ".join(str(error["msg"]).split())
        message = message.removeprefix("Value error, ").replace("Input should", "should")
        # Our own validators describe the value themselves (and may redact it).
        quiet = error["type"] in ("missing", "extra_forbidden", "value_error", "assertion_error")
        shown = "" if quiet else _short(error.get("input"))
        parts.append(f"{field}: {message}{f' (got {shown})' if shown else ''}")
    prefix = f"{where}: " if where else ""
    return prefix + "; ".join(parts)


def invalid_settings(err: ValidationError, where: str = "invalid settings") -> InputError:
    """An `InputError` for a `ValidationError` raised by settings the user gave."""
    return InputError(validation_message(err, where))


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
