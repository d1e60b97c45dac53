"""The database under a store: SQLite (a file, the default) or PostgreSQL (a shared server).

`Store` writes its SQL once, in SQLite's dialect, and talks to a `Database`. The SQLite
one hands statements to `sqlite3` as they are. The PostgreSQL one (psycopg 3) translates
each distinct statement once: `?` placeholders become `%s`, `INSERT OR IGNORE` becomes
`ON CONFLICT DO NOTHING`, `INSERT OR REPLACE` an upsert on the table's primary key,
`REAL` columns double precision, and `BEGIN IMMEDIATE` a plain `BEGIN`. Rows read the same
on both: by column name or by position, and `dict(row)` works.

Same semantics on both (the test suite runs on both):
- `calls` are content-addressed and written once (the first answer stored for a key wins);
- group commits: one transaction per event-loop iteration;
- run leases: taking one is serialised (SQLite's write lock; an advisory lock on
  PostgreSQL), so two processes never hold the same run;
- a versioned schema, migrated on open, with the version recorded in the database.

PostgreSQL connections can drop (a server restart, `pg_terminate_backend`, a network
blip). A statement outside a transaction is retried on a new connection; a transaction
that loses its connection raises `ConnectionLost`, which `Store` answers by reconnecting
and committing the same writes again (they are all upserts). When the server stays away
for `RECONNECT_TRIES` attempts the store fails with an error that names it.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from skillmix.store.failures import StoreError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
RECONNECT_TRIES = 6
RECONNECT_DELAY_S = 0.25  # doubled after each failed try: about 8 s in all

# Primary keys, for translating INSERT OR REPLACE into an upsert.
PRIMARY_KEYS = {
    "catalogs": ("hash",),
    "runs": ("id",),
    "items": ("run_id", "item_id"),
    "calls": ("key",),
    "run_calls": ("run_id", "key"),
    "human_verdicts": ("run_id", "item_id", "gen_round", "criterion", "reviewer"),
    "generations": ("run_id", "item_id", "round"),
    "grades": ("run_id", "item_id", "gen_round", "judge", "grade_round"),
    "reference_points": ("run_id", "item_id", "gen_round", "judge", "grade_round"),
    "records": ("run_id", "kind", "key"),
    "leases": ("run_id",),
}


def is_postgres(location: str) -> bool:
    return location.startswith(POSTGRES_SCHEMES)


def masked(url: str) -> str:
    """A connection URL fit to print: the password, if any, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _refusal_hint(message: str) -> str | None:
    """What to do when the server answered but said no (trying again would not help);
    None when the server may just not be there yet."""
    if "does not exist" in message and "database" in message:
        name = message.split('database "', 1)[-1].split('"', 1)[0]
        return f"create the database first (e.g. createdb {name}), or fix its name in the URL"
    if "authentication" in message or "password" in message or "role" in message:
        return "check the user and password in the URL (or PGPASSWORD, ~/.pgpass)"
    return None


class ConnectionLost(StoreError):
    """The connection to the database server dropped inside a transaction."""


class Cursor(Protocol):
    rowcount: int

    @property
    def description(self) -> Any:
        """One entry per column, its name first (DB-API)."""

    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    """What `Store` needs of a database connection."""

    dialect: str  # "sqlite" or "postgresql"

    # Exceptions of the driver, so that callers can catch them without importing it.
    @property
    def Error(self) -> type[Exception]: ...
    @property
    def OperationalError(self) -> type[Exception]: ...
    @property
    def refused(self) -> tuple[type[Exception], ...]:
        """Errors for data the database refuses (a bug, not the disk)."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...
    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None: ...
    def executescript(self, script: str) -> None: ...
    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 1000) -> Iterator[Any]:
        """The rows of a query, read `size` at a time (not all into memory at once)."""
        ...

    def begin(self) -> None: ...
    def lock(self, name: str) -> None: ...
    def reconnect(self) -> None: ...
    def connect_again(self) -> Database: ...
    def close(self) -> None: ...


# --- SQLite -------------------------------------------------------------------------------


class SQLiteDatabase:
    """A `sqlite3` connection in autocommit mode with `sqlite3.Row` rows."""

    dialect = "sqlite"
    Error = sqlite3.Error
    OperationalError = sqlite3.OperationalError
    refused = (sqlite3.IntegrityError, sqlite3.InterfaceError, ValueError)

    def __init__(
        self,
        conn: sqlite3.Connection,
        connect_again: Callable[[], sqlite3.Connection] | None = None,
    ):
        conn.row_factory = sqlite3.Row
        self.conn = conn
        self._connect_again = connect_again

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(sql, params)  # type: ignore[return-value]

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, seq)

    def executescript(self, script: str) -> None:
        self.conn.executescript(script)

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 1000) -> Iterator[Any]:
        cursor = self.conn.execute(sql, params)
        while rows := cursor.fetchmany(size):
            yield from rows

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")  # takes the write lock now: writers serialise

    def lock(self, name: str) -> None:
        """Writers are already serialised by `begin`."""

    def reconnect(self) -> None:
        """A file does not drop its connection."""

    def connect_again(self) -> Database:
        """A second connection to the same file (the lease heartbeat's thread)."""
        if self._connect_again is None:
            raise StoreError("this store cannot open a second connection")
        return SQLiteDatabase(self._connect_again())

    def close(self) -> None:
        self.conn.close()


# --- PostgreSQL -----------------------------------------------------------------------------


class Row(tuple):  # type: ignore[type-arg]
    """A row readable by position and by column name, as `sqlite3.Row` is."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names[key])
            except KeyError:
                raise IndexError(f"no column {key!r}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: Any) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.I)


@lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """One SQLite statement in PostgreSQL's dialect (see the module docstring)."""
    text = sql.replace("%", "%%").replace("?", "%s")
    text = re.sub(r"^\s*BEGIN\s+IMMEDIATE\b", "BEGIN", text, flags=re.I)
    match = _INSERT_OR.match(text)
    if match is None:
        return text
    mode, table, columns = match.group(1).upper(), match.group(2), match.group(3)
    text = f"INSERT INTO {table} ({columns})" + text[match.end() :]
    if mode == "IGNORE":
        return text + " ON CONFLICT DO NOTHING"
    keys = PRIMARY_KEYS[table]
    updates = [
        f"{c} = EXCLUDED.{c}" for c in (c.strip() for c in columns.split(",")) if c not in keys
    ]
    action = f"UPDATE SET {', '.join(updates)}" if updates else "NOTHING"
    return f"{text} ON CONFLICT ({', '.join(keys)}) DO {action}"


def postgres_schema(schema: str) -> str:
    """The SQLite schema as PostgreSQL DDL: REAL is double precision there too."""
    return re.sub(r"\bREAL\b", "DOUBLE PRECISION", schema)


def _text_safe(params: Sequence[Any]) -> tuple[Any, ...]:
    """`params` with NUL characters in text replaced by U+FFFD: PostgreSQL's text cannot
    hold them (SQLite's can). A model that answers with one keeps the rest of its answer."""
    return tuple(
        p.replace("\x00", "\ufffd") if isinstance(p, str) and "\x00" in p else p for p in params
    )


class PostgresDatabase:
    """A psycopg 3 connection in autocommit mode, speaking the SQLite dialect of `Store`."""

    dialect = "postgresql"

    def __init__(self, url: str):
        try:
            import psycopg
        except ImportError as err:
            raise StoreError(
                "a PostgreSQL store needs psycopg 3",
                hint="pip install 'skillmix[postgres]' (or: pip install 'psycopg[binary]')",
            ) from err
        self._psycopg = psycopg
        self.Error = psycopg.Error
        self.OperationalError = psycopg.OperationalError
        self.refused = (psycopg.IntegrityError, psycopg.DataError, psycopg.ProgrammingError)
        self.url = url
        self.reconnects = 0  # connections replaced after a drop, for reports and tests
        self.conn = self._connect()
        self._began = False

    def _connect(self) -> Any:
        psycopg = self._psycopg
        delay = RECONNECT_DELAY_S
        for attempt in range(RECONNECT_TRIES):
            try:
                conn = psycopg.connect(
                    self.url, autocommit=True, row_factory=_row_factory, connect_timeout=10
                )
                # Like SQLite's synchronous=OFF: a commit is safe from the client being
                # killed; only a crash of the server itself may lose the last moments.
                conn.execute("SET synchronous_commit = off")
                return conn
            except psycopg.OperationalError as err:
                message = str(err).strip()
                refused = _refusal_hint(message)
                if refused is not None or attempt + 1 == RECONNECT_TRIES:
                    raise StoreError(
                        f"cannot connect to the PostgreSQL store {masked(self.url)}: {message}",
                        hint=refused
                        or "is the server running, and the host and port right? Then re-run "
                        "the same command: it resumes",
                    ) from err
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    @property
    def in_transaction(self) -> bool:
        status = self.conn.info.transaction_status
        return bool(status != self._psycopg.pq.TransactionStatus.IDLE)

    def _dropped(self) -> bool:
        """Whether the connection is gone (after an `OperationalError`): closed, broken, or
        left mid-command. The last happens when the server drops the connection while an
        `executemany` pipeline is in flight: psycopg then reports it neither closed nor
        broken, but every later statement fails ("cannot exit pipeline mode while busy")."""
        if self.conn.closed or self.conn.broken:
            return True
        status = self.conn.info.transaction_status
        return status in (
            self._psycopg.pq.TransactionStatus.ACTIVE,
            self._psycopg.pq.TransactionStatus.UNKNOWN,
        )

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        query = to_postgres(sql)
        values = _text_safe(params)
        try:
            while True:
                try:
                    return self.conn.execute(query, values)  # type: ignore[no-any-return]
                except self._psycopg.OperationalError as err:
                    self._after_error(err)  # ConnectionLost inside a transaction
        finally:
            if query in ("COMMIT", "ROLLBACK"):
                # The transaction is over, even when this failed: a statement after it that
                # finds the connection dropped must not be told it lost a transaction.
                self._began = False

    def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> None:
        query = to_postgres(sql)
        rows = [_text_safe(p) for p in seq]
        while True:
            try:
                with self.conn.cursor() as cur:
                    cur.executemany(query, rows)
                return
            except self._psycopg.OperationalError as err:
                self._after_error(err)

    def _after_error(self, err: Exception) -> None:
        """Reconnect after a dropped connection (outside a transaction: the caller tries
        again); inside one, the transaction is gone: `ConnectionLost`. Else re-raise."""
        if not self._dropped():
            raise err
        in_transaction, self._began = self._began, False
        self.reconnect()
        if in_transaction:
            raise ConnectionLost(
                f"the connection to {masked(self.url)} dropped in a transaction: {err}"
            ) from err

    def executescript(self, script: str) -> None:
        self.conn.execute(postgres_schema(script))

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 1000) -> Iterator[Any]:
        # A server-side cursor, which lives in a transaction of its own connection (so the
        # caller may write on this one meanwhile).
        with (
            self._psycopg.connect(self.url, row_factory=_row_factory) as conn,
            conn.cursor(name="skillmix_stream") as cursor,
        ):
            cursor.itersize = size
            cursor.execute(to_postgres(sql), tuple(params))
            yield from cursor

    def begin(self) -> None:
        self.execute("BEGIN")
        self._began = True

    def lock(self, name: str) -> None:
        """Serialise writers of `name` until the transaction ends (an advisory lock)."""
        self.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (name,))

    def reconnect(self) -> None:
        with suppress(self._psycopg.Error):
            self.conn.close()
        self.conn = self._connect()
        self.reconnects += 1

    def connect_again(self) -> Database:
        return PostgresDatabase(self.url)

    def close(self) -> None:
        self.conn.close()
