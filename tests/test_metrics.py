from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skillmix.catalog.load import load_catalog
from skillmix.catalog.model import Catalog, Skill, Topic
from skillmix.config import RunConfig
from skillmix.errors import InputError
from skillmix.scoring.metrics import (
    Scores,
    aggregate_generations,
    bootstrap_interval,
    majority_vote,
    paired_difference,
    score,
)
from skillmix.scoring.results import (
    BREAKDOWNS,
    GenerationScore,
    ItemResult,
    RunScores,
    breakdown,
    breakdowns,
    score_run,
)
from skillmix.store import Store

SKILLS = ["skill:a", "skill:b"]


def test_majority_vote_ties_are_not_met_and_unparsed_do_not_vote():
    rounds = [{"x": 1, "y": 1}, {"x": 0, "y": 1}, None, {"x": 1, "y": 0}]
    assert majority_vote(rounds) == {"x": 1, "y": 1}
    assert majority_vote([{"x": 1}, {"x": 0}]) == {"x": 0}
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None


@pytest.mark.parametrize(
    ("values", "met"),
    [
        ([0.5, 0.5, 1], 1),  # mean 2/3: met (0.5 counted as 0 would make it unmet)
        ([0.5, 1], 1),  # mean 3/4
        ([1, 0.5, 0], 0),  # mean 1/2: a tie is not met
        ([0.5, 0.5, 0.5], 0),
        ([0.5], 0),
        ([0.75, 0.5], 1),
        ([1 / 3, 2 / 3], 0),  # mean exactly 1/2 in floating point too
        ([0.5, None, 1, None], 1),  # unparsed rounds do not vote
    ],
)
def test_majority_vote_uses_the_mean_of_fractional_values(values, met):
    rounds = [None if v is None else {"x": v} for v in values]
    assert majority_vote(rounds) == {"x": met}
    assert type(majority_vote(rounds)["x"]) is int


@given(
    st.lists(st.one_of(st.none(), st.sampled_from([0, 0.25, 0.5, 0.75, 1])), min_size=1, max_size=7)
)
def test_majority_vote_is_the_rounded_mean_of_parsed_rounds(values):
    """The published rule: the rounded mean (ties down) of the rounds that were read."""
    decided = majority_vote([None if v is None else {"x": v} for v in values])
    parsed = [v for v in values if v is not None]
    if not parsed:
        assert decided is None
    else:
        assert decided == {"x": int(sum(parsed) / len(parsed) > 0.5)}


CATALOG_SKILLS = ("red_herring", "loaded_question")


def test_fractional_verdicts_round_trip_through_the_store(tmp_path: Path) -> None:
    """Stored verdicts keep their fractions, and scoring votes on them."""
    catalog = load_catalog()
    store = Store(tmp_path / "run.sqlite")
    store.put_catalog(catalog)
    config = RunConfig(
        student="openai:s", judges=("openai:j",), k=(2,), items=2, generation_rounds=1
    )
    store.ensure_run("r", config.model_dump(mode="json"), catalog.content_hash, "v1")
    store.put_items(
        "r",
        [(0, "i1", 2, CATALOG_SKILLS, "beekeeping"), (1, "i2", 2, CATALOG_SKILLS, "beekeeping")],
    )
    rounds = {"i1": [0.5, 0.5, 1], "i2": [1, 0.5, 0]}  # the red herring point, per round
    for item, points in rounds.items():
        store.put_generation(
            "r", item, 0, turn1_key=f"{item}-1", turn2_key=f"{item}-2", answer="Bees hum.",
            explanation=None, marker_found=True, sentences=1, named=[],
        )  # fmt: skip
        for grade_round, point in enumerate(points):
            verdicts = {"skill:red_herring": point, "skill:loaded_question": 1, "topic": 1}
            store.put_grade(
                "r", item, 0, "openai:j", grade_round, status="parsed", method="text:table",
                verdicts={**verdicts, "sense": 1}, reason=None, attempts=1, call_keys=[],
            )  # fmt: skip
    store.flush()
    stored = [g["verdicts"]["skill:red_herring"] for g in store.grades("r")]
    assert stored == [0.5, 0.5, 1, 1, 0.5, 0]
    voted = {r.item_id: r.generations[0].voted for r in score_run(store, "r").items}
    assert voted["i1"] == {
        "skill:red_herring": 1,
        "skill:loaded_question": 1,
        "topic": 1,
        "sense": 1,
    }
    assert voted["i2"]["skill:red_herring"] == 0
    store.close()


@pytest.mark.parametrize(
    ("decided", "expected"),
    [
        ({"skill:a": 1, "skill:b": 1, "topic": 1, "sense": 1, "length": 1}, (1, 1, 1.0)),
        ({"skill:a": 1, "skill:b": 1, "topic": 1, "sense": 1, "length": 0}, (0, 1, 0.0)),
        ({"skill:a": 1, "skill:b": 0, "topic": 1, "sense": 1, "length": 1}, (0, 0, 0.5)),
        ({"skill:a": 1, "skill:b": 1, "topic": 0, "sense": 0, "length": 1}, (0, 0, 0.0)),
        ({"skill:a": 0, "skill:b": 0, "topic": 1, "sense": 1, "length": 1}, (0, 0, 0.0)),
    ],
)
def test_three_metrics_hand_computed(decided, expected):
    assert score(decided, SKILLS).as_tuple() == expected


def test_aggregation_rules():
    gens = [Scores(0, 1, 0.0), Scores(0, 0, 0.5), None, Scores(1, 1, 1.0 / 3)]
    assert aggregate_generations(gens, "max") == Scores(1, 1, 0.5)
    assert aggregate_generations(gens, "mean").as_tuple() == pytest.approx((1 / 3, 2 / 3, 5 / 18))
    assert aggregate_generations(gens, "best") == Scores(1, 1, 1 / 3)
    assert aggregate_generations([None], "max") is None
    for rule in ("max", "mean", "best"):  # a lone scored text: its scores, under every rule
        assert aggregate_generations([None, Scores(0, 1, 0.5)], rule) == Scores(0, 1, 0.5)
    with pytest.raises(InputError, match="unknown aggregation rule 'median'"):
        aggregate_generations([Scores(0, 1, 0.5)], "median")  # type: ignore[arg-type]


def test_decided_criteria_come_in_one_order_whatever_the_rounds():
    """Records (and the page) list a decision's criteria in sorted order, with one grading
    round as with several."""
    one = majority_vote([{"z": 1, "a": 0.5, "m": 0.75}])
    assert one is not None and list(one) == ["a", "m", "z"] and one == {"a": 0, "m": 1, "z": 1}
    two = majority_vote([{"z": 1, "a": 0.5, "m": 0.75}, None, {"m": 1, "z": 1, "a": 0.5}])
    assert two is not None and list(two) == list(one) and two == one


def test_bootstrap_interval_contains_mean_and_is_reproducible():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    iv = bootstrap_interval(values, seed=1)
    assert iv.low <= iv.mean == 0.7 <= iv.high
    assert 0.3 < iv.low < 0.7 < iv.high <= 1.0
    assert iv == bootstrap_interval(values, seed=1)
    assert bootstrap_interval([]).n == 0


def test_paired_difference_uses_shared_items_only():
    a = {"i1": 1.0, "i2": 1.0, "i3": 0.0, "extra": 1.0}
    b = {"i1": 0.0, "i2": 1.0, "i3": 0.0}
    diff = paired_difference(a, b)
    assert diff.n == 3 and diff.mean == pytest.approx(1 / 3)


@given(st.lists(st.lists(st.sampled_from([0, 1]), min_size=3, max_size=3), min_size=1, max_size=7))
def test_majority_vote_matches_counting(rows):
    rounds = [{"x": r[0], "y": r[1], "z": r[2]} for r in rows]
    decided = majority_vote(rounds)
    for i, key in enumerate("xyz"):
        ones = sum(r[i] for r in rows)
        assert decided[key] == (1 if ones > len(rows) - ones else 0)


@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.floats(0, 1)), min_size=1, max_size=5))
def test_max_rule_dominates_mean(raw):
    gens = [Scores(float(a and b), float(b), c) for a, b, c in raw]
    hi, mean = aggregate_generations(gens, "max"), aggregate_generations(gens, "mean")
    assert all(h >= m - 1e-12 for h, m in zip(hi.as_tuple(), mean.as_tuple(), strict=True))


def hand_scored_run() -> RunScores:
    """Three items under judge J (one unscored) and one under judge K, by hand."""
    catalog = Catalog(
        "hand",
        (
            Skill("a", "A", "X", "d", "e"),
            Skill("b", "B", "X", "d", "e"),
            Skill("c", "C", "Y", "d", "e"),
        ),
        (Topic("t1", "one"), Topic("t2", "two")),
        "1",
    )

    def gen(round_: int, decided: dict[str, int] | None) -> GenerationScore:
        return GenerationScore(round_, decided, None, [])

    items = [
        ItemResult("i1", 2, ["a", "b"], "t1", "J",
                   [gen(0, {"skill:a": 1, "skill:b": 0}), gen(1, {"skill:a": 0, "skill:b": 0}),
                    gen(2, None)],
                   Scores(0.0, 0.0, 0.5)),
        ItemResult("i2", 2, ["a", "c"], "t2", "J", [gen(0, {"skill:a": 0, "skill:c": 1})],
                   Scores(1.0, 1.0, 1.0)),
        ItemResult("i3", 2, ["b", "c"], "t1", "J", [gen(0, None)], None),
        ItemResult("i1", 2, ["a", "b"], "t1", "K", [gen(0, {"skill:a": 1, "skill:b": 1})],
                   Scores(1.0, 1.0, 1.0)),
    ]  # fmt: skip
    return RunScores({"id": "hand"}, catalog, "max", items, 4, 0)  # type: ignore[arg-type]


def test_breakdowns_hand_computed():
    """Per skill, category and topic, per judge: unscored items left out, a skill succeeds
    on an item when some decided generation met it, categories count (item, skill) pairs."""
    scores = hand_scored_run()
    got = breakdowns(scores)

    def rows(by: str, judge: str) -> dict[str, tuple[float, ...]]:
        return {
            r[by]: (r["items"], r["full_marks"], r["all_skills"], r["skill_fraction"],
                    *([r["skill_success"]] if by != "topic" else []))
            for r in got[by] if r["judge"] == judge
        }  # fmt: skip

    assert rows("skill", "J") == {
        "a": (2, 0.5, 0.5, 0.75, 0.5),
        "b": (1, 0.0, 0.0, 0.5, 0.0),
        "c": (1, 1.0, 1.0, 1.0, 1.0),
    }
    assert rows("category", "J") == {"X": (3, 1 / 3, 1 / 3, 2 / 3, 1 / 3), "Y": (1, 1, 1, 1, 1)}
    assert rows("topic", "J") == {"t1": (1, 0.0, 0.0, 0.5), "t2": (1, 1.0, 1.0, 1.0)}
    assert rows("skill", "K") == {"a": (1, 1, 1, 1, 1), "b": (1, 1, 1, 1, 1)}
    assert [(r["judge"], r["skill"]) for r in got["skill"]] == [
        ("J", "a"), ("J", "b"), ("J", "c"), ("K", "a"), ("K", "b")
    ]  # fmt: skip
    for by in BREAKDOWNS:  # one at a time, the same rows
        assert breakdown(scores, by) == got[by]
    with pytest.raises(ValueError, match="skill, category or topic"):
        breakdown(scores, "judge")
