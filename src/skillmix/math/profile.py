"""`skillmix math profile`: a student's Missing-Skill-Profile (STAT, He et al. 2025).

The student answers each question with the zero-shot prompt of `math eval` (the same
request: a question asked by both is answered once, through the call cache) and the
answer is checked against the gold answer with math-verify. For each wrong answer the
teacher is shown the question, its reference answer (and solution, unless
`show_solution` is off), the student's solution and the skills the question needs, and
gives a 0/1 verdict per skill: lacking or misapplied, or not (`profile_prompts`). The
skills of a question come from a `math label` run or the dataset's own annotations, as
in `math eval`. A verdict that cannot be read after `parse_attempts` draws is recorded as
*unparsed* and counted as such, never as "nothing missing".

The profile, per skill s (`skill_profile`, pure):

- attempts: profiled questions that need s; failures: those answered wrong;
- missing: wrong answers whose verdict finds s lacking or misapplied;
- unparsed: wrong answers needing s whose verdict could not be read;
- missing rate = missing / (attempts - unparsed), the share of the questions needing s
  on which the student failed to apply it (a right answer counts as s applied), with a
  95% Wilson interval (`scoring.stats.wilson_interval`). Questions with an unparsed
  verdict leave the denominator: what the teacher would have said about them is unknown.
  Only wrong answers can be unparsed, so a high share of unparsed verdicts pulls the
  rates of often-missing skills down a little; the report warns whenever there are any.

A skill is *flagged* when its missing rate is above a threshold (`DEFAULT_THRESHOLD`
unless the command says otherwise); `math data --method stat-syn` writes examples for the
flagged skills. Two profiles (two students, two checkpoints) compare skill by skill with
Newcombe's hybrid score interval for the difference of two independent rates.

Which questions are profiled: the train part of the split `math eval` makes (the same
`test_share` and seed), so that training data built from the profile (`math data`) never
looks at the test questions; `--part test` or `all` profile those instead. A run is a row
of `runs` (config kind "math-profile") with a `math.profile.answer` record per question,
the questions as `math.problem` records and a `math.profile.summary` record.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from skillmix.errors import InputError
from skillmix.math.eval import (
    PROBLEM_RECORD,
    Attempt,
    SkillLabels,
    Unparsed,
    ask_until_parsed,
    solve_attempt,
)
from skillmix.math.problems import MathDataset, MathProblem
from skillmix.math.profile_prompts import (
    PROMPTS_VERSION,
    missing_messages,
    parse_verdicts,
    verdict_schema,
)
from skillmix.models import Model
from skillmix.models.settings import Settings
from skillmix.runtime.calls import CallCache, CallStats
from skillmix.runtime.pool import BudgetReached, WorkerPool, derive_seed
from skillmix.runtime.progress import Progress
from skillmix.scoring.stats import wilson_interval
from skillmix.store import CallRecord, Store

KIND = "math-profile"  # the run's config kind and its id prefix
ANSWER_RECORD = "math.profile.answer"  # per profiled question, keyed by its id
SUMMARY_RECORD = "math.profile.summary"  # one record, key "summary"
PARTS = ("train", "test", "all")
DEFAULT_THRESHOLD = 0.2
STAGE = "profile"  # the progress stage

Part = Literal["train", "test", "all"]
VerdictStatus = Literal["parsed", "unparsed", "not-asked", "estimate"]


class ProfileConfig(BaseModel):
    """Everything that determines a profile run; its hash is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    student: str = "embedded"
    teacher: str = "embedded"
    dataset: str = "champ"
    dataset_hash: str = ""
    part: Part = "train"
    test_share: float = Field(0.5, gt=0.0, lt=1.0)
    limit: int | None = Field(None, ge=1, description="questions (the first N of the part)")
    labels: str | None = None  # a `math label` run id; None: the dataset's annotations
    seed: int = 0
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    teacher_temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=16)
    teacher_max_tokens: int = Field(256, ge=16)
    structured: bool = True
    show_solution: bool = True
    parse_attempts: int = Field(2, ge=1, le=8)

    @model_validator(mode="before")
    @classmethod
    def _drop_unused(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("part") == "all":
            data = {**data, "test_share": 0.5}  # no split: the share changes nothing
        return data

    def run_id(self) -> str:
        blob = json.dumps(self.recorded(), sort_keys=True)
        return f"{KIND}-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    def recorded(self) -> dict[str, Any]:
        """The run's config as stored in its `runs` row."""
        return {"kind": KIND, **self.model_dump(mode="json"), "prompts": PROMPTS_VERSION}


def split_parts(
    dataset: MathDataset, part: str, test_share: float, seed: int
) -> tuple[MathDataset, MathDataset]:
    """(pool, held out) of a profile: the train and test parts of `math eval`'s split,
    or the whole dataset and nothing for part "all"."""
    if part == "all":
        return dataset, dataset.subset([])
    return dataset.split(test_share, seed)


def profile_questions(dataset: MathDataset, config: ProfileConfig) -> MathDataset:
    """The questions a profile run asks: its part of the split, the first `limit`."""
    train, test = split_parts(dataset, config.part, config.test_share, config.seed)
    chosen = test if config.part == "test" else train
    return chosen.limit(config.limit)


# --- verdicts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """The teacher's verdict on one answer: the skills it found lacking or misapplied.

    `status` is "parsed", "unparsed" (no draw could be read: `reason` says why),
    "not-asked" (a right answer, or a question without skills: `reason` says which) or
    "estimate" (nothing was sent).
    """

    status: VerdictStatus
    missing: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    reason: str = ""
    method: str = ""  # how a parsed verdict was asked for: "schema" (JSON) or "text"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "missing": list(self.missing),
            "keys": list(self.keys),
            "reason": self.reason,
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        return cls(
            data["status"],
            tuple(data.get("missing") or ()),
            tuple(data.get("keys") or ()),
            data.get("reason", ""),
            data.get("method", ""),
        )


RIGHT = "the answer is right"
NO_SKILLS = "the question has no skill label"


# --- the profile (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileOutcome:
    """One profiled question: its skills, whether the answer was right, and the verdict."""

    question_id: str
    skills: tuple[str, ...]
    correct: bool
    verdict: Verdict


@dataclass(frozen=True)
class SkillProfile:
    """One skill's row of the profile (see the module docstring for the definitions)."""

    skill: str
    attempts: int
    failures: int
    missing: int
    unparsed: int

    @property
    def assessed(self) -> int:
        """The questions whose verdict on this skill is known: the denominator."""
        return self.attempts - self.unparsed

    @property
    def rate(self) -> float:
        return self.missing / self.assessed if self.assessed else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.missing, self.assessed)

    def flagged(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        """Whether the missing rate is above `threshold` (never without a rate)."""
        return self.assessed > 0 and self.rate > threshold

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "skill": self.skill,
            "attempts": self.attempts,
            "failures": self.failures,
            "missing": self.missing,
            "unparsed": self.unparsed,
            "assessed": self.assessed,
            "rate": self.rate,
            "low": low,
            "high": high,
        }


def skill_profile(outcomes: Iterable[ProfileOutcome]) -> list[SkillProfile]:
    """The profile of every skill some outcome needs, by skill name (casefolded)."""
    tallies: dict[str, list[int]] = {}
    for o in outcomes:
        for skill in dict.fromkeys(o.skills):
            tally = tallies.setdefault(skill, [0, 0, 0, 0])
            tally[0] += 1
            if o.correct:
                continue
            tally[1] += 1
            if o.verdict.status == "parsed" and skill in o.verdict.missing:
                tally[2] += 1
            elif o.verdict.status in ("unparsed", "estimate"):
                tally[3] += 1
    return [
        SkillProfile(skill, *tallies[skill])
        for skill in sorted(tallies, key=lambda s: (s.casefold(), s))
    ]


@dataclass(frozen=True)
class ProfileTotals:
    """The run's counts: questions, right and wrong answers, and what the teacher said."""

    questions: int
    correct: int
    wrong: int
    parsed: int  # wrong answers with a parsed verdict
    unparsed: int  # wrong answers whose verdict could not be read
    nothing_missing: int  # parsed verdicts that found no skill lacking (slips)
    without_skills: int  # wrong answers to questions with no skill label (not asked)

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def profile_totals(outcomes: Iterable[ProfileOutcome]) -> ProfileTotals:
    rows = list(outcomes)
    wrong = [o for o in rows if not o.correct]
    return ProfileTotals(
        questions=len(rows),
        correct=len(rows) - len(wrong),
        wrong=len(wrong),
        parsed=sum(o.verdict.status == "parsed" for o in wrong),
        unparsed=sum(o.verdict.status == "unparsed" for o in wrong),
        nothing_missing=sum(o.verdict.status == "parsed" and not o.verdict.missing for o in wrong),
        without_skills=sum(not o.skills for o in wrong),
    )


def difference_interval(
    first: tuple[int, int], second: tuple[int, int], *, level: float = 0.95
) -> tuple[float, float, float]:
    """second rate - first rate, with Newcombe's hybrid score interval (his method 10),
    for (successes, n) pairs of two independent samples; nan without data on a side."""
    (a, n), (b, m) = first, second
    if n == 0 or m == 0:
        return float("nan"), float("nan"), float("nan")
    p, q = a / n, b / m
    lp, up = wilson_interval(a, n, level=level)
    lq, uq = wilson_interval(b, m, level=level)
    d = q - p
    return d, d - math.hypot(q - lq, up - p), d + math.hypot(uq - q, p - lp)


@dataclass(frozen=True)
class SkillDifference:
    """One skill in two profiles: `second.rate - first.rate` and its 95% interval."""

    skill: str
    first: SkillProfile | None
    second: SkillProfile | None
    difference: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """The interval excludes 0 (no multiplicity adjustment: a screening aid)."""
        return (self.low > 0 or self.high < 0) and math.isfinite(self.difference)


def compare_profiles(
    first: Sequence[SkillProfile], second: Sequence[SkillProfile]
) -> list[SkillDifference]:
    """Every skill of either profile, in name order, with the difference of its rates."""
    a = {s.skill: s for s in first}
    b = {s.skill: s for s in second}
    rows = []
    for skill in sorted(a.keys() | b.keys(), key=lambda s: (s.casefold(), s)):
        x, y = a.get(skill), b.get(skill)
        d, low, high = difference_interval(
            (x.missing, x.assessed) if x else (0, 0), (y.missing, y.assessed) if y else (0, 0)
        )
        rows.append(SkillDifference(skill, x, y, d, low, high))
    return rows


def outcome_of(record: Mapping[str, Any]) -> ProfileOutcome:
    """A `math.profile.answer` record as an outcome."""
    return ProfileOutcome(
        record["question_id"],
        tuple(record.get("skills") or ()),
        bool(record["correct"]),
        Verdict.from_dict(record["verdict"]),
    )


# --- the run ----------------------------------------------------------------------------------


@dataclass
class ProfileRunResult:
    run_id: str
    resumed: bool
    stats: CallStats
    questions: int


class MathProfile:
    """One profile run: a config, a dataset and its skill labels, the student and teacher.

    `run()` raises `BudgetReached` when --max-cost paused it and `RunError` when a model
    stopped it; a re-run resumes either. With `estimate`, nothing is sent or written and
    every answer counts as wrong (an upper bound: the teacher is asked about each one).
    `source` is how the dataset was named on the command line, kept so that `math data`
    can load it again.
    """

    def __init__(
        self,
        store: Store,
        config: ProfileConfig,
        dataset: MathDataset,
        labels: SkillLabels,
        student: Model,
        teacher: Model,
        *,
        source: str | None = None,
        settings: Settings | None = None,
        max_cost: float | None = None,
        estimate: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
    ):
        if config.dataset_hash and config.dataset_hash != dataset.content_hash:
            raise InputError(
                f"the config names dataset {config.dataset_hash[:12]}, not this one "
                f"({dataset.content_hash[:12]})"
            )
        self.store = store
        self.config = config
        self.dataset = dataset
        self.labels = labels
        self.student = student
        self.teacher = teacher
        self.source = source or dataset.source
        self.questions = profile_questions(dataset, config)
        if not len(self.questions):
            raise InputError(f"the {config.part} part of {dataset.name} has no question")
        self.run_id = config.run_id()
        self.estimate = estimate
        self.calls = CallCache(
            store, run_id=self.run_id, settings=settings, max_cost=max_cost, estimate=estimate
        )
        self.pool = WorkerPool(self.calls, self.models, workers)
        self.progress = progress or Progress()
        self.structured = config.structured and teacher.supports_structured
        # As in `math eval`: a model answering one request at a time gains nothing from
        # two questions in flight.
        one_at_a_time = all(m.max_concurrency == 1 for m in self.models)
        self._serial = asyncio.Lock() if one_at_a_time else None

    @property
    def models(self) -> list[Model]:
        return [self.student, self.teacher]

    async def run(self) -> ProfileRunResult:
        """Run or resume, holding the run's lease (one process at a time runs a run)."""
        if self.estimate:
            return await self._run()
        async with self.store.lease(self.run_id):
            return await self._run()

    async def _run(self) -> ProfileRunResult:
        self.calls.check_prices(self.models)
        resumed = False
        if not self.estimate:
            catalog = self.labels.catalog(self.config.dataset)
            self.store.put_catalog(catalog)
            resumed = self.store.ensure_run(
                self.run_id, self.config.recorded(), catalog.content_hash, PROMPTS_VERSION
            )
            self.store.set_running(self.run_id)
            self.store.put_record(
                self.run_id,
                SUMMARY_RECORD,
                "summary",
                {
                    "dataset_source": self.source,
                    "dataset_size": len(self.dataset),
                    "questions": len(self.questions),
                    "labels": self.labels.source,
                },
            )
            for problem in self.questions:
                self._put_problem(problem)
        self.progress.total(STAGE, len(self.questions))
        try:
            await self.pool.run(self.questions.problems, self._question)
        except BudgetReached:
            self._set_status("paused")
            raise
        except BaseException:
            self._set_status("stopped")
            raise
        finally:
            await asyncio.gather(*(m.aclose() for m in self.models))
        self._set_status("done")
        return ProfileRunResult(self.run_id, resumed, self.calls.stats, len(self.questions))

    def _set_status(self, status: str) -> None:
        if not self.estimate:
            self.store.set_run_status(self.run_id, status)

    def _put_problem(self, problem: MathProblem) -> None:
        data = problem.to_dict()
        data.pop("hints", None)
        data["skills"] = list(self.labels.by_question.get(problem.id, ()))
        concepts = self.dataset.concepts
        data["concept_texts"] = {c: concepts[c] for c in problem.concepts if c in concepts}
        self.store.put_record(self.run_id, PROBLEM_RECORD, problem.id, data)

    async def _question(self, problem: MathProblem) -> None:
        async with self._serial or contextlib.nullcontext():
            attempt = await solve_attempt(
                self.calls,
                self.student,
                problem,
                seed=self.config.seed,
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
            )
            verdict = await self.verdict(problem, attempt)
        if not self.estimate:
            self.store.put_record(
                self.run_id, ANSWER_RECORD, problem.id, self._record(problem, attempt, verdict)
            )
        self.progress.advance(STAGE)

    async def verdict(self, problem: MathProblem, attempt: Attempt) -> Verdict:
        """The teacher's verdict on one answer (not asked about a right answer)."""
        skills = self.labels.by_question.get(problem.id, ())
        if attempt.check is not None and attempt.check.correct:
            return Verdict("not-asked", reason=RIGHT)
        if not skills:
            return Verdict("not-asked", reason=NO_SKILLS)
        definitions = [(s, self.labels.definitions.get(s, "")) for s in skills]
        messages = missing_messages(
            problem,
            attempt.text,
            definitions,
            structured=self.structured,
            show_solution=self.config.show_solution,
        )

        def read(record: CallRecord) -> list[int] | Unparsed:
            return parse_verdicts(record.response, len(skills))

        reply = await ask_until_parsed(
            self.calls,
            self.teacher,
            "teacher",
            messages,
            read,
            seed=derive_seed(self.config.seed, KIND, "verdict", problem.id),
            temperature=self.config.teacher_temperature,
            max_tokens=self.config.teacher_max_tokens,
            schema=verdict_schema(len(skills)) if self.structured else None,
            attempts=self.config.parse_attempts,
        )
        if reply.synthetic:
            return Verdict("estimate")
        if reply.value is None:
            return Verdict("unparsed", keys=reply.keys, reason=reply.reason)
        return Verdict(
            "parsed",
            tuple(skills[i - 1] for i in reply.value),
            reply.keys,
            method="schema" if self.structured else "text",
        )

    def _record(self, problem: MathProblem, attempt: Attempt, verdict: Verdict) -> dict[str, Any]:
        check = attempt.check
        return {
            "question_id": problem.id,
            "category": problem.category,
            "skills": list(self.labels.by_question.get(problem.id, ())),
            "gold": problem.answer,
            "response": attempt.text,
            "response_key": attempt.key,
            "correct": bool(check and check.correct),
            "extracted": check.extracted if check else None,
            "reason": check.reason if check else "estimate",
            "check_method": check.method if check else "none",
            "verdict": verdict.to_dict(),
        }


@dataclass(frozen=True)
class StoredProfile:
    """A profile run read back from the store: its config, records and summary."""

    run_id: str
    status: str
    config: dict[str, Any]
    answers: list[dict[str, Any]]  # `math.profile.answer` records, in question-id order
    problems: dict[str, dict[str, Any]]  # id -> `math.problem` record
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def outcomes(self) -> list[ProfileOutcome]:
        return [outcome_of(a) for a in self.answers]

    @property
    def skills(self) -> list[SkillProfile]:
        return skill_profile(self.outcomes)


def load_profile(store: Store, run_id: str) -> StoredProfile:
    """The profile run `run_id` (or a unique start of it); an InputError for another kind."""
    run = store.get_run(run_id)
    kind = run["config"].get("kind")
    if kind != KIND:
        known = ", ".join(r["id"] for r in store.list_runs(KIND)) or "none in this store"
        raise InputError(
            f"run {run['id']} is not a math profile (it is a {kind or 'Skill-Mix evaluation'} run)",
            hint=f"give the id `skillmix math profile` printed (profile runs: {known})",
        )
    return StoredProfile(
        run_id=run["id"],
        status=run["status"],
        config=run["config"],
        answers=list(store.records(run["id"], ANSWER_RECORD).values()),
        problems=store.records(run["id"], PROBLEM_RECORD),
        summary=store.records(run["id"], SUMMARY_RECORD).get("summary", {}),
    )
