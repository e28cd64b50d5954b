"""Pages about the router: outcomes and the default policy, ``Policy``, ``Chain``, events."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path
from typing import Any

from ._md import code, mention, page, table

#: Statuses shown in the status table (every other 4xx maps like 400, every 5xx like 500).
STATUSES = (200, 400, 401, 402, 403, 404, 408, 409, 410, 413, 415, 422, 429, 500, 502, 503,
            504)


def member_comments(module_file: str, class_name: str) -> dict[str, str]:
    """The ``#:`` comments above each attribute of ``class_name`` in a source file."""
    source = Path(module_file).read_text(encoding="utf-8")
    lines = source.splitlines()
    found: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.ClassDef) and node.name == class_name):
            continue
        for item in node.body:
            target = (item.targets[0] if isinstance(item, ast.Assign) else
                      item.target if isinstance(item, ast.AnnAssign) else None)
            if not isinstance(target, ast.Name):
                continue
            comment: list[str] = []
            n = item.lineno - 2
            while n >= 0 and lines[n].strip().startswith("#:"):
                comment.insert(0, lines[n].strip()[2:].strip())
                n -= 1
            if comment:
                found[target.id] = " ".join(comment).replace("``", "`")
    return found


def _seconds(value: float) -> str:
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g} h"
    return f"{value:g} s"


def _action(rule: Any) -> str:
    parts = []
    if rule.stop:
        parts.append("**stop**")
    else:
        parts.append(f"retry {rule.retries}x, then advance" if rule.retries else "advance")
    if rule.cooldown_s:
        parts.append(f"cool down {_seconds(rule.cooldown_s)}")
    if rule.alert:
        parts.append("quota alert")
    return "; ".join(parts)


def outcomes_page() -> str:
    from .. import outcome as outcome_module
    from ..outcome import Outcome, outcome_for_status
    from ..policy import Policy
    from ..policy.rules import REQUEST_FAULT

    policy = Policy()
    notes = member_comments(outcome_module.__file__ or "", "Outcome")
    rows = []
    for o in Outcome:
        called = "yes" if o.was_called else "no (a skip)"
        if o is Outcome.SUCCESS:
            action = "done (or, after a partial delivery, the rest is asked of the next)"
        else:
            action = _action(policy.rule(o))
        breaker = "yes" if o in policy.breaker_outcomes else ""
        rows.append((code(o.value), notes.get(o.name, ""), called, action, breaker))
    fault = ("`invalid_request` marked as a request fault", "a request no vendor would take",
             "yes", _action(REQUEST_FAULT) + " (`on_request_fault`)", "")
    rows.insert([r[0] for r in rows].index("`invalid_request`") + 1, fault)
    statuses = [(str(s), code(outcome_for_status(s).value)) for s in STATUSES]
    return page(
        "Outcomes, default actions and HTTP statuses",
        "Every attempt ends in one `Outcome` (`fallback_chain.Outcome`). The action is that of "
        "the default `Policy()`; retries, cooldowns and stops are configurable "
        "([policy.md](policy.md)). A server's Retry-After replaces the `rate_limited` "
        "cooldown. \"breaker\" marks the outcomes that count towards opening a provider's "
        "circuit breaker (`breaker_outcomes`).",
        table(("outcome", "meaning", "provider called", "default action", "breaker"), rows),
        ["## HTTP statuses", "",
         "Each adapter reads its vendor's own codes and words first (a refusal sent as 403, "
         "a billing limit sent as 400: see `docs/errors.md`); a bare status with nothing more "
         "specific in the answer maps as `outcome_for_status` says. Every other 4xx maps like "
         "400, every other 5xx like 500.", "",
         *table(("status", "outcome"), statuses)],
    )


def _default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, frozenset):
        return ", ".join(sorted(str(v) for v in value)) or "{}"
    if isinstance(value, dict | list | tuple) and not value:
        return "{}" if isinstance(value, dict) else "()"
    return code(repr(value) if isinstance(value, str) else value)


def policy_page() -> str:
    from ..policy import Policy

    doc = inspect.getdoc(Policy)
    rows = []
    for f in dataclasses.fields(Policy):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:  # pragma: no cover - every field has a default
            default = None
        rows.append((code(f.name), code(f.type), _default(default), mention(doc, f.name)))
    return page(
        "`Policy` fields and defaults",
        "`fallback_chain.Policy(...)` keywords, also the keys of a config file's `policy` "
        "tables. `retries` and `cooldowns_s` start from the default table "
        "([outcomes.md](outcomes.md)) and change only the outcomes they name.",
        table(("field", "type", "default", "meaning"), rows),
    )


def chain_page() -> str:
    from ..chain import Chain

    doc = inspect.getdoc(Chain)
    rows = []
    for name, p in inspect.signature(Chain.__init__).parameters.items():
        if name == "self":
            continue
        default = "required" if p.default is inspect.Parameter.empty else _default(p.default)
        rows.append((code(name), code(p.annotation), default, mention(doc, name)))
    return page(
        "`Chain(...)` keywords",
        "`fallback_chain.Chain(providers, *, ...)`: `providers` is the list of adapters, in "
        "order; everything else is a keyword.",
        table(("keyword", "type", "default", "meaning"), rows),
    )


def events_page() -> str:
    from .. import events
    from ..results import Attempt

    classes = [c for _, c in inspect.getmembers(events, inspect.isclass)
               if issubclass(c, events.Event) and c is not events.Event]
    classes.sort(key=lambda c: inspect.getsourcelines(c)[1])
    common = {"chain": "The name of the chain that emitted it.",
              "request_id": "The request's id (its `idempotency_key` when given).",
              "provider": "The provider's name in the chain."}
    parts: list[list[str]] = []
    for cls in classes:
        notes = {**common, **member_comments(events.__file__ or "", cls.__name__)}
        doc = (inspect.getdoc(cls) or "").replace("``", "`")
        rows = [(code(f.name), code(f.type), notes.get(f.name, "")) for f in
                dataclasses.fields(cls)]
        parts.append([f"## `{cls.__name__}`", "", doc, "",
                      *table(("field", "type", "meaning"), rows)])
    attempt_rows = [(code(name), code(_annotation(info.annotation)))
                    for name, info in Attempt.model_fields.items()]
    parts.append(["## `Attempt`", "",
                  "What `AttemptFinished.attempt` carries (`fallback_chain.results.Attempt`; "
                  "also every result's and error's `attempts`). "
                  + (inspect.getdoc(Attempt) or "").replace("``", "`"), "",
                  *table(("field", "type"), attempt_rows)])
    return page(
        "Events and their fields",
        "Everything the router does is an event (`fallback_chain.events`); subscribe with "
        "`Chain(..., on_event=fn)` or `chain.events.subscribe(fn)`. Every event has `chain`, "
        "the name of the chain that emitted it. A subscriber that raises is logged and never "
        "breaks a request.",
        *parts,
    )


def _annotation(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    return text or str(annotation).replace("typing.", "")
