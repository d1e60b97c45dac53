"""What an audit returns: findings, the judges' ranges, and the audit as a whole."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from skillmix.scoring.stats import Estimate


@dataclass(frozen=True)
class Finding:
    """One check of one judge (or across judges) on one criterion group.

    `estimate.p` is the check's own test (nan: untested); `p_adjusted` the Holm-adjusted
    p across every test of the audit. `null` is the value of "no effect" (0, or
    `CONSISTENCY_LIMIT` for consistency, which is tested one-sided); `items` the number
    of items (bootstrap clusters) behind the estimate, and `n` in the estimate counts
    what `n_label` says.
    """

    check: str
    judge: str
    criterion: str
    estimate: Estimate
    test: str
    n_label: str
    p_adjusted: float
    flagged: bool
    verdict: str
    run_id: str = ""  # the run, for checks made per run (judge_range); else ""
    null: float = 0.0
    items: int = 0

    @property
    def tested(self) -> bool:
        return not math.isnan(self.estimate.p)

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "judge": self.judge,
            "criterion": self.criterion,
            "run_id": self.run_id,
            "estimate": self.estimate.to_dict(),
            "null": self.null,
            "test": self.test,
            "n_label": self.n_label,
            "items": self.items,
            "p_adjusted": self.p_adjusted,
            "flagged": self.flagged,
            "verdict": self.verdict,
        }


@dataclass
class JudgeRange:
    """One metric at one k of one run: the lowest and highest judge's mean over items.

    `kappa` is Cohen's kappa of two judges, `alpha` Krippendorff's alpha of three or more
    (the other is nan), over every judge-given verdict of the items at this k.
    """

    metric: str
    k: int
    low: float
    high: float
    by_judge: dict[str, float]
    kappa: float
    alpha: float
    run_id: str = ""

    @property
    def agreement(self) -> float:
        """kappa or alpha, whichever applies (nan when neither could be computed)."""
        return self.alpha if math.isnan(self.kappa) else self.kappa

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "metric": self.metric,
            "k": self.k,
            "low": self.low,
            "high": self.high,
            "by_judge": dict(self.by_judge),
            "kappa": self.kappa,
            "alpha": self.alpha,
        }


@dataclass
class Audit:
    """What `audit_runs` found: findings, ranges across judges, and what it cannot tell."""

    run_ids: list[str]
    findings: list[Finding]
    ranges: list[JudgeRange]
    cannot_tell: list[str]
    lead: str
    level: float = 0.95
    alpha: float = 0.05

    @property
    def flagged(self) -> list[Finding]:
        return [f for f in self.findings if f.flagged]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_ids": list(self.run_ids),
            "level": self.level,
            "alpha": self.alpha,
            "lead": self.lead,
            "findings": [f.to_dict() for f in self.findings],
            "ranges": [r.to_dict() for r in self.ranges],
            "cannot_tell": list(self.cannot_tell),
        }
