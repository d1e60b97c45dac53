"""`skillmix math generate` and `math export` against a scripted teacher over real HTTP.

The teacher is planted: every one of the ten pairs of a five-skill catalog gets its own
behaviour, so each filter meets a question it must reject, and the test knows which
reason each rejection must carry: a written answer that the independent solve does not
reach, a solution without a final answer, a copy of a pool question, a critique that
keeps finding one skill unneeded, no readable question, a repeat of an earlier question.
Other pairs pass: one after a rewrite (its first critique finds it invalid), one whose
critique can never be read (undecided: left to the reviewer, never a silent pass or
fail). The verifier answers what each question asks; it never sees the written answer.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import skillmix
from scripted_server import Reply, ScriptedServer
from skillmix.catalog.load import load_catalog
from skillmix.catalog.model import Catalog
from skillmix.errors import InputError
from skillmix.math.generate import (
    CANDIDATE_KIND,
    GenerateConfig,
    GeneratePipeline,
    GenerateResult,
    candidate_id,
    load_generate_run,
    pair_count,
    sample_pairs,
    unrank_pair,
)
from skillmix.math.generate_export import collect_export, write_export
from skillmix.math.generate_filters import answer_problem, duplicate_candidates, similarity
from skillmix.math.generate_prompts import CritiqueVerdict, parse_critique, parse_question
from skillmix.math.generate_review import decisions as stored_decisions
from skillmix.math.generate_review import (
    final_decisions,
    put_decision,
    review_queue,
)
from skillmix.math.problems import MathDataset, MathProblem
from skillmix.models.openai_compat import OpenAICompatModel
from skillmix.runtime.loop import run as run_async
from skillmix.store import Store

# --- the planted teacher ---------------------------------------------------------------------

CATALOG_YAML = """\
version: "test-1"
skills:
  - id: ratios
    name: ratios and proportions
    category: arithmetic
    definition: Comparing quantities by division and scaling them in step.
    example: If 3 pens cost 4 dollars, 9 pens cost 12 dollars.
  - id: parity
    name: parity arguments
    category: number theory
    definition: Deciding a question by whether quantities are even or odd.
    example: A sum of five odd numbers is odd, so it cannot be 10.
  - id: triangle_area
    name: area of a triangle
    category: geometry
    definition: Half the base times the height, or Heron's formula from the sides.
    example: A triangle with base 6 and height 4 has area 12.
  - id: primes
    name: prime factorization
    category: number theory
    definition: Writing an integer as a product of primes to count or compare divisors.
    example: 360 = 2^3 * 3^2 * 5 has (3+1)(2+1)(1+1) = 24 divisors.
  - id: binomial
    name: binomial coefficients
    category: combinatorics
    definition: Counting the ways to choose k things out of n, C(n, k).
    example: A committee of 2 out of 5 people can be chosen in C(5, 2) = 10 ways.
"""
NAMES = {
    "ratios and proportions": "ratios",
    "parity arguments": "parity",
    "area of a triangle": "triangle_area",
    "prime factorization": "primes",
    "binomial coefficients": "binomial",
}
POOL_QUESTION = (
    "A baker packs 84 muffins into boxes that hold either 6 or 8 muffins each, filling "
    "every box completely and using at least one box of each size. What is the largest "
    "possible number of boxes the baker can use for all the muffins in the shop today?"
)
# One behaviour per pair (candidate id); pairs not named here are plain good questions.
GOOD = "good"
BEHAVIOUR = {
    "parity+ratios": GOOD,
    "ratios+triangle_area": "wrong-answer",  # the written answer is off by one
    "primes+ratios": "no-final-answer",  # the solution never states its answer
    "binomial+ratios": "pool-copy",  # one word away from a pool question
    "parity+triangle_area": "one-skill",  # the critique always finds skill 2 unneeded
    "parity+primes": "refined",  # invalid at first, fine after one rewrite
    "binomial+parity": "unreadable-critique",
    "binomial+triangle_area": "no-question",  # the placeholder copied from the prompt
    "primes+triangle_area": "repeat",  # the very question of parity+ratios
    "binomial+primes": GOOD,
}
EXPECTED_REASONS = {
    "ratios+triangle_area": ("resolve-disagrees",),
    "primes+ratios": ("answer-unparsed",),
    "binomial+ratios": ("pool-duplicate",),
    "parity+triangle_area": ("skill-not-needed",),
    "binomial+triangle_area": ("no-question",),
}
MALICIOUS = "<script>alert(1)</script><img src=x onerror=alert(1)>"


def number_of(cid: str) -> int:
    """The answer a pair's question asks for: fixed per pair, so every solve agrees on it."""
    return 10 + sorted(BEHAVIOUR).index(cid)


def source_of(cid: str) -> str:
    """The pair whose question `cid` writes: its own, or the one it repeats."""
    return "parity+ratios" if BEHAVIOUR[cid] == "repeat" else cid


def question_text(cid: str, revised: bool = False) -> str:
    if BEHAVIOUR[cid] == "pool-copy":
        return POOL_QUESTION.replace("today", "yesterday")
    source = source_of(cid)
    words = " and ".join(source.split("+"))
    extra = " (revised so that it is well posed)" if revised else ""
    return (
        f"Combining {words}: a puzzle whose answer is the number {number_of(source)}, "
        f"so compute the number {number_of(source)}{extra}."
    )


def pair_of(prompt: str) -> str:
    """The candidate id of a write prompt: the skills it lists as "1. name: ..." lines."""
    names = re.findall(r"^\d\. (.+?): ", prompt, flags=re.M)
    return candidate_id([NAMES[n] for n in names])


class Teacher:
    """The planted teacher (and verifier): every reply is decided by the pair it is about."""

    def __init__(self, *, markup: str = "") -> None:
        self.markup = markup  # text a question carries (to test the page's escaping)

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body["messages"]
        last = messages[-1]["content"]
        if last.startswith("Solve the math problem below"):
            return self.resolve(last)
        cid = pair_of(messages[0]["content"])
        behaviour = BEHAVIOUR[cid]
        rounds = (len(messages) - 5) // 6  # the critique of round r has 5 + 6r messages
        if len(messages) == 1:
            if behaviour == "no-question":
                return Reply("Question: <the problem>")
            return Reply(f"**Question:** {question_text(cid)}{self.markup}")
        if last.startswith("Rewrite the problem"):
            return Reply(f"Question: {question_text(cid, revised=True)}{self.markup}")
        if last.startswith("Now solve the problem"):
            answer = number_of(source_of(cid)) + (1 if behaviour == "wrong-answer" else 0)
            if behaviour == "no-final-answer":
                return Reply("We count the cases one by one and the rest follows.")
            return Reply(f"Step 1: read the question.\nStep 2: it says so.\n\\boxed{{{answer}}}")
        if "strict referee" in last:
            if behaviour == "unreadable-critique":
                return Reply("I think this is a lovely problem overall.")
            verdict = {"valid": 1, "solvable": 1, "needs_skill_1": 1, "needs_skill_2": 1}
            if behaviour == "one-skill":
                verdict["needs_skill_2"] = 0
            if behaviour == "refined" and rounds == 0:
                verdict["valid"] = 0
            problems = "none" if all(verdict.values()) else "It has two readings."
            if "response_format" in body:
                return Reply(json.dumps({**verdict, "problems": problems}))
            lines = [f"{k.replace('_', ' ').capitalize()}: {v}" for k, v in verdict.items()]
            return Reply("\n".join([*lines, f"Problems: {problems}"]))
        raise AssertionError(f"unexpected request: {last[:200]}")

    def resolve(self, prompt: str) -> Reply:
        asked = re.search(r"compute the number (\d+)", prompt)
        if asked is None:
            return Reply("I cannot tell.")
        return Reply(f"The question asks for it directly.\n\\boxed{{{asked.group(1)}}}")


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "skills.yaml"
    path.write_text(CATALOG_YAML, encoding="utf-8")
    return path


@pytest.fixture
def catalog(catalog_file: Path) -> Catalog:
    return load_catalog([catalog_file], partial=True)


@pytest.fixture
def pool(tmp_path: Path) -> MathDataset:
    problems = [
        MathProblem("pool:1", POOL_QUESTION, "13"),
        MathProblem("pool:2", "What is the sum of the first ten odd numbers?", "100"),
    ]
    return MathDataset.build("pool", "test", problems)


@pytest.fixture
def servers() -> Iterator[tuple[ScriptedServer, ScriptedServer]]:
    with ScriptedServer(Teacher()) as teacher, ScriptedServer(Teacher(), model="verifier") as v:
        yield teacher, v


def generate(
    store: Store,
    catalog: Catalog,
    teacher: ScriptedServer,
    verifier: ScriptedServer | None = None,
    **options: Any,
) -> GenerateResult:
    model = OpenAICompatModel("scripted", base_url=teacher.base_url)
    if verifier is not None:
        options["verifier"] = OpenAICompatModel("verifier", base_url=verifier.base_url)
    pipeline = GeneratePipeline.for_catalog(store, catalog, model, **options)
    return run_async(pipeline.run())


# --- the planted questions -------------------------------------------------------------------


def test_each_planted_invalid_question_is_rejected_with_its_reason(
    tmp_path: Path, catalog: Catalog, pool: MathDataset, servers: Any
):
    teacher, verifier = servers
    store = Store(tmp_path / "s.sqlite")
    result = generate(store, catalog, teacher, verifier, pairs=10, pool=pool, refine_rounds=2)
    by_id = {c.id: c for c in result.candidates}
    assert set(by_id) == set(BEHAVIOUR)  # ten pairs of five skills: every one of them
    for cid, reasons in EXPECTED_REASONS.items():
        assert (by_id[cid].status, by_id[cid].reasons) == ("rejected", reasons), cid

    # The repeat is rejected, not the question it repeats (whichever came first).
    original, repeat = by_id["parity+ratios"], by_id["primes+triangle_area"]
    first, second = sorted([original, repeat], key=lambda c: c.position)
    assert first.status == "survivor"
    assert second.reasons == ("repeat",)
    assert first.id in (second.filter("distinct") or pytest.fail()).detail

    survivors = {c.id for c in result.survivors}
    assert survivors == {"binomial+primes", "parity+primes", "binomial+parity", first.id}

    # Why each was rejected, in words: the filters say what they saw.
    wrong = by_id["ratios+triangle_area"]
    resolve = wrong.filter("resolve")
    assert resolve is not None and "0 of 2 independent solve(s) agree" in resolve.detail
    asked = str(number_of(wrong.id))
    assert [r.extracted for r in wrong.resolves] == [asked, asked]
    assert wrong.answer == str(number_of(wrong.id) + 1)
    copy = by_id["binomial+ratios"].filter("pool")
    assert copy is not None and "pool question pool:1" in copy.detail
    assert by_id["binomial+ratios"].filter("resolve").outcome == "not-run"  # no calls spent
    one_skill = by_id["parity+triangle_area"]
    assert len(one_skill.critiques) == 3 and one_skill.refinements == 2  # every round used
    unneeded = one_skill.skill_names[1]  # the second skill the teacher saw
    assert f"not needed: {unneeded}" in one_skill.filter("critique").detail

    # A rewrite that fixed the question; a critique that was never read.
    refined = by_id["parity+primes"]
    assert refined.refinements == 1 and "revised" in refined.question
    assert [c.valid for c in refined.critiques] == [0, 1]
    unread = by_id["binomial+parity"]
    assert [c.status for c in unread.critiques] == ["unparsed"]
    assert unread.critiques[0].attempts == 2 and unread.filter("critique").outcome == "undecided"
    assert any("could not be read" in w for w in result.warnings())

    # The verifier answered every independent solve; the teacher none.
    assert all("Solve the math problem below" in r["messages"][-1]["content"]
               for r in verifier.requests)  # fmt: skip
    assert not any(
        r["messages"][-1]["content"].startswith("Solve the math") for r in teacher.requests
    )
    assert len(verifier.requests) == 2 * (len(survivors) + 1)  # survivors and the wrong answer

    # Everything is in the store, and a re-run asks nothing again.
    stored = load_generate_run(store, result.run_id)
    assert [c.id for c in stored.candidates] == [c.id for c in result.candidates]
    assert stored.candidates == result.candidates
    sent = len(teacher.requests) + len(verifier.requests)
    again = generate(store, catalog, teacher, verifier, pairs=10, pool=pool, refine_rounds=2)
    assert again.stats.sent == 0 and again.candidates == result.candidates
    assert len(teacher.requests) + len(verifier.requests) == sent


def test_the_teacher_solves_again_at_other_seeds_without_a_verifier(
    tmp_path: Path, catalog: Catalog, servers: Any
):
    teacher, _ = servers
    store = Store(tmp_path / "s.sqlite")
    result = generate(store, catalog, teacher, pairs=3, resolves=3, min_agreeing=2)
    resolves = [r for r in teacher.requests if r["messages"][0]["content"].startswith("Solve")]
    passing = [c for c in result.candidates if c.filter("resolve").outcome != "not-run"]
    assert len(resolves) == 3 * len(passing) > 0
    seeds = {r["seed"] for r in resolves}
    conversation = {r["seed"] for r in teacher.requests if r not in resolves}
    assert len(seeds) == len(resolves) and not seeds & conversation
    for c in passing:
        assert len(c.resolves) == 3 and c.resolves[0].model == "openai:scripted"
    assert any("No --pool was given" in w for w in result.warnings())


def test_text_critiques_are_read_too(tmp_path: Path, catalog: Catalog, servers: Any):
    teacher, _ = servers
    store = Store(tmp_path / "s.sqlite")
    result = generate(store, catalog, teacher, pairs=10, structured=False)
    assert not any("response_format" in r for r in teacher.requests)
    methods = {c.method for cand in result.candidates for c in cand.critiques if c.method}
    assert methods == {"lines"}
    by_id = {c.id: c for c in result.candidates}
    assert by_id["parity+triangle_area"].reasons == ("skill-not-needed",)
    # No pool: the copy is not caught as one (the scripted solver cannot answer it).
    assert by_id["binomial+ratios"].reasons == ("resolve-disagrees",)
    assert by_id["binomial+ratios"].filter("pool").outcome == "not-run"


# --- sampling pairs --------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=5000))
def test_unrank_pair_walks_every_pair_in_order(rank: int):
    i, j = unrank_pair(rank)
    assert 0 <= i < j and j * (j - 1) // 2 + i == rank


@given(
    st.integers(min_value=2, max_value=40),
    st.integers(min_value=0, max_value=2**31),
    st.data(),
)
def test_sampled_pairs_are_distinct_valid_and_reproducible(n_skills: int, seed: int, data: Any):
    ids = [f"s{i:02d}" for i in range(n_skills)]
    n = data.draw(st.integers(min_value=1, max_value=pair_count(n_skills)))
    pairs = sample_pairs(ids, n, seed)
    assert len(pairs) == len(set(pairs)) == n
    assert all(a < b and a in ids and b in ids for a, b in pairs)
    assert pairs == sample_pairs(list(reversed(ids)), n, seed)  # the order given is no matter
    if n < pair_count(n_skills):  # asking for more extends the list
        assert sample_pairs(ids, n + 1, seed)[:n] == pairs


def test_pairs_depend_on_the_seed_and_refuse_too_many():
    ids = [f"s{i}" for i in range(30)]
    assert sample_pairs(ids, 10, 1) != sample_pairs(ids, 10, 2)
    assert sample_pairs(ids, 5, 1) == [  # the same on every machine and Python version
        ("s21", "s8"), ("s12", "s15"), ("s0", "s24"), ("s22", "s27"), ("s12", "s7")
    ]  # fmt: skip
    assert len(set(sample_pairs(ids, pair_count(30), 5))) == 435  # every pair, once
    with pytest.raises(InputError, match="only 10"):
        sample_pairs(ids[:5], 11, 0)


def test_the_run_id_follows_the_config():
    base = GenerateConfig(catalog="c", catalog_hash="h", pairs=3)
    assert base.run_id("v1-x") == GenerateConfig(catalog="c", catalog_hash="h", pairs=3).run_id(
        "v1-x"
    )
    assert base.run_id("v1-x") != base.model_copy(update={"seed": 1}).run_id("v1-x")
    assert base.run_id("v1-x").startswith("math-generate-")
    with pytest.raises(ValueError, match="cannot exceed"):
        GenerateConfig(catalog="c", catalog_hash="h", pairs=3, resolves=2, min_agreeing=3)


# --- reading the teacher ---------------------------------------------------------------------


def test_critiques_are_read_from_json_and_lines_and_never_guessed():
    json_reply = (
        '```json\n{"valid": true, "solvable": 1, "needs_skill_1": "yes", "needs_skill_2": 0, '
        '"problems": "Skill 2 is\\nnot used."}\n```'
    )
    verdict = parse_critique(json_reply)
    assert isinstance(verdict, CritiqueVerdict)
    assert (verdict.valid, verdict.solvable, verdict.needs) == (1, 1, (1, 0))
    assert verdict.failures() == ["skill-not-needed"] and verdict.problems == "Skill 2 is not used."
    lines = "**Valid:** 1\n- Solvable: 0\nNeeds skill 1: 1\nNeeds skill 2: 1\nProblems: x is 0"
    verdict = parse_critique(lines)
    assert isinstance(verdict, CritiqueVerdict) and verdict.failures() == ["unsolvable"]
    assert verdict.method == "lines"
    assert parse_critique("Looks great to me!").startswith("no verdict found")
    missing = parse_critique('{"valid": 1, "solvable": 1, "needs_skill_1": 1}')
    assert missing == "no 0/1 value for needs_skill_2"  # a point missing is no pass
    assert parse_critique("Valid: maybe\nSolvable: 1\nNeeds skill 1: 1\nNeeds skill 2: 1") == (
        "no 0/1 value for valid"
    )


def test_questions_are_read_from_markers_or_the_whole_reply():
    assert parse_question("**Question:** What is 2+2?\n\nSolution: 4") == "What is 2+2?"
    assert parse_question("Here it is.\nRevised problem: Find x.\nAnswer: 3") == "Find x."
    assert parse_question("What is 3 squared?") == "What is 3 squared?"
    assert parse_question("Question: <the problem>") == ""
    assert parse_question("   ") == ""


def test_answers_math_verify_cannot_check_are_named():
    assert answer_problem("\\frac{1}{2}") == ""
    assert answer_problem("x = 3") == ""
    assert "no final answer" in answer_problem(None)
    assert "is words" in answer_problem("It depends on the weather")
    assert "cannot parse" in answer_problem("\\frac{")


def test_near_duplicate_candidates_keep_the_first():
    q = (
        "Find the number of ordered pairs of positive integers (a, b) such that the product "
        "a times b equals 360, a is at most b, and the sum a plus b is an even number."
    )
    questions = [("a", q), ("b", "What is 2 + 3?"), ("c", q.replace("even", "odd")), ("d", q)]
    repeats = duplicate_candidates(questions, 0.8)
    assert set(repeats) == {"c", "d"} and repeats["d"] == ("a", 1.0)
    assert repeats["c"][0] == "a" and 0.8 <= repeats["c"][1] < 1.0
    assert similarity("What is 2 + 3?", "What is 2 - 3?") < 0.8  # symbols count


# --- decisions and the export ----------------------------------------------------------------


def kept_repeat(run: Any) -> str:
    """Which of the two pairs with the same question survived: the one drawn first."""
    return min(["parity+ratios", "primes+triangle_area"], key=lambda c: run.candidate(c).position)


@pytest.fixture
def reviewed(
    tmp_path: Path, catalog: Catalog, pool: MathDataset, servers: Any
) -> tuple[Store, GenerateResult]:
    teacher, verifier = servers
    store = Store(tmp_path / "s.sqlite")
    return store, generate(store, catalog, teacher, verifier, pairs=10, pool=pool)


def test_decisions_keep_the_reviewer_the_time_and_the_original(reviewed: Any):
    store, result = reviewed
    run = load_generate_run(store, result.run_id)
    a, b, c, d = (run.candidate(cid) for cid in ("binomial+primes", "parity+primes",
                                                  "binomial+parity", kept_repeat(run)))  # fmt: skip
    assert None not in (a, b, c, d)
    assert [x.id for x in review_queue(run, [], "ada")] == [
        x.id for x in sorted(run.survivors, key=lambda x: x.position)
    ]
    put_decision(store, run.run_id, a, "ada", "accept", now=100.0)
    edit = put_decision(store, run.run_id, b, "ada", "edit", answer="42", note="fixed", now=101.0)
    assert edit.changed == ("answer",) and edit.original["answer"] == b.answer
    assert edit.answer == "42" and edit.question == b.question
    put_decision(store, run.run_id, c, "ada", "reject", now=102.0)
    # Another reviewer accepts c later: the latest decision counts; d stays undecided.
    put_decision(store, run.run_id, c, "bo", "accept", now=103.0)
    # ada changes her mind on a: the earlier decision is kept in the history.
    again = put_decision(store, run.run_id, a, "ada", "reject", now=104.0)
    assert [h["decision"] for h in again.history] == ["accept"]

    found = stored_decisions(store, run.run_id)
    final = final_decisions(found)
    assert {cid: x.decision for cid, x in final.items()} == {
        a.id: "reject",
        b.id: "edit",
        c.id: "accept",
    }
    assert {x.reviewer for x in found} == {"ada", "bo"}
    assert [x.id for x in review_queue(run, found, "ada")] == [d.id]
    assert next(x.id for x in review_queue(run, found, "bo")) == d.id  # undecided ones first

    rejected = run.candidate("primes+ratios")
    assert rejected is not None
    with pytest.raises(InputError, match="only survivors"):
        put_decision(store, run.run_id, rejected, "ada", "accept")
    with pytest.raises(InputError, match="must not be empty"):
        put_decision(store, run.run_id, b, "ada", "edit", question="  ")
    with pytest.raises(InputError, match="unknown decision"):
        put_decision(store, run.run_id, b, "ada", "maybe")
    with pytest.raises(InputError, match="only an edit"):
        put_decision(store, run.run_id, b, "ada", "accept", answer="1")


def test_export_holds_the_accepted_questions_with_edits_and_loads(reviewed: Any, tmp_path: Path):
    datasets = pytest.importorskip("datasets")
    store, result = reviewed
    run = load_generate_run(store, result.run_id)
    accept, edit, reject = (run.candidate(x) for x in ("binomial+primes", "parity+primes",
                                                       "binomial+parity"))  # fmt: skip
    assert accept and edit and reject
    put_decision(store, run.run_id, accept, "ada", "accept")
    put_decision(store, run.run_id, edit, "bo", "edit", question="Edited: what is 6 * 7?",
                 solution="Six sevens are forty-two.", answer="42")  # fmt: skip
    put_decision(store, run.run_id, reject, "ada", "reject")
    data = collect_export(store, result.run_id)
    paths = write_export(data, tmp_path / "out")

    loaded = datasets.load_from_disk(str(paths["hf"]))
    assert len(loaded) == 2
    by_candidate = {json.loads(r["provenance"])["candidate_id"]: r for r in loaded}
    assert set(by_candidate) == {accept.id, edit.id}
    edited = by_candidate[edit.id]["messages"]
    assert edited[0]["content"] == "Edited: what is 6 * 7?"
    assert edited[1]["content"].endswith("\\boxed{42}.")  # the edited answer, stated
    review = json.loads(by_candidate[edit.id]["provenance"])["review"]
    assert review["reviewer"] == "bo" and review["original"]["question"] == edit.question
    assert by_candidate[accept.id]["messages"][0]["content"] == accept.question

    questions = [json.loads(line) for line in paths["questions"].read_text().splitlines()]
    assert {q["answer"] for q in questions} == {accept.answer, "42"}
    assert all(set(q) >= {"id", "question", "answer", "solution", "skills"} for q in questions)
    assert sorted(questions[0]["skills"]) == sorted(accept.skills)
    rejected = [json.loads(line) for line in paths["rejected"].read_text().splitlines()]
    reasons = {r["provenance"]["candidate_id"]: r["reason"] for r in rejected}
    assert reasons[reject.id] == "human-rejected"
    assert reasons[kept_repeat(run)] == "not-reviewed"
    assert reasons["ratios+triangle_area"] == "resolve-disagrees"

    card = json.loads(paths["card_json"].read_text())
    assert card["kept"] == 2 and card["candidates"] == 10
    assert card["rejections"]["human-rejected"] == 1 and card["rejections"]["no-question"] == 1
    assert card["reviewers"] == {
        "ada": {"accept": 1, "edit": 0, "reject": 1},
        "bo": {"accept": 0, "edit": 1, "reject": 0},
    }
    outcomes = {cid: entry["outcome"] for cid, entry in card["per_pair"].items()}
    assert outcomes[accept.id] == "accepted" and card["per_pair"][accept.id]["kept"] == 1
    assert (outcomes[edit.id], outcomes[reject.id]) == ("edited", "human-rejected")
    assert outcomes["binomial+ratios"] == "pool-duplicate"
    assert card["filter_failures"]["pool-duplicate"] == 1
    markdown = paths["card"].read_text()
    assert "## Per skill pair" in markdown and "## Reviewers" in markdown
    assert "| bo | 0 | 1 | 0 |" in markdown


def test_the_export_is_a_dataset_for_math_eval(reviewed: Any, tmp_path: Path):
    from skillmix.math.problems import load_dataset

    store, result = reviewed
    run = load_generate_run(store, result.run_id)
    for candidate in run.survivors:
        put_decision(store, run.run_id, candidate, "ada", "accept")
    paths = write_export(collect_export(store, result.run_id), tmp_path / "out", ["jsonl"])
    dataset = load_dataset(str(paths["questions"]))
    assert len(dataset) == len(run.survivors)
    first = dataset.problems[0]
    assert first.answer == run.survivors[0].answer and set(first.concepts) == set(
        run.survivors[0].skills
    )
    # The export folder itself names the same questions (math eval --dataset OUT).
    folder = load_dataset(str(tmp_path / "out"))
    assert [p.question for p in folder.problems] == [p.question for p in dataset.problems]


# --- the command line ------------------------------------------------------------------------


def test_generate_and_export_on_the_command_line(tmp_path: Path, catalog_file: Path, servers: Any):
    teacher, verifier = servers
    pool_file = tmp_path / "pool.jsonl"
    pool_file.write_text(json.dumps({"id": 1, "question": POOL_QUESTION, "answer": "13"}) + "\n")
    args = [
        "math", "generate", "--skills", str(catalog_file), "--pairs", "10",
        "--teacher", f"openai:scripted@{teacher.base_url}",
        "--verifier", f"openai:verifier@{verifier.base_url}", "--pool", str(pool_file),
        "--json",
    ]  # fmt: skip
    done = skillmix(*args, cwd=tmp_path)
    summary = json.loads(done.stdout)
    assert summary["pairs"] == 10 and summary["survivors"] == 4
    assert summary["rejections"] == {
        "answer-unparsed": 1,
        "repeat": 1,
        "pool-duplicate": 1,
        "no-question": 1,
        "resolve-disagrees": 1,
        "skill-not-needed": 1,
    }
    run_id = summary["run_id"]
    db = sqlite3.connect(tmp_path / "skillmix.sqlite")
    kinds = db.execute("SELECT COUNT(*) FROM records WHERE run_id = ? AND kind = ?",
                       (run_id, CANDIDATE_KIND)).fetchone()[0]  # fmt: skip
    assert kinds == 10
    again = skillmix(*args[:-1], cwd=tmp_path)
    assert "model calls (this invocation): 0 sent" in again.stderr
    assert f"skillmix review {run_id}" in again.stdout

    # Nothing reviewed yet: the export is empty, still loadable, and says why.
    exported = skillmix("math", "export", run_id[:20], "--out", "out", cwd=tmp_path)
    assert "0 accepted question(s) of 10" in exported.stdout and "not-reviewed 4" in exported.stdout
    card = (tmp_path / "out" / "card.md").read_text()
    assert "no reviewer's decision yet" in card
    datasets = pytest.importorskip("datasets")
    assert len(datasets.load_from_disk(str(tmp_path / "out" / "hf"))) == 0

    wrong = skillmix("math", "export", "nope", "--out", "o2", cwd=tmp_path, check=False)
    assert wrong.returncode == 1 and "no run 'nope'" in wrong.stderr


def test_skills_come_from_a_label_run_or_a_file(
    tmp_path: Path, catalog_file: Path, catalog: Catalog
):
    from skillmix.math.generate import load_skills
    from skillmix.math.label import RUN_KIND

    store = Store(tmp_path / "s.sqlite")
    assert len(load_skills(str(catalog_file), store).skills) == 5
    with pytest.raises(InputError, match="no such catalog file"):
        load_skills("math-label-nothing", store)
    # A label run's catalog of coarse skills, once the run has one.
    store.put_catalog(catalog)
    store.ensure_run("math-label-abc", {"kind": "math-label"}, catalog.content_hash, "v1")
    with pytest.raises(InputError, match="has no skill catalog yet"):
        load_skills("math-label-a", store)
    summary = {"catalog_hash": catalog.content_hash, "repairs": []}
    store.put_record("math-label-abc", RUN_KIND, "summary", summary)
    assert load_skills("math-label-a", store).content_hash == catalog.content_hash
    one = tmp_path / "one.yaml"
    one.write_text(CATALOG_YAML.split("  - id: parity")[0], encoding="utf-8")
    with pytest.raises(InputError, match="pairs need two"):
        load_skills(str(one), store)


def test_an_estimate_counts_every_rewrite_and_sends_nothing(
    tmp_path: Path, catalog: Catalog, servers: Any
):
    teacher, _ = servers
    store = Store(tmp_path / "s.sqlite")
    result = generate(store, catalog, teacher, pairs=3, refine_rounds=2, estimate=True)
    assert teacher.requests == [] and store.list_runs() == []
    # Per pair: write, then (solve, critique) in each of 3 rounds with 2 rewrites between.
    assert result.stats.roles["teacher"].sent == 3 * (1 + 3 * 2 + 2)
    assert result.stats.roles["verifier"].sent == 3 * 2
    assert {c.status for c in result.candidates} == {"estimate"}


def test_the_review_app_opens_only_runs_it_can_show(tmp_path: Path, catalog: Catalog):
    from skillmix.review.server import ReviewError, create_app

    path = tmp_path / "s.sqlite"
    store = Store(path)
    store.put_catalog(catalog)
    store.ensure_run("math-label-x", {"kind": "math-label"}, catalog.content_hash, "v1")
    store.ensure_run("math-generate-y", {"kind": "math-generate"}, catalog.content_hash, "v1")
    store.set_run_status("math-generate-y", "stopped")
    store.close()
    with pytest.raises(ReviewError, match="is a math-label run"):
        create_app(path, "math-label-x")
    with pytest.raises(ReviewError, match="math-generate-y is stopped"):
        create_app(path, "math-generate-y")


# --- the real embedded model -----------------------------------------------------------------


@pytest.mark.embedded
def test_embedded_teacher_generates_three_pairs_and_the_export_loads(
    tmp_path: Path, catalog_file: Path
):
    args = [
        "math", "generate", "--skills", str(catalog_file), "--pairs", "3",
        "--teacher", "embedded", "--refine-rounds", "1", "--resolves", "1",
        "--max-tokens", "160", "--critique-max-tokens", "64", "--json",
    ]  # fmt: skip
    summary = json.loads(skillmix(*args, cwd=tmp_path, timeout=1800).stdout)
    assert summary["pairs"] == 3 and len(summary["candidates"]) == 3
    assert any("smoke test" in w for w in summary["warnings"])
    store = Store(tmp_path / "skillmix.sqlite")
    run = load_generate_run(store, summary["run_id"])
    for candidate in run.survivors:
        put_decision(store, run.run_id, candidate, "smoke test", "accept")
    store.close()
    skillmix("math", "export", summary["run_id"], "--out", "out", cwd=tmp_path)
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_from_disk(str(tmp_path / "out" / "hf"))
    assert len(loaded) == len(run.survivors)
    again = skillmix(*args[:-1], cwd=tmp_path)
    assert "model calls (this invocation): 0 sent" in again.stderr
