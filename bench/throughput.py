"""How well does skillmix's orchestrator saturate an OpenAI-compatible backend?

    python bench/throughput.py            # the full benchmark (several minutes)
    python bench/throughput.py --quick    # small counts: a smoke check (about a minute)
    python bench/throughput.py --profile  # one cProfile'd full run at concurrency 256
    python bench/throughput.py --cli      # issue 11: the whole `skillmix run` process
    python bench/throughput.py --cli --against REV   # ... paired with git revision REV
    python bench/throughput.py --cli --ceiling       # ... beside bare clients (the ceiling)

Starts `bench/delay_server.py` (a backend that answers every request after a fixed delay
and costs as little CPU as it can), then measures, each in a fresh Python process so that
one measurement cannot inflate another:

  a. full skillmix runs (k=2, 1 generation round, 1 judge with 1 grading round: three
     requests per item, always sent, because every run gets a fresh SQLite store) at
     concurrency 1, 16, 64 and 256, against the ideal `concurrency / (3 * delay)` items/s;
  b. the same workload sent one request at a time with urllib, as the research scripts do;
  c. plain chat requests at concurrency 64 and 256 through several HTTP clients (raw
     aiohttp, httpx, the openai SDK with its httpx and aiohttp transports, skillmix's own
     model class), against the ideal `concurrency / delay` requests/s;
  d. peak memory (RSS), store size and CPU per item of a 10,000-item run at concurrency
     256 against a 10 ms server (CPU-bound: its items/s is the orchestrator's ceiling).

Prints markdown tables and writes every number to a JSON file (--out). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import gc
import importlib.util
import json
import math
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL = "bench"  # the model name sent to the delay server (it accepts any)
CONCURRENCIES = (1, 16, 64, 256)
TRANSPORT_CONCURRENCIES = (64, 256)
TRANSPORTS = (
    "skillmix",  # OpenAICompatModel.complete: models.http + skillmix's limiter and parsing
    "aiohttp",
    "httpx",
    "openai-httpx",  # AsyncOpenAI() as it comes (httpx, 100 keep-alive connections)
    "openai-httpx-limits",  # AsyncOpenAI over an httpx client with limits = concurrency
    "openai-aiohttp",  # AsyncOpenAI(http_client=DefaultAioHttpClient())
)
# Also run with the engine's default number of workers (2 x the widest model's concurrency).
DEFAULT_WORKER_CONCURRENCIES = (64, 256)
MEMORY_DELAY_S = 0.01
MEMORY_CONCURRENCY = 256
REQUESTS_PER_ITEM = 3  # student turn 1, student turn 2, one judge grading round
OPTIONAL_PACKAGES = {
    "httpx": "httpx",
    "openai": "openai[aiohttp]",
    "httpx_aiohttp": "openai[aiohttp]",
}


# --- the delay server ---------------------------------------------------------------------


class DelayServer:
    """`bench/delay_server.py` in its own process; `cpu_seconds()` reads its CPU time."""

    def __init__(self, delay: float):
        self.delay = delay
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> DelayServer:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "delay_server.py"),
                "--port",
                str(self.port),
                "--delay",
                str(self.delay),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"delay server exited with status {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("delay server did not accept connections in 30 s") from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stats(self) -> dict[str, int]:
        """Requests answered so far and the most in flight since the last call (then reset)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=30) as resp:
            return dict(json.loads(resp.read()))

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, all processes) since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# A measurement is "noisy" when other processes used more than this many cores meanwhile.
NOISY_OTHER_CPU = 0.25
QUIET_WAIT_S = 60.0


def _wait_for_quiet(server: DelayServer) -> None:
    """Wait (up to QUIET_WAIT_S) until other processes use less than NOISY_OTHER_CPU cores.

    The machine may be shared (other people's tests); starting while it is busy only
    produces a row to throw away. Waits in one-second samples; gives up quietly.
    """
    deadline = time.monotonic() + QUIET_WAIT_S
    warned = False
    while True:
        busy0, server0, children0 = _busy_seconds(), server.cpu_seconds(), _children_cpu()
        time.sleep(1.0)
        other = (_busy_seconds() - busy0) - (server.cpu_seconds() - server0)
        other -= _children_cpu() - children0
        if other < NOISY_OTHER_CPU or time.monotonic() > deadline:
            return
        if not warned:
            _log(f"    waiting for the machine to be quiet (others use {other:.1f} cores) ...")
            warned = True


def run_child(task: dict[str, Any], server: DelayServer, timeout_s: float = 1800) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter, with what the server and others did meanwhile.

    Adds `server_cpu_s` (the delay server's CPU time), `peak_inflight` (the most requests
    the server had in flight at once), `server_requests` and `other_cpu_cores` (CPU used on
    this machine by processes other than the client and the server, e.g. other people's
    tests: the measurement is only as clean as this is small).
    """
    _wait_for_quiet(server)
    start_requests = server.stats()["requests"]  # also resets the peak
    server0, busy0, child0, t0 = (
        server.cpu_seconds(),
        _busy_seconds(),
        _children_cpu(),
        time.perf_counter(),
    )
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(task)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:g} s"}
    wall = time.perf_counter() - t0
    server_cpu = server.cpu_seconds() - server0
    other = (_busy_seconds() - busy0) - (_children_cpu() - child0) - server_cpu
    server_stats = server.stats()
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return {
            "error": lines[-1] if lines else f"exit status {proc.returncode}",
            "stderr": proc.stderr[-4000:],
        }
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["server_cpu_s"] = server_cpu
    result["server_requests"] = server_stats["requests"] - start_requests
    result["peak_inflight"] = server_stats["peak_inflight"]
    result["other_cpu_cores"] = max(0.0, other) / wall
    if proc.stderr.strip():
        result["stderr"] = proc.stderr[-20000:]
    return result


# --- the whole CLI process (issue 11's setup) ----------------------------------------------

CLI_CONCURRENCIES = (64, 256)
# The --cli --ceiling sides: bench/plain_client.py through each transport.
CEILINGS = {"plain aiohttp": "aiohttp", "plain skillmix-http": "skillmix-http"}
BARE = "plain skillmix-http"  # the floor of skillmix's run phase: its transport, nothing else


def measure_cli(
    server: DelayServer,
    concurrency: int,
    items: int,
    extra: tuple[str, ...] = (),
    src: str | None = None,
    plain: str | None = None,
) -> dict[str, Any]:
    """`skillmix run` as a user types it, in its own process, on a fresh store.

    k=2, 1 generation and 1 grading round, one judge on the same server, `--workers c`
    and the model's `max_concurrency = c` (so at most c requests are in flight). Wall time
    runs from the process start to its exit (imports, report files included); CPU time and
    peak RSS are the skillmix process's own, from `os.wait4`. `extra`: more options
    (bench/ray_overhead.py passes `--executor ray ...`). `src`: run the skillmix package
    found there (another checkout's `src`, put first on PYTHONPATH) instead of this one.
    `plain`: instead of skillmix, `bench/plain_client.py` sends the same requests through
    that transport ("aiohttp" or "skillmix-http"; the ceiling: a client that does nothing
    else), measured the same way.
    """
    spec = f"openai:{MODEL}@{server.base_url}"
    with tempfile.TemporaryDirectory(prefix="skillmix-bench-cli-") as tmp:
        settings = Path(tmp) / "skillmix.toml"
        settings.write_text(
            f'[models."{spec}"]\nmax_concurrency = {concurrency}\ntimeout_s = 600\n'
            "max_retries = 2\n"
        )
        cmd = [
            sys.executable, "-m", "skillmix.cli", "run",
            "--student", spec, "--judge", spec, "--k", "2", "--items", str(items),
            "--generation-rounds", "1", "--grading-rounds", "1",
            "--workers", str(concurrency), "--settings", str(settings),
            "--store", str(Path(tmp) / "bench.sqlite"), "--out", str(Path(tmp) / "out"),
            *extra,
        ]  # fmt: skip
        if plain:
            cmd = [
                sys.executable, str(HERE / "plain_client.py"), server.base_url,
                str(concurrency), str(items), plain,
            ]  # fmt: skip
        _wait_for_quiet(server)
        start_requests = server.stats()["requests"]  # also resets the peak
        server0, busy0, t0 = server.cpu_seconds(), _busy_seconds(), time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=None if src is None else {**os.environ, "PYTHONPATH": src},
        )
        stamps: dict[str, Any] = {}
        lines = threading.Thread(target=_stamp_lines, args=(proc, stamps), daemon=True)
        lines.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        lines.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        server_cpu = server.cpu_seconds() - server0
        cpu = usage.ru_utime + usage.ru_stime
        other = (_busy_seconds() - busy0) - cpu - server_cpu
        stats = server.stats()
        if proc.returncode != 0:
            return {"error": f"exit status {proc.returncode}", "stderr": stamps.get("tail", "")}
    requests = stats["requests"] - start_requests
    ideal_s = items * REQUESTS_PER_ITEM * server.delay / concurrency
    return {
        "concurrency": concurrency,
        "items": items,
        "requests": requests,
        "wall_s": wall,
        "share_of_ideal": ideal_s / wall,
        # The parts of the wall time: start-up (imports, store, items), the run itself
        # (first to last request, roughly), then the report (tables, files, HTML).
        "startup_s": stamps.get("run", t0) - t0,
        "run_s": stamps.get("usage", t0) - stamps.get("run", t0),
        "report_s": t0 + wall - stamps.get("usage", t0 + wall),
        "run_share_of_ideal": ideal_s / max(stamps.get("usage", 0) - stamps.get("run", 0), 1e-9),
        # CPU of the run phase alone (the orchestrator: engine, client, store), per item.
        "run_cpu_ms_per_item": 1000
        * (stamps.get("usage_cpu", math.nan) - stamps.get("run_cpu", math.nan))
        / items,
        "requests_per_s": requests / wall,
        "cpu_ms_per_item": 1000 * cpu / items,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "peak_inflight": stats["peak_inflight"],
        "server_cpu_ms_per_request": 1000 * server_cpu / max(requests, 1),
        "other_cpu_cores": max(0.0, other) / wall,
        "loadavg": os.getloadavg()[0],
    }


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a running process so far, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stamp_lines(proc: subprocess.Popen[bytes], stamps: dict[str, Any]) -> None:
    """When the CLI announced the run (`run run-...:`) and its usage line (`; cost $`)."""
    assert proc.stderr is not None
    tail: collections.deque[str] = collections.deque(maxlen=40)
    for raw in proc.stderr:
        line = raw.decode(errors="replace")
        if "run" not in stamps and line.startswith("run "):
            stamps["run"] = time.perf_counter()
            stamps["run_cpu"] = _process_cpu(proc.pid)
        elif "usage" not in stamps and "; cost $" in line:
            stamps["usage"] = time.perf_counter()
            stamps["usage_cpu"] = _process_cpu(proc.pid)
        tail.append(line)
    stamps["tail"] = "".join(tail)


CLI_MEDIANS = (
    "items",
    "share_of_ideal",
    "run_share_of_ideal",
    "requests_per_s",
    "cpu_ms_per_item",
    "run_cpu_ms_per_item",
    "startup_s",
    "run_s",
    "report_s",
    "peak_rss_mb",
)


def cli_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Issue 11's measurement: repeated whole-CLI runs per concurrency, with medians.

    With `--against REV`, each run of this checkout is paired with one of REV (checked out
    in a temporary git worktree), the two alternating which goes first: a before/after
    under the same conditions, on a machine whose speed drifts. With `--ceiling`, also with
    runs of `bench/plain_client.py`: the same requests from a client that does nothing else,
    through aiohttp and through skillmix's own HTTP client.
    """
    rounds = args.cli_rounds or max(1, math.ceil(10.0 / (REQUESTS_PER_ITEM * args.delay)))
    out: dict[str, Any] = {"machine": _machine(), "delay_s": args.delay, "rounds": rounds}
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        sides: list[tuple[str, str | None]] = [("this", None)]
        if args.against:
            sides.append((args.against, str(stack.enter_context(_worktree(args.against)))))
            out["against"] = args.against
        for _, src in sides:
            _compile_bytecode(src)
        if args.ceiling:
            sides += [(name, None) for name in CEILINGS]
        server = stack.enter_context(DelayServer(args.delay))
        for repeat in range(args.repeats):
            for c in CLI_CONCURRENCIES:
                for side, src in sides if repeat % 2 == 0 else sides[::-1]:
                    _log(f"  cli {side} c={c} items={c * rounds} ({repeat + 1}/{args.repeats})")
                    plain = CEILINGS.get(side)
                    row = {**measure_cli(server, c, c * rounds, src=src, plain=plain), "side": side}
                    _log(f"    {_cli_brief(row)}")
                    rows.append(row)
    out["rows"] = rows
    out["report_import_cpu_s"] = report_import_cpu_s()
    out["medians"] = _cli_medians([r for r in rows if r["side"] == "this"])
    if args.against:
        out["against_medians"] = _cli_medians([r for r in rows if r["side"] == args.against])
    if args.ceiling:
        out["ceiling_medians"] = {
            name: _cli_medians([r for r in rows if r["side"] == name]) for name in CEILINGS
        }
    return out


def report_import_cpu_s(src: str | None = None, repeats: int = 3) -> float:
    """CPU seconds `skillmix run` spends importing the report's modules (`REPORT_MODULES`)
    on its side thread while the run waits: part of the run phase's CPU, but not the
    orchestrator's. Measured alone, in a fresh process that first imports what the command
    has imported when its run starts; the median of `repeats`."""
    code = (
        "import importlib, time\n"
        "import rich.live, rich.progress\n"
        "import skillmix.cli.run as command, skillmix.models.openai_compat\n"
        "import skillmix.protocol.engine, skillmix.runtime.progress\n"
        "start = time.process_time()\n"
        "for name in command.REPORT_MODULES:\n"
        "    importlib.import_module(name)\n"
        "print(time.process_time() - start)\n"
    )
    env = None if src is None else {**os.environ, "PYTHONPATH": src}
    runs = [
        float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout)
        for _ in range(repeats)
    ]  # fmt: skip
    return statistics.median(runs)


def _cli_medians(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        str(c): {key: statistics.median(r[key] for r in ok) for key in CLI_MEDIANS}
        for c in CLI_CONCURRENCIES
        if (ok := [r for r in rows if r.get("concurrency") == c and "error" not in r])
    }


def _compile_bytecode(src: str | None) -> None:
    """Write the bytecode of the skillmix package to run (in `src`, else the installed one),
    as pip does when it installs a package: otherwise a process run with
    PYTHONDONTWRITEBYTECODE, or a fresh checkout, compiles its modules again at every start."""
    if src is None:
        spec = importlib.util.find_spec("skillmix")
        assert spec is not None and spec.submodule_search_locations is not None
        package = spec.submodule_search_locations[0]
    else:
        package = str(Path(src) / "skillmix")
    subprocess.run([sys.executable, "-m", "compileall", "-q", package], check=True)


@contextlib.contextmanager
def _worktree(rev: str) -> Iterator[Path]:
    """The `src` folder of `rev`, checked out in a temporary git worktree."""
    with tempfile.TemporaryDirectory(prefix="skillmix-bench-against-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), rev],
            cwd=HERE,
            check=True,
            capture_output=True,
        )
        try:
            yield tree / "src"
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=HERE, capture_output=True
            )


def _cli_brief(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"ERROR {row['error']}: {row.get('stderr', '')[-500:]}"
    return (
        f"wall {row['wall_s']:.1f} s (start {row['startup_s']:.1f}, run {row['run_s']:.1f}, "
        f"report {row['report_s']:.1f}), {row['share_of_ideal']:.1%} of ideal "
        f"(run alone {row['run_share_of_ideal']:.1%}), "
        f"{row['requests_per_s']:.0f} req/s, CPU {row['cpu_ms_per_item']:.2f} ms/item "
        f"(run alone {row['run_cpu_ms_per_item']:.2f}), "
        f"peak RSS {row['peak_rss_mb']:.0f} MB, in flight {row['peak_inflight']}, "
        f"other {row['other_cpu_cores']:.2f} cores, load {row['loadavg']:.2f}"
    )


def render_cli(out: dict[str, Any]) -> str:
    """Medians per concurrency: the whole process, then its run phase alone (with
    `--against` and `--ceiling`, a row per side)."""
    header = [
        "concurrency",
        "code",
        "runs",
        "share of ideal",
        "of the bare client's",
        "requests/s",
        "CPU ms/item",
        "run phase: share of ideal",
        "run phase: CPU ms/item",
        "of which orchestrator",
        "start-up / run / report s",
        "peak RSS MB",
        "shares of ideal (each run)",
    ]
    sides = [("this", out["medians"])]
    if "against" in out:
        sides.append((out["against"], out["against_medians"]))
    sides += list(out.get("ceiling_medians", {}).items())
    lines = []
    for c in (str(c) for c in CLI_CONCURRENCIES):
        for side, medians in sides:
            if c not in medians:
                continue
            med = medians[c]
            runs = [
                r
                for r in out["rows"]
                if str(r.get("concurrency")) == c
                and r.get("side", "this") == side
                and "error" not in r
            ]
            lines.append(
                [
                    c,
                    side,
                    str(len(runs)),
                    f"**{med['share_of_ideal']:.3f}**",
                    _of_bare(out, c, med),
                    f"{med['requests_per_s']:.0f}",
                    f"{med['cpu_ms_per_item']:.2f}",
                    f"{med['run_share_of_ideal']:.3f}",
                    f"{med['run_cpu_ms_per_item']:.2f}",
                    _orchestrator(out, side, med),
                    f"{med['startup_s']:.2f} / {med['run_s']:.2f} / {med['report_s']:.2f}",
                    f"{med['peak_rss_mb']:.0f}",
                    ", ".join(f"{r['share_of_ideal']:.3f}" for r in runs),
                ]
            )
    return _table(header, lines)


def _of_bare(out: dict[str, Any], c: str, med: dict[str, float]) -> str:
    """A side's share of ideal over that of the bare client on skillmix's own transport
    (`--ceiling`'s plain skillmix-http) at the same concurrency, measured in the same batch:
    what is left of the target once the hour's speed is taken out ("—" without it)."""
    bare = out.get("ceiling_medians", {}).get(BARE, {}).get(c)
    if not bare:
        return "—"
    return f"{med['share_of_ideal'] / bare['share_of_ideal']:.3f}"


def _orchestrator(out: dict[str, Any], side: str, med: dict[str, float]) -> str:
    """The run phase's CPU per item without the report's imports, for this checkout (whose
    imports were measured); "—" for the other sides."""
    imports = out.get("report_import_cpu_s")
    if imports is None or side != "this" or not med.get("items"):
        return "—"
    return f"{med['run_cpu_ms_per_item'] - 1000 * imports / med['items']:.2f}"


# --- measurements (run inside the child process) ------------------------------------------


def child_main(task: dict[str, Any]) -> None:
    handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "run": measure_run,
        "sequential": measure_sequential,
        "transport": measure_transport,
    }
    print(json.dumps(handlers[task["kind"]](task)))


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_run(task: dict[str, Any]) -> dict[str, Any]:
    """One full skillmix run on a fresh store: wall time, CPU time, memory, store size."""
    from skillmix.catalog.load import load_catalog
    from skillmix.config import RunConfig
    from skillmix.models.openai_compat import OpenAICompatModel
    from skillmix.protocol.engine import Engine
    from skillmix.runtime.loop import run as loop_run
    from skillmix.store import Store

    base_url, concurrency = task["base_url"], task["concurrency"]
    spec = f"openai:{MODEL}@{base_url}"
    config = RunConfig(
        student=spec,
        judges=(spec,),
        k=(2,),
        items=task["items"],
        generation_rounds=1,
        grading_rounds=1,
    )
    catalog = load_catalog()

    def model() -> OpenAICompatModel:
        return OpenAICompatModel(
            MODEL, base_url=base_url, max_concurrency=concurrency, timeout_s=600, max_retries=2
        )

    with tempfile.TemporaryDirectory(prefix="skillmix-bench-") as tmp:
        path = Path(tmp) / "bench.sqlite"
        store = Store(path)
        engine = Engine(store, config, catalog, model(), [model()], workers=task["workers"])
        gc.collect()
        rss_before = _maxrss_mb()
        profiler = None
        if task.get("profile"):
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = loop_run(engine.run())
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        if profiler is not None:
            profiler.disable()
            _print_profile(profiler, task["profile"])
        peak = _maxrss_mb()
        wal = Path(f"{path}-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        grades = store.grades(result.run_id)
        parsed = sum(g["status"] == "parsed" for g in grades)
        store.close()  # checkpoints the WAL into the main file
        store_bytes = path.stat().st_size
    return {
        "items": result.items,
        "sent": result.stats.sent,
        "cached": result.stats.cached,
        "parsed_grades": parsed,
        "unparsed_rounds": result.unparsed_rounds,
        "retries": result.retries,
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "store_mb": store_bytes / 2**20,
        "wal_mb_before_close": wal_bytes / 2**20,
    }


def _print_profile(profiler: Any, path: str) -> None:
    import pstats

    profiler.dump_stats(path)
    for order in ("tottime", "cumulative"):
        stats = pstats.Stats(profiler, stream=sys.stderr).strip_dirs().sort_stats(order)
        print(f"\n=== top 35 by {order} ===", file=sys.stderr)
        stats.print_stats(35)


def measure_sequential(task: dict[str, Any]) -> dict[str, Any]:
    """The research-script way: one request at a time, synchronous urllib, no store."""
    import urllib.request

    from skillmix import prompts
    from skillmix.catalog.load import load_catalog
    from skillmix.catalog.sampling import sample_items
    from skillmix.prompts.rubric import build_rubric
    from skillmix.protocol.verdicts import verdict_json_schema

    catalog = load_catalog()
    templates = prompts.load_templates()
    url = task["base_url"] + "/chat/completions"

    def post(messages: list[dict[str, str]], schema: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {
            "model": MODEL,
            "messages": messages,
            "temperature": 0.7,
            "max_tokens": 256,
        }
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": schema, "strict": True},
            }
        req = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=600) as resp:
            return str(json.loads(resp.read())["choices"][0]["message"]["content"])

    items = sample_items(catalog, 2, task["items"], seed=0)
    results = []
    cpu0, t0 = time.process_time(), time.perf_counter()
    for item in items:
        skills = [catalog.skill(s) for s in item.skill_ids]
        topic = catalog.topic(item.topic_id)
        turn1 = prompts.generation_turn1(templates, skills, topic)
        first = post(turn1)
        second = post(prompts.generation_turn2(templates, skills, topic, turn1, first))
        answer = second.split("Answer:", 1)[-1].split("Explanation:", 1)[0].strip()
        rubric = build_rubric(skills, topic)
        grading = prompts.grading(templates, skills, topic, answer, rubric, "json")
        verdict = json.loads(post(grading, verdict_json_schema(rubric)))
        results.append({"item": item.id, "answer": answer, "verdict": verdict})
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "items": len(results),
        "sent": REQUESTS_PER_ITEM * len(results),
        "wall_s": wall,
        "cpu_s": cpu,
    }


def measure_transport(task: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_transport(task))


async def _transport(task: dict[str, Any]) -> dict[str, Any]:
    """`concurrency` workers send the same chat request back to back; count a steady window."""
    from skillmix import prompts
    from skillmix.catalog.load import load_catalog
    from skillmix.catalog.sampling import sample_items

    catalog = load_catalog()
    item = sample_items(catalog, 2, 1, seed=0)[0]
    messages = prompts.generation_turn1(
        prompts.load_templates(),
        [catalog.skill(s) for s in item.skill_ids],
        catalog.topic(item.topic_id),
    )
    concurrency = task["concurrency"]
    send, close = await _sender(task["transport"], task["base_url"], concurrency, messages)
    await send()  # fail here, with the client's own error, if the transport cannot work
    done = 0
    stop = False

    async def worker() -> None:
        nonlocal done
        while not stop:
            text = await send()
            if not text.startswith("Answer:"):
                raise RuntimeError(f"unexpected answer {text[:80]!r}")
            done += 1

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(task["warmup_s"])  # connections are opened during the warm-up
    n0, cpu0, t0 = done, time.process_time(), time.perf_counter()
    await asyncio.sleep(task["seconds"])
    n1, cpu1, t1 = done, time.process_time(), time.perf_counter()
    stop = True
    await asyncio.gather(*workers)
    await close()
    return {
        "requests": n1 - n0,
        "requests_total": done + 1,
        "wall_s": t1 - t0,
        "cpu_s": cpu1 - cpu0,
    }


Sender = Callable[[], Awaitable[str]]


async def _sender(
    transport: str, base_url: str, concurrency: int, messages: list[dict[str, str]]
) -> tuple[Sender, Callable[[], Awaitable[None]]]:
    url = base_url + "/chat/completions"
    body = {"model": MODEL, "messages": messages, "temperature": 0.7, "max_tokens": 256}
    timeout = 600.0
    if transport == "skillmix":
        from skillmix.models import ChatRequest
        from skillmix.models.openai_compat import OpenAICompatModel

        model = OpenAICompatModel(
            MODEL,
            base_url=base_url,
            max_concurrency=concurrency,
            timeout_s=timeout,
            max_retries=0,
        )
        request = ChatRequest(tuple(messages), 0.7, 256)

        async def send_skillmix() -> str:
            return (await model.complete(request)).text

        return send_skillmix, model.aclose
    if transport == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

        async def send_aiohttp() -> str:
            async with session.post(url, json=body) as resp:
                resp.raise_for_status()
                data = json.loads(await resp.read())
            return str(data["choices"][0]["message"]["content"])

        return send_aiohttp, session.close
    if transport == "httpx":
        import httpx

        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=timeout,
        )

        async def send_httpx() -> str:
            resp = await client.post(url, json=body)
            resp.raise_for_status()
            return str(resp.json()["choices"][0]["message"]["content"])

        return send_httpx, client.aclose
    if transport.startswith("openai-"):
        import openai

        http_client: Any = None
        if transport == "openai-httpx":
            pass
        elif transport == "openai-httpx-limits":
            import httpx

            http_client = openai.DefaultAsyncHttpxClient(
                limits=httpx.Limits(
                    max_connections=concurrency, max_keepalive_connections=concurrency
                )
            )
        elif transport == "openai-aiohttp":
            http_client = openai.DefaultAioHttpClient()  # needs `pip install openai[aiohttp]`
        else:
            raise ValueError(f"unknown transport {transport}")
        oai = openai.AsyncOpenAI(
            base_url=base_url,
            api_key="bench",
            max_retries=0,
            timeout=timeout,
            http_client=http_client,
        )

        async def send_openai() -> str:
            resp = await oai.chat.completions.create(
                model=MODEL,
                messages=messages,  # type: ignore[arg-type]
                temperature=0.7,
                max_tokens=256,
            )
            return resp.choices[0].message.content or ""

        return send_openai, oai.close
    raise ValueError(f"unknown transport {transport}")


# --- the benchmark (parent process) ---------------------------------------------------------


def ensure_optional_packages() -> dict[str, str]:
    """Install httpx and openai[aiohttp] if missing; return {module: why unavailable}."""
    missing = {m for m in OPTIONAL_PACKAGES if importlib.util.find_spec(m) is None}
    if missing:
        wanted = sorted({OPTIONAL_PACKAGES[m] for m in missing})
        print(f"installing {' '.join(wanted)} with pip ...", file=sys.stderr)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", *wanted],
            capture_output=True,
            text=True,
        )
        importlib.invalidate_caches()
        still = {m for m in missing if importlib.util.find_spec(m) is None}
        reason = (proc.stderr.strip().splitlines() or ["pip install failed"])[-1]
        return {m: f"pip install {OPTIONAL_PACKAGES[m]} failed: {reason}" for m in still}
    return {}


def transport_unavailable(transport: str, problems: dict[str, str]) -> str | None:
    needs = {
        "httpx": ["httpx"],
        "openai-httpx": ["openai", "httpx"],
        "openai-httpx-limits": ["openai", "httpx"],
        "openai-aiohttp": ["openai", "httpx_aiohttp"],
    }.get(transport, [])
    reasons = [problems[m] for m in needs if m in problems]
    return "; ".join(reasons) or None


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """Item counts and durations: each full run lasts about `target_s` at ideal speed.

    Items are a whole number of rounds per worker (items = concurrency x rounds), so that
    no worker is left with one extra item at the end.
    """
    quick = args.quick
    target_s = 2.0 if quick else 10.0
    rounds = math.ceil(target_s / (REQUESTS_PER_ITEM * args.delay))
    rounds = max(1, min(rounds, 8 if quick else 80))  # a cap for tiny delays
    runs = []
    for c in CONCURRENCIES:
        items = c * rounds
        if c == 1:
            items = min(items, 5 if quick else 40)
        runs.append({"concurrency": c, "items": items, "workers": c})
    for c in DEFAULT_WORKER_CONCURRENCIES:
        runs.append({"concurrency": c, "items": c * rounds, "workers": None})
    return {
        "target_s": target_s,
        "runs": runs,
        "sequential_items": 5 if quick else 20,
        "transport_seconds": 2.0 if quick else 5.0,
        "transport_warmup_s": 1.0,
        "memory_items": 1_000 if quick else 10_000,
    }


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    settings = plan(args)
    problems = ensure_optional_packages()
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "delay_s": args.delay,
        "quick": args.quick,
        "plan": settings,
        "full_runs": [],
        "sequential": None,
        "transports": [],
        "memory": None,
    }
    delay = args.delay
    sections = set(args.sections)
    out["sections"] = "".join(sorted(sections))
    with DelayServer(delay) as server:
        _log(f"delay server on port {server.port}, delay {delay:g} s")
        for run in settings["runs"] if "a" in sections else []:
            c = run["concurrency"]
            workers = run["workers"] or "default"
            _log(f"[a] full run: concurrency {c}, {run['items']} items, workers {workers} ...")
            task = {"kind": "run", "base_url": server.base_url, **run}
            row = {**run, **run_child(task, server)}
            row["ideal_items_per_s"] = c / (REQUESTS_PER_ITEM * delay)
            _derive(row, row["ideal_items_per_s"])
            out["full_runs"].append(row)
            _log("    " + _brief(row))

        if "b" in sections:
            _log(f"[b] sequential urllib loop: {settings['sequential_items']} items ...")
            task = {
                "kind": "sequential",
                "base_url": server.base_url,
                "items": settings["sequential_items"],
            }
            row = {"concurrency": 1, **run_child(task, server)}
            row["ideal_items_per_s"] = 1 / (REQUESTS_PER_ITEM * delay)
            _derive(row, row["ideal_items_per_s"])
            out["sequential"] = row
            _log("    " + _brief(row))

        for c in TRANSPORT_CONCURRENCIES if "c" in sections else ():
            for transport in TRANSPORTS:
                row = {"transport": transport, "concurrency": c, "ideal_requests_per_s": c / delay}
                why = transport_unavailable(transport, problems)
                if why:
                    row["error"] = f"unavailable: {why}"
                else:
                    _log(f"[c] transport {transport}, concurrency {c} ...")
                    task = {
                        "kind": "transport",
                        "base_url": server.base_url,
                        "transport": transport,
                        "concurrency": c,
                        "seconds": settings["transport_seconds"],
                        "warmup_s": settings["transport_warmup_s"],
                    }
                    row.update(run_child(task, server, timeout_s=300))
                if "error" not in row:
                    row["requests_per_s"] = row["requests"] / row["wall_s"]
                    row["ratio"] = row["requests_per_s"] / row["ideal_requests_per_s"]
                    row["client_cpu_ms_per_request"] = 1000 * row["cpu_s"] / row["requests"]
                    row["client_cpu_share"] = row["cpu_s"] / row["wall_s"]
                    row["server_cpu_ms_per_request"] = (
                        1000 * row["server_cpu_s"] / row["requests_total"]
                    )
                out["transports"].append(row)
                _log("    " + _brief(row))

    if "d" not in sections:
        return out
    with DelayServer(MEMORY_DELAY_S) as server:
        items = settings["memory_items"]
        _log(
            f"[d] memory: {items} items, concurrency {MEMORY_CONCURRENCY}, "
            f"delay {MEMORY_DELAY_S:g} s ..."
        )
        task = {
            "kind": "run",
            "base_url": server.base_url,
            "concurrency": MEMORY_CONCURRENCY,
            "items": items,
            "workers": MEMORY_CONCURRENCY,
        }
        row = {
            "concurrency": MEMORY_CONCURRENCY,
            "items": items,
            "delay_s": MEMORY_DELAY_S,
            "workers": MEMORY_CONCURRENCY,
            **run_child(task, server),
        }
        row["ideal_items_per_s"] = MEMORY_CONCURRENCY / (REQUESTS_PER_ITEM * MEMORY_DELAY_S)
        _derive(row, row["ideal_items_per_s"])
        out["memory"] = row
        _log("    " + _brief(row))
    return out


def _derive(row: dict[str, Any], ideal_items_per_s: float) -> None:
    if "error" in row:
        return
    expected = REQUESTS_PER_ITEM * row["items"]
    if row["sent"] != expected:
        row["warning"] = f"sent {row['sent']} requests, expected {expected}"
    row["items_per_s"] = row["items"] / row["wall_s"]
    row["requests_per_s"] = row["sent"] / row["wall_s"]
    row["ratio"] = row["items_per_s"] / ideal_items_per_s
    row["client_cpu_ms_per_item"] = 1000 * row["cpu_s"] / row["items"]
    row["client_cpu_share"] = row["cpu_s"] / row["wall_s"]
    row["server_cpu_ms_per_request"] = 1000 * row["server_cpu_s"] / max(1, row["sent"])


def _brief(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"ERROR: {row['error']}"
    if "items_per_s" in row:
        return (
            f"{row['items_per_s']:.1f} items/s ({row['ratio']:.0%} of ideal), "
            f"{row['client_cpu_ms_per_item']:.2f} ms CPU/item, "
            f"client CPU {row['client_cpu_share']:.0%} of a core"
        )
    return (
        f"{row['requests_per_s']:.0f} req/s ({row['ratio']:.0%} of ideal), "
        f"{row['client_cpu_ms_per_request']:.3f} ms CPU/req"
    )


def _machine() -> dict[str, Any]:
    versions = {}
    for name in ("aiohttp", "httpx", "openai", "httpx_aiohttp", "pysbd"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[name] = version(name.replace("_", "-"))
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": versions,
    }


# --- output ----------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _workers(r: dict[str, Any]) -> str:
    return "-" if "workers" not in r else str(r["workers"] or "default")


def _full_row(name: str, r: dict[str, Any]) -> list[str]:
    if "error" in r:
        return [
            name,
            str(r["concurrency"]),
            _workers(r),
            str(r.get("items", "-")),
            *["-"] * 9,
            "ERROR: " + r["error"],
        ]
    return [
        name,
        str(r["concurrency"]),
        _workers(r),
        str(r["items"]),
        f"{r['wall_s']:.1f}",
        f"{r['items_per_s']:.1f}",
        f"{r['requests_per_s']:.0f}",
        f"{r['ideal_items_per_s']:.1f}",
        f"**{r['ratio']:.0%}**",
        f"{r['client_cpu_ms_per_item']:.2f}",
        f"{r['client_cpu_share']:.0%}",
        f"{r['server_cpu_ms_per_request']:.2f}",
        str(r.get("peak_inflight", "-")),
        _other(r) + (f"; {r['warning']}" if "warning" in r else ""),
    ]


def _other(r: dict[str, Any]) -> str:
    other = r.get("other_cpu_cores", 0.0)
    return f"{other:.2f}" + (" (noisy)" if other > NOISY_OTHER_CPU else "")


FULL_HEADER = [
    "run",
    "concurrency",
    "workers",
    "items",
    "wall s",
    "items/s",
    "requests/s",
    "ideal items/s",
    "ratio",
    "client CPU ms/item",
    "client CPU busy",
    "server CPU ms/request",
    "peak in flight",
    "other CPU (cores)",
]
TRANSPORT_HEADER = [
    "transport",
    "concurrency",
    "requests",
    "requests/s",
    "ideal requests/s",
    "ratio",
    "client CPU ms/request",
    "client CPU busy",
    "server CPU ms/request",
    "peak in flight",
    "other CPU (cores)",
]


def _transport_row(r: dict[str, Any]) -> list[str]:
    if "error" in r:
        return [
            r["transport"],
            str(r["concurrency"]),
            "-",
            "-",
            f"{r['ideal_requests_per_s']:.0f}",
            *["-"] * 5,
            r["error"],
        ]
    return [
        r["transport"],
        str(r["concurrency"]),
        str(r["requests"]),
        f"{r['requests_per_s']:.0f}",
        f"{r['ideal_requests_per_s']:.0f}",
        f"**{r['ratio']:.0%}**",
        f"{r['client_cpu_ms_per_request']:.3f}",
        f"{r['client_cpu_share']:.0%}",
        f"{r['server_cpu_ms_per_request']:.3f}",
        str(r.get("peak_inflight", "-")),
        _other(r),
    ]


def render(out: dict[str, Any]) -> str:
    delay = out["delay_s"]
    parts = [
        f"# skillmix throughput, {out['date']}",
        f"Delay server: {delay:g} s per request. {out['machine']['cpus']} CPUs shared by the "
        f"server and the client. Python {out['machine']['python']}. Ideal: full run "
        f"concurrency / ({REQUESTS_PER_ITEM} x delay) items/s; transports concurrency / delay "
        "requests/s. 'client CPU busy' near 100% means the client's one Python thread is the "
        f"bottleneck. 'other CPU' is what other processes used meanwhile; above "
        f"{NOISY_OTHER_CPU} cores a row is marked noisy (the machine was shared).",
    ]
    rows = [_full_row("skillmix run", r) for r in out["full_runs"]]
    if out["sequential"]:
        rows.append(_full_row("sequential urllib loop", out["sequential"]))
    if rows:
        parts += [
            "## a/b. Full runs (3 requests per item) and the one-at-a-time baseline",
            _table(FULL_HEADER, rows),
        ]
    if out["transports"]:
        parts += [
            "## c. Transports: plain chat requests, steady window",
            _table(TRANSPORT_HEADER, [_transport_row(r) for r in out["transports"]]),
        ]
    m = out["memory"]
    if m:
        if "error" in m:
            mrow = [str(m["items"]), *["-"] * 7, "ERROR: " + m["error"]]
        else:
            mrow = [
                str(m["items"]),
                f"{m['delay_s']:g}",
                str(m["concurrency"]),
                f"{m['wall_s']:.1f}",
                f"{m['items_per_s']:.0f}",
                f"{m['client_cpu_ms_per_item']:.2f}",
                f"{m['peak_rss_mb']:.0f} (after imports: {m['rss_before_mb']:.0f})",
                f"{m['store_mb']:.1f}",
                _other(m),
            ]
        parts += [
            "## d. A large run: memory, store size, CPU ceiling",
            _table(
                [
                    "items",
                    "delay s",
                    "concurrency",
                    "wall s",
                    "items/s (CPU-bound)",
                    "client CPU ms/item",
                    "peak RSS MB",
                    "store MB",
                    "other CPU (cores)",
                ],
                [mrow],
            ),
        ]
    summary = []
    for r in out["full_runs"]:
        if "ratio" in r:
            summary.append(
                [
                    f"full run, concurrency {r['concurrency']}, workers {_workers(r)}",
                    f"{r['ratio']:.0%}",
                ]
            )
    if out["sequential"] and "ratio" in out["sequential"]:
        summary.append(["sequential urllib loop", f"{out['sequential']['ratio']:.0%}"])
    for r in out["transports"]:
        if "ratio" in r:
            summary.append(
                [f"transport {r['transport']}, concurrency {r['concurrency']}", f"{r['ratio']:.0%}"]
            )
    parts += ["## Summary: measured / ideal", _table(["setting", "ratio to ideal"], summary)]
    return "\n\n".join(parts) + "\n"


# --- profiling ------------------------------------------------------------------------------

# Where a sample's CPU time goes: the first marker found in its stack (leaf-most first
# wins within a category list order) names its category.
PROFILE_CATEGORIES = (
    ("verdict parsing (parse_verdict)", ("parse_verdict",)),
    ("sentence counting (count_sentences, pysbd)", ("count_sentences",)),
    ("naming penalty", ("naming_penalty",)),
    ("answer extraction", ("extract_answer",)),
    ("store (SQLite writes and reads)", ("Store.",)),
    ("request cache key (ChatRequest.key)", ("ChatRequest.key",)),
    ("HTTP client (OpenAICompatModel.complete, aiohttp)", ("OpenAICompatModel.",)),
    ("prompt rendering and rubric", ("prompts/__init__", "build_rubric", "verdict_json_schema")),
    ("aiohttp connection callbacks (reading responses)", ("aiohttp/",)),
    ("engine and call-cache bookkeeping", ("skillmix/",)),
)


def py_spy_breakdown(raw_path: str, top: int = 30) -> str:
    """Categories and the hottest functions (self time) of a `py-spy record --format raw` file."""
    import collections
    import re

    categories: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(raw_path).read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        frames = [re.sub(r":\d+\)", ")", f) for f in stack.split(";")]
        if not any("run_forever" in f for f in frames):
            continue  # imports and setup, outside the measured run
        n = int(count)
        total += n
        own[frames[-1]] += n
        category = "event loop and other"
        for name, markers in PROFILE_CATEGORIES:
            if any(m in f for f in frames for m in markers):
                category = name
                break
        categories[category] += n
    if not total:
        return "no samples inside the event loop"
    lines = [f"{total} samples inside the event loop", "", "share  category"]
    lines += [f"{100 * n / total:5.1f}% {name}" for name, n in categories.most_common()]
    lines += ["", "share  function (self time)"]
    lines += [f"{100 * n / total:5.1f}% {name}" for name, n in own.most_common(top)]
    return "\n".join(lines)


def profile(args: argparse.Namespace) -> None:
    """One full run at concurrency 256, profiled with py-spy (if installed) or cProfile."""
    import shutil

    c = 256
    rounds = math.ceil(10 / (REQUESTS_PER_ITEM * args.delay))
    items = c * max(1, min(rounds, 80))
    use_py_spy = shutil.which("py-spy") is not None
    with DelayServer(args.delay) as server:
        task = {
            "kind": "run",
            "base_url": server.base_url,
            "concurrency": c,
            "items": items,
            "workers": c,
        }
        if use_py_spy:
            raw = str(HERE / "profile.py-spy.txt")
            _log(f"py-spy: a full run at concurrency {c}, {items} items ...")
            cmd = [
                "py-spy",
                "record",
                "--rate",
                "200",
                "--format",
                "raw",
                "--output",
                raw,
                "--",
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                json.dumps(task),
            ]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"py-spy failed: {proc.stderr[-2000:]}")
            results = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            print(results[-1] if results else proc.stdout[-2000:])
            print(py_spy_breakdown(raw))
            print(f"\nraw stacks: {raw} (flamegraph.pl or speedscope can draw them)")
        else:
            path = str(HERE / "profile.pstats")
            _log(
                f"cProfile (py-spy not found): concurrency {c}, {items} items; "
                "cProfile slows the run down ..."
            )
            row = run_child({**task, "profile": path}, server)
            print(row.pop("stderr", ""))
            print(json.dumps(row, indent=2))
            print(f"\nstats written to {path} (python -m pstats {path})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke check")
    parser.add_argument("--delay", type=float, default=0.2, help="server delay per request (s)")
    parser.add_argument(
        "--out",
        help="JSON results (default bench/results.json; bench/results-quick.json with --quick)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: profile one full run at concurrency 256 (py-spy if "
        "installed, else cProfile) and print where the CPU time goes",
    )
    parser.add_argument(
        "--sections",
        default="abcd",
        help="which measurements to run: a full runs, b sequential baseline, c transports, "
        "d large run (default abcd)",
    )
    parser.add_argument(
        "--cli",
        action="store_true",
        help="instead: issue 11's setup, the whole `skillmix run` process at --workers c "
        "for c in 64, 256 (--repeats times each), with share of ideal and CPU per item",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per concurrency (--cli)")
    parser.add_argument(
        "--against",
        metavar="REV",
        help="with --cli: pair every run with one of git revision REV (alternating which "
        "goes first), for a before/after under the same conditions",
    )
    parser.add_argument(
        "--ceiling",
        action="store_true",
        help="with --cli: also run bench/plain_client.py, the same requests from a bare "
        "client (no store, no report) through aiohttp and through skillmix's own HTTP "
        "client: the most this machine allows",
    )
    parser.add_argument(
        "--cli-rounds", type=int, help="items per worker (--cli; default: 10 s at ideal speed)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.sections or not set(args.sections) <= set("abcd"):
        parser.error("--sections takes letters from abcd, e.g. --sections ad")
    if args.child:
        child_main(json.loads(args.child))
        return
    if args.profile:
        profile(args)
        return
    if args.cli:
        out = cli_benchmark(args)
        path = Path(args.out or HERE / "results-cli.json")
        path.write_text(json.dumps(out, indent=2) + "\n")
        print(render_cli(out))
        print(f"all numbers: {path}")
        return
    out = benchmark(args)
    path = Path(args.out or HERE / ("results-quick.json" if args.quick else "results.json"))
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(render(out))
    print(f"all numbers: {path}")


if __name__ == "__main__":
    main()
