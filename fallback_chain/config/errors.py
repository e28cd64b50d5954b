"""What goes wrong with a config file: errors that name the file, the line and the field.

No pydantic here: the CLI imports these names to report problems without paying for the schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigurationError

Loc = tuple[str | int, ...]


def dotted(loc: Loc) -> str:
    """``('chains', 'main', 'providers', 0, 'model')`` as ``chains.main.providers[0].model``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if part.replace("_", "").replace("-", "").isalnum() else repr(part)
            out += f".{text}" if out else text
    return out


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: where (line, 1-based, when known; field as a path) and what."""

    line: int | None
    loc: Loc
    message: str

    @property
    def field(self) -> str:
        return dotted(self.loc)

    def render(self, path: Path | str) -> str:
        where = f"{path}:{self.line}" if self.line else str(path)
        return f"{where}: {self.field}: {self.message}" if self.loc else f"{where}: {self.message}"


class ConfigError(ConfigurationError):
    """The config file is missing, unreadable or invalid. ``problems`` lists every problem found,
    each with its line and field; ``str()`` shows them one per line, like a compiler."""

    def __init__(self, path: Path | str, problems: Sequence[Problem]) -> None:
        self.path = Path(path)
        self.problems = list(problems)
        lines = [p.render(path) for p in self.problems]
        head = (f"{path}: {len(lines)} problems" if len(lines) > 1 else None)
        super().__init__("\n".join([head, *lines] if head else lines))


class ConfigNotFoundError(ConfigurationError):
    """No config file was given or found; the message says where we looked and what to do."""


class ConfigWarning(UserWarning):
    """Something in a config file works but looks wrong (an unknown or retired model id...)."""
