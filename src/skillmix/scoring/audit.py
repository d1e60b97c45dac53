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
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from skillmix.scoring.human import human_majority
from skillmix.scoring.judges import judge_agreement
from skillmix.scoring.metrics import METRICS, majority_vote
from skillmix.scoring.results import RunScores, score_run
from skillmix.scoring.stats import (
    Estimate,
    bootstrap_estimate,
    cluster_bootstrap_totals,
    clustered_mcnemar_p,
    f_sf,
    holm,
    two_sided_p,
    wald,
)
from skillmix.store import GradeRow, ItemRow, RunRow, Store

CHECKS = (
    "consistency",
    "judge_range",
    "leniency",
    "self_preference",
    "length_bias",
    "rubric_order",
)
CRITERION_GROUPS = ("all", "skills", "topic", "sense")  # judge-given criteria only
CONSISTENCY_LIMIT = 0.10  # a judge may flip up to this share of verdict pairs unflagged
AGREEMENT_FLOOR = 0.4  # kappa/alpha below this: the judges disagree
MIN_ITEMS = 10  # fewer items: reported, not tested
WORDS_PER_UNIT = 10  # length_bias: log-odds per this many words
RESAMPLES = 2000

Positions = Callable[[Mapping[str, Any], ItemRow, int, str, int], dict[str, int] | None]

# Model families recognised from the start of a model's name (after provider and path).
KNOWN_FAMILIES: dict[str, str] = {
    "gpt": "gpt",
    "chatgpt": "gpt",
    "o1": "gpt",
    "o3": "gpt",
    "o4": "gpt",
    "claude": "claude",
    "llama": "llama",
    "meta-llama": "llama",
    "qwen": "qwen",
    "qwq": "qwen",
    "gemini": "gemini",
    "mistral": "mistral",
    "mixtral": "mistral",
    "ministral": "mistral",
    "codestral": "mistral",
    "smollm": "smollm",
    "embedded": "smollm",  # the embedded default is SmolLM2
}

_NAN = float("nan")
_METRIC_LABELS = {
    "full_marks": "full marks",
    "all_skills": "all skills",
    "skill_fraction": "skill fraction",
}


# --- results -------------------------------------------------------------------------------


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


# --- model families ----------------------------------------------------------------------------


def model_family(spec: str, families: Mapping[str, str] | None = None) -> str:
    """The family of a model spec: `families[spec]` when given, else read from its name.

    The name is the spec without provider, base URL and path ("openai:gpt-4o-mini" ->
    "gpt-4o-mini", "hf:meta-llama/Llama-3-8B" -> "llama-3-8b"); a name starting with a
    known family ("gpt", "claude", "llama", "qwen", "gemini", "mistral", "smollm", ...)
    belongs to it, any other to the part before its first '-' or ':', lowercased.
    """
    if families and spec in families:
        return families[spec]
    name = spec.strip().split("@", 1)[0]
    if ":" in name:
        name = name.split(":", 1)[1]
    name = name.rstrip("/").rsplit("/", 1)[-1].lower()
    for prefix, family in sorted(KNOWN_FAMILIES.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(prefix):
            return family
    return name.replace(":", "-").split("-", 1)[0] or name


# --- reading the runs ---------------------------------------------------------------------------


def _group(criterion: str) -> str | None:
    """The criterion group of a judge-given criterion; None for "length" (code) and others."""
    if criterion.startswith("skill:"):
        return "skills"
    return criterion if criterion in ("topic", "sense") else None


def _met(value: float) -> int:
    """A round's value as met (1) or not (0): a half point is a tie, not met."""
    return int(float(value) > 0.5)


@dataclass
class _Run:
    """One stored run, read lazily: a check that cannot run reads nothing it does not need."""

    store: Store
    row: RunRow

    @property
    def id(self) -> str:
        return self.row["id"]

    @property
    def config(self) -> dict[str, Any]:
        return self.row["config"]

    @property
    def judges(self) -> list[str]:
        return list(self.config.get("judges", ()))

    @property
    def student(self) -> str:
        return str(self.config.get("student", ""))

    @property
    def grading_rounds(self) -> int:
        return int(self.config.get("grading_rounds", 1))

    @property
    def generation_rounds(self) -> int:
        return int(self.config.get("generation_rounds", 1))

    @cached_property
    def grades(self) -> list[GradeRow]:
        """The parsed grading rounds (an unparsed one has no verdicts to audit)."""
        return [g for g in self.store.grades(self.id) if g["verdicts"] is not None]

    @cached_property
    def rounds(self) -> dict[tuple[str, int, str], list[dict[str, float]]]:
        """(item id, generation round, judge) -> its parsed rounds' verdicts, in order."""
        table: dict[tuple[str, int, str], list[dict[str, float]]] = defaultdict(list)
        for g in self.grades:
            if g["verdicts"] is not None:
                table[(g["item_id"], g["gen_round"], g["judge"])].append(g["verdicts"])
        return dict(table)

    @cached_property
    def words(self) -> dict[tuple[str, int], int]:
        """(item id, generation round) -> words in the graded answer."""
        return {
            (g["item_id"], g["round"]): len(g["answer"].split())
            for g in self.store.generations(self.id)
        }

    @cached_property
    def items(self) -> dict[str, ItemRow]:
        return {item["item_id"]: item for item in self.store.items(self.id)}

    @cached_property
    def humans(self) -> dict[tuple[str, int, str], int]:
        return human_majority(self.store.human_verdicts(self.id))

    @cached_property
    def scores(self) -> RunScores:
        return score_run(self.store, self.id)


@dataclass(frozen=True)
class _Context:
    runs: list[_Run]
    level: float
    seed: int
    families: Mapping[str, str]
    positions: Positions

    def family(self, spec: str) -> str:
        return model_family(spec, self.families)

    @cached_property
    def judges(self) -> list[str]:
        return list(dict.fromkeys(j for run in self.runs for j in run.judges))

    @cached_property
    def multi_judge_runs(self) -> list[_Run]:
        return [run for run in self.runs if len(run.judges) >= 2]


@dataclass(frozen=True)
class _Draft:
    """A finding before the Holm adjustment, with how to word its verdict once settled."""

    finding: Finding
    words: Callable[[Finding], str]
    alternative: str = "two-sided"  # or "greater" (consistency)


@dataclass
class _Outcome:
    drafts: list[_Draft] = field(default_factory=list)
    cannot_tell: list[str] = field(default_factory=list)
    ranges: list[JudgeRange] = field(default_factory=list)


def _draft(
    check: str,
    judge: str,
    criterion: str,
    estimate: Estimate,
    *,
    test: str,
    n_label: str,
    items: int,
    words: Callable[[Finding], str],
    null: float = 0.0,
    run_id: str = "",
    alternative: str = "two-sided",
) -> _Draft:
    if items < MIN_ITEMS:
        estimate = replace(estimate, p=_NAN)
    finding = Finding(
        check, judge, criterion, estimate, test, n_label, _NAN, False, "", run_id, null, items
    )
    return _Draft(finding, words, alternative)


# --- estimation helpers -------------------------------------------------------------------------


def _ratio_estimate(
    per_item: Mapping[str, Sequence[float]],
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    ctx: _Context,
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
class _Design:
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
class _Slope:
    estimate: Estimate  # n = verdicts in informative strata
    items: int


def _conditional_slope(design: _Design, level: float) -> _Slope | None:
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
        return _Slope(Estimate(slope, _NAN, _NAN, _NAN, len(y)), c)
    per_cluster = np.bincount(cluster_of_row[starts], weights=scores, minlength=c)
    se = math.sqrt(float(np.sum(per_cluster**2)) * c / (c - 1)) / abs(hessian)
    return _Slope(replace(wald(slope, se, len(y), level=level, df=c - 1), p=p), c)


# --- verdict wording --------------------------------------------------------------------------


def _signed(e: Estimate) -> str:
    return f"{e.value:+.2f} [{e.low:+.2f}, {e.high:+.2f}]"


def _percent(e: Estimate) -> str:
    return f"{e.value:.0%} [{e.low:.0%}, {e.high:.0%}]"


def _odds(e: Estimate) -> str:
    return f"x{math.exp(e.value):.2f} [{math.exp(e.low):.2f}, {math.exp(e.high):.2f}]"


def _sample(f: Finding) -> str:
    items = f", {f.items} items" if f.n_label != "items" else ""
    return f"(n={f.estimate.n} {f.n_label}{items})"


def _untested(f: Finding) -> str:
    return f"too few items to test (fewer than {MIN_ITEMS})" if not f.tested else ""


def _say_consistency(f: Finding) -> str:
    e = f.estimate
    share = f"{_percent(e)} of verdict pairs differ between grading rounds {_sample(f)}"
    if f.flagged:
        return f"inconsistent: {share}"
    if not f.tested:
        return f"{share}; {_untested(f)}"
    if e.high <= f.null:
        return f"consistent: {share}"
    return f"not shown to flip more than {f.null:.0%}: {share}"


def _say_leniency(f: Finding) -> str:
    diff = f"{_signed(f.estimate)} against human verdicts {_sample(f)}"
    if f.flagged:
        return f"{'lenient' if f.estimate.value > 0 else 'strict'} by {diff}"
    return f"no evidence of leniency: {diff}" + (f"; {_untested(f)}" if not f.tested else "")


def _say_self_preference(family: str) -> Callable[[Finding], str]:
    def say(f: Finding) -> str:
        diff = f"{_signed(f.estimate)} relative to other judges {_sample(f)}"
        if f.flagged:
            verb = "favours" if f.estimate.value > 0 else "is harder on"
            return f"{verb} texts of its own family ({family}) by {diff}"
        extra = f"; {_untested(f)}" if not f.tested else ""
        return f"no evidence of self-preference on {family} texts: {diff}{extra}"

    return say


def _say_length(f: Finding) -> str:
    odds = f"odds of a pass {_odds(f.estimate)} per {WORDS_PER_UNIT} words {_sample(f)}"
    if f.flagged:
        return f"favours {'longer' if f.estimate.value > 0 else 'shorter'} answers: {odds}"
    return f"no evidence of length bias: {odds}" + (f"; {_untested(f)}" if not f.tested else "")


def _say_rubric(f: Finding) -> str:
    odds = f"odds of a pass {_odds(f.estimate)} shown last rather than first {_sample(f)}"
    if f.flagged:
        where = "later" if f.estimate.value > 0 else "earlier"
        return f"passes criteria shown {where} in the rubric more often: {odds}"
    extra = f"; {_untested(f)}" if not f.tested else ""
    return f"no evidence that rubric position matters: {odds}{extra}"


def _say_range(means: Mapping[str, float]) -> Callable[[Finding], str]:
    def say(f: Finding) -> str:
        low, high = min(means, key=means.__getitem__), max(means, key=means.__getitem__)
        label = _METRIC_LABELS.get(f.criterion, f.criterion)
        spread = (
            f"{label} {means[low]:.2f} ({low}) to {means[high]:.2f} ({high}), "
            f"range {f.estimate.value:.2f} [{f.estimate.low:.2f}, {f.estimate.high:.2f}] "
            f"{_sample(f)}"
        )
        if f.flagged:
            return f"judges differ: {spread}"
        extra = f"; {_untested(f)}" if not f.tested else ""
        return f"judges agree within noise: {spread}{extra}"

    return say


# --- the checks -----------------------------------------------------------------------------------


def _consistency(ctx: _Context) -> _Outcome:
    runs = [run for run in ctx.runs if run.grading_rounds >= 2]
    if not runs:
        return _Outcome(
            cannot_tell=[
                "One grading round per generation: consistency between rounds cannot be "
                "measured (grade with 3 grading rounds)."
            ]
        )
    sums: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(dict)
    for run in runs:
        for (item, _, judge), rounds in run.rounds.items():
            for a, b in itertools.combinations(rounds, 2):
                for criterion in a.keys() & b.keys():
                    group = _group(criterion)
                    if group is None:
                        continue
                    differ = min(1.0, abs(float(a[criterion]) - float(b[criterion])))
                    for key in (group, "all"):
                        cell = sums[(judge, key)].setdefault(item, [0.0, 0.0])
                        cell[0] += differ
                        cell[1] += 1
    if not sums:
        return _Outcome(
            cannot_tell=[
                "No generation has two parsed grading rounds: consistency cannot be measured."
            ]
        )
    outcome = _Outcome()
    for judge in ctx.judges:
        for group in CRITERION_GROUPS:
            per_item = sums.get((judge, group))
            if not per_item:
                continue
            pairs = int(sum(cell[1] for cell in per_item.values()))
            estimate = _ratio_estimate(
                per_item,
                lambda t: t[:, 0] / t[:, 1],
                pairs,
                ctx,
                null=CONSISTENCY_LIMIT,
                alternative="greater",
            )
            outcome.drafts.append(
                _draft(
                    "consistency",
                    judge,
                    group,
                    estimate,
                    test=f"one-sided t test of a flip rate above {CONSISTENCY_LIMIT:.0%} with "
                    "the bootstrap standard error; cluster bootstrap over items",
                    n_label="verdict pairs",
                    items=len(per_item),
                    words=_say_consistency,
                    null=CONSISTENCY_LIMIT,
                    alternative="greater",
                )
            )
    return outcome


def _judge_range(ctx: _Context) -> _Outcome:
    if not ctx.multi_judge_runs:
        return _Outcome(
            cannot_tell=[
                "One judge: no range across judges and no self-preference test "
                "(grade with two or more judges)."
            ]
        )
    outcome = _Outcome()
    for run in ctx.multi_judge_runs:
        scores = run.scores
        judges = scores.judges
        outcome.ranges.extend(_ranges(run.id, scores))
        by_item: dict[str, dict[str, Any]] = defaultdict(dict)
        for result in scores.items:
            if result.scores is not None:
                by_item[result.item_id][result.judge] = result.scores
        complete = [s for _, s in sorted(by_item.items()) if all(j in s for j in judges)]
        if not complete:
            continue
        for metric in METRICS:
            table = np.array([[getattr(s[j], metric) for j in judges] for s in complete])
            means = dict(zip(judges, table.mean(axis=0).tolist(), strict=True))
            estimate = _range_estimate(table, ctx)
            outcome.drafts.append(
                _draft(
                    "judge_range",
                    "",
                    metric,
                    estimate,
                    test="Hotelling's T-squared test that all judges' means are equal, "
                    "paired by item; range interval by cluster bootstrap over items",
                    n_label="items",
                    items=len(complete),
                    words=_say_range(means),
                    run_id=run.id,
                )
            )
    return outcome


def _ranges(run_id: str, scores: RunScores) -> list[JudgeRange]:
    judges = scores.judges
    ranges = []
    for k in sorted({r.k for r in scores.items}):
        at_k = replace(scores, items=[r for r in scores.items if r.k == k])
        agreement = next((row for row in judge_agreement(at_k) if row.criterion == "all"), None)
        kappa = alpha = _NAN
        if agreement is not None:
            if agreement.statistic == "cohen_kappa":
                kappa = agreement.value
            else:
                alpha = agreement.value
        for metric in METRICS:
            by_judge: dict[str, float] = {}
            for judge in judges:
                values = [
                    getattr(r.scores, metric)
                    for r in at_k.items
                    if r.judge == judge and r.scores is not None
                ]
                if values:
                    by_judge[judge] = sum(values) / len(values)
            if len(by_judge) >= 2:
                ranges.append(
                    JudgeRange(
                        metric,
                        k,
                        min(by_judge.values()),
                        max(by_judge.values()),
                        by_judge,
                        kappa,
                        alpha,
                        run_id,
                    )
                )
    return ranges


def _range_estimate(table: np.ndarray, ctx: _Context) -> Estimate:
    """Range of the column means of items x judges, with the test that they are equal."""
    n, judges = table.shape
    means = table.mean(axis=0)
    value = float(means.max() - means.min())
    totals = np.hstack([table, np.ones((n, 1))])
    boot = cluster_bootstrap_totals(totals, resamples=RESAMPLES, seed=ctx.seed)
    boot_means = boot[:, :judges] / boot[:, judges:]
    replicates = boot_means.max(axis=1) - boot_means.min(axis=1)
    estimate = bootstrap_estimate(value, replicates, n, level=ctx.level, clusters=n)
    differences = table[:, 1:] - table[:, :1]
    p = 1.0
    if n >= 2:
        mean_diff = differences.mean(axis=0)
        covariance = np.atleast_2d(np.cov(differences, rowvar=False))
        rank = int(np.linalg.matrix_rank(covariance, tol=1e-12))
        if rank and n > rank:
            # Hotelling's T^2 of the paired differences, read as F(rank, n - rank)
            t2 = n * float(mean_diff @ np.linalg.pinv(covariance, rcond=1e-12) @ mean_diff)
            p = f_sf(t2 * (n - rank) / (rank * (n - 1)), rank, n - rank)
        elif np.any(np.abs(mean_diff) > 0):
            p = 0.0
    return replace(estimate, p=p)


def _leniency(ctx: _Context) -> _Outcome:
    reviewed = [run for run in ctx.runs if run.humans]
    if not reviewed:
        ids = " ".join(run.id for run in ctx.runs)
        return _Outcome(
            cannot_tell=[f"No human review: leniency cannot be measured (skillmix review {ids})."]
        )
    sums: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(dict)
    for run in reviewed:
        for (item, gen_round, judge), rounds in run.rounds.items():
            voted = majority_vote(rounds) or {}
            for criterion, value in voted.items():
                group = _group(criterion)
                human = run.humans.get((item, gen_round, criterion))
                if group is None or human is None:
                    continue
                for key in (group, "all"):
                    cell = sums[(judge, key)].setdefault(item, [0.0, 0.0, 0.0])
                    cell[0] += value
                    cell[1] += human
                    cell[2] += 1
    if not sums:
        return _Outcome(
            cannot_tell=[
                "The human verdicts cover no criterion a judge graded: leniency cannot be measured."
            ]
        )
    outcome = _Outcome()
    for judge in ctx.judges:
        for group in CRITERION_GROUPS:
            per_item = sums.get((judge, group))
            if not per_item:
                continue
            units = int(sum(cell[2] for cell in per_item.values()))
            estimate = _ratio_estimate(
                per_item, lambda t: (t[:, 0] - t[:, 1]) / t[:, 2], units, ctx
            )
            differences = [judged - human for judged, human, _ in per_item.values()]
            estimate = replace(estimate, p=clustered_mcnemar_p(differences))
            outcome.drafts.append(
                _draft(
                    "leniency",
                    judge,
                    group,
                    estimate,
                    test="judge minus human pass rate on the same units: McNemar's test "
                    "clustered by item, interval by cluster bootstrap over items",
                    n_label="reviewed units",
                    items=len(per_item),
                    words=_say_leniency,
                )
            )
    return outcome


def _text_scores(run: _Run) -> dict[tuple[str, int], dict[str, float]]:
    """(item id, generation round) -> judge -> its mean verdict over rounds and criteria."""
    scores: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for (item, gen_round, judge), rounds in run.rounds.items():
        values = [
            float(v) for verdicts in rounds for c, v in verdicts.items() if _group(c) is not None
        ]
        if values:
            scores[(item, gen_round)][judge] = sum(values) / len(values)
    return scores


def _self_preference(ctx: _Context) -> _Outcome:
    runs = ctx.multi_judge_runs
    if not runs:
        return _Outcome()  # said by _judge_range: "One judge: ... no self-preference test"
    students = {ctx.family(run.student) for run in runs}
    if len(students) < 2:
        return _Outcome(
            cannot_tell=[
                f"Students of one model family ({', '.join(sorted(students))}): "
                "self-preference needs runs of students from two families graded by the "
                "same judges."
            ]
        )
    text_scores = {run.id: _text_scores(run) for run in runs}
    outcome = _Outcome()
    for judge in ctx.judges:
        family = ctx.family(judge)
        if family not in students:
            continue
        others = [j for j in ctx.judges if ctx.family(j) != family]
        per_item: dict[str, list[float]] = {}
        texts = 0
        for run in runs:
            own = ctx.family(run.student) == family
            for (item, _), by_judge in text_scores[run.id].items():
                rivals = [by_judge[o] for o in others if o in by_judge]
                if judge not in by_judge or not rivals:
                    continue
                cell = per_item.setdefault(item, [0.0, 0.0, 0.0, 0.0])
                offset = 0 if own else 2
                cell[offset] += by_judge[judge] - sum(rivals) / len(rivals)
                cell[offset + 1] += 1
                texts += 1
        totals = np.array(list(per_item.values())) if per_item else np.zeros((0, 4))
        if not per_item or totals[:, 1].sum() == 0 or totals[:, 3].sum() == 0:
            continue
        estimate = _ratio_estimate(
            per_item, lambda t: t[:, 0] / t[:, 1] - t[:, 2] / t[:, 3], len(per_item), ctx
        )
        outcome.drafts.append(
            _draft(
                "self_preference",
                judge,
                "all",
                estimate,
                test=f"difference in differences over {texts} texts, t test with the "
                "bootstrap standard error; cluster bootstrap over items",
                n_label="items",
                items=len(per_item),
                words=_say_self_preference(family),
            )
        )
    if not outcome.drafts:
        judges = ", ".join(sorted({ctx.family(j) for j in ctx.judges}))
        outcome.cannot_tell.append(
            f"No judge shares a model family with a student (judges: {judges}; students: "
            f"{', '.join(sorted(students))}), or no other-family judge graded the same "
            "texts: self-preference cannot be measured (name model families to group them)."
        )
    return outcome


def _length_bias(ctx: _Context) -> _Outcome:
    runs = [run for run in ctx.runs if run.generation_rounds >= 2]
    if not runs:
        return _Outcome(
            cannot_tell=[
                "One generation per item: the effect of length cannot be told apart from the "
                "item (generate 3 rounds per item)."
            ]
        )
    designs: dict[str, _Design] = defaultdict(_Design)
    for run in runs:
        for g in run.grades:
            words = run.words.get((g["item_id"], g["gen_round"]))
            if words is None or g["verdicts"] is None:
                continue
            design = designs[g["judge"]]
            for criterion, value in g["verdicts"].items():
                if _group(criterion) is not None:
                    stratum = (run.id, g["item_id"], criterion, g["grade_round"])
                    design.add(_met(value), words / WORDS_PER_UNIT, stratum, g["item_id"])
    return _slopes(
        ctx,
        designs,
        check="length_bias",
        test=f"conditional logit by item, criterion and grading round (log-odds per "
        f"{WORDS_PER_UNIT} words): score test and Wald interval, clustered by item",
        words=_say_length,
        nothing="Answers to the same item never differ in length where a verdict differs: "
        "length bias cannot be measured",
    )


def _fixed_order(
    config: Mapping[str, Any], item: ItemRow, gen_round: int, judge: str, grade_round: int
) -> dict[str, int] | None:
    return None


def _default_positions() -> Positions:
    """`protocol.rubric_order.rubric_positions`, or "always fixed" where it does not exist."""
    try:
        from skillmix.protocol.rubric_order import rubric_positions
    except ImportError:
        return _fixed_order
    return rubric_positions


def _rubric_order(ctx: _Context) -> _Outcome:
    designs: dict[str, _Design] = defaultdict(_Design)
    shuffled = 0
    for run in ctx.runs:
        first = next(iter(run.items.values()), None)
        judges = run.judges
        if first is None or not judges or ctx.positions(run.config, first, 0, judges[0], 0) is None:
            continue
        shuffled += 1
        for g in run.grades:
            item = run.items.get(g["item_id"])
            if item is None or g["verdicts"] is None:
                continue
            shown = ctx.positions(run.config, item, g["gen_round"], g["judge"], g["grade_round"])
            last = max(shown.values(), default=0) if shown else 0
            if not shown or last <= 0:
                continue
            design = designs[g["judge"]]
            for criterion, value in g["verdicts"].items():
                if _group(criterion) is None or criterion not in shown:
                    continue
                text: tuple[Any, ...] = (g["gen_round"],) if run.grading_rounds >= 2 else ()
                stratum = (run.id, g["item_id"], criterion, *text)
                design.add(_met(value), shown[criterion] / last, stratum, g["item_id"])
    if not shuffled:
        return _Outcome(
            cannot_tell=[
                "Rubric shown in a fixed order: rubric-order bias cannot be measured "
                "(grade with --rubric-order shuffled)."
            ]
        )
    return _slopes(
        ctx,
        designs,
        check="rubric_order",
        test="conditional logit by text and criterion (log-odds last vs first position): "
        "score test and Wald interval, clustered by item",
        words=_say_rubric,
        nothing="No verdict changed between grading rounds with different rubric orders: "
        "position moved no verdict that can be seen",
    )


def _slopes(
    ctx: _Context,
    designs: Mapping[str, _Design],
    *,
    check: str,
    test: str,
    words: Callable[[Finding], str],
    nothing: str,
) -> _Outcome:
    outcome = _Outcome()
    for judge in ctx.judges:
        design = designs.get(judge)
        slope = _conditional_slope(design, ctx.level) if design else None
        if slope is None:
            if design:
                outcome.cannot_tell.append(f"{nothing} for {judge}.")
            continue
        outcome.drafts.append(
            _draft(
                check,
                judge,
                "all",
                slope.estimate,
                test=test,
                n_label="verdicts",
                items=slope.items,
                words=words,
            )
        )
    return outcome


# --- the audit ----------------------------------------------------------------------------------


def _excludes_null(estimate: Estimate, null: float, alternative: str) -> bool:
    if alternative == "greater":
        return estimate.low > null
    return estimate.low > null or estimate.high < null


def _settle(drafts: Sequence[_Draft], alpha: float) -> list[Finding]:
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
        label = _METRIC_LABELS.get(best.criterion, best.criterion)
        return f"their {label} differs beyond noise, adjusted p={best.p_adjusted:.2g}"
    return None


def _lead(findings: Sequence[Finding], ranges: Sequence[JudgeRange]) -> str:
    why = _disagreement(findings, ranges)
    if why is not None and ranges:
        widest = max(ranges, key=lambda r: r.high - r.low)
        judges = sorted(widest.by_judge, key=widest.by_judge.__getitem__)
        label = _METRIC_LABELS.get(widest.metric, widest.metric)
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
    runs = [_Run(store, row) for row in {row["id"]: row for row in rows}.values()]
    ctx = _Context(runs, level, seed, families or {}, positions or _default_positions())
    outcomes = [
        check(ctx)
        for check in (
            _consistency,
            _judge_range,
            _leniency,
            _self_preference,
            _length_bias,
            _rubric_order,
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
