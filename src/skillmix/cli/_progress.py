"""Progress bars for long jobs; imported only by commands that run one (not by `--help`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class StatusProgress(Progress):
    """Progress bars with one live note under them (retries in progress), redrawn with them.

    `status` is called from Rich's refresh thread: it must only read, and cheaply.
    """

    def __init__(self, *columns: Any, status: Callable[[], str] = lambda: "", **kwargs: Any):
        self.status = status  # before Progress.__init__, which may render already
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield from super().get_renderables()
        note = self.status()
        if note:
            yield Text(note, style="yellow")


def progress_bars(console: Console) -> StatusProgress:
    """One bar per stage: name, bar, done/total, elapsed time and time left."""
    return StatusProgress(
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        # Redrawing takes the GIL from the event loop; 4 a second is smooth enough.
        refresh_per_second=4,
    )
