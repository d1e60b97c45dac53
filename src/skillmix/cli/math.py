"""`skillmix math`: skills for reasoning on math data sets (labelling, evaluation)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from skillmix.cli._common import (
    UserError,
    console,
    err_console,
    job_options,
    open_store,
    print_estimate,
    print_usage,
    progress_bars,
    run_job,
    settings_options,
    store_option,
)
from skillmix.terminal import escaped

if TYPE_CHECKING:
    from skillmix.math.label import LabelPipeline, LabelResult
    from skillmix.math.label_agreement import Agreement


@click.group("math")
def math_group() -> None:
    """Skills for reasoning on math data: label the skills questions need, evaluate with them."""


# --- math label -----------------------------------------------------------------------------


@math_group.command("label")
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
    from skillmix.runtime.progress import ProgressBars

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
    pipeline.calls.check_prices([model])
    if not estimate:
        err_console.print(
            f"math label run [bold]{pipeline.run_id}[/]: teacher {escaped(teacher)}, "
            f"{len(data)} questions of {escaped(data.name)}, {skills} coarse skills, store "
            f"{escaped(store.path)}",
            highlight=False,
        )
    progress = progress_bars()
    pipeline.progress = ProgressBars(progress)
    result: LabelResult = run_job(pipeline.run(), progress, lambda: pipeline.calls.stats)
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


# --- math eval ------------------------------------------------------------------------------


@math_group.command("eval")
@click.option(
    "--student",
    default="embedded",
    show_default=True,
    help="Model under test, provider:model (the forms: skillmix run --help).",
)
@click.option(
    "--dataset",
    default="champ",
    show_default=True,
    help="champ, or a file or saved Hugging Face dataset (as for math label).",
)
@click.option(
    "--strategy",
    "strategies",
    multiple=True,
    required=True,
    help="zero-shot, fixed-shot, random-shot, skill, adaptmi, adaptmi+ or all; repeat (or "
    "separate with commas) for several. Answers they share are asked once.",
)
@click.option(
    "--shots", type=int, default=3, show_default=True, help="Solved examples a prompt shows."
)
@click.option("--limit", type=int, help="Evaluate only the first N test questions.")
@click.option(
    "--test-share",
    type=float,
    default=0.5,
    show_default=True,
    help="Share of the dataset held out as test questions (stratified by category); the "
    "rest is the pool the examples come from.",
)
@click.option(
    "--labels",
    "label_run",
    help="Skill labels from this `math label` run (default: the dataset's own concept "
    "annotations).",
)
@click.option(
    "--verifier",
    default="consistency",
    show_default=True,
    help="How adaptmi/adaptmi+ find difficult questions, never from the gold answer: "
    "judge:MODEL (a model rates the answer 0-10) or consistency (agreement of --samples "
    "answers).",
)
@click.option(
    "--samples",
    type=int,
    default=5,
    show_default=True,
    help="Answers the consistency verifier compares.",
)
@click.option(
    "--difficulty-threshold",
    type=float,
    default=0.6,
    show_default=True,
    help="A question is difficult when the verifier's score is below this: the judge's "
    "rating / 10, or the share of samples giving the most common answer.",
)
@click.option(
    "--teacher",
    help="Model that names the skills missing from an answer (adaptmi+; default: embedded "
    "for the embedded student).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the split, examples and decoding.",
)
@click.option(
    "--temperature", type=float, help="Student temperature (default: none sent; local 0.7)."
)
@click.option("--max-tokens", type=int, default=1024, show_default=True, help="Per student answer.")
@click.option(
    "--judge-max-tokens",
    type=int,
    default=512,
    show_default=True,
    help="Per skill choice, judge rating and teacher reply.",
)
@click.option("--no-structured", is_flag=True, help="Never ask the judge for JSON-schema output.")
@click.option("--out", default="math-eval", show_default=True, help="Folder for the report files.")
@store_option
@job_options("Questions")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@settings_options
def evaluate(
    student: str,
    dataset: str,
    strategies: tuple[str, ...],
    shots: int,
    limit: int | None,
    test_share: float,
    label_run: str | None,
    verifier: str,
    samples: int,
    difficulty_threshold: float,
    teacher: str | None,
    seed: int,
    temperature: float | None,
    max_tokens: int,
    judge_max_tokens: int,
    no_structured: bool,
    out: str,
    store_path: str,
    estimate: bool,
    max_cost: float | None,
    workers: int | None,
    as_json: bool,
    settings_file: str | None,
    pricing: str | None,
) -> None:
    """Answer test questions under prompting strategies and compare their accuracy.

    zero-shot, fixed-shot (the same k examples), random-shot, skill (the student names the
    skill it needs and sees k examples labelled with it), adaptmi (skill examples only for
    questions a verifier finds difficult, without the gold answer) and adaptmi+ (examples
    for the skills a teacher finds missing from the student's answer). Examples come from
    the train part: a test question found there stops the run, a near-duplicate of one is
    left out. Prints accuracy per strategy with 95% intervals and paired comparisons;
    writes JSON, CSV and math.html to OUT/RUN_ID. Re-running the same command resumes and
    asks nothing twice.
    """
    from pydantic import ValidationError

    from skillmix.errors import invalid_settings
    from skillmix.math.eval import (
        MathEval,
        MathEvalConfig,
        labels_from_annotations,
        labels_from_run,
    )
    from skillmix.math.eval_report import build_eval_report, render_eval, write_eval_files
    from skillmix.math.problems import load_dataset
    from skillmix.math.strategies import parse_strategies, parse_verifier
    from skillmix.models import load_settings, resolve_model
    from skillmix.runtime.budget import check_max_cost
    from skillmix.runtime.progress import ProgressBars

    check_max_cost(max_cost)
    chosen = parse_strategies(strategies)
    spec = parse_verifier(verifier, samples=samples, threshold=difficulty_threshold)
    if teacher is None and "adaptmi+" in chosen:
        if student.strip().lower() != "embedded":
            raise UserError(
                "adaptmi+ needs a teacher", hint="add --teacher MODEL (e.g. openai:gpt-4o-mini)"
            )
        teacher = "embedded"
    data = load_dataset(dataset)
    store = open_store(store_path)
    labels = labels_from_run(store, label_run, data) if label_run else labels_from_annotations(data)
    try:
        config = MathEvalConfig(
            student=student,
            dataset=data.name,
            dataset_hash=data.content_hash,
            strategies=chosen,
            shots=shots,
            limit=limit,
            test_share=test_share,
            labels=labels.source if label_run else None,
            verifier=verifier,
            samples=samples,
            difficulty_threshold=difficulty_threshold,
            teacher=teacher,
            seed=seed,
            temperature=temperature,
            max_tokens=max_tokens,
            judge_max_tokens=judge_max_tokens,
            structured=not no_structured,
        )
    except ValidationError as err:  # the options above, checked by MathEvalConfig
        raise invalid_settings(err) from None
    settings = load_settings(settings_file, pricing)
    student_model = resolve_model(student, settings)
    judge = (
        resolve_model(spec.model, settings)
        if config.verifier is not None and spec.kind == "judge" and spec.model
        else None
    )
    teacher_model = resolve_model(config.teacher, settings) if config.teacher else None
    pipeline = MathEval(
        store,
        config,
        data,
        labels,
        student_model,
        judge=judge,
        teacher=teacher_model,
        settings=settings,
        max_cost=max_cost,
        estimate=estimate,
        workers=workers,
    )
    pipeline.calls.check_prices(pipeline.models)
    if not estimate:
        err_console.print(
            f"math eval run [bold]{pipeline.run_id}[/]: student {escaped(student)}, "
            f"{len(pipeline.test)} test question(s) of {escaped(data.name)} "
            f"({len(pipeline.train)} in the example pool), strategies {', '.join(chosen)}, "
            f"store {escaped(store.path)}",
            highlight=False,
        )
    progress = progress_bars()
    pipeline.progress = ProgressBars(progress)
    result = run_job(pipeline.run(), progress, lambda: pipeline.calls.stats)
    if estimate:
        roles = {
            "student": [student_model],
            "verifier": [judge or student_model],
            "teacher": [teacher_model] if teacher_model else [],
        }
        print_estimate(result.stats, f"estimate for {pipeline.run_id}", roles, pipeline.calls)
        if config.verifier is not None:
            console.print(
                "every question is counted as difficult (an upper bound for adaptmi and "
                "adaptmi+: easy ones need no second answer)",
                highlight=False,
            )
        return
    print_usage(result.stats, "this invocation")
    report = build_eval_report(store, result.run_id)
    from skillmix.math.eval_html import write_eval_page
    from skillmix.math.label import finite, usage_rows

    folder = Path(out) / result.run_id
    paths = write_eval_files(report, folder)
    paths.append(
        write_eval_page(
            report, folder / "math.html", usage=usage_rows(store, result.run_id, settings)
        )
    )
    if as_json:
        document = {**report.to_dict(), "files": [str(p) for p in paths]}
        sys.stdout.write(json.dumps(finite(document), indent=2, ensure_ascii=False) + "\n")
        return
    render_eval(report, console)
    err_console.print(f"report files: {escaped(folder)}/", highlight=False)
    err_console.print(f"HTML report: {escaped(paths[-1])}", highlight=False)
