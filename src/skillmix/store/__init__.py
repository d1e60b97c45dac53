"""The run database."""

from skillmix.store.db import EVALUATION, Store, StoreError, run_kind
from skillmix.store.failures import StoreNotFound, StoreWriteError
from skillmix.store.lease import RunLeased
from skillmix.store.rows import (
    CacheStatsRow,
    CallRecord,
    GenerationRow,
    GradeRow,
    HumanVerdictRow,
    ItemRow,
    ReferencePointRow,
    RunRow,
    UsageRow,
)

__all__ = [
    "EVALUATION",
    "CacheStatsRow",
    "CallRecord",
    "GenerationRow",
    "GradeRow",
    "HumanVerdictRow",
    "ItemRow",
    "ReferencePointRow",
    "RunLeased",
    "RunRow",
    "Store",
    "StoreError",
    "StoreNotFound",
    "StoreWriteError",
    "UsageRow",
    "run_kind",
]
