"""`--rubric-order shuffled`: each grading round lists the criteria in its own seeded order.

The order is recomputed from the store alone (`rubric_positions`), verdicts still reach
the right criterion whatever the position, and the default (fixed) leaves prompts, run
ids and cache keys as they were.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scripted_server import Reply, ScriptedServer, _digest, honest_policy, rubric_labels_in
from skillmix.catalog.load import load_catalog
from skillmix.config import RunConfig
from skillmix.models import resolve_model
from skillmix.prompts.rubric import build_rubric
from skillmix.protocol.differences import rules
from skillmix.protocol.engine import Engine
from skillmix.protocol.rubric_order import (
    arrange,
    rubric_positions,
    shown_criterion_ids,
    shuffled_positions,
)
from skillmix.runtime.pool import derive_seed
from skillmix.store import Store

ITEM = {"item_id": "k3-0123456789", "skill_ids": ["b", "a", "c"]}
SHUFFLED = {"rubric_order": "shuffled", "seed": 7, "protocol": "skillmix"}
JUDGE = "openai:judge@http://127.0.0.1:9/v1"


def test_fixed_order_is_none_and_old_configs_read_as_fixed():
    assert rubric_positions({"seed": 7}, ITEM, 0, JUDGE, 0) is None
    assert rubric_positions({**SHUFFLED, "rubric_order": "fixed"}, ITEM, 0, JUDGE, 0) is None
    assert RunConfig().rubric_order == "fixed"
    assert RunConfig.model_validate({"seed": 3}).rubric_order == "fixed"


def test_a_fixed_run_keeps_its_id_and_a_shuffled_one_gets_its_own():
    fixed = RunConfig(rubric_order="fixed")
    assert fixed.run_id("x", "y") == RunConfig().run_id("x", "y") == "run-94316ebf9b33"
    assert RunConfig(rubric_order="shuffled").run_id("x", "y") != fixed.run_id("x", "y")


def test_shuffled_positions_are_a_seeded_permutation():
    positions = rubric_positions(SHUFFLED, ITEM, 1, JUDGE, 2)
    assert positions is not None
    assert set(positions) == {"skill:b", "skill:a", "skill:c", "topic", "sense"}
    assert sorted(positions.values()) == list(range(5))
    # The same round, recomputed, and the judge served elsewhere: the same order.
    assert rubric_positions(SHUFFLED, ITEM, 1, JUDGE, 2) == positions
    moved = "openai:judge@http://10.0.0.1:8000/v1"
    assert rubric_positions(SHUFFLED, ITEM, 1, moved, 2) == positions
    # Every part of the round changes it somewhere among a few values.
    variants = [rubric_positions({**SHUFFLED, "seed": s}, ITEM, 1, JUDGE, 2) for s in range(8)] + [
        rubric_positions(SHUFFLED, ITEM, g, JUDGE, 2) for g in range(8)
    ]
    variants += [rubric_positions(SHUFFLED, ITEM, 1, JUDGE, r) for r in range(8)]
    variants += [rubric_positions(SHUFFLED, ITEM, 1, f"openai:j{i}", 2) for i in range(8)]
    assert len({tuple(sorted(v.items())) for v in variants if v}) > 10


def test_shuffled_positions_do_not_depend_on_the_order_ids_come_in():
    ids = ["skill:x", "skill:y", "topic", "sense"]
    assert shuffled_positions(ids, 11) == shuffled_positions(list(reversed(ids)), 11)


def test_every_position_is_about_equally_likely():
    counts: Counter[tuple[str, int]] = Counter()
    for seed in range(2000):
        for cid, pos in shuffled_positions(["a", "b", "c"], seed).items():
            counts[(cid, pos)] += 1
    # 2000 / 3 = 667 each; a fair shuffle stays well within +-100 of it.
    assert all(abs(n - 2000 / 3) < 100 for n in counts.values()), counts


def test_shown_ids_match_the_rubric_the_prompt_is_built_from():
    catalog = load_catalog()
    skills = list(catalog.skills[:3])
    topic = catalog.topics[0]
    for protocol in ("skillmix", "paper"):
        rubric = build_rubric(skills, topic)
        shown = rubric if rules(protocol).judge_sees_length else [c for c in rubric if c.judged]
        assert [c.id for c in shown] == shown_criterion_ids([s.id for s in skills], protocol)


def test_arrange():
    catalog = load_catalog()
    rubric = build_rubric(list(catalog.skills[:2]), catalog.topics[0])
    assert arrange(rubric, None) == rubric
    positions = {c.id: len(rubric) - 1 - i for i, c in enumerate(rubric)}
    assert arrange(rubric, positions) == list(reversed(rubric))
    with pytest.raises(ValueError, match="no position for criteria"):
        arrange(rubric, {rubric[0].id: 0})


# --- through a real HTTP judge -------------------------------------------------------------------


def verdict_of(name: str) -> int:
    """The scripted judge's verdict on a criterion, from its name alone (not its place)."""
    return int(_digest(name.lower(), "v") % 2)


def label_judge(body: dict[str, Any]) -> Reply:
    """Answers each criterion by its name, in whatever format the prompt asks for."""
    last = body["messages"][-1]["content"]
    if "Text to grade" not in last:
        return honest_policy(body)
    fmt = body.get("response_format")
    if fmt:
        keys = list(fmt["json_schema"]["schema"]["properties"])
        return Reply(json.dumps({k: verdict_of(k) for k in keys}))
    if "Points Earned" in last:
        rows = "".join(f"| {c} | {verdict_of(c)} |\n" for c in rubric_labels_in(last))
        return Reply(f"| Criteria | Points Earned |\n|---|---|\n{rows}\nExplanation: done.")
    labels = re.findall(r"^(.+): <1 or 0>$", last, flags=re.M)
    return Reply("\n".join(f"{c}: {verdict_of(c)}" for c in labels))


def run_engine(store: Store, config: RunConfig) -> Any:
    engine = Engine(
        store,
        config,
        load_catalog(),
        resolve_model(config.student),
        [resolve_model(j) for j in config.judges],
    )
    return asyncio.run(engine.run())


def judge_requests(server: ScriptedServer, since: int = 0) -> list[dict[str, Any]]:
    return [r for r in server.requests[since:] if "Text to grade" in r["messages"][-1]["content"]]


@pytest.mark.parametrize(
    ("protocol", "structured", "method"),
    [("skillmix", True, "schema:json_schema"), ("skillmix", False, "text:lines"),
     ("paper", False, "text:table")],
)  # fmt: skip
def test_shuffled_prompts_follow_rubric_positions_and_verdicts_keep_their_criterion(
    tmp_path: Path, protocol: str, structured: bool, method: str
):
    with ScriptedServer(label_judge) as server:
        config = RunConfig(
            student=server.spec(),
            judges=(server.spec(),),
            k=(2, 3),
            items=3,
            generation_rounds=2,
            grading_rounds=3,
            protocol=protocol,  # type: ignore[arg-type]
            structured=structured,
            rubric_order="shuffled",
        )
        store = Store(tmp_path / "s.sqlite")
        result = run_engine(store, config)
        requests = judge_requests(server)
    run = store.get_run(result.run_id)
    assert run["config"]["rubric_order"] == "shuffled"
    catalog = load_catalog()
    lowercase = rules(protocol).lowercase_skill_labels
    # Which round a request belongs to: its seed (one per item, generation, grading round).
    rounds = {}
    items = {i["item_id"]: i for i in store.items(result.run_id)}
    for item in items.values():
        for g in range(2):
            for r in range(3):
                seed = derive_seed(config.seed, item["item_id"], g, "openai:scripted", "grade", r)
                rounds[seed] = (item, g, r)
    seen_orders: Counter[tuple[str, ...]] = Counter()
    for body in requests:
        item, gen_round, grade_round = rounds[body["seed"]]
        positions = rubric_positions(run["config"], item, gen_round, config.judges[0], grade_round)
        assert positions is not None
        skills = [catalog.skill(s) for s in item["skill_ids"]]
        rubric = build_rubric(skills, catalog.topic(item["topic_id"]), lowercase_skills=lowercase)
        by_label = {c.label: c.id for c in rubric}
        last = body["messages"][-1]["content"]
        shown = [by_label[label] for label in rubric_labels_in(last)]
        assert shown == sorted(positions, key=lambda cid: positions[cid])
        if structured:
            by_key = {c.key: c.id for c in rubric}
            schema_keys = list(body["response_format"]["json_schema"]["schema"]["properties"])
            assert [by_key[k] for k in schema_keys] == shown
        seen_orders[tuple(shown)] += 1
    assert len(seen_orders) > 6  # the rounds did not all get one order

    grades = store.grades(result.run_id)
    assert grades and {g["method"] for g in grades} == {method}
    for grade in grades:
        item = items[grade["item_id"]]
        skills = [catalog.skill(s) for s in item["skill_ids"]]
        rubric = build_rubric(skills, catalog.topic(item["topic_id"]), lowercase_skills=lowercase)
        assert grade["verdicts"] == {
            c.id: verdict_of(c.key if structured else c.label) for c in rubric if c.judged
        }


def test_a_fixed_run_lists_the_rubric_in_order_and_a_shuffled_one_reuses_its_answers(
    tmp_path: Path,
):
    with ScriptedServer(label_judge) as server:
        fixed = RunConfig(
            student=server.spec(),
            judges=(server.spec(),),
            k=(3,),
            items=3,
            generation_rounds=1,
            grading_rounds=2,
        )
        store = Store(tmp_path / "s.sqlite")
        result = run_engine(store, fixed)
        catalog = load_catalog()
        expected = set()
        for item in store.items(result.run_id):
            skills = [catalog.skill(s) for s in item["skill_ids"]]
            rubric = build_rubric(skills, catalog.topic(item["topic_id"]))
            expected.add(tuple(c.label for c in rubric if c.judged))
        shown = {
            tuple(rubric_labels_in(body["messages"][-1]["content"]))
            for body in judge_requests(server)
        }
        assert shown == expected and len(expected) == 3

        before = len(server.requests)
        shuffled = run_engine(store, fixed.model_copy(update={"rubric_order": "shuffled"}))
        # Only grading changed: every student answer came from the cache, and so did a
        # grading round whose shuffle happened to give the fixed order.
        config = store.get_run(shuffled.run_id)["config"]
        new_orders = 0
        for item in store.items(result.run_id):
            for grade_round in range(2):
                positions = rubric_positions(config, item, 0, fixed.judges[0], grade_round)
                assert positions is not None
                fixed_ids = shown_criterion_ids(item["skill_ids"])
                new_orders += [positions[c] for c in fixed_ids] != list(range(len(fixed_ids)))
        assert shuffled.run_id != result.run_id and new_orders >= 4
        assert shuffled.stats.by_role == {"judge": new_orders}
        assert len(server.requests) - before == new_orders
