"""A real third-party OpenAI-compatible server: llama-cpp-python's own, serving SmolLM2."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import skillmix

pytestmark = pytest.mark.embedded

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("fastapi") is None:
    pytest.fail(
        "llama-cpp-python's server is not installed: pip install -e '.[embedded,dev]'",
        pytrace=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def llama_server():
    from skillmix.models.embedded import gguf_path

    port = free_port()
    # The server loads the model as the embedded provider does, without llama.cpp's extra
    # weight buffers (their AMX kernels crash in VMs that do not grant AMX; see embedded.py).
    launch = (
        "import runpy; from skillmix.models.embedded import without_extra_buffers\n"
        "with without_extra_buffers(): runpy.run_module('llama_cpp.server', run_name='__main__')"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            launch,
            "--model",
            str(gguf_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("llama_cpp.server exited at start")
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("llama_cpp.server did not start within 120 s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_run_against_llama_cpp_server(tmp_path: Path, llama_server: str):
    spec = f"openai:smollm2@{llama_server}"
    args = [
        "run",
        "--student",
        spec,
        "--judge",
        spec,
        "--k",
        "2",
        "--items",
        "2",
        "--generation-rounds",
        "1",
        "--grading-rounds",
        "2",
        "--student-max-tokens",
        "100",
    ]
    first = skillmix(*args, cwd=tmp_path)
    assert "model calls (this invocation):" in first.stderr
    report = json.loads(skillmix("report", "--json", cwd=tmp_path).stdout)
    [row] = report["metrics"]
    assert row["k"] == 2 and row["items"] == 2
    methods = report["grading"]["methods"]
    # llama.cpp's server rejects json_schema; the provider falls back to json_object + schema.
    assert set(methods) <= {"schema:json_object", "empty-answer"}, methods
    second = skillmix(*args, cwd=tmp_path)
    assert "model calls (this invocation): 0 sent" in second.stderr
