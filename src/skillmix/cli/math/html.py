"""`skillmix math html`: the page of one math run, or two side by side."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from skillmix.cli._common import (
    UserError,
    console,
    open_store,
    store_option,
)
from skillmix.terminal import escaped

if TYPE_CHECKING:
    pass


@click.command("html")
@click.argument("runs", nargs=-1, required=True)
@click.option(
    "--out", help="The page to write (default: math-html/RUN.html, or RUN_A-vs-RUN_B.html)."
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=0.2,
    show_default=True,
    help="Profiles: flag skills whose missing rate is above this.",
)
@store_option
def html(runs: tuple[str, ...], out: str | None, threshold: float, store_path: str) -> None:
    """Write the HTML page of a math run from the store, or compare two profiles.

    RUNS is one `math eval` or `math profile` run (ids or unique starts), or two
    `math profile` runs (two students, or two checkpoints of one), shown side by side
    with the difference of each skill's missing rate.
    """
    from skillmix.math.label import usage_rows
    from skillmix.math.profile import KIND as PROFILE
    from skillmix.store import run_kind

    store = open_store(store_path, read_only=True)
    found = [store.get_run(r) for r in runs]
    kinds = {run_kind(r) for r in found}
    ids = [r["id"] for r in found]
    if len(found) > 2 or (len(found) == 2 and kinds != {PROFILE}):
        raise UserError(
            f"math html compares two profile runs; got {len(found)} run(s) of kind "
            f"{', '.join(sorted(kinds))}",
            hint="give one math eval or math profile run, or two math profile runs",
        )
    path = Path(out) if out else Path("math-html") / ("-vs-".join(ids) + ".html")
    if kinds == {PROFILE}:
        from skillmix.math.profile_html import write_profile_page
        from skillmix.math.profile_report import build_profile_report

        reports = [build_profile_report(store, run_id) for run_id in ids]
        usage = [row for run_id in ids for row in usage_rows(store, run_id)]
        written = write_profile_page(reports, path, threshold=threshold, usage=usage)
    elif kinds == {"math-eval"}:
        from skillmix.math.eval_html import write_eval_page
        from skillmix.math.eval_report import build_eval_report

        written = write_eval_page(
            build_eval_report(store, ids[0]), path, usage=usage_rows(store, ids[0])
        )
    else:
        raise UserError(
            f"run {ids[0]} is a {kinds.pop()} run: math html draws math eval and math profile runs",
            hint="a math label run writes its page (report.html) when it runs",
        )
    console.print(f"wrote {escaped(written)}", highlight=False)
