"""`skillmix data instruct`: a thin shell over `skillmix.data.instruct`.

`skillmix.cli` imports this module (after registering the `data` group), so this module
imports `skillmix.cli` only inside the command.
"""

from __future__ import annotations

import os
from pathlib import Path

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import TaskID

from skillmix.data.commands import data
from skillmix.data.instruct import (
    InstructConfig,
    InstructError,
    InstructPaused,
    InstructPipeline,
    write_outputs,
)
from skillmix.protocol.calls import CallStats
from skillmix.terminal import escaped

console = Console()
err_console = Console(stderr=True)


@data.command("instruct")
@click.option("--teacher", default="embedded", show_default=True, help="Model, provider:model.")
@click.option("--topics", type=int, default=8, show_default=True, help="Topics to ask for.")
@click.option("--skills-per-topic", type=int, default=10, show_default=True)
@click.option("--query-types", type=int, default=16, show_default=True)
@click.option("--examples", type=int, default=100, show_default=True, help="Examples to write.")
@click.option(
    "--shirker-fraction",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of examples given a low-effort answer instead (ablations).",
)
@click.option(
    "--dedup-threshold",
    type=float,
    default=0.8,
    show_default=True,
    help="Drop an example whose instruction+response shingle Jaccard with a kept one is >= this.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--temperature", type=float, default=0.7, show_default=True)
@click.option("--max-tokens", type=int, default=2048, show_default=True, help="Per stage-2 turn.")
@click.option(
    "--list-max-tokens", type=int, default=1024, show_default=True, help="Per stage-1 answer."
)
@click.option("--no-structured", is_flag=True, help="Never ask the teacher for JSON-schema output.")
@click.option("--templates", default="v1", show_default=True, help="Prompt template version.")
@click.option("--out", default="instruct-skillmix", show_default=True, help="Output folder.")
@click.option(
    "--formats", default="jsonl,parquet,hf", show_default=True, help="Export formats to write."
)
@click.option(
    "--store",
    "store_path",
    default=lambda: os.environ.get("SKILLMIX_STORE", "skillmix.sqlite"),
    show_default="skillmix.sqlite",
    help="SQLite store holding every answer (env SKILLMIX_STORE).",
)
@click.option("--estimate", is_flag=True, help="Predict calls, tokens and cost; send nothing.")
@click.option("--max-cost", type=float, help="Stop sending once this many USD are spent.")
@click.option("--workers", type=int, help="Examples in flight (default: 2 x concurrency).")
@click.option("--settings", "settings_file", type=click.Path(exists=True))
@click.option("--pricing", type=click.Path(exists=True), help="Extra prices (TOML/YAML).")
def instruct(
    teacher: str,
    topics: int,
    skills_per_topic: int,
    query_types: int,
    examples: int,
    shirker_fraction: float,
    dedup_threshold: float,
    seed: int,
    temperature: float,
    max_tokens: int,
    list_max_tokens: int,
    no_structured: bool,
    templates: str,
    out: str,
    formats: str,
    store_path: str,
    estimate: bool,
    max_cost: float | None,
    workers: int | None,
    settings_file: str | None,
    pricing: str | None,
) -> None:
    """Instruct-SkillMix: skills named by the teacher, then critiqued and refined examples.

    Stage 1 asks the teacher for topics, the instruction-following skills of each topic
    and query types (a catalog written to OUT/skills_catalog.yaml). Stage 2 writes each
    example in one conversation: an (instruction, response) pair needing a random pair of
    skills, a critique, a refined response. Every answer is kept in the store: re-running
    the same command resumes a stopped run and asks nothing twice.
    """
    from skillmix.cli import UserError, _print_usage, _progress, _store, run_job
    from skillmix.config import check_max_cost
    from skillmix.data.export import MissingDependency, parse_formats
    from skillmix.errors import InputError, validation_message
    from skillmix.models import ModelError, load_settings, resolve_model
    from skillmix.models.settings import SettingsError
    from skillmix.prompts import TemplateError

    check_max_cost(max_cost)
    try:
        config = InstructConfig(
            teacher=teacher,
            topics=topics,
            skills_per_topic=skills_per_topic,
            query_types=query_types,
            examples=examples,
            shirker_fraction=shirker_fraction,
            dedup_threshold=dedup_threshold,
            seed=seed,
            temperature=temperature,
            max_tokens=max_tokens,
            list_max_tokens=list_max_tokens,
            structured=not no_structured,
            templates=templates,
        )
        chosen = parse_formats(formats)
        settings = load_settings(settings_file, pricing)
        model = resolve_model(teacher, settings)
    except ValidationError as err:
        raise InputError(validation_message(err, "invalid settings")) from None
    except (ValueError, SettingsError, ModelError) as err:
        raise UserError(str(err)) from err
    store = _store(store_path)
    try:
        pipeline = InstructPipeline(
            store,
            config,
            model,
            settings=settings,
            max_cost=max_cost,
            estimate=estimate,
            workers=workers,
        )
        pipeline.calls.check_prices([model])
    except (TemplateError, ModelError) as err:
        raise UserError(str(err)) from err
    if not estimate:
        err_console.print(
            f"instruct run [bold]{pipeline.run_id}[/]: teacher {escaped(teacher)}, {topics} "
            f"topics x {skills_per_topic} skills, {query_types} query types, {examples} "
            f"examples, store {escaped(store.path)}",
            highlight=False,
        )
    progress = _progress()
    bars: dict[str, TaskID] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = progress.add_task(stage, total=total)
        progress.update(bars[stage], completed=done, total=total)

    pipeline.progress = report
    result = run_job(
        pipeline.run(), progress, lambda: pipeline.calls.stats, InstructPaused, InstructError
    )
    if estimate:
        _print_estimate(result.stats, pipeline.run_id, model.spec)
        return
    try:
        paths = write_outputs(result, pipeline, Path(out), chosen)
    except MissingDependency as err:
        raise UserError(f"{err} (or choose other --formats)") from err
    _print_usage(result.stats, "this invocation")
    ex = result.extraction
    reasons: dict[str, int] = {}
    for rejection in result.rejected:
        reasons[rejection.reason] = reasons.get(rejection.reason, 0) + 1
    console.print(
        f"catalog: {len(ex.catalog.skills)} skills ({ex.proposed_skills} proposed, "
        f"{len(ex.merges)} merged as duplicates) in {len(ex.catalog.topics)} topics, "
        f"{len(ex.query_types)} query types; hash {ex.catalog.short_hash}",
        highlight=False,
    )
    left_out = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items())) or "none"
    console.print(
        f"examples: {len(result.records)} kept "
        f"({sum(r.shirker for r in result.records)} shirker), left out: {left_out}",
        highlight=False,
    )
    console.print(f"wrote {escaped(', '.join(str(p) for p in paths.values()))}", highlight=False)


def _print_estimate(stats: CallStats, run_id: str, spec: str) -> None:
    from skillmix.cli import console, print_estimate

    print_estimate(stats, f"estimate for {run_id} (teacher {escaped(spec)})")
    if any(usage.unpriced for usage in stats.roles.values()):
        console.print(
            f"no price known for {escaped(spec)}: add it under \\[pricing] in skillmix.toml",
            highlight=False,
        )
