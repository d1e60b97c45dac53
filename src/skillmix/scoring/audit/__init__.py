"""Can the judge be trusted? The statistics of `skillmix audit` (SPEC section 10).

`audit_runs` reads stored runs (no model call) and returns an `Audit`: findings per judge
and criterion, each an estimate with its interval, test, sample size and a plain-language
verdict; the range of each metric across judges; and what the data cannot tell.

The checks, and what each estimate means:

- consistency: the share of verdict pairs that differ between two parsed grading rounds
  of the same judge on the same text (a fractional point counts as |a - b|). Tested
  one-sided against `CONSISTENCY_LIMIT` (10%): a judge is flagged only when its flip rate
  is shown to exceed 10%, so a deterministic judge (0%) never is, and one that flips 20%
  of its verdicts at random (about 32% of pairs differ) is.
- judge_range: per run, metric and k, the lowest and highest judge (`JudgeRange`); per
  run and metric a finding whose estimate is the range (max - min of the judges' means
  over the items every judge scored) and whose test is Hotelling's test that all judges'
  means are equal (paired by item; for two judges the paired t test).
  Judges "disagree" when that test is flagged or when their agreement on single
  verdicts (Cohen's kappa, Krippendorff's alpha) is below `AGREEMENT_FLOOR` (0.4); the
  audit then leads with the widest range.
- leniency: on the units people reviewed (`skillmix review`: one criterion of one
  generation), the judge's pass rate (its own majority over grading rounds, before the
  naming penalty, which is code and not the judge) minus the reviewers' majority.
- self_preference: a judge's score on texts written by a student of its own model
  family, minus the other-family judges' score on the same texts, against the same
  difference on the other students' texts (difference in differences; a score is the
  mean verdict over grading rounds and criteria, so the unit is a pass rate).
- length_bias: the log-odds of a verdict per 10 words of answer, from a conditional
  logistic regression with one stratum per item, criterion and grading round: only
  generations of the same item are compared, so item difficulty and the criterion are
  held fixed (and k with them). Needs several generation rounds.
- rubric_order: on runs graded with a shuffled rubric, the log-odds of a verdict for a
  criterion shown last rather than first (position scaled to 0..1), from a conditional
  logistic regression with one stratum per text and criterion (the rounds of one text
  differ only in the order the rubric was shown).

Intervals of rates and differences are percentile cluster bootstraps over items; those
of the regressions are Wald intervals with standard errors clustered by item. Tests use
the usual small-sample rule for clustered data: the standard error (bootstrap or
sandwich) scaled by sqrt(C / (C - 1)) and Student's t with C - 1 degrees of freedom, C
the number of items. Checks with fewer than `MIN_ITEMS` items are reported but not
tested. Every test of the audit is in one Holm family; a finding is flagged when its
Holm-adjusted p is below `alpha` and its interval excludes the null value.

The parts: `runs` reads the audited runs into the context every check shares, `checks`
holds the six checks (with `estimation` and `wording`), `findings` what they return;
`audit_runs` here runs them, adjusts the tests together and words the lead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from skillmix.scoring.audit.checks import (
    check_consistency,
    check_judge_range,
    check_length_bias,
    check_leniency,
    check_rubric_order,
    check_self_preference,
    default_positions,
)
from skillmix.scoring.audit.common import (
    AGREEMENT_FLOOR,
    CHECKS,
    CONSISTENCY_LIMIT,
    CRITERION_GROUPS,
    METRIC_LABELS,
    MIN_ITEMS,
    RESAMPLES,
    WORDS_PER_UNIT,
    Positions,
)
from skillmix.scoring.audit.families import KNOWN_FAMILIES, model_family
from skillmix.scoring.audit.findings import Audit, Finding, JudgeRange
from skillmix.scoring.audit.runs import AuditRun, Context, Draft
from skillmix.scoring.stats import Estimate, holm
from skillmix.store import Store

__all__ = [
    "AGREEMENT_FLOOR",
    "CHECKS",
    "CONSISTENCY_LIMIT",
    "CRITERION_GROUPS",
    "KNOWN_FAMILIES",
    "MIN_ITEMS",
    "RESAMPLES",
    "WORDS_PER_UNIT",
    "Audit",
    "Finding",
    "JudgeRange",
    "Positions",
    "audit_runs",
    "model_family",
]


def _excludes_null(estimate: Estimate, null: float, alternative: str) -> bool:
    if alternative == "greater":
        return estimate.low > null
    return estimate.low > null or estimate.high < null


def _settle(drafts: Sequence[Draft], alpha: float) -> list[Finding]:
    """Holm-adjust every test of the audit, flag, and word each verdict."""
    adjusted = holm([d.finding.estimate.p for d in drafts])
    findings = []
    for draft, p in zip(drafts, adjusted, strict=True):
        flagged = (
            not math.isnan(p)
            and p < alpha
            and _excludes_null(draft.finding.estimate, draft.finding.null, draft.alternative)
        )
        settled = replace(draft.finding, p_adjusted=p, flagged=flagged)
        findings.append(replace(settled, verdict=draft.words(settled)))
    return findings


def _disagreement(findings: Iterable[Finding], ranges: Sequence[JudgeRange]) -> str | None:
    """Why the judges disagree ("kappa 0.31", "their means differ, p=0.001"), or None."""
    low = [r for r in ranges if not math.isnan(r.agreement) and r.agreement < AGREEMENT_FLOOR]
    if low:
        worst = min(low, key=lambda r: r.agreement)
        name = "kappa" if not math.isnan(worst.kappa) else "Krippendorff's alpha"
        return f"{name} {worst.agreement:.2f} at k={worst.k}"
    differ = [f for f in findings if f.check == "judge_range" and f.flagged]
    if differ:
        best = min(differ, key=lambda f: f.p_adjusted)
        label = METRIC_LABELS.get(best.criterion, best.criterion)
        return f"their {label} differs beyond noise, adjusted p={best.p_adjusted:.2g}"
    return None


def _lead(findings: Sequence[Finding], ranges: Sequence[JudgeRange]) -> str:
    why = _disagreement(findings, ranges)
    if why is not None and ranges:
        widest = max(ranges, key=lambda r: r.high - r.low)
        judges = sorted(widest.by_judge, key=widest.by_judge.__getitem__)
        label = METRIC_LABELS.get(widest.metric, widest.metric)
        return (
            f"Judges disagree ({why}): {label} at k={widest.k} ranges from {widest.low:.2f} "
            f"({judges[0]}) to {widest.high:.2f} ({judges[-1]}) across {len(judges)} judges; "
            "read the scores as this range, not as one judge's figure."
        )
    flagged = [f for f in findings if f.flagged]
    if flagged:
        top = min(flagged, key=lambda f: (f.p_adjusted, -abs(f.estimate.value - f.null)))
        who = top.judge or "across judges"
        more = f" ({len(flagged) - 1} more findings flagged)" if len(flagged) > 1 else ""
        return f"{who} ({top.check.replace('_', ' ')}, {top.criterion}): {top.verdict}{more}."
    checks = sorted({f.check.replace("_", " ") for f in findings if f.tested})
    if not checks:
        return "No check could be tested on these runs: see what the audit cannot tell."
    return f"No evidence of judge bias in the checks that could be run ({', '.join(checks)})."


def audit_runs(
    store: Store,
    run_ids: Sequence[str],
    *,
    level: float = 0.95,
    alpha: float = 0.05,
    seed: int = 0,
    families: Mapping[str, str] | None = None,
    positions: Positions | None = None,
) -> Audit:
    """Audit the judges of stored runs: every check the data allows, and what it cannot tell.

    `run_ids` may name several runs (students) graded by the same judges: they are pooled
    per judge, with items as the bootstrap clusters (the same item in two runs is one
    cluster). `families` maps model specs to families for the self-preference check
    (default: `model_family`). `positions(config, item, gen_round, judge, grade_round)`
    says where each criterion was shown in a grading round, None for a fixed rubric
    (default: `skillmix.protocol.rubric_order.rubric_positions`). Bootstrap intervals are
    seeded by `seed`. See the module docstring for what each check estimates.
    """
    if not run_ids:
        raise ValueError("audit_runs needs at least one run id")
    rows = [store.get_run(run_id) for run_id in run_ids]
    runs = [AuditRun(store, row) for row in {row["id"]: row for row in rows}.values()]
    ctx = Context(runs, level, seed, families or {}, positions or default_positions())
    outcomes = [
        check(ctx)
        for check in (
            check_consistency,
            check_judge_range,
            check_leniency,
            check_self_preference,
            check_length_bias,
            check_rubric_order,
        )
    ]
    findings = _settle([d for o in outcomes for d in o.drafts], alpha)
    ranges = [r for o in outcomes for r in o.ranges]
    return Audit(
        run_ids=[run.id for run in runs],
        findings=findings,
        ranges=ranges,
        cannot_tell=[s for o in outcomes for s in o.cannot_tell],
        lead=_lead(findings, ranges),
        level=level,
        alpha=alpha,
    )
