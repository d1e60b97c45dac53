"""The run store never loses or corrupts paid work: full disks, hostile text, two processes.

Every test drives the real `skillmix` command in subprocesses against a real HTTP server
(`ScriptedServer`) and real SQLite files. Interruptions are placed by request count (the
server's hold gate) or by a real file-size limit (RLIMIT_FSIZE), never by timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from conftest import canonical, sigkill_at_request, skillmix
from scripted_server import Reply, ScriptedServer, honest_policy
from skillmix.catalog.load import load_catalog
from skillmix.store import CallRecord, RunLeased, Store, StoreError, StoreWriteError, db
from skillmix.store.follow import RunFollower
from skillmix.store.journal import side_file
from skillmix.store.lease import LeaseHolder, RunLease
from skillmix.store.schema import SCHEMA_VERSION
from skillmix.store.text import unescape_text

ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}


# --- helpers shared with test_fault_matrix --------------------------------------------------


def run_args(
    spec: str, store: Path, *, items: int = 6, seed: int = 0, workers: int | None = None
) -> list[str]:
    """A small run: k=2, `items` items, 2 generation rounds x 2 grading rounds (8 per item).

    `workers` bounds the units in flight, and so what a stopped run holds uncommitted.
    """
    args = [
        "run",
        "--student",
        spec,
        "--judge",
        spec,
        "--k",
        "2",
        "--items",
        str(items),
        "--generation-rounds",
        "2",
        "--grading-rounds",
        "2",
        "--seed",
        str(seed),
        "--store",
        str(store),
    ]
    return args if workers is None else [*args, "--workers", str(workers)]


def file_size_limit(limit: int) -> Callable[[], None]:
    """A preexec_fn: writing past `limit` bytes fails (EFBIG; SIGXFSZ ignored), like a full disk."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def run_limited(args: list[str], cwd: Path, limit: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skillmix.cli", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=file_size_limit(limit),
    )


def without_log(store: Path) -> None:
    """Checkpoint the store and remove its write-ahead log, as a clean close does.

    The next process then writes its pages into a new log from byte 0, so a file-size
    limit of N bytes lets it commit N bytes of pages and fail at the next commit.
    """
    db = sqlite3.connect(store)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def integrity(store: Path) -> str:
    db = sqlite3.connect(store)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def run_status(store: Path) -> list[str]:
    db = sqlite3.connect(store)
    try:
        return [r[0] for r in db.execute("SELECT status FROM runs")]
    finally:
        db.close()


def snapshot(store: Path) -> dict[str, Any]:
    """Everything a run produced that must not depend on how often it was interrupted."""
    s = Store(store, read_only=True)
    try:
        [run] = s.list_runs()
        run_id = run["id"]
        used = {
            key: role
            for key, role in s.db.execute(
                "SELECT key, role FROM run_calls WHERE run_id = ?", (run_id,)
            )
        }
        answers = {
            key: response
            for key, response in s.db.execute("SELECT key, response FROM calls")
            if key in used
        }
        return {
            "run": run_id,
            "items": s.items(run_id),
            "used": used,
            "answers": answers,
            "generations": s.generations(run_id),
            "grades": s.grades(run_id),
        }
    finally:
        s.db.close()


def report_json(store: Path, cwd: Path) -> dict[str, Any]:
    proc = skillmix("report", "--json", "--store", str(store), cwd=cwd)
    return dict(json.loads(proc.stdout))


def one_error_line(stderr: str) -> str:
    """The CLI's error line; there must be exactly one and no traceback."""
    assert "Traceback" not in stderr, stderr
    assert "Exception in callback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# --- 1. a full disk -------------------------------------------------------------------------


def test_disk_full_stops_keeps_answers_and_resume_sends_nothing_twice(tmp_path: Path):
    """A run hits a file-size limit mid-way: it stops at once with one clear line and a
    non-zero exit, never marks the run done, keeps every answer it received (committed or in
    the side file), and a resume with space sends no request whose answer came back before."""
    store = tmp_path / "full.sqlite"
    with ScriptedServer(honest_policy) as first:
        port = first.port
        # At most 4 units in flight: what is uncommitted when the disk fills (and goes to
        # the side file, under the same file-size limit) stays well below the limit.
        args = run_args(first.spec(), store, workers=4)
        # A first process dies before any answer: the store holds the run and its items.
        sigkill_at_request(first, args, tmp_path, at=1)
    without_log(store)
    limit = 96 * 1024

    with ScriptedServer(honest_policy, port=port) as second:
        proc = run_limited(args, tmp_path, limit)
        answered_before = {canonical(b) for b in second.requests}
    assert proc.returncode == 1, proc.stderr
    line = one_error_line(proc.stderr)
    assert f"store: disk full at {store}" in line
    assert f"file-size limit of {limit} bytes" in line
    assert "done" not in run_status(store)
    assert integrity(store) == "ok"
    pending = side_file(store)
    assert pending.exists(), "the answers received after the failed commit were set aside"
    set_aside = [json.loads(x) for x in pending.read_text().splitlines()]
    answers_set_aside = sum(w["sql"].startswith("INSERT OR IGNORE INTO calls") for w in set_aside)
    assert f"the {answers_set_aside} answer(s) received since the last commit" in line
    assert answers_set_aside > 0
    committed = Store(store, read_only=True).count_calls()
    assert 0 < committed < 48, "the limit must land mid-run"
    assert committed + answers_set_aside == len(answered_before)

    with ScriptedServer(honest_policy, port=port) as third:
        resumed = skillmix(*args, cwd=tmp_path)
        sent_by_resume = [canonical(b) for b in third.requests]
        mark = len(third.requests)
        clean = tmp_path / "clean.sqlite"
        skillmix(*run_args(third.spec(), clean, workers=4), cwd=tmp_path)
        all_clean = {canonical(b) for b in third.requests[mark:]}
    assert f"stored {len(set_aside)} write(s) that an earlier run could not store" in (
        resumed.stderr
    )
    assert not pending.exists()
    assert not answered_before & set(sent_by_resume), "an answer received before was bought again"
    assert len(sent_by_resume) == len(set(sent_by_resume))
    assert answered_before | set(sent_by_resume) == all_clean
    assert run_status(store) == ["done"]
    assert integrity(store) == "ok"
    assert snapshot(store) == snapshot(clean)
    assert report_json(store, tmp_path)["metrics"] == report_json(clean, tmp_path)["metrics"]
    print(
        f"\ndisk full at {limit} bytes: {len(answered_before)} answers received, "
        f"{committed} committed, {answers_set_aside} set aside ({len(set_aside)} rows) and "
        f"replayed; the resume sent {len(sent_by_resume)} of {len(all_clean)}"
    )


def test_a_failed_group_commit_keeps_its_batch(tmp_path: Path):
    """In one process: the database fills (SQLITE_FULL, from max_page_count) while writes
    wait for their group commit. Nothing is dropped: `failed` turns true, later writes wait
    in memory, leaving the block sets them all aside and raises; the next open stores them."""
    store = Store(tmp_path / "s.sqlite")
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages}")
    keys = ["first" * 2000, "second" * 2000]  # too big for the pages there are

    async def work() -> None:
        with store.group_commits():
            store.record_use("run", keys[0], "student", True)
            await asyncio.sleep(0)  # the group commit runs and fails
            assert store.failed
            store.record_use("run", keys[1], "student", True)
            await asyncio.sleep(0)

    with pytest.raises(StoreWriteError) as caught:
        asyncio.run(work())
    assert str(caught.value).startswith(f"store: disk full at {store.path}")
    assert "2 rows not yet committed were written to" in str(caught.value)
    set_aside = side_file(store.path).read_text().splitlines()
    assert [json.loads(x)["params"][1] for x in set_aside] == keys
    store.db.close()
    reopened = Store(tmp_path / "s.sqlite")
    assert reopened.replayed == 2
    assert {r[0] for r in reopened.db.execute("SELECT key FROM run_calls")} == set(keys)
    assert not side_file(reopened.path).exists()


def test_a_group_commit_keeps_the_order_of_each_tables_writes(tmp_path: Path):
    """A commit sends each statement's rows in one batch, however the writes alternate:
    within a table the order stays, so the last generation written wins (INSERT OR
    REPLACE) and the ledger keeps the first role a call was used in."""
    store = Store(tmp_path / "s.sqlite")

    def generation(answer: str) -> None:
        store.put_generation(
            "run", "item", 0, turn1_key="k1", turn2_key="k2", answer=answer, explanation=None,
            marker_found=True, sentences=1, named=[],
        )  # fmt: skip

    async def work() -> int:
        with store.group_commits():
            generation("first")
            store.record_use("run", "k1", "student", False)
            generation("second")
            store.record_use("run", "k1", "judge", True)
            store.record_use("run", "k2", "student", True)
            generation("third")
            await store.committed()
            return len(store._pending)

    assert asyncio.run(work()) == 0  # one commit took them all
    assert [g["answer"] for g in store.generations("run")] == ["third"]
    ledger = store.db.execute("SELECT key, role, sent FROM run_calls ORDER BY rowid").fetchall()
    assert [tuple(r) for r in ledger] == [("k1", "student", 1), ("k2", "student", 1)]
    store.close()


# --- 2. hostile text ------------------------------------------------------------------------


def hostile_policy(body: dict[str, Any]) -> Reply:
    """The honest server, except that some replies carry lone surrogates (and one a pair).

    Chosen by content, so a clean run over the same server meets the same replies.
    """
    reply = honest_policy(body)
    digest = sum(map(ord, canonical(body))) % 5
    if reply.content is not None and digest == 0:
        reply.content = reply.content.replace(" ", " \ud800", 1) + " \udfff\ud83d\ude00"
    return reply


def test_lone_surrogates_are_stored_repaired_and_recorded(tmp_path: Path):
    with ScriptedServer(hostile_policy) as server:
        args = run_args(server.spec(), tmp_path / "s.sqlite")
        proc = skillmix(*args, cwd=tmp_path)
        sent = len(server.requests)
        rerun = skillmix(*args, cwd=tmp_path)
        assert len(server.requests) == sent, "a re-run asks nothing again"
        bodies = {canonical(b): b for b in server.requests}
    assert "Traceback" not in proc.stderr + rerun.stderr
    db = sqlite3.connect(tmp_path / "s.sqlite")
    rows = db.execute("SELECT key, response, raw_response FROM calls").fetchall()
    assert len(rows) == sent, "every answer is stored: one bad answer poisons no batch"
    repaired = [(response, raw) for _, response, raw in rows if raw is not None]
    assert repaired, "the policy sent some lone surrogates"
    # What the server sent, as the client reads it: JSON-decoded (an escaped pair becomes one
    # character, a lone surrogate stays), surrounding whitespace stripped.
    sent_replies = {
        json.loads(json.dumps(hostile_policy(b).content)).strip() for b in bodies.values()
    }
    for response, raw in repaired:
        original = unescape_text(raw)
        assert original in sent_replies, "the reply is kept exactly as the model sent it"
        assert "\ud800" in original and "\ufffd" in response and "\ud800" not in response
    assert db.execute("SELECT status FROM runs").fetchone()[0] == "done"
    db.close()
    assert integrity(tmp_path / "s.sqlite") == "ok"


def test_one_bad_value_does_not_poison_its_batch(store_at):
    store = Store(store_at())

    async def work() -> None:
        with store.group_commits():
            store.record_use("run", "good-1", "student", True)
            store.put_generation(
                "run",
                "item",
                0,
                turn1_key="a",
                turn2_key="b",
                answer="broken \ud800 text",
                explanation=None,
                marker_found=True,
                sentences=1,
                named=[],
            )
            store.record_use("run", "good-2", "student", True)

    asyncio.run(work())
    assert not store.failed
    assert store.repaired_texts == 1
    assert [g["answer"] for g in store.generations("run")] == ["broken \ufffd text"]
    assert {r[0] for r in store.db.execute("SELECT key FROM run_calls")} == {"good-1", "good-2"}


def test_call_texts_leave_out_what_the_reader_has(store_at, monkeypatch: pytest.MonkeyPatch):
    """A reader following a run (the page worker) reads each text once: `have` leaves out
    what it read before, the rest comes in chunks of keys, and a call not yet committed
    counts too."""
    monkeypatch.setattr(db, "_KEYS_PER_QUERY", 2)  # chunks of 2 keys: 3 queries for 5
    store = Store(store_at())

    def call(n: int) -> CallRecord:
        messages = [
            {"role": "user", "content": f"task {n}"},
            {"role": "user", "content": f"now {n}"},
        ]
        return CallRecord(
            f"key-{n}", "openai", "m", "student", messages, {}, f"reply {n}", 3, 2, "", "stop", 0.1
        )

    async def work() -> None:
        with store.group_commits():
            for n in range(8):
                store.put_call(call(n))
                store.record_use("run", f"key-{n}", "student", True)
            await store.committed()
            store.put_call(call(8))  # pending: not committed yet
            store.record_use("run", "key-8", "student", True)
            every = store.call_texts("run")
            assert every == {f"key-{n}": (f"now {n}", f"reply {n}") for n in range(9)}
            have = {k: every[k] for k in ("key-0", "key-3", "key-6")}
            rest = store.call_texts("run", have=have)
            assert rest.keys() == every.keys() - have.keys()
            assert {**have, **rest} == every
            # Following on SQLite: what was committed after a ledger row, by row number.
            after = store.call_texts_after("run", 0)
            if store_at.backend == "postgresql":
                assert after is None  # no row numbers: a reader uses `have`
                return
            assert after is not None
            committed, row = after
            assert committed == {k: v for k, v in every.items() if k != "key-8"}
            assert store.call_texts_after("run", row) == ({}, row)
            await store.committed()
            assert store.call_texts_after("run", row) == ({"key-8": every["key-8"]}, row + 1)

    asyncio.run(work())
    assert store.call_texts("other run") == {}


def test_the_rows_a_store_kept_are_those_it_reads(store_at):
    """What a store kept of the run it wrote (`keep_rows`, for the report right after it) is
    what a read returns: the last write of a generation or grade, the first of an item,
    the ledger's first role and any send, grades of a replaced text left out. Where the run
    has rows it did not write (they were there before, or came from elsewhere) it reads."""
    path = store_at()
    writer, reader = Store(path), Store(path, read_only=True)

    def call(n: int, tokens: int) -> CallRecord:
        messages = [{"role": "user", "content": f"task {n}"}]
        return CallRecord(
            f"key-{n}", "openai", "m", "student", messages, {}, "reply", tokens, 1, "", "stop", 0.1
        )

    def generation(item: str, answer: str) -> None:
        writer.put_generation(
            "run", item, 0, turn1_key=f"{item}-1", turn2_key=f"{item}-2", answer=answer,
            explanation=None, marker_found=True, sentences=1, named={"s2": "named", "s1": "x"},
        )  # fmt: skip

    def grade(item: str, answer: str, value: float, round_: int = 0) -> None:
        writer.put_grade(
            "run", item, 0, "judge", round_, status="parsed", method="json",
            verdicts={"skill:s2": value, "skill:s1": 1}, reason=None, attempts=1,
            call_keys=[f"{item}-g"], answer=answer,
        )  # fmt: skip

    def reads() -> tuple[Any, Any]:
        return reader.run_tables("run"), reader.usage("run")

    def kept(store: Store) -> bool:
        """Whether the store answers with the generations it holds (the same rows twice),
        not with rows it read (new ones at every read)."""
        return store.run_tables("run")[1][0] is store.run_tables("run")[1][0]

    catalog = load_catalog()
    writer.put_catalog(catalog)
    writer.keep_rows("run")
    writer.ensure_run("run", {}, catalog.content_hash, "v1")
    writer.put_items("run", [(p, f"i{p}", 2 + p % 2, ("s1", f"s{p + 2}"), "t") for p in range(4)])
    writer.put_items("run", [(9, "i0", 3, ("s7", "s8"), "t")])  # ignored: i0 is stored
    for item, answer in (("i2", "two"), ("i0", "zero"), ("i1", "one"), ("i0", "zero, again")):
        generation(item, answer)
    grade("i0", "zero", 1.0)  # of the text it no longer holds
    grade("i1", "one", 0.5, round_=1)
    grade("i1", "one", 0.0)
    grade("i1", "one", 1.0)  # graded again
    for n in range(3):
        writer.put_call(call(n, 10 + n))
    for n, sent in ((0, False), (1, True), (0, True), (2, False), (1, False)):
        writer.record_use("run", f"key-{n}", "student", sent, call(n, 10 + n))
    assert writer.kept_usage("run") is not None and writer.run_tables("run") == reads()[0]
    assert kept(writer)
    assert writer.usage("run") == reads()[1] == [
        {"role": "student", "provider": "openai", "model": "m", "sent": 0, "calls": 1,
         "prompt_tokens": 12, "completion_tokens": 1},
        {"role": "student", "provider": "openai", "model": "m", "sent": 1, "calls": 2,
         "prompt_tokens": 21, "completion_tokens": 2},
    ]  # fmt: skip
    items, generations, grades = writer.run_tables("run")
    assert [i["item_id"] for i in items] == ["i0", "i2", "i1", "i3"]  # by k, then position
    assert items[0]["skill_ids"] == ["s1", "s2"]
    assert [g["answer"] for g in generations] == ["zero, again", "one", "two"]
    assert [(g["grade_round"], g["verdicts"]) for g in grades] == [
        (0, {"skill:s1": 1, "skill:s2": 1.0}),
        (1, {"skill:s1": 1, "skill:s2": 0.5}),
    ]
    # A row written by another process: the counts differ, the store reads the run.
    other = Store(path)
    other.put_grade(
        "run", "i2", 0, "judge", 0, status="unparsed", method="none", verdicts=None,
        reason="?", attempts=1, call_keys=[], answer="two",
    )  # fmt: skip
    other.put_call(call(9, 1))
    other.record_use("run", "key-9", "judge", True)
    assert writer.kept_usage("run") is None and not kept(writer)
    assert (writer.run_tables("run"), writer.usage("run")) == reads()
    assert len(writer.run_tables("run")[2]) == 3

    # A run the store did not create (a resume): its generations and grades, written again,
    # are those kept; its items and ledger, which were there before, are read.
    resumed = Store(path)
    resumed.keep_rows("run")
    assert resumed.ensure_run("run", {}, catalog.content_hash, "v1")  # it existed
    # Every item and every call again, as a resume does: as many rows, but the stored
    # ones count (i0 with its skills in the order first stored; the calls as sent before).
    resumed.put_items("run", [(p, f"i{p}", 2 + p % 2, (f"s{p + 2}", "s1"), "t") for p in range(4)])
    for n in (0, 1, 2):
        resumed.record_use("run", f"key-{n}", "student", False, call(n, 10 + n))
    resumed.record_use("run", "key-9", "judge", False, call(9, 1))
    assert resumed.kept_usage("run") is None and resumed.usage("run") == reads()[1]
    resumed.put_generation(
        "run", "i0", 0, turn1_key="a", turn2_key="b", answer="zero", explanation="why",
        marker_found=False, sentences=2, named={},
    )  # fmt: skip
    assert resumed.run_tables("run") == reads()[0]
    assert not kept(resumed)  # read: it wrote one generation of three, and no grade
    for item, answer in (("i1", "one"), ("i2", "two")):
        resumed.put_generation(
            "run", item, 0, turn1_key="a", turn2_key="b", answer=answer, explanation=None,
            marker_found=True, sentences=1, named={},
        )  # fmt: skip
    for round_ in (0, 1):
        resumed.put_grade(
            "run", "i1", 0, "judge", round_, status="parsed", method="json", verdicts={},
            reason=None, attempts=1, call_keys=[], answer="one",
        )  # fmt: skip
    for item, answer in (("i2", "two"), ("i0", "zero")):
        assert not kept(resumed)  # not yet every grade (i0's, of an old text, counts too)
        resumed.put_grade(
            "run", item, 0, "judge", 0, status="parsed", method="json", verdicts={},
            reason=None, attempts=1, call_keys=[], answer=answer,
        )  # fmt: skip
    assert resumed.run_tables("run") == reads()[0] and kept(resumed)  # all written again
    # A use recorded without its call: the ledger kept can no longer say the tokens.
    fresh = Store(path)
    fresh.keep_rows("new")
    fresh.ensure_run("new", {}, catalog.content_hash, "v1")
    fresh.record_use("new", "key-1", "student", True)
    assert fresh.kept_usage("new") is None and fresh.usage("new") == reader.usage("new")
    # A ledger left behind under a run id whose run row is gone: the run is new, its ledger
    # is not, and the usage is read (it says what was sent then).
    writer.record_use("gone", "key-1", "student", True)
    again = Store(path)
    again.keep_rows("gone")
    again.ensure_run("gone", {}, catalog.content_hash, "v1")
    again.record_use("gone", "key-1", "student", False, call(1, 11))
    assert again.kept_usage("gone") is None
    assert again.usage("gone") == reader.usage("gone") and again.usage("gone")[0]["sent"] == 1


def test_a_follower_holds_the_run_as_the_store_reads_it(store_at):
    """A reader following a run (the page worker) reads its rows a few at a time: rows
    written again (a new sample, a new grade) replace those it holds, a grade of a text
    replaced since does not count, and at the end it has exactly what `Store` reads. If
    rows change under it in a way it cannot see, it reads the run whole."""
    path = store_at()
    writer, reader = Store(path), Store(path, read_only=True)
    follower = RunFollower(reader, "run")

    def generation(item: str, answer: str) -> None:
        writer.put_generation(
            "run", item, 0, turn1_key=f"{item}-1", turn2_key=f"{item}-2", answer=answer,
            explanation=None, marker_found=True, sentences=1, named={"s1": "named"},
        )  # fmt: skip

    def grade(item: str, answer: str, value: float, round_: int = 0) -> None:
        writer.put_grade(
            "run", item, 0, "judge", round_, status="parsed", method="json",
            verdicts={"skill:s1": value}, reason=None, attempts=1, call_keys=[f"{item}-g"],
            answer=answer,
        )  # fmt: skip

    def store_reads() -> tuple[list[Any], list[Any], list[Any]]:
        held = reader.generations("run")
        return reader.items("run"), held, reader.grades("run", held)

    catalog = load_catalog()
    writer.put_catalog(catalog)
    for run_id in ("run", "other"):
        writer.ensure_run(run_id, {}, catalog.content_hash, "v1")
    writer.put_items("run", [(p, f"i{p}", 2 + p % 2, ("s1", f"s{p + 2}"), "t") for p in range(4)])
    writer.put_items("other", [(0, "i0", 2, ("s1", "s2"), "t")])
    generation("i2", "two")
    generation("i0", "zero")
    follower.read()
    grade("i0", "zero", 1.0)
    grade("i2", "not the text it holds", 1.0)
    generation("i1", "one")
    follower.read()
    generation("i0", "zero, again")  # a new sample: the old grade no longer counts
    grade("i1", "one", 0.5, round_=1)
    grade("i1", "one", 0.0)
    follower.read()
    grade("i1", "one", 1.0)  # graded again: replaces the grade it held
    generation("i3", "three")
    assert follower.tables() == store_reads()  # reads the rest itself
    assert follower.tables() == store_reads()  # and can say it again
    items, generations, grades = follower.tables()
    assert [i["item_id"] for i in items] == ["i0", "i2", "i1", "i3"]  # by k, then position
    assert [g["answer"] for g in generations] == ["zero, again", "one", "two", "three"]
    assert [(g["item_id"], g["grade_round"], g["verdicts"]) for g in grades] == [
        ("i1", 0, {"skill:s1": 1.0}),
        ("i1", 1, {"skill:s1": 0.5}),
    ]
    if store_at.backend == "sqlite":  # rows deleted behind its back: it reads the run whole
        assert follower.can_follow
        writer.db.execute("DELETE FROM grades WHERE run_id = 'run' AND grade_round = 1")
        assert follower.tables() == store_reads() and len(follower.tables()[2]) == 1
    else:
        assert not follower.can_follow  # no row numbers: it reads the run whole at the end


# --- 3. two processes on one run --------------------------------------------------------------


@contextmanager
def started(
    args: list[str], cwd: Path, lines: queue.Queue[tuple[int, str]]
) -> Iterator[subprocess.Popen[str]]:
    """A running `skillmix` whose stderr lines arrive on `lines` as (pid, line)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "skillmix.cli", *args],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    stderr = proc.stderr

    def pump() -> None:
        for line in stderr:
            lines.put((proc.pid, line))

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_two_concurrent_runs_pay_once_and_agree(tmp_path: Path, store_at):
    """Two real processes start the same run together. One holds the run's lease and is held
    by the server mid-run; the other waits for it (--wait), and a third without --wait is told
    which process holds the run. Paid requests equal one run's; both print the same metrics."""
    store = store_at("s")
    with ScriptedServer(honest_policy) as server:
        args = [*run_args(server.spec(), store), "--wait"]
        server.hold_from(1)
        lines: queue.Queue[tuple[int, str]] = queue.Queue()
        with started(args, tmp_path, lines) as a, started(args, tmp_path, lines) as b:
            assert server.holding.wait(120), "neither process sent a request"
            # Exactly one of them holds the run (and is held by the server); the other
            # says which process it waits for.
            while "waiting for it to finish" not in (said := lines.get(timeout=120))[1]:
                pass
            waiter_pid, message = said
            holder_proc = b if waiter_pid == a.pid else a
            assert f"process {holder_proc.pid} on" in message

            impatient = skillmix(*args[:-1], cwd=tmp_path, check=False)
            assert impatient.returncode == 1
            line = one_error_line(impatient.stderr)
            assert f"is already running in process {holder_proc.pid} on" in line
            assert "--wait" in impatient.stderr

            server.release()
            outputs = {p.pid: p.communicate(timeout=300) for p in (a, b)}
            assert a.returncode == 0 and b.returncode == 0, outputs
        paid = [canonical(x) for x in server.requests]
        mark = len(server.requests)
        clean = store_at("clean")
        skillmix(*run_args(server.spec(), clean), cwd=tmp_path)
        clean_paid = len(server.requests) - mark

    assert len(paid) == clean_paid == 48, "two processes paid for more than one run"
    assert len(set(paid)) == len(paid)
    stdout_a, stdout_b = (out for out, _ in outputs.values())
    assert stdout_a == stdout_b, "both processes print the same metrics"
    assert snapshot(store) == snapshot(clean)
    assert report_json(store, tmp_path)["metrics"] == report_json(clean, tmp_path)["metrics"]


def open_together(path: Path, openers: int) -> list[BaseException]:
    """Open a store at `path` from `openers` threads released at the same moment; return
    what they raised."""
    start = threading.Barrier(openers)
    errors: list[BaseException] = []

    def open_store() -> None:
        start.wait()
        try:
            Store(path).close()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=open_store) for _ in range(openers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_a_new_store_opened_by_several_at_once(tmp_path: Path):
    """Runs started together all create the same new store. SQLite refuses one of them at
    once ("database is locked", without waiting) when waiting could deadlock; that one must
    open again, not fail. Before the fix 5 rounds in 100 of four openers failed here."""
    failures = []
    for round_ in range(60):
        path = tmp_path / f"new-{round_}.sqlite"
        failures += [f"round {round_}: {err!r}" for err in open_together(path, 4)]
        opened = Store(path)
        assert opened.schema_version == SCHEMA_VERSION  # created once, fully
        opened.close()
    assert not failures, failures[:3]


def test_lease_is_free_when_its_holder_is_gone(store_at):
    """A live holder keeps a run; one that ended on this host, or stopped beating, does not."""
    store = Store(store_at())
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)

    def plant(pid: int, host: str, heartbeat_age: float) -> None:
        now = time.time()
        store.db.execute(
            "INSERT OR REPLACE INTO leases (run_id, owner, pid, host, acquired, heartbeat) "
            "VALUES ('run', 'someone', ?, ?, ?, ?)",
            (pid, host, now - heartbeat_age, now - heartbeat_age),
        )

    lease = RunLease(store, "run")
    host = lease.host
    plant(os.getpid(), host, 1.0)  # alive on this host, beating
    holder = lease.try_take()
    assert isinstance(holder, LeaseHolder) and holder.pid == os.getpid()
    assert str(os.getpid()) in str(RunLeased("run", holder))
    plant(os.getpid(), "elsewhere", 1.0)  # alive on another host
    assert lease.try_take() is not None
    plant(dead_pid, host, 1.0)  # ended (say, SIGKILLed) on this host: free at once
    assert lease.try_take() is None
    lease.release()
    plant(os.getpid(), "elsewhere", 3600.0)  # no heartbeat for an hour: free
    assert lease.try_take() is None
    lease.release()
    assert store.db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0


def test_a_lease_that_was_taken_over_stops_its_old_holder(store_at):
    store = Store(store_at())
    lease = RunLease(store, "run", heartbeat_s=0.01)
    assert lease.try_take() is None
    store.db.execute("UPDATE leases SET owner = 'a process that took it over'")
    assert lease._thread is not None
    lease._thread.join(60)  # its next beat finds the row taken and stops the run
    assert not lease._thread.is_alive()
    assert store.failed
    with pytest.raises(Exception, match="was taken over"):
        store.raise_if_failed()


def test_a_grade_counts_only_for_the_text_it_graded(store_at):
    """Two connections to one store stand for two processes: when one replaces a generation
    with another sample, the other's grade of the old text no longer counts."""
    path = store_at()
    first, second = Store(path), Store(path)

    def generation(store: Store, answer: str) -> None:
        store.put_generation(
            "run",
            "item",
            0,
            turn1_key="t1",
            turn2_key="t2",
            answer=answer,
            explanation=None,
            marker_found=True,
            sentences=1,
            named=[],
        )

    def grade(store: Store, answer: str, value: int) -> None:
        store.put_grade(
            "run",
            "item",
            0,
            "judge",
            0,
            status="parsed",
            method="test",
            verdicts={"c": value},
            reason=None,
            attempts=1,
            call_keys=["g"],
            answer=answer,
        )

    generation(first, "first sample")
    generation(second, "second sample")  # the other process stored another text since
    grade(first, "first sample", 1)
    assert first.grades("run") == [] == second.grades("run")
    held = first.generations("run")  # a reader that holds the second sample
    grade(second, "second sample", 0)
    assert [g["verdicts"] for g in first.grades("run")] == [{"c": 0}]
    # Given the generations it holds, a reader keeps the grades of those texts: the same
    # as reading them again while nothing changes, and still those once a text is replaced.
    assert first.grades("run", held) == first.grades("run")
    generation(second, "third sample")
    assert [g["verdicts"] for g in first.grades("run", held)] == [{"c": 0}]
    assert first.grades("run", first.generations("run")) == [] == first.grades("run")
    grade(second, "third sample", 1)  # replaces the grade of the second sample
    assert first.grades("run", held) == []
    assert [g["verdicts"] for g in first.grades("run")] == [{"c": 1}]


# --- 4. read-only stores and mistyped paths ---------------------------------------------------


def read_only_command(folder: Path) -> list[str] | None:
    """A command prefix under which `folder` is read-only, or None when none is available.

    Not as root: chmod does it. As root (who ignores file modes): a read-only bind mount in
    a user namespace, a real read-only mount.
    """
    if os.geteuid() != 0:
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run(
        [unshare, "-Urm", "sh", "-c", 'mount --bind -o ro "$0" "$0" && ! touch "$0/x"', folder],
        capture_output=True,
    )
    if probe.returncode != 0:
        return None
    return [
        unshare,
        "-Urm",
        "sh",
        "-c",
        'mount --bind -o ro "$0" "$0" && shift && exec "$@"',
        str(folder),
        "--",
    ]


def test_a_read_only_store_can_still_be_read(tmp_path: Path):
    folder = tmp_path / "ro"
    folder.mkdir()
    store = folder / "s.sqlite"
    with ScriptedServer(honest_policy) as server:
        args = run_args(server.spec(), store, items=2)
        skillmix(*args, cwd=tmp_path)
        prefix = read_only_command(folder)
        if prefix is None:
            pytest.skip("no way to make a read-only folder here (root without user namespaces)")
        expected = report_json(store, tmp_path)
        store.chmod(0o444)
        folder.chmod(0o555)
        try:

            def cli(*cmd: str) -> subprocess.CompletedProcess[str]:
                return subprocess.run(
                    [*prefix, sys.executable, "-m", "skillmix.cli", *cmd],
                    cwd=tmp_path,
                    env=ENV,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )

            runs = cli("runs", "--store", str(store))
            assert runs.returncode == 0, runs.stderr
            assert expected["run_id"] in runs.stdout
            report = cli("report", "--json", "--store", str(store))
            assert report.returncode == 0, report.stderr
            assert json.loads(report.stdout)["metrics"] == expected["metrics"]
            written = cli(*args)
            assert written.returncode == 1
            line = one_error_line(written.stderr)
            assert "is read-only" in line and "not a skillmix store" not in line
            assert sorted(p.name for p in folder.iterdir()) == ["s.sqlite"]
        finally:
            folder.chmod(0o755)
            store.chmod(0o644)


@pytest.mark.parametrize(
    "command",
    [["runs"], ["report"], ["show", "some-item"], ["export", "--out", "x.jsonl"]],
)
def test_reading_commands_never_create_a_store(tmp_path: Path, command: list[str]):
    missing = tmp_path / "typo" / "stor.sqlite"
    proc = skillmix(*command, "--store", str(missing), cwd=tmp_path, check=False)
    assert proc.returncode == 1
    line = one_error_line(proc.stderr)
    assert f"no skillmix store at {missing}" in line
    assert "--store" in proc.stderr and "SKILLMIX_STORE" in proc.stderr
    assert not (tmp_path / "typo").exists()
    by_env = subprocess.run(
        [sys.executable, "-m", "skillmix.cli", *command],
        cwd=tmp_path,
        env={**ENV, "SKILLMIX_STORE": str(tmp_path / "nowhere.sqlite")},
        capture_output=True,
        text=True,
    )
    assert by_env.returncode == 1
    assert "no skillmix store at" in one_error_line(by_env.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_file_that_is_no_store_is_named_as_such(tmp_path: Path):
    (tmp_path / "notes.sqlite").write_text("just text")
    sqlite3.connect(tmp_path / "other.sqlite").execute("CREATE TABLE t (x)").connection.close()
    for name in ("notes.sqlite", "other.sqlite"):
        with pytest.raises(StoreError, match="not a skillmix store"):
            Store(tmp_path / name, read_only=True)


def test_a_store_from_schema_1_is_read_as_it_is_and_upgraded_when_written(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    store = Store(path)
    store.put_generation(
        "run",
        "item",
        0,
        turn1_key="a",
        turn2_key="b",
        answer="text",
        explanation=None,
        marker_found=True,
        sentences=1,
        named=[],
    )
    store.put_grade(
        "run",
        "item",
        0,
        "judge",
        0,
        status="parsed",
        method="m",
        verdicts={"c": 1},
        reason=None,
        attempts=1,
        call_keys=[],
    )
    for sql in (
        "ALTER TABLE grades DROP COLUMN answer_hash",
        "ALTER TABLE calls DROP COLUMN raw_response",
        "DROP TABLE leases",
        "PRAGMA user_version = 1",
    ):
        store.db.execute(sql)
    store.db.close()

    old = Store(path, read_only=True)
    assert [g["verdicts"] for g in old.grades("run")] == [{"c": 1}]
    assert "answer_hash" not in old.grades("run")[0]
    old.db.close()
    upgraded = Store(path)
    assert upgraded.db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert [g["answer_hash"] for g in upgraded.grades("run")] == [None]


def test_a_torn_side_file_line_costs_only_itself(tmp_path: Path):
    from skillmix.store.journal import append_writes, read_writes

    path = tmp_path / "s.sqlite.pending.jsonl"
    write = "INSERT INTO run_calls (run_id, key, role, sent) VALUES (?, ?, ?, ?)"
    append_writes(path, [(write, ("run", "k1", "student", 1))])
    with path.open("a") as f:
        f.write('{"sql": "INSERT INTO run_calls')  # a process died mid-append
    append_writes(path, [(write, ("run", "k2", "student", 1))])
    with path.open("a") as f:
        f.write('{"sql": "DROP TABLE calls", "params": []}\n')  # not a store write
    writes, unreadable = read_writes(path)
    assert [params[1] for _, params in writes] == ["k1", "k2"]
    assert unreadable == 2


def test_records_round_trip_and_replace(store_at):
    """Pipelines' JSON records: stored by run, kind and key; a second put replaces."""
    path = store_at()
    store = Store(path)
    store.put_record("run-a", "math.label", "q2", {"skill": "algebra", "n": 1})
    store.put_record("run-a", "math.label", "q1", {"skill": "geometry"})
    store.put_record("run-a", "math.answer", "q1", {"correct": True})
    store.put_record("run-b", "math.label", "q1", {"skill": "other"})
    store.put_record("run-a", "math.label", "q2", {"skill": "counting", "n": 2})
    store.close()
    reopened = Store(path)
    assert reopened.records("run-a", "math.label") == {
        "q1": {"skill": "geometry"},
        "q2": {"skill": "counting", "n": 2},
    }
    assert reopened.records("run-a", "math.answer") == {"q1": {"correct": True}}
    assert reopened.records("run-c", "math.label") == {}
