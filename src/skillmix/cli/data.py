"""`skillmix data sft` and `skillmix data instruct`: build training data sets."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from skillmix.cli._common import (
    UserError,
    catalog_option,
    config_option,
    console,
    err_console,
    job_options,
    open_store,
    parse_k,
    prepare,
    print_estimate,
    print_run_estimate,
    print_usage,
    progress_bars,
    run_job,
    run_pipeline,
    settings_options,
    store_option,
)
from skillmix.terminal import escaped

if TYPE_CHECKING:
    from skillmix.data.instruct import InstructPipeline
    from skillmix.models import Model
    from skillmix.runtime.calls import CallStats

DEFAULT_DATA_OUT = "skillmix-data"


@click.group()
def data() -> None:
    """Build composition training data (Skill-Mix SFT, Instruct-SkillMix)."""


# --- data sft -------------------------------------------------------------------------------


@data.command("sft")
@click.option(
    "--teacher",
    required=True,
    help="Model that writes the texts, provider:model (the forms: skillmix run --help).",
)
@click.option(
    "--judge",
    "judges",
    multiple=True,
    help="Judge model; repeat for several. Required unless the teacher is embedded.",
)
@click.option("--k", "k_values", multiple=True, help="Skills per item (default 1,2,3).")
@click.option("--items", type=int, help="Items per k (default 10).")
@click.option("--generation-rounds", type=int, help="Teacher texts per item (3).")
@click.option("--grading-rounds", type=int, help="Gradings per text, majority-voted (3).")
@click.option("--seed", type=int, help="Seed for items and decoding (0).")
@catalog_option
@click.option(
    "--templates", help="Template set: a built-in name (v2, the default; v1) or a folder path."
)
@click.option(
    "--teacher-max-tokens", "student_max_tokens", type=int, help="Teacher max tokens (512)."
)
@click.option("--judge-max-tokens", type=int, help="Judge max tokens (512).")
@click.option(
    "--temperature", type=float, help="Teacher temperature (default: none sent; local 0.7)."
)
@click.option(
    "--judge-temperature", type=float, help="Judge temperature (default: none sent; local 0.7)."
)
@click.option("--no-naming-penalty", is_flag=True, help="Do not zero skills named in the text.")
@click.option("--no-structured", is_flag=True, help="Never ask judges for structured output.")
@click.option("--held-out-skills", type=float, help="Share of skills held out (0).")
@click.option("--held-out-topics", type=float, help="Share of topics held out (0).")
@click.option(
    "--held-out-category", multiple=True, help="Skill category held out whole; repeatable."
)
@click.option("--split-seed", type=int, help="Seed of the split (0).")
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
@job_options("Work units")
@config_option
@settings_options
@store_option
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

    from skillmix.data.card import holds_out, write_card
    from skillmix.data.export import check_formats, export_records, write_rejections
    from skillmix.data.sft import DEFAULT_K, collect_sft
    from skillmix.runtime.progress import ProgressBars

    chosen = check_formats(formats)
    eval_ks = parse_k((eval_k,))
    # The teacher is the run's student, on the train side of the split; k has its own default.
    prepared = prepare(
        {**options, "student": teacher, "split_part": "train"},
        defaults={"k": DEFAULT_K},
        max_cost=None if estimate else max_cost,
        estimate=estimate,
        workers=workers,
    )
    if estimate:
        print_run_estimate(prepared)
        return
    config, engine, catalog = prepared.config, prepared.engine, prepared.catalog
    store = engine.store
    progress = progress_bars()
    engine.progress = ProgressBars(progress)
    err_console.print(
        f"run [bold]{engine.run_id}[/]: teacher {escaped(config.student)}, judge(s) "
        f"{escaped(', '.join(config.judges))}, k={list(config.k)}, {config.items} item(s) "
        f"per k, train side of catalog {catalog.short_hash} ({len(engine.catalog.skills)} "
        f"skills, {len(engine.catalog.topics)} topics), store {escaped(store.location)}",
        highlight=False,
    )
    run = run_job(engine.run(), progress, lambda: engine.calls.stats)
    print_usage(run.stats, "this invocation")
    result = collect_sft(
        store,
        run.run_id,
        catalog,
        keep_threshold=keep_threshold,
        dedup_threshold=dedup_threshold,
        eval_k=eval_ks,
    )
    out_dir = Path(out)
    try:
        md, _ = write_card(result.records, result.rejected, result.card_meta, out_dir)
        paths = export_records(
            result.records, out_dir, chosen, description=md.read_text(encoding="utf-8")
        )
        write_rejections(result.rejected, out_dir / "rejected.jsonl")
    except OSError as err:
        raise cannot_write(out_dir, err) from err

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
    console.print(table)
    for warning in result.card_meta["warnings"]:
        console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)
    written = ", ".join(str(p) for p in [*paths.values(), md, md.with_suffix(".json")])
    console.print(
        f"wrote {escaped(written)}, {escaped(out_dir / 'rejected.jsonl')}", highlight=False
    )
    if holds_out(result.card_meta):
        console.print(
            f"{escaped(held_out_summary(result.card_meta['split']))}; evaluate a model "
            "fine-tuned on this data on exactly them with:",
            highlight=False,
        )
        click.echo(result.card_meta["eval_command"])


def cannot_write(out_dir: Path, err: OSError) -> UserError:
    """The error for an output folder that cannot be written (the run itself is stored)."""
    return UserError(
        f"cannot write the data set to {out_dir}: {err.strerror or err}",
        hint="choose another --out; re-running sends nothing again (the run is in the store)",
    )


def held_out_summary(split: Mapping[str, Any], shown: int = 8) -> str:
    """What a data set holds out, from its card's split: `held out 2 skill(s) (a, b) and
    1 topic(s) (c)`; a list longer than `shown` ends with `, …`."""

    def ids(values: list[str]) -> str:
        return ", ".join(values[:shown] + (["…"] if len(values) > shown else []))

    held = [
        f"{len(values)} {what}(s) ({ids(values)})"
        for values, what in (
            (split["held_out_skills"], "skill"),
            (split["held_out_topics"], "topic"),
        )
        if values
    ]
    return "held out " + " and ".join(held)


# --- data instruct --------------------------------------------------------------------------


@data.command("instruct")
@click.option(
    "--teacher",
    default="embedded",
    show_default=True,
    help="Model that names the skills and writes the examples, provider:model (the forms: "
    "skillmix run --help).",
)
@click.option("--topics", type=int, default=8, show_default=True, help="Topics to ask for.")
@click.option(
    "--skills-per-topic", type=int, default=10, show_default=True, help="Skills to ask per topic."
)
@click.option(
    "--query-types", type=int, default=16, show_default=True, help="Query types to ask for."
)
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
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of sampling and decoding."
)
@click.option(
    "--temperature", type=float, default=0.7, show_default=True, help="Teacher temperature."
)
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
@store_option
@job_options("Examples")
@settings_options
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
    from pydantic import ValidationError

    from skillmix.data.export import check_formats
    from skillmix.data.instruct import InstructConfig, InstructPipeline, write_outputs
    from skillmix.errors import invalid_settings
    from skillmix.models import load_settings, resolve_model
    from skillmix.runtime.budget import check_max_cost

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
    except ValidationError as err:  # the options above, checked by InstructConfig
        raise invalid_settings(err) from None
    chosen = check_formats(formats)  # a missing package is named before any model is asked
    settings = load_settings(settings_file, pricing)
    model = resolve_model(teacher, settings)
    store = open_store(store_path)
    pipeline = InstructPipeline(
        store,
        config,
        model,
        settings=settings,
        max_cost=max_cost,
        estimate=estimate,
        workers=workers,
    )
    announce = (
        None
        if estimate
        else (
            f"instruct run [bold]{pipeline.run_id}[/]: teacher {escaped(teacher)}, {topics} "
            f"topics x {skills_per_topic} skills, {query_types} query types, {examples} "
            f"examples, store {escaped(store.location)}"
        )
    )
    result = run_pipeline(pipeline, [model], announce)
    if estimate:
        _print_instruct_estimate(result.stats, pipeline, model)
        return
    try:
        paths = write_outputs(result, pipeline, Path(out), chosen)
    except OSError as err:
        raise cannot_write(Path(out), err) from err
    print_usage(result.stats, "this invocation")
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
    for warning in result.meta.get("warnings", []):
        console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)
    console.print(f"wrote {escaped(', '.join(str(p) for p in paths.values()))}", highlight=False)


def _print_instruct_estimate(stats: CallStats, pipeline: InstructPipeline, model: Model) -> None:
    roles = {role: [model] for role in stats.roles}
    print_estimate(stats, f"estimate for {pipeline.run_id}", roles, pipeline.calls)
    if any(usage.unpriced for usage in stats.roles.values()):
        console.print(
            f"no price known for {escaped(model.spec)}: add it under \\[pricing] in skillmix.toml",
            highlight=False,
        )
