"""Run the Skill-Mix protocol: items -> student (two turns) -> answer -> judges -> grades.

Work is split into units (one item x one generation round: two student turns, then every
judge's grading rounds), pulled by a bounded pool of workers so that memory stays flat
for any number of items while each model's own limiter keeps its backend saturated.
Every call goes through `CallCache`, so a re-run, a resumed run or a re-grade only sends
what has never been answered, and a run killed at any moment loses at most the calls
that were in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from skillmix import prompts
from skillmix.catalog.model import Catalog
from skillmix.config import RunConfig, SplitConfig
from skillmix.models import ChatRequest, Model, ModelError
from skillmix.models.settings import Settings
from skillmix.protocol.calls import BudgetExhausted, CallCache, CallStats
from skillmix.protocol.extract import extract_answer
from skillmix.protocol.naming import naming_penalty
from skillmix.protocol.rubric import build_rubric
from skillmix.protocol.sentences import count_sentences
from skillmix.protocol.verdicts import ParsedVerdict, parse_verdict, verdict_json_schema
from skillmix.sampling import Item, sample_items, split_catalog
from skillmix.store import Store

Advance = Callable[[str], None]
# What a synthetic (estimate-mode) student answer looks like: it only needs a length.
_PLACEHOLDER_WORD = "word "


class RunError(RuntimeError):
    """The run stopped; everything answered so far is in the store and a re-run resumes."""


class BudgetReached(RunError):
    """--max-cost was reached; the run is paused, not failed."""


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
    retries: dict[str, int]


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
        *,
        settings: Settings | None = None,
        max_cost: float | None = None,
        dry_run: bool = False,
        workers: int | None = None,
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
        self.dry_run = dry_run
        self.calls = CallCache(
            store, run_id=self.run_id, settings=settings, max_cost=max_cost, estimate=dry_run
        )
        self.advance = advance or (lambda stage: None)
        self.workers = workers
        self.unparsed_rounds = 0

    @property
    def models(self) -> list[Model]:
        return [self.student, *self.judges]

    def sample(self) -> list[Item]:
        items: list[Item] = []
        for k in self.config.k:
            items += sample_items(self.catalog, k, self.config.items, self.config.seed)
        return items

    @property
    def totals(self) -> dict[str, int]:
        n = len(self.config.k) * self.config.items * self.config.generation_rounds
        return {"generate": n, "grade": n * len(self.judges) * self.config.grading_rounds}

    def _worker_count(self, units: int) -> int:
        if self.workers:
            return max(1, min(self.workers, units))
        # Enough units in flight to fill the widest model's concurrency twice over.
        widest = max(m.max_concurrency for m in self.models)
        return max(1, min(units, 2 * widest, 8192))

    async def run(self) -> RunResult:
        items = self.sample()  # raises SamplingError before anything is written
        self.calls.check_prices(self.models)
        resumed = False
        if not self.dry_run:
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
        units: Iterator[tuple[Item, int]] = (
            (item, gen_round)
            for item in items
            for gen_round in range(self.config.generation_rounds)
        )
        n_units = len(items) * self.config.generation_rounds
        budget: list[BudgetExhausted] = []

        async def worker() -> None:
            for item, gen_round in units:
                if budget:
                    return
                try:
                    await self._unit(item, gen_round)
                except BudgetExhausted as err:
                    budget.append(err)
                    return

        tasks = [asyncio.create_task(worker()) for _ in range(self._worker_count(n_units))]
        try:
            with self.store.group_commits():
                await gather_fail_fast(tasks)
        except ModelError as err:
            self._set_status("stopped")
            raise RunError(
                f"{err}\nThe run stopped; {self.calls.stats.sent} new answers are saved in "
                f"{self.store.path}. Fix the problem and re-run the same command to resume."
            ) from err
        except BaseException:
            self._set_status("stopped")
            raise
        finally:
            await asyncio.gather(*(m.aclose() for m in self.models))
        if budget:
            self._set_status("paused")
            raise BudgetReached(
                f"{budget[0]}. {self.calls.stats.sent} answers were bought and saved; "
                "run the same command again (with a new --max-cost) to continue."
            )
        self._set_status("done")
        retries: dict[str, int] = {}
        for m in self.models:
            for cause, n in getattr(m, "retry_causes", {}).items():
                retries[cause] = retries.get(cause, 0) + n
        return RunResult(
            self.run_id, resumed, self.calls.stats, len(items), self.unparsed_rounds, retries
        )

    def _set_status(self, status: str) -> None:
        if not self.dry_run:
            self.store.set_run_status(self.run_id, status)

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
        turn2 = prompts.generation_turn2(self.templates, skills, topic, turn1, _text_of(first))
        second = await self.calls.call(
            self.student,
            "student",
            ChatRequest(tuple(turn2), decoding.temperature, decoding.max_tokens, seed + 1),
        )
        if second.synthetic:
            answer = _text_of(second)
        else:
            extracted = extract_answer(second.response)
            answer = extracted.answer
            self.store.put_generation(
                self.run_id,
                item.id,
                gen_round,
                turn1_key=first.key,
                turn2_key=second.key,
                answer=answer,
                explanation=extracted.explanation,
                marker_found=extracted.marker_found,
                sentences=count_sentences(answer),
                named=naming_penalty(answer, skills),
            )
        self.advance("generate")
        for judge in self.judges:
            await asyncio.gather(
                *(
                    self._grade(item, gen_round, judge, grade_round, answer)
                    for grade_round in range(self.config.grading_rounds)
                )
            )

    async def _grade(
        self, item: Item, gen_round: int, judge: Model, grade_round: int, answer: str
    ) -> None:
        skills = [self.catalog.skill(s) for s in item.skill_ids]
        topic = self.catalog.topic(item.topic_id)
        rubric = build_rubric(skills, topic)
        judged = [c for c in rubric if c.judged]
        judge_name = self.judge_names[id(judge)]

        def save(**fields: Any) -> None:
            if not self.dry_run:
                self.store.put_grade(
                    self.run_id, item.id, gen_round, judge_name, grade_round, **fields
                )
            self.advance("grade")

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
        schema = verdict_json_schema(rubric) if structured else None
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


async def gather_fail_fast(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for all tasks; on the first failure cancel the rest and raise it."""
    try:
        for finished in asyncio.as_completed(tasks):
            await finished
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
