"""How far predicted skills agree with human skill labels (pure): `math label
--against-annotations`.

A labeller predicts coarse skills for each question; people annotated the concepts each
question needs (CHAMP's 89 concepts). The two vocabularies differ, so each coarse skill is
first mapped to the human concept it co-occurs with most (`majority_mapping`); a
question's predicted concepts are then the mapped concepts of its coarse skills, and
precision, recall and F1 count (question, concept) pairs. See `MAPPING_METHOD` for the
cross-fitting that keeps a question from grading its own mapping, and its bias.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skillmix.scoring.stats import Estimate, bootstrap_estimate, cluster_bootstrap_totals

MAPPING_METHOD = (
    "Each coarse skill stands for the human concept it co-occurs with most (on the most "
    "questions; ties: the more frequent concept, then the id), and a question's predicted "
    "concepts are those of its coarse skills. The mapping is cross-fitted: for each "
    "question it is learned on all the other questions (leave one out), so a question never "
    "grades its own mapping. Learning it on the same questions would be optimistic (a "
    "skill seen once maps to its own question's concept); cross-fitting is slightly "
    "pessimistic instead: a skill whose other questions share no concept with it maps to "
    "nothing. The in-sample figure is shown beside it, for comparison. A coarse skill "
    "stands for one concept, so when questions carry several concepts recall is bounded by "
    "the number of coarse skills a question gets. Questions without human concepts, and "
    "unparsed labels, are left out. Intervals: 95% percentile bootstrap over questions, "
    "with the mapping held fixed."
)
ALL = "all"


@dataclass(frozen=True)
class AnnotatedQuestion:
    """A question's predicted coarse skills and its human concepts."""

    id: str
    category: str
    predicted: frozenset[str]
    human: frozenset[str]


def _cooccurrence(
    questions: Sequence[AnnotatedQuestion],
) -> tuple[dict[str, Counter[str]], Counter[str]]:
    together: dict[str, Counter[str]] = {}
    frequency: Counter[str] = Counter()
    for q in questions:
        frequency.update(q.human)
        for skill in q.predicted:
            together.setdefault(skill, Counter()).update(q.human)
    return together, frequency


def _best(
    counts: Counter[str] | None, frequency: Counter[str], own: frozenset[str] = frozenset()
) -> str | None:
    """The concept with the most co-occurrences, `own` (a left-out question's concepts)
    subtracted; ties: more frequent, then the smaller id. None when nothing co-occurs."""
    best: tuple[int, int] | None = None
    choice = None
    for concept in sorted(counts or ()):
        n = (counts or Counter())[concept] - (concept in own)
        if n <= 0:
            continue
        score = (n, frequency[concept] - (concept in own))
        if best is None or score > best:
            best, choice = score, concept
    return choice


def majority_mapping(questions: Sequence[AnnotatedQuestion]) -> dict[str, str | None]:
    """Coarse skill -> the human concept it co-occurs with most, learned on `questions`."""
    together, frequency = _cooccurrence(questions)
    return {skill: _best(counts, frequency) for skill, counts in sorted(together.items())}


def cross_fitted_predictions(questions: Sequence[AnnotatedQuestion]) -> list[frozenset[str]]:
    """Each question's predicted concepts under the mapping learned without it."""
    together, frequency = _cooccurrence(questions)
    out = []
    for q in questions:
        mapped = {_best(together.get(s), frequency, q.human) for s in q.predicted}
        out.append(frozenset(c for c in mapped if c is not None))
    return out


def in_sample_predictions(
    questions: Sequence[AnnotatedQuestion], mapping: Mapping[str, str | None]
) -> list[frozenset[str]]:
    """Each question's predicted concepts under one mapping learned on all questions."""
    return [
        frozenset(c for s in q.predicted if (c := mapping.get(s)) is not None) for q in questions
    ]


@dataclass(frozen=True)
class AgreementRow:
    """Precision, recall and F1 of (question, concept) pairs for one category (or all)."""

    category: str
    questions: int
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: Estimate
    recall: Estimate
    f1: Estimate

    def to_dict(self) -> dict[str, Any]:
        def interval(e: Estimate) -> dict[str, float]:
            return {"value": e.value, "low": e.low, "high": e.high}

        return {
            "category": self.category,
            "questions": self.questions,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "precision": interval(self.precision),
            "recall": interval(self.recall),
            "f1": interval(self.f1),
        }


def _ratio(num: np.ndarray | float, den: np.ndarray | float) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.asarray(den) > 0, np.asarray(num) / np.asarray(den), np.nan)


def agreement_row(
    category: str,
    counts: np.ndarray,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> AgreementRow:
    """A row from per-question (tp, fp, fn) counts, with cluster-bootstrap intervals."""
    counts = np.asarray(counts, dtype=float).reshape(-1, 3)
    tp, fp, fn = counts.sum(axis=0)
    reps = cluster_bootstrap_totals(counts, resamples=resamples, seed=seed)
    n = len(counts)

    def estimate(value: Any, replicates: Any) -> Estimate:
        return bootstrap_estimate(float(value), np.asarray(replicates), n)

    return AgreementRow(
        category,
        n,
        int(tp),
        int(fp),
        int(fn),
        estimate(_ratio(tp, tp + fp), _ratio(reps[:, 0], reps[:, 0] + reps[:, 1])),
        estimate(_ratio(tp, tp + fn), _ratio(reps[:, 0], reps[:, 0] + reps[:, 2])),
        estimate(
            _ratio(2 * tp, 2 * tp + fp + fn),
            _ratio(2 * reps[:, 0], 2 * reps[:, 0] + reps[:, 1] + reps[:, 2]),
        ),
    )


def agreement_rows(
    questions: Sequence[AnnotatedQuestion],
    predictions: Sequence[frozenset[str]],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> list[AgreementRow]:
    """One row per category (alphabetical), then the row of all questions."""
    counts = np.array(
        [
            (len(p & q.human), len(p - q.human), len(q.human - p))
            for q, p in zip(questions, predictions, strict=True)
        ],
        dtype=float,
    ).reshape(-1, 3)
    rows = []
    categories = sorted({q.category for q in questions})
    for category in categories:
        mask = np.array([q.category == category for q in questions])
        rows.append(agreement_row(category, counts[mask], resamples=resamples, seed=seed))
    rows.append(agreement_row(ALL, counts, resamples=resamples, seed=seed))
    return rows


@dataclass(frozen=True)
class SkillMapping:
    """A coarse skill's concept (learned on all questions) and how often it holds."""

    skill: str
    concept: str | None
    questions: int  # annotated questions with the skill
    hits: int  # of those, questions that carry the concept


@dataclass
class Agreement:
    """Predicted coarse skills against human concepts (see `MAPPING_METHOD`)."""

    rows: list[AgreementRow]  # cross-fitted: per category, then all
    in_sample: list[AgreementRow]  # the mapping learned on the same questions (optimistic)
    mapping: list[SkillMapping]
    confusion: dict[tuple[str, str], int]  # (skill id, concept) -> questions with both
    skill_questions: dict[str, int]  # annotated questions per skill
    concept_questions: dict[str, int]  # annotated questions per concept
    excluded: dict[str, int]
    method: str = MAPPING_METHOD

    @property
    def overall(self) -> AgreementRow:
        return self.rows[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "cross_fitted": [r.to_dict() for r in self.rows],
            "in_sample": [r.to_dict() for r in self.in_sample],
            "mapping": [m.__dict__ for m in self.mapping],
            "confusion": [
                {"skill": s, "concept": c, "questions": n}
                for (s, c), n in sorted(self.confusion.items())
            ],
            "excluded": self.excluded,
        }


def measure_agreement(
    questions: Sequence[AnnotatedQuestion],
    excluded: Mapping[str, int] | None = None,
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> Agreement:
    """Cross-fitted and in-sample agreement, the mapping and the confusion counts."""
    mapping = majority_mapping(questions)
    confusion: Counter[tuple[str, str]] = Counter()
    skill_questions: Counter[str] = Counter()
    concept_questions: Counter[str] = Counter()
    for q in questions:
        concept_questions.update(q.human)
        for skill in q.predicted:
            skill_questions[skill] += 1
            for concept in q.human:
                confusion[(skill, concept)] += 1
    mappings = [
        SkillMapping(
            skill,
            concept,
            skill_questions[skill],
            confusion[(skill, concept)] if concept else 0,
        )
        for skill, concept in mapping.items()
    ]
    return Agreement(
        agreement_rows(
            questions, cross_fitted_predictions(questions), resamples=resamples, seed=seed
        ),
        agreement_rows(
            questions, in_sample_predictions(questions, mapping), resamples=resamples, seed=seed
        ),
        mappings,
        dict(confusion),
        dict(skill_questions),
        dict(concept_questions),
        dict(excluded or {}),
    )
