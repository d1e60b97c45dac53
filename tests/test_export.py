"""Exports are readable by pandas and DuckDB, with one row per item x round x judge x grade."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from conftest import skillmix
from scripted_server import ScriptedServer


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
