"""``Policy``: every knob of the router, with plain keyword names, per chain and per provider."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ..errors import ConfigurationError
from ..outcome import HEALTH_FAILURES, Outcome
from .backoff import Backoff
from .rules import ADVANCE, CONFIGURABLE, DEFAULT_RULES, REQUEST_FAULT, Rule

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _outcome(name: Outcome | str, what: str) -> Outcome:
    try:
        outcome = Outcome(name)
    except ValueError:
        outcome = None
    if outcome not in CONFIGURABLE:
        valid = ", ".join(sorted(o.value for o in CONFIGURABLE))
        raise ConfigurationError(f"{what}: {name!r} is not a provider outcome; use one of {valid}")
    return outcome


@dataclass(frozen=True)
class Policy:
    """How a chain reacts to each outcome. Defaults are the README's "default policy" table.

    Examples::

        Policy(retries={"server_error": 2}, cooldowns_s={"rate_limited": 10})
        Policy(on_content_policy="advance", attempt_timeout_s=60, deadline_s=300)
        Policy(providers={"leonardo": {"attempt_timeout_s": 600, "retries": {"timeout": 0}}})

    * ``retries``: extra tries on the same provider per outcome (defaults: 1 for
      ``server_error``, ``connection_error``, ``malformed_response``; 0 otherwise).
    * ``cooldowns_s``: how long a provider is kept out after an outcome (defaults:
      ``rate_limited`` 30 s unless the server sent Retry-After, ``quota_exhausted`` 1 h,
      ``auth_error`` 1 h, ``not_found`` 24 h).
    * ``honour_retry_after``: a server's Retry-After (or Gemini's ``RetryInfo``) on a
      ``rate_limited`` answer sets the cooldown instead of ``cooldowns_s`` (capped at
      ``max_retry_after_s``), and a retry waits at least that long.
    * ``on_content_policy``: ``"stop"`` (default) raises ``ContentPolicyError`` at once;
      ``"advance"`` tries the next provider. ``stop_on`` adds other outcomes that stop.
    * ``on_request_fault``: what an ``invalid_request`` the adapter marked as a request fault
      (no vendor would accept the request, e.g. it has no prompt) does: ``"stop"`` (default,
      raises ``ChainStoppedError`` instead of paying every vendor to refuse it) or
      ``"advance"``. Other ``invalid_request`` answers (a size or parameter only this vendor
      lacks) always advance. Which vendor answers are request faults: ``docs/errors.md``.
    * ``attempt_timeout_s`` bounds one call; ``deadline_s`` bounds the whole request, retries
      and waits included.
    * Backoff between retries: ``backoff_initial_s``, ``backoff_max_s``,
      ``backoff_multiplier``, ``backoff_jitter``.
    * Circuit breaker: opens after ``breaker_failures`` consecutive ``breaker_outcomes``,
      lets one probe through after ``breaker_reset_s``.
    * When every remaining provider is cooling down, the chain waits for the earliest one if
      ``wait_for_cooldown`` and the wait is at most ``max_cooldown_wait_s`` and fits the
      deadline, up to ``max_rounds`` passes over the chain.
    * ``bill_timeouts``: a timed-out call is recorded at its estimated cost (the vendor may
      still finish and bill it); ``False`` records it as free.
    * Capacity, usually per provider: ``images_per_minute`` (a client-side limiter, GCRA,
      ``burst_images`` at once; calls are spaced ``(60 + rate_margin_s) / images_per_minute``
      seconds apart, so that calls whose trips to the vendor take up to ``rate_margin_s``
      longer than others still never put one image too many in any minute the vendor counts)
      and ``max_concurrency`` (calls in flight). A provider at
      capacity is skipped (recorded as ``skipped``, "at capacity") and the next one is used;
      when every provider is busy the chain waits for the earliest, at most ``max_wait_s`` in
      all per request.
    * Hedging: with ``hedge_delay_s`` set, when the current provider has not answered after
      that delay (``hedge_delay="p95"``: after the p95 latency of its successful calls, once
      20 successes are known; ``hedge_delay_s`` until then) the next provider starts too, up
      to ``max_hedges`` extra calls at once; the first success wins and the rest are
      cancelled (recorded as ``cancelled``, billed at their estimate unless ``bill_timeouts``
      is off, since the vendor may finish them).
      ``hedge_max_extra_usd`` caps what hedges may add to one request (by estimate).
    * ``providers``: per-provider overrides of any of the above, keyed by provider name.
    """

    attempt_timeout_s: float = 180.0
    deadline_s: float | None = None
    retries: Mapping[str, int] = field(default_factory=dict)
    cooldowns_s: Mapping[str, float] = field(default_factory=dict)
    on_content_policy: Literal["stop", "advance"] = "stop"
    on_request_fault: Literal["stop", "advance"] = "stop"
    stop_on: frozenset[str] = frozenset()
    honour_retry_after: bool = True
    max_retry_after_s: float = 3600.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    backoff_multiplier: float = 2.0
    backoff_jitter: float = 0.25
    breaker_failures: int = 5
    breaker_reset_s: float = 60.0
    breaker_outcomes: frozenset[str] = HEALTH_FAILURES
    wait_for_cooldown: bool = True
    max_cooldown_wait_s: float = 60.0
    max_rounds: int = 3
    bill_timeouts: bool = True
    images_per_minute: float | None = None
    max_concurrency: int | None = None
    burst_images: int = 1
    rate_margin_s: float = 0.5
    max_wait_s: float = 600.0
    hedge_delay_s: float | None = None
    hedge_delay: Literal["fixed", "p95"] = "fixed"
    hedge_max_extra_usd: float | None = None
    max_hedges: int = 1
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigurationError(f"{f.name} must be a finite number (got {value!r})")
        for invalid, message in _INVALID:
            if invalid(self):
                raise ConfigurationError(message)
        breaker = frozenset(_outcome(s, "breaker_outcomes") for s in self.breaker_outcomes)
        object.__setattr__(self, "breaker_outcomes", breaker)
        object.__setattr__(self, "_rules", MappingProxyType(self._build_rules()))
        object.__setattr__(self, "_backoff", Backoff(
            self.backoff_initial_s, self.backoff_max_s, self.backoff_multiplier,
            self.backoff_jitter))
        fields = {f.name for f in dataclasses.fields(self)} - {"providers"}
        for key, overrides in self.providers.items():
            unknown = set(overrides) - fields
            if unknown:
                raise ConfigurationError(
                    f"providers[{key!r}]: unknown option(s) {sorted(unknown)}")

    def _build_rules(self) -> dict[Outcome, Rule]:
        """The default table with this policy's retries, cooldowns and stops applied."""
        rules = dict(DEFAULT_RULES)
        for name, n in self.retries.items():
            o = _outcome(name, "retries")
            if not isinstance(n, int) or n < 0:
                raise ConfigurationError(f"retries[{name!r}] must be an int >= 0 (got {n!r})")
            rules[o] = dataclasses.replace(rules[o], retries=n)
        for name, s in self.cooldowns_s.items():
            o = _outcome(name, "cooldowns_s")
            if s < 0:
                raise ConfigurationError(f"cooldowns_s[{name!r}] must be >= 0 (got {s!r})")
            rules[o] = dataclasses.replace(rules[o], cooldown_s=float(s))
        stops = {_outcome(s, "stop_on") for s in self.stop_on}
        content = rules[Outcome.CONTENT_POLICY]
        rules[Outcome.CONTENT_POLICY] = dataclasses.replace(
            content, stop=self.on_content_policy == "stop")
        for o in stops:
            rules[o] = dataclasses.replace(rules[o], stop=True)
        return rules

    def rule(self, outcome: Outcome, *, request_fault: bool = False) -> Rule:
        """The action for ``outcome`` (skips and successes: advance). ``request_fault``: the
        adapter marked an ``invalid_request`` as one no vendor would accept."""
        if (request_fault and outcome is Outcome.INVALID_REQUEST
                and self.on_request_fault == "stop"):
            return REQUEST_FAULT
        rules: Mapping[Outcome, Rule] = self._rules  # type: ignore[attr-defined]
        return rules.get(outcome, ADVANCE)

    @property
    def backoff(self) -> Backoff:
        return self._backoff  # type: ignore[attr-defined,no-any-return]

    def replace(self, **changes: Any) -> Policy:
        """A copy with ``changes`` applied (``retries`` and ``cooldowns_s`` are merged)."""
        for merged in ("retries", "cooldowns_s"):
            if merged in changes:
                changes[merged] = {**getattr(self, merged), **changes[merged]}
        return dataclasses.replace(self, **changes)

    def for_provider(self, *names: str) -> Policy:
        """This policy with the overrides listed under any of ``names`` in ``providers``."""
        picked = [self.providers[n] for n in names if n in self.providers]
        if not picked:
            return self
        policy = dataclasses.replace(self, providers=_EMPTY)
        for overrides in picked:
            policy = policy.replace(**overrides)
        return policy


#: What makes a policy invalid, checked in order when it is built, with the message raised.
_INVALID: tuple[tuple[Callable[[Policy], bool], str], ...] = (
    (lambda p: p.attempt_timeout_s <= 0, "attempt_timeout_s must be > 0"),
    (lambda p: p.deadline_s is not None and p.deadline_s <= 0,
     "deadline_s must be > 0 (or None for no deadline)"),
    (lambda p: p.on_content_policy not in ("stop", "advance"),
     "on_content_policy must be 'stop' or 'advance'"),
    (lambda p: p.on_request_fault not in ("stop", "advance"),
     "on_request_fault must be 'stop' or 'advance'"),
    (lambda p: p.breaker_failures < 1 or p.breaker_reset_s < 0,
     "breaker_failures must be >= 1 and breaker_reset_s >= 0"),
    (lambda p: p.max_rounds < 1 or p.max_cooldown_wait_s < 0 or p.max_retry_after_s < 0,
     "max_rounds must be >= 1; waits must be >= 0"),
    (lambda p: p.max_wait_s < 0, "max_wait_s must be >= 0"),
    (lambda p: p.images_per_minute is not None and not p.images_per_minute > 0,
     "images_per_minute must be > 0 (or None for no limit)"),
    (lambda p: p.max_concurrency is not None and p.max_concurrency < 1,
     "max_concurrency must be >= 1 (or None for no limit)"),
    (lambda p: p.burst_images < 1, "burst_images must be >= 1"),
    (lambda p: not 0 <= p.rate_margin_s < 60, "rate_margin_s must be >= 0 and < 60"),
    (lambda p: p.hedge_delay_s is not None and p.hedge_delay_s < 0,
     "hedge_delay_s must be >= 0 (or None for no hedging)"),
    (lambda p: p.hedge_delay not in ("fixed", "p95"), "hedge_delay must be 'fixed' or 'p95'"),
    (lambda p: p.max_hedges < 1 or (p.hedge_max_extra_usd is not None
                                    and p.hedge_max_extra_usd < 0),
     "max_hedges must be >= 1 and hedge_max_extra_usd >= 0"),
)
