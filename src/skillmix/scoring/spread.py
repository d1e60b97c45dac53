"""How far a run's scores move across format variants of its templates (`skillmix spread`).

A spread's runs (`protocol.spread`) graded the same items under different formats. Per
judge, k and metric this reports:

- the metric under each variant (mean over the items every variant scored);
- the spread, max - min over the variants, with a bootstrap interval that resamples
  items jointly across the variants (an item keeps its score under every variant, so
  the interval reflects which items were drawn), a permutation test of "the format does
  not matter", and the spread that grading noise alone gives (`noise`);
- per formatting choice (dimension), the mean of the metric over the variants that took
  each option, and the difference between its highest and lowest option with an
  interval from the same resamples; one test per dimension (do its options differ at
  all?) whose p-values are Holm-adjusted over the dimensions of the row. Dimensions are
  ranked by forward selection (`choice_effects`): the first is the choice that "moves
  scores most", and each later one is measured after the effects of those before it are
  removed. Contrasts of each option with the base set's option carry the sign
  ("paragraph - numbered = -0.62").

With few variants, choices share variants and their effects are hard to tell apart
(`overlaps_with` names the choices that share most of a choice's variants); when two
split the variants identically they cannot be told apart at all (`aliased_with`). Run
more variants to separate them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from skillmix.prompts.variants import (
    BASE_ID,
    DIMENSIONS,
    DIMENSIONS_BY_NAME,
    association,
    same_partition,
)
from skillmix.scoring.metrics import METRICS, Aggregation
from skillmix.scoring.results import RunScores, score_run
from skillmix.scoring.stats import (
    Estimate,
    bootstrap_estimate,
    cluster_bootstrap_totals,
    f_sf,
    holm,
)
from skillmix.store import EVALUATION, RunRow, Store

MOVES_ALPHA = 0.05  # a choice "moves" a metric when its Holm-adjusted p is below this
# Two choices whose options share the variants at least this much (Cramér's V²) are hard
# to tell apart: a report names them next to each other.
OVERLAP = 0.5


@dataclass(frozen=True)
class SpreadVariant:
    """One variant's run in a spread."""

    index: int
    variant: str  # its id: the non-base choices, or "base"
    choices: dict[str, str]
    run_id: str
    status: str
    template_version: str
    student_sent: int  # student calls this run sent
    student_reused: int  # student calls it answered from the store (shared)
    grade_rounds: int  # grading rounds stored
    unparsed_rounds: int  # of which no verdict could be read (a format the judge failed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "variant": self.variant,
            "choices": self.choices,
            "run_id": self.run_id,
            "status": self.status,
            "template_version": self.template_version,
            "student_calls": {"sent": self.student_sent, "reused": self.student_reused},
            "grade_rounds": self.grade_rounds,
            "unparsed_rounds": self.unparsed_rounds,
        }


@dataclass(frozen=True)
class ChoiceEffect:
    """How much one formatting dimension moved one metric.

    `effect` is mean(high option) - mean(low option) over the variants (never negative),
    with its interval; its p tests whether the dimension's options differ at all
    (`options_differ_p`). `contrasts` give each other option minus the base option, with
    their signs.
    """

    dimension: str
    affects: str  # "judge" or "student"
    option_means: dict[str, float]  # option -> mean metric over the variants with it
    option_variants: dict[str, int]  # option -> how many variants took it
    high: str
    low: str
    effect: Estimate
    p_adjusted: float  # Holm over the dimensions of the row
    contrasts: dict[str, Estimate]  # option -> option minus the base option
    aliased_with: tuple[str, ...]  # dimensions that split the variants identically
    adjusted_for: tuple[str, ...] = ()  # dimensions whose effects were removed first
    overlaps_with: tuple[str, ...] = ()  # dimensions sharing most variants (V² >= OVERLAP)

    @property
    def moves(self) -> bool:
        """Whether the choice moves the metric beyond chance (Holm-adjusted)."""
        return self.p_adjusted < MOVES_ALPHA

    def describe(self) -> str:
        """In words: `rubric: paragraph scores 0.62 [0.51, 0.73] below numbered`."""
        e = self.effect
        text = (
            f"{self.dimension}: {self.low} scores {e.value:.2f} [{e.low:.2f}, {e.high:.2f}] "
            f"below {self.high}"
        )
        if self.adjusted_for:
            text += f" after {', '.join(self.adjusted_for)}"
        if self.aliased_with:
            text += f" (not separable from {', '.join(self.aliased_with)})"
        elif self.overlaps_with:
            text += f" (hard to separate from {', '.join(self.overlaps_with)})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "affects": self.affects,
            "option_means": self.option_means,
            "option_variants": self.option_variants,
            "high": self.high,
            "low": self.low,
            "effect": self.effect.to_dict(),
            "p_adjusted": self.p_adjusted,
            "moves": self.moves,
            "contrasts_with_base": {o: e.to_dict() for o, e in self.contrasts.items()},
            "aliased_with": list(self.aliased_with),
            "adjusted_for": list(self.adjusted_for),
            "overlaps_with": list(self.overlaps_with),
        }


@dataclass(frozen=True)
class SpreadRow:
    """One judge, k and metric across the variants."""

    judge: str
    k: int
    metric: str
    items: int  # items scored under every variant in `indices`
    indices: list[int]  # the variants with scores, in order
    values: list[float]  # the metric under each of them
    spread: Estimate  # max - min, interval over items; p: permutation test of no effect
    noise: float  # the spread grading noise alone gives (shuffled across variants)
    effects: list[ChoiceEffect]  # largest effect first

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def top(self) -> ChoiceEffect | None:
        """The choice that moves this metric most."""
        return self.effects[0] if self.effects else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "k": self.k,
            "metric": self.metric,
            "items": self.items,
            "values": {str(i): v for i, v in zip(self.indices, self.values, strict=True)},
            "min": self.low,
            "max": self.high,
            "spread": self.spread.to_dict(),
            "noise_spread": self.noise,
            "moves_most": self.top.dimension if self.top else None,
            "effects": [e.to_dict() for e in self.effects],
        }


@dataclass(frozen=True)
class SpreadReport:
    """A spread's runs and how far each metric moved across them."""

    group: str
    variants: list[SpreadVariant]
    rows: list[SpreadRow]
    aggregation: str
    level: float
    notes: list[str]

    @property
    def student_reused(self) -> int:
        return sum(v.student_reused for v in self.variants)

    @property
    def student_sent(self) -> int:
        return sum(v.student_sent for v in self.variants)

    def row(self, metric: str, k: int, judge: str | None = None) -> SpreadRow:
        """The row of `metric` at `k` (for the first judge unless `judge` is given)."""
        for r in self.rows:
            if r.metric == metric and r.k == k and (judge is None or r.judge == judge):
                return r
        raise KeyError(f"no spread row for {metric} at k={k}" + (f", {judge}" if judge else ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "aggregation": self.aggregation,
            "level": self.level,
            "variants": [v.to_dict() for v in self.variants],
            "student_calls": {"sent": self.student_sent, "reused": self.student_reused},
            "rows": [r.to_dict() for r in self.rows],
            "notes": self.notes,
        }


# --- finding a spread's runs --------------------------------------------------------------------


def spread_group_of(run: RunRow) -> str | None:
    """The spread a run belongs to (None for an ordinary run)."""
    tag = run["config"].get("spread")
    return str(tag["group"]) if isinstance(tag, dict) and tag.get("group") else None


def group_runs(store: Store, group: str) -> list[RunRow]:
    """The runs of a spread, one per variant (the latest where a variant has several),
    in variant order."""
    latest: dict[int, RunRow] = {}
    for run in store.list_runs(EVALUATION):  # oldest first
        if spread_group_of(run) == group:
            latest[int(run["config"]["spread"]["index"])] = run
    return [latest[i] for i in sorted(latest)]


def spread_report_for_run(
    store: Store,
    run_id: str,
    aggregation: Aggregation = "max",
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> SpreadReport | None:
    """The spread that the run `run_id` belongs to, or None for an ordinary run."""
    group = spread_group_of(store.get_run(run_id))
    if group is None:
        return None
    return spread_report(store, group, aggregation, level=level, resamples=resamples, seed=seed)


def spread_report(
    store: Store,
    group: str,
    aggregation: Aggregation = "max",
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> SpreadReport:
    """Score every run of the spread `group` and compare them (reads only the store)."""
    runs = group_runs(store, group)
    if not runs:
        raise KeyError(f"no runs of spread {group} in {store.location}")
    scored = [score_run(store, run["id"], aggregation) for run in runs]
    variants = [_variant(store, run, s) for run, s in zip(runs, scored, strict=True)]
    choices = {v.index: v.choices for v in variants}
    notes = []
    statuses = [v for v in variants if v.status != "done"]
    if statuses:
        notes.append(
            "not finished: "
            + ", ".join(f"variant {v.index} ({v.status})" for v in statuses)
            + "; their figures cover what was graded so far"
        )
    rows = []
    for judge in runs[0]["config"]["judges"]:
        for k in runs[0]["config"]["k"]:
            per_item = [_item_scores(s, judge, k) for s in scored]
            present = [i for i, items in enumerate(per_item) if items]
            missing = [variants[i].index for i, items in enumerate(per_item) if not items]
            if missing:
                notes.append(
                    f"judge {judge}, k={k}: variant(s) {', '.join(map(str, missing))} scored "
                    "no item (not graded yet, or no verdict could be parsed) and are left out"
                )
            if not present:
                continue
            shared = sorted(set.intersection(*(set(per_item[i]) for i in present)))
            if not shared:
                notes.append(f"judge {judge}, k={k}: no item is scored under every variant")
                continue
            indices = [variants[i].index for i in present]
            for metric in METRICS:
                matrix = np.array(
                    [[getattr(per_item[i][item], metric) for i in present] for item in shared]
                )
                rows.append(
                    spread_row(
                        judge,
                        k,
                        metric,
                        matrix,
                        indices,
                        [choices[i] for i in indices],
                        level=level,
                        resamples=resamples,
                        seed=seed,
                    )
                )
    return SpreadReport(group, variants, rows, aggregation, level, notes)


def _variant(store: Store, run: RunRow, scores: RunScores) -> SpreadVariant:
    tag = run["config"]["spread"]
    sent = reused = 0
    for row in store.usage(run["id"]):
        if row["role"] == "student":
            if row["sent"]:
                sent += row["calls"]
            else:
                reused += row["calls"]
    return SpreadVariant(
        index=int(tag["index"]),
        variant=str(tag.get("variant", BASE_ID)),
        choices=dict(tag.get("choices", {})),
        run_id=run["id"],
        status=run["status"],
        template_version=run["template_version"],
        student_sent=sent,
        student_reused=reused,
        grade_rounds=scores.grade_rounds,
        unparsed_rounds=scores.unparsed_rounds,
    )


def _item_scores(scores: RunScores, judge: str, k: int) -> dict[str, Any]:
    """item id -> Scores, for the items of `k` that `judge` scored."""
    return {
        r.item_id: r.scores
        for r in scores.items
        if r.judge == judge and r.k == k and r.scores is not None
    }


# --- the statistics, on a matrix of items x variants ---------------------------------------------


def spread_row(
    judge: str,
    k: int,
    metric: str,
    matrix: np.ndarray,
    indices: Sequence[int],
    choices: Sequence[dict[str, str]],
    *,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> SpreadRow:
    """The spread and choice effects of one metric, from its scores (items x variants).

    `choices[j]` are the format choices of column j. Items are resampled jointly across
    the variants (`cluster_bootstrap_totals`), so every statistic comes from the same
    resamples. The spread's interval is the basic bootstrap interval, which corrects for
    the upward bias of a max - min over noisy means (a percentile interval would sit
    above it); so where the variants differ by little more than noise, the interval can
    lie below the observed spread. Its p is a permutation test of "the format does not
    matter" (each item's scores shuffled across the variants), and `noise` the spread
    that such shuffles give on average: what grading noise alone would show.
    """
    n = matrix.shape[0]
    values = matrix.mean(axis=0)
    replicates = cluster_bootstrap_totals(matrix, resamples=resamples, seed=seed) / n
    spread = float(values.max() - values.min())
    spread_reps = replicates.max(axis=1) - replicates.min(axis=1)
    tail = (1 - level) / 2
    q_low, q_high = (float(q) for q in np.quantile(spread_reps, [tail, 1 - tail]))
    null = permuted_spreads(matrix, resamples=resamples, seed=seed)
    p = float((1 + np.sum(null >= spread - 1e-12)) / (1 + len(null)))
    return SpreadRow(
        judge=judge,
        k=k,
        metric=metric,
        items=n,
        indices=list(indices),
        values=[float(v) for v in values],
        spread=Estimate(spread, max(0.0, 2 * spread - q_high), min(1.0, 2 * spread - q_low), p, n),
        noise=float(null.mean()),
        effects=choice_effects(values, replicates, choices, n, level=level),
    )


def permuted_spreads(
    matrix: np.ndarray, *, resamples: int = 2000, seed: int = 0, chunk: int = 128
) -> np.ndarray:
    """The spread (max - min of the column means) after shuffling each item's scores
    across the variants, `resamples` times: its distribution if the format did not matter."""
    rng = np.random.default_rng([seed, 1])
    n, columns = matrix.shape
    out = np.empty(resamples)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        order = np.argsort(rng.random((size, n, columns)), axis=2)
        means = np.take_along_axis(matrix[None, :, :], order, axis=2).mean(axis=1)
        out[start : start + size] = means.max(axis=1) - means.min(axis=1)
    return out


def choice_effects(
    values: np.ndarray,
    replicates: np.ndarray,
    choices: Sequence[dict[str, str]],
    n: int,
    *,
    level: float = 0.95,
) -> list[ChoiceEffect]:
    """Per dimension the variants varied, the choice that moves the metric most first.

    Dimensions are ranked one at a time, as in forward selection: the one whose options
    best explain the differences between variants (`_explains`: an ANOVA F) is taken, its
    options' means are removed from every variant's value (and from every replicate),
    and the rest are compared again on what is left. So a dimension that merely shares
    variants with a stronger one is not credited with its effect (`adjusted_for` names
    the dimensions removed before it); `option_means` stay the plain means over the
    variants that took each option. A dimension's `effect` is the difference between its
    highest and lowest option at the time it was taken.

    `values[j]` is the metric under variant j and `replicates[r, j]` its bootstrap
    replicate r (the same resampled items for every j); `n` counts the items.
    """
    labels = {
        d.name: [c.get(d.name, d.base) for c in choices]
        for d in DIMENSIONS
        if len({c.get(d.name, d.base) for c in choices}) > 1
    }
    residual = np.asarray(values, dtype=float).copy()
    residual_reps = np.asarray(replicates, dtype=float).copy()
    ranked: list[ChoiceEffect] = []
    remaining = list(labels)
    while remaining:
        candidates = [
            _dimension_effect(name, labels, residual, residual_reps, n, level=level)
            for name in remaining
        ]
        best = max(candidates, key=lambda e: _explains(labels[e.dimension], residual))
        column = labels[best.dimension]
        ranked.append(
            replace(
                best,
                option_means={o: float(values[m].mean()) for o, m in _masks(column).items()},
                adjusted_for=tuple(e.dimension for e in ranked),
            )
        )
        for mask in _masks(column).values():
            residual[mask] -= residual[mask].mean()
            residual_reps[:, mask] -= residual_reps[:, mask].mean(axis=1, keepdims=True)
        remaining.remove(best.dimension)
    adjusted = holm([effect.effect.p for effect in ranked])
    return [replace(effect, p_adjusted=p) for effect, p in zip(ranked, adjusted, strict=True)]


def _explains(column: Sequence[str], values: np.ndarray) -> tuple[bool, float, float]:
    """How well a dimension's options explain the differences between variants, for
    ranking: its ANOVA F statistic (between-option over within-option mean square), then
    its between-option mean square. A dimension with an option per variant leaves no
    variation within its options to compare with, so it ranks after every other."""
    masks = _masks(column)
    grand = float(values.mean())
    between = sum(m.sum() * (float(values[m].mean()) - grand) ** 2 for m in masks.values())
    within = sum(float(((values[m] - values[m].mean()) ** 2).sum()) for m in masks.values())
    df_between, df_within = len(masks) - 1, len(values) - len(masks)
    mean_square = float(between) / df_between
    if df_within == 0:
        return (False, 0.0, mean_square)
    if within <= 1e-12:
        return (True, math.inf if mean_square > 1e-12 else 0.0, mean_square)
    return (True, mean_square / (within / df_within), mean_square)


def _masks(column: Sequence[str]) -> dict[str, np.ndarray]:
    """Option -> which variants took it, in the order options first appear."""
    return {o: np.array([label == o for label in column]) for o in dict.fromkeys(column)}


def _dimension_effect(
    name: str,
    labels: dict[str, list[str]],
    values: np.ndarray,
    replicates: np.ndarray,
    n: int,
    *,
    level: float,
) -> ChoiceEffect:
    """One dimension's effect on `values` (its ranking and adjusted p still to come)."""
    dimension = DIMENSIONS_BY_NAME[name]
    column = labels[name]
    options = [o for o in dimension.options if o in column]
    masks = _masks(column)
    means = {o: float(values[masks[o]].mean()) for o in options}
    high = max(options, key=lambda o: means[o])
    low = min(options, key=lambda o: means[o])
    if high == low:  # every option scores the same
        low = next(o for o in options if o != high)

    def contrast(a: str, b: str) -> Estimate:
        reps = replicates[:, masks[a]].mean(axis=1) - replicates[:, masks[b]].mean(axis=1)
        return bootstrap_estimate(means[a] - means[b], reps, n, level=level)

    contrasts = {}
    if dimension.base in options:
        contrasts = {o: contrast(o, dimension.base) for o in options if o != dimension.base}
    option_reps = np.stack([replicates[:, masks[o]].mean(axis=1) for o in options], axis=1)
    effect = contrast(high, low)
    p = options_differ_p(np.array([means[o] for o in options]), option_reps, n)
    return ChoiceEffect(
        dimension=name,
        affects=dimension.affects,
        option_means=means,
        option_variants={o: int(masks[o].sum()) for o in options},
        high=high,
        low=low,
        effect=replace(effect, p=p),
        p_adjusted=float("nan"),
        contrasts=contrasts,
        aliased_with=tuple(
            other
            for other, other_column in labels.items()
            if other != name and same_partition(column, other_column)
        ),
        overlaps_with=tuple(
            other
            for other, other_column in labels.items()
            if other != name
            and not same_partition(column, other_column)
            and association(column, other_column) >= OVERLAP
        ),
    )


def options_differ_p(means: np.ndarray, replicates: np.ndarray, n: int) -> float:
    """p of "every option has the same mean": Hotelling's T² on the options' differences
    from the first, with their covariance from the bootstrap replicates, as an F test.

    One test per dimension whatever its number of options, so picking its highest and
    lowest option after the fact does not make a difference look more certain than it is.
    """
    diffs = means[1:] - means[0]
    reps = replicates[:, 1:] - replicates[:, :1]
    cov = np.atleast_2d(np.cov(reps, rowvar=False))
    inverse = np.linalg.pinv(cov)
    outside = diffs - cov @ inverse @ diffs  # a difference the resamples never vary
    if np.any(np.abs(outside) > 1e-9):
        return 0.0
    rank = int(np.linalg.matrix_rank(cov)) if np.any(cov) else 0
    if rank == 0:
        return 1.0
    if n <= rank:
        return float("nan")
    t2 = float(diffs @ inverse @ diffs)
    return f_sf(t2 * (n - rank) / ((n - 1) * rank), rank, n - rank)


def _nan_last(p: float) -> float:
    return math.inf if math.isnan(p) else p
