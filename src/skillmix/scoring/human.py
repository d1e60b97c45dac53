"""How often each judge agrees with the human reviewers (`skillmix review`).

The unit is one criterion of one generation round of one item that a human judged. The
judge's side is its decided verdict (majority over grading rounds, with the sentence limit
computed in code and the naming penalty applied), i.e. exactly what the run's scores use.
The human side is the reviewers' majority on that unit; a tie between reviewers leaves
the unit out. It sits with the other scoring modules, below the report and the review
app, which both show it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from skillmix.scoring.judges import COMBINED_JUDGE, cohen_kappa, combined_scores
from skillmix.scoring.results import ItemResult, RunScores
from skillmix.store import HumanVerdictRow, Store

HUMAN_CRITERIA = ("skills", "topic", "sense", "length", "all")

Unit = tuple[str, int, str]  # item id, generation round, criterion id


def human_majority(rows: list[HumanVerdictRow]) -> dict[Unit, int]:
    """The reviewers' majority per unit from `Store.human_verdicts` rows (ties left out)."""
    votes: dict[Unit, dict[str, int]] = defaultdict(dict)
    for row in rows:
        votes[(row["item_id"], row["gen_round"], row["criterion"])][row["reviewer"]] = int(
            row["value"]
        )
    majority: dict[Unit, int] = {}
    for unit, by_reviewer in votes.items():
        met = sum(by_reviewer.values())
        not_met = len(by_reviewer) - met
        if met != not_met:
            majority[unit] = int(met > not_met)
    return majority


def human_agreement(store: Store, scores: RunScores) -> list[dict[str, Any]]:
    """Judge-vs-human agreement per judge and criterion.

    One dict per judge (and the pseudo-judge "combined" when the run has several judges)
    and criterion group with at least one unit: "judge", "criterion" ("skills" pools every
    skill criterion, then "topic", "sense", "length", and "all" pools them all), "units",
    "agreement" (share of units where the judge's decided verdict equals the human
    majority) and "kappa" (Cohen's kappa; nan when undefined).
    """
    humans = human_majority(store.human_verdicts(scores.run["id"]))
    if not humans:
        return []
    results: list[ItemResult] = [*scores.items, *combined_scores(scores)]
    pairs: dict[tuple[str, str], tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for result in results:
        for gen in result.generations:
            if gen.decided is None:
                continue
            for criterion, judge_value in gen.decided.items():
                human = humans.get((result.item_id, gen.gen_round, criterion))
                if human is None:
                    continue
                group = "skills" if criterion.startswith("skill:") else criterion
                for key in (group, "all"):
                    judge_values, human_values = pairs[(result.judge, key)]
                    judge_values.append(int(judge_value))
                    human_values.append(human)

    judges = [*scores.judges, COMBINED_JUDGE] if len(scores.judges) > 1 else scores.judges
    rows = []
    for judge in judges:
        for criterion in HUMAN_CRITERIA:
            if (judge, criterion) not in pairs:
                continue
            judge_values, human_values = pairs[(judge, criterion)]
            agreed = sum(a == b for a, b in zip(judge_values, human_values, strict=True))
            rows.append(
                {
                    "judge": judge,
                    "criterion": criterion,
                    "units": len(judge_values),
                    "agreement": agreed / len(judge_values),
                    "kappa": cohen_kappa(judge_values, human_values),
                }
            )
    return rows
