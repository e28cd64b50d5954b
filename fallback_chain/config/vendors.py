"""The vendors a config may name, and what the config layer needs to know about each adapter:
its class (loaded on first use), the keyword that takes the model, its key variables, and the
options a config may pass through to it."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cached_property
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

    @property
    def catalogued(self) -> bool:
        """Whether ``providers/models.json`` lists this vendor's models."""
        return self.name != "fake"


VENDORS: dict[str, Vendor] = {v.name: v for v in (
    Vendor("gemini", "providers.gemini", "GeminiProvider", "model"),
    Vendor("leonardo", "providers.leonardo", "LeonardoProvider", "model_id"),
    Vendor("openai", "providers.openai", "OpenAIProvider", "model", emulator_suffix="/v1"),
    Vendor("fake", "providers.fake", "FakeProvider", "model", needs_key=False),
)}
