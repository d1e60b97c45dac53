"""Template sets as data: built-in v1 and v2, any folder, and the original scripts' JSON
prompt files (fixtures of our own wording in their format); v1 and v2 runs side by side."""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from pathlib import Path

import pytest

from conftest import skillmix
from scripted_server import ScriptedServer, skill_names_in
from skillmix import prompts
from skillmix.catalog.load import load_catalog
from skillmix.catalog.model import Skill, Topic
from skillmix.config import RunConfig
from skillmix.models import resolve_model
from skillmix.prompts import TemplateError, load_reference_templates, load_templates
from skillmix.prompts.rubric import build_rubric
from skillmix.protocol.engine import Engine
from skillmix.report import build_report
from skillmix.store import Store

REFERENCE = Path(__file__).parent / "fixtures" / "reference_prompts"
SKILLS = [
    Skill("s1", "metaphor", "literary", "Saying one thing is another.", "Time is a thief."),
    Skill("s2", "red herring", "rhetorical", "A distraction.", "But what about taxes?"),
    Skill("s3", "irony", "literary", "Saying the opposite.", "What lovely rain."),
]
TOPIC = Topic("t1", "beekeeping")


def v2_folder(tmp_path: Path) -> Path:
    """A copy of the built-in v2 set as a folder of files."""
    folder = tmp_path / "mine"
    folder.mkdir()
    source = resources.files("skillmix.prompts").joinpath("templates", "v2")
    for entry in source.iterdir():
        if entry.name.endswith(".txt"):
            (folder / entry.name).write_text(entry.read_text())
    return folder


# --- built-in sets -----------------------------------------------------------------------


def test_v1_is_unchanged_so_old_runs_keep_their_template_version():
    # Pinned: runs stored with v1 record this id; v1 must render exactly as it always did.
    assert load_templates("v1").version_id == "v1-e1f9706a"


def test_v2_names_no_instruction_unless_asked_and_states_the_limit_in_words():
    v2 = load_templates("v2")
    first, second = prompts.student_turns(v2, SKILLS, TOPIC)
    assert "name the skills" not in first
    assert "**metaphor**: Saying one thing is another. Example: Time is a thief." in first
    assert skill_names_in(first) == ["metaphor", "red herring", "irony"]  # as given
    assert "at most two sentences" in second
    told, _ = prompts.student_turns(v2, SKILLS, TOPIC, tell_not_to_name=True)
    assert "Do not name the skills in the text itself." in told
    assert told.replace("Do not name the skills in the text itself.\n\n", "") == first
    v1_first = prompts.student_turns(load_templates("v1"), SKILLS, TOPIC)[0]
    assert "Do not name the skills" in v1_first


def test_v2_rubric_wording_is_neutral_and_the_judge_sees_definitions_and_examples():
    rubric = build_rubric(SKILLS, TOPIC)
    judged = [c for c in rubric if c.judged]
    v2 = prompts.grading(load_templates("v2"), SKILLS, TOPIC, "Bees hum.", judged, "json")
    v1 = prompts.grading(load_templates("v1"), SKILLS, TOPIC, "Bees hum.", judged, "json")
    text, old = v2[0]["content"], v1[0]["content"]
    assert "strictly" in old and "fully met" in old
    assert "strictly" not in text.lower() and "fully met" not in text
    assert "Example: Time is a thief." in text and "Bees hum." in text
    assert "At most" not in text  # the sentence limit is computed in code
    table = prompts.grading(load_templates("v2"), SKILLS, TOPIC, "x", rubric, "table")
    assert "Points Earned" in table[0]["content"]
    assert "6. At most two sentences" in table[0]["content"]


def test_unknown_set_and_a_set_that_cannot_serve_the_run_are_clear_errors():
    with pytest.raises(TemplateError, match=r"unknown template set 'v9'.*v1, v2"):
        load_templates("v9")
    with pytest.raises(TemplateError, match="--tell-not-to-name: template set v1"):
        load_templates("v1").check_run(judge_format="json", tell_not_to_name=True)
    with pytest.raises(TemplateError, match=r"v1 has no format_table\.txt"):
        load_templates("v1").check_run(judge_format="table", tell_not_to_name=False)
    load_templates("v2").check_run(judge_format="table", tell_not_to_name=True)


# --- a folder in the same layout ------------------------------------------------------


def test_a_folder_is_a_template_set_recorded_by_its_content(tmp_path: Path):
    folder = v2_folder(tmp_path)
    same = load_templates(str(folder))
    assert same.version_id.split("-")[1] == load_templates("v2").version_id.split("-")[1]
    assert same.version_id.startswith("mine-")
    (folder / "generate_turn2.txt").write_text(
        "Shorter please: at most $sentence_limit, about $topic. Begin with Answer:.\n"
    )
    edited = load_templates(str(folder))
    assert edited.version_id != same.version_id
    assert prompts.student_turns(edited, SKILLS, TOPIC)[1].startswith(
        "Shorter please: at most two sentences, about beekeeping."
    )


def test_folder_errors_name_the_file_and_what_is_wrong(tmp_path: Path):
    folder = v2_folder(tmp_path)
    (folder / "grade.txt").unlink()
    with pytest.raises(TemplateError, match=r"mine lacks grade\.txt"):
        load_templates(str(folder))
    (folder / "grade.txt").write_text("Grade $answer against $rubrik.\n")
    with pytest.raises(TemplateError, match=r"grade\.txt uses unknown field\(s\) \$rubrik"):
        load_templates(str(folder))
    (folder / "grade.txt").write_text("Costs $ 5: $answer\n")
    with pytest.raises(TemplateError, match=r"grade\.txt: Invalid placeholder.*\$\$"):
        load_templates(str(folder))
    with pytest.raises(TemplateError, match="does not exist"):
        load_templates(str(tmp_path / "nowhere"))


def test_template_spec_resolves_folders_and_reference_checkouts(tmp_path: Path):
    assert prompts.template_spec("v1", None) == "v1"
    assert prompts.template_spec(None, None) is None
    assert prompts.template_spec(f"{tmp_path}/x", None) == str((tmp_path / "x").resolve())
    assert prompts.template_spec(None, str(REFERENCE)) == f"reference:{REFERENCE.resolve()}"
    with pytest.raises(TemplateError, match="give one"):
        prompts.template_spec("v2", str(REFERENCE))


# --- the original scripts' JSON prompt files --------------------------------------------


def test_reference_files_are_read_turn_by_turn_with_their_placeholders_mapped():
    ref = load_templates(f"reference:{REFERENCE}")
    assert ref.student_turns == ("generate_turn1", "generate_turn2")
    assert ref.version_id.startswith("reference-")
    first, second = prompts.student_turns(ref, SKILLS, TOPIC)
    assert first.startswith("Hello! Could you write a short, natural text about beekeeping")
    assert "these skills: metaphor, red herring, irony?" in first  # {skills_str}
    assert "**irony**: Saying the opposite. Example: What lovely rain." in first
    assert "A fee of $5 is not involved." in first  # a dollar sign stays text
    assert "using at most two sentences." in second  # {num_sentences_str}
    rubric = build_rubric(SKILLS, TOPIC, lowercase_skills=True)
    [grade] = prompts.grading(ref, SKILLS, TOPIC, "Bees hum.", rubric, "table")
    text = grade["content"]
    assert "these three skills" in text  # {num_skills_str}
    assert "=== Text to grade ===\nBees hum.\n" in text  # {student_answer}
    assert "**red herring**: A distraction.\n" in text  # {skills_defs}: no example
    assert (
        "Criteria: Correctly illustrates metaphor, Correctly illustrates red herring, "
        "Correctly illustrates irony, Pertains to beekeeping, Text makes sense, "
        "At most two sentences\n"
    ) in text  # {rubric_items}
    # The same files read from the prompts folder itself.
    assert load_reference_templates(REFERENCE / "prompts").version_id == ref.version_id


def write_reference(root: Path, generation: object, grade: object) -> Path:
    for folder, data in (("generation", generation), ("grade", grade)):
        (root / "prompts" / folder).mkdir(parents=True, exist_ok=True)
        text = data if isinstance(data, str) else json.dumps(data)
        (
            root / "prompts" / folder / ("default.json" if folder == "generation" else "gpt.json")
        ).write_text(text)
    return root


GOOD_TURNS = ["Write about {topic}: {skills_str}.", "Now {num_sentences_str}."]
GOOD_GRADE = ["Grade {student_answer} on {rubric_items}."]


@pytest.mark.parametrize(
    ("generation", "grade", "message"),
    [
        ('["unclosed', GOOD_GRADE, r"default\.json:1:2: not valid JSON"),
        ({"turns": []}, GOOD_GRADE, r"default\.json: expected a JSON list of strings.*dict"),
        ([], GOOD_GRADE, r"default\.json: expected a JSON list.*an empty list"),
        (["ok", 3], GOOD_GRADE, r"default\.json: turn 2 is a JSON int, not a string"),
        (["About {topicz}."], GOOD_GRADE, r"default\.json, turn 1: unknown placeholder \{topicz\}"),
        (
            ["About {student_answer}."],
            GOOD_GRADE,
            r"turn 1: unknown placeholder \{student_answer\}",
        ),
        (["About {topic!r}."], GOOD_GRADE, r"placeholder \{topic\} has a format spec"),
        (["About {topic."], GOOD_GRADE, r"default\.json, turn 1: .*literal braces"),
        (GOOD_TURNS, ["one", "two"], r"gpt\.json: a grading prompt is one user turn.*2"),
    ],
)
def test_reference_file_errors_name_the_file_and_what_is_wrong(
    tmp_path: Path, generation: object, grade: object, message: str
):
    root = write_reference(tmp_path, generation, grade)
    with pytest.raises(TemplateError, match=message):
        load_templates(f"reference:{root}")


def test_reference_checkout_without_prompt_files_is_a_clear_error(tmp_path: Path):
    with pytest.raises(TemplateError, match="expects a checkout of the original Skill-Mix"):
        load_templates(f"reference:{tmp_path}")
    root = write_reference(tmp_path, GOOD_TURNS, GOOD_GRADE)
    (root / "prompts" / "grade" / "gpt.json").unlink()
    with pytest.raises(TemplateError, match=r"grade/gpt\.json: no such file"):
        load_templates(f"reference:{root}")


# --- runs side by side -------------------------------------------------------------------


def run_engine(store: Store, config: RunConfig):
    engine = Engine(
        store,
        config,
        load_catalog(),
        resolve_model(config.student),
        [resolve_model(j) for j in config.judges],
    )
    return asyncio.run(engine.run())


def student_first_turns(server: ScriptedServer, since: int = 0) -> list[str]:
    return [
        r["messages"][0]["content"]
        for r in server.requests[since:]
        if len(r["messages"]) == 1 and "Text to grade" not in r["messages"][0]["content"]
    ]


def test_v1_and_v2_runs_side_by_side(tmp_path: Path, server: ScriptedServer):
    store = Store(tmp_path / "s.sqlite")
    catalog = load_catalog()
    base = dict(
        student=server.spec(), judges=(server.spec(),), k=(3,), items=6,
        generation_rounds=1, grading_rounds=1,
    )  # fmt: skip
    results = {}
    turns = {}
    for name, extra in (
        ("v1", {"templates": "v1"}),
        ("v2", {}),
        ("v2-told", {"tell_not_to_name": True}),
    ):
        before = len(server.requests)
        results[name] = run_engine(store, RunConfig(**base, **extra))
        turns[name] = student_first_turns(server, before)
    runs = {name: store.get_run(r.run_id) for name, r in results.items()}
    assert runs["v1"]["template_version"] == "v1-e1f9706a"
    assert runs["v2"]["template_version"].startswith("v2-")
    assert len({r.run_id for r in results.values()}) == 3

    # The same items in every run; v2 lists their skills in a shuffled, recorded order.
    items = {name: store.items(r.run_id) for name, r in results.items()}
    ids = [i["item_id"] for i in items["v2"]]
    assert ids == [i["item_id"] for i in items["v1"]] == [i["item_id"] for i in items["v2-told"]]
    catalog_order = {s.id: n for n, s in enumerate(catalog.skills)}
    shuffled = 0
    presented = {frozenset(names): names for names in map(skill_names_in, turns["v2"])}
    for item in items["v2"]:
        names = [catalog.skill(s).name for s in item["skill_ids"]]
        assert presented[frozenset(names)] == names  # the stored order is the presented one
        shuffled += item["skill_ids"] != sorted(item["skill_ids"], key=catalog_order.get)
    assert shuffled >= 2

    # The naming instruction: always in v1, never in v2, in v2 when asked.
    assert all("Do not name the skills" in t for t in turns["v1"])
    assert not any("name the skills" in t for t in turns["v2"])
    assert all("Do not name the skills in the text itself." in t for t in turns["v2-told"])

    # Neutral rubric wording in v2's grading prompts.
    graded = [
        r["messages"][0]["content"]
        for r in server.requests
        if "Text to grade" in r["messages"][0]["content"]
    ]
    assert any("strictly" in g for g in graded)  # v1
    assert sum("Rubric, one point per criterion:" in g for g in graded) == 12  # v2 runs
    assert all("fully met" not in g for g in graded if "Rubric, one point" in g)

    for result in results.values():  # old and new runs report alike
        report = build_report(store, result.run_id)
        assert [(r.k, r.items, r.scored) for r in report.rows] == [(3, 6, 6)]


def test_templates_from_reference_drive_a_run(tmp_path: Path, server: ScriptedServer):
    store = Store(tmp_path / "s.sqlite")
    config = RunConfig(
        student=server.spec(),
        judges=(server.spec(),),
        k=(2,),
        items=3,
        generation_rounds=1,
        grading_rounds=2,
        templates=prompts.template_spec(None, str(REFERENCE)),
    )
    result = run_engine(store, config)
    first_turns = student_first_turns(server)
    assert len(first_turns) == 3
    assert all(
        t.startswith("Hello! Could you write a short, natural text about") for t in first_turns
    )
    second_turns = [r["messages"][2]["content"] for r in server.requests if len(r["messages"]) == 3]
    assert all("using at most one sentence." in t for t in second_turns)
    judge_requests = [r for r in server.requests if "Text to grade" in r["messages"][0]["content"]]
    assert len(judge_requests) == 3 * 2
    # Their grading prompt asks for a table in its own words: no schema is sent.
    assert not any("response_format" in r for r in judge_requests)
    grades = store.grades(result.run_id)
    assert {g["status"] for g in grades} == {"parsed"}
    assert {g["method"] for g in grades} == {"text:table"}
    assert store.get_run(result.run_id)["template_version"].startswith("reference-")


def test_cli_template_options(tmp_path: Path, server: ScriptedServer):
    spec = server.spec()
    base = ["run", "--student", spec, "--judge", spec, "--k", "2", "--items", "1",
            "--generation-rounds", "1", "--grading-rounds", "1"]  # fmt: skip
    done = skillmix(*base, "--templates-from-reference", str(REFERENCE), cwd=tmp_path)
    assert "templates reference-" in " ".join(done.stderr.split())
    assert student_first_turns(server)[0].startswith("Hello! Could you write")
    told = skillmix(*base, "--tell-not-to-name", cwd=tmp_path)
    assert "templates v2-" in " ".join(told.stderr.split())
    assert "Do not name the skills" in student_first_turns(server)[-1]
    for extra, message in (
        (["--templates", "v1", "--tell-not-to-name"], "--tell-not-to-name: template set v1"),
        (["--templates", "v2", "--templates-from-reference", str(REFERENCE)], "give one"),
        (["--templates", "./missing"], f"template folder {tmp_path / 'missing'} does not exist"),
        (["--protocol", "paper", "--templates", "v1"], "v1 has no format_table.txt"),
    ):
        failed = skillmix(*base, *extra, cwd=tmp_path, check=False)
        assert failed.returncode == 1 and message in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr
