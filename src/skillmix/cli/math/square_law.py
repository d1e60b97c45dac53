"""`skillmix math square-law`: success on skill-pair questions against the base rate squared."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from skillmix.cli._common import (
    console,
    err_console,
    open_store,
    store_option,
)
from skillmix.terminal import escaped

if TYPE_CHECKING:
    pass


@click.command("square-law")
@click.argument("run_base")
@click.argument("run_pairs")
@click.option(
    "--strategy",
    default="zero-shot",
    show_default=True,
    help="Which strategy's answers to count; every run must have used it.",
)
@click.option(
    "--out", default="math-square-law", show_default=True, help="Folder for the JSON and HTML."
)
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def square_law(
    run_base: str, run_pairs: str, strategy: str, out: str, store_path: str, as_json: bool
) -> None:
    """Fit y = x^a to students' success on generated skill-pair questions (y) against
    the base set (x), and test a = 2 (MATH²'s square law).

    RUN_BASE and RUN_PAIRS are `math eval` runs (ids or unique starts), several separated
    by commas: one run per student on the base set, one on the generated set (e.g. the
    folder `math export` wrote); students are matched by their --student spec. Prints
    each student's x and y with intervals, x² and y/x², the fitted a with its 95%
    profile-likelihood interval and the likelihood-ratio test of a = 2; writes
    square-law.json and square-law.html (the plot) to OUT.
    """
    from skillmix.math.square_law import (
        parse_runs,
        render_square_law,
        write_square_law_files,
    )
    from skillmix.math.square_law import square_law as fit_square_law

    store = open_store(store_path, read_only=True)
    result = fit_square_law(store, parse_runs(run_base), parse_runs(run_pairs), strategy=strategy)
    paths = write_square_law_files(result, Path(out))
    if as_json:
        document = {**result.to_dict(), "files": [str(p) for p in paths]}
        sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return
    render_square_law(result, console)
    err_console.print(f"wrote {escaped(', '.join(str(p) for p in paths))}", highlight=False)
