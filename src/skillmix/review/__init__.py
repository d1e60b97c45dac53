"""The human spot-check web app: a review queue, judge-vs-human agreement and the server.

The server (aiohttp) lives in `skillmix.review.server` and is imported only when used.
"""

from skillmix.review.agreement import human_agreement, human_majority
from skillmix.review.queue import QueueEntry, review_queue

__all__ = ["QueueEntry", "human_agreement", "human_majority", "review_queue"]
