"""`skillmix math label`: the fine skills each question needs, clustered into a catalog."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from skillmix.cli._common import (
    UserError,
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
    from skillmix.math.label import LabelPipeline, LabelResult
    from skillmix.math.label_agreement import Agreement


@click.command("label")
@click.option(
    "--dataset",
    required=True,
    help="champ (CHAMP, from the champ-dataset wheel) or a file: .jsonl, .json, .csv, "
    ".parquet, or a Hugging Face dataset folder saved with save_to_disk.",
)
@click.option(
    "--teacher",
    default="embedded",
    show_default=True,
    help="Model that names and groups the skills, provider:model (the forms: skillmix run --help).",
)
@click.option(
    "--skills",
    "skills",
    type=int,
    default=8,
    show_default=True,
    help="Coarse skills to group the fine skill names into.",
)
@click.option("--limit", type=int, help="Label only the first N questions.")
@click.option(
    "--against-annotations",
    is_flag=True,
    help="Compare the coarse skills with the dataset's human concepts (precision, recall, "
    "F1 per category).",
)
@click.option(
    "--out", default="math-label", show_default=True, help="Folder for the catalog, labels "
    "and report.html."
)  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of decoding.")
@click.option(
    "--temperature", type=float, default=0.7, show_default=True, help="Teacher temperature."
)
@click.option("--max-tokens", type=int, default=256, show_default=True, help="Per stage-1 answer.")
@click.option(
    "--cluster-max-tokens",
    type=int,
    default=1024,
    show_default=True,
    help="Per stage-2 answer (defining or assigning coarse skills).",
)
@click.option(
    "--cluster-batch",
    type=int,
    default=40,
    show_default=True,
    help="Fine skill names per stage-2 request.",
)
@click.option("--no-structured", is_flag=True, help="Never ask the teacher for JSON-schema output.")
@click.option(
    "--no-solution", is_flag=True, help="Do not show the teacher the reference solutions."
)
@store_option
@job_options("Questions")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@settings_options
def label(
    dataset: str,
    teacher: str,
    skills: int,
    limit: int | None,
    against_annotations: bool,
    out: str,
    seed: int,
    temperature: float,
    max_tokens: int,
    cluster_max_tokens: int,
    cluster_batch: int,
    no_structured: bool,
    no_solution: bool,
    store_path: str,
    estimate: bool,
    max_cost: float | None,
    workers: int | None,
    as_json: bool,
    settings_file: str | None,
    pricing: str | None,
) -> None:
    """Name the skill each question needs, group the names into coarse skills.

    Stage 1 asks the teacher for the one fine-grained skill each question needs, with a
    one-sentence rationale; stage 2 groups the fine names into --skills coarse skills (a
    name, definition and example each) and assigns every question to one or more of them.
    Writes OUT/skills_catalog.yaml (a Skill-Mix catalog), labels.csv, labels.json and
    report.html. Every answer is kept in the store: re-running the same command resumes
    a stopped run and asks nothing twice.
    """
    from pydantic import ValidationError

    from skillmix.errors import invalid_settings
    from skillmix.math.label import (
        LabelConfig,
        LabelPipeline,
        agreement_with_annotations,
        usage_rows,
        write_outputs,
    )
    from skillmix.math.problems import load_dataset
    from skillmix.models import load_settings, resolve_model
    from skillmix.runtime.budget import check_max_cost

    check_max_cost(max_cost)
    data = load_dataset(dataset, limit=limit)
    try:
        config = LabelConfig(
            dataset=data.name,
            dataset_hash=data.content_hash,
            questions=len(data),
            teacher=teacher,
            skills=skills,
            seed=seed,
            temperature=temperature,
            max_tokens=max_tokens,
            cluster_max_tokens=cluster_max_tokens,
            cluster_batch=cluster_batch,
            structured=not no_structured,
            show_solution=not no_solution,
        )
    except ValidationError as err:  # the options above, checked by LabelConfig
        raise invalid_settings(err) from None
    if against_annotations and not any(p.concepts for p in data.problems):
        raise UserError(
            f"--against-annotations: the dataset {data.name} has no human skill labels "
            "(concepts) to compare with",
            hint="leave the flag out, or give a dataset with a concepts column",
        )
    settings = load_settings(settings_file, pricing)
    model = resolve_model(teacher, settings)
    store = open_store(store_path)
    pipeline = LabelPipeline(
        store,
        config,
        model,
        data,
        settings=settings,
        max_cost=max_cost,
        estimate=estimate,
        workers=workers,
    )
    announce = (
        None
        if estimate
        else (
            f"math label run [bold]{pipeline.run_id}[/]: teacher {escaped(teacher)}, "
            f"{len(data)} questions of {escaped(data.name)}, {skills} coarse skills, store "
            f"{escaped(store.location)}"
        )
    )
    result: LabelResult = run_pipeline(pipeline, [model], announce)
    if estimate:
        _print_label_estimate(pipeline)
        return
    agreement = agreement_with_annotations(result) if against_annotations else None
    try:
        paths = write_outputs(
            result, Path(out), agreement, usage=usage_rows(store, result.run_id, settings)
        )
    except OSError as err:
        from skillmix.cli.data import cannot_write

        raise cannot_write(Path(out), err) from err
    print_usage(result.stats, "this invocation")
    if as_json:
        from skillmix.math.label import finite

        document = {
            **result.summary(),
            "agreement": agreement.to_dict() if agreement else None,
            "files": {name: str(path) for name, path in paths.items()},
        }
        sys.stdout.write(json.dumps(finite(document), indent=2, ensure_ascii=False) + "\n")
        return
    _print_skills(result)
    if agreement is not None:
        _print_agreement(agreement)
    for warning in result.warnings():
        console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)
    console.print(f"wrote {escaped(', '.join(str(p) for p in paths.values()))}", highlight=False)


def _print_label_estimate(pipeline: LabelPipeline) -> None:
    stats = pipeline.calls.stats
    roles = {role: [pipeline.teacher] for role in stats.roles}
    print_estimate(stats, f"estimate for {pipeline.run_id}", roles, pipeline.calls)
    console.print(
        "stage 2 is counted for every question naming its own skill (an upper bound: "
        "shared names need fewer assign requests)",
        highlight=False,
    )


def _print_skills(result: LabelResult) -> None:
    from skillmix.report.layout import Column, print_records

    total = max(1, len(result.labels))
    print_records(
        console,
        [
            Column("coarse skill", wrap=True),
            Column("category"),
            Column("questions", justify="right"),
            Column("share", justify="right"),
            Column("fine skills", justify="right"),
            Column("definition", wrap=True),
        ],
        (
            [
                s.name,
                s.category,
                str(s.questions),
                f"{s.questions / total:.0%}",
                str(len(s.members)),
                s.definition,
            ]
            for s in result.skills
        ),
        title=f"{len(result.skills)} coarse skills of {result.dataset.name} (run {result.run_id})",
        caption=f"catalog hash {result.catalog.short_hash}; "
        f"{len(result.unparsed)} question(s) unparsed",
    )


def _print_agreement(agreement: Agreement) -> None:
    from skillmix.math.html import interval_text
    from skillmix.report.layout import Column, print_records

    def rows(source: Any) -> list[list[str]]:
        return [
            [
                r.category,
                str(r.questions),
                interval_text(r.precision),
                interval_text(r.recall),
                interval_text(r.f1),
            ]
            for r in source
        ]

    columns = [
        Column("category"),
        Column("questions", justify="right"),
        Column("precision [95% CI]", justify="right"),
        Column("recall [95% CI]", justify="right"),
        Column("F1 [95% CI]", justify="right"),
    ]
    overall = agreement.in_sample[-1]
    print_records(
        console,
        columns,
        rows(agreement.rows),
        title="agreement with the human concepts (each coarse skill mapped to the concept it "
        "co-occurs with most; cross-fitted, leave one question out)",
        caption=f"in sample (optimistic): precision {interval_text(overall.precision)}, recall "
        f"{interval_text(overall.recall)}, F1 {interval_text(overall.f1)}",
    )
