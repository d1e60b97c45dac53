"""The `skillmix` command, run for real in subprocesses against a server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import skillmix
from report_fixtures import without_times
from scripted_server import ScriptedServer


def test_run_twice_second_makes_zero_calls_same_metrics(
    tmp_path: Path, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SKILLMIX_PAGE_WORKER", "on")  # a run this small starts none of itself
    spec = server.spec()
    args = [
        "run",
        "--student",
        spec,
        "--judge",
        spec,
        "--k",
        "2",
        "--k",
        "3",
        "--items",
        "3",
        "--generation-rounds",
        "1",
        "--grading-rounds",
        "3",
        "--out",
        "out",
    ]
    first = skillmix(*args, cwd=tmp_path)
    sent = len(server.requests)
    assert sent == 2 * 3 * (2 + 3)
    assert f"model calls (this invocation): {sent} sent" in first.stderr
    second = skillmix(*args, cwd=tmp_path)
    assert len(server.requests) == sent
    assert "model calls (this invocation): 0 sent" in second.stderr
    assert f"{sent} answered from the store" in second.stderr
    table = lambda out: out[: out.index("aggregation:")]  # noqa: E731
    assert table(first.stdout) == table(second.stdout)
    run_dir = next((tmp_path / "out").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [m["k"] for m in metrics["metrics"]] == [2, 3]
    for name in ("metrics.csv", "items.csv", "by_skill.csv", "by_category.csv", "by_topic.csv"):
        assert (run_dir / name).stat().st_size > 0
    # The page's item data came from the worker process `run` starts beside the run (it
    # says when it had to build them itself), and make the page that `html` renders alone.
    assert "item data were built here" not in first.stderr + second.stderr
    skillmix("html", run_dir.name, "--out", "alone.html", cwd=tmp_path)
    page = (run_dir / "report.html").read_text()
    assert without_times(page) == without_times((tmp_path / "alone.html").read_text())

    item_id = (
        metrics["metrics"] and (run_dir / "items.csv").read_text().splitlines()[1].split(",")[2]
    )
    shown = skillmix("show", item_id, cwd=tmp_path).stdout
    assert "turn 1: prompt" in shown and "turn 2: reply" in shown
    assert "extracted answer" in shown and "Pertains to" in shown


def test_malformed_catalog_names_file_and_line(tmp_path: Path):
    bad = tmp_path / "skills.csv"
    bad.write_text("name,category,definition,example\nmetaphor,literary,,an example\n")
    proc = skillmix("catalog", "validate", str(bad), cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert f"{bad}:2: skill 'metaphor': empty field 'definition'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_k_larger_than_catalog_is_a_clear_error(tmp_path: Path):
    skills = tmp_path / "skills.csv"
    skills.write_text("name,category,definition,example\na,c,d,e\nb,c,d,e\n")
    topics = tmp_path / "topics.csv"
    topics.write_text("name\nsewing\n")
    proc = skillmix(
        "run",
        "--catalog",
        str(skills),
        "--catalog",
        str(topics),
        "--k",
        "3",
        "--student",
        "openai:x@http://127.0.0.1:9",
        "--judge",
        "openai:x@http://127.0.0.1:9",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode != 0
    assert "k=3 is larger than the catalog, which has 2 skills" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "skillmix.sqlite").exists() or "run-" not in proc.stderr


def test_unknown_provider_and_unknown_model(tmp_path: Path, server: ScriptedServer):
    proc = skillmix("run", "--student", "nope:x", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "unknown model 'nope:x'" in proc.stderr
    wrong = f"openai:missing-model@{server.base_url}"
    proc = skillmix(
        "run",
        "--student",
        wrong,
        "--judge",
        wrong,
        "--k",
        "2",
        "--items",
        "1",
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode != 0
    assert "HTTP 404" in proc.stderr and "unknown model 'missing-model'" in proc.stderr
    assert "re-run the same command to resume" in proc.stderr


def test_catalog_stats_prints_combinations(tmp_path: Path):
    out = skillmix("catalog", "stats", "--k", "2,3", cwd=tmp_path).stdout
    assert "C(N,k)·T" in out
