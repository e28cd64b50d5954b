"""What every adapter builds on: the provider contract plus small helpers shared by adapters.

The contract types live in :mod:`fallback_chain.provider` (the router needs them and must not
import adapters); they are re-exported here so an adapter author finds everything in one place.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

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
    "refuse_credentials_in_url",
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


def refuse_credentials_in_url(base_url: str | None, provider: str) -> None:
    """``ConfigurationError`` when ``base_url`` carries ``user:password@``: the HTTP client
    would send them as ``Authorization: Basic …`` *instead of* the API key, to whatever host
    the URL names. The password is registered for redaction and never repeated."""
    if not base_url:
        return
    try:
        parts = urlsplit(base_url.strip())
        user, password = parts.username, parts.password
    except ValueError:
        return  # not a URL: the adapter's own check says so
    if user is None and password is None:
        return
    for secret in (password, user):
        if secret:
            register_secret(secret)
    host = parts.hostname or "?"
    shown = f"{parts.scheme}://***@{host}{f':{parts.port}' if parts.port else ''}{parts.path}"
    raise ConfigurationError(
        f"{provider}: base_url {shown!r} carries credentials (user:password@); they would "
        "replace the API key as HTTP Basic auth. Remove them and pass the key as api_key= "
        "or through the vendor's environment variable")
