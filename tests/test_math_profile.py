"""`skillmix math profile`: a planted student's Missing-Skill-Profile is recovered.

The planted world: every question needs one or two of five skills. Of the questions
needing a skill, a planted share (chosen by a hash) find the student lacking it; the
student answers wrong when it lacks any of the question's skills, or on a planted slip.
The scripted teacher (which reads only its prompt) names exactly the skills the student
lacked, answers some questions with unreadable text on every draw (unparsed verdicts)
and some only on the first draw (read on the retry). Whether the profile recovers the
planted rates is then a measurement with intervals, as on real data.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import skillmix
from scripted_server import Reply, ScriptedServer
from skillmix.errors import InputError
from skillmix.math.answers import check_answer
from skillmix.math.eval import ANSWER_RECORD as EVAL_ANSWER
from skillmix.math.eval import (
    MathEval,
    MathEvalConfig,
    Unparsed,
    labels_from_annotations,
)
from skillmix.math.problems import MathDataset, MathProblem
from skillmix.math.profile import (
    ANSWER_RECORD,
    KIND,
    MathProfile,
    ProfileConfig,
    ProfileOutcome,
    SkillProfile,
    Verdict,
    compare_profiles,
    difference_interval,
    skill_profile,
)
from skillmix.math.profile_prompts import parse_verdicts, verdict_schema
from skillmix.math.profile_report import ProfileReport, build_profile_report
from skillmix.math.strategies import SOLVE_INSTRUCTION
from skillmix.models import resolve_model
from skillmix.runtime.loop import run as run_async
from skillmix.scoring.stats import wilson_interval
from skillmix.store import Store

check_answer("1", "1")  # load math-verify now, not inside a run (see test_math_eval)

SKILLS = (
    "telescoping sums",
    "case analysis",
    "parity arguments",
    "modular inverses",
    "angle chasing",
)
PLANTED = dict(zip(SKILLS, (0.6, 0.35, 0.08, 0.0, 0.0), strict=True))
THRESHOLD = 0.2
SLIP = 0.1  # wrong answers with no skill lacking
WORDS = (  # noqa: SIM905 (one string reads better than 30 quoted words)
    "apple basin cedar delta ember fjord grove heron inlet juniper kelp lagoon meadow nectar "
    "orchid pebble quarry ridge spruce thicket upland valley willow yarrow zephyr acorn "
    "bramble canyon dune estuary"
).split()


def _digest(*parts: object) -> int:
    return int(hashlib.sha256(json.dumps(parts).encode()).hexdigest(), 16)


def _chance(p: float, *parts: object) -> bool:
    return _digest(*parts) % 10_000 < round(p * 10_000)


def planted_dataset(n: int = 400, seed: int = 11) -> MathDataset:
    """`n` questions of random words, each needing one or two of SKILLS."""
    rng = random.Random(seed)
    problems = []
    for i in range(n):
        first = SKILLS[i % len(SKILLS)]
        skills = [first]
        if rng.random() < 0.5:
            skills.append(rng.choice([s for s in SKILLS if s != first]))
        words = " ".join(rng.choice(WORDS) for _ in range(14))
        problems.append(
            MathProblem(
                id=f"p{i:03d}",
                question=f"Evaluate the {words} quantity.",
                answer=str(500003 + 41 * i),
                solution=f"Worked solution {i}: apply {' and '.join(skills)}.",
                category="algebra" if i % 3 else "geometry",
                concepts=tuple(skills),
            )
        )
    return MathDataset.build("planted-profile", "tests", problems)


@dataclass
class Student:
    """The planted student of a dataset, and its teacher (both scripted servers' policies)."""

    dataset: MathDataset
    rates: dict[str, float] = field(default_factory=lambda: dict(PLANTED))
    garbled: int = 12  # 1 in `garbled` wrong answers gets an unreadable verdict every time
    salt: str = "student"
    seen: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.by_question = {p.question: p for p in self.dataset}
        # Of the questions needing skill s, exactly round(rate * n) lack it, chosen by a
        # hash: the planted rate is the student's real rate, not only its expectation.
        self.lacking: dict[str, set[str]] = {}
        for skill, rate in self.rates.items():
            needing = sorted(
                (p.id for p in self.dataset if skill in p.concepts),
                key=lambda q: _digest(self.salt, q, skill),
            )
            self.lacking[skill] = set(needing[: round(rate * len(needing))])

    def lacks(self, problem: MathProblem) -> list[str]:
        return [s for s in problem.concepts if problem.id in self.lacking[s]]

    def slips(self, problem: MathProblem) -> bool:
        return _chance(SLIP, self.salt, problem.id, "slip")

    def wrong(self, problem: MathProblem) -> bool:
        return bool(self.lacks(problem)) or self.slips(problem)

    def garbles(self, problem: MathProblem) -> str | None:
        """The verdict is unreadable "always", on the "first" draw only, or never (None)."""
        roll = _digest(self.salt, problem.id, "garble") % self.garbled
        return "always" if roll == 0 else "first" if roll == 1 else None

    def student(self, body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        assert prompt.startswith(SOLVE_INSTRUCTION)
        problem = self.by_question[prompt.rsplit("Problem: ", 1)[1].strip()]
        if self.wrong(problem):
            return Reply(f"Let me try. So \\boxed{{{int(problem.answer) + 7}}}")
        return Reply(f"Step by step. So \\boxed{{{problem.answer}}}")

    def teacher(self, body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        assert "lacks it or misapplies it" in prompt
        question = prompt.split("\n\nProblem: ", 1)[1].split("\n\nReference", 1)[0].strip()
        problem = self.by_question[question]
        assert f"Reference answer: {problem.answer}" in prompt  # the teacher may know it
        listed = re.findall(r"^(\d+)\. (.+)$", prompt.split("Problem: ")[0], re.M)
        assert [name for _, name in listed] == list(problem.concepts)
        with self.lock:
            draw = self.seen.get(problem.id, 0)
            self.seen[problem.id] = draw + 1
        garble = self.garbles(problem)
        if garble == "always" or (garble == "first" and draw == 0):
            return Reply("Hard to say which skill it is, honestly.")
        lacked = set(self.lacks(problem))
        verdicts = {number: int(name in lacked) for number, name in listed}
        if body.get("response_format"):
            return Reply(json.dumps(verdicts))
        return Reply("\n".join(f"{n}: {v}" for n, v in verdicts.items()))


def profile_world(
    student: Student,
    store: Store,
    *,
    part: str = "all",
    structured: bool = True,
    limit: int | None = None,
) -> str:
    """Profile the planted student on fresh scripted servers; return the run id."""
    with (
        ScriptedServer(student.student, model="student") as s,
        ScriptedServer(student.teacher, model="teacher") as t,
    ):
        config = ProfileConfig(
            student=s.spec(),
            teacher=t.spec(),
            dataset=student.dataset.name,
            dataset_hash=student.dataset.content_hash,
            part=part,  # type: ignore[arg-type]
            limit=limit,
            seed=5,
            structured=structured,
        )
        pipeline = MathProfile(
            store,
            config,
            student.dataset,
            labels_from_annotations(student.dataset),
            resolve_model(s.spec()),
            resolve_model(t.spec()),
            workers=4,
        )
        result = run_async(pipeline.run())
    return result.run_id


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Student, ProfileReport]:
    student = Student(planted_dataset())
    store = Store(tmp_path_factory.mktemp("profile") / "store.sqlite")
    run_id = profile_world(student, store)
    return student, build_profile_report(store, run_id)


def recovery_table(report: ProfileReport) -> str:
    """The planted-profile recovery table (also printed by the test, for the record)."""
    lines = [
        "| skill | planted missing rate | measured rate | 95% interval | questions | flagged |",
        "|---|---:|---:|---|---:|---|",
    ]
    for s in report.skills:
        low, high = s.interval
        lines.append(
            f"| {s.skill} | {PLANTED[s.skill]:.2f} | {s.rate:.3f} | [{low:.3f}, {high:.3f}] "
            f"| {s.assessed} of {s.attempts} | {'yes' if s.flagged(THRESHOLD) else 'no'} |"
        )
    return "\n".join(lines)


# --- the planted student ------------------------------------------------------------------


def test_the_planted_profile_is_recovered_within_its_intervals(
    planted: tuple[Student, ProfileReport],
):
    _, report = planted
    print("\n" + recovery_table(report))
    assert [s.skill for s in report.skills] == sorted(SKILLS)
    for s in report.skills:
        low, high = s.interval
        assert low <= PLANTED[s.skill] <= high, (s.skill, s.rate, low, high)
        assert s.assessed >= 100, s  # enough questions for the intervals to mean something
    assert {s.skill for s in report.flagged(THRESHOLD)} == {"telescoping sums", "case analysis"}
    assert not any(s.flagged(THRESHOLD) for s in report.skills if PLANTED[s.skill] < THRESHOLD)


def test_every_count_of_the_profile_is_what_was_planted(planted: tuple[Student, ProfileReport]):
    student, report = planted
    problems = list(student.dataset)
    wrong = [p for p in problems if student.wrong(p)]
    unparsed = {p.id for p in wrong if student.garbles(p) == "always"}
    assert report.totals.questions == len(problems)
    assert report.totals.wrong == len(wrong) and report.totals.correct == len(problems) - len(wrong)
    assert report.totals.unparsed == len(unparsed) > 0
    assert report.totals.nothing_missing == sum(
        1 for p in wrong if p.id not in unparsed and not student.lacks(p)
    )
    for s in report.skills:
        needing = [p for p in problems if s.skill in p.concepts]
        assert s.attempts == len(needing)
        assert s.failures == sum(student.wrong(p) for p in needing)
        assert s.unparsed == sum(p.id in unparsed for p in needing)
        assert s.missing == sum(
            s.skill in student.lacks(p) for p in needing if p.id not in unparsed
        )
    # An unread verdict is recorded with its reason and draws, never as "nothing missing".
    by_id = {a["question_id"]: a for a in report.answers}
    for qid in unparsed:
        verdict = by_id[qid]["verdict"]
        assert verdict["status"] == "unparsed" and verdict["missing"] == []
        assert len(verdict["keys"]) == 2 and "no verdict found" in verdict["reason"]
    retried = [p for p in wrong if student.garbles(p) == "first"]
    assert retried
    for p in retried:
        verdict = by_id[p.id]["verdict"]
        assert verdict["status"] == "parsed" and len(verdict["keys"]) == 2
    assert any("could not be read" in w for w in report.warnings)


def test_right_answers_and_unlabelled_questions_are_not_sent_to_the_teacher(tmp_path: Path):
    base = planted_dataset(40)
    problems = [
        MathProblem(p.id, p.question, p.answer, p.solution, p.category, () if i < 5 else p.concepts)
        for i, p in enumerate(base)
    ]
    dataset = MathDataset.build("planted-unlabelled", "tests", problems)
    student = Student(dataset)
    store = Store(tmp_path / "store.sqlite")
    run_id = profile_world(student, store)
    report = build_profile_report(store, run_id)
    asked = set(student.seen)
    expected = {p.id for p in dataset if p.concepts and student.wrong(p)}
    assert asked == expected
    unlabelled_wrong = sum(1 for p in dataset if not p.concepts and student.wrong(p))
    assert report.totals.without_skills == unlabelled_wrong
    records = store.records(run_id, ANSWER_RECORD)
    for p in dataset:
        verdict = records[p.id]["verdict"]
        if not student.wrong(p):
            assert verdict == {**verdict, "status": "not-asked", "reason": "the answer is right"}


def test_the_profile_asks_the_student_exactly_what_math_eval_asks(tmp_path: Path):
    student = Student(planted_dataset(60))
    store = Store(tmp_path / "store.sqlite")
    with (
        ScriptedServer(student.student, model="student") as s,
        ScriptedServer(student.teacher, model="teacher") as t,
    ):
        evaluation = MathEval(
            store,
            MathEvalConfig(
                student=s.spec(),
                dataset=student.dataset.name,
                dataset_hash=student.dataset.content_hash,
                strategies=("zero-shot",),
                seed=5,
            ),
            student.dataset,
            labels_from_annotations(student.dataset),
            resolve_model(s.spec()),
        )
        run_async(evaluation.run())
        asked_by_eval = len(s.requests)
        config = ProfileConfig(
            student=s.spec(),
            teacher=t.spec(),
            dataset=student.dataset.name,
            dataset_hash=student.dataset.content_hash,
            part="test",
            seed=5,
        )
        pipeline = MathProfile(
            store,
            config,
            student.dataset,
            labels_from_annotations(student.dataset),
            resolve_model(s.spec()),
            resolve_model(t.spec()),
        )
        assert [p.id for p in pipeline.questions] == [p.id for p in evaluation.test]
        result = run_async(pipeline.run())
        assert len(s.requests) == asked_by_eval == 30  # every answer came from the store
        assert len(t.requests) > 0
    assert result.stats.by_role.get("student", 0) == 0
    profiled = store.records(result.run_id, ANSWER_RECORD)
    evaluated = {
        a["question_id"]: a for a in store.records(evaluation.run_id, EVAL_ANSWER).values()
    }
    assert {q: a["response_key"] for q, a in profiled.items()} == {
        q: a["response_key"] for q, a in evaluated.items()
    }


def test_an_estimate_of_the_train_part_sends_nothing(tmp_path: Path):
    student = Student(planted_dataset(60))
    with ScriptedServer(student.student, model="student") as s:
        config = ProfileConfig(
            student=s.spec(), teacher=s.spec(), dataset_hash=student.dataset.content_hash
        )
        pipeline = MathProfile(
            Store(tmp_path / "store.sqlite"),
            config,
            student.dataset,
            labels_from_annotations(student.dataset),
            resolve_model(s.spec()),
            resolve_model(s.spec()),
            estimate=True,
        )
        train, _ = student.dataset.split(0.5, 0)
        assert [p.id for p in pipeline.questions] == [p.id for p in train]
        result = run_async(pipeline.run())
        assert s.requests == []
    assert result.stats.by_role == {"student": 30, "teacher": 30}  # every answer "wrong"


def test_the_teacher_verdicts_are_read_in_every_shape():
    assert parse_verdicts('{"1": 0, "2": 1}', 2) == [2]
    assert parse_verdicts('Sure:\n```json\n{"2": 1, "1": 1}\n```', 2) == [1, 2]
    assert parse_verdicts('{"missing": [2]}', 3) == [2]
    assert parse_verdicts("1: 1\n2: 0\n3: 1", 3) == [1, 3]
    assert parse_verdicts("**1. Inclusion-exclusion: yes** (never used)\n2. Counting: no", 2) == [1]
    assert parse_verdicts("Skill 2 (counting) - missing\nSkill 1 (parity) - 0", 2) == [2]
    assert parse_verdicts("Missing: 2, 3", 3) == [2, 3]
    assert parse_verdicts("Missing: none", 2) == []
    for reply, n, why in [
        ("1: 1", 2, "no verdict for skill(s) 2"),
        ('{"1": 1}', 2, "no 0/1 verdict for skill(s) 2"),
        ("I think the student did fine.", 1, "no verdict found"),
        ("Missing: 4", 2, "out of range"),
        ('{"1": "maybe"}', 1, "no 0/1 verdict for skill(s) 1"),
    ]:
        read = parse_verdicts(reply, n)
        assert isinstance(read, Unparsed) and why in read.reason, (reply, read)
    schema = verdict_schema(3)
    assert schema["required"] == ["1", "2", "3"] and not schema["additionalProperties"]
    assert all(p == {"type": "integer", "enum": [0, 1]} for p in schema["properties"].values())


def test_a_text_only_teacher_gives_the_same_profile(tmp_path: Path):
    student = Student(planted_dataset(80))
    json_store, text_store = Store(tmp_path / "json.sqlite"), Store(tmp_path / "text.sqlite")
    by_json = build_profile_report(json_store, profile_world(student, json_store))
    student.seen.clear()
    by_text = build_profile_report(text_store, profile_world(student, text_store, structured=False))
    assert by_json.run_id != by_text.run_id
    assert [s.to_dict() for s in by_json.skills] == [s.to_dict() for s in by_text.skills]


# --- pure pieces ----------------------------------------------------------------------------


def test_the_profile_counts_follow_their_definitions():
    parsed = Verdict("parsed", ("a",))
    outcomes = [
        ProfileOutcome("q1", ("a", "b"), False, parsed),
        ProfileOutcome("q2", ("a",), True, Verdict("not-asked")),
        ProfileOutcome("q3", ("a", "b"), False, Verdict("unparsed", reason="x")),
        ProfileOutcome("q4", ("b",), False, Verdict("parsed", ())),
        ProfileOutcome("q5", (), False, Verdict("not-asked")),
    ]
    a, b = skill_profile(outcomes)
    assert (a.skill, a.attempts, a.failures, a.missing, a.unparsed) == ("a", 3, 2, 1, 1)
    assert (b.skill, b.attempts, b.failures, b.missing, b.unparsed) == ("b", 3, 3, 0, 1)
    assert a.assessed == 2 and a.rate == 0.5 and a.interval == wilson_interval(1, 2)
    assert b.rate == 0.0 and not b.flagged(0.0)
    assert a.flagged(0.49) and not a.flagged(0.5)
    empty = SkillProfile("c", 1, 1, 0, 1)
    assert math.isnan(empty.rate) and not empty.flagged(0.0)


def test_the_difference_of_two_rates_has_newcombes_interval():
    # Newcombe (1998), table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339.
    d, low, high = difference_interval((48, 80), (56, 70))
    assert d == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)
    first = [SkillProfile("a", 10, 5, 5, 0), SkillProfile("b", 10, 2, 1, 0)]
    second = [SkillProfile("a", 10, 1, 0, 0), SkillProfile("c", 4, 1, 1, 0)]
    rows = {r.skill: r for r in compare_profiles(first, second)}
    assert list(rows) == ["a", "b", "c"]
    assert rows["a"].difference == pytest.approx(-0.5) and rows["a"].significant
    assert math.isnan(rows["b"].difference) and not rows["b"].significant
    assert rows["c"].first is None and rows["c"].second is not None


def test_the_config_refuses_bad_options_and_an_empty_part():
    with pytest.raises(ValueError):
        ProfileConfig(part="held-out")  # type: ignore[arg-type]
    assert ProfileConfig(part="all", test_share=0.3) == ProfileConfig(part="all")
    assert ProfileConfig().run_id().startswith(f"{KIND}-")
    assert ProfileConfig(seed=1).run_id() != ProfileConfig().run_id()
    tiny = MathDataset.build("tiny", "tests", list(planted_dataset(1)))
    with pytest.raises(InputError, match="has no question"):
        MathProfile(
            Store(":memory:"),
            ProfileConfig(part="test"),
            tiny,
            labels_from_annotations(tiny),
            resolve_model("embedded"),
            resolve_model("embedded"),
        )


# --- the command ----------------------------------------------------------------------------


def write_jsonl(dataset: MathDataset, path: Path) -> Path:
    rows = [
        {"id": p.id, "question": p.question, "answer": p.answer, "solution": p.solution,
         "category": p.category, "concepts": list(p.concepts)}
        for p in dataset
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def profile_args(data: Path, student: ScriptedServer, teacher: ScriptedServer, *extra: str):
    return [
        "math", "profile", "--dataset", str(data), "--student", student.spec(),
        "--teacher", teacher.spec(), "--seed", "5", "--workers", "4", *extra,
    ]  # fmt: skip


def test_the_command_prints_writes_files_and_a_page_and_resumes_for_free(tmp_path: Path):
    student = Student(planted_dataset(120))
    data = write_jsonl(student.dataset, tmp_path / "planted.jsonl")
    with (
        ScriptedServer(student.student, model="student") as s,
        ScriptedServer(student.teacher, model="teacher") as t,
    ):
        args = profile_args(data, s, t, "--part", "all", "--out", "out")
        first = skillmix(*args, "--json", cwd=tmp_path)
        sent = len(s.requests) + len(t.requests)
        second = skillmix(*args, cwd=tmp_path)
        assert len(s.requests) + len(t.requests) == sent
    assert "model calls (this invocation): 0 sent" in second.stderr
    report = json.loads(first.stdout)
    assert report["totals"]["questions"] == 120
    assert report["threshold"] == 0.2
    flagged = [row["skill"] for row in report["skills"] if row["flagged"]]
    assert flagged[0] == "telescoping sums"  # the highest rate comes first
    rates = [row["rate"] for row in report["skills"]]
    assert rates == sorted(rates, reverse=True)
    assert "missing-skill profile" in second.stdout and "telescoping sums" in second.stdout
    folder = tmp_path / "out" / report["run_id"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "math-profile-answers.csv", "math-profile-skills.csv", "math-profile.json", "math.html",
    ]  # fmt: skip
    assert len((folder / "math-profile-answers.csv").read_text().splitlines()) == 1 + 120
    page = (folder / "math.html").read_text()
    assert 'id="missing-skills"' in page and "profile-plot" in page
    head, _, data_part = page.partition('<script type="application/json" id="math-data">')
    assert "Let me try" not in head and "Let me try" in data_part


def test_two_profiles_are_compared_side_by_side(tmp_path: Path):
    dataset = planted_dataset(160)
    data = write_jsonl(dataset, tmp_path / "planted.jsonl")
    before = Student(dataset)
    after = Student(dataset, rates={**PLANTED, "telescoping sums": 0.05}, salt="checkpoint-2")
    ids = []
    for student in (before, after):
        with (
            ScriptedServer(student.student, model="student") as s,
            ScriptedServer(student.teacher, model="teacher") as t,
        ):
            args = profile_args(data, s, t, "--part", "all", "--json")
            ids.append(json.loads(skillmix(*args, cwd=tmp_path).stdout)["run_id"])
    assert ids[0] != ids[1]  # two students (different model specs): two runs
    skillmix("math", "html", *ids, "--out", "compare.html", cwd=tmp_path)
    page = (tmp_path / "compare.html").read_text()
    assert 'id="missing-skills"' in page and "Missing-skill profiles compared" in page
    payload = json.loads(page.split('id="math-data">', 1)[1].split("</script>", 1)[0])
    table = payload["tables"]["profile-skills"]
    assert [c["header"] for c in table["columns"]][-1] == "B - A [95% CI]"
    rows = {row[0]: row for row in table["rows"]}
    assert set(rows) == set(SKILLS)
    assert rows["telescoping sums"][-1].endswith("*")  # 0.6 -> 0.05: excludes 0
    assert rows["telescoping sums"][-1].startswith("-")
    assert not rows["angle chasing"][-1].endswith("*")  # 0 -> 0
    for run_id in ids:
        assert run_id in page
    wrong_kind = skillmix("math", "html", ids[0], "nope", cwd=tmp_path, check=False)
    assert wrong_kind.returncode == 1


def test_the_estimate_sends_nothing(tmp_path: Path):
    student = Student(planted_dataset(40))
    data = write_jsonl(student.dataset, tmp_path / "planted.jsonl")
    with (
        ScriptedServer(student.student, model="student") as s,
        ScriptedServer(student.teacher, model="teacher") as t,
    ):
        estimate = skillmix(*profile_args(data, s, t, "--estimate"), cwd=tmp_path)
        assert s.requests == [] and t.requests == []
    assert f"estimate for {KIND}-" in estimate.stdout
    assert "every answer is counted as wrong" in estimate.stdout


# --- the real embedded model ------------------------------------------------------------------


@pytest.mark.embedded
def test_a_profile_runs_with_the_embedded_model_and_says_it_means_nothing(tmp_path: Path):
    args = [
        "math", "profile", "--student", "embedded", "--dataset", "champ", "--limit", "3",
        "--max-tokens", "160", "--teacher-max-tokens", "48", "--out", "out",
    ]  # fmt: skip
    report = json.loads(skillmix(*args, "--json", cwd=tmp_path).stdout)
    assert report["totals"]["questions"] == 3
    assert any("smoke test of the pipeline" in w for w in report["warnings"])
    page = (tmp_path / "out" / report["run_id"] / "math.html").read_text()
    assert "meaningless numbers" in page and 'id="missing-skills"' in page
    again = skillmix(*args, cwd=tmp_path)
    assert "model calls (this invocation): 0 sent" in again.stderr
