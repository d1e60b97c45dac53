import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skillmix.catalog.load import load_catalog
from skillmix.scoring.judges import (
    AgreementRow,
    cohen_kappa,
    combined_scores,
    combined_verdicts,
    judge_agreement,
    krippendorff_alpha,
)
from skillmix.scoring.metrics import Scores, score
from skillmix.scoring.results import GenerationScore, ItemResult, RunScores

N = None


def same(x: float, y: float) -> bool:
    """Equal up to rounding, with nan equal to nan."""
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == pytest.approx(y, abs=1e-9)


# --- Cohen's kappa ---------------------------------------------------------------------


def test_cohen_kappa_hand_computed_2x2_table():
    #              B=1  B=0
    #   A=1         20    5   | 25
    #   A=0         10   15   | 25
    #               30   20   | 50
    # p_o = (20 + 15) / 50 = 0.7
    # p_e = (25/50)(30/50) + (25/50)(20/50) = 0.3 + 0.2 = 0.5
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
    b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_perfect_total_and_undefined():
    assert cohen_kappa([0, 1, 1, 0], [0, 1, 1, 0]) == 1.0
    # one label throughout for both: p_e = p_o = 1
    assert cohen_kappa([1, 1, 1], [1, 1, 1]) == 1.0
    # p_o = 0, p_e = 0.5 -> -1
    assert cohen_kappa([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    # p_o = 0.5, p_e = 0.5 (one coder constant) -> 0
    assert cohen_kappa([1, 1, 1, 1], [1, 1, 0, 0]) == pytest.approx(0.0)
    assert math.isnan(cohen_kappa([], []))
    with pytest.raises(ValueError):
        cohen_kappa([1], [1, 0])


# --- Krippendorff's alpha -------------------------------------------------------------


def test_krippendorff_alpha_reference_example_nominal_with_missing_values():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
    # 4 coders, 12 units, nominal data with missing values; alpha = 0.743.
    coder_a = [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N]
    coder_b = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3]
    coder_c = [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N]
    coder_d = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N]
    units = list(zip(coder_a, coder_b, coder_c, coder_d, strict=True))
    # unit 12 has a single value and is not pairable: n = 40 pairable values
    assert round(krippendorff_alpha(units), 3) == 0.743
    assert krippendorff_alpha(units) == pytest.approx(0.743421, abs=1e-6)


def test_krippendorff_alpha_hand_computed_small_case():
    # units (1,1,1), (1,0,0), (1,1,-), (0,0,-):
    #   o11 = 3 + 0 + 2 + 0 = 5; o00 = 1 + 0 + 2 = 3; o10 = o01 = 1
    #   n1 = 6, n0 = 4, n = 10
    #   alpha = 1 - (n - 1) * (o10 + o01) / (2 * n1 * n0) = 1 - 9 * 2 / 48 = 0.625
    units = [(1, 1, 1), (1, 0, 0), (1, 1, N), (0, 0, N)]
    assert krippendorff_alpha(units) == pytest.approx(0.625)


def test_krippendorff_alpha_perfect_total_and_undefined():
    assert krippendorff_alpha([(0, 0, 0), (1, 1, N), (1, 1, 1)]) == 1.0
    # one value used throughout: no disagreement observed or expected
    assert krippendorff_alpha([(1, 1), (1, 1, 1)]) == 1.0
    # total disagreement between two coders: o01 = o10 = 2, n0 = n1 = 2, n = 4
    # alpha = 1 - 3 * 4 / (2 * 2 * 2) = -0.5
    assert krippendorff_alpha([(0, 1), (1, 0)]) == pytest.approx(-0.5)
    assert math.isnan(krippendorff_alpha([]))
    assert math.isnan(krippendorff_alpha([(1, N), (N, N), (0,)]))
    # units with fewer than two values are dropped
    assert krippendorff_alpha([(0, 1), (1, 0), (1, N)]) == krippendorff_alpha([(0, 1), (1, 0)])


# --- properties -----------------------------------------------------------------------

labels = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), max_size=40)
units_strategy = st.integers(2, 4).flatmap(
    lambda m: st.lists(
        st.lists(st.one_of(st.none(), st.integers(0, 1)), min_size=m, max_size=m), max_size=30
    )
)


def flip(values):
    return [None if v is None else 1 - v for v in values]


@given(labels)
def test_cohen_kappa_symmetric_bounded_and_label_free(pairs):
    a = [x for x, _ in pairs]
    b = [y for _, y in pairs]
    kappa = cohen_kappa(a, b)
    assert same(kappa, cohen_kappa(b, a))
    assert same(kappa, cohen_kappa(flip(a), flip(b)))
    if pairs:
        assert -1 - 1e-9 <= kappa <= 1 + 1e-9
    else:
        assert math.isnan(kappa)


@given(units_strategy)
def test_krippendorff_alpha_symmetric_and_label_free(units):
    alpha = krippendorff_alpha(units)
    assert same(alpha, krippendorff_alpha([list(reversed(u)) for u in units]))
    assert same(alpha, krippendorff_alpha([u[1:] + u[:1] for u in units]))
    assert same(alpha, krippendorff_alpha([flip(u) for u in units]))
    if not math.isnan(alpha):
        assert alpha <= 1 + 1e-9


# --- combined verdicts ----------------------------------------------------------------


def test_combined_verdicts_majority_tie_and_none():
    per_judge = {
        "j1": {"skill:a": 1, "topic": 1, "sense": 0},
        "j2": {"skill:a": 1, "topic": 0, "sense": 0},
        "j3": {"skill:a": 0, "topic": 1},
        "j4": None,
    }
    # skill:a 2-1 -> 1; topic 2-1 -> 1; sense 0-2 -> 0 (j3 did not decide it)
    assert combined_verdicts(per_judge) == {"skill:a": 1, "topic": 1, "sense": 0}
    # a tie is not met; an unscored judge does not break it
    assert combined_verdicts({"j1": {"x": 1}, "j2": {"x": 0}, "j3": None}) == {"x": 0}
    assert combined_verdicts({"j1": None, "j2": None}) is None
    assert combined_verdicts({}) is None


# --- judge agreement and the combined pseudo-judge on a hand-made run -----------------

SKILLS = ["alliteration", "ad_hominem", "abductive_reasoning", "air_resistance"]
ITEMS = {
    "i1": (SKILLS[:2], "amazon_rainforest"),
    "i2": (SKILLS[2:], "amateur_astronomy"),
}


def verdicts(x: int, y: int, topic: int, sense: int, length: int, item: str) -> dict[str, int]:
    first, second = ITEMS[item][0]
    return {
        f"skill:{first}": x,
        f"skill:{second}": y,
        "topic": topic,
        "sense": sense,
        "length": length,
    }


def make_run(
    grades: dict[str, dict[str, list[tuple[int, dict[str, int] | None, list[str]]]]],
) -> RunScores:
    """grades: judge -> item id -> [(generation round, decided, penalized skills)]."""
    items = []
    for judge, by_item in grades.items():
        for item_id, gens in by_item.items():
            skill_ids, topic_id = ITEMS[item_id]
            criteria = [f"skill:{s}" for s in skill_ids]
            generations = [
                GenerationScore(r, d, score(d, criteria) if d else None, p, d) for r, d, p in gens
            ]
            items.append(
                ItemResult(
                    item_id=item_id,
                    k=len(skill_ids),
                    skill_ids=list(skill_ids),
                    topic_id=topic_id,
                    judge=judge,
                    generations=generations,
                    scores=max(
                        (g.scores for g in generations if g.scores),
                        default=None,
                        key=Scores.as_tuple,
                    ),
                )
            )
    return RunScores(
        run={"config": {}},
        catalog=load_catalog(),
        aggregation="max",
        items=items,
        grade_rounds=0,
        unparsed_rounds=0,
    )


def by_criterion(rows: list[AgreementRow]) -> dict[str, AgreementRow]:
    return {r.criterion: r for r in rows}


def test_catalog_knows_the_test_skills():
    catalog = load_catalog()
    for skill_id in SKILLS:
        catalog.skill(skill_id)


def two_judge_run() -> RunScores:
    return make_run(
        {
            "j1": {
                "i1": [
                    (0, verdicts(1, 1, 1, 1, 1, "i1"), []),
                    (1, verdicts(0, 0, 1, 0, 1, "i1"), []),
                ],
                "i2": [(0, verdicts(1, 0, 0, 1, 0, "i2"), [])],
            },
            "j2": {
                "i1": [(0, verdicts(1, 0, 1, 1, 1, "i1"), []), (1, None, [])],
                "i2": [(0, verdicts(0, 0, 1, 1, 0, "i2"), [])],
            },
        }
    )


def test_judge_agreement_two_judges_uses_cohen_kappa_on_shared_units():
    rows = by_criterion(judge_agreement(two_judge_run()))
    assert list(rows) == ["skills", "topic", "sense", "all"]
    assert all(r.statistic == "cohen_kappa" and r.judges == ("j1", "j2") for r in rows.values())
    # i1 round 1 is unscored for j2, so only i1/0 and i2/0 are compared.
    # skills: j1 = [1, 1, 1, 0], j2 = [1, 0, 0, 0]; p_o = 2/4
    #   p_e = (3/4)(1/4) + (1/4)(3/4) = 0.375; kappa = 0.125 / 0.625 = 0.2
    assert rows["skills"].units == 4
    assert rows["skills"].raw_agreement == 0.5
    assert rows["skills"].value == pytest.approx(0.2)
    # topic: j1 = [1, 0], j2 = [1, 1]; p_o = 0.5, p_e = 0.5 -> 0
    assert (rows["topic"].units, rows["topic"].raw_agreement) == (2, 0.5)
    assert rows["topic"].value == pytest.approx(0.0)
    # sense: both [1, 1] -> 1 (p_e = p_o = 1)
    assert (rows["sense"].units, rows["sense"].raw_agreement, rows["sense"].value) == (2, 1.0, 1.0)
    # all (length left out): j1 = [1,1,1,0,1,0,1,1], j2 = [1,0,0,0,1,1,1,1]
    #   p_o = 5/8; p_e = (6/8)(5/8) + (2/8)(3/8) = 36/64; kappa = (4/64) / (28/64) = 1/7
    assert (rows["all"].units, rows["all"].raw_agreement) == (8, 5 / 8)
    assert rows["all"].value == pytest.approx(1 / 7)


def test_combined_scores_two_judges():
    results = {r.item_id: r for r in combined_scores(two_judge_run())}
    assert list(results) == ["i1", "i2"]
    i1, i2 = results["i1"], results["i2"]
    assert {r.judge for r in results.values()} == {"combined"}
    assert (i1.k, i1.skill_ids, i1.topic_id) == (2, SKILLS[:2], "amazon_rainforest")
    # i1/0: first skill 1+1 -> 1, second 1+0 -> tie -> 0, topic/sense/length 1: A=1, B=3
    assert i1.generations[0].decided == verdicts(1, 0, 1, 1, 1, "i1")
    assert i1.generations[0].scores == Scores(0, 0, 0.5)
    # i1/1: j2 unscored, so j1 alone decides
    assert i1.generations[1].decided == verdicts(0, 0, 1, 0, 1, "i1")
    assert i1.scores == Scores(0, 0, 0.5)
    # i2/0: skill ties -> 0, topic tie -> 0, length 0 (as both judges have it)
    assert i2.generations[0].decided == verdicts(0, 0, 0, 1, 0, "i2")
    assert i2.scores == Scores(0, 0, 0.0)


def three_judge_run() -> RunScores:
    return make_run(
        {
            "j1": {
                "i1": [(0, verdicts(1, 1, 1, 1, 1, "i1"), [])],
                # the naming penalty removed j1's point for the second skill
                "i2": [(0, verdicts(1, 0, 1, 1, 1, "i2"), [SKILLS[3]])],
            },
            "j2": {
                "i1": [(0, verdicts(1, 0, 1, 1, 1, "i1"), [])],
                "i2": [(0, verdicts(1, 0, 1, 0, 1, "i2"), [SKILLS[3]])],
            },
            "j3": {
                "i1": [(0, verdicts(1, 0, 0, 1, 1, "i1"), [])],
                "i2": [(0, None, [])],
            },
        }
    )


def test_judge_agreement_three_judges_uses_krippendorff_alpha():
    rows = by_criterion(judge_agreement(three_judge_run()))
    assert all(r.statistic == "krippendorff_alpha" for r in rows.values())
    assert rows["all"].judges == ("j1", "j2", "j3")
    # skills: (1,1,1), (1,0,0), (1,1,-), (0,0,-): alpha = 0.625 (hand-computed above);
    #   agreeing pairs o11 + o00 = 8 of n = 10
    assert rows["skills"].units == 4
    assert rows["skills"].value == pytest.approx(0.625)
    assert rows["skills"].raw_agreement == pytest.approx(0.8)
    # topic: (1,1,0), (1,1,-): o11 = 1 + 2, o10 = o01 = 1; a lone 0 gives alpha = 0
    assert rows["topic"].units == 2
    assert rows["topic"].value == pytest.approx(0.0)
    assert rows["topic"].raw_agreement == pytest.approx(3 / 5)
    # all: the 8 units above plus sense (1,1,1), (1,0,-):
    #   o11 = 3+0+2+0 + 1+2 + 3+0 = 11, o00 = 1+2 = 3, o10 = o01 = 1+1+1 = 3
    #   n1 = 14, n0 = 6, n = 20: alpha = 1 - 19 * 6 / (2 * 14 * 6) = 9/28
    assert rows["all"].units == 8
    assert rows["all"].value == pytest.approx(9 / 28)
    assert rows["all"].raw_agreement == pytest.approx(14 / 20)


def test_combined_scores_three_judges_and_naming_penalty():
    results = {r.item_id: r for r in combined_scores(three_judge_run())}
    # i1: first skill 3-0 -> 1, second 1-2 -> 0, topic 2-1 -> 1, sense 3-0 -> 1
    assert results["i1"].generations[0].decided == verdicts(1, 0, 1, 1, 1, "i1")
    assert results["i1"].scores == Scores(0, 0, 0.5)
    # i2: j3 unscored; second skill penalized by both voters -> combined penalized too;
    #   sense 1-1 tie -> 0: A = 1, B = 2
    gen = results["i2"].generations[0]
    assert gen.decided == verdicts(1, 0, 1, 0, 1, "i2")
    assert gen.penalized == [SKILLS[3]]
    assert results["i2"].scores == Scores(0, 0, 0.0)


def test_combined_scores_unscored_generation_and_full_marks():
    run = make_run(
        {
            "j1": {"i1": [(0, None, []), (1, verdicts(1, 1, 1, 1, 1, "i1"), [])]},
            "j2": {"i1": [(0, None, []), (1, verdicts(1, 1, 1, 0, 1, "i1"), [])]},
            "j3": {"i1": [(0, None, []), (1, verdicts(1, 1, 0, 1, 1, "i1"), [])]},
        }
    )
    (result,) = combined_scores(run)
    assert result.generations[0].decided is None and result.generations[0].scores is None
    assert result.generations[1].scores == Scores(1, 1, 1.0)
    assert result.scores == Scores(1, 1, 1.0)


def test_single_judge_gives_no_agreement_and_no_combined_scores():
    run = make_run({"j1": {"i1": [(0, verdicts(1, 1, 1, 1, 1, "i1"), [])]}})
    assert judge_agreement(run) == []
    assert combined_scores(run) == []
