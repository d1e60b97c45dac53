"""The `skillmix` command: a thin shell over the library.

`main` is the click group and the one place where a `SkillmixError` becomes a message.
Each command family lives in its own module (run, catalog, report, cache, data, review,
protocol, importing, audit, analyze, spread, math, image, store) and shares options and helpers
through `_common`.
Command modules import only click at load time, so `skillmix --help` stays fast; the
library is imported inside the commands.
"""

from __future__ import annotations

import gc
import os
import warnings
from typing import Any

import click

from skillmix.cli import (
    analyze,
    audit,
    cache,
    catalog,
    data,
    image,
    importing,
    math,
    protocol,
    report,
    review,
    run,
    spread,
    store,
)
from skillmix.cli._common import err_console, quick_exit_allowed
from skillmix.errors import BudgetError, SkillmixError
from skillmix.terminal import escaped

__all__ = ["entry", "main", "print_error"]

# skillmix uses no pydantic plugins, and looking for them reads the metadata of every
# installed package when the first model class is built (inside a command: the modules
# above build none): 15-40 ms of every command's start. A value the user set is kept.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def print_error(err: SkillmixError) -> None:
    """`error: message` on one line and the hint on the next; foreign text stays text."""
    label = "[yellow]paused[/]:" if isinstance(err, BudgetError) else "[bold red]error:[/]"
    err_console.print(f"{label} {escaped(err)}", highlight=False, soft_wrap=True)
    hint = err.hint or getattr(err.__cause__, "hint", "")
    if hint:
        err_console.print(f"[dim]hint:[/] {escaped(hint)}", highlight=False, soft_wrap=True)


class SkillmixGroup(click.Group):
    """The `skillmix` group: the one place where a `SkillmixError` becomes a message.

    A `SkillmixError` prints one line and its hint and exits with its code (1, or 3 when
    a budget paused the job); Ctrl-C exits 130. Any other exception is a bug and keeps
    its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SkillmixError as err:
            print_error(err)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            err_console.print(
                "[yellow]interrupted[/]: answers so far are saved; re-run the same command "
                "to resume"
            )
            ctx.exit(130)


@click.group(cls=SkillmixGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="skillmix")
def main() -> None:
    """Measure and teach skill composition in language models (Skill-Mix)."""
    warnings.showwarning = _show_warning


def entry() -> None:
    """The `skillmix` program (and `python -m skillmix.cli`): `main`, then a quick exit.

    After a command that closed everything it opened (`allow_quick_exit`), the objects
    alive at the end are frozen (`gc.freeze`), so the interpreter's last collections skip
    them: freeing a finished run's objects and modules one by one took about 0.1 s of
    every `skillmix run`, for memory the operating system takes back at once. Output is flushed
    and files closed as usual. `main` alone (as tests call it in-process) never does this.
    """
    try:
        main()
    finally:
        if quick_exit_allowed():
            gc.freeze()


def _register(*commands: click.Command) -> None:
    for command in commands:
        main.add_command(command)


_register(
    catalog.catalog,
    run.run,
    run.estimate,
    cache.cache,
    report.report,
    report.runs,
    report.show,
    report.export,
    report.html,
    report.leaderboard,
    report.compare,
    audit.audit,
    spread.spread,
    analyze.analyze,
    data.data,
    math.math_group,
    image.image_group,
    review.review,
    store.store,
    protocol.protocol,
    importing.import_group,
)


_python_showwarning = warnings.showwarning


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """A `SettingsWarning` as a `warning: ...` line; other warnings as Python shows them."""
    from skillmix.models.settings import SettingsWarning

    if issubclass(category, SettingsWarning):
        text = f"[yellow]warning:[/] {escaped(message)}"
        err_console.print(text, highlight=False, soft_wrap=True)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)
