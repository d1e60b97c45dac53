"""--max-cost is a cap: checked before each request against what is spent plus the worst case
of every request in flight, through the real CLI against a priced scripted server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from conftest import skillmix
from scripted_server import Reply, ScriptedServer, honest_policy
from skillmix.models.settings import Price

# The scripted server bills every answer as 10 prompt + 5 completion tokens. With prompts
# free and 100 USD per million completion tokens, an answer costs 5 tokens' worth and the
# worst case of a request is its max tokens' worth: the same for every request.
PRICE = Price(input=0, output=100)
MAX_TOKENS = 20
ANSWER = PRICE.cost(10, 5)  # $0.0005
WORST = PRICE.cost(0, MAX_TOKENS)  # $0.002
IN_FLIGHT = 64


def settings_file(folder: Path) -> Path:
    path = folder / "skillmix.toml"
    path.write_text(
        '[models."openai:scripted"]\nmax_concurrency = 128\n\n'
        f"[pricing]\nscripted = {{ input = {PRICE.input}, output = {PRICE.output} }}\n"
    )
    return path


def run_args(server: ScriptedServer, folder: Path, *extra: str) -> list[str]:
    return [
        "run",
        *("--student", server.spec(), "--judge", server.spec()),
        *("--generation-rounds", "1", "--grading-rounds", "1"),
        *("--student-max-tokens", str(MAX_TOKENS), "--judge-max-tokens", str(MAX_TOKENS)),
        *("--settings", str(settings_file(folder))),
        *extra,
    ]


def spent_figures(stderr: str) -> tuple[str, str]:
    """The spend the paused message states and the one the usage line states."""
    paused = re.search(r"paused: budget reached: \$(\d+\.\d+) spent of --max-cost", stderr)
    usage = re.search(r"model calls \(this invocation\): .*; cost \$(\d+\.\d+)", stderr)
    assert paused and usage, stderr
    return paused.group(1), usage.group(1)


class FirstAnswerWatch:
    """A policy that notes how many requests had arrived when the first one was answered."""

    def __init__(self, server: ScriptedServer):
        self.server = server
        self.arrived_before_first_answer: int | None = None
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self.arrived_before_first_answer is None:
                self.arrived_before_first_answer = len(self.server.requests)
        return honest_policy(body)


def test_the_cap_holds_with_64_requests_in_flight(tmp_path: Path):
    # Room for 64.6 worst cases: the budget, not the 100 workers or the model's 128 slots,
    # must keep the 65th request back until an answer lands. (Not a whole number of
    # answers either, so no comparison sits on a rounding edge.)
    cap = (IN_FLIGHT + 0.6) * WORST
    with ScriptedServer() as server:
        watch = FirstAnswerWatch(server)
        server.policy = watch
        server.hold_from(1)  # hold every request until 64 are in flight
        args = run_args(
            server, tmp_path, "--k", "2,3", "--items", "100", "--workers", "100",
            "--max-cost", str(cap),
        )  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, "-m", "skillmix.cli", *args],
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for _ in range(1200):  # wait for the condition, at most 2 minutes
                if len(server.requests) >= IN_FLIGHT or proc.poll() is not None:
                    break
                time.sleep(0.1)
            assert len(server.requests) >= IN_FLIGHT, "the run never had 64 requests in flight"
            server.release()
            _, stderr = proc.communicate(timeout=300)
        finally:
            proc.kill()
    assert proc.returncode == 3, stderr
    assert watch.arrived_before_first_answer == IN_FLIGHT

    # What the server billed: every request it got was answered at 5 completion tokens.
    billed = len(server.requests) * ANSWER
    said_paused, said_usage = spent_figures(stderr)
    assert said_paused == said_usage == f"{billed:.4f}"
    # Never above the cap; and paused only once the next worst case no longer fitted.
    assert cap - WORST < billed <= cap
    print(
        f"cap ${cap:.4f}, spent ${billed:.4f} ({len(server.requests)} requests), "
        f"worst case of one request ${WORST:.4f}, {IN_FLIGHT} in flight, "
        f"overshoot ${max(0.0, billed - cap):.4f}"
    )

    # The paused run resumes and finishes without a cap, buying only what is missing.
    bought = len(server.requests)
    with ScriptedServer(port=server.port) as again:
        done = skillmix(*run_args(again, tmp_path, "--k", "2,3", "--items", "100"), cwd=tmp_path)
        assert "paused" not in done.stderr
        assert bought + len(again.requests) == 200 * 3  # 200 units x (2 turns + 1 grading)


def test_a_cap_below_one_request_pauses_before_sending_anything(tmp_path: Path):
    with ScriptedServer() as server:
        paused = skillmix(
            *run_args(server, tmp_path, "--k", "2", "--items", "2", "--max-cost", str(WORST / 2)),
            cwd=tmp_path,
            check=False,
        )
    assert paused.returncode == 3, paused.stderr
    assert server.requests == []
    assert spent_figures(paused.stderr) == ("0.0000", "0.0000")
    assert f"the next request could cost up to ${WORST:.4f}" in paused.stderr


def test_a_run_whose_worst_case_fits_finishes(tmp_path: Path):
    units = 2 * 1  # items x generation rounds
    requests = units * 3  # two student turns and one grading each
    cap = requests * WORST  # everything fits even if every answer used all its tokens
    with ScriptedServer() as server:
        done = skillmix(
            *run_args(server, tmp_path, "--k", "2", "--items", "2", "--max-cost", str(cap)),
            cwd=tmp_path,
        )
    assert len(server.requests) == requests
    assert "paused" not in done.stderr
    assert f"cost ${requests * ANSWER:.4f}" in done.stderr
    runs = skillmix("runs", cwd=tmp_path).stdout
    assert "done" in runs
