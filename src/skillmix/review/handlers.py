"""The page, its static files, and the API of a Skill-Mix run: the review queue, one
generation with every judge's verdicts, a reviewer's verdicts and the agreement."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

from aiohttp import web

from skillmix.image.run import KIND as IMAGE_KIND
from skillmix.math.generate import PIPELINE as GENERATE_KIND
from skillmix.review.inputs import (
    MAX_GEN_ROUND,
    MAX_QUEUE_LIMIT,
    MAX_SEED,
    Invalid,
    error_response,
    identifier,
    json_object,
    json_response,
    optional_reviewer,
    query_int,
    queue_reviewer,
    reviewer_name,
)
from skillmix.review.queue import review_queue
from skillmix.review.state import REVIEW, ReviewState

STATIC_TYPES = {
    "dom.js": "text/javascript",
    "app.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
    "math.js": "text/javascript",
    "math.css": "text/css",
    "image.js": "text/javascript",
    "image.css": "text/css",
}


async def page(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    query = f"?token={quote(review.token, safe='')}" if review.token else ""
    name = {GENERATE_KIND: "math.html", IMAGE_KIND: "image.html"}.get(review.kind, "index.html")
    text = review.static[name].decode().replace("__ASSET_QUERY__", html.escape(query))
    return web.Response(text=text, content_type="text/html")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_TYPES:
        return error_response(404, f"no static file {name}")
    body = request.app[REVIEW].static[name]
    return web.Response(body=body, content_type=STATIC_TYPES[name], charset="utf-8")


async def _run(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    scores = review.current_scores()
    config = scores.run["config"]
    return json_response(
        {
            "run_id": review.run_id,
            "student": config["student"],
            "judges": scores.judges,
            "k": config["k"],
            "items": config["items"],
            "generation_rounds": config["generation_rounds"],
            "grading_rounds": config["grading_rounds"],
            "naming_penalty": bool(config.get("naming_penalty", True)),
            "generations": len(review.details),
        }
    )


async def _queue(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    reviewer = queue_reviewer(request)
    limit = query_int(request, "limit", 50, 1, MAX_QUEUE_LIMIT)
    seed = query_int(request, "seed", 0, 0, MAX_SEED)
    queue = review_queue(review.db, review.run_id, reviewer=reviewer, seed=seed)
    total = len(review.db.generations(review.run_id))
    return json_response(
        {
            "reviewer": reviewer,
            "remaining": len(queue),
            "reviewed": total - len(queue),
            "total": total,
            "entries": [e.to_dict() for e in queue[:limit]],
        }
    )


async def _item(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    item_id = identifier(request.query.get("item_id"), "item_id")
    gen_round = query_int(request, "gen_round", None, 0, MAX_GEN_ROUND)
    detail = review.detail(item_id, gen_round)
    if detail is None:
        return error_response(
            404, f"no generation {gen_round} of item '{item_id}' in {review.run_id}"
        )
    reviewer = optional_reviewer(request)
    own = {
        h["criterion"]: h["value"]
        for h in review.db.human_verdicts(review.run_id)
        if reviewer
        and h["reviewer"] == reviewer
        and (h["item_id"], h["gen_round"]) == (item_id, gen_round)
    }
    return json_response({**detail, "human": own})


async def _verdicts(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    body = await json_object(request, "reviewer, item_id, gen_round, verdicts")
    reviewer, item_id, gen_round, verdicts = check_verdicts(review, body)
    review.db.put_human_verdicts(review.run_id, item_id, gen_round, reviewer, verdicts)
    return json_response({"saved": len(verdicts), "agreement": review.agreement()})


async def _agreement(request: web.Request) -> web.Response:
    return json_response(request.app[REVIEW].agreement())


def check_verdicts(
    review: ReviewState, body: dict[str, Any]
) -> tuple[str, str, int, dict[str, int]]:
    """(reviewer, item_id, gen_round, verdicts) from a POST body, or Invalid saying why."""
    reviewer = reviewer_name(body.get("reviewer"))
    item_id = identifier(body.get("item_id"), "item_id")
    gen_round = body.get("gen_round")
    if not isinstance(gen_round, int) or isinstance(gen_round, bool):
        raise Invalid(f"gen_round must be an integer from 0 to {MAX_GEN_ROUND}")
    if not 0 <= gen_round <= MAX_GEN_ROUND:
        raise Invalid(f"gen_round must be an integer from 0 to {MAX_GEN_ROUND}")
    verdicts = body.get("verdicts")
    if not isinstance(verdicts, dict) or not verdicts:
        raise Invalid("verdicts must be a non-empty object {criterion_id: 0 or 1}")
    detail = review.detail(item_id, gen_round)
    if detail is None:
        raise Invalid(f"no generation {gen_round} of item '{item_id}' in {review.run_id}", 404)
    known = [c["id"] for c in detail["criteria"]]
    unknown = [c for c in verdicts if c not in known]
    if unknown:
        shown = ", ".join(json.dumps(c) for c in unknown[:5])  # ASCII: escapes anything odd
        raise Invalid(
            f"not a criterion of item {item_id}: {shown} (its criteria: {', '.join(known)})"
        )
    bad = [
        c
        for c, v in verdicts.items()
        if not isinstance(v, int) or isinstance(v, bool) or v not in (0, 1)
    ]
    if bad:
        shown = ", ".join(f"{c}={json.dumps(verdicts[c])}" for c in bad)
        raise Invalid(f"verdict values must be 0 (not met) or 1 (met), got {shown}")
    return reviewer, item_id, gen_round, {c: int(v) for c, v in verdicts.items()}


def add_routes(app: web.Application) -> None:
    """The API of a Skill-Mix run."""
    app.router.add_get("/api/run", _run)
    app.router.add_get("/api/queue", _queue)
    app.router.add_get("/api/item", _item)
    app.router.add_post("/api/verdicts", _verdicts)
    app.router.add_get("/api/agreement", _agreement)
