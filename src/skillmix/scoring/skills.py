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
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from skillmix.catalog.model import Catalog
from skillmix.catalog.sampling import combinations_count, expected_corpus_occurrences
from skillmix.scoring.results import RunScores, score_run
from skillmix.scoring.stats import (
    Estimate,
    benjamini_hochberg,
    bootstrap_estimate,
    wald,
    wilson_interval,
    z_quantile,
)
from skillmix.store import Store

PRIOR_SD = 2.0  # prior sd of skill and category difficulties (logits)
WIDE_PRIOR_SD = 10.0  # of abilities and γ: only keeps a perfect score finite
MIN_SKILL_OBSERVATIONS = 5  # fewer graded texts than this: the difficulty is marked sparse
PSEUDO_COUNT = 1.0  # texts at the pooled rate added to each skill's rate in the prediction
RESAMPLES = 1000  # bootstrap resamples of the composition law
MIN_RESAMPLES = 200  # the fewest a cell budget may leave (see `composition_law`)
# The bootstrap goes through its resamples in chunks (the results do not depend on their
# size): about _CHUNK_CELLS cells (resamples × entries), so that a chunk's arrays stay in
# the CPU's cache (a 1,088-item run's analysis: 0.12 s in chunks of 1,000,000 cells, 0.08 s
# in chunks of 65,536), but at least _CHUNK_ROWS resamples, so that Python's work per chunk
# does not dominate on big runs, and never more than _CHUNK_MAX_CELLS held at once.
_CHUNK_CELLS = 65_536
_CHUNK_ROWS = 16
_CHUNK_MAX_CELLS = 1_000_000


# --- graded texts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Text:
    item: int  # index of its item within the run
    k: int
    skills: tuple[str, ...]
    met: tuple[int, ...]  # 1 where that skill's criterion was met


@dataclass
class _Graded:
    """The graded texts of one run under one judge."""

    run_id: str
    student: str
    judge: str
    catalog: Catalog
    texts: list[_Text]


def _graded(scores: RunScores, judge: str) -> _Graded:
    items: dict[str, int] = {}
    texts = []
    for r in scores.items:
        if r.judge != judge:
            continue
        index = items.setdefault(r.item_id, len(items))
        for g in r.generations:
            if g.decided is None:
                continue
            met = tuple(int(g.decided.get(f"skill:{s}", 0)) for s in r.skill_ids)
            texts.append(_Text(index, r.k, tuple(r.skill_ids), met))
    run = scores.run
    return _Graded(run["id"], run["config"]["student"], judge, scores.catalog, texts)


# --- the Rasch-style fit ---------------------------------------------------------------------


@dataclass(frozen=True)
class RaschFit:
    """Estimates of P(met) = σ(θ[student] − b[group] − γ·(k−1)) and their standard errors.

    Only differences between θ and b are identified: `difficulty` is centred (its mean
    is 0) and `ability` is θ minus that mean, each with the standard error of that
    contrast. `per_extra_skill` (γ) is nan when it was not fitted (a single k).
    """

    ability: np.ndarray
    ability_se: np.ndarray
    difficulty: np.ndarray
    difficulty_se: np.ndarray
    per_extra_skill: float
    per_extra_skill_se: float
    iterations: int
    converged: bool


def _sigmoid(eta: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -eta))


def fit_rasch(
    student: Sequence[int] | np.ndarray,
    group: Sequence[int] | np.ndarray,
    k: Sequence[int] | np.ndarray,
    met: Sequence[int] | np.ndarray,
    *,
    n_students: int,
    n_groups: int,
    prior_sd: float = PRIOR_SD,
    fit_k: bool = True,
    tol: float = 1e-8,
    max_iterations: int = 100,
) -> RaschFit:
    """Fit the model to one observation per (text, skill): the student's index, the
    group's (skill or category) index, the text's k and whether the criterion was met.

    Maximises the log-likelihood plus a normal log-prior (sd `prior_sd` on each b,
    `WIDE_PRIOR_SD` on θ and γ) by Newton's method with step halving. Each observation
    touches one b, so the Hessian is a diagonal block for b bordered by a few dense
    columns (θ, γ): each step solves it through their Schur complement, in time linear
    in the number of observations and groups. Standard errors come from the inverse of
    the penalised Hessian at the optimum.
    """
    s_idx = np.asarray(student, dtype=np.intp)
    g_idx = np.asarray(group, dtype=np.intp)
    x = np.asarray(k, dtype=float) - 1.0
    y = np.asarray(met, dtype=float)
    lam_b, lam_q = 1.0 / prior_sd**2, 1.0 / WIDE_PRIOR_SD**2
    cell = s_idx * n_groups + g_idx
    if not fit_k:
        x = np.zeros_like(x)
    theta, b, gamma = np.zeros(n_students), np.zeros(n_groups), 0.0

    def objective(theta: np.ndarray, b: np.ndarray, gamma: float) -> float:
        eta = theta[s_idx] - b[g_idx] - gamma * x
        loss = float(np.sum(np.logaddexp(0.0, eta) - y * eta))
        return loss + 0.5 * (lam_b * float(b @ b) + lam_q * (float(theta @ theta) + gamma**2))

    def curvature(theta: np.ndarray, b: np.ndarray, gamma: float) -> tuple[Any, ...]:
        p = _sigmoid(theta[s_idx] - b[g_idx] - gamma * x)
        r, w = p - y, p * (1.0 - p)
        grad_b = -np.bincount(g_idx, r, n_groups) + lam_b * b
        grad_q = np.bincount(s_idx, r, n_students) + lam_q * theta
        diag_b = np.bincount(g_idx, w, n_groups) + lam_b
        border = -np.bincount(cell, w, n_students * n_groups).reshape(n_students, n_groups).T
        dense = np.diag(np.bincount(s_idx, w, n_students) + lam_q)
        if fit_k:
            grad_q = np.append(grad_q, -(r @ x) + lam_q * gamma)
            border = np.column_stack([border, np.bincount(g_idx, w * x, n_groups)])
            cross = -np.bincount(s_idx, w * x, n_students)
            dense = np.block(
                [[dense, cross[:, None]], [cross[None, :], np.array([[w @ (x * x) + lam_q]])]]
            )
        scaled = border / diag_b[:, None]
        schur = dense - border.T @ scaled
        return grad_b, grad_q, diag_b, border, scaled, schur

    converged = False
    iterations = 0
    current = objective(theta, b, gamma)
    for iterations in range(1, max_iterations + 1):  # noqa: B007 (reported below)
        grad_b, grad_q, diag_b, border, scaled, schur = curvature(theta, b, gamma)
        step_q = np.linalg.solve(schur, -grad_q + scaled.T @ grad_b)
        step_b = (-grad_b - border @ step_q) / diag_b
        size = 1.0
        while True:
            new_theta = theta + size * step_q[:n_students]
            new_b = b + size * step_b
            new_gamma = gamma + size * float(step_q[n_students]) if fit_k else 0.0
            value = objective(new_theta, new_b, new_gamma)
            if value <= current + 1e-12 * abs(current) or size < 1e-6:
                break
            size /= 2
        theta, b, gamma, current = new_theta, new_b, new_gamma, value
        largest = max(np.abs(step_b).max(initial=0.0), np.abs(step_q).max(initial=0.0))
        if size * largest < tol:
            converged = True
            break
    # Only differences are identified (θ + c, b + c fit alike), so report b centred at
    # its mean b̄ and θ − b̄, with the variances of those contrasts. With H⁻¹ written as
    # D⁻¹ + U S⁻¹ Uᵀ for b, −S⁻¹ Uᵀ between θ/γ and b, and S⁻¹ for θ/γ:
    _, _, diag_b, _, scaled, schur = curvature(theta, b, gamma)
    cov_q = np.linalg.inv(schur)
    n = n_groups
    var_b = 1.0 / diag_b + np.einsum("gp,pq,gq->g", scaled, cov_q, scaled)
    pull = cov_q @ scaled.sum(axis=0)  # S⁻¹ Σ_g U_g
    cov_b_mean = (1.0 / diag_b + scaled @ pull) / n
    var_mean = (float(np.sum(1.0 / diag_b)) + float(scaled.sum(axis=0) @ pull)) / n**2
    mean_b = float(b.mean())
    var_q = np.diag(cov_q)
    var_ability = var_q[:n_students] + 2.0 * pull[:n_students] / n + var_mean
    return RaschFit(
        ability=theta - mean_b,
        ability_se=np.sqrt(var_ability),
        difficulty=b - mean_b,
        difficulty_se=np.sqrt(np.maximum(var_b - 2.0 * cov_b_mean + var_mean, 0.0)),
        per_extra_skill=gamma if fit_k else float("nan"),
        per_extra_skill_se=float(np.sqrt(var_q[n_students])) if fit_k else float("nan"),
        iterations=iterations,
        converged=converged,
    )


@dataclass(frozen=True)
class SkillDifficulty:
    """One skill's difficulty b (logits; 0 = average, higher = harder).

    `difficulty.n` counts the graded texts that asked for the skill; `success` is the
    share of them that met it. `sparse`: fewer than `MIN_SKILL_OBSERVATIONS` texts, so
    the estimate is mostly the prior.
    """

    skill: str
    name: str
    category: str
    difficulty: Estimate
    success: float
    sparse: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "skill": self.skill,
            "name": self.name,
            "category": self.category,
            "difficulty": _estimate(self.difficulty),
            "success": self.success,
            "sparse": self.sparse,
        }


@dataclass(frozen=True)
class CategoryDifficulty:
    """A category's difficulty, from the fit where its skills share one b."""

    category: str
    difficulty: Estimate  # n: graded (text, skill) pairs of the category
    skills: int  # distinct skills of the category that were graded
    success: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "difficulty": _estimate(self.difficulty),
            "skills": self.skills,
            "success": self.success,
        }


@dataclass(frozen=True)
class StudentAbility:
    run_id: str
    student: str
    ability: Estimate  # θ in logits; n: graded (text, skill) pairs

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "student": self.student, "ability": _estimate(self.ability)}


@dataclass
class DifficultyFit:
    """The model fitted to every run graded by one judge (one θ per run)."""

    judge: str
    students: list[StudentAbility]
    per_extra_skill: Estimate | None  # γ: the logit cost of each extra skill; None: one k
    skills: list[SkillDifficulty]  # hardest first
    categories: list[CategoryDifficulty]  # hardest first
    observations: int  # graded (text, skill) pairs
    iterations: int
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "judge": self.judge,
            "model": "P(met) = sigmoid(theta_student - b_skill - gamma*(k-1))",
            "prior_sd": PRIOR_SD,
            "observations": self.observations,
            "iterations": self.iterations,
            "converged": self.converged,
            "students": [s.to_dict() for s in self.students],
            "per_extra_skill": None
            if self.per_extra_skill is None
            else _estimate(self.per_extra_skill),
            "skills": [s.to_dict() for s in self.skills],
            "categories": [c.to_dict() for c in self.categories],
        }


def skill_difficulty(graded: Sequence[_Graded], *, level: float = 0.95) -> DifficultyFit | None:
    """The model fitted to the graded texts of one judge (one student per entry)."""
    rows = [
        (si, t.k, s, m)
        for si, g in enumerate(graded)
        for t in g.texts
        for s, m in zip(t.skills, t.met, strict=True)
    ]
    if not rows:
        return None
    catalogs = [g.catalog for g in graded]
    skill_ids = sorted({r[2] for r in rows})
    category_of = {s: _category(catalogs, s) for s in skill_ids}
    categories = sorted(set(category_of.values()))
    student = np.array([r[0] for r in rows])
    k = np.array([r[1] for r in rows])
    met = np.array([r[3] for r in rows])
    skill_index = {s: i for i, s in enumerate(skill_ids)}
    category_index = {c: i for i, c in enumerate(categories)}
    skill = np.array([skill_index[r[2]] for r in rows])
    category = np.array([category_index[category_of[r[2]]] for r in rows])
    fit_k = len(np.unique(k)) > 1
    by_skill = fit_rasch(
        student, skill, k, met, n_students=len(graded), n_groups=len(skill_ids), fit_k=fit_k
    )
    by_category = fit_rasch(
        student, category, k, met, n_students=len(graded), n_groups=len(categories), fit_k=fit_k
    )
    seen = np.bincount(skill, minlength=len(skill_ids))
    hits = np.bincount(skill, met, len(skill_ids))
    skills = [
        SkillDifficulty(
            skill=sid,
            name=_skill_name(catalogs, sid),
            category=category_of[sid],
            difficulty=wald(
                float(by_skill.difficulty[i]),
                float(by_skill.difficulty_se[i]),
                int(seen[i]),
                level=level,
            ),
            success=float(hits[i] / seen[i]),
            sparse=bool(seen[i] < MIN_SKILL_OBSERVATIONS),
        )
        for i, sid in enumerate(skill_ids)
    ]
    c_seen = np.bincount(category, minlength=len(categories))
    c_hits = np.bincount(category, met, len(categories))
    cats = [
        CategoryDifficulty(
            category=c,
            difficulty=wald(
                float(by_category.difficulty[i]),
                float(by_category.difficulty_se[i]),
                int(c_seen[i]),
                level=level,
            ),
            skills=sum(1 for s in skill_ids if category_of[s] == c),
            success=float(c_hits[i] / c_seen[i]),
        )
        for i, c in enumerate(categories)
    ]
    s_seen = np.bincount(student, minlength=len(graded))
    students = [
        StudentAbility(
            g.run_id,
            g.student,
            wald(
                float(by_skill.ability[i]),
                float(by_skill.ability_se[i]),
                int(s_seen[i]),
                level=level,
            ),
        )
        for i, g in enumerate(graded)
    ]
    gamma = None
    if fit_k:
        gamma = wald(by_skill.per_extra_skill, by_skill.per_extra_skill_se, len(rows), level=level)
    return DifficultyFit(
        judge=graded[0].judge,
        students=students,
        per_extra_skill=gamma,
        skills=sorted(skills, key=lambda s: -s.difficulty.value),
        categories=sorted(cats, key=lambda c: -c.difficulty.value),
        observations=len(rows),
        iterations=by_skill.iterations,
        converged=by_skill.converged and by_category.converged,
    )


def _category(catalogs: Sequence[Catalog], skill_id: str) -> str:
    for catalog in catalogs:
        try:
            return catalog.skill(skill_id).category
        except KeyError:
            continue
    return "(not in catalog)"


def _skill_name(catalogs: Sequence[Catalog], skill_id: str) -> str:
    for catalog in catalogs:
        try:
            return catalog.skill(skill_id).name
        except KeyError:
            continue
    return skill_id


# --- the composition law ---------------------------------------------------------------------


@dataclass(frozen=True)
class CompositionRow:
    """All skills met at one k: observed, predicted by independence, and their ratios.

    `observed.n` counts graded texts (a Wilson interval when each item has one graded
    text, else the item bootstrap); `predicted`, `ratio` (observed / predicted) and
    `power_ratio` (observed(k) / observed(1)^k) are None at k = 1 or where they cannot be
    computed; the ratios' p tests "ratio = 1" (normal, with the bootstrap standard error).
    Where no text (or every text) met all skills, the resamples cannot vary: the observed
    rate then has a Wilson interval, and the ratios that interval divided by the
    denominator, without a test.
    """

    k: int
    items: int
    observed: Estimate
    predicted: Estimate | None
    ratio: Estimate | None
    power_ratio: Estimate | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "items": self.items,
            "texts": self.observed.n,
            "observed": _estimate(self.observed),
            "predicted": _optional(self.predicted),
            "ratio": _optional(self.ratio),
            "power_ratio": _optional(self.power_ratio),
        }


@dataclass
class CompositionLaw:
    """The composition law of one run under one judge."""

    run_id: str
    student: str
    judge: str
    predicted_from: str  # where the per-skill rates of the prediction come from
    rows: list[CompositionRow]
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "student": self.student,
            "judge": self.judge,
            "predicted_from": self.predicted_from,
            "resamples": self.resamples,
            "rows": [r.to_dict() for r in self.rows],
        }


FROM_K1 = "success rates on the k = 1 texts"
FROM_SAME_K = "success rates on the other items of the same k"


@dataclass
class _Entries:
    """Items and their (item, skill) entries at one k, entries grouped by item."""

    k: int
    items: np.ndarray  # the run's indices of the items of this k
    texts: np.ndarray  # graded texts per item
    all_met: np.ndarray  # texts with every skill met, per item
    item_of: np.ndarray  # per entry: position of its item in `items`
    skill: np.ndarray  # per entry: local skill index
    met: np.ndarray  # per entry: texts that met the skill
    item_met: np.ndarray = field(init=False)  # per item: `met` summed over its entries
    order: np.ndarray = field(init=False)  # entries sorted by skill
    starts: np.ndarray = field(init=False)  # where each present skill begins in `order`
    present: np.ndarray = field(init=False)  # the skills present, in `order`'s order

    def __post_init__(self) -> None:
        self.item_met = self.met.reshape(-1, self.k).sum(axis=1)
        self.order = np.argsort(self.skill, kind="stable")
        sorted_skills = self.skill[self.order]
        self.present, self.starts = np.unique(sorted_skills, return_index=True)

    def per_skill(self, values: np.ndarray, n_skills: int) -> np.ndarray:
        """Sum `values` (resamples × entries) by skill: resamples × n_skills."""
        out = np.zeros((values.shape[0], n_skills))
        if len(self.order):
            out[:, self.present] = np.add.reduceat(values[:, self.order], self.starts, axis=1)
        return out


def _entries_by_k(texts: Sequence[_Text], skill_index: Mapping[str, int]) -> dict[int, _Entries]:
    per_item: dict[int, tuple[int, tuple[str, ...], list[int], list[int]]] = {}
    for t in texts:
        _, _, counts, met = per_item.setdefault(t.item, (t.k, t.skills, [0, 0], [0] * t.k))
        counts[0] += 1
        counts[1] += all(t.met)
        for j, m in enumerate(t.met):
            met[j] += m
    by_k: dict[int, list[int]] = defaultdict(list)
    for item, (k, *_) in per_item.items():
        by_k[k].append(item)
    out = {}
    for k, items in sorted(by_k.items()):
        out[k] = _Entries(
            k=k,
            items=np.array(items),
            texts=np.array([per_item[i][2][0] for i in items], dtype=float),
            all_met=np.array([per_item[i][2][1] for i in items], dtype=float),
            item_of=np.repeat(np.arange(len(items)), k),
            skill=np.array([skill_index[s] for i in items for s in per_item[i][1]], dtype=np.intp),
            met=np.array([m for i in items for m in per_item[i][3]], dtype=float),
        )
    return out


def _observed(e: _Entries, w: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w @ e.all_met) / (w @ e.texts)


def _k1_rates(e: _Entries, w: np.ndarray, n_skills: int) -> np.ndarray:
    """Each skill's success rate on the k = 1 texts, shrunk towards the pooled rate."""
    wt = w[:, e.item_of]
    hits = e.per_skill(wt * e.met, n_skills)
    seen = e.per_skill(wt * e.texts[e.item_of], n_skills)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = hits.sum(axis=1) / seen.sum(axis=1)
        return (hits + PSEUDO_COUNT * pooled[:, None]) / (seen + PSEUDO_COUNT)


def _same_k_rates(e: _Entries, w: np.ndarray, n_skills: int) -> np.ndarray:
    """Per entry, its skill's rate on the other items of the same k (shrunk the same way)."""
    wt = w[:, e.item_of]
    own_hits = wt * e.met
    own_seen = wt * e.texts[e.item_of]
    hits = e.per_skill(own_hits, n_skills)[:, e.skill] - own_hits
    seen = e.per_skill(own_seen, n_skills)[:, e.skill] - own_seen
    # An entry's item, over its k entries: its weight times the item's hits, and k times
    # the entry's own texts (every entry of an item has the same). All counts: exact.
    item_hits = wt * e.item_met[e.item_of]
    item_seen = e.k * own_seen
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (own_hits.sum(axis=1)[:, None] - item_hits) / (
            own_seen.sum(axis=1)[:, None] - item_seen
        )
        return (hits + PSEUDO_COUNT * pooled) / (seen + PSEUDO_COUNT)


def _predicted(e: _Entries, w: np.ndarray, entry_rates: np.ndarray) -> np.ndarray:
    product = entry_rates.reshape(len(w), -1, e.k).prod(axis=2)
    weights = w * e.texts
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights * product).sum(axis=1) / weights.sum(axis=1)


def _law_statistics(
    by_k: Mapping[int, _Entries], weights: Mapping[int, np.ndarray], n_skills: int
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per k: observed, predicted and observed(1)^k, one value per resample. `weights[k]`
    (resamples × items of that k) says how often each item was drawn."""
    base = by_k.get(1)
    k1_rates = _k1_rates(base, weights[1], n_skills) if base else None
    k1_observed = _observed(base, weights[1]) if base else None
    out = {}
    for k, e in by_k.items():
        wk = weights[k]
        observed = _observed(e, wk)
        nan = np.full(len(wk), np.nan)
        if k == 1:
            out[k] = (observed, nan, nan)
            continue
        rates = k1_rates[:, e.skill] if k1_rates is not None else _same_k_rates(e, wk, n_skills)
        power = k1_observed**k if k1_observed is not None else nan
        out[k] = (observed, _predicted(e, wk, rates), power)
    return out


def composition_law(
    graded: _Graded,
    *,
    level: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
    cell_budget: int | None = None,
) -> CompositionLaw | None:
    """The composition law of one run under one judge (None: nothing graded).

    `cell_budget` bounds the work (resamples × entries) for callers that must stay fast
    on big runs, such as every report: the resamples drop to fit it, never below
    `MIN_RESAMPLES`. The law records how many it used.
    """
    if not graded.texts:
        return None
    skill_index = {s: i for i, s in enumerate(sorted({s for t in graded.texts for s in t.skills}))}
    by_k = _entries_by_k(graded.texts, skill_index)
    n_skills = len(skill_index)
    point = _law_statistics(
        by_k, {k: np.ones((1, len(e.items))) for k, e in by_k.items()}, n_skills
    )
    # One random stream per k: resample r of each k is the same whatever the chunk size.
    rngs = {k: np.random.default_rng([seed, k]) for k in by_k}
    entries = sum(len(e.skill) + len(e.items) for e in by_k.values())
    if cell_budget is not None:
        resamples = min(resamples, max(MIN_RESAMPLES, cell_budget // max(1, entries)))
    per_row = max(1, entries)
    chunk_rows = min(max(_CHUNK_ROWS, _CHUNK_CELLS // per_row), _CHUNK_MAX_CELLS // per_row)
    chunk = max(1, min(resamples, chunk_rows))
    draws: dict[int, list[np.ndarray]] = {k: [] for k in by_k}
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        weights = {k: _resample_weights(rngs[k], len(e.items), size) for k, e in by_k.items()}
        for k, stats in _law_statistics(by_k, weights, n_skills).items():
            draws[k].append(np.stack(stats))
    rows = []
    for k, e in by_k.items():
        sample = np.concatenate(draws[k], axis=1)  # observed, predicted, power × resamples
        observed, predicted, power = (float(v[0]) for v in point[k])
        texts, hits = int(e.texts.sum()), int(e.all_met.sum())
        boundary = hits in (0, texts)  # every resample alike: the bootstrap cannot vary
        if boundary or np.all(e.texts == 1):
            low, high = wilson_interval(hits, texts, level=level)
            observed_estimate = Estimate(observed, low, high, float("nan"), texts)
        else:
            observed_estimate = _rate(observed, sample[0], texts, level)
        has_prediction = k > 1 and math.isfinite(predicted)
        ratios: list[Estimate | None] = [None, None]
        if has_prediction:
            with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 resamples: nan
                ratios = [
                    _ratio(observed_estimate, base, sample[0] / d, level, len(e.items), boundary)
                    for base, d in ((predicted, sample[1]), (power, sample[2]))
                ]
        rows.append(
            CompositionRow(
                k=k,
                items=len(e.items),
                observed=observed_estimate,
                predicted=_rate(predicted, sample[1], texts, level) if has_prediction else None,
                ratio=ratios[0],
                power_ratio=ratios[1],
            )
        )
    return CompositionLaw(
        run_id=graded.run_id,
        student=graded.student,
        judge=graded.judge,
        predicted_from=FROM_K1 if 1 in by_k else FROM_SAME_K,
        rows=rows,
        resamples=resamples,
    )


def _resample_weights(rng: np.random.Generator, n: int, resamples: int) -> np.ndarray:
    """How often each of `n` items is drawn in each resample of n draws with replacement
    (resamples × n)."""
    # floor(uniform × n): as uniform as rng.integers and several times faster here
    draws = (rng.random((resamples, n)) * n).astype(np.intp)
    draws += np.arange(resamples)[:, None] * n
    return np.bincount(draws.ravel(), minlength=resamples * n).reshape(resamples, n).astype(float)


def _rate(value: float, draws: np.ndarray, n: int, level: float) -> Estimate:
    """A rate with its bootstrap interval (no test: p is nan)."""
    return dataclasses.replace(bootstrap_estimate(value, draws, n, level=level), p=float("nan"))


def _ratio(
    observed: Estimate,
    denominator: float,
    draws: np.ndarray,
    level: float,
    n: int,
    boundary: bool,
) -> Estimate | None:
    """observed / denominator with its bootstrap interval and the test of ratio = 1.

    At a `boundary` (no text, or every text, met all skills) the resamples cannot vary:
    the interval is then the observed rate's (Wilson) interval over the denominator, and
    there is no test. None where the denominator is not positive (nan: not computed).
    """
    if not denominator > 0:
        return None
    value = observed.value / denominator
    if boundary:
        return Estimate(
            value, observed.low / denominator, observed.high / denominator, float("nan"), n
        )
    return bootstrap_estimate(value, draws, n, null=1.0, level=level)


# --- pair interactions -----------------------------------------------------------------------


@dataclass(frozen=True)
class PairInteraction:
    """Two skills graded together: how often both were met against independence.

    `lift` = P(both met) / (P(a met) P(b met)) over the texts that asked for both, with a
    delta-method interval on the log scale (half a count added to each cell) and the p of
    Fisher's exact test; `q` is its Benjamini-Hochberg adjusted p-value.
    """

    skills: tuple[str, str]
    names: tuple[str, str]
    texts: int
    both: int
    first: int  # texts that met skills[0]
    second: int  # texts that met skills[1]
    lift: Estimate
    q: float
    flagged: bool

    @property
    def direction(self) -> str:
        return "harder together" if self.lift.value < 1 else "easier together"

    def to_dict(self) -> dict[str, Any]:
        return {
            "skills": list(self.skills),
            "names": list(self.names),
            "texts": self.texts,
            "both_met": self.both,
            "first_met": self.first,
            "second_met": self.second,
            "lift": _estimate(self.lift),
            "q": _number(self.q),
            "flagged": self.flagged,
            "direction": self.direction,
        }


@dataclass
class PairInteractions:
    """Every skill pair of one run under one judge with enough texts, by p."""

    run_id: str
    student: str
    judge: str
    min_count: int
    fdr: float
    tested: list[PairInteraction]
    untested: int  # pairs graded together on fewer than `min_count` texts

    @property
    def flagged(self) -> list[PairInteraction]:
        return [p for p in self.tested if p.flagged]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "student": self.student,
            "judge": self.judge,
            "min_count": self.min_count,
            "fdr": self.fdr,
            "tested": len(self.tested),
            "untested": self.untested,
            "flagged": [p.to_dict() for p in self.flagged],
            "pairs": [p.to_dict() for p in self.tested],
        }


def fisher_exact_p(both: int, first: int, second: int, n: int) -> float:
    """Two-sided p of Fisher's exact test for a 2×2 table given by its margins.

    Sums the hypergeometric probabilities of every table with these margins that is no
    more likely than the observed one.
    """

    def log_comb(a: int, b: int) -> float:
        return math.lgamma(a + 1) - math.lgamma(b + 1) - math.lgamma(a - b + 1)

    low, high = max(0, first + second - n), min(first, second)
    logs = [
        log_comb(first, x) + log_comb(n - first, second - x) - log_comb(n, second)
        for x in range(low, high + 1)
    ]
    observed = logs[both - low]
    return min(1.0, sum(math.exp(v) for v in logs if v <= observed + 1e-7))


def lift_estimate(both: int, first: int, second: int, n: int, *, level: float = 0.95) -> Estimate:
    """P(both) / (P(a) P(b)) from a 2×2 table, with a delta-method interval for its log
    (half a count added to each cell) and Fisher's exact p."""
    value = both * n / (first * second) if first and second else float("nan")
    cells = np.array([both, first - both, second - both, n - first - second + both]) + 0.5
    pi = cells / cells.sum()
    pa, pb = pi[0] + pi[1], pi[0] + pi[2]
    gradient = np.array([1 / pi[0] - 1 / pa - 1 / pb, -1 / pa, -1 / pb, 0.0])
    se = math.sqrt(max(0.0, float(gradient**2 @ pi) - 1.0) / cells.sum())
    centre = math.log(pi[0] / (pa * pb))
    q = z_quantile(level)
    p = fisher_exact_p(both, first, second, n)
    return Estimate(value, math.exp(centre - q * se), math.exp(centre + q * se), p, n)


def pair_interactions(
    graded: _Graded, *, level: float = 0.95, min_count: int = 5
) -> PairInteractions:
    """Test every skill pair graded together on at least `min_count` texts."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for t in graded.texts:
        met = dict(zip(t.skills, t.met, strict=True))
        for a, b in combinations(sorted(t.skills), 2):
            c = counts[(a, b)]
            c[0] += 1
            c[1] += met[a] and met[b]
            c[2] += met[a]
            c[3] += met[b]
    catalogs = [graded.catalog]
    enough = {pair: c for pair, c in counts.items() if c[0] >= min_count}
    lifts = {pair: lift_estimate(c[1], c[2], c[3], c[0], level=level) for pair, c in enough.items()}
    qs = benjamini_hochberg([e.p for e in lifts.values()])
    fdr = 1 - level
    tested = [
        PairInteraction(
            skills=pair,
            names=(_skill_name(catalogs, pair[0]), _skill_name(catalogs, pair[1])),
            texts=enough[pair][0],
            both=enough[pair][1],
            first=enough[pair][2],
            second=enough[pair][3],
            lift=lift,
            q=q,
            flagged=q <= fdr,
        )
        for (pair, lift), q in zip(lifts.items(), qs, strict=True)
    ]
    tested.sort(key=lambda p: (p.lift.p, p.skills))
    return PairInteractions(
        run_id=graded.run_id,
        student=graded.student,
        judge=graded.judge,
        min_count=min_count,
        fdr=fdr,
        tested=tested,
        untested=len(counts) - len(enough),
    )


# --- novelty ---------------------------------------------------------------------------------


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
            "share": _number(self.share),
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


# --- the whole analysis ----------------------------------------------------------------------


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
    per_judge: dict[str, list[_Graded]] = defaultdict(list)
    composition, pairs, limits = [], [], []
    for scores in runs:
        run_id = scores.run["id"]
        for judge in scores.judges:
            graded = _graded(scores, judge)
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


# --- JSON without NaN ------------------------------------------------------------------------


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _estimate(e: Estimate) -> dict[str, Any]:
    return {k: v if isinstance(v, int) else _number(v) for k, v in e.to_dict().items()}


def _optional(e: Estimate | None) -> dict[str, Any] | None:
    return None if e is None else _estimate(e)
