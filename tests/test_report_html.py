"""The HTML report, from real stored runs: self-contained, complete, and safe with hostile
model text. (The page in a real browser: test_browser_report.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import skillmix
from report_fixtures import (
    MALICIOUS,
    OUTSIDE_URL,
    TwoRuns,
    put_constructed_run,
    two_student_runs,
    verdict,
)
from skillmix.report.build import _usage, build_report
from skillmix.report.html import render_html, view
from skillmix.report.svg import Point, Series, heatmap, line_chart
from skillmix.scoring.metrics import METRICS
from skillmix.scoring.results import breakdown
from skillmix.store import Store

DATA_TAG = re.compile(
    r'<script type="application/json" id="report-data">(.*?)</script>', flags=re.S
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRuns]:
    with two_student_runs(tmp_path_factory.mktemp("report")) as built:
        yield built


@pytest.fixture(scope="module")
def page(runs: TwoRuns) -> tuple[str, int]:
    """The rendered page, and how many requests the model servers got while rendering."""
    before = [len(s.requests) for s in runs.servers]
    store = Store(runs.store_path)
    path = render_html(store, [runs.careful, runs.sloppy], runs.store_path.parent / "r.html")
    store.close()
    after = [len(s.requests) for s in runs.servers]
    return path.read_text(encoding="utf-8"), sum(after) - sum(before)


def _data(text: str) -> dict[str, Any]:
    [blob] = DATA_TAG.findall(text)
    return dict(json.loads(blob))


def test_rendering_calls_no_model(page: tuple[str, int]):
    assert page[1] == 0


def test_page_is_self_contained(page: tuple[str, int]):
    text = page[0]
    outside_data = DATA_TAG.sub("", text)
    assert not re.search(r"https?://", outside_data, flags=re.I)
    assert not re.search(r"<(link|img|iframe|object|embed)\b", outside_data, flags=re.I)
    assert not re.search(r"\bsrc\s*=", outside_data, flags=re.I)
    assert "@import" not in outside_data and "url(" not in outside_data
    assert set(re.findall(r'href="([^"]*)"', outside_data)) <= {
        f"#{a}" for a in re.findall(r'<section id="([^"]+)"', outside_data)
    }
    # The only URL is the one a model wrote, inside the escaped data, in its answers.
    urls = set(re.findall(r"https?://[^\s\"\\]+", text))
    assert urls == {OUTSIDE_URL}
    for record in _data(text)["items"]:
        texts = json.dumps(record)
        if OUTSIDE_URL in texts:
            assert OUTSIDE_URL in record["answer"] and record["model"] == "openai:sloppy-student"
    # Model endpoints are shown without a scheme.
    assert "127.0.0.1:" in outside_data


def test_hostile_model_text_cannot_escape_the_data(page: tuple[str, int]):
    text = page[0]
    assert MALICIOUS not in text
    assert "<script>alert" not in text and "<img" not in text
    # Exactly two script elements: the data and the page's own code.
    assert text.count("<script") == 2 and text.count("</script>") == 2
    answers = [i["answer"] for i in _data(text)["items"]]
    assert sum(MALICIOUS in a for a in answers) == 12  # sloppy: 6 items x 2 rounds


def _sha256_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def test_csp_allows_only_the_page_own_script_and_style(page: tuple[str, int]):
    """No 'unsafe-inline': the one script and the one style sheet are allowed by the hash
    of their exact text, as the browser computes it. (In Chromium: test_browser_report.py.)"""
    text = page[0]
    [csp] = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', text)
    assert "unsafe" not in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    [script] = re.findall(r"<script>(.*?)</script>", text, flags=re.S)  # the executable one
    [style] = re.findall(r"<style>(.*?)</style>", text, flags=re.S)
    assert directives == {
        "default-src": "'none'",
        "script-src": _sha256_source(script),
        "style-src": _sha256_source(style),
        "base-uri": "'none'",
        "form-action": "'none'",
    }
    # Inline style attributes and event handlers would be refused by this policy.
    markup = DATA_TAG.sub("", text)
    assert not re.search(r"\sstyle\s*=", markup)
    assert not re.search(r"\son[a-z]+\s*=", markup)


def test_every_item_and_round_is_in_the_page(runs: TwoRuns, page: tuple[str, int]):
    data = _data(page[0])
    store = Store(runs.store_path)
    expected = {
        (run, g["item_id"], g["round"])
        for run in (runs.careful, runs.sloppy)
        for g in store.generations(run)
    }
    store.close()
    got = {(i["run"], i["item_id"], i["gen_round"]) for i in data["items"]}
    assert got == expected and len(got) == 2 * 6 * 2
    # Same items for both students: ids match across the runs.
    by_run: dict[str, set[str]] = {}
    for run, item, _ in got:
        by_run.setdefault(run, set()).add(item)
    assert by_run[runs.careful] == by_run[runs.sloppy]
    record = data["items"][0]
    assert len(record["turns"]) == 2 and all(t["prompt"] and t["reply"] for t in record["turns"])
    assert record["judges"][0]["rounds"][0]["raw"]
    # Each skill is in the page once; items name theirs by key.
    assert all(data["skills"][key]["definition"] for key in record["skills"])
    assert {data["skills"][key]["id"] for key in record["skills"]} == {
        s.split(":", 1)[1] for s in (c["id"] for c in record["criteria"]) if s.startswith("skill:")
    }


def test_plots_heatmaps_and_tables(runs: TwoRuns, page: tuple[str, int]):
    text = page[0]
    for metric in METRICS:
        chart = re.search(rf'<svg id="plot-{metric}".*?</svg>', text, flags=re.S)
        assert chart is not None
        series = re.findall(r'data-series="([^"]+)"', chart.group(0))
        assert series == ["openai:careful-student", "openai:sloppy-student"]
        assert chart.group(0).count("<circle") == 4  # 2 models x k = 2, 3
    for by in ("skill", "category"):
        assert f'<svg id="heatmap-{by}"' in text
    for section in ("warnings", "runs", "leaderboard", "plots", "metrics", "skills", "topics"):
        assert f'<section id="{section}">' in text
    for section in ("agreement", "usage", "items"):
        assert f'<section id="{section}">' in text
    assert runs.careful in text and runs.sloppy in text
    assert text.count('class="leaderboard-row"') == 4
    assert 'id="item-detail"' in text and 'id="topics-table"' in text


def test_the_page_breaks_down_what_the_report_broke_down(runs: TwoRuns):
    """The heatmaps and the topic table reuse the report's breakdowns (rows of the headline
    judge) instead of computing them again: the same rows as computed afresh."""
    store = Store(runs.store_path)
    reports = [build_report(store, run) for run in (runs.careful, runs.sloppy)]
    store.close()
    for run in view.common.page_runs(reports):
        for by in ("skill", "category", "topic"):
            rows = view.common.run_breakdown(run, by)
            assert rows and rows == breakdown(run.scores, by)


def test_the_usage_read_aside_is_the_store_own(runs: TwoRuns, tmp_path: Path):
    """A report reads its run's usage on a second connection, beside the scoring: the same
    rows as the store's own read; where the store cannot be opened again (here its file
    moved away under the open connection), it reads them on its own connection."""
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(runs.store_path.read_bytes())
    store = Store(copy)
    try:
        expected = [dict(row) for row in store.usage(runs.careful)]
        assert expected and sum(row["calls"] for row in expected) > 0
        aside = build_report(store, runs.careful).usage
        copy.rename(tmp_path / "moved.sqlite")
        assert _usage(store, runs.careful) is None
        alone = build_report(store, runs.careful).usage
    finally:
        store.close()
    for rows in (aside, alone):
        assert [{k: row[k] for k in expected[0]} for row in rows] == expected


def test_warnings_are_prominent(tmp_path: Path):
    store = Store(tmp_path / "s.sqlite")
    weak = put_constructed_run(
        store,
        "run-weak",
        {"i1": verdict(1, 1), "i2": None},
        judge="embedded",
    )
    store.set_run_status(weak, "stopped")
    text = render_html(store, [weak], tmp_path / "r.html").read_text()
    warnings = re.search(r'<section id="warnings">(.*?)</section>', text, flags=re.S)
    assert warnings is not None
    body = warnings.group(1)
    assert "SmolLM2-135M" in body and "cannot grade reliably" in body
    assert "could not be parsed" in body  # 1 of 2 grading rounds
    assert "unscored" in body
    assert "is stopped, not done" in body
    assert body.count('class="warning severe"') >= 2


def test_svg_escapes_text_and_marks_missing_cells():
    chart = line_chart(
        [Series("<b>&model</b>", [Point(2, 0.5, 0.25, 0.75, 4)])],
        element_id='x"y',
        title="<t>",
        y_label="y",
    )
    assert "<b>" not in chart and "&lt;b&gt;&amp;model&lt;/b&gt;" in chart
    assert 'id="x&quot;y"' in chart and "&lt;t&gt;" in chart
    grid = heatmap(
        ["<r>"],
        ["<c>", "d"],
        {("<r>", "<c>"): 0.5},
        element_id="h",
        title="t",
        counts={("<r>", "<c>"): 2},
    )
    assert "<r>" not in grid and "<c>" not in grid
    assert "50% success over 2 item(s)" in grid and "no data" in grid and "—" in grid


def test_html_command_writes_every_run_by_default(runs: TwoRuns, tmp_path: Path):
    out = tmp_path / "nested" / "report.html"
    before = runs.request_count()
    proc = skillmix("html", "--store", str(runs.store_path), "--out", str(out), cwd=tmp_path)
    assert "2 run(s)" in proc.stdout and out.exists()
    text = out.read_text()
    assert runs.careful in text and runs.sloppy in text
    assert runs.request_count() == before
    missing = skillmix(
        "html", "run-nope", "--store", str(runs.store_path), cwd=tmp_path, check=False
    )
    assert missing.returncode != 0 and "no run 'run-nope'" in missing.stderr


def test_judge_versus_human_agreement_is_shown(tmp_path: Path):
    pytest.importorskip("skillmix.scoring.human")
    store = Store(tmp_path / "s.sqlite")
    run = put_constructed_run(store, "run-h", {"i1": verdict(1, 1), "i2": verdict(0, 1)})
    human = {"skill:red_herring": 1, "skill:loaded_question": 1, "topic": 1, "sense": 1}
    for item in ("i1", "i2"):
        store.put_human_verdicts(run, item, 0, "ann", human)
    text = render_html(store, [run], tmp_path / "r.html").read_text()
    table = re.search(r'<table class="human-agreement-table">(.*?)</table>', text, flags=re.S)
    assert table is not None
    assert "openai:hand-judge" in table.group(1) and "skills" in table.group(1)
    assert "75%" in table.group(1)  # skills: 3 of the 4 skill verdicts agree


def test_script_json_cannot_end_its_tag_and_reads_back_the_same():
    """Whatever the models wrote (tags, comments, ampersands, the line separators that end
    a JavaScript string, any script), the page's JSON block reads back as the same data."""
    from skillmix.report.html.page import script_json

    hostile = "</script><!-- x --> & <b>é 中文 \u2028 \u2029 😀 \\u003c \u2027\u202a “ ”"
    data = {"text": hostile, "nested": [{"k": hostile}], "nan": float("nan"), 3: "key"}
    text = str(script_json(data))
    for raw in ("<", ">", "&", "\u2028", "\u2029"):
        assert raw not in text
    assert "\u2027\u202a “ ”" in text  # their neighbours are left as they are
    assert json.loads(text) == {
        "text": hostile,
        "nested": [{"k": hostile}],
        "nan": None,
        "3": "key",
    }
