"""Judge versus human on an image run: does the judge's answer equal a person's?

The **unit** is one concept of one image that a person answered in the review app
(`human_verdicts` rows with `gen_round` 0 and the concept id as `criterion`) and that
the judge decided (the majority over its grading rounds, exactly what the run's scores
use). A concept the judge left undecided is left out and counted; when several people
answered a unit their majority counts, and a tie leaves it out
(`scoring.human.human_majority`, as for text).

For each concept, each category and all units together:

- **agreement**: the share of units where judge and person give the same answer, with a
  95% Wilson interval;
- **Cohen's kappa** (`scoring.judges.cohen_kappa`): agreement beyond what the two
  answer rates alone would give, with a 95% percentile bootstrap interval that resamples
  whole images (the units of one image are not independent), seeded;
- the 2x2 counts: both yes, judge yes and person no, judge no and person yes, both no.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skillmix.scoring.human import human_majority
from skillmix.scoring.judges import cohen_kappa
from skillmix.scoring.stats import (
    Estimate,
    bootstrap_estimate,
    cluster_bootstrap_totals,
    wilson_interval,
)
from skillmix.store import HumanVerdictRow

HUMAN_ROUND = 0  # the gen_round of a person's answer about an image
ALL = "all"
RESAMPLES = 2000


@dataclass(frozen=True)
class Unit:
    """One concept of one image, answered by the judge and by people."""

    item_id: str
    concept_id: str
    category: str
    judge: int
    human: int


@dataclass(frozen=True)
class AgreementRow:
    """Agreement over the units of one group: a concept, a category or all of them."""

    group: str  # a concept id, a category id, or "all"
    name: str
    units: int
    images: int
    agreed: int
    low: float  # Wilson 95% interval of the agreement
    high: float
    kappa: Estimate  # with a bootstrap 95% interval over images
    counts: tuple[int, int, int, int]  # both yes, judge yes only, person yes only, both no

    @property
    def agreement(self) -> float:
        return self.agreed / self.units if self.units else float("nan")

    def to_dict(self) -> dict[str, Any]:
        both_yes, judge_only, human_only, both_no = self.counts
        return {
            "group": self.group,
            "name": self.name,
            "units": self.units,
            "images": self.images,
            "agreed": self.agreed,
            "agreement": self.agreement,
            "low": self.low,
            "high": self.high,
            "kappa": self.kappa.value,
            "kappa_low": self.kappa.low,
            "kappa_high": self.kappa.high,
            "both_yes": both_yes,
            "judge_yes_human_no": judge_only,
            "judge_no_human_yes": human_only,
            "both_no": both_no,
        }


@dataclass(frozen=True)
class ImageAgreement:
    """Judge-vs-human agreement of one image run (see the module docstring)."""

    reviewers: tuple[str, ...]
    images: int  # images with at least one unit
    undecided: int  # answered by people, left undecided by the judge
    ties: int  # units where the people who answered tie
    overall: AgreementRow
    by_category: tuple[AgreementRow, ...]
    by_concept: tuple[AgreementRow, ...]

    @property
    def units(self) -> int:
        return self.overall.units

    def to_dict(self) -> dict[str, Any]:
        return {
            "reviewers": list(self.reviewers),
            "images": self.images,
            "units": self.units,
            "undecided": self.undecided,
            "ties": self.ties,
            "overall": self.overall.to_dict(),
            "by_category": [r.to_dict() for r in self.by_category],
            "by_concept": [r.to_dict() for r in self.by_concept],
        }


def paired_units(
    grades: Iterable[Mapping[str, Any]], humans: Sequence[HumanVerdictRow]
) -> tuple[list[Unit], int, int]:
    """(units, undecided, ties): each graded concept a person answered, paired.

    `grades` are `image.grade` records; `humans` are `Store.human_verdicts` rows.
    """
    rows = [h for h in humans if h["gen_round"] == HUMAN_ROUND]
    majority = human_majority(rows)
    answered = {(h["item_id"], h["criterion"]) for h in rows}
    units: list[Unit] = []
    undecided = ties = 0
    for grade in grades:
        for concept in grade["concepts"]:
            key = (grade["item_id"], concept["id"])
            if key not in answered:
                continue
            human = majority.get((grade["item_id"], HUMAN_ROUND, concept["id"]))
            if human is None:
                ties += 1
            elif concept["decided"] is None:
                undecided += 1
            else:
                units.append(
                    Unit(key[0], key[1], concept["category"], int(concept["decided"]), human)
                )
    return units, undecided, ties


def agreement_row(units: Sequence[Unit], group: str, name: str, *, seed: int = 0) -> AgreementRow:
    """Agreement, kappa and counts over `units` (see the module docstring)."""
    judge = [u.judge for u in units]
    human = [u.human for u in units]
    agreed = sum(a == b for a, b in zip(judge, human, strict=True))
    low, high = wilson_interval(agreed, len(units))
    by_image: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for u in units:
        by_image[u.item_id][_cell(u.judge, u.human)] += 1
    totals = np.array(list(by_image.values()), dtype=float).reshape(-1, 4)
    value = cohen_kappa(judge, human)
    replicates = _kappa(cluster_bootstrap_totals(totals, resamples=RESAMPLES, seed=seed))
    kappa = bootstrap_estimate(value, replicates, len(units), clusters=len(by_image))
    counts = totals.sum(axis=0).astype(int)
    return AgreementRow(
        group=group,
        name=name,
        units=len(units),
        images=len(by_image),
        agreed=agreed,
        low=low,
        high=high,
        kappa=kappa,
        counts=(int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3])),
    )


def image_agreement(
    grades: Iterable[Mapping[str, Any]],
    humans: Sequence[HumanVerdictRow],
    *,
    concept_names: Mapping[str, str] | None = None,
    category_names: Mapping[str, str] | None = None,
    seed: int = 0,
) -> ImageAgreement | None:
    """Judge-vs-human agreement of a run's graded images; None when no unit pairs up."""
    units, undecided, ties = paired_units(grades, humans)
    if not units:
        return None
    concepts = concept_names or {}
    categories = category_names or {}
    by_concept: dict[str, list[Unit]] = defaultdict(list)
    by_category: dict[str, list[Unit]] = defaultdict(list)
    for u in units:
        by_concept[u.concept_id].append(u)
        by_category[u.category].append(u)
    return ImageAgreement(
        reviewers=tuple(sorted({h["reviewer"] for h in humans if h["gen_round"] == HUMAN_ROUND})),
        images=len({u.item_id for u in units}),
        undecided=undecided,
        ties=ties,
        overall=agreement_row(units, ALL, "all concepts", seed=seed),
        by_category=tuple(
            agreement_row(us, c, categories.get(c, c), seed=seed)
            for c, us in sorted(by_category.items())
        ),
        by_concept=tuple(
            agreement_row(us, c, concepts.get(c, c), seed=seed)
            for c, us in sorted(by_concept.items())
        ),
    )


def _cell(judge: int, human: int) -> int:
    """The 2x2 cell of a unit: 0 both yes, 1 judge yes only, 2 person yes only, 3 both no."""
    return (1 - judge) * 2 + (1 - human)


def _kappa(totals: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each row of 2x2 counts (both yes, judge only, person only, both no),
    with `cohen_kappa`'s conventions: nan for no units, 1 when both always give one same
    answer."""
    yy, yn, ny, nn = (totals[:, i] for i in range(4))
    n = totals.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (yy + nn) / n
        expected = ((yy + yn) * (yy + ny) + (ny + nn) * (yn + nn)) / (n * n)
        kappa = (observed - expected) / (1 - expected)
    kappa = np.where(expected == 1, np.where(observed == 1, 1.0, np.nan), kappa)
    return np.where(n == 0, np.nan, kappa)
