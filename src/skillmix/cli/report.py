"""`skillmix report`, `runs`, `show`, `export`, `html`, `leaderboard` and `compare`: thin
shells over `skillmix.report` and `skillmix.export`; they only read the store."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click
from rich.text import Text

from skillmix.cli._common import (
    DEFAULT_OUT,
    UserError,
    aggregation_option,
    console,
    err_console,
    open_store,
    settings_options,
    store_option,
)
from skillmix.terminal import escaped, plain

if TYPE_CHECKING:
    from skillmix.scoring.metrics import Aggregation, Interval
    from skillmix.store import Store

NO_RUNS_HINT = "point --store (or SKILLMIX_STORE) at the store that holds your runs"


def _latest_run(store: Store) -> str:
    from skillmix.store import EVALUATION

    runs = store.list_runs(EVALUATION)
    if not runs:
        raise UserError(f"no runs in {store.location}; start one with `skillmix run`")
    return str(runs[-1]["id"])


@click.command()
@click.argument("run_id", required=False)
@store_option
@aggregation_option
@click.option("--out", default=DEFAULT_OUT, show_default=True, help="Folder for report files.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@settings_options
@click.option("--html", "html_path", help="Also copy the HTML report (report.html) here.")
def report(
    run_id: str | None,
    store_path: str,
    aggregation: str,
    out: str,
    as_json: bool,
    settings_file: str | None,
    pricing: str | None,
    html_path: str | None,
) -> None:
    """Metrics of a stored run (the latest by default), as a table and JSON/CSV files.

    RUN_ID is a run id from `skillmix runs`, or any unique start of one (`run-3f`).
    The files go to OUT/RUN_ID: metrics.json, metrics.csv, items.csv (every item id, for
    `skillmix show`), by_skill/by_category/by_topic.csv and report.html, one
    self-contained page (plots, heatmaps, every item); --html copies that page elsewhere.
    For several runs side by side use `skillmix html RUN...`.

    For a run made by `skillmix import reference`, also where the original scripts'
    points and ours disagree (per criterion, by cause, examples) and both sides' metrics.
    """
    from skillmix.models import load_settings
    from skillmix.report import build_report, render_report, write_report

    store = open_store(store_path, read_only=True)
    settings = load_settings(settings_file, pricing)
    rep = build_report(
        store, run_id or _latest_run(store), cast("Aggregation", aggregation), settings=settings
    )
    paths = write_report(rep, Path(out) / rep.run_id, store)
    if html_path:
        Path(html_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths[-1], html_path)
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
    else:
        render_report(rep, console)
        err_console.print(f"report files: {escaped(paths[0].parent)}/", highlight=False)
    err_console.print(f"HTML report: {escaped(html_path or paths[-1])}", highlight=False)


@click.command()
@store_option
def runs(store_path: str) -> None:
    """List the runs in a store, oldest first.

    A run's id, or any unique start of it, names it in `report`, `show --run`, `html`,
    `leaderboard`, `compare` and `export`. A run whose process was killed is shown as
    interrupted: re-run its command to resume it.
    """
    from skillmix.report.terminal import render_runs

    store = open_store(store_path, read_only=True)
    runs = store.list_runs()
    if not runs:
        console.print(
            f"no runs in {escaped(store.location)} yet; start one with `skillmix run`",
            highlight=False,
        )
        return
    render_runs(runs, console)


@click.command()
@click.argument("item_id")
@click.option(
    "--run",
    "run_id",
    help="Run id or any unique start of one (default: the latest run holding the item).",
)
@store_option
def show(item_id: str, run_id: str | None, store_path: str) -> None:
    """Everything about one item: prompts, both turns, the extracted answer, every verdict.

    ITEM_ID is an id such as k2-b4941885ef: `skillmix report` lists a few, and items.csv
    and report.html in the report folder list them all.
    """
    from skillmix.report.item import render_item

    store = open_store(store_path, read_only=True)
    render_item(store, item_id, run_id, console)


@click.command()
@click.argument("run_ids", nargs=-1)
@store_option
@click.option("--out", "out_path", required=True, help="File to write: .jsonl, .csv or .parquet.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "parquet"]),
    help="Format (default: from the file suffix).",
)
def export(run_ids: tuple[str, ...], store_path: str, out_path: str, fmt: str | None) -> None:
    """Export runs (default: all) with one row per item x round x judge x grading round.

    JSONL and Parquet keep every text exactly. In CSV, a cell starting with = + - @, a tab
    or a carriage return gets a leading ' so spreadsheets show it instead of running it.
    """
    from skillmix.export import export_format, export_run
    from skillmix.store import EVALUATION

    export_format(out_path, fmt)  # a wrong format is named before the store is looked for
    store = open_store(store_path, read_only=True)
    ids = [store.get_run(r)["id"] for r in run_ids] or [
        r["id"] for r in store.list_runs(EVALUATION)
    ]
    if not ids:
        raise UserError(f"no runs in {store.location}: nothing to export", hint=NO_RUNS_HINT)
    n = export_run(store, ids, out_path, fmt)
    console.print(
        f"wrote {n:,} rows from {len(ids)} run(s) to {escaped(out_path)}", highlight=False
    )


def _open(store_path: str, run_ids: Sequence[str], *, need: int = 1) -> tuple[Store, list[str]]:
    """The store and the run ids asked for (all runs when none are given), checked."""
    from skillmix.store import EVALUATION

    store = open_store(store_path, read_only=True)
    if not run_ids:
        run_ids = [r["id"] for r in store.list_runs(EVALUATION)]
    ids = [store.get_run(rid)["id"] for rid in run_ids]
    if len(ids) < need:
        raise UserError(
            f"{store.location} holds {len(ids)} run(s), {need} needed; "
            "start one with `skillmix run`"
        )
    unique = list(dict.fromkeys(ids))
    if len(unique) < need:
        given = ", ".join(run_ids)
        raise UserError(f"the runs given ({given}) are all {unique[0]}: give {need} different runs")
    return store, unique


def _fmt(iv: Interval) -> str:
    return "—" if iv.n == 0 else f"{iv.mean:.2f} [{iv.low:.2f},{iv.high:.2f}]"


@click.command("html")
@click.argument("run_ids", nargs=-1)
@store_option
@click.option(
    "--out", "out_path", default="report.html", show_default=True, help="The HTML file to write."
)
@aggregation_option
@settings_options
def html(
    run_ids: tuple[str, ...],
    store_path: str,
    out_path: str,
    aggregation: str,
    settings_file: str | None,
    pricing: str | None,
) -> None:
    """Write one self-contained HTML report of RUN_IDs (default: every run in the store).

    A RUN_ID is an id from `skillmix runs` or any unique start of one.

    The file opens from disk with no network access: plots, leaderboard, warnings and
    every item with both turns and every verdict. No model is called.
    """
    from skillmix.models.settings import load_settings
    from skillmix.report.html import render_html

    store, ids = _open(store_path, run_ids)
    settings = load_settings(settings_file, pricing)
    path = render_html(store, ids, out_path, cast("Aggregation", aggregation), settings=settings)
    console.print(
        f"wrote {escaped(path)} ({path.stat().st_size / 1e6:.2f} MB, {len(ids)} run(s))",
        highlight=False,
    )


@click.command("leaderboard")
@click.argument("run_ids", nargs=-1)
@store_option
@aggregation_option
@click.option("--json", "as_json", is_flag=True, help="Print the leaderboard as JSON.")
def leaderboard(run_ids: tuple[str, ...], store_path: str, aggregation: str, as_json: bool) -> None:
    """Rank runs per k and judge; flag runs that were not measured the same way.

    RUN_IDs (default: every run in the store) are ids from `skillmix runs` or any unique
    start of one. Model names are shortened; their endpoints are listed below the table.
    """
    from rich.panel import Panel

    from skillmix.report.compare import leaderboard as build_leaderboard
    from skillmix.report.explain import legend
    from skillmix.report.layout import Column, print_records
    from skillmix.report.names import ModelNames
    from skillmix.scoring.metrics import METRICS

    store, ids = _open(store_path, run_ids)
    board = build_leaderboard(store, ids, cast("Aggregation", aggregation))
    if as_json:
        click.echo(json.dumps(board.to_dict(), indent=2))
        return
    names = ModelNames(spec for row in board.rows for spec in (row.student, row.judge))
    print_records(
        console,
        [
            Column("k", justify="right"),
            Column("student"),
            Column("judge"),
            Column("n", justify="right", key="items scored"),
            *(Column(m.replace("_", " "), justify="right", wrap=True) for m in METRICS),
            Column("run", wrap=True),
            Column("setup", wrap=True),
            Column("!", wrap=True, key="not comparable in"),
        ],
        (
            [
                str(row.k),
                names(row.student),
                names(row.judge),
                f"{row.scored}/{row.items}",
                *(_fmt(row.metrics[m]) for m in METRICS),
                _run_cell(row.run_id, row.status),
                f"{row.catalog_hash[:12]} / {row.template_version} / {row.protocol}",
                plain(", ".join(row.differs_in), style="red"),
            ]
            for row in board.rows
        ),
        title=f"leaderboard ({len(ids)} runs, aggregation {aggregation})",
        caption="mean over items [95% bootstrap interval]; n = items scored/sampled; "
        "setup = catalog / templates / protocol; ! = not comparable",
        footnotes=names.footnotes(),
    )
    for problem in board.problems:
        console.print(Panel(plain(problem), title="not comparable", border_style="red"))
    console.print(plain(legend(aggregation), style="dim"))


def _run_cell(run_id: str, status: str) -> Text:
    """A run id, with its status when it did not finish (`run-1 interrupted`)."""
    cell = plain(run_id)
    if status != "done":
        cell.append(f" {status}", style="yellow")
    return cell


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--judge", help="Compare by this judge's verdicts (default: every shared judge).")
@store_option
@aggregation_option
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(
    run_a: str, run_b: str, judge: str | None, store_path: str, aggregation: str, as_json: bool
) -> None:
    """Paired difference RUN_A - RUN_B on the items both scored, per k and metric.

    RUN_A and RUN_B are ids from `skillmix runs` or any unique start of one.
    """
    from rich.panel import Panel

    from skillmix.report.compare import comparability_problems, paired_comparison
    from skillmix.report.layout import Column, print_records
    from skillmix.report.names import ModelNames

    store, (id_a, id_b) = _open(store_path, (run_a, run_b), need=2)
    rows = paired_comparison(store, id_a, id_b, judge, cast("Aggregation", aggregation))
    problems = comparability_problems([store.get_run(id_a), store.get_run(id_b)])
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
    names = ModelNames(r.judge for r in rows)
    cells: list[list[str | Text]] = []
    for r in rows:
        d = r.difference
        style = "green" if d.low > 0 else "red" if d.high < 0 else ""
        cells.append(
            [
                names(r.judge),
                str(r.k),
                r.metric.replace("_", " "),
                str(r.shared),
                f"{r.mean_a:.2f}",
                f"{r.mean_b:.2f}",
                plain(f"{d.mean:+.2f} [{d.low:+.2f},{d.high:+.2f}]", style=style),
            ]
        )
    print_records(
        console,
        [
            Column("judge"),
            Column("k", justify="right"),
            Column("metric"),
            Column("shared items", justify="right", wrap=True),
            Column("a", justify="right"),
            Column("b", justify="right"),
            Column("a - b [95% interval]", justify="right", wrap=True),
        ],
        cells,
        title=f"a = {id_a}, b = {id_b}",
        caption="paired bootstrap over the items both runs scored",
        footnotes=names.footnotes(),
    )
    for problem in problems:
        console.print(Panel(plain(problem), title="not comparable", border_style="red"))
