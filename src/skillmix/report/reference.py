"""The part of `skillmix report` for imported runs: the original scripts' points beside ours."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from skillmix.scoring.metrics import METRICS
from skillmix.scoring.reference import CAUSES, ReferenceDiff
from skillmix.terminal import plain


def _value(value: float | None) -> str:
    if value is None:
        return "unparsed"
    return f"{value:g}"


def _metric(value: float | int | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def render_reference_diff(diff: ReferenceDiff, console: Console) -> None:
    """Per criterion counts, causes, a few examples, and both sides' metrics."""
    console.print(
        f"original scripts vs skillmix on the same judge texts: {diff.judge_texts} grading "
        f"round(s), {diff.distinct_judge_texts} distinct text(s); our parser read "
        f"{diff.parsed} and refused {diff.unparsed}. Of {diff.points} points (criterion x "
        f"grading round), {diff.differ} differ and {diff.unparsed_points} are not read by us.",
        highlight=False,
    )
    criteria = Table(
        "criterion",
        "points",
        "agree",
        "differ",
        "not read by us",
        title="their points vs ours, per criterion (theirs read by row position)",
        title_justify="left",
    )
    for c in diff.criteria:
        criteria.add_row(
            plain(c.criterion), str(c.points), str(c.agree), str(c.differ), str(c.unparsed)
        )
    console.print(criteria)
    if diff.causes:
        causes = Table("cause", "points", "meaning", title="why they differ", title_justify="left")
        for cause, n in diff.causes.items():
            causes.add_row(cause, str(n), CAUSES[cause])
        console.print(causes)
    if diff.examples:
        examples = Table(
            "item",
            "gen",
            "grade",
            "criterion",
            "ours",
            "theirs",
            "cause",
            "their file:line",
            title="examples (see one with `skillmix show ITEM`)",
            title_justify="left",
        )
        for e in diff.examples:
            examples.add_row(
                plain(e.item_id),
                str(e.gen_round),
                str(e.grade_round),
                plain(e.criterion),
                _value(e.ours),
                _value(e.theirs),
                e.cause,
                plain(e.source),
            )
        console.print(examples)
    if diff.metrics:
        metrics = Table(
            "judge",
            "k",
            "side",
            "items",
            *(m.replace("_", " ") for m in METRICS),
            title="metrics: ours (our parse and rules) vs theirs (their points and rules)",
            title_justify="left",
        )
        for row in diff.metrics:
            for side in ("ours", "theirs"):
                values = row[side]
                metrics.add_row(
                    plain(row["judge"]),
                    str(row["k"]),
                    side,
                    str(values["items"]),
                    *(_metric(values[m]) for m in METRICS),
                )
        console.print(metrics)
