"""The human spot-check web app: a review queue and the server.

The server (aiohttp) lives in `skillmix.review.server` and is imported only when used.
Judge-vs-human agreement, which the app and the report both show, is computed in
`skillmix.scoring.human`.
"""

from skillmix.review.queue import QueueEntry, review_queue

__all__ = ["QueueEntry", "review_queue"]
