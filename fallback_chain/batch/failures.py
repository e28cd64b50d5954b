"""The failures file: every item not delivered, in the input's own format, with its id filled in
and an ``error`` column (CSV) or field (JSONL), ready to be fed back as input (the reader
ignores ``error``). Written row by row as failures happen; it lists this run's failures only
(a stale file from an earlier run is removed at the start). Text that is not valid Unicode (a
lone surrogate) is written as its escape, ``\\ud800``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from typing import IO, Any

from ..secrets import redact
from .reader import Format


class FailuresWriter:
    def __init__(self, url: str, fmt: Format, header: list[str], *,
                 storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.fmt = fmt
        self.count = 0
        self._options = storage_options or {}
        names = [h.strip().lower() for h in header]
        self._columns = list(header) + [c for c in ("id", "error") if c not in names]
        self._names = names + [c for c in ("id", "error") if c not in names]
        self._fh: IO[str] | None = None
        self._csv: Any = None
        self._local = "://" not in url or url.startswith("file://")

    def remove_stale(self) -> None:
        """Delete a failures file left by an earlier run."""
        if self._local:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.url.removeprefix("file://"))
            return
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(self.url, **self._options)
        if fs.exists(path):
            fs.rm_file(path)

    def _open(self) -> IO[str]:
        if self._local:
            path = self.url.removeprefix("file://")
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            fh: IO[str] = open(_create_replacing(path), "w", newline="",  # noqa: SIM115
                               encoding="utf-8", errors="backslashreplace")
        else:
            import fsspec

            fh = fsspec.open(self.url, "w", newline="", encoding="utf-8",
                             errors="backslashreplace", **self._options).open()
        if self.fmt == "csv":
            self._csv = csv.writer(fh)
            self._csv.writerow(self._columns)
        return fh

    def write(self, row: dict[str, Any] | None, item_id: str | None, error: str, *,
              line: int | None = None, raw: str | None = None) -> None:
        if self._fh is None:
            self._fh = self._open()
        self.count += 1
        values = dict(row or {})
        if item_id is not None:
            values["id"] = item_id
        values["error"] = error = redact(error)  # any exception's text: no key in the file
        if self.fmt == "csv":
            self._csv.writerow([_cell(values.get(n)) for n in self._names])
        else:
            if row is None:
                values = {"error": error, "line": line, "raw": raw}
            self._fh.write(json.dumps(values, ensure_ascii=False) + "\n")
        if self._local:
            self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _create_replacing(path: str) -> int:
    """A new file at ``path`` (a descriptor): anything there (a symbolic link planted since the
    start of the run, above all) is replaced, never followed, never truncated."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    while True:
        try:
            return os.open(path, flags, 0o666)
        except FileExistsError:
            os.unlink(path)  # removes a link itself, not its target


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
