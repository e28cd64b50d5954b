"""Turning validated config tables into the library's objects: adapters, ``Policy``, ``Budget``.

Keys: a provider's ``key_env`` variable, else the vendor's usual variables, looked up first in
the environment and then in the secrets file; found in the file, the key is passed as
``api_key=`` (never put into ``os.environ``). A missing key is a ``ConfigError`` naming the
variables, the secrets file and the provider's line.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..policy import Policy
from ..provider import Provider
from ..secrets import redact
from .schema import ChainConfig, ProviderConfig
from .vendors import VENDORS, plain_value

if TYPE_CHECKING:
    from ..cost.budget import Budget
    from ..cost.catalogue import PriceCatalogue
    from ..cost.quotas import Quotas
    from .emulated import Emulated
    from .schema import QuotasConfig
    from .secrets_file import SecretsFile


class BuildError(ConfigurationError):
    """A provider could not be built; the caller adds the file and line."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def key_names(spec: ProviderConfig) -> tuple[str, ...]:
    """The variables that may hold ``spec``'s key, in the order they are tried."""
    return (spec.key_env,) if spec.key_env else VENDORS[spec.vendor].env_vars


def resolve_key(spec: ProviderConfig, secrets: SecretsFile | None) -> str | None:
    """``None`` when the adapter can read the key from the environment itself; the key from the
    secrets file otherwise. Raises ``BuildError`` when neither has it."""
    names = key_names(spec)
    if not spec.key_env and any(os.environ.get(n) for n in names):
        return None
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    if secrets is not None:
        for name in names:
            value = secrets.get(name)
            if value:
                return value
    where = " or ".join(names)
    if secrets is None:
        hint = " (or name a secrets file in [secrets] file = \"...\")"
    elif secrets.exists:
        hint = f" or in the secrets file {secrets.path}"
    else:
        hint = f" (the secrets file {secrets.path} does not exist)"
    raise BuildError(f"no API key for provider {spec.key!r}: set {where} in the environment"
                     + hint, "key_env" if spec.key_env else None)


def build_provider(spec: ProviderConfig, *, secrets: SecretsFile | None = None,
                   emulated: Emulated | None = None, prices: PriceCatalogue | None = None
                   ) -> Provider:
    """The adapter ``spec`` describes. Raises ``BuildError`` (no key, bad option value)."""
    vendor = VENDORS[spec.vendor]
    kwargs: dict[str, Any] = {k: plain_value(v) for k, v in spec.options.items()}
    kwargs[vendor.model_param] = spec.model_id
    if spec.name:
        kwargs["name"] = spec.name
    if vendor.needs_key:
        if emulated is not None:
            kwargs["api_key"] = emulated.key_for(spec.vendor)
            kwargs["base_url"] = emulated.url_for(spec.vendor)
        else:
            kwargs["api_key"] = resolve_key(spec, secrets)
            kwargs["base_url"] = spec.base_url
        if prices is not None:
            kwargs["prices"] = prices
    try:
        return vendor.cls(**kwargs)
    except (ConfigurationError, ValueError, TypeError) as exc:
        raise BuildError(redact(str(exc)), "options" if spec.options else None) from None


def build_policy(chain: ChainConfig) -> Policy:
    """The chain's ``Policy``: its own overrides plus each provider's, keyed by provider key."""
    values = chain.policy.overrides() if chain.policy is not None else {}
    for field in ("deadline_s", "attempt_timeout_s"):
        if getattr(chain, field) is not None:
            values[field] = getattr(chain, field)
    per_provider = {p.key: p.policy_overrides() for p in chain.providers}
    values["providers"] = {k: v for k, v in per_provider.items() if v}
    return Policy(**values)


def build_budget(chain: ChainConfig, name: str) -> Budget | None:
    if chain.budget is None:
        return None
    from ..cost.budget import Budget

    b = chain.budget
    extra: dict[str, Any] = {}
    if b.alert_thresholds is not None:
        extra["alert_thresholds"] = tuple(b.alert_thresholds)
    return Budget(per_request_usd=b.per_request_usd, daily_usd=b.daily_usd,
                  monthly_usd=b.monthly_usd, name=name, **extra)


def build_quotas(spec: QuotasConfig | None) -> Quotas | None:
    """``[quotas]`` as ``Quotas`` (``None`` when the file has none)."""
    if spec is None:
        return None
    from ..cost.quotas import Limit, Quotas

    def limit(c: Any) -> Limit | None:
        return None if c is None else Limit(**c.model_dump())

    extra: dict[str, Any] = {}
    if spec.alert_thresholds is not None:
        extra["alert_thresholds"] = tuple(spec.alert_thresholds)
    return Quotas(per_user=limit(spec.per_user), per_project=limit(spec.per_project),
                  overrides={k: Limit(**v.model_dump()) for k, v in spec.users.items()},
                  project_overrides={k: Limit(**v.model_dump())
                                     for k, v in spec.projects.items()}, **extra)
