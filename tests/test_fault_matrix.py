"""A small run meets kills, full disks and corrupt answers at chosen points, and is resumed
after each: its final store equals an uninterrupted run's and passes PRAGMA integrity_check.

Faults are placed by request count (SIGKILL while the server holds the n-th request) and by
byte count (RLIMIT_FSIZE), never by timing. The server is hostile throughout: some replies
carry lone surrogates, and some requests first get a garbage HTTP answer (then the real one
when retried), chosen by content so that the uninterrupted run meets the same replies.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import canonical, sigkill_at_request, skillmix, stored_bodies
from scripted_server import Reply, ScriptedServer
from skillmix.models.openai_compat import OpenAICompatModel
from skillmix.store.journal import side_file
from test_store_reliability import (
    hostile_policy,
    integrity,
    one_error_line,
    report_json,
    run_args,
    run_limited,
    run_status,
    snapshot,
    without_log,
)

GARBAGE = (
    Reply(status=200, raw='{"choices": [{"message": '),
    Reply(status=200, raw="\x00\x01 not json \xff"),
    Reply(status=502, raw="<html>bad gateway</html>"),
)


class Corrupting:
    """Hostile replies; one request in four first gets garbage, the real answer when retried."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        key = canonical(body)
        digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
        with self.lock:
            first = key not in self.seen
            self.seen.add(key)
        if first and digest % 4 == 0:
            return GARBAGE[digest // 4 % len(GARBAGE)]
        return hostile_policy(body)


# (fault, where): "kill" at the n-th request of that invocation, "full" when a file of the
# store (its write-ahead log, from a clean start) would grow past n bytes.
SCHEDULES = {
    "kill-full-kill-full": [("kill", 8), ("full", 64 * 1024), ("kill", 6), ("full", 56 * 1024)],
    "full-early-then-late": [("kill", 3), ("full", 40 * 1024), ("kill", 5), ("full", 88 * 1024)],
}


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_faults_at_chosen_points_change_nothing(tmp_path: Path, schedule: str):
    (tmp_path / "skillmix.toml").write_text('[models."openai:scripted"]\nbackoff_s = 0.01\n')
    store = tmp_path / "faulty.sqlite"
    policy = Corrupting()
    with ScriptedServer(policy) as server:
        port, spec = server.port, server.spec()
    # Three units in flight at most: a stopped run holds a few answers uncommitted, and
    # the side file they go to stays well under the file-size limits below.
    args = run_args(spec, store, items=4, seed=7, workers=3)
    model = OpenAICompatModel("scripted", base_url=f"http://127.0.0.1:{port}/v1")
    # Bodies whose answers the store (or its side file) must hold after each invocation.
    received: set[str] = set()
    trace: list[str] = []
    for fault, where in SCHEDULES[schedule]:
        with ScriptedServer(policy, port=port) as server:
            if fault == "kill":
                sent = sigkill_at_request(server, args, tmp_path, at=where)
                # Only what reached the store counts as received: the rest was in flight.
                after = stored_bodies(store, model)
            else:
                without_log(store)
                proc = run_limited(args, tmp_path, where)
                assert proc.returncode == 1, proc.stderr
                line = one_error_line(proc.stderr)
                assert "store: disk full at" in line
                assert "could not be kept" not in line, "the side file must fit: fewer workers"
                sent = [canonical(b) for b in server.requests]
                # A run stopped by a full disk lets its calls in flight land: it received
                # every answer it asked for, and kept them (committed or in the side file).
                after = received | set(sent)
        assert not received & set(sent), f"{fault}: an answer received before was bought again"
        trace.append(f"{fault}@{where}: {len(sent)} sent, {len(after)} received in all")
        received = after
        assert integrity(store) == "ok"
        assert "done" not in run_status(store)

    with ScriptedServer(policy, port=port) as server:
        skillmix(*args, cwd=tmp_path)
        last = {canonical(b) for b in server.requests}
    assert not received & last, "the last resume bought an answer received before"
    trace.append(f"resume: {len(last)} sent")
    print("\n" + "; ".join(trace))
    assert not side_file(store).exists()
    assert run_status(store) == ["done"]
    assert integrity(store) == "ok"

    clean = tmp_path / "clean.sqlite"
    with ScriptedServer(Corrupting(), port=port):
        skillmix(*run_args(spec, clean, items=4, seed=7, workers=3), cwd=tmp_path)
    faulty_state, clean_state = snapshot(store), snapshot(clean)
    assert faulty_state["grades"] == clean_state["grades"]
    assert faulty_state == clean_state
    assert any("\ufffd" in answer for answer in faulty_state["answers"].values())
    assert report_json(store, tmp_path)["metrics"] == report_json(clean, tmp_path)["metrics"]
