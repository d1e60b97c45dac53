"""The run store: runs, items, every model call, answers and grades, in one database.

The database is one SQLite file (WAL) by default, or a PostgreSQL database shared by a team
(`--store postgresql://user@host/db`); `backend` keeps the two apart, and everything here
works the same on both.

Every write commits at once (inside an event loop: once per loop iteration, see
`group_commits`), so a process killed at any moment loses at most the calls in flight.
`calls` is content-addressed by the request key: it is both the log of every model request
with its settings and the response cache that makes re-runs free.

Nothing paid for is dropped silently: a write the store cannot take (a full disk) stops
the run with `StoreWriteError`, and the writes not yet committed go to a side file that the
next writer stores first (see `journal`). Text is stored as given, except lone surrogates,
which are repaired (`text`). A run is held by one process at a time (see `lease`).
Reads return the typed rows of `rows`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, TypeVar, cast

import orjson

from skillmix.catalog.model import Catalog, Skill, Topic
from skillmix.store import journal
from skillmix.store.backend import (
    RECONNECT_TRIES,
    ConnectionLost,
    Cursor,
    Database,
    SQLiteDatabase,
    is_postgres,
    masked,
)
from skillmix.store.failures import (
    StoreError,
    StoreWriteError,
    WriteFailure,
    describe_failure,
)
from skillmix.store.kept import GENERATION_COLUMNS, GRADE_COLUMNS, ITEM_COLUMNS, KeptRows
from skillmix.store.lease import LEASE_SCHEMA, hold_run, observed_status
from skillmix.store.opening import (
    OPEN_WAIT_S,
    connect_read_only,
    connect_sqlite,
    locked,
    open_error,
    open_postgres,
    read_only_error,
    side_base,
    writable,
)
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
from skillmix.store.schema import (
    SCHEMA,
    SCHEMA_VERSION,
    add_missing_columns,
    check_version,
    set_version,
)
from skillmix.store.text import has_lone_surrogates, repair_text

T = TypeVar("T")
RowT = TypeVar("RowT", bound=Mapping[str, Any])  # a row as read, or as decoded
# Keys per `IN (...)` query: well under the least limit on parameters (999, older SQLite).
_KEYS_PER_QUERY = 500

_CALL_INSERT = "INSERT OR IGNORE INTO calls "
_ITEM_INSERT = (
    f"INSERT OR IGNORE INTO items ({', '.join(ITEM_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(ITEM_COLUMNS))})"
)
_GENERATION_INSERT = (
    f"INSERT OR REPLACE INTO generations ({', '.join(GENERATION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(GENERATION_COLUMNS))})"
)
_GRADE_INSERT = (
    f"INSERT OR REPLACE INTO grades ({', '.join(GRADE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(GRADE_COLUMNS))})"
)


class Store:
    """A run database. Use one instance per process; it is not shared across threads.

    `read_only=True` opens an existing store for reading only: it never creates a file or
    folder, and it also works on a read-only file or mount. Otherwise the store (and its
    folder) is created when missing, and writes that an earlier run set aside are stored.
    """

    def __init__(self, path: str | Path, *, read_only: bool = False):
        location = str(path)
        self.url = location if is_postgres(location) else None
        # For PostgreSQL, `path` is where this machine keeps the store's side file.
        self.path = Path(location) if self.url is None else side_base(location)
        self.location = str(self.path) if self.url is None else masked(location)
        self.read_only = read_only
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._pending_calls: dict[str, CallRecord] = {}
        # Calls another process stored first, by key, until `answer_for` hands them over;
        # and SQLite's data_version when this connection last looked (see `_others_wrote`).
        self._stored_first: dict[str, CallRecord] = {}
        self._data_version: int | None = None
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failed: Exception | None = None  # what stopped the writes, see raise_if_failed
        self._kept: KeptRows | None = None  # see keep_rows
        self.repaired_texts = 0  # values whose lone surrogates were replaced before storing
        self.replayed = 0  # writes stored from the side file of an earlier run
        self.replay_dropped = 0  # lines of that side file that could not be stored
        self.db: Database
        if self.url is not None:
            self.db = open_postgres(self.url, read_only=read_only)
            if not read_only:
                self._migrate()
                self._replay_side_file()
            return
        if read_only:
            self.db = SQLiteDatabase(connect_read_only(self.path))
            return
        if self.path.exists() and not writable(self.path):
            raise read_only_error(self.path)
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open_sqlite()
        self._replay_side_file()

    def _open_sqlite(self) -> None:
        """Connect, switch to WAL and bring the schema up to date, again while another
        process is doing the same to a new store.

        Two processes opening a store that does not exist yet (two runs started together)
        both create it. SQLite answers one of them "database is locked" at once, without
        waiting, where waiting could deadlock (both hold a read lock and want to write):
        that one closes its connection and starts again, for as long as a locked store
        is waited for anyway.
        """
        deadline = time.monotonic() + OPEN_WAIT_S
        pause = 0.005
        while True:
            conn = None
            try:
                conn = connect_sqlite(self.path)
                conn.execute("PRAGMA journal_mode=WAL")
                # Each write commits at once. With WAL and synchronous=OFF a commit is a
                # write() to the OS without fsync: it survives the process being killed
                # (even SIGKILL), not a power cut, and costs microseconds, not a disk flush.
                conn.execute("PRAGMA synchronous=OFF")
                conn.execute("PRAGMA foreign_keys=ON")
                # The lease heartbeat's connection: opened by the thread that takes the
                # lease, then used by the heartbeat's own thread.
                self.db = SQLiteDatabase(
                    conn, lambda: connect_sqlite(self.path, check_same_thread=False)
                )
                self._migrate()
                return
            except (sqlite3.Error, StoreWriteError) as err:
                if conn is not None:
                    conn.close()
                if not locked(err) or time.monotonic() + pause > deadline:
                    if isinstance(err, StoreWriteError):
                        raise
                    raise open_error(err, self.path) from err
            time.sleep(pause)
            pause = min(2 * pause, 0.25)

    def _migrate(self) -> None:
        """Create the tables, or bring an older store's up to this schema, and record it.

        The version is recorded in the database (SQLite's user_version, a one-row table on
        PostgreSQL); a store written by a newer skillmix is refused rather than changed.
        """
        version = check_version(self.db, self.location)

        def upgrade() -> None:
            if version < SCHEMA_VERSION:
                add_missing_columns(self.db)
                set_version(self.db, SCHEMA_VERSION)

        if self.db.dialect == "sqlite":
            # Tables added since (IF NOT EXISTS), outside a transaction: SQLite's
            # executescript commits one first.
            self.db.executescript(SCHEMA + LEASE_SCHEMA)
            self._atomic(upgrade)
            return

        def migrate() -> None:
            self.db.lock("skillmix-schema")  # two first opens of a new database at once
            self.db.executescript(SCHEMA + LEASE_SCHEMA)
            upgrade()

        self._atomic(migrate)

    @property
    def backend(self) -> str:
        """ "sqlite" or "postgresql"."""
        return self.db.dialect

    @property
    def schema_version(self) -> int:
        return check_version(self.db, self.location)

    def size_bytes(self) -> int:
        """What the store takes: the file and its write-ahead log, or the database."""
        if self.db.dialect == "sqlite":
            files = (self.path, Path(f"{self.path}-wal"))
            return sum(f.stat().st_size for f in files if f.exists())
        return int(self.db.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    @property
    def address(self) -> str:
        """What opens this store again: its file, or its PostgreSQL URL with the password
        (not for printing: `location` is)."""
        return self.url or str(self.path.absolute())

    def close(self) -> None:
        if not self.read_only:
            self._settle()
        self._kept = None
        self.db.close()

    # --- group commit ---------------------------------------------------------------------

    @contextmanager
    def group_commits(self) -> Iterator[None]:
        """Inside a running event loop, commit the writes of one loop iteration together.

        Every write made while tasks run in one iteration of the loop is committed in one
        transaction at the start of the next: one commit instead of one per write, with a
        window of a single loop iteration (the calls then in flight are at risk anyway).

        A commit that fails (a full disk) stops the writes: later ones are kept in memory,
        `failed` turns true (`CallCache` then sends nothing new), and on leaving the block
        whatever is still uncommitted is written to the side file; leaving it normally then
        raises the `StoreWriteError`.
        """
        self._loop = asyncio.get_running_loop()
        try:
            yield
        except BaseException:
            self._loop = None
            self._settle()
            raise
        self._loop = None
        self._settle()
        self.raise_if_failed()

    def _write(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...]:
        """Write now, or with the loop iteration's group commit inside `group_commits`;
        returns the values written (lone surrogates repaired).

        Outside it, a write the store cannot take goes to the side file and raises.
        """
        if any(isinstance(p, str) and has_lone_surrogates(p) for p in params):
            self.repaired_texts += 1
            params = tuple(repair_text(p) if isinstance(p, str) else p for p in params)
        if self._loop is not None:
            self._pending.append((sql, params))
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self._loop.call_soon(self._flush_soon)
            return params
        try:
            self._execute(sql, params)
        except StoreWriteError as err:
            self.fail(err)
            self._pending.append((sql, params))
            self._settle()
            raise StoreWriteError(err.failure) from err
        return params

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> Cursor:
        """One statement outside a group commit; a store problem is a StoreWriteError."""
        try:
            return self.db.execute(sql, params)
        except Exception as err:
            failure = self._write_failure(err)
            if failure is None:
                raise
            raise StoreWriteError(failure) from err

    def flush(self) -> None:
        """Commit every pending write in one transaction, or raise what stops the writes."""
        self._flush_scheduled = False
        if self._failed is None:
            self._commit_pending()
        self.raise_if_failed()

    async def committed(self) -> None:
        """Wait until the writes pending in this turn of the loop are committed: their
        group commit was scheduled before this task yields, so it runs first. A caller that
        sends nothing before this returns never has a new request out while an answer it
        received is not yet stored (a SIGKILL then loses no answer it had)."""
        if self._flush_scheduled:
            await asyncio.sleep(0)

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        if self._failed is None:
            self._commit_pending()

    def _commit_pending(self) -> None:
        """Commit the pending writes; on failure keep them and record why (never raises).

        A write the database refuses on its own (a bug, not the disk) does not take the
        others down with it: they are committed one by one and the refused one is reported.
        """
        if not self._pending:
            return

        def commit() -> None:
            self._find_stored_first()
            for sql, rows in _by_statement(self._pending).items():
                self.db.executemany(sql, rows)

        try:
            self._atomic(commit)
        except StoreError as err:
            self.fail(err)
            return
        except Exception:
            refused = self._commit_one_by_one()
            if refused is not None:
                self.fail(refused)
            return
        self._pending = []
        self._pending_calls.clear()

    def _commit_one_by_one(self) -> Exception | None:
        refused: list[tuple[str, Exception]] = []

        def commit() -> None:
            refused.clear()
            self._find_stored_first()
            for sql, params in self._pending:
                # A savepoint per write: PostgreSQL aborts the whole transaction otherwise.
                self.db.execute("SAVEPOINT one_write")
                try:
                    self.db.execute(sql, params)
                except self.db.refused as err:
                    self.db.execute("ROLLBACK TO SAVEPOINT one_write")
                    refused.append((sql, err))
                self.db.execute("RELEASE SAVEPOINT one_write")

        try:
            self._atomic(commit)
        except Exception as err:  # kept as the reason the writes stopped
            return err
        self._pending = []
        self._pending_calls.clear()
        if not refused:
            return None
        first_sql, first_err = refused[0]
        return RuntimeError(
            f"the store refused {len(refused)} write(s) (a bug): "
            f"{first_sql.split('(')[0]}: {first_err}"
        )

    def _settle(self) -> None:
        """Commit what is pending; what still cannot be committed goes to the side file."""
        if not self.db.in_transaction:  # (a caller's open transaction cannot take them)
            self._commit_pending()  # once more: space may have been freed meanwhile
        if not self._pending:
            return
        failure = self._failed.failure if isinstance(self._failed, StoreWriteError) else None
        answers = sum(sql.startswith(_CALL_INSERT) for sql, _ in self._pending)
        target = journal.side_file(self.path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)  # a PostgreSQL store's cache folder
            journal.append_writes(target, self._pending)
        except OSError as err:
            if failure is not None:
                failure.lost_answers = answers
                failure.lost_reason = f"{target}: {err.strerror or err}"
        else:
            if failure is not None:
                failure.kept_rows = len(self._pending)
                failure.kept_answers = answers
                failure.side_file = target
        self._pending = []
        self._pending_calls.clear()

    def _replay_side_file(self) -> None:
        """Store the writes an earlier run set aside, before anything else is written."""
        try:
            with journal.taken(journal.side_file(self.path)) as (writes, unreadable):
                self.replay_dropped = unreadable
                if writes:
                    self._pending = list(writes)
                    self._commit_pending()
                    self._pending = []  # on a store failure they stay in the side file
                    if isinstance(self._failed, StoreError):
                        self.raise_if_failed()
                    if self._failed is not None:  # writes SQLite refuses can never be stored
                        self.replay_dropped += 1
                        self._failed = None
                    self.replayed = len(writes)
        except OSError as err:
            raise StoreError(
                f"cannot read {journal.side_file(self.path)}: {err.strerror or err}",
                hint="it holds answers an earlier run could not store; make it readable",
            ) from err

    @property
    def failed(self) -> bool:
        """Whether a write failed: the run must stop, and must not be marked done."""
        return self._failed is not None

    def fail(self, err: Exception) -> None:
        """Record why writes stopped (the first reason counts); later writes are kept aside."""
        if self._failed is not None:
            return
        if isinstance(err, StoreError):
            self._failed = err
            return
        failure = self._write_failure(err)
        self._failed = err if failure is None else StoreWriteError(failure)

    def raise_if_failed(self) -> None:
        """Raise what stopped the writes, if anything did."""
        if isinstance(self._failed, StoreWriteError):
            raise StoreWriteError(self._failed.failure)
        if self._failed is not None:
            raise self._failed

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction; a store problem (full disk, read-only) is a StoreWriteError.

        On PostgreSQL a dropped connection ends it with `ConnectionLost`: see `_atomic`.
        """
        db = self.db
        try:
            db.begin()
            try:
                yield
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may have rolled back already (full disk)
                    with suppress(db.Error, ConnectionLost):
                        db.execute("ROLLBACK")
                raise
        except Exception as err:
            failure = self._write_failure(err)
            if failure is None:
                raise
            raise StoreWriteError(failure) from err

    def _write_failure(self, err: BaseException) -> WriteFailure | None:
        """What a failed write means for the user (full disk, read-only, a server error);
        None for a problem that is not the store's (a bug, data the database refuses)."""
        if isinstance(err, OSError) or (
            self.db.dialect == "sqlite" and isinstance(err, sqlite3.OperationalError)
        ):
            return describe_failure(err, self.path)
        if isinstance(err, self.db.Error) and not isinstance(err, self.db.refused):
            # PostgreSQL: the server's own words say why (read-only, disk full, ...).
            return WriteFailure(self.location, "cannot write", str(err).strip().splitlines()[0])
        return None

    def _atomic(self, body: Callable[[], T]) -> T:
        """`body` in one transaction, done again on a new connection if the connection
        dropped on the way (PostgreSQL; every write here is an upsert, so that is safe)."""
        for attempt in range(RECONNECT_TRIES):
            try:
                with self.transaction():
                    return body()
            except ConnectionLost:
                if attempt + 1 == RECONNECT_TRIES:
                    raise
        raise AssertionError("unreachable")

    # --- the run lease ----------------------------------------------------------------------

    def lease(
        self, run_id: str, *, wait: bool = False, on_wait: Callable[[str], None] | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Hold `run_id` for this process for the block (`async with`); see `lease.hold_run`.

        Raises `RunLeased` naming the process that holds it, or with `wait` waits for it.
        """
        return hold_run(self, run_id, wait=wait, on_wait=on_wait)

    # --- catalogs -------------------------------------------------------------------------

    def put_catalog(self, catalog: Catalog) -> None:
        content = json.dumps(
            {
                "skills": [s.to_dict() for s in catalog.skills],
                "topics": [t.to_dict() for t in catalog.topics],
            },
            ensure_ascii=False,
        )
        self._execute(
            "INSERT OR IGNORE INTO catalogs (hash, name, version, content) VALUES (?, ?, ?, ?)",
            (catalog.content_hash, catalog.name, catalog.version, content),
        )

    def get_catalog(self, content_hash: str) -> Catalog:
        row = self.db.execute("SELECT * FROM catalogs WHERE hash = ?", (content_hash,)).fetchone()
        if row is None:
            raise StoreError(f"catalog {content_hash[:12]} is not in {self.location}")
        content = _loads(row["content"])
        skills = tuple(Skill(**{**s, "aliases": tuple(s["aliases"])}) for s in content["skills"])
        topics = tuple(Topic(**t) for t in content["topics"])
        return Catalog(name=row["name"], skills=skills, topics=topics, version=row["version"])

    # --- runs and items --------------------------------------------------------------------

    def ensure_run(
        self, run_id: str, config: dict[str, Any], catalog_hash: str, template_version: str
    ) -> bool:
        """Create the run if it is new; return True when it already existed (a resume)."""
        now = time.time()
        cur = self._execute(
            "INSERT OR IGNORE INTO runs (id, created, updated, status, catalog_hash, "
            "template_version, config) VALUES (?, ?, ?, 'running', ?, ?, ?)",
            (run_id, now, now, catalog_hash, template_version, json.dumps(config, sort_keys=True)),
        )
        created = cur.rowcount == 1
        if created and (kept := self._keeping(run_id)) is not None:
            # A new run has no items (they need it), and unless a ledger of an earlier run
            # of this id was left behind, no ledger either: what is kept will be all.
            stale = self.db.execute(
                "SELECT 1 FROM run_calls WHERE run_id = ? LIMIT 1", (run_id,)
            ).fetchone()
            kept.created = stale is None
        return not created

    def set_run_status(self, run_id: str, status: str) -> None:
        """Record how a run ended. It is never marked done while a write is missing: once a
        write failed, "done" raises that failure, and other statuses are recorded if the
        store still takes them (the failure itself is raised by whoever stopped the run).
        """
        sql = "UPDATE runs SET status = ?, updated = ? WHERE id = ?"
        if self._failed is not None and status != "done":
            with suppress(self.db.Error, StoreError):
                self.db.execute(sql, (status, time.time(), run_id))
            return
        self.flush()
        self._execute(sql, (status, time.time(), run_id))

    def set_running(self, run_id: str) -> None:
        """Mark a run as running as it starts or resumes, unless it is done: a done run that
        is run again has nothing left to do, and a report that another process builds of
        it meanwhile (the one that just finished it) must not see it as running again."""
        self.flush()
        self._execute(
            "UPDATE runs SET status = 'running', updated = ? WHERE id = ? AND status != 'done'",
            (time.time(), run_id),
        )

    def get_run(self, run_id: str) -> RunRow:
        """The run `run_id` (or the one run whose id starts with it), as `list_runs` shows it."""
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            matches = self.db.execute(
                "SELECT * FROM runs WHERE id LIKE ? ORDER BY created", (run_id + "%",)
            ).fetchall()
            if len(matches) > 1:
                raise StoreError(
                    f"'{run_id}' is the start of {len(matches)} run ids in {self.location} "
                    f"({', '.join(r['id'] for r in matches)}); give more of the id"
                )
            if len(matches) != 1:
                known = ", ".join(r["id"] for r in self.list_runs()) or "none"
                raise StoreError(f"no run '{run_id}' in {self.location} (runs: {known})")
            row = matches[0]
        return self._run_record(row)

    def list_runs(self, kind: str | None = None) -> list[RunRow]:
        """Every run (of `kind` only, when given: see `run_kind`), oldest first. A "running"
        run whose process is gone reads as "interrupted" (see `lease.observed_status`)."""
        rows = self.db.execute("SELECT * FROM runs ORDER BY created").fetchall()
        runs = [self._run_record(r) for r in rows]
        return runs if kind is None else [r for r in runs if run_kind(r) == kind]

    def _run_record(self, row: Any) -> RunRow:
        status = observed_status(self.db, row["id"], row["status"])
        return cast(RunRow, {**dict(row), "status": status, "config": _loads(row["config"])})

    def put_items(
        self, run_id: str, items: list[tuple[int, str, int, tuple[str, ...], str]]
    ) -> None:
        rows = [(run_id, iid, pos, k, json.dumps(list(s)), t) for pos, iid, k, s, t in items]
        self._atomic(lambda: self.db.executemany(_ITEM_INSERT, rows))
        if (kept := self._keeping(run_id)) is not None:
            for row in rows:
                kept.item(item_row(dict(zip(ITEM_COLUMNS, row, strict=True))))

    def items(self, run_id: str, limit: int | None = None) -> list[ItemRow]:
        """The run's items by k and position; the first `limit` of them when given."""
        rows = _records(
            self.db.execute(
                "SELECT * FROM items WHERE run_id = ? ORDER BY k, position"
                + ("" if limit is None else " LIMIT ?"),
                (run_id,) if limit is None else (run_id, limit),
            )
        )
        return [item_row(r) for r in rows]

    # --- calls (log and cache) ---------------------------------------------------------------

    def get_call(self, key: str) -> CallRecord | None:
        pending = self._pending_calls.get(key)
        if pending is not None:
            return pending
        row = self.db.execute("SELECT * FROM calls WHERE key = ?", (key,)).fetchone()
        return None if row is None else _call_record(row)

    def answer_for(self, key: str, mine: CallRecord) -> CallRecord:
        """The call the store keeps for `key` once `mine` was written (`put_call`, then
        `committed`): `mine`, or the answer another process stored first (the first stored
        counts, so that every run sharing the store uses the same answer)."""
        if self._loop is None:  # written at once (outside `group_commits`): read it back
            stored = self.get_call(key)
            if stored is None:  # not stored: the write failed
                return mine
            if self._kept is not None:
                self._kept.stored_first(stored)
            return stored
        return self._stored_first.pop(key, mine)

    def _find_stored_first(self) -> None:
        """Inside a group commit's transaction, before its writes: the pending calls that
        another process stored meanwhile, for `answer_for` (and the rows kept). One query
        for the whole commit, and none on SQLite when no other connection has committed
        since this one last looked: a look per answer cost more than its write."""
        if not self._pending_calls or not self._others_wrote():
            return
        for chunk in _chunks(list(self._pending_calls)):
            rows = self.db.execute(
                f"SELECT * FROM calls WHERE key IN ({', '.join('?' * len(chunk))})", chunk
            ).fetchall()
            for row in rows:
                stored = _call_record(row)
                self._stored_first[stored.key] = stored
                if self._kept is not None:
                    self._kept.stored_first(stored)

    def _others_wrote(self) -> bool:
        """Whether another connection may have committed since this one last asked:
        SQLite's data_version changes exactly then; PostgreSQL cannot tell (True)."""
        if self.db.dialect != "sqlite":
            return True
        version = int(self.db.execute("PRAGMA data_version").fetchone()[0])
        changed = version != self._data_version
        self._data_version = version
        return changed

    def call_texts(
        self, run_id: str, have: Container[str] = frozenset()
    ) -> dict[str, tuple[str, str]]:
        """Key -> (the last message's text, the response) of every call the run used.

        One query for the whole run (a report shows the prompt and reply of every item), with
        the last message picked out by the database rather than decoding each conversation
        here. A call the run used without a `run_calls` row is not in it: read it with
        `get_call`.

        `have`: keys the caller read before (a stored call never changes), left out; the
        others are read by key, so that a reader following a run reads each text once.
        """
        if not have:
            rows = self.db.execute(
                f"SELECT c.key, {self._last_message('c.messages')}, c.response "
                "FROM run_calls rc JOIN calls c ON c.key = rc.key WHERE rc.run_id = ?",
                (run_id,),
            )
            texts = {key: (prompt or "", response) for key, prompt, response in rows}
        else:
            used = self.db.execute("SELECT key FROM run_calls WHERE run_id = ?", (run_id,))
            new = [key for (key,) in used if key not in have]
            texts = {}
            for chunk in _chunks(new):
                rows = self.db.execute(
                    f"SELECT key, {self._last_message('messages')}, response FROM calls "
                    f"WHERE key IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
                texts.update((key, (prompt or "", response)) for key, prompt, response in rows)
        for key, record in self._pending_calls.items():
            if key not in have:
                texts.setdefault(key, (record.messages[-1]["content"], record.response))
        return texts

    def call_texts_after(
        self, run_id: str, row: int
    ) -> tuple[dict[str, tuple[str, str]], int] | None:
        """The texts (as `call_texts`) of the calls the run's ledger committed after its row
        `row` (0 at first), and the last row read: how a reader following a run on SQLite,
        which numbers rows as they come, reads only what is new. None on PostgreSQL, which
        does not: there, `call_texts(run_id, have=...)`.

        A shortcut for a reader, not a complete list (SQLite may give a new row the number
        of a deleted last one): read what it missed with `call_texts(run_id, have=...)`.
        """
        if self.db.dialect != "sqlite":
            return None
        rows = self.db.execute(
            f"SELECT rc.rowid, c.key, {self._last_message('c.messages')}, c.response "
            "FROM run_calls rc JOIN calls c ON c.key = rc.key "
            "WHERE rc.run_id = ? AND rc.rowid > ?",
            (run_id, row),
        ).fetchall()
        texts = {key: (prompt or "", response) for _, key, prompt, response in rows}
        return texts, max((r[0] for r in rows), default=row)

    def _last_message(self, column: str) -> str:
        """SQL for the text of the last message in a `messages` column."""
        if self.db.dialect == "sqlite":
            return f"json_extract({column}, '$[#-1].content')"
        return f"({column}::jsonb -> -1 ->> 'content')"

    def put_call(self, record: CallRecord) -> None:
        """Store a model call; the first answer stored for a key is the one that counts:
        `answer_for` says which, once the write is committed."""
        if self._loop is not None:
            self._pending_calls[record.key] = record
        self._write(
            _CALL_INSERT + "(key, provider, model, role, messages, settings, "
            "response, prompt_tokens, completion_tokens, structured, finish_reason, latency_s, "
            "created, raw_response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.key,
                record.provider,
                record.model,
                record.role,
                record.messages_json or json.dumps(record.messages, ensure_ascii=False),
                record.settings_json or json.dumps(record.settings, sort_keys=True),
                record.response,
                record.prompt_tokens,
                record.completion_tokens,
                record.structured,
                record.finish_reason,
                record.latency_s,
                time.time(),
                record.raw_response,
            ),
        )

    def count_calls(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def record_use(
        self, run_id: str, key: str, role: str, sent: bool, call: CallRecord | None = None
    ) -> None:
        """The ledger: this run used this call, paid for it (sent) or from the cache.
        `call`: the call as stored, when the caller holds it (for `keep_rows`)."""
        self._write(
            "INSERT INTO run_calls (run_id, key, role, sent) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET sent = "
            "CASE WHEN excluded.sent > run_calls.sent THEN excluded.sent ELSE run_calls.sent END",
            (run_id, key, role, int(sent)),
        )
        if (kept := self._keeping(run_id)) is not None:
            kept.use(key, role, sent, call)

    def usage(self, run_id: str) -> list[UsageRow]:
        """Calls and tokens per role, provider and model for one run (paid and reused)."""
        kept = self.kept_usage(run_id)
        if kept is not None:
            return kept
        rows = _records(
            self.db.execute(
                "SELECT rc.role, c.provider, c.model, rc.sent, COUNT(*) AS calls, "
                "SUM(c.prompt_tokens) AS prompt_tokens, "
                "SUM(c.completion_tokens) AS completion_tokens "
                "FROM run_calls rc JOIN calls c ON c.key = rc.key WHERE rc.run_id = ? "
                "GROUP BY rc.role, c.provider, c.model, rc.sent ORDER BY rc.role, c.model, rc.sent",
                (run_id,),
            )
        )
        return cast(list[UsageRow], rows)

    # --- the shared response cache ---------------------------------------------------------

    def cache_stats(self) -> list[CacheStatsRow]:
        rows = _records(
            self.db.execute(
                "SELECT provider, model, role, COUNT(*) AS calls, "
                "SUM(prompt_tokens) AS prompt_tokens, "
                "SUM(completion_tokens) AS completion_tokens, "
                "SUM(length(messages) + length(response)) AS bytes, "
                "MIN(created) AS oldest, MAX(created) AS newest, "
                "SUM(CASE WHEN key NOT IN (SELECT key FROM run_calls) THEN 1 ELSE 0 END) "
                "AS unreferenced "
                "FROM calls GROUP BY provider, model, role ORDER BY provider, model, role"
            )
        )
        return cast(list[CacheStatsRow], rows)

    def prune_cache(
        self,
        *,
        older_than_s: float | None = None,
        model: str | None = None,
        unreferenced_only: bool = False,
        dry_run: bool = False,
    ) -> int:
        """Delete cached calls matching every given condition; return how many (would) go.

        Calls that a stored generation or grade points to are kept unless `model` names
        them explicitly, so pruning never breaks `skillmix show` for a kept run.
        """
        conditions = ["1 = 1"]
        params: list[Any] = []
        if older_than_s is not None:
            conditions.append("created < ?")
            params.append(time.time() - older_than_s)
        if model is not None:
            conditions.append("(model = ? OR provider || ':' || model = ?)")
            params += [model, model]
        if unreferenced_only:
            conditions.append("key NOT IN (SELECT key FROM run_calls)")
        if model is None:
            conditions.append(
                "key NOT IN (SELECT turn1_key FROM generations UNION "
                "SELECT turn2_key FROM generations)"
            )
        where = " AND ".join(conditions)
        count = int(
            self.db.execute(f"SELECT COUNT(*) FROM calls WHERE {where}", params).fetchone()[0]
        )
        if not dry_run and count:
            self._atomic(lambda: self.db.execute(f"DELETE FROM calls WHERE {where}", params))
            if self.db.dialect == "sqlite":
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return count

    # --- generations and grades --------------------------------------------------------------

    def put_generation(
        self,
        run_id: str,
        item_id: str,
        round_: int,
        *,
        turn1_key: str,
        turn2_key: str,
        answer: str,
        explanation: str | None,
        marker_found: bool,
        sentences: int,
        named: dict[str, str],
    ) -> None:
        """One generation round of one item (replaces a stored one); see `GenerationRow`."""
        written = self._write(
            _GENERATION_INSERT,
            (
                run_id,
                item_id,
                round_,
                turn1_key,
                turn2_key,
                answer,
                explanation,
                int(marker_found),
                sentences,
                json.dumps(named),
            ),
        )
        if (kept := self._keeping(run_id)) is not None:
            kept.generation(generation_row(dict(zip(GENERATION_COLUMNS, written, strict=True))))

    def generations(self, run_id: str) -> list[GenerationRow]:
        rows = _records(
            self.db.execute(
                "SELECT * FROM generations WHERE run_id = ? ORDER BY item_id, round", (run_id,)
            )
        )
        return [generation_row(r) for r in rows]

    def put_grade(
        self,
        run_id: str,
        item_id: str,
        gen_round: int,
        judge: str,
        grade_round: int,
        *,
        status: str,
        method: str,
        verdicts: dict[str, float] | None,
        reason: str | None,
        attempts: int,
        call_keys: list[str],
        answer: str | None = None,
    ) -> None:
        """One grading round of one generation.

        `answer` is the text that was graded: the grade then only counts (in `grades`)
        while the generation still holds exactly that text. Without it, it always counts.
        """
        written = self._write(
            _GRADE_INSERT,
            (
                run_id,
                item_id,
                gen_round,
                judge,
                grade_round,
                status,
                method,
                None if verdicts is None else json.dumps(verdicts, sort_keys=True),
                reason,
                attempts,
                json.dumps(call_keys),
                None if answer is None else answer_hash(answer),
            ),
        )
        if (kept := self._keeping(run_id)) is not None:
            kept.grade(grade_row(dict(zip(GRADE_COLUMNS, written, strict=True))))

    # --- human spot checks ---------------------------------------------------------------

    def put_human_verdicts(
        self, run_id: str, item_id: str, gen_round: int, reviewer: str, verdicts: dict[str, int]
    ) -> None:
        """A reviewer's verdict per criterion on one generation (a new one replaces theirs)."""
        if not reviewer.strip():
            raise StoreError("a human verdict needs the reviewer's name")
        now = time.time()
        rows = [
            (run_id, item_id, gen_round, criterion, reviewer.strip(), int(value), now)
            for criterion, value in verdicts.items()
        ]
        self._atomic(
            lambda: self.db.executemany(
                "INSERT OR REPLACE INTO human_verdicts (run_id, item_id, gen_round, criterion, "
                "reviewer, value, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        )

    def human_verdicts(self, run_id: str) -> list[HumanVerdictRow]:
        """Rows of (item_id, gen_round, criterion, reviewer, value, created)."""
        rows = _records(
            self.db.execute(
                "SELECT item_id, gen_round, criterion, reviewer, value, created "
                "FROM human_verdicts WHERE run_id = ? ORDER BY created",
                (run_id,),
            )
        )
        return cast(list[HumanVerdictRow], rows)

    def grades(
        self, run_id: str, generations: Sequence[GenerationRow] | None = None
    ) -> list[GradeRow]:
        """The grades of a run that refer to the answer its generation holds now.

        A grade of another text (its generation was replaced since, e.g. by a process that
        got a different sample of the same request) is left out: it is graded again.
        `generations`: the run's generations (`generations`) when the caller has read them:
        their answers are not read again, and the grades kept are those of these texts.
        """
        rows = _records(
            self.db.execute(
                "SELECT * FROM grades WHERE run_id = ? "
                "ORDER BY item_id, gen_round, judge, grade_round",
                (run_id,),
            )
        )
        held = (
            ((g["item_id"], g["round"], g["answer"]) for g in generations)
            if generations is not None
            else self.db.execute(
                "SELECT item_id, round, answer FROM generations WHERE run_id = ?", (run_id,)
            )
        )
        return [grade_row(r) for r in current_grades(rows, held)]

    def run_tables(self, run_id: str) -> tuple[list[ItemRow], list[GenerationRow], list[GradeRow]]:
        """A run's items, generations and the grades of the texts those generations hold:
        what a run is scored from (`scoring.results.RunRows`).

        The rows this store kept as it wrote them (`keep_rows`) are used instead of reading
        them again where they are all the run has: see `store.kept`.
        """
        kept = self._kept_rows(run_id)
        tables = None if kept is None else kept.tables(self.db)
        if tables is not None:
            items, generations, grades = tables
            held = ((g["item_id"], g["round"], g["answer"]) for g in generations)
            items = self.items(run_id) if items is None else items
            return items, generations, current_grades(grades, held)
        generations = self.generations(run_id)
        return self.items(run_id), generations, self.grades(run_id, generations)

    def keep_rows(self, run_id: str) -> None:
        """Keep the rows of `run_id` this store writes from now on, for `run_tables` and
        `usage` to return without reading back what they are (a report made right after
        the run, as `skillmix run` does). One run at a time, until the store is closed;
        see `store.kept`."""
        self._kept = KeptRows(run_id)

    def kept_usage(self, run_id: str) -> list[UsageRow] | None:
        """`usage(run_id)` from the ledger kept (`keep_rows`), or None where that is not
        the run's whole ledger."""
        kept = self._kept_rows(run_id)
        return None if kept is None else kept.usage(self.db)

    def _keeping(self, run_id: str) -> KeptRows | None:
        """Where the rows of `run_id` are kept as they are written, if they are."""
        kept = self._kept
        return kept if kept is not None and kept.run_id == run_id else None

    def _kept_rows(self, run_id: str) -> KeptRows | None:
        """The rows kept of `run_id`, if every write was committed."""
        if self._pending or self._failed is not None:
            return None
        return self._keeping(run_id)

    # --- imported reference points ------------------------------------------------------

    def put_reference_points(
        self,
        run_id: str,
        item_id: str,
        gen_round: int,
        judge: str,
        grade_round: int,
        *,
        points: dict[str, float],
        given: int,
        raw: str,
        sentences: int | None,
        source: str,
    ) -> None:
        """The original scripts' point per criterion for one grading round (replaces any).

        `points` is keyed by criterion id as their aggregation read them (by position);
        `given` is how many values their points cell held (later criteria were padded
        with 0), `raw` the cell as written, `source` the file and line it came from.
        """
        self._write(
            "INSERT OR REPLACE INTO reference_points (run_id, item_id, gen_round, judge, "
            "grade_round, points, given, raw, sentences, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                item_id,
                gen_round,
                judge,
                grade_round,
                json.dumps(points),
                given,
                raw,
                sentences,
                source,
            ),
        )

    def reference_points(self, run_id: str) -> list[ReferencePointRow]:
        """Every stored reference point row of a run (empty for runs not imported)."""
        rows = _records(
            self.db.execute(
                "SELECT * FROM reference_points WHERE run_id = ? "
                "ORDER BY item_id, gen_round, judge, grade_round",
                (run_id,),
            )
        )
        for r in rows:
            r["points"] = _loads(r["points"])
        return cast(list[ReferencePointRow], rows)

    # --- records of other pipelines --------------------------------------------------------

    def put_record(self, run_id: str, kind: str, key: str, data: Mapping[str, Any]) -> None:
        """Store (or replace) one JSON document of a pipeline: `kind` names what it is
        ("math.label", "math.answer"), `key` the unit of work within the run."""
        self._write(
            "INSERT OR REPLACE INTO records (run_id, kind, key, data) VALUES (?, ?, ?, ?)",
            (run_id, kind, key, json.dumps(data, ensure_ascii=False, sort_keys=True)),
        )

    def records(self, run_id: str, kind: str) -> dict[str, dict[str, Any]]:
        """Key -> document of every record of `kind` in a run, in key order."""
        rows = self.db.execute(
            "SELECT key, data FROM records WHERE run_id = ? AND kind = ? ORDER BY key",
            (run_id, kind),
        )
        return {key: _loads(data) for key, data in rows}


EVALUATION = "evaluation"


def _loads(text: str | bytes) -> Any:
    """A stored JSON value. orjson decodes the many small values a report reads several times
    faster; what it refuses (NaN, which `json.dumps` writes, or integers beyond 64 bits)
    goes through the standard module."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def item_row(row: dict[str, Any]) -> ItemRow:
    """An `items` row as the store returns it (its JSON decoded, in place)."""
    row["skill_ids"] = _loads(row["skill_ids"])
    return cast(ItemRow, row)


def generation_row(row: dict[str, Any]) -> GenerationRow:
    """A `generations` row as the store returns it (its JSON decoded, in place)."""
    row["named"] = _loads(row["named"])
    return cast(GenerationRow, row)


def grade_row(row: dict[str, Any]) -> GradeRow:
    """A `grades` row as the store returns it (its JSON decoded, in place)."""
    row["verdicts"] = None if row["verdicts"] is None else _loads(row["verdicts"])
    row["call_keys"] = _loads(row["call_keys"])
    return cast(GradeRow, row)


def current_grades(rows: Iterable[RowT], generations: Iterable[tuple[str, int, str]]) -> list[RowT]:
    """The `grades` rows (in their order) that refer to the answer their generation holds
    (`generations`: the item id, round and answer of each)."""
    answers = {(item_id, round_): answer_hash(answer) for item_id, round_, answer in generations}
    return [
        r
        for r in rows
        # No answer_hash: graded before grades recorded the text, it counts.
        if (graded := r.get("answer_hash")) is None
        or answers.get((r["item_id"], r["gen_round"])) == graded
    ]


def run_kind(run: RunRow) -> str:
    """What made a run: "evaluation" (Skill-Mix runs, which record no kind) or the
    pipeline named in its config ("math-label", "math-eval", ...)."""
    return str(run["config"].get("kind") or EVALUATION)


def answer_hash(answer: str) -> str:
    """What a grade records of the text it graded."""
    return hashlib.sha256(answer.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def _by_statement(
    writes: Iterable[tuple[str, tuple[Any, ...]]],
) -> dict[str, list[tuple[Any, ...]]]:
    """A group commit's writes as one executemany per statement, in the order each statement
    first comes, each statement's rows in their order: a commit's answers and ledger rows
    alternate, and a call costs more than a row. The order between statements may change
    because each one that waits for a group commit (`_write`) writes a table of its own,
    none with a foreign key."""
    groups: dict[str, list[tuple[Any, ...]]] = {}
    for sql, params in writes:
        groups.setdefault(sql, []).append(params)
    return groups


def _chunks(keys: list[str]) -> Iterator[list[str]]:
    """`keys` in lists short enough for one `IN (...)` query each."""
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        yield keys[start : start + _KEYS_PER_QUERY]


def _records(cursor: Cursor) -> list[dict[str, Any]]:
    """A query's rows as dicts, zipped with the column names read once (faster than
    `dict(row)` per `sqlite3.Row`): how the store returns lists of rows."""
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _call_record(row: Any) -> CallRecord:
    return CallRecord(
        key=row["key"],
        provider=row["provider"],
        model=row["model"],
        role=row["role"],
        messages=_loads(row["messages"]),
        settings=_loads(row["settings"]),
        response=row["response"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        structured=row["structured"],
        finish_reason=row["finish_reason"],
        latency_s=row["latency_s"],
        raw_response=_column(row, "raw_response"),
    )


def _column(row: Any, name: str) -> Any:
    """A column that stores written by an older skillmix may lack (then None)."""
    try:
        return row[name]
    except IndexError:
        return None
