"""The run database."""

from skillmix.store.db import CallRecord, Store, StoreError
from skillmix.store.failures import StoreNotFound, StoreWriteError
from skillmix.store.lease import RunLeased

__all__ = ["CallRecord", "RunLeased", "Store", "StoreError", "StoreNotFound", "StoreWriteError"]
