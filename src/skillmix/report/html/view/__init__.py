"""The page as plain data: what each section of the HTML report shows, already worded and
formatted, for the templates to lay out.

Built from the reports and the store alone. Every string here is plain text (the templates
escape it); the only markup is the SVG charts from `skillmix.report.svg`, which escapes
every label itself. Numbers are formatted here, so the templates hold no arithmetic.

One module per part of the page (`overview`, `results`, `skills`, `agreement`, `usage`,
`audit`, `spread`, `items`), each building its sections' view from `common.RunView`s;
`page_view` puts them together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skillmix.report.build import Report
from skillmix.report.compare import leaderboard_from_reports
from skillmix.report.html.view import (
    agreement,
    audit,
    items,
    overview,
    results,
    skills,
    spread,
    usage,
)
from skillmix.report.html.view.agreement import AgreementBlock
from skillmix.report.html.view.audit import AuditView
from skillmix.report.html.view.common import METRIC_NAMES, page_runs
from skillmix.report.html.view.items import ItemData, ItemSource
from skillmix.report.html.view.overview import (
    Header,
    LeaderboardView,
    PageWarning,
    Reading,
    RunEntry,
)
from skillmix.report.html.view.results import Heatmap, Plots, RunMetrics, Topics
from skillmix.report.html.view.skills import RunSkills
from skillmix.report.html.view.spread import SpreadBlock
from skillmix.report.html.view.usage import Usage
from skillmix.store import Store

__all__ = ["Page", "PageWarning", "page_view"]


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
    items: ItemData  # the item records, encoded for the script, and the browser's filters


def page_view(
    store: Store, reports: Sequence[Report], item_source: ItemSource | None = None
) -> Page:
    """The page of already built reports; `item_source`: their item data, being built by
    another process (see `items.page_items`)."""
    runs = page_runs(reports)
    board = leaderboard_from_reports(reports)
    # Built here, the item data go first: each report's skill analysis runs on its thread
    # meanwhile. Built by another process, they are waited for last.
    local = None if item_source is not None else items.page_items(store, runs, None)
    return Page(
        title="Skill-Mix report: " + ", ".join(r.label for r in runs),
        header=overview.header(runs),
        warnings=overview.warnings(runs, board),
        runs=overview.run_entries(runs),
        leaderboard=overview.leaderboard(board),
        metric_names=list(METRIC_NAMES.values()),
        reading=overview.reading(runs),
        plots=results.plots(runs),
        run_metrics=results.run_metrics(runs),
        heatmaps=results.heatmaps(runs),
        topics=results.topics(runs),
        agreement=agreement.section(runs),
        audit=audit.section(store, runs),
        spread=spread.section(runs),
        usage=usage.section(runs),
        skill_analytics=skills.section(runs),  # waits for the skill analysis
        items=local or items.page_items(store, runs, item_source),  # in this order
    )
