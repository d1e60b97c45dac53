"""Where model calls run: in this process (the default), or elsewhere through an executor.

Everything else of a job stays in the process that runs it: the units, the `CallCache`
(the store, the budget, identical requests sharing one call), progress and pause. Only
the model call itself, `model.complete(request)`, goes where the executor sends it. So an
executor serves every pipeline (evaluation, training data, math) with no pipeline code,
and a run keeps its id, its cache keys and its answers whichever executor ran it.

    with RayExecutor(address="auto") as ray_executor, executing_on(ray_executor):
        run_async(engine.run())

`runtime.ray_executor` is the one executor besides the local default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Protocol

from skillmix.models import Model, Settings


class Executor(Protocol):
    """Sends a model's calls somewhere else."""

    def model(self, local: Model, settings: Settings) -> Model:
        """The model that answers `local`'s calls: same provider, name, spec and identity
        (so the same cache keys), built from `settings` wherever it runs."""
        ...


_current: ContextVar[Executor | None] = ContextVar("skillmix_executor", default=None)


@contextlib.contextmanager
def executing_on(executor: Executor) -> Iterator[Executor]:
    """Send the model calls of every job run inside this block through `executor`."""
    token = _current.set(executor)
    try:
        yield executor
    finally:
        _current.reset(token)


def answering(model: Model, settings: Settings) -> Model:
    """The model that answers `model`'s calls now: itself, or the current executor's."""
    executor = _current.get()
    return model if executor is None else executor.model(model, settings)
