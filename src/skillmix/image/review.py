"""What the review app needs of an image run: the queue, one image's questions, and
checking a person's answers (the app itself is `skillmix.review.server`).

A person answers the judge's own yes/no questions about an image, without seeing the
judge's answers. Their answers are stored as human verdicts (`Store.put_human_verdicts`:
the item id, `gen_round` 0, the concept id as criterion, 1 for yes and 0 for no), which
`image.agreement` compares with the judge.

The queue is a sample, not a ranking: every stored image in a seeded random order within
each k, the k values taking turns (smallest first), less those the reviewer answered.
Reviewing its first n images therefore gives a sample stratified by k, the same for
every reviewer with the same seed, so that their answers overlap. Preferring the images
the judge was unsure of (as the text queue does) would bias the agreement.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from skillmix.image.agreement import HUMAN_ROUND
from skillmix.store import HumanVerdictRow


@dataclass(frozen=True)
class ImageQueueEntry:
    """One image to review."""

    item_id: str
    k: int
    position: int  # the sample's place in the run

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "k": self.k, "position": self.position}


def answered_by(humans: Sequence[HumanVerdictRow], reviewer: str) -> dict[str, dict[str, int]]:
    """Item id -> concept id -> the reviewer's answer (1 yes, 0 no)."""
    found: dict[str, dict[str, int]] = defaultdict(dict)
    for h in humans:
        if h["reviewer"] == reviewer and h["gen_round"] == HUMAN_ROUND:
            found[h["item_id"]][h["criterion"]] = int(h["value"])
    return dict(found)


def image_queue(
    rows: Sequence[Mapping[str, Any]],
    humans: Sequence[HumanVerdictRow],
    *,
    reviewer: str,
    seed: int = 0,
) -> list[ImageQueueEntry]:
    """The images of a run (`ImageReport.rows`) that `reviewer` has not answered yet, in
    the order to review them (see the module docstring)."""
    name = reviewer.strip()
    if not name:
        raise ValueError("a review queue belongs to a reviewer: give a name")
    done = answered_by(humans, name)
    by_k: dict[int, list[ImageQueueEntry]] = defaultdict(list)
    for row in rows:
        item = row["item"]
        if row["image"] is not None:
            entry = ImageQueueEntry(item["item_id"], int(item["k"]), int(item.get("position", 0)))
            by_k[entry.k].append(entry)
    strata = [sorted(by_k[k], key=lambda e: _order(seed, e.item_id)) for k in sorted(by_k)]
    # The order of all images first, then the answered ones out: a stable order, so that
    # answering goes on through the k values in turn.
    order = [entry for turn in zip_longest(*strata) for entry in turn if entry is not None]
    return [entry for entry in order if entry.item_id not in done]


def review_item(row: Mapping[str, Any], own: Mapping[str, int]) -> dict[str, Any]:
    """What the review page shows of one image: the sample, its prompt and the questions,
    with the reviewer's own earlier answers (`own`); never the judge's answers."""
    item, prompt, image = row["item"], row["prompt"], row["image"]
    return {
        "item_id": item["item_id"],
        "k": item["k"],
        "position": item.get("position", 0),
        "object": item["object"]["name"],
        "prompt": prompt["prompt"] if prompt else "",
        "image": {
            "sha256": image["sha256"],
            "mime": image.get("mime"),
            "width": image.get("width"),
            "height": image.get("height"),
        },
        "concepts": [
            {
                "id": c["id"],
                "name": c["name"],
                "category": c.get("category_name") or c["category"],
                "question": c["question"],
            }
            for c in item["concepts"]
        ],
        "human": {c["id"]: own[c["id"]] for c in item["concepts"] if c["id"] in own},
    }


def check_answers(row: Mapping[str, Any], answers: Any) -> dict[str, int]:
    """A reviewer's answers {concept id: 0 or 1} for the image of `row`, or a ValueError
    that says what is wrong (an unknown concept, a value that is not 0 or 1)."""
    if not isinstance(answers, dict) or not answers:
        raise ValueError("verdicts must be a non-empty object {concept_id: 0 or 1}")
    item = row["item"]
    known = [c["id"] for c in item["concepts"]]
    unknown = [c for c in answers if c not in known]
    if unknown:
        shown = ", ".join(json.dumps(c)[:60] for c in unknown[:5])  # ASCII: escapes all odd
        raise ValueError(
            f"not a concept of image {item['item_id']}: {shown} (its concepts: {', '.join(known)})"
        )
    bad = [
        c
        for c, v in answers.items()
        if isinstance(v, bool) or not isinstance(v, int) or v not in (0, 1)
    ]
    if bad:
        raise ValueError(
            "answers must be 1 (yes) or 0 (no), got "
            + ", ".join(f"{json.dumps(c)}={json.dumps(answers[c])}"[:60] for c in bad[:5])
        )
    return {c: int(v) for c, v in answers.items()}


def _order(seed: int, item_id: str) -> int:
    digest = hashlib.sha256(f"{seed}|image|{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
