"""`skillmix audit RUN...`: how far the judges of stored runs can be trusted.

A thin shell over `skillmix.scoring.audit`: it reads the store, computes the audit and
prints its findings, the metric ranges across judges and what the runs cannot tell.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import click
from rich.text import Text

from skillmix.cli._common import UserError, console, open_store, store_option
from skillmix.jsonsafe import finite
from skillmix.terminal import plain

if TYPE_CHECKING:
    from rich.console import Console

    from skillmix.report.layout import Cell
    from skillmix.scoring.audit import Audit
    from skillmix.store import Store

VERDICT_STYLES = {True: "bold yellow", False: ""}


@click.command()
@click.argument("run_ids", nargs=-1)
@store_option
@click.option("--json", "as_json", is_flag=True, help="Print the audit as JSON.")
@click.option(
    "--family",
    "families",
    multiple=True,
    metavar="MODEL=FAMILY",
    help="The family of a student or judge model (for self-preference), e.g. "
    "--family openai:gpt-4o=openai; repeat for several.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Level at which a finding is flagged, after Holm's correction for the number of tests.",
)
def audit(
    run_ids: tuple[str, ...],
    store_path: str,
    as_json: bool,
    families: tuple[str, ...],
    alpha: float,
) -> None:
    """Can the judges be trusted? Consistency, range, leniency and biases of stored runs.

    RUN is a run id from `skillmix runs` or a unique start of one; give several runs of
    different students graded by the same judges to test self-preference (default: the
    latest run). Per judge and criterion, with 95% intervals: how often verdicts flip
    between grading rounds, each metric's range across judges, leniency against the
    verdicts of `skillmix review`, self-preference, length bias and rubric-order bias
    (runs made with --rubric-order shuffled). Each finding says in words what it found,
    with its test and sample size; what the runs cannot tell is said too.
    """
    from skillmix.scoring.audit import audit_runs

    store = open_store(store_path, read_only=True)
    ids = resolve_runs(store, run_ids)
    result = audit_runs(store, ids, alpha=alpha, families=parse_families(families))
    if as_json:
        click.echo(json.dumps(finite(result.to_dict()), indent=2))
        return
    render_audit(result, console)


def resolve_runs(store: Store, run_ids: tuple[str, ...]) -> list[str]:
    """Full run ids for the ids (or unique starts) given; the latest run for none."""
    from skillmix.store import EVALUATION

    if run_ids:
        return list(dict.fromkeys(str(store.get_run(r)["id"]) for r in run_ids))
    runs = store.list_runs(EVALUATION)
    if not runs:
        raise UserError(f"no runs in {store.location}; start one with `skillmix run`")
    return [str(runs[-1]["id"])]


def parse_families(values: tuple[str, ...]) -> dict[str, str] | None:
    """`("openai:gpt-4o=openai", ...)` as {model: family}; None when none is given.

    A model spec may hold '=' (in a URL's query), a family name does not: the last '='
    separates them.
    """
    if not values:
        return None
    families: dict[str, str] = {}
    for value in values:
        model, sep, family = value.rpartition("=")
        if not sep or not model.strip() or not family.strip():
            raise UserError(
                f"--family {value!r} is not MODEL=FAMILY: write e.g. "
                "--family openai:gpt-4o=openai (the model as the run names it)"
            )
        families[model.strip()] = family.strip()
    return families


# --- the terminal -----------------------------------------------------------------------------


def _number(value: float, digits: int = 2, *, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def render_audit(result: Audit, console: Console) -> None:
    """The audit on the terminal: its lead, the findings, the ranges across judges and
    what the runs cannot tell, in the layout that fits the width (`report.layout`)."""
    from skillmix.report.layout import Column, print_records
    from skillmix.report.names import ModelNames

    specs = {f.judge for f in result.findings if f.judge}
    specs |= {judge for r in result.ranges for judge in r.by_judge}
    names = ModelNames(sorted(specs))

    def named(text: str) -> str:
        """A sentence of the audit with each model named as the tables name it."""
        for spec in sorted(specs, key=len, reverse=True):
            text = text.replace(spec, names(spec))
        return text

    console.print(plain(f"Judge audit of {', '.join(result.run_ids)}", style="bold"))
    if result.lead:
        console.print(plain(named(result.lead)))
    several = len(result.run_ids) > 1
    findings: list[list[Cell]] = [
        [
            f.check.replace("_", " "),
            names(f.judge) if f.judge else "all judges",
            f.criterion.replace("_", " ") + (f" ({f.run_id})" if several and f.run_id else ""),
            f"{_number(f.estimate.value, signed=True)} "
            f"[{_number(f.estimate.low, signed=True)}, {_number(f.estimate.high, signed=True)}]",
            f"{f.estimate.n} {f.n_label}".strip(),
            _p(f.p_adjusted),
            plain(named(f.verdict), style=VERDICT_STYLES[bool(f.flagged)]),
        ]
        for f in result.findings
    ]
    if findings:
        print_records(
            console,
            [
                Column("check"),
                Column("judge"),
                Column("criterion", wrap=True),
                Column("estimate [95% interval]", justify="right", key="estimate"),
                Column("n", justify="right"),
                Column("p adj.", justify="right", key="p (Holm-adjusted)"),
                Column("verdict", wrap=True),
            ],
            findings,
            title="Findings",
            caption=f"{sum(bool(f.flagged) for f in result.findings)} of "
            f"{len(result.findings)} flagged; p-values adjusted for the number of tests",
        )
    ranges: list[list[Cell]] = [
        [
            r.metric.replace("_", " ") + (f" ({r.run_id})" if several and r.run_id else ""),
            str(r.k) if r.k is not None else "all",
            f"{_number(r.low)} – {_number(r.high)}",
            ", ".join(f"{names(j)} {_number(v)}" for j, v in r.by_judge.items()),
            _number(r.kappa),
            _number(r.alpha),
        ]
        for r in result.ranges
    ]
    if ranges:
        console.print()
        print_records(
            console,
            [
                Column("metric"),
                Column("k", justify="right"),
                Column("range across judges", justify="right", key="range"),
                Column("by judge", wrap=True),
                Column("kappa", justify="right"),
                Column("alpha", justify="right"),
            ],
            ranges,
            title="Range across judges",
        )
    if result.cannot_tell:
        console.print()
        console.print(Text("What these runs cannot tell", style="bold"))
        for sentence in result.cannot_tell:
            console.print(plain(f"  • {named(sentence)}"))
    for note in names.footnotes():
        console.print(Text(note, style="dim"))
