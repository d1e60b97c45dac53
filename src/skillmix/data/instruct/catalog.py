"""Stage 1's result: the skills the teacher named, merged into a catalog.

Names that differ only in case, punctuation, plural or word order, or whose token sets
are near the same, are one skill: the first wording is kept and the others become its
aliases. Each skill's category is the topic that first proposed it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from skillmix.catalog.model import Catalog, Skill, Topic
from skillmix.data.instruct.config import PIPELINE
from skillmix.data.instruct.parse import NO_DEFINITION, SkillDraft, name_key, token_jaccard

TOPIC_CATEGORY = "domain"


@dataclass(frozen=True)
class Merge:
    """A proposed skill merged into an earlier one (same name up to case, plural, order)."""

    name: str
    topic: str
    into: str
    similarity: float


def dedupe_skills(
    drafts: Sequence[SkillDraft], similarity: float = 0.8
) -> tuple[list[SkillDraft], list[Merge], dict[str, list[str]]]:
    """Keep the first of each group of same or near-same skill names.

    Two names are the same when their keys (lower-case words, singular) are equal or their
    token sets have Jaccard similarity >= `similarity`. Returns (kept drafts, merges, other
    surface forms of each kept name, to become its aliases).
    """
    kept: list[SkillDraft] = []
    keys: list[tuple[str, ...]] = []
    merges: list[Merge] = []
    aliases: dict[str, list[str]] = {}
    by_token: dict[str, list[int]] = {}
    for draft in drafts:
        key = name_key(draft.name)
        match: tuple[int, float] | None = None
        candidates = sorted({i for token in set(key) for i in by_token.get(token, ())})
        for i in candidates:
            score = 1.0 if keys[i] == key else token_jaccard(keys[i], key)
            if score >= similarity:
                match = (i, score)
                break
        if match is None:
            for token in set(key):
                by_token.setdefault(token, []).append(len(kept))
            kept.append(draft)
            keys.append(key)
            aliases[draft.name] = []
            continue
        target = kept[match[0]]
        merges.append(Merge(draft.name, draft.topic, target.name, match[1]))
        # Another wording (not just case, punctuation, plural or repetition) is an alias.
        forms = aliases[target.name]
        if tuple(dict.fromkeys(key)) != tuple(dict.fromkeys(keys[match[0]])) and all(
            draft.name.casefold() != f.casefold() for f in forms
        ):
            forms.append(draft.name)
    return kept, merges, aliases


@dataclass
class Extraction:
    """What stage 1 produced: the catalog, the query types and how they were cleaned."""

    catalog: Catalog
    query_types: list[str]
    proposed_skills: int = 0
    merges: list[Merge] = field(default_factory=list)
    dropped_names: list[str] = field(default_factory=list)
    unparsed_topics: list[str] = field(default_factory=list)  # topics with no skill parsed
    call_keys: list[str] = field(default_factory=list)

    @property
    def query_types_hash(self) -> str:
        blob = json.dumps(self.query_types, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        return {
            "topics": len(self.catalog.topics),
            "skills": len(self.catalog.skills),
            "query_types": len(self.query_types),
            "skills_proposed": self.proposed_skills,
            "skills_merged_as_duplicates": len(self.merges),
            "skill_names_dropped": len(self.dropped_names),
            "topics_without_parsed_skills": self.unparsed_topics,
            "skills_without_definition": sum(
                s.definition == NO_DEFINITION for s in self.catalog.skills
            ),
        }


def _slug(name: str) -> str:
    return "_".join(re.findall(r"[a-z0-9]+", name.lower())) or "x"


def build_catalog(
    topics: Sequence[str],
    drafts: Sequence[SkillDraft],
    similarity: float = 0.8,
    version: str = "",
) -> tuple[Catalog, list[Merge]]:
    """A catalog of the distinct skills (category: the topic that first proposed each)."""
    kept, merges, aliases = dedupe_skills(drafts, similarity)
    skills = tuple(
        Skill(
            id=_slug(d.name),
            name=d.name,
            category=d.topic,
            definition=d.definition,
            example=d.example,
            aliases=tuple(aliases[d.name]),
        )
        for d in kept
    )
    topic_rows = tuple(Topic(id=_slug(t), name=t, category=TOPIC_CATEGORY) for t in topics)
    return Catalog(PIPELINE, skills, topic_rows, version), merges
