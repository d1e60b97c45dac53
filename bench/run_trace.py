"""Where a `skillmix run`'s time over ideal goes, request by request.

    python bench/run_trace.py                      # c = 256, 17 items per worker
    python bench/run_trace.py --concurrency 64 --out trace.json

Runs the command `throughput.py --cli` measures (k = 2, one generation and one grading
round, `--workers c`, at most c requests in flight, 200 ms delay server, fresh store) once,
with every HTTP exchange timed inside the process, per worker: this script runs the CLI
itself, after wrapping `HttpClient._exchange` (sending a request and reading its answer).
The ideal gives each worker `rounds x 3` exchanges of exactly the delay, back to back; the
report says what each worker spent beyond that:

- the exchanges beyond the server's delay (the server, the network, the loop reading it);
- the gaps between an answer and the worker's next request (the engine, the store and the
  group commit, and whatever else the loop was doing meanwhile);
- its first request's start after the first worker's, and its last answer's end before
  the last worker's: the run ends with the slowest worker.

The wrapper costs a little CPU per exchange (two clock reads, one list append), so the
run's own numbers are a little worse than `throughput.py --cli`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import throughput  # noqa: E402  (bench/ is not a package)

LONG_GAP_S = 0.02


def child(out: str, argv: list[str]) -> None:
    """In the CLI's process: time every exchange, run `skillmix`, write the times to `out`."""
    import skillmix.models.http as http
    from skillmix.cli import entry

    exchanges: list[tuple[int, float, float]] = []
    exchange = http.HttpClient._exchange

    async def timed(self: Any, *args: Any) -> Any:
        worker, start = id(asyncio.current_task()), time.perf_counter()
        response = await exchange(self, *args)
        exchanges.append((worker, start, time.perf_counter()))
        return response

    http.HttpClient._exchange = timed  # type: ignore[method-assign]
    sys.argv = ["skillmix", *argv]
    try:
        entry()
    finally:
        Path(out).write_text(json.dumps(exchanges))


def trace(concurrency: int, rounds: int, delay: float) -> dict[str, Any]:
    """One traced run; its exchanges per worker, as (start, end) seconds from the first."""
    with throughput.DelayServer(delay) as server, tempfile.TemporaryDirectory() as tmp:
        spec = f"openai:{throughput.MODEL}@{server.base_url}"
        settings = Path(tmp) / "skillmix.toml"
        settings.write_text(
            f'[models."{spec}"]\nmax_concurrency = {concurrency}\ntimeout_s = 600\n'
        )
        times = Path(tmp) / "exchanges.json"
        argv = [
            "run", "--student", spec, "--judge", spec, "--k", "2",
            "--items", str(rounds * concurrency), "--generation-rounds", "1",
            "--grading-rounds", "1", "--workers", str(concurrency),
            "--settings", str(settings), "--store", str(Path(tmp) / "bench.sqlite"),
            "--out", str(Path(tmp) / "out"),
        ]  # fmt: skip
        code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import run_trace; " + (
            f"run_trace.child({str(times)!r}, {argv!r})"
        )
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", code], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        wall = time.perf_counter() - started
        if done.returncode != 0:
            tail = done.stderr.decode(errors="replace")[-2000:]
            raise SystemExit(f"the traced run failed (exit {done.returncode}):\n{tail}")
        exchanges = json.loads(times.read_text())
    first = min(start for _, start, _ in exchanges)
    workers: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for worker, start, end in exchanges:
        workers[worker].append((start - first, end - first))
    return {
        "concurrency": concurrency,
        "rounds": rounds,
        "delay_s": delay,
        "wall_s": wall,
        "workers": [sorted(w) for w in workers.values()],
    }


def summary(run: dict[str, Any]) -> dict[str, Any]:
    """What each worker spent beyond the ideal, and where the long gaps fall."""
    delay, workers = run["delay_s"], run["workers"]
    over, gaps, per_worker = [], [], []
    late_gaps: dict[int, int] = defaultdict(int)
    for exchanges in workers:
        worker_over = sum(end - start - delay for start, end in exchanges)
        worker_gaps = [b[0] - a[1] for a, b in itertools.pairwise(exchanges)]
        over += [end - start - delay for start, end in exchanges]
        gaps += worker_gaps
        per_worker.append((worker_over, sum(worker_gaps), exchanges[0][0], exchanges[-1][1]))
        for (_, answered), gap in zip(exchanges, worker_gaps, strict=False):
            if gap > LONG_GAP_S:
                late_gaps[int(answered / 0.25)] += 1
    last = max(end for *_, end in per_worker)
    ideal = len(workers[0]) * delay if workers else 0.0

    def ms(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        at = lambda q: 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
        return {
            "mean": 1000 * statistics.fmean(values),
            "p50": at(0.5),
            "p90": at(0.9),
            "p99": at(0.99),
        }

    return {
        "exchanges": len(over),
        "exchange_over_delay_ms": ms(over),
        "gap_ms": ms(gaps),
        "first_to_last_answer_s": last,
        "ideal_s": ideal,
        # Means over workers of where their time beyond the ideal went.
        "worker_mean_s": {
            "exchanges_over_delay": statistics.fmean(w[0] for w in per_worker),
            "gaps": statistics.fmean(w[1] for w in per_worker),
            "first_request_after_the_first": statistics.fmean(w[2] for w in per_worker),
            "done_before_the_last": statistics.fmean(last - w[3] for w in per_worker),
        },
        "last_answers_spread_s": last - min(w[3] for w in per_worker),
        "long_gaps_by_quarter_second": dict(sorted(late_gaps.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=17, help="items per worker")
    parser.add_argument("--delay", type=float, default=0.2, help="server delay (s)")
    parser.add_argument("--out", help="also write every exchange's times here (JSON)")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    run = trace(args.concurrency, args.rounds, args.delay)
    result = summary(run)
    if args.out:
        Path(args.out).write_text(json.dumps({**run, "summary": result}))
    s, w = result, result["worker_mean_s"]
    print(
        f"c = {args.concurrency}: {s['exchanges']} exchanges; first request to last answer "
        f"{s['first_to_last_answer_s']:.2f} s against {s['ideal_s']:.2f} s ideal "
        f"(the whole process: {run['wall_s']:.2f} s)"
    )
    for name in ("exchange_over_delay_ms", "gap_ms"):
        q = s[name]
        print(
            f"  {name}: mean {q['mean']:.2f}, median {q['p50']:.2f}, 90th {q['p90']:.2f}, "
            f"99th {q['p99']:.2f}"
        )
    print(
        f"  per worker, beyond the ideal (means): exchanges {w['exchanges_over_delay']:.3f} s, "
        f"gaps {w['gaps']:.3f} s, first request {w['first_request_after_the_first']:.3f} s "
        f"after the first worker's, done {w['done_before_the_last']:.3f} s before the last; "
        f"last answers spread over {s['last_answers_spread_s']:.3f} s"
    )
    quarters = ", ".join(
        f"{0.25 * q:.2f} s: {n}" for q, n in s["long_gaps_by_quarter_second"].items()
    )
    print(
        f"  gaps over {1000 * LONG_GAP_S:.0f} ms, by the quarter second they start in: {quarters}"
    )


if __name__ == "__main__":
    main()
