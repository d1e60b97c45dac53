"""How long `skillmix --help` takes, next to the interpreter's own start.

    python bench/startup.py                       # this interpreter
    .venv/bin/python bench/startup.py --runs 20   # the README's virtual environment

Each command runs `--runs` times in a fresh process (wall time, from fork to exit); the
table gives the best and the median. The interpreter's own start (`python -c pass`) is
measured the same way, because it is a floor nothing in skillmix can lower: a `.pth` file
in the interpreter's site-packages (this sandbox's system Python has one that imports
certifi) is paid by every command.

Issue 11's target: `skillmix --help` under 0.15 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall_times(command: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, help="also write the numbers here (JSON)")
    args = parser.parse_args()
    python = sys.executable
    script = shutil.which("skillmix", path=str(Path(python).parent))
    commands = {
        "python -c pass": [python, "-c", "pass"],
        "python -c 'import skillmix.cli'": [python, "-c", "import skillmix.cli"],
        "python -m skillmix.cli --help": [python, "-m", "skillmix.cli", "--help"],
    }
    if script:  # the console script pip installs, as a user types it
        commands["skillmix --help"] = [script, "--help"]
    wall_times(commands["python -m skillmix.cli --help"], 2)  # warm the file cache
    rows = {}
    print(f"interpreter: {python}\n")
    print("| command | best s | median s |\n|---|---|---|")
    for name, command in commands.items():
        times = wall_times(command, args.runs)
        rows[name] = {"best_s": min(times), "median_s": statistics.median(times), "runs": times}
        print(f"| `{name}` | {min(times):.3f} | {statistics.median(times):.3f} |")
    if args.out:
        args.out.write_text(json.dumps({"python": python, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
