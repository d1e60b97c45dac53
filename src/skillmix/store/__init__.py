"""The run database."""

from skillmix.store.db import Store, StoreError
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
]
