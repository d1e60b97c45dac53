"""Image runs in a real browser (Chromium): the HTML page and the review app.

The run is the real one of test_image_report: the scripted image server and the
pixel-reading judge, with a prompter that puts markup at the end of every prompt. In the
page and in the review app the images must be images (decoded, with a width), and the
markup must be text: visible as written, nothing injected, no dialog, no console error.
A reviewer answers the questions of a few images with the keyboard only (skipping one,
going back to change one); the store must hold exactly those answers under their name,
and the report and the page must then show the judge-vs-human agreement that a count by
hand gives.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import ARTIFACTS, launch, sync_api
from conftest import skillmix
from skillmix.review.server import BackgroundServer, generate_token
from test_image_report import COUNTS, HOSTILE, SAMPLES, make_run, stored

expect = sync_api.expect

pytestmark = [pytest.mark.slow]

DECODED_WIDTHS = "(imgs) => Promise.all(imgs.map((i) => i.decode().then(() => i.naturalWidth)))"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_run(tmp_path_factory.mktemp("browser-image"))


@pytest.fixture
def browser_page() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = launch(p)
        context = browser.new_context(viewport={"width": 1360, "height": 1100})
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        browser.close()


def watch(page: Any) -> tuple[list[str], list[str]]:
    """(problems, dialogs): console errors and page errors, and every dialog opened."""
    problems: list[str] = []
    dialogs: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return problems, dialogs


def test_the_page_shows_images_as_images_and_prompts_as_text(
    run: tuple[str, str], browser_page: Any, tmp_path: Path
):
    store, run_id = run
    skillmix("image", "html", run_id, "--store", store, "--out", "page.html", cwd=tmp_path)
    page = browser_page
    problems, dialogs = watch(page)
    page.goto((tmp_path / "page.html").as_uri())
    rows = page.locator("#images-body tr")
    expect(rows).to_have_count(SAMPLES)
    expect(page.locator("#image-count")).to_have_text(f"{SAMPLES} of {SAMPLES} images")
    widths = page.locator("#images-body img").evaluate_all(DECODED_WIDTHS)
    assert len(widths) == SAMPLES and min(widths) > 0  # every thumbnail is a real image

    # Keyboard: focus the first row, Enter opens it in the detail.
    records = stored(store, run_id)
    first = rows.first.get_attribute("data-item")
    rows.first.focus()
    page.keyboard.press("Enter")
    detail = page.locator("#image-detail")
    expect(detail).to_have_attribute("data-item", first)
    prompt = page.locator("#detail-prompt")
    assert prompt.text_content() == records["image.prompt"][first]["prompt"]
    assert prompt.text_content().endswith(HOSTILE) and prompt.locator("*").count() == 0
    shown = detail.locator("figure.shown img")
    assert shown.evaluate("(i) => i.decode().then(() => i.naturalWidth)") > 0
    assert page.locator("img").count() == SAMPLES + 1  # the thumbnails and the one shown
    assert page.locator('img[src="x"], script[src]').count() == 0
    assert page.evaluate("document.scripts.length") == 2  # the data and the page's script
    grade = records["image.grade"][first]
    blocks = detail.locator("#detail-concepts .concept")
    expect(blocks).to_have_count(len(grade["concepts"]))
    for block, concept in zip(blocks.all(), grade["concepts"], strict=True):
        assert block.get_attribute("data-concept") == concept["id"]
        replies = block.locator("td.raw").all_text_contents()
        assert replies == [r["raw"] for r in concept["rounds"]]

    # The filters narrow the list: k, outcome, and text that only the hostile tail has.
    page.select_option("#filter-k", "2")
    expect(rows).to_have_count(10)
    page.select_option("#filter-outcome", "missed")
    missed = sum(1 for g in records["image.grade"].values() if g["k"] == 2 and g["full_marks"] == 0)
    expect(rows).to_have_count(missed)
    page.select_option("#filter-k", "")
    page.select_option("#filter-outcome", "")
    page.fill("#filter-text", "onerror=alert(1)")
    expect(rows).to_have_count(SAMPLES)
    page.fill("#filter-text", "")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "image-report.png"), full_page=True)
    assert not problems and not dialogs, (problems, dialogs)


def stored_answers(path: Path, run_id: str) -> set[tuple[str, int, str, str, int]]:
    with sqlite3.connect(path) as db:
        return set(
            db.execute(
                "SELECT item_id, gen_round, criterion, reviewer, value FROM human_verdicts "
                "WHERE run_id = ?",
                (run_id,),
            ).fetchall()
        )


def test_a_reviewer_answers_with_the_keyboard_and_the_report_shows_the_agreement(
    run: tuple[str, str], browser_page: Any, tmp_path: Path
):
    store = tmp_path / "s.sqlite"
    shutil.copy(run[0], store)
    shutil.copytree(f"{run[0]}.images", f"{store}.images")
    run_id = run[1]
    grades = stored(str(store), run_id)["image.grade"]
    page = browser_page
    problems, dialogs = watch(page)
    reviewer = "Ada <b>L</b>"
    with BackgroundServer(store, run_id, token=generate_token()) as server:
        page.goto(server.url)
        page.locator("#name-input").wait_for(state="visible")
        page.keyboard.type(reviewer)
        page.keyboard.press("Enter")
        page.locator("#item").wait_for(state="visible")
        assert page.locator("#reviewer-name").text_content() == reviewer
        expect(page.locator("#agreement")).to_contain_text("No answers yet")
        item_id = page.locator("#item-id")
        rows = page.locator("#questions-body tr")

        def shown_image() -> str:
            """The item on screen, once its image is decoded (a real image, not a box)."""
            image = page.locator("#image")
            expect(image).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
            assert image.evaluate("(i) => i.decode().then(() => i.naturalWidth)") > 0
            return str(item_id.text_content())

        def answer(values: list[int]) -> None:
            expect(rows).to_have_count(len(values))
            for value in values:
                page.keyboard.press("y" if value else "n")
            page.keyboard.press("Enter")

        def judge(item: str) -> list[int]:
            return [c["decided"] for c in grades[item]["concepts"]]

        # 1. Agree with the judge (an undecided concept: yes).
        first = shown_image()
        page.locator("#item summary").click()
        prompt = page.locator("#prompt")
        expect(prompt).to_be_visible()
        assert prompt.text_content().endswith(HOSTILE) and prompt.locator("*").count() == 0
        assert page.locator("img").count() == 1 and page.locator('img[src="x"]').count() == 0
        scripts = page.evaluate("[...document.scripts].map((s) => s.src.split('/').pop())")
        assert [s.split("?")[0] for s in scripts] == ["dom.js", "image.js"]
        answers = {first: [1 if d is None else d for d in judge(first)]}
        answer(answers[first])
        expect(item_id).not_to_have_text(first)
        expect(page.locator("#agreement")).not_to_contain_text("No answers yet")

        # 2. Skip one: nothing stored.
        skipped = shown_image()
        page.keyboard.press("s")
        expect(item_id).not_to_have_text(skipped)

        # 3. Disagree with the judge on every concept; then go back (u) and change the
        #    first answer: the new answers replace the old.
        third = shown_image()
        answers[third] = [0 if d is None else 1 - d for d in judge(third)]
        answer(answers[third])
        expect(item_id).not_to_have_text(third)
        page.keyboard.press("u")
        expect(item_id).to_have_text(third)
        expect(page.locator("#item-again")).to_be_visible()
        on = rows.locator(".toggle.on").all_text_contents()
        assert on == ["yes" if v else "no" for v in answers[third]]  # the earlier answers
        answers[third][0] = 1 - answers[third][0]
        page.keyboard.press("1")
        page.keyboard.press("y" if answers[third][0] else "n")
        page.keyboard.press("Enter")
        expect(page.locator("#status")).to_contain_text(f"on {third}")
        expect(item_id).not_to_have_text(third)

        # 4. "Yes" to everything.
        fourth = shown_image()
        answers[fourth] = [1] * len(judge(fourth))
        answer(answers[fourth])
        expect(page.locator("#status")).to_contain_text(f"on {fourth}")
        assert len({first, skipped, third, fourth}) == 4

        units = [
            (j, h)
            for item, given in answers.items()
            for j, h in zip(judge(item), given, strict=True)
            if j is not None
        ]
        agreed = sum(j == h for j, h in units)
        expect(page.locator("#agreement .headline .big")).to_have_text(
            f"{math.floor(100 * agreed / len(units) + 0.5)}%"  # as Math.round does
        )
        expect(page.locator("#agreement-summary")).to_have_text("3 images answered by 1 reviewer")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "image-review.png"), full_page=True)

    # The store holds exactly these answers, under the reviewer's name, for gen_round 0.
    expected = {
        (item, 0, concept["id"], reviewer, value)
        for item, given in answers.items()
        for concept, value in zip(grades[item]["concepts"], given, strict=True)
    }
    assert stored_answers(store, run_id) == expected

    # The report's agreement is the count by hand: 2x2 counts, agreement and kappa.
    both_yes = sum(j == 1 and h == 1 for j, h in units)
    judge_only = sum(j == 1 and h == 0 for j, h in units)
    human_only = sum(j == 0 and h == 1 for j, h in units)
    both_no = sum(j == 0 and h == 0 for j, h in units)
    n = len(units)
    observed = (both_yes + both_no) / n
    chance = ((both_yes + judge_only) * (both_yes + human_only)
              + (human_only + both_no) * (judge_only + both_no)) / n**2  # fmt: skip
    kappa = (observed - chance) / (1 - chance)
    report = json.loads(
        skillmix("image", "report", run_id, "--store", str(store), "--json", cwd=tmp_path).stdout
    )
    overall = report["human_agreement"]["overall"]
    assert (overall["units"], overall["agreed"], overall["images"]) == (n, agreed, 3)
    assert [overall[k] for k in COUNTS] == [both_yes, judge_only, human_only, both_no]
    assert overall["agreement"] == pytest.approx(observed)
    assert overall["kappa"] == pytest.approx(kappa)

    # ... and the page shows it, with each person's answer beside the judge's rounds.
    skillmix("image", "html", run_id, "--store", str(store), "--out", "p.html", cwd=tmp_path)
    page.goto((tmp_path / "p.html").as_uri())
    total = page.locator('#agreement-table tr[data-category="all"]')
    expect(total.locator("td.agreement")).to_contain_text(f"{observed:.2f} [")
    expect(total.locator("td.kappa")).to_contain_text(f"{kappa:.2f}")
    cells = total.locator("td.num").all_text_contents()
    assert cells[:2] == [str(n), "3"]
    assert cells[-4:] == [str(both_yes), str(judge_only), str(human_only), str(both_no)]
    page.select_option("#filter-outcome", "reviewed")
    expect(page.locator("#images-body tr")).to_have_count(3)
    page.locator(f'#images-body tr[data-item="{fourth}"]').click()
    people = page.locator("#detail-concepts .people span")
    expect(people).to_have_count(len(answers[fourth]))
    assert set(people.all_text_contents()) == {f"{reviewer}: yes"}
    page.locator("#agreement").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "image-report-agreement.png"), full_page=True)
    assert not problems and not dialogs, (problems, dialogs)
