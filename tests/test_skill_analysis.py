"""Skill analytics (`skillmix analyze`): planted data in real stores, recovered.

Runs are written into real SQLite stores through the `Store` API, as the engine writes
them (items, one generation and one grading round per item), with verdicts drawn by
seeded generators from a known model: skill difficulties, a cost per extra skill, a pair
that never succeeds together. The analysis must find what was planted and nothing else.
One test runs the real command against a run made through real local HTTP servers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import fisher_exact

from conftest import skillmix
from report_fixtures import two_student_runs
from skillmix.catalog.model import Catalog, Skill, Topic
from skillmix.catalog.sampling import elementary_symmetric
from skillmix.config import RunConfig
from skillmix.jsonsafe import finite
from skillmix.report import build_report
from skillmix.report.html.page import build_page
from skillmix.scoring.skills import (
    FROM_K1,
    FROM_SAME_K,
    CorpusFrequencies,
    analyze_runs,
    fisher_exact_p,
    fit_rasch,
    lift_estimate,
)
from skillmix.store import Store

Item = tuple[int, tuple[str, ...], str, tuple[int, ...]]  # k, skills, topic, met per skill
JUDGE = "openai:planted-judge"


def planted_catalog(n_skills: int, n_topics: int = 5, n_categories: int = 4) -> Catalog:
    skills = tuple(
        Skill(f"s{i}", f"skill {i}", f"cat{i % n_categories}", f"definition {i}", f"example {i}")
        for i in range(n_skills)
    )
    topics = tuple(Topic(f"t{i}", f"topic {i}") for i in range(n_topics))
    return Catalog("planted", skills, topics, "1")


def put_planted_run(
    store: Store, run_id: str, catalog: Catalog, items: Sequence[Item], *, student: str
) -> str:
    """Write a finished run with these items and verdicts: one generation and one grading
    round per item, topic and sense met, within the sentence limit, no skill named."""
    store.put_catalog(catalog)
    ks = tuple(sorted({item[0] for item in items}))
    config = RunConfig(
        student=student,
        judges=(JUDGE,),
        k=ks,
        items=max(1, len(items) // len(ks)),
        generation_rounds=1,
        grading_rounds=1,
    )
    store.ensure_run(run_id, config.model_dump(mode="json"), catalog.content_hash, "v1")
    positions: dict[int, int] = {}
    rows = []
    for i, (k, skills, topic, _) in enumerate(items):
        positions[k] = positions.get(k, -1) + 1
        rows.append((positions[k], f"{run_id}-{i:05d}", k, skills, topic))
    store.put_items(run_id, rows)
    with store.transaction():
        for i, (_, skills, _, met) in enumerate(items):
            item_id, answer = f"{run_id}-{i:05d}", f"Text {i} of {run_id}."
            store.put_generation(
                run_id, item_id, 0, turn1_key=f"{item_id}-1", turn2_key=f"{item_id}-2",
                answer=answer, explanation=None, marker_found=True, sentences=1, named={},
            )  # fmt: skip
            verdicts = {f"skill:{s}": float(m) for s, m in zip(skills, met, strict=True)}
            store.put_grade(
                run_id, item_id, 0, JUDGE, 0, status="parsed", method="test",
                verdicts={**verdicts, "topic": 1.0, "sense": 1.0}, reason=None, attempts=1,
                call_keys=[], answer=answer,
            )  # fmt: skip
    store.set_run_status(run_id, "done")
    return run_id


def rasch_items(
    seed: int,
    catalog: Catalog,
    ks: Sequence[int],
    per_k: int,
    difficulty: Sequence[float],
    *,
    ability: float = 0.5,
    per_extra_skill: float = 0.0,
    text_sd: float = 0.0,
    never_together: tuple[str, str] | None = None,
) -> list[Item]:
    """Items whose skills are met with P = σ(ability + u − b_s − γ·(k−1)), independently
    given u, a per-text effect with sd `text_sd` (0: skills independent). When both
    skills of `never_together` would be met, the second is not."""
    rng = np.random.default_rng(seed)
    ids = [s.id for s in catalog.skills]
    topics = [t.id for t in catalog.topics]
    b = np.asarray(difficulty)
    items: list[Item] = []
    for k in ks:
        for _ in range(per_k):
            chosen = rng.choice(len(ids), size=k, replace=False)
            u = rng.normal(0.0, text_sd) if text_sd else 0.0
            p = 1 / (1 + np.exp(-(ability + u - b[chosen] - per_extra_skill * (k - 1))))
            met = [int(x) for x in rng.random(k) < p]
            skills = tuple(ids[c] for c in chosen)
            if never_together and set(never_together) <= set(skills):
                first, second = (skills.index(s) for s in never_together)
                if met[first] and met[second]:
                    met[second] = 0
            items.append((k, skills, topics[rng.integers(len(topics))], tuple(met)))
    return items


# --- difficulty ------------------------------------------------------------------------------

PLANTED_B = (-1.6, -1.1, -0.6, -0.2, 0.2, 0.6, 1.1, 1.6)  # centred, as the fit reports b


def test_planted_difficulties_and_abilities_are_recovered(tmp_path: Path):
    """Two students on one catalog: b in the planted order with every true value inside
    its interval; the abilities and the cost per extra skill too; categories in order."""
    catalog = planted_catalog(len(PLANTED_B))
    store = Store(tmp_path / "runs.sqlite")
    for run_id, ability, seed in (("strong", 1.0, 1), ("weak", -0.5, 2)):
        items = rasch_items(
            seed, catalog, (1, 2, 3), 250, PLANTED_B, ability=ability, per_extra_skill=0.5
        )
        put_planted_run(store, run_id, catalog, items, student=f"openai:{run_id}-student")
    analysis = analyze_runs(store, ["strong", "weak"], level=0.99)
    (fit,) = analysis.difficulty
    assert fit.converged and fit.judge == JUDGE
    by_id = {s.skill: s for s in fit.skills}
    recovered = [by_id[f"s{i}"].difficulty for i in range(len(PLANTED_B))]
    assert [s.skill for s in fit.skills] == [f"s{i}" for i in reversed(range(len(PLANTED_B)))]
    for truth, estimate in zip(PLANTED_B, recovered, strict=True):
        assert estimate.low <= truth <= estimate.high, (truth, estimate)
        assert estimate.high - estimate.low < 0.8  # informative, not the prior
        assert estimate.n > 300  # graded texts that asked for the skill
    assert not any(s.sparse for s in fit.skills)
    abilities = {s.run_id: s.ability for s in fit.students}
    for run_id, truth in (("strong", 1.0), ("weak", -0.5)):
        assert abilities[run_id].low <= truth <= abilities[run_id].high
    assert fit.per_extra_skill is not None
    assert fit.per_extra_skill.low <= 0.5 <= fit.per_extra_skill.high
    # Categories (i % 4) have mean planted b -0.7, -0.25, 0.25, 0.7: hardest first.
    assert [c.category for c in fit.categories] == ["cat3", "cat2", "cat1", "cat0"]
    assert all(c.skills == 2 for c in fit.categories)


def test_fit_solves_the_likelihood_equations():
    """With a flat prior the fit is the maximum-likelihood estimate: the observed and
    fitted successes agree per student, per group and weighted by k - 1."""
    rng = np.random.default_rng(7)
    n, students, groups = 3000, 3, 6
    student = rng.integers(0, students, n)
    group = rng.integers(0, groups, n)
    k = rng.integers(1, 4, n)
    b = np.linspace(-1, 1, groups)
    eta = np.array([0.3, -0.2, 0.8])[student] - b[group] - 0.4 * (k - 1)
    met = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    fit = fit_rasch(student, group, k, met, n_students=students, n_groups=groups, prior_sd=1e4)
    assert fit.converged
    assert abs(fit.difficulty.sum()) < 1e-9  # centred
    p = 1 / (
        1 + np.exp(-(fit.ability[student] - fit.difficulty[group] - fit.per_extra_skill * (k - 1)))
    )
    residual = met - p
    assert np.abs(np.bincount(group, residual)).max() < 1e-4
    # θ and γ keep their weak prior (sd 10): their equations are off by θ/100 or γ/100,
    # tiny next to the ~1000 texts per student.
    assert np.abs(np.bincount(student, residual)).max() < 0.02
    assert abs(residual @ (k - 1)) < 0.02
    assert np.all(fit.difficulty_se > 0) and np.all(fit.ability_se > 0)


# --- composition law -------------------------------------------------------------------------

SPREAD_B = (-1.0, -0.6, -0.2, 0.2, 0.6, 1.0)


def composition_rows(store: Store, run_id: str) -> dict[int, object]:
    (law,) = analyze_runs(store, [run_id]).composition
    return {row.k: row for row in law.rows}


def test_independent_skills_compose_as_the_product(tmp_path: Path):
    """No cost per extra skill and no dependence: observed / predicted and
    observed(k) / observed(1)^k both cover 1 at every k."""
    catalog = planted_catalog(len(SPREAD_B))
    store = Store(tmp_path / "runs.sqlite")
    items = rasch_items(3, catalog, (1, 2, 3), 600, SPREAD_B, ability=0.8)
    put_planted_run(store, "independent", catalog, items, student="openai:student")
    analysis = analyze_runs(store, ["independent"])
    (law,) = analysis.composition
    assert law.predicted_from == FROM_K1
    rows = {row.k: row for row in law.rows}
    assert rows[1].predicted is None and rows[1].ratio is None
    for k in (2, 3):
        ratio, power = rows[k].ratio, rows[k].power_ratio
        assert ratio is not None and power is not None
        assert ratio.low <= 1 <= ratio.high, (k, ratio)
        assert power.low <= 1 <= power.high, (k, power)
        assert abs(ratio.value - 1) < 0.1 and abs(power.value - 1) < 0.1
        assert rows[k].observed.n == 600 and rows[k].items == 600


def test_without_k1_independence_is_predicted_within_each_k(tmp_path: Path):
    catalog = planted_catalog(len(SPREAD_B))
    store = Store(tmp_path / "runs.sqlite")
    items = rasch_items(4, catalog, (2, 3), 600, SPREAD_B, ability=0.8)
    put_planted_run(store, "no-k1", catalog, items, student="openai:student")
    analysis = analyze_runs(store, ["no-k1"])
    (law,) = analysis.composition
    assert law.predicted_from == FROM_SAME_K
    for row in law.rows:
        assert row.ratio is not None and row.ratio.low <= 1 <= row.ratio.high, row
        assert row.power_ratio is None  # no k = 1 to compare with
    assert any("no k = 1 items" in note for note in analysis.limits)


def naive_prediction(items: Sequence[Item], k: int) -> float:
    """What independence predicts at k, computed the plain way, one text at a time: the
    mean of the product of its skills' rates, each shrunk by one text towards the pooled
    rate; rates from the k = 1 texts if there are any, else from the other texts of k."""
    base = [it for it in items if it[0] == 1] or None
    predicted = []
    for i, (ki, skills, _, _) in enumerate(items):
        if ki != k:
            continue
        others = base or [it for j, it in enumerate(items) if it[0] == k and j != i]
        pooled = sum(sum(it[3]) for it in others) / sum(it[0] for it in others)
        product = 1.0
        for skill in skills:
            seen = [m for it in others for s, m in zip(it[1], it[3], strict=True) if s == skill]
            product *= (sum(seen) + pooled) / (len(seen) + 1)
        predicted.append(product)
    return sum(predicted) / len(predicted)


@pytest.mark.parametrize("ks", [(1, 2, 3), (2, 3)])
def test_the_prediction_is_the_plain_per_text_computation(tmp_path: Path, ks):
    """The bootstrap's vectorised prediction (per item, column by column, each item's own
    texts left out of its skills' rates within k) equals the plain computation."""
    catalog = planted_catalog(len(SPREAD_B))
    store = Store(tmp_path / "runs.sqlite")
    items = rasch_items(9, catalog, ks, 40, SPREAD_B, ability=0.3, text_sd=1.0)
    put_planted_run(store, "plain", catalog, items, student="openai:student")
    rows = composition_rows(store, "plain")
    for k in ks:
        if k == 1:
            continue
        predicted = rows[k].predicted  # type: ignore[attr-defined]
        assert predicted.value == pytest.approx(naive_prediction(items, k), rel=1e-12), k


@pytest.mark.parametrize("ks", [(1, 2, 3), (2, 3)])
def test_the_law_does_not_depend_on_the_bootstrap_chunks(tmp_path: Path, monkeypatch, ks):
    """The resamples are drawn chunk by chunk (sized for the CPU's cache): one resample per
    chunk, a few, or all at once give the same law to the last digit."""
    import skillmix.scoring.skills.composition as skills_module

    catalog = planted_catalog(len(SPREAD_B))
    store = Store(tmp_path / "runs.sqlite")
    items = rasch_items(5, catalog, ks, 150, SPREAD_B, ability=0.8, text_sd=0.5)
    put_planted_run(store, "chunks", catalog, items, student="openai:student")
    laws = []
    for cells, rows, most in ((1, 1, 1), (2_000, 3, 10**6), (10**9, 10**6, 10**9)):
        monkeypatch.setattr(skills_module, "_CHUNK_CELLS", cells)
        monkeypatch.setattr(skills_module, "_CHUNK_ROWS", rows)
        monkeypatch.setattr(skills_module, "_CHUNK_MAX_CELLS", most)
        (law,) = analyze_runs(store, ["chunks"]).composition
        laws.append(json.dumps(law.to_dict(), sort_keys=True))
    assert laws[0] == laws[1] == laws[2]


def test_composition_costs_and_dependence_move_the_ratio(tmp_path: Path):
    """The ratio can fail: a cost per extra skill pulls it below 1 (against k = 1
    rates); skills that succeed together on good texts push it above 1 (within k)."""
    catalog = planted_catalog(len(SPREAD_B))
    store = Store(tmp_path / "runs.sqlite")
    costly = rasch_items(5, catalog, (1, 3), 600, SPREAD_B, ability=0.8, per_extra_skill=0.6)
    put_planted_run(store, "costly", catalog, costly, student="openai:student")
    linked = rasch_items(6, catalog, (2, 3), 600, SPREAD_B, ability=0.8, text_sd=2.0)
    put_planted_run(store, "linked", catalog, linked, student="openai:student")
    ratio = composition_rows(store, "costly")[3].ratio  # type: ignore[attr-defined]
    assert ratio.high < 1 and ratio.p < 0.001
    for k in (2, 3):
        ratio = composition_rows(store, "linked")[k].ratio  # type: ignore[attr-defined]
        assert ratio.low > 1 and ratio.p < 0.001


def test_no_text_with_every_skill_met_is_not_called_certain(tmp_path: Path):
    """0 of 12 texts met both skills: every bootstrap resample says 0, so the interval
    comes from the Wilson bounds instead, and there is no test."""
    catalog = planted_catalog(4)
    ids = [s.id for s in catalog.skills]
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    items: list[Item] = [
        (2, pair, "t0", (1, 0) if copy else (0, 1)) for pair in pairs for copy in (0, 1)
    ]
    store = Store(tmp_path / "runs.sqlite")
    put_planted_run(store, "none-both", catalog, items, student="openai:student")
    (row,) = composition_rows(store, "none-both").values()
    assert row.observed.value == 0 and row.observed.high > 0.2  # type: ignore[attr-defined]
    ratio = row.ratio  # type: ignore[attr-defined]
    assert ratio.value == 0 and ratio.low < 1e-9 and ratio.high > 0.5 and ratio.p != ratio.p


def test_one_k_says_there_is_no_curve(tmp_path: Path):
    catalog = planted_catalog(len(SPREAD_B))
    store = Store(tmp_path / "runs.sqlite")
    items = rasch_items(8, catalog, (2,), 200, SPREAD_B)
    put_planted_run(store, "one-k", catalog, items, student="openai:student")
    analysis = analyze_runs(store, ["one-k"])
    (fit,) = analysis.difficulty
    assert fit.per_extra_skill is None
    assert any("only k = 2" in note for note in analysis.limits)
    assert any("cost of an extra skill" in note for note in analysis.limits)


# --- pair interactions -----------------------------------------------------------------------


def test_planted_pair_interaction_is_the_only_pair_flagged(tmp_path: Path):
    catalog = planted_catalog(len(SPREAD_B))
    store = Store(tmp_path / "runs.sqlite")
    items = rasch_items(9, catalog, (2, 3), 300, SPREAD_B, ability=0.8, never_together=("s1", "s4"))
    put_planted_run(store, "pair", catalog, items, student="openai:student")
    (pairs,) = analyze_runs(store, ["pair"]).pairs
    assert len(pairs.tested) == 15 and pairs.untested == 0  # every pair of 6 skills
    (flagged,) = pairs.flagged
    assert flagged.skills == ("s1", "s4") and flagged.both == 0
    assert flagged.direction == "harder together"
    assert flagged.lift.value == 0 and flagged.lift.high < 1 and flagged.q <= pairs.fdr
    # Fewer texts together than the minimum: nothing is tested, and the limits say so.
    strict = analyze_runs(store, ["pair"], min_pair_count=10_000)
    assert strict.pairs[0].tested == [] and strict.pairs[0].untested == 15
    assert any("no skill pair" in note for note in strict.limits)


@pytest.mark.parametrize(
    ("both", "first", "second", "n"),
    [(3, 4, 4, 8), (0, 20, 15, 40), (12, 14, 13, 20), (5, 5, 5, 5), (1, 9, 2, 30)],
)
def test_fisher_exact_matches_scipy(both: int, first: int, second: int, n: int):
    table = [[both, first - both], [second - both, n - first - second + both]]
    assert fisher_exact_p(both, first, second, n) == pytest.approx(fisher_exact(table)[1])


def test_lift_and_its_interval():
    even = lift_estimate(10, 20, 25, 50)
    assert even.value == pytest.approx(1.0) and even.low < 1 < even.high
    none_together = lift_estimate(0, 30, 30, 60)
    assert none_together.value == 0 and none_together.high < 1 and none_together.p < 1e-6


# --- novelty ---------------------------------------------------------------------------------


def test_novelty_counts_are_exact(tmp_path: Path):
    catalog = planted_catalog(4, n_topics=3)  # C(4,2)·3 = 18 items at k = 2, C(4,3)·3 = 12
    store = Store(tmp_path / "runs.sqlite")
    items: list[Item] = [
        (2, ("s0", "s1"), "t0", (1, 1)),
        (2, ("s1", "s0"), "t0", (1, 0)),  # the same skill set and topic again
        (2, ("s0", "s2"), "t1", (0, 1)),
        (2, ("s2", "s3"), "t2", (1, 1)),
        (2, ("s0", "s1"), "t1", (0, 0)),
        (3, ("s0", "s1", "s2"), "t0", (1, 1, 1)),
        (3, ("s2", "s1", "s0"), "t0", (0, 1, 1)),
    ]
    put_planted_run(store, "small", catalog, items, student="openai:student")
    frequencies = CorpusFrequencies(
        {"s0": 0.1, "s1": 0.2, "s2": 0.3}, {"t0": 0.5, "t1": 0.25}, 1000
    )
    (novelty,) = analyze_runs(store, ["small"], corpus=frequencies).novelty
    assert (novelty.skills, novelty.topics, novelty.corpus_size) == (4, 3, 1000)
    two, three = novelty.rows
    assert (two.k, two.items, two.distinct, two.space) == (2, 5, 4, 18)
    assert two.share == pytest.approx(4 / 18)
    assert (three.k, three.items, three.distinct, three.space) == (3, 2, 1, 12)
    # 1000 texts × (0.5 + 0.25) × (0.1·0.2 + 0.1·0.3 + 0.2·0.3) = 82.5 at k = 2
    assert two.corpus_bound == pytest.approx(82.5)
    assert three.corpus_bound == pytest.approx(1000 * 0.75 * 0.1 * 0.2 * 0.3)
    assert two.corpus_share == pytest.approx(1.0)  # capped: 82.5 > 18
    # Without topic frequencies, topics count as mutually exclusive (sum 1).
    no_topics = CorpusFrequencies({"s0": 0.1, "s1": 0.2, "s2": 0.3}, {}, 1000)
    (novelty,) = analyze_runs(store, ["small"], corpus=no_topics).novelty
    expected = 1000 * elementary_symmetric([0.1, 0.2, 0.3, 0.0], 2)
    assert novelty.rows[0].corpus_bound == pytest.approx(expected)


# --- the command and the report, on runs made through real HTTP servers ----------------------


def test_analyze_command_and_report_on_real_runs(tmp_path: Path):
    with two_student_runs(tmp_path) as runs:
        store_path = str(runs.store_path)
        out = skillmix(
            "analyze", runs.careful, runs.sloppy, "--store", store_path, "--json", cwd=tmp_path
        )
        printed = json.loads(out.stdout)
        store = Store(runs.store_path, read_only=True)
        library = analyze_runs(store, [runs.careful, runs.sloppy])
        assert printed == json.loads(json.dumps(finite(library.to_dict())))
        (fit,) = printed["difficulty"]  # one judge, two students fitted together
        ability = {s["run_id"]: s["ability"]["value"] for s in fit["students"]}
        assert ability[runs.careful] > ability[runs.sloppy]
        assert fit["per_extra_skill"] is not None  # k = 2 and 3
        # Each skill was asked for on a text or two: marked, and said so.
        assert fit["skills"] and all(s["sparse"] for s in fit["skills"])
        assert any("mostly the prior" in note for note in printed["limits"])
        assert [[r["k"] for r in law["rows"]] for law in printed["composition"]] == [[2, 3]] * 2
        assert all(law["predicted_from"] == FROM_SAME_K for law in printed["composition"])
        assert [[(r["k"], r["items"]) for r in n["rows"]] for n in printed["novelty"]] == [
            [(2, 3), (3, 3)]
        ] * 2
        assert any("no k = 1 items" in note for note in printed["limits"])

        text = skillmix("analyze", runs.careful, "--store", store_path, cwd=tmp_path).stdout
        for heading in ("Skill difficulty", "Categories", "Composition law", "Novelty"):
            assert heading in text
        missing = skillmix(
            "analyze", "no-such-run", "--store", store_path, cwd=tmp_path, check=False
        )
        assert missing.returncode == 1 and "no run 'no-such-run'" in missing.stderr
        half = skillmix(
            "analyze", runs.careful, "--store", store_path, "--corpus-size", "10",
            cwd=tmp_path, check=False,
        )  # fmt: skip
        assert half.returncode == 1 and "--frequencies and --corpus-size" in half.stderr

        report = build_report(store, runs.careful)
        assert report.skill_analysis is not None
        assert report.to_dict()["skill_analysis"]["composition"][0]["run_id"] == runs.careful
        page = build_page(store, [report])
        assert 'id="skill-analytics"' in page
        assert 'id="skills-0-0-composition"' in page and 'id="skills-0-0-categories"' in page
        store.close()
