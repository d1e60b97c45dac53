"""`skillmix html`, `skillmix leaderboard` and `skillmix compare`: thin shells over
`skillmix.report.html` and `skillmix.report.compare`.

`skillmix.cli` registers these commands, so this module must not import it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import click
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from skillmix.errors import InputError
from skillmix.metrics import METRICS, Aggregation, Interval
from skillmix.store import Store, StoreError
from skillmix.terminal import escaped, plain

console = Console()
err_console = Console(stderr=True)
# The same store as every other command: $SKILLMIX_STORE, else ./skillmix.sqlite.
DEFAULT_STORE = "skillmix.sqlite"
F = TypeVar("F", bound=Callable[..., Any])


class ReportCommandError(InputError):
    """A problem the user can fix; `skillmix.cli.main` prints it, like every SkillmixError."""


def _store_option(func: F) -> F:
    return click.option(
        "--store",
        "store_path",
        default=lambda: os.environ.get("SKILLMIX_STORE", DEFAULT_STORE),
        show_default=DEFAULT_STORE,
        help="SQLite run store (env SKILLMIX_STORE).",
    )(func)


def _aggregation_option(func: F) -> F:
    return click.option(
        "--aggregation",
        type=click.Choice(["max", "mean", "best"]),
        default="max",
        show_default=True,
        help="How an item's generation rounds combine (max is the published rule).",
    )(func)


def _open(store_path: str, run_ids: Sequence[str], *, need: int = 1) -> tuple[Store, list[str]]:
    """The store and the run ids asked for (all runs when none are given), checked."""
    try:
        store = Store(store_path)
        if not run_ids:
            run_ids = [r["id"] for r in store.list_runs()]
        ids = [store.get_run(rid)["id"] for rid in run_ids]
    except StoreError as err:
        raise ReportCommandError(str(err)) from err
    if len(ids) < need:
        raise ReportCommandError(
            f"{store.path} holds {len(ids)} run(s), {need} needed; start one with `skillmix run`"
        )
    return store, list(dict.fromkeys(ids))


def _fmt(iv: Interval) -> str:
    return "—" if iv.n == 0 else f"{iv.mean:.2f} [{iv.low:.2f},{iv.high:.2f}]"


@click.command("html")
@click.argument("run_ids", nargs=-1)
@_store_option
@click.option("--out", "out_path", default="report.html", show_default=True)
@_aggregation_option
@click.option(
    "--settings",
    "settings_file",
    type=click.Path(exists=True),
    help="Model settings and prices (default: ./skillmix.toml if present).",
)
@click.option("--pricing", type=click.Path(exists=True), help="Extra prices (TOML/YAML).")
def html(
    run_ids: tuple[str, ...],
    store_path: str,
    out_path: str,
    aggregation: str,
    settings_file: str | None,
    pricing: str | None,
) -> None:
    """Write one self-contained HTML report of RUN_IDs (default: every run in the store).

    The file opens from disk with no network access: plots, leaderboard, warnings and
    every item with both turns and every verdict. No model is called.
    """
    from skillmix.models.settings import SettingsError, load_settings
    from skillmix.report.html import render_html

    store, ids = _open(store_path, run_ids)
    try:
        settings = load_settings(settings_file, pricing)
        path = render_html(store, ids, out_path, cast(Aggregation, aggregation), settings=settings)
    except (StoreError, SettingsError, OSError) as err:
        raise ReportCommandError(str(err)) from err
    console.print(
        f"wrote {escaped(path)} ({path.stat().st_size / 1e6:.2f} MB, {len(ids)} run(s))",
        highlight=False,
    )


@click.command("leaderboard")
@click.argument("run_ids", nargs=-1)
@_store_option
@_aggregation_option
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard as JSON.")
def leaderboard(run_ids: tuple[str, ...], store_path: str, aggregation: str, as_json: bool) -> None:
    """Rank runs per k and judge; flag runs that were not measured the same way."""
    from skillmix.report.compare import display_model
    from skillmix.report.compare import leaderboard as build_leaderboard

    store, ids = _open(store_path, run_ids)
    try:
        board = build_leaderboard(store, ids, cast(Aggregation, aggregation))
    except StoreError as err:
        raise ReportCommandError(str(err)) from err
    if as_json:
        click.echo(json.dumps(board.to_dict(), indent=2))
        return
    table = Table(
        title=f"leaderboard ({len(ids)} runs, aggregation {aggregation})",
        title_justify="left",
        caption="mean over items [95% bootstrap interval]; ! = not comparable",
        caption_justify="left",
    )
    for column in ("k", "student", "judge", "n"):
        table.add_column(column, justify="right" if column in ("k", "n") else "left")
    for m in METRICS:
        table.add_column(m.replace("_", " "), justify="right", no_wrap=True)
    table.add_column("run")
    table.add_column("catalog / templates / protocol")
    table.add_column("!")
    for row in board.rows:
        table.add_row(
            str(row.k),
            plain(display_model(row.student)),
            plain(display_model(row.judge)),
            f"{row.scored}/{row.items}",
            *(_fmt(row.metrics[m]) for m in METRICS),
            plain(row.run_id),
            plain(f"{row.catalog_hash[:12]} / {row.template_version} / {row.protocol}"),
            plain(", ".join(row.differs_in), style="red"),
        )
    console.print(table)
    for problem in board.problems:
        console.print(Panel(plain(problem), title="not comparable", border_style="red"))


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--judge", help="Compare by this judge's verdicts (default: every shared judge).")
@_store_option
@_aggregation_option
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(
    run_a: str, run_b: str, judge: str | None, store_path: str, aggregation: str, as_json: bool
) -> None:
    """Paired difference RUN_A - RUN_B on the items both scored, per k and metric."""
    from skillmix.report.compare import (
        CompareError,
        comparability_problems,
        display_model,
        paired_comparison,
    )

    store, (id_a, id_b) = _open(store_path, (run_a, run_b), need=2)
    try:
        rows = paired_comparison(store, id_a, id_b, judge, cast(Aggregation, aggregation))
        problems = comparability_problems([store.get_run(id_a), store.get_run(id_b)])
    except (CompareError, StoreError) as err:
        raise ReportCommandError(str(err)) from err
    if as_json:
        payload = {
            "run_a": id_a,
            "run_b": id_b,
            "aggregation": aggregation,
            "problems": problems,
            "rows": [r.to_dict() for r in rows],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    table = Table(
        "judge",
        "k",
        "metric",
        "shared items",
        "a",
        "b",
        "a - b [95% interval]",
        title=f"a = {escaped(id_a)}, b = {escaped(id_b)}",
        title_justify="left",
        caption="paired bootstrap over the items both runs scored",
        caption_justify="left",
    )
    for r in rows:
        d = r.difference
        style = "green" if d.low > 0 else "red" if d.high < 0 else ""
        diff = f"{d.mean:+.2f} [{d.low:+.2f},{d.high:+.2f}]"
        table.add_row(
            plain(display_model(r.judge)),
            str(r.k),
            r.metric.replace("_", " "),
            str(r.shared),
            f"{r.mean_a:.2f}",
            f"{r.mean_b:.2f}",
            f"[{style}]{diff}[/]" if style else diff,
        )
    console.print(table)
    for problem in problems:
        console.print(Panel(plain(problem), title="not comparable", border_style="red"))
