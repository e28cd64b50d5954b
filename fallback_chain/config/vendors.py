"""The vendors a config may name (the vendor registry, :mod:`fallback_chain.registry`), and
what the config layer needs to know about each adapter: its class (loaded on first use), the
keyword that takes the model, its key variables, and the options a config may pass through to
it, all declared as data on the adapter class."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator, Mapping, Sequence
from functools import cache, cached_property
from importlib import import_module
from typing import Any

from .. import registry
from ..provider import Provider

#: Adapter keywords a config must not set through ``options`` (they have their own fields, are
#: secrets, or are Python objects TOML cannot express).
RESERVED_OPTIONS = frozenset({
    "self", "model", "model_id", "name", "api_key", "base_url", "prices", "transport",
    "http_client", "download_client", "clock", "capabilities", "image",
    "azure_ad_token_provider"})


class Vendor:
    """What the config layer reads about one registered vendor: its adapter class's data
    (:mod:`fallback_chain.registry`) plus the constructor's signature, for option checks."""

    __slots__ = ("__dict__", "name")

    def __init__(self, name: str) -> None:
        self.name = name

    @cached_property
    def cls(self) -> type[Provider]:
        return registry.get(self.name)

    @property
    def module(self) -> str:
        return self.cls.__module__

    @property
    def class_name(self) -> str:
        return self.cls.__name__

    @property
    def model_param(self) -> str:
        return self.cls.model_param

    @property
    def emulator_suffix(self) -> str:
        """Appended to an emulator's root URL for this vendor's ``base_url``."""
        return self.cls.emulator_path

    @property
    def needs_key(self) -> bool:
        return self.cls.needs_key

    @property
    def env_vars(self) -> tuple[str, ...]:
        return self.cls.env_vars

    @cached_property
    def parameters(self) -> dict[str, inspect.Parameter]:
        return dict(inspect.signature(self.cls).parameters)

    @property
    def default_model(self) -> str:
        return self.cls.default_model

    @property
    def options(self) -> list[str]:
        """Keyword arguments a config may pass in ``options`` (the class's
        ``config_options``, less any reserved keyword)."""
        return sorted(n for n in self.cls.config_options if n not in RESERVED_OPTIONS)

    def key(self, model: str, name: str | None) -> str:
        """The provider key an adapter built with ``model`` and ``name`` will have."""
        return self.cls.provider_key(model, name)

    def option_problem(self, option: str, value: Any) -> str | None:
        """Why ``value`` cannot be passed as ``option`` (its type is wrong for the adapter's
        parameter), or ``None``. Options whose annotation cannot be resolved are not checked."""
        param = self.parameters.get(option)
        expected = param.annotation if param is not None else None
        if not isinstance(expected, str):
            return None
        adapter = _type_adapter(self.module, expected)
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
        """Whether the model catalogue holds this vendor's models."""
        return self.cls.catalogued


class _Vendors(Mapping[str, Vendor]):
    """Every registered vendor by id, read from the registry on each use (so a vendor
    registered at run time is known at once); an adapter module loads on first use."""

    def __getitem__(self, name: str) -> Vendor:
        if not registry.is_registered(name):
            raise KeyError(name)
        return _vendor(name)

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and registry.is_registered(name)


def _vendor(name: str) -> Vendor:
    found = _cache.get(name)
    if found is None or found.cls is not registry.get(name):
        found = _cache[name] = Vendor(name)
    return found


_cache: dict[str, Vendor] = {}
VENDORS: Mapping[str, Vendor] = _Vendors()


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
