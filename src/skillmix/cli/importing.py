"""`skillmix import reference DIR`: a thin shell over `skillmix.reference.import_reference`."""

from __future__ import annotations

import json

import click

from skillmix.cli._common import console, open_store, store_option
from skillmix.terminal import plain


@click.group("import")
def import_group() -> None:
    """Bring results made elsewhere into the store as runs."""


@import_group.command("reference")
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@store_option
@click.option(
    "--catalog",
    "catalog_sources",
    multiple=True,
    help="Catalog with the skills' definitions (repeat to combine). Default: skills.csv and "
    "topics.txt found in DIR or a parent folder (a checkout of the original scripts).",
)
@click.option(
    "--naming-penalty/--no-naming-penalty",
    default=True,
    show_default=True,
    help="Score the imported runs with the naming penalty (ours, and theirs as they had it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def import_reference_command(
    directory: str,
    store_path: str,
    catalog_sources: tuple[str, ...],
    naming_penalty: bool,
    as_json: bool,
) -> None:
    """Import the original Skill-Mix scripts' recorded runs from DIR.

    DIR is a generation-round folder of their output (e.g. test/k3_s10_vdefault_r1,
    holding <student>/records.csv and <student>/graded/by_<judge>_on_text_1_<round>_<format>/
    records.csv), a student folder inside one, or the folder above several round folders
    (their rounds then become one run's generation rounds). Each student x judge becomes
    one run labelled "protocol": "reference-import". Every judge text is parsed again with
    our parser and scored with our aggregation; the points their scripts recorded are
    kept beside ours. Importing again changes nothing.

    `skillmix report RUN` then shows our metrics and, for an imported run, where their
    points and ours disagree: per criterion, by cause, with examples, and both metrics.
    """
    from rich.table import Table

    from skillmix.reference.importer import import_reference
    from skillmix.scoring.reference import reference_diff

    store = open_store(store_path)
    summary = import_reference(
        store, directory, catalog_sources=catalog_sources, naming_penalty_on=naming_penalty
    )
    diffs = {r.run_id: reference_diff(store, r.run_id) for r in summary.runs}
    if as_json:
        body = summary.to_dict()
        for run in body["runs"]:
            diff = diffs[run["run_id"]]
            run["points"] = diff.points if diff else 0
            run["points_differ"] = diff.differ if diff else 0
            run["points_unparsed"] = diff.unparsed_points if diff else 0
            run["causes"] = diff.causes if diff else {}
        click.echo(json.dumps(body, indent=2))
        return
    table = Table(title=f"imported from {directory}", title_justify="left")
    table.add_column("run", no_wrap=True)
    for name in ("student", "judge", "k", "items", "rounds", "parsed", "points differ"):
        table.add_column(name, justify="left" if name in ("student", "judge") else "right")
    table.add_column("not read by us", justify="right")
    for run in summary.runs:
        diff = diffs[run.run_id]
        table.add_row(
            run.run_id,
            plain(run.student),
            plain(run.judge),
            ",".join(map(str, run.k)),
            str(run.items),
            f"{run.generation_rounds}x{run.grading_rounds}",
            f"{run.parsed}/{run.judge_texts}",
            f"{diff.differ}/{diff.points}" if diff else "0",
            str(diff.unparsed_points) if diff else "0",
        )
    console.print(table)
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False)
    for run in summary.runs:
        if run.skipped_generations:
            console.print(
                f"note: {run.run_id}: {run.skipped_generations} generation(s) of "
                f"{run.student} were never graded by {run.judge} and are not in the run",
                highlight=False,
            )
    console.print(
        f"{sum(r.distinct_judge_texts for r in summary.runs)} distinct judge text(s) in "
        f"{sum(r.judge_texts for r in summary.runs)} grading round(s); rounds = generation x "
        "grading; see each run with `skillmix report RUN --store ...`",
        highlight=False,
    )
