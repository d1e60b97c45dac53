"""Concept samples: valid under the rules, seeded, distinct; the largest k the rules allow."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skillmix.catalog.sampling import SamplingError
from skillmix.image.concepts import Category, Concept, ConceptCatalog, Rule
from skillmix.image.load import load_concept_catalog
from skillmix.image.sampling import Binding, ConceptSample, max_k, sample_concepts, violations

BUILTIN = load_concept_catalog()


@st.composite
def catalogs(draw: st.DrawFn) -> ConceptCatalog:
    """Small random catalogs: every role, random caps and random rules."""
    n_objects = draw(st.integers(2, 4))
    sizes = {
        "colour": draw(st.integers(1, 3)),
        "shape": draw(st.integers(0, 2)),
        "number": draw(st.integers(0, 2)),
        "spatial": draw(st.integers(0, 3)),
        "style": draw(st.integers(1, 2)),
    }
    roles = {"colour": "attribute", "shape": "attribute", "number": "count",
             "spatial": "relation", "style": "scene"}  # fmt: skip
    categories = [Category("object", "object", "object")]
    concepts = [Concept(f"o{i}", f"thing{i}", "object") for i in range(n_objects)]
    for name, size in sizes.items():
        if not size:
            continue
        cap = draw(st.integers(1, min(2, n_objects - 1))) if name == "spatial" else 1
        categories.append(Category(name, name, roles[name], max=cap))  # type: ignore[arg-type]
        for i in range(size):
            value = i + 1 if name == "number" else None
            concepts.append(Concept(f"{name}{i}", f"{name} {i}", name, value=value))
    ids = [c.id for c in concepts if c.category != "object"]
    targets = ids + [c.id for c in categories if c.role != "object"]
    rules = []
    for _ in range(draw(st.integers(0, 3))):
        concept = draw(st.sampled_from(ids))
        excluded = draw(st.sampled_from([t for t in targets if t != concept]))
        rules.append(Rule(concept, (excluded,)))
    return ConceptCatalog("random", tuple(categories), tuple(concepts), tuple(rules))


def brute_force_max_k(catalog: ConceptCatalog) -> int:
    """The largest valid set of concepts, by trying every subset."""
    ids = [c.id for c in catalog.concepts if c.category != "object"]
    best = 0
    for size in range(len(ids), 0, -1):
        for group in itertools.combinations(ids, size):
            caps_ok = all(
                sum(catalog.concept(g).category == c.id for g in group)
                <= (min(c.max, len(catalog.objects) - 1) if c.role == "relation" else c.max)
                for c in catalog.concept_categories
            )
            if caps_ok and not any(
                b in catalog.conflicts(a) for a, b in itertools.combinations(group, 2)
            ):
                return size
    return best


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalog=catalogs())
def test_max_k_is_exact(catalog: ConceptCatalog):
    assert max_k(catalog) == brute_force_max_k(catalog)


@settings(max_examples=100, deadline=None)
@given(catalog=catalogs(), seed=st.integers(0, 2**31), data=st.data())
def test_samples_are_valid_seeded_and_distinct(catalog: ConceptCatalog, seed: int, data):
    top = max_k(catalog)
    if top == 0:
        with pytest.raises(SamplingError, match="at most 0 concepts"):
            sample_concepts(catalog, 1, 1, seed)
        return
    k = data.draw(st.integers(1, top))
    try:
        samples = sample_concepts(catalog, k, 3, seed)
    except SamplingError as err:  # a tiny catalog may hold fewer than 3 samples
        assert "lower --items" in str(err.hint)
        samples = sample_concepts(catalog, k, 1, seed)
    assert all(violations(catalog, s) == [] for s in samples)
    assert all(s.k == k and len(s.bindings) == k for s in samples)
    assert len({s.id for s in samples}) == len(samples)
    assert sample_concepts(catalog, k, len(samples), seed) == samples


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), k=st.integers(1, 8))
def test_builtin_samples_are_valid_distinct_and_a_prefix(seed: int, k: int):
    samples = sample_concepts(BUILTIN, k, 40, seed)
    assert all(violations(BUILTIN, s) == [] for s in samples)
    assert len(set(samples)) == 40
    assert sample_concepts(BUILTIN, k, 10, seed) == samples[:10]
    assert sample_concepts(BUILTIN, k, 10, seed + 1) != samples[:10]


def test_samples_do_not_depend_on_the_machine():
    """SHA-256 choices, the same everywhere (a change needs a new SAMPLER_VERSION)."""
    ids = [s.id for s in sample_concepts(BUILTIN, 3, 3, seed=0)]
    assert ids == [s.id for s in sample_concepts(BUILTIN, 3, 3, seed=0)]
    assert all(i.startswith("k3-") and len(i) == 13 for i in ids)


def test_the_rules_hold_in_every_builtin_sample():
    samples = sample_concepts(BUILTIN, 8, 200, seed=3)
    for sample in samples:
        concepts = set(sample.concept_ids)
        if concepts & {"black_and_white_photograph", "sepia_photograph", "charcoal_drawing"}:
            assert not any(BUILTIN.concept(c).category == "colour" for c in concepts)
        numbers = [c for c in concepts if BUILTIN.concept(c).category == "number"]
        assert len(numbers) <= 1  # "two" and "three" of one object never meet
        for binding in sample.bindings:
            relation = BUILTIN.concept(binding.concept_id).category == "spatial"
            assert (binding.reference is not None) == relation
            assert binding.reference != sample.object_id


def test_a_k_beyond_the_rules_is_refused_with_the_limit():
    with pytest.raises(SamplingError) as caught:
        sample_concepts(BUILTIN, 9, 1, seed=0)
    assert "k=9 is more than the rules of concept catalog builtin allow: at most 8" in str(
        caught.value
    )
    assert caught.value.hint == "use --k 8 or less"
    with pytest.raises(SamplingError, match="k must be at least 1"):
        sample_concepts(BUILTIN, 0, 1, seed=0)


def test_asking_for_more_samples_than_exist_says_so():
    catalog = BUILTIN.restricted({"number"})  # 84 objects x 7 numbers
    assert len(sample_concepts(catalog, 1, 84 * 7, seed=1)) == 84 * 7
    with pytest.raises(SamplingError, match="has about 588 with k=1") as caught:
        sample_concepts(catalog, 1, 84 * 7 + 1, seed=1)
    assert "lower --items" in caught.value.hint


def test_violations_name_what_is_wrong():
    bad = ConceptSample(k=3, object_id="cat", bindings=(Binding("red"),))
    assert "1 concepts for k=3" in violations(BUILTIN, bad)

    clash = ConceptSample(
        k=4,
        object_id="cat",
        bindings=(
            Binding("black_and_white_photograph"),
            Binding("red"),
            Binding("three"),
            Binding("two"),
        ),
    )
    found = violations(BUILTIN, clash)
    assert "2 concepts of category 'number' (at most 1)" in found
    assert "'black_and_white_photograph' and 'red' are excluded by a rule" in found
    lonely = ConceptSample(k=1, object_id="cat", bindings=(Binding("above"),))
    assert "relation 'above' has no second object" in violations(BUILTIN, lonely)
    self_ref = ConceptSample(k=1, object_id="cat", bindings=(Binding("above", "cat"),))
    assert any("repeats the object" in v for v in violations(BUILTIN, self_ref))
