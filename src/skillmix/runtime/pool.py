"""The one worker pool every pipeline runs on: workers, fail fast, budget pause, seeds.

A pipeline splits its work into units (an item's generation round, an example, a
passage's tagging) and hands them to `WorkerPool.run`. A bounded number of workers pull
units one at a time, so memory stays flat for any number of units while each model's own
limiter keeps its backend busy. Every pipeline therefore stops the same way:

- a model that fails for good (`ModelError`) stops the job at once: the other units are
  cancelled and `RunError` says how many answers are saved and how to resume;
- a request the budget refuses (`BudgetExhausted`) starts no new unit, lets the units in
  flight finish (their answers are paid for, stored and counted), then raises
  `BudgetReached` with the final spend;
- Ctrl-C (or a cancelled task) cancels every unit; what was answered is in the store.

Writes are committed once per loop iteration while the pool runs (`Store.group_commits`).
Seeds come from `derive_seed`, so a unit asks the same requests whatever the order in
which workers reach it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Sequence, Sized
from typing import TypeVar

from skillmix.errors import BudgetError, ModelError, SkillmixError
from skillmix.models import Model
from skillmix.runtime.calls import BudgetExhausted, CallCache

Unit = TypeVar("Unit")
# No more workers than this, whatever the models' concurrency: each is a task and a
# unit's worth of state.
MAX_WORKERS = 8192


class RunError(SkillmixError, RuntimeError):
    """A job stopped; everything answered so far is in the store and a re-run resumes."""


class BudgetReached(RunError, BudgetError):
    """--max-cost was reached: the job is paused, not failed (exit 3); a re-run continues."""


def derive_seed(*parts: object) -> int:
    """A 31-bit seed from named parts: stable across machines and Python versions."""
    blob = ":".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


def worker_count(units: int, models: Sequence[Model], workers: int | None = None) -> int:
    """How many units run at once: `workers` if given, else enough to fill the widest
    model's concurrency twice over (a unit waits on one model while another is free);
    never more than there are units, never fewer than one."""
    if workers:
        return max(1, min(workers, units))
    widest = max((m.max_concurrency for m in models), default=1)
    return max(1, min(units, 2 * widest, MAX_WORKERS))


class WorkerPool:
    """Runs a pipeline's units on its models, through its `CallCache` (store and budget).

    `workers` fixes how many units are in flight (the CLI's --workers); by default it is
    twice the widest model's concurrency.
    """

    def __init__(self, calls: CallCache, models: Sequence[Model], workers: int | None = None):
        self.calls = calls
        self.models = list(models)
        self.workers = workers

    def size(self, units: int) -> int:
        """The number of workers for a run of `units` units."""
        return worker_count(units, self.models, self.workers)

    async def run(
        self,
        units: Iterable[Unit],
        work: Callable[[Unit], Awaitable[object]],
        *,
        count: int | None = None,
    ) -> None:
        """Call `work(unit)` for every unit, `size(count)` at a time, until all are done.

        `count` is the number of units (by default `len(units)`). Raises `BudgetReached`
        once the units in flight have landed if the budget refused a request, `RunError`
        if a model failed, and anything else a unit raises as it is; in every case no
        unit is left running.
        """
        if count is None:
            if not isinstance(units, Sized):
                raise TypeError("units without a length need count=")
            count = len(units)
        pending = iter(units)
        refused: list[BudgetExhausted] = []

        async def worker() -> None:
            for unit in pending:
                if refused:
                    return
                try:
                    await work(unit)
                except BudgetExhausted as err:
                    refused.append(err)
                    return

        tasks = [asyncio.create_task(worker()) for _ in range(self.size(count))]
        try:
            with self.calls.store.group_commits():
                await gather_fail_fast(tasks)
        except ModelError as err:
            raise self.stopped(err) from err
        if refused:  # every request in flight has landed: the summary's figure is final
            raise self.paused()

    def stopped(self, err: ModelError) -> RunError:
        """The error of a job a model stopped: what failed, what is saved, how to resume."""
        return RunError(
            f"{err}\nThe run stopped; {self.calls.stats.sent} new answers are saved in "
            f"{self.calls.store.location}. Fix the problem and re-run the same command to resume."
        )

    def paused(self) -> BudgetReached:
        """The error of a job the budget paused, with the spend the usage line shows."""
        return BudgetReached(
            f"{self.calls.budget_summary()}. {self.calls.stats.sent} answers were bought "
            "and saved; run the same command again (with a new --max-cost) to continue."
        )


async def gather_all(jobs: Iterable[Awaitable[None]]) -> None:
    """Run `jobs` together and wait for every one, then raise the first failure if any.

    Unlike a bare `asyncio.gather`, no job is left running when another fails (a budget
    refusal): a request still in flight lands and is counted before the failure surfaces.
    """
    outcomes = await asyncio.gather(*jobs, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


async def gather_fail_fast(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for all tasks; on the first failure cancel the rest and raise it."""
    try:
        for finished in asyncio.as_completed(tasks):
            await finished
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
