"""Small statistical tools shared by the audit, the skill analytics and the spread.

Pure functions over plain numbers (numpy only): multiple-comparison control, intervals
for proportions and estimates, and two-sided p-values. Model fits (statsmodels) live with
the analysis that needs them, imported lazily.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval, a two-sided p-value and the sample it came from.

    `p` is the test of "no effect" (nan when no test applies); `n` counts the units the
    estimate used (items, verdicts or pairs: the docstring of each producer says which).
    """

    value: float
    low: float
    high: float
    p: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "low": self.low, "high": self.high, "p": self.p, "n": self.n}


def z_quantile(level: float) -> float:
    """The normal quantile of a two-sided interval at `level` (0.95 -> 1.96)."""
    if level == 0.95:
        return Z95
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def two_sided_p(z: float) -> float:
    """The two-sided p-value of a standard normal statistic."""
    if math.isnan(z):
        return float("nan")
    return math.erfc(abs(z) / math.sqrt(2))


def wald(value: float, se: float, n: int, *, null: float = 0.0, level: float = 0.95) -> Estimate:
    """An estimate with a normal (Wald) interval and the test of `value == null`."""
    if not math.isfinite(se) or se <= 0:
        p = float("nan") if not math.isfinite(se) else (1.0 if value == null else 0.0)
        return Estimate(value, value, value, p, n)
    q = z_quantile(level)
    return Estimate(value, value - q * se, value + q * se, two_sided_p((value - null) / se), n)


def wilson_interval(successes: int, n: int, *, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (good near 0 and 1, unlike Wald)."""
    if n == 0:
        return (float("nan"), float("nan"))
    q = z_quantile(level)
    p = successes / n
    centre = (p + q * q / (2 * n)) / (1 + q * q / n)
    half = q * math.sqrt(p * (1 - p) / n + q * q / (4 * n * n)) / (1 + q * q / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (controls the family-wise error rate).

    nan p-values (no test) stay nan and do not count towards the family size.
    """
    indexed = [(p, i) for i, p in enumerate(pvalues) if not math.isnan(p)]
    indexed.sort()
    m = len(indexed)
    adjusted = [float("nan")] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values; controls the false discovery rate).

    nan p-values (no test) stay nan and do not count towards the family size.
    """
    indexed = [(p, i) for i, p in enumerate(pvalues) if not math.isnan(p)]
    indexed.sort()
    m = len(indexed)
    adjusted = [float("nan")] * len(pvalues)
    running = 1.0
    for rank in range(m - 1, -1, -1):
        p, i = indexed[rank]
        running = min(running, p * m / (rank + 1))
        adjusted[i] = min(1.0, running)
    return adjusted


def bootstrap_statistic(
    groups: Sequence[Sequence[float]],
    statistic: object,
    *,
    resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile interval of `statistic(resampled_groups)` resampling whole groups (clusters).

    `groups` are the units that are independent (items, say); each resample draws as many
    groups with replacement and passes their concatenated values to `statistic`, a
    function of a 1-D numpy array. Seeded, so reports are reproducible.
    """
    fn = statistic
    if not callable(fn):
        raise TypeError("statistic must be callable")
    arrays = [np.asarray(g, dtype=float) for g in groups]
    if not arrays:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for r in range(resamples):
        picks = rng.integers(0, len(arrays), size=len(arrays))
        values[r] = fn(np.concatenate([arrays[i] for i in picks]))
    alpha = (1 - level) / 2
    low, high = np.nanquantile(values, [alpha, 1 - alpha])
    return (float(low), float(high))
