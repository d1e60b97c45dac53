"""`skillmix math eval`: students with and without skill-based examples (AdaptMI and kin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from skillmix.cli._common import (
    UserError,
    console,
    err_console,
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


@click.command("eval")
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
    announce = (
        None
        if estimate
        else (
            f"math eval run [bold]{pipeline.run_id}[/]: student {escaped(student)}, "
            f"{len(pipeline.test)} test question(s) of {escaped(data.name)} "
            f"({len(pipeline.train)} in the example pool), strategies {', '.join(chosen)}, "
            f"store {escaped(store.location)}"
        )
    )
    result = run_pipeline(pipeline, pipeline.models, announce)
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
