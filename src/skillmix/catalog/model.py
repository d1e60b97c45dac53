"""Skills, topics and catalogs: the immutable inputs of every run."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field

_NOT_KEY = re.compile(r"[^a-z0-9]+")


@functools.lru_cache(maxsize=4096)  # every rubric asks again for the same few hundred names
def slug(text: str) -> str:
    """`Red herring` -> `red_herring`: a JSON-safe key (also the default skill/topic id)."""
    return _NOT_KEY.sub("_", text.lower()).strip("_") or "x"


@dataclass(frozen=True)
class Skill:
    """One language skill, e.g. *metaphor* or *red herring*."""

    id: str
    name: str
    category: str
    definition: str
    example: str
    aliases: tuple[str, ...] = ()

    @property
    def surface_forms(self) -> tuple[str, ...]:
        """The name and every alias: the strings the naming penalty looks for."""
        return (self.name, *self.aliases)

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "definition": self.definition,
            "example": self.example,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class Topic:
    """A short noun phrase the text must be about, e.g. *beekeeping*."""

    id: str
    name: str
    category: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "category": self.category}


@dataclass(frozen=True)
class Catalog:
    """Skills and topics, sorted by id so that order in the source file never matters."""

    name: str
    skills: tuple[Skill, ...]
    topics: tuple[Topic, ...]
    version: str = ""
    _skill_index: dict[str, Skill] = field(default_factory=dict, compare=False, repr=False)
    _topic_index: dict[str, Topic] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "skills", tuple(sorted(self.skills, key=lambda s: s.id)))
        object.__setattr__(self, "topics", tuple(sorted(self.topics, key=lambda t: t.id)))
        self._skill_index.update({s.id: s for s in self.skills})
        self._topic_index.update({t.id: t for t in self.topics})

    def skill(self, skill_id: str) -> Skill:
        return self._skill_index[skill_id]

    def topic(self, topic_id: str) -> Topic:
        return self._topic_index[topic_id]

    @property
    def categories(self) -> list[str]:
        return sorted({s.category for s in self.skills})

    @functools.cached_property
    def content_hash(self) -> str:
        """SHA-256 of the canonical content (not of the file): same skills, same hash.
        Computed once: the catalog is frozen, and runs ask for it at every step."""
        payload = {
            "skills": [s.to_dict() for s in self.skills],
            "topics": [t.to_dict() for t in self.topics],
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]

    def subset(
        self, skill_ids: set[str] | None = None, topic_ids: set[str] | None = None, name: str = ""
    ) -> Catalog:
        """A catalog restricted to the given skills and topics (e.g. a train split)."""
        return Catalog(
            name=name or self.name,
            skills=tuple(s for s in self.skills if skill_ids is None or s.id in skill_ids),
            topics=tuple(t for t in self.topics if topic_ids is None or t.id in topic_ids),
            version=self.version,
        )
