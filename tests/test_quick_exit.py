"""`skillmix run` ends with a quick exit (`cli.entry`): the job's objects are frozen instead
of freed one by one. It must still close the store and lose nothing; in-process callers of
`main` (tests, notebooks) never get their objects frozen."""

from __future__ import annotations

import gc
import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from conftest import skillmix
from scripted_server import ScriptedServer, honest_policy
from skillmix.cli import main


def _args(server: ScriptedServer, store: Path, out: Path) -> list[str]:
    return [
        "run",
        "--student",
        server.spec(),
        "--judge",
        server.spec(),
        "--k",
        "2",
        "--items",
        "4",
        "--generation-rounds",
        "2",
        "--grading-rounds",
        "3",
        "--store",
        str(store),
        "--out",
        str(out),
    ]


def test_a_run_process_closes_its_store_and_keeps_everything(tmp_path: Path):
    store, out = tmp_path / "s.sqlite", tmp_path / "out"
    with ScriptedServer(honest_policy) as server:
        proc = skillmix(*_args(server, store, out), cwd=tmp_path)
        sent = len(server.requests)
    assert "HTML report:" in proc.stderr
    # SQLite removes the write-ahead log when the last connection closes: the store was
    # closed, not left to the operating system.
    assert not Path(f"{store}-wal").exists() and not Path(f"{store}-shm").exists()
    db = sqlite3.connect(store)
    (status,) = db.execute("SELECT status FROM runs").fetchone()
    calls = db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    grades = db.execute("SELECT COUNT(*) FROM grades").fetchone()[0]
    db.close()
    assert status == "done"
    assert calls == sent > 0
    assert grades == 4 * 2 * 3  # items x generation rounds x grading rounds
    report = json.loads(skillmix("report", "--json", "--store", str(store), cwd=tmp_path).stdout)
    assert report["metrics"]


def test_main_in_process_freezes_nothing(tmp_path: Path):
    frozen = gc.get_freeze_count()
    with ScriptedServer(honest_policy) as server:
        result = CliRunner().invoke(
            main, _args(server, tmp_path / "s.sqlite", tmp_path / "out"), catch_exceptions=False
        )
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == frozen
