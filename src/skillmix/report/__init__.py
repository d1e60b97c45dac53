"""Reports built from the store alone: a terminal table, JSON and CSV files, and one
self-contained HTML page.

`build` gathers a run's `Report`, `terminal` prints it, `files` writes it (the page
itself comes from `html`, with its templates and assets).
"""

from skillmix.report.build import Report, build_report
from skillmix.report.files import write_report
from skillmix.report.terminal import render_report, render_runs

__all__ = ["Report", "build_report", "render_report", "render_runs", "write_report"]
