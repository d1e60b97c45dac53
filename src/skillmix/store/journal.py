"""The side file: writes the store could not commit, kept until the next writer stores them.

When a group commit fails (a full disk), the run stops and its uncommitted writes (model
answers that were paid for, ledger rows, generations, grades) are appended to
`<store>.pending.jsonl`, one JSON object per line, and fsynced. The next process that opens
the store for writing replays them in one transaction before doing anything else, then
deletes the file. Every write is an upsert, so replaying twice changes nothing.

Appends and the replay hold an exclusive `flock` on the file and check that the path still
names the file they locked, so a replay that deletes the file never loses an append that
was waiting for the lock.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

Write = tuple[str, tuple[Any, ...]]

SUFFIX = ".pending.jsonl"


def side_file(store_path: Path) -> Path:
    """Where the writes a store could not take are kept."""
    return store_path.with_name(store_path.name + SUFFIX)


def append_writes(path: Path, writes: list[Write]) -> None:
    """Append `writes` to the side file at `path` and fsync it; all or nothing (OSError)."""
    data = "".join(
        json.dumps({"sql": sql, "params": list(params)}) + "\n" for sql, params in writes
    ).encode()
    with _locked(path, os.O_RDWR | os.O_APPEND | os.O_CREAT) as fd:
        assert fd is not None
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            data = b"\n" + data  # a torn last line (a crash mid-append) stays on its own
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, start)
            raise
    _fsync_dir(path.parent)


def read_writes(path: Path) -> tuple[list[Write], int]:
    """The writes in a side file, and how many of its lines could not be read."""
    writes: list[Write] = []
    unreadable = 0
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            writes.append((_checked_sql(entry["sql"]), tuple(entry["params"])))
        except (ValueError, KeyError, TypeError):
            unreadable += 1
    return writes, unreadable


@contextmanager
def taken(path: Path) -> Iterator[tuple[list[Write], int]]:
    """Hold the side file while its writes are stored; delete it when the block succeeds.

    Yields ([], 0) when there is no side file. If the block raises, the file stays.
    """
    with _locked(path, os.O_RDWR) as fd:
        if fd is None:
            yield [], 0
            return
        yield read_writes(path)
        path.unlink()
    _fsync_dir(path.parent)


def _checked_sql(sql: Any) -> str:
    """Only the upserts the store itself issues are replayed from a side file."""
    if not isinstance(sql, str) or not sql.startswith("INSERT ") or ";" in sql:
        raise ValueError(f"not a store write: {sql!r:.60}")
    return sql


@contextmanager
def _locked(path: Path, flags: int) -> Iterator[int | None]:
    """An fd of `path` under an exclusive lock, or None when there is no such file."""
    while True:
        try:
            fd = os.open(path, flags, 0o644)
        except FileNotFoundError:
            yield None
            return
        try:
            _lock(fd)
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:  # else a replay deleted it while we waited: open the new one
                yield fd
                return
        finally:
            os.close(fd)


def _lock(fd: int) -> None:
    if sys.platform != "win32":
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


def _fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
