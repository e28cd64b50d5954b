"""Print a Rich table without cutting values, whatever the width: in a narrow terminal, or
piped (where Rich assumes 80 columns unless ``$COLUMNS`` says otherwise).

Rich shrinks columns to fit the console and ends cut values with an ellipsis (``$0.03…``,
``provi…``). :func:`print_table` first gives every column room for its longest value (a
header may wrap between its words; long prose may wrap between words too); when even that does
not fit, the table is printed as one block of ``header: value`` lines per row instead. No
value is ever shortened. Rich is imported by the caller; this module imports it lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

#: A cell with spaces and longer than this may wrap between its words (prose, messages).
PROSE = 24


def _plain(cell: Any) -> str:
    from rich.errors import MarkupError
    from rich.text import Text

    if isinstance(cell, Text):
        return cell.plain
    if isinstance(cell, str):
        try:
            return Text.from_markup(cell).plain
        except MarkupError:
            return cell
    return str(cell)


def _needed(values: list[str], header: str) -> int:
    """The narrowest width at which no value of the column is cut."""
    longest_word = max((len(w) for v in [*values, header] for w in v.split()), default=1)
    widest = 1
    for v in values:
        lines = v.splitlines() or [""]
        for line in lines:
            widest = max(widest, longest_word if " " in line and len(line) > PROSE
                         else len(line))
    return max(widest, longest_word)


def _natural(values: list[str], header: str) -> int:
    """The width at which nothing of the column wraps."""
    lines = [line for v in [*values, header] for line in (v.splitlines() or [""])]
    return max((len(line) for line in lines), default=1) or 1


def fit(table: Table, width: int) -> bool:
    """Set each column of ``table`` to a fixed width at which none of its values is cut
    (prose and headers may wrap between words); False when that cannot fit in ``width``."""
    columns = table.columns
    if not columns:
        return True
    overhead = 2 * len(columns)  # padding
    if table.box is not None:
        overhead += len(columns) + 1 if table.show_edge else len(columns) - 1
    lows, highs = [], []
    for column in columns:
        values = [_plain(c) for c in column._cells]
        header = _plain(column.header)
        low = _needed(values, header)
        lows.append(low)
        highs.append(max(low, _natural(values, header)))
    room = width - overhead
    if sum(lows) > room:
        return False
    widths = list(highs)
    excess = sum(widths) - room
    while excess > 0:  # take from the column with the most to spare, one cell at a time
        i = max(range(len(widths)), key=lambda k: widths[k] - lows[k])
        widths[i] -= 1
        excess -= 1
    for column, w in zip(columns, widths, strict=True):
        column.width = w
        column.min_width = None
        column.max_width = None
        column.ratio = None
        column.overflow = "fold"
    return True


def print_table(console: Console, table: Table) -> None:
    """``console.print(table)`` with no value cut; as ``header: value`` blocks when the table
    is too wide for the console."""
    if fit(table, console.width):
        console.print(table)
        return
    from rich.markup import escape

    if table.title:
        console.print(f"{_plain(table.title)}", style="bold", markup=False)
    headers = [_plain(c.header) for c in table.columns]
    rows = list(zip(*([_plain(c) for c in col._cells] for col in table.columns), strict=True))
    for row in rows:
        if not table.show_header:
            console.print(escape(": ".join(v for v in row if v)), soft_wrap=True)
            continue
        first, rest = row[0], row[1:]
        label = f"{headers[0]}: {first}" if headers[0] else first
        console.print(escape(label), soft_wrap=True)
        for header, value in zip(headers[1:], rest, strict=True):
            if value:
                console.print(escape(f"  {header}: {value}" if header else f"  {value}"),
                              soft_wrap=True)
