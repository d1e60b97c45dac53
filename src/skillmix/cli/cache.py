"""`skillmix cache ...`: the response cache shared by every run in a store."""

from __future__ import annotations

import click

from skillmix.cli._common import UserError, console, open_store, store_option
from skillmix.terminal import escaped, plain


@click.group()
def cache() -> None:
    """The response cache shared by every run in a store."""


@cache.command("stats")
@store_option
def cache_stats(store_path: str) -> None:
    """Cached answers per provider, model and role."""
    from rich.table import Table

    store = open_store(store_path, read_only=True)
    table = Table(
        "provider",
        "model",
        "role",
        "answers",
        "prompt tok",
        "completion tok",
        "MB",
        "unreferenced",
        title=f"response cache in {escaped(store.location)}",
    )
    for row in store.cache_stats():
        table.add_row(
            plain(row["provider"]),
            plain(row["model"]),
            plain(row["role"]),
            f"{row['calls']:,}",
            f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,}",
            f"{row['bytes'] / 1e6:.2f}",
            f"{row['unreferenced']:,}",
        )
    console.print(table)
    console.print(f"store size: {store.size_bytes() / 1e6:.2f} MB")


@cache.command("prune")
@store_option
@click.option("--older-than", type=float, help="Only answers older than this many days.")
@click.option("--model", help="Only answers of this model (name or provider:name).")
@click.option("--unreferenced", is_flag=True, help="Only answers no run has used.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
def cache_prune(
    store_path: str, older_than: float | None, model: str | None, unreferenced: bool, dry_run: bool
) -> None:
    """Delete cached answers (stored generations keep their turns unless --model names them)."""
    if older_than is None and model is None and not unreferenced:
        raise UserError("say what to prune: --older-than DAYS, --model NAME and/or --unreferenced")
    store = open_store(store_path)
    n = store.prune_cache(
        older_than_s=None if older_than is None else older_than * 86400,
        model=model,
        unreferenced_only=unreferenced,
        dry_run=dry_run,
    )
    console.print(f"{'would delete' if dry_run else 'deleted'} {n:,} cached answer(s)")
