"""`skillmix store copy SRC DST`: runs, their calls and human verdicts from one store to
another, SQLite or PostgreSQL in either direction.

A copy is idempotent: content-addressed rows (catalogs, calls) are inserted when missing
(the first answer stored for a request stays the one that counts, as in a run), and every
other row replaces the destination's row with the same key, so copying again changes
nothing and copying a run that went on in the source brings the destination up to date.
Rows are streamed table by table in batches, so a large store never sits in memory.
Leases are not copied: they belong to the processes of the source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from skillmix.store.db import Store
from skillmix.store.failures import StoreError

BATCH = 1000

# In dependency order. Content-addressed tables keep the destination's row; the others
# take the source's.
TABLES: tuple[tuple[str, bool], ...] = (
    ("catalogs", True),
    ("runs", False),
    ("items", False),
    ("calls", True),
    ("run_calls", False),
    ("generations", False),
    ("grades", False),
    ("human_verdicts", False),
    ("reference_points", False),
    ("records", False),
)


@dataclass
class CopyResult:
    runs: list[str]
    rows: dict[str, int] = field(default_factory=dict)  # rows read from the source
    new: dict[str, int] = field(default_factory=dict)  # rows the destination did not have

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def copy_store(
    source: Store,
    dest: Store,
    run_ids: Sequence[str] = (),
    *,
    on_table: Callable[[str, int], None] | None = None,
) -> CopyResult:
    """Copy `run_ids` (every run when empty) with what they use from `source` to `dest`.

    `on_table(table, rows)` is told as each table is done (for progress).
    """
    if source.location == dest.location:
        raise StoreError(f"the source and the destination are the same store: {dest.location}")
    runs = [source.get_run(r)["id"] for r in run_ids] if run_ids else []
    result = CopyResult(runs=runs or [r["id"] for r in source.list_runs()])
    for table, content_addressed in TABLES:
        where, params = _selection(table, runs)
        before = _count(dest, table)
        read = 0
        batch: list[Any] = []
        columns: list[str] | None = None
        for row in source.db.stream(f"SELECT * FROM {table}{where}", params, BATCH):
            if columns is None:
                columns = _shared_columns(dest, table, list(row.keys()))
            batch.append(tuple(row[c] for c in columns))
            if len(batch) >= BATCH:
                _write(dest, table, columns, batch, content_addressed)
                read += len(batch)
                batch = []
        if batch and columns is not None:
            _write(dest, table, columns, batch, content_addressed)
            read += len(batch)
        result.rows[table] = read
        result.new[table] = _count(dest, table) - before
        if on_table is not None:
            on_table(table, read)
    return result


def _selection(table: str, runs: list[str]) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause that picks the rows of `runs` from `table` (all rows when empty)."""
    if not runs:
        return "", ()
    marks = ", ".join("?" for _ in runs)
    params = tuple(runs)
    if table == "catalogs":
        return f" WHERE hash IN (SELECT catalog_hash FROM runs WHERE id IN ({marks}))", params
    if table == "runs":
        return f" WHERE id IN ({marks})", params
    if table == "calls":
        return f" WHERE key IN (SELECT key FROM run_calls WHERE run_id IN ({marks}))", params
    return f" WHERE run_id IN ({marks})", params


def _shared_columns(dest: Store, table: str, columns: list[str]) -> list[str]:
    """The source's columns that the destination has (a store of an older schema may
    lack some; the destination is migrated on open, so normally all)."""
    have = set(_columns(dest, table))
    return [c for c in columns if c in have]


def _columns(store: Store, table: str) -> list[str]:
    if store.backend == "sqlite":
        return [row[1] for row in store.db.execute(f"PRAGMA table_info({table})")]
    return [
        row[0]
        for row in store.db.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
    ]


def _write(
    dest: Store, table: str, columns: list[str], rows: list[Any], content_addressed: bool
) -> None:
    verb = "INSERT OR IGNORE" if content_addressed else "INSERT OR REPLACE"
    marks = ", ".join("?" for _ in columns)
    sql = f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    dest._atomic(lambda: dest.db.executemany(sql, rows))


def _count(store: Store, table: str) -> int:
    return int(store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
