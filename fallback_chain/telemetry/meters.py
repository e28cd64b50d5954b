"""The metric instruments, created on one OpenTelemetry meter, and what each event adds to them.

Names (OpenTelemetry style; a Prometheus exporter turns the dots into underscores and adds
unit and ``_total`` suffixes):

=====================================  =========  ==============================================
``fallback_chain.attempts``            counter    tries and skips, by chain/provider/model/outcome
``fallback_chain.attempt.duration``    histogram  seconds per call (skips are not calls)
``fallback_chain.cost``                counter    USD by chain/provider/model/outcome/cost source
``fallback_chain.requests``            counter    requests by chain and status (and error.type)
``fallback_chain.request.duration``    histogram  seconds per request
``fallback_chain.images``              counter    images delivered, by chain/provider/model
``fallback_chain.breaker.transitions`` counter    breaker state changes, by provider/old/new
``fallback_chain.breaker.state``       gauge      0 closed, 1 half-open, 2 open (as last seen)
``fallback_chain.cooldowns``           counter    cooldowns started, by provider and outcome
``fallback_chain.cooldown.duration``   histogram  seconds of each cooldown
``fallback_chain.quota.alerts``        counter    out-of-quota reports, by provider
``fallback_chain.budget.alerts``       counter    budget thresholds crossed, by budget/threshold
=====================================  =========  ==============================================
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import attributes as A

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Meter, Observation

    from ..events import (
        AttemptFinished,
        BreakerStateChanged,
        BudgetAlert,
        CooldownStarted,
        QuotaAlert,
        RequestFinished,
    )

#: ``fallback_chain.breaker.state`` values.
BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}

#: Bucket boundaries in seconds for the duration histograms (the SDK's default ones are made
#: for milliseconds; image calls take 1 to 120 s).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)


class Instruments:
    """Every instrument of the exporter, on ``meter``."""

    def __init__(self, meter: Meter) -> None:
        self.attempts = meter.create_counter(
            "fallback_chain.attempts", unit="{attempt}",
            description="Attempts (calls and skips) by provider, model and outcome")
        self.attempt_duration = meter.create_histogram(
            "fallback_chain.attempt.duration", unit="s",
            description="Duration of each call to a provider",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self.cost = meter.create_counter(
            "fallback_chain.cost", unit="USD",
            description="Settled cost of attempts by provider, model and outcome")
        self.requests = meter.create_counter(
            "fallback_chain.requests", unit="{request}",
            description="Requests by chain and status")
        self.request_duration = meter.create_histogram(
            "fallback_chain.request.duration", unit="s",
            description="Duration of each request, all attempts and waits included",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self.images = meter.create_counter(
            "fallback_chain.images", unit="{image}", description="Images delivered")
        self.breaker_transitions = meter.create_counter(
            "fallback_chain.breaker.transitions", unit="{transition}",
            description="Circuit breaker state changes")
        self.cooldowns = meter.create_counter(
            "fallback_chain.cooldowns", unit="{cooldown}",
            description="Cooldowns started, by provider and the outcome that caused them")
        self.cooldown_duration = meter.create_histogram(
            "fallback_chain.cooldown.duration", unit="s",
            description="Length of each cooldown",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self.quota_alerts = meter.create_counter(
            "fallback_chain.quota.alerts", unit="{alert}",
            description="Providers reporting the account out of quota or credits")
        self.budget_alerts = meter.create_counter(
            "fallback_chain.budget.alerts", unit="{alert}",
            description="Budget thresholds (0.8, 1.0 of a cap) crossed")
        #: (chain, provider) -> breaker state as last reported
        self.breaker_states: dict[tuple[str, str], str] = {}
        meter.create_observable_gauge(
            "fallback_chain.breaker.state", callbacks=[self._observe_breakers], unit="1",
            description="Circuit breaker state as last seen: 0 closed, 1 half-open, 2 open")

    def _observe_breakers(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        for (chain, provider), state in list(self.breaker_states.items()):
            yield Observation(BREAKER_STATES.get(state, -1), {A.CHAIN: chain, A.PROVIDER: provider})

    # ------------------------------------------------------------------------- the events

    def attempt(self, event: AttemptFinished) -> None:
        a = event.attempt
        labels = A.attempt_labels(event.chain, a)
        self.attempts.add(1, labels)
        if a.outcome.was_called:
            self.attempt_duration.record(a.latency_s, labels)
        if a.cost_usd > 0:
            self.cost.add(a.cost_usd, {**labels, A.COST_SOURCE: a.cost_source})

    def request(self, event: RequestFinished, duration_s: float) -> None:
        labels: dict[str, Any] = {A.CHAIN: event.chain}
        result = event.result
        if result is not None:
            labels[A.STATUS] = "delivered"
            self.images.add(len(result.images), {A.CHAIN: event.chain, A.PROVIDER: result.provider,
                                                 A.REQUEST_MODEL: result.model})
        else:
            labels[A.STATUS] = "failed"
            labels[A.ERROR_TYPE] = type(event.error).__name__
        self.requests.add(1, labels)
        self.request_duration.record(duration_s, labels)

    def breaker(self, event: BreakerStateChanged) -> None:
        self.breaker_states[(event.chain, event.provider)] = event.new
        self.breaker_transitions.add(1, {A.CHAIN: event.chain, A.PROVIDER: event.provider,
                                         A.BREAKER_OLD: event.old, A.BREAKER_NEW: event.new})

    def cooldown(self, event: CooldownStarted) -> None:
        labels = {A.CHAIN: event.chain, A.PROVIDER: event.provider, A.OUTCOME: event.outcome}
        self.cooldowns.add(1, labels)
        self.cooldown_duration.record(event.seconds, labels)

    def quota(self, event: QuotaAlert) -> None:
        self.quota_alerts.add(1, {A.CHAIN: event.chain, A.PROVIDER: event.provider})

    def budget(self, event: BudgetAlert) -> None:
        self.budget_alerts.add(1, {A.CHAIN: event.chain, A.BUDGET: event.budget,
                                   A.THRESHOLD: event.threshold})
