"""Fault configuration: what goes wrong, for which vendor and model, and when.

A configuration is a mapping (loaded from TOML, JSON or built in Python)::

    seed = 7
    [default]                       # copied into every vendor
    latency = { dist = "uniform", min_ms = 5, max_ms = 20 }
    [openai]
    script = "429,500,ok"           # consumed one per matching request, then `rates` apply
    rates = { "429" = 0.05, "5xx" = 0.02, policy = 0.01 }
    retry_after = 2                 # seconds, for 429 faults
    retry_after_format = "seconds"  # seconds | http-date | ms | both | body | none
    [openai.models."dall-e-3"]      # overrides the vendor's keys for one model
    script = ["content_policy_violation"]

Fault tokens are documented in ``docs/emulator.md``. Decisions are deterministic: each
(vendor, model) pair draws from its own ``random.Random`` seeded from ``seed``, and each
script keeps its own cursor, so the same configuration and the same request order give the
same faults.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

ENDPOINTS = frozenset({"generate", "poll", "image", "meta", "moderate"})

#: Concrete fault kinds understood by every vendor (``VENDOR_KINDS`` adds each vendor's own).
COMMON_KINDS = frozenset({
    "ok", "reset", "hang", "truncated", "cut", "html", "rate_limit", "quota", "policy",
    "auth", "server_error", "overloaded", "bad_gateway",
})
#: Aliases that draw one concrete kind from the seeded stream when applied.
ALIAS_KINDS = frozenset({"5xx", "malformed"})
#: Named kinds that are plain HTTP statuses in disguise.
STATUS_ALIASES = {"rate_limit": 429, "server_error": 500, "bad_gateway": 502, "overloaded": 503}
RETRY_AFTER_FORMATS = frozenset({"seconds", "http-date", "ms", "both", "body", "none"})


@cache
def emulated_apis() -> dict[str, Any]:
    """The emulated vendor APIs by vendor id: every registered adapter class that names one
    (``emulator_api = "module:Class"``, :mod:`fallback_chain.registry`). Each API class
    declares its own ``fault_kinds``, ``malformed_kinds`` and ``retry_after_format``."""
    from importlib import import_module

    from .. import registry

    apis: dict[str, Any] = {}
    for vendor in registry.names():
        spec = registry.get(vendor).emulator_api
        if spec:
            module, _, name = spec.partition(":")
            apis[vendor] = getattr(import_module(module), name)
    return apis


def vendors() -> tuple[str, ...]:
    """The vendors the emulator serves."""
    return tuple(emulated_apis())


def vendor_kinds() -> dict[str, frozenset[str]]:
    """Every vendor's fault kinds: the common ones and its own."""
    return {v: COMMON_KINDS | api.fault_kinds for v, api in emulated_apis().items()}


def malformed_kinds(vendor: str) -> tuple[str, ...]:
    """What ``malformed`` picks from (seeded) for ``vendor``: a 200 the client cannot use."""
    kinds: tuple[str, ...] = emulated_apis()[vendor].malformed_kinds
    return kinds


def default_retry_after_format(vendor: str) -> str:
    fmt: str = emulated_apis()[vendor].retry_after_format
    return fmt


def __getattr__(name: str) -> Any:
    """``VENDORS``, ``VENDOR_KINDS``, ``MALFORMED_KINDS``, ``DEFAULT_RETRY_AFTER_FORMAT``:
    read from the registry on first use (see :func:`emulated_apis`)."""
    if name == "VENDORS":
        return vendors()
    if name == "VENDOR_KINDS":
        return vendor_kinds()
    if name == "MALFORMED_KINDS":
        return {v: malformed_kinds(v) for v in vendors()}
    if name == "DEFAULT_RETRY_AFTER_FORMAT":
        return {v: default_retry_after_format(v) for v in vendors()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class FaultConfigError(ValueError):
    """The fault configuration is malformed; the message names the offending key."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to apply to one request. ``kind`` is a token such as ``"429"`` or ``"hang"``."""

    kind: str
    retry_after: float | None = None
    retry_after_format: str | None = None
    reason: str | None = None
    categories: tuple[str, ...] = ()
    message: str | None = None
    hang_s: float | None = None
    count: int | None = None

    @property
    def status(self) -> int | None:
        """The HTTP status this fault stands for, when it is a plain status fault."""
        if self.kind.isdigit():
            return int(self.kind)
        return STATUS_ALIASES.get(self.kind)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fault": self.kind}
        for name in ("retry_after", "retry_after_format", "reason", "message", "hang_s",
                     "count"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.categories:
            out["categories"] = list(self.categories)
        return out


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency distribution in milliseconds."""

    dist: str = "fixed"
    params: tuple[tuple[str, float], ...] = ()

    def sample(self, rng: random.Random) -> float:
        """One latency in seconds."""
        p = dict(self.params)
        if self.dist == "fixed":
            ms = p.get("ms", 0.0)
        elif self.dist == "uniform":
            ms = rng.uniform(p.get("min_ms", 0.0), p.get("max_ms", 0.0))
        elif self.dist == "normal":
            ms = rng.gauss(p.get("mean_ms", 0.0), p.get("stddev_ms", 0.0))
        elif self.dist == "lognormal":
            ms = p.get("median_ms", 0.0) * math.exp(rng.gauss(0.0, p.get("sigma", 0.0)))
        else:  # exponential
            mean = p.get("mean_ms", 0.0)
            ms = rng.expovariate(1.0 / mean) if mean > 0 else 0.0
        return max(0.0, ms) / 1000.0

    def to_dict(self) -> dict[str, Any]:
        return {"dist": self.dist, **dict(self.params)}


_LATENCY_PARAMS = {
    "fixed": {"ms"}, "uniform": {"min_ms", "max_ms"}, "normal": {"mean_ms", "stddev_ms"},
    "lognormal": {"median_ms", "sigma"}, "exponential": {"mean_ms"},
}


@dataclass(frozen=True, slots=True)
class Rule:
    """The effective settings for one (vendor, model)."""

    script: tuple[Fault, ...] = ()
    script_scope: str = ""
    rates: tuple[tuple[Fault, float], ...] = ()
    latency: Latency = Latency()
    retry_after: float = 1.0
    retry_after_format: str = "seconds"
    applies_to: frozenset[str] = frozenset({"generate"})
    hang_s: float = 600.0
    job_delay_s: float = 0.5
    url_ttl_s: float = 3600.0
    expired_status: int = 403


def parse_fault(spec: Any, vendor: str | None = None) -> Fault:
    """A ``Fault`` from a token string (``"429"``) or a table (``{fault = "429", ...}``)."""
    if isinstance(spec, Fault):
        fault = spec
    elif isinstance(spec, int) and not isinstance(spec, bool):
        fault = Fault(str(spec))
    elif isinstance(spec, str):
        fault = Fault(spec.strip().lower())
    elif isinstance(spec, Mapping):
        unknown = set(spec) - {"fault", "retry_after", "retry_after_format", "reason",
                               "categories", "message", "hang_s", "count"}
        if unknown or "fault" not in spec:
            raise FaultConfigError(f"fault table {dict(spec)!r}: needs 'fault', "
                                   f"unknown keys {sorted(unknown)}")
        fmt = spec.get("retry_after_format")
        if fmt is not None and fmt not in RETRY_AFTER_FORMATS:
            raise FaultConfigError(f"retry_after_format {fmt!r} not in "
                                   f"{sorted(RETRY_AFTER_FORMATS)}")
        fault = Fault(
            kind=str(spec["fault"]).strip().lower(),
            retry_after=_opt_float(spec.get("retry_after")),
            retry_after_format=fmt,
            reason=spec.get("reason"),
            categories=tuple(spec.get("categories", ())),
            message=spec.get("message"),
            hang_s=_opt_float(spec.get("hang_s")),
            count=int(spec["count"]) if spec.get("count") is not None else None,
        )
    else:
        raise FaultConfigError(f"cannot read a fault from {spec!r}")
    _check_kind(fault.kind, vendor)
    return fault


def _check_kind(kind: str, vendor: str | None) -> None:
    if kind.isdigit():
        if not 400 <= int(kind) <= 599:
            raise FaultConfigError(f"status fault {kind!r} must be 400..599")
        return
    allowed = (vendor_kinds()[vendor] if vendor else COMMON_KINDS) | ALIAS_KINDS
    if kind not in allowed:
        where = f"vendor {vendor!r}" if vendor else "[default] (shared by all vendors)"
        raise FaultConfigError(f"unknown fault {kind!r} for {where}; known: {sorted(allowed)} "
                               "or an HTTP status 400..599")


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_script(spec: Any, vendor: str | None = None) -> tuple[Fault, ...]:
    """A script from ``"429,500*2,ok"`` or a list of tokens/tables. ``x*N`` repeats x N times."""
    if isinstance(spec, str):
        items: list[Any] = [s for s in (p.strip() for p in spec.split(",")) if s]
    elif isinstance(spec, list | tuple):
        items = list(spec)
    else:
        raise FaultConfigError(f"script must be a string or a list, not {spec!r}")
    out: list[Fault] = []
    for item in items:
        repeat = 1
        if isinstance(item, str) and "*" in item:
            item, _, times = item.partition("*")
            try:
                repeat = int(times)
            except ValueError as exc:
                raise FaultConfigError(f"bad repeat count in {item}*{times}") from exc
        out.extend([parse_fault(item, vendor)] * repeat)
    return tuple(out)


def _parse_latency(spec: Any) -> Latency:
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return Latency("fixed", (("ms", float(spec)),))
    if not isinstance(spec, Mapping):
        raise FaultConfigError(f"latency must be a number of ms or a table, not {spec!r}")
    dist = spec.get("dist", "fixed")
    if dist not in _LATENCY_PARAMS:
        raise FaultConfigError(f"latency dist {dist!r} not in {sorted(_LATENCY_PARAMS)}")
    params = {k: v for k, v in spec.items() if k != "dist"}
    unknown = set(params) - _LATENCY_PARAMS[dist]
    if unknown:
        raise FaultConfigError(f"latency {dist!r} takes {sorted(_LATENCY_PARAMS[dist])}, "
                               f"not {sorted(unknown)}")
    return Latency(dist, tuple(sorted((k, float(v)) for k, v in params.items())))


def _parse_rates(spec: Any, vendor: str | None, where: str) -> tuple[tuple[Fault, float], ...]:
    if not isinstance(spec, Mapping):
        raise FaultConfigError(f"[{where}] rates must be a table of fault = probability")
    rates = tuple((parse_fault(k, vendor), float(v)) for k, v in spec.items())
    problem = rates_problem(p for _, p in rates)
    if problem:
        raise FaultConfigError(f"[{where}] {problem}")
    return rates


def rates_problem(probabilities: Iterable[float]) -> str | None:
    """What is wrong with a table of fault probabilities, if anything."""
    values = list(probabilities)
    if any(p < 0 for p in values) or sum(values) > 1.0 + 1e-9:
        return "rates must be >= 0 and add up to at most 1"
    return None


@dataclass(frozen=True)
class FaultConfig:
    """A validated fault configuration. ``raw`` is the normalised mapping it was built from."""

    raw: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.raw, Mapping):
            raise FaultConfigError("fault configuration must be a table")
        _validate(self.raw)

    @property
    def seed(self) -> int:
        return int(self.raw.get("seed", 0))

    @classmethod
    def load(cls, source: FaultConfig | Mapping[str, Any] | str | Path | None) -> FaultConfig:
        """From a config, a mapping, a path to a .toml/.json file, or TOML/JSON text."""
        if source is None:
            return cls({})
        if isinstance(source, FaultConfig):
            return source
        if isinstance(source, Mapping):
            return cls(_plain(source))
        name: str | None = None
        if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source
                                        and source.endswith((".toml", ".json"))):
            name = str(source)
            try:
                text = Path(source).read_text("utf-8")
            except OSError as exc:
                raise FaultConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
            is_json = Path(source).suffix == ".json"
        else:
            return cls.from_text(source)
        data = _parse(text, name, is_json)
        _validate(data, None if is_json else text, name)
        return cls(data)

    @classmethod
    def from_text(cls, source: str) -> FaultConfig:
        """From TOML or JSON text only: never read as a path (the admin API's bodies)."""
        text = source.strip()
        is_json = text.startswith("{")
        data = _parse(text, None, is_json)
        _validate(data, None if is_json else text, None)
        return cls(data)

    def rule(self, vendor: str, model: str | None) -> Rule:
        """The effective rule: ``[default]``, then ``[vendor]``, then ``[vendor.models.X]``."""
        merged: dict[str, Any] = {}
        scope = f"{vendor}"
        merged.update(self.raw.get("default", {}))
        vendor_section = dict(self.raw.get(vendor, {}))
        models = vendor_section.pop("models", {})
        merged.update(vendor_section)
        if model is not None and model in models:
            merged.update(models[model])
            if "script" in models[model]:
                scope = f"{vendor}/{model}"
        return Rule(
            script=parse_script(merged.get("script", ()), vendor),
            script_scope=scope,
            rates=_parse_rates(merged.get("rates", {}), vendor, vendor),
            latency=_parse_latency(merged["latency"]) if "latency" in merged else (
                _parse_latency(merged["latency_ms"]) if "latency_ms" in merged else Latency()),
            retry_after=float(merged.get("retry_after", 1.0)),
            retry_after_format=merged.get("retry_after_format",
                                          default_retry_after_format(vendor)),
            applies_to=frozenset(merged.get("applies_to", ("generate",))),
            hang_s=float(merged.get("hang_s", 600.0)),
            job_delay_s=float(merged.get("job_delay_s", 0.5)),
            url_ttl_s=float(merged.get("url_ttl_s", 3600.0)),
            expired_status=int(merged.get("expired_status", 403)),
        )


def _parse(text: str, source: str | None, is_json: bool) -> dict[str, Any]:
    from ..config import tomlmodel

    if is_json:
        try:
            data = json.loads(text)
        except ValueError as exc:
            prefix = f"{source}: " if source else ""
            raise FaultConfigError(f"{prefix}not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise FaultConfigError("fault configuration must be a table")
        return data
    try:
        return tomlmodel.parse(text, source)
    except tomlmodel.TomlProblems as exc:
        raise FaultConfigError(str(exc)) from None


def _validate(raw: Mapping[str, Any], text: str | None = None, source: str | None = None
              ) -> None:
    """Check ``raw`` against the fault file's models (``fault_schema.py``); the error names
    the file, the line (when ``text`` is the TOML it came from) and the key."""
    from ..config import tomlmodel
    from .fault_schema import fault_file_model

    try:
        tomlmodel.validate(fault_file_model(), raw, text=text, source=source)
    except tomlmodel.TomlProblems as exc:
        raise FaultConfigError(str(exc)) from None


def _plain(value: Any) -> Any:
    """Mappings to dicts and tuples to lists, so ``raw`` serialises as JSON."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Fault):
        return value.to_dict()
    return value


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one request: the fault (None = behave normally), latency and settings.

    ``drawn`` is the alias the fault was drawn as (``"5xx"``, ``"malformed"``), else None.
    """

    fault: Fault | None
    latency_s: float
    rule: Rule
    drawn: str | None = None


class FaultEngine:
    """Turns a ``FaultConfig`` into per-request decisions; thread-safe; deterministic by seed."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = config or FaultConfig()
        self._cursors: dict[str, int] = {}
        self._rngs: dict[str, random.Random] = {}
        self._rules: dict[tuple[str, str | None], Rule] = {}

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration and restart every script and random stream."""
        with self._lock:
            self._config = config
            self._reset_locked()

    def reset(self) -> None:
        """Restart scripts and random streams (same configuration)."""
        with self._lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        self._cursors.clear()
        self._rngs.clear()
        self._rules.clear()

    def rule(self, vendor: str, model: str | None) -> Rule:
        with self._lock:
            return self._rule_locked(vendor, model)

    def _rule_locked(self, vendor: str, model: str | None) -> Rule:
        key = (vendor, model)
        if key not in self._rules:
            self._rules[key] = self._config.rule(vendor, model)
        return self._rules[key]

    def decide(self, vendor: str, model: str | None, endpoint: str) -> Decision:
        with self._lock:
            rule = self._rule_locked(vendor, model)
            rng_key = f"{self._config.seed}/{vendor}/{model or ''}"
            rng = self._rngs.get(rng_key)
            if rng is None:
                rng = self._rngs[rng_key] = random.Random(rng_key)
            latency = rule.latency.sample(rng)
            if endpoint not in rule.applies_to:
                return Decision(None, latency, rule)
            fault: Fault | None = None
            cursor = self._cursors.get(rule.script_scope, 0)
            if cursor < len(rule.script):
                fault = rule.script[cursor]
                self._cursors[rule.script_scope] = cursor + 1
            elif rule.rates:
                draw = rng.random()
                total = 0.0
                for candidate, probability in rule.rates:
                    total += probability
                    if draw < total:
                        fault = candidate
                        break
            drawn = fault.kind if fault is not None and fault.kind in ALIAS_KINDS else None
            if fault is not None and fault.kind == "5xx":
                fault = Fault(rng.choice(("500", "502", "503")), fault.retry_after,
                              fault.retry_after_format, message=fault.message)
            elif fault is not None and fault.kind == "malformed":
                fault = Fault(rng.choice(malformed_kinds(vendor)), count=fault.count)
            if fault is not None and fault.kind == "ok":
                fault = None
            return Decision(fault, latency, rule, drawn)
