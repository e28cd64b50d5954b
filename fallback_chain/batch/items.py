"""What the input reader hands to the job pool: a valid item, or a row error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..request import ImageRequest


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One valid input row.

    ``id`` is the row's id or, when it has none, one derived from its content (stable across
    runs); ``name`` is the safe base name of its output files; ``key`` identifies the
    generation parameters (identical requests share one generation; ``repeat`` marks every row
    after the first with its key); ``row`` is the row as read, for the failures file.
    """

    id: str
    name: str
    line: int
    request: ImageRequest
    key: str
    row: dict[str, Any]
    derived_id: bool = False
    repeat: bool = False  # an earlier row of the input has the same generation key


@dataclass(frozen=True, slots=True)
class RowError:
    """A row that cannot become a request. ``field`` is ``None`` when the whole row is bad
    (unparsable JSON, wrong number of CSV cells, invalid UTF-8)."""

    source: str
    line: int
    field: str | None
    message: str
    row: dict[str, Any] | None = None
    raw: str | None = None
    id: str | None = None
    end_line: int | None = None

    @property
    def where(self) -> str:
        lines = (f"lines {self.line}-{self.end_line}" if self.end_line and self.end_line > self.line
                 else f"line {self.line}")
        return f"{self.source}, {lines}"

    def __str__(self) -> str:
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{self.where}: {what}"
