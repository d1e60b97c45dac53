"""The spending limit of a job (`--max-cost`), checked the same way by every pipeline."""

from __future__ import annotations

import math

from skillmix.errors import InputError


def check_max_cost(value: float | None) -> float | None:
    """A spending limit in USD: None (no limit) or a finite number >= 0.

    NaN compares false with every cost, so it would switch the budget off.
    """
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise InputError(
            f"--max-cost must be a number of USD >= 0, got {value}",
            hint="leave it out for no limit",
        )
    return value
