"""A run's report as data: metrics with intervals, breakdowns, agreement, usage and the
warnings that matter. Reads only the store; `terminal` and `files` show and write it."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from skillmix.config import stored_decoding, stored_protocol
from skillmix.models.settings import Settings, runs_locally
from skillmix.report.names import short_model
from skillmix.scoring.audit import Audit, audit_runs
from skillmix.scoring.human import human_agreement
from skillmix.scoring.judges import AgreementRow, combined_scores, judge_agreement
from skillmix.scoring.metrics import Aggregation
from skillmix.scoring.reference import ReferenceDiff, reference_diff
from skillmix.scoring.results import (
    ItemResult,
    RunScores,
    SummaryRow,
    breakdowns,
    score_run,
    summarize,
)
from skillmix.scoring.skills import SkillAnalysis, analyze_scores
from skillmix.scoring.spread import SpreadReport, spread_report_for_run
from skillmix.store import Store, StoreError, UsageRow

WEAK_JUDGE_WARNING = (
    "The judge {judge} is SmolLM2-135M, a 135M-parameter model that cannot grade reliably: "
    "this report is a smoke test of the pipeline, not a measurement of the student."
)
UNPARSED_WARN_RATE = 0.05
# Every report bootstraps the composition law; on big runs it takes fewer resamples (the
# law records how many) so that a report stays a fraction of a second.
REPORT_CELL_BUDGET = 3_000_000
NOT_GRADED = "not graded yet"


@dataclass
class Report:
    """Everything the terminal table, the report files and the HTML page show of one run."""

    run_id: str
    config: dict[str, Any]
    catalog_hash: str
    template_version: str
    aggregation: str
    rows: list[SummaryRow]
    breakdowns: dict[str, list[dict[str, Any]]]
    warnings: list[str]
    scores: RunScores
    agreement: list[AgreementRow]
    usage: list[dict[str, Any]]
    human_agreement: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    reference_diff: ReferenceDiff | None = None  # runs made by `skillmix import reference`
    audit: Audit | None = None  # how far its judges can be trusted (`skillmix audit`)
    spread: SpreadReport | None = None  # its spread across format variants (`skillmix spread`)
    # Difficulty and composition (`skillmix analyze`), computed on a worker thread while the
    # rest of the report is built: see `skill_analysis`.
    analysis: Future[SkillAnalysis] | None = dataclasses.field(default=None, repr=False)

    @property
    def skill_analysis(self) -> SkillAnalysis | None:
        """The skill analysis, waiting for its thread if it is still being computed (its
        bootstrap is numpy work, which runs beside the item records of the page)."""
        return None if self.analysis is None else self.analysis.result()

    @property
    def status(self) -> str:
        """done, running, paused, stopped, or interrupted (its process died mid-run)."""
        return str(self.scores.run["status"])

    @property
    def not_graded(self) -> int:
        """Items (per judge) with no grading round at all yet: paused or interrupted."""
        return sum(1 for r in self.scores.items if r.scores is None and not r.generations)

    @property
    def protocol(self) -> str:
        """`skillmix` or `paper` (see `skillmix protocol diff`)."""
        return stored_protocol(self.config)

    @property
    def decoding(self) -> dict[str, Any]:
        """The decoding the student and each judge ran at (as recorded by the run)."""
        return stored_decoding(self.config)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "config": self.config,
            "protocol": self.protocol,
            "decoding": self.decoding,
            "catalog_hash": self.catalog_hash,
            "template_version": self.template_version,
            "aggregation": self.aggregation,
            "warnings": self.warnings,
            "grading": {
                "grade_rounds": self.scores.grade_rounds,
                "unparsed_rounds": self.scores.unparsed_rounds,
                "methods": self.scores.methods,
                "items_not_graded": self.not_graded,
            },
            "metrics": [r.to_dict() for r in self.rows],
            "agreement": [dataclasses.asdict(a) for a in self.agreement],
            "human_agreement": self.human_agreement,
            "usage": self.usage,
            "breakdowns": self.breakdowns,
            **({"reference_diff": self.reference_diff.to_dict()} if self.reference_diff else {}),
            "audit": self.audit.to_dict() if self.audit is not None else None,
            "skill_analysis": (
                self.skill_analysis.to_dict() if self.skill_analysis is not None else None
            ),
            "spread": self.spread.to_dict() if self.spread is not None else None,
        }


def build_report(
    store: Store,
    run_id: str,
    aggregation: Aggregation = "max",
    level: float = 0.95,
    resamples: int = 2000,
    settings: Settings | None = None,
) -> Report:
    """Score a stored run (`run_id` or a unique start of one) and gather its report.

    `aggregation` combines generation rounds (see `skillmix.scoring.metrics`); intervals are
    bootstrap intervals at `level` over `resamples` resamples; `settings` price the calls.
    Reads only the store: no model is called.
    """
    full_id = store.get_run(run_id)["id"]
    kept_usage = store.kept_usage(full_id)  # what the run just wrote (`Store.keep_rows`)
    run_usage = None if kept_usage is not None else _side_threads().submit(_usage, store, full_id)
    scores = score_run(store, run_id, aggregation)
    analysis = _side_threads().submit(
        analyze_scores, [scores], level=level, cell_budget=REPORT_CELL_BUDGET
    )
    run = scores.run
    rows = summarize(scores, level=level, resamples=resamples)
    combined = combined_scores(scores)
    if combined:
        combined_run = dataclasses.replace(scores, items=combined)
        rows += summarize(combined_run, level=level, resamples=resamples)
    warnings = []
    for judge in run["config"]["judges"]:
        if judge.split(":")[0] == "embedded":
            warnings.append(WEAK_JUDGE_WARNING.format(judge=judge))
    if scores.grade_rounds:
        rate = scores.unparsed_rounds / scores.grade_rounds
        if rate > UNPARSED_WARN_RATE:
            warnings.append(
                f"{scores.unparsed_rounds} of {scores.grade_rounds} grading rounds "
                f"({rate:.0%}) could not be parsed; they did not vote"
            )
    warnings += _completeness_warnings(scores, rows)
    penalized = sum(r.penalized for r in rows)
    if penalized:
        warnings.append(f"the naming penalty removed {penalized} skill point(s)")
    read = kept_usage if run_usage is None else run_usage.result()
    usage: list[dict[str, Any]] = [
        dict(row) for row in (store.usage(run["id"]) if read is None else read)
    ]
    settings = settings or Settings()
    specs = [run["config"].get("student", ""), *run["config"].get("judges", [])]
    for row in usage:
        price = settings.price(row["provider"], row["model"])
        row["cost_usd"] = (
            None if price is None else price.cost(row["prompt_tokens"], row["completion_tokens"])
        )
        # Sent to a model on this machine or network (embedded, a local server): not paid.
        row["paid"] = bool(row["sent"]) and not runs_locally(usage_spec(row, specs), settings)
    return Report(
        run_id=run["id"],
        config=run["config"],
        catalog_hash=run["catalog_hash"],
        template_version=run["template_version"],
        aggregation=aggregation,
        rows=rows,
        breakdowns=breakdowns(scores),
        warnings=warnings,
        scores=scores,
        agreement=judge_agreement(scores),
        usage=usage,
        human_agreement=human_agreement(store, scores),
        reference_diff=reference_diff(store, run["id"], scores),
        audit=audit_runs(store, [run["id"]], level=level),
        analysis=analysis,
        spread=spread_report_for_run(
            store, run["id"], aggregation, level=level, resamples=resamples
        ),
    )


@functools.cache
def _side_threads() -> ThreadPoolExecutor:
    """Where a report reads its usage and computes its skill analysis, beside the rest."""
    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="skillmix-report")


def _usage(store: Store, run_id: str) -> list[UsageRow] | None:
    """The run's usage (`Store.usage`), read on a connection of its own, so that SQLite
    joins the run's calls (its largest query) while this thread scores the run; None if
    the store cannot be opened again (then the report reads it on its own connection)."""
    try:
        reader = Store(store.address, read_only=True)
    except StoreError:
        return None
    try:
        return reader.usage(run_id)
    finally:
        reader.close()


def _completeness_warnings(scores: RunScores, rows: list[SummaryRow]) -> list[str]:
    """What is missing: items no readable verdict scored, and what was never graded."""
    warnings = []
    not_graded = sum(1 for r in scores.items if r.scores is None and not r.generations)
    unscored = sum(r.items - r.scored for r in rows) - not_graded
    if unscored > 0:
        warnings.append(f"{unscored} item(s) had no parsed grading round and are unscored")
    missing = scores.missing_generations
    if not missing:
        return warnings
    if scores.run["config"].get("protocol") == "reference-import":
        return [*warnings, f"{missing} generation(s) have no grading in the imported files"]
    items = f" ({not_graded} item(s) with no grade at all)" if not_graded else ""
    status = scores.run["status"]
    if status == "running":
        todo = "another process is running it now"
    else:
        todo = "re-run the same command to finish it"
    return [
        *warnings,
        f"the run is incomplete ({status}): {missing} generation(s) {NOT_GRADED}{items}; {todo}",
    ]


def usage_spec(usage: Mapping[str, Any], specs: Sequence[str]) -> str:
    """The run's model spec behind a usage row (stored as provider and model name)."""
    stored = f"{usage['provider']}:{usage['model']}"
    return next((s for s in specs if short_model(s) == stored), stored)


def example_items(scores: RunScores, n: int = 3) -> list[ItemResult]:
    """A few items worth opening with `skillmix show`: one per k where possible, those
    that missed full marks first (judged by the run's first judge)."""
    judge = scores.judges[0] if scores.judges else None
    items = [r for r in scores.items if r.judge == judge]
    ranked = sorted(items, key=lambda r: r.scores is not None and r.scores.full_marks == 1)
    chosen: list[ItemResult] = []
    for k in sorted({r.k for r in ranked}):
        chosen += [r for r in ranked if r.k == k][:1]
    chosen += [r for r in ranked if r not in chosen]
    return chosen[:n]
