"""Exporting a reviewed `math generate` run: `skillmix math export RUN --out DIR`.

Only the questions a person accepted or edited are exported (the latest decision counts,
`generate_review.final_decisions`), with the edit applied, through the writers every data
pipeline uses (`data.export`: records.jsonl as chat messages, records.parquet, hf/ for
`datasets.load_from_disk`) and the data card (`data.card`: card.md and card.json, with
the counts per skill pair, the rejections by filter and by reviewers, and the reviewers'
decisions). Everything left out is in rejected.jsonl with its reason.

`questions.jsonl` holds the same accepted questions in the plain layout other commands
read (`math eval --dataset`, `math square-law`), one JSON object per line:

    {"id": "...", "question": "...", "answer": "...", "solution": "...",
     "skills": ["skill_id", "skill_id"], "skill_names": ["...", "..."]}

`answer` is the final answer alone (as math-verify compares it), `solution` the worked
solution, `skills` the ids of the pair's skills in the run's catalog.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from skillmix.data.card import CardMeta, card_numbers, data_card, usage_counts
from skillmix.data.dedup import Rejection
from skillmix.data.export import FORMATS, export_records, write_rejections
from skillmix.data.records import DataRecord
from skillmix.math.answers import extract_final_answer
from skillmix.math.generate import (
    PIPELINE,
    REJECTED,
    SURVIVOR,
    Candidate,
    StoredGenerateRun,
    load_generate_run,
)
from skillmix.math.generate_filters import REASONS, SIMILARITY_METHOD
from skillmix.math.generate_review import (
    Decision,
    decisions,
    final_decisions,
    reviewer_counts,
)
from skillmix.store import Store

QUESTIONS_FILE = "questions.jsonl"
# Reasons a survivor is left out, beside the filters' (`generate_filters.REASONS`).
REVIEW_REASONS = {
    "human-rejected": "rejected by a reviewer",
    "not-reviewed": "survived the filters, not yet decided by a reviewer",
}


@dataclass
class GeneratedData:
    """What an export writes: the accepted records, the rest with reasons, the card."""

    run: StoredGenerateRun
    records: list[DataRecord]
    questions: list[dict[str, Any]]  # the questions.jsonl rows, in record order
    rejected: list[Rejection]
    meta: CardMeta
    per_pair: dict[str, dict[str, Any]] = field(default_factory=dict)  # by candidate id
    reviewers: dict[str, dict[str, int]] = field(default_factory=dict)
    filter_failures: dict[str, int] = field(default_factory=dict)


def record_id(run_id: str, candidate_id: str) -> str:
    """A record's id: stable for a run and a pair, so re-exports give the same ids."""
    return f"{run_id}:{candidate_id}"


def assistant_text(solution: str, answer: str) -> str:
    """The solution as the assistant's message, ending with the final answer boxed (added
    when the solution does not state that very answer, e.g. after an edit)."""
    text = solution.strip()
    if answer and extract_final_answer(text) != answer:
        tail = f"The final answer is \\boxed{{{answer}}}."
        text = f"{text}\n\n{tail}" if text else tail
    return text


def _record(run: StoredGenerateRun, candidate: Candidate, decision: Decision | None) -> DataRecord:
    question = decision.question if decision else candidate.question
    solution = decision.solution if decision else candidate.solution
    answer = decision.answer if decision else (candidate.answer or "")
    provenance: dict[str, Any] = {
        "run_id": run.run_id,
        "candidate_id": candidate.id,
        "catalog_hash": run.catalog.content_hash,
        "templates": run.config.get("templates_version", ""),
        "seed": run.config.get("seed"),
        "skill_names": list(candidate.skill_names),
        "answer": answer,
        "refinements": candidate.refinements,
        "call_keys": [t.call_key for t in candidate.turns],
        "resolve_keys": [r.call_key for r in candidate.resolves],
    }
    if decision is not None:
        provenance["review"] = {
            "reviewer": decision.reviewer,
            "decision": decision.decision,
            "created": decision.created,
            "changed": list(decision.changed),
            "original": decision.original,
            "note": decision.note,
        }
    agreeing = sum(r.agrees for r in candidate.resolves)
    scores = {"resolves_agreeing": float(agreeing)} if candidate.resolves else {}
    return DataRecord(
        id=record_id(run.run_id, candidate.id),
        pipeline=PIPELINE,
        messages=[
            {"role": "user", "content": question},
            {"role": "assistant", "content": assistant_text(solution, answer)},
        ],
        skills=list(candidate.skills),
        teacher=str(run.config.get("teacher", "")),
        k=2,
        scores=scores,
        provenance=provenance,
    )


def question_row(record: DataRecord) -> dict[str, Any]:
    """A record in the plain layout of questions.jsonl (see the module's docstring)."""
    return {
        "id": record.id,
        "question": record.messages[0]["content"],
        "answer": record.provenance["answer"],
        "solution": record.messages[1]["content"],
        "skills": list(record.skills),
        "skill_names": list(record.provenance["skill_names"]),
    }


def collect_export(store: Store, run_id: str) -> GeneratedData:
    """The accepted questions of a generate run, the rest with reasons, and the card.

    Raises InputError when the run is not a generate run or is not done.
    """
    from skillmix.errors import InputError

    run = load_generate_run(store, run_id)
    if run.status != "done":
        raise InputError(
            f"run {run.run_id} is {run.status}, not done: its questions are not all written",
            hint="re-run the same `skillmix math generate` command to finish it",
        )
    found = decisions(store, run.run_id)
    final = final_decisions(found)
    records: list[DataRecord] = []
    rejected: list[Rejection] = []
    per_pair: dict[str, dict[str, Any]] = {}
    for c in run.candidates:
        decision = final.get(c.id)
        record = _record(run, c, decision if c.status == SURVIVOR else None)
        if c.status == REJECTED:
            outcome, detail = c.reason, _detail(c)
            rejected.append(Rejection(record, outcome, detail))
        elif decision is None:
            outcome = "not-reviewed"
            rejected.append(Rejection(record, outcome, REVIEW_REASONS[outcome]))
        elif not decision.exported:
            outcome = "human-rejected"
            rejected.append(Rejection(record, outcome, f"rejected by {decision.reviewer}"))
        else:
            outcome = "accepted" if decision.decision == "accept" else "edited"
            records.append(record)
        per_pair[c.id] = {
            "skill_names": list(c.skill_names),
            "skills": list(c.skills),
            "kept": int(outcome in ("accepted", "edited")),
            "rejected": int(outcome not in ("accepted", "edited")),
            "outcome": outcome,
        }
    failures = Counter(f.reason for c in run.candidates for f in c.filters if f.outcome == "fail")
    return GeneratedData(
        run,
        records,
        [question_row(r) for r in records],
        rejected,
        card_meta(store, run, found),
        per_pair,
        reviewer_counts(found),
        dict(sorted(failures.items())),
    )


def _detail(candidate: Candidate) -> str:
    failed = [f for f in candidate.filters if f.outcome == "fail"]
    return "; ".join(f"{f.name}: {f.detail}" for f in failed)


def card_meta(store: Store, run: StoredGenerateRun, found: Sequence[Decision]) -> CardMeta:
    """What the data card says about how the questions were made and reviewed."""
    cfg = run.config
    warnings = run.warnings()
    waiting = [c for c in run.survivors if c.id not in {d.candidate_id for d in found}]
    if waiting:
        warnings.append(
            f"{len(waiting)} question(s) survived the filters but have no reviewer's decision "
            "yet: they are left out (`skillmix review RUN` to decide them)."
        )
    meta: dict[str, Any] = {
        "pipeline": PIPELINE,
        "run_id": run.run_id,
        "teacher": str(cfg.get("teacher", "")),
        "templates": str(cfg.get("templates_version", "")),
        "k": [2],
        "keep_rule": "passes every automatic filter, then accepted (or edited) by a reviewer; "
        "the latest decision counts",
        "dedup_threshold": float(cfg.get("near_duplicate", 0.8)),
        "dedup_method": SIMILARITY_METHOD,
        "catalog": {
            "name": run.catalog.name,
            "hash": run.catalog.content_hash,
            "skills": len(run.catalog.skills),
        },
        "skill_categories": {s.id: s.category for s in run.catalog.skills},
        "usage": usage_counts(store.usage(run.run_id)),
        "warnings": warnings,
        "seed": int(cfg.get("seed", 0)),
        "teacher_decoding": {
            "temperature": cfg.get("temperature"),
            "max_tokens": cfg.get("max_tokens"),
            "critique_max_tokens": cfg.get("critique_max_tokens"),
            "parse_attempts": cfg.get("parse_attempts"),
            "structured": cfg.get("structured"),
        },
        "rejection_reasons": {**REASONS, **REVIEW_REASONS},
    }
    settings = {
        "verifier": cfg.get("verifier") or f"{cfg.get('teacher')} (the teacher, other seeds)",
        "pairs": cfg.get("pairs"),
        "pool": cfg.get("pool"),
        "pool_hash": cfg.get("pool_hash"),
        "resolves": cfg.get("resolves"),
        "min_agreeing": cfg.get("min_agreeing") or cfg.get("resolves"),
        "refine_rounds": cfg.get("refine_rounds"),
    }
    return cast(CardMeta, {**meta, **settings})


def card_markdown(data: GeneratedData) -> str:
    """The data card: the shared card, then the pairs, filters and reviewers."""
    lines = [data_card(data.records, data.rejected, data.meta).rstrip(), ""]
    lines += [
        "## Per skill pair",
        "",
        "| skill pair | candidate | outcome |",
        "|---|---|---|",
    ]
    for cid, entry in data.per_pair.items():
        pair = " + ".join(entry["skill_names"])
        lines.append(f"| {_cell(pair)} | `{_cell(cid)}` | {entry['outcome']} |")
    lines += ["", "## Automatic filters", ""]
    lines += ["Every failed filter, also after the first (a question may fail several).", ""]
    lines += ["| filter reason | questions |", "|---|---:|"]
    lines += [f"| {_cell(REASONS.get(r, r))} | {n} |" for r, n in data.filter_failures.items()]
    if not data.filter_failures:
        lines.append("| none failed | 0 |")
    lines += ["", "## Reviewers", "", "| reviewer | accepted | edited | rejected |"]
    lines.append("|---|---:|---:|---:|")
    for name, counts in data.reviewers.items():
        lines.append(
            f"| {_cell(name)} | {counts['accept']} | {counts['edit']} | {counts['reject']} |"
        )
    if not data.reviewers:
        lines.append("| nobody yet | 0 | 0 | 0 |")
    return "\n".join([*lines, ""])


def _cell(text: str) -> str:
    """Text inside a Markdown table cell: pipes escaped, on one line."""
    return " ".join(str(text).split()).replace("|", "\\|")


def card_document(data: GeneratedData) -> dict[str, Any]:
    """card.json: the shared card's numbers, then the pairs, filters and reviewers."""
    numbers = card_numbers(data.records, data.rejected, data.meta)
    return {
        **numbers,
        "per_pair": data.per_pair,
        "filter_failures": data.filter_failures,
        "reviewers": data.reviewers,
    }


def write_export(
    data: GeneratedData, out_dir: str | Path, formats: Sequence[str] = FORMATS
) -> dict[str, Path]:
    """Write the records in `formats`, questions.jsonl, rejected.jsonl, card.md and card.json.

    The records go first: a missing optional package fails before any file is written.
    """
    out = Path(out_dir)
    card = card_markdown(data)
    paths = dict(export_records(data.records, out, formats, description=card))
    questions = out / QUESTIONS_FILE
    with questions.open("w", encoding="utf-8") as f:
        for row in data.questions:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    paths["questions"] = questions
    paths["rejected"] = out / "rejected.jsonl"
    write_rejections(data.rejected, paths["rejected"])
    paths["card"] = out / "card.md"
    paths["card"].write_text(card, encoding="utf-8")
    paths["card_json"] = out / "card.json"
    paths["card_json"].write_text(
        json.dumps(card_document(data), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return paths
