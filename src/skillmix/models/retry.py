"""Retries, backoff and adaptive concurrency shared by the providers that call remote APIs.

A provider subclasses `RetryingClient` and implements `_attempt(request, mode)`: one try,
raising `Retryable` for what may pass (rate limits, 5xx, time-outs, dropped connections,
malformed answers) and `SchemaRejected` when the backend refuses a structured-output
dialect. `complete` does the rest: it counts each retry by cause, backs off exponentially
with jitter (or as long as Retry-After says), halves the concurrency on a rate limit,
retries empty answers a couple of times and walks down the structured-output dialects.

Retries are for endpoints that are flaky, not for ones that are not there. Until an
endpoint has answered once in this process, a refused or dropped connection is tried
only `FIRST_CONTACT_TRIES` times, quickly, and then reported: a wrong URL or a stopped
server fails in about a second instead of after minutes of backoff. Once it has answered,
the same failure means a hiccup (a restart, an overloaded proxy) and is retried in full.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable

from skillmix.models.base import ChatRequest, ChatResponse, ModelError
from skillmix.models.limiter import AdaptiveLimiter

RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
EMPTY_RETRIES = 2  # an empty answer is retried this many times, then accepted as empty
MAX_BACKOFF_S = 60.0
# Causes that mean no HTTP answer came back: the endpoint may not be there at all.
UNREACHABLE_CAUSES = frozenset({"connect", "connection"})
FIRST_CONTACT_TRIES = 3  # tries for an endpoint that has never answered, 0.25 s then 0.5 s apart
FIRST_CONTACT_DELAY_S = 0.25

# Endpoints that have answered (anything over HTTP, even an error) since this process started.
_answered: set[str] = set()


def endpoint_answered(endpoint: str) -> bool:
    """Whether `endpoint` has answered once in this process (so failures there are flaky)."""
    return endpoint in _answered


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
        # Requests waiting to try again right now, by the cause of their last failure.
        self.retrying: Counter[str] = Counter()

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.name}"

    @property
    def endpoint(self) -> str:
        """Where requests go: the base URL, else the provider (its default host)."""
        return getattr(self, "base_url", None) or self.provider

    @property
    def supports_structured(self) -> bool:
        return bool(self.structured_modes)

    @property
    def retries(self) -> int:
        return sum(self.retry_causes.values())

    async def _attempt(self, request: ChatRequest, mode: str) -> ChatResponse:
        raise NotImplementedError

    def _first_contact(self, cause: str) -> bool:
        """Whether a failure with `cause` may mean that nothing is there: no HTTP answer
        came back and the endpoint has never answered in this process."""
        return cause in UNREACHABLE_CAUSES and not endpoint_answered(self.endpoint)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        attempt = 0
        empty = 0
        while True:
            mode = self.structured_modes[0] if request.json_schema and self.structured_modes else ""
            try:
                async with self.limiter:
                    response = await self._attempt(request, mode)
                _answered.add(self.endpoint)
                if not response.text.strip() and empty < EMPTY_RETRIES:
                    empty += 1
                    raise Retryable(f"{self.spec}: empty answer", "empty")
                self.limiter.on_success()
                return response
            except SchemaRejected:
                _answered.add(self.endpoint)
                if mode in self.structured_modes:
                    self.structured_modes.remove(mode)
            except Retryable as err:
                if err.cause not in UNREACHABLE_CAUSES and err.cause != "timeout":
                    _answered.add(self.endpoint)  # an HTTP answer, if not a good one
                first_contact = self._first_contact(err.cause)
                tries = self.max_retries + 1
                if first_contact:
                    tries = min(tries, FIRST_CONTACT_TRIES)
                if attempt + 1 >= tries:
                    raise self._give_up(err, attempt + 1, first_contact) from err
                self.retry_causes[err.cause] += 1
                if err.cause == "429":
                    self.limiter.on_rate_limited(err.retry_after)
                delay = err.retry_after
                if first_contact:  # quick, fixed steps: is anything there at all?
                    delay = FIRST_CONTACT_DELAY_S * 2**attempt
                elif delay is None:
                    delay = self.backoff_s * (2 ** min(attempt, 6)) * (0.5 + random.random())
                attempt += 1
                self.retrying[err.cause] += 1
                try:
                    await asyncio.sleep(min(delay, MAX_BACKOFF_S))
                finally:
                    self.retrying[err.cause] -= 1

    def _give_up(self, err: Retryable, tries: int, first_contact: bool) -> ModelError:
        if tries == 1:
            return ModelError(f"{err} (no retries allowed)", retryable=True)
        if first_contact:
            check = (
                "; is there an HTTP server at that address (http or https, host, port)?"
                if err.cause == "connection"
                else ""
            )
            return ModelError(
                f"{err} (gave up after {tries} quick tries: it has never answered{check})",
                retryable=True,
            )
        return ModelError(f"{err} (gave up after {tries} tries)", retryable=True)


def retry_status(models: Iterable[object]) -> str:
    """A progress-line note on the requests now waiting to retry, by cause; "" when none.

    `retrying: 3 (429 x2, timeout x1)`
    """
    waiting: Counter[str] = Counter()
    for model in models:
        # dict() copies in one step: safe while the event loop's thread updates the counts.
        for cause, n in dict(getattr(model, "retrying", {})).items():
            if n > 0:
                waiting[cause] += n
    if not waiting:
        return ""
    causes = ", ".join(f"{cause} x{n}" for cause, n in sorted(waiting.items()))
    return f"retrying: {sum(waiting.values())} ({causes})"
