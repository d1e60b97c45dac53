"""The math page's sections for `skillmix math eval` (through `math.html`'s section hook).

Importing this module registers two sections: "Accuracy" (accuracy by strategy with its
interval, the gain of each strategy over zero-shot, the paired comparisons and the
accuracy per category) and "Skills" (a skill x strategy heatmap and table). Every test
question enters the page's question browser with one panel per strategy: the skill the
student or the teacher named, the verifier's verdict, the examples shown, the answer,
the value extracted from it and the verdict. Model text (answers, skill names from a
labelling run) reaches the page only through the JSON and the script (`math.js`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from skillmix.math.eval_report import MathEvalReport
from skillmix.math.html import (
    Column,
    MathPage,
    Panel,
    Section,
    Table,
    Tag,
    section_view,
    write_page,
)
from skillmix.math.metrics import Accuracy
from skillmix.math.problems import MathDataset, MathProblem
from skillmix.report.html.view import PageWarning
from skillmix.report.svg import IntervalRow, heatmap, interval_plot

RESULT_KEY = "eval"  # this pipeline's entry in `MathPage.results`
MEANINGLESS = "smoke test of the pipeline"  # in EMBEDDED_WARNING
SEVERE = ("smoke test", "incomplete")


def _share(acc: Accuracy) -> str:
    if acc.n == 0:
        return "—"
    low, high = acc.interval
    return f"{acc.value:.2f} [{low:.2f}, {high:.2f}]"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


# --- the page ---------------------------------------------------------------------------------


def eval_dataset(report: MathEvalReport) -> MathDataset:
    """The test questions of a run, rebuilt from its `math.problem` records."""
    asked = {a["question_id"] for a in report.answers}
    problems = []
    concepts: dict[str, str] = {}
    for qid, data in report.problems.items():
        if qid not in asked:
            continue
        concepts.update(data.get("concept_texts") or {})
        problems.append(
            MathProblem(
                id=qid,
                question=data["question"],
                answer=data["answer"],
                solution=data.get("solution"),
                category=data.get("category"),
                concepts=tuple(data.get("concepts") or ()),
            )
        )
    return MathDataset.build(str(report.config.get("dataset", "")), "store", problems, concepts)


def eval_page(report: MathEvalReport, *, usage: Sequence[Mapping[str, Any]] = ()) -> MathPage:
    """The page of a math evaluation: its figures, then every test question."""
    cfg = report.config
    dataset = eval_dataset(report)
    facts = [
        ("run", report.run_id),
        ("status", report.status),
        ("dataset", f"{cfg.get('dataset')} · {len(dataset)} test questions"),
        ("dataset hash", str(cfg.get("dataset_hash", ""))[:12]),
        ("student", str(cfg.get("student"))),
        ("strategies", ", ".join(report.strategies)),
        ("examples per prompt", str(cfg.get("shots"))),
        ("skill labels", str(cfg.get("labels") or "the dataset's concept annotations")),
        ("test share", str(cfg.get("test_share"))),
        ("seed", str(cfg.get("seed"))),
        ("prompts", str(cfg.get("prompts"))),
    ]
    if cfg.get("verifier"):
        verifier = str(cfg["verifier"])
        if verifier == "consistency":
            verifier += f" of {cfg.get('samples')} samples"
        facts.append(("verifier", f"{verifier}, difficult below {cfg.get('difficulty_threshold')}"))
    if cfg.get("teacher"):
        facts.append(("teacher", str(cfg["teacher"])))
    warnings = [
        PageWarning("severe" if any(s in w for s in SEVERE) else "warn", "evaluation", w)
        for w in report.warnings
    ]
    return MathPage(
        title=f"Math evaluation: {cfg.get('dataset')}",
        lede=f"{cfg.get('student')} on {len(dataset)} test questions of {cfg.get('dataset')}, "
        f"under {len(report.strategies)} prompting strateg"
        f"{'y' if len(report.strategies) == 1 else 'ies'}",
        dataset=dataset,
        facts=facts,
        warnings=warnings,
        results={RESULT_KEY: report},
        usage=usage,
    )


def write_eval_page(
    report: MathEvalReport, path: str | Path, *, usage: Sequence[Mapping[str, Any]] = ()
) -> Path:
    """Write the page of a math evaluation to `path`; return the path."""
    return write_page(eval_page(report, usage=usage), path)


# --- accuracy ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StrategyRow:
    strategy: str
    n: int
    correct: int
    accuracy: str


@dataclass(frozen=True)
class ComparisonRow:
    strategy: str
    baseline: str
    n: int
    gain: str
    only_strategy: int
    only_baseline: int
    p: str
    p_holm: str
    significant: bool


@dataclass(frozen=True)
class AccuracyView:
    note: str
    accuracy_svg: Markup
    gains_svg: Markup | None
    strategies: list[StrategyRow]
    comparisons: list[ComparisonRow]
    meaningless: bool


@section_view(order=40)
def eval_accuracy(page: MathPage) -> Section | None:
    """Accuracy by strategy, gains over zero-shot, paired comparisons, per category; and
    every question's answers in the browser."""
    report: MathEvalReport | None = page.results.get(RESULT_KEY)
    if report is None:
        return None
    m = report.metrics
    accuracy_svg = interval_plot(
        [
            IntervalRow(s, m.overall[s].value, *m.overall[s].interval, note=f"n = {m.overall[s].n}")
            for s in m.strategies
        ],
        element_id="eval-accuracy-plot",
        title="Accuracy by strategy (95% Wilson interval)",
        x_label="share of test questions answered correctly",
    )
    baseline = m.strategies[0] if m.strategies else None
    gains = [c for c in m.comparisons if c.baseline == baseline]
    gains_svg = (
        interval_plot(
            [
                IntervalRow(
                    c.strategy,
                    c.gain,
                    c.low,
                    c.high,
                    flagged=c.significant,
                    note=f"n = {c.n}, Holm mid-p {_p(c.p_mid_holm)}",
                )
                for c in gains
            ],
            element_id="eval-gain-plot",
            title=f"Gain over {baseline} (paired bootstrap 95% interval)",
            x_label=f"accuracy minus the accuracy of {baseline}, same questions",
        )
        if gains
        else None
    )
    strategies = [
        StrategyRow(s, m.overall[s].n, m.overall[s].correct, _share(m.overall[s]))
        for s in m.strategies
    ]
    comparisons = [
        ComparisonRow(
            c.strategy, c.baseline, c.n,
            "—" if c.n == 0 else f"{c.gain:+.2f} [{c.low:+.2f}, {c.high:+.2f}]",
            c.only_strategy, c.only_baseline, f"{_p(c.p_exact)} / {_p(c.p_mid)}",
            _p(c.p_mid_holm), c.significant,
        )
        for c in m.comparisons
    ]  # fmt: skip
    categories = m.categories
    category_table = Table(
        (Column("category"), *(Column(s, numeric=True) for s in m.strategies)),
        [[c, *(_cell(m.by_category.get((c, s))) for s in m.strategies)] for c in categories],
        "no category",
    )
    note = (
        "Accuracy: the share of test questions whose extracted final answer math-verify "
        "finds equal to the gold answer. Paired comparisons use the questions both "
        "strategies answered: the gain's interval is a paired bootstrap over questions; "
        "McNemar's test reads the questions only one of them got right (exact and mid-p), "
        "Holm-adjusted over all comparisons; * (and orange in the plot) marks a Holm mid-p "
        "below 0.05."
    )
    panels, tags = _browser(report)
    return Section(
        "accuracy",
        "Accuracy",
        "sections/eval_accuracy.html.j2",
        view=AccuracyView(
            note,
            Markup(accuracy_svg),
            Markup(gains_svg) if gains_svg else None,
            strategies,
            comparisons,
            any(MEANINGLESS in w for w in report.warnings),
        ),
        tables={"eval-categories": category_table},
        panels=panels,
        tags=tags,
    )


def _cell(acc: Accuracy | None) -> tuple[str, str] | str:
    if acc is None or acc.n == 0:
        return "—"
    return (_share(acc), f"{acc.correct} of {acc.n} right")


# --- skills -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillsView:
    svg: Markup | None
    note: str


@section_view(order=50)
def eval_skills(page: MathPage) -> Section | None:
    """Accuracy per skill and strategy: a heatmap and a table."""
    report: MathEvalReport | None = page.results.get(RESULT_KEY)
    if report is None:
        return None
    m = report.metrics
    skills = m.skills
    values = {(k, s): a.value for (k, s), a in m.by_skill.items()}
    counts = {(k, s): a.n for (k, s), a in m.by_skill.items()}
    svg = (
        Markup(
            heatmap(
                skills,
                m.strategies,
                values,
                element_id="eval-skill-heatmap",
                title="Accuracy per skill and strategy",
                counts=counts,
                measure="accuracy",
                unit="question(s)",
            )
        )
        if skills
        else None
    )
    table = Table(
        (
            Column("skill"),
            Column("questions", numeric=True),
            *(Column(s, numeric=True) for s in m.strategies),
        ),
        [
            [
                k,
                str(max((counts.get((k, s), 0) for s in m.strategies), default=0)),
                *(_cell(m.by_skill.get((k, s))) for s in m.strategies),
            ]
            for k in skills
        ],
        "no test question has a skill label",
    )
    source = report.config.get("labels") or "the dataset's concept annotations"
    note = (
        f"Skills from {source}; a question with several skills counts for each. Cells are "
        "shares of a skill's test questions answered right (hover for the count); with few "
        "questions per skill the intervals in the table are wide."
    )
    return Section(
        "skill-accuracy",
        "Per skill",
        "sections/eval_skills.html.j2",
        view=SkillsView(svg, note),
        tables={"eval-skills": table},
    )


# --- the question browser ---------------------------------------------------------------------


def _browser(
    report: MathEvalReport,
) -> tuple[dict[str, list[Panel]], dict[str, list[Tag]]]:
    """One panel per strategy for every test question, and a right/wrong tag for each."""
    panels: dict[str, list[Panel]] = {}
    tags: dict[str, list[Tag]] = {}
    for answer in report.answers:
        qid = answer["question_id"]
        panels.setdefault(qid, []).append(_panel(answer, report.problems))
        right = bool(answer["correct"])
        tags.setdefault(qid, []).append(
            Tag(f"{answer['strategy']} {'right' if right else 'wrong'}", "good" if right else "bad")
        )
        difficulty = answer.get("difficulty") or {}
        if difficulty.get("difficult") and not any(t.text == "difficult" for t in tags[qid]):
            tags[qid].append(Tag("difficult", "warn"))
    return panels, tags


def _panel(answer: Mapping[str, Any], problems: Mapping[str, Mapping[str, Any]]) -> Panel:
    right = bool(answer["correct"])
    facts: list[tuple[str, str]] = [
        ("verdict", "right" if right else "wrong"),
        ("extracted answer", answer.get("extracted") or "(none found)"),
    ]
    if not right and answer.get("reason"):
        facts.append(("why", str(answer["reason"])))
    difficulty = answer.get("difficulty")
    if difficulty:
        facts.append(("verifier", _difficulty(difficulty)))
        facts.append(
            (
                "pass",
                "2: asked again with examples"
                if answer.get("pass") == 2
                else "1: kept the zero-shot answer",
            )
        )
    if answer.get("choice_method"):
        facts.append(
            (
                "skill the student named",
                f"{answer.get('chosen_skill') or '(none from the list)'} "
                f"(read by {answer['choice_method']})",
            )
        )
    teacher = answer.get("teacher")
    if teacher:
        facts.append(("skills the teacher found missing", ", ".join(teacher["skills"]) or "(none)"))
    if answer.get("shown_skills"):
        facts.append(("examples chosen for", ", ".join(answer["shown_skills"])))
    examples = list(answer.get("examples") or ())
    facts.append(("examples shown", ", ".join(examples) or "none"))
    if answer.get("note"):
        facts.append(("note", str(answer["note"])))
    texts = [("answer", str(answer.get("response", "")))]
    if examples:
        texts.append(("the examples shown", _examples_text(examples, problems)))
    title = f"{answer['strategy']}: {'right' if right else 'wrong'}"
    return Panel(title, tuple(facts), tuple(texts))


def _difficulty(difficulty: Mapping[str, Any]) -> str:
    verdict = "difficult" if difficulty.get("difficult") else "easy"
    score = difficulty.get("score")
    method = difficulty.get("method", "")
    text = f"{verdict} ({method}"
    if isinstance(score, (int, float)):
        text += f", score {score:.2f}"
    if difficulty.get("answers"):
        shown = ", ".join(a if a is not None else "(none)" for a in difficulty["answers"])
        text += f"; sample answers: {shown}"
    return text + ")"


def _examples_text(examples: Sequence[str], problems: Mapping[str, Mapping[str, Any]]) -> str:
    blocks = []
    for eid in examples:
        data = problems.get(eid, {})
        blocks.append(
            f"{eid}: {data.get('question', '(not stored)')}\nanswer: {data.get('answer', '')}"
        )
    return "\n\n".join(blocks)
