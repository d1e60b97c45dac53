"""Human verification of generated questions: decisions, the queue, what the page shows.

The questions that survive `math generate`'s filters wait for a person, who accepts,
edits (question, solution, answer) or rejects each one in the review app
(`skillmix review RUN`). A decision is a store record (`DECISION_KIND`, one per candidate
and reviewer, keyed by both) holding the reviewer's name, the time, the text decided on
and, for an edit, the original text too; a reviewer who decides again replaces their
decision and the earlier one moves to its `history`. When several reviewers decided, the
latest decision counts (`final_decisions`): only accepted and edited questions are
exported, with the edit applied.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from skillmix.errors import InputError
from skillmix.math.generate import SURVIVOR, Candidate, StoredGenerateRun
from skillmix.math.generate_filters import REASONS
from skillmix.store import Store

DECISION_KIND = "math.generate.decision"
DECISIONS = ("accept", "edit", "reject")
EXPORTED = frozenset({"accept", "edit"})
EDITABLE = ("question", "solution", "answer")
MAX_TEXT_CHARS = 20_000  # a question or a solution; a longer edit is refused
MAX_NOTE_CHARS = 1_000


@dataclass(frozen=True)
class Decision:
    """One reviewer's decision on one generated question.

    `question`, `solution` and `answer` are the text decided on (the edit, for "edit");
    `original` is the candidate's text when it was edited (empty otherwise), `changed`
    names the fields the edit changed, and `history` holds the reviewer's earlier
    decisions on the same question, oldest first.
    """

    candidate_id: str
    reviewer: str
    decision: str  # "accept", "edit" or "reject"
    created: float  # seconds since the epoch
    question: str
    solution: str
    answer: str
    original: dict[str, str] = field(default_factory=dict)
    changed: tuple[str, ...] = ()
    note: str = ""
    history: tuple[dict[str, Any], ...] = ()

    @property
    def exported(self) -> bool:
        return self.decision in EXPORTED

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            **{
                **data,
                "changed": tuple(data.get("changed", ())),
                "history": tuple(data.get("history", ())),
            }
        )


def decision_key(candidate_id: str, reviewer: str) -> str:
    """The store key of a reviewer's decision on a candidate (unambiguous for any names)."""
    return json.dumps([candidate_id, reviewer], ensure_ascii=False)


def _text(value: Any, name: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be text")
    if not value.strip() and not allow_empty:
        raise InputError(f"{name} must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise InputError(f"{name} must be at most {MAX_TEXT_CHARS} characters")
    return value.strip()


def put_decision(
    store: Store,
    run_id: str,
    candidate: Candidate,
    reviewer: str,
    decision: str,
    *,
    question: str | None = None,
    solution: str | None = None,
    answer: str | None = None,
    note: str = "",
    now: float | None = None,
) -> Decision:
    """Store `reviewer`'s decision on a surviving candidate and return it.

    For "edit", the fields not given keep the candidate's text; an edit that changes
    nothing is stored as an edit with no `changed` fields. Raises InputError for an
    unknown decision, a candidate that did not survive the filters, an empty reviewer
    name or edited text, or text beyond the bounds.
    """
    name = reviewer.strip()
    if not name:
        raise InputError("a decision needs the reviewer's name")
    if decision not in DECISIONS:
        raise InputError(f"unknown decision {decision!r}: use one of {', '.join(DECISIONS)}")
    if candidate.status != SURVIVOR:
        raise InputError(
            f"candidate {candidate.id} was {candidate.status} by the automatic filters "
            f"({', '.join(candidate.reasons) or 'no reason'}): only survivors are reviewed"
        )
    if len(note) > MAX_NOTE_CHARS:
        raise InputError(f"the note must be at most {MAX_NOTE_CHARS} characters")
    original = {
        "question": candidate.question,
        "solution": candidate.solution,
        "answer": candidate.answer or "",
    }
    decided = dict(original)
    if decision == "edit":
        given = {"question": question, "solution": solution, "answer": answer}
        for key, value in given.items():
            if value is not None:
                decided[key] = _text(value, key, allow_empty=key == "solution")
    elif any(v is not None for v in (question, solution, answer)):
        raise InputError(f"only an edit changes the text, not {decision!r}")
    changed = tuple(k for k in EDITABLE if decided[k] != original[k])
    earlier = store.records(run_id, DECISION_KIND).get(decision_key(candidate.id, name))
    history: tuple[dict[str, Any], ...] = ()
    if earlier is not None:
        previous = dict(earlier)
        history = (*previous.pop("history", ()), previous)
    result = Decision(
        candidate.id,
        name,
        decision,
        time.time() if now is None else now,
        decided["question"],
        decided["solution"],
        decided["answer"],
        original if decision == "edit" else {},
        changed,
        note.strip(),
        history,
    )
    store.put_record(run_id, DECISION_KIND, decision_key(candidate.id, name), result.to_record())
    return result


def decisions(store: Store, run_id: str) -> list[Decision]:
    """Every reviewer's current decision in a run, oldest first."""
    found = [Decision.from_record(v) for v in store.records(run_id, DECISION_KIND).values()]
    return sorted(found, key=lambda d: (d.created, d.candidate_id, d.reviewer))


def final_decisions(found: Iterable[Decision]) -> dict[str, Decision]:
    """Candidate id -> the decision that counts: the latest (ties: the reviewer's name)."""
    final: dict[str, Decision] = {}
    for d in found:
        current = final.get(d.candidate_id)
        if current is None or (d.created, d.reviewer) > (current.created, current.reviewer):
            final[d.candidate_id] = d
    return final


def review_queue(
    run: StoredGenerateRun, found: Sequence[Decision], reviewer: str
) -> list[Candidate]:
    """The survivors `reviewer` has not decided yet: those nobody decided first, then those
    only others decided; each part in the order the pairs were drawn (a random order)."""
    name = reviewer.strip()
    if not name:
        raise InputError("a review queue belongs to a reviewer: give a name")
    mine = {d.candidate_id for d in found if d.reviewer == name}
    anyone = {d.candidate_id for d in found}
    waiting = [c for c in run.survivors if c.id not in mine]
    return sorted(waiting, key=lambda c: (c.id in anyone, c.position))


def reviewer_counts(found: Iterable[Decision]) -> dict[str, dict[str, int]]:
    """Reviewer -> decisions by kind ({"accept": 2, "edit": 1, "reject": 0})."""
    counts: dict[str, dict[str, int]] = {}
    for d in found:
        entry = counts.setdefault(d.reviewer, dict.fromkeys(DECISIONS, 0))
        entry[d.decision] += 1
    return dict(sorted(counts.items()))


def candidate_view(
    run: StoredGenerateRun, candidate: Candidate, found: Sequence[Decision], reviewer: str = ""
) -> dict[str, Any]:
    """What the review page shows of one candidate (plain JSON values).

    The skills with their definitions and examples, the question, solution and answer,
    every filter outcome with its meaning, the critiques and independent solves, the
    teacher's conversation, and the decisions on it (the reviewer's own apart).
    """
    skills = []
    for skill_id in candidate.skills:
        try:
            s = run.catalog.skill(skill_id)
        except KeyError:
            skills.append({"id": skill_id, "name": skill_id, "definition": "", "example": ""})
            continue
        skills.append(
            {"id": s.id, "name": s.name, "definition": s.definition, "example": s.example}
        )
    mine = next(
        (d for d in found if d.candidate_id == candidate.id and d.reviewer == reviewer), None
    )
    return {
        "id": candidate.id,
        "position": candidate.position,
        "status": candidate.status,
        "skills": skills,
        "question": candidate.question,
        "solution": candidate.solution,
        "answer": candidate.answer or "",
        "refinements": candidate.refinements,
        "filters": [
            {**f.to_dict(), "meaning": REASONS.get(f.reason, "")} for f in candidate.filters
        ],
        "critiques": [asdict(c) for c in candidate.critiques],
        "resolves": [asdict(r) for r in candidate.resolves],
        "turns": [asdict(t) for t in candidate.turns],
        "decisions": [
            {"reviewer": d.reviewer, "decision": d.decision, "created": d.created}
            for d in found
            if d.candidate_id == candidate.id
        ],
        "mine": mine.to_record() if mine is not None else None,
    }


def review_summary(run: StoredGenerateRun, found: Sequence[Decision]) -> dict[str, Any]:
    """The run's review state: survivors, decided, and what the final decisions are."""
    final = final_decisions(found)
    survivors = {c.id for c in run.survivors}
    counted = [d for cid, d in final.items() if cid in survivors]
    return {
        "survivors": len(survivors),
        "decided": len(counted),
        "accepted": sum(d.decision == "accept" for d in counted),
        "edited": sum(d.decision == "edit" for d in counted),
        "rejected": sum(d.decision == "reject" for d in counted),
        "reviewers": reviewer_counts(found),
    }
