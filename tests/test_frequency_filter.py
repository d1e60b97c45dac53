"""The common-skill filter: a tagger on a real HTTP server estimates skill frequencies."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import skillmix
from scripted_server import Reply, ScriptedServer
from skillmix.catalog.load import load_catalog


def tagger(body):
    prompt = body["messages"][-1]["content"]
    passage = prompt.split("=== Passage ===")[1].split("=== End of passage ===")[0]
    keys = body["response_format"]["json_schema"]["schema"]["properties"]
    return Reply(
        json.dumps({k: int(k == "alpha" or (k == "beta" and "BETA" in passage)) for k in keys})
    )


def test_filter_drops_common_skills_and_feeds_the_bound(tmp_path: Path):
    (tmp_path / "cat.yaml").write_text(
        "skills:\n"
        + "".join(
            f"  - {{name: {n}, category: c, definition: d {n}, example: e {n}}}\n"
            for n in ("alpha", "beta", "gamma")
        )
        + "topics: [sewing, dueling]\n"
    )
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n\n".join(f"Passage {i}." + (" BETA" if i == 3 else "") for i in range(10)))
    with ScriptedServer(tagger) as server:
        args = [
            "catalog",
            "filter",
            "--catalog",
            "cat.yaml",
            "--corpus",
            str(corpus),
            "--tagger",
            server.spec(),
            "--threshold",
            "0.2",
            "--batch-size",
            "2",
            "--out",
            "filtered.yaml",
        ]
        out = skillmix(*args, cwd=tmp_path).stdout
        assert len(server.requests) == 10 * 2  # 10 passages x 2 batches of skills
        again = skillmix(*args, cwd=tmp_path).stdout
        assert len(server.requests) == 20 and "0 model calls" in again
    assert "dropped 1 of 3 skills" in out
    filtered = load_catalog([tmp_path / "filtered.yaml"])
    assert [s.id for s in filtered.skills] == ["beta", "gamma"]
    with (tmp_path / "filtered.frequencies.csv").open() as f:
        freqs = {row["id"]: float(row["frequency"]) for row in csv.DictReader(f)}
    assert freqs == {"alpha": 1.0, "beta": 0.1, "gamma": 0.0}

    stats = skillmix(
        "catalog",
        "stats",
        "--catalog",
        "cat.yaml",
        "--k",
        "2",
        "--frequencies",
        "filtered.frequencies.csv",
        "--corpus-size",
        "1000",
        cwd=tmp_path,
    ).stdout
    # L * sum p_topic * e_2(1.0, 0.1, 0.0) = 1000 * 1 * 0.1 = 100 co-occurrences at most
    assert "100.0" in stats
