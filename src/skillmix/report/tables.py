"""The metrics report of a run: warnings that matter, per-k table with intervals, files."""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from skillmix.agreement import AgreementRow, combined_scores, judge_agreement
from skillmix.config import describe_decoding, stored_decoding, stored_protocol
from skillmix.metrics import METRICS, Aggregation
from skillmix.models.settings import Settings
from skillmix.reference.diff import ReferenceDiff, reference_diff
from skillmix.report.reference import render_reference_diff
from skillmix.results import RunScores, SummaryRow, breakdown, score_run, summarize
from skillmix.review.agreement import human_agreement
from skillmix.store import Store
from skillmix.terminal import escaped, plain

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
    agreement: list[AgreementRow]
    usage: list[dict[str, Any]]
    human_agreement: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    reference_diff: ReferenceDiff | None = None  # runs made by `skillmix import reference`

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
            },
            "metrics": [r.to_dict() for r in self.rows],
            "agreement": [dataclasses.asdict(a) for a in self.agreement],
            "human_agreement": self.human_agreement,
            "usage": self.usage,
            "breakdowns": self.breakdowns,
            **({"reference_diff": self.reference_diff.to_dict()} if self.reference_diff else {}),
        }


def build_report(
    store: Store,
    run_id: str,
    aggregation: Aggregation = "max",
    level: float = 0.95,
    resamples: int = 2000,
    settings: Settings | None = None,
) -> Report:
    scores = score_run(store, run_id, aggregation)
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
    unscored = sum(r.items - r.scored for r in rows)
    if unscored:
        warnings.append(f"{unscored} item(s) had no parsed grading round and are unscored")
    if scores.missing_generations and run["config"].get("protocol") == "reference-import":
        warnings.append(
            f"{scores.missing_generations} generation(s) have no grading in the imported files"
        )
    elif scores.missing_generations:
        warnings.append(
            f"the run is incomplete: {scores.missing_generations} generation(s) not graded "
            "yet; re-run the same command to finish it"
        )
    penalized = sum(r.penalized for r in rows)
    if penalized:
        warnings.append(f"the naming penalty removed {penalized} skill point(s)")
    usage = store.usage(run["id"])
    settings = settings or Settings()
    for row in usage:
        price = settings.price(row["provider"], row["model"])
        row["cost_usd"] = (
            None if price is None else price.cost(row["prompt_tokens"], row["completion_tokens"])
        )
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
        agreement=judge_agreement(scores),
        usage=usage,
        human_agreement=human_agreement(store, scores),
        reference_diff=reference_diff(store, run["id"], scores),
    )


def _fmt(iv: Any) -> str:
    if iv.n == 0:
        return "—"
    return f"{iv.mean:.2f} [{iv.low:.2f},{iv.high:.2f}]"


def render_report(report: Report, console: Console) -> None:
    cfg = report.config
    title = (
        f"Skill-Mix {escaped(report.run_id)}  student={escaped(cfg['student'])}  "
        f"catalog={report.catalog_hash[:12]}  templates={escaped(report.template_version)}  "
        f"protocol={report.protocol}"
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
        table.add_row(plain(row.judge), str(row.k), items, *(_fmt(row.metrics[m]) for m in METRICS))
    console.print(table)
    console.print(
        f"aggregation: {report.aggregation} over {cfg['generation_rounds']} generation round(s); "
        f"majority vote over {cfg['grading_rounds']} grading round(s); "
        f"naming penalty {'on' if cfg.get('naming_penalty', True) else 'off'}"
    )
    decoding = report.decoding
    judges = "; ".join(
        f"judge {escaped(name)}: {describe_decoding(d)}" for name, d in decoding["judges"].items()
    )
    console.print(
        f"protocol {report.protocol}; decoding: student {describe_decoding(decoding['student'])}; "
        f"{judges}",
        highlight=False,
    )
    if report.agreement:
        agreement = Table(
            "criterion",
            "statistic",
            "value",
            "raw agreement",
            "units",
            title="judge agreement (each judge's majority verdict, before the naming penalty)",
            title_justify="left",
        )
        for a in report.agreement:
            value = "—" if a.value != a.value else f"{a.value:.2f}"
            raw = "—" if a.raw_agreement != a.raw_agreement else f"{a.raw_agreement:.0%}"
            agreement.add_row(
                plain(a.criterion), a.statistic.replace("_", " "), value, raw, str(a.units)
            )
        console.print(agreement)
    if report.human_agreement:
        human = Table(
            "judge",
            "criterion",
            "agreement",
            "kappa",
            "units",
            title="judge vs human (decided verdicts vs the reviewers' majority, `skillmix review`)",
            title_justify="left",
        )
        for h in report.human_agreement:
            kappa = "—" if h["kappa"] != h["kappa"] else f"{h['kappa']:.2f}"
            human.add_row(
                plain(h["judge"]),
                plain(h["criterion"]),
                f"{h['agreement']:.0%}",
                kappa,
                str(h["units"]),
            )
        console.print(human)
    if report.usage:
        usage = Table(
            "role",
            "model",
            "calls",
            "paid",
            "prompt tok",
            "completion tok",
            "cost USD",
            title="calls used by this run",
            title_justify="left",
        )
        for u in report.usage:
            cost = "unpriced" if u["cost_usd"] is None else f"{u['cost_usd']:.4f}"
            usage.add_row(
                plain(u["role"]),
                plain(f"{u['provider']}:{u['model']}"),
                f"{u['calls']:,}",
                "yes" if u["sent"] else "reused",
                f"{u['prompt_tokens']:,}",
                f"{u['completion_tokens']:,}",
                cost if u["sent"] else "0",
            )
        console.print(usage)
    if report.reference_diff is not None:
        render_reference_diff(report.reference_diff, console)
    for warning in report.warnings:
        console.print(Panel(plain(warning), title="warning", border_style="yellow"))


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
