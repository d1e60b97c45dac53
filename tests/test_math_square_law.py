"""`skillmix math square-law`: the fit of y = x^a, the runs it reads, the command.

The fit is checked on synthetic binomial counts with a known exponent (seeded): it must
recover the exponent inside its interval, exclude a wrong one when the data are ample, and
cover the truth about 95% of the time. The command runs on real `math eval` runs of
planted students: scripted OpenAI-compatible servers on 127.0.0.1 that answer a question
right with a planted probability, x on the base set and x² (or x) on a generated set
written in the layout `skillmix math generate` exports (id, question, answer, solution,
skills), read from its folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import skillmix
from scripted_server import Reply, ScriptedServer
from skillmix.errors import InputError
from skillmix.math.answers import check_answer
from skillmix.math.eval import MathEval, MathEvalConfig, labels_from_annotations
from skillmix.math.metrics import Accuracy
from skillmix.math.problems import MathDataset, load_dataset
from skillmix.math.square_law import (
    A_RANGE,
    EvalSide,
    _Counts,
    fit_power_law,
    match_students,
    parse_runs,
    profile_log_likelihood,
    square_law,
)
from skillmix.math.strategies import SOLVE_INSTRUCTION
from skillmix.models import resolve_model
from skillmix.report.svg import Curve, ScatterPoint, rate_scatter
from skillmix.runtime.loop import run as run_async
from skillmix.store import Store

check_answer("1", "1")  # load math-verify before the servers start (see test_math_eval)

BASE_RATES = (0.3, 0.5, 0.7, 0.9)


# --- the fit on synthetic counts ----------------------------------------------------------------


def synthetic(
    a: float, xs: tuple[float, ...], n: int, rng: np.random.Generator
) -> list[tuple[Accuracy, Accuracy]]:
    """Binomial counts of students with base rates `xs`: n questions per set, y = x ** a."""
    return [
        (Accuracy(int(rng.binomial(n, x)), n), Accuracy(int(rng.binomial(n, x**a)), n)) for x in xs
    ]


@pytest.mark.parametrize(("a", "wrong"), [(2.0, 1.5), (1.5, 2.0)])
def test_the_fit_recovers_a_known_exponent_and_excludes_a_wrong_one(a: float, wrong: float):
    rng = np.random.default_rng(11)
    fit = fit_power_law(synthetic(a, (0.2, 0.4, 0.6, 0.75, 0.9), 3000, rng))
    assert fit.low <= a <= fit.high
    assert not fit.low <= wrong <= fit.high
    assert abs(fit.a - a) < 0.1 and fit.high - fit.low < 0.5
    assert fit.contains_square == (a == 2.0)
    assert (fit.p_square >= 0.05) == (a == 2.0)
    assert fit.students == 5 and fit.df == 4


def test_the_interval_covers_the_true_exponent_about_95_percent_of_the_time():
    rng = np.random.default_rng(2024)
    fits = [fit_power_law(synthetic(2.0, (0.3, 0.5, 0.7, 0.85), 150, rng)) for _ in range(300)]
    coverage = np.mean([f.low <= 2.0 <= f.high for f in fits])
    assert 0.91 <= coverage <= 0.985, coverage
    # The interval and the likelihood-ratio test are one procedure: 2 is inside exactly
    # when its p-value is at least 0.05.
    for f in fits:
        if abs(f.p_square - 0.05) > 1e-4:
            assert f.contains_square == (f.p_square >= 0.05), f


def test_the_profile_likelihood_matches_a_direct_maximisation():
    from scipy.optimize import minimize_scalar

    counts = [(Accuracy(31, 80), Accuracy(9, 70)), (Accuracy(80, 80), Accuracy(60, 70))]
    counts += [(Accuracy(0, 50), Accuracy(3, 40)), (Accuracy(44, 60), Accuracy(25, 60))]
    for a in (0.3, 1.0, 2.0, 3.7):
        direct = 0.0
        for x, y in counts:

            def negative(p: float, x: Accuracy = x, y: Accuracy = y, a: float = a) -> float:
                q = p**a
                return -(
                    x.correct * math.log(p)
                    + (x.n - x.correct) * math.log1p(-p)
                    + y.correct * math.log(q)
                    + (y.n - y.correct) * math.log1p(-q)
                )

            found = minimize_scalar(
                negative, bounds=(1e-9, 1 - 1e-9), method="bounded", options={"xatol": 1e-12}
            )
            direct -= found.fun
        assert profile_log_likelihood(a, _Counts.of(counts)) == pytest.approx(direct, abs=1e-5)


def test_one_student_gives_log_y_over_log_x_and_a_wide_interval():
    fit = fit_power_law([(Accuracy(50, 100), Accuracy(25, 100))])
    assert fit.a == pytest.approx(2.0, abs=1e-6)
    assert fit.df == 0 and math.isnan(fit.fit_p) and fit.dispersion == 1.0
    assert fit.low < 1.5 and fit.high > 2.7  # 100 questions per set: wide
    assert fit.p_square == pytest.approx(1.0)


def test_students_off_the_curve_widen_the_interval_by_their_dispersion():
    """Students whose generated-set rate strays from x^2 by far more than sampling: the
    goodness-of-fit test rejects the curve and the interval reads F(1, df)."""
    rng = np.random.default_rng(5)
    xs = (0.2, 0.35, 0.5, 0.65, 0.8, 0.9)
    n = 4000
    strayed = [
        (Accuracy(int(rng.binomial(n, x)), n), Accuracy(int(rng.binomial(n, x**2 * f)), n))
        for x, f in zip(xs, (1.4, 0.7, 1.3, 0.75, 1.15, 0.9), strict=True)
    ]
    fit = fit_power_law(strayed)
    assert fit.fit_p < 0.001 and fit.dispersion > 5
    assert fit.reference == "F(1, 5)"
    naive = fit_power_law(synthetic(2.0, xs, n, rng))
    assert naive.reference == "chi2(1)"
    assert (fit.high - fit.low) > 3 * (naive.high - naive.low)
    assert fit.contains_square  # the truth on average is still 2


def test_data_that_cannot_pin_a_down_are_refused_with_the_reason():
    with pytest.raises(InputError, match="no student to fit"):
        fit_power_law([])
    with pytest.raises(InputError, match=r"all or none of the base questions right \(x = 0"):
        fit_power_law([(Accuracy(40, 40), Accuracy(20, 40)), (Accuracy(0, 40), Accuracy(0, 40))])
    with pytest.raises(InputError, match=r"all or none of the generated questions right"):
        fit_power_law([(Accuracy(20, 40), Accuracy(0, 40)), (Accuracy(30, 40), Accuracy(40, 40))])
    # Neither rule above applies, but every point pulls a upward without end: x = 1 with
    # y < 1 (any a fits with p just below 1) and y = 0 at x = 0.5.
    with pytest.raises(InputError, match="keeps rising toward ever larger exponents"):
        fit_power_law(
            [(Accuracy(100, 100), Accuracy(50, 100)), (Accuracy(50, 100), Accuracy(0, 100))]
        )
    with pytest.raises(InputError, match="no answer on one of the sets"):
        fit_power_law([(Accuracy(0, 0), Accuracy(3, 10))])


def test_an_interval_open_above_is_reported_as_such():
    # One student, 4 of 5 base and 1 of 5 generated questions right: a = log 0.2 / log 0.8,
    # and nothing up to A_RANGE's end is unlikely enough to leave the interval.
    fit = fit_power_law([(Accuracy(4, 5), Accuracy(1, 5))])
    assert fit.a == pytest.approx(math.log(0.2) / math.log(0.8), rel=1e-6)
    assert math.isinf(fit.high) and A_RANGE[0] < fit.low < fit.a
    assert fit.interval_text().endswith("∞)")


def test_run_lists_are_split_at_commas_and_spaces():
    assert parse_runs("matheval-a, matheval-b matheval-a") == ["matheval-a", "matheval-b"]
    with pytest.raises(InputError, match="empty list"):
        parse_runs(" , ")


def test_the_scatter_plot_escapes_labels_and_draws_every_point_and_curve():
    svg = rate_scatter(
        [ScatterPoint("<b>one</b>", 0.5, 0.25, 0.4, 0.6, 0.2, 0.3), ScatterPoint("two", 0.9, 0.8)],
        [
            Curve("fit", [(0, 0), (1, 1)], band=[(0, 0, 0), (1, 0.9, 1)]),
            Curve("x²", [(0, 0)], True),
        ],
        element_id="s",
        title="t & u",
        x_label="x",
        y_label="y",
    )
    assert "<b>" not in svg and "&lt;b&gt;one" in svg and "t &amp; u" in svg
    assert svg.count('class="point"') == 2 and svg.count('class="curve"') == 2
    assert svg.count("<polygon") == 1 and 'stroke-dasharray="6 4"' in svg


# --- datasets the way `math generate` exports them ---------------------------------------------


def write_export(folder: Path, problems: list[dict[str, Any]]) -> Path:
    """A generated set as `math export` lays it out: questions.jsonl next to a card and
    other JSONL files (chat records, rejections) that are not a math dataset."""
    folder.mkdir(parents=True)
    (folder / "questions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems))
    (folder / "records.jsonl").write_text('{"messages": []}\n')
    (folder / "rejected.jsonl").write_text("")
    (folder / "README.md").write_text("# card\n")
    return folder


def problems(prefix: str, n: int, seed: int, skills: tuple[str, ...]) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    words = "acorn basin cedar delta ember fjord grove heron inlet juniper kelp lagoon".split()  # noqa: SIM905
    return [
        {
            "id": f"{prefix}{i}",
            "question": f"{prefix} {i}: evaluate the {' '.join(rng.choices(words, k=8))} sum.",
            "answer": str(1000 + 7 * i + seed),
            "solution": f"Worked. \\boxed{{{1000 + 7 * i + seed}}}",
            "skills": list(skills),
        }
        for i in range(n)
    ]


def test_an_export_folder_is_a_dataset_named_after_the_folder(tmp_path: Path):
    folder = write_export(tmp_path / "math2-pairs", problems("p", 5, 1, ("ratios", "parity")))
    data = load_dataset(str(folder))
    assert data.name == "math2-pairs" and len(data) == 5
    assert data.problems[0].id == "math2-pairs:p0"
    assert data.problems[0].concepts == ("ratios", "parity")
    by_file = load_dataset(str(folder / "questions.jsonl"))  # the same, named after the file
    assert by_file.name == "questions"
    assert [p.question for p in by_file] == [p.question for p in data]


def test_a_folder_with_one_jsonl_file_is_read_and_with_several_refused(tmp_path: Path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "a.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n')
    (folder / "notes.txt").write_text("not data")
    assert [p.id for p in load_dataset(str(folder))] == ["mine:0"]
    (folder / "b.jsonl").write_text("")
    with pytest.raises(InputError, match=r"2 of them: a\.jsonl, b\.jsonl") as err:
        load_dataset(str(folder))
    assert err.value.hint == "name the file itself"


# --- planted students on scripted servers ------------------------------------------------------


def _uniform(*parts: object) -> float:
    digest = hashlib.sha256(json.dumps(parts).encode()).hexdigest()
    return int(digest[:12], 16) / 16**12


@dataclass
class PlantedStudent:
    """Answers a question right with the planted rate of the set it belongs to."""

    name: str
    rates: dict[str, float]  # set name -> success rate
    gold: dict[str, tuple[str, str]]  # question text -> (set name, gold answer)

    def __call__(self, body: dict[str, Any]) -> Reply:
        prompt = body["messages"][-1]["content"]
        assert prompt.startswith(SOLVE_INSTRUCTION)
        question = prompt.rsplit("Problem: ", 1)[1].strip()
        which, gold = self.gold[question]
        if _uniform(self.name, question) < self.rates[which]:
            return Reply(f"Step by step.\n\\boxed{{{gold}}}")
        return Reply("Step by step.\n\\boxed{-1}")


SETS = {  # set name -> success as a function of the base rate x
    "base": lambda x: x,
    "square": lambda x: x * x,
    "linear": lambda x: x,
    "none": lambda x: 0.0,
}


@dataclass
class Planted:
    """A store holding one math eval run per student and set."""

    store: Path
    runs: dict[str, dict[str, str]]  # set name -> student -> run id
    students: dict[str, str]  # student -> spec

    def ids(self, which: str, students: Any = None) -> str:
        chosen = students or list(self.students)
        return ",".join(self.runs[which][s] for s in chosen)


def _datasets(root: Path) -> dict[str, MathDataset]:
    sizes = {"base": 120, "square": 120, "linear": 120, "none": 24}
    found = {}
    for i, (which, size) in enumerate(sizes.items()):
        rows = problems(which, size, 10 + i, ("skill A", "skill B"))
        found[which] = load_dataset(str(write_export(root / f"math2-{which}", rows)))
    return found


def _evaluate(store: Store, data: MathDataset, spec: str) -> str:
    config = MathEvalConfig(
        student=spec,
        dataset=data.name,
        dataset_hash=data.content_hash,
        strategies=("zero-shot",),
        seed=3,
    )
    pipeline = MathEval(
        store, config, data, labels_from_annotations(data), resolve_model(spec), workers=4
    )
    return run_async(pipeline.run()).run_id


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    root = tmp_path_factory.mktemp("square-law")
    datasets = _datasets(root)
    gold = {p.question: (which, p.answer) for which, d in datasets.items() for p in d}
    store_path = root / "store.sqlite"
    store = Store(store_path)
    runs: dict[str, dict[str, str]] = {which: {} for which in datasets}
    specs: dict[str, str] = {}
    servers = []
    try:
        for i, x in enumerate(BASE_RATES):
            name = f"student-{'abcd'[i]}"
            rates = {which: rule(x) for which, rule in SETS.items()}
            server = ScriptedServer(PlantedStudent(name, rates, gold), model=name).__enter__()
            servers.append(server)
            specs[name] = server.spec()
            for which, data in datasets.items():
                runs[which][name] = _evaluate(store, data, server.spec())
        store.close()
        yield Planted(store_path, runs, specs)
    finally:
        for server in servers:
            server.__exit__(None, None, None)


def square_law_cli(planted: Planted, tmp_path: Path, *args: str, check: bool = True) -> Any:
    return skillmix(
        "math", "square-law", *args, "--store", str(planted.store), "--out", "out",
        cwd=tmp_path, check=check,
    )  # fmt: skip


def test_planted_square_law_students_give_a_near_2(planted: Planted, tmp_path: Path):
    proc = square_law_cli(planted, tmp_path, planted.ids("base"), planted.ids("square"), "--json")
    report = json.loads(proc.stdout)
    fit = report["fit"]
    assert fit["students"] == 4 and fit["low"] <= 2.0 <= fit["high"] and fit["contains_square"]
    assert fit["low"] > 1.0  # y = x is ruled out
    assert "consistent with the square law" in report["verdict"]
    assert (
        report["base"]["dataset"] == "math2-base" and report["pairs"]["dataset"] == "math2-square"
    )
    rows = {r["student"]: r for r in report["students"]}
    assert list(rows) == list(planted.students.values())
    for x, spec in zip(BASE_RATES, planted.students.values(), strict=True):
        row = rows[spec]
        assert row["x"]["n"] == 60 and row["y"]["n"] == 60  # half of 120 is the test part
        assert row["x"]["low"] <= x <= row["x"]["high"]
        assert row["y"]["low"] <= x * x <= row["y"]["high"]
        assert row["x_squared"] == pytest.approx(row["x"]["value"] ** 2)
    out = tmp_path / "out"
    assert sorted(report["files"]) == ["out/square-law.html", "out/square-law.json"]
    assert json.loads((out / "square-law.json").read_text())["fit"] == fit
    page = (out / "square-law.html").read_text()
    for anchor in ('id="square-law"', 'id="square-law-plot"', 'data-curve="square law y = x²"',
                   'id="square-law-verdict"', "square-law-students", 'id="questions"'):  # fmt: skip
        assert anchor in page, anchor
    assert page.count('<g class="point"') == 4
    data = json.loads(page.split('id="math-data">')[1].split("</script>")[0])
    assert len(data["questions"]) == 60
    assert {len(q["tags"]) for q in data["questions"]} == {4}  # one per student


def test_the_terminal_shows_the_table_the_exponent_and_the_verdict(
    planted: Planted, tmp_path: Path
):
    proc = square_law_cli(planted, tmp_path, planted.ids("base"), planted.ids("linear"))
    out = proc.stdout
    for header in ("student", "x: base [95% CI]", "y: generated [95% CI]", "x²", "y / x²", "x^a"):
        assert header in out, header
    assert "student-a" in out and "student-d" in out
    assert "below 2, the generated questions are easier than the square law" in out
    assert "fit: binomial maximum likelihood" in out
    report = json.loads((tmp_path / "out" / "square-law.json").read_text())
    assert report["fit"]["high"] < 2.0 and report["fit"]["low"] <= 1.0 <= report["fit"]["high"]


def test_the_issue_form_one_run_per_side_works_and_warns(planted: Planted, tmp_path: Path):
    student = "student-b"
    base, pairs = planted.runs["base"][student], planted.runs["square"][student]
    proc = square_law_cli(planted, tmp_path, base[:14], pairs, "--json")  # a unique start
    report = json.loads(proc.stdout)
    assert report["fit"]["students"] == 1 and report["fit"]["df"] == 0
    assert any(w.startswith("one student") for w in report["warnings"])


def test_students_on_one_side_only_are_left_out_with_a_warning(planted: Planted, tmp_path: Path):
    base = planted.ids("base", ["student-a", "student-b", "student-c"])
    pairs = planted.ids("square", ["student-b", "student-c", "student-d"])
    report = json.loads(square_law_cli(planted, tmp_path, base, pairs, "--json").stdout)
    assert [r["student"] for r in report["students"]] == [
        planted.students["student-b"], planted.students["student-c"],
    ]  # fmt: skip
    assert f"left out, no generated-set run: {planted.students['student-a']}" in report["warnings"]
    assert f"left out, no base run: {planted.students['student-d']}" in report["warnings"]


@pytest.mark.parametrize(
    ("sides", "message"),
    [
        (lambda p: (p.ids("base", ["student-a"]), p.ids("square", ["student-b"])),
         "no student has runs on both sides"),
        (lambda p: (p.ids("base"), p.ids("base")), "evaluate the same dataset"),
        (lambda p: (p.ids("base"), p.ids("square") + "," + p.ids("linear", ["student-a"])),
         "the generated-set runs evaluate different datasets"),
        (lambda p: (p.ids("base"), p.ids("none")),
         "every student got all or none of the generated questions right"),
        (lambda p: (p.ids("base"), "matheval-nosuchrun"), "no run 'matheval-nosuchrun'"),
    ],
)  # fmt: skip
def test_the_command_refuses_what_it_cannot_fit(
    planted: Planted, tmp_path: Path, sides: Callable[[Planted], tuple[str, str]], message: str
):
    proc = square_law_cli(planted, tmp_path, *sides(planted), check=False)
    assert proc.returncode == 1, proc.stderr
    assert message in " ".join(proc.stderr.split()), proc.stderr
    assert not (tmp_path / "out").exists()


def side(run_id: str, student: str, dataset: str = "base", questions: int = 10) -> EvalSide:
    outcomes = {f"q{i}": i % 2 == 0 for i in range(questions)}
    return EvalSide(
        run_id, student, dataset, dataset * 8, "done", Accuracy(sum(outcomes.values()), questions),
        outcomes,
    )  # fmt: skip


def test_students_are_matched_once_per_side_and_unequal_question_sets_are_named():
    base = [side("r1", "s1"), side("r2", "s2", questions=12)]
    pairs = [side("r3", "s1", "pairs"), side("r4", "s2", "pairs")]
    points, warnings = match_students(base, pairs)
    assert [(p.student, p.base.run_id, p.pairs.run_id) for p in points] == [
        ("s1", "r1", "r3"), ("s2", "r2", "r4"),
    ]  # fmt: skip
    assert warnings == [
        "the base runs answered different questions (their seeds, test shares or --limit "
        "differ): each student's rate is over its own questions"
    ]
    with pytest.raises(InputError, match=r"s1 has two generated-set runs \(r3 and r5\)"):
        match_students(base, [*pairs, side("r5", "s1", "pairs")])


def test_a_strategy_the_runs_did_not_use_is_refused(planted: Planted):
    store = Store(planted.store, read_only=True)
    base, pairs = planted.runs["base"]["student-a"], planted.runs["square"]["student-a"]
    with pytest.raises(InputError, match=r"did not use the strategy skill \(it used: zero-shot\)"):
        square_law(store, [base], [pairs], strategy="skill")


def test_math_eval_reads_a_generated_export_folder(tmp_path: Path):
    folder = write_export(tmp_path / "generated", problems("g", 10, 3, ("ratios", "parity")))
    gold = {p.question: ("g", p.answer) for p in load_dataset(str(folder))}
    with ScriptedServer(PlantedStudent("s", {"g": 1.0}, gold), model="s") as student:
        proc = skillmix(
            "math", "eval", "--dataset", str(folder), "--student", student.spec(),
            "--strategy", "zero-shot", "--store", "store.sqlite", "--json", cwd=tmp_path,
        )  # fmt: skip
    report = json.loads(proc.stdout)
    assert report["config"]["dataset"] == "generated" and report["questions"] == 5
    assert report["strategies"][0]["value"] == 1.0
    skills = {row["skill"] for row in report["by_skill"]}
    assert skills == {"ratios", "parity"}
