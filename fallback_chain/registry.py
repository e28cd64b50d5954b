"""The vendor registry: every adapter class, found through the entry-point group
``fallback_chain.providers``, and the vendor data each declares on its class
(:class:`fallback_chain.provider.Provider`: ``vendor``, ``env_vars``, ``default_model``,
``model_param``, ``config_options``, ``provider_key``, ...).

This is the only list of vendors. The built-in adapters are registered in this package's own
metadata (``pyproject.toml``), exactly as a third-party package registers its adapter::

    [project.entry-points."fallback_chain.providers"]
    acme = "acme_images.adapter:AcmeProvider"

Loading is lazy: :func:`names` reads installed metadata only; :func:`get` imports one adapter
module (which must not import its SDK at module level). The router core does not use this
module.
"""

from __future__ import annotations

import threading
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .provider import Provider

GROUP = "fallback_chain.providers"

_lock = threading.Lock()
#: Adapter classes registered at run time (``register``), by vendor id.
_added: dict[str, type[Provider]] = {}
#: Entry-point targets already loaded, by vendor id.
_loaded: dict[str, type[Provider]] = {}


class UnknownVendorError(ConfigurationError, KeyError):
    """No adapter is registered under this vendor id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@cache
def _entry_points() -> dict[str, str]:
    """``{vendor id: "module:attr"}`` from installed metadata (first registration wins)."""
    found: dict[str, str] = {}
    for ep in entry_points(group=GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def names() -> tuple[str, ...]:
    """Every registered vendor id, sorted (no adapter module is imported)."""
    return tuple(sorted({*_entry_points(), *_added}))


def is_registered(vendor: str) -> bool:
    return vendor in _added or vendor in _entry_points()


def get(vendor: str) -> type[Provider]:
    """The adapter class of ``vendor`` (imports its module on first use, never its SDK).

    Raises :class:`UnknownVendorError` (a ``ConfigurationError``) for an unregistered id."""
    if vendor in _added:
        return _added[vendor]
    if vendor in _loaded:
        return _loaded[vendor]
    target = _entry_points().get(vendor)
    if target is None:
        known = ", ".join(names()) or (f"none: no package registers the entry-point group "
                                       f"{GROUP!r}; is fallback-chain installed?")
        raise UnknownVendorError(f"unknown vendor {vendor!r} (registered: {known})")
    cls = _load(vendor, target)
    with _lock:
        _loaded[vendor] = cls
    return cls


def classes() -> dict[str, type[Provider]]:
    """Every registered adapter class by vendor id (imports every adapter module)."""
    return {name: get(name) for name in names()}


def where(predicate: Any) -> tuple[str, ...]:
    """The vendor ids whose adapter class satisfies ``predicate(cls)``."""
    return tuple(name for name in names() if predicate(get(name)))


def api_vendors() -> tuple[str, ...]:
    """Vendors whose adapter calls a vendor API (takes a key and a base URL)."""
    return where(lambda cls: cls.needs_key)


def catalogued() -> tuple[str, ...]:
    """Vendors whose models the catalogue holds."""
    return where(lambda cls: cls.catalogued)


def vendor_of(provider: object) -> str | None:
    """The vendor id of a provider instance (``None`` for a provider of no registered vendor,
    such as a test double)."""
    vendor = getattr(type(provider), "vendor", "") or getattr(provider, "vendor", "")
    return str(vendor) if vendor else None


def register(cls: type[Provider], vendor: str | None = None) -> type[Provider]:
    """Add an adapter class without packaging metadata (tests, notebooks). Returns ``cls``, so
    it works as a class decorator. A package should use the entry point instead."""
    vendor = vendor or cls.vendor
    if not vendor:
        raise ConfigurationError(f"{cls.__name__} declares no vendor id (class attribute "
                                 "vendor = \"...\")")
    with _lock:
        _added[vendor] = cls
    return cls


def unregister(vendor: str) -> None:
    """Undo :func:`register` (tests)."""
    with _lock:
        _added.pop(vendor, None)


def _load(vendor: str, target: str) -> type[Provider]:
    from .provider import Provider

    module, _, attr = target.partition(":")
    try:
        obj: Any = import_module(module)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"vendor {vendor!r}: cannot load its adapter {target!r} "
                                 f"({type(exc).__name__}: {exc})") from None
    if not (isinstance(obj, type) and issubclass(obj, Provider)):
        raise ConfigurationError(f"vendor {vendor!r}: {target!r} is not a Provider class")
    if obj.vendor != vendor:
        raise ConfigurationError(f"vendor {vendor!r}: {target} declares vendor = "
                                 f"{obj.vendor!r}; the entry-point name and the class's vendor "
                                 "must be the same")
    return obj
