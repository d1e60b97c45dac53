"""Does a whole `skillmix run` on the embedded model go as fast as raw llama.cpp?

    python bench/embedded.py                    # 5 repeats of the small run below
    python bench/embedded.py --repeats 3 --items 3 --label after-3-items
    python bench/embedded.py --out /tmp/embedded.json
    python bench/embedded.py --repeats 3 --label after --append   # more repeats, later

1. A reference run: `skillmix run --student embedded --judge embedded --k 2 --items 1
   --generation-rounds 1 --grading-rounds 2` into a temporary store (untimed; it also
   warms the page cache). Its calls (messages and settings), in the order the run made
   them (the store's insertion order: the embedded model answers one call at a time, so
   the order calls were stored is the order they ran), are the workload.
2. Then, alternating which side goes first, `--repeats` times, each in a fresh process:
   - raw: `llama_cpp.Llama` loaded with the embedded provider's parameters (same GGUF,
     n_ctx, threads, seed, llama.cpp's extra weight buffers off) replays the calls in that
     order with the same sampling settings (temperature, max_tokens, seed, grammar built
     beforehand from the same JSON schema). Timed: the replay only.
   - CLI: the same `skillmix run` into a fresh store, called in-process through the click
     group. Timed: the wall time of the run itself (catalog, sampling, every model call,
     the store, the report files), after imports and model load; those two are reported
     apart as startup. Summing the calls' stored latencies is not used: it counts the
     time a call waits for the model behind another.
   Both sides load the model and answer one tiny warm-up request before the clock starts.
3. Prints a markdown table (raw s, CLI s, ratio) and merges it, under `--label`, into
   the results file (bench/embedded-results.json), with the medians, each side's fastest
   repeat, and each side's median over its quiet repeats: those during which other
   processes kept at most 0.1 cores busy. On a shared machine that last figure is the one
   to read: llama.cpp's threads spin at barriers, so a core taken by another process can
   slow a repeat several times over, on either side.

Each side also checks its answers against the reference run's: the same calls in the same
order must give the same text whatever process and thread answered them (not in another
order: llama.cpp reuses the prompt cached from the call before, which can change a sampled
token). `prompt tokens evaluated` counts those llama.cpp could not reuse in this order.
`other cores` is the CPU that other processes on the machine used meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "embedded-results.json"
N_CTX = 4096  # EmbeddedModel's default context window
WARMUP = [{"role": "user", "content": "Say hello."}]
# A repeat is quiet when other processes kept at most this many cores busy meanwhile.
QUIET_OTHER_CORES = 0.1


def run_args(args: argparse.Namespace, store: Path, out: Path) -> list[str]:
    return [
        "run",
        "--student",
        "embedded",
        "--judge",
        "embedded",
        "--k",
        str(args.k),
        "--items",
        str(args.items),
        "--generation-rounds",
        "1",
        "--grading-rounds",
        str(args.grading_rounds),
        "--store",
        str(store),
        "--out",
        str(out),
    ]


# --- the two sides, each run in its own process -------------------------------------------


def side_cli(argv: list[str], report: Path) -> None:
    """`skillmix run` in this process: imports, model load and warm-up, then the run."""
    started = time.perf_counter()
    from skillmix.cli import main
    from skillmix.models import ChatRequest
    from skillmix.models.embedded import EmbeddedModel

    imported = time.perf_counter()
    warmup = ChatRequest(tuple(WARMUP), max_tokens=8, seed=1)
    asyncio.run(EmbeddedModel().complete(warmup))
    loaded = time.perf_counter()
    cpu0 = _machine_busy(), _own_cpu()
    main(argv, standalone_mode=False)
    finished = time.perf_counter()
    other = _other_cores(cpu0, finished - loaded)
    report.write_text(
        json.dumps(
            {
                "import_s": imported - started,
                "load_s": loaded - imported,
                "run_s": finished - loaded,
                "other_cores": other,
            }
        )
    )


def side_raw(store: Path, report: Path) -> None:
    """Replay the reference run's calls through `llama_cpp.Llama`, one after the other."""
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

    # Loading only: the same parameters as the embedded provider, with the context
    # manager it loads under (extra weight buffers off: AMX kernels crash in some VMs).
    from skillmix.models.embedded import gguf_path, relax_schema, without_extra_buffers

    started = time.perf_counter()
    threads = max(1, min(4, os.cpu_count() or 1))  # as EmbeddedModel
    llm: Any  # llama-cpp-python's message and response types are narrower than JSON
    with without_extra_buffers():
        llm = Llama(
            model_path=str(gguf_path()), n_ctx=N_CTX, n_threads=threads, verbose=False, seed=0
        )
    llm.create_chat_completion(messages=WARMUP, max_tokens=8, seed=1)
    loaded = time.perf_counter()

    calls = stored_calls(store)
    grammars: dict[str, Any] = {}
    for call in calls:
        schema = call["settings"].get("json_schema")
        if schema is not None:
            key = json.dumps(schema, sort_keys=True)
            if key not in grammars:
                relaxed, _ = relax_schema(as_sent(schema))
                grammars[key] = LlamaGrammar.from_json_schema(json.dumps(relaxed), verbose=False)

    texts: list[str] = []
    evaluated = 0
    cpu0 = _machine_busy(), _own_cpu()
    clock = time.perf_counter()
    for call in calls:
        settings = call["settings"]
        temperature = settings.get("temperature")
        kwargs: dict[str, Any] = {
            "messages": call["messages"],
            "temperature": 0.7 if temperature is None else temperature,  # the local default
            "max_tokens": settings["max_tokens"],
            "seed": ((settings.get("seed") or 0) + 7919 * settings.get("sample", 0)) % (2**31 - 1),
        }
        schema = settings.get("json_schema")
        if schema is not None:
            kwargs["grammar"] = grammars[json.dumps(schema, sort_keys=True)]
        before = list(llm._input_ids[: llm.n_tokens])
        out = llm.create_chat_completion(**kwargs)
        evaluated += _evaluated(before, llm, int(out["usage"]["prompt_tokens"]))
        texts.append(out["choices"][0]["message"].get("content") or "")
    elapsed = time.perf_counter() - clock
    report.write_text(
        json.dumps(
            {
                "load_s": loaded - started,
                "run_s": elapsed,
                "other_cores": _other_cores(cpu0, elapsed),
                "texts": texts,
                "prompt_tokens": sum(c["prompt_tokens"] for c in calls),
                "prompt_tokens_evaluated": evaluated,
            }
        )
    )


def as_sent(schema: Any) -> Any:
    """A stored JSON schema with its properties back in the order they were sent.

    The store keeps settings with sorted keys, but a grammar writes an object's properties
    in the schema's order, so that order changes the answer; the verdict schemas list
    every property under `required`, in the order sent.
    """
    if isinstance(schema, list):
        return [as_sent(node) for node in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: as_sent(value) for key, value in schema.items()}
    properties, required = out.get("properties"), out.get("required")
    if isinstance(properties, dict) and isinstance(required, list):
        order = [name for name in required if name in properties]
        order += [name for name in properties if name not in order]
        out["properties"] = {name: properties[name] for name in order}
    return out


def _evaluated(before: list[int], llm: Any, prompt_tokens: int) -> int:
    """Prompt tokens llama.cpp had to evaluate: those past the prefix it kept from before."""
    prompt = list(llm._input_ids[:prompt_tokens])
    shared = 0
    for a, b in zip(before, prompt, strict=False):
        if a != b:
            break
        shared += 1
    if shared == prompt_tokens:  # the whole prompt was cached: one token is replayed
        shared -= 1
    return prompt_tokens - shared


def stored_calls(store: Path) -> list[dict[str, Any]]:
    """The calls of a store, in the order they were stored."""
    db = sqlite3.connect(store)
    try:
        rows = db.execute(
            "SELECT key, role, messages, settings, response, prompt_tokens FROM calls "
            "ORDER BY rowid"
        ).fetchall()
    finally:
        db.close()
    return [
        {
            "key": key,
            "role": role,
            "messages": json.loads(messages),
            "settings": json.loads(settings),
            "response": response,
            "prompt_tokens": prompt_tokens,
        }
        for key, role, messages, settings, response, prompt_tokens in rows
    ]


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores, all processes)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _other_cores(start: tuple[float, float], wall: float) -> float:
    """Cores that other processes kept busy on average since `start`."""
    busy, own = _machine_busy() - start[0], _own_cpu() - start[1]
    return max(0.0, busy - own) / wall if wall > 0 else 0.0


# --- the driver ----------------------------------------------------------------------------


def in_process(side: str, *extra: str, report: Path) -> dict[str, Any]:
    """Run one side in a fresh Python process and return what it measured.

    `extra`: the raw side's options, or the CLI side's `skillmix` arguments.
    """
    proc = subprocess.run(
        [sys.executable, __file__, "--side", side, "--report", str(report), "--", *extra],
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the {side} side failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return dict(json.loads(report.read_text()))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="skillmix-bench-") as tmp:
        work = Path(tmp)
        reference = work / "reference.sqlite"
        print("reference run ...", file=sys.stderr)
        setup = in_process(
            "cli", *run_args(args, reference, work / "out-ref"), report=work / "ref.json"
        )
        calls = stored_calls(reference)
        answers = [c["response"] for c in calls]
        rows = []
        for repeat in range(args.repeats):
            sides = ("raw", "cli") if repeat % 2 == 0 else ("cli", "raw")
            row: dict[str, Any] = {"repeat": repeat + 1, "first": sides[0]}
            for side in sides:
                report = work / f"{side}-{repeat}.json"
                if side == "raw":
                    raw = in_process("raw", str(reference), report=report)
                    row["raw_s"] = raw["run_s"]
                    row["raw_other_cores"] = raw["other_cores"]
                    row["raw_same_answers"] = raw.pop("texts") == answers
                    row["prompt_tokens"] = raw["prompt_tokens"]
                    row["prompt_tokens_evaluated"] = raw["prompt_tokens_evaluated"]
                else:
                    store = work / f"cli-{repeat}.sqlite"
                    cli = in_process(
                        "cli", *run_args(args, store, work / f"out-{repeat}"), report=report
                    )
                    row["cli_s"] = cli["run_s"]
                    row["cli_startup_s"] = cli["import_s"] + cli["load_s"]
                    row["cli_other_cores"] = cli["other_cores"]
                    row["cli_same_answers"] = _answers(stored_calls(store)) == _answers(calls)
            row["ratio"] = row["cli_s"] / row["raw_s"]
            rows.append(row)
            print(f"repeat {repeat + 1}: {_line(row)}", file=sys.stderr)
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "command": "skillmix " + " ".join(run_args(args, Path("STORE"), Path("OUT"))),
        "calls": [{"role": c["role"], "prompt_tokens": c["prompt_tokens"]} for c in calls],
        "reference_startup_s": setup["import_s"] + setup["load_s"],
        **summary(rows),
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows and three summaries of them: the medians; each side's fastest repeat; and
    each side's median over its quiet repeats (other processes used at most
    `QUIET_OTHER_CORES` cores meanwhile), the fairest figure on a shared machine, where
    llama.cpp's spinning threads slow down several times over when a core is taken."""

    def quiet(side: str) -> list[float]:
        return [r[f"{side}_s"] for r in rows if r[f"{side}_other_cores"] <= QUIET_OTHER_CORES]

    raw, cli = min(r["raw_s"] for r in rows), min(r["cli_s"] for r in rows)
    out: dict[str, Any] = {
        "rows": rows,
        "median": {
            name: statistics.median(r[name] for r in rows) for name in ("raw_s", "cli_s", "ratio")
        },
        "best": {"raw_s": raw, "cli_s": cli, "ratio": cli / raw},
        "quiet": None,
    }
    quiet_raw, quiet_cli = quiet("raw"), quiet("cli")
    if quiet_raw and quiet_cli:
        raw, cli = statistics.median(quiet_raw), statistics.median(quiet_cli)
        out["quiet"] = {
            "raw_s": raw,
            "cli_s": cli,
            "ratio": cli / raw,
            "raw_n": len(quiet_raw),
            "cli_n": len(quiet_cli),
        }
    return out


def _answers(calls: list[dict[str, Any]]) -> dict[str, str]:
    """Each request's answer, by request key (the order of calls may differ between runs)."""
    return {c["key"]: c["response"] for c in calls}


def _line(row: dict[str, Any]) -> str:
    return f"raw {row['raw_s']:.2f} s, CLI {row['cli_s']:.2f} s, ratio {row['ratio']:.3f}"


def _machine() -> dict[str, Any]:
    import llama_cpp

    return {
        "cpus": os.cpu_count(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "llama_cpp_python": llama_cpp.__version__,
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def table(result: dict[str, Any]) -> str:
    lines = [
        "| repeat | first | raw s | CLI s | ratio | same answers | prompt tokens evaluated "
        "| other cores (raw / CLI) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        same = "yes" if r["raw_same_answers"] and r["cli_same_answers"] else "NO"
        lines.append(
            f"| {r['repeat']} | {r['first']} | {r['raw_s']:.2f} | {r['cli_s']:.2f} "
            f"| {r['ratio']:.3f} | {same} | {r['prompt_tokens_evaluated']} of "
            f"{r['prompt_tokens']} | {r['raw_other_cores']:.2f} / {r['cli_other_cores']:.2f} |"
        )
    for name in ("median", "best", "quiet"):
        m = result[name]
        if m is None:
            lines.append(f"| {name} | no repeat was quiet | | | | | | |")
            continue
        label = f"quiet ({m['raw_n']} / {m['cli_n']})" if name == "quiet" else name
        lines.append(
            f"| {label} | | {m['raw_s']:.2f} | {m['cli_s']:.2f} | {m['ratio']:.3f} | | | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--items", type=int, default=1)
    parser.add_argument("--grading-rounds", type=int, default=2)
    parser.add_argument("--label", default="latest", help="key of this result in --out")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--append",
        action="store_true",
        help="add these repeats to those already under --label (on a shared machine, "
        "measure at several moments)",
    )
    parser.add_argument("--side", choices=("cli", "raw"), help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args, rest = parser.parse_args(argv[:cut]), argv[cut + 1 :]
    if args.side == "cli":
        side_cli(rest, args.report)
        return
    if args.side == "raw":
        side_raw(Path(rest[0]), args.report)
        return
    result = measure(args)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if args.append and args.label in previous:
        if previous[args.label]["command"] != result["command"]:
            parser.error(f"--append: {args.label!r} in {args.out} measured another command")
        rows = previous[args.label]["rows"] + result["rows"]
        for n, row in enumerate(rows, 1):
            row["repeat"] = n
        result.update(summary(rows))
    print(f"`{result['command']}`, {len(result['calls'])} calls\n")
    print(table(result))
    previous[args.label] = result
    args.out.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"\nwritten to {args.out} under {args.label!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
