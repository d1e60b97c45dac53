"""The API of a `math generate` run: the verification queue of generated questions."""

from __future__ import annotations

from aiohttp import web

from skillmix.errors import InputError
from skillmix.math.generate_review import (
    MAX_NOTE_CHARS,
    MAX_TEXT_CHARS,
    candidate_view,
    decisions,
    put_decision,
    review_summary,
)
from skillmix.math.generate_review import review_queue as question_queue
from skillmix.review.inputs import (
    MAX_QUEUE_LIMIT,
    Invalid,
    edited_text,
    error_response,
    identifier,
    json_object,
    json_response,
    optional_reviewer,
    query_int,
    queue_reviewer,
    reviewer_name,
)
from skillmix.review.state import REVIEW


async def _math_run(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    run = review.generated_run()
    config = run.config
    return json_response(
        {
            "run_id": review.run_id,
            "kind": review.kind,
            "teacher": config.get("teacher", ""),
            "verifier": config.get("verifier") or config.get("teacher", ""),
            "catalog": run.catalog.name,
            "pool": config.get("pool"),
            "pairs": len(run.candidates),
            "warnings": run.warnings(),
            **review_summary(run, decisions(review.db, review.run_id)),
        }
    )


async def _math_queue(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    reviewer = queue_reviewer(request)
    limit = query_int(request, "limit", 50, 1, MAX_QUEUE_LIMIT)
    run = review.generated_run()
    found = decisions(review.db, review.run_id)
    queue = question_queue(run, found, reviewer)
    decided_by: dict[str, list[str]] = {}
    for d in found:
        decided_by.setdefault(d.candidate_id, []).append(d.reviewer)
    total = len(run.survivors)
    return json_response(
        {
            "reviewer": reviewer,
            "remaining": len(queue),
            "reviewed": total - len(queue),
            "total": total,
            "entries": [
                {
                    "id": c.id,
                    "skills": list(c.skill_names),
                    "decided_by": decided_by.get(c.id, []),
                }
                for c in queue[:limit]
            ],
        }
    )


async def _math_candidate(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    candidate_id = identifier(request.query.get("id"), "id")
    reviewer = optional_reviewer(request)
    run = review.generated_run()
    candidate = run.candidate(candidate_id)
    if candidate is None:
        return error_response(404, f"no generated question '{candidate_id}' in {review.run_id}")
    found = decisions(review.db, review.run_id)
    return json_response(candidate_view(run, candidate, found, reviewer))


async def _math_decision(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    body = await json_object(request, "reviewer, candidate_id, decision")
    reviewer = reviewer_name(body.get("reviewer"))
    candidate_id = identifier(body.get("candidate_id"), "candidate_id")
    decision = body.get("decision")
    if decision not in ("accept", "edit", "reject"):
        raise Invalid("decision must be accept, edit or reject")
    texts = {
        name: edited_text(body.get(name), name, MAX_TEXT_CHARS)
        for name in ("question", "solution", "answer")
        if decision == "edit" and body.get(name) is not None
    }
    note = edited_text(body.get("note"), "note", MAX_NOTE_CHARS) if body.get("note") else ""
    run = review.generated_run()
    candidate = run.candidate(candidate_id)
    if candidate is None:
        raise Invalid(f"no generated question '{candidate_id}' in {review.run_id}", 404)
    try:
        saved = put_decision(
            review.db,
            review.run_id,
            candidate,
            reviewer,
            decision,
            question=texts.get("question"),
            solution=texts.get("solution"),
            answer=texts.get("answer"),
            note=note,
        )
    except InputError as err:
        raise Invalid(str(err)) from err
    summary = review_summary(run, decisions(review.db, review.run_id))
    return json_response({"saved": saved.to_record(), "summary": summary})


def add_routes(app: web.Application) -> None:
    """The API of a `math generate` run (see the server's docstring)."""
    app.router.add_get("/api/run", _math_run)
    app.router.add_get("/api/queue", _math_queue)
    app.router.add_get("/api/candidate", _math_candidate)
    app.router.add_post("/api/decision", _math_decision)
