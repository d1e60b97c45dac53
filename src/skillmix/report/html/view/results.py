"""The figures per run: the plots by k, the metric tables, the heatmaps and the topics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from skillmix.report.html.view.common import (
    METRIC_NAMES,
    IntervalCell,
    ModelName,
    RunView,
    interval_cell,
    model_name,
    run_breakdown,
)
from skillmix.report.names import display_model
from skillmix.report.svg import Point, Series, heatmap, line_chart
from skillmix.scoring.judges import COMBINED_JUDGE
from skillmix.scoring.metrics import METRICS


@dataclass(frozen=True)
class Plots:
    charts: list[tuple[str, Markup]]  # (metric, its SVG line chart)
    which_judge: str


def plots(runs: Sequence[RunView]) -> Plots:
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


def run_metrics(runs: Sequence[RunView]) -> list[RunMetrics]:
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


def heatmaps(runs: Sequence[RunView]) -> list[Heatmap]:
    columns = [r.label for r in runs]
    maps = []
    for by in ("skill", "category"):
        values: dict[tuple[str, str], float | None] = {}
        counts: dict[tuple[str, str], int] = {}
        groups: dict[str, str] = {}
        order: dict[str, tuple[str, str]] = {}
        for r in runs:
            catalog = r.report.scores.catalog
            for row in run_breakdown(r, by):
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


def topics(runs: Sequence[RunView]) -> Topics:
    per_topic: dict[str, dict[str, dict[str, Any]]] = {}
    for r in runs:
        catalog = r.report.scores.catalog
        for row in run_breakdown(r, "topic"):
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
