"""How every pipeline reports progress: named stages, each with a total, advanced by units.

The evaluation reports "generate" and "grade", Instruct-SkillMix "catalog" and
"examples", the frequency filter "tag". A pipeline announces a stage's total with
`total` (again when it learns a better one, as Instruct-SkillMix does once the teacher
has named its topics) and calls `advance` as work finishes. The base class reports
nothing, so a pipeline run from a notebook needs no progress at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID


class Progress:
    """Progress of a job by stage; this base class ignores it. Subclass to show it."""

    def total(self, stage: str, total: int) -> None:
        """`stage` has `total` units of work in all."""

    def advance(self, stage: str, n: int = 1) -> None:
        """`n` more units of `stage` are done."""


class ProgressBars(Progress):
    """Progress as Rich progress bars: one bar per stage, in the order stages appear."""

    def __init__(self, bars: RichProgress):
        self.bars = bars
        self._tasks: dict[str, TaskID] = {}

    def total(self, stage: str, total: int) -> None:
        if stage in self._tasks:
            self.bars.update(self._tasks[stage], total=total)
        else:
            self._tasks[stage] = self.bars.add_task(stage, total=total)

    def advance(self, stage: str, n: int = 1) -> None:
        if stage not in self._tasks:
            self._tasks[stage] = self.bars.add_task(stage, total=None)
        self.bars.advance(self._tasks[stage], n)
