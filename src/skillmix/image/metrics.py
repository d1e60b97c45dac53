"""ConceptMix metrics: pure functions over the decided yes/no answers of each image.

- A concept is decided by majority vote over its grading rounds, with the Skill-Mix rule
  (`scoring.metrics.majority_vote`): unparsed rounds do not vote, a tie counts as "no",
  and a concept with no parsed round is undecided (None), never "no".
- An image gets **full marks** when every concept is decided "yes"; it scores 0 as soon as
  one concept is decided "no"; otherwise (no "no", some undecided) it is unscored.
- Its **concept fraction** is the share of its decided concepts that are "yes".
- Per k: the mean full-marks rate and concept fraction over scored images, with a 95%
  percentile-bootstrap interval over images (`scoring.metrics.bootstrap_interval`).
- Per concept and per category: the share of decided questions answered "yes", with a
  95% Wilson interval (`scoring.stats.wilson_interval`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from skillmix.scoring.metrics import Interval, bootstrap_interval, majority_vote
from skillmix.scoring.stats import wilson_interval


def decide(answers: Sequence[bool | None]) -> int | None:
    """One question's verdict over its grading rounds (None: an unparsed round)."""
    voted = majority_vote([None if a is None else {"answer": float(a)} for a in answers])
    return None if voted is None else voted["answer"]


def image_full_marks(decided: Sequence[int | None]) -> int | None:
    """1 when every concept is present, 0 when one is absent, None when it cannot be told."""
    if any(d == 0 for d in decided):
        return 0
    if any(d is None for d in decided):
        return None
    return 1


def concept_fraction(decided: Sequence[int | None]) -> float | None:
    """The share of the decided concepts that are present (None when none is decided)."""
    known = [d for d in decided if d is not None]
    return sum(known) / len(known) if known else None


@dataclass(frozen=True)
class GradedConcept:
    concept_id: str
    category: str
    decided: int | None


@dataclass(frozen=True)
class GradedImage:
    item_id: str
    k: int
    concepts: tuple[GradedConcept, ...]

    @property
    def full_marks(self) -> int | None:
        return image_full_marks([c.decided for c in self.concepts])

    @property
    def concept_fraction(self) -> float | None:
        return concept_fraction([c.decided for c in self.concepts])


@dataclass(frozen=True)
class Rate:
    """Successes out of decided questions, with a 95% Wilson interval."""

    successes: int
    n: int
    undecided: int = 0

    @property
    def rate(self) -> float:
        return self.successes / self.n if self.n else float("nan")

    def to_dict(self) -> dict[str, float | int]:
        low, high = wilson_interval(self.successes, self.n)
        return {
            "rate": self.rate,
            "low": low,
            "high": high,
            "successes": self.successes,
            "n": self.n,
            "undecided": self.undecided,
        }


@dataclass(frozen=True)
class ByK:
    full_marks: Interval
    concept_fraction: Interval
    images: int
    unscored: int

    def to_dict(self) -> dict[str, object]:
        return {
            "full_marks": self.full_marks.to_dict(),
            "concept_fraction": self.concept_fraction.to_dict(),
            "images": self.images,
            "unscored": self.unscored,
        }


@dataclass(frozen=True)
class ImageMetrics:
    by_k: dict[int, ByK]
    by_concept: dict[str, Rate]
    by_category: dict[str, Rate]

    def to_dict(self) -> dict[str, object]:
        return {
            "by_k": {str(k): v.to_dict() for k, v in sorted(self.by_k.items())},
            "by_concept": {c: r.to_dict() for c, r in sorted(self.by_concept.items())},
            "by_category": {c: r.to_dict() for c, r in sorted(self.by_category.items())},
        }


def success_rates(pairs: Iterable[tuple[str, int | None]]) -> dict[str, Rate]:
    """(key, decided) pairs -> the success rate of each key."""
    counts: dict[str, list[int]] = {}
    for key, decided in pairs:
        slot = counts.setdefault(key, [0, 0, 0])
        if decided is None:
            slot[2] += 1
        else:
            slot[0] += decided
            slot[1] += 1
    return {key: Rate(s, n, u) for key, (s, n, u) in counts.items()}


def image_metrics(images: Sequence[GradedImage], *, seed: int = 0) -> ImageMetrics:
    """Every figure of a run (see the module docstring), from its graded images."""
    by_k: dict[int, ByK] = {}
    for k in sorted({image.k for image in images}):
        of_k = [image for image in images if image.k == k]
        full = [image.full_marks for image in of_k]
        fractions = [image.concept_fraction for image in of_k]
        by_k[k] = ByK(
            full_marks=bootstrap_interval([f for f in full if f is not None], seed=seed),
            concept_fraction=bootstrap_interval([f for f in fractions if f is not None], seed=seed),
            images=len(of_k),
            unscored=sum(f is None for f in full),
        )
    graded = [c for image in images for c in image.concepts]
    return ImageMetrics(
        by_k=by_k,
        by_concept=success_rates((c.concept_id, c.decided) for c in graded),
        by_category=success_rates((c.category, c.decided) for c in graded),
    )
