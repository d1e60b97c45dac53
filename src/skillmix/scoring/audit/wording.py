"""Each finding's verdict in plain words."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from skillmix.scoring.audit.common import METRIC_LABELS, MIN_ITEMS, WORDS_PER_UNIT
from skillmix.scoring.audit.findings import Finding
from skillmix.scoring.stats import Estimate


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
    """What a verdict adds when its check was not tested: "; too few items ..."; else ""."""
    return f"; too few items to test (fewer than {MIN_ITEMS})" if not f.tested else ""


def say_consistency(f: Finding) -> str:
    e = f.estimate
    share = f"{_percent(e)} of verdict pairs differ between grading rounds {_sample(f)}"
    if f.flagged:
        return f"inconsistent: {share}"
    if not f.tested:
        return f"{share}{_untested(f)}"
    if e.high <= f.null:
        return f"consistent: {share}"
    return f"not shown to flip more than {f.null:.0%}: {share}"


def say_leniency(f: Finding) -> str:
    diff = f"{_signed(f.estimate)} against human verdicts {_sample(f)}"
    if f.flagged:
        return f"{'lenient' if f.estimate.value > 0 else 'strict'} by {diff}"
    return f"no evidence of leniency: {diff}{_untested(f)}"


def say_self_preference(family: str) -> Callable[[Finding], str]:
    def say(f: Finding) -> str:
        diff = f"{_signed(f.estimate)} relative to other judges {_sample(f)}"
        if f.flagged:
            verb = "favours" if f.estimate.value > 0 else "is harder on"
            return f"{verb} texts of its own family ({family}) by {diff}"
        return f"no evidence of self-preference on {family} texts: {diff}{_untested(f)}"

    return say


def say_length(f: Finding) -> str:
    odds = f"odds of a pass {_odds(f.estimate)} per {WORDS_PER_UNIT} words {_sample(f)}"
    if f.flagged:
        return f"favours {'longer' if f.estimate.value > 0 else 'shorter'} answers: {odds}"
    return f"no evidence of length bias: {odds}{_untested(f)}"


def say_rubric(f: Finding) -> str:
    odds = f"odds of a pass {_odds(f.estimate)} shown last rather than first {_sample(f)}"
    if f.flagged:
        where = "later" if f.estimate.value > 0 else "earlier"
        return f"passes criteria shown {where} in the rubric more often: {odds}"
    return f"no evidence that rubric position matters: {odds}{_untested(f)}"


def say_range(means: Mapping[str, float]) -> Callable[[Finding], str]:
    def say(f: Finding) -> str:
        low, high = min(means, key=means.__getitem__), max(means, key=means.__getitem__)
        label = METRIC_LABELS.get(f.criterion, f.criterion)
        spread = (
            f"{label} {means[low]:.2f} ({low}) to {means[high]:.2f} ({high}), "
            f"range {f.estimate.value:.2f} [{f.estimate.low:.2f}, {f.estimate.high:.2f}] "
            f"{_sample(f)}"
        )
        if f.flagged:
            return f"judges differ: {spread}"
        return f"judges agree within noise: {spread}{_untested(f)}"

    return say
