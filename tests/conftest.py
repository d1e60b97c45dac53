from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripted_server import ScriptedServer


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
