"""The metrics report of a run: warnings that matter, per-k table with intervals, files."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from skillmix.metrics import METRICS, Aggregation
from skillmix.results import RunScores, SummaryRow, breakdown, score_run, summarize
from skillmix.store import Store

WEAK_JUDGE_WARNING = (
    "The judge {judge} is SmolLM2-135M, a 135M-parameter model that cannot grade reliably: "
    "this report is a smoke test of the pipeline, not a measurement of the student."
)
UNPARSED_WARN_RATE = 0.05


@dataclass
class Report:
    run_id: str
    config: dict[str, Any]
    catalog_hash: str
    template_version: str
    aggregation: str
    rows: list[SummaryRow]
    breakdowns: dict[str, list[dict[str, Any]]]
    warnings: list[str]
    scores: RunScores

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "config": self.config,
            "catalog_hash": self.catalog_hash,
            "template_version": self.template_version,
            "aggregation": self.aggregation,
            "warnings": self.warnings,
            "grading": {
                "grade_rounds": self.scores.grade_rounds,
                "unparsed_rounds": self.scores.unparsed_rounds,
                "methods": self.scores.methods,
            },
            "metrics": [r.to_dict() for r in self.rows],
            "breakdowns": self.breakdowns,
        }


def build_report(
    store: Store,
    run_id: str,
    aggregation: Aggregation = "max",
    level: float = 0.95,
    resamples: int = 2000,
) -> Report:
    scores = score_run(store, run_id, aggregation)
    run = scores.run
    rows = summarize(scores, level=level, resamples=resamples)
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
    unscored = sum(r.items - r.scored for r in rows)
    if unscored:
        warnings.append(f"{unscored} item(s) had no parsed grading round and are unscored")
    if scores.missing_generations:
        warnings.append(
            f"the run is incomplete: {scores.missing_generations} generation(s) not graded "
            "yet; re-run the same command to finish it"
        )
    penalized = sum(r.penalized for r in rows)
    if penalized:
        warnings.append(f"the naming penalty removed {penalized} skill point(s)")
    return Report(
        run_id=run["id"],
        config=run["config"],
        catalog_hash=run["catalog_hash"],
        template_version=run["template_version"],
        aggregation=aggregation,
        rows=rows,
        breakdowns={by: breakdown(scores, by) for by in ("skill", "category", "topic")},
        warnings=warnings,
        scores=scores,
    )


def _fmt(iv: Any) -> str:
    if iv.n == 0:
        return "—"
    return f"{iv.mean:.2f} [{iv.low:.2f},{iv.high:.2f}]"


def render_report(report: Report, console: Console) -> None:
    cfg = report.config
    title = (
        f"Skill-Mix {report.run_id}  student={cfg['student']}  "
        f"catalog={report.catalog_hash[:12]}  templates={report.template_version}"
    )
    table = Table(
        title=title,
        title_justify="left",
        caption="mean over items [95% bootstrap interval]; n = items scored/sampled",
        caption_justify="left",
    )
    table.add_column("judge", overflow="fold", min_width=8)
    table.add_column("k", justify="right")
    table.add_column("n", justify="right")
    for m in METRICS:
        table.add_column(m.replace("_", " "), justify="right", no_wrap=True)
    for row in report.rows:
        items = f"{row.scored}/{row.items}"
        table.add_row(row.judge, str(row.k), items, *(_fmt(row.metrics[m]) for m in METRICS))
    console.print(table)
    console.print(
        f"aggregation: {report.aggregation} over {cfg['generation_rounds']} generation round(s); "
        f"majority vote over {cfg['grading_rounds']} grading round(s); "
        f"naming penalty {'on' if cfg.get('naming_penalty', True) else 'off'}"
    )
    for warning in report.warnings:
        console.print(Panel(warning, title="warning", border_style="yellow"))


def write_report(report: Report, out_dir: str | Path) -> list[Path]:
    """metrics.json, metrics.csv, items.csv and one CSV per breakdown; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "metrics.json", out / "metrics.csv", out / "items.csv"]
    paths[0].write_text(json.dumps(report.to_dict(), indent=2))
    with paths[1].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["run_id", "judge", "k", "items", "scored", "metric", "mean", "low", "high"]
        )
        for row in report.rows:
            for m in METRICS:
                iv = row.metrics[m]
                writer.writerow(
                    [report.run_id, row.judge, row.k, row.items, row.scored, m, *iv.as_tuple()]
                )
    with paths[2].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run_id", "judge", "item_id", "k", "skills", "topic", *METRICS])
        for r in report.scores.items:
            values = list(r.scores.as_tuple()) if r.scores else ["", "", ""]
            skills = "|".join(r.skill_ids)
            writer.writerow([report.run_id, r.judge, r.item_id, r.k, skills, r.topic_id, *values])
    for by, rows in report.breakdowns.items():
        path = out / f"by_{by}.csv"
        with path.open("w", newline="") as f:
            if rows:
                writer_d = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer_d.writeheader()
                writer_d.writerows(rows)
        paths.append(path)
    return paths
