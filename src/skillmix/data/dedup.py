"""Near-duplicate removal: MinHash signatures, LSH banding, then exact Jaccard on candidates.

Texts are compared as sets of word n-gram shingles (lower-cased `\\w+` tokens). MinHash
with LSH banding finds candidate pairs in about linear time; every candidate pair is then
verified with the exact Jaccard similarity of the two shingle sets, so a text is only ever
dropped for a pair at or above the threshold. LSH can miss a pair (a false negative), with
a probability the band layout keeps small near the threshold and tiny above it.

Everything is deterministic: hash constants come from SHA-256/BLAKE2 of fixed strings,
never from a random generator, so the same texts give the same result on every machine.
Shingles are compared through their 64-bit BLAKE2 hashes (a collision is ~2^-64 per pair).
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from skillmix.data.records import DataRecord

NUM_PERM = 128
RECALL_AT_THRESHOLD = 0.99
_WORD = re.compile(r"\w+")
_MASK64 = (1 << 64) - 1
_CHUNK = 1 << 15  # shingles hashed at once: NUM_PERM x 8 bytes x _CHUNK = 32 MiB
U64 = npt.NDArray[np.uint64]

T = TypeVar("T")


def _constant(name: str, i: int) -> int:
    return int.from_bytes(hashlib.sha256(f"skillmix-dedup:{name}:{i}".encode()).digest()[:8], "big")


@cache
def _constants(name: str, count: int, odd: bool = False) -> U64:
    values = [_constant(name, i) | int(odd) for i in range(count)]
    return np.array(values, dtype=np.uint64)


def _mix(x: U64) -> U64:
    """The splitmix64 finalizer: a bijection of uint64 that scrambles every bit (wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class _Shingles:
    """Every text's sorted, distinct shingle hashes in one array (CSR layout)."""

    values: U64
    offsets: npt.NDArray[np.int64]  # text i owns values[offsets[i]:offsets[i + 1]]

    def of(self, i: int) -> U64:
        return self.values[self.offsets[i] : self.offsets[i + 1]]


def _shingles(texts: Sequence[str], n: int) -> _Shingles:
    vocabulary: defaultdict[str, int] = defaultdict(itertools.count().__next__)
    token_ids: list[int] = []
    lengths: list[int] = []
    for text in texts:
        tokens = _WORD.findall(text.lower())
        token_ids += map(vocabulary.__getitem__, tokens)
        lengths.append(len(tokens))
    word_hash = np.array([_token_hash(t) for t in vocabulary], dtype=np.uint64)
    words = word_hash[np.array(token_ids, dtype=np.int64)]
    starts = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
    lengths_arr = np.array(lengths, dtype=np.int64)
    weights = _constants("ngram", n, odd=True)
    n_positions = max(0, len(words) - n + 1)
    # Hash of the n-gram starting at every position of the concatenated token stream.
    grams = np.zeros(n_positions, dtype=np.uint64)
    for j in range(n):
        grams += words[j : j + n_positions] * weights[j]
    grams = _mix(grams)
    # Keep the n-grams that lie inside one text; texts shorter than n are one shingle.
    owner = np.repeat(np.arange(len(texts), dtype=np.int64), lengths_arr)[:n_positions]
    inside = np.arange(n_positions, dtype=np.int64) + n <= starts[owner + 1]
    text_of = owner[inside]
    values = grams[inside]
    short = np.flatnonzero((lengths_arr > 0) & (lengths_arr < n))
    if len(short):
        short_values = np.zeros(len(short), dtype=np.uint64)
        weight_list = weights.tolist()
        for pos, i in enumerate(short.tolist()):
            acc = 0
            for j, w in enumerate(words[starts[i] : starts[i + 1]].tolist()):
                acc = (acc + w * weight_list[j]) & _MASK64  # the full n-gram formula
            short_values[pos] = acc
        text_of = np.concatenate((text_of, short))
        values = np.concatenate((values, _mix(short_values)))
    order = np.lexsort((values, text_of))
    text_of, values = text_of[order], values[order]
    distinct = np.ones(len(values), dtype=bool)
    distinct[1:] = (values[1:] != values[:-1]) | (text_of[1:] != text_of[:-1])
    text_of, values = text_of[distinct], values[distinct]
    counts = np.bincount(text_of, minlength=len(texts))
    offsets = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
    return _Shingles(values, offsets)


def _signatures(shingles: _Shingles, num_perm: int) -> npt.NDArray[np.uint32]:
    """MinHash signature of every text: num_perm minima of independent hash functions.

    Hash function i is x -> high 32 bits of (a_i * x + b_i) mod 2^64 with odd a_i, applied
    to the already well-mixed 64-bit shingle hashes. Empty texts get all-max signatures.
    """
    a = _constants("minhash-a", num_perm, odd=True)[:, None]
    b = _constants("minhash-b", num_perm)[:, None]
    n_texts = len(shingles.offsets) - 1
    signatures = np.full((num_perm, n_texts), np.iinfo(np.uint32).max, dtype=np.uint32)
    counts = np.diff(shingles.offsets)
    nonempty = np.flatnonzero(counts > 0)
    buffer = np.empty((num_perm, _CHUNK), dtype=np.uint64)
    ends = shingles.offsets[nonempty + 1]
    start = 0
    while start < len(nonempty):
        # A chunk of whole texts holding at most _CHUNK shingles (or one longer text).
        first = shingles.offsets[nonempty[start]]
        stop = int(np.searchsorted(ends, first + _CHUNK, side="right"))
        stop = max(stop, start + 1)
        chunk = nonempty[start:stop]
        lo, hi = int(shingles.offsets[chunk[0]]), int(shingles.offsets[chunk[-1] + 1])
        width = hi - lo
        out = buffer[:, :width] if width <= _CHUNK else np.empty((num_perm, width), np.uint64)
        np.multiply(a, shingles.values[None, lo:hi], out=out)
        out += b
        out >>= np.uint64(32)
        signatures[:, chunk] = np.minimum.reduceat(out, shingles.offsets[chunk] - lo, axis=1)
        start = stop
    return np.ascontiguousarray(signatures.T)


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """Chance that LSH compares a pair of this Jaccard similarity: 1 - (1 - s^rows)^bands."""
    return float(1.0 - (1.0 - similarity**rows) ** bands)


@cache
def band_layout(threshold: float, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """(bands, rows per band) for a threshold.

    The most rows per band (the fewest dissimilar candidates to verify) such that a pair
    exactly at the threshold still becomes a candidate with probability >= RECALL_AT_THRESHOLD;
    pairs above the threshold are found even more surely (e.g. threshold 0.8 -> 21 bands
    of 6 rows: 99.8% at 0.8, 99.9999% at 0.9).
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= RECALL_AT_THRESHOLD:
            return bands, rows
    return num_perm, 1


def jaccard(a: U64, b: U64) -> float:
    """Exact Jaccard similarity of two sorted, distinct hash arrays (two empties: 1.0)."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def near_duplicate_pairs(
    texts: Sequence[str], threshold: float = 0.8, n: int = 3
) -> list[tuple[int, int, float]]:
    """(dropped, kept, Jaccard) for each text that duplicates an earlier kept text.

    Texts are visited in order; a text is dropped when its exact shingle Jaccard with an
    earlier *kept* text that LSH puts in a common bucket is at least `threshold`. So the
    first text of each cluster is kept, every drop is justified by a verified pair with a
    kept text, and no chain of small steps can drop a text unlike anything kept.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"the near-duplicate threshold must be in (0, 1], got {threshold}")
    if n < 1:
        raise ValueError(f"shingles need at least one word, got n={n}")
    if not texts:
        return []
    shingles = _shingles(texts, n)
    signatures = _signatures(shingles, NUM_PERM)
    bands, rows = band_layout(threshold, NUM_PERM)
    weights = _constants("band", rows, odd=True)
    band_keys = np.empty((len(texts), bands), dtype=np.uint64)
    shared = np.zeros((len(texts), bands), dtype=bool)  # the bucket holds another text
    for band in range(bands):
        block = signatures[:, band * rows : (band + 1) * rows].astype(np.uint64)
        keys = _mix((block * weights[None, :]).sum(axis=1, dtype=np.uint64))
        band_keys[:, band] = keys
        order = np.argsort(keys, kind="stable")
        same = keys[order][1:] == keys[order][:-1]
        in_group = np.zeros(len(keys), dtype=bool)
        in_group[1:] |= same
        in_group[:-1] |= same
        shared[order, band] = in_group
    # Only texts sharing a bucket with another text can be (or have) a near-duplicate.
    buckets: dict[tuple[int, int], list[int]] = {}
    dropped: list[tuple[int, int, float]] = []
    for i in np.flatnonzero(shared.any(axis=1)).tolist():
        own = [(band, int(band_keys[i, band])) for band in np.flatnonzero(shared[i]).tolist()]
        checked: set[int] = set()
        match: tuple[int, float] | None = None
        for key in own:
            for j in buckets.get(key, ()):
                if j in checked:
                    continue
                checked.add(j)
                similarity = jaccard(shingles.of(i), shingles.of(j))
                if similarity >= threshold:
                    match = (j, similarity)
                    break
            if match:
                break
        if match:
            dropped.append((i, match[0], match[1]))
            continue
        for key in own:
            buckets.setdefault(key, []).append(i)
    return dropped


def near_duplicates(texts: Sequence[str], threshold: float = 0.8, n: int = 3) -> list[int]:
    """Indices of the texts to drop as near-duplicates (the first of each cluster stays).

    Similarity is the Jaccard index of word `n`-gram shingle sets; see
    `near_duplicate_pairs` for which text each dropped one duplicates.
    """
    return [i for i, _, _ in near_duplicate_pairs(texts, threshold, n)]


@dataclass(frozen=True)
class Rejection:
    """A record left out of a dataset, and why (shared by every data pipeline).

    `reason` is a short stable code counted by the data card ("below-threshold",
    "unparsed", "empty-answer", "near-duplicate", ...); `detail` says more for a human.
    """

    record: DataRecord
    reason: str
    detail: str = ""


def _last_message(record: DataRecord) -> str:
    return record.messages[-1]["content"]


def dedupe(
    records: Iterable[DataRecord],
    threshold: float = 0.8,
    key: Callable[[DataRecord], str] = _last_message,
    n: int = 3,
) -> tuple[list[DataRecord], list[Rejection]]:
    """Drop records whose `key` text (default: the last message) near-duplicates an earlier one.

    Returns (kept records in their order, one Rejection per dropped record with reason
    "near-duplicate" and the id of the kept record it duplicates).
    """
    items = list(records)
    pairs = near_duplicate_pairs([key(r) for r in items], threshold, n)
    dropped = {i: (j, s) for i, j, s in pairs}
    kept = [r for i, r in enumerate(items) if i not in dropped]
    rejected = [
        Rejection(
            items[i],
            "near-duplicate",
            f"Jaccard {s:.2f} >= {threshold:g} with kept record {items[j].id}",
        )
        for i, (j, s) in sorted(dropped.items())
    ]
    return kept, rejected


def dedup_method(compared: str = "", n: int = 3) -> str:
    """How `dedupe` compares texts, in words for a data card; `compared` names the text."""
    of = f" of {compared}" if compared else ""
    return f"MinHash-LSH over word {n}-gram shingles{of}, verified by exact Jaccard"
