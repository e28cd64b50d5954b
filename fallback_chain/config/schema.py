"""The shape of a config file, validated with pydantic.

The policy tables mirror :class:`fallback_chain.policy.Policy` field by field (built from its
dataclass fields, so a new policy knob is accepted here as soon as ``Policy`` has it), and are
checked by building a ``Policy``. Unknown keys are errors; :mod:`.loader` turns every error into
a message naming the file, the line and the field.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ..errors import ConfigurationError
from ..policy import Policy
from .hints import did_you_mean
from .vendors import VENDORS

#: The most items a batch keeps in flight (as ``batch --concurrency`` allows): one task each.
MAX_CONCURRENCY = 1024
CHAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: Extra variable names ``key_env`` may use, comma-separated, set by the user outside any
#: config file (see :func:`key_env_allowed`).
KEY_ENV_ALLOW = "FALLBACK_CHAIN_KEY_ENV"


def _vendor_words(vendor: str) -> list[str]:
    """The words that mark a vendor's key variables: ``OPENAI``; ``GEMINI``, ``GOOGLE``."""
    words = [name.split("_", 1)[0] for name in VENDORS[vendor].env_vars]
    return list(dict.fromkeys([*words, vendor.upper()]))


def key_env_allowed(vendor: str, name: str) -> bool:
    """Whether a config file may name ``name`` as ``vendor``'s ``key_env``: one of the
    vendor's documented variables, a variant of them (a ``_``-separated word naming the vendor
    and one that is ``KEY``: ``TEAM_B_OPENAI_KEY``, ``OPENAI_API_KEY_2``), or a name the user
    lists in ``$FALLBACK_CHAIN_KEY_ENV``. Anything else (``AWS_SECRET_ACCESS_KEY``) could send
    an unrelated secret to whatever ``base_url`` the file names."""
    if name in VENDORS[vendor].env_vars:
        return True
    words = name.upper().split("_")
    if "KEY" in words and any(w in words for w in _vendor_words(vendor)):
        return True
    allowed = os.environ.get(KEY_ENV_ALLOW, "")
    return name in {n.strip() for n in allowed.replace(" ", ",").split(",") if n.strip()}


def problem(message: str, *at: str | int) -> PydanticCustomError:
    """A validation error whose location is ``at`` below the model that raises it."""
    return PydanticCustomError("config", "{message}", {"message": message, "at": at})


class Strict(BaseModel):
    """Every table of the file: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------- policy

class PolicyBase(Strict):
    """Overrides of :class:`Policy` fields; only the keys written in the file are set."""

    def overrides(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.model_fields_set}

    @model_validator(mode="after")
    def _check_with_policy(self) -> PolicyBase:
        values = self.overrides()
        try:
            Policy(**values)
        except ConfigurationError as exc:
            message = str(exc)
            m = re.match(r"^(\w+)(?:\[(['\"])(.+?)\2\]|: (['\"])(.+?)\4)?", message)
            at: tuple[str, ...] = ()
            if m and m[1] in values:
                at = (m[1],)
                name = m[3] or m[5]
                if name and isinstance(values[m[1]], Mapping) and name in values[m[1]]:
                    at = (m[1], name)
                    message = message.removeprefix(f"{m[1]}: ")
            raise problem(message, *at) from None
        return self


def _policy_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(Policy)
    return {f.name: (hints[f.name] | None, None)  # None: not set in the file
            for f in dataclasses.fields(Policy) if f.name != "providers"}


if TYPE_CHECKING:
    PolicyConfig = PolicyBase
else:
    PolicyConfig = create_model("PolicyConfig", __base__=PolicyBase, **_policy_fields())

POLICY_FIELDS = frozenset(PolicyConfig.model_fields)


# ---------------------------------------------------------------------------------- provider

class ProviderConfig(Strict):
    """One provider of a chain (a ``[[chains.NAME.providers]]`` table)."""

    vendor: str
    model: str | None = None
    name: str | None = None
    base_url: str | None = None
    key_env: str | None = None
    images_per_minute: float | None = Field(None, gt=0)
    max_concurrency: int | None = Field(None, ge=1)
    policy: PolicyConfig | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("vendor")
    @classmethod
    def _vendor(cls, v: str) -> str:
        if v not in VENDORS:
            raise ValueError(f"unknown vendor {v!r}; use one of {', '.join(VENDORS)}"
                             + did_you_mean(v.lower(), VENDORS))
        return v

    @field_validator("model", "name")
    @classmethod
    def _not_blank(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or v != v.strip()):
            raise ValueError("must not be empty or have spaces around it")
        return v

    @field_validator("base_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"must be an http:// or https:// URL (got {v!r})")
        return v

    @field_validator("key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not ENV_NAME.match(v):
            raise ValueError("must be the NAME of an environment variable (letters, digits and "
                             "_), not a key; keys go in the environment or the secrets file")
        return v

    @model_validator(mode="after")
    def _vendor_rules(self) -> ProviderConfig:
        vendor = VENDORS[self.vendor]
        if not vendor.needs_key:
            for field in ("base_url", "key_env"):
                if getattr(self, field) is not None:
                    raise problem(f"the {self.vendor} provider calls no API; remove {field}",
                                  field)
        if self.key_env is not None and not key_env_allowed(self.vendor, self.key_env):
            raise problem(
                f"{self.key_env} is not a {self.vendor} key variable: key_env may name "
                f"{' or '.join(vendor.env_vars)}, a name with {_vendor_words(self.vendor)[0]} "
                f"and KEY in it (TEAM_B_{_vendor_words(self.vendor)[0]}_KEY), or a name listed "
                f"in ${KEY_ENV_ALLOW} (set outside the project: a config file may not send any "
                "variable of yours to any host)", "key_env")
        allowed = vendor.options
        for option in self.options:
            if option not in allowed:
                if option in ("model", "model_id", "name", "base_url"):
                    why = f"set {option.replace('_id', '')} in the provider table itself"
                else:
                    why = (f"{vendor.class_name} options are: {', '.join(allowed)}"
                           + did_you_mean(option, allowed))
                raise problem(f"unknown option {option!r}; {why}", "options", option)
            wrong = vendor.option_problem(option, self.options[option])
            if wrong:
                raise problem(wrong, "options", option)
        if self.policy is not None:
            for field in ("images_per_minute", "max_concurrency"):
                if field in self.policy.overrides() and getattr(self, field) is not None:
                    raise problem(f"{field} is set both here and in policy; keep one", field)
        return self

    @property
    def vendor_info(self) -> Any:
        return VENDORS[self.vendor]

    @property
    def model_id(self) -> str:
        """The model asked for, or the adapter's default."""
        return self.model or VENDORS[self.vendor].default_model

    @property
    def key(self) -> str:
        """The provider's identity in the chain (what the adapter's ``key`` will be)."""
        return VENDORS[self.vendor].key(self.model_id, self.name)

    def policy_overrides(self) -> dict[str, Any]:
        """Per-provider ``Policy`` overrides, including the rate and concurrency limits."""
        values = self.policy.overrides() if self.policy is not None else {}
        for field in ("images_per_minute", "max_concurrency"):
            if getattr(self, field) is not None:
                values[field] = getattr(self, field)
        return values


# ---------------------------------------------------------------------------------- chain

class BudgetConfig(Strict):
    """Spending caps (``fallback_chain.cost.Budget``); ``None``/absent means no cap."""

    per_request_usd: float | None = Field(None, ge=0)
    daily_usd: float | None = Field(None, ge=0)
    monthly_usd: float | None = Field(None, ge=0)
    alert_thresholds: list[float] | None = None

    @field_validator("alert_thresholds")
    @classmethod
    def _thresholds(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (not v or any(t <= 0 for t in v)):
            raise ValueError("must be a non-empty list of positive fractions, e.g. [0.8, 1.0]")
        return v


class LimitConfig(Strict):
    """One tenant's caps (``fallback_chain.cost.Limit``); absent means no cap."""

    daily_images: int | None = Field(None, ge=0)
    daily_usd: float | None = Field(None, ge=0)
    monthly_images: int | None = Field(None, ge=0)
    monthly_usd: float | None = Field(None, ge=0)


class QuotasConfig(Strict):
    """``[quotas]``: per-tenant caps for every chain of the file (``fallback_chain.cost.
    Quotas``): ``[quotas.per_user]``, ``[quotas.per_project]``, and overrides for named
    tenants in ``[quotas.users.NAME]`` and ``[quotas.projects.NAME]``."""

    per_user: LimitConfig | None = None
    per_project: LimitConfig | None = None
    users: dict[str, LimitConfig] = {}
    projects: dict[str, LimitConfig] = {}
    alert_thresholds: list[float] | None = None

    @field_validator("alert_thresholds")
    @classmethod
    def _thresholds(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and (not v or any(t <= 0 for t in v)):
            raise ValueError("must be a non-empty list of positive fractions, e.g. [0.8, 1.0]")
        return v


class PrescreenConfig(Strict):
    """One prompt pre-screen of a chain (a ``[[chains.NAME.prescreen]]`` table), run in order
    before any image provider (``fallback_chain.prescreen``; docs/quality.md).

    ``kind = "blocklist"``: ``terms`` and/or ``file`` (one term per line, ``#`` comments; a path
    relative to this file). ``kind = "moderation"``: OpenAI's moderation endpoint, ``model``
    (default ``omni-moderation-latest``), ``timeout_s``, and the key from ``key_env`` (an
    OpenAI key variable) or ``OPENAI_API_KEY``; an emulated run asks the emulator.
    ``on_error`` (``allow`` or ``block``): what a failure of the screen itself does."""

    kind: Literal["blocklist", "moderation"]
    terms: list[str] = []
    file: str | None = None
    model: str | None = None
    key_env: str | None = None
    timeout_s: float | None = Field(None, gt=0)
    on_error: Literal["allow", "block"] = "allow"

    @model_validator(mode="after")
    def _fields_of_kind(self) -> PrescreenConfig:
        if self.kind == "blocklist":
            for field in ("model", "key_env", "timeout_s"):
                if getattr(self, field) is not None:
                    raise problem(f"a blocklist takes no {field} (that is for kind = "
                                  "\"moderation\")", field)
            if not any(t.strip() for t in self.terms) and not (self.file or "").strip():
                raise problem("a blocklist needs terms = [...] or file = \"...\"", "terms")
            return self
        for field in ("terms", "file"):
            if getattr(self, field):
                raise problem(f"moderation takes no {field} (that is for kind = "
                              "\"blocklist\")", field)
        if self.key_env is not None and not (
                ENV_NAME.match(self.key_env) and key_env_allowed("openai", self.key_env)):
            raise problem(f"{self.key_env} is not an OpenAI key variable: key_env may name "
                          "OPENAI_API_KEY, a name with OPENAI and KEY in it, or a name listed "
                          f"in ${KEY_ENV_ALLOW}", "key_env")
        return self


class ChainConfig(Strict):
    """One named chain (a ``[chains.NAME]`` table)."""

    providers: list[ProviderConfig] = Field(min_length=1)
    deadline_s: float | None = Field(None, gt=0)
    attempt_timeout_s: float | None = Field(None, gt=0)
    order: Literal["given", "cost"] = "given"
    policy: PolicyConfig | None = None
    budget: BudgetConfig | None = None
    ledger: str | None = None
    storage: str | None = None
    concurrency: int | None = Field(None, ge=1, le=MAX_CONCURRENCY)
    prices: str | None = None
    #: built-in image validators by name (``fallback_chain.validators``; docs/quality.md)
    validators: list[str] = []
    #: prompt pre-screens, in order (``fallback_chain.prescreen``; docs/quality.md)
    prescreen: list[PrescreenConfig] = []

    @model_validator(mode="after")
    def _consistent(self) -> ChainConfig:
        seen: dict[str, int] = {}
        for i, p in enumerate(self.providers):
            if p.key in seen:
                raise problem(
                    f"providers {seen[p.key]} and {i} are both called {p.key!r}; give one a "
                    "distinct name = \"...\"", "providers", i, "name" if p.name else "vendor")
            seen[p.key] = i
        if self.policy is not None:
            for field in ("deadline_s", "attempt_timeout_s"):
                if field in self.policy.overrides() and getattr(self, field) is not None:
                    raise problem(f"{field} is set both here and in policy; keep one", field)
        for field in ("ledger", "storage", "prices"):
            value = getattr(self, field)
            if value is not None and not value.strip():
                raise problem("must not be empty", field)
        return self


class SecretsConfig(Strict):
    """``[secrets]``: a file of ``NAME=value`` lines holding the API keys."""

    file: str


class StateConfig(Strict):
    """``[state]``: breakers, cooldowns, rate limits and budgets shared by every worker, in
    Redis. The URL may also come from ``FALLBACK_CHAIN_REDIS_URL`` (environment or secrets
    file), which wins; a URL with a password belongs there, not in this file."""

    url: str | None = None
    on_unavailable: Literal["local", "fail"] = "local"
    namespace: str | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from urllib.parse import urlsplit

        parts = urlsplit(v)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        from ..state.redis.urls import secret_params

        params = secret_params(v)
        if parts.password or params:
            where = f"a credential in ?{params[0]}=" if params else "a password"
            raise ValueError(f"holds {where}: put the URL in FALLBACK_CHAIN_REDIS_URL (in the "
                             "environment or the secrets file) instead")
        return v

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str | None) -> str | None:
        if v is not None and not CHAIN_NAME.match(v):
            raise ValueError("use letters, digits, '_' and '-'")
        return v


class ConfigFile(Strict):
    """The whole file."""

    default_chain: str | None = None
    secrets: SecretsConfig | None = None
    state: StateConfig | None = None
    chains: dict[str, ChainConfig] = Field(min_length=1)
    quotas: QuotasConfig | None = None

    @model_validator(mode="after")
    def _names(self) -> ConfigFile:
        for name in self.chains:
            if not CHAIN_NAME.match(name):
                raise problem(f"chain name {name!r}: use letters, digits, '_' and '-'",
                              "chains", name)
        names = list(self.chains)
        if self.default_chain is None:
            if len(names) > 1:
                raise problem(f"the file defines several chains ({', '.join(names)}); say which "
                              "one to use by default with default_chain = \"...\"",
                              "default_chain")
        elif self.default_chain not in self.chains:
            raise problem(f"no chain called {self.default_chain!r}; chains: {', '.join(names)}"
                          + did_you_mean(self.default_chain, names), "default_chain")
        return self

    @property
    def default(self) -> str:
        return self.default_chain or next(iter(self.chains))
