"""`skillmix run` and `skillmix estimate`: run (or price) a Skill-Mix evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import click

from skillmix.cli._common import (
    DEFAULT_OUT,
    aggregation_option,
    allow_quick_exit,
    console,
    err_console,
    executor_options,
    prepare,
    print_run_estimate,
    print_usage,
    progress_bars,
    run_job,
    run_options,
)
from skillmix.cli._page_worker import page_worker
from skillmix.terminal import escaped

# What the report imports, loaded while the run waits for answers (`run_job`): its modules,
# numpy's submodules that numpy loads on first use, inside the skill analysis (numpy.ma, by
# np.quantile: about 70 ms; numpy.random), and the parser importlib.metadata reads the
# version in the page's footer with (email.parser: about 13 ms).
REPORT_MODULES = (
    "skillmix.report",
    "skillmix.report.html.page",
    "numpy.ma",
    "numpy.random",
    "email.parser",
)


@click.command()
@run_options
@executor_options
@click.option(
    "--max-cost",
    type=float,
    help="Spend at most this many USD in this invocation: a request is sent only if its "
    "worst case (prompt and max tokens at the model's price) still fits, else the run "
    "pauses (exit 3) and re-running the command continues it.",
)
@click.option("--workers", type=int, help="Work units in flight (default: 2 x concurrency).")
@click.option("--out", default=DEFAULT_OUT, show_default=True, help="Folder for report files.")
@aggregation_option
@click.option(
    "--wait",
    is_flag=True,
    help="If another process is running this run, wait for it instead of stopping.",
)
def run(
    max_cost: float | None,
    workers: int | None,
    out: str,
    aggregation: str,
    wait: bool,
    **opts: Any,
) -> None:
    """Run (or resume) a Skill-Mix evaluation and print its metrics.

    The same arguments give the same run: re-running resumes it and asks no model again
    for anything already answered, in this run or any other in the store.
    """
    from skillmix.models.retry import retry_status
    from skillmix.runtime.progress import ProgressBars

    prepared = prepare(opts, max_cost=max_cost, workers=workers)
    config, engine = prepared.config, prepared.engine
    progress = progress_bars()
    engine.progress = ProgressBars(progress)
    progress.status = lambda: retry_status(engine.models)
    engine.wait_for_lease = wait
    engine.on_lease_wait = lambda message: err_console.print(escaped(message), highlight=False)
    if engine.store.replayed:
        err_console.print(
            f"stored {engine.store.replayed} write(s) that an earlier run could not store "
            "(its side file)",
            highlight=False,
        )
    err_console.print(
        f"run [bold]{engine.run_id}[/]: student {escaped(config.student)}, judge(s) "
        f"{escaped(', '.join(config.judges))}, k={list(config.k)}, {config.items} item(s) "
        f"per k, catalog {engine.catalog.short_hash}, protocol {config.protocol}, templates "
        f"{escaped(engine.templates.version_id)}, store {escaped(engine.store.location)}",
        highlight=False,
    )
    records = len(config.k) * config.items * config.generation_rounds
    engine.store.keep_rows(engine.run_id)  # what the report reads is what the run writes
    with page_worker(records) as worker:  # the page's item data, on the other core
        if worker is not None:
            worker.follow(engine.store, engine.run_id)
        result = run_job(
            engine.run(), progress, lambda: engine.calls.stats, meanwhile=REPORT_MODULES
        )
        from skillmix.report import build_report, render_report, write_report
        from skillmix.report.names import short_model
        from skillmix.scoring.metrics import Aggregation

        if worker is not None:
            worker.ask(engine.store, result.run_id, aggregation, short_model(config.student))
        print_usage(result.stats, "this invocation")
        if result.retries:
            err_console.print(
                "retries: "
                + ", ".join(f"{cause} x{n}" for cause, n in sorted(result.retries.items())),
                highlight=False,
            )
        report = build_report(
            engine.store, result.run_id, cast(Aggregation, aggregation), settings=prepared.settings
        )
        try:  # the files, then the table (its skill analysis is done by then)
            paths = write_report(report, Path(out) / result.run_id, engine.store, worker)
        finally:
            render_report(report, console)
        if worker is not None and worker.failure:  # the page is whole all the same
            err_console.print(
                f"[dim]note: the page's item data were built here ({escaped(worker.failure)})[/]",
                highlight=False,
            )
    err_console.print(f"report files: {escaped(paths[0].parent)}/", highlight=False)
    err_console.print(f"HTML report: {escaped(paths[-1])}", highlight=False)
    engine.store.close()
    allow_quick_exit()


@click.command()
@run_options
def estimate(**opts: Any) -> None:
    """Predict the calls, tokens and cost of a run before starting it.

    Walks the same protocol as `run` without sending anything: answers already in the
    store count as free; new calls are estimated from this model's history in the store
    (characters per token, mean completion length) or, without history, from 4 characters
    per token and the full max-tokens (an upper bound).
    """
    print_run_estimate(prepare(opts, estimate=True))
