"""Novelty: how much of the C(N,k)·T item space a run drew, and the corpus bound."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from skillmix.catalog.model import Catalog
from skillmix.catalog.sampling import combinations_count, expected_corpus_occurrences
from skillmix.jsonsafe import finite
from skillmix.scoring.results import RunScores


@dataclass(frozen=True)
class CorpusFrequencies:
    """How often skills and topics occur in a corpus (`skillmix catalog filter` writes
    them) and the number of texts in it: what the corpus bound needs."""

    skills: Mapping[str, float]
    topics: Mapping[str, float]
    corpus_size: int


@dataclass(frozen=True)
class NoveltyRow:
    """How much of the item space at one k a run drew.

    `corpus_bound` is the expected number of (item, text) co-occurrences in the corpus,
    the bound of `skillmix catalog stats`: no more distinct items than that can occur in
    it; `corpus_share` = corpus_bound / space (capped at 1). Both None without frequencies.
    """

    k: int
    items: int
    distinct: int  # distinct (skill set, topic) combinations among the items
    space: int  # C(N,k)·T
    corpus_bound: float | None = None

    @property
    def share(self) -> float:
        return self.distinct / self.space if self.space else float("nan")

    @property
    def corpus_share(self) -> float | None:
        if self.corpus_bound is None or not self.space:
            return None
        return min(1.0, self.corpus_bound / self.space)

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "items": self.items,
            "distinct": self.distinct,
            "space": self.space,
            "share": finite(self.share),
            "corpus_bound": self.corpus_bound,
            "corpus_share": self.corpus_share,
        }


@dataclass
class Novelty:
    run_id: str
    catalog: str
    skills: int  # N
    topics: int  # T
    corpus_size: int | None
    rows: list[NoveltyRow]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "catalog": self.catalog,
            "skills": self.skills,
            "topics": self.topics,
            "corpus_size": self.corpus_size,
            "rows": [r.to_dict() for r in self.rows],
        }


def corpus_bound(catalog: Catalog, corpus: CorpusFrequencies, k: int) -> float:
    """The corpus bound of `skillmix catalog stats` for `catalog` at k: skills without a
    frequency count as 0; without any topic frequency, topics count as mutually
    exclusive (their frequencies sum to at most 1)."""
    skill_freqs = [corpus.skills.get(s.id, 0.0) for s in catalog.skills]
    topic_freqs = [corpus.topics.get(t.id, 0.0) for t in catalog.topics] if corpus.topics else [1.0]
    return expected_corpus_occurrences(skill_freqs, topic_freqs, k, corpus.corpus_size)


def novelty(scores: RunScores, corpus: CorpusFrequencies | None = None) -> Novelty:
    """The share of the C(N,k)·T space a run's items cover, per k."""
    catalog = scores.catalog
    judge = scores.judges[0] if scores.judges else None
    drawn: dict[int, list[tuple[frozenset[str], str]]] = defaultdict(list)
    for r in scores.items:
        if r.judge == judge:
            drawn[r.k].append((frozenset(r.skill_ids), r.topic_id))
    n, t = len(catalog.skills), len(catalog.topics)
    rows = [
        NoveltyRow(
            k=k,
            items=len(items),
            distinct=len(set(items)),
            space=combinations_count(n, k, t),
            corpus_bound=None if corpus is None else corpus_bound(catalog, corpus, k),
        )
        for k, items in sorted(drawn.items())
    ]
    name = f"{catalog.name} {catalog.version}".strip()
    size = None if corpus is None else corpus.corpus_size
    return Novelty(scores.run["id"], name, n, t, size, rows)
