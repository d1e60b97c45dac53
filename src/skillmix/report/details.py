"""Everything about each generation of a run as plain data: for the HTML report, the review
app and exports. Reads only the store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from skillmix.prompts.rubric import build_rubric
from skillmix.scoring.results import RunRows, RunScores
from skillmix.store import GradeRow, Store


def item_details(
    store: Store, scores: RunScores, texts: Mapping[str, tuple[str, str]] | None = None
) -> list[dict[str, Any]]:
    """One record per (item, generation round), with the task, both turns, the answer and
    every judge's grading rounds and decided verdicts. JSON-serialisable.

    `texts`: the run's call texts (`Store.call_texts`) when the caller has read them.
    """
    run_id = scores.run["id"]
    catalog = scores.catalog
    rows = scores.rows or RunRows(*store.run_tables(run_id))
    generations = {(g["item_id"], g["round"]): g for g in rows.generations}
    grades: dict[tuple[str, int], list[GradeRow]] = {}
    for g in rows.grades:
        grades.setdefault((g["item_id"], g["gen_round"]), []).append(g)
    decided = {(r.item_id, g.gen_round, r.judge): g for r in scores.items for g in r.generations}
    judge_names = scores.judges  # a property that walks every item: once, not per item
    if texts is None:
        texts = store.call_texts(run_id)

    def call_text(key: str) -> tuple[str, str] | None:
        if key in texts:
            return texts[key]
        call = store.get_call(key)
        return None if call is None else (call.messages[-1]["content"], call.response)

    skill_records: dict[str, dict[str, str]] = {}  # one record per skill, shared by items

    def skill_record(skill_id: str) -> dict[str, str]:
        if skill_id not in skill_records:
            s = catalog.skill(skill_id)
            skill_records[skill_id] = {
                "id": s.id,
                "name": s.name,
                "category": s.category,
                "definition": s.definition,
                "example": s.example,
            }
        return skill_records[skill_id]

    records = []
    for item in rows.items:
        skills = [catalog.skill(s) for s in item["skill_ids"]]
        topic = catalog.topic(item["topic_id"])
        rubric = build_rubric(skills, topic)
        for gen_round in range(scores.run["config"]["generation_rounds"]):
            gen = generations.get((item["item_id"], gen_round))
            if gen is None:
                continue
            turns = []
            for key in (gen["turn1_key"], gen["turn2_key"]):
                text = call_text(key)
                if text is not None:
                    turns.append({"prompt": text[0], "reply": text[1]})
            judges = []
            for judge in judge_names:
                rounds = []
                for g in grades.get((item["item_id"], gen_round), []):
                    if g["judge"] != judge:
                        continue
                    replies = [t[1] for k in g["call_keys"] if (t := call_text(k)) is not None]
                    rounds.append(
                        {
                            "round": g["grade_round"],
                            "status": g["status"],
                            "method": g["method"],
                            "verdicts": g["verdicts"],
                            "reason": g["reason"],
                            "raw": replies,
                        }
                    )
                result = decided.get((item["item_id"], gen_round, judge))
                judges.append(
                    {
                        "judge": judge,
                        "rounds": rounds,
                        "decided": result.decided if result else None,
                        "scores": vars(result.scores) if result and result.scores else None,
                        "penalized": result.penalized if result else [],
                    }
                )
            records.append(
                {
                    "item_id": item["item_id"],
                    "k": item["k"],
                    "gen_round": gen_round,
                    "topic": topic.name,
                    "skills": [skill_record(s) for s in item["skill_ids"]],
                    "criteria": [
                        {"id": c.id, "label": c.label, "kind": c.kind, "judged": c.judged}
                        for c in rubric
                    ],
                    "turns": turns,
                    "answer": gen["answer"],
                    "sentences": gen["sentences"],
                    "named": gen["named"],
                    "judges": judges,
                }
            )
    return records
