"""What the `skillmix` commands share: options, consoles, progress bars, running a job.

`skillmix --help` imports this module and every command module, so at import time they
need only click and `rich.console`. Everything heavier (the store, the engine, numpy,
aiohttp, pydantic models) is imported inside the function that uses it.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import os
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import click
from rich.console import Console

from skillmix.errors import InputError
from skillmix.terminal import escaped, plain

if TYPE_CHECKING:
    from rich.progress import Progress

    from skillmix.catalog.model import Catalog
    from skillmix.cli._progress import StatusProgress
    from skillmix.models import Model
    from skillmix.protocol.prepare import PreparedRun
    from skillmix.runtime.calls import CallCache, CallStats
    from skillmix.store import Store

console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)
DEFAULT_STORE = "skillmix.sqlite"
DEFAULT_OUT = "skillmix-out"
F = TypeVar("F", bound=Callable[..., Any])


class UserError(InputError):
    """A command's options do not fit; like every `SkillmixError`, `main` prints it."""


# --- options --------------------------------------------------------------------------------

MODEL_SPECS = (
    "Forms: embedded; openai:MODEL (at OPENAI_BASE_URL, else api.openai.com); "
    "openai:MODEL@URL (any OpenAI-compatible server, e.g. openai:qwen@http://127.0.0.1:8000/v1); "
    "litellm:PROVIDER/MODEL; litellm:PROVIDER/MODEL@URL (LiteLLM with that base URL, e.g. "
    "litellm:ollama/llama3@http://127.0.0.1:11434); vllm:MODEL (in-process)."
)
AGGREGATION_HELP = (
    "How an item's generation rounds combine: max (each metric's best round, the published "
    "rule), mean, or best (the one round that ranks first on all three metrics)."
)

store_option = click.option(
    "--store",
    "store_path",
    default=lambda: os.environ.get("SKILLMIX_STORE", DEFAULT_STORE),
    show_default=DEFAULT_STORE,
    help="Run store: an SQLite file or a postgresql://user@host:port/db URL (env SKILLMIX_STORE).",
)
catalog_option = click.option(
    "--catalog",
    "catalog_sources",
    multiple=True,
    help="Catalog file(s): .yaml, .jsonl, .csv (also the original scripts' skills.csv) or "
    ".txt (one topic per line); repeat to combine. Default: built-in.",
)
aggregation_option = click.option(
    "--aggregation",
    type=click.Choice(["max", "mean", "best"]),
    default="max",
    show_default=True,
    help=AGGREGATION_HELP,
)
config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True),
    help="TOML/YAML file of run settings named as these flags (judge, k, temperature, "
    "...; docs/config.md lists them); flags override it.",
)


def settings_options(func: F) -> F:
    """--settings and --pricing: model settings and prices for any command that needs them."""
    func = click.option(
        "--pricing",
        type=click.Path(exists=True),
        help="Extra prices: TOML/YAML of model = {input, output} USD per 1M tokens.",
    )(func)
    return click.option(
        "--settings",
        "settings_file",
        type=click.Path(exists=True),
        help="Model settings and prices (default: ./skillmix.toml if present).",
    )(func)


def job_options(units: str) -> Callable[[F], F]:
    """--estimate, --max-cost and --workers of a pipeline whose units of work are `units`."""

    def decorate(func: F) -> F:
        func = click.option(
            "--workers", type=int, help=f"{units} in flight (default: 2 x concurrency)."
        )(func)
        func = click.option(
            "--max-cost", type=float, help="Stop sending once this invocation spent this (USD)."
        )(func)
        func = click.option(
            "--estimate", is_flag=True, help="Predict calls, tokens and cost; send nothing."
        )(func)
        return executor_options(func)

    return decorate


def executor_options(func: F) -> F:
    """--executor, --ray-address and --ray-actors: where a job's model calls run.

    The command runs as written; with `--executor ray` its model calls go to Ray actors
    (`runtime.ray_executor`) while it runs, and the actors stop when it ends, also on
    Ctrl-C or an error. An --estimate sends nothing, so it starts no Ray.
    """

    @functools.wraps(func)
    def command(
        *args: Any, executor: str, ray_address: str | None, ray_actors: int | None, **kwargs: Any
    ) -> Any:
        if executor == "local":
            if ray_address or ray_actors:
                raise UserError("--ray-address and --ray-actors need --executor ray")
            return func(*args, **kwargs)
        if kwargs.get("estimate"):
            return func(*args, **kwargs)
        with ray_execution(ray_address, ray_actors):
            return func(*args, **kwargs)

    options = [
        click.option(
            "--executor",
            type=click.Choice(["local", "ray"]),
            default="local",
            show_default=True,
            help="Where model calls run: in this process, or on Ray actors (needs the `ray` "
            "extra). Store, budget and progress stay here either way.",
        ),
        click.option(
            "--ray-address",
            help="Ray cluster: HOST:PORT of its head, auto (this machine is a node) or "
            "ray://HOST:PORT. Default: RAY_ADDRESS, else a local Ray for this command.",
        ),
        click.option(
            "--ray-actors",
            type=click.IntRange(min=1),
            help="Ray actors per model (default: 2; vllm: one per GPU, or per "
            "tensor_parallel_size GPUs).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return cast(F, command)


@contextlib.contextmanager
def ray_execution(address: str | None, actors: int | None) -> Iterator[None]:
    """Model calls of the jobs run inside go to Ray actors, which stop at the end."""
    from skillmix.runtime.executor import executing_on
    from skillmix.runtime.ray_executor import RayExecutor

    def note(message: str) -> None:
        err_console.print(escaped(message), highlight=False)

    with RayExecutor(address, actors, on_event=note) as ray_executor, executing_on(ray_executor):
        note(f"executor: {ray_executor.describe()}")
        yield


def run_options(func: F) -> F:
    """The options that define a run, shared by `run` and `estimate`."""
    options = [
        config_option,
        click.option("--student", help=f"Model under test (default: embedded). {MODEL_SPECS}"),
        click.option(
            "--judge",
            "judges",
            multiple=True,
            help="Judge model, in the same forms; repeat for several. Required unless the "
            "student is embedded (whose default judge is the embedded model).",
        ),
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
            "--rubric-order",
            type=click.Choice(["fixed", "shuffled"]),
            help="fixed (default) or shuffled: each grading round lists the criteria in its "
            "own seeded order, so `skillmix audit` can test for rubric-order bias.",
        ),
        click.option(
            "--split",
            "split_part",
            type=click.Choice(["train", "held-out"]),
            help="Evaluate on one side of a train/held-out split (--held-out-*).",
        ),
        click.option(
            "--held-out-skills", type=float, help="Share of skills held out (0; with --split)."
        ),
        click.option(
            "--held-out-topics", type=float, help="Share of topics held out (0; with --split)."
        ),
        click.option(
            "--held-out-category",
            multiple=True,
            help="Skill category held out whole; repeat for several (with --split).",
        ),
        click.option("--split-seed", type=int, help="Seed of the split (0; with --split)."),
        settings_options,
        store_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


# --- opening what the options name ----------------------------------------------------------


def parse_k(values: tuple[str, ...]) -> tuple[int, ...]:
    """`--k 2 --k 3,4` as (2, 3, 4)."""
    from skillmix.config import parse_ints

    return parse_ints(values, "--k")


def open_catalog(sources: Sequence[str]) -> Catalog:
    """The catalog of `--catalog` files (the built-in one when none are given)."""
    from skillmix.catalog.load import BUILTIN, load_catalog

    return load_catalog(list(sources) or [BUILTIN])


def open_store(path: str, *, read_only: bool = False) -> Store:
    """The store at `path`. Commands that only read pass `read_only`: they never create a
    store (a mistyped --store says where it looked) and also work on read-only media."""
    from skillmix.store import Store

    return Store(path, read_only=read_only)


def progress_bars() -> StatusProgress:
    """Progress bars on stderr, one per stage, with a live note of retries under them."""
    from skillmix.cli._progress import progress_bars

    return progress_bars(err_console)


# --- setting up and running a job -----------------------------------------------------------


def run_flags(opts: Mapping[str, Any]) -> dict[str, Any]:
    """A command's run options by their config keys (skillmix.config.CONFIG_KEYS).

    None: not given, as is an option the command does not have (`data sft` has no
    --protocol), so the config file or the default decides.
    """
    from skillmix.prompts import template_spec

    return {
        "student": opts.get("student"),
        "judges": opts.get("judges") or None,
        "k": opts.get("k_values") or None,
        "items": opts.get("items"),
        "generation_rounds": opts.get("generation_rounds"),
        "grading_rounds": opts.get("grading_rounds"),
        "seed": opts.get("seed"),
        "catalog": opts.get("catalog_sources") or None,
        "templates": template_spec(opts.get("templates"), opts.get("templates_from_reference")),
        "protocol": opts.get("protocol"),
        "tell_not_to_name": opts.get("tell_not_to_name") or None,
        "temperature": opts.get("temperature"),
        "judge_temperature": opts.get("judge_temperature"),
        "student_max_tokens": opts.get("student_max_tokens"),
        "judge_max_tokens": opts.get("judge_max_tokens"),
        "no_naming_penalty": opts.get("no_naming_penalty") or None,
        "no_structured": opts.get("no_structured") or None,
        "rubric_order": opts.get("rubric_order"),
        "split": opts.get("split_part"),
        "held_out_skills": opts.get("held_out_skills"),
        "held_out_topics": opts.get("held_out_topics"),
        "held_out_category": opts.get("held_out_category") or None,
        "split_seed": opts.get("split_seed"),
    }


def prepare(
    opts: Mapping[str, Any],
    *,
    defaults: Mapping[str, Any] | None = None,
    max_cost: float | None = None,
    estimate: bool = False,
    workers: int | None = None,
) -> PreparedRun:
    """The run a command's options describe (`protocol.prepare_run`), or a `SkillmixError`."""
    from skillmix.protocol.prepare import prepare_run

    return prepare_run(
        run_flags(opts),
        opts.get("config_file"),
        defaults,
        store=opts["store_path"],
        settings_file=opts.get("settings_file"),
        pricing=opts.get("pricing"),
        max_cost=max_cost,
        estimate=estimate,
        workers=workers,
    )


def run_job(
    job: Coroutine[Any, Any, Any],
    progress: Progress,
    stats: Callable[[], CallStats],
    meanwhile: Sequence[str] = (),
) -> Any:
    """Run a resumable job (any pipeline on the runtime's pool) under its progress bars.

    `BudgetReached` exits 3 after printing what was spent, Ctrl-C exits 130, and a
    `RunError` (a model stopped the job) is printed by `main` like every `SkillmixError`;
    in every case what was answered is already in the store. `meanwhile`: modules the
    command needs afterwards (its report), imported on a second thread while the job
    waits for the network (see `import_meanwhile`).
    """
    from skillmix.runtime.loop import run as run_async
    from skillmix.runtime.pool import BudgetReached

    job_done = threading.Event()
    importer = import_meanwhile(
        meanwhile, start=lambda: stats().sent > 0 or stats().cached > 0, unless=job_done
    )
    # The cyclic garbage collector, set for a command that makes many short-lived objects
    # (requests, rows, the report's records) and few cycles: a young collection waits for
    # 50,000 new objects rather than 700, which took a 4,352-item run's time in collections
    # from about 470 ms (940 of them) to 50 ms (41). Nearly all of these objects are freed
    # by reference counting; what waits for the collector is at most those 50,000 objects.
    gc.set_threshold(50_000, 10, 10)
    try:
        with progress:
            return run_async(job)
    except BudgetReached as err:
        print_usage(stats(), "this invocation")
        err_console.print(f"[yellow]paused[/]: {escaped(err)}", highlight=False)
        sys.exit(3)
    except KeyboardInterrupt:
        err_console.print(
            "[yellow]interrupted[/]: answers so far are saved; re-run the same command to resume"
        )
        sys.exit(130)
    finally:
        job_done.set()
        importer.join()


_quick_exit = False


def allow_quick_exit() -> None:
    """Say that the command closed everything it opened (its store, its files): the
    process may then exit without freeing the job's objects one by one (`cli.entry`)."""
    global _quick_exit
    _quick_exit = True


def quick_exit_allowed() -> bool:
    return _quick_exit


def import_meanwhile(
    modules: Sequence[str], start: Callable[[], bool], unless: threading.Event
) -> threading.Thread:
    """Import `modules` on a thread of their own once `start()` is true (or `unless` is
    set: then at once); join it before relying on it.

    A run spends most of its time waiting for answers, and the modules of the report that
    follows it (numpy, Jinja, the page's views) take a few hundred milliseconds to import:
    done here, that time overlaps the wait instead of adding to the command's. The thread
    waits for the first answer, so that the run's first requests are already out rather
    than waiting for the imports' turns. Importing is thread-safe (a module being imported
    by this thread makes another importer wait for it), and an import that fails here fails
    again, with its traceback, where it is used.
    """

    def started() -> bool:
        try:
            return start()
        except RuntimeError:  # read while the loop changed it (a new role's counter)
            return False

    def work() -> None:
        while not started() and not unless.wait(0.01):
            pass
        for name in modules:
            with contextlib.suppress(Exception):
                importlib.import_module(name)

    thread = threading.Thread(target=work, name="skillmix-imports", daemon=False)
    thread.start()
    return thread


class Pipeline(Protocol):
    """What `run_pipeline` needs of a job: its call cache, progress hook and coroutine."""

    calls: CallCache
    progress: Any

    def run(self) -> Coroutine[Any, Any, Any]: ...


def run_pipeline(pipeline: Pipeline, models: Sequence[Model], announce: str | None) -> Any:
    """Run a pipeline as every command does: prices checked first (a budget needs them),
    `announce` printed (None for an estimate, which says nothing until it is done), progress
    bars, and `run_job`'s exits on a budget or Ctrl-C."""
    from skillmix.runtime import ProgressBars

    pipeline.calls.check_prices(list(models))
    if announce is not None:
        err_console.print(announce, highlight=False)
    progress = progress_bars()
    pipeline.progress = ProgressBars(progress)
    return run_job(pipeline.run(), progress, lambda: pipeline.calls.stats)


# --- printing -------------------------------------------------------------------------------


def print_usage(stats: CallStats, label: str) -> None:
    """One line on stderr: the calls sent and answered from the store, per role, and the cost."""
    from skillmix.runtime.calls import usd

    roles = ", ".join(f"{role} {n}" for role, n in stats.by_role.items()) or "none"
    unpriced = sum(r.unpriced for r in stats.roles.values())
    cost = usd(stats.cost) + (f" (+{unpriced} calls without a price)" if unpriced else "")
    err_console.print(
        f"model calls ({label}): {stats.sent} sent ({roles}), {stats.cached} answered from "
        f"the store; cost {cost}",
        highlight=False,
    )


def print_estimate(
    stats: CallStats, title: str, models: Mapping[str, Sequence[Model]], calls: CallCache
) -> None:
    """The predicted calls, tokens and cost per role (and its models) of a job not run yet.

    Completion tokens (and so the cost) of a role whose models have no answers in the
    store are counted at max tokens per call: they are marked `≤`, an upper bound.
    """
    from rich.table import Table

    table = Table(
        "role",
        "model",
        "calls to send",
        "from store",
        "prompt tokens",
        "completion tokens",
        "cost (USD)",
        title=title,
        title_justify="left",
    )
    sending = [role for role, usage in stats.roles.items() if usage.sent]
    unseen = {
        role: [m for m in models.get(role, ()) if calls.estimated_without_history(m, role)]
        for role in sending
    }
    bounded = {role for role in sending if unseen[role] and unseen[role] == list(models[role])}
    for role, usage in stats.roles.items():
        mark = "≤" if role in bounded else "≈"
        cost = f"{mark}{usage.cost:.4f}" + (" + unpriced" if usage.unpriced else "")
        table.add_row(
            role,
            plain(", ".join(m.spec for m in models.get(role, ()))),
            f"{usage.sent:,}",
            f"{usage.cached:,}",
            f"≈{usage.prompt_tokens:,}",
            f"{mark}{usage.completion_tokens:,}",
            cost,
        )
    console.print(table)
    mark = "≤" if sending and bounded == set(sending) else "≈"
    console.print(f"total: {stats.sent:,} calls to send, {mark}${stats.cost:.4f}")
    if any(unseen.values()):
        names = ", ".join(f"{m.spec} ({role})" for role, ms in unseen.items() for m in ms)
        console.print(
            f"≤: an upper bound. The store holds no answers of {escaped(names)} yet, so each "
            "of their calls counts its full max tokens; after a first run, estimates use the "
            "lengths of real answers.",
            highlight=False,
        )


def print_run_estimate(prepared: PreparedRun) -> None:
    """Walk a run prepared in estimate mode and print what it would send and cost."""
    from skillmix.runtime.loop import run as run_async

    engine = prepared.engine
    result = run_async(engine.run())
    roles = {"student": [engine.student], "judge": list(engine.judges)}
    print_estimate(result.stats, f"estimate for {engine.run_id}", roles, engine.calls)
    unpriced = {
        m.spec for m in engine.models if prepared.settings.price(m.provider, m.name) is None
    }
    if unpriced:
        console.print(
            f"no price known for {escaped(', '.join(sorted(unpriced)))}: add \\[pricing] entries",
            highlight=False,
        )
