"""What every section of the page uses: model names, interval cells, number formats,
and the runs as the page shows them (each with its label and headline judge)."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from skillmix.report.build import Report
from skillmix.report.names import display_model, short_model
from skillmix.scoring.judges import COMBINED_JUDGE, combined_scores
from skillmix.scoring.metrics import Interval
from skillmix.scoring.results import RunScores, breakdown
from skillmix.store import RunRow

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


def fmt(value: float, digits: int = 2) -> str:
    return "—" if value != value else f"{value:.{digits}f}"


def format_date(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


# --- the runs as the page shows them ---------------------------------------------------------


@dataclass
class RunView:
    """One run as the page shows it: its report, label and headline judge."""

    report: Report
    label: str
    judge: str  # the judge the plots and heatmaps use: "combined" with several judges
    scores: RunScores  # scored by the headline judge (combined items when several)

    @property
    def run(self) -> RunRow:
        return self.report.scores.run


def run_breakdown(r: RunView, by: str) -> list[dict[str, Any]]:
    """The run's breakdown for its headline judge: the report's own rows of that judge, or
    computed for the combined judge (which the report does not break down)."""
    if r.judge == COMBINED_JUDGE:
        return breakdown(r.scores, by)
    return [row for row in r.report.breakdowns[by] if row["judge"] == r.judge]


def page_runs(reports: Sequence[Report]) -> list[RunView]:
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
        runs.append(RunView(rep, short_model(rep.config["student"]), judge, scores))
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


def signed(value: float) -> str:
    return "—" if value != value else f"{value:+.2f}"


def p_value(value: float) -> str:
    if value != value:
        return "not tested"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def display_names(runs: Sequence[RunView]) -> Callable[[str], str]:
    """A function that writes the runs' model specs in a text as the page shows them
    (endpoints without scheme); the specs are gathered once."""
    specs = {m for r in runs for m in (r.run["config"]["student"], *r.run["config"]["judges"])}
    longest_first = sorted(specs, key=len, reverse=True)
    shown = {spec: display_model(spec) for spec in longest_first}

    def named(text: str) -> str:
        for spec in longest_first:
            text = text.replace(spec, shown[spec])
        return text

    return named
