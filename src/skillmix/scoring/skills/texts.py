"""Graded texts: the unit every part of the skill analysis observes (one generation
round with a decided verdict), read from a scored run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from skillmix.catalog.model import Catalog
from skillmix.scoring.results import RunScores


@dataclass(frozen=True)
class GradedText:
    item: int  # index of its item within the run
    k: int
    skills: tuple[str, ...]
    met: tuple[int, ...]  # 1 where that skill's criterion was met


@dataclass
class GradedRun:
    """The graded texts of one run under one judge."""

    run_id: str
    student: str
    judge: str
    catalog: Catalog
    texts: list[GradedText]


def graded_run(scores: RunScores, judge: str) -> GradedRun:
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
            texts.append(GradedText(index, r.k, tuple(r.skill_ids), met))
    run = scores.run
    return GradedRun(run["id"], run["config"]["student"], judge, scores.catalog, texts)


def skill_name(catalogs: Sequence[Catalog], skill_id: str) -> str:
    for catalog in catalogs:
        try:
            return catalog.skill(skill_id).name
        except KeyError:
            continue
    return skill_id
