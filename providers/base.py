"""What every adapter builds on: the provider contract plus small helpers shared by adapters.

The contract types live in :mod:`fallback_chain.provider` (the router needs them and must not
import adapters); they are re-exported here so an adapter author finds everything in one place.
"""

from __future__ import annotations

import os

from fallback_chain.errors import ConfigurationError, ProviderError
from fallback_chain.outcome import Outcome, outcome_for_status
from fallback_chain.provider import Capabilities, CheckResult, Provider, ProviderReply
from fallback_chain.secrets import register_secret

__all__ = [
    "Capabilities",
    "CheckResult",
    "ConfigurationError",
    "Outcome",
    "Provider",
    "ProviderError",
    "ProviderReply",
    "outcome_for_status",
    "resolve_api_key",
]


def resolve_api_key(explicit: str | None, env_vars: tuple[str, ...], provider: str) -> str:
    """The key passed to the constructor, else the first environment variable that is set.

    Raises ``ConfigurationError`` naming the variables when none is set (at construction time,
    never in the middle of a batch). The key is registered for redaction.
    """
    key = explicit or next((os.environ[v] for v in env_vars if os.environ.get(v)), None)
    if not key:
        names = " or ".join(env_vars)
        raise ConfigurationError(
            f"{provider}: no API key; pass api_key=... or set {names}")
    register_secret(key)
    return key
