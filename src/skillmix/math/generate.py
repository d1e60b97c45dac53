"""MATH²-style question generation (Shah et al. 2024): `skillmix math generate`.

N distinct pairs of skills are drawn from a catalog (a catalog file, or the coarse skills
of a `math label` run), seeded (`sample_pairs`). For each pair the teacher, in one
conversation, writes a question that needs both skills, solves it, and critiques question
and solution (valid, solvable, both skills needed: a JSON verdict, or lines, with the
unparsed state of any verdict); while the critique fails it rewrites the question, solves
it again and critiques again, at most `refine_rounds` times (`math.generate_prompts`).

Then the automatic filters (`math.generate_filters`): a readable question, a passing
critique, a final answer math-verify can parse, no near-duplicate among the pool's
questions or the earlier candidates, and independent solves (by the verifier, else the
teacher at other seeds, each in a fresh conversation) that reach the written answer.
Every outcome is recorded with its reason. What survives waits for a person in the review
app (`skillmix review RUN`, `math.generate_review`), and only what they accept is
exported (`math.generate_export`).

Everything runs on the shared runtime: every request through `CallCache` (content
addressed: a killed run resumes without asking anything twice; `--max-cost`; estimate
mode), the pairs and the independent solves on one `WorkerPool`, progress in the stages
"write" and "resolve". A run is a row of `runs` (config kind "math-generate", the skill
catalog as its catalog) and its results are store records: `CANDIDATE_KIND` per pair
(key: the candidate id, `a+b` of the two skill ids) with its turns, critiques, filter
outcomes and status, and `RUN_KIND` for the summary. `load_generate_run` reads them back.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from skillmix.catalog.model import Catalog, Skill
from skillmix.catalog.sampling import shuffled, stable_hash
from skillmix.errors import InputError
from skillmix.math.answers import check_answer, extract_final_answer
from skillmix.math.generate_filters import (
    FilterOutcome,
    answer_filter,
    critique_filter,
    distinct_filter,
    duplicate_candidates,
    failed_reasons,
    not_run,
    pool_filter,
    pool_matches,
    question_filter,
    resolve_filter,
)
from skillmix.math.generate_prompts import (
    CritiqueVerdict,
    GenerateTemplates,
    Message,
    critique_schema,
    critique_turn,
    load_generate_templates,
    parse_critique,
    parse_question,
    refine_turn,
    solve_turn,
    write_messages,
)
from skillmix.math.problems import MathDataset
from skillmix.math.strategies import solve_messages
from skillmix.models import ChatRequest, Model
from skillmix.models.settings import Settings
from skillmix.prompts import DEFAULT_VERSION
from skillmix.runtime.calls import CallCache, CallStats
from skillmix.runtime.pool import BudgetReached, WorkerPool, derive_seed, gather_all
from skillmix.runtime.progress import Progress
from skillmix.store import CallRecord, Store

PIPELINE = "math-generate"  # the run's config kind, its id prefix and its seeds' namespace
CANDIDATE_KIND = "math.generate.candidate"  # store record per pair, keyed by candidate id
RUN_KIND = "math.generate.run"  # one record, key "summary"
PAIRS_VERSION = "math-generate-pairs-v1"  # the pair sampler; change it and the pairs change
TEACHER, VERIFIER = "teacher", "verifier"  # the roles of the calls
SURVIVOR, REJECTED, ESTIMATE = "survivor", "rejected", "estimate"  # a candidate's status
_ESTIMATED_QUESTION = "An estimated question about {names}."


# --- configuration ------------------------------------------------------------------------


class GenerateConfig(BaseModel):
    """Everything that determines a generate run; its hash (with the templates) is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    catalog: str = Field(description="the skill catalog's name")
    catalog_hash: str = Field(description="content hash of the skill catalog")
    pairs: int = Field(ge=1, description="distinct skill pairs, one question each")
    teacher: str = "embedded"
    verifier: str | None = Field(
        None, description="model of the independent solves (None: the teacher at other seeds)"
    )
    pool: str | None = Field(None, description="the pool dataset's name (None: no pool)")
    pool_hash: str | None = None
    resolves: int = Field(2, ge=1, description="independent solves of each question")
    min_agreeing: int | None = Field(
        None, ge=1, description="solves that must reach the written answer (None: all)"
    )
    refine_rounds: int = Field(2, ge=0, description="rewrites at most, while the critique fails")
    near_duplicate: float = Field(
        0.8, gt=0.0, le=1.0, description="Jaccard similarity at which a question is too close"
    )
    seed: int = 0
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=16, description="each question, solution and solve")
    critique_max_tokens: int = Field(256, ge=16, description="each critique")
    parse_attempts: int = Field(2, ge=1, description="draws of a critique before it is unparsed")
    structured: bool = True
    templates: str = DEFAULT_VERSION

    @model_validator(mode="after")
    def _check(self) -> GenerateConfig:
        if self.min_agreeing is not None and self.min_agreeing > self.resolves:
            raise ValueError(
                f"min_agreeing ({self.min_agreeing}) cannot exceed resolves ({self.resolves})"
            )
        if (self.pool is None) != (self.pool_hash is None):
            raise ValueError("pool and pool_hash go together")
        return self

    @property
    def needed(self) -> int:
        """How many independent solves must agree with the written answer."""
        return self.resolves if self.min_agreeing is None else self.min_agreeing

    def run_id(self, templates_version: str) -> str:
        blob = json.dumps(self.recorded(templates_version), sort_keys=True)
        return f"{PIPELINE}-" + hashlib.sha256(blob.encode()).hexdigest()[:12]

    def recorded(self, templates_version: str) -> dict[str, Any]:
        """What the `runs` row keeps as the run's config."""
        return {
            "kind": PIPELINE,
            **self.model_dump(mode="json"),
            "templates_version": templates_version,
        }


# --- sampling the pairs ---------------------------------------------------------------------


def pair_count(n_skills: int) -> int:
    """C(n, 2): how many distinct pairs `n_skills` skills make."""
    return math.comb(n_skills, 2) if n_skills >= 2 else 0


def unrank_pair(rank: int) -> tuple[int, int]:
    """The pair (i, j), i < j, at `rank` in colexicographic order: (0,1), (0,2), (1,2), ..."""
    j = (1 + math.isqrt(1 + 8 * rank)) // 2
    while j * (j - 1) // 2 > rank:
        j -= 1
    while (j + 1) * j // 2 <= rank:
        j += 1
    return rank - j * (j - 1) // 2, j


def sample_pairs(skill_ids: Sequence[str], n: int, seed: int) -> list[tuple[str, str]]:
    """`n` distinct pairs of the skills, each as (smaller id, larger id), in drawn order.

    A partial Fisher-Yates shuffle of the pair ranks driven by SHA-256 (`stable_hash`), so
    the same skills, `n` and seed give the same pairs on every machine, and a larger `n`
    extends a smaller one's list. Raises InputError when there are fewer pairs than `n`.
    """
    ids = sorted(set(skill_ids))
    total = pair_count(len(ids))
    if n < 1:
        raise InputError(f"--pairs must be at least 1, got {n}")
    if n > total:
        raise InputError(
            f"asked for {n} distinct skill pairs, but {len(ids)} skills make only {total}",
            hint="lower --pairs or give a catalog with more skills",
        )
    moved: dict[int, int] = {}
    pairs = []
    for i in range(n):
        j = i + stable_hash(PAIRS_VERSION, seed, i) % (total - i)
        at_i, at_j = moved.get(i, i), moved.get(j, j)
        moved[j] = at_i
        a, b = unrank_pair(at_j)
        pairs.append((ids[a], ids[b]))
    return pairs


def load_skills(spec: str, store: Store | None = None) -> Catalog:
    """The skills of `--skills`: a catalog file (.yaml, .jsonl, .csv; topics are not needed)
    or the id (or a unique start of it) of a done `math label` run in `store`.

    Raises InputError when `spec` is neither, or the catalog has fewer than two skills.
    """
    from pathlib import Path

    from skillmix.catalog.load import load_catalog
    from skillmix.math.label import load_label_run
    from skillmix.store import StoreError

    if Path(spec).expanduser().is_file():
        catalog = load_catalog([Path(spec).expanduser()], partial=True)
    elif store is not None:
        try:
            label = load_label_run(store, spec)
        except StoreError as err:
            raise InputError(
                f"--skills {spec}: no such catalog file, and {err}",
                hint="give a catalog file (.yaml, .jsonl, .csv) or a `math label` run id",
            ) from None
        if label.catalog is None:
            raise InputError(
                f"the math label run {label.run_id} is {label.status}: it has no skill catalog yet",
                hint="re-run the same `skillmix math label` command to finish it",
            )
        catalog = label.catalog
    else:
        raise InputError(
            f"--skills {spec}: no such catalog file (and no run store to find a run in)",
            hint="give a catalog file (.yaml, .jsonl, .csv) or a `math label` run id",
        )
    if len(catalog.skills) < 2:
        raise InputError(
            f"--skills {spec}: the catalog has {len(catalog.skills)} skill(s); pairs need two"
        )
    return catalog


def candidate_id(pair: Sequence[str]) -> str:
    """The id of a pair's candidate: its skill ids, sorted, joined by "+"."""
    return "+".join(sorted(pair))


# --- what a run produces --------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One reply of the teacher's conversation: which step, in which round, and the call."""

    stage: str  # "write", "solve", "critique" or "refine"
    round: int  # 0 for the first question, r for the question of the r-th rewrite
    prompt: str  # the last user message of the request
    reply: str
    call_key: str


@dataclass(frozen=True)
class Critique:
    """One critique: the verdict when it could be read (`status` "parsed"), else why not.

    `needs` lists, per skill in the order presented, 1 when the critique says it is needed.
    """

    round: int
    status: str  # "parsed", "unparsed" or "estimate"
    valid: int | None = None
    solvable: int | None = None
    needs: tuple[int, ...] = ()
    problems: str = ""
    method: str = ""
    attempts: int = 0
    reason: str = ""
    call_keys: tuple[str, ...] = ()

    def failures(self) -> list[str]:
        """The reason codes of the points it fails (none when it was not read)."""
        if self.status not in ("parsed", "estimate"):
            return []
        verdict = CritiqueVerdict(
            self.valid or 0, self.solvable or 0, (self.needs[0], self.needs[1]), "", ""
        )
        return verdict.failures()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Critique:
        return cls(
            **{
                **data,
                "needs": tuple(data.get("needs", ())),
                "call_keys": tuple(data.get("call_keys", ())),
            }
        )


@dataclass(frozen=True)
class Resolve:
    """One independent solve of a question: what it answered and whether that agrees."""

    model: str
    sample: int
    call_key: str
    extracted: str | None
    agrees: bool
    reason: str = ""


@dataclass(frozen=True)
class Candidate:
    """One skill pair's question, how it was made, what the filters said, and its status.

    `status` is "survivor" (passed every filter: waits for a reviewer), "rejected"
    (`reasons` holds the codes of the filters that failed, the first one decides) or
    "estimate". `skills` are in the order the teacher saw them.
    """

    id: str
    position: int  # the order the pair was drawn in
    skills: tuple[str, ...]
    skill_names: tuple[str, ...]
    status: str
    question: str = ""
    solution: str = ""
    answer: str | None = None
    refinements: int = 0
    reasons: tuple[str, ...] = ()
    turns: tuple[Turn, ...] = ()
    critiques: tuple[Critique, ...] = ()
    filters: tuple[FilterOutcome, ...] = ()
    resolves: tuple[Resolve, ...] = ()

    @property
    def reason(self) -> str:
        """The reason code that rejected it ("" for a survivor)."""
        return self.reasons[0] if self.reasons else ""

    def filter(self, name: str) -> FilterOutcome | None:
        return next((f for f in self.filters if f.name == name), None)

    def to_record(self) -> dict[str, Any]:
        """The candidate as the store keeps it (`CANDIDATE_KIND` records)."""
        return asdict(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Candidate:
        return cls(
            **{
                **data,
                "skills": tuple(data["skills"]),
                "skill_names": tuple(data["skill_names"]),
                "reasons": tuple(data.get("reasons", ())),
                "turns": tuple(Turn(**t) for t in data.get("turns", ())),
                "critiques": tuple(Critique.from_dict(c) for c in data.get("critiques", ())),
                "filters": tuple(FilterOutcome.from_dict(f) for f in data.get("filters", ())),
                "resolves": tuple(Resolve(**r) for r in data.get("resolves", ())),
            }
        )


@dataclass
class GenerateResult:
    """What a generate run produced (or, in estimate mode, would send)."""

    run_id: str
    config: GenerateConfig
    catalog: Catalog
    candidates: list[Candidate]  # in drawn order
    stats: CallStats
    templates_version: str
    estimate: bool = False
    resumed: bool = False

    @property
    def survivors(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == SURVIVOR]

    def rejections(self) -> dict[str, int]:
        """Reason code -> rejected candidates (by the first filter that failed)."""
        counts: dict[str, int] = {}
        for c in self.candidates:
            if c.status == REJECTED:
                counts[c.reason] = counts.get(c.reason, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def warnings(self) -> list[str]:
        """What a reader of the candidates must know, one sentence each."""
        return generate_warnings(self.config, self.candidates)

    def summary(self) -> dict[str, Any]:
        """The run in plain JSON values (the --json output)."""
        return {
            "run_id": self.run_id,
            "teacher": self.config.teacher,
            "verifier": self.config.verifier or self.config.teacher,
            "templates": self.templates_version,
            "catalog": {"name": self.catalog.name, "hash": self.catalog.content_hash},
            "pool": self.config.pool,
            "pairs": len(self.candidates),
            "survivors": len(self.survivors),
            "rejections": self.rejections(),
            "candidates": [
                {
                    "id": c.id,
                    "skills": list(c.skill_names),
                    "status": c.status,
                    "reasons": list(c.reasons),
                    "refinements": c.refinements,
                    "question": c.question,
                    "answer": c.answer,
                }
                for c in self.candidates
            ],
            "warnings": self.warnings(),
            "estimate": self.estimate,
        }


def generate_warnings(
    config: GenerateConfig | Mapping[str, Any], candidates: Sequence[Candidate]
) -> list[str]:
    """The warnings of a run: a weak embedded teacher, no pool, unreadable critiques."""
    cfg = config.model_dump() if isinstance(config, GenerateConfig) else dict(config)
    out = []
    for role in ("teacher", "verifier"):
        spec = cfg.get(role) or ""
        if spec.split(":")[0] == "embedded" and (role == "teacher" or spec != cfg["teacher"]):
            out.append(
                f"The {role} {spec} is SmolLM2-135M, a 135M-parameter model that cannot "
                "write, solve or check competition mathematics: these questions are a smoke "
                "test of the pipeline, not a data set."
            )
    if cfg.get("pool") is None:
        out.append(
            "No --pool was given: no question was checked for near-duplicates of existing "
            "questions."
        )
    undecided = [
        c.id for c in candidates if (f := c.filter("critique")) and f.outcome == "undecided"
    ]
    if undecided:
        out.append(
            f"{len(undecided)} question(s) have a critique that could not be read after "
            f"{cfg.get('parse_attempts', 2)} draw(s): their critique neither passed nor "
            "rejected them, and the reviewer is told."
        )
    return out


# --- one pair's conversation -----------------------------------------------------------------


@dataclass
class _Draft:
    """A pair's conversation so far: the question and solution it settled on."""

    index: int
    skills: tuple[Skill, ...]
    question: str = ""
    solution: str = ""
    refinements: int = 0
    turns: list[Turn] = field(default_factory=list)
    critiques: list[Critique] = field(default_factory=list)

    @property
    def id(self) -> str:
        return candidate_id([s.id for s in self.skills])

    @property
    def answer(self) -> str | None:
        return extract_final_answer(self.solution) if self.solution else None


class GeneratePipeline:
    """One generate run: a skill catalog, a teacher (and verifier), writing through a store.

    Progress is reported in two stages, "write" (one unit per pair: its whole
    conversation) and "resolve" (one unit per question that passed filters 1-5).
    """

    def __init__(
        self,
        store: Store,
        config: GenerateConfig,
        catalog: Catalog,
        teacher: Model,
        *,
        verifier: Model | None = None,
        pool: MathDataset | None = None,
        settings: Settings | None = None,
        max_cost: float | None = None,
        estimate: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
    ):
        if config.catalog_hash != catalog.content_hash:
            raise InputError(
                f"the config names catalog {config.catalog_hash[:12]}, but the skills given "
                f"hash to {catalog.short_hash}"
            )
        if (pool.content_hash if pool is not None else None) != config.pool_hash:
            raise InputError("the config's pool hash does not match the pool given")
        if config.verifier is not None and verifier is None:
            raise ValueError("a config with a verifier needs its model")
        self.store = store
        self.config = config
        self.catalog = catalog
        self.teacher = teacher
        self.verifier = verifier or teacher
        self.pool_data = pool
        self.templates: GenerateTemplates = load_generate_templates(config.templates)
        self.run_id = config.run_id(self.templates.version_id)
        self.pairs = sample_pairs([s.id for s in catalog.skills], config.pairs, config.seed)
        self.estimate = estimate
        self.calls = CallCache(
            store, run_id=self.run_id, settings=settings, max_cost=max_cost, estimate=estimate
        )
        if workers is None and all(m.max_concurrency == 1 for m in self.models):
            # A model that answers one request at a time (the embedded one) keeps the
            # prompt prefix a pair's turns share only while the pairs go one by one.
            workers = 1
        self.pool = WorkerPool(self.calls, self.models, workers)
        self.progress = progress or Progress()
        self.structured = config.structured and teacher.supports_structured

    @property
    def models(self) -> list[Model]:
        return [self.teacher] if self.verifier is self.teacher else [self.teacher, self.verifier]

    @classmethod
    def for_catalog(
        cls, store: Store, catalog: Catalog, teacher: Model, **options: Any
    ) -> GeneratePipeline:
        """A pipeline whose config is built from `catalog`, the models and `options`: the
        config fields (pairs, seed, ...) and the keyword arguments of `__init__`."""
        own = {"verifier", "pool", "settings", "max_cost", "estimate", "workers", "progress"}
        verifier = options.get("verifier")
        pool = options.get("pool")
        config = GenerateConfig(
            catalog=catalog.name,
            catalog_hash=catalog.content_hash,
            teacher=getattr(teacher, "spec", "embedded"),
            verifier=getattr(verifier, "spec", None) if verifier is not None else None,
            pool=pool.name if pool is not None else None,
            pool_hash=pool.content_hash if pool is not None else None,
            **{k: v for k, v in options.items() if k not in own},
        )
        return cls(
            store, config, catalog, teacher, **{k: v for k, v in options.items() if k in own}
        )

    # --- the calls ----------------------------------------------------------------------------

    async def _ask(
        self,
        model: Model,
        role: str,
        messages: Sequence[Message],
        seed: int,
        *,
        max_tokens: int,
        schema: dict[str, Any] | None = None,
        sample: int = 0,
    ) -> CallRecord:
        request = ChatRequest(
            tuple(messages), self.config.temperature, max_tokens, seed, schema, sample=sample
        )
        return await self.calls.call(model, role, request)

    def _seed(self, pair: str, stage: str, number: int) -> int:
        return derive_seed(self.config.seed, PIPELINE, stage, pair, number)

    async def _turn(self, draft: _Draft, stage: str, round_: int, messages: list[Message]) -> str:
        """Ask the teacher the next turn of a pair's conversation; the reply's text."""
        record = await self._ask(
            self.teacher,
            TEACHER,
            messages,
            self._seed(draft.id, stage, round_),
            max_tokens=self.config.max_tokens,
        )
        reply = record.response
        if record.synthetic:
            names = " and ".join(s.name for s in draft.skills)
            reply = _ESTIMATED_QUESTION.format(names=names) + " \\boxed{1}"
        draft.turns.append(Turn(stage, round_, messages[-1]["content"], reply, record.key))
        return reply

    async def _critique(
        self, draft: _Draft, round_: int, messages: list[Message]
    ) -> tuple[Critique, str]:
        """Up to `parse_attempts` draws of a critique until its verdict reads; the critique
        and the reply the conversation continues with."""
        cfg = self.config
        seed = self._seed(draft.id, "critique", round_)
        schema = critique_schema() if self.structured else None
        keys: list[str] = []
        reason, reply = "", ""
        for attempt in range(cfg.parse_attempts):
            record = await self._ask(
                self.teacher,
                TEACHER,
                messages,
                seed,
                max_tokens=cfg.critique_max_tokens,
                schema=schema,
                sample=attempt,
            )
            keys.append(record.key)
            if record.synthetic:  # an upper bound: every critique but the last one fails
                passed = int(round_ == cfg.refine_rounds)
                critique = Critique(
                    round_, "estimate", passed, 1, (1, 1), "", "", 1, "", tuple(keys)
                )
                return critique, "estimated critique"
            reply = record.response
            parsed = parse_critique(reply)
            draft.turns.append(Turn("critique", round_, messages[-1]["content"], reply, record.key))
            if isinstance(parsed, CritiqueVerdict):
                method = f"schema:{record.structured}" if record.structured else parsed.method
                critique = Critique(
                    round_,
                    "parsed",
                    parsed.valid,
                    parsed.solvable,
                    parsed.needs,
                    parsed.problems,
                    method,
                    attempt + 1,
                    call_keys=tuple(keys),
                )
                return critique, reply
            cut = " (cut off at the token limit)" if record.finish_reason == "length" else ""
            reason = parsed + cut
        unparsed = Critique(
            round_, "unparsed", attempts=cfg.parse_attempts, reason=reason, call_keys=tuple(keys)
        )
        return unparsed, reply

    async def draft(self, index: int, pair: tuple[str, str]) -> _Draft:
        """One pair's conversation: write, solve, critique, and rewrite while it fails."""
        cfg, t = self.config, self.templates
        presented = shuffled(pair, cfg.seed, PIPELINE, candidate_id(pair))
        skills = tuple(self.catalog.skill(s) for s in presented)
        draft = _Draft(index, skills)
        messages = write_messages(t, skills)
        reply = await self._turn(draft, "write", 0, messages)
        draft.question = parse_question(reply)
        if not draft.question:
            return draft
        for round_ in range(cfg.refine_rounds + 1):
            messages = solve_turn(t, messages, reply)
            draft.solution = (await self._turn(draft, "solve", round_, messages)).strip()
            messages = critique_turn(t, messages, draft.solution, skills, self.structured)
            critique, critique_reply = await self._critique(draft, round_, messages)
            draft.critiques.append(critique)
            if (
                critique.status == "unparsed"
                or not critique.failures()
                or round_ == cfg.refine_rounds
            ):
                break
            messages = refine_turn(t, messages, critique_reply, skills)
            reply = await self._turn(draft, "refine", round_ + 1, messages)
            question = parse_question(reply)
            if not question:  # nothing to go on with: the last question and verdict stand
                break
            draft.question, draft.solution = question, ""
            draft.refinements += 1
        return draft

    async def resolve(self, draft: _Draft) -> list[Resolve]:
        """The independent solves of a draft's question, each in a fresh conversation."""
        cfg = self.config
        answer = draft.answer or ""
        found: list[Resolve | None] = [None] * cfg.resolves

        async def one(sample: int) -> None:
            record = await self._ask(
                self.verifier,
                VERIFIER,
                solve_messages(draft.question),
                self._seed(draft.id, "resolve", sample),
                max_tokens=cfg.max_tokens,
                sample=sample,
            )
            if record.synthetic:
                found[sample] = Resolve(self.verifier.spec, sample, record.key, answer, True)
                return
            check = check_answer(record.response, answer)
            found[sample] = Resolve(
                self.verifier.spec, sample, record.key, check.extracted, check.correct, check.reason
            )

        await gather_all(one(i) for i in range(cfg.resolves))
        return [r for r in found if r is not None]

    # --- the filters --------------------------------------------------------------------------

    def cheap_filters(self, drafts: Sequence[_Draft]) -> dict[str, list[FilterOutcome]]:
        """Filters 1-5 of every draft (no model call), by candidate id."""
        cfg = self.config
        outcomes: dict[str, list[FilterOutcome]] = {}
        questions = {d.id: d.question for d in drafts if d.question}
        matches = (
            pool_matches(questions, self.pool_data.problems, cfg.near_duplicate)
            if self.pool_data is not None
            else {}
        )
        for d in drafts:
            if not d.question:
                outcomes[d.id] = [question_filter("")] + [
                    not_run(name, "there is no question") for name in ("critique", "answer", "pool")
                ]
                continue
            last = d.critiques[-1] if d.critiques else Critique(0, "unparsed", reason="none asked")
            unneeded = [s.name for s, n in zip(d.skills, last.needs, strict=False) if not n]
            outcomes[d.id] = [
                question_filter(d.question),
                critique_filter(
                    last.status,
                    last.failures(),
                    problems=last.problems,
                    unneeded=unneeded,
                    why_unparsed=last.reason,
                ),
                answer_filter(d.answer),
                pool_filter(matches.get(d.id), cfg.near_duplicate, cfg.pool),
            ]
        clean = [(d.id, d.question) for d in drafts if not _failed(outcomes[d.id])]
        repeats = duplicate_candidates(clean, cfg.near_duplicate)
        for d in drafts:
            if _failed(outcomes[d.id]):
                outcomes[d.id].append(not_run("distinct", "rejected by an earlier filter"))
            else:
                outcomes[d.id].append(distinct_filter(repeats.get(d.id), cfg.near_duplicate))
        return outcomes

    # --- the whole run ------------------------------------------------------------------------

    async def run(self) -> GenerateResult:
        """Write, filter and solve again (without writing files; see `generate_export`).

        Raises BudgetReached when --max-cost is reached and RunError when a model fails;
        what was answered is kept and a re-run resumes. One process at a time runs a
        generate run (`RunLeased` otherwise).
        """
        if self.estimate:
            return await self._run()
        async with self.store.lease(self.run_id):
            return await self._run()

    async def _run(self) -> GenerateResult:
        resumed = False
        if not self.estimate:
            self.calls.check_prices(self.models)
            self.store.put_catalog(self.catalog)
            resumed = self.store.ensure_run(
                self.run_id,
                self.config.recorded(self.templates.version_id),
                self.catalog.content_hash,
                self.templates.version_id,
            )
            self.store.set_running(self.run_id)
        try:
            candidates = await self._generate()
        except BudgetReached:
            self._set_status("paused")
            raise
        except BaseException:
            self._set_status("stopped")
            raise
        finally:
            for model in self.models:
                await model.aclose()
        if not self.estimate:
            with self.store.group_commits():
                for c in candidates:
                    self.store.put_record(self.run_id, CANDIDATE_KIND, c.id, c.to_record())
                self.store.put_record(
                    self.run_id,
                    RUN_KIND,
                    "summary",
                    {"pairs": [list(p) for p in self.pairs], "pool": self.config.pool},
                )
            self._set_status("done")
        return GenerateResult(
            self.run_id,
            self.config,
            self.catalog,
            candidates,
            self.calls.stats,
            self.templates.version_id,
            self.estimate,
            resumed,
        )

    async def _generate(self) -> list[Candidate]:
        drafts: dict[int, _Draft] = {}
        self.progress.total("write", len(self.pairs))

        async def write(unit: tuple[int, tuple[str, str]]) -> None:
            index, pair = unit
            drafts[index] = await self.draft(index, pair)
            self.progress.advance("write")

        await self.pool.run(list(enumerate(self.pairs)), write)
        ordered = [drafts[i] for i in range(len(self.pairs))]
        if self.estimate:
            outcomes: dict[str, list[FilterOutcome]] = {d.id: [] for d in ordered}
            passing = ordered
        else:
            outcomes = self.cheap_filters(ordered)
            passing = [d for d in ordered if not _failed(outcomes[d.id])]
        resolved: dict[str, list[Resolve]] = {}
        self.progress.total("resolve", len(passing))

        async def solve_again(draft: _Draft) -> None:
            resolved[draft.id] = await self.resolve(draft)
            self.progress.advance("resolve")

        await self.pool.run(passing, solve_again)
        return [self._candidate(d, outcomes[d.id], resolved.get(d.id)) for d in ordered]

    def _candidate(
        self, draft: _Draft, outcomes: list[FilterOutcome], resolves: list[Resolve] | None
    ) -> Candidate:
        if resolves is None:
            outcomes = [*outcomes, not_run("resolve", "rejected by an earlier filter")]
        elif not self.estimate:
            agrees = [r.agrees for r in resolves]
            answers = [r.extracted for r in resolves]
            outcomes = [*outcomes, resolve_filter(agrees, self.config.needed, answers)]
        reasons = failed_reasons(outcomes)
        status = ESTIMATE if self.estimate else (REJECTED if reasons else SURVIVOR)
        return Candidate(
            draft.id,
            draft.index,
            tuple(s.id for s in draft.skills),
            tuple(s.name for s in draft.skills),
            status,
            draft.question,
            draft.solution,
            draft.answer,
            draft.refinements,
            reasons,
            tuple(draft.turns),
            tuple(draft.critiques),
            tuple(outcomes),
            tuple(resolves or ()),
        )

    def _set_status(self, status: str) -> None:
        if not self.estimate:
            self.store.set_run_status(self.run_id, status)


def _failed(outcomes: Sequence[FilterOutcome]) -> bool:
    return any(o.outcome == "fail" for o in outcomes)


# --- reading a run back ---------------------------------------------------------------------


@dataclass
class StoredGenerateRun:
    """A generate run as the store holds it: what the review app and the export read."""

    run_id: str
    status: str
    config: dict[str, Any]
    catalog: Catalog
    candidates: list[Candidate]  # in drawn order

    @property
    def survivors(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status == SURVIVOR]

    def candidate(self, cid: str) -> Candidate | None:
        return next((c for c in self.candidates if c.id == cid), None)

    def warnings(self) -> list[str]:
        return generate_warnings(self.config, self.candidates)


def load_generate_run(store: Store, run_id: str) -> StoredGenerateRun:
    """The generate run `run_id` (or a unique start of it) from the store.

    Raises InputError when the run is not a generate run.
    """
    run = store.get_run(run_id)
    if run["config"].get("kind") != PIPELINE:
        raise InputError(
            f"run {run['id']} is not a math generate run",
            hint="give the id `skillmix math generate` printed (it starts with math-generate-)",
        )
    candidates = [
        Candidate.from_record(v) for v in store.records(run["id"], CANDIDATE_KIND).values()
    ]
    candidates.sort(key=lambda c: c.position)
    return StoredGenerateRun(
        run["id"], run["status"], run["config"], store.get_catalog(run["catalog_hash"]), candidates
    )
