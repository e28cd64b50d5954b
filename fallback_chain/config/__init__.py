"""The config file: named chains of providers, policies, limits, budgets, ledger and storage.

::

    from fallback_chain.config import load_config, find_config

    config = load_config(find_config())        # ./fallback-chain.toml or $FALLBACK_CHAIN_CONFIG
    chain = config.chain()                     # the default chain, ready to use
    chain = config.chain("cheap")              # another named chain
    config.chain_names                         # ['main', 'cheap']

Errors name the file, the line and the field (``ConfigError``). API keys never go in the file:
they come from the environment or from the secrets file it names. See ``docs/config.md``.
Names load on first use, so importing this package does not import pydantic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from .config import BuiltProvider, Config
    from .discover import DEFAULT_NAME, ENV_VAR, find_config
    from .emulated import Emulated
    from .errors import ConfigError, ConfigNotFoundError, ConfigWarning, Problem
    from .loader import load_config
    from .schema import ChainConfig, ConfigFile, ProviderConfig

__all__ = ["DEFAULT_NAME", "ENV_VAR", "BuiltProvider", "ChainConfig", "Config", "ConfigError",
           "ConfigFile", "ConfigNotFoundError", "ConfigWarning", "Emulated", "Problem",
           "ProviderConfig", "find_config", "load_config"]

_WHERE = {
    "BuiltProvider": ".config", "Config": ".config",
    "DEFAULT_NAME": ".discover", "ENV_VAR": ".discover", "find_config": ".discover",
    "Emulated": ".emulated",
    "ConfigError": ".errors", "ConfigNotFoundError": ".errors", "ConfigWarning": ".errors",
    "Problem": ".errors",
    "load_config": ".loader",
    "ChainConfig": ".schema", "ConfigFile": ".schema", "ProviderConfig": ".schema",
}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
