"""Inline SVG charts for the HTML report: small pure functions returning strings.

No JavaScript library, no fonts, no network: every chart is a self-contained <svg>
element (no xmlns needed inside HTML) that scales with its container through its
viewBox. Every piece of text is escaped, and every mark carries a <title> tooltip.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

# Okabe-Ito: distinguishable with the common forms of colour blindness.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'
_CHAR_W = 6.6  # average width of one 12px character, for layout estimates


@dataclass(frozen=True)
class Point:
    """One x value of a series: the mean and its interval (NaN mean: no data there)."""

    x: int
    mean: float
    low: float
    high: float
    n: int = 0


@dataclass(frozen=True)
class Series:
    """One line of a chart (one model)."""

    name: str
    points: Sequence[Point] = field(default_factory=tuple)


def colour(index: int) -> str:
    """The colour of the index-th series."""
    return PALETTE[index % len(PALETTE)]


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def line_chart(
    series: Sequence[Series],
    *,
    element_id: str,
    title: str,
    y_label: str,
    x_label: str = "k (skills per item)",
    width: int = 420,
    height: int = 300,
) -> str:
    """A line chart of a metric in [0, 1] against integer x, one line per series.

    Each point shows its 95% interval as an error bar; series are nudged sideways a
    little so their error bars do not hide each other. The legend sits under the plot.
    """
    xs = sorted({p.x for s in series for p in s.points})
    left, right, top = 56, 16, 36
    legend_columns = max(1, int((width - left - right) // 200))
    legend_rows = max(1, math.ceil(len(series) / legend_columns))
    bottom = 52 + 20 * legend_rows
    plot_w = width - left - right
    plot_h = height - top - bottom
    if plot_h < 120:
        height += 120 - plot_h
        plot_h = 120

    def x_pos(x: int) -> float:
        if len(xs) <= 1:
            return left + plot_w / 2
        return left + 30 + (plot_w - 60) * xs.index(x) / (len(xs) - 1)

    def y_pos(y: float) -> float:
        return top + plot_h * (1 - min(1.0, max(0.0, y)))

    out = [
        f'<svg id="{_attr(element_id)}" class="chart line-chart" role="img" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMid meet" '
        f'width="{width}" height="{height}" {_FONT} font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="20" font-size="14" font-weight="600" fill="#1f2933">'
        f"{escape(title)}</text>",
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_pos(tick)
        out.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{_num(y)}" y2="{_num(y)}" '
            f'stroke="{"#9aa5b1" if tick == 0 else "#e4e7eb"}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{left - 8}" y="{_num(y + 4)}" text-anchor="end" fill="#52606d">'
            f"{tick:.2f}</text>"
        )
    for x in xs:
        px = x_pos(x)
        out.append(
            f'<text x="{_num(px)}" y="{_num(top + plot_h + 18)}" text-anchor="middle" '
            f'fill="#52606d">{x}</text>'
        )
    out.append(
        f'<text x="{_num(left + plot_w / 2)}" y="{_num(top + plot_h + 38)}" '
        f'text-anchor="middle" fill="#323f4b">{escape(x_label)}</text>'
    )
    out.append(
        f'<text transform="translate(14 {_num(top + plot_h / 2)}) rotate(-90)" '
        f'text-anchor="middle" fill="#323f4b">{escape(y_label)}</text>'
    )
    if not xs:
        out.append(
            f'<text x="{_num(left + plot_w / 2)}" y="{_num(top + plot_h / 2)}" '
            f'text-anchor="middle" fill="#7b8794">no scored items</text>'
        )
    spread = min(12.0, 40.0 / max(1, len(series)))
    for index, s in enumerate(series):
        stroke = colour(index)
        nudge = (index - (len(series) - 1) / 2) * spread
        points = sorted((p for p in s.points if not math.isnan(p.mean)), key=lambda p: p.x)
        group = [f'<g class="series" data-series="{_attr(s.name)}">']
        coords = [(x_pos(p.x) + nudge, y_pos(p.mean)) for p in points]
        if len(coords) > 1:
            path = " ".join(f"{_num(x)},{_num(y)}" for x, y in coords)
            group.append(
                f'<polyline points="{path}" fill="none" stroke="{stroke}" stroke-width="2.5" '
                'stroke-linejoin="round"/>'
            )
        for p, (px, py) in zip(points, coords, strict=True):
            low, high = y_pos(p.low), y_pos(p.high)
            tip = (
                f"{s.name}, k={p.x}: {p.mean:.2f} "
                f"[95% interval {p.low:.2f}–{p.high:.2f}], {p.n} item(s)"
            )
            group.append('<g class="point">')
            group.append(f"<title>{escape(tip)}</title>")
            group.append(
                f'<line x1="{_num(px)}" x2="{_num(px)}" y1="{_num(low)}" y2="{_num(high)}" '
                f'stroke="{stroke}" stroke-width="1.5"/>'
            )
            for cap in (low, high):
                group.append(
                    f'<line x1="{_num(px - 4)}" x2="{_num(px + 4)}" y1="{_num(cap)}" '
                    f'y2="{_num(cap)}" stroke="{stroke}" stroke-width="1.5"/>'
                )
            group.append(
                f'<circle cx="{_num(px)}" cy="{_num(py)}" r="4.5" fill="{stroke}" '
                'stroke="#fff" stroke-width="1.5"/>'
            )
            group.append("</g>")
        group.append("</g>")
        out.extend(group)
    legend_top = top + plot_h + 56
    column_w = plot_w / legend_columns
    for index, s in enumerate(series):
        lx = left + (index % legend_columns) * column_w
        ly = legend_top + (index // legend_columns) * 20
        out.append(
            f'<g class="legend-item"><title>{escape(s.name)}</title>'
            f'<rect x="{_num(lx)}" y="{_num(ly - 9)}" width="14" height="10" rx="2" '
            f'fill="{colour(index)}"/>'
            f'<text x="{_num(lx + 20)}" y="{_num(ly)}" fill="#323f4b">'
            f"{escape(_truncate(s.name, int((column_w - 30) / _CHAR_W)))}</text></g>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _cell_fill(value: float) -> str:
    """White (0) to a deep blue (1), through light blues: a sequential scale."""
    stops = ((0.0, (247, 251, 255)), (0.5, (107, 174, 214)), (1.0, (8, 48, 107)))
    v = min(1.0, max(0.0, value))
    for (v0, c0), (v1, c1) in itertools.pairwise(stops):
        if v <= v1:
            t = (v - v0) / (v1 - v0)
            rgb = tuple(round(a + (b - a) * t) for a, b in zip(c0, c1, strict=True))
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return "#08306b"


def heatmap(
    rows: Sequence[str],
    columns: Sequence[str],
    values: Mapping[tuple[str, str], float | None],
    *,
    element_id: str,
    title: str,
    counts: Mapping[tuple[str, str], int] | None = None,
    row_groups: Mapping[str, str] | None = None,
    cell_w: int = 80,
    cell_h: int = 24,
    measure: str = "success",
    unit: str = "item(s)",
) -> str:
    """A grid of rates in [0, 1]: one row per label in `rows`, one column per `columns`.

    `values[(row, column)]` is the rate (None or missing: no data); `counts` gives the
    number of observations shown in each cell's tooltip; `row_groups` names a group per
    row (e.g. a skill's category), shown in the tooltip. Cells widen (up to 180 units) to
    fit the column labels. `measure` names what the rate is ("60% success over 5 item(s)"
    in a tooltip, "success rate" in the legend) and `unit` what `counts` count.
    """
    counts = counts or {}
    row_groups = row_groups or {}
    longest_row = max((len(r) for r in rows), default=8)
    label_w = min(300, max(80, math.ceil(longest_row * _CHAR_W) + 20))
    longest = max((len(c) for c in columns), default=6)
    cell_w = max(cell_w, min(180, int(longest * _CHAR_W) + 16))
    col_chars = max(6, int(cell_w / _CHAR_W) - 1)
    head_h = 56
    width = max(label_w + cell_w * max(1, len(columns)) + 16, label_w + 11 * 14 + 120)
    height = head_h + cell_h * len(rows) + 40
    out = [
        f'<svg id="{_attr(element_id)}" class="chart heatmap" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'{_FONT} font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="4" y="18" font-size="14" font-weight="600" fill="#1f2933">'
        f"{escape(title)}</text>",
    ]
    for ci, column in enumerate(columns):
        cx = label_w + ci * cell_w + cell_w / 2
        out.append(
            f'<text x="{_num(cx)}" y="{head_h - 10}" text-anchor="middle" fill="#323f4b" '
            f'font-weight="600"><title>{escape(column)}</title>'
            f"{escape(_truncate(column, col_chars))}</text>"
        )
    for ri, row in enumerate(rows):
        y = head_h + ri * cell_h
        out.append(
            f'<text x="{label_w - 8}" y="{_num(y + cell_h / 2 + 4)}" text-anchor="end" '
            f'fill="#323f4b"><title>{escape(row)}</title>'
            f"{escape(_truncate(row, int((label_w - 14) / _CHAR_W)))}</text>"
        )
        for ci, column in enumerate(columns):
            x = label_w + ci * cell_w
            value = values.get((row, column))
            n = counts.get((row, column))
            group = row_groups.get(row)
            where = f"{row}" + (f" ({group})" if group else "") + f" × {column}"
            if value is None or math.isnan(value):
                fill, text, ink = "#f5f7fa", "—", "#9aa5b1"
                tip = f"{where}: no data"
            else:
                fill, text = _cell_fill(value), f"{value:.2f}"
                ink = "#ffffff" if value > 0.55 else "#1f2933"
                tip = f"{where}: {value:.0%} {measure}" + (f" over {n} {unit}" if n else "")
            out.append(
                f'<g class="cell" data-row="{_attr(row)}" data-column="{_attr(column)}">'
                f"<title>{escape(tip)}</title>"
                f'<rect x="{x + 1}" y="{y + 1}" width="{cell_w - 2}" height="{cell_h - 2}" '
                f'rx="3" fill="{fill}"/>'
                f'<text x="{_num(x + cell_w / 2)}" y="{_num(y + cell_h / 2 + 4)}" '
                f'text-anchor="middle" fill="{ink}">{text}</text></g>'
            )
    # colour scale legend
    ly = head_h + cell_h * len(rows) + 16
    for i in range(11):
        out.append(
            f'<rect x="{label_w + i * 14}" y="{ly}" width="14" height="10" '
            f'fill="{_cell_fill(i / 10)}"/>'
        )
    out.append(
        f'<text x="{label_w - 8}" y="{ly + 9}" text-anchor="end" fill="#52606d">0</text>'
        f'<text x="{label_w + 11 * 14 + 6}" y="{ly + 9}" fill="#52606d">'
        f"1 ({escape(measure)} rate)</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


@dataclass(frozen=True)
class IntervalRow:
    """One estimate of an interval plot: its label, value and interval; `flagged` draws it
    in the warning colour, `note` is added to its tooltip."""

    label: str
    value: float
    low: float
    high: float
    flagged: bool = False
    note: str = ""


def _nice_step(span: float) -> float:
    """A tick step of 1, 2 or 5 times a power of ten giving about four ticks over `span`."""
    raw = span / 4
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def interval_plot(
    rows: Sequence[IntervalRow],
    *,
    element_id: str,
    title: str,
    x_label: str,
    reference: float = 0.0,
    width: int = 560,
) -> str:
    """A forest plot: one row per estimate, a dot at its value and a bar over its
    interval, against a vertical line at `reference` (no effect)."""
    longest = max((len(r.label) for r in rows), default=8)
    label_w = min(260, max(100, math.ceil(longest * _CHAR_W) + 16))
    right, top, row_h = 20, 40, 22
    plot_w = width - label_w - right
    height = top + row_h * max(1, len(rows)) + 48
    finite = [v for r in rows for v in (r.value, r.low, r.high) if math.isfinite(v)]
    lo, hi = min([reference, *finite]), max([reference, *finite])
    if hi - lo < 1e-9:
        lo, hi = lo - 0.1, hi + 0.1
    step = _nice_step(hi - lo)
    lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step

    def x_pos(x: float) -> float:
        return label_w + plot_w * (min(hi, max(lo, x)) - lo) / (hi - lo)

    bottom_y = top + row_h * max(1, len(rows))
    out = [
        f'<svg id="{_attr(element_id)}" class="chart interval-plot" role="img" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMid meet" '
        f'width="{width}" height="{height}" {_FONT} font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="4" y="20" font-size="14" font-weight="600" fill="#1f2933">'
        f"{escape(title)}</text>",
    ]
    ticks = round((hi - lo) / step)
    for i in range(ticks + 1):
        tick = lo + i * step
        x = x_pos(tick)
        is_reference = abs(tick - reference) < step / 1000
        out.append(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{top - 6}" y2="{bottom_y}" '
            f'stroke="{"#9aa5b1" if is_reference else "#e4e7eb"}" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{_num(x)}" y="{bottom_y + 16}" text-anchor="middle" fill="#52606d">'
            f"{tick:.{max(0, -math.floor(math.log10(step)))}f}</text>"
        )
    out.append(
        f'<line x1="{_num(x_pos(reference))}" x2="{_num(x_pos(reference))}" y1="{top - 6}" '
        f'y2="{bottom_y}" stroke="#52606d" stroke-width="1.5" stroke-dasharray="4 3"/>'
    )
    out.append(
        f'<text x="{_num(label_w + plot_w / 2)}" y="{bottom_y + 36}" text-anchor="middle" '
        f'fill="#323f4b">{escape(x_label)}</text>'
    )
    if not rows:
        out.append(
            f'<text x="{_num(label_w + plot_w / 2)}" y="{top + row_h / 2 + 4}" '
            f'text-anchor="middle" fill="#7b8794">no estimates</text>'
        )
    for index, row in enumerate(rows):
        y = top + index * row_h + row_h / 2
        stroke = colour(3) if row.flagged else colour(0)
        out.append(
            f'<text x="{label_w - 8}" y="{_num(y + 4)}" text-anchor="end" fill="#323f4b">'
            f"<title>{escape(row.label)}</title>"
            f"{escape(_truncate(row.label, int((label_w - 14) / _CHAR_W)))}</text>"
        )
        if not math.isfinite(row.value):
            tip = f"{row.label}: no estimate" + (f" ({row.note})" if row.note else "")
            out.append(
                f'<g class="estimate"><title>{escape(tip)}</title>'
                f'<text x="{label_w + 6}" y="{_num(y + 4)}" fill="#9aa5b1">no estimate</text></g>'
            )
            continue
        tip = f"{row.label}: {row.value:+.3f} [95% interval {row.low:+.3f} to {row.high:+.3f}]"
        tip += f"; {row.note}" if row.note else ""
        group = [f'<g class="estimate{" flagged" if row.flagged else ""}">']
        group.append(f"<title>{escape(tip)}</title>")
        if math.isfinite(row.low) and math.isfinite(row.high):
            x1, x2 = x_pos(row.low), x_pos(row.high)
            group.append(
                f'<line x1="{_num(x1)}" x2="{_num(x2)}" y1="{_num(y)}" y2="{_num(y)}" '
                f'stroke="{stroke}" stroke-width="2"/>'
            )
            for cap in (x1, x2):
                group.append(
                    f'<line x1="{_num(cap)}" x2="{_num(cap)}" y1="{_num(y - 4)}" '
                    f'y2="{_num(y + 4)}" stroke="{stroke}" stroke-width="1.5"/>'
                )
        group.append(
            f'<circle cx="{_num(x_pos(row.value))}" cy="{_num(y)}" r="4.5" fill="{stroke}" '
            'stroke="#fff" stroke-width="1.5"/>'
        )
        group.append("</g>")
        out.extend(group)
    out.append("</svg>")
    return "\n".join(out)


@dataclass(frozen=True)
class ScatterPoint:
    """One labelled point of a `rate_scatter`, with its interval on each axis (NaN: none)."""

    label: str
    x: float
    y: float
    x_low: float = math.nan
    x_high: float = math.nan
    y_low: float = math.nan
    y_high: float = math.nan
    note: str = ""


@dataclass(frozen=True)
class Curve:
    """A line of a `rate_scatter` through `points` (x, y); `band` holds (x, low, high)
    triples shaded around it (an interval), `dashed` draws a reference line."""

    name: str
    points: Sequence[tuple[float, float]]
    dashed: bool = False
    band: Sequence[tuple[float, float, float]] = ()


def rate_scatter(
    points: Sequence[ScatterPoint],
    curves: Sequence[Curve] = (),
    *,
    element_id: str,
    title: str,
    x_label: str,
    y_label: str,
    size: int = 360,
) -> str:
    """A scatter of rates on [0, 1] x [0, 1]: labelled points with error bars on both axes,
    and curves (fitted or reference) listed in a legend under the plot.

    The n-th curve is drawn in the palette's (n + 1)-th colour, the points in the first.
    """
    left, right, top = 56, 24, 36
    legend_rows = max(1, len(curves))
    bottom = 52 + 20 * legend_rows
    width, height = left + size + right, top + size + bottom

    def x_pos(x: float) -> float:
        return left + size * min(1.0, max(0.0, x))

    def y_pos(y: float) -> float:
        return top + size * (1 - min(1.0, max(0.0, y)))

    out = [
        f'<svg id="{_attr(element_id)}" class="chart rate-scatter" role="img" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMidYMid meet" '
        f'width="{width}" height="{height}" {_FONT} font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="20" font-size="14" font-weight="600" fill="#1f2933">'
        f"{escape(title)}</text>",
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        stroke = "#9aa5b1" if tick == 0 else "#e4e7eb"
        x, y = x_pos(tick), y_pos(tick)
        out.append(
            f'<line x1="{left}" x2="{left + size}" y1="{_num(y)}" y2="{_num(y)}" '
            f'stroke="{stroke}" stroke-width="1"/>'
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{top}" y2="{top + size}" '
            f'stroke="{stroke}" stroke-width="1"/>'
            f'<text x="{left - 8}" y="{_num(y + 4)}" text-anchor="end" fill="#52606d">'
            f"{tick:.2f}</text>"
            f'<text x="{_num(x)}" y="{top + size + 18}" text-anchor="middle" '
            f'fill="#52606d">{tick:.2f}</text>'
        )
    out.append(
        f'<text x="{_num(left + size / 2)}" y="{top + size + 38}" text-anchor="middle" '
        f'fill="#323f4b">{escape(x_label)}</text>'
        f'<text transform="translate(14 {_num(top + size / 2)}) rotate(-90)" '
        f'text-anchor="middle" fill="#323f4b">{escape(y_label)}</text>'
    )
    for index, curve in enumerate(curves):
        stroke = colour(index + 1)
        group = [f'<g class="curve" data-curve="{_attr(curve.name)}">']
        group.append(f"<title>{escape(curve.name)}</title>")
        if curve.band:
            upper = [f"{_num(x_pos(x))},{_num(y_pos(h))}" for x, _, h in curve.band]
            lower = [f"{_num(x_pos(x))},{_num(y_pos(lo))}" for x, lo, _ in reversed(curve.band)]
            group.append(
                f'<polygon points="{" ".join(upper + lower)}" fill="{stroke}" '
                'fill-opacity="0.15" stroke="none"/>'
            )
        path = " ".join(f"{_num(x_pos(x))},{_num(y_pos(y))}" for x, y in curve.points)
        dash = ' stroke-dasharray="6 4"' if curve.dashed else ""
        group.append(
            f'<polyline points="{path}" fill="none" stroke="{stroke}" stroke-width="2"{dash}/>'
        )
        group.append("</g>")
        out.extend(group)
    ink = colour(0)
    for point in points:
        if not (math.isfinite(point.x) and math.isfinite(point.y)):
            continue
        px, py = x_pos(point.x), y_pos(point.y)
        tip = (
            f"{point.label}: x {point.x:.3f} [{point.x_low:.3f}, {point.x_high:.3f}], "
            f"y {point.y:.3f} [{point.y_low:.3f}, {point.y_high:.3f}]"
        ) + (f"; {point.note}" if point.note else "")
        group = [f'<g class="point" data-label="{_attr(point.label)}">']
        group.append(f"<title>{escape(tip)}</title>")
        if math.isfinite(point.x_low) and math.isfinite(point.x_high):
            group.append(
                f'<line x1="{_num(x_pos(point.x_low))}" x2="{_num(x_pos(point.x_high))}" '
                f'y1="{_num(py)}" y2="{_num(py)}" stroke="{ink}" stroke-width="1.5"/>'
            )
        if math.isfinite(point.y_low) and math.isfinite(point.y_high):
            group.append(
                f'<line x1="{_num(px)}" x2="{_num(px)}" y1="{_num(y_pos(point.y_low))}" '
                f'y2="{_num(y_pos(point.y_high))}" stroke="{ink}" stroke-width="1.5"/>'
            )
        group.append(
            f'<circle cx="{_num(px)}" cy="{_num(py)}" r="4.5" fill="{ink}" '
            'stroke="#fff" stroke-width="1.5"/>'
        )
        anchor = "end" if point.x > 0.5 else "start"
        shift = -8 if anchor == "end" else 8
        group.append(
            f'<text x="{_num(px + shift)}" y="{_num(py - 6)}" text-anchor="{anchor}" '
            f'fill="#323f4b">{escape(_truncate(point.label, 24))}</text>'
        )
        group.append("</g>")
        out.extend(group)
    legend_top = top + size + 60
    for index, curve in enumerate(curves):
        ly = legend_top + index * 20
        dash = ' stroke-dasharray="6 4"' if curve.dashed else ""
        out.append(
            f'<g class="legend-item"><title>{escape(curve.name)}</title>'
            f'<line x1="{left}" x2="{left + 24}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{colour(index + 1)}" stroke-width="2"{dash}/>'
            f'<text x="{left + 32}" y="{ly}" fill="#323f4b">'
            f"{escape(_truncate(curve.name, int((size - 40) / _CHAR_W)))}</text></g>"
        )
    out.append("</svg>")
    return "\n".join(out)
