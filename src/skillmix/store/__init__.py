"""The run database."""

from skillmix.store.db import CallRecord, Store, StoreError

__all__ = ["CallRecord", "Store", "StoreError"]
