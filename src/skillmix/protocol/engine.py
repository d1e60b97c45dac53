"""Run the Skill-Mix protocol: items -> student (two turns) -> answer -> judges -> grades.

Every model call goes through `CallCache.call`, which first looks the request up in the
store by its content key. A re-run, a resumed run or a re-grade therefore only sends the
requests that have never been answered, and a run killed at any moment loses at most the
calls that were in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from skillmix import prompts
from skillmix.catalog.model import Catalog
from skillmix.config import RunConfig, SplitConfig
from skillmix.models import ChatRequest, ChatResponse, Model, ModelError
from skillmix.protocol.extract import extract_answer
from skillmix.protocol.naming import naming_penalty
from skillmix.protocol.rubric import build_rubric
from skillmix.protocol.sentences import count_sentences
from skillmix.protocol.verdicts import ParsedVerdict, parse_verdict, verdict_json_schema
from skillmix.sampling import Item, sample_items, split_catalog
from skillmix.store import CallRecord, Store

Advance = Callable[[str], None]


class RunError(RuntimeError):
    """The run stopped; everything answered so far is in the store and a re-run resumes."""


@dataclass
class CallStats:
    sent: int = 0
    cached: int = 0
    by_role: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0


class CallCache:
    """Content-addressed model calls backed by the store, with per-model concurrency."""

    def __init__(self, store: Store):
        self.store = store
        self.stats = CallStats()
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._inflight: dict[str, asyncio.Future[CallRecord]] = {}

    async def call(self, model: Model, role: str, request: ChatRequest) -> CallRecord:
        key = request.key(model.identity)
        cached = self.store.get_call(key)
        if cached is not None:
            self.stats.cached += 1
            return cached
        if key in self._inflight:  # the same request is already on its way
            return await asyncio.shield(self._inflight[key])
        future: asyncio.Future[CallRecord] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            record = await self._send(model, role, request, key)
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # mark retrieved: no "never retrieved" warning
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(record)
        return record

    async def _send(self, model: Model, role: str, request: ChatRequest, key: str) -> CallRecord:
        limit = self._limits.setdefault(model.spec, asyncio.Semaphore(model.max_concurrency))
        async with limit:
            started = time.perf_counter()
            response: ChatResponse = await model.complete(request)
            latency = time.perf_counter() - started
        record = CallRecord(
            key=key,
            provider=model.provider,
            model=model.name,
            role=role,
            messages=list(request.messages),
            settings=request.settings(),
            response=response.text,
            prompt_tokens=response.prompt_tokens,
            completion_tokens=response.completion_tokens,
            structured=response.structured,
            finish_reason=response.finish_reason,
            latency_s=latency,
        )
        self.store.put_call(record)
        self.stats.sent += 1
        self.stats.by_role[role] = self.stats.by_role.get(role, 0) + 1
        self.stats.prompt_tokens += response.prompt_tokens
        self.stats.completion_tokens += response.completion_tokens
        return record


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


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from named parts: stable across machines and Python versions."""
    blob = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


@dataclass
class RunResult:
    run_id: str
    resumed: bool
    stats: CallStats
    items: int
    unparsed_rounds: int


class Engine:
    """One run: a config, its catalog, a student and judges, writing to a store."""

    def __init__(
        self,
        store: Store,
        config: RunConfig,
        catalog: Catalog,
        student: Model,
        judges: list[Model],
        advance: Advance | None = None,
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
        self.templates = prompts.load_templates(config.templates)
        self.run_id = config.run_id(self.catalog.content_hash, self.templates.version_id)
        self.calls = CallCache(store)
        self.advance = advance or (lambda stage: None)
        self.unparsed_rounds = 0

    def sample(self) -> list[Item]:
        items: list[Item] = []
        for k in self.config.k:
            items += sample_items(self.catalog, k, self.config.items, self.config.seed)
        return items

    @property
    def totals(self) -> dict[str, int]:
        n = len(self.config.k) * self.config.items * self.config.generation_rounds
        return {"generate": n, "grade": n * len(self.judges) * self.config.grading_rounds}

    async def run(self) -> RunResult:
        items = self.sample()  # raises SamplingError before anything is written
        self.store.put_catalog(self.catalog)
        resumed = self.store.ensure_run(
            self.run_id,
            self.config.model_dump(mode="json"),
            self.catalog.content_hash,
            self.templates.version_id,
        )
        self.store.put_items(
            self.run_id,
            [(pos, it.id, it.k, it.skill_ids, it.topic_id) for pos, it in enumerate(items)],
        )
        self.store.set_run_status(self.run_id, "running")
        units = [
            self._unit(item, gen_round)
            for item in items
            for gen_round in range(self.config.generation_rounds)
        ]
        tasks = [asyncio.create_task(u) for u in units]
        try:
            await _gather_fail_fast(tasks)
        except ModelError as err:
            self.store.set_run_status(self.run_id, "stopped")
            raise RunError(
                f"{err}\nThe run stopped; {self.calls.stats.sent} new answers are saved in "
                f"{self.store.path}. Fix the problem and re-run the same command to resume."
            ) from err
        except BaseException:
            self.store.set_run_status(self.run_id, "stopped")
            raise
        finally:
            await asyncio.gather(*(m.aclose() for m in [self.student, *self.judges]))
        self.store.set_run_status(self.run_id, "done")
        return RunResult(self.run_id, resumed, self.calls.stats, len(items), self.unparsed_rounds)

    async def _unit(self, item: Item, gen_round: int) -> None:
        skills = [self.catalog.skill(s) for s in item.skill_ids]
        topic = self.catalog.topic(item.topic_id)
        decoding = self.config.student_decoding
        seed = derive_seed(self.config.seed, item.id, "generate", gen_round)

        turn1 = prompts.generation_turn1(self.templates, skills, topic)
        first = await self.calls.call(
            self.student,
            "student",
            ChatRequest(tuple(turn1), decoding.temperature, decoding.max_tokens, seed),
        )
        turn2 = prompts.generation_turn2(self.templates, skills, topic, turn1, first.response)
        second = await self.calls.call(
            self.student,
            "student",
            ChatRequest(tuple(turn2), decoding.temperature, decoding.max_tokens, seed + 1),
        )
        extracted = extract_answer(second.response)
        named = naming_penalty(extracted.answer, skills)
        self.store.put_generation(
            self.run_id,
            item.id,
            gen_round,
            turn1_key=first.key,
            turn2_key=second.key,
            answer=extracted.answer,
            explanation=extracted.explanation,
            marker_found=extracted.marker_found,
            sentences=count_sentences(extracted.answer),
            named=named,
        )
        self.advance("generate")
        for judge in self.judges:
            for grade_round in range(self.config.grading_rounds):
                await self._grade(item, gen_round, judge, grade_round, extracted.answer)
                self.advance("grade")

    async def _grade(
        self, item: Item, gen_round: int, judge: Model, grade_round: int, answer: str
    ) -> None:
        skills = [self.catalog.skill(s) for s in item.skill_ids]
        topic = self.catalog.topic(item.topic_id)
        rubric = build_rubric(skills, topic)
        judged = [c for c in rubric if c.judged]
        judge_name = self.judge_names[id(judge)]

        def save(**fields: Any) -> None:
            self.store.put_grade(self.run_id, item.id, gen_round, judge_name, grade_round, **fields)

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
        structured = self.config.structured and judge.supports_structured
        decoding = self.config.judge_decoding
        seed = derive_seed(self.config.seed, item.id, gen_round, judge_name, "grade", grade_round)
        keys: list[str] = []
        reason = ""
        messages = prompts.grading(self.templates, skills, topic, answer, rubric, structured)
        for attempt in range(self.config.parse_attempts):
            request = ChatRequest(
                tuple(messages),
                decoding.temperature,
                decoding.max_tokens,
                seed,
                verdict_json_schema(rubric) if structured else None,
                sample=attempt,
            )
            record = await self.calls.call(judge, "judge", request)
            keys.append(record.key)
            parsed = parse_verdict(record.response, rubric)
            if isinstance(parsed, ParsedVerdict):
                method = "schema" if record.structured else f"text:{parsed.method}"
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


async def _gather_fail_fast(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for all tasks; on the first failure cancel the rest and raise it."""
    try:
        for finished in asyncio.as_completed(tasks):
            await finished
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
