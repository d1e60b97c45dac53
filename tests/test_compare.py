"""Leaderboard and paired comparison: real stored runs, and constructed ones whose numbers
can be checked by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import skillmix
from report_fixtures import (
    TwoRuns,
    judge_policy,
    put_constructed_run,
    run_config,
    run_engine,
    two_student_runs,
    verdict,
)
from scripted_server import ScriptedServer
from skillmix.analytics.frequency import write_catalog_yaml
from skillmix.catalog.load import load_catalog
from skillmix.report.compare import (
    CompareError,
    comparability_problems,
    display_model,
    leaderboard,
    paired_comparison,
)
from skillmix.scoring.metrics import METRICS, bootstrap_interval
from skillmix.store import Store


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRuns]:
    with two_student_runs(tmp_path_factory.mktemp("compare")) as built:
        yield built


def test_leaderboard_rows_of_two_comparable_runs(runs: TwoRuns):
    store = Store(runs.store_path)
    board = leaderboard(store, [runs.careful, runs.sloppy])
    assert board.problems == []
    assert [(r.k, r.run_id) for r in board.rows] == [
        (2, runs.careful),
        (2, runs.sloppy),
        (3, runs.careful),
        (3, runs.sloppy),
    ]
    run = store.get_run(runs.careful)
    for row in board.rows:
        assert row.comparable and row.items == row.scored == 3
        assert row.judge == runs.judge.spec()
        assert row.catalog_hash == run["catalog_hash"]
        assert row.template_version == run["template_version"]
        for m in METRICS:
            iv = row.metrics[m]
            assert 0 <= iv.low <= iv.mean <= iv.high <= 1 and iv.n == 3
    sloppy_k2 = board.rows[1]
    assert sloppy_k2.student == runs.students[1].spec()
    assert sloppy_k2.metrics["full_marks"].mean == 0  # two sentences where one is allowed
    assert board.to_dict()["rows"][0]["comparable"] is True
    store.close()


def test_runs_measured_differently_are_flagged_not_mixed(runs: TwoRuns, tmp_path: Path):
    careful = runs.students[0]
    # A different judge, through the real command line.
    with ScriptedServer(judge_policy, model="other-judge") as other:
        before = {r["id"] for r in Store(runs.store_path).list_runs()}
        skillmix(
            "run",
            "--student",
            careful.spec(),
            "--judge",
            other.spec(),
            *("--k", "2", "--k", "3", "--items", "3", "--seed", "7"),
            *("--generation-rounds", "2", "--grading-rounds", "3"),
            *("--store", str(runs.store_path), "--out", str(tmp_path / "out")),
            cwd=tmp_path,
        )
        store = Store(runs.store_path)
        [other_run] = {r["id"] for r in store.list_runs()} - before
    # A different catalog (what `--catalog small.yaml` gives).
    builtin = load_catalog()
    small = builtin.subset(
        {s.id for s in builtin.skills[:12]}, {t.id for t in builtin.topics[:10]}, name="small"
    )
    write_catalog_yaml(small, tmp_path / "small.yaml")
    catalog_run = run_engine(
        store,
        run_config(careful.spec(), (runs.judge.spec(),), catalog=(str(tmp_path / "small.yaml"),)),
        load_catalog([tmp_path / "small.yaml"]),
    )
    ids = [runs.careful, runs.sloppy, other_run, catalog_run]
    board = leaderboard(store, ids)
    flagged = {r.run_id: r.differs_in for r in board.rows}
    assert flagged == {
        runs.careful: (),
        runs.sloppy: (),
        other_run: ("judges",),
        catalog_run: ("catalog hash",),
    }
    assert len(board.rows) == 4 * 2  # still on the board, marked
    [catalog_problem, judge_problem] = board.problems
    assert catalog_problem.startswith("catalog hash differs")
    assert catalog_run in catalog_problem and store.get_run(catalog_run)["catalog_hash"][:12] in (
        catalog_problem
    )
    assert judge_problem.startswith("judges differs")
    assert other_run in judge_problem and display_model(other.spec()) in judge_problem
    assert comparability_problems([store.get_run(runs.careful), store.get_run(runs.sloppy)]) == []

    # The same through the command line, as JSON and as a table.
    proc = skillmix("leaderboard", *ids, "--store", str(runs.store_path), "--json", cwd=tmp_path)
    payload = json.loads(proc.stdout)
    assert payload["problems"] == board.problems
    assert {r["run_id"] for r in payload["rows"] if not r["comparable"]} == {other_run, catalog_run}
    table = skillmix("leaderboard", *ids, "--store", str(runs.store_path), cwd=tmp_path).stdout
    assert "not comparable" in table and "catalog hash differs" in table

    # A different catalog gives different items: nothing to pair.
    with pytest.raises(CompareError, match="share no scored item"):
        paired_comparison(store, runs.careful, catalog_run)
    # Different judges: no verdicts to pair.
    with pytest.raises(CompareError, match="share no judge"):
        paired_comparison(store, runs.careful, other_run)
    store.close()


def test_paired_difference_by_hand(tmp_path: Path):
    store = Store(tmp_path / "s.sqlite")
    a = put_constructed_run(
        store,
        "run-a",
        {
            "i1": verdict(1, 1),  # full marks
            "i2": verdict(1, 1),  # full marks
            "i3": verdict(1, 0),  # skill fraction 0.5
            "i4": verdict(1, 1, sense=0),  # all skills, not full marks
            "i5": verdict(1, 1),  # only in run a: not paired
        },
    )
    b = put_constructed_run(
        store,
        "run-b",
        {
            "i1": verdict(0, 0),
            "i2": verdict(1, 1),
            "i3": verdict(0, 0),
            "i4": verdict(0, 1, sense=0),
            "i6": verdict(1, 1),  # only in run b
        },
        student="openai:other-student",
    )
    rows = {r.metric: r for r in paired_comparison(store, a, b, resamples=500)}
    assert set(rows) == set(METRICS)
    full, every, fraction = rows["full_marks"], rows["all_skills"], rows["skill_fraction"]
    assert all(r.shared == 4 and r.k == 2 and r.judge == "openai:hand-judge" for r in rows.values())
    # a: full marks 1,1,0,0  b: 0,1,0,0
    assert (full.mean_a, full.mean_b, full.difference.mean) == (0.5, 0.25, 0.25)
    # a: all skills 1,1,0,1  b: 0,1,0,0
    assert (every.mean_a, every.mean_b, every.difference.mean) == (0.75, 0.25, 0.5)
    # a: skill fraction 1,1,0.5,0 (sense failed)  b: 0,1,0,0
    assert (fraction.mean_a, fraction.mean_b) == (0.625, 0.25)
    assert fraction.difference.mean == pytest.approx(0.375)
    # The interval is the bootstrap of the per-item differences, in that order.
    assert every.difference == bootstrap_interval([1.0, 0.0, 0.0, 1.0], resamples=500)
    assert -1 <= full.difference.low <= 0.25 <= full.difference.high <= 1

    # An unparsed item in b is not shared.
    c = put_constructed_run(
        store, "run-c", {"i1": None, "i2": verdict(1, 1)}, student="openai:third"
    )
    [row] = [r for r in paired_comparison(store, a, c) if r.metric == "full_marks"]
    assert row.shared == 1 and row.difference.mean == 0

    # A judge both runs lack, and runs without a shared item, are refused with a reason.
    with pytest.raises(CompareError, match="did not grade both runs"):
        paired_comparison(store, a, b, judge="openai:nobody")
    d = put_constructed_run(store, "run-d", {"x1": verdict(1, 1)}, student="openai:fourth")
    with pytest.raises(CompareError, match="share no scored item"):
        paired_comparison(store, a, d)
    store.close()

    proc = skillmix(
        "compare", a, d, "--store", str(tmp_path / "s.sqlite"), cwd=tmp_path, check=False
    )
    assert proc.returncode != 0 and "share no scored item" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_compare_command_on_real_runs(runs: TwoRuns, tmp_path: Path):
    store = str(runs.store_path)
    proc = skillmix("compare", runs.careful, runs.sloppy, "--store", store, "--json", cwd=tmp_path)
    payload = json.loads(proc.stdout)
    assert payload["problems"] == []
    rows = payload["rows"]
    assert [(r["k"], r["metric"]) for r in rows] == [(k, m) for k in (2, 3) for m in METRICS]
    for r in rows:
        assert r["shared_items"] == 3 and r["judge"] == runs.judge.spec()
        assert r["difference"] == pytest.approx(r["mean_a"] - r["mean_b"])
        assert r["low"] <= r["difference"] <= r["high"]
    k2_full = rows[0]
    assert k2_full["mean_b"] == 0 and k2_full["mean_a"] > 0
    table = skillmix(
        "compare",
        runs.careful,
        runs.sloppy,
        "--store",
        store,
        "--judge",
        runs.judge.spec(),
        cwd=tmp_path,
    ).stdout
    assert "shared items" in table and "full marks" in table
    wrong = skillmix(
        "compare",
        runs.careful,
        runs.sloppy,
        "--store",
        store,
        "--judge",
        "x:y",
        cwd=tmp_path,
        check=False,
    )
    assert wrong.returncode != 0 and "did not grade both runs" in wrong.stderr
