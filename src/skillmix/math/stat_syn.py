"""STAT-Syn: the teacher writes new examples for the skills a student lacks.

For every skill whose missing rate in the profile is above the threshold (`missing_skills`)
the teacher writes `per_skill` question-solution pairs, each prompt showing up to
`context` pool questions labelled with that skill (seeded per pair, so that the pairs of
one skill see different examples). A pair is kept only when it passes, in order:

1. it can be read (`stat_prompts.parse_pair`, `parse_attempts` draws), else
   "unparsed-pair";
2. the written solution's own final answer, when it states one, is the written answer
   (`eval.same_answer`, math-verify), else "inconsistent-pair";
3. an independent solve agrees: the verifier (the teacher, or `--verifier MODEL`) answers
   the question in a fresh conversation with the student's zero-shot prompt, and
   `check_answer` (math-verify) must find its final answer equal to the written answer,
   else "verify-disagrees";
4. it repeats no held-out question (`problems.leak_check`: the same text, or word 3-gram
   Jaccard >= 0.8 with symbols as words), else "leak";
5. its question is not a near-duplicate (MinHash, as `data.dedup`) of a pool question,
   a held-out question or a generated question kept before it, else
   "near-duplicate-pool", "near-duplicate-test" or "near-duplicate".

Every rejected pair is written to rejected.jsonl with its reason and counted on the data
card. The run is a row of `runs` (config kind "math-stat-syn") with a `math.stat.pair`
record per pair after steps 1-3; every request goes through `CallCache`, so a killed run
resumes without asking anything twice and `--max-cost` and `--estimate` behave as in
every pipeline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skillmix.data.card import CardMeta, embedded_warnings, usage_counts
from skillmix.data.dedup import Rejection, dedup_method, near_duplicate_pairs
from skillmix.data.records import DataRecord
from skillmix.errors import InputError
from skillmix.math.answers import extract_final_answer
from skillmix.math.eval import (
    Attempt,
    Unparsed,
    ask_until_parsed,
    same_answer,
    solve_attempt,
)
from skillmix.math.problems import MathProblem, leak_check
from skillmix.math.profile import DEFAULT_THRESHOLD, SkillProfile
from skillmix.math.stat import (
    SYN,
    ProfileSource,
    StatData,
    catalog_facts,
    chat_messages,
    rejection_reasons,
    source_warnings,
)
from skillmix.math.stat_prompts import (
    PROMPTS_VERSION,
    WrittenPair,
    pair_schema,
    parse_pair,
    write_messages,
)
from skillmix.math.strategies import examples_by_skill, skill_shots
from skillmix.models import Model
from skillmix.models.settings import Settings
from skillmix.runtime.calls import CallCache, CallStats
from skillmix.runtime.pool import BudgetReached, WorkerPool, derive_seed
from skillmix.runtime.progress import Progress
from skillmix.store import CallRecord, Store

KIND = "math-stat-syn"  # the run's config kind and its id prefix
PAIR_RECORD = "math.stat.pair"  # per pair, keyed "<skill number>/<pair number>"
STAGE = "pairs"
CHECKS = ("unparsed-pair", "inconsistent-pair", "verify-disagrees")
FILTERS = ("leak", "near-duplicate-pool", "near-duplicate-test", "near-duplicate")


def missing_skills(
    skills: Sequence[SkillProfile], threshold: float = DEFAULT_THRESHOLD
) -> list[SkillProfile]:
    """The skills whose missing rate is above `threshold`, highest first (then by name)."""
    flagged = [s for s in skills if s.flagged(threshold)]
    return sorted(flagged, key=lambda s: (-s.rate, s.skill.casefold(), s.skill))


class SynConfig(BaseModel):
    """Everything that determines a STAT-Syn run; its hash is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: str  # the profile run
    dataset_hash: str
    skills: tuple[str, ...]  # the missing skills to write for, in order
    teacher: str = "embedded"
    verifier: str | None = None  # None: the teacher solves its own questions afresh
    per_skill: int = Field(4, ge=1, le=1000)
    context: int = Field(3, ge=0, le=16, description="pool questions shown per prompt")
    seed: int = 0
    temperature: float | None = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=16)
    verifier_max_tokens: int = Field(1024, ge=16)
    structured: bool = True
    parse_attempts: int = Field(2, ge=1, le=8)

    @property
    def verifier_spec(self) -> str:
        return self.verifier or self.teacher

    def run_id(self) -> str:
        blob = json.dumps(self.recorded(), sort_keys=True)
        return f"{KIND}-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    def recorded(self) -> dict[str, Any]:
        return {"kind": KIND, **self.model_dump(mode="json"), "prompts": PROMPTS_VERSION}


@dataclass(frozen=True)
class PairPlan:
    """One pair to write: its skill, its number within the skill, the pool examples shown."""

    skill_index: int
    skill: str
    index: int
    examples: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{self.skill_index:03d}/{self.index:03d}"


@dataclass(frozen=True)
class PairOutcome:
    """A pair after steps 1-3: the record, and the reason it was rejected (None: kept)."""

    plan: PairPlan
    record: DataRecord
    reason: str | None = None
    detail: str = ""


@dataclass
class SynResult:
    run_id: str
    resumed: bool
    stats: CallStats
    data: StatData | None  # None in estimate mode


class StatSyn:
    """One STAT-Syn run: a profile source, a config, the teacher and the verifier."""

    def __init__(
        self,
        store: Store,
        config: SynConfig,
        source: ProfileSource,
        teacher: Model,
        verifier: Model | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        dedup_threshold: float = 0.8,
        settings: Settings | None = None,
        max_cost: float | None = None,
        estimate: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
    ):
        if config.profile != source.run_id or config.dataset_hash != source.dataset.content_hash:
            raise ValueError("the config names another profile run or dataset than the source")
        if not 0.0 < dedup_threshold <= 1.0:
            raise InputError(f"--dedup-threshold must be in (0, 1], got {dedup_threshold}")
        self.store = store
        self.config = config
        self.source = source
        self.teacher = teacher
        self.verifier = verifier or teacher
        self.threshold = threshold
        self.dedup_threshold = dedup_threshold
        self.run_id = config.run_id()
        self.estimate = estimate
        self.calls = CallCache(
            store, run_id=self.run_id, settings=settings, max_cost=max_cost, estimate=estimate
        )
        self.pool = WorkerPool(self.calls, self.models, workers)
        self.progress = progress or Progress()
        self.structured = config.structured and teacher.supports_structured
        leaks = {a for a, _ in leak_check(source.pool.problems, source.held_out.problems)}
        self.examples = [p for p in source.pool if p.id not in leaks]
        self.by_skill = examples_by_skill(self.examples, source.labels.by_question)
        self.problems = {p.id: p for p in source.dataset}

    @property
    def models(self) -> list[Model]:
        return [self.teacher] if self.verifier is self.teacher else [self.teacher, self.verifier]

    def plans(self) -> list[PairPlan]:
        """Every pair to write, skill by skill."""
        cfg = self.config
        return [
            PairPlan(
                i,
                skill,
                j,
                skill_shots(self.by_skill, [skill], cfg.context, cfg.seed, f"{SYN}-{j}")
                if cfg.context
                else (),
            )
            for i, skill in enumerate(cfg.skills)
            for j in range(cfg.per_skill)
        ]

    # --- the run ------------------------------------------------------------------------------

    async def run(self) -> SynResult:
        """Write and check every pair, then filter them (nothing is written in estimate mode)."""
        if self.estimate:
            return await self._run()
        async with self.store.lease(self.run_id):
            return await self._run()

    async def _run(self) -> SynResult:
        self.calls.check_prices(self.models)
        resumed = False
        if not self.estimate:
            catalog = self.source.labels.catalog(self.source.dataset.name)
            self.store.put_catalog(catalog)
            resumed = self.store.ensure_run(
                self.run_id, self.config.recorded(), catalog.content_hash, PROMPTS_VERSION
            )
            self.store.set_running(self.run_id)
        plans = self.plans()
        outcomes: dict[str, PairOutcome | None] = {}
        self.progress.total(STAGE, len(plans))

        async def work(plan: PairPlan) -> None:
            outcome = await self.pair(plan)
            outcomes[plan.key] = outcome
            if outcome is not None and not self.estimate:
                self.store.put_record(self.run_id, PAIR_RECORD, plan.key, _stored(outcome))
            self.progress.advance(STAGE)

        try:
            await self.pool.run(plans, work)
        except BudgetReached:
            self._set_status("paused")
            raise
        except BaseException:
            self._set_status("stopped")
            raise
        finally:
            await asyncio.gather(*(m.aclose() for m in self.models))
        self._set_status("done")
        if self.estimate:
            return SynResult(self.run_id, resumed, self.calls.stats, None)
        done = [o for p in plans if (o := outcomes.get(p.key)) is not None]
        records, rejected = self.filter(done)
        return SynResult(
            self.run_id, resumed, self.calls.stats, StatData(records, rejected, self.meta())
        )

    def _set_status(self, status: str) -> None:
        if not self.estimate:
            self.store.set_run_status(self.run_id, status)

    async def pair(self, plan: PairPlan) -> PairOutcome | None:
        """Steps 1-3 for one pair (None in estimate mode)."""
        cfg = self.config
        definition = self.source.labels.definitions.get(plan.skill, "")
        examples = [self.problems[e] for e in plan.examples]
        messages = write_messages(plan.skill, definition, examples, structured=self.structured)

        def read(record: CallRecord) -> WrittenPair | Unparsed:
            return parse_pair(record.response)

        written = await ask_until_parsed(
            self.calls,
            self.teacher,
            "teacher",
            messages,
            read,
            seed=derive_seed(cfg.seed, KIND, "write", plan.skill, plan.index),
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            schema=pair_schema() if self.structured else None,
            attempts=cfg.parse_attempts,
        )
        keys: dict[str, Any] = {"write": list(written.keys)}
        if written.synthetic:  # an estimate: count the verifier's solve too
            await self._verify(plan, "(estimate)", "0")
            return None
        pair = written.value
        if pair is None:  # kept as the teacher's conversation, for the rejections file
            last = self.store.get_call(written.keys[-1]) if written.keys else None
            reply = [{"role": "assistant", "content": last.response}] if last else []
            record = self._record(plan, None, keys, {}, [*messages, *reply])
            return PairOutcome(plan, record, "unparsed-pair", written.reason)
        stated = extract_final_answer(pair.solution)
        if stated is not None and not same_answer(stated, pair.answer):
            record = self._record(plan, pair, keys, {"stated": stated})
            return PairOutcome(
                plan,
                record,
                "inconsistent-pair",
                f"the solution ends with {stated!r}, the written answer is {pair.answer!r}",
            )
        attempt = await self._verify(plan, pair.question, pair.answer)
        keys["verify"] = attempt.key
        check = attempt.check
        assert check is not None
        verification = {
            "verifier": cfg.verifier_spec,
            "extracted": check.extracted,
            "agrees": check.correct,
            "method": check.method,
            "reason": check.reason,
        }
        record = self._record(plan, pair, keys, verification)
        if not check.correct:
            found = check.extracted if check.extracted is not None else "no final answer"
            return PairOutcome(
                plan,
                record,
                "verify-disagrees",
                f"{cfg.verifier_spec} answered {found!r}, the written answer is "
                f"{pair.answer!r} ({check.reason})",
            )
        return PairOutcome(plan, record)

    async def _verify(self, plan: PairPlan, question: str, answer: str) -> Attempt:
        problem = MathProblem(id=f"{SYN}:{plan.key}", question=question, answer=answer)
        return await solve_attempt(
            self.calls,
            self.verifier,
            problem,
            seed=derive_seed(self.config.seed, KIND, "verify"),
            temperature=self.config.temperature,
            max_tokens=self.config.verifier_max_tokens,
            role="verifier",
        )

    def _record(
        self,
        plan: PairPlan,
        pair: WrittenPair | None,
        keys: dict[str, Any],
        verification: dict[str, Any],
        conversation: Sequence[dict[str, str]] = (),
    ) -> DataRecord:
        """The pair as a record; an unread pair keeps the teacher's `conversation`."""
        cfg = self.config
        if pair is None:
            messages = list(conversation)
        else:
            messages = chat_messages(pair.question, pair.solution, pair.answer)
        rate = next((s.rate for s in self.source.skills if s.skill == plan.skill), None)
        blob = json.dumps([self.run_id, plan.key, messages], ensure_ascii=False, sort_keys=True)
        return DataRecord(
            id=f"{SYN}-" + hashlib.sha256(blob.encode()).hexdigest()[:16],
            pipeline=SYN,
            messages=messages,
            skills=[plan.skill],
            teacher=cfg.teacher,
            k=1,
            judge_verdicts={"independent solve": verification} if verification else {},
            scores={"verified": 1.0} if verification.get("agrees") else {},
            provenance={
                "run_id": self.run_id,
                "profile_run": cfg.profile,
                "dataset": self.source.dataset.name,
                "dataset_hash": self.source.dataset.content_hash,
                "labels": self.source.labels.source,
                "skill": plan.skill,
                "missing_rate": rate,
                "pair": plan.index,
                "context": list(plan.examples),
                "question": pair.question if pair else None,
                "answer": pair.answer if pair else None,
                "verifier": cfg.verifier_spec,
                "seed": cfg.seed,
                "prompts": PROMPTS_VERSION,
                "structured": self.structured,
                "call_keys": keys,
            },
        )

    # --- steps 4 and 5 --------------------------------------------------------------------------

    def filter(self, outcomes: Sequence[PairOutcome]) -> tuple[list[DataRecord], list[Rejection]]:
        """Kept records and every rejection, after the leak check and near-duplicates."""
        rejected = [
            Rejection(o.record, o.reason, o.detail) for o in outcomes if o.reason is not None
        ]
        checked = [o for o in outcomes if o.reason is None]
        generated = [MathProblem(id=o.record.id, question=_question(o), answer="") for o in checked]
        leaks_by_record: dict[str, str] = {}
        for generated_id, test_id in leak_check(generated, self.source.held_out.problems):
            leaks_by_record.setdefault(generated_id, test_id)
        clean = [o for o in checked if o.record.id not in leaks_by_record]
        rejected += [
            Rejection(o.record, "leak", f"repeats held-out question {leaks_by_record[o.record.id]}")
            for o in checked
            if o.record.id in leaks_by_record
        ]
        pool = [p.question for p in self.source.pool]
        held = [p.question for p in self.source.held_out]
        reference = [*pool, *held]
        texts = [*reference, *(_question(o) for o in clean)]
        duplicates = {
            i - len(reference): (j, similarity)
            for i, j, similarity in near_duplicate_pairs(texts, self.dedup_threshold)
            if i >= len(reference)
        }
        pool_ids = [p.id for p in self.source.pool]
        held_ids = [p.id for p in self.source.held_out]
        kept: list[DataRecord] = []
        for i, outcome in enumerate(clean):
            if i not in duplicates:
                kept.append(outcome.record)
                continue
            j, similarity = duplicates[i]
            if j < len(pool):
                reason, other = "near-duplicate-pool", pool_ids[j]
            elif j < len(reference):
                reason, other = "near-duplicate-test", held_ids[j - len(pool)]
            else:
                reason, other = "near-duplicate", clean[j - len(reference)].record.id
            detail = f"Jaccard {similarity:.2f} >= {self.dedup_threshold:g} with {other}"
            rejected.append(Rejection(outcome.record, reason, detail))
        return kept, rejected

    def meta(self) -> CardMeta:
        """What the data card says about how the data was made."""
        cfg = self.config
        warnings = embedded_warnings("Teacher", [cfg.teacher])
        if cfg.verifier:
            warnings += embedded_warnings("Verifier", [cfg.verifier])
        warnings += embedded_warnings(
            "Profiled student", [str(self.source.profile.config.get("student"))]
        )
        warnings += source_warnings(self.source)
        if not cfg.skills:
            warnings.append(
                f"No skill's missing rate is above {self.threshold:g}: nothing was written."
            )
        if self.verifier is self.teacher or cfg.verifier_spec == cfg.teacher:
            warnings.append(
                "The teacher verified its own questions (in a fresh conversation): a mistake "
                "it makes in both can pass; --verifier MODEL checks with a second model."
            )
        rates = {s.skill: s.rate for s in self.source.skills if s.skill in cfg.skills}
        return {
            "pipeline": SYN,
            "method": SYN,
            "run_id": self.run_id,
            "profile_run": cfg.profile,
            "teacher": cfg.teacher,
            "verifier": cfg.verifier_spec,
            "templates": PROMPTS_VERSION,
            "keep_rule": (
                "readable; the solution's own final answer is the written answer; an "
                f"independent solve by {cfg.verifier_spec} reaches the written answer "
                "(math-verify); no repeat of a held-out question; no near-duplicate of a "
                "pool, held-out or earlier generated question"
            ),
            "dedup_threshold": self.dedup_threshold,
            "dedup_method": dedup_method("questions, against the pool and held-out questions"),
            "catalog": catalog_facts(self.source),
            "usage": usage_counts(self.store.usage(self.run_id)),
            "warnings": warnings,
            "missing_rates": rates,
            "threshold": self.threshold,
            "per_skill": cfg.per_skill,
            "seed": cfg.seed,
            "teacher_decoding": {
                "temperature": cfg.temperature,
                "max_tokens": cfg.max_tokens,
                "verifier_max_tokens": cfg.verifier_max_tokens,
                "structured": self.structured,
                "parse_attempts": cfg.parse_attempts,
                "context": cfg.context,
            },
            "rejection_reasons": rejection_reasons([*CHECKS, *FILTERS]),
        }


def _question(outcome: PairOutcome) -> str:
    return str(outcome.record.provenance.get("question") or "")


def _stored(outcome: PairOutcome) -> dict[str, Any]:
    return {
        "skill": outcome.plan.skill,
        "pair": outcome.plan.index,
        "reason": outcome.reason,
        "detail": outcome.detail,
        "record": outcome.record.to_dict(),
    }
