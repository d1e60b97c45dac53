"""The judge audit (`skillmix audit`) as its section shows it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from skillmix.report.html.view.common import (
    METRIC_NAMES,
    ModelName,
    RunView,
    display_names,
    fmt,
    model_name,
    p_value,
    signed,
)
from skillmix.report.names import short_model
from skillmix.report.svg import IntervalRow, interval_plot
from skillmix.scoring.audit import Audit, audit_runs
from skillmix.store import Store

AUDIT_CHECKS = {
    "consistency": ("Consistency", "share of verdict pairs that flip between grading rounds"),
    "judge_range": ("Range across judges", "highest minus lowest judge's mean"),
    "leniency": ("Leniency against humans", "judge minus human pass rate"),
    "self_preference": ("Self-preference", "own-family minus other judges, own vs other texts"),
    "length_bias": ("Length bias", "log-odds of a verdict per 10 words"),
    "rubric_order": ("Rubric-order bias", "log-odds of a verdict, shown last vs first"),
}


@dataclass(frozen=True)
class FindingRow:
    check: str
    judge: ModelName | None  # None: across judges
    criterion: str
    estimate: str
    interval: str
    n: str
    p_adjusted: str
    test: str
    verdict: str
    flagged: bool


@dataclass(frozen=True)
class RangeRow:
    metric: str
    k: int
    range: str
    by_judge: list[tuple[ModelName, str]]
    agreement: str  # "kappa 0.41", "alpha 0.32" or "—"


@dataclass(frozen=True)
class AuditView:
    """The audit of the page's runs (one audit over all of them: self-preference needs
    several students), as its section shows it."""

    runs: str
    lead: str
    flagged: int
    findings: list[FindingRow]
    plots: list[tuple[str, Markup]]  # (check, its interval plot)
    ranges: list[RangeRow]
    cannot_tell: list[str]


def section(store: Store, runs: Sequence[RunView]) -> AuditView:
    """The audit each report already holds for a page of one run; for several runs, one
    audit over all of them. Models are named as the rest of the page names them."""
    own = runs[0].report.audit if len(runs) == 1 else None
    audit: Audit = own if own is not None else audit_runs(store, [r.run["id"] for r in runs])

    named = display_names(runs)
    findings = [
        FindingRow(
            check=AUDIT_CHECKS.get(f.check, (f.check, ""))[0],
            judge=model_name(f.judge) if f.judge else None,
            criterion=METRIC_NAMES.get(f.criterion, f.criterion),
            estimate=signed(f.estimate.value),
            interval=f"[{signed(f.estimate.low)}, {signed(f.estimate.high)}]",
            n=f"{f.estimate.n:,} {f.n_label}",
            p_adjusted=p_value(f.p_adjusted),
            test=named(f.test),
            verdict=named(f.verdict),
            flagged=f.flagged,
        )
        for f in audit.findings
    ]
    plots = []
    for check, (name, unit) in AUDIT_CHECKS.items():
        rows = [
            IntervalRow(
                " · ".join(
                    part
                    for part in (
                        short_model(f.judge) if f.judge else "",
                        METRIC_NAMES.get(f.criterion, f.criterion),
                    )
                    if part
                ),
                f.estimate.value,
                f.estimate.low,
                f.estimate.high,
                flagged=f.flagged,
                note=named(f.verdict),
            )
            for f in audit.findings
            if f.check == check
        ]
        if rows:
            reference = next(f.null for f in audit.findings if f.check == check)
            chart = interval_plot(
                rows, element_id=f"audit-{check}", title=name, x_label=unit, reference=reference
            )
            plots.append((check, Markup(chart)))  # svg.py escapes every label
    ranges = [
        RangeRow(
            metric=METRIC_NAMES.get(r.metric, r.metric),
            k=r.k,
            range=f"{fmt(r.low)} – {fmt(r.high)}",
            by_judge=[(model_name(j), fmt(v)) for j, v in r.by_judge.items()],
            agreement=(
                f"kappa {fmt(r.kappa)}"
                if r.kappa == r.kappa
                else f"alpha {fmt(r.alpha)}"
                if r.alpha == r.alpha
                else "—"
            ),
        )
        for r in audit.ranges
    ]
    return AuditView(
        runs=", ".join(audit.run_ids),
        lead=named(audit.lead),
        flagged=sum(f.flagged for f in audit.findings),
        findings=findings,
        plots=plots,
        ranges=ranges,
        cannot_tell=[named(sentence) for sentence in audit.cannot_tell],
    )
