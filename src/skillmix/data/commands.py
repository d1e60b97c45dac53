"""`skillmix data ...`: build training data sets.

`data` is the click group; other pipelines add their command from their own module with
`@data.command("name")` (the module must be imported before `skillmix.cli` finishes
loading, e.g. from the registration block at the end of cli.py). `skillmix.cli` is only
imported inside commands: cli imports this module.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click

DEFAULT_DATA_OUT = "skillmix-data"


@click.group()
def data() -> None:
    """Build composition training data (Skill-Mix SFT, Instruct-SkillMix)."""


@data.command("sft")
@click.option("--teacher", required=True, help="Model that writes the texts, provider:model.")
@click.option("--judge", "judges", multiple=True, help="Judge model; repeat for several.")
@click.option("--k", "k_values", multiple=True, help="Skills per item (default 1,2,3).")
@click.option("--items", type=int, help="Items per k (default 10).")
@click.option("--generation-rounds", type=int, help="Teacher texts per item (3).")
@click.option("--grading-rounds", type=int, help="Gradings per text, majority-voted (3).")
@click.option("--seed", type=int, help="Seed for items and decoding (0).")
@click.option(
    "--catalog", "catalog_sources", multiple=True, help="Catalog file(s); default built-in."
)
@click.option("--templates", help="Prompt template version (v1).")
@click.option("--teacher-max-tokens", "student_max_tokens", type=int)
@click.option("--judge-max-tokens", type=int)
@click.option("--temperature", type=float, help="Teacher temperature (0.7).")
@click.option("--judge-temperature", type=float, help="Judge temperature (0.7).")
@click.option("--no-naming-penalty", is_flag=True, help="Do not zero skills named in the text.")
@click.option("--no-structured", is_flag=True, help="Never ask judges for structured output.")
@click.option("--held-out-skills", type=float, default=0.0, help="Share of skills held out.")
@click.option("--held-out-topics", type=float, default=0.0, help="Share of topics held out.")
@click.option("--held-out-category", multiple=True, help="Skill category held out whole.")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option(
    "--keep-threshold",
    type=click.FloatRange(0.0, 1.0),
    default=1.0,
    show_default=True,
    help="Keep texts whose skill fraction reaches this (1 = full marks only; 0 = all scored).",
)
@click.option(
    "--dedup-threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.8,
    show_default=True,
    help="Drop texts whose word 3-gram Jaccard with a kept text reaches this.",
)
@click.option(
    "--eval-k",
    default="2,3,4,5",
    show_default=True,
    help="k values of the printed held-out evaluation command.",
)
@click.option("--out", default=DEFAULT_DATA_OUT, show_default=True, help="Output folder.")
@click.option(
    "--formats", default="jsonl,parquet,hf", show_default=True, help="jsonl, parquet and/or hf."
)
@click.option(
    "--max-cost", type=float, help="Stop sending requests once this invocation spent this (USD)."
)
@click.option("--workers", type=int, help="Work units in flight (default: 2 x concurrency).")
@click.option("--estimate", is_flag=True, help="Only predict calls, tokens and cost; send nothing.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True),
    help="TOML/YAML file of run settings (flags override it).",
)
@click.option("--settings", "settings_file", type=click.Path(exists=True))
@click.option("--pricing", type=click.Path(exists=True), help="Extra prices (TOML/YAML).")
@click.option(
    "--store",
    "store_path",
    default=lambda: os.environ.get("SKILLMIX_STORE", "skillmix.sqlite"),
    show_default="skillmix.sqlite",
    help="SQLite run store (env SKILLMIX_STORE).",
)
def sft(
    teacher: str,
    keep_threshold: float,
    dedup_threshold: float,
    eval_k: str,
    out: str,
    formats: str,
    max_cost: float | None,
    workers: int | None,
    estimate: bool,
    **options: Any,
) -> None:
    """Skill-Mix SFT data: the teacher's full-marks texts on the train split.

    Runs the Skill-Mix protocol with the teacher as the student on the train side of the
    split (an ordinary, resumable run: re-running asks no model again), keeps the texts
    that meet --keep-threshold for every judge, drops near-duplicates, and writes the
    records, the rejected ones and a data card to --out. Prints the `skillmix run` that
    evaluates a fine-tuned model on exactly the held-out skills and topics.
    """
    from rich.table import Table

    from skillmix import cli
    from skillmix.data.card import write_card
    from skillmix.data.export import (
        MissingDependency,
        check_formats,
        export_records,
        write_rejections,
    )
    from skillmix.data.sft import collect_sft, sft_engine
    from skillmix.protocol.engine import BudgetReached, RunError
    from skillmix.terminal import escaped

    try:
        chosen = check_formats(formats)
    except (ValueError, MissingDependency) as err:
        raise cli.UserError(str(err)) from err
    eval_ks = cli._ints((eval_k,))
    opts = _run_options(cli, teacher, options)
    if estimate:
        assert cli.estimate.callback is not None
        cli.estimate.callback(**opts)
        return
    prepared = cli._prepare(opts, max_cost=max_cost, workers=workers)
    config, store = prepared.config, prepared.engine.store
    catalog = cli._catalog(config.catalog)
    engine = sft_engine(
        store,
        config,
        catalog,
        prepared.engine.student,
        prepared.engine.judges,
        settings=prepared.settings,
        max_cost=max_cost,
        workers=workers,
    )
    progress = cli._progress()
    bars = {stage: progress.add_task(stage, total=n) for stage, n in engine.totals.items()}
    engine.advance = lambda stage: progress.advance(bars[stage])
    cli.err_console.print(
        f"run [bold]{engine.run_id}[/]: teacher {escaped(config.student)}, judge(s) "
        f"{escaped(', '.join(config.judges))}, k={list(config.k)}, {config.items} item(s) "
        f"per k, train side of catalog {catalog.short_hash} ({len(engine.catalog.skills)} "
        f"skills, {len(engine.catalog.topics)} topics), store {escaped(store.path)}",
        highlight=False,
    )
    try:
        with progress:
            run = asyncio.run(engine.run())
    except BudgetReached as err:
        cli._print_usage(engine.calls.stats, "this invocation")
        cli.err_console.print(f"[yellow]paused[/]: {escaped(err)}", highlight=False)
        sys.exit(3)
    except RunError as err:
        raise cli.UserError(str(err)) from err
    except KeyboardInterrupt:
        cli.err_console.print(
            "[yellow]interrupted[/]: answers so far are saved; re-run the same command to resume"
        )
        sys.exit(130)
    cli._print_usage(run.stats, "this invocation")
    try:
        result = collect_sft(
            store,
            run.run_id,
            catalog,
            keep_threshold=keep_threshold,
            dedup_threshold=dedup_threshold,
            eval_k=eval_ks,
        )
    except ValueError as err:
        raise cli.UserError(str(err)) from err
    out_dir = Path(out)
    md, _ = write_card(result.records, result.rejected, result.card_meta, out_dir)
    try:
        paths = export_records(
            result.records, out_dir, chosen, description=md.read_text(encoding="utf-8")
        )
    except (OSError, MissingDependency) as err:
        raise cli.UserError(str(err)) from err
    write_rejections(result.rejected, out_dir / "rejected.jsonl")

    reasons = sorted(result.reasons)
    table = Table("k", "kept", *reasons, title=f"SFT data from {run.run_id}", title_justify="left")
    for k in config.k:
        kept = sum(r.k == k for r in result.records)
        counts = [
            sum(r.record.k == k and r.reason == reason for r in result.rejected)
            for reason in reasons
        ]
        table.add_row(str(k), str(kept), *map(str, counts))
    table.add_row(
        "[bold]all", f"[bold]{len(result.records)}", *(str(result.reasons[r]) for r in reasons)
    )
    cli.console.print(table)
    for warning in result.card_meta["warnings"]:
        cli.console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)
    written = ", ".join(str(p) for p in [*paths.values(), md, md.with_suffix(".json")])
    cli.console.print(
        f"wrote {escaped(written)}, {escaped(out_dir / 'rejected.jsonl')}", highlight=False
    )
    held = result.card_meta["split"]
    cli.console.print(
        f"held out {len(held['held_out_skills'])} skill(s) and "
        f"{len(held['held_out_topics'])} topic(s); evaluate a model fine-tuned on this data "
        "on exactly them with:",
        highlight=False,
    )
    click.echo(result.card_meta["eval_command"])


def _run_options(cli: Any, teacher: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of `skillmix run`/`estimate` for this job: teacher as student, train side.

    Starts from `estimate`'s own defaults, so an option added to runs later gets its
    default here without a change.
    """
    opts: dict[str, Any] = cli.estimate.make_context("estimate", []).params
    opts.update(options)
    opts["student"] = teacher
    opts["split_part"] = "train"
    if not opts["k_values"]:
        from skillmix.config import load_config_file
        from skillmix.data.sft import DEFAULT_K

        in_file = opts["config_file"] and "k" in load_config_file(opts["config_file"])
        if not in_file:
            opts["k_values"] = (",".join(map(str, DEFAULT_K)),)
    return opts
