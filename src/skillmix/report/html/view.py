"""The page as plain data: what each section of the HTML report shows, already worded and
formatted, for the templates to lay out.

Built from the reports and the store alone. Every string here is plain text (the templates
escape it); the only markup is the SVG charts from `skillmix.report.svg`, which escapes
every label itself. Numbers are formatted here, so the templates hold no arithmetic.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup

from skillmix.config import describe_decoding
from skillmix.prompts.variants import DIMENSIONS_BY_NAME
from skillmix.report import explain
from skillmix.report.build import Report
from skillmix.report.compare import Leaderboard, leaderboard_from_reports
from skillmix.report.details import item_details
from skillmix.report.names import display_model, short_model
from skillmix.report.svg import IntervalRow, Point, Series, heatmap, interval_plot, line_chart
from skillmix.scoring.audit import Audit, audit_runs
from skillmix.scoring.judges import COMBINED_JUDGE, combined_scores
from skillmix.scoring.metrics import METRICS, Interval
from skillmix.scoring.results import RunScores, breakdown
from skillmix.scoring.skills import (
    CompositionLaw,
    DifficultyFit,
    PairInteractions,
    SkillDifficulty,
)
from skillmix.scoring.spread import SpreadReport, SpreadRow
from skillmix.scoring.stats import Estimate
from skillmix.store import RunRow, Store

METRIC_NAMES = {
    "full_marks": "Full marks",
    "all_skills": "All skills",
    "skill_fraction": "Skill fraction",
}
AGGREGATION_NAMES = {
    "max": "maximum over generation rounds per metric (the published rule)",
    "mean": "mean over generation rounds",
    "best": "single best generation per item",
}


# --- pieces every section uses ---------------------------------------------------------------


@dataclass(frozen=True)
class ModelName:
    """A model as a table names it: `short` (provider:model) in the cell, `full` (with
    its endpoint, no scheme) in the tooltip and in data attributes."""

    short: str
    full: str


def model_name(spec: str) -> ModelName:
    return ModelName(short_model(spec), display_model(spec))


@dataclass(frozen=True)
class IntervalCell:
    """A mean with its interval, formatted, and the width of its bar in percent."""

    mean: str
    low: str
    high: str
    exact_mean: str  # for data-mean: four decimals
    bar_width: str


def interval_cell(iv: Interval) -> IntervalCell | None:
    """None where no item was scored (the cell shows a dash)."""
    if iv.n == 0:
        return None
    width = max(0.0, min(1.0, iv.mean)) * 100
    return IntervalCell(
        f"{iv.mean:.2f}", f"{iv.low:.2f}", f"{iv.high:.2f}", f"{iv.mean:.4f}", f"{width:.0f}"
    )


def _fmt(value: float, digits: int = 2) -> str:
    return "—" if value != value else f"{value:.{digits}f}"


def _date(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


# --- the runs as the page shows them ---------------------------------------------------------


@dataclass
class _Run:
    """One run as the page shows it: its report, label and headline judge."""

    report: Report
    label: str
    judge: str  # the judge the plots and heatmaps use: "combined" with several judges
    scores: RunScores  # scored by the headline judge (combined items when several)

    @property
    def run(self) -> RunRow:
        return self.report.scores.run


def _breakdown(r: _Run, by: str) -> list[dict[str, Any]]:
    """The run's breakdown for its headline judge: the report's own rows of that judge, or
    computed for the combined judge (which the report does not break down)."""
    if r.judge == COMBINED_JUDGE:
        return breakdown(r.scores, by)
    return [row for row in r.report.breakdowns[by] if row["judge"] == r.judge]


def _runs(reports: Sequence[Report]) -> list[_Run]:
    runs = []
    for rep in reports:
        scores = rep.scores
        judge = scores.run["config"]["judges"][0]
        combined = combined_scores(scores)
        if combined:
            judge = COMBINED_JUDGE
            scores = dataclasses.replace(scores, items=combined)
        else:
            own = [r for r in scores.items if r.judge == judge]
            scores = dataclasses.replace(scores, items=own)
        runs.append(_Run(rep, short_model(rep.config["student"]), judge, scores))
    # A model is named by its student; by its judge too where those differ; and by its
    # run id where that is still not enough.
    if len({r.judge for r in runs}) > 1:
        for r in runs:
            r.label = f"{r.label} · judge {short_model(r.judge)}"
    labels = Counter(r.label for r in runs)
    for r in runs:
        if labels[r.label] > 1:
            r.label = f"{r.label} · {r.run['id']}"
    return runs


# --- header and runs -------------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    students: str
    judges: str
    facts: list[tuple[str, str]]


@dataclass(frozen=True)
class RunEntry:
    run_id: str
    label: str
    judges: list[ModelName]
    design: str
    catalog: str
    templates: str
    status: str
    created: str


def _header(runs: Sequence[_Run]) -> Header:
    students = sorted({display_model(r.run["config"]["student"]) for r in runs})
    judges = sorted({display_model(j) for r in runs for j in r.run["config"]["judges"]})
    catalogs = sorted(
        {
            f"{r.report.scores.catalog.name} {r.report.scores.catalog.version} "
            f"({r.report.catalog_hash[:12]})".replace("  ", " ")
            for r in runs
        }
    )
    aggregation = runs[0].report.aggregation
    facts = [
        ("runs", str(len(runs))),
        ("students", ", ".join(students)),
        ("judges", ", ".join(judges)),
        ("catalog", "; ".join(catalogs)),
        ("templates", ", ".join(sorted({r.report.template_version for r in runs}))),
        ("protocol", ", ".join(sorted({r.report.protocol for r in runs}))),
        ("aggregation", f"{aggregation}: {AGGREGATION_NAMES.get(aggregation, aggregation)}"),
        ("generated", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
    ]
    return Header(", ".join(students), ", ".join(judges), facts)


def _design(run: _Run) -> str:
    """How a run was made, in one line."""
    cfg = run.run["config"]
    penalty = "on" if cfg.get("naming_penalty", True) else "off"
    judges = " · ".join(
        f"judge {display_model(j)}: {describe_decoding(d)}"
        for j, d in run.report.decoding["judges"].items()
    )
    return (
        f"k = {','.join(map(str, cfg['k']))} · {cfg['items']} items per k · "
        f"{cfg['generation_rounds']} generation × {cfg['grading_rounds']} grading rounds · "
        f"seed {cfg['seed']} · naming penalty {penalty} · protocol {run.report.protocol} · "
        f"student {describe_decoding(run.report.decoding['student'])} · {judges}"
    )


def _run_entries(runs: Sequence[_Run]) -> list[RunEntry]:
    return [
        RunEntry(
            run_id=r.run["id"],
            label=r.label,
            judges=[model_name(j) for j in r.run["config"]["judges"]],
            design=_design(r),
            catalog=r.report.catalog_hash[:12],
            templates=r.report.template_version,
            status=r.run["status"],
            created=_date(r.run["created"]),
        )
        for r in runs
    ]


# --- warnings and leaderboard ----------------------------------------------------------------


@dataclass(frozen=True)
class PageWarning:
    severity: str  # "severe" or "warn"
    scope: str  # what it is about: a run's label, or "runs not comparable"
    text: str


def _warnings(runs: Sequence[_Run], board: Leaderboard) -> list[PageWarning]:
    warnings = [PageWarning("severe", "runs not comparable", p) for p in board.problems]
    for r in runs:
        for text in r.report.warnings:
            severe = "cannot grade reliably" in text or "incomplete" in text
            warnings.append(PageWarning("severe" if severe else "warn", r.label, text))
        status = r.run["status"]
        if status != "done":
            todo = (
                "another process is running it now"
                if status == "running"
                else "re-run the same command to finish it"
            )
            warnings.append(
                PageWarning(
                    "severe",
                    r.label,
                    f"run {r.run['id']} is {status}, not done: its figures cover only what "
                    f"was answered so far; {todo}",
                )
            )
    return warnings


@dataclass(frozen=True)
class LeaderboardRow:
    run_id: str
    k: int
    student: ModelName
    judge: ModelName
    differs_in: str  # the settings that make it incomparable ("" when comparable)
    metrics: list[IntervalCell | None]
    scored: int
    items: int
    status: str
    catalog: str
    templates: str


@dataclass(frozen=True)
class LeaderboardView:
    comparable: bool  # every run measured the same way
    rows: list[LeaderboardRow]


def _leaderboard(board: Leaderboard) -> LeaderboardView:
    rows = [
        LeaderboardRow(
            run_id=r.run_id,
            k=r.k,
            student=model_name(r.student),
            judge=model_name(r.judge),
            differs_in=", ".join(r.differs_in),
            metrics=[interval_cell(r.metrics[m]) for m in METRICS],
            scored=r.scored,
            items=r.items,
            status=r.status,
            catalog=r.catalog_hash[:12],
            templates=r.template_version,
        )
        for r in board.rows
    ]
    return LeaderboardView(not board.problems, rows)


# --- reading the results ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """What the figures mean (the wording of docs/protocol.md, from `explain`), and the
    published reference figures."""

    aggregation: str
    how: str  # how this aggregation combines generation rounds
    metrics: list[tuple[str, str]]  # (name, definition)
    reference_ks: list[int]
    reference_rows: list[tuple[str, list[str]]]  # (student, one cell per k)
    criteria: str = explain.CRITERIA
    contradiction: str = explain.CONTRADICTION
    vote: str = explain.VOTE
    mean_over_items: str = explain.MEAN_OVER_ITEMS
    unscored: str = explain.UNSCORED
    not_graded: str = explain.NOT_GRADED
    reference_setting: str = explain.REFERENCE_SETTING
    citation: str = explain.CITATION
    reference_caveat: str = explain.REFERENCE_CAVEAT
    protocol_doc: str = explain.PROTOCOL_DOC


def _reading(runs: Sequence[_Run]) -> Reading:
    aggregation = runs[0].report.aggregation
    return Reading(
        aggregation=aggregation,
        how=explain.AGGREGATION_SENTENCES.get(aggregation, aggregation),
        metrics=list(explain.METRIC_SENTENCES.values()),
        reference_ks=list(explain.REFERENCE_KS),
        reference_rows=[
            (row.student, [explain.reference_cell(row, k) for k in explain.REFERENCE_KS])
            for row in explain.REFERENCE_FIGURES
        ],
    )


# --- plots, per-run metrics, heatmaps, topics ------------------------------------------------


@dataclass(frozen=True)
class Plots:
    charts: list[tuple[str, Markup]]  # (metric, its SVG line chart)
    which_judge: str


def _plots(runs: Sequence[_Run]) -> Plots:
    charts = []
    for metric, name in METRIC_NAMES.items():
        series = []
        for r in runs:
            rows = [row for row in r.report.rows if row.judge == r.judge]
            intervals = [(row.k, row.metrics[metric]) for row in rows if row.metrics[metric].n]
            points = [Point(k, iv.mean, iv.low, iv.high, iv.n) for k, iv in intervals]
            series.append(Series(r.label, points))
        chart = line_chart(series, element_id=f"plot-{metric}", title=f"{name} by k", y_label=name)
        charts.append((metric, Markup(chart)))  # svg.py escapes every label
    judges = sorted({display_model(r.judge) for r in runs})
    if len(judges) > 1:
        which = "Each line uses the judge named in its legend"
    else:
        which = f"Judge: {judges[0]}"
    if COMBINED_JUDGE in judges:
        which += " (“combined” is the judges' majority verdict)"
    return Plots(charts, which)


@dataclass(frozen=True)
class MetricsRow:
    judge: ModelName
    k: int
    scored: int
    items: int
    metrics: list[IntervalCell | None]
    penalized: int


@dataclass(frozen=True)
class RunMetrics:
    run_id: str
    label: str
    rows: list[MetricsRow]
    generation_rounds: int
    grading_rounds: int
    naming_penalty: str  # "on" or "off"
    unparsed_rounds: int
    grade_rounds: int


def _run_metrics(runs: Sequence[_Run]) -> list[RunMetrics]:
    blocks = []
    for r in runs:
        cfg = r.run["config"]
        rows = [
            MetricsRow(
                model_name(row.judge),
                row.k,
                row.scored,
                row.items,
                [interval_cell(row.metrics[m]) for m in METRICS],
                row.penalized,
            )
            for row in r.report.rows
        ]
        blocks.append(
            RunMetrics(
                run_id=r.run["id"],
                label=r.label,
                rows=rows,
                generation_rounds=cfg["generation_rounds"],
                grading_rounds=cfg["grading_rounds"],
                naming_penalty="on" if cfg.get("naming_penalty", True) else "off",
                unparsed_rounds=r.report.scores.unparsed_rounds,
                grade_rounds=r.report.scores.grade_rounds,
            )
        )
    return blocks


@dataclass(frozen=True)
class Heatmap:
    by: str  # "skill" or "category"
    svg: Markup | None  # None: no scored items


def _heatmaps(runs: Sequence[_Run]) -> list[Heatmap]:
    columns = [r.label for r in runs]
    maps = []
    for by in ("skill", "category"):
        values: dict[tuple[str, str], float | None] = {}
        counts: dict[tuple[str, str], int] = {}
        groups: dict[str, str] = {}
        order: dict[str, tuple[str, str]] = {}
        for r in runs:
            catalog = r.report.scores.catalog
            for row in _breakdown(r, by):
                if by == "skill":
                    skill = catalog.skill(row["skill"])
                    label, group = skill.name, skill.category.replace("_", " ")
                else:
                    label, group = row["category"].replace("_", " "), ""
                groups[label] = group
                order[label] = (group, label.lower())
                values[(label, r.label)] = row["skill_success"]
                counts[(label, r.label)] = row["items"]
        rows = sorted(order, key=lambda label: order[label])
        title = "Success per skill" if by == "skill" else "Success per skill category"
        svg = None
        if rows:
            svg = Markup(  # svg.py escapes every label
                heatmap(
                    rows,
                    columns,
                    values,
                    element_id=f"heatmap-{by}",
                    title=title,
                    counts=counts,
                    row_groups=groups,
                )
            )
        maps.append(Heatmap(by, svg))
    return maps


@dataclass(frozen=True)
class TopicCell:
    items: int
    values: list[str]  # full marks, all skills, skill fraction


@dataclass(frozen=True)
class Topics:
    columns: list[str]  # one label per run
    rows: list[tuple[str, list[TopicCell | None]]]  # (topic, one cell per run)


def _topics(runs: Sequence[_Run]) -> Topics:
    per_topic: dict[str, dict[str, dict[str, Any]]] = {}
    for r in runs:
        catalog = r.report.scores.catalog
        for row in _breakdown(r, "topic"):
            name = catalog.topic(row["topic"]).name
            per_topic.setdefault(name, {})[r.label] = row
    rows = []
    for topic in sorted(per_topic, key=str.lower):
        cells: list[TopicCell | None] = []
        for r in runs:
            found = per_topic[topic].get(r.label)
            if found is None:
                cells.append(None)
            else:
                cells.append(TopicCell(found["items"], [f"{found[m]:.2f}" for m in METRICS]))
        rows.append((topic, cells))
    return Topics([r.label for r in runs], rows)


# --- skill analytics -------------------------------------------------------------------------

HARDEST_SHOWN = 5  # hardest and easiest skills listed per judge


@dataclass(frozen=True)
class SkillDifficultyRow:
    name: str
    category: str
    difficulty: str  # b [low, high]
    success: str
    texts: int
    sparse: bool  # too few texts: mostly the prior


@dataclass(frozen=True)
class CompositionViewRow:
    k: int
    texts: int
    observed: str
    predicted: str
    ratio: str
    power_ratio: str


@dataclass(frozen=True)
class PairRow:
    skills: str
    texts: int
    both: int
    lift: str
    q: str
    direction: str


@dataclass(frozen=True)
class JudgeSkills:
    """What one judge's verdicts on one run say about its skills."""

    judge: ModelName
    ability: str
    per_extra_skill: str  # "" when the run has one k
    categories_plot: Markup
    hardest: list[SkillDifficultyRow]
    easiest: list[SkillDifficultyRow]
    skills_total: int
    composition_plot: Markup | None  # None: a single k
    composition: list[CompositionViewRow]
    predicted_from: str
    pairs: list[PairRow]  # the flagged pairs
    pairs_note: str


@dataclass(frozen=True)
class NoveltyViewRow:
    k: int
    items: int
    distinct: int
    space: str
    share: str


@dataclass(frozen=True)
class RunSkills:
    label: str
    level: str  # "95%"
    judges: list[JudgeSkills]
    novelty: list[NoveltyViewRow]
    novelty_note: str
    limits: list[str]


def _iv(e: Estimate | None, digits: int = 2) -> str:
    if e is None or e.value != e.value:
        return "—"
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _skill_rows(skills: Sequence[SkillDifficulty]) -> list[SkillDifficultyRow]:
    return [
        SkillDifficultyRow(
            s.name,
            s.category.replace("_", " "),
            _iv(s.difficulty),
            f"{s.success:.2f}",
            s.difficulty.n,
            s.sparse,
        )
        for s in skills
    ]


def _composition_plot(law: CompositionLaw, element_id: str) -> Markup | None:
    """All skills met by k: observed, independent skills, and observed(1)^k."""
    if len(law.rows) < 2:
        return None
    base = next((r.observed for r in law.rows if r.k == 1), None)
    observed = [
        Point(r.k, r.observed.value, r.observed.low, r.observed.high, r.items) for r in law.rows
    ]
    predicted = [
        Point(r.k, r.predicted.value, r.predicted.low, r.predicted.high, r.items)
        for r in law.rows
        if r.predicted is not None
    ]
    series = [Series("observed", observed), Series("independent skills", predicted)]
    if base is not None:
        power = [
            Point(r.k, base.value**r.k, base.low**r.k, base.high**r.k, r.items)
            for r in law.rows
            if r.k > 1
        ]
        series.append(Series("observed(1)^k", power))
    chart = line_chart(
        series, element_id=element_id, title="All skills met by k", y_label="all skills met"
    )
    return Markup(chart)  # svg.py escapes every label


def _judge_skills(
    fit: DifficultyFit | None,
    law: CompositionLaw | None,
    pairs: PairInteractions | None,
    judge: str,
    element_id: str,
) -> JudgeSkills:
    skills = fit.skills if fit else []
    categories = fit.categories if fit else []
    rows = [
        IntervalRow(
            f"{c.category.replace('_', ' ')} ({c.skills})",
            c.difficulty.value,
            c.difficulty.low,
            c.difficulty.high,
            note=f"success {c.success:.0%} over {c.difficulty.n} graded (text, skill) pairs",
        )
        for c in categories
    ]
    categories_plot = Markup(  # svg.py escapes every label
        interval_plot(
            rows,
            element_id=f"{element_id}-categories",
            title="Difficulty by category (skills graded)",
            x_label="difficulty b in logits (0 = average skill; higher is harder)",
        )
    )
    shown = min(HARDEST_SHOWN, len(skills) // 2)
    flagged = pairs.flagged if pairs else []
    pairs_note = ""
    if pairs is not None:
        pairs_note = (
            f"{len(pairs.tested)} pair(s) graded together on at least {pairs.min_count} texts "
            f"were tested ({pairs.untested} had fewer); {len(flagged)} differ from independence "
            f"at a {pairs.fdr:.0%} false discovery rate (Benjamini-Hochberg)."
        )
    return JudgeSkills(
        judge=model_name(judge),
        ability=_iv(fit.students[0].ability) if fit else "—",
        per_extra_skill=_iv(fit.per_extra_skill) if fit and fit.per_extra_skill else "",
        categories_plot=categories_plot,
        hardest=_skill_rows(skills[:shown]),
        easiest=_skill_rows(list(reversed(skills[len(skills) - shown :])) if shown else []),
        skills_total=len(skills),
        composition_plot=_composition_plot(law, f"{element_id}-composition") if law else None,
        composition=[
            CompositionViewRow(
                r.k,
                r.observed.n,
                _iv(r.observed),
                _iv(r.predicted),
                _iv(r.ratio),
                _iv(r.power_ratio),
            )
            for r in (law.rows if law else [])
        ],
        predicted_from=law.predicted_from if law else "",
        pairs=[
            PairRow(" + ".join(p.names), p.texts, p.both, _iv(p.lift), f"{p.q:.3g}", p.direction)
            for p in flagged
        ],
        pairs_note=pairs_note,
    )


def _skill_analytics(runs: Sequence[_Run]) -> list[RunSkills]:
    """Per run, what `skillmix analyze` shows: the analysis each report already holds."""
    blocks = []
    for index, r in enumerate(runs):
        analysis = r.report.skill_analysis
        if analysis is None:
            continue
        judges = []
        for j, judge in enumerate(r.run["config"]["judges"]):
            fit = next((f for f in analysis.difficulty if f.judge == judge), None)
            law = next((c for c in analysis.composition if c.judge == judge), None)
            pairs = next((p for p in analysis.pairs if p.judge == judge), None)
            if fit is None and law is None:
                continue
            judges.append(_judge_skills(fit, law, pairs, judge, f"skills-{index}-{j}"))
        novelty = analysis.novelty[0] if analysis.novelty else None
        rows = [
            NoveltyViewRow(n.k, n.items, n.distinct, f"{n.space:,}", f"{n.share:.3g}")
            for n in (novelty.rows if novelty else [])
        ]
        note = ""
        if novelty is not None:
            note = (
                f"Out of C(N,k)·T distinct items (N = {novelty.skills} skills, "
                f"T = {novelty.topics} topics of catalog {novelty.catalog})."
            )
        blocks.append(
            RunSkills(
                label=r.label,
                level=f"{analysis.level:.0%}",
                judges=judges,
                novelty=rows,
                novelty_note=note,
                limits=[_display_names(note, r.run["config"]) for note in analysis.limits],
            )
        )
    return blocks


def _display_names(text: str, config: dict[str, Any]) -> str:
    """`text` with the run's model specs as the page shows them (endpoints without scheme)."""
    for spec in sorted({config["student"], *config["judges"]}, key=len, reverse=True):
        text = text.replace(spec, display_model(spec))
    return text


# --- agreement and usage ---------------------------------------------------------------------


@dataclass(frozen=True)
class JudgesAgreementRow:
    criterion: str
    judges: list[ModelName]
    statistic: str
    value: str
    raw_agreement: str  # percent
    units: int


@dataclass(frozen=True)
class HumanAgreementRow:
    judge: ModelName
    criterion: str
    units: int
    agreement: str  # percent
    kappa: str


@dataclass(frozen=True)
class AgreementBlock:
    label: str
    judges: list[JudgesAgreementRow]  # the run's judges with each other
    humans: list[HumanAgreementRow]  # its judges against the human reviewers


def _agreement(runs: Sequence[_Run]) -> list[AgreementBlock]:
    """One block per run with anything to show (several judges, or human verdicts)."""
    blocks = []
    for r in runs:
        judges = [
            JudgesAgreementRow(
                a.criterion,
                [model_name(j) for j in a.judges],
                a.statistic.replace("_", " "),
                _fmt(a.value),
                _fmt(a.raw_agreement * 100, 0),
                a.units,
            )
            for a in r.report.agreement
        ]
        humans = [
            HumanAgreementRow(
                model_name(h["judge"]),
                h["criterion"],
                h["units"],
                _fmt(h["agreement"] * 100, 0),
                _fmt(h["kappa"]),
            )
            for h in r.report.human_agreement
        ]
        if judges or humans:
            blocks.append(AgreementBlock(r.label, judges, humans))
    return blocks


@dataclass(frozen=True)
class UsageRow:
    label: str
    role: str
    model: str
    calls: str
    paid: str
    prompt_tokens: str
    completion_tokens: str
    cost: str


@dataclass(frozen=True)
class Usage:
    rows: list[UsageRow]
    note: str


def _paid(usage: dict[str, Any]) -> str:
    if not usage["sent"]:
        return "reused from the store"
    return "paid" if usage.get("paid", True) else "sent to a local model"


def _usage(runs: Sequence[_Run]) -> Usage:
    rows = []
    total = 0.0
    unpriced = False
    for r in runs:
        for u in r.report.usage:
            cost = u.get("cost_usd")
            if not u["sent"]:
                shown = "0 (reused)"
            elif cost is None:
                shown = "unpriced"
                unpriced = True
            else:
                shown = f"{cost:.4f}"
                total += cost
            rows.append(
                UsageRow(
                    label=r.label,
                    role=u["role"],
                    model=f"{u['provider']}:{u['model']}",
                    calls=f"{u['calls']:,}",
                    paid=_paid(u),
                    prompt_tokens=f"{u['prompt_tokens'] or 0:,}",
                    completion_tokens=f"{u['completion_tokens'] or 0:,}",
                    cost=shown,
                )
            )
    note = f"Total paid: ${total:.4f}" + (" plus calls without a known price." if unpriced else ".")
    return Usage(rows, note)


# --- audit -----------------------------------------------------------------------------------

AUDIT_CHECKS = {
    "consistency": ("Consistency", "share of verdict pairs that flip between grading rounds"),
    "judge_range": ("Range across judges", "highest minus lowest judge's mean"),
    "leniency": ("Leniency against humans", "judge minus human pass rate"),
    "self_preference": ("Self-preference", "own-family minus other judges, own vs other texts"),
    "length_bias": ("Length bias", "log-odds of a verdict per 10 words"),
    "rubric_order": ("Rubric-order bias", "log-odds of a verdict, shown last vs first"),
}


@dataclass(frozen=True)
class FindingRow:
    check: str
    judge: ModelName | None  # None: across judges
    criterion: str
    estimate: str
    interval: str
    n: str
    p_adjusted: str
    test: str
    verdict: str
    flagged: bool


@dataclass(frozen=True)
class RangeRow:
    metric: str
    k: int
    range: str
    by_judge: list[tuple[ModelName, str]]
    agreement: str  # "kappa 0.41", "alpha 0.32" or "—"


@dataclass(frozen=True)
class AuditView:
    """The audit of the page's runs (one audit over all of them: self-preference needs
    several students), as its section shows it."""

    runs: str
    lead: str
    flagged: int
    findings: list[FindingRow]
    plots: list[tuple[str, Markup]]  # (check, its interval plot)
    ranges: list[RangeRow]
    cannot_tell: list[str]


def _signed(value: float) -> str:
    return "—" if value != value else f"{value:+.2f}"


def _p_value(value: float) -> str:
    if value != value:
        return "not tested"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _audit(store: Store, runs: Sequence[_Run]) -> AuditView:
    """The audit each report already holds for a page of one run; for several runs, one
    audit over all of them. Models are named as the rest of the page names them."""
    own = runs[0].report.audit if len(runs) == 1 else None
    audit: Audit = own if own is not None else audit_runs(store, [r.run["id"] for r in runs])
    specs = {m for r in runs for m in (r.run["config"]["student"], *r.run["config"]["judges"])}

    def named(text: str) -> str:
        for spec in sorted(specs, key=len, reverse=True):
            text = text.replace(spec, display_model(spec))
        return text

    findings = [
        FindingRow(
            check=AUDIT_CHECKS.get(f.check, (f.check, ""))[0],
            judge=model_name(f.judge) if f.judge else None,
            criterion=METRIC_NAMES.get(f.criterion, f.criterion),
            estimate=_signed(f.estimate.value),
            interval=f"[{_signed(f.estimate.low)}, {_signed(f.estimate.high)}]",
            n=f"{f.estimate.n:,} {f.n_label}",
            p_adjusted=_p_value(f.p_adjusted),
            test=named(f.test),
            verdict=named(f.verdict),
            flagged=f.flagged,
        )
        for f in audit.findings
    ]
    plots = []
    for check, (name, unit) in AUDIT_CHECKS.items():
        rows = [
            IntervalRow(
                " · ".join(
                    part
                    for part in (
                        short_model(f.judge) if f.judge else "",
                        METRIC_NAMES.get(f.criterion, f.criterion),
                    )
                    if part
                ),
                f.estimate.value,
                f.estimate.low,
                f.estimate.high,
                flagged=f.flagged,
                note=named(f.verdict),
            )
            for f in audit.findings
            if f.check == check
        ]
        if rows:
            reference = next(f.null for f in audit.findings if f.check == check)
            chart = interval_plot(
                rows, element_id=f"audit-{check}", title=name, x_label=unit, reference=reference
            )
            plots.append((check, Markup(chart)))  # svg.py escapes every label
    ranges = [
        RangeRow(
            metric=METRIC_NAMES.get(r.metric, r.metric),
            k=r.k,
            range=f"{_fmt(r.low)} – {_fmt(r.high)}",
            by_judge=[(model_name(j), _fmt(v)) for j, v in r.by_judge.items()],
            agreement=(
                f"kappa {_fmt(r.kappa)}"
                if r.kappa == r.kappa
                else f"alpha {_fmt(r.alpha)}"
                if r.alpha == r.alpha
                else "—"
            ),
        )
        for r in audit.ranges
    ]
    return AuditView(
        runs=", ".join(audit.run_ids),
        lead=named(audit.lead),
        flagged=sum(f.flagged for f in audit.findings),
        findings=findings,
        plots=plots,
        ranges=ranges,
        cannot_tell=[named(sentence) for sentence in audit.cannot_tell],
    )


# --- spread across format variants -----------------------------------------------------------


@dataclass(frozen=True)
class SpreadVariantRow:
    index: int
    choices: list[str]  # its choices that differ from the base set ("base" for none)
    run_id: str
    current: bool  # a run this page reports
    student: str  # student calls sent and reused
    unparsed: str  # grading rounds whose verdict could not be read
    status: str


@dataclass(frozen=True)
class SpreadMetricRow:
    judge: ModelName
    k: int
    metric: str
    items: int
    values: list[str]  # one per column of the block (a dash where a variant has none)
    spread: str
    interval: str
    noise: str  # the spread grading noise alone gives
    p: str  # permutation test of "the format does not matter"
    moves_most: str  # the choice that moves it most, in words ("" when none varied)


@dataclass(frozen=True)
class SpreadEffectRow:
    judge: ModelName
    k: int
    metric: str
    dimension: str
    affects: str
    options: str  # each option's mean over the variants that took it
    effect: str  # highest minus lowest option
    interval: str
    p_adjusted: str
    moves: bool
    note: str  # adjusted for / not separable from


@dataclass(frozen=True)
class SpreadBlock:
    """One spread (the runs of one `skillmix spread`) that a run of the page belongs to."""

    label: str
    group: str
    summary: str
    sharing: str
    columns: list[int]  # the variants' indices
    variants: list[SpreadVariantRow]
    metrics: list[SpreadMetricRow]
    effects: list[SpreadEffectRow]
    plot: Markup | None
    notes: list[str]


def _spread(runs: Sequence[_Run]) -> list[SpreadBlock]:
    """A block per spread that a run of the page belongs to (once, however many of its
    runs the page shows)."""
    groups: dict[str, list[_Run]] = {}
    for r in runs:
        if r.report.spread is not None:
            groups.setdefault(r.report.spread.group, []).append(r)
    return [_spread_block(members) for members in groups.values()]


def _spread_block(members: Sequence[_Run]) -> SpreadBlock:
    spread = members[0].report.spread
    assert spread is not None
    shown = {r.run["id"] for r in members}
    columns = [v.index for v in spread.variants]
    variants = [
        SpreadVariantRow(
            index=v.index,
            choices=v.variant.split(","),
            run_id=v.run_id,
            current=v.run_id in shown,
            student=f"{v.student_sent:,} sent · {v.student_reused:,} reused",
            unparsed=f"{v.unparsed_rounds:,} of {v.grade_rounds:,}",
            status=v.status,
        )
        for v in spread.variants
    ]
    metrics = []
    effects = []
    for row in spread.rows:
        by_index = dict(zip(row.indices, row.values, strict=True))
        judge = model_name(row.judge)
        metric = METRIC_NAMES.get(row.metric, row.metric)
        top = row.top
        metrics.append(
            SpreadMetricRow(
                judge=judge,
                k=row.k,
                metric=metric,
                items=row.items,
                values=[_fmt(by_index[i]) if i in by_index else "—" for i in columns],
                spread=_fmt(row.spread.value),
                interval=f"[{_fmt(row.spread.low)}, {_fmt(row.spread.high)}]",
                noise=_fmt(row.noise),
                p=_p_value(row.spread.p),
                moves_most=top.describe() if top else "",
            )
        )
        for e in row.effects:
            notes = []
            if e.adjusted_for:
                notes.append(f"after {', '.join(e.adjusted_for)}")
            if e.aliased_with:
                notes.append(f"not separable from {', '.join(e.aliased_with)}")
            elif e.overlaps_with:
                notes.append(f"hard to separate from {', '.join(e.overlaps_with)}")
            effects.append(
                SpreadEffectRow(
                    judge=judge,
                    k=row.k,
                    metric=metric,
                    dimension=e.dimension,
                    affects=e.affects,
                    options=" · ".join(
                        f"{o} {_fmt(m)} ({e.option_variants[o]})" for o, m in e.option_means.items()
                    ),
                    effect=_signed(e.effect.value),
                    interval=f"[{_signed(e.effect.low)}, {_signed(e.effect.high)}]",
                    p_adjusted=_p_value(e.p_adjusted),
                    moves=e.moves,
                    note="; ".join(notes),
                )
            )
    headline = max(spread.rows, key=lambda r: r.spread.value, default=None)
    return SpreadBlock(
        label=", ".join(r.label for r in members),
        group=spread.group,
        summary=_spread_summary(spread, headline),
        sharing=(
            f"Student calls over the spread's runs: {spread.student_sent:,} sent, "
            f"{spread.student_reused:,} answered from the store. A variant that changes only "
            "the grading prompt asks the student what the base asked, so its answers are "
            "shared."
        ),
        columns=columns,
        variants=variants,
        metrics=metrics,
        effects=effects,
        plot=_spread_plot(headline) if headline is not None else None,
        notes=list(spread.notes),
    )


def _spread_summary(spread: SpreadReport, headline: SpreadRow | None) -> str:
    n = len(spread.variants)
    if headline is None:
        return f"{n} format variant(s), none scored yet."
    if len(headline.indices) < 2:
        return (
            f"{n} format variants, but only variant {headline.indices[0]} scored any item: "
            "there is no spread to show (the others have no parsed verdict: see their "
            "unparsed rounds)."
        )
    metric = METRIC_NAMES.get(headline.metric, headline.metric).lower()
    text = (
        f"Across {n} format variants, {metric} at k = {headline.k} ranged from "
        f"{_fmt(headline.low)} to {_fmt(headline.high)}: a spread of "
        f"{_fmt(headline.spread.value)} [{_fmt(headline.spread.low)}, "
        f"{_fmt(headline.spread.high)}] over {headline.items} items, where grading noise "
        f"alone gives {_fmt(headline.noise)} (p {_p_value(headline.spread.p)})"
    )
    top = headline.top
    if top is None:
        return text + "."
    verdict = "" if top.moves else " (not beyond chance after Holm's adjustment)"
    return f"{text}. The choice that moves it most: {top.describe()}{verdict}."


def _spread_plot(row: SpreadRow) -> Markup | None:
    """Each option's difference from the base option, for the row with the widest spread."""
    rows = [
        IntervalRow(
            f"{e.dimension}: {option}",
            c.value,
            c.low,
            c.high,
            flagged=e.moves and (c.low > 0 or c.high < 0),
            note=f"minus {DIMENSIONS_BY_NAME[e.dimension].base}",
        )
        for e in row.effects
        for option, c in e.contrasts.items()
    ]
    if not rows:
        return None
    metric = METRIC_NAMES.get(row.metric, row.metric)
    return Markup(  # svg.py escapes every label
        interval_plot(
            rows,
            element_id="spread-contrasts",
            title=f"{metric} at k = {row.k}: each option minus the base set's",
            x_label=f"difference in {metric.lower()}",
        )
    )


# --- items -----------------------------------------------------------------------------------


def _items_data(store: Store, runs: Sequence[_Run]) -> dict[str, Any]:
    """Every item record of every run, for the page's script (JSON in the page).

    Each skill is written once, in `skills`, and items name theirs by key: a skill's
    definition and example would otherwise be repeated in every item that uses it (a
    third of a large run's page). report.js puts them back in place when it loads.
    """
    items: list[dict[str, Any]] = []
    labels = []
    judges: list[str] = []
    skills: dict[str, dict[str, Any]] = {}
    for r in runs:
        run_id = r.run["id"]
        labels.append({"id": run_id, "label": r.label})
        for record in item_details(store, r.report.scores):
            for j in record["judges"]:
                j["judge"] = display_model(j["judge"])
                if j["judge"] not in judges:
                    judges.append(j["judge"])
            record["skills"] = [_skill_key(skills, skill) for skill in record["skills"]]
            items.append({"run": run_id, "model": r.label, **record})
    return {"runs": labels, "judges": judges, "skills": skills, "items": items}


def _skill_key(skills: dict[str, dict[str, Any]], skill: dict[str, Any]) -> str:
    """The key of `skill` in the page's skill table, adding it when new (two catalogs may
    give one id different texts: each text gets a key of its own)."""
    key, n = skill["id"], 1
    while key in skills and skills[key] != skill:
        n += 1
        key = f"{skill['id']}#{n}"
    skills.setdefault(key, skill)
    return key


@dataclass(frozen=True)
class ItemFilters:
    """The choices of the item browser's filters."""

    runs: list[tuple[str, str]]  # (run id, label)
    ks: list[int]
    judges: list[str]


def _item_filters(data: dict[str, Any]) -> ItemFilters:
    return ItemFilters(
        [(r["id"], r["label"]) for r in data["runs"]],
        sorted({i["k"] for i in data["items"]}),
        list(data["judges"]),
    )


# --- the page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """Everything the page shows, section by section (see templates/page.html.j2)."""

    title: str
    header: Header
    warnings: list[PageWarning]
    runs: list[RunEntry]
    leaderboard: LeaderboardView
    metric_names: list[str]
    reading: Reading
    plots: Plots
    run_metrics: list[RunMetrics]
    heatmaps: list[Heatmap]
    skill_analytics: list[RunSkills]
    topics: Topics
    agreement: list[AgreementBlock]
    audit: AuditView
    spread: list[SpreadBlock]
    usage: Usage
    filters: ItemFilters
    data: dict[str, Any]  # the item records, for the script


def page_view(store: Store, reports: Sequence[Report]) -> Page:
    """The page of already built reports."""
    runs = _runs(reports)
    board = leaderboard_from_reports(reports)
    data = _items_data(store, runs)
    return Page(
        title="Skill-Mix report: " + ", ".join(r.label for r in runs),
        header=_header(runs),
        warnings=_warnings(runs, board),
        runs=_run_entries(runs),
        leaderboard=_leaderboard(board),
        metric_names=list(METRIC_NAMES.values()),
        reading=_reading(runs),
        plots=_plots(runs),
        run_metrics=_run_metrics(runs),
        heatmaps=_heatmaps(runs),
        topics=_topics(runs),
        agreement=_agreement(runs),
        audit=_audit(store, runs),
        spread=_spread(runs),
        usage=_usage(runs),
        filters=_item_filters(data),
        data=data,
        # Last: each report's skill analysis may still be running on its thread.
        skill_analytics=_skill_analytics(runs),
    )
