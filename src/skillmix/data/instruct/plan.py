"""What each example asks for, fixed by the seed before any call is made (pure).

Every example draws from its own seed (`derive_seed`), so asking for more examples keeps
the first ones, and their cached answers; the shirkers are drawn once for the whole run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from skillmix.catalog.model import Catalog, Skill
from skillmix.data.instruct.config import PIPELINE, InstructConfig
from skillmix.runtime.pool import derive_seed

FALLBACK_QUERY_TYPE = "open-ended request"  # when the teacher names no query type


@dataclass(frozen=True)
class ExamplePlan:
    """What one example asks for, fixed by the seed before any call is made."""

    index: int
    skills: tuple[Skill, ...]
    query_type: str
    shirker: bool
    seed: int


def pick_skills(skills: Sequence[Skill], rng: random.Random) -> tuple[Skill, ...]:
    """A random pair of distinct skills, from different topics when the catalog allows."""
    if len(skills) < 2:
        return tuple(skills)
    first = rng.choice(skills)
    others = [s for s in skills if s.category != first.category]
    if not others:
        others = [s for s in skills if s.id != first.id]
    return first, rng.choice(others)


def plan_examples(
    catalog: Catalog, query_types: Sequence[str], config: InstructConfig
) -> list[ExamplePlan]:
    """Every example's skills, query type and shirker flag, from the seed alone.

    Each example draws from its own seed, so asking for more examples keeps the first ones
    (and their cached answers). Exactly `config.shirker_count` examples are shirkers.
    """
    shirkers = set(
        random.Random(derive_seed(config.seed, PIPELINE, "shirkers", config.examples)).sample(
            range(config.examples), config.shirker_count
        )
    )
    plans = []
    for index in range(config.examples):
        seed = derive_seed(config.seed, PIPELINE, "example", index)
        rng = random.Random(seed)
        skills = pick_skills(catalog.skills, rng)
        plans.append(
            ExamplePlan(index, skills, rng.choice(list(query_types)), index in shirkers, seed)
        )
    return plans
