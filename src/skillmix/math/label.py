"""Metacognitive skill labelling of a math dataset (Didolkar et al. 2024): `skillmix math label`.

Stage 1, "label": for every question the teacher names the one fine-grained skill it needs
(a short name) and says why in one sentence. Stage 2, "cluster": the distinct fine names
(the same up to case, punctuation and plurals) are grouped into N coarse skills that a
person can read. One request *defines* the N skills (name, definition, example) from the
fine names, listing the `cluster_batch` most frequent ones when there are more; then the
fine names are *assigned* to them in batches of `cluster_batch`, each fine name to one or
more coarse skills by number. A question gets the coarse skills of its fine name.

Replies are read as JSON when the teacher decodes with a schema (`skill_schema`,
`define_schema`, `assign_schema`: bounded strings, and a fixed key per fine name, so a
constrained decoder assigns every one), else parsed from text that a weak model writes
(fenced or prose-wrapped JSON, `Skill:` / `Rationale:` lines, numbered lists, `3: 1, 4`
lines). A reply that cannot be read is drawn again (another sample, as an unparseable
verdict is); a stage-1 question with no readable reply after `parse_attempts` draws is
recorded as *unparsed*, with its reason, and is never dropped. A stage-2 reply that reads
but does not validate (the wrong number of coarse skills, a name given twice, a fine name
left unassigned) gets a follow-up turn in the same conversation naming the problem; a fine
name still unassigned after that goes to the coarse skill whose name and definition share
the most words with it, recorded as assigned by "similarity", not by the teacher.

Everything runs on the shared runtime: every request through `CallCache` (content
addressed, so a killed run resumes without asking anything twice, priced, `--max-cost`,
estimate mode), the units on one `WorkerPool`, progress in the stages "label" and
"cluster". A label run is a row of `runs` (config kind "math-label"; its catalog is the
dataset's categories, as topics, until the labels exist) and its results are store
records: `LABEL_KIND` per question, `SKILL_KIND` per coarse skill, `RUN_KIND` for the
summary naming the catalog of coarse skills (also in the catalogs table). `load_label_run`
reads them back.

Agreement with human labels (`agreement_with_annotations`, `--against-annotations`): each
coarse skill is mapped to the human concept it co-occurs with most (majority mapping) and
a question's predicted concepts are the mapped concepts of its coarse skills; precision,
recall and F1 count (question, concept) pairs, per category, with 95% bootstrap
intervals over questions. See `label_agreement.MAPPING_METHOD` for the cross-fitting that keeps the
numbers honest.

Modules: `label_prompts` (templates, messages, schemas and the reply parsers, pure),
`label_agreement` (the agreement measure, pure), and this one (the config, the pipeline,
what it stores, and the files).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skillmix.catalog.model import Catalog, Skill, Topic, slug
from skillmix.data.instruct.parse import NO_DEFINITION, NO_EXAMPLE, SkillDraft, name_key
from skillmix.errors import InputError
from skillmix.jsonsafe import finite
from skillmix.math.label_agreement import Agreement, AnnotatedQuestion, measure_agreement
from skillmix.math.label_prompts import (
    SHAPES,
    FineSkill,
    Message,
    assign_messages,
    assign_schema,
    assign_shape,
    coarse_problem,
    define_messages,
    define_schema,
    load_label_templates,
    nearest_coarse,
    parse_assignments,
    parse_coarse_skills,
    parse_fine_skill,
    repair_messages,
    skill_messages,
    skill_schema,
)
from skillmix.math.problems import MathDataset, MathProblem
from skillmix.models import ChatRequest, Model
from skillmix.models.settings import Settings
from skillmix.prompts import DEFAULT_VERSION
from skillmix.runtime.calls import CallCache, CallStats
from skillmix.runtime.pool import BudgetReached, RunError, WorkerPool, derive_seed
from skillmix.runtime.progress import Progress
from skillmix.store import CallRecord, Store

PIPELINE = "math-label"  # the run's config kind, its id prefix and its seeds' namespace
ROLE = "teacher"
LABEL_KIND = "math.label"  # store record per question, keyed by question id
SKILL_KIND = "math.label.skill"  # per coarse skill, keyed by skill id
RUN_KIND = "math.label.run"  # one record, key "summary": the catalog and what was repaired
NO_CATEGORY = "uncategorised"  # the category of a question (and skill) without one
TOPIC_CATEGORY = "math category"  # the catalog's topics are the dataset's categories


class LabelError(RunError):
    """The teacher's answers make no skill catalog; every answer so far is in the store."""


# --- configuration ------------------------------------------------------------------------


class LabelConfig(BaseModel):
    """Everything that determines a label run; its hash (with the templates) is the run id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dataset: str = Field(description="the dataset's name (champ, or a file's stem)")
    dataset_hash: str = Field(description="content hash of the questions labelled")
    questions: int = Field(ge=0, description="how many questions (after --limit)")
    teacher: str = "embedded"
    skills: int = Field(8, ge=1, description="coarse skills to cluster the fine names into")
    seed: int = 0
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int = Field(256, ge=16, description="each stage-1 answer")
    cluster_max_tokens: int = Field(1024, ge=16, description="each stage-2 answer")
    cluster_batch: int = Field(40, ge=2, description="fine names per stage-2 request")
    parse_attempts: int = Field(2, ge=1, description="tries before a reply is unparsed")
    structured: bool = True
    show_solution: bool = Field(True, description="show the teacher the reference solution")
    templates: str = DEFAULT_VERSION

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


# --- what a run produces --------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionLabel:
    """One question's labels: its fine skill (stage 1) and coarse skills (stage 2).

    `status` is "parsed", "unparsed" (no readable reply in `attempts` draws; `reason` says
    why) or "estimate". `assigned_by` says who put the fine name in its coarse skills:
    "teacher", or "similarity" (the fallback for a name the teacher left out).
    """

    question_id: str
    category: str
    status: str
    skill: str = ""
    rationale: str = ""
    method: str = ""
    attempts: int = 0
    reason: str = ""
    call_keys: tuple[str, ...] = ()
    coarse: tuple[str, ...] = ()  # coarse skill ids
    assigned_by: str = ""

    def to_record(self) -> dict[str, Any]:
        """The label as the store keeps it (`LABEL_KIND` records)."""
        return asdict(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> QuestionLabel:
        return cls(
            **{
                **data,
                "call_keys": tuple(data.get("call_keys", ())),
                "coarse": tuple(data.get("coarse", ())),
            }
        )


@dataclass(frozen=True)
class FineName:
    """A distinct fine skill name (the first wording) and the questions it was named for."""

    name: str
    questions: tuple[str, ...]


def group_fine_names(labels: Iterable[QuestionLabel]) -> list[FineName]:
    """The distinct fine names of parsed labels (same `name_key`), most frequent first."""
    groups: dict[tuple[str, ...], list[QuestionLabel]] = {}
    for label in labels:
        if label.status != "unparsed" and label.skill:
            groups.setdefault(name_key(label.skill), []).append(label)
    ordered = sorted(groups.values(), key=lambda members: -len(members))  # stable: first seen
    return [FineName(m[0].skill, tuple(label.question_id for label in m)) for m in ordered]


@dataclass(frozen=True)
class CoarseSkill:
    """A coarse skill: its catalog fields, the fine names in it and how many questions."""

    id: str
    name: str
    category: str
    definition: str
    example: str
    members: tuple[str, ...]  # fine names
    questions: int

    def to_record(self) -> dict[str, Any]:
        """The skill as the store keeps it (`SKILL_KIND` records)."""
        return asdict(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> CoarseSkill:
        return cls(**{**data, "members": tuple(data.get("members", ()))})


@dataclass
class LabelResult:
    """What a label run produced (or, in estimate mode, would send)."""

    run_id: str
    config: LabelConfig
    dataset: MathDataset
    labels: list[QuestionLabel]  # dataset order
    skills: list[CoarseSkill]
    catalog: Catalog
    notes: list[str]  # each repair of a stage-2 reply, one line
    stats: CallStats
    templates_version: str
    estimate: bool = False
    resumed: bool = False

    @property
    def unparsed(self) -> list[QuestionLabel]:
        return [label for label in self.labels if label.status == "unparsed"]

    @property
    def by_similarity(self) -> list[str]:
        """Fine names the teacher left unassigned (placed by word overlap)."""
        return sorted({label.skill for label in self.labels if label.assigned_by == "similarity"})

    def warnings(self) -> list[str]:
        """What a reader of the labels must know, one sentence each."""
        out = []
        if self.config.teacher.split(":")[0] == "embedded":
            out.append(
                f"The teacher {self.config.teacher} is SmolLM2-135M, a 135M-parameter model "
                "that cannot name or group skills reliably: these labels are a smoke test of "
                "the pipeline, not a measurement."
            )
        if self.unparsed:
            out.append(
                f"{len(self.unparsed)} of {len(self.labels)} question(s) have no readable "
                f"skill after {self.config.parse_attempts} draw(s) each (unparsed): they have "
                "no coarse skill and are left out of the agreement."
            )
        if self.by_similarity:
            out.append(
                f"{len(self.by_similarity)} fine skill name(s) were left unassigned by the "
                "teacher and placed in the coarse skill sharing the most words with them."
            )
        if len(self.skills) < self.config.skills:
            out.append(
                f"{len(self.skills)} coarse skills instead of the {self.config.skills} asked "
                "for: there were fewer distinct fine skills, or the teacher gave fewer."
            )
        return out

    def summary(self) -> dict[str, Any]:
        """The run in plain JSON values (the --json output, less the agreement)."""
        return {
            "run_id": self.run_id,
            "dataset": {
                "name": self.dataset.name,
                "hash": self.dataset.content_hash,
                "questions": len(self.dataset),
            },
            "teacher": self.config.teacher,
            "templates": self.templates_version,
            "catalog": {"hash": self.catalog.content_hash, "skills": len(self.catalog.skills)},
            "skills": [s.to_record() for s in self.skills],
            "fine_skills": len(group_fine_names(self.labels)),
            "unparsed": len(self.unparsed),
            "assigned_by_similarity": self.by_similarity,
            "repairs": self.notes,
            "warnings": self.warnings(),
            "estimate": self.estimate,
        }


# --- the pipeline ---------------------------------------------------------------------------


class LabelPipeline:
    """One label run: a dataset and a teacher, writing through a store.

    Progress is reported in two stages, "label" (one unit per question) and "cluster"
    (the define request and each assign batch).
    """

    def __init__(
        self,
        store: Store,
        config: LabelConfig,
        teacher: Model,
        dataset: MathDataset,
        *,
        settings: Settings | None = None,
        max_cost: float | None = None,
        estimate: bool = False,
        workers: int | None = None,
        progress: Progress | None = None,
    ):
        if config.dataset_hash != dataset.content_hash:
            raise InputError(
                f"the config names dataset hash {config.dataset_hash[:12]}, but the questions "
                f"given hash to {dataset.content_hash[:12]}"
            )
        self.store = store
        self.config = config
        self.teacher = teacher
        self.dataset = dataset
        self.templates = load_label_templates(config.templates)
        self.run_id = config.run_id(self.templates.version_id)
        self.estimate = estimate
        self.calls = CallCache(
            store, run_id=self.run_id, settings=settings, max_cost=max_cost, estimate=estimate
        )
        self.pool = WorkerPool(self.calls, [teacher], workers)
        self.progress = progress or Progress()
        self.structured = config.structured and teacher.supports_structured
        self.notes: list[str] = []

    @classmethod
    def for_dataset(
        cls, store: Store, dataset: MathDataset, teacher: Model, **options: Any
    ) -> LabelPipeline:
        """A pipeline whose config is built from `dataset` and `options`: the config
        fields (skills, seed, ...) and the keyword arguments of `__init__`."""
        own = {"settings", "max_cost", "estimate", "workers", "progress"}
        config = LabelConfig(
            dataset=dataset.name,
            dataset_hash=dataset.content_hash,
            questions=len(dataset),
            teacher=getattr(teacher, "spec", "embedded"),
            **{k: v for k, v in options.items() if k not in own},
        )
        return cls(
            store, config, teacher, dataset, **{k: v for k, v in options.items() if k in own}
        )

    async def _ask(
        self,
        messages: Sequence[Message],
        seed: int,
        *,
        max_tokens: int,
        schema: dict[str, Any] | None,
        attempt: int,
    ) -> CallRecord:
        request = ChatRequest(
            tuple(messages),
            self.config.temperature,
            max_tokens,
            seed,
            schema if self.structured else None,
            sample=attempt,
        )
        return await self.calls.call(self.teacher, ROLE, request)

    # --- stage 1 ----------------------------------------------------------------------------

    async def label_question(self, problem: MathProblem, index: int = 0) -> QuestionLabel:
        """Stage 1 for one question: up to `parse_attempts` draws until a skill is read."""
        cfg = self.config
        messages = skill_messages(self.templates, problem, self.structured, cfg.show_solution)
        seed = derive_seed(cfg.seed, PIPELINE, "skill", problem.id)
        category = problem.category or NO_CATEGORY
        keys: list[str] = []
        reason = ""
        for attempt in range(cfg.parse_attempts):
            record = await self._ask(
                messages, seed, max_tokens=cfg.max_tokens, schema=skill_schema(), attempt=attempt
            )
            if record.synthetic:
                return QuestionLabel(problem.id, category, "estimate", f"estimated {index}")
            keys.append(record.key)
            parsed = parse_fine_skill(record.response)
            if isinstance(parsed, FineSkill):
                method = f"schema:{record.structured}" if record.structured else parsed.method
                return QuestionLabel(
                    problem.id,
                    category,
                    "parsed",
                    parsed.name,
                    parsed.rationale,
                    method,
                    attempt + 1,
                    call_keys=tuple(keys),
                )
            cut = " (cut off at the token limit)" if record.finish_reason == "length" else ""
            reason = parsed + cut
        return QuestionLabel(
            problem.id,
            category,
            "unparsed",
            attempts=cfg.parse_attempts,
            reason=reason,
            call_keys=tuple(keys),
        )

    async def label_all(self) -> list[QuestionLabel]:
        """Stage 1 for every question, on the pool; results in dataset order."""
        problems = list(self.dataset.problems)
        found: dict[str, QuestionLabel] = {}
        self.progress.total("label", len(problems))

        async def work(unit: tuple[int, MathProblem]) -> None:
            index, problem = unit
            label = await self.label_question(problem, index)
            found[problem.id] = label
            if not self.estimate:
                self.store.put_record(self.run_id, LABEL_KIND, problem.id, label.to_record())
            self.progress.advance("label")

        await self.pool.run(list(enumerate(problems)), work)
        return [found[p.id] for p in problems]

    # --- stage 2 ----------------------------------------------------------------------------

    async def define(self, fine: Sequence[FineName], n: int) -> list[SkillDraft]:
        """The `n` coarse skills (name, definition, example), validated and repaired."""
        cfg = self.config
        messages = define_messages(
            self.templates,
            [(f.name, len(f.questions)) for f in fine],
            n,
            max(cfg.cluster_batch, n),
            self.structured,
        )
        seed = derive_seed(cfg.seed, PIPELINE, "define")
        best: list[SkillDraft] = []
        last = ""
        for attempt in range(cfg.parse_attempts):
            record = await self._ask(
                messages,
                seed,
                max_tokens=cfg.cluster_max_tokens,
                schema=define_schema(n),
                attempt=attempt,
            )
            if record.synthetic:
                return [
                    SkillDraft(f"coarse skill {j + 1}", "word " * 12, "word " * 12, "")
                    for j in range(n)
                ]
            last = record.response
            drafts = parse_coarse_skills(record.response)
            if not drafts:
                continue  # unreadable: another draw of the same request
            problem = coarse_problem(record.response, n)
            if len(drafts) > len(best) or (len(drafts) == len(best) and not problem):
                best = drafts
            if not problem:
                return drafts
            if attempt + 1 == cfg.parse_attempts:
                break
            self.notes.append(f"define: {problem} (asked again)")
            messages = repair_messages(
                self.templates, messages, record.response, problem, SHAPES["define"],
                self.structured,
            )  # fmt: skip
        if not best:
            raise LabelError(
                f"the teacher {cfg.teacher} named no coarse skills in {cfg.parse_attempts} "
                f"tries; its last answer began: {last[:300]!r}",
                hint="try a stronger teacher or a larger --cluster-max-tokens; the stage-1 "
                "labels are saved and a re-run resumes",
            )
        if len(best) != n:
            self.notes.append(f"define: kept the {min(len(best), n)} coarse skills given")
        return best[:n]

    async def assign_batch(
        self, index: int, batch: Sequence[str], coarse: Sequence[SkillDraft]
    ) -> dict[int, tuple[tuple[int, ...], str]]:
        """Fine index in `batch` -> (coarse indices, "teacher" or "similarity")."""
        cfg = self.config
        names = [d.name for d in coarse]
        messages = assign_messages(self.templates, coarse, batch, self.structured)
        seed = derive_seed(cfg.seed, PIPELINE, "assign", index)
        found: dict[int, tuple[int, ...]] = {}
        missing = list(range(len(batch)))
        for attempt in range(cfg.parse_attempts):
            numbers = [i + 1 for i in missing]
            record = await self._ask(
                messages,
                seed,
                max_tokens=cfg.cluster_max_tokens,
                schema=assign_schema(numbers, len(coarse)),
                attempt=attempt,
            )
            if record.synthetic:
                return {i: ((0,), "teacher") for i in range(len(batch))}
            parsed = parse_assignments(record.response, batch, names)
            for i in missing:
                if i in parsed:
                    found[i] = parsed[i]
            still = [i for i in missing if i not in found]
            if not still:
                break
            if not parsed:
                continue  # unreadable: another draw of the same request
            if attempt + 1 == cfg.parse_attempts:
                break
            listed = "; ".join(f"{i + 1}. {batch[i]}" for i in still)
            problem = (
                f"these skills got no broader skill number: {listed}. Give each of them at "
                f"least one number from 1 to {len(coarse)}."
            )
            self.notes.append(
                f"assign batch {index + 1}: {len(still)} fine skill(s) unassigned (asked again)"
            )
            messages = repair_messages(
                self.templates,
                messages,
                record.response,
                problem,
                assign_shape([i + 1 for i in still]),
                self.structured,
            )
            missing = still
        result = {i: (refs, "teacher") for i, refs in found.items()}
        for i in range(len(batch)):
            if i not in result:
                result[i] = ((nearest_coarse(batch[i], coarse),), "similarity")
        return result

    async def cluster(
        self, labels: Sequence[QuestionLabel]
    ) -> tuple[list[CoarseSkill], dict[str, tuple[tuple[str, ...], str]]]:
        """Stage 2: the coarse skills, and fine name -> (coarse ids, assigned by)."""
        cfg = self.config
        fine = group_fine_names(labels)
        if not fine:
            reasons = Counter(label.reason for label in labels if label.reason)
            common = f" (most often: {reasons.most_common(1)[0][0]})" if reasons else ""
            raise LabelError(
                f"the teacher {cfg.teacher} named no readable skill for any of the "
                f"{len(labels)} question(s){common}",
                hint="try a stronger teacher, or --no-structured if its JSON is malformed; "
                "every reply is in the store",
            )
        n = min(cfg.skills, len(fine))
        batches = [fine[i : i + cfg.cluster_batch] for i in range(0, len(fine), cfg.cluster_batch)]
        self.progress.total("cluster", 1 + len(batches))
        drafts: list[SkillDraft] = []

        async def define_unit(_: None) -> None:
            drafts.extend(await self.define(fine, n))
            self.progress.advance("cluster")

        await self.pool.run([None], define_unit)
        placed: dict[str, tuple[tuple[int, ...], str]] = {}

        async def assign_unit(unit: tuple[int, list[FineName]]) -> None:
            index, batch = unit
            names = [f.name for f in batch]
            for i, value in (await self.assign_batch(index, names, drafts)).items():
                placed[names[i]] = value
            self.progress.advance("cluster")

        await self.pool.run(list(enumerate(batches)), assign_unit)
        skills = build_coarse_skills(drafts, fine, placed, self.dataset)
        ids = [s.id for s in skills]
        return skills, {
            name: (tuple(ids[j] for j in refs), by) for name, (refs, by) in placed.items()
        }

    # --- the whole run ----------------------------------------------------------------------

    async def run(self) -> LabelResult:
        """Both stages (without writing files; see `write_outputs`).

        Raises BudgetReached when --max-cost is reached, RunError when the teacher fails
        and LabelError when its answers make no catalog; what was answered is kept and a
        re-run resumes. One process at a time runs a label run (`RunLeased` otherwise).
        """
        if self.estimate:
            return await self._run()
        async with self.store.lease(self.run_id):
            return await self._run()

    async def _run(self) -> LabelResult:
        resumed = False
        if not self.estimate:
            self.calls.check_prices([self.teacher])
            start = dataset_catalog(self.dataset)
            self.store.put_catalog(start)
            resumed = self.store.ensure_run(
                self.run_id,
                self.config.recorded(self.templates.version_id),
                start.content_hash,
                self.templates.version_id,
            )
            self.store.set_running(self.run_id)
        try:
            labels = await self.label_all()
            skills, placed = await self.cluster(labels)
        except BudgetReached:
            self._set_status("paused")
            raise
        except BaseException:
            self._set_status("stopped")
            raise
        finally:
            await self.teacher.aclose()
        by_key = {name_key(name): value for name, value in placed.items()}
        labels = [_with_coarse(label, by_key) for label in labels]
        catalog = label_catalog(skills, self.dataset, self.run_id)
        if not self.estimate:
            with self.store.group_commits():
                self.store.put_catalog(catalog)
                for label in labels:
                    self.store.put_record(
                        self.run_id, LABEL_KIND, label.question_id, label.to_record()
                    )
                for skill in skills:
                    self.store.put_record(self.run_id, SKILL_KIND, skill.id, skill.to_record())
                self.store.put_record(
                    self.run_id,
                    RUN_KIND,
                    "summary",
                    {"catalog_hash": catalog.content_hash, "repairs": self.notes},
                )
            self._set_status("done")
        return LabelResult(
            self.run_id,
            self.config,
            self.dataset,
            labels,
            skills,
            catalog,
            list(self.notes),
            self.calls.stats,
            self.templates.version_id,
            self.estimate,
            resumed,
        )

    def _set_status(self, status: str) -> None:
        if not self.estimate:
            self.store.set_run_status(self.run_id, status)


def _with_coarse(
    label: QuestionLabel, placed: Mapping[tuple[str, ...], tuple[tuple[str, ...], str]]
) -> QuestionLabel:
    """The label with the coarse skills of its fine name (by `name_key`; none when
    unparsed)."""
    found = placed.get(name_key(label.skill)) if label.status != "unparsed" else None
    if found is None:
        return label
    return replace(label, coarse=found[0], assigned_by=found[1])


def _majority_category(categories: Iterable[str]) -> str:
    counts = Counter(categories)
    if not counts:
        return NO_CATEGORY
    return min(counts, key=lambda c: (-counts[c], c))


def build_coarse_skills(
    drafts: Sequence[SkillDraft],
    fine: Sequence[FineName],
    placed: Mapping[str, tuple[tuple[int, ...], str]],
    dataset: MathDataset,
) -> list[CoarseSkill]:
    """Coarse skills with unique ids, their member fine names, and as category the dataset
    category most of their questions have (ties: alphabetical)."""
    category = {p.id: p.category or NO_CATEGORY for p in dataset.problems}
    members: list[list[str]] = [[] for _ in drafts]
    questions: list[list[str]] = [[] for _ in drafts]
    for f in fine:
        for j in placed.get(f.name, ((), ""))[0]:
            members[j].append(f.name)
            questions[j].extend(f.questions)
    used: set[str] = set()
    skills = []
    for j, draft in enumerate(drafts):
        base = slug(draft.name)
        skill_id, n = base, 2
        while skill_id in used:
            skill_id, n = f"{base}_{n}", n + 1
        used.add(skill_id)
        skills.append(
            CoarseSkill(
                skill_id,
                draft.name,
                _majority_category(category[q] for q in questions[j]),
                draft.definition or NO_DEFINITION,
                draft.example or NO_EXAMPLE,
                tuple(members[j]),
                len(set(questions[j])),
            )
        )
    return skills


def dataset_catalog(dataset: MathDataset) -> Catalog:
    """The catalog a label run starts from: no skills, the dataset's categories as topics."""
    return Catalog(f"math:{dataset.name}", (), _topics(dataset), dataset.content_hash[:12])


def _topics(dataset: MathDataset) -> tuple[Topic, ...]:
    names = list(dataset.categories) or [dataset.name]
    return tuple(Topic(slug(name), name, TOPIC_CATEGORY) for name in names)


def label_catalog(skills: Sequence[CoarseSkill], dataset: MathDataset, run_id: str) -> Catalog:
    """The coarse skills as a Skill-Mix catalog; its topics are the dataset's categories."""
    return Catalog(
        f"math-label:{dataset.name}",
        tuple(Skill(s.id, s.name, s.category, s.definition, s.example) for s in skills),
        _topics(dataset),
        run_id,
    )


# --- reading a run back ---------------------------------------------------------------------


@dataclass
class StoredLabelRun:
    """A label run as the store holds it: what `math eval` and reports read."""

    run_id: str
    status: str
    config: dict[str, Any]
    labels: dict[str, QuestionLabel]  # by question id
    skills: list[CoarseSkill]
    catalog: Catalog | None  # None until the run is done
    repairs: list[str]

    def skills_of(self, question_id: str) -> tuple[str, ...]:
        """The coarse skill ids of a question (empty when it has none)."""
        label = self.labels.get(question_id)
        return label.coarse if label else ()


def load_label_run(store: Store, run_id: str) -> StoredLabelRun:
    """The label run `run_id` (or a unique start of it) from the store.

    Raises InputError when the run is not a label run.
    """
    run = store.get_run(run_id)
    if run["config"].get("kind") != PIPELINE:
        raise InputError(
            f"run {run['id']} is not a math label run",
            hint="give the id `skillmix math label` printed (it starts with math-label-)",
        )
    labels = {
        k: QuestionLabel.from_record(v) for k, v in store.records(run["id"], LABEL_KIND).items()
    }
    skills = [CoarseSkill.from_record(v) for v in store.records(run["id"], SKILL_KIND).values()]
    summary = store.records(run["id"], RUN_KIND).get("summary", {})
    catalog = store.get_catalog(summary["catalog_hash"]) if "catalog_hash" in summary else None
    if catalog is not None:
        order = {s.id: i for i, s in enumerate(catalog.skills)}
        skills.sort(key=lambda s: order.get(s.id, len(order)))
    return StoredLabelRun(
        run["id"], run["status"], run["config"], labels, skills, catalog, summary.get("repairs", [])
    )


# --- agreement with the dataset's human labels -------------------------------------------------


def annotated_questions(
    labels: Sequence[QuestionLabel], dataset: MathDataset
) -> tuple[list[AnnotatedQuestion], dict[str, int]]:
    """Questions that can be compared with human labels, and how many were left out why."""
    problems = {p.id: p for p in dataset.problems}
    kept: list[AnnotatedQuestion] = []
    excluded: Counter[str] = Counter()
    for label in labels:
        problem = problems.get(label.question_id)
        if problem is None or not problem.concepts:
            excluded["no human concepts"] += 1
        elif label.status != "parsed":
            excluded[f"{label.status} label"] += 1
        else:
            kept.append(
                AnnotatedQuestion(
                    label.question_id,
                    label.category,
                    frozenset(label.coarse),
                    frozenset(problem.concepts),
                )
            )
    return kept, dict(excluded)


def agreement_with_annotations(result: LabelResult, *, resamples: int = 2000) -> Agreement:
    """The agreement of a run's labels with its dataset's human concepts.

    Raises InputError when the dataset has no human labels.
    """
    if not any(p.concepts for p in result.dataset.problems):
        raise InputError(
            f"the dataset {result.dataset.name} has no human skill labels (concepts) to "
            "compare with",
            hint="leave out --against-annotations, or give a dataset with a concepts column",
        )
    questions, excluded = annotated_questions(result.labels, result.dataset)
    return measure_agreement(questions, excluded, resamples=resamples, seed=result.config.seed)


# --- files ----------------------------------------------------------------------------------


def concept_text(dataset: MathDataset, concept: str) -> str:
    """A concept's text from the dataset's table (a free-text label is its own text)."""
    return dataset.concepts.get(concept, concept)


def write_outputs(
    result: LabelResult,
    out_dir: Path,
    agreement: Agreement | None = None,
    *,
    usage: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Path]:
    """Write the catalog, the labels, the agreement and the HTML page into `out_dir`.

    Files: skills_catalog.yaml (loadable with `skillmix.catalog.load_catalog`), labels.csv
    and labels.json (every question, unparsed ones with their reason), with an agreement:
    agreement.csv and confusion.csv; and report.html. `usage` rows (role, model, calls,
    tokens, cost) go to the page.
    """
    from skillmix.data.instruct.outputs import write_catalog
    from skillmix.export import neutralise_formula
    from skillmix.math.html import write_label_page

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    catalog_path = out_dir / "skills_catalog.yaml"
    write_catalog(
        result.catalog,
        catalog_path,
        header=(
            f"# Coarse math skills named by {result.config.teacher} for "
            f"{result.dataset.name} (run {result.run_id}).\n"
            f"# Content hash {result.catalog.content_hash}; category = the dataset category "
            "most of a skill's questions have; topics = the dataset's categories.\n"
        ),
    )
    paths["catalog"] = catalog_path
    names = {s.id: s.name for s in result.skills}
    problems = {p.id: p for p in result.dataset.problems}
    labels_csv = out_dir / "labels.csv"
    with labels_csv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "question_id",
                "category",
                "status",
                "fine_skill",
                "rationale",
                "coarse_skill_ids",
                "coarse_skills",
                "assigned_by",
                "human_concepts",
                "reason",
            ]
        )
        for label in result.labels:
            human = problems[label.question_id].concepts if label.question_id in problems else ()
            row = [
                label.question_id,
                label.category,
                label.status,
                label.skill,
                label.rationale,
                ";".join(label.coarse),
                ";".join(names.get(c, c) for c in label.coarse),
                label.assigned_by,
                ";".join(human),
                label.reason,
            ]
            writer.writerow([neutralise_formula(v) for v in row])
    paths["labels_csv"] = labels_csv
    labels_json = out_dir / "labels.json"
    document = {
        **result.summary(),
        "labels": [
            {
                **label.to_record(),
                "human_concepts": list(problems[label.question_id].concepts)
                if label.question_id in problems
                else [],
            }
            for label in result.labels
        ],
        "agreement": agreement.to_dict() if agreement else None,
    }
    labels_json.write_text(
        json.dumps(finite(document), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
        encoding="utf-8",
    )
    paths["labels_json"] = labels_json
    if agreement is not None:
        paths["agreement"] = _write_agreement_csv(agreement, out_dir / "agreement.csv")
        confusion = out_dir / "confusion.csv"
        with confusion.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["skill_id", "skill", "concept", "questions", "skill_questions"])
            for (skill, concept), n in sorted(agreement.confusion.items()):
                writer.writerow(
                    [neutralise_formula(v) for v in (skill, names.get(skill, skill), concept, n)]
                    + [agreement.skill_questions.get(skill, 0)]
                )
        paths["confusion"] = confusion
    paths["html"] = write_label_page(result, out_dir / "report.html", agreement, usage=usage)
    return paths


def _write_agreement_csv(agreement: Agreement, path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["mapping", "category", "questions", "tp", "fp", "fn"]
            + [
                f"{m}_{part}"
                for m in ("precision", "recall", "f1")
                for part in ("value", "low", "high")
            ]
        )
        for mapping, rows in (("cross-fitted", agreement.rows), ("in-sample", agreement.in_sample)):
            for r in rows:
                writer.writerow(
                    [mapping, r.category, r.questions, r.true_positives, r.false_positives]
                    + [r.false_negatives]
                    + [
                        _cell(getattr(getattr(r, m), part))
                        for m in ("precision", "recall", "f1")
                        for part in ("value", "low", "high")
                    ]
                )
    return path


def _cell(value: float) -> str:
    return "" if value != value else f"{value:.4f}"


def usage_rows(store: Store, run_id: str, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Calls, tokens and cost of a run per model, paid and reused apart (for the page)."""
    settings = settings or Settings()
    rows = []
    for row in store.usage(run_id):
        price = settings.price(row["provider"], row["model"])
        cost = (
            None
            if price is None
            else price.cost(int(row["prompt_tokens"] or 0), int(row["completion_tokens"] or 0))
        )
        rows.append({**row, "cost": cost})
    return rows
