"""Pages from the vendor registry: vendor ids with their environment variables, and every
adapter's config options."""

from __future__ import annotations

import inspect
import sys
from typing import Any

from ._md import code, mention, page, table
from .core_pages import member_comments


def _adapters() -> list[tuple[str, type[Any]]]:
    from .. import registry

    return [(vendor, registry.get(vendor)) for vendor in registry.names()]


def _target(cls: type[Any]) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def vendors_page() -> str:
    from .. import provider as provider_module

    rows = []
    for vendor, cls in _adapters():
        keys = ", ".join(code(v) for v in cls.env_vars) if cls.needs_key else "none (no key)"
        rows.append((code(vendor), code(_target(cls)), keys,
                     code(cls.default_model) if cls.default_model else "",
                     code(cls.model_param), "yes" if cls.emulator_api else "",
                     "yes" if cls.catalogued else ""))
    notes = member_comments(provider_module.__file__ or "", "Provider")
    legend = [(code(name), notes[name]) for name in (
        "vendor", "env_vars", "default_model", "model_param", "config_options", "needs_key",
        "catalogued", "emulator_path", "emulator_api", "fast_poll_options", "cost_module")
        if name in notes]
    return page(
        "Vendors and their environment variables",
        "Every vendor id registered in the entry-point group `fallback_chain.providers` "
        "(`fallback_chain.registry`), the config file's `vendor = \"...\"`. A key is read "
        "from `api_key=` (or a config's secrets file), else from the environment variables "
        "listed, in that order; a config entry's `key_env` names another variable.",
        table(("vendor", "adapter", "key from", "default model", "model keyword",
               "emulated", "model records"), rows),
        ["## What an adapter class declares", "",
         "The class data the registry reads (`fallback_chain.provider.Provider`; see "
         "[custom-provider.md](../custom-provider.md)).", "",
         *table(("attribute", "meaning"), legend)],
    )


def _option_rows(cls: type[Any]) -> list[tuple[str, str, str, str]]:
    params = inspect.signature(cls.__init__).parameters
    module = sys.modules.get(cls.__module__)
    docs = [inspect.getdoc(cls), inspect.getdoc(module) if module else None]
    rows = []
    for option in cls.config_options:
        p = params.get(option)
        annotation = "" if p is None or p.annotation is inspect.Parameter.empty else p.annotation
        if p is None or p.default is inspect.Parameter.empty:
            default = ""
        else:
            default = "none" if p.default is None else code(repr(p.default))
        meaning = next((m for d in docs if (m := mention(d, option))), "")
        rows.append((code(option), code(annotation) if annotation else "", default, meaning))
    return rows


def adapters_page() -> str:
    parts = []
    for vendor, cls in _adapters():
        parts.append([f"## `{vendor}`: `{cls.__name__}`", "",
                      *(table(("option", "type", "default", "meaning"), _option_rows(cls))
                        if cls.config_options else ["No options."])])
    return page(
        "Adapter options",
        "The constructor keywords a config file may set in a provider's `options` table "
        "(each adapter's `config_options`), with their defaults; TOML arrays become tuples. "
        "In Python they are keywords of the adapter class. Unknown options are refused, "
        "listing these.",
        *parts,
    )
