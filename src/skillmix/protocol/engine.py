"""Run the Skill-Mix protocol: items -> student (two turns) -> answer -> judges -> grades.

Work is split into units (one item x one generation round: two student turns, then every
judge's grading rounds), run on the runtime's worker pool (`runtime.pool`), which bounds
the units in flight and pauses or stops the run as it does every pipeline's. Every call
goes through `CallCache`, so a re-run, a resumed run or a re-grade only sends what has
never been answered, and a run killed at any moment loses at most the calls that were
in flight.

The run's protocol (`skillmix` or `paper`, see `protocol.differences`) decides how the
judge is asked and answers and how the naming penalty matches; the template set decides
the wording.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from skillmix import prompts
from skillmix.catalog.model import Catalog
from skillmix.catalog.sampling import Item, sample_items, split_catalog
from skillmix.config import RECORDED_KEY, Decoding, RunConfig, SplitConfig
from skillmix.models import ChatRequest, Model, parse_spec
from skillmix.models.base import effective_temperature
from skillmix.models.settings import Settings
from skillmix.prompts.rubric import build_rubric
from skillmix.protocol.differences import rules
from skillmix.protocol.extract import extract_answer
from skillmix.protocol.naming import naming_penalty, substring_naming
from skillmix.protocol.rubric_order import arrange, rubric_positions
from skillmix.protocol.sentences import count_sentences
from skillmix.protocol.verdicts import ParsedVerdict, parse_verdict, verdict_json_schema
from skillmix.runtime.calls import CallCache, CallStats
from skillmix.runtime.pool import BudgetReached, WorkerPool, derive_seed, gather_all
from skillmix.runtime.progress import Progress
from skillmix.store import Store

# What a synthetic (estimate-mode) student answer looks like: it only needs a length.
_PLACEHOLDER_WORD = "word "


def apply_split(catalog: Catalog, split: SplitConfig | None) -> Catalog:
    """The side of the catalog a run evaluates on (the whole catalog without a split)."""
    if split is None:
        return catalog
    parts = split_catalog(
        catalog,
        skill_fraction=split.skills,
        topic_fraction=split.topics,
        held_out_categories=split.categories,
        seed=split.seed,
    )
    return parts.train if split.part == "train" else parts.held_out


@dataclass
class RunResult:
    run_id: str
    resumed: bool
    stats: CallStats
    items: int
    unparsed_rounds: int
    retries: dict[str, int]


class Engine:
    """One run: a config, its catalog, a student and judges, writing to a store.

    `run()` raises `BudgetReached` when --max-cost paused it and `RunError` when a model
    stopped it (both from `runtime.pool`); a re-run resumes either. With `estimate`,
    nothing is sent or written: the result's stats are what a run would send.
    """

    def __init__(
        self,
        store: Store,
        config: RunConfig,
        catalog: Catalog,
        student: Model,
        judges: list[Model],
        *,
        settings: Settings | None = None,
        max_cost: float | None = None,
        estimate: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
    ):
        self.store = store
        self.config = config
        self.catalog = apply_split(catalog, config.split)
        self.student = student
        if len(judges) != len(config.judges):
            raise ValueError("one model per judge in the config is needed")
        self.judges = judges
        # Grades are filed under the judge as the user wrote it (e.g. with its base URL).
        self.judge_names = {
            id(model): name for name, model in zip(config.judges, judges, strict=True)
        }
        # Seeds are drawn by the judge model, not by where it is served: moving a server
        # (or a test's random port) must not change which samples a judge is asked for.
        specs = {name: parse_spec(name) for name in config.judges}
        self._judge_seed_names = {name: f"{s.provider}:{s.name}" for name, s in specs.items()}
        self.rules = rules(config.protocol)
        # What `rubric_positions` reads of the config, as a stored run holds it.
        self._order_settings = config.model_dump(include={"rubric_order", "seed", "protocol"})
        self.templates = prompts.load_templates(config.templates)
        for judge in judges:
            self.templates.check_run(
                judge_format=self._judge_format(judge), tell_not_to_name=config.tell_not_to_name
            )
        self.run_id = config.run_id(self.catalog.content_hash, self.templates.version_id)
        self.estimate = estimate
        self.calls = CallCache(
            store, run_id=self.run_id, settings=settings, max_cost=max_cost, estimate=estimate
        )
        self.pool = WorkerPool(self.calls, self.models, workers)
        self.progress = progress or Progress()
        self.unparsed_rounds = 0
        # Another process running this run: wait for it (telling on_lease_wait) or stop.
        self.wait_for_lease = False
        self.on_lease_wait: Callable[[str], None] = lambda message: None
        # Single-slot models held by one unit at a time, by identity (see `_hold`).
        self._slots: dict[str, asyncio.Lock] = {}
        self._items: list[Item] | None = None

    @property
    def models(self) -> list[Model]:
        return [self.student, *self.judges]

    def _judge_format(self, judge: Model) -> prompts.JudgeFormat:
        """How `judge` is asked to write its verdict under this run's protocol (and the
        template set's own choice of lines or a table: a format variant's)."""
        if self.rules.judge_output == "table":
            return "table"
        if self.templates.judge_format in ("lines", "table"):
            return self.templates.judge_format
        if (
            self.config.structured
            and judge.supports_structured
            and self.templates.has("format_json")
        ):
            return "json"
        return "lines"

    def effective_decoding(self) -> dict[str, Any]:
        """The decoding each model really runs at, recorded with the run.

        A temperature that is not set is not sent: a local model then samples at its
        provider's default (recorded), an HTTP server at its own (recorded as None).
        """

        def describe(model: Model, decoding: Decoding) -> dict[str, Any]:
            temperature = effective_temperature(model, ChatRequest((), decoding.temperature))
            if decoding.temperature is not None:
                source = "set"
            elif temperature is not None:
                source = f"{model.provider} default"
            else:
                source = "not sent: the server's default"
            return {
                "temperature": temperature,
                "temperature_source": source,
                "max_tokens": decoding.max_tokens,
            }

        return {
            "student": describe(self.student, self.config.student_decoding),
            "judges": {
                self.judge_names[id(j)]: describe(j, self.config.judge_decoding)
                for j in self.judges
            },
        }

    def sample(self) -> list[Item]:
        """The run's items (drawn once: `prepare_run` checks them, `run` uses them)."""
        if self._items is None:
            items: list[Item] = []
            for k in self.config.k:
                items += sample_items(self.catalog, k, self.config.items, self.config.seed)
            self._items = items
        return list(self._items)

    @property
    def totals(self) -> dict[str, int]:
        n = len(self.config.k) * self.config.items * self.config.generation_rounds
        return {"generate": n, "grade": n * len(self.judges) * self.config.grading_rounds}

    async def run(self) -> RunResult:
        """Run or resume, holding the run's lease: one process at a time runs a run.

        While another live process holds it: `RunLeased` (naming that process), or with
        `wait_for_lease` a wait until it is free.
        """
        if self.estimate:
            return await self._run()
        async with self.store.lease(
            self.run_id, wait=self.wait_for_lease, on_wait=self.on_lease_wait
        ):
            return await self._run()

    async def _run(self) -> RunResult:
        items = self.sample()  # raises SamplingError before anything is written
        self.calls.check_prices(self.models)
        resumed = False
        if not self.estimate:
            self.store.put_catalog(self.catalog)
            resumed = self.store.ensure_run(
                self.run_id,
                {
                    **self.config.model_dump(mode="json"),
                    RECORDED_KEY: self.effective_decoding(),
                },
                self.catalog.content_hash,
                self.templates.version_id,
            )
            # Skills are stored in the order the prompts list them (the item id does not
            # depend on it), so `skillmix show` rebuilds exactly what was sent.
            self.store.put_items(
                self.run_id,
                [
                    (pos, it.id, it.k, it.presented_skill_ids, it.topic_id)
                    for pos, it in enumerate(items)
                ],
            )
            self.store.set_running(self.run_id)
        units: Iterator[tuple[Item, int]] = (
            (item, gen_round)
            for item in items
            for gen_round in range(self.config.generation_rounds)
        )
        for stage, total in self.totals.items():
            self.progress.total(stage, total)
        try:
            await self.pool.run(
                units,
                lambda unit: self._unit(*unit),
                count=len(items) * self.config.generation_rounds,
            )
        except BudgetReached:
            self._set_status("paused")
            raise
        except BaseException:
            self._set_status("stopped")
            raise
        finally:
            await asyncio.gather(*(m.aclose() for m in self.models))
        self._set_status("done")
        retries: dict[str, int] = {}
        for m in self.models:
            for cause, n in getattr(m, "retry_causes", {}).items():
                retries[cause] = retries.get(cause, 0) + n
        return RunResult(
            self.run_id, resumed, self.calls.stats, len(items), self.unparsed_rounds, retries
        )

    def _set_status(self, status: str) -> None:
        if not self.estimate:
            self.store.set_run_status(self.run_id, status)

    async def _unit(self, item: Item, gen_round: int) -> None:
        skills = [self.catalog.skill(s) for s in item.presented_skill_ids]
        topic = self.catalog.topic(item.topic_id)
        decoding = self.config.student_decoding
        seed = derive_seed(self.config.seed, item.id, "generate", gen_round)

        # One conversation: each user turn of the template set, then the student's reply.
        turns = prompts.student_turns(
            self.templates, skills, topic, tell_not_to_name=self.config.tell_not_to_name
        )
        messages: list[prompts.Message] = []
        replies = []
        request: ChatRequest | None = None
        async with self._hold(self.student):
            for n, text in enumerate(turns):
                messages.append({"role": "user", "content": text})
                turn = ChatRequest(
                    tuple(messages), decoding.temperature, decoding.max_tokens, seed + n
                )
                request = turn if request is None else turn.following(request)
                reply = await self.calls.call(self.student, "student", request)
                replies.append(reply)
                messages.append({"role": "assistant", "content": _text_of(reply)})
        first, last = replies[0], replies[-1]
        if last.synthetic:
            answer = _text_of(last)
        else:
            extracted = extract_answer(last.response)
            answer = extracted.answer
            named = (
                substring_naming(answer, skills)
                if self.rules.naming_match == "substring"
                else naming_penalty(answer, skills)
            )
            self.store.put_generation(
                self.run_id,
                item.id,
                gen_round,
                turn1_key=first.key,
                turn2_key=last.key,
                answer=answer,
                explanation=extracted.explanation,
                marker_found=extracted.marker_found,
                sentences=count_sentences(answer),
                named=named,
            )
        self.progress.advance("generate")
        for judge in self.judges:
            async with self._hold(judge):
                if self.config.grading_rounds == 1:  # no task to create for one round
                    await self._grade(item, gen_round, judge, 0, answer)
                    continue
                await gather_all(
                    self._grade(item, gen_round, judge, grade_round, answer)
                    for grade_round in range(self.config.grading_rounds)
                )

    def _hold(self, model: Model) -> contextlib.AbstractAsyncContextManager[object]:
        """Keep a model that answers one request at a time to this unit for calls that
        share a prompt prefix (the student's turns; one judge's grading rounds of one
        answer), so that they run back to back and its backend reuses the prompt it has
        just evaluated instead of another unit's. By identity: the embedded student and
        judge are one llama.cpp model. Other models are not held (a no-op)."""
        if model.max_concurrency != 1:
            return contextlib.nullcontext()
        if model.identity not in self._slots:
            self._slots[model.identity] = asyncio.Lock()
        return self._slots[model.identity]

    async def _grade(
        self, item: Item, gen_round: int, judge: Model, grade_round: int, answer: str
    ) -> None:
        skills = [self.catalog.skill(s) for s in item.presented_skill_ids]
        topic = self.catalog.topic(item.topic_id)
        rubric = build_rubric(skills, topic, lowercase_skills=self.rules.lowercase_skill_labels)
        judged = [c for c in rubric if c.judged]
        judge_name = self.judge_names[id(judge)]

        def save(**fields: Any) -> None:
            if not self.estimate:
                self.store.put_grade(
                    self.run_id,
                    item.id,
                    gen_round,
                    judge_name,
                    grade_round,
                    answer=answer,
                    **fields,
                )
            self.progress.advance("grade")

        if not answer.strip():
            save(
                status="parsed",
                method="empty-answer",
                verdicts={c.id: 0 for c in judged},
                reason="the student gave no answer",
                attempts=0,
                call_keys=[],
            )
            return
        judge_format = self._judge_format(judge)
        decoding = self.config.judge_decoding
        seed = derive_seed(
            self.config.seed, item.id, gen_round, self._judge_seed_names[judge_name], "grade",
            grade_round,
        )  # fmt: skip
        keys: list[str] = []
        reason = ""
        # In the order this round shows them (`--rubric-order`; fixed: the rubric's).
        shown = arrange(
            rubric if self.rules.judge_sees_length else judged,
            rubric_positions(
                self._order_settings,
                {"item_id": item.id, "skill_ids": item.presented_skill_ids},
                gen_round,
                judge_name,
                grade_round,
            ),
        )
        messages = prompts.grading(
            self.templates,
            skills,
            topic,
            answer,
            shown,
            judge_format,
            tell_not_to_name=self.config.tell_not_to_name,
        )
        schema = verdict_json_schema(shown) if judge_format == "json" else None
        for attempt in range(self.config.parse_attempts):
            request = ChatRequest(
                tuple(messages),
                decoding.temperature,
                decoding.max_tokens,
                seed,
                schema,
                sample=attempt,
            )
            record = await self.calls.call(judge, "judge", request)
            if record.synthetic:  # estimate mode: assume the verdict parses
                save(
                    status="parsed",
                    method="estimate",
                    verdicts=None,
                    reason=None,
                    attempts=1,
                    call_keys=[],
                )
                return
            keys.append(record.key)
            parsed = parse_verdict(record.response, rubric)
            if isinstance(parsed, ParsedVerdict):
                method = (
                    f"schema:{record.structured}" if record.structured else f"text:{parsed.method}"
                )
                save(
                    status="parsed",
                    method=method,
                    verdicts=parsed.values,
                    reason=None,
                    attempts=attempt + 1,
                    call_keys=keys,
                )
                return
            reason = parsed.reason
        self.unparsed_rounds += 1
        save(
            status="unparsed",
            method="none",
            verdicts=None,
            reason=reason,
            attempts=self.config.parse_attempts,
            call_keys=keys,
        )


def _text_of(record: Any) -> str:
    """The reply of a call; for a synthetic one, placeholder text of the estimated length."""
    if record.synthetic:
        return _PLACEHOLDER_WORD * max(1, int(record.completion_tokens * 0.75))
    return str(record.response)
