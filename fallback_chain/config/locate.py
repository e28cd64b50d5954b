"""Where each key of a TOML document is: ``tomllib`` gives values but no positions, so this
scanner walks the text once and maps every key path to its line.

Paths are tuples like the ones pydantic reports: table and key names, and integers for elements
of arrays and arrays of tables (``('chains', 'main', 'providers', 0, 'model')``). The text must
already have been parsed by ``tomllib`` (so it is valid TOML); if the scanner still meets
something it does not understand, it stops and keeps what it found: positions are a help for
error messages, never a reason to fail.
"""

from __future__ import annotations

import bisect
import contextlib
import tomllib

Path = tuple[str | int, ...]

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_SPACE = " \t"


class Positions:
    """Line numbers of the keys of one document. ``line(path)`` answers with the line of
    ``path`` or of its nearest ancestor that has one (``None`` if none does)."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Path, int] = {}
        with contextlib.suppress(_Stop, IndexError, tomllib.TOMLDecodeError):
            _Scanner(text, self.lines).document()  # best effort: keep what was found

    def line(self, path: Path) -> int | None:
        for end in range(len(path), 0, -1):
            found = self.lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None

    def exact(self, path: Path) -> int | None:
        return self.lines.get(tuple(path))


class _Stop(Exception):
    pass


class _Scanner:
    def __init__(self, text: str, out: dict[Path, int]) -> None:
        self.s = text
        self.i = 0
        self.out = out
        self._newlines = [k for k, c in enumerate(text) if c == "\n"]
        self._arrays: dict[Path, int] = {}  # array-of-tables path -> index of its last element

    # ------------------------------------------------------------------------ helpers

    def lineno(self, i: int | None = None) -> int:
        return bisect.bisect_left(self._newlines, self.i if i is None else i) + 1

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def skip_space(self) -> None:
        while self.peek() and self.peek() in _SPACE:
            self.i += 1

    def skip_comment(self) -> None:
        if self.peek() == "#":
            while self.peek() and self.peek() != "\n":
                self.i += 1

    def skip_blank(self) -> None:
        """Spaces, newlines and comments."""
        while True:
            self.skip_space()
            self.skip_comment()
            if self.peek() in ("\n", "\r"):
                self.i += 1
                continue
            return

    def expect(self, text: str) -> None:
        if not self.s.startswith(text, self.i):
            raise _Stop
        self.i += len(text)

    def record(self, path: Path, line: int) -> None:
        self.out.setdefault(path, line)

    # ------------------------------------------------------------------------ grammar

    def document(self) -> None:
        table: Path = ()
        while True:
            self.skip_blank()
            if not self.peek():
                return
            line = self.lineno()
            if self.s.startswith("[[", self.i):
                self.i += 2
                keys = self.key()
                self.skip_space()
                self.expect("]]")
                parent = self.resolve(keys[:-1])
                array = (*parent, keys[-1])
                for k in range(1, len(array)):
                    self.record(array[:k], line)
                self.record(array, line)
                index = self._arrays.get(array, -1) + 1
                self._arrays[array] = index
                table = (*array, index)
                self.record(table, line)
            elif self.peek() == "[":
                self.i += 1
                keys = self.key()
                self.skip_space()
                self.expect("]")
                table = self.resolve(keys)
                for k in range(1, len(table)):
                    self.record(table[:k], line)
                self.record(table, line)
            else:
                self.pair(table)
            self.skip_space()
            self.skip_comment()

    def resolve(self, keys: list[str]) -> Path:
        """A header's keys as a path, stepping into the last element of arrays of tables."""
        path: Path = ()
        for k in keys:
            path = (*path, k)
            if path in self._arrays:
                path = (*path, self._arrays[path])
        return path

    def pair(self, table: Path) -> None:
        line = self.lineno()
        keys = self.key()
        self.skip_space()
        self.expect("=")
        self.skip_space()
        path = (*table, *keys)
        for k in range(len(table) + 1, len(path)):
            self.record(path[:k], line)
        self.record(path, line)
        self.value(path)

    def key(self) -> list[str]:
        parts = []
        while True:
            self.skip_space()
            c = self.peek()
            if c == '"' or c == "'":
                start = self.i
                self.string_literal()
                parts.append(tomllib.loads(f"k = {self.s[start:self.i]}")["k"])
            else:
                start = self.i
                while self.peek() and self.peek() in _BARE:
                    self.i += 1
                if self.i == start:
                    raise _Stop
                parts.append(self.s[start:self.i])
            self.skip_space()
            if self.peek() != ".":
                return parts
            self.i += 1

    def value(self, path: Path) -> None:
        c = self.peek()
        if c in ('"', "'"):
            self.string_literal()
        elif c == "[":
            self.array(path)
        elif c == "{":
            self.inline_table(path)
        else:
            while self.peek() and self.peek() not in ",]}\n\r#":
                self.i += 1

    def string_literal(self) -> None:
        q = self.peek()
        if self.s.startswith(q * 3, self.i):
            self.i += 3
            while not self.s.startswith(q * 3, self.i):
                if not self.peek():
                    raise _Stop
                self.i += 2 if q == '"' and self.peek() == "\\" else 1
            self.i += 3
            while self.peek() == q:  # up to two quotes may end the content
                self.i += 1
            return
        self.i += 1
        while self.peek() != q:
            if not self.peek() or self.peek() == "\n":
                raise _Stop
            self.i += 2 if q == '"' and self.peek() == "\\" else 1
        self.i += 1

    def array(self, path: Path) -> None:
        self.expect("[")
        index = 0
        while True:
            self.skip_blank()
            if self.peek() == "]":
                self.i += 1
                return
            element = (*path, index)
            self.record(element, self.lineno())
            self.value(element)
            self.skip_blank()
            if self.peek() == ",":
                self.i += 1
                index += 1
            elif self.peek() != "]":
                raise _Stop

    def inline_table(self, path: Path) -> None:
        self.expect("{")
        while True:
            self.skip_blank()
            if self.peek() == "}":
                self.i += 1
                return
            self.pair(path)
            self.skip_blank()
            if self.peek() == ",":
                self.i += 1
            elif self.peek() != "}":
                raise _Stop
