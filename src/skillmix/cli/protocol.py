"""`skillmix protocol diff`: every deliberate difference from the published Skill-Mix scripts."""

from __future__ import annotations

import json

import click
from rich.text import Text

from skillmix.cli._common import console


@click.group()
def protocol() -> None:
    """The Skill-Mix protocols: `skillmix` (default) and `paper` (as published)."""


@protocol.command("diff")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def diff(as_json: bool) -> None:
    """List every way skillmix differs from the published Skill-Mix scripts.

    For each aspect: what the scripts did, what the default protocol does, what
    `--protocol paper` does, and why.
    """
    from rich.table import Table

    from skillmix.protocol.differences import DIFFERENCES, differences_json

    if as_json:
        click.echo(json.dumps(differences_json(), indent=2))
        return
    console.print(
        Text(
            f"{len(DIFFERENCES)} differences between skillmix and the published Skill-Mix "
            "scripts (--protocol skillmix is the default; --protocol paper does what the "
            "scripts did wherever that is a protocol choice, not a bug)",
            style="bold",
        )
    )
    for n, d in enumerate(DIFFERENCES, start=1):
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column()
        table.add_row("published", Text(d.published))
        table.add_row("skillmix", Text(d.skillmix))
        paper = Text(d.paper, style="green" if d.paper_as_published else "")
        table.add_row("paper", paper)
        table.add_row("why", Text(d.why))
        console.print()
        console.print(Text(f"{n}. {d.aspect}", style="bold"))
        console.print(table)
    kept = [d.aspect for d in DIFFERENCES if not d.paper_as_published]
    console.print()
    console.print(
        Text(
            f"--protocol paper follows the scripts in {len(DIFFERENCES) - len(kept)} of "
            f"{len(DIFFERENCES)}; both protocols keep skillmix's way in: {', '.join(kept)}"
        )
    )
