"""Rows become items: validate each row, give it an id (its own, or one derived from its
content), refuse duplicate ids. A streaming pipeline: one row in memory at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any

from .index import BatchIndex
from .items import BatchItem, RowError
from .naming import safe_name
from .reader import Format, RawRow, read_raw_rows
from .rows import ParsedRow, parse_row

#: Rewrites a row's values before they are parsed (``--draft``: draft quality, a fixed seed);
#: its second argument says whether the row came from a CSV file (values are strings).
RowRewrite = Callable[[dict[str, Any], bool], dict[str, Any]]


def iter_items(fh: IO[bytes], fmt: Format, source: str, index: BatchIndex,
               tenant: Mapping[str, str | None] | None = None,
               rewrite: RowRewrite | None = None
               ) -> tuple[list[str], Iterator[BatchItem | RowError]]:
    """The input's header (CSV) and its rows as ``BatchItem`` or ``RowError``, in file order.
    ``tenant``: the ``user`` and ``project`` of rows that do not name their own."""
    header, rows = read_raw_rows(fh, fmt, source)
    return header, _items(rows, fmt, source, index, tenant, rewrite)


def _items(rows: Iterator[RawRow], fmt: Format, source: str, index: BatchIndex,
           tenant: Mapping[str, str | None] | None = None,
           rewrite: RowRewrite | None = None) -> Iterator[BatchItem | RowError]:
    from_csv = fmt == "csv"
    for raw in rows:
        if raw.error is not None:
            yield raw.error
            continue
        assert raw.values is not None
        try:
            values = raw.values if rewrite is None else rewrite(raw.values, from_csv)
            parsed = parse_row(values, from_csv=from_csv, tenant=tenant)
        except Exception as exc:  # one hostile row never ends the read
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            yield RowError(source, raw.line, None, f"cannot read this row ({why})",
                           row=raw.values, id=_given_id(raw.values), end_line=raw.end_line)
            continue
        if not isinstance(parsed, ParsedRow):
            field, _ = parsed[0]
            message = "; ".join(f"{f}: {p}" if f and f != field else p for f, p in parsed)
            yield RowError(source, raw.line, field, message, row=raw.values,
                           id=_given_id(raw.values), end_line=raw.end_line)
            continue
        if parsed.id is not None:
            first = index.claim(parsed.id, raw.line)
            if first is not None:
                yield RowError(source, raw.line, "id",
                               f"{parsed.id[:80]!r} is also the id of the row on line {first}",
                               row=raw.values, id=parsed.id, end_line=raw.end_line)
                continue
            item_id, derived = parsed.id, False
        else:
            item_id, derived = index.claim_derived(parsed.content_id, raw.line), True
        yield BatchItem(item_id, safe_name(item_id), raw.line, parsed.request, parsed.key,
                        raw.values, derived, repeat=not index.claim_key(parsed.key, item_id))


def _given_id(values: dict[str, object]) -> str | None:
    value = values.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None
