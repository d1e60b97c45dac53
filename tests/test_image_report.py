"""The HTML page of image runs, judge-vs-human agreement, and the review app's image API.

The run is real: `skillmix image run` against the scripted image server and the
pixel-reading judge of tests/image_server.py, 40 samples (k = 1..4, 10 each), with a
prompter that appends markup to every prompt, markup that would run script if a page
ever treated model text as HTML. The page must carry the stored run exactly (every
sample, every concept's rounds and decision), its thumbnails must be the images
themselves, downscaled within the stated budget, and the agreement figures must equal a
count by hand.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import skillmix
from image_server import ImageWorld, write_prompt
from skillmix.image.agreement import image_agreement, paired_units
from skillmix.image.image_store import ImageStore
from skillmix.image.review import check_answers, image_queue
from skillmix.image.run import GRADE_RECORD, IMAGE_RECORD, ITEM_RECORD, PROMPT_RECORD
from skillmix.image.thumbnails import (
    THUMBNAIL_BYTES,
    THUMBNAIL_PX,
    ThumbnailError,
    make_thumbnail,
)
from skillmix.review.server import BackgroundServer, generate_token
from skillmix.store import Store
from test_image_run import DRAWABLE, chat_reply

HOSTILE = '<img src=x onerror=alert(1)></script><script>alert(2)</script> & "quotes"'
ITEMS_PER_K = 10
SAMPLES = 4 * ITEMS_PER_K
# The budget a 40-image page is held to: every thumbnail at its limit (base64 adds a
# third), plus the page itself (styles, script, tables and the run's text).
PAGE_BUDGET = SAMPLES * THUMBNAIL_BYTES * 4 // 3 + 400_000
# The 2x2 counts of an agreement row: both yes, judge yes only, person yes only, both no.
COUNTS = ("both_yes", "judge_yes_human_no", "judge_no_human_yes", "both_no")


def hostile_prompts(body: dict[str, Any], n: int) -> Any:
    """The prompter's replies, each with markup at the end (checks and answers unchanged)."""
    content = body["messages"][-1]["content"]
    if isinstance(content, str) and "<prompt>" not in content:
        return chat_reply(f"{write_prompt(body['messages'])} {HOSTILE}")
    return None


def make_run(folder: Path, items: int = ITEMS_PER_K, seed: int = 0) -> tuple[str, str]:
    """An image run in `folder`/s.sqlite (its images beside it): (store path, run id)."""
    catalog = folder / "drawable.yaml"
    catalog.write_text(DRAWABLE)
    store = str(folder / "s.sqlite")
    with (
        ImageWorld("images") as images,
        ImageWorld("judge", garble_every=7, intercept=hostile_prompts) as judge,
    ):
        skillmix(
            "image", "run", "--generator", images.spec(), "--judge", judge.spec(),
            "--prompter", judge.spec(), "--catalog", str(catalog), "--k", "1,2,3,4",
            "--items", str(items), "--seed", str(seed), "--store", store,
            "--out", str(folder / "out"), cwd=folder,
        )  # fmt: skip
    opened = Store(store, read_only=True)
    try:
        return store, str(opened.list_runs("image")[-1]["id"])
    finally:
        opened.close()


def stored(store: str, run_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every record kind of the run, as the store holds it."""
    opened = Store(store, read_only=True)
    try:
        return {
            kind: opened.records(run_id, kind)
            for kind in (ITEM_RECORD, PROMPT_RECORD, IMAGE_RECORD, GRADE_RECORD)
        }
    finally:
        opened.close()


def page_data(html: str) -> dict[str, Any]:
    """The JSON a page carries (what its script puts on the page)."""
    match = re.search(r'<script type="application/json" id="image-data">(.*?)</script>', html, re.S)
    assert match, "the page has no #image-data"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return make_run(tmp_path_factory.mktemp("image-report"))


@pytest.fixture(scope="module")
def page(run: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    store, run_id = run
    out = tmp_path_factory.mktemp("page") / "page.html"
    shown = skillmix(
        "image", "html", run_id[:12], "--store", store, "--out", str(out), cwd=out.parent
    )
    assert f"wrote {out}" in shown.stdout and "1 run(s)" in shown.stdout
    return out


# --- the page ---------------------------------------------------------------------------------


def test_the_page_data_equals_the_stored_run(run: tuple[str, str], page: Path):
    store, run_id = run
    records = stored(store, run_id)
    data = page_data(page.read_text(encoding="utf-8"))
    assert data["runs"] == [{"id": run_id, "label": "openai-images:scripted-images"}]
    items = records[ITEM_RECORD]
    order = sorted(items, key=lambda i: items[i]["position"])
    assert [i["id"] for i in data["items"]] == order and len(order) == SAMPLES
    checked_rounds = 0
    for shown in data["items"]:
        item = items[shown["id"]]
        prompt = records[PROMPT_RECORD][shown["id"]]
        image = records[IMAGE_RECORD][shown["id"]]
        grade = records[GRADE_RECORD][shown["id"]]
        assert (shown["run"], shown["k"], shown["object"]) == (0, item["k"], item["object"]["name"])
        assert shown["prompt"] == prompt["prompt"] and shown["prompt"].endswith(HOSTILE)
        assert shown["prompt_status"] == prompt["status"]
        assert [a["prompt"] for a in shown["attempts"]] == [a["prompt"] for a in prompt["attempts"]]
        assert [a["status"] for a in shown["attempts"]] == [
            a["check"]["status"] for a in prompt["attempts"]
        ]
        assert shown["image"] == image["sha256"] == grade["image"]
        assert shown["image_size"] == [image["width"], image["height"]]
        assert shown["graded"] is True
        assert shown["full_marks"] == grade["full_marks"]
        assert shown["concept_fraction"] == grade["concept_fraction"]
        assert [c["id"] for c in shown["concepts"]] == [c["id"] for c in item["concepts"]]
        for concept, graded, sampled in zip(
            shown["concepts"], grade["concepts"], item["concepts"], strict=True
        ):
            assert concept["id"] == graded["id"] == sampled["id"]
            assert concept["question"] == graded["question"] == sampled["question"]
            assert concept["phrase"] == sampled["phrase"]
            assert concept["decided"] == graded["decided"]
            assert concept["votes"] == graded["votes"]
            assert concept["rounds"] == [
                {k: r[k] for k in ("round", "status", "answer", "raw", "reason")}
                for r in graded["rounds"]
            ]
            assert concept["human"] == []
            checked_rounds += len(concept["rounds"])
    assert checked_rounds == 3 * ITEMS_PER_K * (1 + 2 + 3 + 4)
    # Unreadable replies are on the page as the judge wrote them, and did not vote.
    unparsed = [
        r for i in data["items"] for c in i["concepts"] for r in c["rounds"] if r["answer"] is None
    ]
    assert unparsed and all(r["raw"] == "I am not sure." for r in unparsed)


def test_thumbnails_are_the_images_downscaled_within_the_budget(run: tuple[str, str], page: Path):
    store, _ = run
    data = page_data(page.read_text(encoding="utf-8"))
    images = ImageStore.beside(Store(store, read_only=True))
    used = {i["image"] for i in data["items"]}
    assert set(data["images"]) == used  # each image once, and only the run's
    for digest, thumb in data["images"].items():
        header, _, payload = thumb["src"].partition(",")
        assert header in ("data:image/png;base64", "data:image/jpeg;base64")
        raw = base64.b64decode(payload, validate=True)
        assert len(raw) == thumb["bytes"] <= THUMBNAIL_BYTES
        with Image.open(io.BytesIO(raw)) as decoded:
            assert decoded.format == header[len("data:image/") : -len(";base64")].upper()
            assert decoded.size == (thumb["width"], thumb["height"])
            small = np.asarray(decoded.convert("RGB"), dtype=float)
        assert max(thumb["width"], thumb["height"]) == THUMBNAIL_PX  # the originals are larger
        with Image.open(images.find(digest)) as original:
            expected = np.asarray(
                original.convert("RGB").resize(small.shape[1::-1], Image.Resampling.LANCZOS),
                dtype=float,
            )
        assert np.abs(small - expected).mean() < 4  # the same picture, not another one
    size = page.stat().st_size
    assert size <= PAGE_BUDGET, f"{size:,} bytes for {SAMPLES} images"


def test_model_text_never_reaches_the_page_as_markup(page: Path):
    html = page.read_text(encoding="utf-8")
    assert HOSTILE not in html and "<img" not in html and "onerror=alert" in html
    assert html.count("<script") == 2 and html.count("</script>") == 2
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in csp and csp.endswith("img-src data:")
    assert "unsafe-inline" not in csp and "http" not in csp
    # Nothing is fetched: no attribute points anywhere but inside the page.
    assert not re.findall(r'(?:src|href)="(?!#)[^"]*"', html)


def test_report_and_run_write_the_page_beside_the_json(run: tuple[str, str], tmp_path: Path):
    store, run_id = run
    skillmix("image", "report", run_id, "--store", store, "--out", "rep", cwd=tmp_path)
    folder = tmp_path / "rep" / run_id
    assert (folder / "image-report.html").is_file() and (folder / "image-report.json").is_file()
    data = page_data((folder / "image-report.html").read_text(encoding="utf-8"))
    assert len(data["items"]) == SAMPLES and len(data["images"]) > 0
    # A store copied without its image folder: the page shows the rest and says what is gone.
    shutil.copy(store, tmp_path / "alone.sqlite")
    skillmix("image", "html", run_id, "--store", "alone.sqlite", "--out", "gone.html",
             cwd=tmp_path)  # fmt: skip
    html = (tmp_path / "gone.html").read_text(encoding="utf-8")
    images = {r["sha256"] for r in stored(store, run_id)[IMAGE_RECORD].values()}
    assert f"{len(images)} image file(s) are not in" in html
    assert "copy the image folder along with the store" in html
    assert page_data(html)["images"] == {} and len(page_data(html)["items"]) == SAMPLES


def test_two_runs_on_one_page(tmp_path: Path):
    store, first = make_run(tmp_path, items=2)
    _, second = make_run(tmp_path, items=2, seed=1)
    skillmix("image", "html", first, second, "--store", store, "--out", "two.html", cwd=tmp_path)
    html = (tmp_path / "two.html").read_text(encoding="utf-8")
    data = page_data(html)
    assert [r["id"] for r in data["runs"]] == [first, second]
    assert [r["label"] for r in data["runs"]] == [
        f"openai-images:scripted-images ({first})",
        f"openai-images:scripted-images ({second})",
    ]
    assert [i["run"] for i in data["items"]] == [0] * 8 + [1] * 8
    assert 'id="filter-run"' in html and html.count('<tr data-k="1">') == 2


# --- judge vs human -------------------------------------------------------------------------


def put_answers(store: str, run_id: str, reviewer: str, answers: dict[str, dict[str, int]]):
    opened = Store(store)
    try:
        for item_id, verdicts in answers.items():
            opened.put_human_verdicts(run_id, item_id, 0, reviewer, verdicts)
    finally:
        opened.close()


def test_agreement_in_the_report_equals_a_count_by_hand(run: tuple[str, str], tmp_path: Path):
    store = str(tmp_path / "s.sqlite")
    shutil.copy(run[0], store)
    run_id = run[1]
    grades = stored(store, run_id)[GRADE_RECORD]
    graded = sorted(grades.values(), key=lambda g: g["item_id"])[:12]
    # Ada agrees with the judge on the first six images and says the opposite on the next
    # three; on the last three she answers "yes" to everything. Undecided concepts stay out.
    ada: dict[str, dict[str, int]] = {}
    for index, grade in enumerate(graded):
        for c in grade["concepts"]:
            judge = c["decided"]
            value = 1 if index >= 9 else (judge if index < 6 else 1 - (judge or 0))
            ada.setdefault(grade["item_id"], {})[c["id"]] = value
    put_answers(store, run_id, "Ada", ada)
    units = [
        (c["decided"], ada[g["item_id"]][c["id"]], c["category"])
        for g in graded
        for c in g["concepts"]
        if c["decided"] is not None
    ]
    undecided = sum(c["decided"] is None for g in graded for c in g["concepts"])
    n = len(units)
    both_yes = sum(j == 1 and h == 1 for j, h, _ in units)
    judge_only = sum(j == 1 and h == 0 for j, h, _ in units)
    human_only = sum(j == 0 and h == 1 for j, h, _ in units)
    both_no = sum(j == 0 and h == 0 for j, h, _ in units)
    observed = (both_yes + both_no) / n
    chance = ((both_yes + judge_only) * (both_yes + human_only)
              + (human_only + both_no) * (judge_only + both_no)) / n**2  # fmt: skip
    kappa = (observed - chance) / (1 - chance)

    report = json.loads(
        skillmix("image", "report", run_id, "--store", store, "--json", cwd=tmp_path).stdout
    )
    found = report["human_agreement"]
    assert found["reviewers"] == ["Ada"] and found["images"] == 12
    assert (found["units"], found["undecided"], found["ties"]) == (n, undecided, 0)
    overall = found["overall"]
    assert overall["agreed"] == both_yes + both_no
    assert overall["agreement"] == pytest.approx(observed)
    assert overall["kappa"] == pytest.approx(kappa)
    assert overall["kappa_low"] <= overall["kappa"] <= overall["kappa_high"]
    assert overall["low"] <= overall["agreement"] <= overall["high"]
    assert [overall[k] for k in COUNTS] == [both_yes, judge_only, human_only, both_no]
    for row in found["by_category"]:
        mine = [(j, h) for j, h, c in units if c == row["group"]]
        assert row["units"] == len(mine)
        assert row["agreed"] == sum(j == h for j, h in mine)
    assert sum(r["units"] for r in found["by_concept"]) == n
    # The terminal shows it too; the HTML page as well.
    shown = skillmix("image", "report", run_id, "--store", store, cwd=tmp_path).stdout
    assert "judge vs human (1 reviewer(s): Ada)" in shown
    assert f"{observed:.2f} [" in shown
    skillmix("image", "html", run_id, "--store", store, "--out", "p.html", cwd=tmp_path)
    html = (tmp_path / "p.html").read_text(encoding="utf-8")
    assert f'<td class="num agreement">{observed:.2f} [' in html
    assert f'<td class="num kappa">{kappa:.2f} [' in html
    data = page_data(html)
    first = next(i for i in data["items"] if i["id"] == graded[0]["item_id"])
    assert all(c["human"] == [["Ada", ada[first["id"]][c["id"]]]] for c in first["concepts"])


def test_several_people_count_by_majority_and_ties_stay_out():
    grade = {
        "item_id": "a",
        "concepts": [
            {"id": "red", "category": "colour", "decided": 1},
            {"id": "two", "category": "number", "decided": 0},
            {"id": "big", "category": "size", "decided": None},
        ],
    }

    def row(reviewer: str, criterion: str, value: int, gen_round: int = 0) -> Any:
        return {"item_id": "a", "gen_round": gen_round, "criterion": criterion,
                "reviewer": reviewer, "value": value, "created": 0.0}  # fmt: skip

    humans = [
        row("A", "red", 1), row("B", "red", 1), row("C", "red", 0),  # majority yes
        row("A", "two", 1), row("B", "two", 0),  # a tie: left out
        row("A", "big", 1),  # the judge left it undecided
        row("A", "red", 0, gen_round=1),  # not an image answer
    ]  # fmt: skip
    units, undecided, ties = paired_units([grade], humans)
    assert [(u.concept_id, u.judge, u.human) for u in units] == [("red", 1, 1)]
    assert (undecided, ties) == (1, 1)
    found = image_agreement([grade], humans)
    assert found is not None and found.reviewers == ("A", "B", "C")
    assert found.overall.agreement == 1.0 and found.overall.kappa.value == 1.0
    assert image_agreement([grade], []) is None


def test_kappa_interval_resamples_images_and_is_seeded():
    grades = [
        {"item_id": f"i{n}", "concepts": [
            {"id": f"c{j}", "category": "colour", "decided": (n + j) % 2} for j in range(3)
        ]}
        for n in range(20)
    ]  # fmt: skip
    humans = [
        {"item_id": g["item_id"], "gen_round": 0, "criterion": c["id"], "reviewer": "A",
         "value": c["decided"] if (n + j) % 5 else 1 - c["decided"], "created": 0.0}
        for n, g in enumerate(grades)
        for j, c in enumerate(g["concepts"])
    ]  # fmt: skip
    first = image_agreement(grades, humans, seed=3)
    again = image_agreement(grades, humans, seed=3)
    assert first is not None and again is not None
    assert first.overall == again.overall
    k = first.overall.kappa
    assert k.low < k.value < k.high and k.n == 60 and first.overall.images == 20
    assert first.overall.agreed == 48


# --- the review queue and answers --------------------------------------------------------------


def rows_of(store: str, run_id: str) -> list[dict[str, Any]]:
    records = stored(store, run_id)
    return [
        {"item": item, "image": records[IMAGE_RECORD].get(item_id)}
        for item_id, item in records[ITEM_RECORD].items()
    ]


def test_the_queue_is_a_seeded_sample_stratified_by_k(run: tuple[str, str]):
    rows = rows_of(*run)
    queue = image_queue(rows, [], reviewer="Ada", seed=0)
    assert len(queue) == SAMPLES
    assert [e.k for e in queue[:8]] == [1, 2, 3, 4, 1, 2, 3, 4]
    assert [e.item_id for e in image_queue(rows, [], reviewer="Bo", seed=0)] == [
        e.item_id for e in queue
    ]
    other = image_queue(rows, [], reviewer="Ada", seed=1)
    assert [e.item_id for e in other] != [e.item_id for e in queue]
    answered = [
        {"item_id": queue[0].item_id, "gen_round": 0, "criterion": "x", "reviewer": "Ada",
         "value": 1, "created": 0.0}
    ]  # fmt: skip
    # Answering one takes it out and leaves the order as it was: the k values keep turns.
    assert image_queue(rows, answered, reviewer="Ada") == queue[1:]
    assert image_queue(rows, answered, reviewer="Bo") == queue
    with pytest.raises(ValueError, match="give a name"):
        image_queue(rows, [], reviewer=" ")


def test_answers_are_checked_against_the_image_concepts(run: tuple[str, str]):
    row = rows_of(*run)[0]
    ids = [c["id"] for c in row["item"]["concepts"]]
    assert check_answers(row, dict.fromkeys(ids, 1)) == dict.fromkeys(ids, 1)
    for bad, why in (
        ({}, "non-empty"),
        ([1], "non-empty"),
        ({"nope<b>": 1}, 'not a concept of image .*"nope<b>"'),
        ({ids[0]: 2}, "must be 1 .yes. or 0 .no."),
        ({ids[0]: True}, "must be 1"),
    ):
        with pytest.raises(ValueError, match=why):
            check_answers(row, bad)


# --- the review app's image API --------------------------------------------------------------


@pytest.fixture(scope="module")
def review_app(run: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("review-api")
    store = folder / "s.sqlite"
    shutil.copy(run[0], store)
    shutil.copytree(f"{run[0]}.images", f"{store}.images")
    with BackgroundServer(store, run[1][:10], token=generate_token()) as server:
        yield server


def call(server: Any, path: str, body: Any = None, token: bool = True) -> tuple[int, Any, Any]:
    headers = {"X-Review-Token": server.token} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(server.base_url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read()), response.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers


def test_the_review_api_serves_images_and_takes_checked_answers(review_app: Any):
    status, queue, headers = call(review_app, "/api/queue?reviewer=Ada&limit=4")
    assert status == 200 and queue["total"] == SAMPLES and queue["remaining"] == SAMPLES
    assert [e["k"] for e in queue["entries"]] == [1, 2, 3, 4]
    assert "img-src 'self' data:" in headers["Content-Security-Policy"]
    item_id = queue["entries"][1]["item_id"]
    status, item, _ = call(review_app, f"/api/item?item_id={item_id}&reviewer=Ada")
    assert status == 200 and item["prompt"].endswith(HOSTILE) and item["human"] == {}
    assert "decided" not in json.dumps(item["concepts"])  # the judge's answers stay hidden
    status, image, _ = call(review_app, f"/api/image?item_id={item_id}")
    header, _, payload = image["data_url"].partition(",")
    assert status == 200 and header == "data:image/png;base64"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as decoded:
        assert decoded.size == (item["image"]["width"], item["image"]["height"])

    ids = [c["id"] for c in item["concepts"]]
    refused = [
        ({"reviewer": "Ada", "item_id": item_id, "verdicts": {"nope": 1}}, 400, "not a concept"),
        ({"reviewer": "Ada", "item_id": item_id, "verdicts": {ids[0]: 2}}, 400, "1 (yes) or 0"),
        ({"reviewer": "Ada", "item_id": item_id, "gen_round": 1,
          "verdicts": {ids[0]: 1}}, 400, "gen_round must be 0"),
        ({"reviewer": "", "item_id": item_id, "verdicts": {ids[0]: 1}}, 400, "reviewer"),
        ({"reviewer": "Ada", "item_id": "k9-none", "verdicts": {ids[0]: 1}}, 404, "no image"),
    ]  # fmt: skip
    for body, code, why in refused:
        status, answer, _ = call(review_app, "/api/verdicts", body)
        assert status == code and why in answer["error"], (body, answer)
    status, answer, _ = call(
        review_app, "/api/verdicts", {"reviewer": "Ada", "item_id": item_id,
                                      "verdicts": dict.fromkeys(ids, 1)}, token=False
    )  # fmt: skip
    assert status == 403
    status, saved, _ = call(
        review_app, "/api/verdicts",
        {"reviewer": "Ada", "item_id": item_id, "verdicts": dict.fromkeys(ids, 1)},
    )  # fmt: skip
    assert status == 200 and saved["saved"] == len(ids)
    assert saved["agreement"]["reviewers"] == ["Ada"] and saved["agreement"]["reviewed_images"] == 1
    status, queue, _ = call(review_app, "/api/queue?reviewer=Ada")
    assert queue["remaining"] == SAMPLES - 1
    assert item_id not in [e["item_id"] for e in queue["entries"]]
    status, item, _ = call(review_app, f"/api/item?item_id={item_id}&reviewer=Ada")
    assert item["human"] == dict.fromkeys(ids, 1)
    status, missing, _ = call(review_app, "/api/image?item_id=nope")
    assert status == 404 and "no image of sample 'nope'" in missing["error"]


# --- thumbnails on their own ---------------------------------------------------------------


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_a_transparent_image_is_put_on_white():
    clear = Image.new("RGBA", (600, 300), (255, 0, 0, 0))
    thumb = make_thumbnail(png(clear))
    assert (thumb.width, thumb.height) == (THUMBNAIL_PX, THUMBNAIL_PX // 2)
    with Image.open(io.BytesIO(base64.b64decode(thumb.data_url.partition(",")[2]))) as decoded:
        assert decoded.convert("RGB").getpixel((10, 10)) == (255, 255, 255)


def test_noise_is_squeezed_into_the_budget():
    noise = np.random.default_rng(0).integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)
    thumb = make_thumbnail(png(Image.fromarray(noise)))
    assert thumb.bytes <= THUMBNAIL_BYTES and thumb.mime == "image/jpeg"
    assert max(thumb.width, thumb.height) <= THUMBNAIL_PX


def test_bytes_that_are_no_image_are_refused():
    with pytest.raises(ThumbnailError, match="not an image"):
        make_thumbnail(b"\x89PNG\r\n\x1a\n but no more")
