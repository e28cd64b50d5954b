"""The experiment file page: every table and key ``fallback-chain simulate`` reads, from the
models that validate the file (``fallback_chain.simulate.experiment_file``)."""

from __future__ import annotations

import inspect
import re
import types
import typing
from typing import Any

from ._md import code, page, table
from .core_pages import member_comments


def _example_comments(*modules: Any) -> dict[str, str]:
    """``key = value  # meaning`` lines of the modules' docstring examples, by key."""
    found: dict[str, str] = {}
    for module in modules:
        for line in (inspect.getdoc(module) or "").splitlines():
            m = re.match(r"^\s*(\w+)\s*=\s*.*?\s#\s*(.+)$", line)
            if m:
                found.setdefault(m.group(1), m.group(2).strip())
    return found


def _default(info: Any) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return ""
    if isinstance(default, dict | list) and not default:
        return "{}" if isinstance(default, dict) else "[]"
    return code(repr(default) if isinstance(default, str) else default)


def type_text(annotation: Any) -> str:
    """A type as a reader writes it: ``int | None``, ``list[RatePieceTable]`` (validators and
    other ``Annotated`` metadata left out)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_text(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    if annotation is typing.Any:
        return "Any"
    return getattr(annotation, "__name__", str(annotation))


def _rows(model: Any, notes: dict[str, str]) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        rows.append((code(key), code(type_text(info.annotation)), _default(info),
                     notes.get(key) or notes.get(name, "")))
    return rows


def experiment_page() -> str:
    from ..simulate import experiment_file as ef
    from ..simulate import profiles, workload

    own = {cls: member_comments(ef.__file__ or "", cls) for cls in
           ("Header", "ConfigurationTable", "WorkloadTable", "ProfileTable", "OutageTable")}
    examples = _example_comments(workload, profiles)
    examples.setdefault("per_min", "requests per minute from that time on")
    examples.setdefault("from", "the time of day the rate starts")
    tables = [
        ("[experiment]", "the header", ef.Header, own["Header"]),
        ("[policy]", "`Policy` fields every configuration starts from (as a config file's "
         "`policy`)", None, {}),
        ("[workload]", "when requests arrive and what they ask for (ignored by `--replay`)",
         ef.WorkloadTable, {**examples, **own["WorkloadTable"]}),
        ("rate_schedule = [{...}]", "one piece of `[workload]`'s `rate_schedule`",
         ef.RatePieceTable, examples),
        ("[providers.NAME]", "one simulated vendor (a profile)", ef.ProfileTable,
         {**examples, **own["ProfileTable"]}),
        ("outages = [{...}]", "one window of a profile's `outages`, from `start` to `end`: "
         "`outcome` (one outcome, or a list sharing `rate`, the share of calls that fail) or "
         "`faults` (`{outcome = share}`) replace the profile's fault rates; `latency`, if set, "
         "replaces the latency of every call",
         ef.OutageTable, own["OutageTable"]),
        ("[[configurations]]", "one configuration to compare", ef.ConfigurationTable,
         own["ConfigurationTable"]),
    ]
    parts = []
    for title, what, model, notes in tables:
        body = (table(("key", "type", "default", "meaning"), _rows(model, notes))
                if model is not None else [])
        parts.append([f"## `{title}`", "", what[0].upper() + what[1:] + ".", "", *body])
    return page(
        "The experiment file",
        "Every table and key of an experiment file (`fallback-chain simulate FILE`, "
        "`fallback_chain.simulate.load_experiment`), as the file's models check them: an "
        "unknown key is an error at its line. An empty default means the key is optional "
        "(the simulator's own default applies). Durations are `\"90s\"`, `\"10m\"`, "
        "`\"3h\"` or seconds; times of day `\"09:00\"`. See `docs/simulate.md`.",
        *parts,
    )
