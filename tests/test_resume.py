"""Kill a real `skillmix run` with SIGKILL mid-way: the resumed run must equal a clean one."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import canonical, sigkill_at_request, skillmix, stored_bodies, wait_until_held
from scripted_server import ScriptedServer, honest_policy
from skillmix.models.openai_compat import OpenAICompatModel


def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path, store_at):
    """Killed while the server holds its requests from a chosen count on, then resumed.

    The resume talks to a fresh server on the same address, so every request that server
    logs comes from the resumed process: a request the killed process had in flight can
    never be mistaken for one the resume sent twice.
    """
    total = 2 * 5 * 2 * (2 + 3)
    killed_store = store_at("killed")
    with ScriptedServer(honest_policy) as first:
        port = first.port
        args = [
            "run",
            "--student",
            first.spec(),
            "--judge",
            first.spec(),
            "--k",
            "2,3",
            "--items",
            "5",
            "--generation-rounds",
            "2",
            "--grading-rounds",
            "3",
        ]
        sent_by_killed = sigkill_at_request(
            first, [*args, "--store", str(killed_store)], tmp_path, at=total // 3
        )
    assert total // 3 <= len(sent_by_killed) < total, "the kill must land mid-run"

    answered = stored_bodies(killed_store, OpenAICompatModel("scripted", base_url=first.base_url))
    assert answered, "some answers were stored before the kill"

    with ScriptedServer(honest_policy, port=port) as second:
        skillmix(*args, "--store", str(killed_store), cwd=tmp_path)
        resumed_requests = [canonical(b) for b in second.requests]
        assert not answered & set(resumed_requests), "an answered request was sent again"
        assert len(resumed_requests) == len(set(resumed_requests))

        mark = len(second.requests)
        clean_store = store_at("clean")
        skillmix(*args, "--store", str(clean_store), cwd=tmp_path)
        assert len(second.requests) - mark == total
        all_clean = {canonical(b) for b in second.requests[mark:]}

    killed = json.loads(
        skillmix("report", "--json", "--store", str(killed_store), cwd=tmp_path).stdout
    )
    clean = json.loads(
        skillmix("report", "--json", "--store", str(clean_store), cwd=tmp_path).stdout
    )
    assert killed["metrics"] == clean["metrics"]
    assert killed["breakdowns"] == clean["breakdowns"]
    # All distinct requests of the killed+resumed run together are exactly the clean run's.
    assert set(sent_by_killed) | set(resumed_requests) == all_clean


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path: Path):
    """Ctrl-C while the server holds the 10th request: the run cannot have finished."""
    with ScriptedServer(honest_policy) as server:
        spec = server.spec()
        args = [
            "run",
            "--student",
            spec,
            "--judge",
            spec,
            "--k",
            "2",
            "--items",
            "6",
            "--generation-rounds",
            "2",
            "--grading-rounds",
            "2",
            "--store",
            "s.sqlite",
        ]
        server.hold_from(10)
        proc = subprocess.Popen(
            [sys.executable, "-m", "skillmix.cli", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until_held(server, proc)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
        server.release()
        assert proc.returncode == 130, stderr
        assert "interrupted" in stderr and "re-run the same command to resume" in stderr
        db = sqlite3.connect(tmp_path / "s.sqlite")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT status FROM runs").fetchone()[0] == "stopped"
        db.close()
        skillmix(*args, cwd=tmp_path)
        db = sqlite3.connect(tmp_path / "s.sqlite")
        assert db.execute("SELECT status FROM runs").fetchone()[0] == "done"
        assert db.execute("SELECT COUNT(*) FROM grades").fetchone()[0] == 6 * 2 * 2
