"""The adaptive limiter: never more requests at once than its limit, every waiter served
(none left behind), halved on a rate limit, and no request during a Retry-After
pause. The orders are forced with events, not timed."""

from __future__ import annotations

import asyncio
import time

import pytest

from skillmix.models.limiter import AdaptiveLimiter


async def hold_slots(limiter: AdaptiveLimiter, callers: int, hold: asyncio.Event) -> list[int]:
    """`callers` tasks each take a slot and hold it until `hold` is set; the number of
    slots taken when each one got its slot, in the order they got them."""
    seen: list[int] = []

    async def caller() -> None:
        async with limiter:
            seen.append(limiter.active)
            await hold.wait()

    tasks = [asyncio.create_task(caller()) for _ in range(callers)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(seen) == min(callers, int(limiter.limit))  # the others wait
    hold.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 60)  # a waiter never woken fails here
    return seen


@pytest.mark.parametrize("callers", [1, 3, 4, 50])
def test_never_more_at_once_than_the_limit_and_every_waiter_served(callers: int):
    limiter = AdaptiveLimiter(maximum=4)
    seen = asyncio.run(hold_slots(limiter, callers, asyncio.Event()))
    assert len(seen) == callers
    assert max(seen) == min(callers, 4)
    assert limiter.active == 0


def test_a_cancelled_waiter_leaves_the_others_their_turn():
    async def main() -> int:
        limiter = AdaptiveLimiter(maximum=1)
        await limiter.acquire()
        cancelled = asyncio.create_task(limiter.acquire())
        waiting = asyncio.create_task(limiter.acquire())
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.gather(cancelled, return_exceptions=True)
        await limiter.release()
        await asyncio.wait_for(waiting, 60)
        await limiter.release()
        return limiter.active

    assert asyncio.run(main()) == 0


def test_a_rate_limit_halves_the_limit_and_successes_grow_it_back():
    limiter = AdaptiveLimiter(maximum=8)
    limiter.on_rate_limited(None)
    assert limiter.limit == 4
    limiter.on_rate_limited(None)
    assert limiter.limit == 2
    for _ in range(2):  # one more slot per `limit` successes
        limiter.on_success()
    assert limiter.limit == 3
    seen = asyncio.run(hold_slots(limiter, 6, asyncio.Event()))
    assert max(seen) == 3


def test_no_slot_is_given_during_a_retry_after_pause():
    async def main() -> tuple[float, float]:
        limiter = AdaptiveLimiter(maximum=4)
        limiter.on_rate_limited(0.05)
        until = limiter.paused_until
        await limiter.acquire()  # free slots, but the pause holds it
        got = time.monotonic()
        await limiter.release()
        return until, got

    until, got = asyncio.run(main())
    assert got >= until
