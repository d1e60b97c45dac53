"""Output that fits the terminal: short model names with endpoint footnotes, and tables
that fall back to one block per record instead of cutting ids and names short.

The CLI runs for real (subprocesses, real stores made against servers on 127.0.0.1) at
COLUMNS=80 and COLUMNS=200. Leaves test-artifacts/leaderboard-80.{txt,svg,png}: the
leaderboard as an 80-column terminal shows it, for people to look at.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from rich.text import Text

from report_fixtures import TwoRuns, two_student_runs
from skillmix.report.layout import Column, column_widths, print_records
from skillmix.report.names import ModelNames, display_model, split_endpoint

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


# --- model names --------------------------------------------------------------------------


def test_endpoint_goes_to_a_footnote():
    names = ModelNames(["openai:gpt-4o@http://gpu-7:8000/v1"])
    assert names("openai:gpt-4o@http://gpu-7:8000/v1") == "gpt-4o¹"
    assert names.footnotes() == ["¹ endpoint gpu-7:8000/v1 (openai)"]


def test_models_at_one_endpoint_share_a_marker():
    a = "openai:student@https://host:1/v1"
    b = "openai:judge@https://host:1/v1"
    c = "openai:judge@http://other:2/v1"
    names = ModelNames([a, b, c])
    assert [names(a), names(b), names(c)] == ["student¹", "judge¹", "judge²"]
    assert names.footnotes() == [
        "¹ endpoint host:1/v1 (openai)",
        "² endpoint other:2/v1 (openai)",
    ]


def test_names_stay_distinct_and_unmarked_without_endpoints():
    names = ModelNames(["openai:gpt-4o", "litellm:gpt-4o", "embedded", "combined"])
    assert names("openai:gpt-4o") == "gpt-4o"
    assert names("litellm:gpt-4o") == "litellm:gpt-4o"  # would look the same as the first
    assert names("embedded") == "embedded" and names("combined") == "combined"
    assert names.footnotes() == []


def test_org_paths_and_version_pins_are_kept():
    hf = "openai:meta-llama/Llama-3.1-8B-Instruct@http://vllm:8000/v1"
    pin = "litellm:vertex_ai/claude-3-5-sonnet@20240620"
    names = ModelNames([hf, pin])
    assert names(hf) == "meta-llama/Llama-3.1-8B-Instruct¹"
    assert names(pin) == "vertex_ai/claude-3-5-sonnet@20240620"
    assert split_endpoint(pin) == (pin, "")
    assert display_model(f"{pin}@https://proxy/v1") == f"{pin} @ proxy/v1"


# --- layout -------------------------------------------------------------------------------


COLUMNS = [
    Column("run"),
    Column("k", justify="right"),
    Column("full marks", justify="right", wrap=True),
    Column("all skills", justify="right", wrap=True),
]
ROW = ["run-73ff5e22218e", "2", "0.95 [0.90,1.00]", "1.00 [1.00,1.00]"]


def _printed(width: int, rows: list[list[str]]) -> str:
    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    print_records(console, COLUMNS, rows, title="t", caption="c", footnotes=["¹ note"])
    return console.export_text()


def test_a_table_that_fits_is_a_table():
    text = _printed(80, [ROW])
    assert "┃ run" in text and "0.95 [0.90,1.00]" in text
    assert text.splitlines()[-2:] == ["c", "¹ note"]


def test_wrapping_columns_break_between_words_only():
    text = _printed(52, [ROW])
    assert "┃ run" in text and "run-73ff5e22218e" in text
    assert "[0.90,1.00]" in text and "0.95" in text and "…" not in text
    # Columns that need the same room wrap together.
    assert column_widths(COLUMNS, [[Text(c) for c in ROW]], 52) == [16, 1, 11, 11]


def test_too_narrow_for_columns_gives_one_block_per_record():
    text = _printed(30, [ROW, ["run-2", "3", "—", "—"]])
    assert "┃" not in text and "…" not in text
    blocks = text.split("\n\n")
    assert len(blocks) == 2
    assert re.search(r"^run\s+run-73ff5e22218e\s*$", blocks[0], flags=re.M)
    assert re.search(r"^full marks\s+0.95 \[0.90,1.00\]\s*$", blocks[0], flags=re.M)
    assert all(len(line) <= 30 for line in text.splitlines())


def test_cells_are_text_not_markup():
    text = _printed(200, [["[bold]x[/]", "2", "—", "—"]])
    assert "[bold]x[/]" in text


# --- the commands at 80 and 200 columns ---------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRuns]:
    with two_student_runs(tmp_path_factory.mktemp("layout")) as built:
        yield built


def cli(runs: TwoRuns, columns: int, *args: str, color: bool = False) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "SKILLMIX_STORE": str(runs.store_path)}
    env.pop("NO_COLOR", None)
    if color:
        env["FORCE_COLOR"] = "1"
    else:
        env["NO_COLOR"] = "1"
    proc = subprocess.run(
        [sys.executable, "-m", "skillmix.cli", *args],
        cwd=runs.store_path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _visible(runs: TwoRuns) -> list[str]:
    """What must be readable whole: run ids, k values, student and judge names."""
    return [runs.careful, runs.sloppy, "careful-student", "sloppy-student", "fair-judge"]


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.parametrize(
    "command", [("leaderboard",), ("runs",), ("report",), ("compare", "RUN_A", "RUN_B")]
)
def test_ids_names_and_k_are_whole_at_any_width(
    runs: TwoRuns, columns: int, command: tuple[str, ...]
):
    args = [{"RUN_A": runs.careful, "RUN_B": runs.sloppy}.get(a, a) for a in command]
    out = cli(runs, columns, *args)
    assert "…" not in out
    assert all(len(line) <= columns for line in out.splitlines()), out
    for word in _visible(runs):
        if command[0] == "compare" and "student" in word:
            continue  # compare names the runs, not their students
        if command[0] == "report" and (word == runs.careful or word == "careful-student"):
            continue  # report shows the latest run
        assert word in out, (word, out)
    for k in ("2,3",) if command[0] == "runs" else ("2", "3"):
        assert re.search(rf"(?m)^k\s+{k}\s*$|│\s*{k}\s*│", out), (k, out)
    # Endpoints are in footnotes, once each, without a scheme.
    assert "http://" not in out
    judge_endpoint = runs.judge.base_url.removeprefix("http://")
    assert out.count(f"endpoint {judge_endpoint} (openai)") == 1


def _leaderboard_rows(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("│")]


def test_leaderboard_at_200_is_one_line_per_row(runs: TwoRuns):
    out = cli(runs, 200, "leaderboard")
    rows = _leaderboard_rows(out)
    assert len(rows) == 4
    for line in rows:
        cells = [c.strip() for c in line.strip("│").split("│")]
        assert cells[0] in ("2", "3")
        assert cells[1] in ("careful-student¹", "sloppy-student³")
        assert cells[2] == "fair-judge²"
        assert cells[7] in (runs.careful, runs.sloppy)
    assert "full marks: every criterion met" in out.splitlines()[-1]


def test_leaderboard_at_80_is_one_block_per_row(runs: TwoRuns):
    out = cli(runs, 80, "leaderboard")
    assert _leaderboard_rows(out) == []
    blocks = [b for b in out.split("\n\n") if "run " in b]
    assert len(blocks) == 4
    for block in blocks:
        fields = dict(
            re.match(r"(\S+(?: \S+)*)\s{2,}(.*\S)", line).groups()  # type: ignore[union-attr]
            for line in block.splitlines()
            if re.match(r"\S+(?: \S+)*\s{2,}\S", line)
        )
        assert fields["k"] in ("2", "3")
        assert fields["student"] in ("careful-student¹", "sloppy-student³")
        assert fields["judge"] == "fair-judge²"
        assert fields["run"] in (runs.careful, runs.sloppy)
        assert re.fullmatch(r"\d\.\d\d \[\d\.\d\d,\d\.\d\d\]", fields["full marks"])


def test_screenshot_of_the_leaderboard_at_80_columns(runs: TwoRuns):
    """The leaderboard as an 80-column terminal shows it (colours included), as text, SVG
    and PNG in test-artifacts/ for people to look at."""
    from browser import launch, sync_api

    ansi = cli(runs, 80, "leaderboard", color=True)
    assert "\x1b[" in ansi
    console = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(Text.from_ansi(ansi), end="")
    ARTIFACTS.mkdir(exist_ok=True)
    text = console.export_text(clear=False)
    assert "…" not in text and all(len(line) <= 80 for line in text.splitlines())
    (ARTIFACTS / "leaderboard-80.txt").write_text(text)
    svg = ARTIFACTS / "leaderboard-80.svg"
    svg.write_text(console.export_svg(title="skillmix leaderboard (COLUMNS=80)"))
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1000, "height": 600})
        page.goto(svg.as_uri())
        page.locator("svg").screenshot(path=str(ARTIFACTS / "leaderboard-80.png"))
        browser.close()
    assert (ARTIFACTS / "leaderboard-80.png").stat().st_size > 10_000
