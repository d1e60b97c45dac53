"""Finding things after a run: report.html next to the other files, item ids to `show`,
a legend that says what the numbers mean, and runs that say how they ended (a killed run
is "interrupted", a paused one's items are "not graded yet").

Real `skillmix` subprocesses against real servers on 127.0.0.1 and real SQLite stores.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import sigkill_at_request, skillmix, wait_until_held
from scripted_server import ScriptedServer, honest_policy
from skillmix.catalog.load import load_catalog
from skillmix.config import RunConfig
from skillmix.report.explain import REFERENCE_FIGURES, reference_cell
from skillmix.store import Store

ROOT = Path(__file__).resolve().parents[1]


def run_args(spec: str, store: Path, *extra: str) -> list[str]:
    return [
        "run",
        "--student",
        spec,
        "--judge",
        spec,
        "--k",
        "2,3",
        "--items",
        "2",
        "--generation-rounds",
        "1",
        "--grading-rounds",
        "2",
        "--store",
        str(store),
        *extra,
    ]


def test_run_writes_report_html_and_points_to_items(tmp_path: Path, server: ScriptedServer):
    proc = skillmix(*run_args(server.spec(), tmp_path / "s.sqlite", "--out", "out"), cwd=tmp_path)
    [folder] = (tmp_path / "out").iterdir()
    run_id = folder.name
    page = folder / "report.html"
    assert f"HTML report: out/{run_id}/report.html" in proc.stderr.splitlines()[-1]
    html = page.read_text(encoding="utf-8")
    assert run_id in html and '<section id="reading">' in html
    assert sorted(p.name for p in folder.iterdir()) == [
        "by_category.csv",
        "by_skill.csv",
        "by_topic.csv",
        "items.csv",
        "metrics.csv",
        "metrics.json",
        "report.html",
    ]

    lines = proc.stdout.rstrip("\n").splitlines()
    assert lines[-1].startswith("full marks: every criterion met · all skills: every skill")
    assert lines[-1].endswith("mean over items; docs/protocol.md")
    items_csv = (folder / "items.csv").read_text().splitlines()[1:]
    item_ids = {row.split(",")[2] for row in items_csv}
    [listed] = [line for line in lines if line.startswith("items: ")]
    shown = re.findall(r"(k\d-[0-9a-f]+) \(k=(\d)", listed)
    assert len(shown) == 3 and {i for i, _ in shown} <= item_ids
    assert {k for _, k in shown} == {"2", "3"}  # one item per k at least
    [hint] = [line for line in lines if line.startswith("see one in full: ")]
    command = hint.removeprefix("see one in full: ").split()
    assert command[:2] == ["skillmix", "show"] and command[2] == shown[0][0]
    detail = skillmix(*command[1:], "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path)
    assert f"item {shown[0][0]}" in detail.stdout and "extracted answer" in detail.stdout


def test_report_writes_report_html_too(tmp_path: Path, server: ScriptedServer):
    store = tmp_path / "s.sqlite"
    skillmix(*run_args(server.spec(), store, "--out", "first"), cwd=tmp_path)
    proc = skillmix("report", "--store", str(store), "--out", "again", cwd=tmp_path)
    [folder] = (tmp_path / "again").iterdir()
    assert (folder / "report.html").is_file()
    assert f"HTML report: again/{folder.name}/report.html" in proc.stderr
    copied = skillmix(
        "report", "--store", str(store), "--out", "again", "--html", "x/r.html", cwd=tmp_path
    )
    assert "HTML report: x/r.html" in copied.stderr
    assert (tmp_path / "x/r.html").read_bytes() == (folder / "report.html").read_bytes()


def test_help_documents_run_id_prefixes():
    for command in ("report", "show", "leaderboard", "compare", "html", "runs"):
        out = skillmix(command, "--help", cwd=ROOT).stdout
        assert "unique start" in out, command


def test_an_ambiguous_prefix_names_the_runs(tmp_path: Path, server: ScriptedServer):
    store = tmp_path / "s.sqlite"
    skillmix(*run_args(server.spec(), store, "--seed", "1"), cwd=tmp_path)
    skillmix(*run_args(server.spec(), store, "--seed", "2"), cwd=tmp_path)
    ids = [line.split()[1] for line in _runs(store, tmp_path).splitlines() if "│ run-" in line]
    assert len(ids) == 2
    proc = skillmix("report", "run-", "--store", str(store), cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "'run-' is the start of 2 run ids" in proc.stderr and all(i in proc.stderr for i in ids)
    unique = ids[0][: next(n for n in range(5, 17) if ids[1][:n] != ids[0][:n])]
    by_prefix = skillmix("report", unique, "--json", "--store", str(store), cwd=tmp_path)
    assert json.loads(by_prefix.stdout)["run_id"] == ids[0]


def _runs(store: Path, cwd: Path) -> str:
    return skillmix("runs", "--store", str(store), cwd=cwd).stdout


def _stored_status(store: Path) -> list[str]:
    db = sqlite3.connect(store)
    try:
        return [row[0] for row in db.execute("SELECT status FROM runs")]
    finally:
        db.close()


def test_a_killed_run_reads_as_interrupted_until_resumed(tmp_path: Path):
    store = tmp_path / "s.sqlite"
    with ScriptedServer(honest_policy) as first:
        port = first.port
        args = run_args(first.spec(), store)
        # While the process lives (the server holds its 5th request), the run is running.
        first.hold_from(5)
        proc = subprocess.Popen(
            [sys.executable, "-m", "skillmix.cli", *args],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_held(first, proc)
            live = _runs(store, tmp_path)
        finally:
            proc.kill()
            proc.wait()
    assert re.search(r"│ running\s+│", live), live

    with ScriptedServer(honest_policy, port=port) as second:
        sigkill_at_request(second, args, tmp_path, at=7)
    assert _stored_status(store) == ["running"]  # as the killed process left it

    runs = _runs(store, tmp_path)
    assert re.search(r"│ interrupted\s+│", runs) and "running" not in runs
    report = skillmix("report", "--store", str(store), cwd=tmp_path).stdout
    assert re.search(r"^Skill-Mix run-\w+ \(interrupted\)", report, flags=re.M)
    assert "the run is incomplete (interrupted)" in report
    assert "re-run the same command to finish it" in report
    as_json = skillmix("report", "--json", "--store", str(store), cwd=tmp_path).stdout
    assert json.loads(as_json)["status"] == "interrupted"
    board = skillmix("leaderboard", "--store", str(store), cwd=tmp_path).stdout
    assert re.search(r"run-\w+ interrupted", board)
    skillmix("html", "--store", str(store), "--out", "r.html", cwd=tmp_path)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<span class="status status-interrupted">interrupted</span>' in page
    assert "is interrupted, not done" in page
    assert _stored_status(store) == ["running"]  # reading wrote nothing

    with ScriptedServer(honest_policy, port=port):
        skillmix(*args, cwd=tmp_path)
    assert re.search(r"│ done\s+│", _runs(store, tmp_path))


@pytest.fixture
def paused_store(tmp_path: Path) -> tuple[Path, str, list[str]]:
    """A paused run whose generations are stored: item 0 graded (but unreadable), the
    rest not graded yet, as a budget pause between generating and grading leaves it."""
    path = tmp_path / "paused.sqlite"
    store = Store(path)
    catalog = load_catalog()
    store.put_catalog(catalog)
    config = RunConfig(
        student="openai:student", judges=("openai:judge",), k=(2,), items=3, grading_rounds=1
    )
    run_id = "run-paused0001"
    store.ensure_run(run_id, config.model_dump(mode="json"), catalog.content_hash, "v2")
    skills = tuple(s.id for s in catalog.skills[:2])
    topic = catalog.topics[0].id
    items = [f"k2-item{n}" for n in range(3)]
    store.put_items(run_id, [(pos, item, 2, skills, topic) for pos, item in enumerate(items)])
    for item in items:
        for gen_round in range(config.generation_rounds):
            store.put_generation(
                run_id,
                item,
                gen_round,
                turn1_key=f"{item}-{gen_round}-1",
                turn2_key=f"{item}-{gen_round}-2",
                answer=f"A short text about {topic}.",
                explanation=None,
                marker_found=True,
                sentences=1,
                named=[],
            )
    store.put_grade(
        run_id,
        items[0],
        0,
        "openai:judge",
        0,
        status="unparsed",
        method="lines",
        verdicts=None,
        reason="no verdict found",
        attempts=3,
        call_keys=[],
    )
    store.set_run_status(run_id, "paused")
    store.close()
    return path, run_id, items


def test_a_paused_run_says_not_graded_yet(tmp_path: Path, paused_store):
    path, run_id, items = paused_store
    out = skillmix("report", "--store", str(path), cwd=tmp_path).stdout
    flat = " ".join(out.split())
    assert f"Skill-Mix {run_id} (paused)" in out
    assert (
        "the run is incomplete (paused): 8 generation(s) not graded yet (2 item(s) with no "
        "grade at all); re-run the same command to finish it" in flat
    )
    # The one item graded without a readable verdict is unscored; the others are not.
    assert "1 item(s) had no parsed grading round and are unscored" in flat
    assert f"{items[1]} (k=2, not graded yet)" in flat
    assert f"{items[0]} (k=2, unscored)" in flat
    report = json.loads(skillmix("report", "--json", "--store", str(path), cwd=tmp_path).stdout)
    assert report["status"] == "paused" and report["grading"]["items_not_graded"] == 2

    shown = skillmix("show", items[1], "--store", str(path), cwd=tmp_path).stdout
    assert "judge openai:judge: not graded yet" in shown
    assert "unparsed" not in shown


def test_a_paused_run_in_the_browser_says_not_graded_yet(tmp_path: Path, paused_store):
    from browser import launch, sync_api

    path, _, items = paused_store
    skillmix("html", "--store", str(path), "--out", "r.html", cwd=tmp_path)
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page()
        page.goto((tmp_path / "r.html").as_uri())
        chips = {
            (row.get_attribute("data-item"), row.get_attribute("data-round")): row.locator(
                "td.verdict"
            )
            .inner_text()
            .strip()
            for row in page.locator("tr.item-row").all()
        }
        graded = (items[0], "0")
        assert chips[graded] == "unscored"
        assert len(chips) == 9 and all(
            v == "not graded yet" for k, v in chips.items() if k != graded
        )
        page.locator(f'tr.item-row[data-item="{items[1]}"]').first.click()
        assert "not graded yet" in page.locator("#item-detail .scores").inner_text()
        page.check("#filter-failures")
        failing = [r.get_attribute("data-item") for r in page.locator("tr.item-row").all()]
        assert failing == [items[0]]  # an answer not graded yet has not failed
        browser.close()


def test_reading_the_results_matches_docs_protocol(tmp_path: Path, paused_store):
    """The HTML section and the terminal legend say what docs/protocol.md says, and the
    reference figures are the published ones, with their citation."""
    doc = (ROOT / "docs/protocol.md").read_text(encoding="utf-8")
    table = doc[doc.index("## Reference figures") :]
    for row in REFERENCE_FIGURES:
        cells = [reference_cell(row, k) for k in (2, 3, 4, 5)]
        assert f"| {row.student} | {' | '.join(cells)} |" in table
    path, _, _ = paused_store
    skillmix("html", "--store", str(path), "--out", "r.html", cwd=tmp_path)
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="reading">') :]
    section = section[: section.index("</section>")]
    assert "Yu et al., Skill-Mix: a Flexible and Expandable Family of Evaluations" in section
    assert "ICLR 2024" in section and "Yu et al." in doc and "ICLR 2024" in doc
    for name in ("full marks", "all skills", "skill fraction", "Unscored", "Not graded yet"):
        assert name in section
    assert "<td>GPT-4</td>" in section and ".95/.95/.98" in section
    assert '<a href="#reading">' in page
