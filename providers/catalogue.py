"""The model catalogue: capabilities and lifecycle of every known model, from the records in
``providers/<vendor>/models.json`` (:mod:`fallback_chain.records`; the same records hold the
prices).

Capabilities come from data, not from branches in adapter code. Any model id is accepted: an
unknown id takes the capabilities of the closest known one (an alias; a dated snapshot such as
``gpt-image-2-2026-04-21`` maps to ``gpt-image-2``; otherwise the longest known prefix;
otherwise the vendor's default family; for a vendor with no records, default capabilities).
Building a chain with a model that is shut down or deprecated warns once per process, naming
the shutdown date and the suggested replacement.

Dates come from a clock (``fallback_chain.clock``: its ``wall()``), never from the calendar
directly: pass ``today=`` or ``clock=``; the default is the system clock.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from fallback_chain import records
from fallback_chain.clock import SYSTEM_CLOCK
from fallback_chain.provider import Capabilities

if TYPE_CHECKING:
    from fallback_chain.clock import Clock

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")
#: Deprecated models warn when their shutdown is this close.
DEPRECATION_NOTICE_DAYS = 90


class ModelLifecycleWarning(UserWarning):
    """A chain names a model that is deprecated or already shut down."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    vendor: str
    id: str
    family: str
    status: str  # active | deprecated | shut_down | unknown
    capabilities: Capabilities
    shutdown: date | None = None
    replacement: str | None = None
    source: str = ""
    known: bool = True  # False when the id is not in the catalogue

    def is_retired(self, today: date | None = None, *, clock: Clock | None = None) -> bool:
        """True when the model is shut down (by status, or by a shutdown date in the past), on
        ``today`` (default: the date of ``clock``, default the system clock)."""
        today = today or today_of(clock)
        return self.status == "shut_down" or (self.shutdown is not None
                                               and self.shutdown <= today)


def today_of(clock: Clock | None = None) -> date:
    """The UTC date of ``clock`` (default: the system clock). A clock that reads the running
    event loop (``LoopClock``) asked outside any loop (an adapter built before the loop runs)
    gives way to the system clock."""
    try:
        wall = (clock or SYSTEM_CLOCK).wall()
    except RuntimeError:
        wall = SYSTEM_CLOCK.wall()
    return datetime.fromtimestamp(wall, UTC).date()


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def _ratio(text: str) -> tuple[int, int]:
    w, h = text.split(":")
    return int(w), int(h)


def _capabilities(spec: dict[str, Any]) -> Capabilities:
    kw: dict[str, Any] = dict(spec)
    if "sizes" in kw:
        kw["sizes"] = tuple(_size(s) for s in kw["sizes"])
        kw.setdefault("default_size", kw["sizes"][0])
    if isinstance(kw.get("default_size"), str):
        kw["default_size"] = _size(kw["default_size"])
    if "aspect_ratios" in kw:
        kw["aspect_ratios"] = tuple(_ratio(r) for r in kw["aspect_ratios"])
    if "output_formats" in kw:
        kw["output_formats"] = frozenset(kw["output_formats"])
    return Capabilities(**kw)


@cache
def _load() -> tuple[dict[str, dict[str, Capabilities]], dict[tuple[str, str], ModelInfo],
                     dict[tuple[str, str], str], dict[str, str]]:
    """Families by vendor, models by ``(vendor, id)``, aliases to ids, default families."""
    families: dict[str, dict[str, Capabilities]] = {}
    models: dict[tuple[str, str], ModelInfo] = {}
    aliases: dict[tuple[str, str], str] = {}
    defaults: dict[str, str] = {}
    for vendor, doc in records.load().items():
        fams = families[vendor] = {name: _capabilities(spec)
                                   for name, spec in doc.families.items()}
        if doc.default_family:
            defaults[vendor] = doc.default_family
        for mid, r in doc.models.items():
            if r.family is None:
                continue  # priced only: capabilities unknown
            models[(vendor, mid)] = ModelInfo(
                vendor=vendor, id=mid, family=r.family, status=r.status,
                capabilities=fams[r.family], shutdown=r.shutdown, replacement=r.replacement,
                source=r.lifecycle_source or "")
            for alias in r.aliases:
                aliases.setdefault((vendor, alias), mid)
    return families, models, aliases, defaults


def lookup(vendor: str, model: str) -> ModelInfo:
    """What the catalogue knows about ``model`` of ``vendor`` (never fails: an unknown vendor or
    id gets ``known=False`` and borrowed or default capabilities)."""
    families, models, aliases, defaults = _load()
    if (vendor, model) in models:
        return models[(vendor, model)]
    base = _SNAPSHOT.sub("", model)
    target = (vendor, aliases.get((vendor, model)) or aliases.get((vendor, base)) or base)
    if target in models:
        info = models[target]
        return ModelInfo(vendor, model, info.family, info.status, info.capabilities,
                         info.shutdown, info.replacement, info.source, known=True)
    prefixes = [m for (v, m) in models if v == vendor and model.startswith(m)]
    if prefixes:
        info = models[(vendor, max(prefixes, key=len))]
        return ModelInfo(vendor, model, info.family, "unknown", info.capabilities,
                         source=f"capabilities of {info.id}", known=False)
    family = defaults.get(vendor)
    if family is None:
        return ModelInfo(vendor, model, "unknown", "unknown", Capabilities(),
                         source=f"no catalogue records for vendor {vendor!r}", known=False)
    return ModelInfo(vendor, model, family, "unknown", families[vendor][family],
                     source=f"vendor default family {family}", known=False)


def models(vendor: str | None = None) -> list[ModelInfo]:
    """Every catalogued model (of one vendor)."""
    return [m for (v, _), m in _load()[1].items() if vendor in (None, v)]


@dataclass(frozen=True, slots=True)
class Retirement:
    """When a model stops being callable, and why (see :func:`retirement`)."""

    since: float  # seconds since the epoch; -inf when shut down without a known date
    reason: str


def retirement(info: ModelInfo) -> Retirement | None:
    """When ``info``'s model is retired per the catalogue, with the reason a chain records;
    ``None``: never. Only a record whose status is ``shut_down`` (the vendor has confirmed it)
    is retired: from the start of its shutdown date (UTC), or always when no date is known.
    A ``deprecated`` record's announced date is not enough: vendors move such dates, so the
    chain keeps calling the model (``warn_if_retired`` warns), and a vendor 404 past the date
    is ``not_found``, which advances the chain. The records are updated when the vendor
    confirms the shutdown."""
    if info.status != "shut_down":
        return None
    if info.shutdown is not None:
        since = datetime(info.shutdown.year, info.shutdown.month, info.shutdown.day,
                         tzinfo=UTC).timestamp()
        when = f" on {info.shutdown.isoformat()}"
    else:
        since, when = float("-inf"), ""
    reason = f"retired: {info.vendor} model {info.id!r} was shut down{when} (model catalogue)"
    if info.replacement:
        reason += f"; suggested replacement: {info.replacement!r}"
    return Retirement(since, reason)


class CatalogueLifecycle:
    """For adapters of catalogued models: ``Provider.retired_reason`` from the catalogue's
    lifecycle, so a chain skips a model that is shut down on its clock's date before calling
    it. The adapter sets ``_retirement = retirement(info)`` when it is built."""

    __slots__ = ()
    _retirement: Retirement | None

    def retired_reason(self, wall: float) -> str | None:
        retired = self._retirement
        return None if retired is None or wall < retired.since else retired.reason


_warned: set[tuple[str, str]] = set()


def warn_if_retired(info: ModelInfo, today: date | None = None, *,
                    clock: Clock | None = None) -> str | None:
    """Warn (once per process and model) when ``info`` is shut down, or deprecated with a
    shutdown less than ``DEPRECATION_NOTICE_DAYS`` away, on ``today`` (default: the date of
    ``clock``, default the system clock).

    Returns the message, or ``None`` when the model is fine.
    """
    today = today or today_of(clock)
    if info.is_retired(today) and info.status == "shut_down":
        when = f" on {info.shutdown.isoformat()}" if info.shutdown else ""
        message = (f"{info.vendor} model {info.id!r} was shut down{when}; a chain skips it "
                   f"without calling it (the API would answer 404 model_not_found).")
    elif info.is_retired(today):
        message = (f"{info.vendor} model {info.id!r} was shut down on {info.shutdown} by "
                   f"the vendor's announced date; a chain still calls it until the model "
                   f"records say it is gone (a 404 then moves the chain on).")
    elif (info.status == "deprecated" and info.shutdown is not None
          and (info.shutdown - today).days <= DEPRECATION_NOTICE_DAYS):
        message = (f"{info.vendor} model {info.id!r} is deprecated and shuts down on "
                   f"{info.shutdown.isoformat()}.")
    else:
        return None
    if info.replacement:
        message += f" Suggested replacement: {info.replacement!r}."
    key = (info.vendor, info.id)
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, ModelLifecycleWarning, stacklevel=3)
    return message
