"""`skillmix math eval`: a student answers test questions under prompting strategies.

The dataset is split into train and test parts (`MathDataset.split`, stratified by
category, seeded). Test questions are answered under each chosen strategy
(`math.strategies`); the solved examples a prompt shows come from the train part only
(`exemplar_pool`): `leak_check` compares it with the test questions, a train problem with
the text of a test question refuses the run (naming the pairs), and a near-duplicate is
left out of the pool (and named in the report). Skill labels come from a labelling run
(`skillmix math label`) or, by default, from the dataset's own concept annotations.

Work is one unit per test question, on the runtime's worker pool: the strategies of a
question run in turn and share what they can (the zero-shot answer is AdaptMI's first
pass; the skill the student names is used by `skill` and by AdaptMI's second pass), and
every request goes through `CallCache`, so identical prompts are asked once, a killed run
resumes without asking anything twice, `--max-cost` pauses it and `estimate` walks the
same steps without sending anything. Each answer is graded against the gold answer with
`check_answer` and stored as a `math.answer` record (key `strategy/question_id`) of the
run; the problems it shows (test questions and the examples used) as `math.problem`
records and the example pool's size as `math.pool`, so that a report needs nothing but
the store.

The verifier and the teacher are given a `BlindQuestion` (the question's text) and the
student's answer: neither can see the gold answer or the worked solution.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from skillmix.catalog.model import Catalog, Skill, slug
from skillmix.errors import InputError
from skillmix.math.answers import AnswerCheck, check_answer, extract_final_answer
from skillmix.math.problems import MathDataset, MathProblem, leak_check, normalize_question
from skillmix.math.strategies import (
    ADAPTIVE,
    JUDGE_SCHEMA,
    PROMPTS_VERSION,
    STRATEGIES,
    WITH_EXAMPLES,
    Agreement,
    BlindQuestion,
    SkillChoice,
    VerifierSpec,
    agreement,
    blind,
    examples_by_skill,
    fixed_shots,
    judge_messages,
    parse_judge_score,
    parse_missing_skills,
    parse_skill_choice,
    parse_verifier,
    random_shots,
    skill_choice_messages,
    skill_shots,
    solve_messages,
    teacher_messages,
)
from skillmix.models import ChatRequest, Model
from skillmix.models.base import Message
from skillmix.models.settings import Settings
from skillmix.runtime.calls import CallCache, CallStats
from skillmix.runtime.pool import BudgetReached, WorkerPool, derive_seed
from skillmix.runtime.progress import Progress
from skillmix.store import CallRecord, Store

KIND = "math-eval"
ANSWER_RECORD = "math.answer"
PROBLEM_RECORD = "math.problem"
POOL_RECORD = "math.pool"  # one record, key "summary": the example pool's size and what left it
ANNOTATIONS = "annotations"
PARSE_ATTEMPTS = 2
MAX_TEACHER_SKILLS = 3
_PLACEHOLDER_WORD = "word "
T = TypeVar("T")


class MathEvalConfig(BaseModel):
    """Everything that determines a math evaluation; its hash is the run id.

    The verifier and its settings count only when an adaptive strategy runs, the teacher
    only with `adaptmi+`, so that adding an unused option does not start a new run.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    student: str = "embedded"
    dataset: str = "champ"  # the dataset's name
    dataset_hash: str = ""  # its content hash (`MathDataset.content_hash`)
    strategies: tuple[str, ...] = ("zero-shot",)
    shots: int = Field(3, ge=1, le=32, description="solved examples a prompt shows")
    limit: int | None = Field(None, ge=1, description="test questions (the first N)")
    test_share: float = Field(0.5, gt=0.0, lt=1.0)
    labels: str | None = None  # a `math label` run id; None: the dataset's annotations
    verifier: str | None = "consistency"
    samples: int = Field(5, ge=2, le=64)
    difficulty_threshold: float = Field(0.6, gt=0.0, le=1.0)
    teacher: str | None = None
    seed: int = 0
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=16)
    judge_max_tokens: int = Field(512, ge=16)
    structured: bool = True

    @model_validator(mode="before")
    @classmethod
    def _drop_unused(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        strategies = set(data.get("strategies") or ())
        data = dict(data)
        if not strategies & ADAPTIVE:
            data.update(verifier=None, samples=5, difficulty_threshold=0.6)
        elif data.get("verifier") is None:
            data["verifier"] = "consistency"
        if data.get("verifier") != "consistency":
            data["samples"] = 5
        if not str(data.get("verifier") or "").startswith("judge:"):
            data["structured"] = True  # only a judge is asked for structured output
        if "adaptmi+" not in strategies:
            data["teacher"] = None
        return data

    @model_validator(mode="after")
    def _check(self) -> MathEvalConfig:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise ValueError(f"strategies must be some of {', '.join(STRATEGIES)}")
        if "adaptmi+" in self.strategies and not self.teacher:
            raise ValueError("adaptmi+ needs a teacher (--teacher MODEL)")
        if self.verifier is not None:
            spec = self.verifier_spec
            if spec.kind == "consistency" and self.temperature == 0:
                raise ValueError(
                    "the consistency verifier compares samples, which all agree at "
                    "temperature 0: set a temperature above 0 or use --verifier judge:MODEL"
                )
        return self

    @property
    def verifier_spec(self) -> VerifierSpec:
        if self.verifier is None:
            raise ValueError("this run has no verifier")
        return parse_verifier(
            self.verifier, samples=self.samples, threshold=self.difficulty_threshold
        )

    def run_id(self) -> str:
        blob = json.dumps(
            {**self.model_dump(mode="json"), "prompts": PROMPTS_VERSION}, sort_keys=True
        )
        return "matheval-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    def recorded(self) -> dict[str, Any]:
        """The run's config as stored in its `runs` row."""
        return {"kind": KIND, **self.model_dump(mode="json"), "prompts": PROMPTS_VERSION}


# --- skill labels -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillLabels:
    """The skill list shown to the models and the skills of each question.

    `source` is "annotations" (the dataset's concepts) or the id of the labelling run.
    """

    source: str
    skills: tuple[str, ...]
    by_question: Mapping[str, tuple[str, ...]]
    definitions: Mapping[str, str] = field(default_factory=dict)

    def catalog(self, dataset: str) -> Catalog:
        """The skill list as a catalog (what the run's `runs` row points to)."""
        return Catalog(
            name=f"{dataset} skills ({self.source})",
            skills=tuple(
                Skill(
                    id=slug(name)[:80] + "_" + hashlib.sha256(name.encode()).hexdigest()[:6],
                    name=name,
                    category="math",
                    definition=self.definitions.get(name, ""),
                    example="",
                )
                for name in self.skills
            ),
            topics=(),
            version=self.source,
        )


_NAME_PART = re.compile(r"^([^:=≥≤<>^()]{3,80}):\s+\S")


def concept_label(text: str) -> str:
    """The short name of a concept whose text reads "name: statement", else the text."""
    match = _NAME_PART.match(text.strip())
    return match.group(1).strip() if match else " ".join(text.split())


def labels_from_annotations(dataset: MathDataset) -> SkillLabels:
    """Skill labels from the dataset's own concept annotations (CHAMP: 89 concepts).

    A concept id is shown by its name (the text before ": "), else by its statement; a
    free-text label (a dataset without a concept table) is shown as it is.
    """
    by_question: dict[str, tuple[str, ...]] = {}
    definitions: dict[str, str] = {}
    for problem in dataset:
        names: list[str] = []
        for concept in problem.concepts:
            text = dataset.concepts.get(concept, concept)
            name = concept_label(text)
            definitions.setdefault(name, text)
            if name not in names:
                names.append(name)
        by_question[problem.id] = tuple(names)
    skills = tuple(sorted(definitions, key=str.casefold))
    return SkillLabels(ANNOTATIONS, skills, by_question, definitions)


def labels_from_run(store: Store, run_id: str, dataset: MathDataset) -> SkillLabels:
    """Skill labels from a `skillmix math label` run: its coarse skills, by name.

    The run must be finished and must have labelled questions of `dataset` (a run on the
    first N questions labels only those: the others have no skill, and only labelled
    train questions can be skill examples).
    """
    from skillmix.math.label import load_label_run  # the labelling pipeline, when asked for

    run = load_label_run(store, run_id)
    if run.catalog is None or not run.skills:
        raise InputError(
            f"the label run {run.run_id} has no coarse skills yet (status {run.status})",
            hint="finish it first: re-run the `skillmix math label` command that started it",
        )
    names = {s.id: s.name for s in run.skills}
    by_question = {
        qid: tuple(names[c] for c in label.coarse if c in names)
        for qid, label in run.labels.items()
    }
    ids = {p.id for p in dataset}
    if not ids & {q for q, skills in by_question.items() if skills}:
        raise InputError(
            f"the label run {run.run_id} labelled none of the questions of {dataset.name} "
            f"(it labelled {run.config.get('dataset', '?')})",
            hint="give a label run of the same dataset",
        )
    definitions = {s.name: s.definition for s in run.skills}
    return SkillLabels(run.run_id, tuple(s.name for s in run.skills), by_question, definitions)


# --- what one strategy did for one question ---------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One student answer: the prompt's examples and skills, the reply and its grade."""

    key: str
    text: str
    examples: tuple[str, ...]
    shown_skills: tuple[str, ...]
    check: AnswerCheck | None  # None for a synthetic (estimate-mode) reply


@dataclass(frozen=True)
class Difficulty:
    """The verifier's view of a first answer. `score` is in [0, 1] (None: unparsed)."""

    difficult: bool
    score: float | None
    method: str  # "judge", "consistency", "unparsed" or "estimate"
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Question:
    """What the strategies of one question share while its unit runs."""

    problem: MathProblem
    zero_shot: Attempt | None = None
    choice: tuple[SkillChoice, str | None] | None = None  # and the reply's call key
    skill_attempt: tuple[Attempt, str | None] | None = None  # and why examples were left out
    difficulty: Difficulty | None = None


@dataclass
class MathEvalResult:
    run_id: str
    resumed: bool
    stats: CallStats
    questions: int
    strategies: tuple[str, ...]


class MathEval:
    """One math evaluation: a config, a dataset and its skill labels, and the models.

    `run()` raises `BudgetReached` when --max-cost paused it and `RunError` when a model
    stopped it (from `runtime.pool`); a re-run resumes either. With `estimate`, nothing
    is sent or written and every verifier verdict counts as "difficult", so the estimate
    is an upper bound for the adaptive strategies.
    """

    def __init__(
        self,
        store: Store,
        config: MathEvalConfig,
        dataset: MathDataset,
        labels: SkillLabels,
        student: Model,
        *,
        judge: Model | None = None,
        teacher: Model | None = None,
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
        self.labels = labels
        self.student = student
        self.verifier = config.verifier_spec if config.verifier is not None else None
        if self.verifier is not None and self.verifier.kind == "judge" and judge is None:
            raise ValueError("a judge verifier needs its model")
        self.judge = judge
        self.teacher = teacher
        if "adaptmi+" in config.strategies and teacher is None:
            raise ValueError("adaptmi+ needs a teacher model")
        self.train, test = dataset.split(config.test_share, config.seed)
        self.test = test.limit(config.limit)
        self.exemplars = ExemplarPool(self.train.problems)
        if set(config.strategies) & WITH_EXAMPLES:
            self.exemplars = exemplar_pool(self.train.problems, self.test.problems)
            if not self.exemplars.problems:
                raise InputError("the train part is empty: there are no examples to show")
        self.problems = {p.id: p for p in dataset}
        self.concepts = dataset.concepts
        self.by_skill = examples_by_skill(self.exemplars.problems, labels.by_question)
        self.fixed = fixed_shots(self.exemplars.problems, config.shots, config.seed)
        self.run_id = config.run_id()
        self.estimate = estimate
        self.calls = CallCache(
            store, run_id=self.run_id, settings=settings, max_cost=max_cost, estimate=estimate
        )
        self.pool = WorkerPool(self.calls, self.models, workers)
        self.progress = progress or Progress()
        # Models that answer one request at a time (the embedded one) gain nothing from two
        # questions in flight, and lose the prompt prefix they share between a question's
        # calls (its zero-shot prompt and samples): then questions go one at a time.
        one_at_a_time = all(m.max_concurrency == 1 for m in self.models)
        self._serial = asyncio.Lock() if one_at_a_time else None

    @property
    def models(self) -> list[Model]:
        return [m for m in (self.student, self.judge, self.teacher) if m is not None]

    # --- the run ------------------------------------------------------------------------------

    async def run(self) -> MathEvalResult:
        """Run or resume, holding the run's lease (one process at a time runs a run)."""
        if self.estimate:
            return await self._run()
        async with self.store.lease(self.run_id):
            return await self._run()

    async def _run(self) -> MathEvalResult:
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
                POOL_RECORD,
                "summary",
                {
                    "train": len(self.train),
                    "pool": len(self.exemplars.problems),
                    "left_out": [list(pair) for pair in self.exemplars.left_out],
                },
            )
            for problem in self.test:
                self._put_problem(problem)
        for strategy in self.config.strategies:
            self.progress.total(strategy, len(self.test))
        try:
            await self.pool.run(self.test.problems, self._question)
        except BudgetReached:
            self._set_status("paused")
            raise
        except BaseException:
            self._set_status("stopped")
            raise
        finally:
            await asyncio.gather(*(m.aclose() for m in self.models))
        self._set_status("done")
        return MathEvalResult(
            self.run_id, resumed, self.calls.stats, len(self.test), self.config.strategies
        )

    def _set_status(self, status: str) -> None:
        if not self.estimate:
            self.store.set_run_status(self.run_id, status)

    def _put_problem(self, problem: MathProblem) -> None:
        data = problem.to_dict()
        data.pop("hints", None)
        data["skills"] = list(self.labels.by_question.get(problem.id, ()))
        data["concept_texts"] = {
            c: self.concepts[c] for c in problem.concepts if c in self.concepts
        }
        self.store.put_record(self.run_id, PROBLEM_RECORD, problem.id, data)

    async def _question(self, problem: MathProblem) -> None:
        async with self._serial or contextlib.nullcontext():
            await self._strategies(problem)

    async def _strategies(self, problem: MathProblem) -> None:
        state = _Question(problem)
        for strategy in self.config.strategies:
            record = await self._strategy(strategy, state)
            if not self.estimate:
                self.store.put_record(
                    self.run_id, ANSWER_RECORD, f"{strategy}/{problem.id}", record
                )
                for example in record["examples"]:
                    self._put_problem(self.problems[example])
            self.progress.advance(strategy)

    # --- the strategies -----------------------------------------------------------------------

    async def _strategy(self, strategy: str, state: _Question) -> dict[str, Any]:
        problem = state.problem
        extra: dict[str, Any] = {}
        if strategy == "zero-shot":
            attempt = await self._zero_shot(state)
        elif strategy == "fixed-shot":
            attempt = await self._solve(problem, self.fixed)
        elif strategy == "random-shot":
            ids = random_shots(
                self.exemplars.problems, self.config.shots, self.config.seed, problem.id
            )
            attempt = await self._solve(problem, ids)
        elif strategy == "skill":
            attempt, note = await self._skill_attempt(state)
            extra.update(self._choice_fields(state), note=note)
        else:
            first = await self._zero_shot(state)
            difficulty = await self._difficulty(state)
            extra["difficulty"] = _difficulty_dict(difficulty)
            attempt, note = first, None
            if difficulty.difficult:
                if strategy == "adaptmi":
                    attempt, note = await self._skill_attempt(state)
                    extra.update(self._choice_fields(state))
                else:
                    attempt, note, teacher = await self._teacher_attempt(state, first)
                    extra["teacher"] = teacher
            extra["pass"] = 2 if attempt is not first else 1
            extra["note"] = note
        return self._record(strategy, problem, attempt, extra)

    def _record(
        self, strategy: str, problem: MathProblem, attempt: Attempt, extra: dict[str, Any]
    ) -> dict[str, Any]:
        check = attempt.check
        return {
            "strategy": strategy,
            "question_id": problem.id,
            "category": problem.category,
            "skills": list(self.labels.by_question.get(problem.id, ())),
            "gold": problem.answer,
            "examples": list(attempt.examples),
            "shown_skills": list(attempt.shown_skills),
            "response": attempt.text,
            "response_key": attempt.key,
            "correct": bool(check and check.correct),
            "extracted": check.extracted if check else None,
            "reason": check.reason if check else "estimate",
            "check_method": check.method if check else "none",
            "pass": 1,
            "note": None,
            **extra,
        }

    def _choice_fields(self, state: _Question) -> dict[str, Any]:
        if state.choice is None:
            return {}
        choice, key = state.choice
        return {
            "chosen_skill": choice.skill,
            "choice_method": choice.method,
            "choice_key": key,
        }

    async def _zero_shot(self, state: _Question) -> Attempt:
        if state.zero_shot is None:
            state.zero_shot = await self._solve(state.problem, ())
        return state.zero_shot

    async def _skill_attempt(self, state: _Question) -> tuple[Attempt, str | None]:
        """The `skill` strategy's answer (shared with AdaptMI's second pass).

        The student names a skill from the list; the answer is asked with k train examples
        labelled with it. Without a skill from the list, or without an example of it, the
        question is asked with no examples (the zero-shot prompt) and the note says why.
        """
        if state.skill_attempt is None:
            choice = await self._choose_skill(state)
            examples: tuple[str, ...] = ()
            note = None
            if choice.skill is None:
                note = "the student named no skill from the list"
            else:
                examples = skill_shots(
                    self.by_skill,
                    [choice.skill],
                    self.config.shots,
                    self.config.seed,
                    state.problem.id,
                )
                if not examples:
                    note = f"no train example is labelled {choice.skill!r}"
            if examples:
                assert choice.skill is not None
                attempt = await self._solve(state.problem, examples, (choice.skill,))
            else:
                attempt = await self._zero_shot(state)
            state.skill_attempt = (attempt, note)
        return state.skill_attempt

    async def _teacher_attempt(
        self, state: _Question, first: Attempt
    ) -> tuple[Attempt, str | None, dict[str, Any]]:
        """AdaptMI+'s second pass: examples for the skills the teacher finds missing."""
        named, key = await self._missing_skills(blind(state.problem), first)
        teacher = {"skills": named, "key": key}
        examples = skill_shots(
            self.by_skill, named, self.config.shots, self.config.seed, state.problem.id
        )
        if not named:
            return first, "the teacher named no skill from the list", teacher
        if not examples:
            return first, f"no train example is labelled {', '.join(named)}", teacher
        shown = tuple(s for s in named if any(e in self.by_skill.get(s, ()) for e in examples))
        return await self._solve(state.problem, examples, shown), None, teacher

    # --- the calls ----------------------------------------------------------------------------

    async def _solve(
        self,
        problem: MathProblem,
        examples: Sequence[str],
        skills: Sequence[str] = (),
        *,
        sample: int = 0,
        role: str = "student",
    ) -> Attempt:
        return await solve_attempt(
            self.calls,
            self.student,
            problem,
            [self.problems[e] for e in examples],
            skills,
            seed=self.config.seed,
            temperature=self.config.temperature,
            max_tokens=self.config.max_tokens,
            sample=sample,
            role=role,
        )

    async def _ask(
        self,
        model: Model,
        role: str,
        messages: list[Message],
        seed: int,
        max_tokens: int,
        *,
        sample: int = 0,
        schema: dict[str, Any] | None = None,
        temperature: float | None = None,
    ) -> CallRecord:
        request = ChatRequest(
            tuple(messages),
            self.config.temperature if temperature is None else temperature,
            max_tokens,
            seed,
            schema,
            sample=sample,
        )
        return await self.calls.call(model, role, request)

    async def _choose_skill(self, state: _Question) -> SkillChoice:
        """The skill the student names for a question (asked once per question)."""
        if state.choice is None:
            skills = self.labels.skills
            if not skills:
                state.choice = (SkillChoice(None, "unparsed"), None)
                return state.choice[0]
            messages = skill_choice_messages(state.problem.question, skills)
            record = await self._ask(
                self.student,
                "student",
                messages,
                derive_seed(self.config.seed, state.problem.id, "choose-skill"),
                self.config.judge_max_tokens,
            )
            if record.synthetic:
                choice = SkillChoice(self._likely_skill(), "estimate")
            else:
                choice = parse_skill_choice(record.response, skills)
            state.choice = (choice, record.key)
        return state.choice[0]

    def _likely_skill(self) -> str | None:
        """For an estimate: the skill with the most train examples (a full prompt)."""
        return max(self.by_skill, key=lambda s: len(self.by_skill[s]), default=None)

    async def _difficulty(self, state: _Question) -> Difficulty:
        if state.difficulty is None:
            assert self.verifier is not None
            first = await self._zero_shot(state)
            if self.verifier.kind == "judge":
                state.difficulty = await self._judge(blind(state.problem), first)
            else:
                state.difficulty = await self._consistency(state.problem, first)
        return state.difficulty

    async def _judge(self, question: BlindQuestion, first: Attempt) -> Difficulty:
        """A judge rates the first answer, seeing only the question and that answer."""
        assert self.judge is not None and self.verifier is not None
        structured = self.config.structured and self.judge.supports_structured
        messages = judge_messages(question, first.text, structured=structured)
        keys: list[str] = []
        for attempt in range(PARSE_ATTEMPTS):
            record = await self._ask(
                self.judge,
                "verifier",
                messages,
                derive_seed(self.config.seed, question.id, "verify"),
                self.config.judge_max_tokens,
                sample=attempt,
                schema=JUDGE_SCHEMA if structured else None,
            )
            if record.synthetic:
                return Difficulty(True, None, "estimate")
            keys.append(record.key)
            score = parse_judge_score(record.response)
            if score is not None:
                difficult = score < self.verifier.threshold
                return Difficulty(difficult, score, "judge", {"keys": keys})
        # A judge that cannot be read gives no reason to trust the answer: help the student.
        return Difficulty(True, None, "unparsed", {"keys": keys})

    async def _consistency(self, problem: MathProblem, first: Attempt) -> Difficulty:
        """Agreement among the first answer and `samples - 1` more zero-shot samples."""
        assert self.verifier is not None
        attempts = [first]
        for sample in range(1, self.verifier.samples):
            attempts.append(await self._solve(problem, (), sample=sample, role="verifier"))
        if any(a.check is None for a in attempts):
            return Difficulty(True, None, "estimate")
        answers = [extract_final_answer(a.text) for a in attempts]
        found: Agreement = agreement(answers, same_answer)
        return Difficulty(
            found.share < self.verifier.threshold,
            found.share,
            "consistency",
            {"answers": list(found.answers), "majority": found.majority},
        )

    async def _missing_skills(
        self, question: BlindQuestion, first: Attempt
    ) -> tuple[list[str], str | None]:
        """The skills of the list the teacher finds missing from the first answer."""
        assert self.teacher is not None
        skills = self.labels.skills
        if not skills:
            return [], None
        reply = await ask_until_parsed(
            self.calls,
            self.teacher,
            "teacher",
            teacher_messages(question, first.text, skills),
            lambda record: (
                parse_missing_skills(record.response, skills, MAX_TEACHER_SKILLS)
                or Unparsed("no skill of the list named")
            ),
            seed=derive_seed(self.config.seed, question.id, "teacher"),
            temperature=self.config.temperature,
            max_tokens=self.config.judge_max_tokens,
        )
        if reply.synthetic:
            likely = self._likely_skill()
            return ([likely] if likely else []), None
        return list(reply.value or []), (reply.keys[-1] if reply.keys else None)


# --- steps other math pipelines share (`math profile`, `math data`) ---------------------------


def solve_seed(seed: int, question_id: str, sample: int = 0) -> int:
    """The seed of a question's sample: the same under every strategy and pipeline, so
    identical prompts are identical requests (answered once, through the call cache)."""
    return derive_seed(seed, question_id, "solve", sample)


async def solve_attempt(
    calls: CallCache,
    model: Model,
    problem: MathProblem,
    exemplars: Sequence[MathProblem] = (),
    skills: Sequence[str] = (),
    *,
    seed: int,
    temperature: float | None,
    max_tokens: int,
    sample: int = 0,
    role: str = "student",
) -> Attempt:
    """One answer of `model` to `problem` (after any solved `exemplars`), graded against
    its gold answer with `check_answer`. `seed` is the run's seed; the request's own
    comes from `solve_seed`. A synthetic (estimate-mode) reply is not graded."""
    request = ChatRequest(
        tuple(solve_messages(problem.question, exemplars, skills)),
        temperature,
        max_tokens,
        solve_seed(seed, problem.id, sample),
        None,
        sample=sample,
    )
    record = await calls.call(model, role, request)
    text = _text_of(record)
    check = None if record.synthetic else check_answer(text, problem.answer)
    return Attempt(record.key, text, tuple(p.id for p in exemplars), tuple(skills), check)


@dataclass(frozen=True)
class Unparsed:
    """What a reader returns for a reply it cannot read, and why."""

    reason: str


@dataclass(frozen=True)
class Parsed(Generic[T]):
    """What `ask_until_parsed` read: the value (None when no draw could be read, or in
    estimate mode), the call keys of the draws in order, and why the last one failed."""

    value: T | None
    keys: tuple[str, ...] = ()
    synthetic: bool = False
    reason: str = ""

    @property
    def attempts(self) -> int:
        return len(self.keys)


async def ask_until_parsed(
    calls: CallCache,
    model: Model,
    role: str,
    messages: Sequence[Message],
    read: Callable[[CallRecord], T | Unparsed],
    *,
    seed: int,
    temperature: float | None,
    max_tokens: int,
    schema: dict[str, Any] | None = None,
    attempts: int = PARSE_ATTEMPTS,
) -> Parsed[T]:
    """Ask up to `attempts` independent draws (`sample` 0, 1, ...) until `read` returns
    a value. A reply that cannot be read is drawn again, never taken as an empty answer:
    when no draw reads, the result's value is None and `reason` says why (with "cut off"
    when the last draw hit `max_tokens`)."""
    keys: list[str] = []
    reason = ""
    for attempt in range(attempts):
        request = ChatRequest(
            tuple(messages), temperature, max_tokens, seed, schema, sample=attempt
        )
        record = await calls.call(model, role, request)
        if record.synthetic:
            return Parsed(None, tuple(keys), synthetic=True)
        keys.append(record.key)
        value = read(record)
        if not isinstance(value, Unparsed):
            return Parsed(value, tuple(keys))
        cut = " (cut off at the token limit)" if record.finish_reason == "length" else ""
        reason = value.reason + cut
    return Parsed(None, tuple(keys), reason=reason)


def same_answer(first: str, second: str) -> bool:
    """Whether two extracted answers are the same value (math-verify, as for grading)."""
    if first.replace(" ", "") == second.replace(" ", ""):
        return True
    return check_answer(f"\\boxed{{{first}}}", second).correct


@dataclass(frozen=True)
class ExemplarPool:
    """The train problems a prompt may show, and the ones left out of it: near-duplicates
    of a test question, as (train id, test id) pairs."""

    problems: tuple[MathProblem, ...]
    left_out: tuple[tuple[str, str], ...] = ()


def exemplar_pool(train: Sequence[MathProblem], test: Sequence[MathProblem]) -> ExemplarPool:
    """The train problems that may be shown as examples to the `test` questions.

    `leak_check` finds the train problems that repeat a test question. One with the very
    text of a test question means the split is broken: the run is refused, naming the
    pairs. A near-duplicate (CHAMP has variants such as "strictly increasing digits" and
    "strictly increasing or decreasing digits") is a different problem whose solution
    would all but answer the test question: it is left out of the pool and the report
    names it.
    """
    pairs = leak_check(train, test)
    if not pairs:
        return ExemplarPool(tuple(train))
    text = {p.id: normalize_question(p.question) for p in (*train, *test)}
    same = [(a, b) for a, b in pairs if text[a] == text[b]]
    if same:
        shown = ", ".join(f"{a} = {b}" for a, b in same[:10])
        more = f" and {len(same) - 10} more" if len(same) > 10 else ""
        raise InputError(
            f"{len(same)} test question(s) also appear in the train part the examples come "
            f"from (train = test): {shown}{more}",
            hint="remove the duplicates from the dataset (same question, two ids), or "
            "evaluate with --strategy zero-shot only (it shows no examples)",
        )
    near = {a for a, _ in pairs}
    return ExemplarPool(tuple(p for p in train if p.id not in near), tuple(pairs))


def _difficulty_dict(difficulty: Difficulty) -> dict[str, Any]:
    return {
        "difficult": difficulty.difficult,
        "score": difficulty.score,
        "method": difficulty.method,
        **difficulty.detail,
    }


def _text_of(record: CallRecord) -> str:
    """The reply of a call; for a synthetic one, placeholder text of the estimated length."""
    if record.synthetic:
        return _PLACEHOLDER_WORD * max(1, int(record.completion_tokens * 0.75))
    return record.response
