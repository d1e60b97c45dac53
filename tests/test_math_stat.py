"""`skillmix math data --method stat-sel|stat-syn`: data aimed at a profile's missing skills.

The profile comes from the planted student of `test_math_profile`. STAT-Sel's weights are
recomputed here from the stored verdicts with an independent implementation of the
documented rule. STAT-Syn's scripted teacher plants, for every missing skill, one pair of
each kind the checks must reject (a wrong answer the independent solve disagrees with,
an unreadable reply, a solution contradicting its answer, copies of a pool question, of
a held-out question and of an earlier pair) next to good pairs; the scripted verifier
really solves the questions it can (sums, and the dataset's own questions).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import skillmix
from scripted_server import Reply, ScriptedServer
from skillmix.math.problems import MathDataset, MathProblem, load_dataset
from skillmix.math.stat import (
    WeightRule,
    raw_weight,
    resample,
    selection_weights,
    skill_weights,
    worked_solution,
)
from skillmix.math.stat_prompts import parse_pair
from skillmix.math.stat_syn import KIND as SYN_KIND
from skillmix.math.strategies import SOLVE_INSTRUCTION
from skillmix.runtime.pool import derive_seed
from test_math_profile import Student, planted_dataset, write_jsonl

datasets = pytest.importorskip("datasets")


# --- the rule, independently ----------------------------------------------------------------


def expected_weights(
    skills_of: dict[str, list[str]],
    rates: dict[str, float],
    temperature: float,
    floor: float,
    aggregate: str,
) -> dict[str, tuple[float, float]]:
    """The documented STAT-Sel rule, written from the docs (no shared code)."""
    exps = {s: math.exp(r / temperature) for s, r in rates.items()}
    average = statistics.fmean(exps.values()) if exps else 1.0
    u = {s: e / average for s, e in exps.items()}
    raw = {}
    for q, skills in skills_of.items():
        values = [u[s] for s in skills if s in u]
        if not values:
            raw[q] = floor
        else:
            combined = max(values) if aggregate == "max" else statistics.fmean(values)
            raw[q] = max(floor, combined)
    mean = statistics.fmean(raw.values())
    return {q: (w, w / mean) for q, w in raw.items()}


rates_strategy = st.dictionaries(
    st.sampled_from("abcdef"), st.floats(0.0, 1.0), min_size=0, max_size=6
)
skills_strategy = st.dictionaries(
    st.text("pq", min_size=1, max_size=3),
    st.lists(st.sampled_from("abcdefgh"), unique=True, max_size=3),
    min_size=1,
    max_size=12,
)


@given(
    rates_strategy,
    skills_strategy,
    st.floats(0.05, 5.0),
    st.floats(0.01, 2.0),
    st.sampled_from(["mean", "max"]),
)
def test_selection_weights_follow_the_documented_rule(
    rates: dict[str, float],
    skills_of: dict[str, list[str]],
    temperature: float,
    floor: float,
    aggregate: str,
):
    rule = WeightRule(temperature, floor, aggregate)  # type: ignore[arg-type]
    got = selection_weights(skills_of, rates, rule)
    want = expected_weights(skills_of, rates, temperature, floor, aggregate)
    assert got.keys() == want.keys()
    for q in want:
        assert got[q][0] == pytest.approx(want[q][0], rel=1e-12)
        assert got[q][1] == pytest.approx(want[q][1], rel=1e-12)
    assert statistics.fmean(w for _, w in got.values()) == pytest.approx(1.0)


def test_the_rule_by_hand():
    rates = {"a": 0.5, "b": 0.0}
    u = skill_weights(rates, 0.5)
    e = math.e
    assert u["a"] == pytest.approx(2 * e / (e + 1)) and u["b"] == pytest.approx(2 / (e + 1))
    assert raw_weight(["a", "b"], u, WeightRule(0.5, 0.1, "mean")) == pytest.approx(1.0)
    assert raw_weight(["a", "b"], u, WeightRule(0.5, 0.1, "max")) == pytest.approx(u["a"])
    assert raw_weight(["z"], u, WeightRule(0.5, 0.1, "max")) == 0.1  # no profiled skill
    assert raw_weight(["b"], u, WeightRule(0.5, 0.9, "max")) == 0.9  # the floor
    with pytest.raises(Exception, match="temperature"):
        WeightRule(0.0)
    assert resample([1.0, 0.0, 3.0], 8, seed=4) == resample([1.0, 0.0, 3.0], 8, seed=4)
    assert 1 not in resample([1.0, 0.0, 3.0], 200, seed=4)


def test_a_solution_ends_with_its_boxed_answer():
    assert worked_solution("2 + 3 = 5.", "5") == "2 + 3 = 5.\n\nFinal answer: \\boxed{5}"
    assert worked_solution("So \\boxed{5}.", "5") == "So \\boxed{5}."


# --- a profiled world ---------------------------------------------------------------------


def world_dataset() -> tuple[MathDataset, str, str, str]:
    """The planted dataset with a train question repeating a test question (a leak) and
    one without a worked solution; returns it and (leaking id, its test twin, no-solution
    id). Only texts change, so the split is the planted dataset's."""
    base = planted_dataset(200)
    train, test = base.split(0.5, 5)
    leaking, twin, bare = train.problems[3].id, test.problems[0].id, train.problems[4].id
    problems = []
    for p in base:
        if p.id == leaking:
            p = MathProblem(p.id, test.problems[0].question, p.answer, p.solution,
                            p.category, p.concepts)  # fmt: skip
        elif p.id == bare:
            p = MathProblem(p.id, p.question, p.answer, None, p.category, p.concepts)
        problems.append(p)
    return MathDataset.build("planted-stat", "tests", problems), leaking, twin, bare


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A finished profile (train part) of the planted student, made by the command."""
    folder = tmp_path_factory.mktemp("stat")
    planted, leaking, twin, bare = world_dataset()
    data = write_jsonl(planted, folder / "planted.jsonl")
    dataset = load_dataset(str(data))  # ids as the loader names them: "planted:p006"
    leaking, twin, bare = (f"planted:{q}" for q in (leaking, twin, bare))
    student = Student(dataset)
    with (
        ScriptedServer(student.student, model="student") as s,
        ScriptedServer(student.teacher, model="teacher") as t,
    ):
        args = [
            "math", "profile", "--dataset", str(data), "--student", s.spec(), "--teacher",
            t.spec(), "--seed", "5", "--workers", "4", "--json",
        ]  # fmt: skip
        report = json.loads(skillmix(*args, cwd=folder).stdout)
    return {
        "folder": folder,
        "dataset": dataset,
        "run_id": report["run_id"],
        "report": report,
        "leaking": leaking,
        "twin": twin,
        "bare": bare,
    }


def stored_rates(store: Path, run_id: str) -> dict[str, float]:
    """Missing rates tallied straight from the stored verdicts (not through the profile
    code): missing / (questions needing the skill - unparsed verdicts)."""
    db = sqlite3.connect(store)
    rows = db.execute(
        "SELECT data FROM records WHERE run_id = ? AND kind = 'math.profile.answer'", (run_id,)
    ).fetchall()
    db.close()
    missing: Counter[str] = Counter()
    known: Counter[str] = Counter()
    for (data,) in rows:
        answer = json.loads(data)
        for skill in answer["skills"]:
            if answer["verdict"]["status"] != "unparsed":
                known[skill] += 1
            if answer["verdict"]["status"] == "parsed" and skill in answer["verdict"]["missing"]:
                missing[skill] += 1
    return {s: missing[s] / n for s, n in known.items() if n}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- STAT-Sel -------------------------------------------------------------------------------


def test_stat_sel_writes_the_pool_with_the_documented_weights(profiled: dict[str, Any]):
    folder, run_id = profiled["folder"], profiled["run_id"]
    args = [
        "math", "data", "--method", "stat-sel", "--profile", run_id, "--temperature", "0.3",
        "--floor", "0.05", "--aggregate", "max", "--out", "sel",
    ]  # fmt: skip
    done = skillmix(*args, cwd=folder)
    assert "stat-sel data from profile" in done.stdout
    out = folder / "sel"
    records = read_jsonl(out / "records.jsonl")
    rejected = {
        r["provenance"]["question_id"]: r["reason"] for r in read_jsonl(out / "rejected.jsonl")
    }
    assert rejected == {profiled["leaking"]: "leak", profiled["bare"]: "no-solution"}
    train, _ = profiled["dataset"].split(0.5, 5)
    assert len(records) == len(train) - 2
    skills_of = {r["provenance"]["question_id"]: r["skills"] for r in records}
    rates = stored_rates(folder / "skillmix.sqlite", run_id)
    want = expected_weights(skills_of, rates, 0.3, 0.05, "max")
    for record in records:
        raw, weight = want[record["provenance"]["question_id"]]
        assert record["scores"]["raw_weight"] == pytest.approx(raw, rel=1e-12)
        assert record["scores"]["weight"] == pytest.approx(weight, rel=1e-12)
        assert record["pipeline"] == "stat-sel"
        assert record["messages"][0]["content"].startswith(SOLVE_INSTRUCTION)
        assert "\\boxed{" in record["messages"][1]["content"]
    heaviest = max(records, key=lambda r: r["scores"]["weight"])
    assert "telescoping sums" in heaviest["skills"]  # the most-missed skill weighs most
    loaded = datasets.load_from_disk(str(out / "hf"))
    assert len(loaded) == len(records)
    assert sorted(json.loads(row)["weight"] for row in loaded["scores"]) == sorted(
        r["scores"]["weight"] for r in records
    )
    card = json.loads((out / "card.json").read_text())
    assert card["meta"]["profile_run"] == run_id
    assert card["per_skill"]["telescoping sums"]["kept"] == sum(
        "telescoping sums" in r["skills"] for r in records
    )
    assert card["meta"]["missing_rates"] == pytest.approx(rates)
    md = (out / "card.md").read_text()
    assert run_id in md and "exp(r_s / 0.3)" in md


def test_stat_sel_resamples_in_proportion_to_the_weights(profiled: dict[str, Any]):
    folder, run_id = profiled["folder"], profiled["run_id"]
    args = ["math", "data", "--method", "stat-sel", "--profile", run_id, "--resample", "3000",
            "--formats", "jsonl"]  # fmt: skip
    skillmix(*args, "--out", "drawn", cwd=folder)
    skillmix(*args, "--out", "again", cwd=folder)
    drawn = read_jsonl(folder / "drawn" / "records.jsonl")
    assert [r["id"] for r in drawn] == [
        r["id"] for r in read_jsonl(folder / "again" / "records.jsonl")
    ]
    assert len(drawn) == 3000 and len({r["id"] for r in drawn}) == 3000
    counts = Counter(r["provenance"]["question_id"] for r in drawn)
    weight = {r["provenance"]["question_id"]: r["scores"]["weight"] for r in drawn}
    total = sum(weight.values())
    # Each question's share of the draws is close to its share of the weight.
    heavy = [q for q in weight if weight[q] > 1.5]
    light = [q for q in weight if weight[q] < 0.7]
    assert heavy and light
    for group in (heavy, light):
        share = sum(counts[q] for q in group) / 3000
        expected = sum(weight[q] for q in group) / total
        assert abs(share - expected) < 4 * math.sqrt(expected * (1 - expected) / 3000)


def test_data_refuses_a_run_that_is_not_a_profile(profiled: dict[str, Any], tmp_path: Path):
    empty = skillmix(
        "math", "data", "--method", "stat-sel", "--profile", "nope", "--store",
        str(tmp_path / "empty.sqlite"), cwd=tmp_path, check=False,
    )  # fmt: skip
    assert empty.returncode == 1 and "no run 'nope'" in empty.stderr


# --- STAT-Syn -------------------------------------------------------------------------------

# What the scripted teacher writes for pair i of every skill, and the fate it must meet.
PLANTED_PAIRS = {
    0: ("good", None),
    1: ("wrong-answer", "verify-disagrees"),
    2: ("garbage", "unparsed-pair"),
    3: ("inconsistent", "inconsistent-pair"),
    4: ("pool-copy", "near-duplicate-pool"),
    5: ("test-copy", "leak"),
    6: ("repeat", "near-duplicate"),
    7: ("good-as-text", None),
}


def _numbers(skill: str, index: int) -> tuple[int, int]:
    seed = derive_seed(17, skill, index)
    return 100 + seed % 900, 1000 + seed // 7 % 9000


class Writer:
    """The scripted teacher of STAT-Syn: what it writes depends on which pair it is asked
    for, found from the request's seed (the pipeline's documented seed derivation)."""

    def __init__(self, skills: list[str], pool: list[MathProblem], held_out: list[MathProblem]):
        self.plan: dict[int, tuple[str, int]] = {}
        for skill in skills:
            for index in PLANTED_PAIRS:
                base = derive_seed(0, SYN_KIND, "write", skill, index)
                for sample in range(2):
                    self.plan[(base + 7919 * sample) % (2**31 - 1)] = (skill, index)
        self.pool = pool
        self.held_out = held_out

    def question(self, skill: str, index: int) -> str:
        a, b = _numbers(skill, index)
        return f"Using {skill} as a guide, compute {a} + {b} for the orchard ledger."

    def __call__(self, body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        assert "Write one new math problem" in prompt
        skill, index = self.plan[body["seed"]]
        assert f"Skill: {skill}" in prompt
        kind = PLANTED_PAIRS[index][0]
        question = self.question(skill, 0 if kind == "repeat" else index)
        a, b = _numbers(skill, 0 if kind == "repeat" else index)
        answer, stated = a + b, a + b
        if kind == "garbage":
            return Reply("Here is a lovely problem about gardens, I hope you like it.")
        if kind == "wrong-answer":
            answer = stated = a + b + 1
        if kind == "inconsistent":
            answer = a + b + 1
        if kind in ("pool-copy", "test-copy"):
            source = (self.pool if kind == "pool-copy" else self.held_out)[index]
            question, answer, stated = source.question, int(source.answer), int(source.answer)
        solution = f"Add the two numbers: the total is \\boxed{{{stated}}}."
        if kind == "good-as-text" or not body.get("response_format"):
            return Reply(f"Question: {question}\nSolution: {solution}\nAnswer: {answer}")
        return Reply(
            json.dumps({"question": question, "solution": solution, "answer": str(answer)})
        )


def verifier_for(dataset: MathDataset):
    golds = {p.question: p.answer for p in dataset}

    def verify(body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        assert prompt.startswith(SOLVE_INSTRUCTION) and "Solution" not in prompt
        question = prompt.rsplit("Problem: ", 1)[1].strip()
        found = re.search(r"compute (\d+) \+ (\d+)", question)
        if found:
            return Reply(f"Adding: \\boxed{{{int(found.group(1)) + int(found.group(2))}}}")
        if question in golds:
            return Reply(f"I know this one: \\boxed{{{golds[question]}}}")
        return Reply("I cannot solve it.")

    return verify


def test_stat_syn_keeps_only_pairs_an_independent_solve_confirms(profiled: dict[str, Any]):
    folder, run_id, dataset = profiled["folder"], profiled["run_id"], profiled["dataset"]
    flagged = [row["skill"] for row in profiled["report"]["skills"] if row["flagged"]]
    assert "telescoping sums" in flagged
    train, test = dataset.split(0.5, 5)
    leaking = profiled["leaking"]
    pool = [p for p in train if p.id != leaking]
    writer = Writer(flagged, pool, list(test))
    with (
        ScriptedServer(writer, model="teacher") as t,
        ScriptedServer(verifier_for(dataset), model="verifier") as v,
    ):
        args = [
            "math", "data", "--method", "stat-syn", "--profile", run_id, "--teacher", t.spec(),
            "--verifier", v.spec(), "--per-skill", str(len(PLANTED_PAIRS)), "--context", "2",
            "--workers", "4", "--out", "syn",
        ]  # fmt: skip
        skillmix(*args, cwd=folder)
        verified = len(v.requests)
        again = skillmix(*args, cwd=folder)
        assert len(v.requests) == verified
    assert "model calls (this invocation): 0 sent" in again.stderr
    # Only pairs that read and agree with themselves reach the verifier.
    assert verified == len(flagged) * 6
    out = folder / "syn"
    kept = read_jsonl(out / "records.jsonl")
    rejected = read_jsonl(out / "rejected.jsonl")
    fate = {(r["skills"][0], r["provenance"]["pair"]): None for r in kept}
    fate.update({(r["skills"][0], r["provenance"]["pair"]): r["reason"] for r in rejected})
    assert fate == {(s, i): planted[1] for s in flagged for i, planted in PLANTED_PAIRS.items()}
    for record in kept:
        assert record["judge_verdicts"]["independent solve"]["agrees"] is True
        assert record["provenance"]["profile_run"] == run_id
        assert record["messages"][0]["content"].startswith(SOLVE_INSTRUCTION)
        assert len(record["provenance"]["context"]) == 2
    unread = [r for r in rejected if r["reason"] == "unparsed-pair"]
    assert all(r["messages"][-1]["content"].startswith("Here is a lovely") for r in unread)
    disagreeing = [r for r in rejected if r["reason"] == "verify-disagrees"]
    assert all("answered" in r["detail"] for r in disagreeing)
    loaded = datasets.load_from_disk(str(out / "hf"))
    assert len(loaded) == len(kept) == 2 * len(flagged)
    card = json.loads((out / "card.json").read_text())
    assert card["meta"]["profile_run"] == run_id
    assert card["per_skill"] == {s: {"kept": 2, "rejected": 6} for s in sorted(flagged)}
    assert card["rejections"] == {
        reason: len(flagged) for _, reason in PLANTED_PAIRS.values() if reason
    }
    assert run_id in (out / "card.md").read_text()


def test_a_written_pair_is_read_from_json_or_sections():
    pair = parse_pair('{"question": "Q?", "solution": "S \\\\boxed{3}", "answer": "$3$"}')
    assert (pair.question, pair.answer) == ("Q?", "3")  # type: ignore[union-attr]
    pair = parse_pair("**Question:** Q?\n**Solution:** so \\boxed{\\frac{1}{2}}")
    assert pair.answer == "\\frac{1}{2}"  # type: ignore[union-attr]  # from the box
    assert "no question" in parse_pair("Answer: 3").reason  # type: ignore[union-attr]


# --- the real embedded model ------------------------------------------------------------------


@pytest.mark.embedded
def test_stat_syn_runs_with_the_embedded_model(tmp_path: Path):
    profile = [
        "math", "profile", "--student", "embedded", "--dataset", "champ", "--limit", "3",
        "--max-tokens", "160", "--teacher-max-tokens", "48", "--json",
    ]  # fmt: skip
    run_id = json.loads(skillmix(*profile, cwd=tmp_path).stdout)["run_id"]
    # The embedded teacher rarely finds a skill lacking: name one rather than hope.
    data = [
        "math", "data", "--method", "stat-syn", "--profile", run_id, "--skill", "rule of sum",
        "--per-skill", "1", "--context", "1", "--max-tokens", "300",
        "--verifier-max-tokens", "160", "--out", "syn",
    ]  # fmt: skip
    done = skillmix(*data, cwd=tmp_path)
    assert "stat-syn data from profile" in done.stdout
    card = json.loads((tmp_path / "syn" / "card.json").read_text())
    assert card["meta"]["profile_run"] == run_id
    assert card["candidates"] == 1  # written, then kept or rejected with its reason
    assert any("SmolLM2" in w for w in card["meta"]["warnings"])
    loaded = datasets.load_from_disk(str(tmp_path / "syn" / "hf"))
    assert len(loaded) == card["kept"]
