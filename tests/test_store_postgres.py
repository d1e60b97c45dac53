"""The PostgreSQL store: every command on it, connections killed under a run, schema
versions, and `store copy` between SQLite and PostgreSQL in both directions.

The store tests that hold for any backend run on both through the `store_at` fixture
(test_store_reliability, test_resume); these are the ones about PostgreSQL itself. The
server is real: Debian's postgresql, started by the `postgres` fixture on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import psycopg
import pytest

from conftest import canonical, skillmix
from scripted_server import ScriptedServer, honest_policy
from skillmix.review.server import BackgroundServer
from skillmix.store import Store, StoreError, StoreNotFound
from skillmix.store.backend import ConnectionLost, PostgresDatabase, masked, to_postgres
from skillmix.store.lease import RunLease
from skillmix.store.schema import SCHEMA_VERSION
from test_math_eval import World, eval_args, planted_dataset, write_jsonl

ENV_COLUMNS = {"COLUMNS": "200", "NO_COLOR": "1"}


def run_args(spec: str, store: str, *extra: str) -> list[str]:
    return [
        "run", "--student", spec, "--judge", spec, "--k", "2,3", "--items", "4",
        "--generation-rounds", "2", "--grading-rounds", "2", "--seed", "5",
        "--store", store, *extra,
    ]  # fmt: skip


def report(store: str, cwd: Path, *extra: str) -> dict:
    return json.loads(skillmix("report", "--json", "--store", store, *extra, cwd=cwd).stdout)


# --- the dialect --------------------------------------------------------------------------------


def test_statements_are_translated_once_each():
    assert to_postgres("SELECT * FROM runs WHERE id LIKE ?") == (
        "SELECT * FROM runs WHERE id LIKE %s"
    )
    assert to_postgres("SELECT '100%' FROM t WHERE a = ?") == "SELECT '100%%' FROM t WHERE a = %s"
    assert to_postgres("BEGIN IMMEDIATE") == "BEGIN"
    assert to_postgres("INSERT OR IGNORE INTO calls (key, model) VALUES (?, ?)") == (
        "INSERT INTO calls (key, model) VALUES (%s, %s) ON CONFLICT DO NOTHING"
    )
    assert to_postgres(
        "INSERT OR REPLACE INTO grades (run_id, item_id, gen_round, judge, grade_round, "
        "status) VALUES (?, ?, ?, ?, ?, ?)"
    ) == (
        "INSERT INTO grades (run_id, item_id, gen_round, judge, grade_round, status) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (run_id, item_id, gen_round, judge, "
        "grade_round) DO UPDATE SET status = EXCLUDED.status"
    )


def test_passwords_are_never_printed():
    assert masked("postgresql://ann:s3cret@db.example:5433/runs") == (
        "postgresql://ann:***@db.example:5433/runs"
    )
    assert masked("postgresql://ann@db.example/runs") == "postgresql://ann@db.example/runs"


# --- every command ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_every_command_works_on_a_postgresql_store(
    postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SKILLMIX_PAGE_WORKER", "on")  # a run this small starts none of itself
    url = postgres.new_database()
    with ScriptedServer(honest_policy) as server:
        spec = server.spec()
        first = skillmix(*run_args(spec, url), "--out", "out", cwd=tmp_path)
        sent = len(server.requests)
        again = skillmix(*run_args(spec, url), cwd=tmp_path)
        assert len(server.requests) == sent, "the cache on PostgreSQL answers a re-run"
        assert "0 sent" in again.stderr
        # The page's item data came from the run's worker process, reading PostgreSQL too.
        assert "item data were built here" not in first.stderr + again.stderr
        skillmix(
            "data", "sft", "--teacher", spec, "--judge", spec, "--k", "1", "--items", "3",
            "--store", url, "--out", str(tmp_path / "sft"), cwd=tmp_path,
        )  # fmt: skip
    assert (tmp_path / "sft" / "records.jsonl").is_file()

    runs = Store(url, read_only=True).list_runs()
    run_id = next(r["id"] for r in runs if r["config"].get("kind") is None)
    listed = skillmix("runs", "--store", url, cwd=tmp_path).stdout
    assert all(r["id"] in listed for r in runs) and len(runs) == 2
    data = report(url, tmp_path, run_id)
    assert data["metrics"] and (tmp_path / "out" / run_id / "report.html").is_file()
    item = Store(url, read_only=True).items(run_id)[0]["item_id"]
    assert item in skillmix("show", item, "--run", run_id, "--store", url, cwd=tmp_path).stdout
    skillmix("html", run_id, "--store", url, "--out", str(tmp_path / "page.html"), cwd=tmp_path)
    assert (tmp_path / "page.html").stat().st_size > 10_000
    skillmix("export", run_id, "--store", url, "--out", str(tmp_path / "x.jsonl"), cwd=tmp_path)
    assert (tmp_path / "x.jsonl").read_text().count("\n") >= 8
    stats = skillmix("cache", "stats", "--store", url, cwd=tmp_path).stdout
    assert "scripted" in stats and "store size" in stats
    info = skillmix("store", "info", "--store", url, cwd=tmp_path).stdout
    assert f"postgresql, schema {SCHEMA_VERSION}" in info

    with BackgroundServer(url, run_id) as review, urllib.request.urlopen(review.url) as page:
        assert page.status == 200 and b"<html" in page.read().lower()

    world = World(planted_dataset(30))
    data = write_jsonl(world.dataset, tmp_path / "planted.jsonl")
    with (
        ScriptedServer(world.student, model="student") as student,
        ScriptedServer(world.teacher, model="teacher") as teacher,
    ):
        args = [*eval_args(data, student, teacher, "--store", url), "--json"]
        first = json.loads(skillmix(*args, cwd=tmp_path).stdout)
        sent = len(student.requests) + len(teacher.requests)
        assert json.loads(skillmix(*args, cwd=tmp_path).stdout) == first
        assert len(student.requests) + len(teacher.requests) == sent  # resumed from PostgreSQL
    assert first["questions"] == 15 and first["strategies"]


# --- connections that drop ----------------------------------------------------------------------


@pytest.mark.postgres
def test_a_connection_killed_mid_run_costs_nothing(postgres, tmp_path: Path):
    """pg_terminate_backend on every connection of the store while the server holds the run's
    requests: the run reconnects, finishes, and equals an undisturbed run; nothing is paid twice.
    """
    url, clean = postgres.new_database(), postgres.new_database()
    with ScriptedServer(honest_policy) as server:
        server.hold_from(20)
        proc = subprocess.Popen(
            [sys.executable, "-m", "skillmix.cli", *run_args(server.spec(), url)],
            cwd=tmp_path,
            env={**os.environ, **ENV_COLUMNS},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.holding.wait(120), "the run never reached the hold"
            assert postgres.terminate_clients(url) >= 2  # the store's and the lease's
        finally:
            server.release()
            _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        paid = [canonical(b) for b in server.requests]
        mark = len(server.requests)
        skillmix(*run_args(server.spec(), clean), cwd=tmp_path)
        assert len(paid) == len(set(paid)) == len(server.requests) - mark
    assert report(url, tmp_path)["metrics"] == report(clean, tmp_path)["metrics"]


@pytest.mark.postgres
def test_a_taken_lease_already_has_its_heartbeat_connection(postgres):
    """The heartbeat's connection is opened before the lease is taken, not later in its
    thread: a run that holds its lease holds both connections (what the test above kills)."""
    store = Store(postgres.new_database())
    name = store.url.rsplit("/", 1)[1]

    def clients() -> int:
        with psycopg.connect(postgres.url, autocommit=True) as conn:
            return conn.execute(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()[0]

    opened_by = []
    connect_again = store.db.connect_again

    def watched() -> object:
        opened_by.append(threading.current_thread())
        return connect_again()

    store.db.connect_again = watched  # type: ignore[method-assign]
    assert clients() == 1
    lease = RunLease(store, "run", heartbeat_s=3600)  # its thread never runs a statement
    assert lease.try_take() is None
    assert opened_by == [threading.current_thread()]  # by the taker, before it returned
    assert clients() == 2
    lease.release()
    assert clients() == 1


@pytest.mark.postgres
def test_a_group_commit_whose_connection_dropped_is_committed_again(postgres):
    store = Store(postgres.new_database())

    async def work() -> None:
        with store.group_commits():
            for i in range(50):
                store.record_use("run", f"k{i}", "student", True)
            assert postgres.terminate_clients(store.url) == 1  # before the commit happens
            await asyncio.sleep(0)  # the loop iteration ends: the group commit runs

    asyncio.run(work())
    assert not store.failed
    assert store.db.reconnects >= 1  # type: ignore[attr-defined]
    assert store.db.execute("SELECT COUNT(*) FROM run_calls").fetchone()[0] == 50


@pytest.mark.postgres
def test_a_connection_dropped_mid_command_is_reconnected(postgres):
    """A server that drops the connection while an `executemany` pipeline is in flight leaves
    psycopg's connection neither closed nor broken, only busy, and every later statement
    fails ("cannot exit pipeline mode while busy"): the run of
    `test_a_connection_killed_mid_run_costs_nothing` died of it about once in
    30 tries. Made here without timing: a command left in flight on a backend that is then
    terminated. Inside a transaction that is `ConnectionLost` (the caller commits again);
    after it, the next statement reconnects and works."""
    db = PostgresDatabase(postgres.new_database())
    db.begin()
    db.conn.pgconn.send_query(b"SELECT pg_sleep(30)")  # in flight, its result never read
    assert postgres.terminate_clients(db.url) == 1
    with pytest.raises(ConnectionLost):
        db.execute("SELECT 1")
    with pytest.raises(ConnectionLost):  # the same, left by an earlier failed ROLLBACK
        db.begin()
        db.conn.pgconn.send_query(b"SELECT pg_sleep(30)")
        assert postgres.terminate_clients(db.url) == 1
        db.execute("ROLLBACK")
    assert db.execute("SELECT 2").fetchone()[0] == 2  # not in a transaction: just reconnected
    assert db.reconnects == 2


@pytest.mark.postgres
def test_a_server_that_is_not_there_or_says_no(postgres, tmp_path: Path):
    base = postgres.url.rsplit("/", 1)[0]
    missing = skillmix("runs", "--store", f"{base}/nowhere", cwd=tmp_path, check=False)
    assert missing.returncode == 1
    assert 'database "nowhere" does not exist' in missing.stderr
    assert "createdb nowhere" in missing.stderr and "Traceback" not in missing.stderr
    empty = postgres.new_database()
    with pytest.raises(StoreNotFound, match="no skillmix store"):
        Store(empty, read_only=True)
    with pytest.raises(StoreError, match="cannot connect"):
        Store("postgresql://postgres@127.0.0.1:1/db")


@pytest.mark.postgres
def test_a_database_that_refuses_writes_is_a_clear_error(postgres, tmp_path: Path):
    url = postgres.new_database()
    Store(url).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET default_transaction_read_only = on"
        )
    with ScriptedServer(honest_policy) as server:
        proc = skillmix(*run_args(server.spec(), url), cwd=tmp_path, check=False)
        assert not server.requests  # nothing is paid for when nothing can be kept
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "store: cannot write at postgresql://" in proc.stderr
    assert "read-only transaction" in proc.stderr


@pytest.mark.postgres
def test_answers_a_server_stops_taking_mid_run_wait_in_the_side_file(postgres, tmp_path: Path):
    """The database turns read-only under a running run: the run stops with the server's
    reason, the answers it had not committed go to the side file in the cache folder, and
    the next run stores them first and pays for nothing twice."""
    url, clean = postgres.new_database(), postgres.new_database()
    name = url.rsplit("/", 1)[1]
    env = {**os.environ, **ENV_COLUMNS, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with ScriptedServer(honest_policy) as server:
        server.hold_from(30)
        proc = subprocess.Popen(
            [sys.executable, "-m", "skillmix.cli", *run_args(server.spec(), url)],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert server.holding.wait(120), "the run never reached the hold"
            with psycopg.connect(postgres.url, autocommit=True) as conn:
                conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
            postgres.terminate_clients(url)  # its new connections are read-only
        finally:
            server.release()
            _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1 and "read-only transaction" in err, err
        assert "written to" in err and ".pending.jsonl" in err, err
        paid = [canonical(b) for b in server.requests]
        with psycopg.connect(postgres.url, autocommit=True) as conn:
            conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = off")
        resumed = subprocess.run(
            [sys.executable, "-m", "skillmix.cli", *run_args(server.spec(), url)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        paid_again = [canonical(b) for b in server.requests[len(paid) :]]
        assert not set(paid) & set(paid_again), "an answer kept in the side file was paid twice"
        mark = len(server.requests)
        skillmix(*run_args(server.spec(), clean), cwd=tmp_path)
        assert len(paid) + len(paid_again) == len(server.requests) - mark
    assert not list((tmp_path / "cache").rglob("*.pending.jsonl")), "the side file was stored"
    assert report(url, tmp_path)["metrics"] == report(clean, tmp_path)["metrics"]


# --- schema versions ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_schema_version_is_recorded_migrated_and_checked(postgres):
    url = postgres.new_database()
    Store(url).close()
    with psycopg.connect(url, autocommit=True) as conn:  # back to schema 1
        conn.execute("ALTER TABLE calls DROP COLUMN raw_response")
        conn.execute("ALTER TABLE grades DROP COLUMN answer_hash")
        conn.execute("UPDATE skillmix_schema SET version = 1")
    assert Store(url, read_only=True).schema_version == 1
    store = Store(url)
    assert store.schema_version == SCHEMA_VERSION
    columns = {
        r[0]
        for r in store.db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'calls'"
        )
    }
    assert "raw_response" in columns
    store.db.execute("UPDATE skillmix_schema SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer skillmix"):
        Store(url)


# --- store copy -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_store_copy_round_trips_sqlite_postgresql_sqlite(postgres, tmp_path: Path):
    first = str(tmp_path / "first.sqlite")
    with ScriptedServer(honest_policy) as server:
        skillmix(*run_args(server.spec(), first), cwd=tmp_path)
        skillmix(*run_args(server.spec(), first, "--k", "2", "--seed", "9"), cwd=tmp_path)
    runs = [r["id"] for r in Store(first, read_only=True).list_runs()]
    store = Store(first)
    store.put_human_verdicts(runs[0], "k2-any", 0, "ann", {"topic": 1, "sense": 0})
    store.close()

    url, back = postgres.new_database(), str(tmp_path / "back.sqlite")
    said = skillmix("store", "copy", first, url, cwd=tmp_path).stdout
    assert "copied 2 run(s)" in " ".join(said.split())
    again = " ".join(skillmix("store", "copy", first, url, cwd=tmp_path).stdout.split())
    assert "(0 new)" in again and not any(f"({n} new)" in again for n in range(1, 100))
    skillmix("store", "copy", url, back, cwd=tmp_path)
    for run_id in runs:
        reports = [report(s, tmp_path, run_id) for s in (first, url, back)]
        assert reports[0] == reports[1] == reports[2]
    for location in (url, back):
        copied = Store(location, read_only=True)
        assert [h["reviewer"] for h in copied.human_verdicts(runs[0])] == ["ann", "ann"]
        assert copied.count_calls() == Store(first, read_only=True).count_calls()

    only = str(tmp_path / "only.sqlite")
    skillmix("store", "copy", url, only, "--run", runs[1][:10], cwd=tmp_path)
    assert [r["id"] for r in Store(only, read_only=True).list_runs()] == [runs[1]]
