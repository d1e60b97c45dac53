"""`skillmix spread`: run the same items under N format variants and show the spread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from skillmix.cli._common import (
    DEFAULT_OUT,
    aggregation_option,
    console,
    err_console,
    print_usage,
    progress_bars,
    run_flags,
    run_job,
    run_options,
)
from skillmix.terminal import escaped

if TYPE_CHECKING:
    from skillmix.protocol.spread import SpreadResult
    from skillmix.scoring.spread import SpreadReport

METRIC_LABELS = {
    "full_marks": "full marks",
    "all_skills": "all skills",
    "skill_fraction": "skill frac.",
}


@click.command()
@run_options
@click.option(
    "--variants",
    "n_variants",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Format variants to run, the base template set first.",
)
@click.option(
    "--variant-seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed that draws the variants from the grammar of formatting choices.",
)
@click.option(
    "--student-variants",
    is_flag=True,
    help="Also vary the student's prompts (new answers, paid for); by default only the "
    "grading prompt varies and the student's answers are shared through the cache.",
)
@click.option(
    "--max-cost",
    type=float,
    help="Spend at most this many USD over the whole spread in this invocation; the spread "
    "pauses (exit 3) and re-running the command continues it.",
)
@click.option("--workers", type=int, help="Work units in flight (default: 2 x concurrency).")
@click.option("--out", default=DEFAULT_OUT, show_default=True, help="Folder for report files.")
@aggregation_option
@click.option(
    "--wait",
    is_flag=True,
    help="If another process is running one of the runs, wait for it instead of stopping.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the spread as JSON.")
def spread(
    n_variants: int,
    variant_seed: int,
    student_variants: bool,
    max_cost: float | None,
    workers: int | None,
    out: str,
    aggregation: str,
    wait: bool,
    as_json: bool,
    **opts: Any,
) -> None:
    """Run the same items under N format variants of the templates; show the spread.

    Variants are generated from a grammar of formatting choices (separators, casing,
    list markers, rubric layout, the judge's verdict format, the order of definitions
    and of skills), never paraphrased. Each variant is a run of its own in the store;
    variants that change only the grading prompt reuse the base run's answers through
    the cache. Prints each metric under every variant, its spread (max - min, with an
    interval over items) and the choice that moves it most, and writes the base run's
    report, whose HTML page has a Spread section.
    """
    from skillmix.models.retry import retry_status
    from skillmix.protocol.spread import prepare_spread
    from skillmix.report import build_report, write_report
    from skillmix.runtime.progress import ProgressBars
    from skillmix.scoring.metrics import Aggregation

    progress = progress_bars()
    prepared = prepare_spread(
        run_flags(opts),
        opts.get("config_file"),
        variants=n_variants,
        variant_seed=variant_seed,
        student_variants=student_variants,
        store=opts["store_path"],
        settings_file=opts.get("settings_file"),
        pricing=opts.get("pricing"),
        max_cost=max_cost,
        workers=workers,
        progress=ProgressBars(progress),
    )
    engines = prepared.engines
    progress.status = lambda: retry_status([m for e in engines for m in e.models])
    for engine in engines:
        engine.wait_for_lease = wait
        engine.on_lease_wait = lambda message: err_console.print(escaped(message), highlight=False)
    if prepared.store.replayed:
        err_console.print(
            f"stored {prepared.store.replayed} write(s) that an earlier run could not store "
            "(its side file)",
            highlight=False,
        )
    base = prepared.plan.configs[0]
    err_console.print(
        f"spread [bold]{prepared.plan.group}[/]: {len(engines)} variant(s) of templates "
        f"{escaped(base.templates)}, student {escaped(base.student)}, judge(s) "
        f"{escaped(', '.join(base.judges))}, k={list(base.k)}, {base.items} item(s) per k, "
        f"store {escaped(prepared.store.location)}",
        highlight=False,
    )
    result = run_job(prepared.run(), progress, lambda: prepared.stats)
    print_usage(result.stats, "this invocation")
    print_sharing(result)
    base_report = build_report(
        prepared.store,
        result.runs[0].run_id,
        cast("Aggregation", aggregation),
        settings=prepared.runs[0].settings,
    )
    report = base_report.spread  # the base run's report holds its spread
    if report is None:  # the base run is tagged with its spread: never reached
        raise RuntimeError(f"run {base_report.run_id} lost its spread tag")
    paths = write_report(base_report, Path(out) / base_report.run_id, prepared.store)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render_spread(report)
    err_console.print(f"HTML report: {escaped(paths[-1])}", highlight=False)


def print_sharing(result: SpreadResult) -> None:
    """One line: the student calls sent, and those answered from the store (shared)."""
    err_console.print(
        f"student calls: {result.student_sent} sent, {result.student_shared} answered from "
        "the store (shared between variants or with earlier runs)",
        highlight=False,
    )


def render_spread(report: SpreadReport) -> None:
    """The spread as tables: the variants, then per judge the metrics across them."""
    from rich.table import Table

    variants = Table(title=f"variants of {report.group}", title_justify="left")
    variants.add_column("#")
    variants.add_column("variant (choices that differ from the base)", overflow="fold")
    variants.add_column("run", no_wrap=True)
    variants.add_column("student calls")
    variants.add_column("unparsed")
    for v in report.variants:
        variants.add_row(
            str(v.index),
            escaped(v.variant),
            v.run_id,
            f"{v.student_sent} sent, {v.student_reused} reused",
            f"{v.unparsed_rounds} of {v.grade_rounds}",
        )
    console.print(variants)
    judges = list(dict.fromkeys(r.judge for r in report.rows))
    for judge in judges:
        rows = [r for r in report.rows if r.judge == judge]
        indices = rows[0].indices if rows else []
        table = Table(
            "k",
            "metric",
            *(f"#{i}" for i in indices),
            "spread [95% CI]",
            "noise",
            "moves it most",
            title=f"judge {escaped(judge)}: each metric under each variant",
            title_justify="left",
        )
        for r in rows:
            top = r.top
            table.add_row(
                str(r.k),
                METRIC_LABELS.get(r.metric, r.metric),
                *(f"{v:.2f}" for v in r.values),
                f"{r.spread.value:.2f} [{r.spread.low:.2f}, {r.spread.high:.2f}]",
                f"{r.noise:.2f}",
                escaped(top.describe()) if top else "—",
            )
        console.print(table)
    for note in report.notes:
        console.print(f"note: {escaped(note)}", highlight=False)
