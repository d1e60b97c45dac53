"""The top of the page: the header, the runs, the warnings, the leaderboard and how to
read the figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from skillmix.config import describe_decoding
from skillmix.report import explain
from skillmix.report.compare import Leaderboard
from skillmix.report.html.view.common import (
    AGGREGATION_NAMES,
    IntervalCell,
    ModelName,
    RunView,
    format_date,
    interval_cell,
    model_name,
)
from skillmix.report.names import display_model
from skillmix.scoring.metrics import METRICS

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


def header(runs: Sequence[RunView]) -> Header:
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


def _design(run: RunView) -> str:
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


def run_entries(runs: Sequence[RunView]) -> list[RunEntry]:
    return [
        RunEntry(
            run_id=r.run["id"],
            label=r.label,
            judges=[model_name(j) for j in r.run["config"]["judges"]],
            design=_design(r),
            catalog=r.report.catalog_hash[:12],
            templates=r.report.template_version,
            status=r.run["status"],
            created=format_date(r.run["created"]),
        )
        for r in runs
    ]


# --- warnings and leaderboard ----------------------------------------------------------------


@dataclass(frozen=True)
class PageWarning:
    severity: str  # "severe" or "warn"
    scope: str  # what it is about: a run's label, or "runs not comparable"
    text: str


def warnings(runs: Sequence[RunView], board: Leaderboard) -> list[PageWarning]:
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


def leaderboard(board: Leaderboard) -> LeaderboardView:
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


def reading(runs: Sequence[RunView]) -> Reading:
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
