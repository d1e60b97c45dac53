"""`--protocol paper`, decoding defaults as published, and `skillmix protocol diff`."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from conftest import skillmix
from scripted_server import Reply, ScriptedServer, _digest, honest_policy, rubric_labels_in
from skillmix.catalog.load import load_catalog
from skillmix.catalog.model import Catalog, Skill, Topic
from skillmix.config import PROTOCOLS, Decoding, RunConfig
from skillmix.models import resolve_model
from skillmix.protocol.differences import DIFFERENCES, RULES
from skillmix.protocol.engine import Engine
from skillmix.protocol.naming import naming_penalty, substring_naming
from skillmix.report import build_report
from skillmix.store import Store


def run_engine(store: Store, config: RunConfig, catalog: Catalog | None = None):
    engine = Engine(
        store,
        config,
        catalog or load_catalog(),
        resolve_model(config.student),
        [resolve_model(j) for j in config.judges],
    )
    return asyncio.run(engine.run())


def shuffled_table_judge(body: dict) -> Reply:
    """Answers with the published table, its rows in reverse order, names lower-cased and
    a total row: only matching rows by name, never by position, reads it right."""
    last = body["messages"][-1]["content"]
    if "Text to grade" not in last:
        return honest_policy(body)
    labels = rubric_labels_in(last)
    values = {label: _digest(label, body.get("seed", 0)) % 2 for label in labels}
    rows = "\n".join(f"| {label.lower()} | {values[label]} |" for label in reversed(labels))
    return Reply(
        "Here is my grading:\n\n| Criteria | Points Earned |\n|---|---|\n"
        f"{rows}\n| Total Points Earned | {sum(values.values())} |\n\nExplanation: fine."
    )


def test_paper_protocol_sends_no_schema_and_reads_the_table(tmp_path: Path):
    with ScriptedServer(shuffled_table_judge) as server:
        config = RunConfig(
            student=server.spec(),
            judges=(server.spec(),),
            k=(2, 3),
            items=3,
            generation_rounds=1,
            grading_rounds=2,
            protocol="paper",
        )
        store = Store(tmp_path / "s.sqlite")
        result = run_engine(store, config)
    assert config.structured is False
    judged = [r for r in server.requests if "Text to grade" in r["messages"][-1]["content"]]
    assert len(judged) == 6 * 2
    assert not any("response_format" in r for r in judged)
    for request in judged:
        prompt = request["messages"][-1]["content"]
        labels = rubric_labels_in(prompt)
        k = sum(label.startswith("Correctly illustrates") for label in labels)
        assert len(labels) == k + 3  # the judge sees the sentence limit too, as published
        assert labels[-1] == f"At most {'one sentence' if k == 2 else 'two sentences'}"
        assert "Points Earned" in prompt and "Total Points Earned" in prompt
    grades = store.grades(result.run_id)
    assert {(g["status"], g["method"]) for g in grades} == {("parsed", "text:table")}
    report = build_report(store, result.run_id)
    assert report.protocol == "paper" and report.to_dict()["protocol"] == "paper"
    assert [(r.k, r.scored) for r in report.rows] == [(2, 3), (3, 3)]


def test_table_values_follow_the_row_names_not_their_order(tmp_path: Path):
    with ScriptedServer(shuffled_table_judge) as server:
        config = RunConfig(
            student=server.spec(),
            judges=(server.spec(),),
            k=(3,),
            items=2,
            generation_rounds=1,
            grading_rounds=1,
            protocol="paper",
        )
        store = Store(tmp_path / "s.sqlite")
        result = run_engine(store, config)
    catalog = load_catalog()
    judged = [r for r in server.requests if "Text to grade" in r["messages"][-1]["content"]]
    by_answer = {}
    for request in judged:
        prompt = request["messages"][-1]["content"]
        answer = prompt.split("=== Text to grade ===")[1].split("=== End of text ===")[0]
        labels = rubric_labels_in(prompt)
        by_answer[answer.strip()] = {label: _digest(label, request["seed"]) % 2 for label in labels}
    answers = {(g["item_id"], g["round"]): g["answer"] for g in store.generations(result.run_id)}
    items = {i["item_id"]: i for i in store.items(result.run_id)}
    for grade in store.grades(result.run_id):
        written = by_answer[answers[(grade["item_id"], grade["gen_round"])]]
        item = items[grade["item_id"]]
        expected = {
            f"skill:{s}": written[f"Correctly illustrates {catalog.skill(s).name.lower()}"]
            for s in item["skill_ids"]
        }
        expected["topic"] = written[f"Pertains to {catalog.topic(item['topic_id']).name}"]
        expected["sense"] = written["Text makes sense"]
        assert grade["verdicts"] == expected


def test_paper_naming_penalty_is_the_published_substring_test(tmp_path: Path):
    catalog = Catalog(
        "tiny",
        (
            Skill("pun", "pun", "literary", "A play on words.", "Time flies like an arrow."),
            Skill("irony", "irony", "literary", "Saying the opposite.", "What lovely rain."),
        ),
        (Topic("sewing", "sewing"),),
    )
    assert substring_naming("A punchline.", catalog.skills) == {"pun": "pun"}
    assert naming_penalty("A punchline.", catalog.skills) == {}
    assert substring_naming("Such IRONY here", catalog.skills) == {"irony": "IRONY"}

    def student(body: dict) -> Reply:
        if "Text to grade" in body["messages"][-1]["content"]:
            return honest_policy(body)
        return Reply("Answer: A punchline about sewing.\nExplanation: none.")

    named = {}
    with ScriptedServer(student) as server:
        for protocol in PROTOCOLS:
            config = RunConfig(
                student=server.spec(),
                judges=(server.spec(),),
                k=(2,),
                items=1,
                generation_rounds=1,
                grading_rounds=1,
                protocol=protocol,
            )
            store = Store(tmp_path / "s.sqlite")
            result = run_engine(store, config, catalog)
            [generation] = store.generations(result.run_id)
            named[protocol] = generation["named"]
    assert named == {"skillmix": {}, "paper": {"pun": "pun"}}


def test_temperature_is_sent_only_when_set_and_the_effective_value_recorded(tmp_path: Path):
    store = Store(tmp_path / "s.sqlite")
    with ScriptedServer() as server:
        base = dict(
            student=server.spec(), judges=(server.spec(),), k=(2,), items=2,
            generation_rounds=1, grading_rounds=1,
        )  # fmt: skip
        unset = run_engine(store, RunConfig(**base))
        bodies = list(server.requests)
        assert bodies and not any("temperature" in b for b in bodies)
        assert {b["max_tokens"] for b in bodies} == {512}
        set_config = RunConfig(
            **base,
            student_decoding=Decoding(temperature=0.3),
            judge_decoding=Decoding(temperature=0.0, max_tokens=100),
        )
        chosen = run_engine(store, set_config)
        later = server.requests[len(bodies) :]
    students = [b for b in later if "Text to grade" not in b["messages"][-1]["content"]]
    judges = [b for b in later if "Text to grade" in b["messages"][-1]["content"]]
    assert {b["temperature"] for b in students} == {0.3}
    assert {(b["temperature"], b["max_tokens"]) for b in judges} == {(0.0, 100)}

    recorded = store.get_run(unset.run_id)["config"]["effective_decoding"]
    assert recorded["student"] == {
        "temperature": None,
        "temperature_source": "not sent: the server's default",
        "max_tokens": 512,
    }
    report = build_report(store, chosen.run_id)
    assert report.decoding["student"]["temperature"] == 0.3
    assert report.decoding["judges"][server.spec()] == {
        "temperature": 0.0,
        "temperature_source": "set",
        "max_tokens": 100,
    }
    # A stored config with its record reads back as the same settings.
    stored = store.get_run(chosen.run_id)["config"]
    assert RunConfig(**stored) == set_config


def test_the_embedded_model_records_its_local_default_temperature(tmp_path: Path):
    config = RunConfig(student="embedded", judges=("embedded",), k=(2,), items=1)
    engine = Engine(
        Store(tmp_path / "s.sqlite"),
        config,
        load_catalog(),
        resolve_model("embedded"),
        [resolve_model("embedded")],
    )
    local = {"temperature": 0.7, "temperature_source": "embedded default", "max_tokens": 512}
    assert engine.effective_decoding() == {"student": local, "judges": {"embedded": local}}


def test_config_defaults_and_the_paper_protocol_settings():
    config = RunConfig()
    assert config.templates == "v2" and config.protocol == "skillmix"
    unset = Decoding(temperature=None, max_tokens=512)
    assert config.student_decoding == config.judge_decoding == unset
    assert config.tell_not_to_name is False
    assert RunConfig(protocol="paper").structured is False
    with pytest.raises(ValidationError, match="grades from the judge's table"):
        RunConfig(protocol="paper", structured=True)
    assert set(RULES) == set(PROTOCOLS)


def test_protocol_diff_lists_every_difference(tmp_path: Path):
    out = skillmix("protocol", "diff", cwd=tmp_path).stdout
    flat = " ".join(out.split())
    for n, difference in enumerate(DIFFERENCES, start=1):
        assert f"{n}. {difference.aspect}" in out
        for text in (difference.published, difference.skillmix, difference.paper):
            assert " ".join(text.split()) in flat
    data = json.loads(skillmix("protocol", "diff", "--json", cwd=tmp_path).stdout)
    aspects = [d["aspect"] for d in data["differences"]]
    assert aspects == [d.aspect for d in DIFFERENCES]
    # The facts the published scripts are known for are all stated.
    for aspect in (
        "judge output",
        "grading rounds",
        "sentence-limit point",
        "naming penalty",
        "unparseable verdicts",
        "partial points",
    ):
        assert aspect in aspects
    rounds = next(d for d in data["differences"] if d["aspect"] == "grading rounds")
    assert "copy" in rounds["paper"] and not rounds["paper_as_published"]
    assert data["protocols"]["paper"]["judge_output"] == "table"
    assert "skillmix protocol diff" in (Path(__file__).parents[1] / "README.md").read_text()


def test_reports_state_the_protocol_and_leaderboard_flags_mixed_protocols(
    tmp_path: Path, server: ScriptedServer
):
    spec = server.spec()
    base = ["run", "--student", spec, "--judge", spec, "--k", "2", "--items", "2",
            "--generation-rounds", "1", "--grading-rounds", "1"]  # fmt: skip
    ours = skillmix(*base, cwd=tmp_path)
    paper = skillmix(*base, "--protocol", "paper", "--temperature", "0.5", cwd=tmp_path)
    assert "protocol=skillmix" in ours.stdout and "protocol=paper" in paper.stdout
    assert "protocol paper; decoding: student temperature 0.5, 512 max tokens" in paper.stdout
    assert "judge" in paper.stdout and "temperature not sent" in paper.stdout
    report = json.loads(skillmix("report", "--json", cwd=tmp_path).stdout)
    assert report["protocol"] == "paper"
    assert report["decoding"]["student"]["temperature"] == 0.5
    html = tmp_path / "r.html"
    skillmix("report", "--html", str(html), cwd=tmp_path)
    assert re.search(r"protocol</dt><dd>paper", html.read_text())

    board = json.loads(skillmix("leaderboard", "--json", cwd=tmp_path).stdout)
    protocols = {row["protocol"] for row in board["rows"]}
    assert protocols == {"skillmix", "paper"}
    assert any("protocol differs" in p for p in board["problems"])
    flagged = [row for row in board["rows"] if "protocol" in row["differs_in"]]
    assert flagged and all(not row["comparable"] for row in flagged)
    table = skillmix("leaderboard", cwd=tmp_path).stdout
    assert "protocol differs" in " ".join(table.split())


def test_paper_keeps_half_points_and_a_criterion_needs_a_mean_above_one_half(tmp_path: Path):
    catalog = Catalog(
        "tiny",
        (
            Skill("pun", "pun", "literary", "A play on words.", "Time flies like an arrow."),
            Skill("irony", "irony", "literary", "Saying the opposite.", "What lovely rain."),
        ),
        (Topic("sewing", "sewing"),),
    )

    def points(label: str, seed: int) -> float:
        return 1 if _digest(label, seed) % 3 else 0.5

    def policy(body: dict) -> Reply:
        last = body["messages"][-1]["content"]
        if "Text to grade" not in last:
            return Reply("Answer: Needles click softly.\nExplanation: none.")
        rows = "\n".join(
            f"| {label} | {points(label, body['seed']):g} |" for label in rubric_labels_in(last)
        )
        return Reply(f"| Criteria | Points Earned |\n|---|---|\n{rows}\n\nExplanation: ok")

    with ScriptedServer(policy) as server:
        config = RunConfig(
            student=server.spec(),
            judges=(server.spec(),),
            k=(2,),
            items=1,
            generation_rounds=1,
            grading_rounds=3,
            protocol="paper",
        )
        store = Store(tmp_path / "s.sqlite")
        result = run_engine(store, config, catalog)
    seeds = [r["seed"] for r in server.requests if "Text to grade" in r["messages"][-1]["content"]]
    assert len(seeds) == 3
    stored = [g["verdicts"] for g in store.grades(result.run_id)]
    assert any(0.5 in v.values() for v in stored)  # fractions are kept as given
    [item] = build_report(store, result.run_id).scores.items
    decided = item.generations[0].decided
    for cid, label in (
        ("skill:pun", "Correctly illustrates pun"),
        ("skill:irony", "Correctly illustrates irony"),
        ("topic", "Pertains to sewing"),
        ("sense", "Text makes sense"),
    ):
        mean = sum(points(label, seed) for seed in seeds) / 3
        assert decided[cid] == int(mean > 0.5), (cid, mean)
