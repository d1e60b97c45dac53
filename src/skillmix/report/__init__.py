"""Reports: a terminal table, and JSON and CSV files, built from the store alone."""

from skillmix.report.tables import Report, build_report, render_report, write_report

__all__ = ["Report", "build_report", "render_report", "write_report"]
