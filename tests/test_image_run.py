"""`skillmix image run` end to end, against a scripted image server and a scripted judge.

The image server draws some concepts wrong on purpose and records what it drew; the judge
sees only the pixels. A run's verdicts must equal what was really drawn, concept by
concept, on both store backends; a run killed mid-way resumes without asking anything
twice; a re-run, an estimate and a paused budget send what they should and no more.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conftest import canonical, sigkill_at_request, skillmix
from image_server import ImageWorld
from skillmix.image.image_store import REF_PREFIX, ImageStore, images_folder
from skillmix.image.openai_images import OpenAIImagesModel
from skillmix.image.run import GRADE_RECORD, IMAGE_RECORD, ITEM_RECORD, PROMPT_RECORD
from skillmix.models import ChatRequest, resolve_model
from skillmix.models.openai_compat import OpenAICompatModel
from skillmix.store import Store

# Only concepts the scripted world can draw and see, named as its words.
DRAWABLE = """\
version: "test"
categories:
  - id: object
    role: object
    concepts: [cat, dog, lamp, kettle, boot, vase, clock, chair]
  - id: colour
    role: attribute
    concepts: [red, blue, green, yellow, purple, orange, black, white]
  - id: shape
    role: attribute
    concepts: [round, square, triangular, diamond-shaped, rectangular, oval]
  - id: size
    role: attribute
    concepts: [tiny, large]
  - id: number
    role: count
    concepts:
      - name: one
        value: 1
        question: "is there exactly one {object}?"
        phrase: "exactly one {object}"
      - {name: two, value: 2}
      - {name: three, value: 3}
      - {name: four, value: 4}
      - {name: five, value: 5}
  - id: spatial
    name: spatial relation
    role: relation
    max: 2
    concepts: [to the left of, to the right of, above, below]
"""


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL store's images go under the user's cache folder: keep it in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def run_args(images: ImageWorld, judge: ImageWorld, tmp_path: Path, *extra: str) -> list[str]:
    catalog = tmp_path / "drawable.yaml"
    catalog.write_text(DRAWABLE)
    return [
        "image", "run", "--generator", images.spec(), "--judge", judge.spec(),
        "--prompter", judge.spec(), "--catalog", str(catalog), "--k", "1,2,3,4",
        "--items", "6", "--out", str(tmp_path / "out"), *extra,
    ]  # fmt: skip


def records(store: str, kind: str) -> dict[str, dict[str, Any]]:
    opened = Store(store, read_only=True)
    try:
        (run,) = opened.list_runs(kind="image")
        return opened.records(run["id"], kind)
    finally:
        opened.close()


def test_per_concept_success_equals_what_the_server_drew(store_at, tmp_path: Path):
    store = store_at()
    with ImageWorld("images") as images, ImageWorld("judge", garble_every=7) as judge:
        args = run_args(images, judge, tmp_path, "--store", store, "--json")
        report = json.loads(skillmix(*args, cwd=tmp_path).stdout)
        sent = (len(images.requests), len(judge.requests))
        drawn = images.drawn
        garbled = judge.garbled
        # A re-run finds every answer and every image in the store: nothing is sent.
        again = skillmix(*args, cwd=tmp_path)
        assert (len(images.requests), len(judge.requests)) == sent
        assert "0 sent (none), 294 answered from the store" in again.stderr

    grades = records(store, GRADE_RECORD)
    items = records(store, ITEM_RECORD)
    prompts = records(store, PROMPT_RECORD)
    assert len(grades) == len(items) == 24
    verdicts: list[tuple[str, int | None, bool]] = []
    for grade in grades.values():
        truth = drawn[prompts[grade["item_id"]]["prompt"]]["drawn"]
        for concept in grade["concepts"]:
            verdicts.append((concept["id"], concept["decided"], truth[concept["name"]]["correct"]))
    assert all(decided == int(really) for _, decided, really in verdicts), [
        v for v in verdicts if v[1] != int(v[2])
    ]
    planted = sum(not really for _, _, really in verdicts)
    assert 0 < planted < len(verdicts) == 6 * (1 + 2 + 3 + 4)
    # The report's success per concept is what the server drew, concept by concept.
    for concept_id, rate in report["by_concept"].items():
        drawn_right = [really for cid, _, really in verdicts if cid == concept_id]
        assert rate["n"] == len(drawn_right)
        assert rate["successes"] == sum(drawn_right)
    full = [g["full_marks"] for g in grades.values()]
    assert report["by_k"]["1"]["full_marks"]["mean"] == pytest.approx(
        sum(g["full_marks"] for g in grades.values() if g["k"] == 1) / 6
    )
    assert set(full) == {0, 1}
    # Unreadable answers were asked again and never counted as "no".
    unparsed = sum(c["votes"]["unparsed"] for g in grades.values() for c in g["concepts"])
    assert garbled > 0 and unparsed > 0
    assert any("could not be read" in w for w in report["warnings"])
    # Prompts that forgot a concept were caught by the check and written again.
    assert {p["status"] for p in prompts.values()} == {"passed"}
    redone = [p for p in prompts.values() if len(p["attempts"]) > 1]
    assert redone and all(p["attempts"][0]["check"]["status"] == "failed" for p in redone)
    assert report["prompt_check"] == {"passed": 24}
    # Every image is in the image store beside the run store, under its hash.
    found = ImageStore(images_folder(Store(store, read_only=True)))
    for image in records(store, IMAGE_RECORD).values():
        path = found.find(image["sha256"])
        assert path is not None and path.as_posix().endswith(image["file"])


def test_the_report_command_writes_the_files(tmp_path: Path):
    store = str(tmp_path / "s.sqlite")
    with ImageWorld("images") as images, ImageWorld("judge") as judge:
        skillmix(*run_args(images, judge, tmp_path, "--store", store), cwd=tmp_path)
    run_id = (
        records(store, ITEM_RECORD) and Store(store, read_only=True).list_runs("image")[0]["id"]
    )
    out = skillmix("image", "report", run_id[:10], "--store", store, "--out", "rep", cwd=tmp_path)
    assert "full marks by k" in out.stdout and "success by category" in out.stdout
    folder = tmp_path / "rep" / run_id
    assert sorted(p.name for p in folder.iterdir()) == [
        "answers.csv", "categories.csv", "concepts.csv", "image-report.html",
        "image-report.json", "images.csv",
    ]  # fmt: skip
    answers = (folder / "answers.csv").read_text().splitlines()
    assert len(answers) == 1 + 6 * (1 + 2 + 3 + 4)
    document = json.loads((folder / "image-report.json").read_text())
    assert document["items"] == 24 and set(document["by_k"]) == {"1", "2", "3", "4"}
    # A run of another kind is refused with what to give instead.
    not_image = skillmix("image", "report", "nope", "--store", store, cwd=tmp_path, check=False)
    assert not_image.returncode == 1 and "no run 'nope'" in not_image.stderr


# --- resuming after SIGKILL ---------------------------------------------------------------------


def stored_bodies(store: Path, chat: OpenAICompatModel, draw: OpenAIImagesModel) -> set[str]:
    """The HTTP bodies of every call the store holds an answer to, as the servers got them."""
    images = ImageStore(images_folder(Store(store, read_only=True)))
    bodies = set()
    db = sqlite3.connect(store)
    for role, messages, settings in db.execute("SELECT role, messages, settings FROM calls"):
        s = json.loads(settings)
        msgs = json.loads(messages)
        refs: tuple[str, ...] = ()
        last = msgs[-1]
        if isinstance(last["content"], list):
            refs = tuple(
                images.data_url(p["image_url"]["url"].removeprefix(REF_PREFIX))
                for p in last["content"]
                if p["type"] == "image_url"
            )
            text = next(p["text"] for p in last["content"] if p["type"] == "text")
            msgs[-1] = {**last, "content": text}
        request = ChatRequest(
            tuple(msgs), s["temperature"], s["max_tokens"], s["seed"], s["json_schema"],
            s["sample"], images=refs,
        )  # fmt: skip
        if role == "generator":
            bodies.add(canonical(draw._body(request)))
        else:
            mode = "json_schema" if s["json_schema"] else ""
            body = {"messages": json.loads(request.messages_json), **chat._options(request, mode)}
            bodies.add(canonical(body))
    db.close()
    return bodies


def test_a_run_killed_mid_way_resumes_without_asking_twice(tmp_path: Path):
    killed_store, clean_store = tmp_path / "killed.sqlite", tmp_path / "clean.sqlite"
    with ImageWorld("images") as images, ImageWorld("judge", garble_every=7) as judge:
        ports = (images.port, judge.port)
        args = run_args(images, judge, tmp_path)
        sent_by_killed = sigkill_at_request(
            judge, [*args, "--store", str(killed_store)], tmp_path, at=120
        )
        sent_by_killed += [canonical(b) for b in images.requests]
    chat = resolve_model(judge.spec())
    draw = OpenAIImagesModel(images.model, ImageStore(tmp_path), size="512x512",
                             base_url=images.base_url)  # fmt: skip
    assert isinstance(chat, OpenAICompatModel)
    answered = stored_bodies(killed_store, chat, draw)
    assert answered and len(sent_by_killed) >= 120
    with (
        ImageWorld("images", port=ports[0]) as images,
        ImageWorld("judge", port=ports[1], garble_every=7) as judge,
    ):
        skillmix(*args, "--store", str(killed_store), cwd=tmp_path)
        resumed = [canonical(b) for b in [*images.requests, *judge.requests]]
        assert not answered & set(resumed), "an answered request was sent again"
        assert len(resumed) == len(set(resumed))
        marks = (len(images.requests), len(judge.requests))
        skillmix(*args, "--store", str(clean_store), cwd=tmp_path)
        clean = {canonical(b) for b in [*images.requests[marks[0] :], *judge.requests[marks[1] :]]}
    assert set(sent_by_killed) | set(resumed) == clean
    for kind in (GRADE_RECORD, PROMPT_RECORD, IMAGE_RECORD):
        assert records(str(killed_store), kind) == records(str(clean_store), kind)


# --- estimate, budget, errors ---------------------------------------------------------------------


def test_an_estimate_sends_nothing_and_a_budget_pauses(tmp_path: Path):
    pricing = tmp_path / "prices.toml"
    pricing.write_text('[pricing]\n"scripted-judge" = { input = 0, output = 100 }\n')
    store = str(tmp_path / "s.sqlite")
    with ImageWorld("images") as images, ImageWorld("judge") as judge:
        args = [*run_args(images, judge, tmp_path), "--store", store, "--pricing", str(pricing)]
        estimate = skillmix(*args, "--estimate", cwd=tmp_path)
        assert images.requests == judge.requests == []
        assert "generator" in estimate.stdout and "judge" in estimate.stdout
        paused = skillmix(*args, "--max-cost", "0.05", cwd=tmp_path, check=False)
        assert paused.returncode == 3, paused.stderr
        assert "paused" in paused.stderr
        first = [canonical(b) for b in [*images.requests, *judge.requests]]
        assert len(first) > 0
        # An estimate of a paused run counts what is left, from what the store already has.
        left = skillmix(*args, "--estimate", cwd=tmp_path)
        assert len(images.requests) + len(judge.requests) == len(first)
        assert "calls to send" in left.stdout
        skillmix(*args, cwd=tmp_path)
        everything = [canonical(b) for b in [*images.requests, *judge.requests]]
        done = skillmix(*args, "--estimate", cwd=tmp_path)
        assert "total: 0 calls to send" in done.stdout
    assert len(everything) == len(set(everything)), "a request was sent twice"
    assert len(records(store, GRADE_RECORD)) == 24


def test_models_that_cannot_do_the_job_are_refused_before_anything_is_sent(tmp_path: Path):
    with ImageWorld("images") as images, ImageWorld("judge") as judge:
        base = run_args(images, judge, tmp_path)
        text_judge = [*base[:5], "embedded", *base[6:]]
        refused = skillmix(*text_judge, cwd=tmp_path, check=False)
        assert refused.returncode == 1 and "cannot be sent images" in refused.stderr
        chat_generator = [*base[:3], judge.spec(), *base[4:]]
        refused = skillmix(*chat_generator, cwd=tmp_path, check=False)
        assert refused.returncode == 1 and "unknown image generator" in refused.stderr
        too_many = [("7" if word == "1,2,3,4" else word) for word in base]
        refused = skillmix(*too_many, cwd=tmp_path, check=False)
        assert refused.returncode == 1 and "at most 6 concepts fit one object" in refused.stderr
        assert "hint: use --k 6 or less" in refused.stderr
        assert images.requests == judge.requests == []


def chat_reply(text: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    message = {"role": "assistant", "content": text}
    return 200, {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}, {}


def test_prompts_that_cannot_be_confirmed_are_recorded_as_such(tmp_path: Path):
    """An unreadable check is asked again, then counts as unconfirmed (never as passed);
    a prompter that writes no prompt at all leaves the concept list to be drawn."""

    def unreadable_checks(body: dict[str, Any], n: int) -> Any:
        content = body["messages"][-1]["content"]
        return chat_reply("Looks good to me.") if "<prompt>" in str(content) else None

    def no_prompts(body: dict[str, Any], n: int) -> Any:
        content = body["messages"][-1]["content"]
        return chat_reply('""') if isinstance(content, str) and "<prompt>" not in content else None

    small = ["--items", "2", "--prompt-attempts", "2", "--grading-rounds", "1"]
    for intercept, name in ((unreadable_checks, "unparsed"), (no_prompts, "empty")):
        store = str(tmp_path / f"{name}.sqlite")
        with (
            ImageWorld("images") as images,
            ImageWorld("judge", intercept=intercept) as judge,
        ):
            args = [("1" if w == "1,2,3,4" else w) for w in run_args(images, judge, tmp_path)]
            skillmix(*args, *small, "--store", store, cwd=tmp_path)  # k = 1, 2 samples
            drawn = [r["prompt"] for r in images.requests]
            writes = [b["messages"] for b in judge.requests if "<prompt>" not in str(b["messages"])]
        prompts = records(store, PROMPT_RECORD)
        items = records(store, ITEM_RECORD)
        assert len(prompts) == 2 and len(records(store, GRADE_RECORD)) == 2
        for item_id, prompt in prompts.items():
            assert len(prompt["attempts"]) == 2
            if name == "unparsed":
                assert prompt["status"] == "unparsed" and prompt["chosen"] == 0
                for attempt in prompt["attempts"]:
                    assert attempt["check"]["status"] == "unparsed"
                    assert len(attempt["check"]["keys"]) == 2  # asked again once
                    assert "no verdict" in attempt["check"]["reason"]
            else:
                assert prompt["status"] == "failed" and prompt["chosen"] is None
                phrase = items[item_id]["concepts"][0]["phrase"]
                assert prompt["prompt"] == f"{items[item_id]['object']['name']}: {phrase}"
                assert prompt["prompt"] in drawn
        retries = [m[-1]["content"] for m in writes if len(m) > 2]
        assert len(retries) == 2
        if name == "unparsed":
            assert all("could not confirm" in r for r in retries)
        else:
            assert all("does not clearly ask for" in r for r in retries)
