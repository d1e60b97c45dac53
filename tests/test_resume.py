"""Kill a real `skillmix run` with SIGKILL mid-way: the resumed run must equal a clean one."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import canonical, skillmix, stored_bodies
from scripted_server import ScriptedServer, honest_policy
from skillmix.models.openai_compat import OpenAICompatModel


def slow_policy(body):
    reply = honest_policy(body)
    reply.delay_s = 0.02
    return reply


def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path):
    with ScriptedServer(slow_policy) as server:
        spec = server.spec()
        args = [
            "run",
            "--student",
            spec,
            "--judge",
            spec,
            "--k",
            "2,3",
            "--items",
            "5",
            "--generation-rounds",
            "2",
            "--grading-rounds",
            "3",
        ]
        killed_store = tmp_path / "killed.sqlite"
        proc = subprocess.Popen(
            [sys.executable, "-m", "skillmix.cli", *args, "--store", str(killed_store)],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        total = 2 * 5 * 2 * (2 + 3)
        deadline = time.time() + 120
        while len(server.requests) < total // 3 and time.time() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        sent_before_kill = len(server.requests)
        assert 0 < sent_before_kill < total, "the kill must land mid-run"

        answered = stored_bodies(
            killed_store, OpenAICompatModel("scripted", base_url=server.base_url)
        )
        assert answered, "some answers were stored before the kill"

        skillmix(*args, "--store", str(killed_store), cwd=tmp_path)
        resumed_requests = [canonical(b) for b in server.requests[sent_before_kill:]]
        assert not answered & set(resumed_requests), "an answered request was sent again"
        assert len(resumed_requests) == len(set(resumed_requests))

        mark = len(server.requests)
        clean_store = tmp_path / "clean.sqlite"
        skillmix(*args, "--store", str(clean_store), cwd=tmp_path)
        assert len(server.requests) - mark == total

        killed = json.loads(
            skillmix("report", "--json", "--store", str(killed_store), cwd=tmp_path).stdout
        )
        clean = json.loads(
            skillmix("report", "--json", "--store", str(clean_store), cwd=tmp_path).stdout
        )
        assert killed["metrics"] == clean["metrics"]
        assert killed["breakdowns"] == clean["breakdowns"]
        # All distinct requests of the killed+resumed run together are exactly the clean run's.
        all_killed = {canonical(b) for b in server.requests[:mark]}
        all_clean = {canonical(b) for b in server.requests[mark:]}
        assert all_killed == all_clean


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path: Path):
    with ScriptedServer(slow_policy) as server:
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
        proc = subprocess.Popen(
            [sys.executable, "-m", "skillmix.cli", *args],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 120
        while len(server.requests) < 10 and time.time() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
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
