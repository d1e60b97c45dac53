"""Several runs side by side: a leaderboard that flags incomparable runs, and a paired
comparison of two runs on the items both scored (SPEC section 5).

Runs are only comparable when they were measured the same way: same catalog content,
templates, protocol (`skillmix` or `paper`), judges, k values, items per k, seed, rounds
and naming penalty. A difference is never mixed in silently: the leaderboard still lists
such runs, marked with what differs, and `comparability_problems` names the runs and the
setting.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from skillmix.config import stored_protocol
from skillmix.errors import InputError
from skillmix.report.build import Report, build_report
from skillmix.report.names import display_model, short_model
from skillmix.scoring.judges import COMBINED_JUDGE, combined_scores
from skillmix.scoring.metrics import METRICS, Aggregation, Interval, paired_difference
from skillmix.scoring.results import ItemResult, RunScores, score_run
from skillmix.store import RunRow, Store


class CompareError(InputError):
    """Two runs cannot be compared as asked (no shared items, no such judge, ...)."""


# --- comparability -------------------------------------------------------------------------

# (label, how to read the setting from a stored run, how to show it)
_SETTINGS: tuple[tuple[str, Callable[[RunRow], Any], Callable[[Any], str]], ...] = (
    ("catalog hash", lambda r: r["catalog_hash"], lambda v: str(v)[:12]),
    ("template version", lambda r: r["template_version"], str),
    ("protocol", lambda r: stored_protocol(r["config"]), str),
    (
        "judges",
        lambda r: tuple(sorted(r["config"]["judges"])),
        lambda v: ", ".join(display_model(j) for j in v),
    ),
    ("k values", lambda r: tuple(r["config"]["k"]), lambda v: ",".join(map(str, v))),
    ("items per k", lambda r: r["config"]["items"], str),
    ("seed", lambda r: r["config"]["seed"], str),
    ("generation rounds", lambda r: r["config"]["generation_rounds"], str),
    ("grading rounds", lambda r: r["config"]["grading_rounds"], str),
    (
        "naming penalty",
        lambda r: bool(r["config"].get("naming_penalty", True)),
        lambda v: "on" if v else "off",
    ),
)


def _differences(runs: Sequence[RunRow]) -> list[tuple[str, dict[str, str], set[str]]]:
    """Per setting that differs: (label, run id -> shown value, ids of runs that deviate
    from the reference value, the most common one; ties go to the earliest run)."""
    found = []
    for label, read, show in _SETTINGS:
        values = {run["id"]: read(run) for run in runs}
        if len(set(values.values())) <= 1:
            continue
        counts = Counter(values.values())
        best = max(counts.values())
        reference = next(v for v in values.values() if counts[v] == best)
        deviating = {rid for rid, v in values.items() if v != reference}
        found.append((label, {rid: show(v) for rid, v in values.items()}, deviating))
    return found


def comparability_problems(runs: Sequence[RunRow]) -> list[str]:
    """One message per setting in which the given stored runs differ, naming which run
    uses which value (empty when all are comparable). `runs` are `Store.get_run` dicts."""
    problems = []
    for label, shown, _ in _differences(runs):
        groups: dict[str, list[str]] = {}
        for rid, value in shown.items():
            groups.setdefault(value, []).append(rid)
        parts = "; ".join(f"{', '.join(rids)}: {value}" for value, rids in groups.items())
        problems.append(f"{label} differs, so these numbers are not comparable ({parts})")
    return problems


def incomparable_settings(runs: Sequence[RunRow]) -> dict[str, list[str]]:
    """For each run id, the settings in which it differs from the most common value."""
    marks: dict[str, list[str]] = {run["id"]: [] for run in runs}
    for label, _, deviating in _differences(runs):
        for rid in deviating:
            marks[rid].append(label)
    return marks


# --- leaderboard ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LeaderboardRow:
    """One run x judge x k: the three metrics with their intervals and what produced them."""

    run_id: str
    student: str
    judge: str
    k: int
    items: int
    scored: int
    metrics: dict[str, Interval]
    catalog_hash: str
    template_version: str
    differs_in: tuple[str, ...] = ()  # settings that make this run incomparable
    protocol: str = "skillmix"
    status: str = "done"  # of the run: done, running, paused, stopped or interrupted

    @property
    def comparable(self) -> bool:
        return not self.differs_in

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "student": self.student,
            "judge": self.judge,
            "k": self.k,
            "items": self.items,
            "scored": self.scored,
            **{m: self.metrics[m].to_dict() for m in METRICS},
            "catalog_hash": self.catalog_hash,
            "template_version": self.template_version,
            "protocol": self.protocol,
            "status": self.status,
            "comparable": self.comparable,
            "differs_in": list(self.differs_in),
        }


@dataclass(frozen=True)
class Leaderboard:
    aggregation: str
    rows: list[LeaderboardRow]
    problems: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "aggregation": self.aggregation,
            "problems": self.problems,
            "rows": [r.to_dict() for r in self.rows],
        }


def _rank_key(row: LeaderboardRow) -> tuple[Any, ...]:
    means = [row.metrics[m].mean for m in METRICS]
    # unscored (NaN) rows sort last
    return (row.k, row.judge, *(-(m if m == m else -1.0) for m in means), row.run_id)


def leaderboard_from_reports(reports: Sequence[Report]) -> Leaderboard:
    """The leaderboard of already built reports (see `leaderboard`)."""
    runs = [r.scores.run for r in reports]
    marks = incomparable_settings(runs)
    rows = [
        LeaderboardRow(
            run_id=rep.run_id,
            student=rep.config["student"],
            judge=row.judge,
            k=row.k,
            items=row.items,
            scored=row.scored,
            metrics=row.metrics,
            catalog_hash=rep.catalog_hash,
            template_version=rep.template_version,
            differs_in=tuple(marks[rep.run_id]),
            protocol=rep.protocol,
            status=rep.status,
        )
        for rep in reports
        for row in rep.rows
    ]
    aggregations = {rep.aggregation for rep in reports}
    return Leaderboard(
        aggregation=", ".join(sorted(aggregations)),
        rows=sorted(rows, key=_rank_key),
        problems=comparability_problems(runs),
    )


def leaderboard(
    store: Store, run_ids: Sequence[str], aggregation: Aggregation = "max"
) -> Leaderboard:
    """One row per run x judge x k (a "combined" judge for runs with several), ranked
    within each k and judge by full marks, then all skills, then skill fraction.

    Runs that differ in how they were measured stay on the board, marked with what
    differs; `Leaderboard.problems` says which runs differ in what.
    """
    return leaderboard_from_reports([build_report(store, rid, aggregation) for rid in run_ids])


# --- paired comparison ---------------------------------------------------------------------


@dataclass(frozen=True)
class PairedRow:
    """Run a minus run b on one k and metric, over the items both runs scored."""

    judge: str
    k: int
    metric: str
    shared: int  # items both runs scored
    mean_a: float
    mean_b: float
    difference: Interval  # mean of a - b with a paired bootstrap interval

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "k": self.k,
            "metric": self.metric,
            "shared_items": self.shared,
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "difference": self.difference.mean,
            "low": self.difference.low,
            "high": self.difference.high,
        }


def _by_judge(scores: RunScores) -> dict[str, list[ItemResult]]:
    out: dict[str, list[ItemResult]] = {}
    for r in scores.items:
        out.setdefault(r.judge, []).append(r)
    combined = combined_scores(scores)
    if combined:
        out[COMBINED_JUDGE] = combined
    return out


def paired_comparison(
    store: Store,
    run_a: str,
    run_b: str,
    judge: str | None = None,
    aggregation: Aggregation = "max",
    *,
    resamples: int = 2000,
) -> list[PairedRow]:
    """Per judge, k and metric: the mean difference a - b over the items both runs scored
    (matched by item id), with a paired bootstrap 95% interval.

    `judge` picks one judge both runs have (or "combined"); by default every judge they
    share. Raises CompareError when they share no judge or no scored item.
    """
    a, b = score_run(store, run_a, aggregation), score_run(store, run_b, aggregation)
    ida, idb = a.run["id"], b.run["id"]
    results_a, results_b = _by_judge(a), _by_judge(b)
    shared_judges = [j for j in results_a if j in results_b]
    if judge is not None:
        if judge not in shared_judges:
            raise CompareError(
                f"judge '{judge}' did not grade both runs; judges of {ida}: "
                f"{', '.join(results_a)}; of {idb}: {', '.join(results_b)}"
            )
        shared_judges = [judge]
    if not shared_judges:
        raise CompareError(
            f"{ida} and {idb} share no judge ({ida}: {', '.join(results_a)}; "
            f"{idb}: {', '.join(results_b)}), so their verdicts cannot be paired"
        )
    rows: list[PairedRow] = []
    for j in shared_judges:
        scored_a = {(r.item_id, r.k): r.scores for r in results_a[j] if r.scores is not None}
        scored_b = {(r.item_id, r.k): r.scores for r in results_b[j] if r.scores is not None}
        for k in sorted({key[1] for key in scored_a} | {key[1] for key in scored_b}):
            values_a = {i: s for (i, kk), s in scored_a.items() if kk == k}
            values_b = {i: s for (i, kk), s in scored_b.items() if kk == k}
            shared = sorted(set(values_a) & set(values_b))
            if not shared:
                continue
            for metric in METRICS:
                ma = {i: float(getattr(values_a[i], metric)) for i in shared}
                mb = {i: float(getattr(values_b[i], metric)) for i in shared}
                rows.append(
                    PairedRow(
                        judge=j,
                        k=k,
                        metric=metric,
                        shared=len(shared),
                        mean_a=sum(ma.values()) / len(shared),
                        mean_b=sum(mb.values()) / len(shared),
                        difference=paired_difference(ma, mb, resamples=resamples),
                    )
                )
    if not rows:
        raise CompareError(
            f"{ida} and {idb} share no scored item: items are matched by id, which only "
            "agree for the same catalog, seed and k; run both models with the same "
            "--catalog, --seed, --k and --items"
        )
    return rows


__all__ = [
    "CompareError",
    "Leaderboard",
    "LeaderboardRow",
    "PairedRow",
    "comparability_problems",
    "display_model",
    "incomparable_settings",
    "leaderboard",
    "leaderboard_from_reports",
    "paired_comparison",
    "short_model",
]
