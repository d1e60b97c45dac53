"""One runtime for every pipeline: the worker pool on its own, then the evaluation, the SFT
data and the Instruct-SkillMix data paused by the same budget in the same way, in the
library and through the CLI, against a priced scripted server."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import skillmix
from scripted_server import ScriptedServer, honest_policy
from skillmix.catalog.load import load_catalog
from skillmix.config import RunConfig
from skillmix.data.instruct import InstructConfig, InstructPipeline
from skillmix.data.sft import sft_config, sft_engine
from skillmix.errors import ModelError
from skillmix.models import load_settings, resolve_model
from skillmix.models.settings import Price
from skillmix.protocol.engine import Engine
from skillmix.protocol.prepare import prepare_run
from skillmix.runtime.calls import BudgetExhausted, CallCache
from skillmix.runtime.pool import BudgetReached, RunError, WorkerPool
from skillmix.runtime.progress import Progress
from skillmix.store import Store
from test_data_instruct import teacher_policy

# --- the pool on its own ----------------------------------------------------------------------


def pool(tmp_path: Path, workers: int) -> WorkerPool:
    return WorkerPool(CallCache(Store(tmp_path / "s.sqlite"), max_cost=1.0), [], workers)


def test_a_failure_cancels_the_units_in_flight_and_starts_no_other(tmp_path: Path):
    started: list[int] = []
    cancelled: list[int] = []

    async def work(unit: int) -> None:
        started.append(unit)
        if unit == 2:  # units 0 and 1 are waiting on their models
            raise ModelError("the model went away")
        try:
            await asyncio.Event().wait()  # never answered
        except asyncio.CancelledError:
            cancelled.append(unit)
            raise

    with pytest.raises(RunError) as info:
        asyncio.run(pool(tmp_path, workers=3).run(range(10), work))
    assert started == [0, 1, 2]
    assert sorted(cancelled) == [0, 1]
    assert isinstance(info.value.__cause__, ModelError)
    assert str(info.value).startswith("the model went away\nThe run stopped; 0 new answers")
    assert "re-run the same command to resume" in str(info.value)


def test_a_budget_refusal_starts_no_unit_but_lets_those_in_flight_land(tmp_path: Path):
    started: list[int] = []
    landed: list[int] = []
    answered = asyncio.Event()

    async def work(unit: int) -> None:
        started.append(unit)
        if unit == 2:  # the budget refuses unit 2's request while 0 and 1 are in flight
            answered.set()
            raise BudgetExhausted("budget reached", worst_case=0.5)
        await answered.wait()
        await asyncio.sleep(0)  # an answer lands a loop iteration later
        landed.append(unit)

    with pytest.raises(BudgetReached) as info:
        asyncio.run(pool(tmp_path, workers=3).run(range(10), work))
    assert started == [0, 1, 2]
    assert sorted(landed) == [0, 1]  # before the pause surfaced
    assert str(info.value) == (
        "budget reached: $0.0000 spent of --max-cost $1.0000. 0 answers were bought and "
        "saved; run the same command again (with a new --max-cost) to continue."
    )


def test_cancelling_the_job_cancels_every_unit(tmp_path: Path):
    cancelled: list[int] = []

    async def main() -> None:
        all_started = asyncio.Event()
        started = 0

        async def work(unit: int) -> None:
            nonlocal started
            started += 1
            if started == 4:
                all_started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(unit)
                raise

        job = asyncio.create_task(pool(tmp_path, workers=4).run(range(10), work))
        await all_started.wait()
        job.cancel()  # what Ctrl-C does to asyncio.run's task
        with pytest.raises(asyncio.CancelledError):
            await job

    asyncio.run(main())
    assert sorted(cancelled) == [0, 1, 2, 3]


# --- every pipeline, paused by the same budget -------------------------------------------------

# The scripted server bills every answer as 10 prompt + 5 completion tokens. With prompts
# free, an answer costs 5 output tokens and a request's worst case its max tokens.
PRICE = Price(input=0, output=100)
MAX_TOKENS = 16  # the least Instruct-SkillMix takes
ANSWER = PRICE.cost(10, 5)
WORST = PRICE.cost(0, MAX_TOKENS)
PAUSED = re.compile(
    r"budget reached: \$(?P<spent>\d+\.\d{4}) spent of --max-cost \$(?P<cap>\d+\.\d{4})"
    r"; the next request could cost up to \$(?P<next>\d+\.\d{4})\. (?P<sent>\d+) answers were "
    r"bought and saved; run the same command again \(with a new --max-cost\) to continue\."
)


def settings_file(folder: Path) -> Path:
    path = folder / "skillmix.toml"
    path.write_text(
        '[models."openai:scripted"]\nmax_concurrency = 128\n\n'
        f"[pricing]\nscripted = {{ input = {PRICE.input}, output = {PRICE.output} }}\n"
    )
    return path


class Recorded(Progress):
    """Progress as a pipeline reports it: every stage announced before it advances."""

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.done: Counter[str] = Counter()

    def total(self, stage: str, total: int) -> None:
        self.totals[stage] = total

    def advance(self, stage: str, n: int = 1) -> None:
        assert stage in self.totals, f"{stage} advanced before its total was given"
        self.done[stage] += n


# Eight items, one generation and one grading each: 24 requests.
SMALL: dict[str, Any] = {
    "items": 8,
    "generation_rounds": 1,
    "grading_rounds": 1,
    "student_decoding": {"max_tokens": MAX_TOKENS},
    "judge_decoding": {"max_tokens": MAX_TOKENS},
}


def evaluation(spec: str, store: Store, cap: float, progress: Progress) -> Any:
    settings = load_settings(settings_file(store.path.parent))
    config = RunConfig(student=spec, judges=(spec,), k=(2,), **SMALL)
    model = resolve_model(spec, settings)
    return Engine(
        store,
        config,
        load_catalog(),
        model,
        [model],
        settings=settings,
        max_cost=cap,
        progress=progress,
    )


def sft(spec: str, store: Store, cap: float, progress: Progress) -> Any:
    settings = load_settings(settings_file(store.path.parent))
    config = sft_config(spec, [spec], k=(2,), **SMALL)
    model = resolve_model(spec, settings)
    return sft_engine(
        store,
        config,
        load_catalog(),
        model,
        [model],
        settings=settings,
        max_cost=cap,
        progress=progress,
    )


def instruct(spec: str, store: Store, cap: float, progress: Progress) -> Any:
    settings = load_settings(settings_file(store.path.parent))
    config = InstructConfig(
        teacher=spec,
        topics=4,
        skills_per_topic=4,
        query_types=4,
        examples=8,
        seed=3,
        list_max_tokens=MAX_TOKENS,
        max_tokens=MAX_TOKENS,
    )
    model = resolve_model(spec, settings)
    return InstructPipeline(
        store, config, model, settings=settings, max_cost=cap, progress=progress
    )


Job = Callable[[str, Store, float, Progress], Any]
# (pipeline, the server's script, the cap in worst cases). An answer is 5/16 of a worst
# case, so a cap of 3.4 lets about three requests fly at once and refuses one once eight
# answers are in; Instruct-SkillMix's catalog takes six answers, so 2.3 pauses it there.
CASES: dict[str, tuple[Job, Callable[[dict[str, Any]], Any], float]] = {
    "evaluation": (evaluation, honest_policy, 3.4),
    "sft": (sft, honest_policy, 3.4),
    "instruct-catalog": (instruct, teacher_policy, 2.3),
    "instruct-examples": (instruct, teacher_policy, 3.4),
}


@pytest.mark.parametrize("case", CASES)
def test_every_pipeline_pauses_the_same_way(tmp_path: Path, case: str):
    job, policy, caps = CASES[case]
    cap = caps * WORST
    progress = Recorded()
    with ScriptedServer(policy) as server:
        store = Store(tmp_path / "s.sqlite")
        pipeline = job(server.spec(), store, cap, progress)
        with pytest.raises(BudgetReached) as info:
            asyncio.run(pipeline.run())
    message = PAUSED.fullmatch(str(info.value))
    assert message, str(info.value)
    # Nothing in flight was left uncounted: every request the server got was answered,
    # stored and counted in the figure the pause states, which stays under the cap.
    sent = len(server.requests)
    stats = pipeline.calls.stats
    assert int(message["sent"]) == stats.sent == sent == store.count_calls()
    assert message["spent"] == f"{stats.cost:.4f}" == f"{sent * ANSWER:.4f}"
    assert message["next"] == f"{WORST:.4f}"
    assert cap - WORST < sent * ANSWER <= cap
    # Every pipeline reports its stages the same way, and stopped part way.
    assert progress.totals and all(progress.done[s] <= n for s, n in progress.totals.items())
    if case == "instruct-catalog":
        assert "examples" not in progress.totals, "paused while naming skills"
    if case == "instruct-examples":
        assert 0 < progress.done["examples"] < 8
    if isinstance(pipeline, Engine):
        assert store.get_run(pipeline.run_id)["status"] == "paused"


def cli_args(pipeline: str, spec: str, folder: Path) -> list[str]:
    common = ["--settings", str(settings_file(folder)), "--max-cost", str(3.4 * WORST)]
    rounds = ["--k", "2", "--items", "8", "--generation-rounds", "1", "--grading-rounds", "1"]
    if pipeline == "run":
        tokens = ["--student-max-tokens", "16", "--judge-max-tokens", "16"]
        return ["run", "--student", spec, "--judge", spec, *rounds, *tokens, *common]
    if pipeline == "sft":
        tokens = ["--teacher-max-tokens", "16", "--judge-max-tokens", "16"]
        teacher = ["--teacher", spec, "--judge", spec, "--formats", "jsonl"]
        return ["data", "sft", *teacher, *rounds, *tokens, *common]
    sizes = ["--topics", "4", "--skills-per-topic", "4", "--query-types", "4", "--examples", "8"]
    tokens = ["--max-tokens", "16", "--list-max-tokens", "16"]
    teacher = ["--teacher", spec, "--seed", "3", "--formats", "jsonl"]
    return ["data", "instruct", *teacher, *sizes, *tokens, *common]


@pytest.mark.parametrize("pipeline", ["run", "sft", "instruct"])
def test_every_command_pauses_with_exit_3_and_one_message(tmp_path: Path, pipeline: str):
    policy = teacher_policy if pipeline == "instruct" else honest_policy
    with ScriptedServer(policy) as server:
        proc = skillmix(*cli_args(pipeline, server.spec(), tmp_path), cwd=tmp_path, check=False)
    assert proc.returncode == 3, proc.stderr
    stderr = " ".join(proc.stderr.split())
    message = re.search(r"paused: " + PAUSED.pattern, stderr)
    usage = re.search(
        r"model calls \(this invocation\): (\d+) sent .*?; cost \$(\d+\.\d{4})", stderr
    )
    assert message and usage, proc.stderr
    billed = len(server.requests) * ANSWER
    assert message["spent"] == usage[2] == f"{billed:.4f}"
    assert int(message["sent"]) == int(usage[1]) == len(server.requests)
    assert not any(p.is_dir() for p in tmp_path.iterdir()), "a paused job writes no data"
    stored = sqlite3.connect(tmp_path / "skillmix.sqlite").execute("SELECT COUNT(*) FROM calls")
    assert stored.fetchone()[0] == len(server.requests)


# --- setting a run up ---------------------------------------------------------------------------


def test_prepare_run_merges_flags_a_config_file_and_defaults(tmp_path: Path):
    student, judge = "openai:s@http://127.0.0.1:9/v1", "openai:j@http://127.0.0.1:9/v1"
    (tmp_path / "run.toml").write_text(f'judge = "{judge}"\nitems = 3\nk = [2]\n')
    prepared = prepare_run(
        {"student": student, "items": 2, "seed": None},  # None: not given
        tmp_path / "run.toml",
        {"k": (1, 2, 3), "seed": 5},
        store=tmp_path / "s.sqlite",
        settings_file=settings_file(tmp_path),
        estimate=True,
    )
    # Flags win over the file, the file over the defaults, which fill in the rest.
    expected = RunConfig(student=student, judges=(judge,), items=2, k=(2,), seed=5)
    assert prepared.config == expected
    engine = prepared.engine
    assert engine.run_id == expected.run_id(
        prepared.catalog.content_hash, engine.templates.version_id
    )
    assert engine.store.path == tmp_path / "s.sqlite" and engine.estimate
