"""Tables that fit the terminal: columns when they fit, one block per record when not.

Rich shrinks a table that is too wide by cutting its cells short ("run-73ff5…"), which
hides exactly what a reader needs: ids, k, model names. `print_records` never does.
It prints an ordinary table when every column fits at full width; when not, it lets
the columns marked `wrap` break at spaces (never inside a word); and when even that is
too wide, it prints each record as a block of `key  value` lines, which fits any width.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from skillmix.terminal import safe_text

Cell = str | Text  # a str is plain text, never markup


@dataclass(frozen=True)
class Column:
    """One column: its header, alignment, whether its cells may wrap at spaces, and the
    name its values get in the one-block-per-record layout (default: the header)."""

    header: str
    justify: Literal["left", "right"] = "left"
    wrap: bool = False
    key: str = ""


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(safe_text(cell))


def _widest_line(text: str) -> int:
    return max((Text(line).cell_len for line in text.split("\n")), default=0)


def _widest_word(text: str) -> int:
    return max((Text(word).cell_len for word in text.split()), default=0)


def column_widths(
    columns: Sequence[Column], rows: Sequence[Sequence[Text]], width: int
) -> list[int] | None:
    """Content widths that fit `width` without cutting a word, or None when none do.

    Every column gets its full width if the table fits; otherwise wrapping columns start
    at their longest word and the room left goes first to the columns that need least to
    be whole again.
    """
    full = []
    least = []
    for i, column in enumerate(columns):
        texts = [column.header, *(row[i].plain for row in rows)]
        full.append(max(_widest_line(t) for t in texts))
        least.append(max(_widest_word(t) for t in texts) if column.wrap else full[-1])
    # Each column has one space of padding on each side and a border on its left; one
    # more border closes the row.
    room = width - 3 * len(columns) - 1
    if sum(full) <= room:
        return full
    if sum(least) > room:
        return None
    # Columns that need the same room grow together (the metrics of a row all wrap, or
    # none does), smallest need first.
    widths = list(least)
    spare = room - sum(least)
    needs: dict[int, list[int]] = {}
    for i in range(len(columns)):
        if full[i] > least[i]:
            needs.setdefault(full[i] - least[i], []).append(i)
    for need, group in sorted(needs.items()):
        if need * len(group) > spare:
            break
        for i in group:
            widths[i] = full[i]
        spare -= need * len(group)
    return widths


def print_records(
    console: Console,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Cell]],
    *,
    title: Cell = "",
    caption: Cell = "",
    footnotes: Sequence[str] = (),
) -> None:
    """Print `rows` under `columns` as a table when it fits `console.width`, else as one
    block of `header  value` lines per row; then the caption and `footnotes`.

    Nothing is cut short in either layout: ids, numbers and names stay whole.
    """
    cells = [[_text(c) for c in row] for row in rows]
    widths = column_widths(columns, cells, console.width)
    if title:
        console.print(_text(title), style="table.title")
    if widths is not None:
        table = Table()
        for column, width in zip(columns, widths, strict=True):
            table.add_column(
                Text(column.header),
                justify=column.justify,
                width=width,
                no_wrap=not column.wrap,
                overflow="fold",
            )
        for row in cells:
            table.add_row(*row)
        console.print(table)
    else:
        _print_blocks(console, columns, cells)
    if caption:
        console.print(_text(caption), style="table.caption")
    for note in footnotes:
        console.print(_text(note), style="dim")


def _print_blocks(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Text]],
) -> None:
    keys = [c.key or " ".join(c.header.split()) for c in columns]
    key_width = min(max((len(k) for k in keys), default=0), console.width // 3)
    for n, row in enumerate(rows):
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold", width=key_width, overflow="fold")
        grid.add_column(overflow="fold")
        for key, value in zip(keys, row, strict=True):
            if value.plain.strip():
                grid.add_row(Text(key), value)
        if n:
            console.print()
        console.print(grid)
