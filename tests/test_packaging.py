"""`pip install -e .` alone (no extras) gives a working CLI: every import is declared.

Builds a fresh virtual environment without the system's site-packages, installs the
project with its declared dependencies only, and runs `skillmix --help` and a small
evaluation against a scripted server from it.
"""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest

from scripted_server import ScriptedServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_declared_dependencies_are_enough(tmp_path: Path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    bin_dir = env_dir / "bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", COLUMNS="200", NO_COLOR="1")
    install = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "-e", str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-4000:]
    help_ = subprocess.run(
        [str(bin_dir / "skillmix"), "--help"], capture_output=True, text=True, env=env
    )
    assert help_.returncode == 0, help_.stderr
    assert "run" in help_.stdout
    assert "llama_cpp" not in subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "list"], capture_output=True, text=True, env=env
    ).stdout.replace("-", "_")

    with ScriptedServer() as server:
        spec = server.spec()
        run = subprocess.run(
            [str(bin_dir / "skillmix"), "run", "--student", spec, "--judge", spec,
             "--k", "2", "--items", "2", "--generation-rounds", "1", "--grading-rounds", "1",
             "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "full marks" in run.stdout.lower()
    assert len(server.requests) == 2 * 2 + 2
