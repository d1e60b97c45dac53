"""Items (k skills + 1 topic), train/held-out splits and combinatorics.

Sampling uses SHA-256 of (seed, k, counter) rather than a library PRNG, so the same seed
and catalog give the same items on every machine and Python version. Items for n are a
prefix of the items for any larger n with the same seed.

An item's skills are listed to the models in an order shuffled per item (the published
scripts did the same), drawn the same way from (seed, item id): `Item.presented`. The
item's identity (`skill_ids`, `id`) stays in catalog order, so shuffling changes no item.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from skillmix.catalog.model import Catalog
from skillmix.errors import InputError

SAMPLER_VERSION = "sha256-unrank-v1"
SHUFFLE_VERSION = "sha256-shuffle-v1"


class SamplingError(InputError):
    """The request cannot be satisfied by the catalog (k too large, too many items...)."""


@dataclass(frozen=True)
class Item:
    """k distinct skills and one topic. `id` depends only on the content.

    `skill_ids` are in catalog order (the item's identity); `presented` is the order in
    which prompts list them (shuffled per item by `sample_items`; empty: catalog order).
    """

    k: int
    skill_ids: tuple[str, ...]
    topic_id: str
    presented: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.presented and sorted(self.presented) != sorted(self.skill_ids):
            raise ValueError(f"{self.presented} is not an order of the skills {self.skill_ids}")

    @functools.cached_property
    def id(self) -> str:
        # Cached: the engine, the store and the report ask for it many times per item.
        return item_id(self.k, self.skill_ids, self.topic_id)

    @property
    def presented_skill_ids(self) -> tuple[str, ...]:
        """The skills in the order the prompts list them."""
        return self.presented or self.skill_ids


def combinations_count(n_skills: int, k: int, n_topics: int) -> int:
    """C(N, k) * T: the number of distinct items."""
    if k < 0 or k > n_skills:
        return 0
    return math.comb(n_skills, k) * n_topics


def stable_hash(*parts: object) -> int:
    blob = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest(), "big")


def item_id(k: int, skill_ids: Sequence[str], topic_id: str) -> str:
    """An item's id (`Item.id`): from its content alone."""
    blob = f"{k}|{','.join(skill_ids)}|{topic_id}"
    return f"k{k}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"


def shuffled(values: Sequence[str], *key: object) -> tuple[str, ...]:
    """`values` in an order drawn from `key` (Fisher-Yates on SHA-256): same on every machine."""
    return _shuffled(values, _Hashes(SHUFFLE_VERSION, *key))


def _shuffled(values: Sequence[str], draw: _Hashes) -> tuple[str, ...]:
    out = list(values)
    for i in range(len(out) - 1, 0, -1):
        j = draw(i) % (i + 1)
        out[i], out[j] = out[j], out[i]
    return tuple(out)


class _Hashes:
    """`stable_hash(*prefix, last)` for many `last`: the prefix is hashed once."""

    def __init__(self, *prefix: object) -> None:
        self._prefix = hashlib.sha256(":".join(str(p) for p in (*prefix, "")).encode())

    def then(self, part: object) -> _Hashes:
        """`_Hashes(*prefix, part)`, the prefix not hashed again (one per sampled item)."""
        longer = object.__new__(_Hashes)
        longer._prefix = self._prefix.copy()
        longer._prefix.update(f"{part}:".encode())
        return longer

    def __call__(self, last: object) -> int:
        h = self._prefix.copy()
        h.update(str(last).encode())
        return int.from_bytes(h.digest(), "big")


def _unrank_combination(rank: int, n: int, k: int) -> tuple[int, ...]:
    """The rank-th k-subset of range(n) in lexicographic order (combinatorial number system).

    Subsets whose smallest element is `c` come in a block of C(n - c - 1, k - 1); with the
    blocks' running totals (`_block_starts`), each element is one bisection.
    """
    out: list[int] = []
    start = 0
    for remaining in range(k, 0, -1):
        starts = _block_starts(n, remaining)
        candidate = bisect.bisect_right(starts, rank + starts[start]) - 1
        rank -= starts[candidate] - starts[start]
        out.append(candidate)
        start = candidate + 1
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _block_starts(n: int, remaining: int) -> tuple[int, ...]:
    """Running totals of C(n - c - 1, remaining - 1) over c = 0 .. n - 1 (0 first)."""
    totals = [0]
    for candidate in range(n):
        totals.append(totals[-1] + math.comb(n - candidate - 1, remaining - 1))
    return tuple(totals)


def sample_items(catalog: Catalog, k: int, n: int, seed: int) -> list[Item]:
    """`n` distinct items with `k` skills each, reproducible from `seed`."""
    skills = catalog.skills
    topics = catalog.topics
    if k < 1:
        raise SamplingError(f"k must be at least 1, got {k}")
    if k > len(skills):
        raise SamplingError(
            f"k={k} is larger than the catalog, which has {len(skills)} skills: "
            f"use --k {len(skills)} or less, or a larger catalog"
        )
    total = combinations_count(len(skills), k, len(topics))
    if n > total:
        raise SamplingError(
            f"asked for {n} distinct items with k={k}, but the catalog only has {total} "
            f"(C({len(skills)},{k}) x {len(topics)} topics): lower --items"
        )
    n_combos = math.comb(len(skills), k)
    chosen: list[Item] = []
    seen: set[int] = set()
    counter = 0
    draw = _Hashes(SAMPLER_VERSION, seed, k)
    shuffles = _Hashes(SHUFFLE_VERSION, seed)  # an item's order: `shuffled(ids, seed, id)`
    while len(chosen) < n:
        rank = draw(counter) % total
        counter += 1
        if rank in seen:
            continue
        seen.add(rank)
        combo = _unrank_combination(rank % n_combos, len(skills), k)
        skill_ids = tuple(skills[i].id for i in combo)
        topic_id = topics[rank // n_combos].id
        ident = item_id(k, skill_ids, topic_id)
        item = Item(k, skill_ids, topic_id, _shuffled(skill_ids, shuffles.then(ident)))
        item.__dict__["id"] = ident  # what the cached `Item.id` would compute again
        chosen.append(item)
    return chosen


@dataclass(frozen=True)
class Split:
    train: Catalog
    held_out: Catalog
    description: str

    def to_dict(self) -> dict[str, object]:
        return {
            "description": self.description,
            "train_skills": [s.id for s in self.train.skills],
            "train_topics": [t.id for t in self.train.topics],
            "held_out_skills": [s.id for s in self.held_out.skills],
            "held_out_topics": [t.id for t in self.held_out.topics],
        }


def _held_out_ids(ids: Sequence[str], fraction: float, seed: int, salt: str) -> set[str]:
    if not 0 <= fraction < 1:
        raise SamplingError(f"held-out fraction must be in [0, 1), got {fraction}")
    count = round(len(ids) * fraction)
    ranked = sorted(ids, key=lambda i: stable_hash("split", salt, seed, i))
    return set(ranked[:count])


def split_catalog(
    catalog: Catalog,
    *,
    skill_fraction: float = 0.0,
    topic_fraction: float = 0.0,
    held_out_categories: Iterable[str] = (),
    seed: int = 0,
) -> Split:
    """Divide skills (individually or by whole category) and topics into train and held-out.

    Parts that are not split are shared by both sides.
    """
    categories = set(held_out_categories)
    unknown = categories - set(catalog.categories)
    if unknown:
        raise SamplingError(
            f"unknown categories {sorted(unknown)}; the catalog has {catalog.categories}"
        )
    skill_ids = [s.id for s in catalog.skills]
    held_skills = {s.id for s in catalog.skills if s.category in categories}
    held_skills |= _held_out_ids(
        [i for i in skill_ids if i not in held_skills], skill_fraction, seed, "skill"
    )
    held_topics = _held_out_ids([t.id for t in catalog.topics], topic_fraction, seed, "topic")
    all_topics = {t.id for t in catalog.topics}
    split_skills = bool(held_skills)
    train = catalog.subset(
        set(skill_ids) - held_skills, all_topics - held_topics, name=f"{catalog.name}:train"
    )
    held_out = catalog.subset(
        held_skills if split_skills else set(skill_ids),
        held_topics if held_topics else all_topics,
        name=f"{catalog.name}:held-out",
    )
    parts = []
    if categories:
        parts.append(f"categories {sorted(categories)}")
    if skill_fraction:
        parts.append(f"{skill_fraction:.0%} of skills")
    if topic_fraction:
        parts.append(f"{topic_fraction:.0%} of topics")
    description = f"held out {' and '.join(parts) or 'nothing'} (seed {seed})"
    return Split(train=train, held_out=held_out, description=description)


def elementary_symmetric(values: Sequence[float], k: int) -> float:
    """e_k(values): the sum over all k-subsets of the product of their values."""
    e = [1.0] + [0.0] * k
    for v in values:
        for j in range(k, 0, -1):
            e[j] += e[j - 1] * v
    return e[k]


def expected_corpus_occurrences(
    skill_freqs: Sequence[float], topic_freqs: Sequence[float], k: int, corpus_size: int
) -> float:
    """Upper bound on the number of items seen in a corpus (the "stochastic parrot" bound).

    With L pieces of text, each showing skill s with probability p_s and topic t with
    probability p_t independently, the expected number of (item, text) co-occurrences is
    L * sum_t p_t * e_k(p_1..p_N); the number of distinct items seen is at most that.
    """
    return corpus_size * sum(topic_freqs) * elementary_symmetric(skill_freqs, k)
