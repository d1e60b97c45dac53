from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripted_server import ScriptedServer
from skillmix.models import ChatRequest
from skillmix.models.openai_compat import OpenAICompatModel


@pytest.fixture
def server():
    with ScriptedServer() as s:
        yield s


def skillmix(*args: str, cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run the real `skillmix` command in a subprocess."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "skillmix.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=kwargs.pop("timeout", 600),
        **kwargs,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"skillmix {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True)


def stored_bodies(store: Path | str, model: OpenAICompatModel) -> set[str]:
    """The HTTP bodies of every call whose answer the store holds (for resume tests)."""
    from skillmix.store import Store

    db = Store(store, read_only=True).db
    bodies = set()
    for messages, settings in db.execute("SELECT messages, settings FROM calls"):
        s = json.loads(settings)
        request = ChatRequest(
            tuple(json.loads(messages)),
            s["temperature"],
            s["max_tokens"],
            s["seed"],
            s["json_schema"],
            s["sample"],
        )
        bodies.add(canonical(model._body(request, "json_schema" if s["json_schema"] else "")))
    db.close()
    return bodies


def sigkill_at_request(server: ScriptedServer, args: list[str], cwd: Path, at: int) -> list[str]:
    """Run `skillmix ARGS` and SIGKILL it while `server` holds its `at`-th request.

    Returns the canonical bodies the server got before it was closed. Close that server
    and resume against a new `ScriptedServer(port=server.port)`: then every request the
    new one logs comes from the resumed process, whatever the killed one had in flight.
    """
    server.hold_from(at)
    log = cwd / f"killed-{at}.stderr"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skillmix.cli", *args],
            cwd=cwd,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            wait_until_held(server, proc)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -9, log.read_text()
    return [canonical(b) for b in server.requests]


def wait_until_held(server: ScriptedServer, proc: subprocess.Popen, limit_s: float = 120) -> None:
    """Block until `server` holds a request of `proc`; fail at once if `proc` ends first."""
    for _ in range(int(limit_s * 10)):
        if server.holding.wait(0.1):
            return
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (exit {proc.returncode}) before the hold")
    raise AssertionError("the run never reached the hold point")


# --- stores on both backends ------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL server for the session (see pg_server.py). Its folder is not under
    pytest's temporary root, which only root may enter: the server runs as `postgres`."""
    import shutil
    import tempfile

    from pg_server import PostgresServer

    root = Path(tempfile.mkdtemp(prefix="skillmix-pg-"))
    server = PostgresServer(root).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_at(request: pytest.FixtureRequest, tmp_path: Path):
    """`store_at(name)`: where a store called `name` lives on this test's backend: an SQLite
    file in tmp_path, or a fresh PostgreSQL database (the same one for the same name)."""
    made: dict[str, str] = {}

    def location(name: str = "store") -> str:
        if name not in made:
            if request.param == "sqlite":
                made[name] = str(tmp_path / f"{name}.sqlite")
            else:
                made[name] = request.getfixturevalue("postgres").new_database()
        return made[name]

    location.backend = request.param  # type: ignore[attr-defined]
    return location
