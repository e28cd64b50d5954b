"""The secrets file a config may name: ``NAME=value`` lines (``#`` comments, an optional
``export`` prefix, optional quotes), read when a provider needs a key and never copied into
``os.environ``. Every value read is registered for redaction. Errors name the line, never the
value."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..secrets import register_secret
from .errors import ConfigError, Problem

_LINE = re.compile(r"^(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)$")


class SecretsFile:
    """Keys from one file, read on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._values: dict[str, str] | None = None

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    def get(self, name: str) -> str | None:
        if self._values is None:
            self._values = read_secrets(self.path) if self.exists else {}
        return self._values.get(name) or None

    def loose_permissions(self) -> bool:
        """True when others than the owner may read the file (POSIX only)."""
        if os.name != "posix" or not self.exists:
            return False
        return bool(self.path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))

    def __repr__(self) -> str:
        return f"SecretsFile({str(self.path)!r})"


def read_secrets(path: Path) -> dict[str, str]:
    """The ``NAME=value`` pairs of ``path``; ``ConfigError`` naming the line for bad lines."""
    values: dict[str, str] = {}
    problems = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            problems.append(Problem(number, (), "expected NAME=value (the line is not shown: "
                                                "it may hold a key)"))
            continue
        value = m["value"].strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        register_secret(value)
        values[m["name"]] = value
    if problems:
        raise ConfigError(path, problems)
    return values
