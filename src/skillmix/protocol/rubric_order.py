"""The order in which a grading round shows the rubric's criteria to the judge.

With `rubric_order = "fixed"` (the default) every grading prompt lists the criteria as
`build_rubric` makes them: the skills in the item's presented order, then topic, sense
and (for `--protocol paper`) the sentence limit. With `"shuffled"` each grading round
lists them in its own seeded random order, so that the audit can compare verdicts by the
position a criterion was shown at (rubric-order bias).

The order is a pure function of the stored run: its seed and protocol, the item, the
generation round, the judge model and the grading round. The engine builds the prompt
with it, and a reader of a finished run recomputes it with `rubric_positions` from the
store alone. Verdicts are read by what they say, never by row position, so a shuffled
rubric is parsed exactly like a fixed one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from skillmix.models import parse_spec
from skillmix.prompts.rubric import Criterion
from skillmix.protocol.differences import rules
from skillmix.runtime.pool import derive_seed


def shown_criterion_ids(skill_ids: Sequence[str], protocol: str = "skillmix") -> list[str]:
    """The ids of the criteria a grading prompt shows, in the fixed (rubric) order.

    `skill_ids` are in the order the prompts list them; the ids are those of
    `prompts.rubric.build_rubric`. The sentence limit is shown only where the protocol
    shows it to the judge (`paper`).
    """
    ids = [f"skill:{s}" for s in skill_ids] + ["topic", "sense"]
    if rules(protocol).judge_sees_length:
        ids.append("length")
    return ids


def judge_model(judge: str) -> str:
    """`provider:model` of a judge as a run names it, without where it is served: a
    moved server (or a test's random port) keeps its orders, as it keeps its seeds."""
    spec = parse_spec(judge)
    return f"{spec.provider}:{spec.name}"


def shuffled_positions(criterion_ids: Sequence[str], seed: int) -> dict[str, int]:
    """A seeded random order of `criterion_ids`: criterion id -> 0-based position.

    Each id is ranked by a hash of (seed, id), so the order is the same on every machine
    and Python version and does not depend on the order the ids come in.
    """
    ranked = sorted(criterion_ids, key=lambda cid: (derive_seed(seed, "position", cid), cid))
    return {cid: position for position, cid in enumerate(ranked)}


def rubric_positions(
    config: Mapping[str, Any],
    item: Mapping[str, Any],
    gen_round: int,
    judge: str,
    grade_round: int,
) -> dict[str, int] | None:
    """Where each criterion was shown in one grading round: criterion id -> 0-based
    position, or None when the run shows the rubric in its fixed order.

    `config` is the run's stored config (`RunRow["config"]`, or `RunConfig.model_dump`),
    `item` its `ItemRow` (only `item_id` and `skill_ids`, in presented order, are read),
    `judge` the judge as the run names it (`GradeRow["judge"]`).
    """
    if config.get("rubric_order", "fixed") == "fixed":
        return None
    ids = shown_criterion_ids(item["skill_ids"], str(config.get("protocol", "skillmix")))
    seed = derive_seed(
        config.get("seed", 0), item["item_id"], gen_round, judge_model(judge), "rubric-order",
        grade_round,
    )  # fmt: skip
    return shuffled_positions(ids, seed)


def arrange(criteria: Sequence[Criterion], positions: Mapping[str, int] | None) -> list[Criterion]:
    """`criteria` in the order of `positions` (None: unchanged, a fixed rubric)."""
    if positions is None:
        return list(criteria)
    missing = [c.id for c in criteria if c.id not in positions]
    if missing:
        raise ValueError(f"no position for criteria {missing}: the rubric does not match the item")
    return sorted(criteria, key=lambda c: positions[c.id])
