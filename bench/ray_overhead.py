"""What the Ray executor costs: `skillmix run` at concurrency 256, local vs `--executor ray`.

    python bench/ray_overhead.py                  # 3 runs of each, alternating
    python bench/ray_overhead.py --repeats 5 --concurrency 64 --actors 4

Starts `bench/delay_server.py` (every request answered after a fixed delay) and a one-node
Ray cluster (`ray start --head` on 127.0.0.1, with a token of its own; stopped at the end
through its process group), then alternates local and Ray runs of the same command:
bench/throughput.py's `measure_cli` (k=2, 1 generation and 1 grading round, a fresh
store, `--workers c` and `max_concurrency = c`), the Ray one with `--executor ray
--ray-address ... --ray-actors N`. Prints the medians and the ratio Ray / local of
requests/s over the whole process and of the run phase's share of ideal (from the `run`
line to the usage line: the actors start inside it). On one machine the actors share the
cores with the driver and the server, so the ratio measures Ray's overhead, not a
speed-up; `other cores` is the CPU used outside the driver and the server (the actors,
Ray's daemons, and anyone else on the machine). Every number goes to
bench/results-ray.json (--out).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import (  # noqa: E402  (bench/ is not a package)
    REQUESTS_PER_ITEM,
    DelayServer,
    _free_port,
    _log,
    _machine,
    measure_cli,
)

KEYS = ("requests_per_s", "share_of_ideal", "run_share_of_ideal", "cpu_ms_per_item")


@contextlib.contextmanager
def ray_head(cpus: int) -> Iterator[str]:
    """A one-node Ray cluster on 127.0.0.1 for the benchmark; yields its address.

    Sets RAY_AUTH_MODE and RAY_AUTH_TOKEN in this process's environment, so that the
    `skillmix` commands it starts connect with the cluster's token.
    """
    root = Path(tempfile.mkdtemp(prefix="smbench-ray-"))
    port = _free_port()
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex})
    ray = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen(
        [
            str(ray) if ray.exists() else "ray",
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={cpus}",
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

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Ray runtime started" in line:
                started.set()
        started.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        if not started.wait(300) or proc.poll() is not None:
            raise RuntimeError("ray start --head failed:\n" + "".join(lines[-40:]))
        yield f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        subprocess.run(["rm", "-rf", str(root)], check=False)


def _brief(row: dict[str, Any]) -> str:
    if "error" in row:
        return f"ERROR {row['error']}: {row.get('stderr', '')[-800:]}"
    return (
        f"wall {row['wall_s']:.1f} s, {row['requests_per_s']:.0f} req/s, "
        f"{row['share_of_ideal']:.1%} of ideal (run phase {row['run_share_of_ideal']:.1%}), "
        f"driver CPU {row['cpu_ms_per_item']:.2f} ms/item, other {row['other_cpu_cores']:.2f} "
        f"cores, in flight {row['peak_inflight']}"
    )


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    rounds = args.rounds or max(1, math.ceil(10.0 / (REQUESTS_PER_ITEM * args.delay)))
    items = args.concurrency * rounds
    out: dict[str, Any] = {
        "machine": _machine(),
        "delay_s": args.delay,
        "concurrency": args.concurrency,
        "items": items,
        "actors": args.actors,
        "rows": {"local": [], "ray": []},
    }
    with DelayServer(args.delay) as server, ray_head(os.cpu_count() or 1) as address:
        ray_options = ("--executor", "ray", "--ray-address", address)
        ray_options += ("--ray-actors", str(args.actors))
        for repeat in range(args.repeats):
            for executor, extra in (("local", ()), ("ray", ray_options)):
                _log(
                    f"  {executor} c={args.concurrency} items={items} ({repeat + 1}/{args.repeats})"
                )
                row = measure_cli(server, args.concurrency, items, extra)
                _log(f"    {_brief(row)}")
                out["rows"][executor].append(row)
    medians = {
        executor: {key: statistics.median(r[key] for r in ok) for key in KEYS}
        for executor, rows in out["rows"].items()
        if (ok := [r for r in rows if "error" not in r])
    }
    out["medians"] = medians
    if len(medians) == 2:
        out["ratio_ray_to_local"] = {
            key: medians["ray"][key] / medians["local"][key] for key in KEYS
        }
    return out


def render(out: dict[str, Any]) -> str:
    lines = [
        f"concurrency {out['concurrency']}, {out['items']} items, delay {out['delay_s']} s, "
        f"{out['actors']} actors",
        "",
        "| executor | runs | requests/s | share of ideal | run phase share | driver CPU ms/item "
        "| other cores |",
        "|---|---|---|---|---|---|---|",
    ]
    for executor, med in out["medians"].items():
        ok = [r for r in out["rows"][executor] if "error" not in r]
        other = statistics.median(r["other_cpu_cores"] for r in ok)
        lines.append(
            f"| {executor} | {len(ok)} | {med['requests_per_s']:.0f} | "
            f"{med['share_of_ideal']:.2f} | {med['run_share_of_ideal']:.2f} | "
            f"{med['cpu_ms_per_item']:.2f} | {other:.2f} |"
        )
    if "ratio_ray_to_local" in out:
        ratio = out["ratio_ray_to_local"]
        lines += [
            "",
            f"Ray / local: requests/s {ratio['requests_per_s']:.2f}, run phase "
            f"{ratio['run_share_of_ideal']:.2f}, driver CPU per item "
            f"{ratio['cpu_ms_per_item']:.2f}",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--delay", type=float, default=0.2, help="server delay per request (s)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each executor")
    parser.add_argument("--rounds", type=int, help="items per worker (default: 10 s at ideal)")
    parser.add_argument("--actors", type=int, default=2, help="--ray-actors")
    parser.add_argument("--out", help="JSON results (default bench/results-ray.json)")
    args = parser.parse_args()
    out = benchmark(args)
    path = Path(args.out or HERE / "results-ray.json")
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(render(out))
    print(f"all numbers: {path}")


if __name__ == "__main__":
    main()
