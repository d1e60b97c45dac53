"""What the numbers mean, in one place: the terminal legend, the HTML report's "Reading
the results" section, and docs/protocol.md say the same (a test holds them together).

The reference figures are the published Skill-Mix results (SPEC section 5), quoted with
their citation so that a reader can place a run among them.
"""

from __future__ import annotations

from dataclasses import dataclass

PROTOCOL_DOC = "docs/protocol.md"
CITATION = (
    "Yu et al., Skill-Mix: a Flexible and Expandable Family of Evaluations for AI Models, ICLR 2024"
)

# metric -> (name, one sentence), for one graded generation with A skill points (0..k)
# and B points for the other three criteria (0..3).
METRIC_SENTENCES: dict[str, tuple[str, str]] = {
    "full_marks": ("full marks", "1 when every criterion is met (A = k and B = 3)."),
    "all_skills": (
        "all skills",
        "1 when every skill is illustrated (A = k) and at most one of the three other "
        "criteria is missed (B ≥ 2).",
    ),
    "skill_fraction": (
        "skill fraction",
        "A / k, but only when all three other criteria are met (B = 3); otherwise 0.",
    ),
}
# The terminal legend's short forms of the same definitions.
METRIC_SHORT = {
    "full_marks": "every criterion met",
    "all_skills": "every skill, ≤1 other missed",
    "skill_fraction": "skills/k when the other 3 are met",
}
CRITERIA = (
    "Each answer is graded on k + 3 criteria: one per skill, “pertains to the topic”, "
    "“makes sense” and “at most max(1, k − 1) sentences” (counted in code, not by the "
    "judge). A skill named in the answer earns 0 (the naming penalty)."
)
VOTE = (
    "Each criterion is decided by majority vote over the grading rounds (a tie is not "
    "met; rounds whose verdict could not be read do not vote)."
)
# aggregation rule -> how an item's generation rounds combine
AGGREGATION_SENTENCES = {
    "max": "each metric is the maximum over the item's generation rounds (the published "
    "rule, so the three metrics may come from different texts)",
    "mean": "each metric is the mean over the item's generation rounds",
    "best": "one generation per item, the best by full marks, then all skills, then skill "
    "fraction, so that all three metrics describe the same text",
}
MEAN_OVER_ITEMS = "the run's figure is the mean over items, with a 95% bootstrap interval"
UNSCORED = (
    "An item none of whose grading rounds could be read is unscored: it is left out of the "
    "mean and counted separately, never counted as 0."
)
NOT_GRADED = (
    "Items of a run that was paused or interrupted before grading are not graded yet: "
    "re-running the same command grades them."
)
CONTRADICTION = (
    "“All skills 1.00” next to “skill fraction 0.33” is not a contradiction: the texts "
    "illustrate every skill but miss one other criterion (often the sentence limit), "
    "which all skills forgives and skill fraction does not."
)
REFERENCE_SETTING = (
    "Published results with a GPT-4 judge, common skills removed, naming penalty on, as "
    "full marks / all skills / skill fraction"
)
REFERENCE_CAVEAT = (
    "Comparable only with runs made with --protocol paper, a strong judge, and the "
    "common-skill filter applied (skillmix catalog filter)."
)


@dataclass(frozen=True)
class ReferenceRow:
    """One published student: k -> (full marks, all skills, skill fraction)."""

    student: str
    figures: dict[int, tuple[float, float, float]]


REFERENCE_KS = (2, 3, 4, 5)
REFERENCE_FIGURES = (
    ReferenceRow(
        "GPT-4",
        {
            2: (0.95, 0.95, 0.98),
            3: (0.66, 0.66, 0.88),
            4: (0.48, 0.50, 0.85),
            5: (0.12, 0.12, 0.79),
        },
    ),
    ReferenceRow(
        "GPT-3.5-turbo",
        {
            2: (0.40, 0.49, 0.68),
            3: (0.04, 0.04, 0.48),
            4: (0.00, 0.00, 0.39),
            5: (0.00, 0.00, 0.36),
        },
    ),
    ReferenceRow(
        "LLaMA-2-70B-Chat",
        {2: (0.22, 0.22, 0.58), 3: (0.00, 0.02, 0.43), 4: (0.00, 0.00, 0.40)},
    ),
    ReferenceRow(
        "LLaMA-2-7B-Chat",
        {2: (0.03, 0.09, 0.32), 3: (0.00, 0.00, 0.22), 4: (0.00, 0.00, 0.20)},
    ),
)


def reference_cell(row: ReferenceRow, k: int) -> str:
    """`.95/.95/.98`, or `–` where the paper has no figure (as docs/protocol.md writes it)."""
    figures = row.figures.get(k)
    if figures is None:
        return "–"
    return "/".join(f"{v:.2f}".removeprefix("0") for v in figures)


def legend(aggregation: str, generation_rounds: int | None = None) -> str:
    """The one line that ends a terminal report: what each metric is and how items combine."""
    metrics = " · ".join(f"{METRIC_SENTENCES[m][0]}: {s}" for m, s in METRIC_SHORT.items())
    rounds = "generations"
    if generation_rounds:
        rounds = f"{generation_rounds} generation{'s' if generation_rounds > 1 else ''}"
    how = {
        "max": f"max over {rounds}",
        "mean": f"mean over {rounds}",
        "best": f"best of {rounds}",
    }.get(aggregation, aggregation)
    return f"{metrics} · {how}, mean over items; {PROTOCOL_DOC}"


__all__ = [
    "AGGREGATION_SENTENCES",
    "CITATION",
    "CONTRADICTION",
    "CRITERIA",
    "MEAN_OVER_ITEMS",
    "METRIC_SENTENCES",
    "NOT_GRADED",
    "PROTOCOL_DOC",
    "REFERENCE_CAVEAT",
    "REFERENCE_FIGURES",
    "REFERENCE_KS",
    "REFERENCE_SETTING",
    "UNSCORED",
    "VOTE",
    "ReferenceRow",
    "legend",
    "reference_cell",
]
