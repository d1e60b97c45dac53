"""Estimators several checks share: a ratio with its bootstrap interval, and the slope of a
conditional logistic regression with item-clustered standard errors."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from skillmix.scoring.audit.common import NAN, RESAMPLES
from skillmix.scoring.audit.runs import Context
from skillmix.scoring.stats import (
    Estimate,
    bootstrap_estimate,
    cluster_bootstrap_totals,
    two_sided_p,
    wald,
)


def ratio_estimate(
    per_item: Mapping[str, Sequence[float]],
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    ctx: Context,
    *,
    null: float = 0.0,
    alternative: str = "two-sided",
) -> Estimate:
    """A statistic of column totals with its cluster bootstrap over items."""
    totals = np.array([per_item[item] for item in sorted(per_item)], dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = float(statistic(totals.sum(axis=0, keepdims=True))[0])
        replicates = statistic(cluster_bootstrap_totals(totals, resamples=RESAMPLES, seed=ctx.seed))
    return bootstrap_estimate(
        value,
        replicates,
        n,
        null=null,
        level=ctx.level,
        alternative=alternative,
        clusters=len(totals),
    )


@dataclass
class Design:
    """Rows for a conditional logistic regression of a verdict on one covariate."""

    y: list[int] = field(default_factory=list)
    x: list[float] = field(default_factory=list)
    strata: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)

    def add(self, y: int, x: float, stratum: tuple[Any, ...], item: str) -> None:
        self.y.append(y)
        self.x.append(x)
        self.strata.append(stratum)
        self.items.append(item)


@dataclass(frozen=True)
class Slope:
    estimate: Estimate  # n = verdicts in informative strata
    items: int


def conditional_slope(design: Design, level: float) -> Slope | None:
    """The slope of a conditional logistic regression, with its test and interval by item.

    Strata where the verdict or the covariate does not vary carry no information and are
    dropped first (statsmodels would drop the former with a warning). The slope is
    statsmodels' ConditionalLogit fit, its interval a Wald interval with the sandwich
    standard error whose scores are summed per item (the strata of one item share
    texts). Its p is the score test at slope 0 with the same clustering, whose variance
    is estimated under the null (sum of squared item scores, as in McNemar's test): the
    Wald test of a sparse logit is too eager in the tails. None when no stratum is
    informative.
    """
    if not design.y:
        return None
    codes = {s: i for i, s in enumerate(dict.fromkeys(design.strata))}
    strata = np.array([codes[s] for s in design.strata])
    order = np.argsort(strata, kind="stable")
    strata = strata[order]
    y = np.asarray(design.y, dtype=float)[order]
    x = np.asarray(design.x, dtype=float)[order]
    item_codes = {s: i for i, s in enumerate(dict.fromkeys(design.items))}
    clusters = np.array([item_codes[i] for i in design.items])[order]
    starts = np.r_[0, np.flatnonzero(np.diff(strata)) + 1]
    sizes = np.diff(np.r_[starts, len(strata)])
    informative = (np.minimum.reduceat(y, starts) < np.maximum.reduceat(y, starts)) & (
        np.minimum.reduceat(x, starts) < np.maximum.reduceat(x, starts)
    )
    if not informative.any():
        return None
    keep = np.repeat(informative, sizes)
    y, x, strata, clusters = y[keep], x[keep], strata[keep], clusters[keep]
    starts = np.r_[0, np.flatnonzero(np.diff(strata)) + 1]
    sizes = np.diff(np.r_[starts, len(strata)])
    _, cluster_of_row = np.unique(clusters, return_inverse=True)
    c = int(cluster_of_row.max()) + 1
    # the score at slope 0: each stratum's sum of (y - its mean) * x
    ones = np.add.reduceat(y, starts)
    centred = y - np.repeat(ones / sizes, sizes)
    null_scores = np.bincount(cluster_of_row, weights=centred * x, minlength=c)
    scale = float(np.sum(null_scores**2))
    p = two_sided_p(float(null_scores.sum()) / math.sqrt(scale)) if scale > 0 else 1.0
    # its information (the variance of sum(y x) over random choices of the ones), for a
    # one-step start that saves the optimiser most of its passes over the strata
    x_centred = x - np.repeat(np.add.reduceat(x, starts) / sizes, sizes)
    spread = np.add.reduceat(x_centred**2, starts)
    information = float(np.sum(ones * (sizes - ones) / (sizes * (sizes - 1)) * spread))
    start = float(null_scores.sum()) / information if information > 0 else 0.0

    from statsmodels.discrete.conditional_models import ConditionalLogit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ConditionalLogit(y, x[:, None], groups=strata)
        params = model.fit(start_params=np.array([start]), disp=False, skip_hessian=True).params
        hessian = float(np.asarray(model.hessian(params)).ravel()[0])
        scores = np.array([float(model.score_grp(g, params)[0]) for g in range(len(starts))])
    slope = float(np.asarray(params).ravel()[0])
    if c < 2 or not math.isfinite(slope) or hessian >= 0:
        return Slope(Estimate(slope, NAN, NAN, NAN, len(y)), c)
    per_cluster = np.bincount(cluster_of_row[starts], weights=scores, minlength=c)
    se = math.sqrt(float(np.sum(per_cluster**2)) * c / (c - 1)) / abs(hessian)
    return Slope(replace(wald(slope, se, len(y), level=level, df=c - 1), p=p), c)
