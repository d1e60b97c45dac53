"""Skill-Mix SFT data (SPEC section 6): a teacher's graded texts on the train split, filtered.

The job *is* a Skill-Mix evaluation run with the teacher as the student, restricted to
the train side of a skill/topic split: the same items, prompts, judges, votes and code
criteria as `skillmix run`, resumable and cached through the store. From the stored run,
`collect_sft` keeps each generation whose own decided scores (not the item's max over
rounds) meet the keep rule for every judge, turns it into a chat record, drops
near-duplicates, and checks that nothing held out leaks into the data.

Keep rule: `keep_threshold` is compared with the generation's skill fraction (A/k when
topic, sense and length are all met, else 0), taking the lowest over judges. With the
default 1.0 this is exactly "full marks"; 0.5 keeps texts that show at least half of
their skills and meet the other three criteria; 0 keeps every scored, non-empty text.
"""

from __future__ import annotations

import hashlib
import json
import math
import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from skillmix import prompts
from skillmix.catalog.model import Catalog
from skillmix.catalog.sampling import combinations_count, split_catalog
from skillmix.config import RunConfig, SplitConfig
from skillmix.data.card import CardMeta, SplitFacts, embedded_warnings, usage_counts
from skillmix.data.dedup import Rejection, dedup_method, dedupe
from skillmix.data.records import DataRecord
from skillmix.errors import InputError
from skillmix.models import Model
from skillmix.models.settings import Settings
from skillmix.prompts.rubric import max_sentences
from skillmix.protocol.engine import Engine, RunResult, apply_split
from skillmix.runtime.loop import run as run_async
from skillmix.runtime.pool import derive_seed
from skillmix.runtime.progress import Progress
from skillmix.scoring.metrics import METRICS
from skillmix.scoring.results import GenerationScore, score_run
from skillmix.store import GenerationRow, ItemRow, RunRow, Store, StoreError

PIPELINE = "skillmix-sft"
DEFAULT_K = (1, 2, 3)
# Composition levels of the held-out evaluation (the paper trains on k=2,3 and tests up to 5).
EVAL_K = (2, 3, 4, 5)
SENTENCE_LIMIT = "The text must have at most {limit} {word}."


class LeakError(AssertionError):
    """A held-out skill or topic reached the training data (a bug, never expected)."""


@dataclass(frozen=True)
class HeldOut:
    """What an SFT data set must never contain, and how the split was made."""

    split: SplitConfig | None
    description: str
    skills: tuple[str, ...]
    topics: tuple[str, ...]

    def to_dict(self) -> SplitFacts:
        split = self.split
        return {
            "description": self.description,
            "skills_fraction": split.skills if split else 0.0,
            "topics_fraction": split.topics if split else 0.0,
            "categories": list(split.categories) if split else [],
            "seed": split.seed if split else 0,
            "held_out_skills": list(self.skills),
            "held_out_topics": list(self.topics),
        }


@dataclass
class SFTResult:
    """Kept records, rejected ones with reasons, and the facts the data card reports."""

    records: list[DataRecord]
    rejected: list[Rejection]
    card_meta: CardMeta
    run: RunResult | None = None  # the engine's result when `build_sft` ran it
    reasons: dict[str, int] = field(default_factory=dict)


def sft_config(
    teacher: str,
    judges: Sequence[str],
    *,
    k: Sequence[int] = DEFAULT_K,
    held_out_skills: float = 0.0,
    held_out_topics: float = 0.0,
    held_out_categories: Sequence[str] = (),
    split_seed: int = 0,
    **fields: Any,
) -> RunConfig:
    """A RunConfig for an SFT job: the teacher as student, on the train side of the split."""
    split = SplitConfig(
        part="train",
        skills=held_out_skills,
        topics=held_out_topics,
        categories=tuple(held_out_categories),
        seed=split_seed,
    )
    return RunConfig(student=teacher, judges=tuple(judges), k=tuple(k), split=split, **fields)


def held_out_part(catalog: Catalog, split: SplitConfig | None) -> HeldOut:
    """The skills and topics a train-split job leaves out of `catalog`."""
    if split is None:
        return HeldOut(None, "no split: every skill and topic is used", (), ())
    parts = split_catalog(
        catalog,
        skill_fraction=split.skills,
        topic_fraction=split.topics,
        held_out_categories=split.categories,
        seed=split.seed,
    )
    train_skills = {s.id for s in parts.train.skills}
    train_topics = {t.id for t in parts.train.topics}
    return HeldOut(
        split,
        parts.description,
        tuple(s.id for s in catalog.skills if s.id not in train_skills),
        tuple(t.id for t in catalog.topics if t.id not in train_topics),
    )


def sft_engine(
    store: Store,
    config: RunConfig,
    catalog: Catalog,
    teacher: Model,
    judges: list[Model],
    *,
    progress: Progress | None = None,
    settings: Settings | None = None,
    max_cost: float | None = None,
    estimate: bool = False,
    workers: int | None = None,
) -> Engine:
    """The Engine of an SFT job (run it, then `collect_sft`); refuses the held-out side."""
    if config.split is not None and config.split.part != "train":
        raise InputError(
            "SFT data is written on the train side of the split only: set split.part='train'"
        )
    return Engine(
        store,
        config,
        catalog,
        teacher,
        judges,
        settings=settings,
        max_cost=max_cost,
        estimate=estimate,
        workers=workers,
        progress=progress,
    )


def build_sft(
    store: Store,
    config: RunConfig,
    catalog: Catalog,
    teacher: Model,
    judges: list[Model],
    *,
    keep_threshold: float = 1.0,
    dedup_threshold: float = 0.8,
    progress: Progress | None = None,
    settings: Settings | None = None,
    max_cost: float | None = None,
    workers: int | None = None,
    eval_k: Sequence[int] = EVAL_K,
) -> SFTResult:
    """Run (or resume) the teacher on the train split, grade it, and build the data set.

    `config.student` names the teacher (as recorded in the run); `teacher` is that model.
    `catalog` is the whole catalog: the job samples from its train side and records the
    held-out side. See the module docstring for the keep rule. Raises BudgetReached or
    RunError from the runtime's pool (everything answered is saved; calling again resumes).
    Not for a running event loop (a notebook): there, `await sft_engine(...).run()` and
    then call `collect_sft`.
    """
    engine = sft_engine(
        store,
        config,
        catalog,
        teacher,
        judges,
        progress=progress,
        settings=settings,
        max_cost=max_cost,
        workers=workers,
    )
    run = run_async(engine.run())
    result = collect_sft(
        store,
        run.run_id,
        catalog,
        keep_threshold=keep_threshold,
        dedup_threshold=dedup_threshold,
        eval_k=eval_k,
    )
    result.run = run
    return result


def sft_prompt(
    templates: prompts.TemplateSet, skill_ids: Sequence[str], catalog: Catalog, topic_id: str
) -> str:
    """The turn-1 task (skills with definitions and examples, topic) plus the sentence limit."""
    skills = [catalog.skill(s) for s in skill_ids]
    [turn1] = prompts.generation_turn1(templates, skills, catalog.topic(topic_id))
    return _with_limit(turn1["content"], len(skill_ids))


def _with_limit(task: str, k: int) -> str:
    limit = max_sentences(k)
    line = SENTENCE_LIMIT.format(limit=limit, word="sentence" if limit == 1 else "sentences")
    return f"{task}\n\n{line}"


def collect_sft(
    store: Store,
    run_id: str,
    catalog: Catalog,
    *,
    keep_threshold: float = 1.0,
    dedup_threshold: float = 0.8,
    eval_k: Sequence[int] = EVAL_K,
) -> SFTResult:
    """Build the data set from a finished run in the store (no model is called).

    Calling it again with another keep or dedup threshold re-filters the same texts.
    An `InputError` says why a run cannot give SFT data: not finished, on the held-out
    side, or made from another catalog than `catalog`.
    """
    if not 0.0 <= keep_threshold <= 1.0:
        raise InputError(f"the keep threshold must be in [0, 1], got {keep_threshold}")
    run = store.get_run(run_id)
    run_id = run["id"]
    config = RunConfig(**run["config"])
    if config.split is not None and config.split.part != "train":
        raise InputError(
            f"run {run_id} evaluates the held-out side: it is not SFT data",
            hint="SFT data comes from a run on the train side (`skillmix data sft`)",
        )
    train = apply_split(catalog, config.split)
    if train.content_hash != run["catalog_hash"]:
        raise InputError(
            f"run {run_id} used catalog {run['catalog_hash'][:12]}, but the catalog given "
            f"splits to {train.short_hash}: pass the catalog the run was made from"
        )
    held_out = held_out_part(catalog, config.split)
    templates = prompts.load_templates(config.templates)
    scores = score_run(store, run_id)
    judged: dict[tuple[str, int], dict[str, GenerationScore]] = {}
    for result in scores.items:
        for g in result.generations:
            judged.setdefault((result.item_id, g.gen_round), {})[result.judge] = g
    generations = {(g["item_id"], g["round"]): g for g in store.generations(run_id)}
    grade_keys: dict[tuple[str, int], dict[str, list[str]]] = {}
    grade_rounds: Counter[tuple[str, int, str]] = Counter()
    for grade in store.grades(run_id):
        keys = grade_keys.setdefault((grade["item_id"], grade["gen_round"]), {})
        keys.setdefault(grade["judge"], []).extend(grade["call_keys"])
        grade_rounds[(grade["item_id"], grade["gen_round"], grade["judge"])] += 1

    shared = {
        "run_id": run_id,
        "catalog_name": catalog.name,
        "catalog_hash": catalog.content_hash,
        "train_catalog_hash": run["catalog_hash"],
        "template_version": run["template_version"],
        "split": held_out.to_dict(),
        "seed": config.seed,
        "judges": list(config.judges),
        "grading_rounds": config.grading_rounds,
        "teacher_decoding": config.student_decoding.model_dump(),
        "judge_decoding": config.judge_decoding.model_dump(),
        "naming_penalty": config.naming_penalty,
        "keep_threshold": keep_threshold,
    }
    candidates: list[DataRecord] = []
    rejected: list[Rejection] = []
    missing = 0
    for item in store.items(run_id):
        for gen_round in range(config.generation_rounds):
            key = (item["item_id"], gen_round)
            gen = generations.get(key)
            by_judge = judged.get(key, {})
            graded = all(
                grade_rounds[(*key, judge)] == config.grading_rounds for judge in config.judges
            )
            if gen is None or not graded or set(by_judge) != set(config.judges):
                missing += 1
                continue
            record = _record(
                store, templates, catalog, config, item, gen, by_judge, grade_keys[key], shared
            )
            verdict = _verdict(gen["answer"], by_judge, keep_threshold)
            if verdict is None:
                candidates.append(record)
            else:
                rejected.append(Rejection(record, *verdict))
    if missing:
        raise InputError(
            f"run {run_id} is not finished ({missing} generation(s) not yet generated or "
            "graded): run the same job again to resume it"
        )
    kept, duplicates = dedupe(candidates, dedup_threshold)
    rejected += duplicates
    _check_no_leak([*kept, *(r.record for r in rejected)], held_out)
    reasons = dict(Counter(r.reason for r in rejected))
    meta = _card_meta(
        store, run, config, catalog, held_out, keep_threshold, dedup_threshold, eval_k
    )
    return SFTResult(kept, rejected, meta, reasons=reasons)


def _verdict(
    answer: str, by_judge: dict[str, GenerationScore], keep_threshold: float
) -> tuple[str, str] | None:
    """None to keep the generation, else (reason, detail)."""
    if not answer.strip():
        return "empty-answer", "the teacher's final answer was empty"
    unscored = sorted(j for j, g in by_judge.items() if g.scores is None)
    if unscored:
        return "unparsed", f"no parsed grading round from {', '.join(unscored)}"
    lowest = min(g.scores.skill_fraction for g in by_judge.values() if g.scores is not None)
    if lowest >= keep_threshold:
        return None
    missed = []
    for judge, g in sorted(by_judge.items()):
        failed = [c for c, v in sorted((g.decided or {}).items()) if not v]
        named = [f"named {s}" for s in g.penalized]
        missed.append(f"{judge}: missed {', '.join(failed + named) or 'nothing'}")
    rule = "not full marks" if keep_threshold >= 1.0 else f"skill fraction {lowest:.2f}"
    return "below-threshold", f"{rule} (< {keep_threshold:g}); " + "; ".join(missed)


def _record(
    store: Store,
    templates: prompts.TemplateSet,
    catalog: Catalog,
    config: RunConfig,
    item: ItemRow,
    gen: GenerationRow,
    by_judge: dict[str, GenerationScore],
    grade_keys: dict[str, list[str]],
    shared: dict[str, Any],
) -> DataRecord:
    turn1 = store.get_call(gen["turn1_key"])
    if turn1 is not None:  # the task exactly as the teacher saw it
        task = _with_limit(turn1.messages[0]["content"], item["k"])
    elif templates.version_id == shared["template_version"]:
        task = sft_prompt(templates, item["skill_ids"], catalog, item["topic_id"])
    else:
        raise StoreError(
            f"the teacher's prompt for {item['item_id']} is no longer in the store and the "
            f"templates changed since ({shared['template_version']} -> "
            f"{templates.version_id}): the record cannot be rebuilt faithfully"
        )
    messages = [
        {"role": "user", "content": task},
        {"role": "assistant", "content": gen["answer"]},
    ]
    scored = [g.scores for g in by_judge.values() if g.scores is not None]
    scores = (
        {m: min(getattr(s, m) for s in scored) for m in METRICS}
        if len(scored) == len(by_judge)
        else {}
    )
    origin = json.dumps(
        [PIPELINE, item["item_id"], gen["round"], gen["turn2_key"], messages], sort_keys=True
    )
    topic = catalog.topic(item["topic_id"])
    return DataRecord(
        id="sft-" + hashlib.sha256(origin.encode()).hexdigest()[:16],
        pipeline=PIPELINE,
        messages=messages,
        skills=list(item["skill_ids"]),
        teacher=config.student,
        topic=item["topic_id"],
        k=item["k"],
        judge_verdicts={j: g.decided for j, g in sorted(by_judge.items())},
        scores=scores,
        provenance={
            **shared,
            "item_id": item["item_id"],
            "generation_round": gen["round"],
            "generation_seed": derive_seed(config.seed, item["item_id"], "generate", gen["round"]),
            "skill_names": [catalog.skill(s).name for s in item["skill_ids"]],
            "topic_name": topic.name,
            "sentences": gen["sentences"],
            "named_skills": gen["named"],
            "marker_found": bool(gen["marker_found"]),
            "call_keys": {
                "turn1": gen["turn1_key"],
                "turn2": gen["turn2_key"],
                "grades": {j: grade_keys.get(j, []) for j in sorted(by_judge)},
            },
        },
    )


def _check_no_leak(records: Sequence[DataRecord], held_out: HeldOut) -> None:
    skills, topics = set(held_out.skills), set(held_out.topics)
    for record in records:
        leaked = sorted(set(record.skills) & skills)
        if leaked or record.topic in topics:
            raise LeakError(
                f"record {record.id} uses held-out {leaked or record.topic}: the train split leaked"
            )


def held_out_command(config: RunConfig, catalog: Catalog, eval_k: Sequence[int] = EVAL_K) -> str:
    """The `skillmix run` that evaluates a fine-tuned model on exactly the held-out side.

    Same catalog, split (fractions, categories, seed), templates and judges as the data;
    FINETUNED_MODEL stands for the model trained on it. k values larger than the held-out
    skills allow are left out, and items per k are capped at what the side can supply.
    """
    split = config.split or SplitConfig()
    side = apply_split(catalog, split.model_copy(update={"part": "held-out"}))
    ks = [k for k in sorted(set(eval_k)) if k <= len(side.skills)] or [len(side.skills)]
    items = min(
        [config.items, *(combinations_count(len(side.skills), k, len(side.topics)) for k in ks)]
    )
    args = ["skillmix", "run", "--student", "FINETUNED_MODEL"]
    for judge in config.judges:
        args += ["--judge", judge]
    args += ["--k", ",".join(map(str, ks)), "--items", str(items), "--split", "held-out"]
    if split.skills:
        args += ["--held-out-skills", f"{split.skills:g}"]
    if split.topics:
        args += ["--held-out-topics", f"{split.topics:g}"]
    for category in split.categories:
        args += ["--held-out-category", category]
    args += ["--split-seed", str(split.seed)]
    if tuple(config.catalog) != RunConfig().catalog:
        for source in config.catalog:
            args += ["--catalog", source]
    if config.templates != RunConfig().templates:
        args += ["--templates", config.templates]
    if not config.naming_penalty:
        args.append("--no-naming-penalty")
    return shlex.join(args)


def _card_meta(
    store: Store,
    run: RunRow,
    config: RunConfig,
    catalog: Catalog,
    held_out: HeldOut,
    keep_threshold: float,
    dedup_threshold: float,
    eval_k: Sequence[int],
) -> CardMeta:
    warnings = [
        *embedded_warnings("Teacher", [config.student]),
        *embedded_warnings("Judge", config.judges),
    ]
    if not held_out.skills and not held_out.topics:
        warnings.append(
            "Nothing is held out: a model trained on this data cannot be tested on unseen "
            "skills or topics (use --held-out-skills/--held-out-topics/--held-out-category)."
        )
    usage = usage_counts(store.usage(run["id"]), {"student": "teacher"})
    if keep_threshold >= 1.0:
        keep_rule = "full marks (every skill, topic, sense and length criterion met)"
    else:
        keep_rule = (
            f"skill fraction >= {keep_threshold:g} (A/k, counted only when topic, sense and "
            "length are all met)"
        )
    return {
        "pipeline": PIPELINE,
        "run_id": run["id"],
        "teacher": config.student,
        "judges": list(config.judges),
        "catalog": {
            "name": catalog.name,
            "sources": list(config.catalog),
            "hash": catalog.content_hash,
            "train_hash": run["catalog_hash"],
            "skills": len(catalog.skills),
            "topics": len(catalog.topics),
        },
        "templates": run["template_version"],
        "split": held_out.to_dict(),
        "k": list(config.k),
        "items_per_k": config.items,
        "generation_rounds": config.generation_rounds,
        "grading_rounds": config.grading_rounds,
        "seed": config.seed,
        "teacher_decoding": config.student_decoding.model_dump(),
        "judge_decoding": config.judge_decoding.model_dump(),
        "naming_penalty": config.naming_penalty,
        "keep_threshold": keep_threshold,
        "keep_rule": keep_rule + "; judged per generation, by every judge",
        "dedup_threshold": dedup_threshold,
        "dedup_method": dedup_method(),
        "eval_command": held_out_command(config, catalog, eval_k),
        "skill_categories": {s.id: s.category for s in catalog.skills},
        "usage": usage,
        "warnings": warnings,
        "train_combinations": {
            str(k): math.comb(len(catalog.skills) - len(held_out.skills), k)
            * (len(catalog.topics) - len(held_out.topics))
            for k in config.k
        },
    }
