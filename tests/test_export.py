"""Exports are readable by pandas and DuckDB, with one row per item x round x judge x grade."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from conftest import skillmix
from scripted_server import Reply, ScriptedServer, honest_policy
from skillmix.export import FORMULA_STARTS, neutralise_formula


def test_export_formats_round_trip(tmp_path: Path, server: ScriptedServer):
    spec = server.spec()
    skillmix(
        "run",
        "--student",
        spec,
        "--judge",
        spec,
        "--k",
        "2,3",
        "--items",
        "3",
        "--generation-rounds",
        "2",
        "--grading-rounds",
        "2",
        cwd=tmp_path,
    )
    rows = 2 * 3 * 2 * 2
    frames = {}
    for fmt in ("jsonl", "csv", "parquet"):
        out = skillmix("export", "--out", f"runs.{fmt}", cwd=tmp_path).stdout
        assert f"wrote {rows} rows" in out
        path = tmp_path / f"runs.{fmt}"
        frames[fmt] = (
            pd.read_json(path, lines=True)
            if fmt == "jsonl"
            else pd.read_csv(path)
            if fmt == "csv"
            else pd.read_parquet(path)
        )
        reader = {"jsonl": "read_json_auto", "csv": "read_csv_auto", "parquet": "read_parquet"}
        count = duckdb.sql(f"SELECT COUNT(*) FROM {reader[fmt]}('{path}')").fetchall()[0][0]
        assert count == rows
    for frame in frames.values():
        assert len(frame) == rows
        assert set(frame["k"]) == {2, 3}
        assert frame.groupby(["item_id", "gen_round"]).size().eq(2).all()  # 2 grading rounds
        assert {"student", "judge", "answer", "student_temperature", "catalog_hash"} <= set(
            frame.columns
        )
    first = frames["jsonl"].iloc[0]
    assert isinstance(first["verdicts"], dict) and isinstance(first["skills"], list)
    parquet_verdicts = json.loads(frames["parquet"].iloc[0]["verdicts"])
    assert parquet_verdicts == json.loads(frames["csv"].iloc[0]["verdicts"])
    report = json.loads(skillmix("report", "--json", cwd=tmp_path).stdout)
    k2 = next(m for m in report["metrics"] if m["k"] == 2)
    items = frames["parquet"][frames["parquet"]["k"] == 2].drop_duplicates("item_id")
    assert abs(items["item_full_marks"].mean() - k2["full_marks"]["mean"]) < 1e-12


def test_unknown_format_is_a_clear_error(tmp_path: Path):
    proc = skillmix("export", "--out", "x.xlsx", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "unknown export format 'xlsx'" in proc.stderr


FORMULA = '=HYPERLINK("#evil","click")'


def formula_student(body: dict[str, Any]) -> Reply:
    """Student answers that a spreadsheet would run as a formula; an honest judge."""
    reply = honest_policy(body)
    if "Text to grade" in body["messages"][-1]["content"] or reply.content is None:
        return reply
    return Reply(reply.content.replace("Answer: ", f"Answer: {FORMULA} ", 1))


def test_csv_cells_never_start_a_formula(tmp_path: Path):
    with ScriptedServer(formula_student) as server:
        spec = server.spec()
        skillmix(
            "run", "--student", spec, "--judge", spec, "--k", "2", "--items", "4",
            "--generation-rounds", "2", "--grading-rounds", "1", cwd=tmp_path,
        )  # fmt: skip
    skillmix("export", "--out", "runs.csv", cwd=tmp_path)
    skillmix("export", "--out", "runs.jsonl", cwd=tmp_path)
    with (tmp_path / "runs.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    lines = (tmp_path / "runs.jsonl").read_text(encoding="utf-8").splitlines()
    exact = [json.loads(line) for line in lines]
    assert len(rows) == len(exact) == 4 * 2
    # JSONL keeps the answers exactly; CSV quotes the ones a spreadsheet would run.
    assert all(row["answer"].startswith(FORMULA + " ") for row in exact)
    for row, original in zip(rows, exact, strict=True):
        assert row["answer"] == "'" + original["answer"]
    cells = [cell for row in rows for cell in row.values()]
    assert not [c for c in cells if c.startswith(FORMULA_STARTS)]
    # Numbers stay numbers: pandas still reads the numeric columns as numbers.
    frame = pd.read_csv(tmp_path / "runs.csv")
    assert frame["k"].dtype.kind == "i" and frame["student_temperature"].dtype.kind == "f"


def test_neutralise_formula():
    for text in ("=A1", "+1", "-1", "@x", "\tx", "\rx"):
        assert neutralise_formula(text) == "'" + text
    for value in ("plain", "", " =A1", "'=A1", -1, -0.5, None, 3.0):
        assert neutralise_formula(value) == value
