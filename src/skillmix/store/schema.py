"""The store's tables and their version: created on first open, older stores brought up to
date (columns added since), a store written by a newer skillmix refused."""

from __future__ import annotations

import sqlite3

from skillmix.store.backend import Database
from skillmix.store.failures import StoreError

SCHEMA_VERSION = 2
# Columns added since schema 1, added to older stores when they are opened for writing.
ADDED_COLUMNS = {"calls": {"raw_response": "TEXT"}, "grades": {"answer_hash": "TEXT"}}

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
    created REAL NOT NULL,
    raw_response TEXT  -- the reply as sent (`text.escape_text`) when it had to be repaired
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
    answer_hash TEXT,  -- the answer graded (`answer_hash`): a grade counts while it matches
    PRIMARY KEY (run_id, item_id, gen_round, judge, grade_round)
);
-- Points the original Skill-Mix scripts recorded for an imported grading round
-- (`skillmix import reference`), kept beside our own parse of the same judge text.
CREATE TABLE IF NOT EXISTS reference_points (
    run_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    gen_round INTEGER NOT NULL,
    judge TEXT NOT NULL,
    grade_round INTEGER NOT NULL,
    points TEXT NOT NULL,
    given INTEGER NOT NULL,
    raw TEXT NOT NULL,
    sentences INTEGER,
    source TEXT NOT NULL,
    PRIMARY KEY (run_id, item_id, gen_round, judge, grade_round)
);
-- What pipelines other than the evaluation keep per unit of work (a math question's
-- labels, one strategy's answer to it): JSON documents by run, kind and key.
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, kind, key)
);
"""


def check_version(db: Database | sqlite3.Connection, where: object) -> int:
    """The store's schema version (0: new); one newer than this skillmix knows is an error."""
    if isinstance(db, sqlite3.Connection) or db.dialect == "sqlite":
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
    elif db.execute("SELECT to_regclass('skillmix_schema')").fetchone()[0] is None:
        version = 0
    else:
        version = int(db.execute("SELECT max(version) FROM skillmix_schema").fetchone()[0] or 0)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} was written by a newer skillmix (schema {version}, this one reads "
            f"up to {SCHEMA_VERSION})",
            hint="upgrade skillmix: pip install -U skillmix",
        )
    return version


def set_version(db: Database, version: int) -> None:
    if db.dialect == "sqlite":
        db.execute(f"PRAGMA user_version={int(version)}")
    else:
        db.execute("CREATE TABLE IF NOT EXISTS skillmix_schema (version INTEGER NOT NULL)")
        db.execute("DELETE FROM skillmix_schema")
        db.execute("INSERT INTO skillmix_schema (version) VALUES (?)", (version,))


def add_missing_columns(db: Database) -> None:
    for table, columns in ADDED_COLUMNS.items():
        if db.dialect == "sqlite":
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        else:
            have = {
                row[0]
                for row in db.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = ?",
                    (table,),
                )
            }
        for name, kind in columns.items():
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
