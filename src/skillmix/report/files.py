"""The report's files: metrics.json, metrics.csv, items.csv, by_<breakdown>.csv and
report.html, all from an already built `Report`."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from skillmix.report.build import Report
from skillmix.scoring.metrics import METRICS
from skillmix.store import Store

if TYPE_CHECKING:
    from skillmix.report.html.view.items import ItemSource


def write_report(
    report: Report,
    out_dir: str | Path,
    store: Store | None = None,
    item_source: ItemSource | None = None,
) -> list[Path]:
    """metrics.json, metrics.csv, items.csv and one CSV per breakdown, and with the `store`
    the report was built from also report.html (last); returns the paths. `item_source`:
    the page's item data, being built by another process (as `skillmix run` does).

    The order they are written in is not the order returned: the CSV files first, then the
    page, then metrics.json. The skill analysis, which `build_report` started on another
    thread, is needed only by the page's last section and by metrics.json, so it finishes
    meanwhile instead of being waited for; so do the page's item data when they are built
    by another process.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = [
        _write_metrics(report, out / "metrics.csv"),
        _write_items(report, out / "items.csv"),
        *(_write_rows(rows, out / f"by_{by}.csv") for by, rows in report.breakdowns.items()),
    ]
    page = None
    if store is not None:
        from skillmix.report.html import write_page  # imports Jinja2: only when a page is written

        page = write_page(store, [report], out / "report.html", item_source)
    paths = [_write_json(report, out / "metrics.json"), *tables]
    return paths if page is None else [*paths, page]


def _write_json(report: Report, path: Path) -> Path:
    path.write_text(json.dumps(report.to_dict(), indent=2))
    return path


def _write_metrics(report: Report, path: Path) -> Path:
    """One row per judge, k and metric: the mean and its interval."""
    with path.open("w", newline="") as f:
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
    return path


def _write_items(report: Report, path: Path) -> Path:
    """One row per item and judge, with its scores (empty where unscored)."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run_id", "judge", "item_id", "k", "skills", "topic", *METRICS])
        for r in report.scores.items:
            values = list(r.scores.as_tuple()) if r.scores else ["", "", ""]
            skills = "|".join(r.skill_ids)
            writer.writerow([report.run_id, r.judge, r.item_id, r.k, skills, r.topic_id, *values])
    return path


def _write_rows(rows: list[dict[str, Any]], path: Path) -> Path:
    """A breakdown, one row per group (an empty file when it has none)."""
    with path.open("w", newline="") as f:
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path
