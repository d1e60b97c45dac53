"""One self-contained HTML file for people to look at: warnings, leaderboard, plots,
heatmaps, agreement, usage, and every item with both turns and every verdict.

The page makes no network request at all (inline CSS, inline SVG, a little inline JS).
Everything a model wrote travels as JSON inside a <script type="application/json"> tag,
with "<", ">" and "&" written as \\u escapes so that no text can close the tag, and the
script puts it on the page with textContent only, so model text is always shown as text.
Everything else is escaped on the Python side. Built from the store alone: no model call.
The Content-Security-Policy allows only the page's own script and style sheet (by their
SHA-256 hashes), so markup that ever slipped past escaping could neither run nor restyle.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any

from skillmix.agreement import COMBINED_JUDGE, combined_scores
from skillmix.config import describe_decoding
from skillmix.metrics import METRICS, Aggregation, Interval
from skillmix.models.settings import Settings
from skillmix.report.compare import (
    Leaderboard,
    display_model,
    leaderboard_from_reports,
    short_model,
)
from skillmix.report.details import item_details
from skillmix.report.svg import Point, Series, heatmap, line_chart
from skillmix.report.tables import Report, build_report
from skillmix.results import RunScores, breakdown
from skillmix.store import Store

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


def render_html(
    store: Store,
    run_ids: Sequence[str],
    path: str | Path,
    aggregation: Aggregation = "max",
    *,
    settings: Settings | None = None,
) -> Path:
    """Write the report of `run_ids` (ids or unique prefixes) to `path`; return the path.

    Reads only the store: rendering never calls a model.
    """
    if not run_ids:
        raise ValueError("render_html needs at least one run id")
    reports: dict[str, Report] = {}
    for run_id in run_ids:
        report = build_report(store, run_id, aggregation, settings=settings)
        reports.setdefault(report.run_id, report)
    page = build_page(store, list(reports.values()))
    out = Path(path)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


# --- the model of the page -------------------------------------------------------------------


@dataclasses.dataclass
class _RunView:
    """One run as the page shows it: its report, label and headline judge."""

    report: Report
    label: str
    judge: str  # the judge the plots and heatmaps use: "combined" with several judges
    scores: RunScores  # scored by the headline judge (combined items when several)

    @property
    def run(self) -> dict[str, Any]:
        return self.report.scores.run


def _views(reports: Sequence[Report]) -> list[_RunView]:
    views = []
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
        label = short_model(rep.config["student"])
        views.append(_RunView(rep, label, judge, scores))
    # A model is named by its student; by its judge too where those differ; and by its
    # run id where that is still not enough.
    if len({v.judge for v in views}) > 1:
        for v in views:
            v.label = f"{v.label} · judge {short_model(v.judge)}"
    labels = Counter(v.label for v in views)
    for v in views:
        if labels[v.label] > 1:
            v.label = f"{v.label} · {v.run['id']}"
    return views


# --- small HTML helpers ----------------------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _model(spec: str) -> str:
    """A model as a table shows it: provider:model, with the endpoint in a tooltip."""
    short = short_model(spec)
    if short == spec:
        return _e(spec)
    return f'<span class="model" title="{_e(display_model(spec))}">{_e(short)}</span>'


def _fmt(value: float, digits: int = 2) -> str:
    return "—" if value != value else f"{value:.{digits}f}"


def _interval_cell(iv: Interval) -> str:
    if iv.n == 0:
        return '<td class="num muted">—</td>'
    width = max(0.0, min(1.0, iv.mean)) * 100
    return (
        f'<td class="num metric" data-mean="{iv.mean:.4f}">'
        f'<span class="mean">{iv.mean:.2f}</span> '
        f'<span class="ci">[{iv.low:.2f}, {iv.high:.2f}]</span>'
        # an SVG bar: a style attribute would need 'unsafe-inline' (or 'unsafe-hashes') in CSP
        f'<svg class="bar" viewBox="0 0 100 3" preserveAspectRatio="none" aria-hidden="true">'
        f'<rect width="{width:.0f}" height="3"/></svg></td>'
    )


def _table(
    headers: Sequence[str],
    rows: Iterable[str],
    *,
    element_id: str = "",
    css_class: str = "",
    numeric: Sequence[int] = (),
) -> str:
    head = "".join(
        f'<th class="num">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>"
        for i, h in enumerate(headers)
    )
    attrs = (f' id="{_e(element_id)}"' if element_id else "") + (
        f' class="{_e(css_class)}"' if css_class else ""
    )
    body = "\n".join(rows)
    return (
        f'<div class="table-wrap"><table{attrs}><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def _date(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(timestamp))


def content_security_policy(script: str, style: str) -> str:
    """The report's CSP: nothing from the network, and only the inline script and style
    sheet whose exact text is given (hashed), so no other inline code or style applies."""
    return (
        f"default-src 'none'; script-src {_csp_hash(script)}; style-src {_csp_hash(style)}; "
        "base-uri 'none'; form-action 'none'"
    )


def _csp_hash(source: str) -> str:
    """A CSP hash source: the browser hashes the element's text as UTF-8, as here."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside <script type="application/json">: nothing in it can end
    the tag or start a comment, whatever the models wrote."""
    text = json.dumps(_finite(data), ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


def _finite(value: Any) -> Any:
    """NaN and infinities become null (JSON has no NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# --- sections --------------------------------------------------------------------------------


def _header(views: Sequence[_RunView]) -> tuple[str, str]:
    """The page header and the table of runs."""
    students = sorted({display_model(v.run["config"]["student"]) for v in views})
    judges = sorted({display_model(j) for v in views for j in v.run["config"]["judges"]})
    catalogs = sorted(
        {
            f"{v.report.scores.catalog.name} {v.report.scores.catalog.version} "
            f"({v.report.catalog_hash[:12]})".replace("  ", " ")
            for v in views
        }
    )
    templates = sorted({v.report.template_version for v in views})
    aggregation = views[0].report.aggregation
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    facts = [
        ("runs", str(len(views))),
        ("students", ", ".join(students)),
        ("judges", ", ".join(judges)),
        ("catalog", "; ".join(catalogs)),
        ("templates", ", ".join(templates)),
        ("protocol", ", ".join(sorted({v.report.protocol for v in views}))),
        ("aggregation", f"{aggregation}: {AGGREGATION_NAMES.get(aggregation, aggregation)}"),
        ("generated", generated),
    ]
    dl = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in facts)
    rows = []
    for v in views:
        cfg = v.run["config"]
        status = v.run["status"]
        penalty = "on" if cfg.get("naming_penalty", True) else "off"
        design = (
            f"k = {','.join(map(str, cfg['k']))} · {cfg['items']} items per k · "
            f"{cfg['generation_rounds']} generation × {cfg['grading_rounds']} grading rounds · "
            f"seed {cfg['seed']} · naming penalty {penalty} · protocol {v.report.protocol} · "
            f"student {describe_decoding(v.report.decoding['student'])} · "
            + " · ".join(
                f"judge {display_model(j)}: {describe_decoding(d)}"
                for j, d in v.report.decoding["judges"].items()
            )
        )
        rows.append(
            f'<tr data-run="{_e(v.run["id"])}"><td><code>{_e(v.run["id"])}</code></td>'
            f"<td>{_e(v.label)}</td>"
            f"<td>{', '.join(_model(j) for j in cfg['judges'])}</td>"
            f'<td class="design">{_e(design)}</td>'
            f"<td><code>{_e(v.report.catalog_hash[:12])}</code><br>"
            f'<span class="muted">{_e(v.report.template_version)}</span></td>'
            f'<td><span class="status status-{_e(status)}">{_e(status)}</span><br>'
            f'<span class="muted">{_e(_date(v.run["created"]))}</span></td></tr>'
        )
    table = _table(
        ["run", "student", "judges", "design", "catalog / templates", "status / created"],
        rows,
        element_id="runs-table",
    )
    header = (
        '<header class="top" id="report-header"><div class="wrap">'
        "<h1>Skill-Mix report</h1>"
        f'<p class="lede">{_e(", ".join(students))} — judged by {_e(", ".join(judges))}</p>'
        f'<dl class="facts">{dl}</dl></div></header>'
    )
    return header, f'<section id="runs"><h2>Runs</h2>{table}</section>'


def _warnings(views: Sequence[_RunView], board: Leaderboard) -> str:
    items: list[tuple[str, str, str]] = []  # (severity, scope, text)
    for problem in board.problems:
        items.append(("severe", "runs not comparable", problem))
    for v in views:
        for warning in v.report.warnings:
            severe = "cannot grade reliably" in warning or "incomplete" in warning
            items.append(("severe" if severe else "warn", v.label, warning))
        status = v.run["status"]
        if status != "done":
            items.append(
                (
                    "severe",
                    v.label,
                    f"run {v.run['id']} is {status}, not done: its figures cover only what "
                    "was answered so far; re-run the same command to finish it",
                )
            )
    if not items:
        body = '<p class="ok">No warnings: every run is complete, parsed and comparable.</p>'
    else:
        body = "\n".join(
            f'<div class="warning {sev}" role="alert"><strong>{_e(scope)}</strong>'
            f"<span>{_e(text)}</span></div>"
            for sev, scope, text in items
        )
    return f'<section id="warnings"><h2>Warnings</h2>{body}</section>'


def _leaderboard(board: Leaderboard) -> str:
    rows = []
    for r in board.rows:
        flag = (
            f'<br><span class="badge bad" title="measured differently from the other runs">'
            f"not comparable: {_e(', '.join(r.differs_in))}</span>"
            if r.differs_in
            else ""
        )
        rows.append(
            f'<tr class="leaderboard-row{"" if r.comparable else " incomparable"}" '
            f'data-run="{_e(r.run_id)}" data-k="{r.k}" '
            f'data-judge="{_e(display_model(r.judge))}">'
            f'<td class="num">{r.k}</td><td>{_model(r.student)}{flag}</td>'
            f"<td>{_model(r.judge)}</td>"
            + "".join(_interval_cell(r.metrics[m]) for m in METRICS)
            + f'<td class="num">{r.scored}/{r.items}</td>'
            f"<td><code>{_e(r.run_id)}</code></td>"
            f"<td><code>{_e(r.catalog_hash[:12])}</code><br>"
            f'<span class="muted">{_e(r.template_version)}</span></td></tr>'
        )
    table = _table(
        ["k", "student", "judge", *METRIC_NAMES.values(), "scored", "run", "catalog / templates"],
        rows,
        element_id="leaderboard-table",
        numeric=(0, 3, 4, 5, 6),
    )
    status = (
        '<p class="ok">All runs were measured the same way: their figures are comparable.</p>'
        if not board.problems
        else '<p class="warning severe"><strong>not comparable</strong><span>Rows marked '
        "“not comparable” were measured differently from the others (see Warnings); "
        "they are shown, not mixed in.</span></p>"
    )
    return (
        '<section id="leaderboard"><h2>Leaderboard</h2>'
        '<p class="note">Ranked within each k and judge by full marks, then all skills, then '
        "skill fraction. Mean over items with its 95% bootstrap interval.</p>"
        f"{status}{table}</section>"
    )


def _plots(views: Sequence[_RunView]) -> str:
    charts = []
    for metric, name in METRIC_NAMES.items():
        series = []
        for v in views:
            rows = [r for r in v.report.rows if r.judge == v.judge]
            intervals = [(r.k, r.metrics[metric]) for r in rows if r.metrics[metric].n]
            points = [Point(k, iv.mean, iv.low, iv.high, iv.n) for k, iv in intervals]
            series.append(Series(v.label, points))
        chart = line_chart(series, element_id=f"plot-{metric}", title=f"{name} by k", y_label=name)
        charts.append(f'<figure class="plot" data-metric="{metric}">{chart}</figure>')
    judges = sorted({display_model(v.judge) for v in views})
    if len(judges) > 1:
        which = "Each line uses the judge named in its legend"
    else:
        which = f"Judge: {judges[0]}"
    if COMBINED_JUDGE in judges:
        which += " (“combined” is the judges' majority verdict)"
    return (
        '<section id="plots"><h2>Metrics against k</h2>'
        '<p class="note">One line per model; bars are 95% bootstrap intervals over items. '
        f'{_e(which)}.</p><div class="charts">{"".join(charts)}</div></section>'
    )


def _run_metrics(views: Sequence[_RunView]) -> str:
    blocks = []
    for v in views:
        cfg = v.run["config"]
        rows = []
        for r in v.report.rows:
            rows.append(
                f'<tr data-judge="{_e(display_model(r.judge))}" data-k="{r.k}">'
                f"<td>{_model(r.judge)}</td><td class='num'>{r.k}</td>"
                f'<td class="num">{r.scored}/{r.items}</td>'
                + "".join(_interval_cell(r.metrics[m]) for m in METRICS)
                + f'<td class="num">{r.penalized}</td></tr>'
            )
        table = _table(
            ["judge", "k", "scored/items", *METRIC_NAMES.values(), "naming penalty"],
            rows,
            css_class="metrics-table",
            numeric=(1, 2, 3, 4, 5, 6),
        )
        penalty = "on" if cfg.get("naming_penalty", True) else "off"
        blocks.append(
            f'<div class="run-metrics" data-run="{_e(v.run["id"])}">'
            f'<h3>{_e(v.label)} <code class="muted">{_e(v.run["id"])}</code></h3>{table}'
            f'<p class="note">{cfg["generation_rounds"]} generation round(s), majority vote '
            f"over {cfg['grading_rounds']} grading round(s), naming penalty {penalty}; "
            f"{v.report.scores.unparsed_rounds} of {v.report.scores.grade_rounds} grading "
            "rounds unparsed.</p></div>"
        )
    return (
        '<section id="metrics"><h2>Metrics per run</h2>'
        '<p class="note">Mean over scored items [95% bootstrap interval]; "naming penalty" '
        "counts the skill points removed because the text named the skill.</p>"
        + "".join(blocks)
        + "</section>"
    )


def _heatmaps(views: Sequence[_RunView]) -> str:
    columns = [v.label for v in views]
    parts = []
    for by in ("skill", "category"):
        values: dict[tuple[str, str], float | None] = {}
        counts: dict[tuple[str, str], int] = {}
        groups: dict[str, str] = {}
        order: dict[str, tuple[str, str]] = {}
        for v in views:
            catalog = v.report.scores.catalog
            for row in breakdown(v.scores, by):
                if by == "skill":
                    skill = catalog.skill(row["skill"])
                    label, group = skill.name, skill.category.replace("_", " ")
                else:
                    label, group = row["category"].replace("_", " "), ""
                groups[label] = group
                order[label] = (group, label.lower())
                values[(label, v.label)] = row["skill_success"]
                counts[(label, v.label)] = row["items"]
        rows = sorted(order, key=lambda label: order[label])
        title = "Success per skill" if by == "skill" else "Success per skill category"
        if rows:
            svg = heatmap(
                rows,
                columns,
                values,
                element_id=f"heatmap-{by}",
                title=title,
                counts=counts,
                row_groups=groups,
            )
        else:
            svg = f'<p class="muted" id="heatmap-{by}">no scored items</p>'
        parts.append(f'<figure class="heatmap-wrap" data-by="{by}">{svg}</figure>')
    return (
        '<section id="skills"><h2>Skills and categories</h2>'
        '<p class="note">Share of items on which the skill\'s criterion was met (after the '
        "vote and the naming penalty) in at least one generation round. Hover a cell for "
        f'the number of items.</p><div class="heatmaps">{"".join(parts)}</div></section>'
    )


def _topics(views: Sequence[_RunView]) -> str:
    per_topic: dict[str, dict[str, dict[str, Any]]] = {}
    for v in views:
        catalog = v.report.scores.catalog
        for row in breakdown(v.scores, "topic"):
            name = catalog.topic(row["topic"]).name
            per_topic.setdefault(name, {})[v.label] = row
    head = "<tr><th rowspan='2'>topic</th>" + "".join(
        f'<th colspan="4" class="group">{_e(v.label)}</th>' for v in views
    )
    head += "</tr><tr>" + "".join(
        '<th class="num">n</th><th class="num">FM</th><th class="num">AS</th>'
        '<th class="num">SF</th>'
        for _ in views
    )
    head += "</tr>"
    rows = []
    for topic in sorted(per_topic, key=str.lower):
        cells = []
        for v in views:
            found = per_topic[topic].get(v.label)
            if found is None:
                cells.append('<td class="num muted" colspan="4">—</td>')
                continue
            cells.append(f'<td class="num muted">{found["items"]}</td>')
            cells.extend(f'<td class="num">{found[m]:.2f}</td>' for m in METRICS)
        rows.append(f'<tr data-topic="{_e(topic)}"><td>{_e(topic)}</td>{"".join(cells)}</tr>')
    body = "\n".join(rows) or '<tr><td class="muted">no scored items</td></tr>'
    return (
        '<section id="topics"><h2>Topics</h2>'
        '<p class="note">Per topic: items scored (n), full marks (FM), all skills (AS) and '
        "skill fraction (SF), means over items.</p>"
        f'<div class="table-wrap"><table id="topics-table"><thead>{head}</thead>'
        f"<tbody>{body}</tbody></table></div></section>"
    )


def _human_rows(store: Store, scores: RunScores) -> list[dict[str, Any]]:
    """Judge-versus-human agreement, when the review module is installed."""
    try:
        from skillmix.review.agreement import human_agreement
    except ImportError:
        return []
    return list(human_agreement(store, scores))


def _agreement(store: Store, views: Sequence[_RunView]) -> str:
    blocks = []
    for v in views:
        rows = []
        for a in v.report.agreement:
            rows.append(
                f"<tr><td>{_e(a.criterion)}</td>"
                f"<td>{', '.join(_model(j) for j in a.judges)}</td>"
                f"<td>{_e(a.statistic.replace('_', ' '))}</td>"
                f'<td class="num">{_fmt(a.value)}</td>'
                f'<td class="num">{_fmt(a.raw_agreement * 100, 0)}%</td>'
                f'<td class="num">{a.units}</td></tr>'
            )
        if rows:
            blocks.append(
                f"<h3>{_e(v.label)}: judges with each other</h3>"
                + _table(
                    ["criterion", "judges", "statistic", "value", "raw agreement", "units"],
                    rows,
                    css_class="agreement-table",
                    numeric=(3, 4, 5),
                )
            )
        human = _human_rows(store, v.report.scores)
        if human:
            hrows = [
                f"<tr><td>{_model(str(h.get('judge', '')))}</td>"
                f"<td>{_e(h.get('criterion', ''))}</td>"
                f'<td class="num">{_e(h.get("units", ""))}</td>'
                f'<td class="num">{_fmt(float(h.get("agreement", math.nan)) * 100, 0)}%</td>'
                f'<td class="num">{_fmt(float(h.get("kappa", math.nan)))}</td></tr>'
                for h in human
            ]
            blocks.append(
                f"<h3>{_e(v.label)}: judges against human reviewers</h3>"
                + _table(
                    ["judge", "criterion", "units", "agreement", "Cohen's kappa"],
                    hrows,
                    css_class="human-agreement-table",
                    numeric=(2, 3, 4),
                )
            )
    if not blocks:
        blocks.append(
            '<p class="muted">Every run has a single judge and no human verdicts: there is '
            "no agreement to report. Grade with two or more judges (repeat --judge) to see "
            "how far they agree.</p>"
        )
    return (
        '<section id="agreement"><h2>Agreement</h2>'
        '<p class="note">Per criterion, over the generation rounds both graded: Cohen\'s '
        "kappa for two judges, Krippendorff's alpha for more; each judge's majority verdict "
        "before the naming penalty.</p>" + "".join(blocks) + "</section>"
    )


def _usage(views: Sequence[_RunView]) -> str:
    rows = []
    total = 0.0
    unpriced = False
    for v in views:
        for u in v.report.usage:
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
                f"<tr><td>{_e(v.label)}</td><td>{_e(u['role'])}</td>"
                f"<td>{_e(u['provider'])}:{_e(u['model'])}</td>"
                f'<td class="num">{u["calls"]:,}</td>'
                f"<td>{'paid' if u['sent'] else 'reused from the store'}</td>"
                f'<td class="num">{u["prompt_tokens"] or 0:,}</td>'
                f'<td class="num">{u["completion_tokens"] or 0:,}</td>'
                f'<td class="num">{_e(shown)}</td></tr>'
            )
    table = _table(
        ["run", "role", "model", "calls", "", "prompt tokens", "completion tokens", "cost USD"],
        rows,
        element_id="usage-table",
        numeric=(3, 5, 6, 7),
    )
    note = f"Total paid: ${total:.4f}" + (" plus calls without a known price." if unpriced else ".")
    return (
        f'<section id="usage"><h2>Tokens and cost</h2>{table}'
        f'<p class="note">{_e(note)}</p></section>'
    )


def _items_data(store: Store, views: Sequence[_RunView]) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    runs = []
    judges: list[str] = []
    for v in views:
        run_id = v.run["id"]
        runs.append({"id": run_id, "label": v.label})
        for record in item_details(store, v.report.scores):
            for j in record["judges"]:
                j["judge"] = display_model(j["judge"])
                if j["judge"] not in judges:
                    judges.append(j["judge"])
            items.append({"run": run_id, "model": v.label, **record})
    return {"runs": runs, "judges": judges, "items": items}


def _items_section(data: dict[str, Any]) -> str:
    ks = sorted({i["k"] for i in data["items"]})
    run_options = "".join(
        f'<option value="{_e(r["id"])}">{_e(r["label"])}</option>' for r in data["runs"]
    )
    k_options = "".join(f'<option value="{k}">k = {k}</option>' for k in ks)
    judge_options = "".join(f'<option value="{_e(j)}">{_e(j)}</option>' for j in data["judges"])
    return f"""<section id="items"><h2>Items</h2>
<p class="note">Every item and generation round of every run. Click a row to see the task,
both turns, the extracted answer and every judge's grading rounds. The verdict shown in the
list is the decided one (majority vote, sentence limit and naming penalty applied).</p>
<div class="filters" role="search">
  <label>model <select id="filter-run"><option value="">all models</option>
    {run_options}</select></label>
  <label>k <select id="filter-k"><option value="">all k</option>{k_options}</select></label>
  <label>judge <select id="filter-judge"><option value="">all judges</option>
    {judge_options}</select></label>
  <label class="grow">search <input id="filter-text" type="search"
    placeholder="topic, skill, answer text…"></label>
  <label class="check"><input id="filter-failures" type="checkbox"> only failures</label>
  <span id="item-count" class="muted" aria-live="polite"></span>
</div>
<div class="browser">
  <div class="item-list table-wrap"><table id="items-table"><thead><tr>
    <th>model</th><th>topic and skills</th><th>verdict</th>
  </tr></thead><tbody id="items-body"></tbody></table>
  <button id="items-more" type="button" hidden>show more</button></div>
  <aside id="item-detail" aria-live="polite"><p class="muted placeholder">Select an item to see
  its task, both turns, the answer and the verdicts.</p></aside>
</div>
<noscript><p class="warning warn">The item browser needs JavaScript; the figures above do
not.</p></noscript>
</section>"""


# --- the page --------------------------------------------------------------------------------


def build_page(store: Store, reports: Sequence[Report]) -> str:
    """The whole HTML document for already built reports (see `render_html`)."""
    views = _views(reports)
    board = leaderboard_from_reports(reports)
    data = _items_data(store, views)
    try:
        version = metadata.version("skillmix")
    except metadata.PackageNotFoundError:
        version = "unknown"
    title = "Skill-Mix report: " + ", ".join(v.label for v in views)
    nav = "".join(
        f'<a href="#{anchor}">{_e(name)}</a>'
        for anchor, name in (
            ("warnings", "Warnings"),
            ("runs", "Runs"),
            ("leaderboard", "Leaderboard"),
            ("plots", "Plots"),
            ("metrics", "Per run"),
            ("skills", "Skills"),
            ("topics", "Topics"),
            ("agreement", "Agreement"),
            ("usage", "Cost"),
            ("items", "Items"),
        )
    )
    header, runs_table = _header(views)
    body = "\n".join(
        [
            _warnings(views, board),
            runs_table,
            _leaderboard(board),
            _plots(views),
            _run_metrics(views),
            _heatmaps(views),
            _topics(views),
            _agreement(store, views),
            _usage(views),
            _items_section(data),
        ]
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="skillmix {_e(version)}">
<meta http-equiv="Content-Security-Policy" content="{content_security_policy(JS, CSS)}">
<title>{_e(title)}</title>
<style>{CSS}</style>
</head>
<body>
<a class="skip" href="#items">skip to items</a>
{header}
<nav class="sections">{nav}</nav>
<main class="wrap">
{body}
</main>
<footer class="wrap muted">Made by skillmix {_e(version)} from the run store alone; no model
was called to draw this page.</footer>
<script type="application/json" id="report-data">{_json_for_script(data)}</script>
<script>{JS}</script>
</body>
</html>
"""


CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f4f6f8; --card:#fff;
  --accent:#0072B2; --good:#2f855a; --good-bg:#e6f4ea; --bad:#c53030; --bad-bg:#fdecec;
  --warn:#975a16; --warn-bg:#fff8e1; --code:#f5f7fa; }
* { box-sizing: border-box; }
html { scroll-behavior: smooth; scroll-padding-top: 56px; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
.wrap { max-width: 1320px; margin: 0 auto; padding-left: 28px; padding-right: 28px; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; z-index: 20; }
header.top { background: linear-gradient(135deg, #102a43, #243b53); color: #f0f4f8;
  padding: 28px 0 22px; }
header.top h1 { margin: 0; font-size: 28px; letter-spacing: -0.01em; }
header.top .lede { margin: 4px 0 16px; color: #bcccdc; font-size: 16px; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr));
  gap: 10px 24px; margin: 0; }
dl.facts div { min-width: 0; }
dl.facts dt { font-size: 11px; text-transform: uppercase; letter-spacing: .06em; color: #9fb3c8; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
nav.sections { position: sticky; top: 0; z-index: 10; background: rgba(255,255,255,.96);
  border-bottom: 1px solid var(--line); white-space: nowrap; overflow-x: auto; padding: 0 20px;
  backdrop-filter: blur(4px); }
nav.sections a { display: inline-block; padding: 11px 12px; color: var(--muted);
  text-decoration: none; font-size: 14px; }
nav.sections a:hover { color: var(--accent); }
main { padding-top: 24px; padding-bottom: 24px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 12px;
  padding: 20px 24px; margin: 0 0 22px; box-shadow: 0 1px 2px rgba(16,42,67,.04); }
h2 { margin: 0 0 10px; font-size: 20px; letter-spacing: -0.01em; }
h3 { margin: 18px 0 8px; font-size: 16px; }
h4 { margin: 16px 0 6px; font-size: 14px; text-transform: uppercase; letter-spacing: .05em;
  color: var(--muted); }
p.note { color: var(--muted); margin: 0 0 12px; font-size: 14px; }
.muted { color: var(--muted); }
code { white-space: nowrap; font-size: 12.5px;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: var(--code); padding: 1px 5px; border-radius: 4px; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px;
  font-variant-numeric: tabular-nums; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { font-size: 12px; font-weight: 600; color: var(--muted); background: #f8fafc;
  text-transform: uppercase; letter-spacing: .04em; white-space: nowrap; }
th.group { text-align: center; border-left: 1px solid var(--line); }
tbody tr:hover { background: #f8fbff; }
.num { text-align: right; white-space: nowrap; }
td.metric { min-width: 140px; }
td.design { min-width: 260px; }
p.ok + .table-wrap, .warning + .table-wrap { margin-top: 12px; }
td.metric .mean { font-weight: 600; }
td.metric .ci { color: var(--muted); font-size: 12px; }
td.metric .bar { display: block; width: 100%; height: 3px; background: var(--line);
  border-radius: 2px; margin-top: 3px; }
td.metric .bar rect { fill: var(--accent); }
tr.incomparable { background: #fffaf0; }
.badge { display: inline-block; font-size: 12px; padding: 1px 8px; border-radius: 999px;
  white-space: nowrap; }
.badge.good { background: var(--good-bg); color: var(--good); }
.badge.bad { background: var(--bad-bg); color: var(--bad); }
.badge.warn { background: var(--warn-bg); color: var(--warn); }
.badge.none { background: var(--code); color: var(--muted); }
.status { font-size: 12px; padding: 1px 8px; border-radius: 999px; background: var(--warn-bg);
  color: var(--warn); }
.status-done { background: var(--good-bg); color: var(--good); }
.warning { display: flex; gap: 12px; align-items: baseline; border-left: 4px solid #d69e2e;
  background: var(--warn-bg); padding: 10px 14px; border-radius: 8px; margin: 8px 0; }
.warning strong { flex: 0 0 auto; max-width: 40%; }
.warning span { min-width: 0; overflow-wrap: anywhere; }
.warning.severe { border-color: var(--bad); background: var(--bad-bg); }
p.ok { background: var(--good-bg); color: var(--good); padding: 10px 14px; border-radius: 8px;
  margin: 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 18px; }
figure { margin: 0; }
svg.chart { display: block; }
.charts svg.chart { width: 100%; height: auto; }
.heatmaps { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
.heatmap-wrap { max-width: 100%; overflow-x: auto; }
.heatmap-wrap svg { max-width: 100%; height: auto; }
svg .cell:hover rect { stroke: #102a43; stroke-width: 1.5; }
svg .point:hover circle { r: 6; }
.filters { display: flex; flex-wrap: wrap; gap: 10px 16px; align-items: end; margin: 8px 0 14px; }
.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted);
  gap: 3px; }
.filters label.grow { flex: 1 1 220px; }
.filters label.check { flex-direction: row; align-items: center; gap: 6px; font-size: 14px;
  color: var(--ink); }
select, input[type=search] { font: inherit; font-size: 14px; padding: 6px 8px;
  border: 1px solid #cbd2d9;
  border-radius: 6px; background: #fff; color: var(--ink); }
.browser { display: grid; grid-template-columns: minmax(0, 5fr) minmax(0, 7fr); gap: 18px;
  align-items: start; }
.item-list { max-height: 82vh; overflow: auto; border: 1px solid var(--line);
  border-radius: 8px; }
.item-list thead th { position: sticky; top: 0; z-index: 1; }
tr.item-row { cursor: pointer; }
tr.item-row:focus { outline: 2px solid var(--accent); outline-offset: -2px; }
tr.item-row.selected { background: #e8f1fb; }
tr.item-row .skills { display: block; color: var(--muted); font-size: 12.5px; }
tr.item-row .sub { display: block; color: var(--muted); font-size: 12px; white-space: nowrap; }
tr.item-row td.model-cell { overflow-wrap: anywhere; min-width: 120px; }
tr.item-row td.verdict .badge { margin: 1px 0; }
tr.item-row .id { font-size: 11px; color: #9aa5b1; }
#items-more { margin: 10px; font: inherit; padding: 6px 12px; border-radius: 6px;
  border: 1px solid #cbd2d9; background: #fff; cursor: pointer; }
#item-detail { position: sticky; top: 56px; max-height: calc(100vh - 72px); overflow: auto;
  border: 1px solid var(--line); border-radius: 8px; padding: 16px 18px; background: #fcfdfe; }
#item-detail h3 { margin-top: 0; }
#item-detail .meta { display: flex; flex-wrap: wrap; gap: 6px; margin: 4px 0 10px; }
.skill-list { list-style: none; padding: 0; margin: 0; display: grid; gap: 8px; }
.skill-list li { border: 1px solid var(--line); border-radius: 8px; padding: 8px 10px;
  background: #fff; }
.skill-list .def { margin: 2px 0; }
.skill-list .example { margin: 2px 0; color: var(--muted); font-style: italic; }
.turn { border: 1px solid var(--line); border-radius: 8px; margin: 8px 0; background: #fff; }
.turn .who { font-size: 12px; font-weight: 600; color: var(--muted); padding: 6px 10px;
  border-bottom: 1px solid var(--line); background: #f8fafc; border-radius: 8px 8px 0 0; }
pre.text { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; padding: 8px 10px;
  font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.answer { border-left: 4px solid var(--accent); background: #eef6fc; border-radius: 6px;
  padding: 10px 12px;
  white-space: pre-wrap; overflow-wrap: anywhere; font-size: 15px; }
details { margin: 6px 0; }
details > summary { cursor: pointer; color: var(--accent); font-size: 13px; }
table.verdicts td, table.verdicts th { padding: 4px 8px; font-size: 13px; }
.yes { color: var(--good); font-weight: 600; }
.no { color: var(--bad); font-weight: 600; }
.unparsed { color: var(--warn); }
.judge-block { border-top: 1px dashed var(--line); margin-top: 12px; padding-top: 4px; }
.judge-block h4 { text-transform: none; letter-spacing: 0; font-size: 15px; color: var(--ink); }
span.model { white-space: nowrap; }
footer { padding: 8px 28px 40px; font-size: 13px; }
@media (max-width: 960px) {
  .browser { grid-template-columns: 1fr; }
  #item-detail { position: static; max-height: none; }
  .warning { flex-direction: column; gap: 2px; }
  .warning strong { max-width: none; }
  .wrap { padding-left: 14px; padding-right: 14px; }
  section { padding: 16px 14px; }
}
@media print { nav.sections, .filters, #items-more { display: none;
  } .item-list { max-height: none; } }
"""

# All model text goes through textContent (via el()); nothing from the data is ever
# parsed as HTML.
JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var items = data.items;
  var PAGE = 300;
  var limit = PAGE;
  var selected = -1;
  function $(id) { return document.getElementById(id); }
  function el(tag, attrs) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "class") node.className = value;
        else node.setAttribute(key, String(value));
      });
    }
    for (var i = 2; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function fmt(x) { return x === null || x === undefined ? "—" : Number(x).toFixed(2); }
  function scoresOf(rec, judge) {
    for (var i = 0; i < rec.judges.length; i++) {
      if (rec.judges[i].judge === judge) return rec.judges[i];
    }
    return null;
  }
  function skillName(rec, id) {
    var found = rec.skills.filter(function (s) { return s.id === id; })[0];
    return found ? found.name : id;
  }
  function namedSkills(rec) {
    var named = rec.named || {};
    if (Array.isArray(named)) return named.map(function (id) { return skillName(rec, id); });
    return Object.keys(named).map(function (id) {
      return skillName(rec, id) + " (as “" + named[id] + "”)";
    });
  }
  function chip(s) {
    if (!s) return el("span", {class: "badge none"}, "not graded");
    if (!s.scores) {
      return el("span", {class: "badge none", title: "no grading round parsed"}, "unscored");
    }
    if (s.scores.full_marks === 1) return el("span", {class: "badge good"}, "full marks");
    if (s.scores.all_skills === 1) return el("span", {class: "badge warn"}, "all skills");
    return el("span", {class: "badge bad"}, "skill fraction " + fmt(s.scores.skill_fraction));
  }
  function failed(rec, judge) {
    var list = judge ? [scoresOf(rec, judge)] : rec.judges;
    return list.some(function (j) { return j && (!j.scores || j.scores.full_marks !== 1); });
  }
  items.forEach(function (rec, index) {
    rec.index = index;
    var parts = [rec.item_id, rec.topic, rec.model, rec.answer];
    rec.skills.forEach(function (s) { parts.push(s.name, s.category); });
    rec.turns.forEach(function (t) { parts.push(t.reply); });
    rec.search = parts.join("\n").toLowerCase();
  });
  function matching() {
    var run = $("filter-run").value, k = $("filter-k").value, judge = $("filter-judge").value;
    var text = $("filter-text").value.trim().toLowerCase();
    var onlyFailures = $("filter-failures").checked;
    return items.filter(function (rec) {
      if (run && rec.run !== run) return false;
      if (k && String(rec.k) !== k) return false;
      if (judge && !scoresOf(rec, judge)) return false;
      if (text && rec.search.indexOf(text) < 0) return false;
      if (onlyFailures && !failed(rec, judge)) return false;
      return true;
    });
  }
  function renderList() {
    var judge = $("filter-judge").value;
    var rows = matching();
    var body = $("items-body");
    body.textContent = "";
    rows.slice(0, limit).forEach(function (rec) {
      var verdicts = el("td", {class: "verdict"});
      rec.judges.forEach(function (j) {
        if (judge && j.judge !== judge) return;
        var c = chip(j);
        if (rec.judges.length > 1 && !judge) c.setAttribute("title", j.judge);
        verdicts.appendChild(c);
        verdicts.appendChild(document.createTextNode(" "));
      });
      var tr = el("tr", {
          class: "item-row" + (rec.index === selected ? " selected" : ""),
          tabindex: "0", "data-index": rec.index, "data-run": rec.run, "data-item": rec.item_id,
          "data-k": rec.k, "data-round": rec.gen_round,
          "data-failed": failed(rec, judge) ? "1" : "0"},
        el("td", {class: "model-cell"}, rec.model,
          el("span", {class: "sub"}, "k = " + rec.k + " · round " + (rec.gen_round + 1))),
        el("td", null, rec.topic,
          el("span", {class: "skills"},
            rec.skills.map(function (s) { return s.name; }).join(" · ")),
          el("span", {class: "id"}, rec.item_id)),
        verdicts);
      tr.addEventListener("click", function () { select(rec.index); });
      tr.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); select(rec.index); }
      });
      body.appendChild(tr);
    });
    $("item-count").textContent = rows.length + " of " + items.length + " generations" +
      (rows.length > limit ? " (showing " + limit + ")" : "");
    $("items-more").hidden = rows.length <= limit;
  }
  function verdictCell(value) {
    if (value === 1) return el("td", {class: "yes", title: "met"}, "✓ 1");
    if (value === 0) return el("td", {class: "no", title: "not met"}, "✗ 0");
    if (typeof value === "number") return el("td", {title: "partly met"}, "◐ " + value);
    return el("td", {class: "muted"}, "—");
  }
  function judgeBlock(rec, j) {
    var block = el("div", {class: "judge-block", "data-judge": j.judge});
    block.appendChild(el("h4", null, "Judge " + j.judge));
    var head = el("tr", null, el("th", null, "criterion"));
    j.rounds.forEach(function (r) { head.appendChild(el("th", null, "round " + (r.round + 1))); });
    head.appendChild(el("th", null, "decided"));
    var body = el("tbody");
    rec.criteria.forEach(function (c) {
      var tr = el("tr", {"data-criterion": c.id}, el("td", null, c.label));
      j.rounds.forEach(function (r) {
        if (!c.judged) {
          tr.appendChild(el("td", {class: "muted", title: "computed in code"}, "code"));
        }
        else if (!r.verdicts) tr.appendChild(el("td", {class: "unparsed"}, "unparsed"));
        else tr.appendChild(verdictCell(r.verdicts[c.id]));
      });
      tr.appendChild(verdictCell(j.decided ? j.decided[c.id] : null));
      body.appendChild(tr);
    });
    block.appendChild(el("div", {class: "table-wrap"},
      el("table", {class: "verdicts"}, el("thead", null, head), body)));
    var s = j.scores;
    block.appendChild(el("p", {class: "scores"},
      s ? ("full marks " + fmt(s.full_marks) + " · all skills " + fmt(s.all_skills) +
           " · skill fraction " + fmt(s.skill_fraction))
        : "unscored: no grading round could be parsed"));
    if (j.penalized && j.penalized.length) {
      var removed = j.penalized.map(function (id) { return skillName(rec, id); });
      block.appendChild(el("p", {class: "penalty"},
        el("span", {class: "badge bad"}, "naming penalty removed: " + removed.join(", "))));
    }
    j.rounds.forEach(function (r) {
      var summary = "round " + (r.round + 1) + ": " + r.status + " via " + r.method +
        (r.reason ? " — " + r.reason : "");
      var d = el("details", {class: "raw"}, el("summary", null, summary));
      (r.raw || []).forEach(function (text) { d.appendChild(el("pre", {class: "text"}, text)); });
      block.appendChild(d);
    });
    return block;
  }
  function select(index) {
    selected = index;
    var rec = items[index];
    var prev = document.querySelectorAll("tr.item-row.selected");
    for (var i = 0; i < prev.length; i++) prev[i].classList.remove("selected");
    var row = document.querySelector('tr.item-row[data-index="' + index + '"]');
    if (row) row.classList.add("selected");
    var d = $("item-detail");
    d.textContent = "";
    d.setAttribute("data-index", index);
    d.setAttribute("data-item", rec.item_id);
    d.setAttribute("data-run", rec.run);
    d.appendChild(el("h3", null, rec.model + " · " + rec.topic));
    d.appendChild(el("div", {class: "meta"},
      el("span", {class: "badge none"}, "item " + rec.item_id),
      el("span", {class: "badge none"}, "k = " + rec.k),
      el("span", {class: "badge none"}, "generation round " + (rec.gen_round + 1)),
      el("span", {class: "badge none"}, rec.sentences + " sentence(s)"),
      namedSkills(rec).length
        ? el("span", {class: "badge bad named"}, "names " + namedSkills(rec).join(", "))
        : null));
    d.appendChild(el("h4", null, "Skills"));
    var list = el("ul", {class: "skill-list"});
    rec.skills.forEach(function (s) {
      list.appendChild(el("li", {"data-skill": s.id},
        el("strong", null, s.name), " ", el("span", {class: "badge none"}, s.category),
        el("p", {class: "def"}, s.definition),
        el("p", {class: "example"}, "Example: " + s.example)));
    });
    d.appendChild(list);
    d.appendChild(el("h4", null, "Conversation"));
    rec.turns.forEach(function (t, i) {
      var turn = el("div", {class: "turn", "data-turn": i + 1});
      turn.appendChild(el("details", {class: "prompt"},
        el("summary", null, "turn " + (i + 1) + " prompt"), el("pre", {class: "text"}, t.prompt)));
      turn.appendChild(el("div", {class: "who"}, "turn " + (i + 1) + " reply"));
      turn.appendChild(el("pre", {class: "text reply"}, t.reply));
      d.appendChild(turn);
    });
    d.appendChild(el("h4", null, "Extracted answer (graded)"));
    d.appendChild(el("div", {class: "answer", id: "detail-answer"}, rec.answer || "(empty)"));
    rec.judges.forEach(function (j) { d.appendChild(judgeBlock(rec, j)); });
    if (window.matchMedia("(max-width: 960px)").matches) d.scrollIntoView({block: "start"});
    else d.scrollTop = 0;
  }
  ["filter-run", "filter-k", "filter-judge", "filter-failures"].forEach(function (id) {
    $(id).addEventListener("change", function () { limit = PAGE; renderList(); });
  });
  $("filter-text").addEventListener("input", function () { limit = PAGE; renderList(); });
  $("items-more").addEventListener("click", function () { limit += PAGE; renderList(); });
  renderList();
})();
"""
