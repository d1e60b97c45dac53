from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skillmix.catalog.model import Skill, Topic
from skillmix.prompts.rubric import Criterion, build_rubric
from skillmix.protocol.verdicts import (
    ParsedVerdict,
    Unparsed,
    parse_verdict,
    verdict_json_schema,
)

METAPHOR = Skill("metaphor", "Metaphor", "literary", "d", "e")
RED_HERRING = Skill("red_herring", "Red herring", "rhetorical", "d", "e", aliases=("distraction",))
RUBRIC = build_rubric([METAPHOR, RED_HERRING], Topic("bees", "beekeeping"))
IDS = ("skill:metaphor", "skill:red_herring", "topic", "sense")


def values(m: int, r: int, t: int, s: int) -> dict[str, int]:
    return dict(zip(IDS, (m, r, t, s), strict=True))


def parsed(text: str, rubric: list[Criterion] = RUBRIC) -> ParsedVerdict:
    result = parse_verdict(text, rubric)
    assert isinstance(result, ParsedVerdict), result
    return result


# --- JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"metaphor": 1, "red_herring": 0, "on_topic": 1, "makes_sense": 0}',
        '{"makes_sense": false, "on_topic": true, "red_herring": false, "metaphor": true}',
        '{"metaphor": "yes", "red_herring": "no", "on_topic": "1", "makes_sense": "0"}',
        'Verdict:\n```json\n{"metaphor": 1, "red_herring": 0, "on_topic": 1, '
        '"makes_sense": 0, "rationale": "the hive is a fortress"}\n```\nThanks.',
        '{"verdicts": {"metaphor": 1, "red_herring": 0, "on_topic": 1, "makes_sense": 0}}',
        '{"Correctly illustrates metaphor": 1, "Correctly illustrates red herring": 0, '
        '"Pertains to beekeeping": 1, "Text makes sense": 0, "At most 1 sentence": 1}',
        '[{"criterion": "Correctly illustrates metaphor", "points": 1}, '
        '{"criterion": "red herring", "points": 0, "reason": "no metaphor of it"}, '
        '{"criterion": "Pertains to beekeeping", "points": 1}, '
        '{"criterion": "Text makes sense", "points": 0}]',
        '{"metaphor": {"score": 1, "rationale": "x"}, "red_herring": {"score": 0}, '
        '"on_topic": {"score": 1}, "makes_sense": {"score": 0}}',
        '{"skill:metaphor": 1, "skill:red_herring": 0, "topic": 1, "sense": 0}',
        '{"title": "Grading", "metaphor": 1, "red_herring": 0, "on_topic": 1, "makes_sense": 0}',
        "{'metaphor': 1, 'red_herring': 0, 'on_topic': 1, 'makes_sense': 0,}",
        '{"metaphor": 1, "red_herring": 0, "on_topic": 1, "makes_sense": 0, "short_enough": 0}',
    ],
)
def test_json(text: str) -> None:
    result = parsed(text)
    assert result.values == values(1, 0, 1, 0)
    assert result.method == "json"


# --- Tables -----------------------------------------------------------------------------

SKILL_MIX_TABLE = """\
| Criterion | Points possible | Points earned |
|---|---|---|
| Text makes sense | 1 | 0 |
| Correctly illustrates red herring | 1 | 1 |
| Pertains to beekeeping | 1 | 1 |
| At most 1 sentence | 1 | 0 |
| Correctly illustrates metaphor | 1 | 1 |
| **Total** | 5 | 3 |
"""

ASCII_TABLE = """\
+-----------------------------------+-------+
| Criterion                         | Score |
+===================================+=======+
| Correctly illustrates metaphor    | 1     |
| Correctly illustrates red herring | 1     |
| Pertains to beekeeping            | 1     |
| Text makes sense                  | 0     |
+-----------------------------------+-------+
"""

REASONING_TABLE = """\
Here is my grading.

| # | Criterion | Reasoning | Points earned |
|:-:|:----------|:----------|:-------------:|
| 1 | Metaphor | The red herring about weather is not a metaphor, but the hive is. | ✓ |
| 2 | Red herring | Beekeeping is on topic and makes sense; the aside is a distraction. | 1/1 |
| 3 | Pertains to beekeeping | It is about bees. | Yes |
| 4 | Makes sense | Reads naturally. | 0 |
"""

TRANSPOSED_TABLE = """\
| Metaphor | Red herring | On topic | Makes sense | Total |
|---|---|---|---|---|
| ✓ | ✓ | ✓ | ✗ | 3 |
"""

HEADERLESS_TABLE = """\
| metaphor | 1 |
| red herring | 1 |
| beekeeping | 1 |
| sense | 0 |
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SKILL_MIX_TABLE, values(1, 1, 1, 0)),
        (ASCII_TABLE, values(1, 1, 1, 0)),
        (REASONING_TABLE, values(1, 1, 1, 0)),
        (HEADERLESS_TABLE, values(1, 1, 1, 0)),
        (TRANSPOSED_TABLE, values(1, 1, 1, 0)),
    ],
)
def test_tables(text: str, expected: dict[str, int]) -> None:
    result = parsed(text)
    assert result.values == expected
    assert result.method == "table"


# --- "Points earned" lines and plain lines ----------------------------------------------

POINTS_TEXT = """\
1. Correctly illustrates metaphor: "the hive is a fortress". Points earned: 1

2. Correctly illustrates red herring
The aside about the weather pertains to beekeeping only loosely and makes sense.
Points earned: 0

3. Pertains to beekeeping
**Points earned:** 1

4. Text makes sense
Points possible: 1
Points earned: 1

5. At most 1 sentence
Points earned: 1

Total points: 3
"""


def test_points_earned_lines() -> None:
    result = parsed(POINTS_TEXT)
    assert result.values == values(1, 0, 1, 1)
    assert result.method == "points"


@pytest.mark.parametrize(
    "text",
    [
        "metaphor: yes\nred herring: no\non topic: yes\nmakes sense: yes",
        "- Correctly illustrates metaphor: 1/1\n- Correctly illustrates red herring: 0/1\n"
        "- Pertains to beekeeping: 1/1\n- Text makes sense: 1/1",
        "Metaphor — 1 point\nRed herring — 0 points\nPertains to beekeeping — 1 point\n"
        "Text makes sense — 1 point",
        "✅ Metaphor\n❌ Red herring\n✓ On topic\nMakes sense ✓",
        "✅ Metaphor: the hive pertains to beekeeping\n❌ Red herring: none\n"
        "✓ On topic: about bees\n[x] Makes sense",
        "Metaphor: true\nRed herring: false\nTopic: pass\nCoherence: pass",
        "**Metaphor**: ✔\n**Red herring**: ✗\n**On topic**: Yes\n**Makes sense**: Yes",
        "Metaphor: the hive as a fortress works, so 1.\n"
        "Red herring: the weather aside is not distracting (no).\n"
        "Topic: clearly about bees → 1\n"
        "Coherence: Yes, it reads well.",
        "Criterion 1: Correctly illustrates metaphor: 1\nCriterion 2: red herring: 0\n"
        "Criterion 3: Pertains to beekeeping: 1\nCriterion 4: Text makes sense: 1\n"
        "Criterion 5: At most 1 sentence: 0",
    ],
)
def test_lines(text: str) -> None:
    result = parsed(text)
    assert result.values == values(1, 0, 1, 1)
    assert result.method == "lines"


# --- What must not parse ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "I'm sorry, but I can't help with grading this text.",
        "1\n0\n1\n1",
        '{"scores": [1, 0, 1, 1]}',
        "| Criterion | Points |\n|---|---|\n| 1 | 1 |\n| 2 | 0 |\n| 3 | 1 |\n| 4 | 1 |",
        "asdf qwer zxcv",
    ],
)
def test_no_verdict(text: str) -> None:
    result = parse_verdict(text, RUBRIC)
    assert isinstance(result, Unparsed)
    assert result.missing == IDS
    assert result.reason


def test_unclear_value_is_not_a_verdict() -> None:
    text = "metaphor: partially\nred herring: 1\non topic: 1\nmakes sense: 1"
    result = parse_verdict(text, RUBRIC)
    assert isinstance(result, Unparsed)
    assert result.missing == ("skill:metaphor",)
    assert "not a clear number of points" in result.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        ("0", 0),
        ("1/1", 1),
        ("0/1", 0),
        ("1 point", 1),
        ("0 points", 0),
        ("yes", 1),
        ("No", 0),
        ("✓", 1),
        ("✗", 0),
        ("true", 1),
        ("false", 0),
        ("pass", 1),
        ("fail", 0),
        ("2", 1),
        ("1.0", 1),
        ("0.5", 0.5),
        ("1/2", 0.5),
        ("½", 0.5),
        ("partially", None),
        ("N/A", None),
    ],
)
def test_values(value: str, expected: float | None) -> None:
    text = f"metaphor: {value}\nred herring: 1\non topic: 1\nmakes sense: 1"
    result = parse_verdict(text, RUBRIC)
    if expected is None:
        assert isinstance(result, Unparsed)
        assert result.missing == ("skill:metaphor",)
    else:
        assert isinstance(result, ParsedVerdict)
        assert result.values["skill:metaphor"] == expected


def test_conflicting_rows_are_unparsed() -> None:
    text = "metaphor: 1\nred herring: 1\non topic: 1\nmakes sense: 1\nMetaphor: 0"
    result = parse_verdict(text, RUBRIC)
    assert isinstance(result, Unparsed)
    assert result.missing == ("skill:metaphor",)
    assert "conflicting" in result.reason


def test_repeated_agreeing_rows_are_fine() -> None:
    text = "metaphor: 1\nred herring: 1\non topic: 1\nmakes sense: 1\nMetaphor: yes"
    assert parsed(text).values == values(1, 1, 1, 1)


def test_most_specific_criterion_wins() -> None:
    common_sense = Skill("common_sense", "Common sense", "physical", "d", "e")
    topic_sentence = Skill("topic_sentence", "Topic sentence", "literary", "d", "e")
    rubric = build_rubric([common_sense, topic_sentence], Topic("sewing", "sewing"))
    text = "Common sense: 1\nTopic sentence: 0\nOn topic: 1\nMakes sense: 0\nAt most 1 sentence: 1"
    assert parsed(text, rubric).values == {
        "skill:common_sense": 1,
        "skill:topic_sentence": 0,
        "topic": 1,
        "sense": 0,
    }


def test_length_criterion_is_ignored_and_not_required() -> None:
    judged_only = [c for c in RUBRIC if c.judged]
    text = "metaphor: 1\nred herring: 1\nAt most 1 sentence: 0\non topic: 1\nmakes sense: 1"
    assert parsed(text, judged_only).values == values(1, 1, 1, 1)
    assert parsed(text).values == values(1, 1, 1, 1)


def test_rubric_without_judged_criteria_is_a_caller_error() -> None:
    with pytest.raises(ValueError, match="no judged criteria"):
        parse_verdict("{}", [c for c in RUBRIC if not c.judged])


# --- Schema -----------------------------------------------------------------------------


def test_schema() -> None:
    assert verdict_json_schema(RUBRIC) == {
        "type": "object",
        "properties": {
            "metaphor": {"type": "integer", "enum": [0, 1]},
            "red_herring": {"type": "integer", "enum": [0, 1]},
            "on_topic": {"type": "integer", "enum": [0, 1]},
            "makes_sense": {"type": "integer", "enum": [0, 1]},
        },
        "required": ["metaphor", "red_herring", "on_topic", "makes_sense"],
        "additionalProperties": False,
    }


def test_schema_rejects_clashing_keys() -> None:
    clash = Skill("metaphor2", "metaphor", "literary", "d", "e")
    with pytest.raises(ValueError, match="distinct names"):
        verdict_json_schema(build_rubric([METAPHOR, clash], Topic("bees", "beekeeping")))


# --- Properties -------------------------------------------------------------------------

SKILL_POOL = [
    Skill(name.lower().replace(" ", "_").replace("-", "_"), name, "c", "d", "e")
    for name in (
        "Metaphor",
        "Red herring",
        "Ad hominem",
        "Modus ponens",
        "Self-serving bias",
        "Folk physics",
        "Statistical syllogism",
        "Emotional self-regulation",
        "Hyperbole",
        "Irony",
        "Loaded question",
        "Spatial reasoning",
    )
]
TOPIC_POOL = [Topic(t, t) for t in ("beekeeping", "sewing", "dueling", "triathlons", "urbanism")]


@st.composite
def rubrics(draw: st.DrawFn) -> list[Criterion]:
    skills = draw(st.lists(st.sampled_from(SKILL_POOL), min_size=1, max_size=5, unique=True))
    return build_rubric(skills, draw(st.sampled_from(TOPIC_POOL)))


@st.composite
def rubric_and_values(draw: st.DrawFn) -> tuple[list[Criterion], dict[str, int]]:
    rubric = draw(rubrics())
    assignment = {c.id: draw(st.integers(0, 1)) for c in rubric if c.judged}
    return rubric, assignment


@given(st.text(max_size=500), rubrics())
def test_never_raises_on_arbitrary_text(text: str, rubric: list[Criterion]) -> None:
    result = parse_verdict(text, rubric)
    assert isinstance(result, ParsedVerdict | Unparsed)
    if isinstance(result, Unparsed):
        assert set(result.missing) <= {c.id for c in rubric if c.judged}


@given(
    st.text(alphabet='{}[]":,01 \nabcmetaphor|yesno-', max_size=300),
    rubrics(),
)
def test_never_raises_on_verdict_like_text(text: str, rubric: list[Criterion]) -> None:
    assert isinstance(parse_verdict(text, rubric), ParsedVerdict | Unparsed)


@given(rubric_and_values(), st.randoms(use_true_random=False), st.booleans())
def test_json_round_trip(
    case: tuple[list[Criterion], dict[str, int]], rng: Random, extra: bool
) -> None:
    rubric, assignment = case
    keyed = {c.key: assignment[c.id] for c in rubric if c.judged}
    items = list(keyed.items())
    rng.shuffle(items)
    document: dict[str, object] = dict(items)
    if extra:
        document["rationale"] = "Text makes sense and pertains to the topic."
    result = parsed(json.dumps(document), rubric)
    assert result.values == assignment
    assert result.method == "json"


@given(rubric_and_values(), st.randoms(use_true_random=False))
def test_table_with_shuffled_rows(
    case: tuple[list[Criterion], dict[str, int]], rng: Random
) -> None:
    rubric, assignment = case
    rows = [
        # The reasoning column names other criteria, which must not confuse the parser.
        f"| {c.label} | Unlike {rng.choice(rubric).label.lower()}. | {assignment[c.id]} |"
        for c in rubric
        if c.judged
    ]
    rng.shuffle(rows)
    table = "| Criterion | Reasoning | Points earned |\n|---|---|---|\n" + "\n".join(rows)
    result = parsed(table, rubric)
    assert result.values == assignment
    assert result.method == "table"


@given(rubric_and_values(), st.data())
def test_missing_rows_are_reported(
    case: tuple[list[Criterion], dict[str, int]], data: st.DataObject
) -> None:
    rubric, assignment = case
    judged = [c for c in rubric if c.judged]
    dropped = data.draw(st.sets(st.sampled_from([c.id for c in judged]), min_size=1))
    rows = [f"| {c.label} | {assignment[c.id]} |" for c in judged if c.id not in dropped]
    result = parse_verdict("| Criterion | Points earned |\n|---|---|\n" + "\n".join(rows), rubric)
    assert isinstance(result, Unparsed)
    assert result.missing == tuple(c.id for c in judged if c.id in dropped)


@given(rubrics())
def test_schema_has_one_required_binary_field_per_judged_criterion(
    rubric: list[Criterion],
) -> None:
    schema = verdict_json_schema(rubric)
    keys = [c.key for c in rubric if c.judged]
    assert schema["required"] == keys
    assert list(schema["properties"]) == keys
    assert all(p == {"type": "integer", "enum": [0, 1]} for p in schema["properties"].values())
    assert schema["additionalProperties"] is False


# --- What real judges write (issue 8) ---------------------------------------------------
# Each fixture under tests/fixtures/judge_texts/ reproduces one way real GPT-4 grading
# transcripts were refused or misread; the texts are our own wording in their shapes.

FIXTURES = Path(__file__).parent / "fixtures" / "judge_texts"
COMPLEX_QUESTION = Skill(
    "complex_question",
    "complex question (loaded question with implicit assumption )",
    "rhetorical",
    "d",
    "e",
)
FOLK_PHYSICS = Skill(
    "folk_physics", "folk physics (common knowledge physics)", "physical", "d", "e"
)
PLAIN_RED_HERRING = Skill("red_herring", "red herring", "rhetorical", "d", "e")
REAL_RUBRIC = build_rubric(
    [COMPLEX_QUESTION, FOLK_PHYSICS, PLAIN_RED_HERRING], Topic("beekeeping", "Beekeeping")
)
REAL_IDS = ("skill:complex_question", "skill:folk_physics", "skill:red_herring", "topic", "sense")
FALLACY_RUBRIC = build_rubric(
    [
        Skill("accident", "accident (fallacy)", "logical", "d", "e"),
        Skill("false_dilemma", "false dilemma (fallacy)", "logical", "d", "e"),
    ],
    Topic("gardening", "Gardening"),
)


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # "complex question (loaded question ...)" comes back as "complex question".
        ("table_shortened_names.md", (1, 0, 1, 1, 1)),
        # ... or as "complex/loaded question", the gloss alone, or without the prefix.
        ("table_gloss_and_slash.md", (0, 1, 1, 1, 0)),
    ],
)
def test_shortened_skill_names_are_matched(name: str, expected: tuple[int, ...]) -> None:
    result = parsed(fixture(name), REAL_RUBRIC)
    assert result.values == dict(zip(REAL_IDS, expected, strict=True))


def test_points_line_belongs_to_the_heading_not_to_commentary() -> None:
    # The line between a heading and its points mentions the other skill.
    result = parsed(fixture("points_commentary_between.md"))
    assert result.values == values(1, 0, 1, 1)
    assert result.method == "points"


def test_negative_value_is_refused() -> None:
    result = parse_verdict(fixture("table_negative_cell.md"), RUBRIC)
    assert isinstance(result, Unparsed)
    assert result.missing == ("skill:red_herring",)
    assert "negative" in result.reason


@pytest.mark.parametrize("cell", ["-1", "−1", "–1", "-0.5", "-1 point"])
def test_negative_values_in_any_format_are_refused(cell: str) -> None:
    for text in (
        f"metaphor: {cell}\nred herring: 1\non topic: 1\nmakes sense: 1",
        f"| Criterion | Points earned |\n|---|---|\n| Metaphor | {cell} |\n| Red herring | 1 |\n"
        "| On topic | 1 |\n| Makes sense | 1 |",
        f"1. Metaphor\nPoints earned: {cell}\n2. Red herring\nPoints earned: 1\n"
        "3. On topic\nPoints earned: 1\n4. Makes sense\nPoints earned: 1",
    ):
        result = parse_verdict(text, RUBRIC)
        assert isinstance(result, Unparsed), text
        assert result.missing == ("skill:metaphor",)


def test_negative_json_value_is_refused() -> None:
    text = '{"metaphor": -1, "red_herring": 1, "on_topic": 1, "makes_sense": 1}'
    assert isinstance(parse_verdict(text, RUBRIC), Unparsed)


def test_points_deducted_column_is_read_as_a_deduction() -> None:
    result = parsed(fixture("table_points_deducted.md"))
    assert result.values == {**values(1, 0, 1, 0), "sense": 0.5}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "| Criterion | Points | Points deducted |\n|---|---|---|\n| Metaphor | 2 | 1 |\n"
            "| Red herring | 2 | 0 |\n| On topic | 2 | 2 |\n| Makes sense | 2 | 0 |",
            {**values(1, 1, 0, 1), "skill:metaphor": 0.5},
        ),
        (
            "1. Metaphor\nPoints deducted: 0\n2. Red herring\nPoints deducted: 1\n"
            "3. On topic\nPoints deducted: 0\n4. Makes sense\nPoints deducted: 0",
            values(1, 0, 1, 1),
        ),
        (
            "Metaphor: 0 points deducted\nRed herring: 1 point deducted\n"
            "On topic: no deduction, 0\nMakes sense: deduction 0",
            values(1, 0, 1, 1),
        ),
        (
            '[{"criterion": "metaphor", "points_deducted": 0}, {"criterion": "red herring", '
            '"points_deducted": 1}, {"criterion": "on topic", "deducted": 0}, '
            '{"criterion": "makes sense", "deduction": 0}]',
            values(1, 0, 1, 1),
        ),
        (
            "| | Metaphor | Red herring | On topic | Makes sense |\n|---|---|---|---|---|\n"
            "| Possible | 1 | 1 | 1 | 1 |\n| Deducted | 0 | 1 | 0 | 0 |",
            values(1, 0, 1, 1),
        ),
    ],
)
def test_deductions_in_every_format(text: str, expected: dict[str, float]) -> None:
    assert parsed(text).values == expected


@pytest.mark.parametrize(
    "text",
    [
        # A deduction that is not a number cannot be read as points earned.
        "Metaphor: no points deducted\nRed herring: 1\nOn topic: 1\nMakes sense: 1",
        # A deduction larger than the point.
        "| Criterion | Points deducted |\n|---|---|\n| Metaphor | 2 |\n| Red herring | 0 |\n"
        "| On topic | 0 |\n| Makes sense | 0 |",
    ],
)
def test_unreadable_deductions_are_refused(text: str) -> None:
    result = parse_verdict(text, RUBRIC)
    assert isinstance(result, Unparsed)
    assert result.missing == ("skill:metaphor",)


def test_fractional_points_are_kept() -> None:
    result = parsed(
        fixture("bold_points_fraction.md"), [c for c in REAL_RUBRIC if c.kind == "skill"]
    )
    assert result.values == {
        "skill:complex_question": 0.5,
        "skill:folk_physics": 1,
        "skill:red_herring": 0,
    }
    assert type(result.values["skill:folk_physics"]) is int  # whole values stay 0/1 ints


def test_grade_line_is_not_the_points_of_an_unfinished_criterion() -> None:
    # The last criterion was cut off; "Grade: 2" is the total, not its points.
    skills_only = [c for c in REAL_RUBRIC if c.kind == "skill"]
    result = parse_verdict(fixture("points_truncated_then_grade.md"), skills_only)
    assert isinstance(result, Unparsed)
    assert result.missing == ("skill:red_herring",)


def test_ambiguous_label_makes_the_round_unparsed() -> None:
    # "fallacy" could be either skill; the other rows being complete does not help.
    result = parse_verdict(fixture("table_ambiguous_label.md"), FALLACY_RUBRIC)
    assert isinstance(result, Unparsed)
    assert result.missing == ("skill:accident", "skill:false_dilemma")
    assert "ambiguous" in result.reason and "'Correctly illustrates fallacy'" in result.reason


@pytest.mark.parametrize(
    "label",
    ["Fallacy", "fallacy", "Correctly illustrates the fallacy", "accident/false dilemma"],
)
def test_ambiguous_labels_in_lines_are_unparsed(label: str) -> None:
    text = (
        f"Accident (fallacy): 1\nFalse dilemma (fallacy): 0\n{label}: 1\n"
        "Pertains to gardening: 1\nMakes sense: 1"
    )
    result = parse_verdict(text, FALLACY_RUBRIC)
    assert isinstance(result, Unparsed)
    assert set(result.missing) == {"skill:accident", "skill:false_dilemma"}


def test_a_shortened_name_that_is_another_skills_name_is_not_a_variant() -> None:
    # "loaded question" is the gloss of one skill and the name of another: it means the
    # skill of that name, and the other skill keeps its own shortened name.
    rubric = build_rubric(
        [COMPLEX_QUESTION, Skill("loaded_question", "loaded question", "rhetorical", "d", "e")],
        Topic("sewing", "Sewing"),
    )
    text = (
        "| Criteria | Points Earned |\n|---|---|\n| Correctly illustrates complex question | 1 |\n"
        "| Correctly illustrates loaded question | 0 |\n| Pertains to Sewing | 1 |\n"
        "| Text makes sense | 1 |"
    )
    assert parsed(text, rubric).values == {
        "skill:complex_question": 1,
        "skill:loaded_question": 0,
        "topic": 1,
        "sense": 1,
    }


def test_aliases_are_labels() -> None:
    text = "metaphor: 1\ndistraction: 0\non topic: 1\nmakes sense: 1"
    assert parsed(text).values == values(1, 0, 1, 1)


# --- Properties of tolerant matching ----------------------------------------------------

TOLERANT_POOL = [
    Skill("complex_question", "complex question (loaded question with implicit assumption)",
          "rhetorical", "d", "e"),
    Skill("folk_physics", "folk physics (common knowledge physics)", "physical", "d", "e"),
    Skill("accident", "accident (fallacy)", "logical", "d", "e"),
    Skill("hyperbole", "hyperbole/overstatement", "rhetorical", "d", "e"),
    Skill("self_serving_bias", "self-serving bias", "bias", "d", "e"),
    Skill("emotional_self_regulation", "emotional self-regulation", "mind", "d", "e"),
    Skill("red_herring", "red herring", "rhetorical", "d", "e", aliases=("distraction",)),
    Skill("metaphor", "metaphor", "literary", "d", "e"),
    Skill("statistical_syllogism", "statistical syllogism", "logical", "d", "e"),
    Skill("spatial_reasoning", "spatial reasoning", "mind", "d", "e"),
]  # fmt: skip
# Every way a judge may name each criterion: the full name, aliases, and the tolerated
# shortenings (the part before or inside a parenthesis, its head, a slash's sides).
RENDERINGS = {
    "skill:complex_question": [
        "complex question (loaded question with implicit assumption)", "complex question",
        "loaded question", "loaded question with implicit assumption",
        "complex/loaded question", "complex question (loaded question)",
    ],
    "skill:folk_physics": [
        "folk physics (common knowledge physics)", "folk physics", "common knowledge physics",
    ],
    "skill:accident": ["accident (fallacy)", "accident", "fallacy"],
    "skill:hyperbole": ["hyperbole/overstatement", "hyperbole", "overstatement"],
    "skill:self_serving_bias": ["self-serving bias", "self serving bias"],
    "skill:emotional_self_regulation": ["emotional self-regulation", "emotional self regulation"],
    "skill:red_herring": ["red herring", "distraction"],
    "skill:metaphor": ["metaphor"],
    "skill:statistical_syllogism": ["statistical syllogism"],
    "skill:spatial_reasoning": ["spatial reasoning"],
    "topic": ["Pertains to {topic}", "Pertains to the topic", "On topic", "Topic"],
    "sense": ["Text makes sense", "Makes sense", "The text makes sense", "Coherence"],
}  # fmt: skip
COMMENTARY = (
    "Unlike the {other}, this part holds up.",
    "There is no {other} here, which is fine.",
    "{other} is not at issue in this part.",
    "It stays close to {other} without quite being it.",
)
CASES = (str, str.lower, str.title, str.upper)


@st.composite
def rendering(draw: st.DrawFn, criterion: Criterion, topic: str) -> str:
    """One tolerated way of writing the criterion's label."""
    text = draw(st.sampled_from(RENDERINGS[criterion.id])).format(topic=topic)
    if criterion.kind == "skill":
        text = draw(st.sampled_from(["", "Correctly illustrates ", "Illustrates "])) + text
    return draw(st.sampled_from(CASES))(text)


@st.composite
def tolerant_cases(
    draw: st.DrawFn, values_from: Sequence[float] = (0, 1, 0.5)
) -> tuple[list[Criterion], dict[str, float], dict[str, str]]:
    """A rubric, a value per judged criterion, and a label for each criterion."""
    skills = draw(st.lists(st.sampled_from(TOLERANT_POOL), min_size=1, max_size=5, unique=True))
    topic = draw(st.sampled_from(TOPIC_POOL))
    rubric = build_rubric(skills, topic)
    assignment = {c.id: draw(st.sampled_from(values_from)) for c in rubric if c.judged}
    labels = {c.id: draw(rendering(c, topic.name)) if c.judged else c.label for c in rubric}
    return rubric, assignment, labels


def commentary(draw: st.DrawFn, labels: dict[str, str], rng: Random) -> list[str]:
    lines = draw(st.lists(st.sampled_from(COMMENTARY), max_size=2))
    return [line.format(other=rng.choice(list(labels.values()))) for line in lines]


def as_table(
    rubric: list[Criterion], assignment: dict[str, float], labels: dict[str, str], rng: Random
) -> str:
    rows = [f"| {labels[c.id]} | {assignment.get(c.id, 1)} |" for c in rubric]
    rng.shuffle(rows)
    return "Here's the grading table:\n\n| Criteria | Points Earned |\n|---|---|\n" + "\n".join(
        [*rows, "| Total Points Earned | 9 |"]
    )


@given(tolerant_cases(), st.randoms(use_true_random=False), st.data())
def test_renamed_criteria_in_shuffled_tables_keep_their_points(
    case: tuple[list[Criterion], dict[str, float], dict[str, str]],
    rng: Random,
    data: st.DataObject,
) -> None:
    rubric, assignment, labels = case
    explanation = commentary(data.draw, labels, rng)
    text = as_table(rubric, assignment, labels, rng) + "\n\nExplanation:\n" + "\n".join(explanation)
    result = parsed(text, rubric)
    assert result.values == assignment


@given(tolerant_cases(), st.randoms(use_true_random=False), st.data())
def test_renamed_criteria_in_points_sections_keep_their_points(
    case: tuple[list[Criterion], dict[str, float], dict[str, str]],
    rng: Random,
    data: st.DataObject,
) -> None:
    """Headings in any style, commentary that mentions other criteria between a heading
    and its points, sections in any order: the points stay with their criteria."""
    rubric, assignment, labels = case
    sections = []
    for n, criterion in enumerate(rubric, start=1):
        label = labels[criterion.id]
        value = assignment.get(criterion.id, 1)
        notes = commentary(data.draw, labels, rng)
        points = data.draw(st.sampled_from(["Point earned: {}", "Points earned: {}",
                                            "**Points earned:** {}"])).format(value)  # fmt: skip
        style = data.draw(st.sampled_from(["numbered", "bold", "colon", "same line"]))
        if style == "same line":
            sections.append(f"**{label}**: {' '.join(notes)} {points}")
            continue
        heading = {"numbered": f"{n}. {label}", "bold": f"**{label}**", "colon": f"{label}:"}
        sections.append("\n".join([heading[style], *notes, points]))
    rng.shuffle(sections)
    text = "Here is my grading.\n\n" + "\n\n".join(sections) + "\n\nGrade: 9"
    result = parsed(text, rubric)
    assert result.values == assignment


@given(tolerant_cases(), st.randoms(use_true_random=False), st.data())
def test_renamed_criteria_in_lines_keep_their_points(
    case: tuple[list[Criterion], dict[str, float], dict[str, str]],
    rng: Random,
    data: st.DataObject,
) -> None:
    rubric, assignment, labels = case
    lines = [f"{labels[c.id]}: {assignment.get(c.id, 1)}" for c in rubric]
    lines += commentary(data.draw, labels, rng)
    rng.shuffle(lines)
    result = parsed("\n".join(lines), rubric)
    assert result.values == assignment


AMBIGUOUS_PAIRS = [
    (
        Skill("accident", "accident (fallacy)", "logical", "d", "e"),
        Skill("false_dilemma", "false dilemma (fallacy)", "logical", "d", "e"),
        ["fallacy", "Correctly illustrates fallacy", "accident/false dilemma"],
    ),
    (
        Skill("complex_question", "complex question (loaded question)", "rhetorical", "d", "e"),
        Skill("leading_question", "leading question (loaded question)", "rhetorical", "d", "e"),
        ["loaded question", "complex/leading question", "Loaded Question"],
    ),
    (
        Skill("metaphor", "metaphor", "literary", "d", "e"),
        Skill("red_herring", "red herring", "rhetorical", "d", "e"),
        ["metaphor/red herring", "metaphor / red herring"],
    ),
]


@given(
    st.sampled_from(AMBIGUOUS_PAIRS),
    st.lists(st.sampled_from(TOLERANT_POOL[4:6]), max_size=2, unique=True),
    st.randoms(use_true_random=False),
    st.data(),
)
def test_ambiguous_labels_are_never_scored(
    pair: tuple[Skill, Skill, list[str]], others: list[Skill], rng: Random, data: st.DataObject
) -> None:
    first, second, shared = pair
    rubric = build_rubric([first, second, *others], Topic("sewing", "sewing"))
    judged = [c for c in rubric if c.judged]
    rows = [f"| {c.label} | {data.draw(st.sampled_from([0, 1]))} |" for c in judged]
    rows.insert(rng.randrange(len(rows) + 1), f"| {data.draw(st.sampled_from(shared))} | 1 |")
    table = "| Criteria | Points Earned |\n|---|---|\n" + "\n".join(rows)
    result = parse_verdict(table, rubric)
    assert isinstance(result, Unparsed)
    assert {f"skill:{first.id}", f"skill:{second.id}"} <= set(result.missing)


@given(tolerant_cases(), st.randoms(use_true_random=False), st.data())
def test_incomplete_renamed_tables_are_unparsed(
    case: tuple[list[Criterion], dict[str, float], dict[str, str]],
    rng: Random,
    data: st.DataObject,
) -> None:
    rubric, assignment, labels = case
    judged = [c.id for c in rubric if c.judged]
    dropped = data.draw(st.sets(st.sampled_from(judged), min_size=1))
    kept = [c for c in rubric if c.id not in dropped]
    result = parse_verdict(as_table(kept, assignment, labels, rng), rubric)
    assert isinstance(result, Unparsed)
    assert result.missing == tuple(cid for cid in judged if cid in dropped)


@given(tolerant_cases(values_from=(0, 1)), st.randoms(use_true_random=False), st.data())
def test_cut_off_verdicts_are_unparsed_or_right(
    case: tuple[list[Criterion], dict[str, float], dict[str, str]],
    rng: Random,
    data: st.DataObject,
) -> None:
    """A judge cut off by its token limit: whatever is left is never mis-scored."""
    rubric, assignment, labels = case
    table = as_table(rubric, assignment, labels, rng)
    sections = "\n\n".join(
        f"{n}. {labels[c.id]}\n{rng.choice(COMMENTARY).format(other=labels[c.id])}\n"
        f"Point earned: {assignment.get(c.id, 1)}"
        for n, c in enumerate(rubric, start=1)
    )
    text = data.draw(st.sampled_from([table, sections]))
    cut = data.draw(st.integers(0, len(text)))
    result = parse_verdict(text[:cut], rubric)
    if isinstance(result, ParsedVerdict):
        assert result.values == assignment
