"""The runtime every pipeline runs on: model calls through one cache and budget, one worker
pool (fail fast, budget pause, seeds) and one way to report progress.

Below `protocol/`: the evaluation engine, the data pipelines and the analytics all build
on it, and it knows none of them.
"""

from skillmix.runtime.calls import BudgetExhausted, CallCache, CallStats, RoleUsage, usd
from skillmix.runtime.pool import (
    BudgetReached,
    RunError,
    WorkerPool,
    derive_seed,
    gather_all,
    gather_fail_fast,
    worker_count,
)
from skillmix.runtime.progress import Progress, ProgressBars

__all__ = [
    "BudgetExhausted",
    "BudgetReached",
    "CallCache",
    "CallStats",
    "Progress",
    "ProgressBars",
    "RoleUsage",
    "RunError",
    "WorkerPool",
    "derive_seed",
    "gather_all",
    "gather_fail_fast",
    "usd",
    "worker_count",
]
