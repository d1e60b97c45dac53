"""Visual concepts and the catalog that holds them: categories, concepts and rules.

A catalog has categories, each with a role:

- `object`: the things an image can show ("cat", "teapot"). Every sample has one main
  object; relations bring in a second one (the reference object).
- `attribute`: a property of the main object (colour, shape, texture, size).
- `count`: how many of the main object there are; each concept carries its `value`.
- `relation`: where the main object is relative to a reference object ("to the left of").
- `scene`: a property of the whole image (its style).

`max` caps how many concepts of one category a sample may take (1 for an exclusive
category: one object cannot be both red and blue). `rules` forbid pairs: a concept with
another concept or with a whole category ("black-and-white photograph" excludes every
colour). Each category has a question template (one yes/no question per concept, asked
of the image) and a phrase template (how the prompt writer is told about it); see
`wording` for the placeholders.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["object", "attribute", "count", "relation", "scene"]
ROLES: tuple[Role, ...] = ("object", "attribute", "count", "relation", "scene")

# The templates of a category that gives none, by role.
DEFAULT_QUESTIONS: dict[str, str] = {
    "attribute": "{be} {the_object} {concept}?",
    "count": "are there exactly {concept} {objects}?",
    "relation": "{be} {the_object} {concept} {the_reference}?",
    "scene": "is the image in {concept} style?",
}
DEFAULT_PHRASES: dict[str, str] = {
    "attribute": "{concept}",
    "count": "{concept} {objects}",
    "relation": "{concept} {a_reference}",
    "scene": "in {concept} style",
}


@dataclass(frozen=True)
class Category:
    """A kind of visual concept (colour, shape, ...), with the rules of its role."""

    id: str
    name: str
    role: Role
    max: int = 1  # concepts of this category one sample may take
    question: str = ""  # template; "" for the object category
    phrase: str = ""  # template; "" for the object category
    description: str = ""

    @property
    def exclusive(self) -> bool:
        return self.max == 1

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "max": self.max,
            "question": self.question,
            "phrase": self.phrase,
            "description": self.description,
        }


@dataclass(frozen=True)
class Concept:
    """One visual concept ("red", "three", "to the left of") or object ("cat").

    `plural` and `article` are for objects, `value` for count concepts; `question` and
    `phrase` override the category's templates for this concept.
    """

    id: str
    name: str
    category: str
    plural: str = ""
    article: str = ""
    value: int | None = None
    question: str = ""
    phrase: str = ""

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"id": self.id, "name": self.name, "category": self.category}
        for key in ("plural", "article", "value", "question", "phrase"):
            value = getattr(self, key)
            if value not in ("", None):
                data[key] = value
        return data


@dataclass(frozen=True)
class Rule:
    """`concept` never appears with any concept of `excludes` (concept or category ids)."""

    concept: str
    excludes: tuple[str, ...]
    reason: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"concept": self.concept, "excludes": list(self.excludes), "reason": self.reason}


@dataclass(frozen=True)
class ConceptCatalog:
    """Categories (in the order prompts list them), concepts (sorted by id) and rules."""

    name: str
    categories: tuple[Category, ...]
    concepts: tuple[Concept, ...]
    rules: tuple[Rule, ...] = ()
    version: str = ""
    _concepts: dict[str, Concept] = field(default_factory=dict, compare=False, repr=False)
    _categories: dict[str, Category] = field(default_factory=dict, compare=False, repr=False)
    _conflicts: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "concepts", tuple(sorted(self.concepts, key=lambda c: c.id)))
        self._concepts.update({c.id: c for c in self.concepts})
        self._categories.update({c.id: c for c in self.categories})
        self._conflicts.update(_conflicts(self))

    def concept(self, concept_id: str) -> Concept:
        return self._concepts[concept_id]

    def category(self, category_id: str) -> Category:
        return self._categories[category_id]

    def category_of(self, concept_id: str) -> Category:
        return self._categories[self._concepts[concept_id].category]

    def in_category(self, category_id: str) -> tuple[Concept, ...]:
        return tuple(c for c in self.concepts if c.category == category_id)

    @property
    def object_category(self) -> Category:
        return next(c for c in self.categories if c.role == "object")

    @property
    def objects(self) -> tuple[Concept, ...]:
        """The concepts of the object category: what a sample shows."""
        return self.in_category(self.object_category.id)

    @property
    def concept_categories(self) -> tuple[Category, ...]:
        """The categories a sample draws its k concepts from (all but the objects)."""
        return tuple(c for c in self.categories if c.role != "object")

    def conflicts(self, concept_id: str) -> frozenset[str]:
        """The concept ids that can never appear with `concept_id` (rules, both ways)."""
        return self._conflicts.get(concept_id, frozenset())

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "hash": self.content_hash,
            "categories": [c.to_dict() for c in self.categories],
            "concepts": [c.to_dict() for c in self.concepts],
            "rules": [r.to_dict() for r in self.rules],
        }

    @property
    def content_hash(self) -> str:
        """SHA-256 of the canonical content (not of the file): same concepts, same hash."""
        payload = {
            "categories": [c.to_dict() for c in self.categories],
            "concepts": [c.to_dict() for c in self.concepts],
            "rules": sorted(
                (r.to_dict() for r in self.rules), key=lambda r: json.dumps(r, sort_keys=True)
            ),
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]

    def restricted(self, category_ids: set[str]) -> ConceptCatalog:
        """This catalog with only the given concept categories (and the objects); rules
        about what is left out are dropped with it."""
        keep = {c.id for c in self.categories if c.role == "object" or c.id in category_ids}
        concepts = tuple(c for c in self.concepts if c.category in keep)
        kept = {c.id for c in concepts} | keep
        rules = tuple(
            Rule(r.concept, tuple(x for x in r.excludes if x in kept), r.reason)
            for r in self.rules
            if r.concept in kept and any(x in kept for x in r.excludes)
        )
        return ConceptCatalog(
            name=f"{self.name}[{','.join(sorted(keep))}]",
            categories=tuple(c for c in self.categories if c.id in keep),
            concepts=concepts,
            rules=rules,
            version=self.version,
        )


def _conflicts(catalog: ConceptCatalog) -> dict[str, frozenset[str]]:
    """Concept id -> the concept ids it excludes, with every rule read both ways."""
    pairs: dict[str, set[str]] = {}
    for rule in catalog.rules:
        excluded: set[str] = set()
        for target in rule.excludes:
            if target in catalog._categories:
                excluded |= {c.id for c in catalog.concepts if c.category == target}
            else:
                excluded.add(target)
        for other in excluded - {rule.concept}:
            pairs.setdefault(rule.concept, set()).add(other)
            pairs.setdefault(other, set()).add(rule.concept)
    return {k: frozenset(v) for k, v in pairs.items()}
