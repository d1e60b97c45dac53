"""The report of a math evaluation, from the store alone: figures, warnings and files.

`build_eval_report` reads a `math eval` run's records (`math.answer`, `math.problem`) and
computes its metrics (`math.metrics`); `write_eval_files` writes them as JSON and CSV.
The terminal table is drawn by the command, the HTML sections by `math.eval_html`.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skillmix.errors import InputError
from skillmix.math.eval import ANSWER_RECORD, KIND, POOL_RECORD, PROBLEM_RECORD
from skillmix.math.metrics import EvalMetrics, Outcome, evaluate
from skillmix.math.strategies import STRATEGIES
from skillmix.store import Store

if TYPE_CHECKING:
    from rich.console import Console

EMBEDDED_WARNING = (
    "The {role} {verb} the embedded SmolLM2-135M, a 135M-parameter model that cannot do "
    "competition math: these numbers are a smoke test of the pipeline and say nothing "
    "about the strategies."
)


@dataclass
class MathEvalReport:
    """Everything the terminal, the files and the page show of one math evaluation."""

    run_id: str
    status: str
    config: dict[str, Any]
    answers: list[dict[str, Any]]  # the `math.answer` records, by strategy then question
    problems: dict[str, dict[str, Any]]  # id -> the `math.problem` record
    metrics: EvalMetrics
    warnings: list[str]
    usage: list[dict[str, Any]]

    @property
    def strategies(self) -> list[str]:
        return self.metrics.strategies

    def to_dict(self) -> dict[str, Any]:
        """The figures and the config (not the answers: see `answers.csv`)."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "config": self.config,
            "questions": len({a["question_id"] for a in self.answers}),
            **self.metrics.to_dict(),
            "warnings": self.warnings,
            "usage": self.usage,
        }


def is_math_eval(config: dict[str, Any]) -> bool:
    return config.get("kind") == KIND


def build_eval_report(store: Store, run_id: str) -> MathEvalReport:
    """The report of the math evaluation `run_id` (or a unique start of it)."""
    run = store.get_run(run_id)
    if not is_math_eval(run["config"]):
        raise InputError(
            f"run {run['id']} is not a math evaluation",
            hint="give the id `skillmix math eval` printed (it starts with matheval-)",
        )
    config = run["config"]
    order = [s for s in config.get("strategies", STRATEGIES)]
    rank = {s: i for i, s in enumerate(order)}
    answers = sorted(
        store.records(run["id"], ANSWER_RECORD).values(),
        key=lambda a: (rank.get(a["strategy"], len(rank)), a["question_id"]),
    )
    problems = store.records(run["id"], PROBLEM_RECORD)
    outcomes = [
        Outcome(
            a["strategy"], a["question_id"], bool(a["correct"]), a.get("category"),
            tuple(a.get("skills", ())),
        )
        for a in answers
    ]  # fmt: skip
    metrics = evaluate(outcomes, order, seed=int(config.get("seed", 0)))
    usage = [dict(row) for row in store.usage(run["id"])]
    return MathEvalReport(
        run_id=run["id"],
        status=run["status"],
        config=config,
        answers=answers,
        problems=problems,
        metrics=metrics,
        warnings=eval_warnings(
            config, answers, problems, store.records(run["id"], POOL_RECORD).get("summary")
        ),
        usage=usage,
    )


def eval_warnings(
    config: dict[str, Any],
    answers: list[dict[str, Any]],
    problems: dict[str, dict[str, Any]],
    pool: dict[str, Any] | None = None,
) -> list[str]:
    """What a reader must know before trusting the figures."""
    warnings = []
    embedded = [
        role
        for role, spec in (
            ("student", config.get("student")),
            ("verifier", _verifier_model(config.get("verifier"))),
            ("teacher", config.get("teacher")),
        )
        if spec and str(spec).split(":")[0] == "embedded"
    ]
    if embedded:
        roles = " and ".join(embedded)
        warnings.append(
            EMBEDDED_WARNING.format(role=roles, verb="is" if len(embedded) == 1 else "are")
        )
    strategies = config.get("strategies", [])
    questions = {a["question_id"] for a in answers}
    expected = len(strategies) * len(questions)
    if len(answers) < expected:
        warnings.append(
            f"the run is incomplete: {len(answers)} of {expected} answers are stored; "
            "re-run the same command to finish it"
        )
    left_out = (pool or {}).get("left_out") or []
    if left_out:
        shown = ", ".join(f"{a} ~ {b}" for a, b in left_out[:6])
        more = f" and {len(left_out) - 6} more" if len(left_out) > 6 else ""
        warnings.append(
            f"{len({a for a, _ in left_out})} train problem(s) were left out of the example "
            f"pool as near-duplicates of test questions (train ~ test): {shown}{more}"
        )
    notes = Counter(a["note"] for a in answers if a.get("note"))
    for note, n in notes.most_common():
        warnings.append(f"{n} answer(s) got no skill examples: {note}")
    unparsed = {a["question_id"] for a in answers if a.get("choice_method") == "unparsed"}
    if unparsed:
        warnings.append(
            f"the student's skill choice could not be read for {len(unparsed)} question(s)"
        )
    no_skills = [q for q in questions if not problems.get(q, {}).get("skills")]
    if no_skills:
        warnings.append(
            f"{len(no_skills)} of {len(questions)} question(s) have no skill label and count "
            "in no per-skill figure"
        )
    as_text = sum(a.get("check_method") == "text" for a in answers)
    if as_text:
        warnings.append(
            f"{as_text} answer(s) were compared as text (math-verify could not parse them)"
        )
    if questions and len(questions) < 30:
        warnings.append(
            f"only {len(questions)} test question(s): the intervals are wide and the tests "
            "have little power"
        )
    return warnings


def _verifier_model(verifier: str | None) -> str | None:
    if not verifier:
        return None
    if verifier.startswith("judge:"):
        return verifier.removeprefix("judge:")
    return None  # consistency: the student's own samples


# --- files ------------------------------------------------------------------------------------


def write_eval_files(report: MathEvalReport, out_dir: str | Path) -> list[Path]:
    """math-eval.json, and CSVs of the accuracy, the comparisons and every answer."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        return [
            _write_json(report, out / "math-eval.json"),
            _write_accuracy(report, out / "math-eval-accuracy.csv"),
            _write_comparisons(report, out / "math-eval-comparisons.csv"),
            _write_answers(report, out / "math-eval-answers.csv"),
        ]
    except OSError as err:
        raise InputError(
            f"cannot write the report to {out}: {err.strerror or err}",
            hint="choose another --out; the run itself is in the store",
        ) from err


def _write_json(report: MathEvalReport, path: Path) -> Path:
    path.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=True), encoding="utf-8")
    return path


def _write_accuracy(report: MathEvalReport, path: Path) -> Path:
    """One row per strategy and group: the whole run, each category, each skill."""
    m = report.metrics
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["run_id", "by", "group", "strategy", "correct", "n", "accuracy", "low", "high"]
        )
        rows = [("all", "all", s, m.overall[s]) for s in m.strategies]
        rows += [("category", c, s, a) for (c, s), a in m.by_category.items()]
        rows += [("skill", k, s, a) for (k, s), a in m.by_skill.items()]
        for by, group, strategy, acc in rows:
            low, high = acc.interval
            writer.writerow(
                [report.run_id, by, group, strategy, acc.correct, acc.n, acc.value, low, high]
            )
    return path


def _write_comparisons(report: MathEvalReport, path: Path) -> Path:
    fields = [
        "baseline", "strategy", "n", "gain", "low", "high", "only_strategy", "only_baseline",
        "p_exact", "p_mid", "p_exact_holm", "p_mid_holm", "significant",
    ]  # fmt: skip
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["run_id", *fields])
        writer.writeheader()
        for c in report.metrics.comparisons:
            writer.writerow({"run_id": report.run_id, **c.to_dict()})
    return path


def _write_answers(report: MathEvalReport, path: Path) -> Path:
    """One row per strategy and question: what was shown, the answer and its verdict."""
    fields = [
        "strategy", "question_id", "category", "skills", "chosen_skill", "teacher_skills",
        "difficult", "difficulty_score", "pass", "examples", "correct", "extracted", "gold",
        "reason", "note",
    ]  # fmt: skip
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["run_id", *fields])
        writer.writeheader()
        for a in report.answers:
            difficulty = a.get("difficulty") or {}
            writer.writerow(
                {
                    "run_id": report.run_id,
                    "strategy": a["strategy"],
                    "question_id": a["question_id"],
                    "category": a.get("category") or "",
                    "skills": "; ".join(a.get("skills", ())),
                    "chosen_skill": a.get("chosen_skill") or "",
                    "teacher_skills": "; ".join((a.get("teacher") or {}).get("skills", ())),
                    "difficult": difficulty.get("difficult", ""),
                    "difficulty_score": difficulty.get("score", ""),
                    "pass": a.get("pass", 1),
                    "examples": "; ".join(a.get("examples", ())),
                    "correct": int(bool(a["correct"])),
                    "extracted": a.get("extracted") or "",
                    "gold": a.get("gold", ""),
                    "reason": a.get("reason") or "",
                    "note": a.get("note") or "",
                }
            )
    return path


# --- the terminal -----------------------------------------------------------------------------


def _share(value: float, low: float, high: float) -> str:
    if value != value:  # nan: no data
        return "—"
    return f"{value:.2f} [{low:.2f},{high:.2f}]"


def _p(value: float) -> str:
    if value != value:
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def render_eval(report: MathEvalReport, console: Console) -> None:
    """The accuracy table, the paired comparisons and the warnings on the terminal."""
    from rich.table import Table

    from skillmix.terminal import escaped, plain

    cfg = report.config
    status = "" if report.status == "done" else f" ({report.status})"
    m = report.metrics
    console.print(
        plain(
            f"math eval {report.run_id}{status}: student {cfg.get('student')}, dataset "
            f"{cfg.get('dataset')} ({str(cfg.get('dataset_hash', ''))[:12]})"
        )
    )
    table = Table(
        "strategy",
        "n",
        "accuracy [95% CI]",
        title="accuracy by strategy",
        title_justify="left",
        caption="Wilson 95% intervals; n = test questions",
        caption_justify="left",
    )
    for strategy in m.strategies:
        acc = m.overall[strategy]
        table.add_row(strategy, str(acc.n), _share(acc.value, *acc.interval))
    console.print(table)
    if m.comparisons:
        pairs = Table(
            "strategy",
            "vs",
            "n",
            "gain [95% CI]",
            "only it right",
            "only vs right",
            "McNemar p (exact/mid)",
            "Holm mid-p",
            title="paired comparisons (gain = accuracy of strategy - accuracy of vs)",
            title_justify="left",
            caption="paired bootstrap interval over questions; Holm over all comparisons",
            caption_justify="left",
        )
        for c in m.comparisons:
            mark = " *" if c.significant else ""
            pairs.add_row(
                c.strategy,
                c.baseline,
                str(c.n),
                "—" if c.n == 0 else f"{c.gain:+.2f} [{c.low:+.2f},{c.high:+.2f}]",
                str(c.only_strategy),
                str(c.only_baseline),
                f"{_p(c.p_exact)} / {_p(c.p_mid)}",
                _p(c.p_mid_holm) + mark,
            )
        console.print(pairs)
    verifier = cfg.get("verifier")
    if verifier:
        console.print(
            plain(
                f"verifier: {verifier}"
                + (f" ({cfg.get('samples')} samples)" if verifier == "consistency" else "")
                + f", difficult below {cfg.get('difficulty_threshold')}"
                + (f"; teacher: {cfg.get('teacher')}" if cfg.get("teacher") else "")
            )
        )
    labels = cfg.get("labels") or "the dataset's concept annotations"
    console.print(plain(f"skill labels: {labels}; {cfg.get('shots')} example(s) per prompt"))
    for warning in report.warnings:
        console.print(f"[yellow]warning[/]: {escaped(warning)}", highlight=False)
