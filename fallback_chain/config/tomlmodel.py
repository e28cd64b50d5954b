"""One way of reading TOML files: ``tomllib`` parses, a pydantic model validates, and every
problem is reported as ``FILE:LINE: field: message`` (the line when the key can be found).

Used by the experiment files of the simulator and the emulator's fault files; the config file
(``loader.py``) reports its problems in the same form. Imports no pydantic until it validates.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import Problem
from .hints import did_you_mean
from .locate import Positions

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError
    from pydantic_core import ErrorDetails

M = TypeVar("M", bound="BaseModel")


class TomlProblems(ValueError):
    """A TOML document is not valid TOML or does not fit its model; ``problems`` lists each
    with its line (when known) and field; ``str()`` shows them one per line."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = problems
        self.source = source
        super().__init__("\n".join(render(p, source) for p in problems))


def render(problem: Problem, source: str | None) -> str:
    """``FILE:LINE: field: message`` (parts that are not known are left out)."""
    where = source or ""
    if where and problem.line:
        where += f":{problem.line}"
    parts = [p for p in (where, problem.field, problem.message) if p]
    return ": ".join(parts)


def parse(text: str, source: str | None = None) -> dict[str, Any]:
    """The document, or :class:`TomlProblems` naming the line of a syntax error."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if m is None:
            raise TomlProblems([Problem(None, (), f"not valid TOML: {message}")], source
                               ) from None
        what = message[:m.start()].strip()
        raise TomlProblems([Problem(int(m[1]), (), f"not valid TOML: {what} (column {m[2]})")],
                           source) from None


def validate(model: type[M], data: Mapping[str, Any], *, text: str | None = None,
             source: str | None = None, document: bool = True) -> M:
    """``model.model_validate(data)``; a :class:`TomlProblems` lists every problem, with its
    line in ``text`` when ``text`` (the document ``data`` came from) is given. ``document``:
    ``data`` is a whole file (rather than one table of it)."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise TomlProblems(problems(exc, model, text, document), source) from None


def problems(exc: ValidationError, model: type[BaseModel], text: str | None = None,
             document: bool = True) -> list[Problem]:
    where = Positions(text) if text is not None else None
    out = [_problem(e, model, where, document) for e in exc.errors()]
    return sorted(out, key=lambda p: p.line or 0)


#: Kinds of pydantic error whose message does not show the value that was refused.
_SHOW_INPUT = ("_type", "_parsing", "literal_error", "greater_than", "greater_than_equal",
               "less_than", "less_than_equal")


def _problem(error: ErrorDetails, model: type[BaseModel], where: Positions | None,
             document: bool) -> Problem:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        fields = fields_at(model, loc[:-1])
        key = str(loc[-1])
        hint = (did_you_mean(key, fields) or f"; valid keys here: {', '.join(sorted(fields))}"
                ) if fields else ""
        message = ("unknown top-level key" if document and len(loc) == 1 else "unknown key"
                   ) + hint
    elif kind == "missing":
        message = "required"
    elif kind == "too_short":
        least = (error.get("ctx") or {}).get("min_length", 1)
        message = f"must have at least {least} element{'s' if least != 1 else ''}"
    else:
        message = error["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        message = message.replace("Input should be", "must be")
        if kind.endswith(_SHOW_INPUT) and "input" in error:
            message += f" (got {error['input']!r})"
    line = where.line(loc) if where is not None else None
    return Problem(line, loc, message)


def fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str] | None:
    """The keys a table at ``loc`` takes (``None`` when that is not a model)."""
    import typing

    from pydantic import BaseModel

    tp: Any = model
    for part in loc:
        tp = _unwrap_optional(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return None
            tp = field.annotation
        elif typing.get_origin(tp) in (dict, list):
            tp = typing.get_args(tp)[-1]
        else:
            return None
    tp = _unwrap_optional(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return None


def _unwrap_optional(tp: Any) -> Any:
    import types
    import typing

    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp
