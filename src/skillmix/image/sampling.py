"""Samples: one object and k concepts that the catalog's rules allow together.

A sample is drawn concept by concept: a category is chosen (uniformly among those that
still have room and a concept compatible with what is chosen), then a concept of it
(uniformly among the compatible ones), and for a relation a second object (distinct from
the main one and from the other relations' objects). A draw that runs out of choices
before k concepts is discarded, as is one already drawn. Every choice comes from SHA-256
of (seed, k, draw number, step), as for skill items (`catalog.sampling`), so the same
seed and catalog give the same samples on every machine, and the samples for n are a
prefix of the samples for any larger n.

`max_k` is the largest k the rules allow; asking for more is a `SamplingError` that
says why.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from skillmix.catalog.sampling import SamplingError, stable_hash
from skillmix.image.concepts import Category, Concept, ConceptCatalog
from skillmix.image.wording import phrase, question

SAMPLER_VERSION = "conceptmix-sha256-v1"
# Draws in a row that bring nothing new before the sampler gives up (the space is used up).
MIN_MISSES = 2000

__all__ = [
    "Binding",
    "ConceptSample",
    "SamplingError",
    "max_k",
    "sample_concepts",
    "violations",
]


@dataclass(frozen=True, order=True)
class Binding:
    """One concept of a sample; `reference` is the second object of a relation."""

    concept_id: str
    reference: str | None = None


@dataclass(frozen=True)
class ConceptSample:
    """One object and k concepts. `id` depends only on the content."""

    k: int
    object_id: str
    bindings: tuple[Binding, ...]  # sorted: the sample's identity

    @functools.cached_property
    def id(self) -> str:
        parts = ",".join(f"{b.concept_id}>{b.reference or ''}" for b in self.bindings)
        blob = f"{self.k}|{self.object_id}|{parts}"
        return f"k{self.k}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"

    @property
    def concept_ids(self) -> tuple[str, ...]:
        return tuple(b.concept_id for b in self.bindings)

    def count(self, catalog: ConceptCatalog) -> int:
        """How many of the object the sample asks for (1 without a count concept)."""
        for binding in self.bindings:
            value = catalog.concept(binding.concept_id).value
            if value is not None:
                return value
        return 1

    def presented(self, catalog: ConceptCatalog) -> tuple[Binding, ...]:
        """The bindings in the order prompts list them: by category, as the catalog does."""
        rank = {c.id: i for i, c in enumerate(catalog.categories)}
        return tuple(
            sorted(self.bindings, key=lambda b: (rank[catalog.concept(b.concept_id).category], b))
        )

    def describe(self, catalog: ConceptCatalog) -> dict[str, object]:
        """The sample as stored (`image.item` records): object, concepts, phrases, questions."""
        main = catalog.concept(self.object_id)
        count = self.count(catalog)
        concepts = []
        for binding in self.presented(catalog):
            concept = catalog.concept(binding.concept_id)
            category = catalog.category(concept.category)
            reference = catalog.concept(binding.reference) if binding.reference else None
            concepts.append(
                {
                    "id": concept.id,
                    "name": concept.name,
                    "category": category.id,
                    "category_name": category.name,
                    "reference": reference.to_dict() if reference else None,
                    "phrase": phrase(concept, category, main, count=count, reference=reference),
                    "question": question(concept, category, main, count=count, reference=reference),
                }
            )
        return {
            "item_id": self.id,
            "k": self.k,
            "object": main.to_dict(),
            "count": count,
            "concepts": concepts,
        }


def compatible(catalog: ConceptCatalog, concept_id: str, chosen: Iterable[str]) -> bool:
    """Whether `concept_id` may join the concepts `chosen` (not one of them, no rule against)."""
    conflicts = catalog.conflicts(concept_id)
    return all(c != concept_id and c not in conflicts for c in chosen)


def violations(catalog: ConceptCatalog, sample: ConceptSample) -> list[str]:
    """Every way `sample` breaks the catalog's rules (empty for a valid sample)."""
    found: list[str] = []
    objects = {o.id for o in catalog.objects}
    if sample.object_id not in objects:
        found.append(f"{sample.object_id!r} is not an object of the catalog")
    ids = sample.concept_ids
    if len(ids) != sample.k:
        found.append(f"{len(ids)} concepts for k={sample.k}")
    if len(set(ids)) != len(ids):
        found.append("a concept appears twice")
    per_category: dict[str, int] = {}
    references: list[str] = []
    for binding in sample.bindings:
        concept = catalog.concept(binding.concept_id)
        category = catalog.category(concept.category)
        if category.role == "object":
            found.append(f"{concept.id!r} is an object, not a concept")
        per_category[category.id] = per_category.get(category.id, 0) + 1
        if category.role == "relation":
            if binding.reference not in objects:
                found.append(f"relation {concept.id!r} has no second object")
            else:
                references.append(binding.reference)
        elif binding.reference is not None:
            found.append(f"{concept.id!r} is not a relation but has a second object")
    for category_id, n in per_category.items():
        cap = catalog.category(category_id).max
        if n > cap:
            found.append(f"{n} concepts of category {category_id!r} (at most {cap})")
    if len(set(references)) != len(references) or sample.object_id in references:
        found.append("a relation's second object repeats the object or another relation's")
    for a, b in itertools.combinations(ids, 2):
        if b in catalog.conflicts(a):
            found.append(f"{a!r} and {b!r} are excluded by a rule")
    return found


class _Draw:
    """The seeded choices of one draw: stable integers from (seed, k, counter, step)."""

    def __init__(self, seed: int, k: int, counter: int):
        self.key = (SAMPLER_VERSION, seed, k, counter)
        self.step = 0

    def choice(self, options: Sequence[str]) -> str:
        self.step += 1
        return options[stable_hash(*self.key, self.step) % len(options)]


def _draw(catalog: ConceptCatalog, k: int, seed: int, counter: int) -> ConceptSample | None:
    """One candidate sample, or None when the draw ran out of choices before k concepts."""
    draw = _Draw(seed, k, counter)
    objects = [o.id for o in catalog.objects]
    main = draw.choice(objects)
    chosen: list[Binding] = []
    used_objects = {main}
    for _ in range(k):
        ids = [b.concept_id for b in chosen]
        open_categories = {
            category.id: options
            for category in catalog.concept_categories
            if sum(catalog.concept(i).category == category.id for i in ids) < category.max
            and (options := [c.id for c in _options(catalog, category, ids)])
            and (category.role != "relation" or len(used_objects) < len(objects))
        }
        if not open_categories:
            return None
        category_id = draw.choice(list(open_categories))
        concept_id = draw.choice(open_categories[category_id])
        reference = None
        if catalog.category(category_id).role == "relation":
            reference = draw.choice([o for o in objects if o not in used_objects])
            used_objects.add(reference)
        chosen.append(Binding(concept_id, reference))
    return ConceptSample(k=k, object_id=main, bindings=tuple(sorted(chosen)))


def _options(catalog: ConceptCatalog, category: Category, chosen: list[str]) -> list[Concept]:
    return [c for c in catalog.in_category(category.id) if compatible(catalog, c.id, chosen)]


def sample_concepts(catalog: ConceptCatalog, k: int, n: int, seed: int) -> list[ConceptSample]:
    """`n` distinct valid samples of one object and `k` concepts, reproducible from `seed`."""
    if k < 1:
        raise SamplingError(f"k must be at least 1, got {k}")
    limit = max_k(catalog)
    if k > limit:
        caps = ", ".join(f"{c.id} {c.max}" for c in catalog.concept_categories)
        raise SamplingError(
            f"k={k} is more than the rules of concept catalog {catalog.name} allow: at most "
            f"{limit} concepts fit one object (per category: {caps}; rules exclude some pairs)",
            hint=f"use --k {limit} or less",
        )
    chosen: list[ConceptSample] = []
    seen: set[ConceptSample] = set()
    counter = 0
    misses = 0
    patience = max(MIN_MISSES, 10 * n)
    while len(chosen) < n:
        sample = _draw(catalog, k, seed, counter)
        counter += 1
        if sample is None or sample in seen:
            misses += 1
            if misses >= patience:
                raise SamplingError(
                    f"asked for {n} distinct samples with k={k}, but {patience} draws in a row "
                    f"after the first {len(chosen)} found no new one: the concept catalog "
                    f"{catalog.name} has about {len(chosen)} with k={k}",
                    hint="lower --items, or use a larger catalog",
                )
            continue
        misses = 0
        seen.add(sample)
        chosen.append(sample)
    return chosen


def max_k(catalog: ConceptCatalog) -> int:
    """The most concepts one sample can hold under the catalog's caps and rules.

    A search over categories, exact: concepts that no rule mentions are interchangeable,
    so each category is tried with at most `max` of them plus the ones rules name.
    """
    categories = list(catalog.concept_categories)
    ruled = {c for c in (r.concept for r in catalog.rules)} | {
        x for c in catalog.concepts for x in catalog.conflicts(c.id)
    }
    objects = len(catalog.objects)
    caps = [
        min(c.max, objects - 1) if c.role == "relation" else c.max for c in categories
    ]  # each relation takes its own second object
    candidates = []
    for category, cap in zip(categories, caps, strict=True):
        members = catalog.in_category(category.id)
        free = [m.id for m in members if m.id not in ruled][:cap]
        candidates.append(free + [m.id for m in members if m.id in ruled])
    bound = [
        sum(min(cap, len(cands)) for cap, cands in zip(caps[i:], candidates[i:], strict=True))
        for i in range(len(categories) + 1)
    ]
    best = 0

    def search(i: int, chosen: list[str]) -> None:
        nonlocal best
        if len(chosen) + bound[i] <= best:
            return
        if i == len(categories):
            best = len(chosen)
            return
        for size in range(min(caps[i], len(candidates[i])), -1, -1):
            for group in itertools.combinations(candidates[i], size):
                if all(compatible(catalog, g, [*chosen, *group[:j]]) for j, g in enumerate(group)):
                    search(i + 1, [*chosen, *group])
                    if best == len(chosen) + bound[i]:
                        return

    search(0, [])
    return best
