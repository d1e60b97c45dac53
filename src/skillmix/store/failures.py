"""What a store that cannot be opened or written means for the user, in words they can act on.

SQLite reports a full disk as `SQLITE_FULL`, or as a plain `SQLITE_IOERR_WRITE` when the
write failed with `EFBIG` (a file-size limit) or part-way; `describe_failure` turns either
into "store: disk full at <path> (...)" and says how much space or which limit ran out.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from skillmix.errors import StoreError

try:  # POSIX only; elsewhere there is no file-size limit to name
    import resource
except ImportError:  # pragma: no cover
    resource = None  # type: ignore[assignment]

__all__ = [
    "StoreError",
    "StoreNotFound",
    "StoreWriteError",
    "WriteFailure",
    "describe_failure",
]

_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_LOW_SPACE_BYTES = 1 << 20


class StoreNotFound(StoreError):
    """A command that only reads a store was pointed at a path that holds none."""


@dataclass
class WriteFailure:
    """Why the store stopped taking writes, and what became of the writes it was given.

    One instance per store: the run's error message is written from it when printed, so it
    reports where the unsaved writes finally went (the side file, or nowhere).
    """

    path: Path | str  # the store's file, or a PostgreSQL store's URL (no password)
    problem: str  # "disk full", "read-only", ...
    detail: str = ""
    kept_rows: int = 0  # writes set aside in the side file
    kept_answers: int = 0  # of which model answers
    side_file: Path | None = None
    lost_answers: int = 0  # answers neither committed nor set aside
    lost_reason: str = ""

    def describe(self) -> str:
        text = f"store: {self.problem} at {self.path}"
        if self.detail:
            text += f" ({self.detail})"
        if self.kept_rows:
            kept = (
                f"the {self.kept_answers} answer(s) received since the last commit "
                f"({self.kept_rows} rows)"
                if self.kept_answers
                else f"the {self.kept_rows} rows not yet committed"
            )
            text += (
                f"; the run stopped and {kept} were written to {self.side_file}, which the "
                "next run stores before sending anything"
            )
        elif self.lost_answers:
            text += (
                f"; the run stopped and {self.lost_answers} answer(s) received since the last "
                f"commit could not be kept anywhere ({self.lost_reason}): they will be asked again"
            )
        return text


class StoreWriteError(StoreError):
    """The store cannot take a write (disk full, read-only, I/O error); nothing stored is lost."""

    hint = (
        "free some space (or fix the problem above) and re-run the same command: it resumes "
        "where this one stopped"
    )

    def __init__(self, failure: WriteFailure):
        super().__init__(failure.describe())
        self.failure = failure

    def __str__(self) -> str:
        return self.failure.describe()


def describe_failure(err: BaseException, path: Path) -> WriteFailure | None:
    """What `err`, raised by a read or write of the store at `path`, means for the user.

    None when it is not a problem of the store itself (a bug, or data SQLite refuses).
    """
    name = getattr(err, "sqlite_errorname", "") or ""
    code = err.errno if isinstance(err, OSError) else None
    if name == "SQLITE_FULL" or code in _FULL_ERRNOS:
        return WriteFailure(path, "disk full", _space_detail(path))
    if name.startswith("SQLITE_IOERR"):
        if _space_ran_out(path):
            return WriteFailure(path, "disk full", _space_detail(path))
        return WriteFailure(path, "cannot write", f"disk I/O error, {name}")
    if name.startswith("SQLITE_READONLY") or code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return WriteFailure(path, "read-only store", "it cannot be written here")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return WriteFailure(path, "store locked", "another process kept it locked for 30 s")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return WriteFailure(path, "damaged file", f"{err}; restore it from a copy")
    if name.startswith("SQLITE_CANTOPEN"):
        return WriteFailure(path, "cannot open store", str(err))
    if isinstance(err, sqlite3.OperationalError | OSError):  # locked, out of memory, ...
        return WriteFailure(path, "cannot write", str(err))
    return None


def _file_size_limit() -> int | None:
    if resource is None:  # pragma: no cover
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _store_files(path: Path) -> list[Path]:
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]


def _space_ran_out(path: Path) -> bool:
    limit = _file_size_limit()
    if limit is not None and any(_size(p) >= limit for p in _store_files(path)):
        return True
    free = _free_bytes(path)
    return free is not None and free < _LOW_SPACE_BYTES


def _space_detail(path: Path) -> str:
    limit = _file_size_limit()
    if limit is not None and any(_size(p) >= limit for p in _store_files(path)):
        return f"the file-size limit of {limit} bytes (ulimit -f) was reached"
    free = _free_bytes(path)
    return "" if free is None else f"{free / 1e6:.1f} MB free"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path.absolute().parent).free
    except OSError:
        return None
