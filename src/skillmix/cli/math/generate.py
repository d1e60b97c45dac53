"""`skillmix math generate` and `math export`: new questions that need two skills at once."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from skillmix.cli._common import (
    console,
    job_options,
    open_store,
    print_estimate,
    print_usage,
    run_pipeline,
    settings_options,
    store_option,
)
from skillmix.terminal import escaped

if TYPE_CHECKING:
    pass


@click.command("generate")
@click.option(
    "--skills",
    "skills_spec",
    required=True,
    help="Skill catalog file (.yaml, .jsonl, .csv; e.g. the skills_catalog.yaml of `math "
    "label`) or the id of a `math label` run in the store.",
)
@click.option("--pairs", type=int, required=True, help="Distinct skill pairs, one question each.")
@click.option(
    "--teacher",
    default="embedded",
    show_default=True,
    help="Model that writes, solves, critiques and refines, provider:model (the forms: "
    "skillmix run --help).",
)
@click.option(
    "--verifier",
    help="Model of the independent solves (default: the teacher, at other seeds, each in a "
    "fresh conversation).",
)
@click.option(
    "--pool",
    help="Questions the generated ones must not repeat (champ, or a dataset file as for "
    "math label); none by default.",
)
@click.option(
    "--resolves", type=int, default=2, show_default=True, help="Independent solves per question."
)
@click.option(
    "--min-agreeing",
    type=int,
    help="Independent solves that must reach the written answer (default: all of them).",
)
@click.option(
    "--refine-rounds",
    type=int,
    default=2,
    show_default=True,
    help="Rewrites of a question at most, while its critique finds a problem.",
)
@click.option(
    "--near-duplicate",
    type=float,
    default=0.8,
    show_default=True,
    help="Word 3-gram Jaccard similarity at which a question is too close to a pool "
    "question or an earlier one.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of pairs and decoding.")
@click.option(
    "--temperature", type=float, default=0.7, show_default=True, help="Decoding temperature."
)
@click.option(
    "--max-tokens",
    type=int,
    default=1024,
    show_default=True,
    help="Per question, solution and independent solve.",
)
@click.option(
    "--critique-max-tokens",
    type=int,
    default=256,
    show_default=True,
    help="Per critique (a short JSON verdict).",
)
@click.option("--no-structured", is_flag=True, help="Never ask for JSON-schema output.")
@store_option
@job_options("Skill pairs")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@settings_options
def generate(
    skills_spec: str,
    pairs: int,
    teacher: str,
    verifier: str | None,
    pool: str | None,
    resolves: int,
    min_agreeing: int | None,
    refine_rounds: int,
    near_duplicate: float,
    seed: int,
    temperature: float,
    max_tokens: int,
    critique_max_tokens: int,
    no_structured: bool,
    store_path: str,
    estimate: bool,
    max_cost: float | None,
    workers: int | None,
    as_json: bool,
    settings_file: str | None,
    pricing: str | None,
) -> None:
    """Write new questions that each need a pair of skills (MATH²), filter them for review.

    Draws --pairs distinct skill pairs (seeded). For each, the teacher writes a question
    that needs both skills, solves it and critiques both (valid, solvable, both skills
    needed); while the critique finds a problem it rewrites the question, at most
    --refine-rounds times. Filters, each recorded with its reason: a readable question, a
    passing critique, a final answer math-verify can parse, no near-duplicate of a --pool
    question or an earlier one, and --resolves independent solves that reach the written
    answer. The survivors wait for a person: `skillmix review RUN` opens them in the
    browser (accept, edit or reject), then `skillmix math export RUN --out DIR` writes
    the accepted ones. Re-running the same command resumes and asks nothing twice.
    """
    from pydantic import ValidationError

    from skillmix.errors import invalid_settings
    from skillmix.math.generate import GenerateConfig, GeneratePipeline, load_skills
    from skillmix.math.problems import load_dataset
    from skillmix.models import load_settings, resolve_model
    from skillmix.runtime.budget import check_max_cost

    check_max_cost(max_cost)
    store = open_store(store_path)
    catalog = load_skills(skills_spec, store)
    pool_data = load_dataset(pool) if pool else None
    try:
        config = GenerateConfig(
            catalog=catalog.name,
            catalog_hash=catalog.content_hash,
            pairs=pairs,
            teacher=teacher,
            verifier=verifier,
            pool=pool_data.name if pool_data else None,
            pool_hash=pool_data.content_hash if pool_data else None,
            resolves=resolves,
            min_agreeing=min_agreeing,
            refine_rounds=refine_rounds,
            near_duplicate=near_duplicate,
            seed=seed,
            temperature=temperature,
            max_tokens=max_tokens,
            critique_max_tokens=critique_max_tokens,
            structured=not no_structured,
        )
    except ValidationError as err:  # the options above, checked by GenerateConfig
        raise invalid_settings(err) from None
    settings = load_settings(settings_file, pricing)
    teacher_model = resolve_model(teacher, settings)
    verifier_model = resolve_model(verifier, settings) if verifier else None
    pipeline = GeneratePipeline(
        store,
        config,
        catalog,
        teacher_model,
        verifier=verifier_model,
        pool=pool_data,
        settings=settings,
        max_cost=max_cost,
        estimate=estimate,
        workers=workers,
    )
    announce = (
        None
        if estimate
        else (
            f"math generate run [bold]{pipeline.run_id}[/]: teacher {escaped(teacher)}, "
            f"{pairs} skill pair(s) of {len(catalog.skills)} skills ({escaped(catalog.name)}), "
            f"pool {escaped(config.pool or 'none')}, store {escaped(store.location)}"
        )
    )
    result = run_pipeline(pipeline, pipeline.models, announce)
    if estimate:
        roles = {"teacher": [teacher_model], "verifier": [pipeline.verifier]}
        print_estimate(result.stats, f"estimate for {pipeline.run_id}", roles, pipeline.calls)
        console.print(
            "every critique but the last one is counted as failing and every question as "
            "solved again (an upper bound)",
            highlight=False,
        )
        return
    print_usage(result.stats, "this invocation")
    if as_json:
        sys.stdout.write(json.dumps(result.summary(), indent=2, ensure_ascii=False) + "\n")
        return
    _print_candidates(result.summary())
    for warning in result.warnings():
        console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)
    console.print(
        f"review the survivors with `skillmix review {result.run_id}`, then write the "
        f"accepted ones with `skillmix math export {result.run_id} --out DIR`",
        highlight=False,
    )


def _print_candidates(summary: dict[str, Any]) -> None:
    from skillmix.report.layout import Column, print_records

    rejections = ", ".join(f"{reason} {n}" for reason, n in summary["rejections"].items())
    print_records(
        console,
        [
            Column("skill pair", wrap=True),
            Column("status"),
            Column("reasons", wrap=True),
            Column("rewrites", justify="right"),
            Column("question", wrap=True),
        ],
        (
            [
                " + ".join(c["skills"]),
                c["status"],
                ", ".join(c["reasons"]),
                str(c["refinements"]),
                c["question"][:160] + ("…" if len(c["question"]) > 160 else ""),
            ]
            for c in summary["candidates"]
        ),
        title=f"{summary['pairs']} generated question(s), run {summary['run_id']}",
        caption=f"{summary['survivors']} survivor(s) wait for review; rejected: "
        f"{rejections or 'none'}",
    )


@click.command("export")
@click.argument("run_id")
@click.option("--out", required=True, help="Output folder.")
@click.option(
    "--formats", default="jsonl,parquet,hf", show_default=True, help="jsonl, parquet and/or hf."
)
@store_option
def export_generated(run_id: str, out: str, formats: str, store_path: str) -> None:
    """Write the generated questions a reviewer accepted (with their edits) and a card.

    RUN_ID is a `math generate` run (a unique start of its id is enough). Writes
    records.jsonl (chat messages), records.parquet and hf/ (load it with
    datasets.load_from_disk), questions.jsonl (id, question, answer, solution, skills: a
    dataset for `math eval --dataset`), rejected.jsonl (everything left out, with its
    reason) and card.md / card.json (counts per skill pair, filter rejections, reviewers).
    """
    from collections import Counter

    from skillmix.data.export import check_formats
    from skillmix.math.generate_export import collect_export, write_export

    chosen = check_formats(formats)
    store = open_store(store_path, read_only=True)
    data = collect_export(store, run_id)
    out_dir = Path(out)
    try:
        paths = write_export(data, out_dir, chosen)
    except OSError as err:
        from skillmix.cli.data import cannot_write

        raise cannot_write(out_dir, err) from err
    reasons = Counter(r.reason for r in data.rejected)
    console.print(
        f"{len(data.records)} accepted question(s) of {len(data.run.candidates)} exported "
        f"from {data.run.run_id}; left out: "
        + (", ".join(f"{reason} {n}" for reason, n in reasons.most_common()) or "none"),
        highlight=False,
    )
    for warning in data.meta.get("warnings", []):
        console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)
    console.print(f"wrote {escaped(', '.join(str(p) for p in paths.values()))}", highlight=False)
