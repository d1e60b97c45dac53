"""The `skillmix` command: a thin shell over the library."""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import click
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from skillmix.analytics.frequency import read_frequencies
from skillmix.catalog.load import BUILTIN, CatalogError, load_catalog
from skillmix.config import RunConfig, check_max_cost, load_config_file
from skillmix.errors import BudgetError, InputError, SkillmixError, validation_message
from skillmix.metrics import Aggregation
from skillmix.models import ModelError, Settings, load_settings, resolve_model
from skillmix.models.settings import SettingsError
from skillmix.prompts import template_spec
from skillmix.protocol.calls import CallStats
from skillmix.protocol.engine import BudgetReached, Engine, RunError
from skillmix.report import build_report, render_report, write_report
from skillmix.sampling import combinations_count, elementary_symmetric
from skillmix.store import Store, StoreError
from skillmix.terminal import escaped, plain

console = Console()
err_console = Console(stderr=True)
DEFAULT_STORE = "skillmix.sqlite"
DEFAULT_OUT = "skillmix-out"


class UserError(InputError):
    """A command's options do not fit; like every `SkillmixError`, `main` prints it."""


def print_error(err: SkillmixError) -> None:
    """`error: message` on one line and the hint on the next; foreign text stays text."""
    label = "[yellow]paused[/]:" if isinstance(err, BudgetError) else "[bold red]error:[/]"
    err_console.print(f"{label} {escaped(err)}", highlight=False, soft_wrap=True)
    hint = err.hint or getattr(err.__cause__, "hint", "")
    if hint:
        err_console.print(f"[dim]hint:[/] {escaped(hint)}", highlight=False, soft_wrap=True)


class SkillmixGroup(click.Group):
    """The `skillmix` group: the one place where a `SkillmixError` becomes a message.

    A `SkillmixError` prints one line and its hint and exits with its code (1, or 3 when
    a budget paused the job); Ctrl-C exits 130. Any other exception is a bug and keeps
    its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SkillmixError as err:
            print_error(err)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            err_console.print(
                "[yellow]interrupted[/]: answers so far are saved; re-run the same command "
                "to resume"
            )
            ctx.exit(130)


def _ints(values: tuple[str, ...]) -> tuple[int, ...]:
    out: list[int] = []
    for value in values:
        for part in value.replace(",", " ").split():
            try:
                out.append(int(part))
            except ValueError as err:
                raise UserError(f"--k expects integers, got '{part}'") from err
    return tuple(out)


def _catalog(sources: tuple[str, ...]) -> Any:
    try:
        return load_catalog(list(sources) or [BUILTIN])
    except CatalogError as err:
        raise UserError(str(err)) from err


def _store(path: str, *, read_only: bool = False) -> Store:
    """The store at `path`. Commands that only read pass `read_only`: they never create a
    store (a mistyped --store says where it looked) and also work on read-only media."""
    try:
        return Store(path, read_only=read_only)
    except StoreError as err:
        raise UserError(str(err)) from err


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
    )


store_option = click.option(
    "--store",
    "store_path",
    default=lambda: os.environ.get("SKILLMIX_STORE", DEFAULT_STORE),
    show_default=DEFAULT_STORE,
    help="SQLite run store (env SKILLMIX_STORE).",
)
catalog_option = click.option(
    "--catalog",
    "catalog_sources",
    multiple=True,
    help="Catalog file(s): .yaml, .jsonl, .csv (also the original scripts' skills.csv) or "
    ".txt (one topic per line); repeat to combine. Default: built-in.",
)


@click.group(cls=SkillmixGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="skillmix")
def main() -> None:
    """Measure and teach skill composition in language models (Skill-Mix)."""


# --- catalog ---------------------------------------------------------------------------------


@main.group()
def catalog() -> None:
    """Inspect and validate skill/topic catalogs."""


@catalog.command("show")
@catalog_option
@click.option("--topics", "show_topics", is_flag=True, help="List topics instead of skills.")
@click.option("--category", help="Only skills of this category.")
def catalog_show(catalog_sources: tuple[str, ...], show_topics: bool, category: str | None) -> None:
    """List the skills (or topics) of a catalog."""
    cat = _catalog(catalog_sources)
    if show_topics:
        table = Table("id", "topic", "category", title=f"{len(cat.topics)} topics")
        for t in cat.topics:
            table.add_row(*map(plain, (t.id, t.name, t.category)))
    else:
        skills = [s for s in cat.skills if category is None or s.category == category]
        table = Table("id", "name", "category", "definition", title=f"{len(skills)} skills")
        for s in skills:
            table.add_row(*map(plain, (s.id, s.name, s.category, s.definition)))
    console.print(table)
    console.print(
        f"catalog {escaped(cat.name)} version {escaped(cat.version or '-')} "
        f"hash {cat.content_hash}",
        highlight=False,
    )


@catalog.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path())
def catalog_validate(files: tuple[str, ...]) -> None:
    """Check catalog files; print every problem with its file and line.

    Also reads the original Skill-Mix scripts' skills.csv (rows whose status is remove,
    removed, in review or maybe are left out, as those scripts did) and topics.txt.
    """
    cat = _catalog(files)
    console.print(
        f"[green]ok[/]: {len(cat.skills)} skills in {len(cat.categories)} categories, "
        f"{len(cat.topics)} topics; hash {cat.content_hash}"
    )


@catalog.command("stats")
@catalog_option
@click.option("--k", "k_values", multiple=True, default=("1,2,3,4,5",), show_default=True)
@click.option(
    "--frequencies",
    type=click.Path(exists=True),
    help="CSV kind,id,frequency (from `catalog filter`) for the corpus-occurrence bound.",
)
@click.option("--corpus-size", type=int, help="Number of texts in the corpus, for the bound.")
def catalog_stats(
    catalog_sources: tuple[str, ...],
    k_values: tuple[str, ...],
    frequencies: str | None,
    corpus_size: int | None,
) -> None:
    """Counts per category and the number of distinct items C(N,k)·T for each k.

    With --frequencies and --corpus-size, also the expected number of (item, text)
    co-occurrences in that corpus: an upper bound on how many items a model could have
    seen (topics without a frequency count as mutually exclusive, sum of p_topic <= 1).
    """
    cat = _catalog(catalog_sources)
    per_category = Table(
        "category", "skills", title=f"catalog {escaped(cat.name)} ({cat.short_hash})"
    )
    for c in cat.categories:
        per_category.add_row(plain(c), str(sum(s.category == c for s in cat.skills)))
    per_category.add_row("[bold]total", f"[bold]{len(cat.skills)}")
    console.print(per_category)
    bound_columns: tuple[str, ...] = ()
    skill_freqs: list[float] = []
    topic_total = 1.0
    if frequencies and corpus_size:
        skill_map, topic_map = read_frequencies(frequencies)
        skill_freqs = [skill_map.get(s.id, 0.0) for s in cat.skills]
        if topic_map:
            topic_total = sum(topic_map.get(t.id, 0.0) for t in cat.topics)
        bound_columns = (f"seen in {corpus_size:,} texts (bound)",)
    elif frequencies or corpus_size:
        raise UserError("the corpus bound needs both --frequencies and --corpus-size")
    combos = Table(
        "k",
        "C(N,k)·T",
        "≈",
        *bound_columns,
        title=f"N={len(cat.skills)} skills, T={len(cat.topics)} topics",
    )
    for k in _ints(k_values):
        n = combinations_count(len(cat.skills), k, len(cat.topics))
        cells = [str(k), f"{n:,}", f"10^{math.log10(n):.1f}" if n else "0"]
        if bound_columns and corpus_size:
            bound = corpus_size * topic_total * elementary_symmetric(skill_freqs, k)
            cells.append(f"{bound:,.1f} ({bound / n:.2%} of items)" if n else "0")
        combos.add_row(*cells)
    console.print(combos)


@catalog.command("filter")
@catalog_option
@click.option(
    "--corpus",
    required=True,
    type=click.Path(exists=True),
    help="Corpus sample: text with blank-line paragraphs, or JSONL with 'text'.",
)
@click.option("--tagger", required=True, help="Model that tags passages, provider:model.")
@click.option(
    "--threshold",
    default=0.05,
    show_default=True,
    help="Drop skills found in at least this share of passages.",
)
@click.option("--passages", default=200, show_default=True, help="Passages to sample.")
@click.option("--batch-size", default=8, show_default=True, help="Skills per tagger request.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--out", "out_path", required=True, help="Where to write the filtered catalog (.yaml)."
)
@store_option
def catalog_filter(
    catalog_sources: tuple[str, ...],
    corpus: str,
    tagger: str,
    threshold: float,
    passages: int,
    batch_size: int,
    seed: int,
    out_path: str,
    store_path: str,
) -> None:
    """Drop skills that are common in a corpus sample (as the published method did)."""
    from skillmix.analytics.frequency import (
        drop_common,
        estimate_frequencies,
        read_passages,
        write_catalog_yaml,
        write_frequencies,
    )
    from skillmix.protocol.calls import CallCache

    cat = _catalog(catalog_sources)
    try:
        texts = read_passages(corpus, passages, seed)
        model = resolve_model(tagger)
    except (ValueError, ModelError) as err:
        raise UserError(str(err)) from err
    store = _store(store_path)
    calls = CallCache(store)
    n_batches = -(-len(cat.skills) // batch_size)
    progress = _progress()
    task = progress.add_task("tag", total=len(texts) * n_batches)

    async def go() -> Any:
        try:
            return await estimate_frequencies(
                cat,
                texts,
                model,
                calls,
                batch_size=batch_size,
                seed=seed,
                advance=lambda: progress.advance(task),
            )
        finally:
            await model.aclose()

    try:
        with progress:
            result = asyncio.run(go())
    except ModelError as err:
        raise UserError(f"{err}\nAnswers so far are saved; re-run to resume.") from err
    filtered = drop_common(cat, result.frequencies, threshold)
    write_catalog_yaml(filtered, out_path)
    freq_path = Path(out_path).with_suffix(".frequencies.csv")
    write_frequencies(result, freq_path)
    table = Table(
        "skill", "frequency", "kept", title=f"{result.passages} passages, tagger {escaped(tagger)}"
    )
    for sid, freq in sorted(result.frequencies.items(), key=lambda kv: -kv[1]):
        table.add_row(plain(sid), f"{freq:.1%}", "no" if freq >= threshold else "yes")
    console.print(table)
    dropped = len(cat.skills) - len(filtered.skills)
    console.print(
        f"dropped {dropped} of {len(cat.skills)} skills at >= {threshold:.0%}; "
        f"{result.unparsed} unparsed tagger answer(s) left out; wrote {escaped(out_path)} "
        f"(hash {filtered.short_hash}) and {escaped(freq_path)}; "
        f"{calls.stats.sent} model calls, {calls.stats.cached} from the store",
        highlight=False,
    )


# --- run and estimate -----------------------------------------------------------------------


def run_options(func: Any) -> Any:
    """The options that define a run, shared by `run` and `estimate`."""
    options = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True),
            help="TOML/YAML file of run settings (flags override it).",
        ),
        click.option("--student", help="Model under test, provider:model (default: embedded)."),
        click.option("--judge", "judges", multiple=True, help="Judge model; repeat for several."),
        click.option(
            "--k", "k_values", multiple=True, help="Skills per item, e.g. --k 2 --k 3 or --k 2,3."
        ),
        click.option("--items", type=int, help="Items per k (default 10)."),
        click.option("--generation-rounds", type=int, help="Independent generations per item (3)."),
        click.option("--grading-rounds", type=int, help="Independent gradings per generation (3)."),
        click.option("--seed", type=int, help="Seed for items and decoding (0)."),
        catalog_option,
        click.option(
            "--templates",
            help="Template set: a built-in name (v2, the default; v1) or a folder path.",
        ),
        click.option(
            "--templates-from-reference",
            "templates_from_reference",
            type=click.Path(exists=True, file_okay=False),
            help="Use the prompt files of a checkout of the original Skill-Mix scripts.",
        ),
        click.option(
            "--tell-not-to-name",
            is_flag=True,
            help="Tell the student not to name the skills (the published prompt does not).",
        ),
        click.option(
            "--protocol",
            type=click.Choice(["skillmix", "paper"]),
            help="skillmix (default) or paper: as the published scripts "
            "(see `skillmix protocol diff`).",
        ),
        click.option("--student-max-tokens", type=int, help="Student max tokens (512)."),
        click.option("--judge-max-tokens", type=int, help="Judge max tokens (512)."),
        click.option(
            "--temperature",
            type=float,
            help="Student temperature (default: none sent; local models 0.7).",
        ),
        click.option(
            "--judge-temperature",
            type=float,
            help="Judge temperature (default: none sent; local models 0.7).",
        ),
        click.option(
            "--no-naming-penalty", is_flag=True, help="Do not zero skills named in the text."
        ),
        click.option(
            "--no-structured", is_flag=True, help="Never ask judges for structured output."
        ),
        click.option(
            "--split",
            "split_part",
            type=click.Choice(["train", "held-out"]),
            help="Evaluate on one side of a train/held-out split (--held-out-*).",
        ),
        click.option(
            "--held-out-skills", type=float, default=0.0, help="Share of skills held out."
        ),
        click.option(
            "--held-out-topics", type=float, default=0.0, help="Share of topics held out."
        ),
        click.option("--held-out-category", multiple=True, help="Skill category held out whole."),
        click.option("--split-seed", type=int, default=0, help="Seed of the split."),
        click.option(
            "--settings",
            "settings_file",
            type=click.Path(exists=True),
            help="Model settings and prices (default: ./skillmix.toml if present).",
        ),
        click.option(
            "--pricing",
            type=click.Path(exists=True),
            help="Extra prices: TOML/YAML of model = {input, output} USD per 1M tokens.",
        ),
        store_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


@dataclass
class _Prepared:
    config: RunConfig
    engine: Engine
    settings: Settings


def _prepare(
    opts: dict[str, Any],
    *,
    max_cost: float | None = None,
    dry_run: bool = False,
    workers: int | None = None,
) -> _Prepared:
    """Turn CLI options into a config, models and an engine (or a `SkillmixError`)."""
    check_max_cost(max_cost)
    settings_data: dict[str, Any] = (
        load_config_file(opts["config_file"]) if opts["config_file"] else {}
    )
    flags = {
        "student": opts["student"],
        "judges": opts["judges"] or None,
        "k": _ints(opts["k_values"]) or None,
        "items": opts["items"],
        "generation_rounds": opts["generation_rounds"],
        "grading_rounds": opts["grading_rounds"],
        "seed": opts["seed"],
        "catalog": opts["catalog_sources"] or None,
        "templates": template_spec(opts["templates"], opts["templates_from_reference"]),
        "protocol": opts["protocol"],
        "tell_not_to_name": opts["tell_not_to_name"] or None,
    }
    settings_data.update({key: value for key, value in flags.items() if value is not None})
    for role, tokens, temp in (
        ("student", opts["student_max_tokens"], opts["temperature"]),
        ("judge", opts["judge_max_tokens"], opts["judge_temperature"]),
    ):
        decoding = settings_data.get(f"{role}_decoding", {})
        given = {"max_tokens": tokens, "temperature": temp}
        overrides = {key: value for key, value in given.items() if value is not None}
        if isinstance(decoding, dict) and (decoding or overrides):  # else RunConfig says why
            default = getattr(RunConfig(), f"{role}_decoding")
            settings_data[f"{role}_decoding"] = {**default.model_dump(), **decoding, **overrides}
    if opts["no_naming_penalty"]:
        settings_data["naming_penalty"] = False
    if opts["no_structured"]:
        settings_data["structured"] = False
    if opts["split_part"]:
        settings_data["split"] = {
            "part": opts["split_part"],
            "skills": opts["held_out_skills"],
            "topics": opts["held_out_topics"],
            "categories": opts["held_out_category"],
            "seed": opts["split_seed"],
        }
    where = f"{opts['config_file']} and flags" if opts["config_file"] else "flags"
    try:
        config = RunConfig.model_validate(settings_data)
    except ValidationError as err:
        raise InputError(validation_message(err, f"invalid settings ({where})")) from None
    settings = load_settings(opts["settings_file"], opts["pricing"])
    cat = _catalog(config.catalog)
    student_model = resolve_model(config.student, settings)
    judge_models = [resolve_model(j, settings) for j in config.judges]
    store = _store(opts["store_path"])
    engine = Engine(
        store,
        config,
        cat,
        student_model,
        judge_models,
        settings=settings,
        max_cost=max_cost,
        dry_run=dry_run,
        workers=workers,
    )
    engine.sample()
    engine.calls.check_prices(engine.models)
    return _Prepared(config, engine, settings)


@main.command()
@run_options
@click.option(
    "--max-cost",
    type=float,
    help="Stop sending requests once this invocation has spent this many USD.",
)
@click.option("--workers", type=int, help="Work units in flight (default: 2 x concurrency).")
@click.option("--out", default=DEFAULT_OUT, show_default=True, help="Folder for report files.")
@click.option("--aggregation", type=click.Choice(["max", "mean", "best"]), default="max")
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
    prepared = _prepare(opts, max_cost=max_cost, workers=workers)
    config, engine = prepared.config, prepared.engine
    progress = _progress()
    bars = {stage: progress.add_task(stage, total=n) for stage, n in engine.totals.items()}
    engine.advance = lambda stage: progress.advance(bars[stage])
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
        f"{escaped(engine.templates.version_id)}, store {escaped(engine.store.path)}",
        highlight=False,
    )
    result = run_job(engine.run(), progress, lambda: engine.calls.stats, BudgetReached, RunError)
    _print_usage(result.stats, "this invocation")
    if result.retries:
        err_console.print(
            "retries: " + ", ".join(f"{cause} x{n}" for cause, n in sorted(result.retries.items())),
            highlight=False,
        )
    report = build_report(
        engine.store, result.run_id, cast(Aggregation, aggregation), settings=prepared.settings
    )
    render_report(report, console)
    paths = write_report(report, Path(out) / result.run_id)
    err_console.print(f"report files: {escaped(paths[0].parent)}/", highlight=False)


def run_job(
    job: Coroutine[Any, Any, Any],
    progress: Progress,
    stats: Callable[[], CallStats],
    paused: type[Exception],
    failed: type[Exception],
) -> Any:
    """Run a resumable job under its progress bars; the CLI's answer to every way it ends.

    `paused` (a budget reached) exits 3 after printing what was spent, `failed` becomes a
    user error, Ctrl-C exits 130; in every case what was answered is already in the store.
    """
    try:
        with progress:
            return asyncio.run(job)
    except paused as err:
        _print_usage(stats(), "this invocation")
        err_console.print(f"[yellow]paused[/]: {escaped(err)}", highlight=False)
        sys.exit(3)
    except failed as err:
        raise UserError(str(err)) from err
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted[/]: answers so far are saved; re-run the same command to resume"
        )
        sys.exit(130)


def print_estimate(stats: CallStats, title: str) -> None:
    """The predicted calls, tokens and cost per role of a job that has not run yet."""
    table = Table(
        "role",
        "calls to send",
        "from store",
        "prompt tokens",
        "completion tokens",
        "cost (USD)",
        title=title,
        title_justify="left",
    )
    for role, usage in stats.roles.items():
        cost = f"{usage.cost:.4f}" + (" + unpriced" if usage.unpriced else "")
        table.add_row(
            role,
            f"{usage.sent:,}",
            f"{usage.cached:,}",
            f"≈{usage.prompt_tokens:,}",
            f"≈{usage.completion_tokens:,}",
            cost,
        )
    console.print(table)
    console.print(f"total: {stats.sent:,} calls to send, ≈${stats.cost:.4f}")


def _print_usage(stats: CallStats, label: str) -> None:
    roles = ", ".join(f"{role} {n}" for role, n in stats.by_role.items()) or "none"
    unpriced = sum(r.unpriced for r in stats.roles.values())
    cost = f"${stats.cost:.4f}" + (f" (+{unpriced} calls without a price)" if unpriced else "")
    err_console.print(
        f"model calls ({label}): {stats.sent} sent ({roles}), {stats.cached} answered from "
        f"the store; cost {cost}",
        highlight=False,
    )


@main.command()
@run_options
def estimate(**opts: Any) -> None:
    """Predict the calls, tokens and cost of a run before starting it.

    Walks the same protocol as `run` without sending anything: answers already in the
    store count as free; new calls are estimated from this model's history in the store
    (characters per token, mean completion length) or, without history, from 4 characters
    per token and the full max-tokens (an upper bound).
    """
    prepared = _prepare(opts, dry_run=True)
    engine = prepared.engine
    result = asyncio.run(engine.run())
    print_estimate(result.stats, f"estimate for {engine.run_id}")
    unpriced = {
        m.spec for m in engine.models if prepared.settings.price(m.provider, m.name) is None
    }
    if unpriced:
        console.print(
            f"no price known for {escaped(', '.join(sorted(unpriced)))}: add \\[pricing] entries",
            highlight=False,
        )


# --- cache ---------------------------------------------------------------------------------------


@main.group()
def cache() -> None:
    """The response cache shared by every run in a store."""


@cache.command("stats")
@store_option
def cache_stats(store_path: str) -> None:
    """Cached answers per provider, model and role."""
    store = _store(store_path, read_only=True)
    table = Table(
        "provider",
        "model",
        "role",
        "answers",
        "prompt tok",
        "completion tok",
        "MB",
        "unreferenced",
        title=f"response cache in {escaped(store.path)}",
    )
    for row in store.cache_stats():
        table.add_row(
            plain(row["provider"]),
            plain(row["model"]),
            plain(row["role"]),
            f"{row['calls']:,}",
            f"{row['prompt_tokens']:,}",
            f"{row['completion_tokens']:,}",
            f"{row['bytes'] / 1e6:.2f}",
            f"{row['unreferenced']:,}",
        )
    console.print(table)
    console.print(f"store file: {store.path.stat().st_size / 1e6:.2f} MB")


@cache.command("prune")
@store_option
@click.option("--older-than", type=float, help="Only answers older than this many days.")
@click.option("--model", help="Only answers of this model (name or provider:name).")
@click.option("--unreferenced", is_flag=True, help="Only answers no run has used.")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted, delete nothing.")
def cache_prune(
    store_path: str, older_than: float | None, model: str | None, unreferenced: bool, dry_run: bool
) -> None:
    """Delete cached answers (stored generations keep their turns unless --model names them)."""
    if older_than is None and model is None and not unreferenced:
        raise UserError("say what to prune: --older-than DAYS, --model NAME and/or --unreferenced")
    store = _store(store_path)
    n = store.prune_cache(
        older_than_s=None if older_than is None else older_than * 86400,
        model=model,
        unreferenced_only=unreferenced,
        dry_run=dry_run,
    )
    console.print(f"{'would delete' if dry_run else 'deleted'} {n:,} cached answer(s)")


# --- report, show, runs --------------------------------------------------------------------------


def _latest_run(store: Store) -> str:
    runs = store.list_runs()
    if not runs:
        raise UserError(f"no runs in {store.path}; start one with `skillmix run`")
    return str(runs[-1]["id"])


@main.command()
@click.argument("run_id", required=False)
@store_option
@click.option("--aggregation", type=click.Choice(["max", "mean", "best"]), default="max")
@click.option("--out", default=DEFAULT_OUT, show_default=True, help="Folder for report files.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--settings",
    "settings_file",
    type=click.Path(exists=True),
    help="Model settings and prices (default: ./skillmix.toml if present).",
)
@click.option("--pricing", type=click.Path(exists=True), help="Extra prices (TOML/YAML).")
@click.option("--html", "html_path", help="Also write a self-contained HTML report here.")
def report(
    run_id: str | None,
    store_path: str,
    aggregation: str,
    out: str,
    as_json: bool,
    settings_file: str | None,
    pricing: str | None,
    html_path: str | None,
) -> None:
    """Metrics of a stored run (the latest by default), as a table and JSON/CSV files.

    With --html, also one self-contained HTML file (plots, heatmaps, every item); for
    several runs side by side use `skillmix html RUN...`.

    For a run made by `skillmix import reference`, also where the original scripts'
    points and ours disagree (per criterion, by cause, examples) and both sides' metrics.
    """
    store = _store(store_path, read_only=True)
    try:
        settings = load_settings(settings_file, pricing)
        rep = build_report(
            store,
            run_id or _latest_run(store),
            cast(Aggregation, aggregation),
            settings=settings,
        )
    except (StoreError, SettingsError) as err:
        raise UserError(str(err)) from err
    paths = write_report(rep, Path(out) / rep.run_id)
    if html_path:
        from skillmix.report.html import render_html

        render_html(
            store, [rep.run_id], html_path, cast(Aggregation, aggregation), settings=settings
        )
        err_console.print(f"HTML report: {escaped(html_path)}", highlight=False)
    if as_json:
        click.echo(json.dumps(rep.to_dict(), indent=2))
    else:
        render_report(rep, console)
        err_console.print(f"report files: {escaped(paths[0].parent)}/", highlight=False)


@main.command()
@store_option
def runs(store_path: str) -> None:
    """List the runs in a store."""
    store = _store(store_path, read_only=True)
    table = Table("run", "status", "student", "judges", "k", "items/k", "catalog")
    for r in store.list_runs():
        c = r["config"]
        table.add_row(
            plain(r["id"]),
            plain(r["status"]),
            plain(c["student"]),
            plain(", ".join(c["judges"])),
            ",".join(map(str, c["k"])),
            str(c["items"]),
            r["catalog_hash"][:12],
        )
    console.print(table)


@main.command()
@click.argument("item_id")
@click.option("--run", "run_id", help="Run id (default: the latest run holding the item).")
@store_option
def show(item_id: str, run_id: str | None, store_path: str) -> None:
    """Everything about one item: prompts, both turns, the extracted answer, every verdict."""
    from skillmix.report.item import render_item

    store = _store(store_path, read_only=True)
    try:
        render_item(store, item_id, run_id, console)
    except (StoreError, KeyError) as err:
        raise UserError(str(err).strip("'\"")) from err


@main.command()
@click.argument("run_ids", nargs=-1)
@store_option
@click.option("--out", "out_path", required=True, help="File to write: .jsonl, .csv or .parquet.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "parquet"]),
    help="Format (default: from the file suffix).",
)
def export(run_ids: tuple[str, ...], store_path: str, out_path: str, fmt: str | None) -> None:
    """Export runs (default: all) with one row per item x round x judge x grading round.

    JSONL and Parquet keep every text exactly. In CSV, a cell starting with = + - @, a tab
    or a carriage return gets a leading ' so spreadsheets show it instead of running it.
    """
    from skillmix.export import export_format, export_run

    try:
        export_format(out_path, fmt)  # a wrong format is named before the store is looked for
    except ValueError as err:
        raise UserError(str(err)) from err
    store = _store(store_path, read_only=True)
    try:
        ids = [store.get_run(r)["id"] for r in run_ids] or [r["id"] for r in store.list_runs()]
        n = export_run(store, ids, out_path, fmt)
    except (StoreError, ValueError) as err:
        raise UserError(str(err)) from err
    console.print(
        f"wrote {n:,} rows from {len(ids)} run(s) to {escaped(out_path)}", highlight=False
    )


# --- commands defined next to the code they drive (one add_command line each) --------------
from skillmix.report.commands import compare, html, leaderboard  # noqa: E402

main.add_command(html)
main.add_command(leaderboard)
main.add_command(compare)

from skillmix.review.commands import review  # noqa: E402

main.add_command(review)

from skillmix.data.commands import data  # noqa: E402

main.add_command(data)
import skillmix.data.instruct_commands  # noqa: E402,F401,I001

from skillmix.protocol.commands import protocol  # noqa: E402

main.add_command(protocol)

from skillmix.reference.commands import import_group  # noqa: E402

main.add_command(import_group)


if __name__ == "__main__":
    main()
