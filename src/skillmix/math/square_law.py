"""`skillmix math square-law`: is success on skill-pair questions the square of success on
the questions they came from?

MATH² reported that a model's success rate y on its generated questions (each written to
need a *pair* of skills) is about x², x being its success on the original set: what one
would expect if a question needing two skills is solved only when both are, each as often
as a base question. This module measures that law for several students, from stored
`skillmix math eval` runs: one run per student on the base set, one on the generated set.

The fit
-------
Student i answered n_i base questions (s_i right) and m_i generated ones (t_i right). Its
true base success rate p_i is unknown: the observed s_i / n_i is itself an estimate, so
regressing y on the observed x would ignore half of the noise. The model is

    s_i ~ Binomial(n_i, p_i),    t_i ~ Binomial(m_i, p_i ** a),

questions independent, one exponent a shared by every student, and is fitted by maximum
likelihood over (a, p_1 .. p_k). For a given a each p_i is found on its own (the
log-likelihood is concave in log p_i), which gives the profile log-likelihood l(a); the
estimate maximises it over a grid of log a refined by Brent's method. The 95% interval
for a is the profile-likelihood interval {a : 2 (l(a_hat) - l(a)) <= chi2_1(0.95)}, and
the test of a = 2 is the likelihood-ratio test (p from chi2 with one degree of freedom).

Students are not all alike: a law that holds on average can leave each student off the
curve by more than question sampling explains, and an interval that counts only question
sampling is then too narrow. With k >= 2 students the deviance D of the fit against the
saturated model (a free rate per student and set) has k - 1 degrees of freedom. When it
rejects the curve (chi2 goodness-of-fit p < 0.05), the likelihood ratios are divided by the
dispersion D / (k - 1) and read from F(1, k - 1) instead of chi2_1 (quasi-likelihood,
McCullagh and Nelder 1989, §4.5), so the interval and the test also count the scatter.
With one student, a = log y / log x and nothing checks the curve.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup

from skillmix.errors import InputError
from skillmix.jsonsafe import finite
from skillmix.math.eval import ANSWER_RECORD, KIND, PROBLEM_RECORD
from skillmix.math.html import (
    Column,
    MathPage,
    Section,
    Table,
    Tag,
    section_view,
    write_page,
)
from skillmix.math.metrics import Accuracy
from skillmix.math.problems import MathDataset, MathProblem
from skillmix.report.html.view import PageWarning
from skillmix.report.svg import Curve, ScatterPoint, rate_scatter
from skillmix.scoring.stats import f_sf, t_quantile, two_sided_p, z_quantile
from skillmix.store import Store

if TYPE_CHECKING:
    from rich.console import Console

RESULT_KEY = "square_law"  # this pipeline's entry in `MathPage.results`
SQUARE = 2.0
LEVEL = 0.95
FIT_ALPHA = 0.05  # a goodness-of-fit p below this widens the interval by the dispersion
A_RANGE = (0.01, 100.0)  # the exponents searched; an estimate at either end is refused
_GRID = 241  # points of log a over A_RANGE
_BISECTIONS = 64
_V_RANGE = (1e-12, 50.0)  # -log p searched for each student: p from e^-50 to 1 - 1e-12
_EMBEDDED = "embedded"


# --- the fit ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLawFit:
    """The fitted exponent of y = x ** a with its interval, and the test of a = 2.

    `low` is 0.0 and `high` infinite where the interval does not close inside A_RANGE.
    `p_square` is the likelihood-ratio test of a = 2. `deviance` and `df` measure the fit
    against a free rate per student and set (`fit_p`, nan with one student); `dispersion`
    is D / df when that test rejects the curve (then the interval and the test read
    F(1, df)), else 1.
    """

    a: float
    low: float
    high: float
    p_square: float
    deviance: float
    df: int
    dispersion: float
    fit_p: float
    students: int
    level: float = LEVEL

    @property
    def reference(self) -> str:
        """The distribution the likelihood ratios are read from."""
        return f"F(1, {self.df})" if self.dispersion > 1 else "chi2(1)"

    @property
    def contains_square(self) -> bool:
        return self.low <= SQUARE <= self.high

    def interval_text(self) -> str:
        high = "∞" if math.isinf(self.high) else f"{self.high:.2f}"
        closing = ")" if math.isinf(self.high) else "]"
        return f"[{self.low:.2f}, {high}{closing}"

    def verdict(self) -> str:
        """One line: where 2 stands against the interval, and what that means."""
        head = (
            f"a = {self.a:.2f}, {self.level:.0%} interval {self.interval_text()}; "
            f"test of a = 2: p = {_p_text(self.p_square)}"
        )
        if self.contains_square:
            return f"{head}: consistent with the square law (2 is inside the interval)"
        if self.high < SQUARE:
            return (
                f"{head}: below 2, the generated questions are easier than the square law "
                "predicts (y > x²)"
            )
        return (
            f"{head}: above 2, the generated questions are harder than the square law "
            "predicts (y < x²)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "p_square": self.p_square,
            "contains_square": self.contains_square,
            "deviance": self.deviance,
            "df": self.df,
            "fit_p": self.fit_p,
            "dispersion": self.dispersion,
            "reference": self.reference,
            "students": self.students,
            "method": "binomial maximum likelihood, profile-likelihood interval",
        }


def _p_text(p: float) -> str:
    if not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


@dataclass(frozen=True)
class _Counts:
    """Right answers and questions per student, on the base (s, n) and generated (t, m) sets."""

    s: np.ndarray
    n: np.ndarray
    t: np.ndarray
    m: np.ndarray

    @classmethod
    def of(cls, points: Sequence[tuple[Accuracy, Accuracy]]) -> _Counts:
        columns = np.array([(x.correct, x.n, y.correct, y.n) for x, y in points], dtype=float)
        return cls(*columns.T)


def _best_log_rates(a: np.ndarray, c: _Counts) -> np.ndarray:
    """log p maximising each student's log-likelihood at each exponent of `a` (a column:
    one row per exponent, one column per student).

    With v = -log p, the derivative of the log-likelihood in log p is
    (s + t a) - (n - s) / expm1(v) - (m - t) a / expm1(a v), decreasing in log p: its
    root is found by bisection on log v, for every exponent and student at once.
    """
    shape = np.broadcast_shapes(a.shape, c.s.shape)
    low = np.full(shape, math.log(_V_RANGE[0]))
    high = np.full(shape, math.log(_V_RANGE[1]))
    with np.errstate(over="ignore"):
        for _ in range(_BISECTIONS):
            mid = (low + high) / 2
            v = np.exp(mid)
            slope = (c.s + c.t * a) - (c.n - c.s) / np.expm1(v) - (c.m - c.t) * a / np.expm1(a * v)
            rising = slope > 0  # the maximum is at a larger p: a smaller v
            high = np.where(rising, mid, high)
            low = np.where(rising, low, mid)
    return -np.exp((low + high) / 2)


def profile_log_likelihoods(exponents: Sequence[float] | np.ndarray, c: _Counts) -> np.ndarray:
    """The log-likelihood at each exponent, maximised over every student's base rate
    (binomial coefficients left out: they cancel in every ratio used here)."""
    a = np.asarray(exponents, dtype=float)[:, None]
    u = _best_log_rates(a, c)
    terms = (
        (c.s + c.t * a) * u
        + (c.n - c.s) * np.log(-np.expm1(u))
        + (c.m - c.t) * np.log(-np.expm1(a * u))
    )
    return np.asarray(terms.sum(axis=1))


def profile_log_likelihood(a: float, c: _Counts) -> float:
    """`profile_log_likelihoods` at one exponent."""
    return float(profile_log_likelihoods([a], c)[0])


def _saturated_log_likelihood(c: _Counts) -> float:
    """The log-likelihood with a free rate per student and set (0 log 0 = 0)."""
    total = 0.0
    for right, n in ((c.s, c.n), (c.t, c.m)):
        for k, size in zip(right, n, strict=True):
            for count in (k, size - k):
                if count > 0:
                    total += count * math.log(count / size)
    return total


def fit_power_law(
    points: Sequence[tuple[Accuracy, Accuracy]], *, level: float = LEVEL
) -> PowerLawFit:
    """Fit y = x ** a to (base, generated) accuracies, one pair per student (see the module
    docstring for the model, the interval and the test).

    Raises `InputError` when the data cannot pin a down: no student, a student without
    answers, every x (or every y) at 0 or 1, or a likelihood still rising at the end of
    A_RANGE.
    """
    if not points:
        raise InputError("no student to fit: the square law needs at least one")
    if any(x.n == 0 or y.n == 0 for x, y in points):
        raise InputError("a student has no answer on one of the sets: nothing to fit")
    if all(x.correct in (0, x.n) for x, _ in points):
        raise InputError(
            "every student got all or none of the base questions right (x = 0 or 1): "
            "0 ** a = 0 and 1 ** a = 1 for every a, so these points say nothing about a",
            hint="add students whose base success is strictly between 0 and 1, or use a "
            "base set of a difficulty that separates them",
        )
    if all(y.correct in (0, y.n) for _, y in points):
        raise InputError(
            "every student got all or none of the generated questions right (y = 0 or 1): "
            "such points are fitted by ever larger (y = 0) or smaller (y = 1) exponents",
            hint="add students whose success on the generated set is strictly between 0 "
            "and 1, or evaluate on more generated questions",
        )
    counts = _Counts.of(points)
    grid = np.linspace(math.log(A_RANGE[0]), math.log(A_RANGE[1]), _GRID)
    profile = profile_log_likelihoods(np.exp(grid), counts)
    best = int(np.argmax(profile))
    if best in (0, _GRID - 1):
        side = "smaller" if best == 0 else "larger"
        raise InputError(
            f"the likelihood keeps rising toward ever {side} exponents (up to a = "
            f"{math.exp(grid[best]):g}): the points do not pin a down",
            hint="look at the table: the students are probably all near 0 or 1 on one set",
        )
    b_hat, top = _refine(grid[best - 1], grid[best + 1], counts)
    if top < profile[best]:
        b_hat, top = float(grid[best]), float(profile[best])
    k = len(points)
    df = k - 1
    deviance = max(0.0, 2 * (_saturated_log_likelihood(counts) - top))
    fit_p = _chi2_sf(deviance, df)
    dispersion = deviance / df if fit_p < FIT_ALPHA else 1.0  # nan (no df) is not below
    # F(1, df) is t(df) squared, chi2(1) a squared normal
    critical = (t_quantile(level, df) if dispersion > 1 else z_quantile(level)) ** 2

    def excess(b: float) -> float:
        drop = 2 * (top - profile_log_likelihood(math.exp(b), counts)) / dispersion
        return drop - critical

    low = _crossing(grid, profile, best, top, dispersion, critical, -1, excess)
    high = _crossing(grid, profile, best, top, dispersion, critical, +1, excess)
    ratio = max(0.0, 2 * (top - profile_log_likelihood(SQUARE, counts)))
    scaled = dispersion > 1
    p_square = f_sf(ratio / dispersion, 1, df) if scaled else two_sided_p(math.sqrt(ratio))
    return PowerLawFit(
        a=math.exp(b_hat),
        low=math.exp(low) if math.isfinite(low) else 0.0,
        high=math.exp(high),
        p_square=float(p_square),
        deviance=float(deviance),
        df=df,
        dispersion=float(dispersion),
        fit_p=fit_p,
        students=k,
        level=level,
    )


def _refine(left: float, right: float, counts: _Counts) -> tuple[float, float]:
    """The maximum of the profile in log a between two grid points (Brent's method)."""
    from scipy.optimize import minimize_scalar

    found = minimize_scalar(
        lambda b: -profile_log_likelihood(math.exp(b), counts),
        bounds=(left, right),
        method="bounded",
        options={"xatol": 1e-9},
    )
    return float(found.x), float(-found.fun)


def _crossing(
    grid: np.ndarray,
    profile: np.ndarray,
    best: int,
    top: float,
    scale: float,
    critical: float,
    direction: int,
    excess: Callable[[float], float],
) -> float:
    """log a where the scaled likelihood ratio reaches `critical`, walking the grid from
    the estimate in `direction`; -inf or +inf when it does not within the grid."""
    from scipy.optimize import brentq

    index = best
    while 0 <= index + direction < len(grid):
        index += direction
        if 2 * (top - profile[index]) / scale > critical:
            inner, outer = float(grid[index - direction]), float(grid[index])
            return float(brentq(excess, min(inner, outer), max(inner, outer), xtol=1e-10))
    return -math.inf if direction < 0 else math.inf


def _chi2_sf(value: float, df: int) -> float:
    if df < 1:
        return math.nan
    from scipy.special import gammaincc

    return float(gammaincc(df / 2, value / 2))


# --- reading the runs -------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSide:
    """One student's answers in one `math eval` run, under one strategy."""

    run_id: str
    student: str
    dataset: str
    dataset_hash: str
    status: str
    accuracy: Accuracy
    outcomes: Mapping[str, bool]  # question id -> answered right


def read_eval_run(store: Store, run_id: str, strategy: str) -> EvalSide:
    """The answers of `strategy` in the math evaluation `run_id` (or a unique start of it)."""
    run = store.get_run(run_id)
    config = run["config"]
    if config.get("kind") != KIND:
        raise InputError(
            f"run {run['id']} is not a math evaluation ({config.get('kind') or 'a Skill-Mix run'})",
            hint="give ids that `skillmix math eval` printed (they start with matheval-); "
            "`skillmix runs` lists the store's runs",
        )
    answers = [
        a for a in store.records(run["id"], ANSWER_RECORD).values() if a["strategy"] == strategy
    ]
    if not answers:
        strategies = ", ".join(config.get("strategies") or ()) or "none"
        if strategy not in (config.get("strategies") or ()):
            raise InputError(
                f"run {run['id']} did not use the strategy {strategy} (it used: {strategies})",
                hint="choose one every run used with --strategy, or evaluate with it",
            )
        raise InputError(
            f"run {run['id']} has no stored {strategy} answer yet (status {run['status']})",
            hint="finish it: re-run the `skillmix math eval` command that started it",
        )
    outcomes = {a["question_id"]: bool(a["correct"]) for a in answers}
    return EvalSide(
        run_id=run["id"],
        student=str(config.get("student")),
        dataset=str(config.get("dataset")),
        dataset_hash=str(config.get("dataset_hash", "")),
        status=run["status"],
        accuracy=Accuracy(sum(outcomes.values()), len(outcomes)),
        outcomes=outcomes,
    )


@dataclass(frozen=True)
class StudentPoint:
    """One student's success on the base set (x) and on the generated set (y)."""

    student: str
    base: EvalSide
    pairs: EvalSide

    @property
    def x(self) -> Accuracy:
        return self.base.accuracy

    @property
    def y(self) -> Accuracy:
        return self.pairs.accuracy

    def to_dict(self, a: float) -> dict[str, Any]:
        x, y = self.x.value, self.y.value
        return {
            "student": self.student,
            "base_run": self.base.run_id,
            "pairs_run": self.pairs.run_id,
            "x": self.x.to_dict(),
            "y": self.y.to_dict(),
            "x_squared": x * x,
            "y_over_x_squared": y / (x * x) if x > 0 else math.nan,
            "fitted_y": x**a,
        }


def _by_student(sides: Sequence[EvalSide], which: str) -> dict[str, EvalSide]:
    found: dict[str, EvalSide] = {}
    for side in sides:
        if side.student in found:
            raise InputError(
                f"the student {side.student} has two {which} runs ({found[side.student].run_id} "
                f"and {side.run_id})",
                hint=f"give one {which} run per student",
            )
        found[side.student] = side
    return found


def _one_dataset(sides: Sequence[EvalSide], which: str) -> None:
    hashes = {s.dataset_hash for s in sides}
    if len(hashes) > 1:
        shown = ", ".join(f"{s.run_id} on {s.dataset} ({s.dataset_hash[:12]})" for s in sides)
        raise InputError(
            f"the {which} runs evaluate different datasets: {shown}",
            hint=f"every {which} run must answer the same dataset",
        )


def match_students(
    base: Sequence[EvalSide], pairs: Sequence[EvalSide]
) -> tuple[list[StudentPoint], list[str]]:
    """The students found on both sides (in the order of the base runs), and warnings
    for what a reader must know: students on one side only, differing question sets."""
    _one_dataset(base, "base")
    _one_dataset(pairs, "generated-set")
    if base[0].dataset_hash == pairs[0].dataset_hash:
        raise InputError(
            f"the base and generated-set runs evaluate the same dataset ({base[0].dataset}, "
            f"{base[0].dataset_hash[:12]}): y would simply be x",
            hint="give math eval runs on the original questions first, then runs on the "
            "generated ones (e.g. the export of `skillmix math generate`)",
        )
    on_base = _by_student(base, "base")
    on_pairs = _by_student(pairs, "generated-set")
    common = [s for s in on_base if s in on_pairs]
    if not common:
        raise InputError(
            "no student has runs on both sides: base runs are of "
            f"{', '.join(on_base)}; generated-set runs of {', '.join(on_pairs)}",
            hint="students are matched by their model spec as given to math eval --student",
        )
    warnings = []
    for which, students in (("generated-set", on_base), ("base", on_pairs)):
        alone = [s for s in students if s not in common]
        if alone:
            warnings.append(f"left out, no {which} run: {', '.join(alone)}")
    for which, sides in (("base", on_base), ("generated-set", on_pairs)):
        questions = {frozenset(sides[s].outcomes) for s in common}
        if len(questions) > 1:
            warnings.append(
                f"the {which} runs answered different questions (their seeds, test shares or "
                "--limit differ): each student's rate is over its own questions"
            )
    for s in common:
        for run in (on_base[s], on_pairs[s]):
            if run.status != "done":
                warnings.append(
                    f"run {run.run_id} ({s}) is {run.status}: its rate counts the "
                    f"{run.accuracy.n} answer(s) stored so far"
                )
    return [StudentPoint(s, on_base[s], on_pairs[s]) for s in common], warnings


# --- the result -------------------------------------------------------------------------------


@dataclass
class SquareLawResult:
    """Everything the terminal, the JSON file and the page show."""

    strategy: str
    points: list[StudentPoint]
    fit: PowerLawFit
    warnings: list[str]
    pairs_questions: list[MathProblem] = field(default_factory=list)

    @property
    def base_dataset(self) -> str:
        return self.points[0].base.dataset

    @property
    def pairs_dataset(self) -> str:
        return self.points[0].pairs.dataset

    def to_dict(self) -> dict[str, Any]:
        first = self.points[0]
        return finite(
            {
                "strategy": self.strategy,
                "base": {"dataset": first.base.dataset, "dataset_hash": first.base.dataset_hash},
                "pairs": {
                    "dataset": first.pairs.dataset,
                    "dataset_hash": first.pairs.dataset_hash,
                },
                "students": [p.to_dict(self.fit.a) for p in self.points],
                "fit": self.fit.to_dict(),
                "verdict": self.fit.verdict(),
                "warnings": self.warnings,
            }
        )


def fit_warnings(points: Sequence[StudentPoint], fit: PowerLawFit) -> list[str]:
    """What the fit cannot say, in words."""
    warnings = []
    if fit.students == 1:
        warnings.append(
            "one student: a = log y / log x from a single point; its interval counts only "
            "question sampling, and nothing checks that y = x^a describes students at all "
            "(add students)"
        )
    elif fit.students == 2:
        warnings.append(
            "two students: one degree of freedom to check the curve and to measure how far "
            "students stray from it; the interval is wide"
        )
    if fit.dispersion > 1:
        warnings.append(
            f"the students stray from y = x^a more than question sampling explains "
            f"(deviance {fit.deviance:.2f} on {fit.df} df, p = {_p_text(fit.fit_p)}): the "
            f"interval and the test are widened by that dispersion ({fit.dispersion:.2f}) "
            f"and read from {fit.reference}"
        )
    if math.isinf(fit.high) or fit.low == 0.0:
        warnings.append(
            f"the {fit.level:.0%} interval does not close within a = {A_RANGE[0]:g} to "
            f"{A_RANGE[1]:g}: the data rule out only one side"
        )
    for p in points:
        for which, acc in (("base", p.x), ("generated", p.y)):
            if acc.correct in (0, acc.n):
                share = "none" if acc.correct == 0 else "all"
                warnings.append(
                    f"{p.student} got {share} of the {acc.n} {which} questions right: its "
                    "point says little about a"
                )
    embedded = [p.student for p in points if p.student.split(":")[0].strip() == _EMBEDDED]
    if embedded:
        warnings.append(
            "the embedded SmolLM2-135M is a student here: a 135M-parameter model cannot do "
            "competition math, its point is a smoke test of the pipeline"
        )
    return warnings


def square_law(
    store: Store, base_runs: Sequence[str], pairs_runs: Sequence[str], *, strategy: str
) -> SquareLawResult:
    """Fit the square law to the students of the given math evaluations (`base_runs` on
    the original questions, `pairs_runs` on the generated ones), matched by student."""
    if not base_runs or not pairs_runs:
        raise InputError("give at least one base run and one generated-set run")
    base = [read_eval_run(store, r, strategy) for r in base_runs]
    pairs = [read_eval_run(store, r, strategy) for r in pairs_runs]
    points, warnings = match_students(base, pairs)
    fit = fit_power_law([(p.x, p.y) for p in points])
    problems: dict[str, MathProblem] = {}
    for side in pairs:
        for qid, data in store.records(side.run_id, PROBLEM_RECORD).items():
            if qid in side.outcomes and qid not in problems:
                problems[qid] = MathProblem.from_dict(data)
    return SquareLawResult(
        strategy, points, fit, warnings + fit_warnings(points, fit), list(problems.values())
    )


def parse_runs(value: str) -> list[str]:
    """'r1,r2 r3' -> ['r1', 'r2', 'r3'] (run ids or unique starts of them)."""
    runs = [part for part in value.replace(",", " ").split() if part]
    if not runs:
        raise InputError("an empty list of runs", hint="give run ids separated by commas")
    return list(dict.fromkeys(runs))


# --- the terminal -----------------------------------------------------------------------------


def _share(acc: Accuracy) -> str:
    low, high = acc.interval
    return f"{acc.value:.3f} [{low:.3f}, {high:.3f}]"


def student_rows(result: SquareLawResult) -> list[list[str]]:
    """student, x, y, x², y / x², x^a: the cells of the terminal and page tables."""
    rows = []
    for p in result.points:
        x, y = p.x.value, p.y.value
        rows.append(
            [
                p.student,
                _share(p.x),
                _share(p.y),
                f"{x * x:.3f}",
                f"{y / (x * x):.2f}" if x > 0 else "—",
                f"{x**result.fit.a:.3f}",
            ]
        )
    return rows


HEADERS = ("student", "x: base [95% CI]", "y: generated [95% CI]", "x²", "y / x²", "x^a")


def render_square_law(result: SquareLawResult, console: Console) -> None:
    """The students' table, the fitted exponent and the verdict, and the warnings."""
    from skillmix.report.layout import Column as TerminalColumn
    from skillmix.report.layout import print_records
    from skillmix.terminal import escaped, plain

    fit = result.fit
    print_records(
        console,
        [
            TerminalColumn(HEADERS[0], wrap=True),
            *(TerminalColumn(h, justify="right") for h in HEADERS[1:]),
        ],
        student_rows(result),
        title=f"square law: x = success on {result.base_dataset}, y = on "
        f"{result.pairs_dataset} ({result.strategy}; {fit.students} student(s))",
        caption="Wilson 95% intervals; x^a is the fitted curve at the student's x",
    )
    console.print(plain(fit.verdict()))
    fit_line = f"fit: binomial maximum likelihood, profile-likelihood interval from {fit.reference}"
    if fit.df:
        fit_line += f"; deviance {fit.deviance:.2f} on {fit.df} df (p = {_p_text(fit.fit_p)})"
    console.print(plain(fit_line))
    for warning in result.warnings:
        console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)


# --- files and the page -----------------------------------------------------------------------


def write_square_law_files(result: SquareLawResult, out_dir: str | Path) -> list[Path]:
    """square-law.json and square-law.html in `out_dir`."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        document = out / "square-law.json"
        document.write_text(
            json.dumps(result.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8"
        )
    except OSError as err:
        raise InputError(
            f"cannot write to {out}: {err.strerror or err}", hint="choose another --out"
        ) from err
    return [document, write_page(square_law_page(result), out / "square-law.html")]


def square_law_page(result: SquareLawResult) -> MathPage:
    """The page: the plot and the table, then the generated questions in the browser."""
    fit = result.fit
    dataset = MathDataset.build(result.pairs_dataset, "store", result.pairs_questions)
    facts = [
        ("base set", f"{result.base_dataset} ({result.points[0].base.dataset_hash[:12]})"),
        ("generated set", f"{result.pairs_dataset} ({result.points[0].pairs.dataset_hash[:12]})"),
        ("strategy", result.strategy),
        ("students", str(fit.students)),
        ("a", f"{fit.a:.2f} {fit.interval_text()}"),
        ("p of a = 2", _p_text(fit.p_square)),
    ]
    warnings = [
        PageWarning("severe" if "smoke test" in w else "warn", "square law", w)
        for w in result.warnings
    ]
    return MathPage(
        title=f"Square law: {result.pairs_dataset} against {result.base_dataset}",
        lede=f"Success on {result.pairs_dataset} (y) against success on {result.base_dataset} "
        f"(x) for {fit.students} student(s), with y = x^a fitted",
        dataset=dataset,
        facts=facts,
        warnings=warnings,
        results={RESULT_KEY: result},
    )


def short_names(specs: Sequence[str]) -> dict[str, str]:
    """A short label per model spec for the plot: the model's name alone
    ("openai:gpt-4o@http://host/v1" -> "gpt-4o") where that tells the specs apart, else
    provider:model, else the whole spec."""
    for shorten in (
        lambda s: s.split("@", 1)[0].split(":", 1)[-1],
        lambda s: s.split("@", 1)[0],
    ):
        labels = {spec: shorten(spec) or spec for spec in specs}
        if len(set(labels.values())) == len(labels):
            return labels
    return {spec: spec for spec in specs}


@dataclass(frozen=True)
class SquareLawView:
    svg: Markup
    verdict: str
    consistent: bool
    method: str
    note: str


def curve_points(a: float, steps: int = 100) -> list[tuple[float, float]]:
    """(x, x ** a) on [0, 1], denser near 0 where small exponents bend fastest."""
    xs = [(i / steps) ** 2 for i in range(steps + 1)]
    return [(x, x**a) for x in xs]


@section_view(order=60)
def square_law_section(page: MathPage) -> Section | None:
    """The plot of y against x with the fitted curve and y = x², the table, the verdict."""
    result: SquareLawResult | None = page.results.get(RESULT_KEY)
    if result is None:
        return None
    fit = result.fit
    labels = short_names([p.student for p in result.points])
    points = []
    for p in result.points:
        (xl, xh), (yl, yh) = p.x.interval, p.y.interval
        points.append(
            ScatterPoint(
                labels[p.student], p.x.value, p.y.value, xl, xh, yl, yh,
                note=f"{p.x.correct}/{p.x.n} and {p.y.correct}/{p.y.n} right",
            )
        )  # fmt: skip
    band = [
        (x, x ** (fit.high if math.isfinite(fit.high) else A_RANGE[1]), x ** max(fit.low, 1e-9))
        for x, _ in curve_points(1.0)
    ]
    svg = rate_scatter(
        points,
        [
            Curve(
                f"fitted y = x^{fit.a:.2f}, {fit.level:.0%} band", curve_points(fit.a), band=band
            ),
            Curve("square law y = x²", curve_points(SQUARE), dashed=True),
        ],
        element_id="square-law-plot",
        title="y against x, one point per student",
        x_label=f"x: success on {result.base_dataset}",
        y_label=f"y: success on {result.pairs_dataset}",
    )
    table = Table(
        (Column(HEADERS[0]), *(Column(h, numeric=True) for h in HEADERS[1:])),
        student_rows(result),
        "no student",
    )
    method = (
        "Each student's right answers are binomial: s of n base questions at its rate p, "
        "t of m generated questions at p^a. a is fitted by maximum likelihood over a and "
        "every p; its interval is the profile-likelihood interval and 2 is tested by the "
        f"likelihood ratio, read from {fit.reference}"
        + (
            f", widened by the students' dispersion around the curve ({fit.dispersion:.2f})."
            if fit.dispersion > 1
            else "."
        )
        + (
            f" Goodness of fit: deviance {fit.deviance:.2f} on {fit.df} df, "
            f"p = {_p_text(fit.fit_p)}."
            if fit.df
            else " With one student nothing checks the curve itself."
        )
    )
    tags: dict[str, list[Tag]] = {}
    for p in result.points:
        for qid, right in p.pairs.outcomes.items():
            tags.setdefault(qid, []).append(
                Tag(f"{p.student} {'right' if right else 'wrong'}", "good" if right else "bad")
            )
    return Section(
        "square-law",
        "Square law",
        "sections/square_law.html.j2",
        view=SquareLawView(
            Markup(svg),
            fit.verdict(),
            fit.contains_square,
            method,
            "Points are students with 95% Wilson intervals on both axes; the shaded band is "
            "y = x^a over the interval of a. The question browser lists the generated "
            "questions and which students got each right.",
        ),
        tables={"square-law-students": table},
        tags=tags,
    )
