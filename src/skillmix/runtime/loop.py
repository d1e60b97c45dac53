"""One way to run a pipeline's coroutine: `asyncio.run`, on uvloop where it is installed.

The orchestrator spends most of its CPU in the event loop and the HTTP client's transport
callbacks; uvloop's loop (libuv, written in Cython) does that work in a fraction of the
time, which is what lets one Python thread keep hundreds of requests in flight. It is a
dependency on Linux and macOS; elsewhere (or with `SKILLMIX_LOOP=asyncio`) the standard
loop runs the same code.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's `new_event_loop` when installed and not turned off, else None (asyncio's)."""
    if os.environ.get("SKILLMIX_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a fresh event loop, as `asyncio.run` does."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
