"""`skillmix math eval`: strategies, the blind verifier, planted skill gaps, resume.

Students, judges and teachers are scripted OpenAI-compatible servers on 127.0.0.1
(`scripted_server`). The planted world: questions need one skill each; the student fails
exactly the questions needing the planted skill X unless its prompt shows a solved example
labelled X (and, in the overload world, fails the other questions whenever it is shown
examples at all), plus noise that depends on the whole prompt. Whether each strategy
recovers the planted gain is then a measurement with an interval, as on real data.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import canonical, sigkill_at_request, skillmix, stored_bodies
from scripted_server import Reply, ScriptedServer
from skillmix.errors import InputError
from skillmix.math.answers import check_answer
from skillmix.math.eval import (
    ANSWER_RECORD,
    MathEval,
    MathEvalConfig,
    concept_label,
    labels_from_annotations,
)
from skillmix.math.eval_report import build_eval_report
from skillmix.math.metrics import Outcome, compare_all, evaluate, mcnemar
from skillmix.math.problems import MathDataset, MathProblem
from skillmix.math.strategies import (
    SOLVE_INSTRUCTION,
    agreement,
    fixed_shots,
    parse_judge_score,
    parse_missing_skills,
    parse_skill_choice,
    parse_strategies,
    parse_verifier,
    skill_shots,
)
from skillmix.models import resolve_model
from skillmix.runtime.loop import run as run_async
from skillmix.store import Store

# Load math-verify (sympy) now: imported on the first check inside a run, it would hold
# the GIL for a second while the scripted servers in this process cannot accept
# connections, and the dropped SYNs would be retried by the kernel only after 1, 3, 7 s...
check_answer("1", "1")

X, Y, Z = "telescoping sums", "case analysis", "parity arguments"
WORDS = (  # noqa: SIM905 (one string reads better than 39 quoted words)
    "apple basin cedar delta ember fjord grove heron inlet juniper kelp lagoon meadow "
    "nectar orchid pebble quarry ridge spruce thicket upland valley willow yarrow zephyr acorn "
    "bramble canyon dune estuary fern glacier hollow isle jetty knoll ledge marsh"
).split()


# --- the planted world ------------------------------------------------------------------------


def planted_dataset(n: int = 100, share_x: float = 0.4, seed: int = 7) -> MathDataset:
    """n questions of random words (no two alike, for the leak check); a `share_x` of them
    need X, the rest Y or Z. Gold answers and solutions are distinctive strings, so a
    test can tell whether a prompt holds them."""
    rng = random.Random(seed)
    problems = []
    for i in range(n):
        words = " ".join(rng.choice(WORDS) for _ in range(14))
        skill = X if i < round(n * share_x) else (Y if i % 2 else Z)
        problems.append(
            MathProblem(
                id=f"q{i:03d}",
                question=f"Evaluate the {words} quantity.",
                answer=str(700001 + 37 * i),
                solution=f"Worked solution SOLUTION-{i:03d}: apply {skill} carefully.",
                category="algebra" if i % 3 else "combinatorics",
                concepts=(skill,),
            )
        )
    rng.shuffle(problems)
    return MathDataset.build("planted", "tests", problems)


def _digest(*parts: object) -> int:
    return int(hashlib.sha256(json.dumps(parts).encode()).hexdigest(), 16)


def _question_of(prompt: str) -> str:
    """The question a prompt asks about: the text after its last "Problem: "."""
    tail = prompt.rsplit("Problem: ", 1)[1]
    return tail.split("\n\n", 1)[0].strip()


def _skill_line(prompt: str, skill: str) -> str:
    number = re.search(rf"^(\d+)\. {re.escape(skill)}$", prompt, re.M)
    assert number is not None, f"{skill} is not in the skill list"
    return f"Skill: {number.group(1)}. {skill}"


@dataclass
class World:
    """The scripted student and teacher of one planted dataset."""

    dataset: MathDataset
    noise: int = 10  # one answer in `noise` is wrong whatever the prompt (0: none)
    overload: bool = False  # examples make the student fail questions not needing X
    names_wrong_skill: bool = False  # the student names Y for a question needing X
    skill_of: dict[str, str] = field(init=False)
    gold_of: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.skill_of = {p.question: p.concepts[0] for p in self.dataset}
        self.gold_of = {p.question: p.answer for p in self.dataset}
        self.x_questions = [p.question for p in self.dataset if p.concepts[0] == X]

    def capable(self, prompt: str, question: str) -> bool:
        examples = (
            prompt.split("Now the problem to solve.")[0] if "Solved examples" in prompt else ""
        )
        if self.skill_of[question] == X:
            return any(f"Problem: {q}\n" in examples for q in self.x_questions)
        return not (self.overload and examples)

    def student(self, body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        question = _question_of(prompt)
        if "Which one skill from this list" in prompt:
            skill = self.skill_of[question]
            if self.names_wrong_skill and skill == X:
                skill = Y
            return Reply(f"The key idea here.\n**{_skill_line(prompt, skill)}**")
        assert prompt.startswith(SOLVE_INSTRUCTION)
        noisy = self.noise and _digest(prompt, body.get("seed")) % self.noise == 0
        if self.capable(prompt, question) and not noisy:
            return Reply(f"I am confident. Step one. So \\boxed{{{self.gold_of[question]}}}")
        wrong = _digest(prompt, body.get("seed"), "wrong") % 100_000 + 1
        return Reply(f"I am unsure. Perhaps \\boxed{{{wrong}}}")

    def teacher(self, body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        assert "lack or misapply" in prompt
        question = prompt.split("Problem: ", 1)[1].split("\n\nStudent's solution:")[0].strip()
        return Reply(_skill_line(prompt, self.skill_of[question]) + "\nThat is all.")


def confident_judge(body: dict[str, Any]) -> Reply:
    """A judge that reads the student's tone: it never knows the answer."""
    prompt = body["messages"][-1]["content"]
    score = 9 if "I am confident" in prompt.split("Student's solution:")[1] else 2
    if body.get("response_format"):
        return Reply(json.dumps({"score": score}))
    return Reply(f"Checked.\nScore: {score}")


@dataclass
class Servers:
    student: ScriptedServer
    teacher: ScriptedServer
    judge: ScriptedServer


@pytest.fixture
def world() -> World:
    return World(planted_dataset())


def evaluate_world(
    world: World,
    tmp_path: Path,
    strategies: tuple[str, ...],
    *,
    verifier: str = "consistency",
    samples: int = 3,
    shots: int = 2,
    store_name: str = "store.sqlite",
    estimate: bool = False,
    max_cost: float | None = None,
) -> tuple[Any, Servers, Store]:
    """Run a math evaluation of the planted world on fresh scripted servers."""
    with (
        ScriptedServer(world.student, model="student") as student,
        ScriptedServer(world.teacher, model="teacher") as teacher,
        ScriptedServer(confident_judge, model="judge") as judge,
    ):
        config = MathEvalConfig(
            student=student.spec(),
            dataset=world.dataset.name,
            dataset_hash=world.dataset.content_hash,
            strategies=strategies,
            shots=shots,
            test_share=0.5,
            verifier=f"judge:{judge.spec()}" if verifier == "judge" else verifier,
            samples=samples,
            teacher=teacher.spec(),
            seed=3,
        )
        store = Store(tmp_path / store_name)
        pipeline = MathEval(
            store,
            config,
            world.dataset,
            labels_from_annotations(world.dataset),
            resolve_model(student.spec()),
            judge=resolve_model(judge.spec()) if verifier == "judge" else None,
            teacher=resolve_model(teacher.spec()),
            estimate=estimate,
            max_cost=max_cost,
            # A few connections at a time: the scripted servers' listen backlog is 5, and a
            # connection it drops waits for the kernel's SYN retry (1 s, then 3 s, ...).
            workers=4,
        )
        result = run_async(pipeline.run())
    return result, Servers(student, teacher, judge), store


def answers(store: Store, run_id: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (a["strategy"], a["question_id"]): a for a in store.records(run_id, ANSWER_RECORD).values()
    }


# --- pure pieces ------------------------------------------------------------------------------


def test_strategies_parse_all_lists_and_unknown_names():
    assert parse_strategies(["all"]) == (
        "zero-shot", "fixed-shot", "random-shot", "skill", "adaptmi", "adaptmi+",
    )  # fmt: skip
    assert parse_strategies(["adaptmi", "skill,zero-shot"]) == ("zero-shot", "skill", "adaptmi")
    with pytest.raises(InputError, match="unknown strategy 'adapt'"):
        parse_strategies(["adapt"])


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Skill: 2. case analysis", Y),
        ("**Skill:** 3", X),
        ("Skill: 1. telescoping sums", X),  # the name wins over a wrong number
        ("I would use Telescoping Sum here.", X),
        ("2", Z),
        ("Skill: Parity argument", Z),
        ("Skill: 9", None),
        ("no idea", None),
        ("18 * 18 = 320", None),  # arithmetic, not the 18th skill
    ],
)
def test_the_named_skill_is_read_from_many_reply_shapes(reply: str, expected: str | None):
    skills = [Y, Z, X]
    assert parse_skill_choice(reply, skills).skill == expected


def test_a_teacher_names_several_skills_in_order_without_repeats():
    skills = [Y, Z, X]
    assert parse_missing_skills("Skill: 3. telescoping sums\nSkill: 1\nSkill: 3", skills) == [X, Y]
    assert parse_missing_skills("It lacks parity arguments and case analysis.", skills) == [Z, Y]
    assert parse_missing_skills("nothing useful", skills) == []


@pytest.mark.parametrize(
    ("reply", "score"),
    [('{"score": 7}', 0.7), ("Looks fine.\nScore: 8", 0.8), ("I give it 3/10", 0.3),
     ("Score: 12", None), ("no rating", None)],
)  # fmt: skip
def test_judge_scores_are_read_as_shares(reply: str, score: float | None):
    assert parse_judge_score(reply) == score


def test_agreement_counts_missing_answers_in_the_total():
    found = agreement(["42", "42", None, "7", "4 2"])
    assert found.share == pytest.approx(3 / 5)
    assert found.majority == "42"
    assert agreement([None, None]).share == 0.0


def test_the_verifier_option_is_checked():
    assert parse_verifier("consistency", samples=4).samples == 4
    assert parse_verifier("judge:openai:gpt-4o-mini").model == "openai:gpt-4o-mini"
    with pytest.raises(InputError, match="unknown verifier"):
        parse_verifier("oracle")
    with pytest.raises(InputError, match="at least 2"):
        parse_verifier("consistency", samples=1)


def test_skill_shots_are_the_same_for_every_strategy_and_take_skills_in_turn():
    by_skill = {X: ["a", "b", "c"], Y: ["c", "d"]}
    one = skill_shots(by_skill, [X], 2, 0, "q1")
    assert one == skill_shots(by_skill, [X], 2, 0, "q1")
    assert set(one) <= {"a", "b", "c"} and len(one) == 2
    mixed = skill_shots(by_skill, [X, Y], 4, 0, "q1")
    assert len(mixed) == len(set(mixed)) == 4  # "c" is labelled with both: shown once
    assert skill_shots(by_skill, ["unknown"], 3, 0, "q1") == ()


def test_mcnemar_exact_and_mid_p_by_hand():
    # 5 discordant pairs all one way: exact p = 2 * (1/2)^5, mid-p = half of that.
    assert mcnemar(0, 5) == pytest.approx((0.0625, 0.03125))
    assert mcnemar(3, 3) == (1.0, 1.0)
    assert mcnemar(0, 0) == (1.0, 1.0)
    # b=1, c=9 (n=10): P(X<=1) = 11/1024
    exact, mid = mcnemar(1, 9)
    assert exact == pytest.approx(22 / 1024) and mid == pytest.approx(2 * (11 - 5) / 1024)


@given(st.integers(0, 60), st.integers(0, 60))
def test_mcnemar_p_values_are_ordered_and_symmetric(b: int, c: int):
    exact, mid = mcnemar(b, c)
    assert 0.0 < mid <= exact <= 1.0
    assert mcnemar(c, b) == (exact, mid)


def test_comparisons_are_paired_on_common_questions_and_holm_adjusted():
    outcomes = [Outcome("zero-shot", f"q{i}", i < 10) for i in range(40)]
    outcomes += [Outcome("skill", f"q{i}", i < 30) for i in range(40)]
    outcomes += [Outcome("adaptmi", f"q{i}", i < 10) for i in range(20)]  # half the questions
    comparisons = {
        (c.baseline, c.strategy): c
        for c in compare_all(outcomes, ["zero-shot", "skill", "adaptmi"])
    }
    gain = comparisons[("zero-shot", "skill")]
    assert (gain.n, gain.only_strategy, gain.only_baseline) == (40, 20, 0)
    assert gain.gain == pytest.approx(0.5) and gain.low <= 0.5 <= gain.high and gain.low > 0.2
    assert gain.significant and gain.p_mid_holm >= gain.p_mid
    assert comparisons[("zero-shot", "adaptmi")].n == 20
    metrics = evaluate(outcomes, ["zero-shot", "skill", "adaptmi"])
    assert metrics.overall["skill"].correct == 30
    low, high = metrics.overall["skill"].interval
    assert low < 0.75 < high


def test_config_drops_options_no_strategy_uses():
    plain = MathEvalConfig(strategies=("zero-shot",), teacher="openai:t", verifier="judge:x")
    assert plain.teacher is None and plain.verifier is None
    assert plain.run_id() == MathEvalConfig(strategies=("zero-shot",)).run_id()
    with pytest.raises(ValueError, match="adaptmi\\+ needs a teacher"):
        MathEvalConfig(strategies=("adaptmi+",))
    with pytest.raises(ValueError, match="temperature 0"):
        MathEvalConfig(strategies=("adaptmi",), temperature=0.0)
    assert MathEvalConfig(strategies=("adaptmi",), structured=False).structured  # no judge
    judged = MathEvalConfig(strategies=("adaptmi",), verifier="judge:openai:j", structured=False)
    assert not judged.structured and judged.samples == 5


def test_champ_concepts_are_shown_by_name():
    assert concept_label("Fermat's little theorem: Let a be a positive integer.") == (
        "Fermat's little theorem"
    )
    assert (
        concept_label("For real numbers a, b, (a+b)^2≥4ab.")
        == "For real numbers a, b, (a+b)^2≥4ab."
    )


# --- which questions get which examples -------------------------------------------------------

ALL = ("zero-shot", "fixed-shot", "random-shot", "skill", "adaptmi", "adaptmi+")


def test_each_strategy_shows_the_examples_it_should(world: World, tmp_path: Path):
    result, servers, store = evaluate_world(world, tmp_path, ALL)
    got = answers(store, result.run_id)
    train, test = world.dataset.split(0.5, 3)
    train_ids, test_ids = {p.id for p in train}, {p.id for p in test}
    skill_of = {p.id: p.concepts[0] for p in world.dataset}
    assert {q for _, q in got} == test_ids and len(got) == len(ALL) * len(test_ids)
    for (strategy, question), answer in got.items():
        assert set(answer["examples"]) <= train_ids, (strategy, question)
        if strategy == "zero-shot":
            assert answer["examples"] == []
        if strategy == "fixed-shot":
            assert tuple(answer["examples"]) == fixed_shots(train.problems, 2, 3)
        if strategy == "skill":
            assert answer["chosen_skill"] == skill_of[question]
            assert len(answer["examples"]) == 2
            assert {skill_of[e] for e in answer["examples"]} == {skill_of[question]}
    assert len({tuple(got[("random-shot", q)]["examples"]) for q in test_ids}) > 1

    # AdaptMI: easy questions keep their zero-shot answer; difficult ones get the skill
    # strategy's prompt, so its very answer (one request, shared through the cache).
    passes = {1: 0, 2: 0}
    for question in test_ids:
        zero, skill = got[("zero-shot", question)], got[("skill", question)]
        for strategy in ("adaptmi", "adaptmi+"):
            answer = got[(strategy, question)]
            passes[answer["pass"]] += 1
            if not answer["difficulty"]["difficult"]:
                assert answer["pass"] == 1
                assert answer["response_key"] == zero["response_key"]
                assert answer["correct"] == zero["correct"]
            elif strategy == "adaptmi":
                assert answer["pass"] == 2
                assert answer["response_key"] == skill["response_key"]
            else:
                assert answer["teacher"]["skills"] == [skill_of[question]]
                assert {skill_of[e] for e in answer["examples"]} == {skill_of[question]}
    assert passes[1] > 0 and passes[2] > 0

    # Each prompt was asked once, whichever strategies used it.
    bodies = [canonical(b) for b in servers.student.requests]
    assert len(bodies) == len(set(bodies))


def test_every_answer_is_graded_with_what_was_extracted_and_why(world: World, tmp_path: Path):
    result, _, store = evaluate_world(world, tmp_path, ("zero-shot",))
    got = answers(store, result.run_id).values()
    wrong = [a for a in got if not a["correct"]]
    right = [a for a in got if a["correct"]]
    assert wrong and right
    for a in right:
        assert a["extracted"] == a["gold"] and a["reason"] == ""
    for a in wrong:
        assert a["extracted"] is not None and a["extracted"] != a["gold"]
        assert a["reason"].startswith("not equivalent")


def twins_of(base: MathDataset, change: Callable[[str], str]) -> MathDataset:
    """`base` and a copy of every problem under a new id, its question changed by `change`."""
    twins = [
        MathProblem(f"twin-{p.id}", change(p.question), p.answer, p.solution, p.category,
                    p.concepts)
        for p in base
    ]  # fmt: skip
    return MathDataset.build("twins", "tests", [*base, *twins])


def make_eval(dataset: MathDataset, tmp_path: Path, *strategies: str) -> MathEval:
    return MathEval(
        Store(tmp_path / "s.sqlite"),
        MathEvalConfig(strategies=strategies, dataset_hash=dataset.content_hash),
        dataset,
        labels_from_annotations(dataset),
        resolve_model("openai:x@http://127.0.0.1:9/v1"),
    )


def crossing(dataset: MathDataset) -> list[tuple[str, str]]:
    """The (train, test) twin pairs the default split puts on both sides."""
    train, test = dataset.split(0.5, 0)
    test_ids = {p.id for p in test}
    return sorted(
        (a.id, b) for a in train
        for b in (a.id.removeprefix("twin-"), f"twin-{a.id}") if b in test_ids
    )  # fmt: skip


def test_a_test_question_in_the_example_pool_is_refused(tmp_path: Path):
    dataset = twins_of(planted_dataset(40), lambda q: q.upper() + "  ")
    pairs = crossing(dataset)
    assert pairs
    with pytest.raises(InputError, match=r"test question\(s\) also appear") as err:
        make_eval(dataset, tmp_path, "zero-shot", "random-shot")
    assert f"{pairs[0][0]} = {pairs[0][1]}" in str(err.value)
    assert "zero-shot only" in err.value.hint
    make_eval(dataset, tmp_path, "zero-shot")  # shows no examples: nothing can leak


def test_near_duplicates_of_test_questions_leave_the_example_pool(tmp_path: Path):
    """A variant of a test question (CHAMP has some) is not shown as an example."""
    long = MathDataset.build(
        "long", "tests",
        [replace(p, question=f"{p.question} {p.question} {p.question}")
         for p in planted_dataset(40)],
    )  # fmt: skip
    dataset = twins_of(long, lambda q: q + " Explain.")
    pairs = crossing(dataset)
    assert pairs
    evaluation = make_eval(dataset, tmp_path, "random-shot")
    assert set(evaluation.exemplars.left_out) >= set(pairs)
    pool = {p.id for p in evaluation.exemplars.problems}
    assert pool and not pool & {a for a, _ in pairs}
    assert len(pool) == len(evaluation.train) - len({a for a, _ in evaluation.exemplars.left_out})


# --- the verifier and the teacher never see the gold answer -----------------------------------


@pytest.mark.parametrize("verifier", ["judge", "consistency"])
def test_verifier_and_teacher_never_see_the_gold_answer(
    world: World, tmp_path: Path, verifier: str
):
    """Every request the judge and the teacher got holds the question and the student's
    zero-shot answer, nothing else: no worked solution, and the gold answer only where
    the student's own answer states it."""
    result, servers, store = evaluate_world(
        world, tmp_path, ("zero-shot", "adaptmi", "adaptmi+"), verifier=verifier
    )
    got = answers(store, result.run_id)
    by_text = {p.question: p for p in world.dataset}
    shown = [*servers.teacher.requests, *servers.judge.requests]
    assert servers.teacher.requests
    if verifier == "judge":
        assert len(servers.judge.requests) == len({q for _, q in got})
    else:  # the consistency verifier asks the student only
        assert servers.judge.requests == []
    without_gold = 0
    for body in shown:
        prompt = body["messages"][-1]["content"]
        head, _, attempt = prompt.partition("\n\nStudent's solution:\n")
        problem = by_text[head.split("Problem: ", 1)[1]]
        assert "SOLUTION-" not in json.dumps(body)  # no worked solution, of any problem
        assert attempt == got[("zero-shot", problem.id)]["response"].strip()
        if problem.answer in attempt:
            continue
        assert problem.answer not in json.dumps(body)
        without_gold += 1
    assert without_gold > 0  # some of them were about answers that missed the gold one


# --- planted skill gaps -----------------------------------------------------------------------


def planted_gain(world: World, test_ids: set[str]) -> float:
    """The gain a strategy that always shows X examples to X questions should measure:
    the share of test questions needing X, times the share of answers noise leaves."""
    needing_x = sum(world.dataset.get(q).concepts[0] == X for q in test_ids)
    kept = 1 - (1 / world.noise if world.noise else 0)
    return needing_x / len(test_ids) * kept


def gains_over_zero_shot(store: Store, run_id: str) -> dict[str, Any]:
    report = build_eval_report(store, run_id)
    return {c.strategy: c for c in report.metrics.comparisons if c.baseline == "zero-shot"}


def test_skill_and_adaptmi_recover_a_planted_skill_gap(world: World, tmp_path: Path):
    result, _, store = evaluate_world(world, tmp_path, ALL)
    test_ids = {q for _, q in answers(store, result.run_id)}
    planted = planted_gain(world, test_ids)
    gains = gains_over_zero_shot(store, result.run_id)
    for strategy in ("skill", "adaptmi", "adaptmi+"):
        gain = gains[strategy]
        assert gain.low <= planted <= gain.high, (strategy, gain, planted)
        assert gain.gain > 0 and gain.significant, (strategy, gain)
        assert gain.only_strategy > gain.only_baseline
    # Fixed shots help exactly when the fixed examples happen to include an X one.
    train, _ = world.dataset.split(0.5, 3)
    fixed = fixed_shots(train.problems, 2, 3)
    expected = planted if any(world.dataset.get(e).concepts[0] == X for e in fixed) else 0.0
    assert gains["fixed-shot"].low <= expected <= gains["fixed-shot"].high


def test_adaptmi_does_not_hurt_what_the_student_already_answered(tmp_path: Path):
    """With cognitive overload (examples make the student fail questions it could answer
    alone), showing skill examples to every question hurts; AdaptMI shows them only to
    the questions the verifier finds difficult and keeps every easy answer as it was."""
    world = World(planted_dataset(), overload=True)
    result, _, store = evaluate_world(world, tmp_path, ("zero-shot", "skill", "adaptmi"))
    got = answers(store, result.run_id)
    test_ids = {q for _, q in got}
    for question in test_ids:
        adaptmi, zero = got[("adaptmi", question)], got[("zero-shot", question)]
        if not adaptmi["difficulty"]["difficult"]:
            assert (adaptmi["response_key"], adaptmi["correct"]) == (
                zero["response_key"], zero["correct"],
            )  # fmt: skip
    gains = gains_over_zero_shot(store, result.run_id)
    planted = planted_gain(world, test_ids)
    assert gains["adaptmi"].low <= planted <= gains["adaptmi"].high
    assert gains["adaptmi"].significant and gains["adaptmi"].gain > 0
    # Skill examples on every question cost more than they give here.
    assert gains["skill"].gain < 0
    hurt = [
        q for q in test_ids
        if got[("zero-shot", q)]["correct"] and not got[("adaptmi", q)]["correct"]
    ]  # fmt: skip
    assert all(got[("adaptmi", q)]["difficulty"]["difficult"] for q in hurt)
    assert len(hurt) <= gains["adaptmi"].n // 10


def test_adaptmi_plus_recovers_the_gap_when_the_student_misnames_the_skill(tmp_path: Path):
    """The student names the wrong skill for X questions: its own choice of examples
    cannot help, the teacher's reading of its answer can."""
    world = World(planted_dataset(), names_wrong_skill=True)
    result, _, store = evaluate_world(world, tmp_path, ("zero-shot", "skill", "adaptmi+"))
    test_ids = {q for _, q in answers(store, result.run_id)}
    gains = gains_over_zero_shot(store, result.run_id)
    planted = planted_gain(world, test_ids)
    assert gains["adaptmi+"].low <= planted <= gains["adaptmi+"].high
    assert gains["adaptmi+"].significant
    assert gains["skill"].low <= 0 <= gains["skill"].high and not gains["skill"].significant


# --- skill labels from a labelling run --------------------------------------------------------


def test_skill_labels_can_come_from_a_label_run(tmp_path: Path):
    from skillmix.math.champ import load_champ
    from skillmix.math.eval import labels_from_run
    from test_math_label import Teacher, group_of_four, run_pipeline

    dataset = load_champ().limit(40)
    store = Store(tmp_path / "s.sqlite")
    with ScriptedServer(Teacher(group_of_four, 4, quirks=False)) as server:
        label_run = run_pipeline(dataset, server, store, skills=4, workers=4)
    labels = labels_from_run(store, label_run.run_id[:14], dataset)
    assert labels.source == label_run.run_id
    assert sorted(labels.skills) == sorted(s.name for s in label_run.skills)
    # The student always names the skill most questions have.
    first = max(labels.skills, key=lambda k: sum(k in v for v in labels.by_question.values()))

    def student(body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        if "Which one skill from this list" in prompt:
            return Reply(f"Skill: {first}")
        return Reply("\\boxed{0}")

    with ScriptedServer(student, model="student") as server:
        config = MathEvalConfig(
            student=server.spec(), dataset=dataset.name, dataset_hash=dataset.content_hash,
            strategies=("skill",), shots=2, labels=labels.source,
        )  # fmt: skip
        pipeline = MathEval(store, config, dataset, labels, resolve_model(server.spec()), workers=4)
        result = run_async(pipeline.run())
    coarse = {s.id: s.name for s in label_run.skills}
    named = {
        label.question_id: tuple(coarse[c] for c in label.coarse) for label in label_run.labels
    }
    with_first = {q for q, skills in named.items() if first in skills}
    got = answers(store, result.run_id)
    assert got and store.get_run(result.run_id)["config"]["labels"] == label_run.run_id
    for (_, question), answer in got.items():
        assert answer["chosen_skill"] == first
        assert answer["skills"] == list(named.get(question, ()))
        assert answer["examples"] and set(answer["examples"]) <= with_first
        assert not set(answer["examples"]) & {q for _, q in got}
    with pytest.raises(InputError, match="not a math label run"):
        labels_from_run(store, result.run_id, dataset)


# --- the command ------------------------------------------------------------------------------


def write_jsonl(dataset: MathDataset, path: Path) -> Path:
    rows = [
        {"id": p.id, "question": p.question, "answer": p.answer, "solution": p.solution,
         "category": p.category, "concepts": list(p.concepts)}
        for p in dataset
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def eval_args(
    data: Path, student: ScriptedServer, teacher: ScriptedServer, *extra: str
) -> list[str]:
    return [
        "math", "eval", "--dataset", str(data), "--student", student.spec(),
        "--teacher", teacher.spec(), "--strategy", "all", "--shots", "2",
        "--samples", "3", "--seed", "3", "--workers", "4", *extra,
    ]  # fmt: skip


def test_the_command_prints_writes_files_and_a_page_and_resumes_for_free(tmp_path: Path):
    world = World(planted_dataset(60))
    data = write_jsonl(world.dataset, tmp_path / "planted.jsonl")
    with (
        ScriptedServer(world.student, model="student") as student,
        ScriptedServer(world.teacher, model="teacher") as teacher,
    ):
        args = eval_args(data, student, teacher, "--out", "out")
        first = skillmix(*args, "--json", cwd=tmp_path)
        sent = len(student.requests) + len(teacher.requests)
        second = skillmix(*args, cwd=tmp_path)
        assert len(student.requests) + len(teacher.requests) == sent
    assert "model calls (this invocation): 0 sent" in second.stderr
    report = json.loads(first.stdout)
    assert [s["strategy"] for s in report["strategies"]] == list(ALL)
    assert report["questions"] == 30 and all(s["n"] == 30 for s in report["strategies"])
    assert len(report["comparisons"]) == 15
    gain = next(
        c for c in report["comparisons"] if (c["baseline"], c["strategy"]) == ("zero-shot", "skill")
    )
    assert gain["gain"] > 0 and gain["significant"]
    for strategy in ALL:
        assert re.search(rf"^\s*│?\s*{re.escape(strategy)}\s", second.stdout, re.M), strategy
    assert "paired comparisons" in second.stdout

    folder = tmp_path / "out" / report["run_id"]
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "math-eval-accuracy.csv", "math-eval-answers.csv", "math-eval-comparisons.csv",
        "math-eval.json", "math.html",
    ]  # fmt: skip
    answers_csv = (folder / "math-eval-answers.csv").read_text().splitlines()
    assert len(answers_csv) == 1 + 6 * 30
    page = (folder / "math.html").read_text()
    for anchor in ('id="accuracy"', 'id="skill-accuracy"', 'id="questions"', "eval-skill-heatmap"):
        assert anchor in page
    # Model text travels only in the page's JSON, never as markup.
    head, _, data_part = page.partition('<script type="application/json" id="math-data">')
    assert "I am confident" not in head and "I am confident" in data_part
    assert "meaningless numbers" not in page


def test_a_killed_evaluation_resumes_without_asking_anything_twice(tmp_path: Path):
    world = World(planted_dataset(40))
    data = write_jsonl(world.dataset, tmp_path / "planted.jsonl")
    killed_store, clean_store = tmp_path / "killed.sqlite", tmp_path / "clean.sqlite"
    with ScriptedServer(world.teacher, model="teacher") as teacher:
        with ScriptedServer(world.student, model="student") as first:
            port = first.port
            args = eval_args(data, first, teacher)
            sent_by_killed = sigkill_at_request(
                first, [*args, "--store", str(killed_store)], tmp_path, at=60
            )
        answered = stored_bodies(killed_store, resolve_model(first.spec()))  # type: ignore[arg-type]
        assert answered and len(sent_by_killed) >= 60
        with ScriptedServer(world.student, model="student", port=port) as second:
            skillmix(*args, "--store", str(killed_store), cwd=tmp_path)
            resumed = [canonical(b) for b in second.requests]
            assert not answered & set(resumed), "an answered request was sent again"
            assert len(resumed) == len(set(resumed))
            mark = len(second.requests)
            skillmix(*args, "--store", str(clean_store), cwd=tmp_path)
            clean = {canonical(b) for b in second.requests[mark:]}
    assert set(sent_by_killed) | set(resumed) == clean

    def records(path: Path) -> dict[str, Any]:
        db = sqlite3.connect(path)
        rows = db.execute("SELECT key, data FROM records WHERE kind = 'math.answer'").fetchall()
        db.close()
        out = {}
        for key, data in rows:
            doc = json.loads(data)
            out[key] = (doc["correct"], doc["response"], doc["examples"], doc["pass"])
        return out

    assert records(killed_store) == records(clean_store)
    assert len(records(clean_store)) == 6 * 20


def test_estimate_sends_nothing_and_max_cost_pauses(tmp_path: Path):
    world = World(planted_dataset(40))
    data = write_jsonl(world.dataset, tmp_path / "planted.jsonl")
    settings = tmp_path / "skillmix.toml"
    settings.write_text(
        "[pricing]\nstudent = { input = 0, output = 100 }\nteacher = { input = 0, output = 100 }\n"
    )
    with (
        ScriptedServer(world.student, model="student") as student,
        ScriptedServer(world.teacher, model="teacher") as teacher,
    ):
        args = eval_args(data, student, teacher, "--settings", str(settings), "--max-tokens", "20",
                         "--judge-max-tokens", "20")  # fmt: skip
        estimate = skillmix(*args, "--estimate", cwd=tmp_path)
        assert student.requests == [] and teacher.requests == []
        assert "estimate for matheval-" in estimate.stdout
        assert "every question is counted as difficult" in estimate.stdout
        paused = skillmix(*args, "--max-cost", "0.01", cwd=tmp_path, check=False)
        assert paused.returncode == 3, paused.stderr
        assert "budget reached" in paused.stderr
        bought = len(student.requests) + len(teacher.requests)
        assert 0 < bought < 200
        done = skillmix(*args, cwd=tmp_path)
        assert "model calls (this invocation)" in done.stderr
    db = sqlite3.connect(tmp_path / "skillmix.sqlite")
    status = db.execute("SELECT status FROM runs WHERE id LIKE 'matheval-%'").fetchone()[0]
    assert status == "done"


# --- the real embedded model ------------------------------------------------------------------


@pytest.mark.embedded
def test_every_strategy_runs_with_the_embedded_model_and_says_the_numbers_mean_nothing(
    tmp_path: Path,
):
    args = [
        "math", "eval", "--student", "embedded", "--dataset", "champ", "--limit", "3",
        "--strategy", "all", "--shots", "1", "--samples", "2", "--max-tokens", "160",
        "--judge-max-tokens", "48", "--out", "out",
    ]  # fmt: skip
    report = json.loads(skillmix(*args, "--json", cwd=tmp_path).stdout)
    assert [(s["strategy"], s["n"]) for s in report["strategies"]] == [(s, 3) for s in ALL]
    assert any("smoke test of the pipeline" in w for w in report["warnings"])
    page = (tmp_path / "out" / report["run_id"] / "math.html").read_text()
    assert "meaningless numbers" in page and 'id="questions"' in page
    again = skillmix(*args, cwd=tmp_path)
    assert "model calls (this invocation): 0 sent" in again.stderr
