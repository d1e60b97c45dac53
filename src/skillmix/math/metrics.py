"""Accuracy of `skillmix math eval` strategies and paired comparisons between them.

Pure functions over `Outcome`s (one strategy's verdict on one question):

- accuracy per strategy, and per category and per skill, each with a 95% Wilson
  interval (`scoring.stats.wilson_interval`);
- a paired comparison of every two strategies on the questions both answered: the gain
  in accuracy of the later strategy (in `STRATEGIES` order: zero-shot first) over the
  earlier one, with a paired bootstrap interval (questions resampled), and McNemar's test
  on the discordant questions, exact and mid-p. The mid-p keeps closer to its nominal
  size than the exact test while still using the binomial (Fagerland, Lydersen and
  Laake 2013); Holm's adjustment over all the comparisons of a run is applied to both.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from skillmix.scoring.stats import (
    bootstrap_estimate,
    cluster_bootstrap_totals,
    holm,
    wilson_interval,
)

ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 4000


@dataclass(frozen=True)
class Outcome:
    """One strategy's graded answer to one question."""

    strategy: str
    question_id: str
    correct: bool
    category: str | None = None
    skills: tuple[str, ...] = ()


@dataclass(frozen=True)
class Accuracy:
    """Correct answers out of n, with the 95% Wilson interval of the share."""

    correct: int
    n: int

    @property
    def value(self) -> float:
        return self.correct / self.n if self.n else float("nan")

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.correct, self.n)

    def to_dict(self) -> dict[str, float | int]:
        low, high = self.interval
        return {"correct": self.correct, "n": self.n, "value": self.value, "low": low, "high": high}


def accuracy(outcomes: Iterable[Outcome]) -> Accuracy:
    rows = list(outcomes)
    return Accuracy(sum(o.correct for o in rows), len(rows))


def accuracy_by(
    outcomes: Iterable[Outcome], groups: Callable[[Outcome], Iterable[str]]
) -> dict[tuple[str, str], Accuracy]:
    """(group, strategy) -> accuracy, where `groups(outcome)` names the groups an outcome
    counts in (one category; every skill of a question with several)."""
    tallies: dict[tuple[str, str], list[int]] = {}
    for o in outcomes:
        for group in groups(o):
            tally = tallies.setdefault((group, o.strategy), [0, 0])
            tally[0] += o.correct
            tally[1] += 1
    return {key: Accuracy(c, n) for key, (c, n) in sorted(tallies.items())}


# --- paired comparisons -----------------------------------------------------------------------


def mcnemar(only_first: int, only_second: int) -> tuple[float, float]:
    """McNemar's two-sided test from the discordant counts: (exact p, mid-p).

    Under "no difference" the discordant questions split as Binomial(b + c, 1/2). The
    exact p doubles the smaller tail; the mid-p counts the observed value's probability
    once, by half. 1.0 for both without a discordant question. Exact rational arithmetic.
    """
    n = only_first + only_second
    if n == 0:
        return 1.0, 1.0
    low = min(only_first, only_second)
    total = 2**n
    tail = Fraction(sum(math.comb(n, i) for i in range(low + 1)), total)
    point = Fraction(math.comb(n, low), total)
    return float(min(Fraction(1), 2 * tail)), float(min(Fraction(1), 2 * (tail - point / 2)))


def paired_bootstrap(
    baseline: Sequence[bool], strategy: Sequence[bool], *, resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:  # fmt: skip
    """The 95% percentile interval of accuracy(strategy) - accuracy(baseline), resampling
    questions (each keeps its pair of verdicts). Seeded, so a report is reproducible."""
    if len(baseline) != len(strategy):
        raise ValueError("paired verdicts need one of each per question")
    n = len(baseline)
    if n == 0:
        return float("nan"), float("nan")
    rows = np.column_stack([np.asarray(baseline, float), np.asarray(strategy, float)])
    totals = cluster_bootstrap_totals(rows, resamples=resamples, seed=seed)
    gains = (totals[:, 1] - totals[:, 0]) / n
    value = (rows[:, 1].sum() - rows[:, 0].sum()) / n
    estimate = bootstrap_estimate(float(value), gains, n)
    return estimate.low, estimate.high


@dataclass(frozen=True)
class Comparison:
    """`strategy` against `baseline` on the questions both answered.

    `gain` is accuracy(strategy) - accuracy(baseline); `only_strategy` and
    `only_baseline` count the questions just one of them got right (the discordant
    pairs McNemar's test reads). The Holm-adjusted p-values are over every comparison
    of the run; `significant` reads the adjusted mid-p at ALPHA.
    """

    baseline: str
    strategy: str
    n: int
    gain: float
    low: float
    high: float
    only_strategy: int
    only_baseline: int
    p_exact: float
    p_mid: float
    p_exact_holm: float = float("nan")
    p_mid_holm: float = float("nan")

    @property
    def significant(self) -> bool:
        return self.p_mid_holm < ALPHA

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "strategy": self.strategy,
            "n": self.n,
            "gain": self.gain,
            "low": self.low,
            "high": self.high,
            "only_strategy": self.only_strategy,
            "only_baseline": self.only_baseline,
            "p_exact": self.p_exact,
            "p_mid": self.p_mid,
            "p_exact_holm": self.p_exact_holm,
            "p_mid_holm": self.p_mid_holm,
            "significant": self.significant,
        }


def compare(
    outcomes: Iterable[Outcome], baseline: str, strategy: str, *, seed: int = 0
) -> Comparison:
    """One paired comparison (without the Holm adjustment, which needs every comparison)."""
    verdicts: dict[str, dict[str, bool]] = {}
    for o in outcomes:
        if o.strategy in (baseline, strategy):
            verdicts.setdefault(o.question_id, {})[o.strategy] = o.correct
    paired = [(v[baseline], v[strategy]) for _, v in sorted(verdicts.items()) if len(v) == 2]
    first = [a for a, _ in paired]
    second = [b for _, b in paired]
    n = len(paired)
    only_strategy = sum(b and not a for a, b in paired)
    only_baseline = sum(a and not b for a, b in paired)
    gain = (sum(second) - sum(first)) / n if n else float("nan")
    low, high = paired_bootstrap(first, second, seed=seed)
    p_exact, p_mid = mcnemar(only_baseline, only_strategy)
    return Comparison(
        baseline, strategy, n, gain, low, high, only_strategy, only_baseline, p_exact, p_mid
    )


def compare_all(
    outcomes: Iterable[Outcome], strategies: Sequence[str], *, seed: int = 0
) -> list[Comparison]:
    """Every pair of `strategies` (the later one against the earlier), Holm-adjusted."""
    rows = list(outcomes)
    plain = [compare(rows, a, b, seed=seed) for a, b in itertools.combinations(strategies, 2)]
    exact = holm([c.p_exact for c in plain])
    mid = holm([c.p_mid for c in plain])
    return [
        Comparison(**{**c.__dict__, "p_exact_holm": e, "p_mid_holm": m})
        for c, e, m in zip(plain, exact, mid, strict=True)
    ]


# --- everything a report shows ----------------------------------------------------------------


@dataclass
class EvalMetrics:
    """Accuracy per strategy, category and skill, and the paired comparisons."""

    strategies: list[str]
    overall: dict[str, Accuracy]
    by_category: dict[tuple[str, str], Accuracy]
    by_skill: dict[tuple[str, str], Accuracy]
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        return sorted({c for c, _ in self.by_category})

    @property
    def skills(self) -> list[str]:
        return sorted({s for s, _ in self.by_skill})

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategies": [{"strategy": s, **self.overall[s].to_dict()} for s in self.strategies],
            "by_category": [
                {"category": c, "strategy": s, **a.to_dict()}
                for (c, s), a in self.by_category.items()
            ],
            "by_skill": [
                {"skill": k, "strategy": s, **a.to_dict()} for (k, s), a in self.by_skill.items()
            ],
            "comparisons": [c.to_dict() for c in self.comparisons],
        }


NO_CATEGORY = "(none)"


def evaluate(
    outcomes: Iterable[Outcome], strategies: Sequence[str], *, seed: int = 0
) -> EvalMetrics:
    """Every figure of a math evaluation from its outcomes, strategies in the given order
    (strategies without an outcome are left out)."""
    rows = list(outcomes)
    present = [s for s in strategies if any(o.strategy == s for o in rows)]
    overall = {s: accuracy(o for o in rows if o.strategy == s) for s in present}
    return EvalMetrics(
        strategies=present,
        overall=overall,
        by_category=accuracy_by(rows, lambda o: [o.category or NO_CATEGORY]),
        by_skill=accuracy_by(rows, lambda o: o.skills),
        comparisons=compare_all(rows, present, seed=seed),
    )
