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
    from rich.markup import MarkupError
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


def fit(table: Table, width: int) -> bool:
    """Give each column of ``table`` the width its values need; False when the table cannot
    fit in ``width`` columns that way."""
    needed = 0
    for column in table.columns:
        values = [_plain(c) for c in column._cells]
        column.min_width = _needed(values, _plain(column.header))
        if column.max_width is not None and column.max_width < column.min_width:
            column.max_width = None  # a cap that would cut a value
        column.overflow = "fold"
        needed += column.min_width + 2  # padding
    if table.box is not None and table.show_edge:
        needed += len(table.columns) + 1
    elif table.box is not None:
        needed += len(table.columns) - 1
    return needed <= width


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
