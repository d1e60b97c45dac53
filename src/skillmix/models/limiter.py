"""Adaptive concurrency: additive increase on success, multiplicative decrease on 429.

A fixed concurrency either wastes a fast backend or hammers a rate-limited one. The
limiter starts at `initial`, grows by one slot per `limit` successes (so roughly doubling
per round trip's worth of calls, up to `maximum`), halves on a rate limit and, when the
server says how long to wait (Retry-After), holds every new request until then.
"""

from __future__ import annotations

import asyncio
import contextlib
import time


class AdaptiveLimiter:
    def __init__(self, maximum: int, initial: int | None = None, minimum: int = 1):
        if maximum < 1:
            raise ValueError("maximum concurrency must be at least 1")
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.limit = float(min(maximum, initial if initial is not None else maximum))
        self.active = 0
        self.paused_until = 0.0
        self.rate_limited = 0
        self._credit = 0.0
        self._cond: asyncio.Condition | None = None
        self._waiting = 0  # callers of `acquire` that did not find a free slot at once

    @property
    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self) -> None:
        # The common case takes a slot without the condition: one is free, no request is
        # held by a pause, and no caller waits before this one.
        if (
            not self._waiting
            and self.active < int(self.limit)
            and (not self.paused_until or self.paused_until <= time.monotonic())
        ):
            self.active += 1
            return
        self._waiting += 1
        try:
            await self._wait_for_slot()
        finally:
            self._waiting -= 1

    async def _wait_for_slot(self) -> None:
        async with self._condition:
            while True:
                wait = self.paused_until - time.monotonic()
                if wait <= 0 and self.active < int(self.limit):
                    self.active += 1
                    return
                if wait > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._condition.wait(), timeout=wait)
                else:
                    await self._condition.wait()

    async def release(self) -> None:
        self.active -= 1
        if not self._waiting:
            return
        async with self._condition:
            if self.paused_until:
                # Some waiters may be in a timed wait, whose time-out can swallow a
                # notification: wake them all, each checks again.
                self._condition.notify_all()
            else:
                # As many waiters as there are free slots (the limit may have grown), not
                # all: with hundreds waiting, waking every one costs more than the request.
                self._condition.notify(max(1, int(self.limit) - self.active))

    def on_success(self) -> None:
        if self.limit < self.maximum:
            self._credit += 1.0 / self.limit
            if self._credit >= 1.0:
                self._credit = 0.0
                self.limit = min(float(self.maximum), self.limit + 1.0)

    def on_rate_limited(self, retry_after: float | None) -> None:
        self.rate_limited += 1
        self.limit = max(float(self.minimum), self.limit / 2)
        self._credit = 0.0
        if retry_after:
            self.paused_until = max(self.paused_until, time.monotonic() + retry_after)

    async def __aenter__(self) -> AdaptiveLimiter:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()
