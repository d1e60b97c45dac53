"""What the scores say about skills: how hard each one is, how success composes with k,
which pairs interact, and how much of the item space a run covered.

Reads scored runs (`skillmix.scoring.results.score_run`) and calls no model. The unit of
observation is one graded text: a generation round with a decided verdict (after the vote
and the naming penalty), so the rule that combines generation rounds does not enter.
"All skills met" means every skill criterion of the text was met; topic, sense and length
are left out, so that the composition law compares like with like.

- **Difficulty.** A Rasch-style logistic model, P(skill s met on a text of k skills) =
  σ(θ_student − b_s − γ·(k−1)), fitted per judge by Newton's method (each run is one
  student, with its own θ). A weak normal prior on b (sd `PRIOR_SD`) identifies the
  model: at the optimum the b sum to 0, so b = 0 is a skill of average difficulty, and a
  skill seen only a few times keeps a finite b whose interval is mostly the prior.
  Category difficulty is the same model refitted with one b per category (every skill of
  a category shares it), so it weighs skills by how often they were graded. Intervals
  are normal intervals from the curvature of the penalised likelihood; the skills of
  one text are treated as independent given θ and b.
- **Composition law.** Per k, the share of texts with every skill met, next to what
  independent skills would give: the mean over the texts of the product of their
  skills' success rates, taken from the k = 1 texts when the run has them, else from
  the texts of the same k (leaving the text's own item out). Rates are shrunk towards
  the pooled rate by `PSEUDO_COUNT` texts. Also observed(k) / observed(1)^k. Intervals
  come from a bootstrap over items (resampled within each k, as the design fixes how many
  items each k has) that redoes every step.
- **Pair interactions.** For two skills graded together on at least `min_pair_count`
  texts: lift = P(both met) / (P(a met) P(b met)) over those texts, Fisher's exact test
  of independence, and the Benjamini-Hochberg false discovery rate over all tested pairs.
- **Novelty.** The share of the C(N,k)·T distinct items a run drew, and with corpus
  frequencies the bound of `skillmix catalog stats` on how many a corpus could hold.

One module per part (`texts`, the graded texts all parts read; `difficulty`,
`composition`, `pairs`, `novelty`); `analyze_scores` here runs them all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from skillmix.scoring.results import RunScores, score_run
from skillmix.scoring.skills.composition import (
    FROM_K1,
    FROM_SAME_K,
    RESAMPLES,
    CompositionLaw,
    CompositionRow,
    composition_law,
)
from skillmix.scoring.skills.difficulty import (
    MIN_SKILL_OBSERVATIONS,
    CategoryDifficulty,
    DifficultyFit,
    RaschFit,
    SkillDifficulty,
    StudentAbility,
    fit_rasch,
    skill_difficulty,
)
from skillmix.scoring.skills.novelty import (
    CorpusFrequencies,
    Novelty,
    NoveltyRow,
    corpus_bound,
    novelty,
)
from skillmix.scoring.skills.pairs import (
    PairInteraction,
    PairInteractions,
    fisher_exact_p,
    lift_estimate,
    pair_interactions,
)
from skillmix.scoring.skills.texts import GradedRun, GradedText, graded_run
from skillmix.store import Store

__all__ = [
    "FROM_K1",
    "FROM_SAME_K",
    "MIN_SKILL_OBSERVATIONS",
    "RESAMPLES",
    "CategoryDifficulty",
    "CompositionLaw",
    "CompositionRow",
    "CorpusFrequencies",
    "DifficultyFit",
    "GradedRun",
    "GradedText",
    "Novelty",
    "NoveltyRow",
    "PairInteraction",
    "PairInteractions",
    "RaschFit",
    "SkillAnalysis",
    "SkillDifficulty",
    "StudentAbility",
    "analyze_runs",
    "analyze_scores",
    "composition_law",
    "corpus_bound",
    "fisher_exact_p",
    "fit_rasch",
    "graded_run",
    "lift_estimate",
    "novelty",
    "pair_interactions",
    "skill_difficulty",
]


@dataclass
class SkillAnalysis:
    """Difficulty per judge, and per run and judge the composition law and pair
    interactions, novelty per run; `limits` says what these runs cannot tell."""

    level: float
    runs: list[str]
    difficulty: list[DifficultyFit]
    composition: list[CompositionLaw]
    pairs: list[PairInteractions]
    novelty: list[Novelty]
    limits: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "runs": self.runs,
            "limits": self.limits,
            "difficulty": [d.to_dict() for d in self.difficulty],
            "composition": [c.to_dict() for c in self.composition],
            "pairs": [p.to_dict() for p in self.pairs],
            "novelty": [n.to_dict() for n in self.novelty],
        }


def analyze_scores(
    runs: Sequence[RunScores],
    *,
    level: float = 0.95,
    min_pair_count: int = 5,
    seed: int = 0,
    resamples: int = RESAMPLES,
    corpus: CorpusFrequencies | None = None,
    cell_budget: int | None = None,
) -> SkillAnalysis:
    """The skill analysis of already scored runs (see the module docstring); `cell_budget`
    bounds the composition bootstrap's work (see `composition_law`)."""
    per_judge: dict[str, list[GradedRun]] = defaultdict(list)
    composition, pairs, limits = [], [], []
    for scores in runs:
        run_id = scores.run["id"]
        for judge in scores.judges:
            graded = graded_run(scores, judge)
            if not graded.texts:
                limits.append(f"run {run_id} has no text graded by {judge} yet")
                continue
            per_judge[judge].append(graded)
            law = composition_law(
                graded, level=level, resamples=resamples, seed=seed, cell_budget=cell_budget
            )
            if law is not None:
                composition.append(law)
            pairs.append(pair_interactions(graded, level=level, min_count=min_pair_count))
    difficulty = [
        fit
        for graded in per_judge.values()
        if (fit := skill_difficulty(graded, level=level)) is not None
    ]
    analysis = SkillAnalysis(
        level=level,
        runs=[s.run["id"] for s in runs],
        difficulty=difficulty,
        composition=composition,
        pairs=pairs,
        novelty=[novelty(s, corpus) for s in runs],
        limits=limits,
    )
    analysis.limits += _limits(analysis, corpus)
    return analysis


def analyze_runs(
    store: Store,
    run_ids: Iterable[str],
    *,
    level: float = 0.95,
    min_pair_count: int = 5,
    seed: int = 0,
    resamples: int = RESAMPLES,
    corpus: CorpusFrequencies | None = None,
) -> SkillAnalysis:
    """Score the stored runs `run_ids` (ids or unique starts of ids) and analyse their
    skills together: one difficulty fit per judge, with one ability per run."""
    scored: dict[str, RunScores] = {}
    for run_id in run_ids:
        scores = score_run(store, run_id)
        scored.setdefault(scores.run["id"], scores)
    return analyze_scores(
        list(scored.values()),
        level=level,
        min_pair_count=min_pair_count,
        seed=seed,
        resamples=resamples,
        corpus=corpus,
    )


def _limits(analysis: SkillAnalysis, corpus: CorpusFrequencies | None) -> list[str]:
    """What the runs cannot tell, in words a reader can act on."""
    out = []
    for fit in analysis.difficulty:
        if fit.per_extra_skill is None:
            out.append(
                f"judge {fit.judge}: every graded text has the same k, so the cost of an "
                "extra skill (γ) cannot be told apart from ability; run several k"
            )
        sparse = sum(s.sparse for s in fit.skills)
        if sparse:
            out.append(
                f"judge {fit.judge}: {sparse} of {len(fit.skills)} skills were graded on fewer "
                f"than {MIN_SKILL_OBSERVATIONS} texts; their difficulty is mostly the prior "
                "(wide intervals)"
            )
        if not fit.converged:
            out.append(f"judge {fit.judge}: the difficulty fit did not converge")
    for law in analysis.composition:
        ks = [r.k for r in law.rows]
        where = f"run {law.run_id} (judge {law.judge})"
        if len(ks) == 1:
            out.append(f"{where} has only k = {ks[0]}: there is no composition curve")
        elif 1 not in ks:
            out.append(
                f"{where} has no k = 1 items: independence is predicted from {FROM_SAME_K}, "
                "and observed(k) / observed(1)^k cannot be computed"
            )
    for p in analysis.pairs:
        if not p.tested:
            out.append(
                f"run {p.run_id} (judge {p.judge}): no skill pair was graded together on "
                f"{p.min_count} texts or more, so no pair was tested; run more items on a "
                "smaller catalog or lower --min-pair-count"
            )
    if corpus is None:
        out.append(
            "no corpus frequencies given, so no corpus bound on novelty (`skillmix analyze "
            "--frequencies FILE --corpus-size N` gives it, with the file of `catalog filter`)"
        )
    return out
