"""The whole protocol through a real OpenAI-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from scripted_server import Reply, ScriptedServer, honest_policy, sentence_limit_in, skill_names_in
from skillmix.catalog.load import load_catalog
from skillmix.config import RunConfig
from skillmix.models import resolve_model
from skillmix.protocol.engine import Engine
from skillmix.report import build_report
from skillmix.store import Store


def run_engine(store: Store, config: RunConfig):
    engine = Engine(
        store,
        config,
        load_catalog(),
        resolve_model(config.student),
        [resolve_model(j) for j in config.judges],
    )
    return asyncio.run(engine.run())


def test_full_run_structured_and_text_judges(tmp_path: Path, server: ScriptedServer):
    spec = server.spec()
    config = RunConfig(
        student=spec, judges=(spec,), k=(2, 3), items=6, generation_rounds=2, grading_rounds=3
    )
    store = Store(tmp_path / "s.sqlite")
    result = run_engine(store, config)
    # per generation: 2 student turns + 3 grading rounds (all parse on the first try)
    assert result.stats.sent == 2 * 6 * 2 * (2 + 3) == len(server.requests)
    assert result.stats.cached == 0 and result.unparsed_rounds == 0
    grades = store.grades(result.run_id)
    assert {g["method"] for g in grades} == {"schema:json_schema"}
    # The judge saw the task as the student saw it: skill definitions are in the prompt.
    judge_prompt = next(
        r for r in server.requests if "Text to grade" in r["messages"][-1]["content"]
    )
    assert "Example:" in judge_prompt["messages"][-1]["content"]

    report = build_report(store, result.run_id)
    assert [(r.k, r.items, r.scored) for r in report.rows] == [(2, 6, 6), (3, 6, 6)]
    for row in report.rows:
        for iv in row.metrics.values():
            assert 0 <= iv.low <= iv.mean <= iv.high <= 1

    # Same config again: nothing is sent, the same metrics come back.
    before = len(server.requests)
    again = run_engine(store, config)
    assert again.stats.sent == 0 and len(server.requests) == before
    assert build_report(store, again.run_id).to_dict()["metrics"] == report.to_dict()["metrics"]

    # Text verdicts (no structured output) go through the parser and are recorded as such.
    text_config = config.model_copy(update={"structured": False})
    text_result = run_engine(store, text_config)
    assert text_result.stats.by_role == {"judge": 2 * 6 * 2 * 3}  # student answers reused
    assert {g["method"] for g in store.grades(text_result.run_id)} == {"text:lines"}


def test_garbage_verdicts_are_retried_then_unparsed_not_zero(tmp_path: Path):
    def policy(body):
        if "Text to grade" in body["messages"][-1]["content"]:
            return Reply("I cannot grade this, sorry.")
        return honest_policy(body)

    with ScriptedServer(policy) as server:
        config = RunConfig(
            student=server.spec(),
            judges=(server.spec(),),
            k=(2,),
            items=2,
            generation_rounds=1,
            grading_rounds=2,
            parse_attempts=3,
        )
        store = Store(tmp_path / "s.sqlite")
        result = run_engine(store, config)
    assert result.unparsed_rounds == 4
    assert result.stats.by_role["judge"] == 2 * 2 * 3  # every round retried 3 times
    grades = store.grades(result.run_id)
    assert all(g["status"] == "unparsed" and g["attempts"] == 3 for g in grades)
    report = build_report(store, result.run_id)
    [row] = report.rows
    assert row.scored == 0 and row.metrics["full_marks"].n == 0  # unscored, not 0
    assert any("unscored" in w for w in report.warnings)


def test_naming_penalty_and_sentence_limit_in_code(tmp_path: Path):
    """A judge that gives every point: only code-computed criteria can take them away."""

    def policy(body):
        last = body["messages"][-1]["content"]
        if "Text to grade" in last:
            keys = list(body["response_format"]["json_schema"]["schema"]["properties"])
            return Reply(json.dumps({k: 1 for k in keys}))
        if "improve" in last:
            names = skill_names_in(body["messages"][0]["content"])
            if sentence_limit_in(last) == 1:  # k = 2: name the first skill
                return Reply(f"Answer: A fine {names[0]}s example. Explanation: x")
            return Reply("Answer: One. Two. Three. Explanation: too long for k=3")
        return Reply("Answer: draft")

    with ScriptedServer(policy) as server:
        config = RunConfig(
            student=server.spec(),
            judges=(server.spec(),),
            k=(2, 3),
            items=3,
            generation_rounds=1,
            grading_rounds=1,
        )
        store = Store(tmp_path / "s.sqlite")
        result = run_engine(store, config)
    report = build_report(store, result.run_id)
    k2, k3 = report.rows
    assert k2.metrics["full_marks"].mean == 0 and k2.metrics["skill_fraction"].mean == 0.5
    assert k2.penalized == 3
    assert k3.metrics["all_skills"].mean == 1 and k3.metrics["full_marks"].mean == 0
    assert k3.metrics["skill_fraction"].mean == 0
    assert any("naming penalty removed 3" in w for w in report.warnings)


def test_train_and_held_out_runs_use_disjoint_skills(tmp_path: Path, server: ScriptedServer):
    from skillmix.config import SplitConfig

    store = Store(tmp_path / "s.sqlite")
    spec = server.spec()
    used = {}
    for part in ("train", "held-out"):
        config = RunConfig(
            student=spec,
            judges=(spec,),
            k=(2,),
            items=8,
            generation_rounds=1,
            grading_rounds=1,
            split=SplitConfig(part=part, skills=0.3, topics=0.3, seed=5),
        )
        result = run_engine(store, config)
        items = store.items(result.run_id)
        used[part] = (
            {s for i in items for s in i["skill_ids"]},
            {i["topic_id"] for i in items},
        )
    assert not used["train"][0] & used["held-out"][0]
    assert not used["train"][1] & used["held-out"][1]


def test_the_rows_kept_for_the_report_are_those_stored(tmp_path: Path, server: ScriptedServer):
    """`skillmix run` reports from the rows its store kept as it wrote them: on a new run,
    and on the same run again (every answer from the cache), they are exactly what a
    second connection reads: items, generations, grades and usage."""
    spec = server.spec()
    config = RunConfig(
        student=spec, judges=(spec,), k=(2, 3), items=3, generation_rounds=2, grading_rounds=2
    )
    path = tmp_path / "s.sqlite"
    for new in (True, False):
        store = Store(path)
        engine = Engine(store, config, load_catalog(), resolve_model(spec), [resolve_model(spec)])
        store.keep_rows(engine.run_id)
        result = asyncio.run(engine.run())
        reader = Store(path, read_only=True)
        kept = store.run_tables(result.run_id)
        assert kept == reader.run_tables(result.run_id)
        assert [len(rows) for rows in kept] == [6, 12, 24]
        assert store.usage(result.run_id) == reader.usage(result.run_id)
        # Its ledger is all the run has only when this store made the run: on a resume,
        # the usage (which counts what the first run sent) is read.
        assert (store.kept_usage(result.run_id) is not None) == new == (not result.resumed)
        reader.close()
        store.close()
