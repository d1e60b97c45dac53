"""Skill-Mix SFT data end to end against a real local HTTP server, plus dedup/export/card.

The scripted teacher's quality is set by k (visible in the prompt), so every count below
can be checked by hand:

| k | teacher writes                                   | per item x round     |
|---|--------------------------------------------------|----------------------|
| 1 | full marks, the same text in both rounds (+seed) | 1 kept, 1 near-dup   |
| 2 | full marks, a new text each round                | kept                 |
| 3 | two of its three skills                          | below the threshold  |
| 4 | an empty answer                                  | empty-answer         |
| 5 | text the judge cannot grade (garbage verdicts)   | unparsed             |
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shlex
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import canonical, sigkill_at_request, skillmix, stored_bodies
from scripted_server import Reply, ScriptedServer, skill_names_in
from skillmix.catalog.load import load_catalog
from skillmix.catalog.sampling import split_catalog
from skillmix.data.card import card_numbers, data_card, write_card
from skillmix.data.dedup import (
    Rejection,
    band_layout,
    candidate_probability,
    dedupe,
    jaccard,
    near_duplicate_pairs,
    near_duplicates,
)
from skillmix.data.export import export_records, parse_formats, read_jsonl
from skillmix.data.records import DataRecord
from skillmix.data.sft import LeakError, build_sft, collect_sft, held_out_part, sft_config
from skillmix.models import resolve_model
from skillmix.models.openai_compat import OpenAICompatModel
from skillmix.runtime.pool import derive_seed
from skillmix.store import Store

ITEMS = 4
ROUNDS = 2
HELD_OUT = {"held_out_skills": 0.3, "held_out_topics": 0.3, "split_seed": 7}


# --- the scripted teacher and judge ----------------------------------------------------------


def _words(*parts: object, n: int = 30) -> list[str]:
    rng = random.Random(hashlib.sha256(repr(parts).encode()).hexdigest())
    return [f"w{rng.randrange(5000)}" for _ in range(n)]


def _skill_names(prompt: str) -> list[str]:
    return skill_names_in(prompt)


def quality_policy(body: dict[str, Any], even_seed_only: bool = False) -> Reply:
    messages = body["messages"]
    last = messages[-1]["content"]
    if "=== Text to grade ===" in last:
        answer = last.split("=== Text to grade ===")[1].split("=== End of text ===")[0]
        if "qjunk" in answer:
            return Reply("I would rather not say.")
        keys = list(body["response_format"]["json_schema"]["schema"]["properties"])
        skills = [k for k in keys if k not in ("on_topic", "makes_sense")]
        met = len(skills) if "qfull" in answer else 2 if "qtwo" in answer else 1
        verdicts = {k: int(i < met) for i, k in enumerate(skills)}
        return Reply(json.dumps({**verdicts, "on_topic": 1, "makes_sense": 1}))
    task = messages[0]["content"]
    if len(messages) == 1:  # turn 1: a draft that is never graded
        return Reply("Answer: a first draft.\nExplanation: none yet.")
    k, seed = len(_skill_names(task)), body["seed"]
    if even_seed_only:
        mark = "qfull" if seed % 2 == 0 else "qone"
        words = [*_words(task, seed), mark]
    elif k == 1:  # repeats itself: only the last word (the seed) differs between rounds
        words = [*_words(task), "qfull", str(seed)]
    elif k == 4:
        return Reply("Answer:\nExplanation: I had nothing to say.")
    else:
        words = [*_words(task, seed), {2: "qfull", 3: "qtwo"}.get(k, "qjunk")]
    return Reply("Answer: " + " ".join(words) + ".\nExplanation: it shows them all.")


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory: pytest.TempPathFactory):
    """One SFT job over k=1..5 against the scripted server (shared by the tests below)."""
    tmp = tmp_path_factory.mktemp("sft")
    with ScriptedServer(quality_policy) as server:
        spec = server.spec()
        config = sft_config(
            spec,
            [spec],
            k=(1, 2, 3, 4, 5),
            items=ITEMS,
            generation_rounds=ROUNDS,
            grading_rounds=2,
            **HELD_OUT,
        )
        store = Store(tmp / "s.sqlite")
        catalog = load_catalog()
        result = build_sft(
            store, config, catalog, resolve_model(spec), [resolve_model(spec)], dedup_threshold=0.8
        )
        yield {
            "server": server,
            "store": store,
            "config": config,
            "catalog": catalog,
            "result": result,
            "tmp": tmp,
            "requests": list(server.requests),
        }


# --- the SFT job --------------------------------------------------------------------------------


def test_threshold_dedup_and_rejection_counts(sft_run):
    result = sft_run["result"]
    per_k = {k: sum(r.k == k for r in result.records) for k in range(1, 6)}
    assert per_k == {1: ITEMS, 2: ITEMS * ROUNDS, 3: 0, 4: 0, 5: 0}
    assert result.reasons == {
        "near-duplicate": ITEMS,
        "below-threshold": ITEMS * ROUNDS,
        "empty-answer": ITEMS * ROUNDS,
        "unparsed": ITEMS * ROUNDS,
    }
    ks_by_reason: dict[str, set[int | None]] = {}
    for rejection in result.rejected:
        ks_by_reason.setdefault(rejection.reason, set()).add(rejection.record.k)
    assert ks_by_reason == {
        "near-duplicate": {1},
        "below-threshold": {3},
        "empty-answer": {4},
        "unparsed": {5},
    }
    # Dedup kept the first round of each k=1 item and says which record it duplicates.
    kept_ids = {r.id for r in result.records}
    for rejection in result.rejected:
        if rejection.reason == "near-duplicate":
            assert rejection.record.provenance["generation_round"] == 1
            assert re.search(r"kept record (sft-\w+)", rejection.detail).group(1) in kept_ids
    # Each kept text is itself full marks for the judge (not an item's max over rounds).
    for record in result.records:
        assert record.scores == {"full_marks": 1.0, "all_skills": 1.0, "skill_fraction": 1.0}
        [decided] = record.judge_verdicts.values()
        assert set(decided.values()) == {1} and len(decided) == record.k + 3
    # The run was an ordinary engine run: 2 teacher turns, 2 grading rounds (k=4: no judge
    # call for an empty answer; k=5: each round retried parse_attempts=3 times).
    units = ITEMS * ROUNDS
    assert len(sft_run["requests"]) == 5 * units * 2 + 3 * units * 2 + units * 2 * 3


def test_lower_threshold_refilters_without_calls(sft_run):
    server, store = sft_run["server"], sft_run["store"]
    before = len(server.requests)
    again = build_sft(
        store,
        sft_run["config"],
        sft_run["catalog"],
        resolve_model(server.spec()),
        [resolve_model(server.spec())],
        keep_threshold=0.6,  # k=3 texts show 2 of 3 skills: 0.67
    )
    assert len(server.requests) == before and again.run is not None and again.run.stats.sent == 0
    assert sum(r.k == 3 for r in again.records) == ITEMS * ROUNDS
    assert len(again.records) == ITEMS + 2 * ITEMS * ROUNDS
    assert "below-threshold" not in again.reasons
    at_07 = collect_sft(store, again.card_meta["run_id"], sft_run["catalog"], keep_threshold=0.7)
    assert sum(r.k == 3 for r in at_07.records) == 0
    # dedup off (threshold 1.0 keeps texts that differ by one word)
    exact = collect_sft(store, again.card_meta["run_id"], sft_run["catalog"], dedup_threshold=1.0)
    assert "near-duplicate" not in exact.reasons and len(exact.records) == 2 * ITEMS * ROUNDS


def test_train_split_only_and_held_out_recorded(sft_run):
    result, catalog = sft_run["result"], sft_run["catalog"]
    parts = split_catalog(catalog, skill_fraction=0.3, topic_fraction=0.3, seed=7)
    held_skills = {s.id for s in parts.held_out.skills}
    held_topics = {t.id for t in parts.held_out.topics}
    assert len(held_skills) > 20 and len(held_topics) > 20
    split = result.card_meta["split"]
    assert set(split["held_out_skills"]) == held_skills
    assert set(split["held_out_topics"]) == held_topics
    everything = [*result.records, *(r.record for r in result.rejected)]
    assert len(everything) == 5 * ITEMS * ROUNDS
    for record in everything:
        assert not set(record.skills) & held_skills and record.topic not in held_topics
        assert record.provenance["split"]["held_out_skills"] == split["held_out_skills"]
    # Not a single prompt the teacher saw named a held-out skill or topic.
    names = {catalog.skill(s).name for s in held_skills}
    topics = {catalog.topic(t).name for t in held_topics}
    for body in sft_run["requests"]:
        task = body["messages"][0]["content"]
        if "=== Text to grade ===" in task:
            continue
        assert not set(_skill_names(task)) & names
        assert re.search(r"about (.+?) that illustrates", task).group(1) not in topics
    # The check that guards this really fires.
    from skillmix.data import sft as sft_module

    leak = held_out_part(catalog, sft_run["config"].split)
    bad = DataRecord("x", "skillmix-sft", [], [leak.skills[0]], "t", topic="beekeeping")
    with pytest.raises(LeakError):
        sft_module._check_no_leak([bad], leak)


def test_records_carry_the_task_answer_and_provenance(sft_run):
    result, store, config = sft_run["result"], sft_run["store"], sft_run["config"]
    record = next(r for r in result.records if r.k == 2)
    user, assistant = record.messages
    assert user["role"] == "user" and assistant["role"] == "assistant"
    # The task as the teacher saw it (skills with definitions and examples, topic) + limit.
    turn1 = store.get_call(record.provenance["call_keys"]["turn1"])
    assert user["content"] == turn1.messages[0]["content"] + (
        "\n\nThe text must have at most 1 sentence."
    )
    for name in record.provenance["skill_names"]:
        assert f"**{name}**:" in user["content"]
    assert "Example:" in user["content"] and record.provenance["topic_name"] in user["content"]
    # The extracted final answer only: no marker, no explanation.
    assert assistant["content"].endswith("qfull.") and "Explanation" not in assistant["content"]
    prov = record.provenance
    catalog = sft_run["catalog"]
    assert prov["run_id"] == result.card_meta["run_id"]
    assert prov["catalog_hash"] == catalog.content_hash
    assert prov["template_version"].startswith("v2-")
    assert prov["generation_seed"] == derive_seed(
        config.seed, prov["item_id"], "generate", prov["generation_round"]
    )
    turn2 = store.get_call(prov["call_keys"]["turn2"])
    assert turn2.messages[-1]["content"].startswith("Thank you. Please review")
    [keys] = prov["call_keys"]["grades"].values()
    assert len(keys) == config.grading_rounds
    assert record.teacher == config.student and record.pipeline == "skillmix-sft"
    # ids are stable: the same run collected again gives the same records.
    again = collect_sft(store, prov["run_id"], catalog)
    assert [r.to_dict() for r in again.records] == [r.to_dict() for r in result.records]


def test_each_generation_is_judged_on_its_own(tmp_path: Path):
    """An item with one full-marks round and one weaker round keeps only the first text."""
    with ScriptedServer(lambda body: quality_policy(body, even_seed_only=True)) as server:
        spec = server.spec()
        config = sft_config(spec, [spec], k=(2,), items=6, generation_rounds=2, grading_rounds=1)
        result = build_sft(
            Store(tmp_path / "s.sqlite"),
            config,
            load_catalog(),
            resolve_model(spec),
            [resolve_model(spec)],
        )
    outcomes: dict[str, dict[int, bool]] = {}
    for record in [*result.records, *(r.record for r in result.rejected)]:
        prov = record.provenance
        good = (prov["generation_seed"] + 1) % 2 == 0  # the turn-2 seed decides
        outcomes.setdefault(prov["item_id"], {})[prov["generation_round"]] = good
    expected = {
        (item, rnd) for item, rounds in outcomes.items() for rnd, ok in rounds.items() if ok
    }
    kept = {(r.provenance["item_id"], r.provenance["generation_round"]) for r in result.records}
    assert kept == expected
    mixed = sum(set(rounds.values()) == {True, False} for rounds in outcomes.values())
    assert mixed >= 1, "the seeds must give at least one item a good and a weak round"
    assert result.reasons == {"below-threshold": 12 - len(expected)}


def test_held_out_command_evaluates_exactly_the_held_out_side(sft_run, tmp_path: Path):
    result, catalog = sft_run["result"], sft_run["catalog"]
    command = result.card_meta["eval_command"]
    args = shlex.split(command)
    assert args[:4] == ["skillmix", "run", "--student", "FINETUNED_MODEL"]
    assert "--split" in args and args[args.index("--split") + 1] == "held-out"
    assert args[args.index("--k") + 1] == "2,3,4,5"
    with ScriptedServer(quality_policy) as server:
        args[args.index("FINETUNED_MODEL")] = server.spec()
        judge_at = args.index("--judge") + 1
        args[judge_at] = server.spec()
        skillmix(
            *args[1:],
            "--generation-rounds",
            "1",
            "--grading-rounds",
            "1",
            "--store",
            "eval.sqlite",
            cwd=tmp_path,
        )
    db = sqlite3.connect(tmp_path / "eval.sqlite")
    rows = db.execute("SELECT skill_ids, topic_id FROM items").fetchall()
    db.close()
    split = result.card_meta["split"]
    assert len(rows) == 4 * ITEMS
    for skills, topic in rows:
        assert set(json.loads(skills)) <= set(split["held_out_skills"])
        assert topic in split["held_out_topics"]
    assert catalog.name == "builtin"


# --- exports and the data card ------------------------------------------------------------------


def test_every_export_format_round_trips(sft_run):
    import datasets
    import pandas as pd

    records = sft_run["result"].records
    paths = export_records(records, sft_run["tmp"] / "out")
    assert set(paths) == {"jsonl", "parquet", "hf"}
    dataset = datasets.load_from_disk(str(paths["hf"]))
    parquet = pd.read_parquet(paths["parquet"])
    lines = pd.read_json(paths["jsonl"], lines=True)
    assert len(dataset) == len(parquet) == len(lines) == len(records) > 0
    for i, record in enumerate(records):
        assert dataset[i]["messages"] == record.messages
        assert [dict(m) for m in parquet["messages"][i]] == record.messages
        assert lines["messages"][i] == record.messages
        assert dataset[i]["id"] == parquet["id"][i] == lines["id"][i] == record.id
        assert list(parquet["skills"][i]) == dataset[i]["skills"] == record.skills
        assert json.loads(dataset[i]["provenance"]) == record.provenance
        assert json.loads(parquet["scores"][i]) == record.scores
        assert lines["messages"][i] == record.messages
    # pandas' default JSON float parser is approximate (0.7 -> 0.7000000000000001).
    precise = pd.read_json(paths["jsonl"], lines=True, precise_float=True)
    assert list(precise["provenance"]) == [r.provenance for r in records]
    assert read_jsonl(paths["jsonl"]) == records
    # Writing again into the same folder replaces the earlier files.
    again = export_records(records[:3], sft_run["tmp"] / "out")
    assert len(datasets.load_from_disk(str(again["hf"]))) == 3
    assert len(pd.read_parquet(again["parquet"])) == 3


def test_empty_and_partial_exports(tmp_path: Path):
    import datasets
    import pandas as pd

    paths = export_records([], tmp_path / "empty")
    assert len(datasets.load_from_disk(str(paths["hf"]))) == 0
    assert len(pd.read_parquet(paths["parquet"])) == 0
    assert paths["jsonl"].read_text() == ""
    only = export_records([_record(0, "a b c")], tmp_path / "one", formats=("jsonl",))
    assert list(only) == ["jsonl"] and not (tmp_path / "one" / "hf").exists()
    assert parse_formats("parquet, jsonl,parquet") == ("parquet", "jsonl")
    with pytest.raises(ValueError, match="unknown export format"):
        parse_formats("csv")
    with pytest.raises(ValueError, match="role"):
        bad = _record(0, "x")
        bad.messages[0]["name"] = "someone"
        export_records([bad], tmp_path / "bad", formats=("jsonl",))


def test_data_card_numbers_and_text(sft_run):
    result = sft_run["result"]
    numbers = card_numbers(result.records, result.rejected, result.card_meta)
    assert numbers["kept"] == ITEMS + ITEMS * ROUNDS
    assert numbers["rejected"] == 4 * ITEMS * ROUNDS - ITEMS
    assert numbers["rejections"] == result.reasons
    assert numbers["per_k"] == {
        "1": {"kept": ITEMS, "rejected": ITEMS},
        "2": {"kept": ITEMS * ROUNDS, "rejected": 0},
        "3": {"kept": 0, "rejected": ITEMS * ROUNDS},
        "4": {"kept": 0, "rejected": ITEMS * ROUNDS},
        "5": {"kept": 0, "rejected": ITEMS * ROUNDS},
    }
    skill_total = sum(c["kept"] + c["rejected"] for c in numbers["per_skill"].values())
    assert skill_total == sum(k * ITEMS * ROUNDS for k in range(1, 6))
    assert sum(c["kept"] for c in numbers["per_topic"].values()) == numbers["kept"]
    assert sum(c["kept"] for c in numbers["per_skill"].values()) == ITEMS + 2 * ITEMS * ROUNDS
    assert "per_category" in numbers and "per_query_type" not in numbers
    meta = numbers["meta"]
    assert meta["teacher"] == sft_run["config"].student
    assert meta["judges"] == list(sft_run["config"].judges)
    assert meta["catalog"]["hash"] == sft_run["catalog"].content_hash
    assert meta["templates"].startswith("v2-") and meta["dedup_threshold"] == 0.8
    assert meta["usage"]["teacher"]["calls"] == 5 * ITEMS * ROUNDS * 2

    text = data_card(result.records, result.rejected, result.card_meta)
    assert f"**{numbers['kept']}** records kept out of {5 * ITEMS * ROUNDS}" in text
    assert result.card_meta["eval_command"] in text
    for skill in result.card_meta["split"]["held_out_skills"]:
        assert f"`{skill}`" in text
    for label in ("near-duplicate of a kept record", "empty answer", "unscored"):
        assert label in text
    assert "full marks" in text  # the keep rule
    md, js = write_card(result.records, result.rejected, result.card_meta, sft_run["tmp"] / "c")
    assert json.loads(js.read_text()) == json.loads(json.dumps(numbers))
    assert md.read_text() == text


def test_instruct_style_records_get_a_query_type_table():
    records = [
        DataRecord(
            f"r{i}",
            "instruct-skillmix",
            [{"role": "user", "content": "q"}],
            ["skill a", "skill b"],
            "t",
            query_type=qt,
        )
        for i, qt in enumerate(["advice", "advice", "coding"])
    ]
    rejected = [Rejection(records[2], "shirker-check", "too short")]
    numbers = card_numbers(records[:2], rejected, {"pipeline": "instruct-skillmix", "n": 3})
    assert numbers["per_query_type"] == {
        "advice": {"kept": 2, "rejected": 0},
        "coding": {"kept": 0, "rejected": 1},
    }
    assert "per_topic" not in numbers and "per_k" in numbers and numbers["per_k"] == {}
    text = data_card(records[:2], rejected, {"pipeline": "instruct-skillmix", "n": 3})
    assert "Per query type" in text and "shirker-check" in text and "- n: `3`" in text


# --- the command line, killed and resumed ---------------------------------------------------------


def _sft_args(spec: str, store: Path, out: Path) -> list[str]:
    return [
        "data", "sft", "--teacher", spec, "--judge", spec, "--k", "1,2", "--items", "4",
        "--generation-rounds", "2", "--grading-rounds", "2", "--held-out-skills", "0.2",
        "--held-out-topics", "0.2", "--split-seed", "3", "--store", str(store), "--out", str(out),
    ]  # fmt: skip


def test_cli_sigkill_then_resume_equals_uninterrupted(tmp_path: Path):
    import datasets

    total = 2 * 4 * 2 * (2 + 2)
    killed_store, killed_out = tmp_path / "killed.sqlite", tmp_path / "killed"
    with ScriptedServer(quality_policy) as first:
        spec = first.spec()
        args = _sft_args(spec, killed_store, killed_out)
        sent_by_killed = sigkill_at_request(first, args, tmp_path, at=total // 3)
    assert total // 3 <= len(sent_by_killed) < total, "the kill must land mid-run"
    assert not (killed_out / "records.jsonl").exists()
    answered = stored_bodies(killed_store, OpenAICompatModel("scripted", base_url=first.base_url))
    assert answered, "some answers were stored before the kill"
    store = Store(killed_store)
    [run] = store.list_runs()
    with pytest.raises(ValueError, match="not finished"):
        collect_sft(store, run["id"], load_catalog())
    store.close()

    with ScriptedServer(quality_policy, port=first.port) as server:
        resumed = skillmix(*args, cwd=tmp_path)
        resumed_requests = [canonical(b) for b in server.requests]
        assert not answered & set(resumed_requests), "an answered request was sent again"
        assert len(resumed_requests) == len(set(resumed_requests))
        assert "skillmix run --student FINETUNED_MODEL" in resumed.stdout

        mark = len(server.requests)
        clean_out = tmp_path / "clean"
        skillmix(*_sft_args(spec, tmp_path / "clean.sqlite", clean_out), cwd=tmp_path)
        assert len(server.requests) - mark == total

        # Re-running a finished job sends nothing and writes the same files.
        again = skillmix(*_sft_args(spec, tmp_path / "clean.sqlite", clean_out), cwd=tmp_path)
        assert "0 sent" in again.stderr

    for name in ("records.jsonl", "rejected.jsonl", "card.json", "card.md"):
        assert (killed_out / name).read_text() == (clean_out / name).read_text(), name
    records = read_jsonl(clean_out / "records.jsonl")
    assert len(records) == 4 + 8  # k=1: 4 after dedup; k=2: all 8
    dataset = datasets.load_from_disk(str(killed_out / "hf"))
    assert [json.loads(json.dumps(m)) for m in dataset["messages"]] == [r.messages for r in records]
    card = json.loads((clean_out / "card.json").read_text())
    assert card["kept"] == 12 and card["rejections"] == {"near-duplicate": 4}


def test_cli_estimate_and_user_errors(tmp_path: Path):
    with ScriptedServer(quality_policy) as server:
        spec = server.spec()
        args = _sft_args(spec, tmp_path / "s.sqlite", tmp_path / "out")
        estimate = skillmix(*args, "--estimate", cwd=tmp_path)
        assert len(server.requests) == 0
        assert "student" in estimate.stdout and "judge" in estimate.stdout
        assert "total: 64 calls to send" in estimate.stdout
        assert not (tmp_path / "out").exists()
        bad = skillmix(*args, "--formats", "csv", cwd=tmp_path, check=False)
        assert bad.returncode != 0 and "unknown export format" in bad.stderr
        bad = skillmix(*args, "--held-out-category", "nope", cwd=tmp_path, check=False)
        assert bad.returncode != 0 and "unknown categories" in bad.stderr
        assert len(server.requests) == 0


# --- near-duplicate removal -------------------------------------------------------------------


def _record(i: int, answer: str) -> DataRecord:
    return DataRecord(
        id=f"r{i}",
        pipeline="skillmix-sft",
        messages=[{"role": "user", "content": "task"}, {"role": "assistant", "content": answer}],
        skills=["s"],
        teacher="t",
    )


def test_near_duplicates_basic_cases():
    base = " ".join(_words("base", n=40))
    texts = [
        base,
        base.upper() + "!",  # same words: Jaccard 1
        base + " w1 w2",  # 38/40 = 0.95
        " ".join(_words("other", n=40)),
        "",
        "",
        "short",
        "Short.",
        "two words",
    ]
    assert near_duplicates(texts) == [1, 2, 5, 7]
    pairs = {i: (j, s) for i, j, s in near_duplicate_pairs(texts)}
    assert pairs[1] == (0, 1.0) and pairs[2][0] == 0 and 0.9 < pairs[2][1] < 1.0
    assert near_duplicates(texts, threshold=0.99) == [1, 5, 7]
    assert near_duplicates([]) == [] and near_duplicates(["one"]) == []
    with pytest.raises(ValueError):
        near_duplicates(texts, threshold=0.0)


def test_near_duplicates_against_exact_pairwise_jaccard():
    """Every drop is a verified pair with a kept text; kept texts are (almost) never alike.

    LSH may miss a pair right at the threshold (it finds one with probability >= 99%), so
    a few alike kept pairs are tolerated; none is tolerated clearly above the threshold.
    """
    from skillmix.data.dedup import _shingles

    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(400)]
    texts: list[str] = []
    for _ in range(600):
        if texts and rng.random() < 0.4:
            words = rng.choice(texts).split()
            for _ in range(rng.randint(0, 6)):
                words[rng.randrange(len(words))] = rng.choice(vocab)
            texts.append(" ".join(words))
        else:
            texts.append(" ".join(rng.choices(vocab, k=rng.randint(15, 40))))
    shingles = _shingles(texts, 3)
    for threshold in (0.5, 0.8, 0.9):
        pairs = near_duplicate_pairs(texts, threshold)
        dropped = {i for i, _, _ in pairs}
        assert len(dropped) > 30
        for i, j, similarity in pairs:
            assert j < i and j not in dropped
            assert similarity == jaccard(shingles.of(i), shingles.of(j)) >= threshold
        kept = [i for i in range(len(texts)) if i not in dropped]
        alike = [
            jaccard(shingles.of(a), shingles.of(b))
            for x, a in enumerate(kept)
            for b in kept[:x]
            if jaccard(shingles.of(a), shingles.of(b)) >= threshold
        ]
        assert len(alike) <= len(dropped) // 50 and all(s < threshold + 0.05 for s in alike)
    assert near_duplicates(texts) == near_duplicates(list(reversed(texts[::-1])))


def test_band_layout_finds_pairs_at_the_threshold():
    for threshold in (0.5, 0.7, 0.8, 0.9, 1.0):
        bands, rows = band_layout(threshold)
        assert bands * rows <= 128
        assert candidate_probability(threshold, bands, rows) >= 0.99


def test_dedupe_records_keeps_first_and_explains():
    texts = ["alpha beta gamma delta epsilon zeta", "other words entirely here now"]
    records = [_record(0, texts[0]), _record(1, texts[1]), _record(2, texts[0] + ".")]
    kept, dropped = dedupe(records, 0.8)
    assert [r.id for r in kept] == ["r0", "r1"]
    [rejection] = dropped
    assert rejection.record.id == "r2" and rejection.reason == "near-duplicate"
    assert "r0" in rejection.detail
    kept, dropped = dedupe(records, 0.8, key=lambda r: r.id)  # ids differ: nothing drops
    assert len(kept) == 3 and not dropped
