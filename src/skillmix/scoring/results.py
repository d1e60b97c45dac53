"""From stored grades to scores: vote, add the code-computed criteria, apply the naming penalty.

This is where SPEC section 5's aggregation happens, reading only the store, so any stored
run can be re-scored with another rule without a model call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from skillmix.catalog.model import Catalog
from skillmix.errors import InputError
from skillmix.prompts.rubric import max_sentences
from skillmix.scoring.metrics import (
    METRICS,
    Aggregation,
    Interval,
    Scores,
    aggregate_generations,
    bootstrap_interval,
    majority_vote,
    score,
)
from skillmix.store import (
    EVALUATION,
    GenerationRow,
    GradeRow,
    ItemRow,
    RunRow,
    Store,
    run_kind,
)


@dataclass
class GenerationScore:
    gen_round: int
    decided: dict[str, int] | None  # None: no parsed grading round (unscored)
    scores: Scores | None
    penalized: list[str]  # skill ids whose point the naming penalty removed
    voted: dict[str, int] | None = None  # the judge's own majority, before code criteria


@dataclass
class ItemResult:
    item_id: str
    k: int
    skill_ids: list[str]
    topic_id: str
    judge: str
    generations: list[GenerationScore]
    scores: Scores | None  # aggregated over generations; None = unscored


@dataclass(frozen=True)
class RunRows:
    """The stored rows a run was scored from, read once: the report's item details use
    the same rows instead of reading the run again."""

    items: list[ItemRow]
    generations: list[GenerationRow]
    grades: list[GradeRow]


@dataclass
class RunScores:
    run: RunRow
    catalog: Catalog
    aggregation: Aggregation
    items: list[ItemResult]
    grade_rounds: int
    unparsed_rounds: int
    methods: dict[str, int] = field(default_factory=dict)
    missing_generations: int = 0
    rows: RunRows | None = field(default=None, repr=False, compare=False)

    @property
    def judges(self) -> list[str]:
        return list(dict.fromkeys(r.judge for r in self.items))


def score_run(
    store: Store, run_id: str, aggregation: Aggregation = "max", rows: RunRows | None = None
) -> RunScores:
    """Score a stored run (`run_id` or a unique start of one) under `aggregation`.

    `rows`: the run's rows when the caller has read them (a reader that followed the run:
    `store.follow.RunFollower`), else they are read here.
    """
    run = store.get_run(run_id)
    kind = run_kind(run)
    if kind != EVALUATION:
        raise InputError(
            f"{run['id']} is a {kind} run, not a Skill-Mix evaluation: it has no scores to report",
            hint=f"see it with `skillmix {' '.join(kind.split('-'))} --help`, "
            "or list the runs with `skillmix runs`",
        )
    config = run["config"]
    catalog = store.get_catalog(run["catalog_hash"])
    penalty = bool(config.get("naming_penalty", True))
    rows = rows or RunRows(*store.run_tables(run["id"]))
    generations = {(g["item_id"], g["round"]): g for g in rows.generations}
    votes: dict[tuple[str, int, str], list[dict[str, float] | None]] = defaultdict(list)
    methods: dict[str, int] = defaultdict(int)
    unparsed = 0
    grade_rounds = 0
    for g in rows.grades:
        votes[(g["item_id"], g["gen_round"], g["judge"])].append(g["verdicts"])
        methods[g["method"]] += 1
        grade_rounds += 1
        unparsed += g["status"] == "unparsed"

    results: list[ItemResult] = []
    missing = 0
    for judge in config["judges"]:
        for item in rows.items:
            skill_criteria = [f"skill:{s}" for s in item["skill_ids"]]
            limit = max_sentences(item["k"])
            gen_scores: list[GenerationScore] = []
            for gen_round in range(config["generation_rounds"]):
                gen = generations.get((item["item_id"], gen_round))
                rounds = votes.get((item["item_id"], gen_round, judge))
                if gen is None or not rounds:
                    missing += 1
                    continue
                voted = majority_vote(rounds)
                decided = None if voted is None else dict(voted)
                penalized: list[str] = []
                scores = None
                if decided is not None:
                    decided["length"] = int(gen["sentences"] <= limit)
                    if penalty:
                        for skill_id in gen["named"]:
                            criterion = f"skill:{skill_id}"
                            if decided.get(criterion) == 1:
                                penalized.append(skill_id)
                            decided[criterion] = 0
                    scores = score(decided, skill_criteria)
                gen_scores.append(GenerationScore(gen_round, decided, scores, penalized, voted))
            results.append(
                ItemResult(
                    item_id=item["item_id"],
                    k=item["k"],
                    skill_ids=item["skill_ids"],
                    topic_id=item["topic_id"],
                    judge=judge,
                    generations=gen_scores,
                    scores=aggregate_generations([g.scores for g in gen_scores], aggregation),
                )
            )
    return RunScores(
        run=run,
        catalog=catalog,
        aggregation=aggregation,
        items=results,
        grade_rounds=grade_rounds,
        unparsed_rounds=unparsed,
        methods=dict(methods),
        missing_generations=missing // max(1, len(config["judges"])),
        rows=rows,
    )


@dataclass
class SummaryRow:
    judge: str
    k: int
    items: int
    scored: int
    metrics: dict[str, Interval]
    penalized: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "k": self.k,
            "items": self.items,
            "scored": self.scored,
            "unscored": self.items - self.scored,
            "naming_penalty_points_removed": self.penalized,
            **{m: iv.to_dict() for m, iv in self.metrics.items()},
        }


def summarize(
    scores: RunScores, *, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> list[SummaryRow]:
    """One row per judge and k: each metric's mean over scored items, with a bootstrap CI."""
    groups: dict[tuple[str, int], list[ItemResult]] = defaultdict(list)
    for r in scores.items:
        groups[(r.judge, r.k)].append(r)
    rows = []
    for (judge, k), results in sorted(groups.items()):
        scored = [r.scores for r in results if r.scores is not None]
        metrics = {
            m: bootstrap_interval(
                [getattr(s, m) for s in scored], level=level, resamples=resamples, seed=seed
            )
            for m in METRICS
        }
        penalized = sum(len(g.penalized) for r in results for g in r.generations)
        rows.append(SummaryRow(judge, k, len(results), len(scored), metrics, penalized))
    return rows


BREAKDOWNS = ("skill", "category", "topic")
# Per group of a breakdown (judge, key): items, then the sums of the three metrics and of
# skill successes.
_Sums = dict[tuple[str, str], list[float]]


def breakdown(scores: RunScores, by: str) -> list[dict[str, Any]]:
    """Per skill, category or topic: items, full-marks rate and (for skills) success rate.

    A skill "succeeds" on an item when its criterion is met (after voting and the naming
    penalty) in at least one generation round.
    """
    return breakdowns(scores, (by,))[by]


def breakdowns(
    scores: RunScores, by: Sequence[str] = BREAKDOWNS
) -> dict[str, list[dict[str, Any]]]:
    """`breakdown` by each of `by`, in one pass over the items."""
    if not set(by) <= set(BREAKDOWNS):
        raise ValueError("breakdown is by skill, category or topic")
    groups: dict[str, _Sums] = {b: {} for b in by}
    skills, categories, topics = (groups.get(b) for b in BREAKDOWNS)
    category = {s.id: s.category for s in scores.catalog.skills} if categories is not None else {}

    def add(group: _Sums, key: tuple[str, str], values: Scores, success: float) -> None:
        sums = group.setdefault(key, [0, 0.0, 0.0, 0.0, 0.0])
        sums[0] += 1
        sums[1] += values.full_marks
        sums[2] += values.all_skills
        sums[3] += values.skill_fraction
        sums[4] += success

    for r in scores.items:
        if r.scores is None:
            continue
        if topics is not None:
            add(topics, (r.judge, r.topic_id), r.scores, 0.0)
        if skills is None and categories is None:
            continue
        decided = [g.decided for g in r.generations if g.decided]
        for skill_id in r.skill_ids:
            criterion = f"skill:{skill_id}"
            success = float(max((d.get(criterion, 0) for d in decided), default=0))
            if skills is not None:
                add(skills, (r.judge, skill_id), r.scores, success)
            if categories is not None:
                add(categories, (r.judge, category[skill_id]), r.scores, success)
    out = {}
    for b, grouped in groups.items():
        rows = []
        for (judge, key), (n, *metrics, successes) in sorted(grouped.items()):
            row: dict[str, Any] = {"judge": judge, b: key, "items": n}
            row.update({m: total / n for m, total in zip(METRICS, metrics, strict=True)})
            if b != "topic":
                row["skill_success"] = successes / n
            rows.append(row)
        out[b] = rows
    return out
