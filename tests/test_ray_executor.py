"""`--executor ray`: model calls on Ray actors, with exactly the results of a local run.

The tests marked `ray` use a real local cluster that the `ray_cluster` fixture starts once
(`ray start --head` on 127.0.0.1 with 2 CPUs, in a temporary folder; its processes are
stopped at the end) and the real `skillmix` command against a scripted server. Ray is
slow to start, so the runs are few and small. The other tests need no cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import canonical, skillmix, stored_bodies, wait_until_held
from scripted_server import ScriptedServer
from skillmix.models import Settings
from skillmix.models.openai_compat import OpenAICompatModel
from skillmix.models.settings import ModelSettings
from skillmix.runtime.ray_executor import (
    ClusterError,
    plan_actors,
    provider_environment,
)

RUN = ["--k", "2", "--items", "4", "--generation-rounds", "2", "--grading-rounds", "2"]
REQUESTS = 4 * 2 * (2 + 2)  # items x generation rounds x (two student turns + two gradings)
ACTORS = 2
CLUSTER_START_S = 180  # a limit for a slow, shared machine, not a measurement


# --- without a cluster -----------------------------------------------------------------------


def test_http_models_get_the_requested_actors_and_reserve_no_cpu():
    plan = plan_actors("openai:m@http://h:1/v1", {}, gpus=0, requested=None, cluster="c")
    assert (plan.count, plan.in_process) == (2, False)
    assert plan.options == {"num_cpus": 0, "scheduling_strategy": "SPREAD"}
    assert plan_actors("openai:m", {}, gpus=4, requested=5, cluster="c").count == 5


def test_vllm_gets_one_engine_per_gpu_or_per_tensor_parallel_group():
    plan = plan_actors("vllm:m", {}, gpus=4, requested=None, cluster="c")
    assert (plan.count, plan.options["num_gpus"], plan.in_process) == (4, 1, True)
    plan = plan_actors("vllm:m", {"tensor_parallel_size": 2}, gpus=5, requested=None, cluster="c")
    assert (plan.count, plan.options["num_gpus"], plan.tensor_parallel) == (2, 2, 2)
    assert plan_actors("vllm:m", {}, gpus=4, requested=3, cluster="c").count == 3


@pytest.mark.parametrize(
    ("engine_args", "gpus", "requested"),
    [({}, 0, None), ({"tensor_parallel_size": 4}, 2, None), ({}, 2, 3)],
)
def test_vllm_that_does_not_fit_names_the_cluster_and_its_gpus(engine_args, gpus, requested):
    with pytest.raises(ClusterError, match=rf"cluster at head:6379, which has {gpus} GPU"):
        plan_actors("vllm:m", engine_args, gpus=gpus, requested=requested, cluster="head:6379")


def test_actors_get_the_provider_variables_and_named_keys_only():
    settings = Settings(models={"openai:m": ModelSettings(api_key_env="MY_SECRET")})
    environ = {
        "OPENAI_BASE_URL": "u",
        "OPENAI_API_KEY": "k",
        "ANTHROPIC_API_KEY": "a",
        "SKILLMIX_STORE": "s",
        "MY_SECRET": "m",
        "HF_TOKEN": "h",
        "HOME": "/root",
        "PATH": "/bin",
    }
    assert set(provider_environment(environ, settings)) == {
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "SKILLMIX_STORE",
        "MY_SECRET",
        "HF_TOKEN",
    }


def test_the_cli_imports_no_ray():
    code = (
        "import sys, skillmix.cli, skillmix.runtime.calls; "
        "print([m for m in ('ray', 'skillmix.runtime.ray_executor') if m in sys.modules])"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_ray_options_need_the_ray_executor(tmp_path: Path):
    proc = skillmix("run", "--ray-address", "auto", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "--ray-address and --ray-actors need --executor ray" in proc.stderr


# --- on a real cluster -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """The address of a one-node Ray cluster on 127.0.0.1, started for this module.

    `ray start --block` runs in its own session, so at the end every process of the
    cluster (its daemons and workers) is stopped by its process group, never by name.
    Ready when `ray start` says so (the line it prints), not after a sleep.
    """
    root = Path(tempfile.mkdtemp(prefix="smray-"))  # short: Ray's socket paths live in it
    port = _free_port()
    # Token authentication with a token of its own (Ray >= 2.52; older ones ignore it): the
    # cluster listens on every interface, and a ~/.ray/auth_token left by another local
    # Ray must not decide whether the commands can connect.
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex}
    saved = {name: os.environ.get(name) for name in auth}
    os.environ.update(auth)  # for the `skillmix` commands of the tests too
    ray = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen(
        [
            str(ray) if ray.exists() else "ray",
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--num-gpus=0",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={root}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    started = threading.Event()
    lines: list[str] = []

    def read() -> None:  # also drains the pipe for as long as the cluster runs
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                started.set()
        started.set()  # ended: let the fixture look

    threading.Thread(target=read, daemon=True).start()
    try:
        if not started.wait(CLUSTER_START_S) or proc.poll() is not None:
            raise AssertionError("ray start --head failed:\n" + "".join(lines[-40:]))
        yield f"127.0.0.1:{port}"
    finally:
        _stop_group(proc)
        shutil.rmtree(root, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """Ask `ray start --block` to stop its cluster, then kill whatever is left of its group."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedServer]:
    """One server for the module: the model spec (with its URL) is then the same in every
    run, so runs on Ray and the local run have the same id and the same judge names."""
    with ScriptedServer() as s:
        yield s


@pytest.fixture(scope="module")
def local_run(server: ScriptedServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The reference: the same run with the local executor, on SQLite."""
    tmp = tmp_path_factory.mktemp("local")
    store = str(tmp / "local.sqlite")
    mark = len(server.requests)
    skillmix("run", *_run_args(server), "--store", store, cwd=tmp)
    assert len(server.requests) - mark == REQUESTS
    return {**_results(store, tmp), "bodies": [canonical(b) for b in server.requests[mark:]]}


def _run_args(server: ScriptedServer) -> list[str]:
    return ["--student", server.spec(), "--judge", server.spec(), *RUN]


def _ray_args(address: str) -> list[str]:
    return ["--executor", "ray", "--ray-address", address, "--ray-actors", str(ACTORS)]


def _results(store: str, cwd: Path) -> dict:
    """What a run produced: its report's metrics, and every generation and grade stored."""
    from skillmix.store import Store

    report = json.loads(skillmix("report", "--json", "--store", store, cwd=cwd).stdout)
    db = Store(store, read_only=True).db
    generations = db.execute("SELECT * FROM generations ORDER BY item_id, round").fetchall()
    grades = db.execute(
        "SELECT * FROM grades ORDER BY item_id, gen_round, judge, grade_round"
    ).fetchall()
    return {
        "run_id": report["run_id"],
        "metrics": report["metrics"],
        "breakdowns": report["breakdowns"],
        "generations": [tuple(row) for row in generations],
        "grades": [tuple(row) for row in grades],
    }


def _served(stderr: str) -> list[int]:
    """The calls each actor answered, from the command's closing `ray: ...` line."""
    found = re.search(
        r"ray: openai:scripted: \d+ call\(s\) on \d+ actor\(s\) \(([\d, ]+)\)", stderr
    )
    assert found, stderr
    return [int(n) for n in found.group(1).split(", ")]


def _same_results(ray: dict, local: dict) -> None:
    for part in ("run_id", "metrics", "breakdowns", "generations", "grades"):
        assert ray[part] == local[part], part
    assert len(local["generations"]) == 4 * 2 and len(local["grades"]) == 4 * 2 * 2


@pytest.mark.ray
def test_a_run_on_ray_equals_the_local_run(
    ray_cluster: str, server: ScriptedServer, local_run: dict, store_at, tmp_path: Path
):
    """Same run id, metrics, generations and grades; every request went through an actor,
    once. On PostgreSQL too: the run on Ray and PostgreSQL equals the local one on SQLite."""
    mark = len(server.requests)
    store = store_at("ray")
    proc = skillmix(
        "run", *_run_args(server), *_ray_args(ray_cluster), "--store", store, cwd=tmp_path
    )
    bodies = [canonical(b) for b in server.requests[mark:]]
    assert sorted(bodies) == sorted(local_run["bodies"])
    assert f"executor: Ray cluster at {ray_cluster}: 1 node(s)" in proc.stderr
    # The driver's count of the calls its actors answered: all of them, shared by both.
    served = _served(proc.stderr)
    assert sum(served) == REQUESTS and len(served) == ACTORS and min(served) > 0
    _same_results(_results(store, tmp_path), local_run)


@pytest.mark.ray
def test_a_killed_actor_changes_nothing_and_no_answer_is_asked_twice(
    ray_cluster: str, server: ScriptedServer, local_run: dict, tmp_path: Path
):
    """SIGKILL the actor holding the server's 12th request of the run, while the server
    holds it (and every later one), then let the server answer again.

    Only that actor's calls in flight may reach the server twice (once to the dead actor,
    once more from another); every other request reaches it exactly once.
    """
    mark = len(server.requests)
    store = str(tmp_path / "killed.sqlite")
    server.hold_from(mark + 12)
    args = ["run", *_run_args(server), *_ray_args(ray_cluster), "--store", store]
    log = tmp_path / "run.stderr"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skillmix.cli", *args],
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            wait_until_held(server, proc)
            held_port = server.clients[mark + 11][1]
            pid = _pid_with_client_port(held_port, server.port)
            assert _cmdline(pid).startswith("ray::"), "a Ray actor sent it, not the driver"
            # Stopped first, so that the actor opens no connection between the look at
            # its connections and its death (one it opened after the look would have
            # its request sent twice without being counted as the killed actor's).
            os.kill(pid, signal.SIGSTOP)
            killed_ports = _client_ports(pid, server.port)
            os.kill(pid, signal.SIGKILL)
            server.release()
            assert proc.wait(300) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr_text = log.read_text()
    assert "lost an actor of" in stderr_text and "started a replacement" in stderr_text
    assert len(_served(stderr_text)) == ACTORS + 1 and "1 lost, 1 replaced" in stderr_text

    sent = [canonical(b) for b in server.requests[mark:]]
    ports = [port for _, port in server.clients[mark:]]
    counts = Counter(sent)
    twice = {body for body, n in counts.items() if n > 1}
    assert twice, "the killed actor held a request: it must have been sent again"
    assert max(counts.values()) == 2
    first_port = {body: port for body, port in reversed(list(zip(sent, ports, strict=True)))}
    assert all(first_port[body] in killed_ports for body in twice), "only the killed actor's"
    assert set(sent) == set(local_run["bodies"])
    _same_results(_results(store, tmp_path), local_run)


@pytest.mark.ray
def test_ctrl_c_stops_the_actors_and_a_rerun_resumes_on_ray(
    ray_cluster: str, server: ScriptedServer, local_run: dict, tmp_path: Path
):
    """Ctrl-C (SIGINT to the command's process group, as a terminal sends it) while the
    server holds the run's 12th request: exit 130, the actors stop, and the same command
    resumes without asking again for anything answered."""
    mark = len(server.requests)
    store = str(tmp_path / "interrupted.sqlite")
    args = ["run", *_run_args(server), *_ray_args(ray_cluster), "--store", store]
    server.hold_from(mark + 12)
    log = tmp_path / "interrupted.stderr"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "skillmix.cli", *args],
            cwd=tmp_path,
            env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            wait_until_held(server, proc)
            actor = _pid_with_client_port(server.clients[mark + 11][1], server.port)
            stopped = os.pidfd_open(actor)
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(120)
        finally:
            server.release()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    stderr_text = log.read_text()
    assert proc.returncode == 130, stderr_text
    assert "interrupted" in stderr_text and "re-run the same command to resume" in stderr_text
    assert select.select([stopped], [], [], 60)[0], "the actor process was stopped"
    os.close(stopped)

    answered = stored_bodies(store, OpenAICompatModel("scripted", base_url=server.base_url))
    assert answered, "answers before the interruption were saved"
    resumed_from = len(server.requests)
    skillmix(*args, cwd=tmp_path)
    resumed = {canonical(b) for b in server.requests[resumed_from:]}
    assert not answered & resumed, "an answered request was sent again"
    _same_results(_results(store, tmp_path), local_run)


@pytest.mark.ray
def test_data_sft_runs_on_ray_with_the_local_records(
    ray_cluster: str, server: ScriptedServer, tmp_path: Path
):
    """`data sft` (a pipeline of its own on the shared runtime) gets the executor too."""
    args = [
        "data", "sft", "--teacher", server.spec(), "--judge", server.spec(), "--k", "2",
        "--items", "3", "--generation-rounds", "1", "--grading-rounds", "1",
        "--keep-threshold", "0", "--formats", "jsonl",
    ]  # fmt: skip
    skillmix(*args, "--store", "local.sqlite", "--out", "local", cwd=tmp_path)
    proc = skillmix(
        *args, *_ray_args(ray_cluster), "--store", "ray.sqlite", "--out", "ray", cwd=tmp_path
    )
    assert len(_served(proc.stderr)) == ACTORS
    local = sorted((tmp_path / "local").glob("*.jsonl"))
    assert local, "the local run wrote records"
    for path in local:
        assert (tmp_path / "ray" / path.name).read_text() == path.read_text(), path.name


@pytest.mark.ray
def test_a_vllm_model_on_a_cluster_without_gpus_stops_with_a_clear_error(
    ray_cluster: str, server: ScriptedServer, tmp_path: Path
):
    proc = skillmix(
        "run", "--student", "vllm:some/model", "--judge", server.spec(), *RUN,
        *_ray_args(ray_cluster), "--store", "s.sqlite", cwd=tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert f"do not fit on the Ray cluster at {ray_cluster}, which has 0 GPU(s)" in proc.stderr


@pytest.mark.ray
def test_an_address_where_no_cluster_runs_is_a_clear_error(server: ScriptedServer, tmp_path: Path):
    address = f"127.0.0.1:{_free_port()}"
    proc = skillmix(
        "run", *_run_args(server), *_ray_args(address), "--store", "s.sqlite",
        cwd=tmp_path, check=False, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert f"no Ray cluster answers at {address}" in proc.stderr
    assert "ray start --head" in proc.stderr


# --- which process holds a connection (Linux /proc) ------------------------------------------


def _sockets(port_field: int, port: int, other_field: int, other: int) -> set[str]:
    """Inodes of the TCP sockets whose local/remote ports are as given (/proc/net/tcp)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, remote = fields[1], fields[2]
                ends = (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))
                if (port < 0 or ends[port_field] == port) and ends[other_field] == other:
                    inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _pid_with_client_port(client_port: int, server_port: int) -> int:
    """The process that owns the client end (local port `client_port`) of a connection."""
    wanted = _sockets(0, client_port, 1, server_port)
    assert wanted, f"no connection from port {client_port}"
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted & _socket_inodes(int(entry.name)):
                    return int(entry.name)
            except OSError:
                continue
    raise AssertionError(f"no process owns the connection from port {client_port}")


def _client_ports(pid: int, server_port: int) -> set[int]:
    """The local ports of every connection `pid` has open to `server_port`."""
    mine = _socket_inodes(pid)
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[9] in mine and int(fields[2].rsplit(":", 1)[1], 16) == server_port:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
