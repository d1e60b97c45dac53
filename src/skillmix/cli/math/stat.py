"""`skillmix math profile` and `math data`: the skills a student misses (STAT) and data for them."""

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
    run_pipeline,
    settings_options,
    store_option,
)
from skillmix.terminal import escaped

if TYPE_CHECKING:
    from skillmix.math.stat import ProfileSource, StatData
    from skillmix.store import Store


@click.command("profile")
@click.option(
    "--student",
    default="embedded",
    show_default=True,
    help="Model whose missing skills to find, provider:model (the forms: skillmix run --help).",
)
@click.option(
    "--teacher",
    help="Model that names the skills a wrong answer lacks (default: embedded for the "
    "embedded student).",
)
@click.option(
    "--dataset",
    default="champ",
    show_default=True,
    help="champ, or a file or saved Hugging Face dataset (as for math label).",
)
@click.option(
    "--labels",
    "label_run",
    help="Skill labels from this `math label` run (default: the dataset's own concept "
    "annotations).",
)
@click.option(
    "--part",
    type=click.Choice(["train", "test", "all"]),
    default="train",
    show_default=True,
    help="Which questions to profile: the train part of `math eval`'s split (the pool "
    "`math data` draws from), the test part, or all.",
)
@click.option(
    "--test-share",
    type=float,
    default=0.5,
    show_default=True,
    help="Share of the dataset in the test part (as for math eval).",
)
@click.option("--limit", type=int, help="Profile only the first N questions of the part.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the split and decoding."
)
@click.option(
    "--temperature", type=float, help="Student temperature (default: none sent; local 0.7)."
)
@click.option("--teacher-temperature", type=float, help="Teacher temperature (default: none sent).")
@click.option("--max-tokens", type=int, default=1024, show_default=True, help="Per student answer.")
@click.option(
    "--teacher-max-tokens", type=int, default=256, show_default=True, help="Per teacher verdict."
)
@click.option("--no-structured", is_flag=True, help="Never ask the teacher for JSON-schema output.")
@click.option("--no-solution", is_flag=True, help="Do not show the teacher the reference solution.")
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.2,
    show_default=True,
    help="Flag skills whose missing rate is above this (display only).",
)
@click.option(
    "--out", default="math-profile", show_default=True, help="Folder for the report files."
)
@store_option
@job_options("Questions")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON on stdout.")
@settings_options
def profile(
    student: str,
    teacher: str | None,
    dataset: str,
    label_run: str | None,
    part: str,
    test_share: float,
    limit: int | None,
    seed: int,
    temperature: float | None,
    teacher_temperature: float | None,
    max_tokens: int,
    teacher_max_tokens: int,
    no_structured: bool,
    no_solution: bool,
    threshold: float,
    out: str,
    store_path: str,
    estimate: bool,
    max_cost: float | None,
    workers: int | None,
    as_json: bool,
    settings_file: str | None,
    pricing: str | None,
) -> None:
    """Find the skills a student lacks: its Missing-Skill-Profile (STAT).

    The student answers each question (the zero-shot prompt of math eval); for each wrong
    answer the teacher says which of the question's skills the answer lacks or misapplies
    (a verdict per skill; an unreadable verdict is counted as unparsed, never as "nothing
    missing"). Prints, per skill, the questions, wrong answers, missing count and missing
    rate with a 95% interval; writes JSON, CSV and math.html to OUT/RUN_ID. Compare two
    profiles with `skillmix math html RUN_A RUN_B`; build training data from one with
    `skillmix math data`. Re-running the same command resumes and asks nothing twice.
    """
    from pydantic import ValidationError

    from skillmix.errors import invalid_settings
    from skillmix.math.eval import labels_from_annotations, labels_from_run
    from skillmix.math.label import finite, usage_rows
    from skillmix.math.problems import load_dataset
    from skillmix.math.profile import MathProfile, ProfileConfig
    from skillmix.math.profile_html import write_profile_page
    from skillmix.math.profile_report import (
        build_profile_report,
        render_profile,
        write_profile_files,
    )
    from skillmix.models import load_settings, resolve_model
    from skillmix.runtime.budget import check_max_cost

    check_max_cost(max_cost)
    if teacher is None:
        if student.strip().lower() != "embedded":
            raise UserError(
                "math profile needs a teacher",
                hint="add --teacher MODEL (e.g. openai:gpt-4o-mini)",
            )
        teacher = "embedded"
    data = load_dataset(dataset)
    store = open_store(store_path)
    labels = labels_from_run(store, label_run, data) if label_run else labels_from_annotations(data)
    try:
        config = ProfileConfig(
            student=student,
            teacher=teacher,
            dataset=data.name,
            dataset_hash=data.content_hash,
            part=part,  # type: ignore[arg-type]  # click.Choice checked it
            test_share=test_share,
            limit=limit,
            labels=labels.source if label_run else None,
            seed=seed,
            temperature=temperature,
            teacher_temperature=teacher_temperature,
            max_tokens=max_tokens,
            teacher_max_tokens=teacher_max_tokens,
            structured=not no_structured,
            show_solution=not no_solution,
        )
    except ValidationError as err:  # the options above, checked by ProfileConfig
        raise invalid_settings(err) from None
    settings = load_settings(settings_file, pricing)
    student_model = resolve_model(student, settings)
    teacher_model = resolve_model(teacher, settings)
    pipeline = MathProfile(
        store,
        config,
        data,
        labels,
        student_model,
        teacher_model,
        source=_dataset_source(dataset),
        settings=settings,
        max_cost=max_cost,
        estimate=estimate,
        workers=workers,
    )
    announce = (
        None
        if estimate
        else (
            f"math profile run [bold]{pipeline.run_id}[/]: student {escaped(student)}, "
            f"teacher {escaped(teacher)}, {len(pipeline.questions)} {part} question(s) of "
            f"{escaped(data.name)}, store {escaped(store.location)}"
        )
    )
    result = run_pipeline(pipeline, pipeline.models, announce)
    if estimate:
        roles = {"student": [student_model], "teacher": [teacher_model]}
        print_estimate(result.stats, f"estimate for {pipeline.run_id}", roles, pipeline.calls)
        console.print(
            "every answer is counted as wrong (an upper bound: the teacher is asked only "
            "about wrong answers)",
            highlight=False,
        )
        return
    print_usage(result.stats, "this invocation")
    report = build_profile_report(store, result.run_id)
    folder = Path(out) / result.run_id
    paths = write_profile_files(report, folder, threshold)
    paths.append(
        write_profile_page(
            [report],
            folder / "math.html",
            threshold=threshold,
            usage=usage_rows(store, result.run_id, settings),
        )
    )
    if as_json:
        document = {**report.to_dict(threshold), "files": [str(p) for p in paths]}
        sys.stdout.write(json.dumps(finite(document), indent=2, ensure_ascii=False) + "\n")
        return
    render_profile(report, console, threshold)
    err_console.print(f"report files: {escaped(folder)}/", highlight=False)
    err_console.print(f"HTML report: {escaped(paths[-1])}", highlight=False)


def _dataset_source(spec: str) -> str:
    """How `math data` can load the dataset again: champ, or the file's absolute path."""
    if spec.strip().lower() == "champ":
        return "champ"
    return str(Path(spec).expanduser().resolve())


@click.command("data")
@click.option(
    "--method",
    type=click.Choice(["stat-sel", "stat-syn"]),
    required=True,
    help="stat-sel: the pool's questions weighted (or resampled) towards the missing skills; "
    "stat-syn: new questions the teacher writes for them, each verified.",
)
@click.option("--profile", "profile_run", required=True, help="The `math profile` run to target.")
@click.option(
    "--dataset",
    help="The dataset the profile was made on (default: as the profile run recorded it).",
)
@click.option(
    "--temperature",
    type=float,
    default=0.25,
    show_default=True,
    help="stat-sel: temperature T of the softmax over missing rates (small T: the weight "
    "goes to the most-missed skills).",
)
@click.option(
    "--floor",
    type=float,
    default=0.1,
    show_default=True,
    help="stat-sel: the least weight of a question (also of one without a profiled skill).",
)
@click.option(
    "--aggregate",
    type=click.Choice(["mean", "max"]),
    default="mean",
    show_default=True,
    help="stat-sel: how a question with several skills combines their weights.",
)
@click.option(
    "--resample",
    type=int,
    help="stat-sel: write N draws with replacement, in proportion to the weights, instead "
    "of every question once with its weight.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.2,
    show_default=True,
    help="stat-syn: write for the skills whose missing rate is above this.",
)
@click.option(
    "--skill",
    "skills",
    multiple=True,
    help="stat-syn: write for this skill of the profile instead of those above --threshold; "
    "repeatable.",
)
@click.option(
    "--per-skill", type=int, default=4, show_default=True, help="stat-syn: pairs per skill."
)
@click.option(
    "--context",
    type=int,
    default=3,
    show_default=True,
    help="stat-syn: pool questions of the skill shown per prompt.",
)
@click.option("--teacher", help="stat-syn: model that writes the pairs (default: embedded).")
@click.option(
    "--verifier", help="stat-syn: model that solves each question afresh (default: the teacher)."
)
@click.option(
    "--teacher-temperature",
    type=float,
    default=0.7,
    show_default=True,
    help="stat-syn: decoding temperature of the teacher and the verifier.",
)
@click.option(
    "--max-tokens", type=int, default=1024, show_default=True, help="stat-syn: per written pair."
)
@click.option(
    "--verifier-max-tokens",
    type=int,
    default=1024,
    show_default=True,
    help="stat-syn: per verifying solve.",
)
@click.option("--no-structured", is_flag=True, help="Never ask the teacher for JSON-schema output.")
@click.option(
    "--dedup-threshold",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=0.8,
    show_default=True,
    help="stat-syn: drop a question whose word 3-gram Jaccard with a pool, held-out or kept "
    "question reaches this.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of draws and decoding.")
@click.option("--out", default="math-data", show_default=True, help="Output folder.")
@click.option(
    "--formats", default="jsonl,parquet,hf", show_default=True, help="jsonl, parquet and/or hf."
)
@store_option
@job_options("Pairs")
@settings_options
def data(
    method: str,
    profile_run: str,
    dataset: str | None,
    temperature: float,
    floor: float,
    aggregate: str,
    resample: int | None,
    threshold: float,
    skills: tuple[str, ...],
    per_skill: int,
    context: int,
    teacher: str | None,
    verifier: str | None,
    teacher_temperature: float,
    max_tokens: int,
    verifier_max_tokens: int,
    no_structured: bool,
    dedup_threshold: float,
    seed: int,
    out: str,
    formats: str,
    store_path: str,
    estimate: bool,
    max_cost: float | None,
    workers: int | None,
    settings_file: str | None,
    pricing: str | None,
) -> None:
    """Training data aimed at the skills a profile found missing (STAT-Sel, STAT-Syn).

    stat-sel weights the pool (the train part the profile was drawn from) by the profile:
    a question's weight grows with the missing rates of its skills (softmax at
    --temperature, combined by --aggregate, at least --floor; see `skillmix.math.stat`).
    stat-syn has the teacher write --per-skill new question-solution pairs for each skill
    above --threshold, shown pool questions of that skill; a pair is kept only when an
    independent solve reaches its answer (math-verify) and it repeats no pool or held-out
    question. Writes the records (JSONL chat messages, Parquet, HF dataset), rejected.jsonl
    and a data card naming the profile run. stat-syn is a resumable, cached run.
    """
    from skillmix.data.export import check_formats
    from skillmix.errors import InputError
    from skillmix.math.problems import load_dataset
    from skillmix.math.profile import load_profile
    from skillmix.math.stat import SEL, WeightRule, load_source, select, write_stat_data

    chosen = check_formats(formats)
    store = open_store(store_path)
    stored = load_profile(store, profile_run)
    spec = dataset or stored.summary.get("dataset_source") or stored.config.get("dataset")
    try:
        loaded = load_dataset(str(spec))
    except InputError as err:
        raise UserError(
            f"cannot load the dataset of profile run {stored.run_id} ({spec}): {err}",
            hint="give it with --dataset",
        ) from err
    source = load_source(store, stored.run_id, loaded)
    result: StatData | None
    if method == SEL:
        rule = WeightRule(temperature, floor, aggregate)  # type: ignore[arg-type]
        result = select(source, rule, resample_size=resample, seed=seed)
    else:
        result = _synthesize(
            store, source, threshold=threshold, skills=skills, per_skill=per_skill, context=context,
            teacher=teacher, verifier=verifier, temperature=teacher_temperature,
            max_tokens=max_tokens, verifier_max_tokens=verifier_max_tokens,
            structured=not no_structured, dedup_threshold=dedup_threshold, seed=seed,
            estimate=estimate, max_cost=max_cost, workers=workers, settings_file=settings_file,
            pricing=pricing,
        )  # fmt: skip
        if result is None:  # an estimate
            return
    out_dir = Path(out)
    try:
        paths = write_stat_data(result, out_dir, chosen)
    except OSError as err:
        from skillmix.cli.data import cannot_write

        raise cannot_write(out_dir, err) from err
    _print_stat_data(result, method)
    console.print(f"wrote {escaped(', '.join(str(p) for p in paths.values()))}", highlight=False)


def _synthesize(store: Store, source: ProfileSource, **options: Any) -> StatData | None:
    """Run STAT-Syn for `math data`; None after printing an estimate."""
    from skillmix.math.stat_syn import StatSyn, SynConfig, missing_skills
    from skillmix.models import load_settings, resolve_model
    from skillmix.runtime.budget import check_max_cost

    check_max_cost(options["max_cost"])
    teacher = options["teacher"] or "embedded"
    skills = missing_skills(source.skills, options["threshold"])
    if options["skills"]:
        known = {s.skill: s for s in source.skills}
        unknown = [name for name in options["skills"] if name not in known]
        if unknown:
            raise UserError(
                f"--skill: the profile {source.run_id} has no skill "
                f"{', '.join(repr(u) for u in unknown)}",
                hint=f"its skills: {', '.join(sorted(known, key=str.casefold))}",
            )
        skills = [known[name] for name in dict.fromkeys(options["skills"])]
    config = SynConfig(
        profile=source.run_id,
        dataset_hash=source.dataset.content_hash,
        skills=tuple(s.skill for s in skills),
        teacher=teacher,
        verifier=options["verifier"],
        per_skill=options["per_skill"],
        context=options["context"],
        seed=options["seed"],
        temperature=options["temperature"],
        max_tokens=options["max_tokens"],
        verifier_max_tokens=options["verifier_max_tokens"],
        structured=options["structured"],
    )
    settings = load_settings(options["settings_file"], options["pricing"])
    teacher_model = resolve_model(teacher, settings)
    verifier_model = resolve_model(options["verifier"], settings) if options["verifier"] else None
    pipeline = StatSyn(
        store,
        config,
        source,
        teacher_model,
        verifier_model,
        threshold=options["threshold"],
        dedup_threshold=options["dedup_threshold"],
        settings=settings,
        max_cost=options["max_cost"],
        estimate=options["estimate"],
        workers=options["workers"],
    )
    shown = ", ".join(f"{s.skill} ({s.rate:.2f})" for s in skills) or "none"
    announce = (
        None
        if options["estimate"]
        else (
            f"math data run [bold]{pipeline.run_id}[/]: teacher {escaped(teacher)}, verifier "
            f"{escaped(config.verifier_spec)}, {config.per_skill} pair(s) for each "
            + ("skill given" if options["skills"] else f"skill above {options['threshold']:g}")
            + f" in profile {source.run_id}: {escaped(shown)}"
        )
    )
    result = run_pipeline(pipeline, pipeline.models, announce)
    if options["estimate"]:
        roles = {"teacher": [teacher_model], "verifier": [verifier_model or teacher_model]}
        print_estimate(result.stats, f"estimate for {pipeline.run_id}", roles, pipeline.calls)
        return None
    print_usage(result.stats, "this invocation")
    return result.data


def _print_stat_data(result: StatData, method: str) -> None:
    from collections import Counter

    from skillmix.report.layout import Column, print_records

    kept = Counter(s for r in result.records for s in r.skills)
    rejected = Counter(s for r in result.rejected for s in r.record.skills)
    weights: dict[str, list[float]] = {}
    for r in result.records:
        for s in r.skills:
            weights.setdefault(s, []).append(r.scores.get("weight", float("nan")))
    rates = result.meta.get("missing_rates", {})
    columns = [
        Column("skill", wrap=True),
        Column("missing rate", justify="right"),
        Column("records", justify="right"),
        Column("rejected", justify="right"),
    ]
    if method == "stat-sel":
        columns.append(Column("mean weight", justify="right"))
    rows = []
    for skill in sorted(kept.keys() | rejected.keys() | rates.keys(), key=str.casefold):
        rate = rates.get(skill)
        row = [
            skill,
            "—" if rate is None else f"{rate:.2f}",
            str(kept[skill]),
            str(rejected[skill]),
        ]
        if method == "stat-sel":
            w = weights.get(skill, [])
            row.append(f"{sum(w) / len(w):.2f}" if w else "—")
        rows.append(row)
    reasons = Counter(r.reason for r in result.rejected)
    print_records(
        console,
        columns,
        rows,
        title=f"{method} data from profile {result.meta.get('profile_run')}",
        caption=f"{len(result.records)} record(s) kept; rejected: "
        + (", ".join(f"{reason} {n}" for reason, n in reasons.most_common()) or "none"),
    )
    for warning in result.meta.get("warnings", []):
        console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)
