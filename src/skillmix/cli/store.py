"""`skillmix store ...`: the store itself (which database, what it holds) and copies between
stores (SQLite and PostgreSQL, either direction)."""

from __future__ import annotations

import click

from skillmix.cli._common import console, err_console, open_store, store_option
from skillmix.terminal import escaped


@click.group()
def store() -> None:
    """The run store: what it holds, and copies between stores (SQLite or PostgreSQL)."""


@store.command("info")
@store_option
def store_info(store_path: str) -> None:
    """Which database a store is, its schema version, size and row counts."""
    from rich.table import Table

    from skillmix.store.copy import TABLES

    opened = open_store(store_path, read_only=True)
    console.print(
        f"{escaped(opened.location)}: {opened.backend}, schema {opened.schema_version}, "
        f"{opened.size_bytes() / 1e6:.2f} MB"
    )
    table = Table("table", "rows")
    for name, _ in TABLES:
        count = opened.db.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0]
        table.add_row(name, f"{count:,}")
    console.print(table)


@store.command("copy")
@click.argument("source")
@click.argument("dest")
@click.option(
    "--run",
    "run_ids",
    multiple=True,
    help="Copy only this run (repeatable; a unique start of an id will do). Default: all.",
)
def store_copy(source: str, dest: str, run_ids: tuple[str, ...]) -> None:
    """Copy runs, the calls they used and human verdicts from SOURCE to DEST.

    Each is an SQLite file or a postgresql://user@host:port/db URL; DEST is created (and
    its schema brought up to date) when needed. Copying is idempotent: answers already in
    DEST stay as they are, every other row takes SOURCE's version, so copying twice
    changes nothing. The response cache of the copied runs goes with them, so a run can
    be resumed or re-scored on the other store without a model call.
    """
    from skillmix.store.copy import copy_store

    src = open_store(source, read_only=True)
    dst = open_store(dest)
    with err_console.status("copying ...") as status:
        result = copy_store(
            src,
            dst,
            run_ids,
            on_table=lambda table, rows: status.update(f"copied {table} ({rows:,} rows)"),
        )
    dst.close()
    src.close()
    parts = ", ".join(
        f"{table} {result.rows[table]:,} ({result.new[table]:,} new)"
        for table in result.rows
        if result.rows[table]
    )
    console.print(
        f"copied {len(result.runs)} run(s) from {escaped(src.location)} to "
        f"{escaped(dst.location)}: {parts or 'nothing to copy'}"
    )
