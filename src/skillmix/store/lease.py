"""One process at a time per run: a lease row with its holder and a heartbeat.

A process that runs a run first takes its lease (a row in `leases`: owner, pid, host,
heartbeat) in one transaction that holds the database's write lock (SQLite) or an advisory
lock on the run (PostgreSQL), so two processes can never both take it. While it holds
the lease a thread refreshes the heartbeat every `HEARTBEAT_S`
seconds. A lease is free when nobody holds it, when its holder is a process on this host
that no longer exists (a SIGKILLed run is resumed at once), or when its heartbeat is older
than `LEASE_TIMEOUT_S` (a holder on another host that died, or a reused pid). Another
process either waits for it or stops with `RunLeased`, which says who holds it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skillmix.store.failures import StoreError

if TYPE_CHECKING:
    from skillmix.store.backend import Database
    from skillmix.store.db import Store

HEARTBEAT_S = 10.0
LEASE_TIMEOUT_S = 60.0
POLL_S = 0.5

LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    acquired REAL NOT NULL,
    heartbeat REAL NOT NULL
);
"""


@dataclass(frozen=True)
class LeaseHolder:
    """The process that holds a run's lease, as its row says."""

    owner: str
    pid: int
    host: str
    acquired: float
    heartbeat: float

    def describe(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.acquired))
        return (
            f"process {self.pid} on {self.host} (since {since}, "
            f"last heartbeat {max(0.0, now - self.heartbeat):.0f} s ago)"
        )

    def alive(self, now: float, host: str, timeout_s: float = LEASE_TIMEOUT_S) -> bool:
        """Whether the holder may still be running: it beats, and on this host it exists."""
        if now - self.heartbeat > timeout_s:
            return False
        return self.host != host or pid_alive(self.pid)


class RunLeased(StoreError):
    """Another live process is running this run."""

    hint = "wait for it to finish or stop it, or pass --wait to start as soon as it ends"

    def __init__(self, run_id: str, holder: LeaseHolder):
        super().__init__(f"run {run_id} is already running in {holder.describe()}")
        self.holder = holder


class LeaseLost(StoreError):
    """This process stopped beating for so long that another one took the run over."""


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (a zombie does not count)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists under another user (EPERM), or we cannot tell
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def holder_of(db: Any, run_id: str) -> LeaseHolder | None:
    """Who holds the lease of `run_id`, as its row says (alive or not), or None."""
    row = db.execute(
        "SELECT owner, pid, host, acquired, heartbeat FROM leases WHERE run_id = ?", (run_id,)
    ).fetchone()
    return None if row is None else LeaseHolder(*row)


def observed_status(db: Any, run_id: str, status: str) -> str:
    """A run's status as a reader should see it: a run recorded as "running" whose lease
    holder is gone (killed, crashed, or never took one) is "interrupted". Writes nothing.

    A store from before leases has no lease table: there its status is shown as stored.
    """
    if status != "running":
        return status
    try:
        holder = holder_of(db, run_id)
    except db.OperationalError:
        return status
    if holder is not None and holder.alive(time.time(), socket.gethostname()):
        return status
    return "interrupted"


class RunLease:
    """The lease of one run for this process: `try_take`, then `release` (see `hold_run`)."""

    def __init__(self, store: Store, run_id: str, *, heartbeat_s: float = HEARTBEAT_S):
        self.store = store
        self.run_id = run_id
        self.host = socket.gethostname()
        self.owner = f"{self.host}/{os.getpid()}/{secrets.token_hex(4)}"
        self.heartbeat_s = heartbeat_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beat_db: Database | None = None

    def try_take(self) -> LeaseHolder | None:
        """Take the lease unless a live process holds it; return that holder, else None."""
        db = self.store.db
        if self._beat_db is None:
            # The heartbeat's connection, opened before the lease is taken and handed to its
            # thread: once the lease is ours, the connection that keeps it exists.
            self._beat_db = db.connect_again()
        now = time.time()

        def take() -> LeaseHolder | None:
            db.lock(f"skillmix-lease:{self.run_id}")
            holder = holder_of(db, self.run_id)
            if holder is not None and holder.owner != self.owner and holder.alive(now, self.host):
                return holder
            db.execute(
                "INSERT OR REPLACE INTO leases (run_id, owner, pid, host, acquired, heartbeat) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (self.run_id, self.owner, os.getpid(), self.host, now, now),
            )
            return None

        holder = self.store._atomic(take)
        if holder is not None:
            return holder
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat,
            args=(self._beat_db,),
            name=f"skillmix-lease-{self.run_id}",
            daemon=True,
        )
        self._thread.start()
        return None

    def release(self) -> None:
        """Stop the heartbeat and give the lease up (a dead holder's is taken over anyway)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()  # it closes its connection
        elif self._beat_db is not None:
            self._beat_db.close()
        self._thread = self._beat_db = None
        with suppress(self.store.db.Error, StoreError):  # a full disk: the row names a
            # process about to end
            self.store.db.execute(
                "DELETE FROM leases WHERE run_id = ? AND owner = ?", (self.run_id, self.owner)
            )

    def _beat(self, db: Database) -> None:
        try:
            while not self._stop.wait(self.heartbeat_s):
                cur = db.execute(
                    "UPDATE leases SET heartbeat = ? WHERE run_id = ? AND owner = ?",
                    (time.time(), self.run_id, self.owner),
                )
                if cur.rowcount == 0:
                    holder = holder_of(db, self.run_id)
                    taken_by = holder.describe() if holder else "nobody"
                    self.store.fail(
                        LeaseLost(
                            f"run {self.run_id} was taken over by {taken_by}: this process "
                            f"sent no heartbeat for over {LEASE_TIMEOUT_S:.0f} s"
                        )
                    )
                    return
        except (db.Error, StoreError) as err:
            self.store.fail(err)
        finally:
            db.close()


@asynccontextmanager
async def hold_run(
    store: Store,
    run_id: str,
    *,
    wait: bool = False,
    on_wait: Callable[[str], None] | None = None,
) -> AsyncIterator[None]:
    """Hold the lease of `run_id` for the block.

    When another live process holds it: raise `RunLeased`, or with `wait` tell `on_wait`
    once who holds it and take it as soon as it is free.
    """
    lease = RunLease(store, run_id)
    told = False
    try:
        while (holder := lease.try_take()) is not None:
            if not wait:
                raise RunLeased(run_id, holder)
            if not told and on_wait is not None:
                on_wait(f"run {run_id} is running in {holder.describe()}; waiting for it to finish")
            told = True
            await asyncio.sleep(POLL_S)
        yield
    finally:
        lease.release()  # also closes the heartbeat's connection of a lease never taken
