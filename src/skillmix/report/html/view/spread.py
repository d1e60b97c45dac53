"""The spread of a run across format variants (`skillmix spread`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

from skillmix.prompts.variants import DIMENSIONS_BY_NAME
from skillmix.report.html.view.common import (
    METRIC_NAMES,
    ModelName,
    RunView,
    fmt,
    model_name,
    p_value,
    signed,
)
from skillmix.report.svg import IntervalRow, interval_plot
from skillmix.scoring.spread import SpreadReport, SpreadRow


@dataclass(frozen=True)
class SpreadVariantRow:
    index: int
    choices: list[str]  # its choices that differ from the base set ("base" for none)
    run_id: str
    current: bool  # a run this page reports
    student: str  # student calls sent and reused
    unparsed: str  # grading rounds whose verdict could not be read
    status: str


@dataclass(frozen=True)
class SpreadMetricRow:
    judge: ModelName
    k: int
    metric: str
    items: int
    values: list[str]  # one per column of the block (a dash where a variant has none)
    spread: str
    interval: str
    noise: str  # the spread grading noise alone gives
    p: str  # permutation test of "the format does not matter"
    moves_most: str  # the choice that moves it most, in words ("" when none varied)


@dataclass(frozen=True)
class SpreadEffectRow:
    judge: ModelName
    k: int
    metric: str
    dimension: str
    affects: str
    options: str  # each option's mean over the variants that took it
    effect: str  # highest minus lowest option
    interval: str
    p_adjusted: str
    moves: bool
    note: str  # adjusted for / not separable from


@dataclass(frozen=True)
class SpreadBlock:
    """One spread (the runs of one `skillmix spread`) that a run of the page belongs to."""

    label: str
    group: str
    summary: str
    sharing: str
    columns: list[int]  # the variants' indices
    variants: list[SpreadVariantRow]
    metrics: list[SpreadMetricRow]
    effects: list[SpreadEffectRow]
    plot: Markup | None
    notes: list[str]


def section(runs: Sequence[RunView]) -> list[SpreadBlock]:
    """A block per spread that a run of the page belongs to (once, however many of its
    runs the page shows)."""
    groups: dict[str, list[RunView]] = {}
    for r in runs:
        if r.report.spread is not None:
            groups.setdefault(r.report.spread.group, []).append(r)
    return [_spread_block(members) for members in groups.values()]


def _spread_block(members: Sequence[RunView]) -> SpreadBlock:
    spread = members[0].report.spread
    assert spread is not None
    shown = {r.run["id"] for r in members}
    columns = [v.index for v in spread.variants]
    variants = [
        SpreadVariantRow(
            index=v.index,
            choices=v.variant.split(","),
            run_id=v.run_id,
            current=v.run_id in shown,
            student=f"{v.student_sent:,} sent · {v.student_reused:,} reused",
            unparsed=f"{v.unparsed_rounds:,} of {v.grade_rounds:,}",
            status=v.status,
        )
        for v in spread.variants
    ]
    metrics = []
    effects = []
    for row in spread.rows:
        by_index = dict(zip(row.indices, row.values, strict=True))
        judge = model_name(row.judge)
        metric = METRIC_NAMES.get(row.metric, row.metric)
        top = row.top
        metrics.append(
            SpreadMetricRow(
                judge=judge,
                k=row.k,
                metric=metric,
                items=row.items,
                values=[fmt(by_index[i]) if i in by_index else "—" for i in columns],
                spread=fmt(row.spread.value),
                interval=f"[{fmt(row.spread.low)}, {fmt(row.spread.high)}]",
                noise=fmt(row.noise),
                p=p_value(row.spread.p),
                moves_most=top.describe() if top else "",
            )
        )
        for e in row.effects:
            notes = []
            if e.adjusted_for:
                notes.append(f"after {', '.join(e.adjusted_for)}")
            if e.aliased_with:
                notes.append(f"not separable from {', '.join(e.aliased_with)}")
            elif e.overlaps_with:
                notes.append(f"hard to separate from {', '.join(e.overlaps_with)}")
            effects.append(
                SpreadEffectRow(
                    judge=judge,
                    k=row.k,
                    metric=metric,
                    dimension=e.dimension,
                    affects=e.affects,
                    options=" · ".join(
                        f"{o} {fmt(m)} ({e.option_variants[o]})" for o, m in e.option_means.items()
                    ),
                    effect=signed(e.effect.value),
                    interval=f"[{signed(e.effect.low)}, {signed(e.effect.high)}]",
                    p_adjusted=p_value(e.p_adjusted),
                    moves=e.moves,
                    note="; ".join(notes),
                )
            )
    headline = max(spread.rows, key=lambda r: r.spread.value, default=None)
    return SpreadBlock(
        label=", ".join(r.label for r in members),
        group=spread.group,
        summary=_spread_summary(spread, headline),
        sharing=(
            f"Student calls over the spread's runs: {spread.student_sent:,} sent, "
            f"{spread.student_reused:,} answered from the store. A variant that changes only "
            "the grading prompt asks the student what the base asked, so its answers are "
            "shared."
        ),
        columns=columns,
        variants=variants,
        metrics=metrics,
        effects=effects,
        plot=_spread_plot(headline) if headline is not None else None,
        notes=list(spread.notes),
    )


def _spread_summary(spread: SpreadReport, headline: SpreadRow | None) -> str:
    n = len(spread.variants)
    if headline is None:
        return f"{n} format variant(s), none scored yet."
    if len(headline.indices) < 2:
        return (
            f"{n} format variants, but only variant {headline.indices[0]} scored any item: "
            "there is no spread to show (the others have no parsed verdict: see their "
            "unparsed rounds)."
        )
    metric = METRIC_NAMES.get(headline.metric, headline.metric).lower()
    text = (
        f"Across {n} format variants, {metric} at k = {headline.k} ranged from "
        f"{fmt(headline.low)} to {fmt(headline.high)}: a spread of "
        f"{fmt(headline.spread.value)} [{fmt(headline.spread.low)}, "
        f"{fmt(headline.spread.high)}] over {headline.items} items, where grading noise "
        f"alone gives {fmt(headline.noise)} (p {p_value(headline.spread.p)})"
    )
    top = headline.top
    if top is None:
        return text + "."
    verdict = "" if top.moves else " (not beyond chance after Holm's adjustment)"
    return f"{text}. The choice that moves it most: {top.describe()}{verdict}."


def _spread_plot(row: SpreadRow) -> Markup | None:
    """Each option's difference from the base option, for the row with the widest spread."""
    rows = [
        IntervalRow(
            f"{e.dimension}: {option}",
            c.value,
            c.low,
            c.high,
            flagged=e.moves and (c.low > 0 or c.high < 0),
            note=f"minus {DIMENSIONS_BY_NAME[e.dimension].base}",
        )
        for e in row.effects
        for option, c in e.contrasts.items()
    ]
    if not rows:
        return None
    metric = METRIC_NAMES.get(row.metric, row.metric)
    return Markup(  # svg.py escapes every label
        interval_plot(
            rows,
            element_id="spread-contrasts",
            title=f"{metric} at k = {row.k}: each option minus the base set's",
            x_label=f"difference in {metric.lower()}",
        )
    )
