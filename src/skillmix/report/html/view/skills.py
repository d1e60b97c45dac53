"""The skill analysis of each run (`skillmix analyze`): difficulty, composition, pairs
and novelty."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from skillmix.report.html.view.common import ModelName, RunView, display_names, model_name
from skillmix.report.svg import IntervalRow, Point, Series, interval_plot, line_chart
from skillmix.scoring.skills import (
    CompositionLaw,
    DifficultyFit,
    PairInteractions,
    SkillDifficulty,
)
from skillmix.scoring.stats import Estimate

HARDEST_SHOWN = 5  # hardest and easiest skills listed per judge


@dataclass(frozen=True)
class SkillDifficultyRow:
    name: str
    category: str
    difficulty: str  # b [low, high]
    success: str
    texts: int
    sparse: bool  # too few texts: mostly the prior


@dataclass(frozen=True)
class CompositionViewRow:
    k: int
    texts: int
    observed: str
    predicted: str
    ratio: str
    power_ratio: str


@dataclass(frozen=True)
class PairRow:
    skills: str
    texts: int
    both: int
    lift: str
    q: str
    direction: str


@dataclass(frozen=True)
class JudgeSkills:
    """What one judge's verdicts on one run say about its skills."""

    judge: ModelName
    ability: str
    per_extra_skill: str  # "" when the run has one k
    categories_plot: Markup
    hardest: list[SkillDifficultyRow]
    easiest: list[SkillDifficultyRow]
    skills_total: int
    composition_plot: Markup | None  # None: a single k
    composition: list[CompositionViewRow]
    predicted_from: str
    pairs: list[PairRow]  # the flagged pairs
    pairs_note: str


@dataclass(frozen=True)
class NoveltyViewRow:
    k: int
    items: int
    distinct: int
    space: str
    share: str


@dataclass(frozen=True)
class RunSkills:
    label: str
    level: str  # "95%"
    judges: list[JudgeSkills]
    novelty: list[NoveltyViewRow]
    novelty_note: str
    limits: list[str]


def _iv(e: Estimate | None, digits: int = 2) -> str:
    if e is None or e.value != e.value:
        return "—"
    return f"{e.value:.{digits}f} [{e.low:.{digits}f}, {e.high:.{digits}f}]"


def _skill_rows(skills: Sequence[SkillDifficulty]) -> list[SkillDifficultyRow]:
    return [
        SkillDifficultyRow(
            s.name,
            s.category.replace("_", " "),
            _iv(s.difficulty),
            f"{s.success:.2f}",
            s.difficulty.n,
            s.sparse,
        )
        for s in skills
    ]


def _composition_plot(law: CompositionLaw, element_id: str) -> Markup | None:
    """All skills met by k: observed, independent skills, and observed(1)^k."""
    if len(law.rows) < 2:
        return None
    base = next((r.observed for r in law.rows if r.k == 1), None)
    observed = [
        Point(r.k, r.observed.value, r.observed.low, r.observed.high, r.items) for r in law.rows
    ]
    predicted = [
        Point(r.k, r.predicted.value, r.predicted.low, r.predicted.high, r.items)
        for r in law.rows
        if r.predicted is not None
    ]
    series = [Series("observed", observed), Series("independent skills", predicted)]
    if base is not None:
        power = [
            Point(r.k, base.value**r.k, base.low**r.k, base.high**r.k, r.items)
            for r in law.rows
            if r.k > 1
        ]
        series.append(Series("observed(1)^k", power))
    chart = line_chart(
        series, element_id=element_id, title="All skills met by k", y_label="all skills met"
    )
    return Markup(chart)  # svg.py escapes every label


def _judge_skills(
    fit: DifficultyFit | None,
    law: CompositionLaw | None,
    pairs: PairInteractions | None,
    judge: str,
    element_id: str,
) -> JudgeSkills:
    skills = fit.skills if fit else []
    categories = fit.categories if fit else []
    rows = [
        IntervalRow(
            f"{c.category.replace('_', ' ')} ({c.skills})",
            c.difficulty.value,
            c.difficulty.low,
            c.difficulty.high,
            note=f"success {c.success:.0%} over {c.difficulty.n} graded (text, skill) pairs",
        )
        for c in categories
    ]
    categories_plot = Markup(  # svg.py escapes every label
        interval_plot(
            rows,
            element_id=f"{element_id}-categories",
            title="Difficulty by category (skills graded)",
            x_label="difficulty b in logits (0 = average skill; higher is harder)",
        )
    )
    shown = min(HARDEST_SHOWN, len(skills) // 2)
    flagged = pairs.flagged if pairs else []
    pairs_note = ""
    if pairs is not None:
        pairs_note = (
            f"{len(pairs.tested)} pair(s) graded together on at least {pairs.min_count} texts "
            f"were tested ({pairs.untested} had fewer); {len(flagged)} differ from independence "
            f"at a {pairs.fdr:.0%} false discovery rate (Benjamini-Hochberg)."
        )
    return JudgeSkills(
        judge=model_name(judge),
        ability=_iv(fit.students[0].ability) if fit else "—",
        per_extra_skill=_iv(fit.per_extra_skill) if fit and fit.per_extra_skill else "",
        categories_plot=categories_plot,
        hardest=_skill_rows(skills[:shown]),
        easiest=_skill_rows(list(reversed(skills[len(skills) - shown :])) if shown else []),
        skills_total=len(skills),
        composition_plot=_composition_plot(law, f"{element_id}-composition") if law else None,
        composition=[
            CompositionViewRow(
                r.k,
                r.observed.n,
                _iv(r.observed),
                _iv(r.predicted),
                _iv(r.ratio),
                _iv(r.power_ratio),
            )
            for r in (law.rows if law else [])
        ],
        predicted_from=law.predicted_from if law else "",
        pairs=[
            PairRow(" + ".join(p.names), p.texts, p.both, _iv(p.lift), f"{p.q:.3g}", p.direction)
            for p in flagged
        ],
        pairs_note=pairs_note,
    )


def section(runs: Sequence[RunView]) -> list[RunSkills]:
    """Per run, what `skillmix analyze` shows: the analysis each report already holds."""
    blocks = []
    for index, r in enumerate(runs):
        analysis = r.report.skill_analysis
        if analysis is None:
            continue
        judges = []
        for j, judge in enumerate(r.run["config"]["judges"]):
            fit = next((f for f in analysis.difficulty if f.judge == judge), None)
            law = next((c for c in analysis.composition if c.judge == judge), None)
            pairs = next((p for p in analysis.pairs if p.judge == judge), None)
            if fit is None and law is None:
                continue
            judges.append(_judge_skills(fit, law, pairs, judge, f"skills-{index}-{j}"))
        novelty = analysis.novelty[0] if analysis.novelty else None
        rows = [
            NoveltyViewRow(n.k, n.items, n.distinct, f"{n.space:,}", f"{n.share:.3g}")
            for n in (novelty.rows if novelty else [])
        ]
        note = ""
        if novelty is not None:
            note = (
                f"Out of C(N,k)·T distinct items (N = {novelty.skills} skills, "
                f"T = {novelty.topics} topics of catalog {novelty.catalog})."
            )
        named = display_names([r])
        blocks.append(
            RunSkills(
                label=r.label,
                level=f"{analysis.level:.0%}",
                judges=judges,
                novelty=rows,
                novelty_note=note,
                limits=[named(limit) for limit in analysis.limits],
            )
        )
    return blocks
