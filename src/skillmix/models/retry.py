"""Retries, backoff and adaptive concurrency shared by the providers that call remote APIs.

A provider subclasses `RetryingClient` and implements `_attempt(request, mode)`: one try,
raising `Retryable` for what may pass (rate limits, 5xx, time-outs, dropped connections,
malformed answers) and `SchemaRejected` when the backend refuses a structured-output
dialect. `complete` does the rest: it counts each retry by cause, backs off exponentially
with jitter (or as long as Retry-After says), halves the concurrency on a rate limit,
retries empty answers a couple of times and walks down the structured-output dialects.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from skillmix.models.base import ChatRequest, ChatResponse, ModelError
from skillmix.models.limiter import AdaptiveLimiter

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
EMPTY_RETRIES = 2  # an empty answer is retried this many times, then accepted as empty
MAX_BACKOFF_S = 60.0


class Retryable(ModelError):
    """One try failed in a way that another try may not; `cause` labels it for reports."""

    def __init__(self, message: str, cause: str, retry_after: float | None = None):
        super().__init__(message, retryable=True)
        self.cause = cause
        self.retry_after = retry_after


class SchemaRejected(Exception):
    """The backend refused this structured-output dialect; try the next one, then text."""


class RetryingClient:
    provider: str
    name: str
    # Structured-output dialects to try, best first; emptied when the backend takes none.
    structured_modes: list[str]

    def __init__(self, *, max_concurrency: int, max_retries: int, backoff_s: float):
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.limiter = AdaptiveLimiter(max_concurrency)
        self.retry_causes: Counter[str] = Counter()

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def supports_structured(self) -> bool:
        return bool(self.structured_modes)

    @property
    def retries(self) -> int:
        return sum(self.retry_causes.values())

    async def _attempt(self, request: ChatRequest, mode: str) -> ChatResponse:
        raise NotImplementedError

    async def complete(self, request: ChatRequest) -> ChatResponse:
        attempt = 0
        empty = 0
        while True:
            mode = self.structured_modes[0] if request.json_schema and self.structured_modes else ""
            try:
                async with self.limiter:
                    response = await self._attempt(request, mode)
                if not response.text.strip() and empty < EMPTY_RETRIES:
                    empty += 1
                    raise Retryable(f"{self.spec}: empty answer", "empty")
                self.limiter.on_success()
                return response
            except SchemaRejected:
                if mode in self.structured_modes:
                    self.structured_modes.remove(mode)
            except Retryable as err:
                if attempt >= self.max_retries:
                    raise ModelError(
                        f"{err} (gave up after {attempt + 1} tries)", retryable=True
                    ) from err
                self.retry_causes[err.cause] += 1
                if err.cause == "429":
                    self.limiter.on_rate_limited(err.retry_after)
                delay = err.retry_after
                if delay is None:
                    delay = self.backoff_s * (2 ** min(attempt, 6)) * (0.5 + random.random())
                attempt += 1
                await asyncio.sleep(min(delay, MAX_BACKOFF_S))
