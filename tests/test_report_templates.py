"""The HTML report is made from template and asset files: the page inlines the asset files
as they are (the CSP hashes that text), and the templates escape every string they show,
whatever a model name or a run id holds. (The page from real runs: test_report_html.py;
in Chromium: test_browser_report.py.)"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from report_fixtures import put_constructed_run, verdict
from skillmix.report.html import render_html
from skillmix.store import Store

DATA_TAG = re.compile(r'<script type="application/json" id="report-data">.*?</script>', re.S)


def test_page_inlines_the_asset_files(tmp_path: Path):
    store = Store(tmp_path / "s.sqlite")
    run = put_constructed_run(store, "run-a", {"i1": verdict(1, 1)})
    text = render_html(store, [run], tmp_path / "r.html").read_text(encoding="utf-8")
    assets = resources.files("skillmix.report.html") / "assets"
    [style] = re.findall(r"<style>(.*?)</style>", text, flags=re.S)
    [script] = re.findall(r"<script>(.*?)</script>", text, flags=re.S)
    assert style.lstrip("\n") == (assets / "report.css").read_text(encoding="utf-8")
    # The helpers every page shares, then the report's own script.
    dom, own = ((assets / name).read_text(encoding="utf-8") for name in ("dom.js", "report.js"))
    assert script == f"\n{dom}\n{own}"


def test_names_and_ids_are_escaped_in_every_section(tmp_path: Path):
    store = Store(tmp_path / "s.sqlite")
    run = put_constructed_run(
        store,
        "run-<i>x",
        {"i1": verdict(1, 1), "i2": None},
        student='openai:<b id="s">student</b>',
        judge="openai:<u>judge</u>@http://127.0.0.1:1/v1",
    )
    text = render_html(store, [run], tmp_path / "r.html").read_text(encoding="utf-8")
    markup = DATA_TAG.sub("", text)
    assert not re.search(r"<(b|u|i)\b", markup)
    # Shown, as text: in the title, header, tables, filters and the charts' labels.
    assert markup.count("&lt;b id=&#34;s&#34;&gt;student&lt;/b&gt;") >= 8
    assert markup.count("&lt;u&gt;judge&lt;/u&gt;") >= 8
    assert markup.count("run-&lt;i&gt;x") >= 4
