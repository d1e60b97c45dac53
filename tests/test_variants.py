"""The grammar of format variants: ids, draws, the templates each variant renders, and
that a judge answering any variant in any verdict format is read by our parser."""

from __future__ import annotations

import itertools
import json
import re

import pytest

from skillmix import prompts
from skillmix.catalog.model import Skill, Topic
from skillmix.prompts import TemplateError, load_templates
from skillmix.prompts.rubric import build_rubric
from skillmix.prompts.variants import (
    BASE,
    DIMENSIONS,
    build_variant,
    design_score,
    free_dimensions,
    grade_text,
    judge_skill_entry,
    parse_variant,
    variant,
    variant_count,
    variants,
)
from skillmix.protocol.verdicts import ParsedVerdict, parse_verdict

SKILLS = [
    Skill("s1", "red herring", "rhetorical", "A distraction from the point.", "But taxes!"),
    Skill("s2", "Metaphor", "literary", "Saying one thing is another.", "Time is a thief."),
    Skill("s3", "irony", "literary", "Saying the opposite of what is meant.", "Lovely rain."),
]
TOPIC = Topic("t1", "beekeeping")
ANSWER = "The hive, a fortress of wax, hums while its keeper talks about the weather."
FORMATS = ("json", "lines", "table")


def one_change_variants() -> list:
    """Every variant that changes exactly one choice of the base set."""
    return [variant(**{d.name: o}) for d in DIMENSIONS for o in d.options[1:]]


def sample_variants() -> list:
    """Every single change, and a few random combinations of judge and student choices."""
    return one_change_variants() + variants(12, seed=5, student=True)[1:]


# --- ids and draws ----------------------------------------------------------------------------


def test_ids_are_stable_and_name_the_choices():
    chosen = variant(rubric="paragraph", casing="upper")
    assert chosen.id == "casing=upper,rubric=paragraph"  # dimension order, not call order
    assert parse_variant(chosen.id) == chosen
    assert parse_variant("base") == BASE and BASE.id == "base"
    assert chosen.changed == {"casing": "upper", "rubric": "paragraph"}
    assert chosen.choices["marker"] == "none"  # every dimension has a choice
    assert chosen.spec() == "variant:casing=upper,rubric=paragraph:v2"
    assert BASE.spec("v2") == "v2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour=red", "unknown format choice"),
        ("rubric=table", "rubric is one of numbered, bullets, paragraph"),
        ("rubric", "name=option"),
    ],
)
def test_a_bad_variant_id_says_what_the_choices_are(text: str, message: str):
    with pytest.raises(TemplateError, match=message):
        parse_variant(text)


def test_draws_are_deterministic_distinct_and_start_with_the_base():
    for n in (1, 2, 3, 5, 8, 13, 30):
        drawn = variants(n, seed=7)
        assert [v.id for v in drawn] == [v.id for v in variants(n, seed=7)]
        assert len(set(drawn)) == n
        assert drawn[0] == BASE
        # By default only judge-side choices vary: the student's answers are shared.
        assert not any(v.affects_student for v in drawn)
    assert [v.id for v in variants(8, seed=1)] != [v.id for v in variants(8, seed=2)]
    assert any(v.affects_student for v in variants(8, seed=0, student=True))


def test_draws_balance_the_options_and_keep_dimensions_apart():
    drawn = variants(12, seed=0)
    for d in free_dimensions():
        counts = [sum(v.choices[d.name] == o for v in drawn) for o in d.options]
        assert max(counts) - min(counts) <= 1, (d.name, counts)  # balanced over all 12
    unvaried, aliased, strongest, _ = design_score(drawn, free_dimensions())
    assert unvaried == 0 and aliased == 0 and strongest <= 0.5


def test_more_variants_than_the_grammar_makes_is_an_error():
    judge_only = variant_count()
    assert judge_only == 3 * 3 * 4 * 3 * 3 * 2 * 2
    assert variant_count(student=True) == 2 * judge_only
    with pytest.raises(TemplateError, match="only 1296 distinct variants"):
        variants(judge_only + 1)
    with pytest.raises(TemplateError, match="at least 1"):
        variants(0)


# --- the templates of a variant ---------------------------------------------------------------


def test_the_base_variant_is_the_base_set_byte_for_byte():
    v2 = load_templates("v2")
    assert build_variant(v2, BASE) is v2
    assert load_templates(BASE.spec()).version_id == v2.version_id
    # The grammar at its base options writes exactly v2's files.
    assert grade_text(BASE.choices, "skill_block") == v2.texts["grade"]
    assert judge_skill_entry(BASE.choices) == v2.texts["skill_block"]


def test_one_change_moves_only_its_own_part_of_the_judge_prompt():
    v2 = load_templates("v2")
    rubric = build_rubric(SKILLS, TOPIC)
    judged = [c for c in rubric if c.judged]
    base = prompts.grading(v2, SKILLS, TOPIC, ANSWER, judged, "json")[0]["content"]
    # Judge-side variants list the skills from their own template: unchanged text.
    same = build_variant(v2, variant(judge_format="lines"))
    assert same.judge_format == "lines"
    assert prompts.grading(same, SKILLS, TOPIC, ANSWER, judged, "json")[0]["content"] == base
    paragraph = build_variant(v2, variant(rubric="paragraph"))
    text = prompts.grading(paragraph, SKILLS, TOPIC, ANSWER, judged, "json")[0]["content"]
    changed = [line for line in text.splitlines() if line not in base.splitlines()]
    assert changed == [
        "Rubric, one point per criterion: Correctly illustrates red herring, Correctly "
        "illustrates Metaphor, Correctly illustrates irony, Pertains to beekeeping, Text makes "
        "sense."
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"separator": "dash"}, "**Metaphor** - Saying one thing is another. Example - Time"),
        ({"separator": "newline"}, "**Metaphor**\nSaying one thing is another.\nExample\nTime"),
        ({"casing": "upper"}, "=== TEXT TO GRADE ===\n"),
        ({"casing": "lower"}, "Example: Time is a thief.\n"),
        ({"marker": "number"}, "2. **Metaphor**: Saying"),
        ({"marker": "star"}, "* **irony**: Saying"),
        ({"rubric": "bullets"}, "criterion:\n- Correctly illustrates red herring\n- "),
        ({"definition_order": "example-first"}, "**irony**: Example: Lovely rain. Definition: "),
        ({"skill_order": "alphabetical"}, "skills: irony, Metaphor and red herring."),
    ],
)
def test_each_choice_shows_in_the_judge_prompt(choice: dict[str, str], expected: str):
    templates = build_variant(load_templates("v2"), variant(**choice))
    judged = [c for c in build_rubric(SKILLS, TOPIC) if c.judged]
    text = prompts.grading(templates, SKILLS, TOPIC, ANSWER, judged, "json")[0]["content"]
    if choice == {"casing": "lower"}:
        assert "example: Time is a thief." in text and "=== text to grade ===" in text
    else:
        assert expected in text


def test_judge_only_variants_leave_the_student_prompts_byte_identical():
    v2 = load_templates("v2")
    base_turns = prompts.student_turns(v2, SKILLS, TOPIC)
    for chosen in sample_variants():
        templates = build_variant(v2, chosen)
        turns = prompts.student_turns(templates, SKILLS, TOPIC)
        assert (turns == base_turns) is (not chosen.affects_student), chosen
    labelled = build_variant(v2, variant(student_skills="labelled"))
    first = prompts.student_turns(labelled, SKILLS, TOPIC)[0]
    assert "Skill: Metaphor\nDefinition: Saying one thing is another.\nExample: Time" in first


def test_version_ids_record_every_choice():
    v2 = load_templates("v2")
    ids = {build_variant(v2, v).version_id for v in one_change_variants()}
    assert len(ids) == len(one_change_variants())  # the layout choices are hashed too
    chosen = variant(judge_format="table", skill_order="alphabetical")
    loaded = load_templates(chosen.spec())
    assert loaded.version_id == build_variant(v2, chosen).version_id
    assert loaded.version_id.startswith("v2+judge_format=table,skill_order=alphabetical-")
    assert loaded.judge_format == "table" and loaded.judge_skill_order == "alphabetical"


def test_a_set_not_laid_out_as_v2_cannot_be_varied():
    with pytest.raises(TemplateError, match=r"differs from it in grade\.txt, skill_block\.txt"):
        load_templates(variant(rubric="bullets").spec("v1"))
    with pytest.raises(TemplateError, match="variant:<choices>:<base set>"):
        load_templates("variant:rubric=bullets")


# --- every variant, every verdict format: prompts the judge can follow, replies we read ---------


def _reply(fmt: str, prompt: str, values: dict[str, int], keys: dict[str, str]) -> str:
    """A judge's reply in `fmt`, naming each criterion as the prompt named it."""
    if fmt == "json":
        return json.dumps({keys[label]: v for label, v in values.items()})
    if fmt == "lines":
        asked = re.findall(r"^(.+): <1 or 0>$", prompt, flags=re.M)
        assert asked == list(values)
        return "\n".join(f"{label}: {values[label]}" for label in asked)
    rows = "\n".join(f"| {label} | {v} |" for label, v in values.items())
    total = sum(values.values())
    return f"| Criteria | Points Earned |\n|---|---|\n{rows}\n| Total Points Earned | {total} |"


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_variant_renders_a_complete_prompt_and_its_verdicts_parse(fmt: str):
    v2 = load_templates("v2")
    rubric = build_rubric(SKILLS, TOPIC)
    judged = [c for c in rubric if c.judged]
    for chosen, tell in itertools.product(sample_variants(), (False, True)):
        templates = build_variant(v2, chosen)
        templates.check_run(judge_format=fmt, tell_not_to_name=tell)
        prompt = prompts.grading(
            templates, SKILLS, TOPIC, ANSWER, judged, fmt, tell_not_to_name=tell
        )
        text = prompt[0]["content"]
        assert "$" not in text, (chosen, text)
        assert ANSWER in text and ("Do not name the skills" in text) is tell
        for s in SKILLS:
            assert s.name in text and s.definition in text and s.example in text
        for c in judged:
            assert c.label in text, (chosen, c.label)
        turns = prompts.student_turns(templates, SKILLS, TOPIC, tell_not_to_name=tell)
        assert not any("$" in turn for turn in turns)
        assert all(s.definition in turns[0] and s.example in turns[0] for s in SKILLS)
        values = {c.label: (i + len(chosen.id)) % 2 for i, c in enumerate(judged)}
        reply = _reply(fmt, text, values, {c.label: c.key for c in judged})
        parsed = parse_verdict(reply, rubric)
        assert isinstance(parsed, ParsedVerdict), (chosen, fmt, parsed)
        assert parsed.values == {c.id: values[c.label] for c in judged}
