"""The report on the terminal (Rich): the metrics table, agreement, usage, warnings, a
few items to open, and `skillmix runs`; in the layout that fits the width (`layout`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from skillmix.config import describe_decoding
from skillmix.report.build import NOT_GRADED, Report, example_items, usage_spec
from skillmix.report.explain import legend
from skillmix.report.layout import Column, print_records
from skillmix.report.names import ModelNames
from skillmix.report.reference import render_reference_diff
from skillmix.scoring.metrics import METRICS, Interval
from skillmix.scoring.results import ItemResult
from skillmix.store import RunRow
from skillmix.terminal import escaped, plain

STATUS_STYLES = {"done": "green", "running": "cyan", "paused": "yellow"}


def _fmt(iv: Interval) -> str:
    if iv.n == 0:
        return "—"
    return f"{iv.mean:.2f} [{iv.low:.2f},{iv.high:.2f}]"


def _verdict(item: ItemResult) -> str:
    """An item's result in a few words: `full marks`, `skill fraction 0.50`, `unscored`."""
    if item.scores is None:
        return NOT_GRADED if not item.generations else "unscored"
    if item.scores.full_marks == 1:
        return "full marks"
    if item.scores.all_skills == 1:
        return "all skills"
    return f"skill fraction {item.scores.skill_fraction:.2f}"


def render_report(report: Report, console: Console) -> None:
    """The report on the terminal, in the layout that fits its width (see `layout`)."""
    cfg = report.config
    names = ModelNames([cfg["student"], *cfg["judges"]])
    status = "" if report.status == "done" else f" ({report.status})"
    title = (
        f"Skill-Mix {report.run_id}{status}  student={names(cfg['student'])}  "
        f"catalog={report.catalog_hash[:12]}  templates={report.template_version}  "
        f"protocol={report.protocol}"
    )
    print_records(
        console,
        [
            Column("judge"),
            Column("k", justify="right"),
            Column("n", justify="right", key="items scored"),
            *(Column(m.replace("_", " "), justify="right", wrap=True) for m in METRICS),
        ],
        (
            [names(row.judge), str(row.k), f"{row.scored}/{row.items}"]
            + [_fmt(row.metrics[m]) for m in METRICS]
            for row in report.rows
        ),
        title=title,
        caption="mean over items [95% bootstrap interval]; n = items scored/sampled",
        footnotes=names.footnotes(),
    )
    console.print(
        f"aggregation: {report.aggregation} over {cfg['generation_rounds']} generation round(s); "
        f"majority vote over {cfg['grading_rounds']} grading round(s); "
        f"naming penalty {'on' if cfg.get('naming_penalty', True) else 'off'}",
        highlight=False,
    )
    decoding = report.decoding
    judges = "; ".join(
        f"judge {escaped(names(name))}: {describe_decoding(d)}"
        for name, d in decoding["judges"].items()
    )
    console.print(
        f"protocol {report.protocol}; decoding: student {describe_decoding(decoding['student'])}; "
        f"{judges}",
        highlight=False,
    )
    if report.agreement:
        print_records(
            console,
            [
                Column("criterion", wrap=True),
                Column("statistic", wrap=True),
                Column("value", justify="right"),
                Column("raw agreement", justify="right", wrap=True),
                Column("units", justify="right"),
            ],
            (
                [
                    a.criterion,
                    a.statistic.replace("_", " "),
                    "—" if a.value != a.value else f"{a.value:.2f}",
                    "—" if a.raw_agreement != a.raw_agreement else f"{a.raw_agreement:.0%}",
                    str(a.units),
                ]
                for a in report.agreement
            ),
            title="judge agreement (each judge's majority verdict, before the naming penalty)",
        )
    if report.human_agreement:
        print_records(
            console,
            [
                Column("judge"),
                Column("criterion", wrap=True),
                Column("agreement", justify="right"),
                Column("kappa", justify="right"),
                Column("units", justify="right"),
            ],
            (
                [
                    names(h["judge"]),
                    h["criterion"],
                    f"{h['agreement']:.0%}",
                    "—" if h["kappa"] != h["kappa"] else f"{h['kappa']:.2f}",
                    str(h["units"]),
                ]
                for h in report.human_agreement
            ),
            title="judge vs human (decided verdicts vs the reviewers' majority, `skillmix review`)",
        )
    for line in _findings(report):
        console.print(Text(line), highlight=False)
    if report.usage:
        print_records(
            console,
            [
                Column("role"),
                Column("model"),
                Column("calls", justify="right"),
                Column("paid"),
                Column("prompt tok", justify="right", wrap=True),
                Column("completion tok", justify="right", wrap=True),
                Column("cost USD", justify="right", wrap=True),
            ],
            (
                [
                    u["role"],
                    names(usage_spec(u, [cfg["student"], *cfg["judges"]])),
                    f"{u['calls']:,}",
                    _paid(u),
                    f"{u['prompt_tokens']:,}",
                    f"{u['completion_tokens']:,}",
                    _cost(u),
                ]
                for u in report.usage
            ),
            title="calls used by this run",
        )
    if report.reference_diff is not None:
        render_reference_diff(report.reference_diff, console)
    for warning in report.warnings:
        console.print(Panel(plain(warning), title="warning", border_style="yellow"))
    examples = example_items(report.scores)
    if examples:
        listed = " · ".join(f"{r.item_id} (k={r.k}, {_verdict(r)})" for r in examples)
        console.print(
            Text(f"items: {listed}; every item is in items.csv and report.html"),
            highlight=False,
        )
        console.print(
            Text(
                f"see one in full: skillmix show {examples[0].item_id} --run {report.run_id}",
            ),
            highlight=False,
        )
    console.print(Text(legend(report.aggregation, cfg["generation_rounds"]), style="dim"))


def _findings(report: Report) -> list[str]:
    """One line from the audit and one per composition row: the full tables are in
    `skillmix audit`, `skillmix analyze` and the HTML report."""
    lines = []
    audit = report.audit
    if audit is not None:
        tested = sum(f.tested for f in audit.findings)
        counts = f"{len(audit.flagged)} flagged of {tested} tests; " if tested else ""
        lines.append(f"audit: {audit.lead} ({counts}skillmix audit {report.run_id})")
    analysis = report.skill_analysis
    for law in analysis.composition if analysis is not None else []:
        for row in law.rows:
            if row.predicted is None or row.ratio is None:
                continue
            ratio = row.ratio
            by = f" by {law.judge}" if len(report.scores.judges) > 1 else ""
            lines.append(
                f"composition k={row.k}{by}: all skills {row.observed.value:.2f}, "
                f"{row.predicted.value:.2f} if skills were independent "
                f"(ratio {ratio.value:.2f} [{ratio.low:.2f}, {ratio.high:.2f}]); "
                f"skillmix analyze {report.run_id}"
            )
    return lines


def _paid(usage: dict[str, Any]) -> str:
    if not usage["sent"]:
        return "reused"
    return "yes" if usage.get("paid", True) else "no (local)"


def _cost(usage: dict[str, Any]) -> str:
    if not usage["sent"]:
        return "0"
    return "unpriced" if usage["cost_usd"] is None else f"{usage['cost_usd']:.4f}"


def _run_models(config: dict[str, Any]) -> tuple[str, list[str]]:
    """A run's main model and its judges. A run of another pipeline (its config has a
    "kind", e.g. "math-label") may name a teacher instead of a student, and no judges."""
    model = config.get("student") or config.get("teacher") or ""
    return str(model), [str(j) for j in config.get("judges") or []]


def render_runs(runs: Sequence[RunRow], console: Console) -> None:
    """`skillmix runs`: one row per stored run (`Store.list_runs` records)."""
    models = {r["id"]: _run_models(r["config"]) for r in runs}
    names = ModelNames(spec for main, judges in models.values() for spec in (main, *judges))
    print_records(
        console,
        [
            Column("run"),
            Column("status"),
            Column("student"),
            Column("judges", wrap=True),
            Column("k", wrap=True),
            Column("items/k", justify="right"),
            Column("catalog"),
        ],
        (
            [
                r["id"],
                plain(r["status"], style=STATUS_STYLES.get(r["status"], "red")),
                names(models[r["id"]][0]),
                ", ".join(names(j) for j in models[r["id"]][1]),
                ",".join(map(str, r["config"].get("k") or [])),
                str(r["config"].get("items", r["config"].get("questions", ""))),
                r["catalog_hash"][:12],
            ]
            for r in runs
        ),
        caption="a run id, or any unique start of it, names the run in other commands",
        footnotes=names.footnotes(),
    )
