"""How hard each skill and category is: a Rasch-style logistic fit per judge (see the
package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from skillmix.catalog.model import Catalog
from skillmix.scoring.skills.texts import GradedRun, skill_name
from skillmix.scoring.stats import (
    Estimate,
    estimate_dict,
    wald,
)

PRIOR_SD = 2.0  # prior sd of skill and category difficulties (logits)
WIDE_PRIOR_SD = 10.0  # of abilities and γ: only keeps a perfect score finite
MIN_SKILL_OBSERVATIONS = 5  # fewer graded texts than this: the difficulty is marked sparse


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
            "difficulty": estimate_dict(self.difficulty),
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
            "difficulty": estimate_dict(self.difficulty),
            "skills": self.skills,
            "success": self.success,
        }


@dataclass(frozen=True)
class StudentAbility:
    run_id: str
    student: str
    ability: Estimate  # θ in logits; n: graded (text, skill) pairs

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "student": self.student,
            "ability": estimate_dict(self.ability),
        }


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
            else estimate_dict(self.per_extra_skill),
            "skills": [s.to_dict() for s in self.skills],
            "categories": [c.to_dict() for c in self.categories],
        }


def skill_difficulty(graded: Sequence[GradedRun], *, level: float = 0.95) -> DifficultyFit | None:
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
            name=skill_name(catalogs, sid),
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
