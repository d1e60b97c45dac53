"""Small statistical tools shared by the audit, the skill analytics and the spread.

Pure functions over plain numbers (numpy only): multiple-comparison control, intervals
for proportions and estimates, the cluster bootstrap, and p-values from the normal,
Student's t and F distributions (closed forms, so that no scipy import is needed to read a
report). Model fits (statsmodels) live with the analysis that needs them, imported lazily.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from skillmix.jsonsafe import finite

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


def estimate_dict(e: Estimate | None) -> dict[str, float | int | None] | None:
    """`e` as a dict for JSON: NaN and infinities (no test, an undefined ratio) as None."""
    return None if e is None else finite(e.to_dict())


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


def wald(
    value: float,
    se: float,
    n: int,
    *,
    null: float = 0.0,
    level: float = 0.95,
    df: int | None = None,
) -> Estimate:
    """An estimate with a Wald interval and the test of `value == null`.

    Normal by default; with `df`, Student's t with `df` degrees of freedom (for a
    standard error clustered over few groups: df = groups - 1).
    """
    if not math.isfinite(se) or se <= 0:
        p = float("nan") if not math.isfinite(se) else (1.0 if value == null else 0.0)
        return Estimate(value, value, value, p, n)
    z = (value - null) / se
    if df is None:
        q, p = z_quantile(level), two_sided_p(z)
    else:
        q, p = t_quantile(level, df), t_two_sided_p(z, df)
    return Estimate(value, value - q * se, value + q * se, p, n)


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


def upper_p(z: float) -> float:
    """The one-sided p-value P(Z >= z) of a standard normal statistic."""
    if math.isnan(z):
        return float("nan")
    return 0.5 * math.erfc(z / math.sqrt(2))


def cluster_bootstrap_totals(
    totals: np.ndarray | Sequence[Sequence[float]],
    *,
    resamples: int = 2000,
    seed: int = 0,
    chunk: int = 256,
) -> np.ndarray:
    """Column totals of `resamples` cluster-bootstrap samples, shape (resamples, columns).

    `totals` holds one row per independent cluster (an item, say) with that cluster's sums
    (numerators, counts, ...). A resample draws as many clusters with replacement; its
    totals are the draw counts times the rows, so any statistic that is a function of
    column totals (a ratio, a difference of ratios) is bootstrapped without re-indexing
    the raw data. Seeded, so reports are reproducible.
    """
    data = np.asarray(totals, dtype=float)
    if data.ndim != 2:
        raise ValueError(f"totals must be a 2-D array (clusters x columns), got {data.shape}")
    clusters = data.shape[0]
    out = np.empty((resamples, data.shape[1]))
    if clusters == 0:
        out.fill(np.nan)
        return out
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        # draw counts of each cluster per resample: one bincount over offset draws
        draws = rng.integers(0, clusters, size=(size, clusters))
        draws += (np.arange(size) * clusters)[:, None]
        counts = np.bincount(draws.ravel(), minlength=size * clusters)
        out[start : start + size] = counts.reshape(size, clusters) @ data
    return out


def bootstrap_estimate(
    value: float,
    replicates: np.ndarray | Sequence[float],
    n: int,
    *,
    null: float = 0.0,
    level: float = 0.95,
    alternative: str = "two-sided",
    clusters: int | None = None,
) -> Estimate:
    """An estimate with the percentile interval of its bootstrap `replicates`.

    p tests `value == null` (alternative "two-sided") or `value <= null` ("greater") with
    the bootstrap standard error: a smoother p than counting replicates beyond the null,
    whose resolution (1 / resamples) is too coarse for multiple-comparison control. With
    `clusters` (the number of groups resampled, C), the usual small-sample rule for
    clustered data applies: the standard error is scaled by sqrt(C / (C - 1)) and p is
    read from Student's t with C - 1 degrees of freedom; without, from the normal.
    Replicates that are nan (a resample without the data a statistic needs) are left
    out; with fewer than two left the interval and p are nan.
    """
    if alternative not in ("two-sided", "greater"):
        raise ValueError(f"alternative is 'two-sided' or 'greater', not {alternative!r}")
    reps = np.asarray(replicates, dtype=float)
    reps = reps[np.isfinite(reps)]
    if len(reps) < 2 or not math.isfinite(value):
        return Estimate(value, float("nan"), float("nan"), float("nan"), n)
    tail = (1 - level) / 2
    low, high = (float(q) for q in np.quantile(reps, [tail, 1 - tail]))
    se = float(np.std(reps, ddof=1))
    df = None if clusters is None or clusters < 2 else clusters - 1
    if clusters is not None and df is not None:
        se *= math.sqrt(clusters / df)
    if se <= 0:
        beyond = value > null if alternative == "greater" else value != null
        return Estimate(value, low, high, 0.0 if beyond else 1.0, n)
    z = (value - null) / se
    if df is None:
        p = upper_p(z) if alternative == "greater" else two_sided_p(z)
    else:
        p = t_upper_p(z, df) if alternative == "greater" else t_two_sided_p(z, df)
    return Estimate(value, low, high, p, n)


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"Student's t needs df > 0, got {df}")
    if math.isnan(t):
        return float("nan")
    if math.isinf(t):
        return 0.0
    return regularized_beta(df / 2, 0.5, df / (df + t * t))


def t_upper_p(t: float, df: float) -> float:
    """The one-sided p-value P(T >= t) of Student's t with `df` degrees of freedom."""
    half = t_two_sided_p(t, df) / 2
    return half if t >= 0 else 1 - half


def t_quantile(level: float, df: float) -> float:
    """The quantile of a two-sided Student's t interval at `level` (bisection on the tail)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    target = 1 - level
    low, high = 0.0, 1.0
    while t_two_sided_p(high, df) > target:
        low, high = high, high * 2
    for _ in range(100):
        mid = (low + high) / 2
        if t_two_sided_p(mid, df) > target:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * high:
            break
    return (low + high) / 2


def regularized_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction.

    Lentz's method on the fraction that converges fast for x < (a + 1) / (a + b + 2),
    and the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) elsewhere.
    """
    if a <= 0 or b <= 0:
        raise ValueError(f"regularized_beta needs a, b > 0, got {a}, {b}")
    if math.isnan(x):
        return float("nan")
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - regularized_beta(b, a, 1.0 - x)
    log_front = a * math.log(x) + b * math.log1p(-x) - math.log(a) - _log_beta(a, b)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * fraction)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def f_sf(x: float, d1: int, d2: int) -> float:
    """P(F >= x) for Fisher's F with (d1, d2) degrees of freedom."""
    if d1 < 1 or d2 < 1:
        raise ValueError(f"F needs positive degrees of freedom, got {d1}, {d2}")
    if math.isnan(x):
        return float("nan")
    if x <= 0:
        return 1.0
    return regularized_beta(d2 / 2, d1 / 2, d2 / (d2 + d1 * x))


def clustered_mcnemar_p(differences: Sequence[float] | np.ndarray) -> float:
    """Two-sided p of McNemar's test for paired 0/1 verdicts grouped in clusters.

    `differences` holds, per cluster, the sum over its pairs of (first - second): the
    discordant pairs one way minus the other. The statistic sum(D) / sqrt(sum(D^2))
    estimates its variance under the null (no centring on the estimate), which keeps it
    calibrated where a Wald test of a sparse difference is not (Durkalski et al. 2003;
    with one pair per cluster it is McNemar's own test). 1.0 without a discordant pair.
    """
    d = np.asarray(differences, dtype=float)
    scale = float(np.sum(d * d))
    if scale == 0:
        return 1.0
    return two_sided_p(float(np.sum(d)) / math.sqrt(scale))
