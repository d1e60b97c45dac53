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
from skillmix.report import explain
from skillmix.report.build import Report
from skillmix.report.compare import Leaderboard, leaderboard_from_reports
from skillmix.report.details import item_details
from skillmix.report.names import display_model, short_model
from skillmix.report.svg import Point, Series, heatmap, line_chart
from skillmix.scoring.judges import COMBINED_JUDGE, combined_scores
from skillmix.scoring.metrics import METRICS, Interval
from skillmix.scoring.results import RunScores, breakdown
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
            for row in breakdown(r.scores, by):
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
        for row in breakdown(r.scores, "topic"):
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


# --- items -----------------------------------------------------------------------------------


def _items_data(store: Store, runs: Sequence[_Run]) -> dict[str, Any]:
    """Every item record of every run, for the page's script (JSON in the page)."""
    items: list[dict[str, Any]] = []
    labels = []
    judges: list[str] = []
    for r in runs:
        run_id = r.run["id"]
        labels.append({"id": run_id, "label": r.label})
        for record in item_details(store, r.report.scores):
            for j in record["judges"]:
                j["judge"] = display_model(j["judge"])
                if j["judge"] not in judges:
                    judges.append(j["judge"])
            items.append({"run": run_id, "model": r.label, **record})
    return {"runs": labels, "judges": judges, "items": items}


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
    topics: Topics
    agreement: list[AgreementBlock]
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
        usage=_usage(runs),
        filters=_item_filters(data),
        data=data,
    )
