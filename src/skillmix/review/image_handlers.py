"""The API of an image run: people answer the judge's questions about the images."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from skillmix.image.image_store import ImageStore
from skillmix.image.review import answered_by, check_answers, image_queue, review_item
from skillmix.review.inputs import (
    MAX_QUEUE_LIMIT,
    MAX_SEED,
    Invalid,
    identifier,
    json_object,
    json_response,
    optional_reviewer,
    query_int,
    queue_reviewer,
    reviewer_name,
)
from skillmix.review.state import REVIEW, ReviewState
from skillmix.store import StoreError


async def _image_run(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    report = review.image_run()
    config = report.config
    return json_response(
        {
            "run_id": review.run_id,
            "kind": review.kind,
            "status": report.status,
            "generator": config.get("generator", ""),
            "judge": config.get("judge", ""),
            "k": config.get("k", []),
            "samples": len(report.rows),
            "images": sum(1 for r in report.rows if r["image"] is not None),
        }
    )


async def _image_queue(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    reviewer = queue_reviewer(request)
    limit = query_int(request, "limit", 50, 1, MAX_QUEUE_LIMIT)
    seed = query_int(request, "seed", 0, 0, MAX_SEED)
    rows = review.image_run().rows
    queue = image_queue(rows, review.db.human_verdicts(review.run_id), reviewer=reviewer, seed=seed)
    total = sum(1 for r in rows if r["image"] is not None)
    return json_response(
        {
            "reviewer": reviewer,
            "seed": seed,
            "remaining": len(queue),
            "reviewed": total - len(queue),
            "total": total,
            "entries": [e.to_dict() for e in queue[:limit]],
        }
    )


def image_row_or_404(review: ReviewState, item_id: str) -> dict[str, Any]:
    row = review.image_row(item_id)
    if row is None:
        raise Invalid(f"no image of sample '{item_id}' in {review.run_id}", 404)
    return row


async def _image_item(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    row = image_row_or_404(review, identifier(request.query.get("item_id"), "item_id"))
    reviewer = optional_reviewer(request)
    own = answered_by(review.db.human_verdicts(review.run_id), reviewer) if reviewer else {}
    return json_response(review_item(row, own.get(row["item"]["item_id"], {})))


async def _image_data(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    row = image_row_or_404(review, identifier(request.query.get("item_id"), "item_id"))
    item_id, digest = row["item"]["item_id"], row["image"]["sha256"]
    try:
        url = ImageStore.beside(review.db).data_url(digest)
    except StoreError as err:
        gone = f"the image of sample '{item_id}' is not in the image folder beside the store"
        raise Invalid(gone, 404) from err
    return json_response({"item_id": item_id, "sha256": digest, "data_url": url})


async def _image_verdicts(request: web.Request) -> web.Response:
    review = request.app[REVIEW]
    body = await json_object(request, "reviewer, item_id, verdicts")
    reviewer = reviewer_name(body.get("reviewer"))
    item_id = identifier(body.get("item_id"), "item_id")
    gen_round = body.get("gen_round", 0)
    if type(gen_round) is not int or gen_round != 0:
        raise Invalid("gen_round must be 0 (or left out) for an image")
    row = image_row_or_404(review, item_id)
    try:
        answers = check_answers(row, body.get("verdicts"))
    except ValueError as err:
        raise Invalid(str(err)) from err
    review.db.put_human_verdicts(review.run_id, item_id, 0, reviewer, answers)
    return json_response({"saved": len(answers), "agreement": review.image_agreement()})


async def _image_agreement(request: web.Request) -> web.Response:
    return json_response(request.app[REVIEW].image_agreement())


def add_routes(app: web.Application) -> None:
    """The API of an image run (see the server's docstring)."""
    app.router.add_get("/api/run", _image_run)
    app.router.add_get("/api/queue", _image_queue)
    app.router.add_get("/api/item", _image_item)
    app.router.add_get("/api/image", _image_data)
    app.router.add_post("/api/verdicts", _image_verdicts)
    app.router.add_get("/api/agreement", _image_agreement)
