from __future__ import annotations

import json
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skillmix.catalog.model import Skill, Topic
from skillmix.protocol.rubric import Criterion, build_rubric
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


def test_fractional_value_is_not_a_verdict() -> None:
    result = parse_verdict("metaphor: 0.5\nred herring: 1\non topic: 1\nmakes sense: 1", RUBRIC)
    assert isinstance(result, Unparsed)
    assert result.missing == ("skill:metaphor",)
    assert "not a clear 0 or 1" in result.reason


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
        ("0.5", None),
        ("1/2", None),
        ("partially", None),
        ("N/A", None),
    ],
)
def test_values(value: str, expected: int | None) -> None:
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
