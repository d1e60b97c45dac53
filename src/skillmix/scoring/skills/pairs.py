"""Pair interactions: lift, Fisher's exact test and the false discovery rate for skills
graded together."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from skillmix.jsonsafe import finite
from skillmix.scoring.skills.texts import GradedRun, skill_name
from skillmix.scoring.stats import (
    Estimate,
    benjamini_hochberg,
    estimate_dict,
    z_quantile,
)


@dataclass(frozen=True)
class PairInteraction:
    """Two skills graded together: how often both were met against independence.

    `lift` = P(both met) / (P(a met) P(b met)) over the texts that asked for both, with a
    delta-method interval on the log scale (half a count added to each cell) and the p of
    Fisher's exact test; `q` is its Benjamini-Hochberg adjusted p-value.
    """

    skills: tuple[str, str]
    names: tuple[str, str]
    texts: int
    both: int
    first: int  # texts that met skills[0]
    second: int  # texts that met skills[1]
    lift: Estimate
    q: float
    flagged: bool

    @property
    def direction(self) -> str:
        return "harder together" if self.lift.value < 1 else "easier together"

    def to_dict(self) -> dict[str, Any]:
        return {
            "skills": list(self.skills),
            "names": list(self.names),
            "texts": self.texts,
            "both_met": self.both,
            "first_met": self.first,
            "second_met": self.second,
            "lift": estimate_dict(self.lift),
            "q": finite(self.q),
            "flagged": self.flagged,
            "direction": self.direction,
        }


@dataclass
class PairInteractions:
    """Every skill pair of one run under one judge with enough texts, by p."""

    run_id: str
    student: str
    judge: str
    min_count: int
    fdr: float
    tested: list[PairInteraction]
    untested: int  # pairs graded together on fewer than `min_count` texts

    @property
    def flagged(self) -> list[PairInteraction]:
        return [p for p in self.tested if p.flagged]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "student": self.student,
            "judge": self.judge,
            "min_count": self.min_count,
            "fdr": self.fdr,
            "tested": len(self.tested),
            "untested": self.untested,
            "flagged": [p.to_dict() for p in self.flagged],
            "pairs": [p.to_dict() for p in self.tested],
        }


def fisher_exact_p(both: int, first: int, second: int, n: int) -> float:
    """Two-sided p of Fisher's exact test for a 2×2 table given by its margins.

    Sums the hypergeometric probabilities of every table with these margins that is no
    more likely than the observed one.
    """

    def log_comb(a: int, b: int) -> float:
        return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)

    low, high = max(0, first + second - n), min(first, second)
    logs = [
        log_comb(first, x) + log_comb(n - first, second - x) - log_comb(n, second)
        for x in range(low, high + 1)
    ]
    observed = logs[both - low]
    return min(1.0, sum(math.exp(v) for v in logs if v <= observed + 1e-7))


def lift_estimate(both: int, first: int, second: int, n: int, *, level: float = 0.95) -> Estimate:
    """P(both) / (P(a) P(b)) from a 2×2 table, with a delta-method interval for its log
    (half a count added to each cell) and Fisher's exact p."""
    value = both * n / (first * second) if first and second else float("nan")
    cells = np.array([both, first - both, second - both, n - first - second + both]) + 0.5
    pi = cells / cells.sum()
    pa, pb = pi[0] + pi[1], pi[0] + pi[2]
    gradient = np.array([1 / pi[0] - 1 / pa - 1 / pb, -1 / pa, -1 / pb, 0.0])
    se = math.sqrt(max(0.0, float(gradient**2 @ pi) - 1.0) / cells.sum())
    centre = math.log(pi[0] / (pa * pb))
    q = z_quantile(level)
    p = fisher_exact_p(both, first, second, n)
    return Estimate(value, math.exp(centre - q * se), math.exp(centre + q * se), p, n)


def pair_interactions(
    graded: GradedRun, *, level: float = 0.95, min_count: int = 5
) -> PairInteractions:
    """Test every skill pair graded together on at least `min_count` texts."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for t in graded.texts:
        met = dict(zip(t.skills, t.met, strict=True))
        for a, b in combinations(sorted(t.skills), 2):
            c = counts[(a, b)]
            c[0] += 1
            c[1] += met[a] and met[b]
            c[2] += met[a]
            c[3] += met[b]
    catalogs = [graded.catalog]
    enough = {pair: c for pair, c in counts.items() if c[0] >= min_count}
    lifts = {pair: lift_estimate(c[1], c[2], c[3], c[0], level=level) for pair, c in enough.items()}
    qs = benjamini_hochberg([e.p for e in lifts.values()])
    fdr = 1 - level
    tested = [
        PairInteraction(
            skills=pair,
            names=(skill_name(catalogs, pair[0]), skill_name(catalogs, pair[1])),
            texts=enough[pair][0],
            both=enough[pair][1],
            first=enough[pair][2],
            second=enough[pair][3],
            lift=lift,
            q=q,
            flagged=q <= fdr,
        )
        for (pair, lift), q in zip(lifts.items(), qs, strict=True)
    ]
    tested.sort(key=lambda p: (p.lift.p, p.skills))
    return PairInteractions(
        run_id=graded.run_id,
        student=graded.student,
        judge=graded.judge,
        min_count=min_count,
        fdr=fdr,
        tested=tested,
        untested=len(counts) - len(enough),
    )
