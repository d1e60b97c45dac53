from __future__ import annotations

import json
import os
import sqlite3
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


def stored_bodies(store: Path, model: OpenAICompatModel) -> set[str]:
    """The HTTP bodies of every call whose answer the store holds (for resume tests)."""
    db = sqlite3.connect(store)
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
