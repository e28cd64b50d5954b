"""The vendors a config may name, and what the config layer needs to know about each adapter:
its class (loaded on first use), the keyword that takes the model, its key variables, and the
options a config may pass through to it."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import import_module
from typing import Any

from ..provider import Provider

#: Adapter keywords a config must not set through ``options`` (they have their own fields, are
#: secrets, or are Python objects TOML cannot express).
RESERVED_OPTIONS = frozenset({
    "self", "model", "model_id", "name", "api_key", "base_url", "prices", "transport",
    "http_client", "download_client", "clock", "capabilities"})


@dataclass(frozen=True)
class Vendor:
    name: str
    module: str
    class_name: str
    model_param: str
    emulator_suffix: str = ""  # appended to an emulator's root URL for this vendor's base_url
    needs_key: bool = True

    @cached_property
    def cls(self) -> type[Provider]:
        cls: type[Provider] = getattr(import_module(self.module), self.class_name)
        return cls

    @cached_property
    def env_vars(self) -> tuple[str, ...]:
        names: tuple[str, ...] = getattr(import_module(self.module), "ENV_VARS", ())
        return names

    @cached_property
    def parameters(self) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(self.cls).parameters)

    @property
    def default_model(self) -> str:
        default: Any = self.parameters[self.model_param].default
        return str(default)

    @property
    def options(self) -> list[str]:
        """Keyword arguments a config may pass in ``options``."""
        return sorted(n for n, p in self.parameters.items()
                      if n not in RESERVED_OPTIONS
                      and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))

    def option_problem(self, option: str, value: Any) -> str | None:
        """Why ``value`` cannot be passed as ``option`` (its type is wrong for the adapter's
        parameter), or ``None``. Options whose annotation cannot be resolved are not checked."""
        expected = self.parameters[option].annotation
        adapter = _type_adapter(self.module, expected) if isinstance(expected, str) else None
        if adapter is None:
            return None
        from pydantic import ValidationError

        try:
            adapter.validate_python(plain_value(value), strict=True)
        except ValidationError:
            shown = expected.removesuffix(" | None")  # TOML has no null: absent means None
            return f"option {option!r} must be {shown} (got {_short(value)})"
        return None

    @property
    def catalogued(self) -> bool:
        """Whether ``providers/models.json`` lists this vendor's models."""
        return self.name != "fake"


VENDORS: dict[str, Vendor] = {v.name: v for v in (
    Vendor("gemini", "fallback_chain.providers.gemini.adapter", "GeminiProvider", "model"),
    Vendor("leonardo", "fallback_chain.providers.leonardo.adapter", "LeonardoProvider",
           "model_id"),
    Vendor("openai", "fallback_chain.providers.openai.adapter", "OpenAIProvider", "model",
           emulator_suffix="/v1"),
    Vendor("fake", "fallback_chain.providers.fake", "FakeProvider", "model", needs_key=False),
)}


@cache
def _type_adapter(module: str, annotation: str) -> Any:
    """A strict pydantic ``TypeAdapter`` for an adapter parameter's annotation (a string, as
    ``from __future__ import annotations`` leaves it), or ``None`` when it cannot be built.
    An ``Iterable[...]`` is checked as a ``Sequence[...]``: a string is not a list of hosts."""
    from pydantic import TypeAdapter

    namespace = {**vars(typing), "Mapping": Mapping, **vars(import_module(module)),
                 "Iterable": Sequence}
    try:
        return TypeAdapter(eval(annotation, namespace))  # annotations are our own source
    except Exception:
        return None


def plain_value(value: Any) -> Any:
    """An option's value as the adapter gets it: TOML arrays become tuples (adapters take
    sequences and size pairs as tuples)."""
    if isinstance(value, list):
        return tuple(plain_value(v) for v in value)
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
