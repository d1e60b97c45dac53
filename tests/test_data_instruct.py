"""Instruct-SkillMix end to end against a scripted teacher over real HTTP.

The teacher answers stage 1 with JSON lists (one topic with a Markdown list instead, to
exercise the fallback parser), naming some skills twice in other forms (case,
punctuation, plural, word order, a near-duplicate) and once a placeholder copied from
the prompt. In stage 2 it writes pairs (JSON or bold markers, by seed), critiques and
refinements; the "riddle" query type always gets an unparseable answer and the
"greeting" query type always the same pair, so the filters have work to do.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import canonical, sigkill_at_request, skillmix, stored_bodies
from scripted_server import Reply, ScriptedServer
from skillmix.catalog.load import load_catalog
from skillmix.data.instruct import (
    InstructConfig,
    SkillDraft,
    clean_name,
    dedupe_skills,
    name_key,
    parse_entries,
    parse_names,
    parse_pair,
    parse_response,
    parse_skill_entry,
)
from skillmix.models.openai_compat import OpenAICompatModel

TOPICS = ["Cooking", "Personal finance", "cooking.", "Software debugging", "Travel planning"]
SKILLS = {
    "Cooking": [
        ("Clarity", "Says things plainly.", "Explain braising."),
        ("Step-by-step instructions", "Orders the steps.", "How do I make bread?"),
        ("Unit conversion", "Converts measures.", "How many grams is a cup of flour?"),
    ],
    "Personal finance": [
        ("clarity.", "Plain words.", "What is APR?"),
        ("Risk disclosure", "Names the risks.", "Should I buy this stock?"),
        ("Step by step instruction", "Steps in order.", "How do I open an IRA?"),
        ("<skill name>", "<one-sentence definition>", "<a user request that needs it>"),
    ],
    "Travel planning": [
        ("Concise clear writing", "Short and clear.", "Summarise my itinerary."),
        ("Budget awareness", "Keeps to a budget.", "Plan a cheap week in Rome."),
        ("Asking for the missing details", "Asks what is missing.", "Book me a trip."),
    ],
}
# Answered as a Markdown list, not JSON.
DEBUGGING = (
    "Here are the skills:\n"
    "1. **Reading error messages**: Reads the traceback first. Example: Why does this crash?\n"
    "2. Asking for missing details - Asks for the code and the error.\n"
    "3. Clear, concise writing: Short answers.\n"
)
QUERY_TYPES = ["explanation", "how-to guide", "riddle", "greeting"]
EXPECTED_SKILLS = {
    "Clarity",
    "Step-by-step instructions",
    "Unit conversion",
    "Risk disclosure",
    "Reading error messages",
    "Asking for missing details",
    "Clear, concise writing",
    "Budget awareness",
}
WORDS = [
    *("river", "lantern", "copper", "meadow", "quartz", "violet", "harbor", "ember", "saddle"),
    *("thistle", "orbit", "canyon", "pepper", "marble", "falcon", "willow", "cobalt", "prism"),
    *("tundra", "maple", "beacon", "velvet", "glacier", "cedar", "sparrow", "onyx", "basil"),
]


def _digest(*parts: object) -> int:
    return int(hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest(), 16)


def _words(n: int, *key: object) -> str:
    h = _digest(*key)
    out = []
    for _ in range(n):
        out.append(WORDS[h % len(WORDS)])
        h //= len(WORDS)
        if h == 0:
            h = _digest(*key, len(out))
    return " ".join(out)


def teacher_policy(body: dict[str, Any]) -> Reply:
    messages = body["messages"]
    first = messages[0]["content"]
    if "List" in first and "different topics" in first:
        return Reply(json.dumps({"topics": TOPICS}))
    if "List" in first and "types of queries" in first:
        return Reply(json.dumps({"query_types": QUERY_TYPES}))
    topic = re.search(r"^Topic: (.+)$", first, flags=re.M)
    if topic:
        name = topic.group(1)
        if name == "Software debugging":
            return Reply(DEBUGGING)
        skills = [{"name": n, "definition": d, "example": e} for n, d, e in SKILLS[name]]
        return Reply(json.dumps({"skills": skills}))
    if "lazy assistant" in first:
        return Reply("Just look it up.")
    query_type = re.search(r"of this type: (.+)\.$", first, flags=re.M).group(1)
    skills = re.findall(r"^- ([^:\n]+): ", first, flags=re.M)
    if len(messages) == 1:  # turn 1: the pair
        if query_type == "riddle":
            return Reply("I would rather not write that one.")
        if query_type == "greeting":
            return Reply('{"instruction": "Say hello to me.", "response": "Hello! How are you?"}')
        instruction = f"Give me a {query_type} about {_words(12, first, 'i')}."
        response = f"Here is a {query_type}: {_words(30, first, 'r')}."
        if _digest(first) % 2:
            return Reply(json.dumps({"instruction": instruction, "response": response}))
        return Reply(f"**Instruction:** {instruction}\n\n**Response:**\n{response}")
    if len(messages) == 3:  # turn 2: the critique
        return Reply(f"The response never shows {skills[0]} and is vague.")
    if len(messages) == 5:  # turn 3: the refinement
        assert messages[1]["role"] == "assistant" and messages[3]["role"] == "assistant"
        pair = parse_pair(messages[1]["content"])
        better = f"{pair.response} Also {_words(10, first, 'better')}."
        if query_type == "greeting":
            better = pair.response  # every greeting example ends the same: near-duplicates
        if body.get("response_format"):
            return Reply(json.dumps({"response": better}))
        return Reply(f"Response: {better}")
    raise AssertionError(f"unexpected request: {messages}")


FORMATS = "jsonl,parquet,hf" if importlib.util.find_spec("datasets") else "jsonl,parquet"


def instruct_args(spec: str, out: Path, store: Path, examples: int = 24, **extra: str) -> list:
    args = [
        "data",
        "instruct",
        "--teacher",
        spec,
        "--topics",
        "4",
        "--skills-per-topic",
        "4",
        "--query-types",
        "4",
        "--examples",
        str(examples),
        "--seed",
        "3",
        "--out",
        str(out),
        "--store",
        str(store),
        "--formats",
        FORMATS,
    ]
    for key, value in extra.items():
        args += [f"--{key.replace('_', '-')}", value]
    return args


def read_records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


# --- pure parts -------------------------------------------------------------------------------


def test_list_parsing_is_robust():
    assert parse_entries('```json\n{"topics": ["a", "b"]}\n```', "topics") == ["a", "b"]
    assert parse_entries('Sure: {"items": ["a"]} hope it helps', "topics") == ["a"]
    assert parse_entries('{"topics": ["Cooking", "Travel pl', "topics") == ["Cooking"]
    assert parse_entries("Topics:\n- Cooking\n* Travel\n3) Finance", "topics") == [
        "Cooking",
        "Travel",
        "Finance",
    ]
    assert parse_entries("Cooking, Travel; Finance", "topics") == ["Cooking", "Travel", "Finance"]
    names, dropped = parse_names('1. **Cooking**\n2. "cookings."\n3. <topic>\n4. Topic', "topics")
    assert names == ["Cooking"] and dropped == ["<topic>", "Topic"]


def test_skill_entries_and_name_normalisation():
    draft, _ = parse_skill_entry("**Active listening**: Pays attention. Example: Help me?", "t")
    assert draft == SkillDraft("Active listening", "Pays attention.", "Help me?", "t")
    draft, _ = parse_skill_entry({"Skill": "Tone matching", "Description": "Matches tone."}, "t")
    assert draft is not None and draft.name == "Tone matching" and draft.example
    assert parse_skill_entry({"name": "<skill name>", "definition": "x"}, "t")[0] is None
    assert clean_name('  2. **"Risk disclosure."** ') == "Risk disclosure"
    assert name_key("Step-by-step Instructions") == name_key("step by step instruction")


def test_skill_dedup_keeps_first_and_records_aliases():
    drafts = [
        SkillDraft(name, "d", "e", topic)
        for name, topic in [
            ("Clarity", "a"),
            ("clarity", "b"),
            ("Asking for missing details", "a"),
            ("Asking for the missing details", "b"),  # token-set Jaccard 0.8
            ("Asking questions", "b"),  # 0.2: a different skill
            ("Fuzzy logic, fuzzy logic", "c"),
            ("Fuzzy logic", "c"),
        ]
    ]
    kept, merges, aliases = dedupe_skills(drafts, similarity=0.8)
    assert [d.name for d in kept] == [
        "Clarity",
        "Asking for missing details",
        "Asking questions",
        "Fuzzy logic, fuzzy logic",
    ]
    assert len(merges) == 3
    assert aliases["Asking for missing details"] == ["Asking for the missing details"]
    assert aliases["Clarity"] == []  # case only: not another wording


def test_pair_and_response_parsing():
    pair = parse_pair("### Instruction\nWrite a haiku.\n\n### Response\n'Leaves fall.'")
    assert (pair.instruction, pair.response) == ("Write a haiku.", "Leaves fall.")
    pair = parse_pair('{"Instruction": "Do x", "Response": "Done"}')
    assert (pair.instruction, pair.response) == ("Do x", "Done")
    assert isinstance(parse_pair("no markers at all"), str)
    assert isinstance(parse_pair("Instruction: only an instruction"), str)
    assert parse_response("Improved response: Better text.") == "Better text."
    assert parse_response('{"response": "json text"}') == "json text"
    assert parse_response("Instruction: x\nResponse: y") == "y"


def test_shirker_count_is_exact():
    for fraction, n, expected in [(0.2, 24, 5), (0.25, 4, 1), (0.0, 10, 0), (1.0, 7, 7)]:
        assert InstructConfig(examples=n, shirker_fraction=fraction).shirker_count == expected


# --- the whole pipeline -----------------------------------------------------------------------


def test_pipeline_end_to_end(tmp_path: Path):
    out, store = tmp_path / "out", tmp_path / "s.sqlite"
    with ScriptedServer(teacher_policy) as server:
        args = instruct_args(server.spec(), out, store, shirker_fraction="0.25")
        estimate = skillmix(*args, "--estimate", cwd=tmp_path)
        assert not server.requests, "estimate mode sent a request"
        # Stage 1: topics + 4 topics' skills + query types; stage 2: 3 calls per example,
        # 2 per shirker (pair + shirker answer).
        assert "total: 72 calls to send" in estimate.stdout.replace("\n", " "), estimate.stdout

        run = skillmix(*args, cwd=tmp_path)
        sent = len(server.requests)
        assert sent > 0

        # Stage 1: the catalog, loadable, with duplicates and the placeholder gone.
        catalog = load_catalog(out / "skills_catalog.yaml")
        assert {s.name for s in catalog.skills} == EXPECTED_SKILLS
        assert {t.name for t in catalog.topics} == {
            "Cooking",
            "Personal finance",
            "Software debugging",
            "Travel planning",
        }
        clarity = next(s for s in catalog.skills if s.name == "Clarity")
        assert clarity.category == "Cooking"
        writing = next(s for s in catalog.skills if s.name == "Clear, concise writing")
        assert writing.aliases == ("Concise clear writing",)  # another topic's wording
        assert next(s for s in catalog.skills if s.name == "Reading error messages").example
        assert "8 skills" in run.stdout, run.stdout
        query_types = (out / "query_types.yaml").read_text()
        assert all(q in query_types for q in QUERY_TYPES)

        # Stage 2: records, rejections, shirkers.
        records = read_records(out)
        rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
        assert len(records) + len(rejected) == 24
        reasons = {r["reason"] for r in rejected}
        assert {"unparsed-pair", "near-duplicate"} <= reasons, reasons
        assert all(r["query_type"] == "riddle" for r in rejected if r["reason"] == "unparsed-pair")
        assert not any(r["query_type"] == "riddle" for r in records)
        greetings = [r for r in records if r["query_type"] == "greeting" and not r["shirker"]]
        assert len(greetings) == 1, "identical greeting examples are near-duplicates"
        shirkers = [r for r in [*records, *rejected] if r["shirker"]]
        assert len(shirkers) == 6  # 0.25 x 24
        for record in records:
            assert [m["role"] for m in record["messages"]] == ["user", "assistant"]
            assert record["pipeline"] == "instruct-skillmix"
            assert len(record["skills"]) == 2 and set(record["skills"]) <= EXPECTED_SKILLS
            topics = record["provenance"]["skill_topics"]
            assert topics[0] != topics[1], "skills from different topics"
            assert record["provenance"]["catalog_hash"] == catalog.content_hash
            if record["shirker"]:
                assert record["messages"][1]["content"] == "Just look it up."
                assert "shirker" in record["provenance"]["call_keys"]
            elif record["query_type"] != "greeting":
                assert " Also " in record["messages"][1]["content"], "the refined response"

        # The pair, the critique and the refinement are one conversation.
        refines = [b for b in server.requests if len(b["messages"]) == 5]
        critiques = {canonical(b["messages"]) for b in server.requests if len(b["messages"]) == 3}
        assert refines
        for body in refines:
            m = body["messages"]
            assert "Write an instruction" in m[0]["content"]
            assert m[1]["content"] == teacher_policy({"messages": m[:1]}).content
            assert "critique" in m[2]["content"].lower()
            assert m[3]["content"] == teacher_policy({"messages": m[:3]}).content
            assert canonical(m[:3]) in critiques
            assert "rewrite" in m[4]["content"].lower()
        # Shirker answers are separate requests, never part of the conversation.
        lazy = [b for b in server.requests if "lazy assistant" in b["messages"][0]["content"]]
        answered_shirkers = [r for r in shirkers if r.get("reason") != "unparsed-pair"]
        assert len(lazy) == len(answered_shirkers) > 0
        assert all(len(b["messages"]) == 1 for b in lazy)

        # Exports load.
        frame = pd.read_parquet(out / "records.parquet")
        assert list(frame["id"]) == [r["id"] for r in records]
        assert pd.read_json(out / "records.jsonl", lines=True).shape[0] == len(records)
        if "hf" in FORMATS:
            import datasets

            dataset = datasets.load_from_disk(str(out / "hf"))
            assert dataset.num_rows == len(records)
            assert dataset[0]["messages"][0]["role"] == "user"

        # The data card says what was kept, what was not and why.
        card = (out / "card.md").read_text()
        assert "unparsed-pair" in card and "near-duplicate" in card
        assert catalog.content_hash in card and server.spec() in card
        numbers = json.loads((out / "card.json").read_text())
        assert numbers["kept"] == len(records) and numbers["shirkers"] == sum(
            r["shirker"] for r in records
        )
        assert set(numbers["per_query_type"]) == set(QUERY_TYPES)
        assert numbers["meta"]["catalog"]["hash"] == catalog.content_hash

        # A re-run is free and writes the same records.
        again = skillmix(*args, cwd=tmp_path)
        assert len(server.requests) == sent, "a re-run sent requests"
        assert "0 sent" in again.stderr
        assert read_records(out) == records
        estimate = skillmix(*args, "--estimate", cwd=tmp_path)
        assert "total: 0 calls to send" in estimate.stdout.replace("\n", " ")


def test_text_mode_without_structured_output(tmp_path: Path):
    out, store = tmp_path / "out", tmp_path / "s.sqlite"
    with ScriptedServer(teacher_policy) as server:
        skillmix(
            *instruct_args(server.spec(), out, store, examples=6),
            "--no-structured",
            cwd=tmp_path,
        )
        assert not any("response_format" in b for b in server.requests)
        assert "Instruction: <the instruction>" in server.requests[-1]["messages"][0]["content"]
        assert {s.name for s in load_catalog(out / "skills_catalog.yaml").skills} == (
            EXPECTED_SKILLS
        )


def test_sigkill_then_resume_equals_uninterrupted(tmp_path: Path):
    killed_out, killed_store = tmp_path / "killed", tmp_path / "killed.sqlite"
    with ScriptedServer(teacher_policy) as first:
        args = instruct_args(first.spec(), killed_out, killed_store, examples=30)
        sent_by_killed = sigkill_at_request(first, args, tmp_path, at=35)
    assert not (killed_out / "records.jsonl").exists(), "the kill must land mid-run"
    answered = stored_bodies(killed_store, OpenAICompatModel("scripted", base_url=first.base_url))
    assert answered, "some answers were stored before the kill"

    with ScriptedServer(teacher_policy, port=first.port) as server:
        skillmix(*args, cwd=tmp_path)
        resumed = [canonical(b) for b in server.requests]
        assert resumed, "the kill left work to do"
        assert not answered & set(resumed), "an answered request was sent again"
        assert len(resumed) == len(set(resumed))

        mark = len(server.requests)
        clean_out, clean_store = tmp_path / "clean", tmp_path / "clean.sqlite"
        skillmix(*instruct_args(server.spec(), clean_out, clean_store, examples=30), cwd=tmp_path)
        assert set(sent_by_killed) | set(resumed) == {canonical(b) for b in server.requests[mark:]}
    assert read_records(killed_out) == read_records(clean_out)
    assert (killed_out / "rejected.jsonl").read_text() == (clean_out / "rejected.jsonl").read_text()
    assert (killed_out / "skills_catalog.yaml").read_text() == (
        clean_out / "skills_catalog.yaml"
    ).read_text()


def test_unusable_teacher_is_a_clear_error(tmp_path: Path):
    with ScriptedServer(lambda body: Reply("<topic>")) as server:
        proc = skillmix(
            *instruct_args(server.spec(), tmp_path / "o", tmp_path / "s.sqlite"),
            cwd=tmp_path,
            check=False,
        )
        assert proc.returncode != 0
        assert "named no topics" in proc.stderr
        assert len(server.requests) == 2  # two draws, then a clear stop


@pytest.mark.parametrize("flag", [["--shirker-fraction", "1.5"], ["--formats", "csv"]])
def test_bad_options_are_user_errors(tmp_path: Path, flag: list[str]):
    proc = skillmix(
        *instruct_args("openai:x@http://127.0.0.1:9/v1", tmp_path / "o", tmp_path / "s"),
        *flag,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 1 and "error" in proc.stderr and "Traceback" not in proc.stderr
