"""The HTML report in a real Chromium (Playwright): plots render, items open, hostile model
text stays text, and the page asks the network for nothing.

Uses the system Chromium at /usr/bin/chromium (never `playwright install`). Leaves a
full-page screenshot in test-artifacts/report.png for people to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import ARTIFACTS, launch, sync_api
from report_fixtures import MALICIOUS, TwoRuns, two_student_runs
from skillmix.report.html import render_html
from skillmix.scoring.metrics import METRICS
from skillmix.store import Store


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, TwoRuns]]:
    with two_student_runs(tmp_path_factory.mktemp("browser")) as runs:
        store = Store(runs.store_path)
        path = render_html(store, [runs.careful, runs.sloppy], runs.store_path.parent / "r.html")
        store.close()
        yield path, runs


@pytest.fixture(scope="module")
def browser(report: tuple[Path, TwoRuns]) -> Iterator[Any]:
    # Depends on `report` so that the runs are made (asyncio) before Playwright's loop runs.
    with sync_api.sync_playwright() as p:
        chromium = launch(p)
        yield chromium
        chromium.close()


class Watched:
    """A page with every dialog, request, script error and console error it met."""

    def __init__(self, browser: Any, url: str, width: int = 1280):
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []  # Chromium reports CSP violations here
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on(
            "console", lambda m: self.console.append(m.text) if m.type == "error" else None
        )
        self.page.goto(url)

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watched(browser: Any, report: tuple[Path, TwoRuns]) -> Iterator[Watched]:
    path, _ = report
    page = Watched(browser, path.as_uri())
    yield page
    page.page.close()
    assert page.errors == [], page.errors
    assert page.csp_violations == [], "the page's own script or style was refused"
    assert page.dialogs == [], "a dialog fired: model text ran as code"
    assert page.requests == [path.as_uri()], "the page asked for something beyond itself"


def _box(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return dict(box)


def test_plots_and_heatmaps_render(watched: Watched):
    page = watched.page
    for metric in METRICS:
        chart = page.locator(f"#plot-{metric}")
        chart.scroll_into_view_if_needed()
        assert chart.is_visible()
        box = _box(chart)
        assert box["width"] > 200 and box["height"] > 150
        assert chart.locator("g.series").count() == 2
        assert chart.locator("circle").count() == 4
        assert chart.locator("polyline").count() == 2
        circle = _box(chart.locator("circle").first)
        assert circle["width"] > 0 and circle["height"] > 0
    for by in ("skill", "category"):
        grid = page.locator(f"#heatmap-{by}")
        assert grid.is_visible() and _box(grid)["width"] > 100
        assert grid.locator("g.cell").count() >= 2


def test_clicking_an_item_shows_task_turns_and_verdicts(watched: Watched):
    page = watched.page
    rows = page.locator("tr.item-row")
    assert rows.count() == 24
    page.select_option("#filter-run", label="openai:careful-student")
    page.select_option("#filter-k", "3")
    assert rows.count() == 6
    rows.first.click()
    detail = page.locator("#item-detail")
    assert detail.get_attribute("data-run") == rows.first.get_attribute("data-run")
    assert detail.locator(".skill-list li").count() == 3
    assert detail.locator(".skill-list .def").first.inner_text()
    turns = detail.locator(".turn")
    assert turns.count() == 2
    assert "Carefully told" in turns.nth(0).locator(".reply").inner_text()
    assert "Carefully told" in turns.nth(1).locator(".reply").inner_text()
    turns.nth(1).locator("summary").click()
    assert "at most two sentences" in turns.nth(1).locator("details pre").inner_text()
    assert "Carefully told" in detail.locator("#detail-answer").inner_text()
    verdicts = detail.locator("table.verdicts")
    assert verdicts.count() == 1
    assert verdicts.locator("tbody tr").count() == 3 + 3  # k skills + topic, sense, length
    assert verdicts.locator("th").filter(has_text="decided").count() == 1
    assert verdicts.locator("th").filter(has_text="round 3").count() == 1
    assert "full marks" in detail.locator(".scores").inner_text()
    detail.locator("details.raw summary").first.click()
    assert detail.locator("details.raw pre").first.is_visible()


def test_hostile_answer_is_shown_as_text(watched: Watched):
    page = watched.page
    page.fill("#filter-text", "alert(1)")
    rows = page.locator("tr.item-row")
    assert rows.count() == 12
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.run)")) == {
        rows.first.get_attribute("data-run")
    }
    rows.nth(1).click()
    answer = page.locator("#detail-answer")
    assert MALICIOUS in answer.inner_text()
    assert answer.is_visible()
    assert page.locator("img").count() == 0
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("#item-detail script").count() == 0
    assert page.locator("script").count() == 2
    assert page.evaluate("typeof window.alert") == "function"  # untouched


def test_csp_refuses_injected_script_and_style(browser: Any, report: tuple[Path, TwoRuns]):
    """Markup that slipped past escaping: its inline script does not run and its styles do
    not apply, while the page's own script and style sheet (allowed by hash) still do."""
    path, _ = report
    head, tail, end = path.read_text(encoding="utf-8").rpartition("</body>")
    assert tail == "</body>"
    injected = (
        '<script>window.injected = "ran"; document.title = "owned";</script>'
        "<style>#csp-probe { display: none; }</style>"
        '<div id="csp-probe" style="display: none">probe</div>'
        '<div id="csp-handler"><img src="data:," onerror="window.injected = \'handler\'"></div>'
    )
    target = path.with_name("injected.html")
    target.write_text(head + injected + tail + end, encoding="utf-8")
    page = Watched(browser, target.as_uri())
    try:
        assert page.page.evaluate("typeof window.injected") == "undefined"
        assert not page.page.title().startswith("owned")
        assert page.page.locator("#csp-probe").is_visible()  # neither style applied
        assert len(page.csp_violations) >= 3, page.console  # script, style, attribute
        # The page's own script ran and its own style sheet applies.
        assert page.page.locator("tr.item-row").count() == 24
        assert page.page.evaluate(
            "getComputedStyle(document.querySelector('header.top')).backgroundImage"
        ).startswith("linear-gradient")
        assert page.errors == [] and page.dialogs == []
    finally:
        page.page.close()


def test_filters(watched: Watched):
    page = watched.page
    rows = page.locator("tr.item-row")
    sync_api.expect(rows).to_have_count(24)
    failed = rows.evaluate_all("rs => rs.filter(r => r.dataset.failed === '1').length")
    assert 12 <= failed < 24  # every sloppy k=2 generation fails the sentence limit
    page.check("#filter-failures")
    sync_api.expect(rows).to_have_count(failed)
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.failed)")) == {"1"}
    page.select_option("#filter-k", "2")
    page.select_option("#filter-run", label="openai:sloppy-student")
    sync_api.expect(rows).to_have_count(6)
    page.uncheck("#filter-failures")
    page.fill("#filter-text", "no such text anywhere")
    sync_api.expect(rows).to_have_count(0)
    assert page.locator("#item-count").inner_text().startswith("0 of 24")


def test_narrow_screen_has_no_sideways_scroll(browser: Any, report: tuple[Path, TwoRuns]):
    page = Watched(browser, report[0].as_uri(), width=420)
    overflow = page.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    page.page.close()
    assert overflow <= 1
    assert page.errors == [] and page.dialogs == []


def test_screenshot_for_people(watched: Watched):
    page = watched.page
    page.fill("#filter-text", "pure")  # a sloppy answer that names a skill
    page.locator("tr.item-row").first.click()
    assert page.locator("#item-detail .named").count() == 1
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "report.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 50_000
