"""`skillmix spread` end to end against real local HTTP servers: a judge with a planted
format effect, answers shared through the cache, resume and pause, the report's section."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import skillmix
from scripted_server import Reply, ScriptedServer, _digest
from skillmix.config import RunConfig
from skillmix.errors import InputError
from skillmix.prompts import TemplateError
from skillmix.protocol.spread import plan_spread, prepare_spread
from skillmix.runtime.pool import BudgetReached
from skillmix.scoring.spread import spread_report
from skillmix.store import Store

JUDGE_PROMPT = re.compile(r"^=== text to grade ===$", re.I | re.M)
RUBRIC = re.compile(r"^rubric, one point per criterion:(.*?)\n\n", re.I | re.M | re.S)
FORMAT_METHODS = {"json": "schema:json_schema", "lines": "text:lines", "table": "text:table"}


def is_judge(body: dict[str, Any]) -> bool:
    return bool(JUDGE_PROMPT.search(body["messages"][-1]["content"]))


def rubric_labels(prompt: str) -> tuple[list[str], bool]:
    """The criteria a grading prompt lists, and whether it wrote them as one paragraph."""
    block = RUBRIC.search(prompt)
    assert block, prompt
    text = block.group(1)
    if not text.startswith("\n"):  # "Rubric, one point per criterion: a, b, c."
        return text.strip().rstrip(".").split(", "), True
    return [re.sub(r"^(\d+\.|-)\s+", "", line) for line in text.strip().splitlines()], False


def is_hard(answer: str) -> bool:
    """One item in four fails under every format: the scores are not all 1."""
    return _digest(answer, "hard") % 4 == 0


def planted_policy(body: dict[str, Any]) -> Reply:
    """Student: one sentence about the topic. Judge: answers in the format asked, giving
    every point, except for hard items and whenever the rubric is one paragraph (the
    planted format effect), which get none."""
    prompt = body["messages"][-1]["content"]
    if not is_judge(body):
        topic = re.search(r"about (.+?) that illustrates", body["messages"][0]["content"])
        assert topic, body
        return Reply(f"Answer: A short tale about {topic.group(1)}. Explanation: it is short.")
    answer = re.split(r"=== (?:end of text) ===", re.split(JUDGE_PROMPT, prompt)[1], flags=re.I)[0]
    labels, paragraph = rubric_labels(prompt)
    point = 0 if paragraph or is_hard(answer.strip()) else 1
    schema = body.get("response_format")
    if schema:
        return Reply(
            json.dumps(dict.fromkeys(schema["json_schema"]["schema"]["properties"], point))
        )
    if "Points Earned" in prompt:
        rows = "\n".join(f"| {label} | {point} |" for label in labels)
        return Reply(f"| Criteria | Points Earned |\n|---|---|\n{rows}\n| Total | {point * 3} |")
    asked = re.findall(r"^(.+): <1 or 0>$", prompt, flags=re.M)
    return Reply("\n".join(f"{label}: {point}" for label in asked))


def settings(server: ScriptedServer, **extra: Any) -> dict[str, Any]:
    return {
        "student": server.spec(),
        "judges": [server.spec()],
        "k": "2",
        "items": 12,
        "generation_rounds": 1,
        "grading_rounds": 1,
        **extra,
    }


def student_requests(server: ScriptedServer) -> int:
    return sum(not is_judge(body) for body in server.requests)


def test_spread_finds_the_planted_choice_and_shares_the_students_answers(tmp_path: Path):
    store = Store(tmp_path / "s.sqlite")
    with ScriptedServer(planted_policy) as server:
        prepared = prepare_spread(settings(server), variants=8, store=store)
        result = asyncio.run(prepared.run())
        # Only the base variant asked the student: 12 items x 2 turns; every other
        # variant changed only grading, so its 24 student calls came from the store.
        assert student_requests(server) == result.student_sent == 12 * 2
        assert result.student_shared == 7 * 12 * 2
        assert [r.student.sent for r in result.runs] == [24, 0, 0, 0, 0, 0, 0, 0]
        assert len(server.requests) == 12 * 2 + 8 * 12  # one grading round per variant

        # Each variant's judge was asked for the verdict format it chose.
        for run in result.runs:
            methods = {g["method"] for g in store.grades(run.run_id)}
            assert methods == {FORMAT_METHODS[run.variant.choices["judge_format"]]}, run

        report = spread_report(store, result.group)
        hard = sum(is_hard(g["answer"]) for g in store.generations(result.runs[0].run_id))
        base_value = (12 - hard) / 12
        assert 0 < hard < 12
        paragraph = [v.index for v in report.variants if v.choices["rubric"] == "paragraph"]
        assert paragraph and 0 not in paragraph
        for metric in ("full_marks", "all_skills", "skill_fraction"):
            row = report.row(metric, k=2)
            assert row.items == 12 and row.indices == list(range(8))
            assert row.values == [0.0 if i in paragraph else base_value for i in range(8)]
            assert row.spread.value == pytest.approx(base_value)
            assert row.spread.low <= row.spread.value <= row.spread.high
            top = row.top
            assert top is not None and top.dimension == "rubric" and top.low == "paragraph"
            assert top.moves and top.effect.value == pytest.approx(base_value)
            assert 0 < top.effect.low <= top.effect.value <= top.effect.high
            drop = top.contrasts["paragraph"]  # paragraph minus numbered: the sign
            assert drop.value == pytest.approx(-base_value) and drop.high < 0
            assert top.contrasts["bullets"].value == 0
            for other in row.effects[1:]:  # nothing else moves the scores
                assert other.effect.value == pytest.approx(0) and not other.moves
                assert other.adjusted_for[0] == "rubric"

        # The same spread again is the same runs: nothing is sent.
        before = len(server.requests)
        again = asyncio.run(prepare_spread(settings(server), variants=8, store=store).run())
        assert again.group == result.group and len(server.requests) == before
        assert [r.run_id for r in again.runs] == [r.run_id for r in result.runs]


def test_student_variants_ask_the_student_once_per_distinct_student_format(tmp_path: Path):
    store = Store(tmp_path / "s.sqlite")
    with ScriptedServer(planted_policy) as server:
        prepared = prepare_spread(
            settings(server, items=3), variants=6, student_variants=True, store=store
        )
        result = asyncio.run(prepared.run())
        formats = [r.variant.choices["student_skills"] for r in result.runs]
        assert set(formats) == {"inline", "labelled"}
        # One student conversation per item and distinct student format; a later variant
        # with a format already asked shares those answers.
        assert student_requests(server) == result.student_sent == 2 * 3 * 2
        first_of_format = [formats.index(f) == i for i, f in enumerate(formats)]
        assert [r.student.sent > 0 for r in result.runs] == first_of_format
        labelled = [b["messages"][0]["content"] for b in server.requests if not is_judge(b)]
        assert sum("\nDefinition: " in text for text in labelled) == 3 * 2


def test_a_spread_pauses_at_its_budget_and_resumes(tmp_path: Path):
    (tmp_path / "prices.toml").write_text("scripted = { input = 1.0, output = 1.0 }\n")
    store = Store(tmp_path / "s.sqlite")
    with ScriptedServer(planted_policy) as server:
        paused = prepare_spread(
            settings(server, items=2),
            variants=3,
            store=store,
            pricing=tmp_path / "prices.toml",
            max_cost=0.0,
        )
        with pytest.raises(BudgetReached, match=r"budget reached in variant 0 of 3 \(base\)"):
            asyncio.run(paused.run())
        assert server.requests == [] and store.list_runs()[0]["status"] == "paused"
        resumed = asyncio.run(
            prepare_spread(settings(server, items=2), variants=3, store=store).run()
        )
        assert resumed.group == paused.plan.group
        assert len(server.requests) == 2 * 2 + 3 * 2
        assert {run["status"] for run in store.list_runs()} == {"done"}


def test_what_a_spread_cannot_vary_is_refused_before_anything_runs():
    with pytest.raises(InputError, match="--protocol paper keeps the published format"):
        plan_spread(RunConfig(protocol="paper"), 2)
    with pytest.raises(TemplateError, match="template set v1 differs"):
        plan_spread(RunConfig(templates="v1"), 2)
    plan = plan_spread(RunConfig(), 3, seed=4)
    assert [c.spread.index for c in plan.configs if c.spread] == [0, 1, 2]
    assert plan.configs[0].templates == "v2"
    assert all(c.templates.startswith("variant:") for c in plan.configs[1:])
    assert len({c.spread.group for c in plan.configs if c.spread}) == 1
    assert (
        plan_spread(RunConfig(), 3, seed=4).group
        == plan.group
        != plan_spread(RunConfig(), 3, seed=5).group
    )


def test_cli_spread_prints_json_and_the_report_has_the_section(tmp_path: Path):
    with ScriptedServer(planted_policy) as server:
        common = ["--student", server.spec(), "--judge", server.spec(), "--k", "2"]
        common += ["--items", "6", "--generation-rounds", "1", "--grading-rounds", "1"]
        proc = skillmix("spread", *common, "--variants", "4", "--json", cwd=tmp_path)
        plain = skillmix("run", *common, cwd=tmp_path)
    data = json.loads(proc.stdout)
    assert len(data["variants"]) == 4 and data["variants"][0]["variant"] == "base"
    assert data["student_calls"] == {"sent": 12, "reused": 3 * 12}
    assert "student calls: 12 sent, 36 answered from the store" in proc.stderr
    base_run = data["variants"][0]["run_id"]
    assert {row["metric"] for row in data["rows"]} == {"full_marks", "all_skills", "skill_fraction"}

    report = json.loads(skillmix("report", base_run, "--json", cwd=tmp_path).stdout)
    assert report["spread"]["group"] == data["group"]
    html = (tmp_path / "skillmix-out" / base_run / "report.html").read_text()
    section = re.search(r'<section id="spread">(.*?)</section>', html, flags=re.S)
    assert section and data["group"] in section.group(1)
    assert "moves it most" in section.group(1) and "(this page)" in section.group(1)
    assert 'href="#spread"' in html

    # An ordinary run of the same settings is no part of the spread, but the base
    # variant's prompts are its prompts byte for byte: every call comes from the store.
    assert "0 sent (none), 18 answered from the store" in plain.stderr
    plain_id = re.search(r"run (run-[0-9a-f]{12})", plain.stderr)
    assert plain_id
    other = json.loads(skillmix("report", plain_id.group(1), "--json", cwd=tmp_path).stdout)
    assert other["spread"] is None
    html = (tmp_path / "skillmix-out" / plain_id.group(1) / "report.html").read_text()
    assert "No run on this page is part of a spread" in html


@pytest.mark.embedded
def test_embedded_spread_of_two_variants_has_the_section(tmp_path: Path):
    """The real SmolLM2 model as student and judge: a spread of two variants finishes and
    its report shows the Spread section (a few calls: the model is slow on 2 cores)."""
    args = ["spread", "--variants", "2", "--items", "2", "--k", "2"]
    args += ["--generation-rounds", "1", "--grading-rounds", "1"]
    args += ["--student-max-tokens", "80", "--judge-max-tokens", "60", "--json"]
    proc = skillmix(*args, cwd=tmp_path)
    data = json.loads(proc.stdout)
    assert [v["variant"] for v in data["variants"]][:1] == ["base"] and len(data["variants"]) == 2
    assert data["student_calls"] == {"sent": 4, "reused": 4}  # the variant changed grading only
    base_run = data["variants"][0]["run_id"]
    html = (tmp_path / "skillmix-out" / base_run / "report.html").read_text()
    section = re.search(r'<section id="spread">(.*?)</section>', html, flags=re.S)
    assert section and data["group"] in section.group(1)
    assert "smoke test of the pipeline" in html  # the weak judge is still named

    # The audit of that run finishes and says what one judge without reviews cannot tell;
    # the page shows both sections to a real browser (screenshot for people to look at).
    audit = json.loads(skillmix("audit", base_run, "--json", cwd=tmp_path).stdout)
    assert audit["run_ids"] == [base_run]
    assert any("leniency cannot be measured" in s for s in audit["cannot_tell"])
    from browser import ARTIFACTS, launch, sync_api

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = launch(p)
        page = chromium.new_page(viewport={"width": 1200, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto((tmp_path / "skillmix-out" / base_run / "report.html").as_uri())
        for anchor in ("spread", "audit"):
            shown = page.locator(f"section#{anchor}")
            assert shown.is_visible(), anchor
            shown.screenshot(path=str(ARTIFACTS / f"embedded-{anchor}-section.png"))
        assert "leniency cannot be measured" in page.locator("section#audit").inner_text()
        chromium.close()
    assert not errors, errors
