import pytest
from hypothesis import given
from hypothesis import strategies as st

from skillmix.metrics import (
    Scores,
    aggregate_generations,
    bootstrap_interval,
    majority_vote,
    paired_difference,
    score,
)

SKILLS = ["skill:a", "skill:b"]


def test_majority_vote_ties_are_not_met_and_unparsed_do_not_vote():
    rounds = [{"x": 1, "y": 1}, {"x": 0, "y": 1}, None, {"x": 1, "y": 0}]
    assert majority_vote(rounds) == {"x": 1, "y": 1}
    assert majority_vote([{"x": 1}, {"x": 0}]) == {"x": 0}
    assert majority_vote([None, None]) is None
    assert majority_vote([]) is None


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
