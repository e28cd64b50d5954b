"""The command line page: every command and option of the ``fallback-chain`` Typer app."""

from __future__ import annotations

import re
from typing import Any

from ._md import code, page, table


def _text(value: Any) -> str:
    """Help text as a reader sees it: Rich escapes (``\\[sim]``) and markup removed."""
    text = str(value or "")
    text = re.sub(r"(?<!\\)\[/?(?:bold|italic|dim|red|green|yellow|cyan|magenta|blue)\]", "",
                  text)
    return text.replace("\\[", "[")


def _default(param: Any) -> str:
    default = param.default
    if getattr(param, "is_flag", False) and getattr(param, "secondary_opts", None):
        return code(param.opts[0] if default else param.secondary_opts[0])
    if getattr(param, "is_flag", False):
        return "off" if not default else "on"
    if default is None or default == () or callable(default):
        return ""
    return code(default)


def _names(param: Any) -> str:
    if param.param_type_name == "argument":
        return code(str(param.name).upper())
    names = [*param.opts, *param.secondary_opts]
    return ", ".join(code(n) for n in names)


def _rows(command: Any) -> list[tuple[str, str, str, str]]:
    rows = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        kind = "flag" if getattr(param, "is_flag", False) else _type_name(param)
        required = " (required)" if param.required else ""
        rows.append((_names(param), kind + required, _default(param),
                     _text(getattr(param, "help", ""))))
    return rows


def _type_name(param: Any) -> str:
    import enum

    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " | ".join(str(m.value) for m in annotation)
    name = getattr(annotation, "__name__", None) or str(annotation or "text")
    return {"str": "text", "int": "integer", "float": "number"}.get(name, name).replace(
        "typing.", "")


def _commands(command: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    subs = getattr(command, "commands", None)
    if subs is None:
        return [(path, command)]
    found = []
    for name in sorted(subs):
        found += _commands(subs[name], [*path, name])
    return found


def _summary(command: Any) -> str:
    text = _text(command.help or command.short_help or "")
    return text.strip().split("\n\n")[0].replace("\n", " ")


def cli_page() -> str:
    import typer.main

    from ..cli import app

    root = typer.main.get_command(app)
    commands = _commands(root, [])
    overview = [(code("fallback-chain " + " ".join(path)), _summary(cmd),
                 "yes" if any("--json" in getattr(p, "opts", ()) for p in cmd.params) else "")
                for path, cmd in commands]
    parts = [table(("command", "what it does", "`--json`"), overview)]
    for path, cmd in commands:
        parts.append([f"## `fallback-chain {' '.join(path)}`", "", _summary(cmd), "",
                      *table(("option", "takes", "default", "meaning"), _rows(cmd))])
    return page(
        "The command line",
        "Every command of `fallback-chain` (the `cli` extra) with every option, as "
        "`fallback-chain COMMAND --help` prints them. Every command also takes `--help`.",
        *parts,
    )
