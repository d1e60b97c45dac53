"""Full marks, all skills, skill fraction; majority vote; aggregation rules; bootstrap intervals.

Pure functions over plain values: no store, no models. SPEC section 5 defines every rule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from skillmix.config import AGGREGATIONS, Aggregation
from skillmix.errors import InputError

Verdicts = Mapping[str, float]  # one grading round: criterion -> share earned, in [0, 1]
Decided = Mapping[str, int]  # criterion -> 0/1 after the vote
NON_SKILL_CRITERIA = ("topic", "sense", "length")
METRICS = ("full_marks", "all_skills", "skill_fraction")
# Up to this many distinct values, `bootstrap_interval` resamples counts, not items.
FEW_DISTINCT = 64


@dataclass(frozen=True)
class Scores:
    full_marks: float
    all_skills: float
    skill_fraction: float

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.full_marks, self.all_skills, self.skill_fraction)


def majority_vote(rounds: Sequence[Verdicts | None]) -> dict[str, int] | None:
    """Per-criterion vote across grading rounds: 1 when the mean value exceeds 1/2.

    A round's value may be a fraction (a judge's 0.5); with 0/1 values this is the
    majority. Unparsed rounds (None) do not vote; a tie (mean exactly 1/2) counts as not
    met; with no parsed round the result is None (unscored, never 0).
    """
    parsed = [r for r in rounds if r is not None]
    if not parsed:
        return None
    if len(parsed) == 1:  # one grading round (the common case): its own values decide
        return {c: 1 if 2 * float(v) > 1 else 0 for c, v in sorted(parsed[0].items())}
    criteria = sorted({c for r in parsed for c in r})
    decided: dict[str, int] = {}
    for c in criteria:
        votes = [float(r[c]) for r in parsed if c in r]
        decided[c] = 1 if 2 * math.fsum(votes) > len(votes) else 0
    return decided


def score(decided: Decided, skill_criteria: Sequence[str]) -> Scores:
    """The three metrics of one graded generation.

    A = skill points (0..k), B = topic + sense + length points (0..3).
    """
    k = len(skill_criteria)
    a = sum(int(decided.get(c, 0)) for c in skill_criteria)
    b = sum(int(decided.get(c, 0)) for c in NON_SKILL_CRITERIA)
    return Scores(
        full_marks=float(a == k and b == 3),
        all_skills=float(a == k and b >= 2),
        skill_fraction=a / k if b == 3 else 0.0,
    )


def aggregate_generations(
    generations: Sequence[Scores | None], rule: Aggregation = "max"
) -> Scores | None:
    """One item's scores from its generation rounds (None = unscored generation).

    - max: each metric's maximum over generations (the published rule; the three metrics
      may come from different texts);
    - mean: each metric's mean over generations;
    - best: the single generation that ranks first by (full marks, all skills, skill
      fraction), so all three metrics describe the same text.
    """
    scored = [g for g in generations if g is not None]
    if not scored:
        return None
    if len(scored) == 1 and rule in AGGREGATIONS:  # every rule gives a lone text's scores
        return scored[0]
    if rule == "max":
        return Scores(*(max(v) for v in zip(*(g.as_tuple() for g in scored), strict=True)))
    if rule == "mean":
        n = len(scored)
        return Scores(*(sum(v) / n for v in zip(*(g.as_tuple() for g in scored), strict=True)))
    if rule == "best":
        return max(scored, key=lambda g: g.as_tuple())
    raise InputError(f"unknown aggregation rule '{rule}': use one of {', '.join(AGGREGATIONS)}")


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap confidence interval."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.mean, self.low, self.high)


def bootstrap_interval(
    values: Iterable[float], *, level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> Interval:
    """Percentile bootstrap over items, seeded so reports are reproducible.

    A resample's mean depends only on how often it drew each distinct value, so when the
    values are few (0/1 metrics, fractions of k) the counts are drawn directly from the
    multinomial: the same distribution as drawing items, at a cost that does not grow
    with the number of items (a 4,000-item run would otherwise index 8 million values).
    """
    data = np.asarray(list(values), dtype=float)
    n = len(data)
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    mean = float(data.mean())
    if n == 1:
        return Interval(mean, mean, mean, 1)
    rng = np.random.default_rng(seed)
    distinct, counts = np.unique(data, return_counts=True)
    if len(distinct) <= FEW_DISTINCT:
        means = rng.multinomial(n, counts / n, size=resamples) @ distinct / n
    else:
        means = data[rng.integers(0, n, size=(resamples, n))].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return Interval(mean, float(low), float(high), n)


def paired_difference(
    a: Mapping[str, float], b: Mapping[str, float], *, resamples: int = 2000, seed: int = 0
) -> Interval:
    """Mean of a - b over the items both score, with a paired bootstrap interval."""
    shared = sorted(set(a) & set(b))
    return bootstrap_interval([a[i] - b[i] for i in shared], resamples=resamples, seed=seed)
