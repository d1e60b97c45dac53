"""The review page in a real browser (Chromium via Playwright), driven by the keyboard only.

The run is real (engine + scripted servers on 127.0.0.1) and its student answers with
markup that would run script if the page ever treated model text as HTML. The app runs
with a token, as `skillmix review` does; a page on another origin gets nothing from it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from browser import ARTIFACTS, launch, sync_api
from scripted_server import Reply, honest_policy
from skillmix.review.server import BackgroundServer, generate_token
from test_review_app import make_run, salted_judge

expect = sync_api.expect

MALICIOUS = "<script>alert(1)</script><img src=x onerror=alert(1)>"

pytestmark = [
    pytest.mark.slow,
]


def malicious_student(body: dict[str, Any]) -> Reply:
    """Writes about the topic, with markup that runs script if rendered as HTML."""
    reply = honest_policy(body)
    assert reply.content is not None
    answer, explanation = reply.content.split("\nExplanation:")
    return Reply(f"{answer} {MALICIOUS}\nExplanation:{explanation}")


@pytest.fixture(scope="module")
def review_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    path = tmp_path_factory.mktemp("browser") / "s.sqlite"
    run_id = make_run(
        path,
        malicious_student,
        [salted_judge("a", 4), salted_judge("b", 3)],
        k=(2, 3),
        items=2,
        generation_rounds=2,
        grading_rounds=3,
    )
    with BackgroundServer(path, run_id, token=generate_token()) as server:
        yield server


@pytest.fixture
def page(review_server: BackgroundServer) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1360, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def stored_verdicts(path: Path, run_id: str, reviewer: str) -> list[tuple[str, int, str, int]]:
    """Straight from the SQLite file, as another process would see it."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT item_id, gen_round, criterion, value FROM human_verdicts "
            "WHERE run_id = ? AND reviewer = ? ORDER BY criterion",
            (run_id, reviewer),
        ).fetchall()
    return [tuple(r) for r in rows]


def test_keyboard_review_stores_verdicts_and_updates_agreement(
    review_server: BackgroundServer, page: Any
) -> None:
    path, run_id = review_server.store_path, review_server.run_id
    dialogs: list[str] = []
    problems: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    page.goto(review_server.url)
    name_input = page.locator("#name-input")
    name_input.wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "name-input"
    reviewer = "Ada <b>L</b>"
    page.keyboard.type(reviewer)
    page.keyboard.press("Enter")

    page.locator("#item").wait_for(state="visible")
    assert page.locator("#reviewer-name").text_content() == reviewer  # text, not markup
    expect(page.locator("#answer")).not_to_be_empty()
    before = page.locator("#agreement").inner_text()
    assert "No human verdicts yet" in before

    # Model text is shown as text: the markup is visible, nothing ran, nothing was parsed.
    answer = page.locator("#answer")
    assert MALICIOUS in answer.text_content()
    assert answer.locator("*").count() == 0
    assert page.locator("img").count() == 0
    scripts = page.evaluate("[...document.scripts].map((s) => s.src.split('/').pop())")
    assert [s.split("?")[0] for s in scripts] == ["dom.js", "app.js"]  # nothing injected

    rows = page.locator("#criteria-body tr")
    criteria = [rows.nth(i).get_attribute("data-criterion") for i in range(rows.count())]
    assert criteria[-3:] == ["topic", "sense", "length"]
    item_id = page.locator("#item-id").text_content()
    gen_round = int(page.locator("#item-round").text_content().split()[-1]) - 1
    shown = page.locator("#item .meta")  # k, generation round and item id
    first = shown.text_content()

    # Grade with the keyboard only: all met, then row 2 not met, then submit.
    page.keyboard.press("a")
    page.keyboard.press("2")
    page.keyboard.press("n")
    assert "selected" in (rows.nth(2).get_attribute("class") or "")  # moved on to row 3
    page.keyboard.press("Enter")

    expect(page.locator("#agreement")).not_to_contain_text("No human verdicts yet")
    after = page.locator("#agreement").inner_text()
    assert after != before
    assert re.search(r"\d+%", after) and "1 generation checked by 1 reviewer" in after
    expect(shown).not_to_have_text(first)

    expected = {c: 1 for c in criteria} | {criteria[1]: 0}
    stored = stored_verdicts(path, run_id, reviewer)
    assert set(stored) == {(item_id, gen_round, c, v) for c, v in expected.items()}

    # The next generation is just as harmless.
    expect(page.locator("#answer")).not_to_be_empty()
    assert MALICIOUS in answer.text_content() and page.locator("img").count() == 0

    # A partial verdict needs a second Enter; s skips without storing.
    page.keyboard.press("y")
    page.keyboard.press("n")
    page.keyboard.press("Enter")
    assert "press Enter again" in page.locator("#status").text_content()
    assert "on" in (rows.nth(0).locator(".toggle.yes").get_attribute("class") or "")
    assert "on" in (rows.nth(1).locator(".toggle.no").get_attribute("class") or "")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)
    skipped = shown.text_content()
    page.keyboard.press("s")
    expect(shown).not_to_have_text(skipped)
    assert len(stored_verdicts(path, run_id, reviewer)) == len(criteria)

    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    assert "mark all criteria met" in page.locator("#help").inner_text()
    page.screenshot(path=str(ARTIFACTS / "review-help.png"))
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()

    # The name is remembered: a reload goes straight to the next generation.
    page.reload()
    page.locator("#item").wait_for(state="visible")
    assert page.locator("#name-dialog").is_hidden()

    assert dialogs == []
    assert problems == []  # no script errors, no CSP violations


class OtherSite:
    """A page on another origin (127.0.0.2, so cross-site) served by a real HTTP server."""

    def __init__(self, html: str):
        body = html.encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
        self.url = f"http://127.0.0.2:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OtherSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_other_origin_gets_nothing_even_without_a_token(
    review_server: BackgroundServer, page: Any
) -> None:
    """no-cors requests carry no Origin and no token; Chromium still says where they come
    from (Sec-Fetch-Site), and the app refuses them before doing any work."""
    path, run_id = review_server.store_path, review_server.run_id
    with sqlite3.connect(path) as db:
        item_id, gen_round = db.execute(
            "SELECT item_id, round FROM generations WHERE run_id = ? LIMIT 1", (run_id,)
        ).fetchone()
    with BackgroundServer(path, run_id) as app:  # loopback, no token: the library default
        base = app.base_url
        verdict = {"reviewer": "mallory", "item_id": item_id, "gen_round": gen_round,
                   "verdicts": {"topic": 0}}  # fmt: skip
        script = f"""
          const app = {json.dumps(base)};
          Promise.allSettled([
            fetch(app + "/api/item?item_id={item_id}&gen_round={gen_round}", {{mode: "no-cors"}}),
            fetch(app + "/api/queue?reviewer=mallory", {{mode: "no-cors"}}),
            fetch(app + "/api/verdicts", {{method: "POST", mode: "no-cors",
              headers: {{"Content-Type": "text/plain"}}, body: {json.dumps(json.dumps(verdict))}}}),
          ]).then(() => {{ document.title = "sent"; }});
        """
        statuses: dict[str, int] = {}
        page.on(
            "response",
            lambda r: (
                statuses.__setitem__(r.url.split("?")[0], r.status)
                if r.url.startswith(base)
                else None
            ),
        )
        with OtherSite(f"<!doctype html><title>other</title><script>{script}</script>") as site:
            page.goto(site.url)
            page.wait_for_function("document.title === 'sent'")
        assert statuses == {
            f"{base}/api/item": 403,
            f"{base}/api/queue": 403,
            f"{base}/api/verdicts": 403,
        }
        assert stored_verdicts(path, run_id, "mallory") == []
        # The same requests from the app's own page are served.
        page.goto(app.url)
        page.locator("#name-input").wait_for(state="visible")
        assert (
            page.evaluate(
                f"fetch('/api/item?item_id={item_id}&gen_round={gen_round}').then(r => r.status)"
            )
            == 200
        )
