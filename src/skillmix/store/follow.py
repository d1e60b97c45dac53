"""A run's items, generations and grades, read while it runs, for a reader that wants them
all when it ends (the page worker of `skillmix run`).

SQLite numbers the rows of a table as they come (its rowid), and gives a row stored again
(`INSERT OR REPLACE`: a generation or grade written anew) a new number, larger than any
before it: a reader that remembers the last number it read can read only what is new,
and keep the newest row of each key. The store never deletes these rows, but a reader
does not rely on it: before it answers, it counts the run's rows and adds up their
numbers (one pass over an index per table), and reads the run whole if they are not
exactly those it holds. PostgreSQL does not number rows: there it reads the run whole
at the end, as `Store` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from skillmix.store.db import (
    Store,
    _records,
    current_grades,
    generation_row,
    grade_row,
    item_row,
)
from skillmix.store.rows import GenerationRow, GradeRow, ItemRow

# Per table: the columns that key a row within a run, and its order as `Store` reads it.
_KEYS = {
    "items": ("item_id",),
    "generations": ("item_id", "round"),
    "grades": ("item_id", "gen_round", "judge", "grade_round"),
}
_ORDER = {
    "items": ("k", "position"),
    "generations": ("item_id", "round"),
    "grades": ("item_id", "gen_round", "judge", "grade_round"),
}
_CONVERT: dict[str, Callable[[dict[str, Any]], Any]] = {
    "items": item_row,
    "generations": generation_row,
    "grades": grade_row,
}

RunTables = tuple[list[ItemRow], list[GenerationRow], list[GradeRow]]


class RunFollower:
    """The rows of one run, read a little at a time (see the module)."""

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        # Per table: the newest row of each key, with its row number.
        self._rows: dict[str, dict[tuple[Any, ...], tuple[int, dict[str, Any]]]] = {
            table: {} for table in _KEYS
        }
        self._last = dict.fromkeys(_KEYS, 0)

    @property
    def can_follow(self) -> bool:
        return self.store.db.dialect == "sqlite"

    def read(self) -> None:
        """Read the rows stored since the last read (nothing on PostgreSQL)."""
        if not self.can_follow:
            return
        for table, keys in _KEYS.items():
            rows = _records(
                self.store.db.execute(
                    f"SELECT rowid AS _row, * FROM {table} WHERE run_id = ? AND rowid > ? "
                    "ORDER BY rowid",
                    (self.run_id, self._last[table]),
                )
            )
            held, convert = self._rows[table], _CONVERT[table]
            for row in rows:
                number = row.pop("_row")
                held[tuple(row[k] for k in keys)] = (number, convert(row))
                self._last[table] = number

    def tables(self) -> RunTables:
        """The run's items, generations and grades now, as `Store.items`, `generations` and
        `grades(run_id, generations)` give them: what was followed, checked and completed,
        or (on PostgreSQL, or when the check fails) read whole."""
        self.read()
        if not self.can_follow or not self._complete():
            return self.store.run_tables(self.run_id)
        items, generations, grades = (self._sorted(table) for table in _KEYS)
        held = ((g["item_id"], g["round"], g["answer"]) for g in generations)
        return items, generations, current_grades(grades, held)

    def _sorted(self, table: str) -> list[Any]:
        order = _ORDER[table]
        rows = [row for _, row in self._rows[table].values()]
        rows.sort(key=lambda row: tuple(row[c] for c in order))
        return rows

    def _complete(self) -> bool:
        """Whether the rows held are exactly the run's: as many, with the same numbers."""
        for table, held in self._rows.items():
            count, total = self.store.db.execute(
                f"SELECT count(*), coalesce(sum(rowid), 0) FROM {table} WHERE run_id = ?",
                (self.run_id,),
            ).fetchone()
            if count != len(held) or total != sum(number for number, _ in held.values()):
                return False
        return True
