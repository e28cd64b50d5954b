"""Streaming input: CSV (with a header) or JSONL, read line by line from a local path or any
fsspec URL (gzip and other compressions inferred from the name). Nothing is read whole: memory
stays flat however long the file is.

Each record comes out as a ``RawRow`` with the physical line numbers it spans. Bytes that are
not UTF-8 make that row a ``RowError`` naming the line and column (the rest of the file is
still read); so does a line longer than ``MAX_LINE_BYTES``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Literal

from .items import RowError

Format = Literal["csv", "jsonl"]
MAX_LINE_BYTES = 1 << 20
_BOM = b"\xef\xbb\xbf"
_EXTENSIONS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
                                  ".jsonlines": "jsonl"}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4")


class InputError(ValueError):
    """The input as a whole cannot be read (missing file, no header, unknown format)."""


@dataclass(frozen=True, slots=True)
class RawRow:
    line: int
    end_line: int
    values: dict[str, Any] | None
    error: RowError | None = None


def format_for(source: str, explicit: str | None = None) -> Format | None:
    """The format named by ``explicit`` or by the file's extension (``None``: unknown)."""
    if explicit:
        fmt = explicit.lower()
        if fmt not in ("csv", "jsonl"):
            raise InputError(f"unknown input format {explicit!r}; use csv or jsonl")
        return fmt  # type: ignore[return-value]
    name = source.rsplit("/", 1)[-1].lower()
    for comp in _COMPRESSIONS:
        name = name.removesuffix(comp)
    for ext, fmt in _EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    if name.endswith(".json"):
        raise InputError(f"{source}: a .json file is not JSON Lines; use .jsonl (one object "
                         "per line) or pass --format jsonl")
    return None


@contextmanager
def open_input(source: str, storage_options: dict[str, Any] | None = None
               ) -> Iterator[IO[bytes]]:
    """Open ``source`` (path or URL) for binary reading, decompressing by extension."""
    import fsspec

    try:
        opened = fsspec.open(source, "rb", compression="infer", **(storage_options or {}))
        fh = opened.open()
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, not a file") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{source}: cannot open ({exc})") from None
    try:
        try:
            fh.readline(0)
        except TypeError:  # fsspec's remote files take no size: buffer them ourselves
            fh = io.BufferedReader(fh, buffer_size=1 << 20)
        yield fh
    finally:
        fh.close()


class _Lines:
    """Decoded physical lines of a binary stream, with their numbers and UTF-8 problems."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.number = 0
        self.problems: dict[int, str] = {}

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self._fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while True:  # skip the rest of the over-long line
                more = self._fh.readline(MAX_LINE_BYTES)
                if not more or more.endswith(b"\n"):
                    break
            self.problems[self.number] = (
                f"line is longer than {MAX_LINE_BYTES // (1 << 20)} MiB")
            return "\n"
        if self.number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.problems[self.number] = (
                f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1} "
                "(save the file as UTF-8)")
            return raw.decode("utf-8", "replace")

    def problem_in(self, first: int, last: int) -> tuple[int, str] | None:
        for n in range(first, last + 1):
            if n in self.problems:
                return n, self.problems.pop(n)
        return None

    def forget_before(self, line: int) -> None:
        for n in [n for n in self.problems if n < line]:
            del self.problems[n]


def read_raw_rows(fh: IO[bytes], fmt: Format, source: str) -> tuple[list[str], Iterator[RawRow]]:
    """The header (CSV column names as written; for JSONL an empty list) and the rows."""
    lines = _Lines(fh)
    if fmt == "jsonl":
        return [], _jsonl_rows(lines, source)
    return _csv_rows(lines, source)


def _jsonl_rows(lines: _Lines, source: str) -> Iterator[RawRow]:
    for text in lines:
        n = lines.number
        problem = lines.problem_in(n, n)
        if problem is not None:
            yield RawRow(n, n, None, RowError(source, n, None, problem[1], raw=text.rstrip()))
            continue
        if not text.strip():
            continue
        text = text.rstrip("\r\n")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RawRow(n, n, None, RowError(
                source, n, None, f"not valid JSON: {exc.msg} at column {exc.pos + 1}",
                raw=text))
            continue
        except (ValueError, RecursionError) as exc:  # digits beyond int's limit, deep nesting
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            yield RawRow(n, n, None, RowError(source, n, None, f"not valid JSON: {why}",
                                              raw=text))
            continue
        if not isinstance(value, dict):
            yield RawRow(n, n, None, RowError(
                source, n, None, f"expected a JSON object, got {type(value).__name__}",
                raw=text))
            continue
        yield RawRow(n, n, value)


def _csv_rows(lines: _Lines, source: str) -> tuple[list[str], Iterator[RawRow]]:
    if csv.field_size_limit() < MAX_LINE_BYTES:
        csv.field_size_limit(MAX_LINE_BYTES)
    reader = csv.reader(lines)
    header: list[str] | None = None
    while header is None:
        try:
            first = next(reader)
        except StopIteration:
            return [], iter(())
        except csv.Error as exc:
            raise InputError(f"{source}, line {lines.number}: bad CSV header ({exc})") from None
        if lines.problems:
            n, why = next(iter(lines.problems.items()))
            raise InputError(f"{source}, line {n}: {why}")
        if any(c.strip() for c in first):
            header = first
    names = [c.strip().lower() for c in header]
    if "prompt" not in names:
        raise InputError(f"{source}, line {lines.number}: the first line must be a header "
                         f"naming a 'prompt' column (found {[c.strip() for c in header]})")
    dupes = sorted({c for c in names if names.count(c) > 1 and c})
    if dupes:
        raise InputError(f"{source}, line {lines.number}: column(s) {dupes} appear more than once")
    if "" in names:
        raise InputError(f"{source}, line {lines.number}: column {names.index('') + 1} of the "
                         "header has no name")
    return list(header), _csv_body(reader, lines, names, source)


def _csv_body(reader: Any, lines: _Lines, names: list[str], source: str) -> Iterator[RawRow]:
    while True:
        first = lines.number + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            last = lines.number
            lines.forget_before(last + 1)
            yield RawRow(first, last, None, RowError(source, first, None, f"bad CSV ({exc})",
                                                     end_line=last))
            continue
        last = lines.number
        if lines.problems:  # only after a bad line: the common path allocates nothing here
            problem = lines.problem_in(first, last)
            lines.forget_before(last + 1)
            if problem is not None:
                yield RawRow(first, last, None, RowError(
                    source, problem[0], None, problem[1],
                    row=dict(zip(names, cells, strict=False))))
                continue
        if not cells or (not cells[0].strip() and not any(c.strip() for c in cells)):
            continue  # a blank row
        if len(cells) != len(names):
            yield RawRow(first, last, None, RowError(
                source, first, None, f"has {len(cells)} cells but the header has {len(names)} "
                "columns (quote cells that contain commas)",
                row=dict(zip(names, cells, strict=False)), end_line=last))
            continue
        yield RawRow(first, last, dict(zip(names, cells, strict=True)))


def count_records(source: str, fmt: Format) -> int | None:
    """A quick count of the records in a local, uncompressed file (its lines, less the CSV
    header), for the progress bar; ``None`` when that would mean reading it twice remotely.
    Blank lines and multi-line CSV cells make this an overestimate."""
    import os

    if "://" in source and not source.startswith("file://"):
        return None
    path = source.removeprefix("file://")
    if path.lower().endswith(_COMPRESSIONS) or not os.path.isfile(path):
        return None
    count = 0
    blank = True
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            count += chunk.count(b"\n")
            blank = chunk.endswith(b"\n")
    if not blank:
        count += 1
    return max(0, count - (1 if fmt == "csv" else 0))
