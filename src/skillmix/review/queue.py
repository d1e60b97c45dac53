"""Which generations a reviewer should check next, and why.

A human spot check is most informative where the judges are least sure, so the queue puts
first the generations whose stored grades disagree: judges that decide a criterion
differently, grading rounds of one judge that split, rounds that could not be parsed. It is
stratified by k (the k values take turns) so that every k gets checked early, and a
seeded hash breaks ties so the order is reproducible and does not change when other
entries leave the queue.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from skillmix.catalog.model import Catalog
from skillmix.scoring.metrics import majority_vote
from skillmix.store import Store

# How much each kind of disagreement adds to a generation's score.
JUDGES_DISAGREE = 2.0  # per criterion the judges' majority verdicts decide differently
ROUNDS_SPLIT = 2.0  # times the minority share of a judge's rounds, per criterion
UNPARSED_ROUND = 0.5  # per grading round that could not be parsed


@dataclass(frozen=True)
class QueueEntry:
    """One generation to review, with the reasons it was chosen."""

    item_id: str
    gen_round: int
    k: int
    topic_id: str
    disagreement: float  # 0 when every judge and every round agree
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        """The reasons as one line, e.g. "judges disagree on topic"."""
        return "; ".join(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "gen_round": self.gen_round,
            "k": self.k,
            "topic_id": self.topic_id,
            "disagreement": round(self.disagreement, 4),
            "reasons": list(self.reasons),
            "reason": self.reason,
        }


def review_queue(store: Store, run_id: str, *, reviewer: str, seed: int = 0) -> list[QueueEntry]:
    """The generations of a run that `reviewer` has not judged yet, best to check first.

    Within each k, higher disagreement comes first (ties in a seeded random order); the k
    values then take turns, smallest k first, until every k's list is used up.
    """
    name = reviewer.strip()
    if not name:
        raise ValueError("a review queue belongs to a reviewer: give a name")
    run = store.get_run(run_id)
    run_id = run["id"]
    catalog = store.get_catalog(run["catalog_hash"])
    items = {i["item_id"]: i for i in store.items(run_id)}
    reviewed = {
        (h["item_id"], h["gen_round"])
        for h in store.human_verdicts(run_id)
        if h["reviewer"] == name
    }
    rounds: dict[tuple[str, int], dict[str, list[dict[str, float] | None]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for g in store.grades(run_id):
        rounds[(g["item_id"], g["gen_round"])][g["judge"]].append(g["verdicts"])

    by_k: dict[int, list[QueueEntry]] = defaultdict(list)
    for gen in store.generations(run_id):
        key = (gen["item_id"], gen["round"])
        item = items.get(gen["item_id"])
        if item is None or key in reviewed:
            continue
        score, reasons = disagreement(rounds.get(key, {}), catalog)
        by_k[item["k"]].append(
            QueueEntry(gen["item_id"], gen["round"], item["k"], item["topic_id"], score, reasons)
        )

    def order(entry: QueueEntry) -> tuple[float, int]:
        return (-entry.disagreement, _tie_break(seed, entry.item_id, entry.gen_round))

    strata = [sorted(by_k[k], key=order) for k in sorted(by_k)]
    return [entry for turn in zip_longest(*strata) for entry in turn if entry is not None]


def disagreement(
    by_judge: dict[str, list[dict[str, float] | None]], catalog: Catalog
) -> tuple[float, tuple[str, ...]]:
    """Score one generation's grades (judge -> its rounds' verdicts, None = unparsed).

    Returns the score and the human-readable reasons behind it.
    """
    if not by_judge:
        return 0.0, ("not graded yet",)
    score = 0.0
    reasons: list[str] = []
    majorities: dict[str, dict[str, int]] = {}
    for judge, verdicts in by_judge.items():
        name = _short(judge)
        unparsed = sum(v is None for v in verdicts)
        if unparsed:
            score += UNPARSED_ROUND * unparsed
            plural = "s" if unparsed > 1 else ""
            reasons.append(f"{unparsed} unparsed grading round{plural} from {name}")
        parsed = [v for v in verdicts if v is not None]
        voted = majority_vote(parsed)
        if voted is not None:
            majorities[judge] = voted
        splits = []
        for criterion in _criteria(parsed):
            votes = [v[criterion] for v in parsed if criterion in v]
            met = sum(votes)
            minority = min(met, len(votes) - met)
            if minority:
                score += ROUNDS_SPLIT * minority / len(votes)
                splits.append(f"{_label(criterion, catalog)} ({met}–{len(votes) - met})")
        if splits:
            reasons.append(f"grading rounds of {name} split on {', '.join(splits)}")
    if len(majorities) > 1:
        contested = [
            criterion
            for criterion in _criteria(list(majorities.values()))
            if len({v[criterion] for v in majorities.values() if criterion in v}) > 1
        ]
        if contested:
            score += JUDGES_DISAGREE * len(contested)
            labels = ", ".join(_label(c, catalog) for c in contested)
            reasons.insert(0, f"judges disagree on {labels}")
    if not reasons:
        reasons.append("judges agree: random spot check")
    return score, tuple(reasons)


def _criteria(verdicts: Sequence[Mapping[str, float]]) -> list[str]:
    """Criterion ids in rubric order: skills first, then topic and sense."""
    found = {c for v in verdicts for c in v}
    return sorted(found, key=lambda c: (not c.startswith("skill:"), c != "topic", c))


def _label(criterion: str, catalog: Catalog) -> str:
    if criterion.startswith("skill:"):
        skill_id = criterion.removeprefix("skill:")
        try:
            return catalog.skill(skill_id).name
        except KeyError:
            return skill_id
    return criterion


def _short(judge: str) -> str:
    """`openai:gpt-4o@http://host/v1` -> `openai:gpt-4o`: enough to tell judges apart."""
    return judge.split("@", 1)[0]


def _tie_break(seed: int, item_id: str, gen_round: int) -> int:
    digest = hashlib.sha256(f"{seed}|{item_id}|{gen_round}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
