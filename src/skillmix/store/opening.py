"""Opening a store: SQLite files (created, read-only, on read-only media) and PostgreSQL
databases, with the errors that say what to do when one cannot be opened."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

from skillmix.store.backend import PostgresDatabase, masked
from skillmix.store.failures import (
    StoreError,
    StoreNotFound,
    StoreWriteError,
    describe_failure,
)
from skillmix.store.schema import check_version

# How long a locked SQLite store is waited for (SQLite's busy timeout, and opening a store
# that another process is creating at the same moment).
OPEN_WAIT_S = 30.0


def connect_sqlite(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    return sqlite3.connect(
        str(path), isolation_level=None, timeout=OPEN_WAIT_S, check_same_thread=check_same_thread
    )


def locked(err: Exception) -> bool:
    """Whether `err` (or the SQLite error behind a `StoreWriteError`) is SQLite's "busy"."""
    cause = err.__cause__ if isinstance(err, StoreWriteError) else err
    name = getattr(cause, "sqlite_errorname", "")
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def open_postgres(url: str, *, read_only: bool) -> PostgresDatabase:
    """A connection to the PostgreSQL store at `url`; reading needs its tables there."""
    db = PostgresDatabase(url)
    if read_only:
        found = db.execute("SELECT to_regclass('runs')").fetchone()[0]
        if found is None:
            db.close()
            raise StoreNotFound(
                f"no skillmix store in the PostgreSQL database {masked(url)} (it has no "
                "runs table)",
                hint="check the database name, or write to it first (skillmix run --store URL)",
            )
        check_version(db, masked(url))
    return db


def side_base(url: str) -> Path:
    """Where this machine keeps the side file of the PostgreSQL store at `url` (writes the
    server could not take), under the user's cache folder, one per server and database."""
    parts = urlsplit(url)
    name = f"{parts.hostname or 'local'}-{parts.port or 5432}-{parts.path.strip('/') or 'db'}"
    digest = hashlib.sha256(masked(url).encode()).hexdigest()[:12]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "skillmix"
    return base / f"postgresql-{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}-{digest}"


def open_error(err: sqlite3.Error, path: Path) -> StoreError:
    """Why a store could not be opened, without calling a store we cannot read a non-store."""
    if isinstance(err, sqlite3.DatabaseError) and getattr(err, "sqlite_errorname", "") in (
        "SQLITE_NOTADB",
        "SQLITE_CORRUPT",
    ):
        return StoreError(
            f"{path} is not a skillmix store: {err}",
            hint="pass --store (or set SKILLMIX_STORE) to the .sqlite file a run wrote",
        )
    failure = describe_failure(err, path)
    if failure is None:
        return StoreError(f"cannot open the store {path}: {err}")
    if failure.problem == "read-only store" or not writable(path):
        return read_only_error(path)
    return StoreWriteError(failure)


def writable(path: Path) -> bool:
    """Whether the store file and its folder (for the write-ahead log) can be written."""
    return os.access(path, os.W_OK) and os.access(path.absolute().parent, os.W_OK)


def read_only_error(path: Path) -> StoreError:
    return StoreError(
        f"the store {path} is read-only: it can be read (runs, report, show, export) "
        "but not written",
        hint="copy it somewhere writable and pass --store (or SKILLMIX_STORE) to the copy",
    )


def connect_read_only(path: Path) -> sqlite3.Connection:
    """Open an existing store for reading; never creates anything, works on read-only media.

    A store that could be written is opened as usual (`mode=rw`, which never creates a file),
    so closing it cleans up its write-ahead log as every writer does. Otherwise `mode=ro`
    reads the store and its log, but needs its `-shm` file or a writable folder; on a
    read-only mount without them, `immutable=1` reads the file alone (a read-only mount
    cannot be written under us, and a clean close leaves no log behind).
    """
    if not path.is_file():
        where = path.absolute()
        raise StoreNotFound(
            f"no skillmix store at {where}"
            + ("" if where.parent.is_dir() else f" (the folder {where.parent} does not exist)"),
            hint="pass --store PATH or set SKILLMIX_STORE to the .sqlite file a run wrote",
        )
    uri = path.absolute().as_uri()
    last: sqlite3.Error | None = None
    for query in ("mode=rw", "mode=ro", "immutable=1")[0 if writable(path) else 1 :]:
        try:
            db = sqlite3.connect(f"{uri}?{query}", uri=True, isolation_level=None)
        except sqlite3.Error as err:
            last = err
            continue
        db.row_factory = sqlite3.Row
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
            check_version(db, path)
        except sqlite3.OperationalError as err:  # cannot open the -shm: try the next way
            db.close()
            last = err
            continue
        except sqlite3.DatabaseError as err:
            db.close()
            raise open_error(err, path) from err
        except StoreError:
            db.close()
            raise
        if "runs" not in tables:
            db.close()
            raise StoreError(
                f"{path} is an SQLite database but not a skillmix store (it has no runs table)",
                hint="pass --store (or set SKILLMIX_STORE) to the .sqlite file a run wrote",
            )
        return db
    assert last is not None
    raise StoreError(f"cannot read the store {path}: {last}") from last
