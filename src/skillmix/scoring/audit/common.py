"""The audit's checks, thresholds and shared names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from skillmix.store import ItemRow

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

NAN = float("nan")
METRIC_LABELS = {
    "full_marks": "full marks",
    "all_skills": "all skills",
    "skill_fraction": "skill fraction",
}
