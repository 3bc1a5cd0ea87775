"""Tables that fit the terminal (an 80-column SSH window included) without cutting an identifier.

Rich shrinks a table that is wider than the terminal by wrapping, then by cutting cells
with "…". A cut code, MAC, IP or plan name is worse than useless: it is the value the next
command needs. So each :class:`Column` says whether it holds an identifier (``key``: printed
whole on one line) and how readily it may be left out (``drop``: the highest goes first).
:func:`print_table` leaves out droppable columns until the identifiers fit, lets the other
columns wrap, and says what it left out (``--json`` has everything). Piped output (not a
terminal) is not squeezed: rich then uses ``$COLUMNS`` or 80, and the same rules apply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import click
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

__all__ = ["Column", "fit_table", "print_table"]


@dataclass(frozen=True)
class Column:
    """One column: its header, whether it holds an identifier, and its drop priority."""

    header: str
    key: bool = False  # an identifier (code, MAC, IP, plan, account): never wrapped or cut
    drop: int = 0  # 0: always shown; otherwise left out when too narrow, highest first
    justify: Literal["left", "right"] = "left"


def _build(columns: Sequence[Column], rows: Sequence[Sequence[str]], keep: list[int], **options) -> Table:
    table = Table(**options)
    for i in keep:
        column = columns[i]
        if column.key:
            longest = max([cell_len(column.header), *(cell_len(str(row[i])) for row in rows)])
            # fold (never "…") is only a last resort, when even the identifiers alone are too wide
            table.add_column(
                column.header, justify=column.justify, no_wrap=True, min_width=longest, overflow="fold"
            )
        else:
            table.add_column(column.header, justify=column.justify, overflow="fold")
    for row in rows:
        table.add_row(*(str(row[i]) for i in keep))
    return table


def fit_table(
    columns: Sequence[Column], rows: Iterable[Sequence[object]], width: int, **options
) -> tuple[Table, list[str]]:
    """Return the table for ``width`` columns and the headers left out to make it fit."""
    cells = [[str(cell) for cell in row] for row in rows]
    keep = list(range(len(columns)))
    console = Console(width=100_000)  # measure unclamped: Measurement.get caps at the console's width
    while True:
        table = _build(columns, cells, keep, **options)
        minimum = Measurement.get(console, console.options, table).minimum
        droppable = [i for i in keep if columns[i].drop]
        if minimum <= width or not droppable:
            left_out = [c.header for i, c in enumerate(columns) if i not in keep]
            return table, left_out
        keep.remove(max(droppable, key=lambda i: (columns[i].drop, i)))


def print_table(
    columns: Sequence[Column], rows: Iterable[Sequence[object]], *, console: Console | None = None, **options
) -> None:
    """Print the rows as a table fitting ``console`` (see the module docstring)."""
    console = console or Console()
    table, left_out = fit_table(columns, rows, console.width, **options)
    console.print(table)
    if left_out:
        click.echo(f"(left out to fit {console.width} columns: {', '.join(left_out)}; see --json)", err=True)
