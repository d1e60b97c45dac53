"""Math problems and datasets: what every math stage (labelling, evaluation) reads.

A `MathDataset` is an immutable, ordered tuple of `MathProblem`s with a content hash, so a
run can record exactly which data it used. `load_dataset` reads CHAMP (shipped in the
`champ-dataset` wheel) or a file or folder the user names; nothing is downloaded.
`MathDataset.split` makes a deterministic train/test split (stratified by category) and
`leak_check` finds test questions that also appear, or nearly appear, in the train part.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import orjson

from skillmix.errors import InputError


@dataclass(frozen=True)
class MathProblem:
    """One question with its gold final answer and whatever annotations its dataset has."""

    id: str  # stable and unique in its dataset: "champ:P_Inequality_12", "gsm8k:17"
    question: str
    answer: str  # the gold final answer as text, already extracted: "42", "\\frac{1}{2}"
    solution: str | None = None  # worked solution, when the dataset has one
    category: str | None = None  # CHAMP category, MATH "type", or None
    concepts: tuple[str, ...] = ()  # ids into MathDataset.concepts, or free-text labels
    hints: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The problem as plain JSON-ready values (tuples become lists)."""
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "solution": self.solution,
            "category": self.category,
            "concepts": list(self.concepts),
            "hints": list(self.hints),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MathProblem:
        """The problem `to_dict` wrote (lists become tuples)."""
        return cls(
            id=data["id"],
            question=data["question"],
            answer=data["answer"],
            solution=data.get("solution"),
            category=data.get("category"),
            concepts=tuple(data.get("concepts") or ()),
            hints=tuple(data.get("hints") or ()),
        )


@dataclass(frozen=True)
class MathDataset:
    """An ordered set of problems, where they came from, and a hash of their content.

    Problem ids must be unique (InputError otherwise). `content_hash` is computed from the
    problems and the concept table when not given; `name` and `source` do not enter it.
    """

    name: str  # "champ", or the file's stem
    source: str  # where it came from: the wheel's file, the user's path
    problems: tuple[MathProblem, ...]
    concepts: Mapping[str, str] = field(default_factory=dict)  # concept id -> its text
    content_hash: str = ""

    def __post_init__(self) -> None:
        problems = tuple(self.problems)
        concepts = MappingProxyType(dict(self.concepts))
        seen: set[str] = set()
        for problem in problems:
            if problem.id in seen:
                raise InputError(f"{self.source}: problem id {problem.id!r} is used twice")
            seen.add(problem.id)
        object.__setattr__(self, "problems", problems)
        object.__setattr__(self, "concepts", concepts)
        if not self.content_hash:
            object.__setattr__(self, "content_hash", content_hash(problems, concepts))

    @classmethod
    def build(
        cls,
        name: str,
        source: str,
        problems: Sequence[MathProblem],
        concepts: Mapping[str, str] | None = None,
    ) -> MathDataset:
        """A dataset of `problems` in their order; raises InputError on a repeated id."""
        return cls(name, source, tuple(problems), concepts or {})

    def __len__(self) -> int:
        return len(self.problems)

    def __iter__(self) -> Iterator[MathProblem]:
        return iter(self.problems)

    def get(self, problem_id: str) -> MathProblem:
        """The problem with this id; KeyError if there is none."""
        return self._by_id[problem_id]

    @cached_property
    def _by_id(self) -> dict[str, MathProblem]:
        return {problem.id: problem for problem in self.problems}

    @property
    def categories(self) -> tuple[str, ...]:
        """The distinct categories in order of first appearance (None left out)."""
        return tuple(dict.fromkeys(p.category for p in self.problems if p.category is not None))

    def subset(self, problems: Sequence[MathProblem]) -> MathDataset:
        """The same dataset (name, source, concepts) restricted to `problems`, re-hashed."""
        return MathDataset.build(self.name, self.source, problems, self.concepts)

    def limit(self, n: int | None) -> MathDataset:
        """The first `n` problems (all of them when `n` is None or at least the size)."""
        if n is None or n >= len(self.problems):
            return self
        if n < 1:
            raise InputError(f"--limit must be at least 1, got {n}")
        return self.subset(self.problems[:n])

    def split(self, test_share: float, seed: int) -> tuple[MathDataset, MathDataset]:
        """(train, test): disjoint by id, deterministic for a seed, stratified by category.

        The test part gets round(test_share * size) problems, shared out between the
        categories in proportion to their sizes (largest remainders, ties by first
        appearance); inside a category the test problems are a seeded random sample.
        Both parts keep the dataset's order.
        """
        if not 0.0 < test_share < 1.0:
            raise InputError(f"the test share must be between 0 and 1, got {test_share}")
        strata: dict[str | None, list[int]] = {}
        for index, problem in enumerate(self.problems):
            strata.setdefault(problem.category, []).append(index)
        quotas = _apportion(
            [len(members) for members in strata.values()], round(test_share * len(self))
        )
        test_indices: set[int] = set()
        for (category, members), quota in zip(strata.items(), quotas, strict=True):
            rng = random.Random(f"skillmix-math-split:{seed}:{category}")
            test_indices.update(rng.sample(members, quota))
        train = [p for i, p in enumerate(self.problems) if i not in test_indices]
        test = [p for i, p in enumerate(self.problems) if i in test_indices]
        return self.subset(train), self.subset(test)


def _apportion(sizes: Sequence[int], total: int) -> list[int]:
    """Split `total` between groups in proportion to `sizes` (largest remainder method)."""
    whole = sum(sizes)
    if whole == 0:
        return [0] * len(sizes)
    exact = [size * total / whole for size in sizes]
    quotas = [int(x) for x in exact]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - quotas[i]), i))
    for i in by_remainder[: total - sum(quotas)]:
        quotas[i] += 1
    return quotas


def content_hash(problems: Sequence[MathProblem], concepts: Mapping[str, str]) -> str:
    """SHA-256 of the problems (in order) and the concept table, as canonical JSON."""
    payload = {
        "problems": [p.to_dict() for p in problems],
        "concepts": dict(sorted(concepts.items())),
    }
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_dataset(spec: str, *, limit: int | None = None) -> MathDataset:
    """The dataset `spec` names: "champ", a .jsonl/.json/.csv/.tsv/.parquet file, or a
    folder written by Hugging Face `datasets` `save_to_disk` (a split's folder, or a
    dataset dict with one split). Nothing is downloaded.

    Malformed input raises `InputError` naming the file and the line (or record).
    """
    from skillmix.math import champ, loaders  # the readers import this module

    builtin = spec.strip().lower() == "champ"
    dataset = champ.load_champ() if builtin else loaders.load_path(spec)
    return dataset.limit(limit)


# --- leaks between a train and a test part ---------------------------------------------------

_DROPPED = re.compile(r"[.,;:!?'\"`$]|\\[,;!: ]")
_SPACE = re.compile(r"\s+")


def normalize_question(text: str) -> str:
    """A question's text for exact comparison: case, whitespace and punctuation ignored.

    Mathematical symbols (+ - * / = ^ brackets) are kept: "2+3" and "2-3" stay different.
    """
    return _SPACE.sub(" ", _DROPPED.sub(" ", text.casefold())).strip()


def _exact_key(text: str) -> str:
    return normalize_question(text).replace(" ", "")  # "2 + 3" is "2+3"


_SYMBOL = re.compile(r"[^\w\s]")


def _shingle_text(text: str) -> str:
    """The normalised question with each symbol as a word: the near-duplicate search
    compares words only, and "2 + 3" must not look like "2 - 3"."""
    return _SYMBOL.sub(lambda m: f" sym{ord(m.group())} ", normalize_question(text))


def leak_check(
    train: Sequence[MathProblem],
    test: Sequence[MathProblem],
    *,
    threshold: float = 0.8,
) -> list[tuple[str, str]]:
    """(train id, test id) for each test question that repeats a train question.

    A pair is found when the questions are equal after `normalize_question` (spaces
    ignored too), or when the Jaccard similarity of their word 3-gram sets is at least
    `threshold` (symbols count as words, so "2 + 3" is not "2 - 3"). Every train/test
    pair at or above the threshold is found: candidates come from prefix filtering, which
    cannot miss one, and each is verified exactly. Sorted, without repeats; empty when
    the parts are clean.
    """
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"the near-duplicate threshold must be in (0, 1], got {threshold}")
    pairs: set[tuple[str, str]] = set()
    by_text: dict[str, list[str]] = {}
    for problem in train:
        by_text.setdefault(_exact_key(problem.question), []).append(problem.id)
    for problem in test:
        for train_id in by_text.get(_exact_key(problem.question), ()):
            pairs.add((train_id, problem.id))
    train_sets = [word_shingles(p.question) for p in train]
    test_sets = [word_shingles(p.question) for p in test]
    for i, j in _similar_pairs(train_sets, test_sets, threshold):
        pairs.add((train[i].id, test[j].id))
    return sorted(pairs)


def word_shingles(text: str, n: int = 3) -> frozenset[str]:
    """The runs of `n` words of `text` (normalised as the leak check compares it): the
    units its near-duplicate measure (Jaccard similarity) counts."""
    words = _shingle_text(text).split()
    if len(words) < n:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))


def _similar_pairs(
    left: Sequence[frozenset[str]], right: Sequence[frozenset[str]], threshold: float
) -> Iterator[tuple[int, int]]:
    """(i, j) with Jaccard(left[i], right[j]) >= threshold, by prefix filtering.

    With the shingles of every set in one global order (rarest first), two sets with
    Jaccard >= t share a shingle among the first |x| - ceil(t |x|) + 1 of each, so only
    pairs sharing such a prefix shingle are verified (Chaudhuri et al. 2006).
    """
    frequency = Counter(s for sets in (left, right) for x in sets for s in x)

    def prefix(x: frozenset[str]) -> list[str]:
        size = len(x) - math.ceil(threshold * len(x) - 1e-9) + 1
        return sorted(x, key=lambda s: (frequency[s], s))[:size]

    index: dict[str, list[int]] = {}
    for i, x in enumerate(left):
        for s in prefix(x):
            index.setdefault(s, []).append(i)
    for j, y in enumerate(right):
        if not y:
            continue
        candidates = sorted({i for s in prefix(y) for i in index.get(s, ())})
        for i in candidates:
            x = left[i]
            if len(x & y) >= threshold * len(x | y) - 1e-9:
                yield i, j


def without_leaks(
    train: MathDataset, test: MathDataset, *, threshold: float = 0.8
) -> tuple[MathDataset, list[tuple[str, str]]]:
    """`train` without the problems that `leak_check` pairs with a test problem, and the
    pairs (so a caller can report what was removed). CHAMP has such pairs: templates
    with one number changed ("divisible by 3" / "divisible by 5")."""
    pairs = leak_check(train.problems, test.problems, threshold=threshold)
    leaked = {train_id for train_id, _ in pairs}
    if not leaked:
        return train, pairs
    return train.subset([p for p in train.problems if p.id not in leaked]), pairs
