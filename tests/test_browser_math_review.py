"""The verification queue of generated math questions in a real browser (Chromium).

The run is real: `math generate` against the planted scripted teacher of
test_math_generate, whose questions carry markup that would run script if the page ever
treated model text as HTML. A reviewer accepts one question, edits another and rejects a
third with the keyboard; the decisions must be in the store with the reviewer's name,
the time and (for the edit) the original text, and the export must hold exactly the
accepted question and the edited one, with the edit applied.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import ARTIFACTS, launch, sync_api
from scripted_server import ScriptedServer
from skillmix.catalog.load import load_catalog
from skillmix.math.generate import load_generate_run
from skillmix.math.generate_export import collect_export, write_export
from skillmix.math.generate_review import DECISION_KIND
from skillmix.review.server import BackgroundServer, generate_token
from skillmix.store import Store
from test_math_generate import CATALOG_YAML, MALICIOUS, Teacher, generate

expect = sync_api.expect

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def review_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    folder = tmp_path_factory.mktemp("math-review")
    (folder / "skills.yaml").write_text(CATALOG_YAML, encoding="utf-8")
    catalog = load_catalog([folder / "skills.yaml"], partial=True)
    store = Store(folder / "s.sqlite")
    with ScriptedServer(Teacher(markup=f" {MALICIOUS}")) as teacher:
        result = generate(store, catalog, teacher, pairs=10)
    store.close()
    assert len(result.survivors) >= 3
    with BackgroundServer(folder / "s.sqlite", result.run_id, token=generate_token()) as server:
        yield server


@pytest.fixture
def page(review_server: BackgroundServer) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1360, "height": 1100})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def stored_run(path: str | Path, run_id: str) -> Any:
    """The generate run as the store holds it (read on its own connection)."""
    store = Store(path, read_only=True)
    try:
        return load_generate_run(store, run_id)
    finally:
        store.close()


def stored_decisions(path: Path, run_id: str) -> dict[str, dict[str, Any]]:
    """Candidate id -> decision, straight from the SQLite file as another process sees it."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT data FROM records WHERE run_id = ? AND kind = ?", (run_id, DECISION_KIND)
        ).fetchall()
    return {d["candidate_id"]: d for d in (json.loads(r[0]) for r in rows)}


def test_accept_edit_and_reject_in_the_browser_and_only_accepted_are_exported(
    review_server: BackgroundServer, page: Any, tmp_path: Path
):
    path, run_id = review_server.store_path, review_server.run_id
    problems: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(review_server.url)
    page.locator("#name-input").wait_for(state="visible")
    reviewer = "Ada <b>L</b>"
    page.keyboard.type(reviewer)
    page.keyboard.press("Enter")
    page.locator("#candidate").wait_for(state="visible")
    assert page.locator("#reviewer-name").text_content() == reviewer  # text, not markup

    # Model text is shown as text: the markup is visible, nothing ran, nothing was parsed.
    question = page.locator("#question")
    expect(question).to_contain_text(MALICIOUS)
    assert question.locator("*").count() == 0
    assert page.locator("img").count() == 0
    scripts = page.evaluate("[...document.scripts].map((s) => s.src.split('/').pop())")
    assert [s.split("?")[0] for s in scripts] == ["dom.js", "math.js"]  # nothing injected
    shown_id = page.locator("#candidate-id")
    run = stored_run(path, run_id)

    # 1. Accept with the keyboard.
    accepted = shown_id.text_content()
    assert run.candidate(accepted).status == "survivor"
    assert page.locator("#skills li").count() == 2
    page.keyboard.press("a")
    expect(shown_id).not_to_have_text(accepted)
    expect(page.locator("#status")).to_contain_text(f"accepted {accepted}")

    # 2. Edit: question and answer change; Ctrl+Enter saves.
    edited = shown_id.text_content()
    page.keyboard.press("e")
    expect(page.locator("#edit-form")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "edit-question"
    assert page.locator("#edit-question").input_value() == run.candidate(edited).question
    page.keyboard.press("Control+a")
    page.keyboard.type("Edited by hand: what is 6 times 7?")
    page.locator("#edit-answer").fill("42")
    page.keyboard.press("Control+Enter")
    expect(shown_id).not_to_have_text(edited)
    expect(page.locator("#status")).to_contain_text("changed: question, answer")
    assert page.locator("#edit-form").is_hidden()

    # 3. Reject, with a note typed first (Esc leaves the field, then r).
    rejected = shown_id.text_content()
    page.locator("#note").fill("the parity skill is not really needed")
    page.keyboard.press("Escape")
    page.keyboard.press("r")
    expect(shown_id).not_to_have_text(rejected)
    counts = page.locator("#summary-counts")
    expect(counts.locator('[data-count="accepted"]')).to_have_text("1")
    expect(counts.locator('[data-count="edited"]')).to_have_text("1")
    expect(counts.locator('[data-count="rejected"]')).to_have_text("1")
    expect(page.locator("#reviewers")).to_contain_text(reviewer)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "math-review.png"), full_page=True)

    # The decisions are in the store: who, when, what; the edit keeps the original.
    stored = stored_decisions(path, run_id)
    assert {cid: d["decision"] for cid, d in stored.items()} == {
        accepted: "accept",
        edited: "edit",
        rejected: "reject",
    }
    assert {d["reviewer"] for d in stored.values()} == {reviewer}
    assert all(d["created"] > 1_600_000_000 for d in stored.values())
    edit = stored[edited]
    assert edit["question"] == "Edited by hand: what is 6 times 7?" and edit["answer"] == "42"
    assert edit["original"]["question"] == run.candidate(edited).question
    assert edit["original"]["answer"] == run.candidate(edited).answer
    assert edit["changed"] == ["question", "answer"]
    assert stored[rejected]["note"] == "the parity skill is not really needed"

    # The name is remembered; the next question waits after a reload.
    remaining = shown_id.text_content()
    page.reload()
    page.locator("#candidate").wait_for(state="visible")
    assert page.locator("#name-dialog").is_hidden()
    expect(shown_id).to_have_text(remaining)
    page.keyboard.press("?")
    assert "accept the question as it is" in page.locator("#help").inner_text()
    page.keyboard.press("Escape")
    assert dialogs == [] and problems == []  # no script errors, no CSP violations

    # Only the accepted and the edited question are exported, the edit applied.
    datasets = pytest.importorskip("datasets")
    store = Store(path, read_only=True)
    paths = write_export(collect_export(store, run_id), tmp_path / "out")
    store.close()
    loaded = datasets.load_from_disk(str(paths["hf"]))
    exported = {json.loads(r["provenance"])["candidate_id"]: r for r in loaded}
    assert set(exported) == {accepted, edited}
    assert exported[accepted]["messages"][0]["content"] == run.candidate(accepted).question
    assert exported[edited]["messages"][0]["content"] == "Edited by hand: what is 6 times 7?"
    assert exported[edited]["messages"][1]["content"].endswith("\\boxed{42}.")
    rows = [json.loads(line) for line in paths["questions"].read_text().splitlines()]
    assert {r["id"].split(":")[-1]: r["answer"] for r in rows}[edited] == "42"
    assert rejected not in {r["id"].split(":")[-1] for r in rows}


def post(server: BackgroundServer, body: Any, token: str | None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{server.base_url}/api/decision",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            **({"X-Review-Token": token} if token else {}),
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_the_decision_api_refuses_what_it_cannot_store(review_server: BackgroundServer):
    token = review_server.token
    run = stored_run(review_server.store_path, review_server.run_id)
    survivor = run.survivors[-1].id
    filtered = next(c.id for c in run.candidates if c.status == "rejected")
    base = {"reviewer": "bo", "candidate_id": survivor, "decision": "accept"}
    assert post(review_server, base, None)[0] == 403  # no token
    cases = [
        ({**base, "decision": "maybe"}, 400, "decision must be"),
        ({**base, "candidate_id": "nope"}, 404, "no generated question"),
        ({**base, "candidate_id": filtered}, 400, "only survivors"),
        ({**base, "decision": "edit", "question": "  "}, 400, "must not be empty"),
        ({**base, "decision": "edit", "answer": "4\u0000"}, 400, "plain text"),
        ({**base, "decision": "edit", "solution": "x" * 20_001}, 400, "at most"),
        ({**base, "reviewer": ""}, 400, "reviewer"),
        (["not", "an", "object"], 400, "JSON object"),
    ]
    for body, status, message in cases:
        code, answer = post(review_server, body, token)
        assert (code, message in answer["error"]) == (status, True), (body, answer)
    assert survivor not in stored_decisions(review_server.store_path, review_server.run_id)
