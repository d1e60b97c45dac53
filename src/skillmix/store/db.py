"""The run store: one SQLite file (WAL) holding runs, items, every model call, answers and grades.

Every write commits at once, so a process killed at any moment loses at most the call that
was in flight. `calls` is content-addressed by the request key: it is both the log of every
model request with its settings and the response cache that makes re-runs free.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skillmix.catalog.model import Catalog, Skill, Topic

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS catalogs (
    hash TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    status TEXT NOT NULL,
    catalog_hash TEXT NOT NULL REFERENCES catalogs(hash),
    template_version TEXT NOT NULL,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    run_id TEXT NOT NULL REFERENCES runs(id),
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    k INTEGER NOT NULL,
    skill_ids TEXT NOT NULL,
    topic_id TEXT NOT NULL,
    PRIMARY KEY (run_id, item_id)
);
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    role TEXT NOT NULL,
    messages TEXT NOT NULL,
    settings TEXT NOT NULL,
    response TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    structured TEXT NOT NULL,
    finish_reason TEXT NOT NULL,
    latency_s REAL NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS run_calls (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    role TEXT NOT NULL,
    sent INTEGER NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS human_verdicts (
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    gen_round INTEGER NOT NULL,
    criterion TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value IN (0, 1)),
    created REAL NOT NULL,
    PRIMARY KEY (run_id, item_id, gen_round, criterion, reviewer)
);
CREATE TABLE IF NOT EXISTS generations (
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    turn1_key TEXT NOT NULL,
    turn2_key TEXT NOT NULL,
    answer TEXT NOT NULL,
    explanation TEXT,
    marker_found INTEGER NOT NULL,
    sentences INTEGER NOT NULL,
    named TEXT NOT NULL,
    PRIMARY KEY (run_id, item_id, round)
);
CREATE TABLE IF NOT EXISTS grades (
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    gen_round INTEGER NOT NULL,
    judge TEXT NOT NULL,
    grade_round INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('parsed', 'unparsed')),
    method TEXT NOT NULL,
    verdicts TEXT,
    reason TEXT,
    attempts INTEGER NOT NULL,
    call_keys TEXT NOT NULL,
    PRIMARY KEY (run_id, item_id, gen_round, judge, grade_round)
);
"""


class StoreError(RuntimeError):
    pass


@dataclass(frozen=True)
class CallRecord:
    key: str
    provider: str
    model: str
    role: str
    messages: list[dict[str, str]]
    settings: dict[str, Any]
    response: str
    prompt_tokens: int
    completion_tokens: int
    structured: str  # "" or how the output was constrained ("json_schema", "grammar", ...)
    finish_reason: str
    latency_s: float
    synthetic: bool = False  # made up by `skillmix estimate`, never stored
    messages_json: str = ""  # the messages already serialised, when the caller has them


class Store:
    """A run database. Use one instance per process; it is not shared across threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._pending_calls: dict[str, CallRecord] = {}
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            # Each write commits at once. With WAL and synchronous=OFF a commit is a write()
            # to the OS without fsync: it survives the process being killed (even SIGKILL),
            # not a power cut, and costs microseconds instead of a disk flush.
            self.db.execute("PRAGMA synchronous=OFF")
            self.db.execute("PRAGMA foreign_keys=ON")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} was written by a newer skillmix (schema {version}); upgrade"
                )
            self.db.executescript(SCHEMA)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path} is not a skillmix store: {err}") from err

    def close(self) -> None:
        self.flush()
        self.db.close()

    # --- group commit ---------------------------------------------------------------------

    @contextmanager
    def group_commits(self) -> Iterator[None]:
        """Inside a running event loop, commit the writes of one loop iteration together.

        Every write made while tasks run in one iteration of the loop is committed in one
        transaction at the start of the next: one commit instead of one per write, with a
        window of a single loop iteration (the calls then in flight are at risk anyway).
        """
        self._loop = asyncio.get_running_loop()
        try:
            yield
        finally:
            self.flush()
            self._loop = None

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        if self._loop is None:
            self.db.execute(sql, params)
            return
        self._pending.append((sql, params))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Commit every pending write in one transaction."""
        self._flush_scheduled = False
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self.transaction():
            for sql, params in pending:
                self.db.execute(sql, params)
        self._pending_calls.clear()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- catalogs -------------------------------------------------------------------------

    def put_catalog(self, catalog: Catalog) -> None:
        content = json.dumps(
            {
                "skills": [s.to_dict() for s in catalog.skills],
                "topics": [t.to_dict() for t in catalog.topics],
            },
            ensure_ascii=False,
        )
        self.db.execute(
            "INSERT OR IGNORE INTO catalogs (hash, name, version, content) VALUES (?, ?, ?, ?)",
            (catalog.content_hash, catalog.name, catalog.version, content),
        )

    def get_catalog(self, content_hash: str) -> Catalog:
        row = self.db.execute("SELECT * FROM catalogs WHERE hash = ?", (content_hash,)).fetchone()
        if row is None:
            raise StoreError(f"catalog {content_hash[:12]} is not in {self.path}")
        content = json.loads(row["content"])
        skills = tuple(Skill(**{**s, "aliases": tuple(s["aliases"])}) for s in content["skills"])
        topics = tuple(Topic(**t) for t in content["topics"])
        return Catalog(name=row["name"], skills=skills, topics=topics, version=row["version"])

    # --- runs and items --------------------------------------------------------------------

    def ensure_run(
        self, run_id: str, config: dict[str, Any], catalog_hash: str, template_version: str
    ) -> bool:
        """Create the run if it is new; return True when it already existed (a resume)."""
        now = time.time()
        cur = self.db.execute(
            "INSERT OR IGNORE INTO runs (id, created, updated, status, catalog_hash, "
            "template_version, config) VALUES (?, ?, ?, 'running', ?, ?, ?)",
            (run_id, now, now, catalog_hash, template_version, json.dumps(config, sort_keys=True)),
        )
        return cur.rowcount == 0

    def set_run_status(self, run_id: str, status: str) -> None:
        self.flush()
        self.db.execute(
            "UPDATE runs SET status = ?, updated = ? WHERE id = ?", (status, time.time(), run_id)
        )

    def get_run(self, run_id: str) -> dict[str, Any]:
        row = self.db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            matches = self.db.execute(
                "SELECT * FROM runs WHERE id LIKE ? ORDER BY created", (run_id + "%",)
            ).fetchall()
            if len(matches) != 1:
                known = ", ".join(r["id"] for r in self.list_runs()) or "none"
                raise StoreError(f"no run '{run_id}' in {self.path} (runs: {known})")
            row = matches[0]
        return {**dict(row), "config": json.loads(row["config"])}

    def list_runs(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM runs ORDER BY created").fetchall()
        return [{**dict(r), "config": json.loads(r["config"])} for r in rows]

    def put_items(
        self, run_id: str, items: list[tuple[int, str, int, tuple[str, ...], str]]
    ) -> None:
        with self.transaction():
            self.db.executemany(
                "INSERT OR IGNORE INTO items (run_id, item_id, position, k, skill_ids, topic_id) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, iid, pos, k, json.dumps(list(s)), t) for pos, iid, k, s, t in items],
            )

    def items(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM items WHERE run_id = ? ORDER BY k, position", (run_id,)
        ).fetchall()
        return [{**dict(r), "skill_ids": json.loads(r["skill_ids"])} for r in rows]

    # --- calls (log and cache) ---------------------------------------------------------------

    def get_call(self, key: str) -> CallRecord | None:
        pending = self._pending_calls.get(key)
        if pending is not None:
            return pending
        row = self.db.execute("SELECT * FROM calls WHERE key = ?", (key,)).fetchone()
        return None if row is None else _call_record(row)

    def put_call(self, record: CallRecord) -> None:
        self._pending_calls[record.key] = record
        self._write(
            "INSERT OR IGNORE INTO calls (key, provider, model, role, messages, settings, "
            "response, prompt_tokens, completion_tokens, structured, finish_reason, latency_s, "
            "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.key,
                record.provider,
                record.model,
                record.role,
                record.messages_json or json.dumps(record.messages, ensure_ascii=False),
                json.dumps(record.settings, sort_keys=True),
                record.response,
                record.prompt_tokens,
                record.completion_tokens,
                record.structured,
                record.finish_reason,
                record.latency_s,
                time.time(),
            ),
        )

    def count_calls(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def record_use(self, run_id: str, key: str, role: str, sent: bool) -> None:
        """The ledger: this run used this call, paid for it (sent) or from the cache."""
        self._write(
            "INSERT INTO run_calls (run_id, key, role, sent) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET sent = max(sent, excluded.sent)",
            (run_id, key, role, int(sent)),
        )

    def usage(self, run_id: str) -> list[dict[str, Any]]:
        """Calls and tokens per role, provider and model for one run (paid and reused)."""
        rows = self.db.execute(
            "SELECT rc.role, c.provider, c.model, rc.sent, COUNT(*) AS calls, "
            "SUM(c.prompt_tokens) AS prompt_tokens, "
            "SUM(c.completion_tokens) AS completion_tokens "
            "FROM run_calls rc JOIN calls c ON c.key = rc.key WHERE rc.run_id = ? "
            "GROUP BY rc.role, c.provider, c.model, rc.sent ORDER BY rc.role, c.model, rc.sent",
            (run_id,),
        ).fetchall()
        return [dict(r) for r in rows]

    # --- the shared response cache ---------------------------------------------------------

    def cache_stats(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT provider, model, role, COUNT(*) AS calls, SUM(prompt_tokens) AS prompt_tokens, "
            "SUM(completion_tokens) AS completion_tokens, "
            "SUM(length(messages) + length(response)) AS bytes, "
            "MIN(created) AS oldest, MAX(created) AS newest, "
            "SUM(key NOT IN (SELECT key FROM run_calls)) AS unreferenced "
            "FROM calls GROUP BY provider, model, role ORDER BY provider, model, role"
        ).fetchall()
        return [dict(r) for r in rows]

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
        conditions = ["1"]
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
            with self.transaction():
                self.db.execute(f"DELETE FROM calls WHERE {where}", params)
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return count

    # --- generations and grades --------------------------------------------------------------

    def put_generation(self, run_id: str, item_id: str, round_: int, **fields: Any) -> None:
        self._write(
            "INSERT OR REPLACE INTO generations (run_id, item_id, round, turn1_key, turn2_key, "
            "answer, explanation, marker_found, sentences, named) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run_id,
                item_id,
                round_,
                fields["turn1_key"],
                fields["turn2_key"],
                fields["answer"],
                fields["explanation"],
                int(fields["marker_found"]),
                fields["sentences"],
                json.dumps(fields["named"]),
            ),
        )

    def generations(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM generations WHERE run_id = ? ORDER BY item_id, round", (run_id,)
        ).fetchall()
        return [{**dict(r), "named": json.loads(r["named"])} for r in rows]

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
        verdicts: dict[str, int] | None,
        reason: str | None,
        attempts: int,
        call_keys: list[str],
    ) -> None:
        self._write(
            "INSERT OR REPLACE INTO grades (run_id, item_id, gen_round, judge, grade_round, "
            "status, method, verdicts, reason, attempts, call_keys) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            ),
        )

    # --- human spot checks ---------------------------------------------------------------

    def put_human_verdicts(
        self, run_id: str, item_id: str, gen_round: int, reviewer: str, verdicts: dict[str, int]
    ) -> None:
        """A reviewer's verdict per criterion on one generation (a new one replaces theirs)."""
        if not reviewer.strip():
            raise StoreError("a human verdict needs the reviewer's name")
        now = time.time()
        with self.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO human_verdicts (run_id, item_id, gen_round, criterion, "
                "reviewer, value, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (run_id, item_id, gen_round, criterion, reviewer.strip(), int(value), now)
                    for criterion, value in verdicts.items()
                ],
            )

    def human_verdicts(self, run_id: str) -> list[dict[str, Any]]:
        """Rows of (item_id, gen_round, criterion, reviewer, value, created)."""
        return _human_rows(
            self.db.execute(
                "SELECT item_id, gen_round, criterion, reviewer, value, created "
                "FROM human_verdicts WHERE run_id = ? ORDER BY created",
                (run_id,),
            ).fetchall()
        )

    def grades(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM grades WHERE run_id = ? ORDER BY item_id, gen_round, judge, grade_round",
            (run_id,),
        ).fetchall()
        return [
            {
                **dict(r),
                "verdicts": None if r["verdicts"] is None else json.loads(r["verdicts"]),
                "call_keys": json.loads(r["call_keys"]),
            }
            for r in rows
        ]


def _human_rows(rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


def _call_record(row: sqlite3.Row) -> CallRecord:
    return CallRecord(
        key=row["key"],
        provider=row["provider"],
        model=row["model"],
        role=row["role"],
        messages=json.loads(row["messages"]),
        settings=json.loads(row["settings"]),
        response=row["response"],
        prompt_tokens=row["prompt_tokens"],
        completion_tokens=row["completion_tokens"],
        structured=row["structured"],
        finish_reason=row["finish_reason"],
        latency_s=row["latency_s"],
    )
