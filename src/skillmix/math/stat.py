"""`skillmix math data`: training data aimed at a student's missing skills (STAT).

Both methods start from a finished `math profile` run (`load_source`): its dataset, split
and skill labels give the *pool* (the train part, the questions training data may use)
and the *held-out* questions (the test part, which no record may repeat), and its
Missing-Skill-Profile gives each skill's missing rate r_s (skills without an assessed
question have none and are left out of the rule below).

STAT-Sel (`stat-sel`): the pool's questions with their worked solutions, weighted
towards the missing skills. The rule, with temperature T > 0 (`--temperature`), floor
f >= 0 (`--floor`) and aggregate A (`--aggregate`, mean or max):

1. skill weight  u_s = exp(r_s / T) / mean over profiled skills s' of exp(r_s' / T)
   (a softmax scaled so that the average profiled skill weighs 1; a large T makes every
   skill weigh 1, a small T puts the weight on the most-missed skills);
2. raw weight of a question q with profiled skills S_q:
   w_q = max(f, A over s in S_q of u_s), and w_q = f when S_q is empty;
3. weight  = w_q / mean over the written questions of w_q (so the weights average 1
   and a weighted loss keeps its scale).

Each record stores `scores["weight"]` (step 3) and `scores["raw_weight"]` (step 2), and
its provenance the skill weights u_s it used. With `--resample N` the data set is instead
N draws with replacement, each question drawn with probability weight / sum of weights
(seeded): train on it without weights (the weight each draw was drawn with is kept).
Pool questions without a worked solution, and those `leak_check` pairs with a held-out
question, are left out (listed in rejected.jsonl) and weigh nothing.

STAT-Syn (`stat-syn`, `math.stat_syn`): for every skill whose missing rate is above
`--threshold`, the teacher writes `--per-skill` new question-solution pairs, each shown
pool questions labelled with that skill; see that module for the checks a pair passes.

Both write with `data.export` (JSONL chat messages, Parquet, a Hugging Face dataset) and
`data.card` (card.md and card.json: counts per skill, the profile run that drove the
data, the rule and the rejections), as `skillmix data sft` does.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from skillmix.data.card import CardMeta, CatalogFacts, embedded_warnings, write_card
from skillmix.data.dedup import Rejection
from skillmix.data.export import export_records, write_rejections
from skillmix.data.records import DataRecord
from skillmix.errors import InputError
from skillmix.math.eval import SkillLabels, labels_from_annotations, labels_from_run
from skillmix.math.problems import MathDataset, MathProblem, leak_check
from skillmix.math.profile import SkillProfile, StoredProfile, load_profile, split_parts
from skillmix.math.strategies import solve_messages
from skillmix.runtime.pool import derive_seed
from skillmix.store import Store

SEL = "stat-sel"
SYN = "stat-syn"
METHODS = (SEL, SYN)
AGGREGATES = ("mean", "max")
Aggregate = Literal["mean", "max"]

REJECTION_REASONS = {
    "no-solution": "the pool question has no worked solution to train on",
    "leak": "the question repeats (or nearly repeats) a held-out test question",
    "unparsed-pair": "no question, solution and answer could be read from the teacher",
    "inconsistent-pair": "the written solution's final answer is not the written answer",
    "verify-disagrees": "an independent solve does not reach the written answer",
    "near-duplicate-pool": "near-duplicate of a pool question",
    "near-duplicate-test": "near-duplicate of a held-out test question",
    "near-duplicate": "near-duplicate of a kept generated question",
}


# --- what the data is made from -----------------------------------------------------------


@dataclass(frozen=True)
class ProfileSource:
    """A finished profile run and what it was measured on: the data's starting point."""

    profile: StoredProfile
    dataset: MathDataset
    labels: SkillLabels
    pool: MathDataset  # the train part: what records may use
    held_out: MathDataset  # the test part: what no record may repeat

    @property
    def run_id(self) -> str:
        return self.profile.run_id

    @property
    def skills(self) -> list[SkillProfile]:
        return self.profile.skills

    def rates(self) -> dict[str, float]:
        """Skill -> missing rate, for the skills with an assessed question."""
        return {s.skill: s.rate for s in self.skills if s.assessed}


def load_source(store: Store, profile_run: str, dataset: MathDataset) -> ProfileSource:
    """The profile run `profile_run` with its dataset (which must be the one it profiled),
    split and labels. An InputError says what to do when the run is not finished or the
    dataset differs."""
    profile = load_profile(store, profile_run)
    cfg = profile.config
    if profile.status != "done":
        raise InputError(
            f"the profile run {profile.run_id} is not finished (status {profile.status})",
            hint="re-run the `skillmix math profile` command that started it",
        )
    if cfg.get("dataset_hash") and cfg["dataset_hash"] != dataset.content_hash:
        raise InputError(
            f"the profile run {profile.run_id} profiled dataset {cfg['dataset_hash'][:12]} "
            f"({cfg.get('dataset')}), not {dataset.name} ({dataset.content_hash[:12]})",
            hint="give the dataset the profile was made on with --dataset",
        )
    labels = (
        labels_from_run(store, cfg["labels"], dataset)
        if cfg.get("labels")
        else labels_from_annotations(dataset)
    )
    pool, held_out = split_parts(
        dataset, str(cfg.get("part", "train")), float(cfg.get("test_share", 0.5)),
        int(cfg.get("seed", 0)),
    )  # fmt: skip
    return ProfileSource(profile, dataset, labels, pool, held_out)


def source_warnings(source: ProfileSource) -> list[str]:
    """What the part the profile was measured on means for the data (for its card)."""
    part = source.profile.config.get("part")
    if part == "all":
        return [
            "The profile used every question (--part all): nothing is held out, so a model "
            "trained on this data cannot be tested on unseen questions of the dataset."
        ]
    if part == "test":
        return [
            "The profile was measured on the test part: the data was aimed using the "
            "student's test answers, so a later evaluation on that part is not independent "
            "of it."
        ]
    return []


def leaked_pool(source: ProfileSource) -> dict[str, str]:
    """Pool question id -> the held-out question it repeats (`leak_check`)."""
    return {a: b for a, b in leak_check(source.pool.problems, source.held_out.problems)}


_BOXED = re.compile(r"\\boxed\s*\{")


def worked_solution(solution: str, answer: str) -> str:
    """A solution as a training target: it ends with `\\boxed{answer}` unless it boxes
    its answer already, as the student prompt asks."""
    text = solution.strip()
    if _BOXED.search(text):
        return text
    final = f"Final answer: \\boxed{{{answer.strip()}}}"
    return f"{text}\n\n{final}" if text else final


def chat_messages(question: str, solution: str, answer: str) -> list[dict[str, str]]:
    """The record's conversation: the student's zero-shot prompt and the solution."""
    [prompt] = solve_messages(question)
    return [
        {"role": "user", "content": prompt["content"]},
        {"role": "assistant", "content": worked_solution(solution, answer)},
    ]


# --- STAT-Sel -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightRule:
    """How STAT-Sel turns missing rates into example weights (module docstring)."""

    temperature: float = 0.25
    floor: float = 0.1
    aggregate: Aggregate = "mean"

    def __post_init__(self) -> None:
        if not self.temperature > 0 or not math.isfinite(self.temperature):
            raise InputError(f"--temperature must be above 0, got {self.temperature}")
        if not self.floor >= 0 or not math.isfinite(self.floor):
            raise InputError(f"--floor must be 0 or more, got {self.floor}")
        if self.aggregate not in AGGREGATES:
            raise InputError(f"--aggregate must be mean or max, got {self.aggregate!r}")

    def describe(self) -> str:
        return (
            f"u_s = exp(r_s / {self.temperature:g}) / mean_s' exp(r_s' / {self.temperature:g}) "
            f"over the profiled skills (r = missing rate); raw weight = max({self.floor:g}, "
            f"{self.aggregate} of u_s over the question's profiled skills), {self.floor:g} "
            "without one; weight = raw weight / its mean over the written questions"
        )


def skill_weights(rates: Mapping[str, float], temperature: float) -> dict[str, float]:
    """u_s = exp(r_s / T) / mean_s' exp(r_s' / T): a softmax scaled to average 1."""
    if not rates:
        return {}
    top = max(rates.values())
    scaled = {s: math.exp((r - top) / temperature) for s, r in rates.items()}
    mean = sum(scaled.values()) / len(scaled)
    return {s: v / mean for s, v in scaled.items()}


def raw_weight(skills: Sequence[str], weights: Mapping[str, float], rule: WeightRule) -> float:
    """max(floor, aggregate of the skill weights of `skills` that have one), else floor."""
    found = [weights[s] for s in dict.fromkeys(skills) if s in weights]
    if not found:
        return rule.floor
    value = max(found) if rule.aggregate == "max" else sum(found) / len(found)
    return max(rule.floor, value)


def selection_weights(
    skills_of: Mapping[str, Sequence[str]], rates: Mapping[str, float], rule: WeightRule
) -> dict[str, tuple[float, float]]:
    """Question id -> (raw weight, weight) for every question of `skills_of`."""
    weights = skill_weights(rates, rule.temperature)
    raw = {q: raw_weight(skills, weights, rule) for q, skills in skills_of.items()}
    mean = sum(raw.values()) / len(raw) if raw else 1.0
    if mean <= 0:  # a floor of 0 and no profiled skill anywhere: every question alike
        return {q: (w, 1.0) for q, w in raw.items()}
    return {q: (w, w / mean) for q, w in raw.items()}


def resample(weights: Sequence[float], n: int, seed: int) -> list[int]:
    """`n` indices drawn with replacement, index i with probability weights[i] / sum."""
    if n < 1:
        raise InputError(f"--resample must be at least 1, got {n}")
    total = float(sum(weights))
    if not weights or total <= 0:
        raise InputError("no question has a weight above 0 to draw from")
    rng = np.random.default_rng(seed)
    p = np.asarray(weights, dtype=float) / total
    return [int(i) for i in rng.choice(len(weights), size=n, replace=True, p=p)]


@dataclass
class StatData:
    """What a STAT method produced: kept records, rejected ones, and the card's facts."""

    records: list[DataRecord]
    rejected: list[Rejection]
    meta: CardMeta


def _record_id(prefix: str, *parts: object) -> str:
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return f"{prefix}-" + hashlib.sha256(blob.encode()).hexdigest()[:16]


def pool_record(
    source: ProfileSource, problem: MathProblem, provenance: Mapping[str, object]
) -> DataRecord:
    """A pool question with its worked solution as a record (no weight yet)."""
    skills = list(source.labels.by_question.get(problem.id, ()))
    messages = chat_messages(problem.question, problem.solution or "", problem.answer)
    return DataRecord(
        id=_record_id(SEL, source.run_id, problem.id),
        pipeline=SEL,
        messages=messages,
        skills=skills,
        teacher=f"{source.dataset.name} worked solutions",
        k=len(skills),
        provenance={
            "profile_run": source.run_id,
            "dataset": source.dataset.name,
            "dataset_hash": source.dataset.content_hash,
            "labels": source.labels.source,
            "question_id": problem.id,
            "category": problem.category,
            "answer": problem.answer,
            **provenance,
        },
    )


def select(
    source: ProfileSource,
    rule: WeightRule,
    *,
    resample_size: int | None = None,
    seed: int = 0,
) -> StatData:
    """STAT-Sel: the pool weighted (or resampled) by the profile (module docstring)."""
    leaks = leaked_pool(source)
    candidates: list[MathProblem] = []
    rejected: list[Rejection] = []
    for problem in source.pool:
        if problem.id in leaks:
            rejected.append(
                Rejection(
                    pool_record(source, problem, {}),
                    "leak",
                    f"repeats held-out question {leaks[problem.id]}",
                )
            )
        elif not (problem.solution and problem.solution.strip()):
            rejected.append(
                Rejection(pool_record(source, problem, {}), "no-solution", "no worked solution")
            )
        else:
            candidates.append(problem)
    rates = source.rates()
    weights = skill_weights(rates, rule.temperature)
    by_id = {p.id: source.labels.by_question.get(p.id, ()) for p in candidates}
    chosen = selection_weights(by_id, rates, rule)
    records = []
    for problem in candidates:
        raw, weight = chosen[problem.id]
        record = pool_record(
            source,
            problem,
            {"skill_weights": {s: weights[s] for s in by_id[problem.id] if s in weights}},
        )
        record.scores = {"weight": weight, "raw_weight": raw}
        records.append(record)
    if resample_size is not None:
        draws = resample(
            [r.scores["weight"] for r in records],
            resample_size,
            derive_seed(seed, SEL, source.run_id),
        )
        records = [_draw(records[i], k) for k, i in enumerate(draws)]
    return StatData(records, rejected, _sel_meta(source, rule, resample_size, seed))


def _draw(record: DataRecord, k: int) -> DataRecord:
    return DataRecord(
        **{
            **record.to_dict(),
            "id": f"{record.id}-d{k}",
            "provenance": {**record.provenance, "draw": k},
        }
    )


def _sel_meta(
    source: ProfileSource, rule: WeightRule, resample_size: int | None, seed: int
) -> CardMeta:
    mode = (
        f"resampled: {resample_size} draws with replacement, probability proportional to "
        "the weight (train without weights)"
        if resample_size
        else "weighted: every pool question once, with scores.weight (train with a weighted loss)"
    )
    warnings = embedded_warnings("Profiled student", [str(source.profile.config.get("student"))])
    warnings += embedded_warnings("Profile teacher", [str(source.profile.config.get("teacher"))])
    warnings += source_warnings(source)
    if not source.rates():
        warnings.append("The profile has no assessed skill: every question gets the same weight.")
    meta: CardMeta = {
        "pipeline": SEL,
        "method": SEL,
        "run_id": source.run_id,
        "profile_run": source.run_id,
        "keep_rule": f"{mode}; {rule.describe()}",
        "weight_rule": rule.describe(),
        "missing_rates": {s: r for s, r in sorted(source.rates().items())},
        "catalog": catalog_facts(source),
        "warnings": warnings,
        "seed": seed,
        "rejection_reasons": rejection_reasons(["leak", "no-solution"]),
    }
    if resample_size:
        meta["resample"] = resample_size
    return meta


def catalog_facts(source: ProfileSource) -> CatalogFacts:
    """The skill list the data's labels come from, as the card names it."""
    catalog = source.labels.catalog(source.dataset.name)
    return {"name": catalog.name, "hash": catalog.content_hash, "skills": len(catalog.skills)}


def rejection_reasons(reasons: Sequence[str]) -> dict[str, str]:
    """Reason code -> what it means, for the card."""
    return {r: REJECTION_REASONS[r] for r in reasons}


# --- files ----------------------------------------------------------------------------------


def write_stat_data(data: StatData, out_dir: str | Path, formats: Sequence[str]) -> dict[str, Path]:
    """The records in each format, rejected.jsonl and the data card, into `out_dir`."""
    out = Path(out_dir)
    md, js = write_card(data.records, data.rejected, data.meta, out)
    paths = dict(
        export_records(data.records, out, formats, description=md.read_text(encoding="utf-8"))
    )
    rejected = out / "rejected.jsonl"
    write_rejections(data.rejected, rejected)
    return {**paths, "rejected": rejected, "card": md, "card_json": js}
