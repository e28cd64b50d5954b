"""``Chain``: the public entry point. Builds the long-lived router state once; each call runs a
fresh ``RequestRun`` (see the ``walk`` package)."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from .clock import SYSTEM_CLOCK, Clock
from .cost.budget import Budget
from .errors import ConfigurationError, RequestValidationError
from .events import BreakerStateChanged, EventBus, Subscriber, log_events
from .loopthread import LoopThread
from .policy import Policy
from .prescreen import screens
from .provider import Provider
from .request import ImageRequest
from .resilience.breaker import CircuitBreaker
from .resilience.capacity import CapacityStore, Limits
from .resilience.cooldown import CooldownStore
from .results import ChainResult
from .state.memory import MemoryState
from .walk import RequestRun, Router, Slot

if TYPE_CHECKING:
    from pathlib import Path

    from .cost.quotas import Quotas
    from .prescreen import Screen
    from .results import GeneratedImage
    from .session import Session
    from .state.backend import StateBackend
    from .validators import Validator


class Chain:
    """Try providers in order until one delivers. The keywords:

    * ``policy``: retries, cooldowns, timeouts and breakers (default: the README's default
      policy table).
    * ``deadline_s``, ``attempt_timeout_s``: shortcuts for the policy fields of the same name.
    * ``name``: the chain's name, in events, the ledger and shared state keys.
    * ``clock``: injected for tests and simulations (default: the system clock).
    * ``state``: where breakers, cooldowns, the per-provider limiter and budget totals live:
      in the process (the default), or shared by every worker with
      ``state=RedisState("redis://...")`` (or just the URL; see ``docs/state.md``).
    * ``cooldowns``, ``capacity``: override single stores of ``state``.
    * ``budget``: a ``fallback_chain.cost.Budget`` capping spend per request and per
      day/month: providers whose estimate does not fit are skipped and recorded as
      ``budget_exceeded``; each call reserves its estimate first and settles the real cost.
    * ``order``: ``"given"`` (the default) keeps the given order; ``"cost"`` tries providers
      in the order that minimises the expected cost per delivered image (estimate per
      attempt, observed success rate, money lost on failures).
    * ``on_event``: a subscriber to every event (or later ``chain.events.subscribe(fn)``).
    * ``seed``: seeds the chain's random draws (backoff jitter), for reproducible runs.
    * ``log``: subscribe the logging subscriber (logger ``fallback_chain``; default on).
    * ``quotas``: a ``fallback_chain.cost.Quotas`` capping each request's ``user`` and
      ``project`` per day and month, in images and USD, reserved and settled like the budget
      (``QuotaExceededError`` when it leaves no provider; see docs/cost.md, "Quotas").
    * ``validators``: check every delivered image (a rejection is billed and advances to the
      next provider; ``fallback_chain.validators``).
    * ``prescreen``: checks the prompt before any provider is called
      (``fallback_chain.prescreen``; docs/quality.md).
    * ``recorder``: a ``fallback_chain.cassette.Recorder`` that writes every vendor exchange
      of the adapters that support recording to a cassette folder (``docs/testing.md``).
    """

    def __init__(self, providers: Sequence[Provider], *, policy: Policy | None = None,
                 deadline_s: float | None = None, attempt_timeout_s: float | None = None,
                 name: str = "default", clock: Clock | None = None,
                 state: StateBackend | str | None = None,
                 cooldowns: CooldownStore | None = None, capacity: CapacityStore | None = None,
                 budget: Budget | None = None,
                 order: Literal["given", "cost"] = "given", on_event: Subscriber | None = None,
                 seed: int | None = None, log: bool = True,
                 quotas: Quotas | None = None,
                 validators: Sequence[Validator | str] = (),
                 prescreen: Screen | Sequence[Screen] | None = None,
                 recorder: Any = None) -> None:
        providers = _checked(providers)
        _attach_recorder(providers, recorder)
        keys = [p.key for p in providers]
        policy = policy or Policy()
        shortcuts = {k: v for k, v in (("deadline_s", deadline_s),
                                       ("attempt_timeout_s", attempt_timeout_s)) if v is not None}
        if shortcuts:
            policy = policy.replace(**shortcuts)
        unknown = set(policy.providers) - set(keys) - {p.name for p in providers}
        if unknown:
            raise ConfigurationError(
                f"policy.providers names {sorted(unknown)}, which are not in this chain "
                f"(providers: {keys})")
        self.name = name
        self.policy = policy
        self.clock = clock or SYSTEM_CLOCK
        self.state = _backend(state)
        self._stores = self.state.bind(name, self.clock)
        self.events = EventBus()
        if log:
            self.events.subscribe(log_events)
        if on_event is not None:
            self.events.subscribe(on_event)
        self._slots = [self._slot(p, policy) for p in providers]
        if budget is not None:  # a copy bound to this chain; the caller's object is not rewritten
            budget = budget.bind(clock=self.clock, store=self._stores.budgets,
                                 emit=self.events.emit, chain=name)
        self.budget = budget
        if quotas is not None:  # like the budget: a copy bound to this chain
            quotas = quotas.bind(clock=self.clock, store=self._stores.budgets,
                                 emit=self.events.emit, chain=name)
        self.quotas = quotas
        if order not in ("given", "cost"):
            raise ConfigurationError(f"order must be 'given' or 'cost' (got {order!r})")
        self._router = Router(name, self._slots, policy, self.clock,
                              cooldowns or self._stores.cooldowns, self.events,
                              random.Random(seed), budget, order,
                              capacity or self._stores.capacity, quotas=quotas,
                              validators=_validators(validators), screens=screens(prescreen))
        self._sync: LoopThread | None = None
        self._sync_lock = threading.Lock()

    @property
    def prescreens(self) -> tuple[Screen, ...]:
        """The prompt pre-screens requests go through, in order (``batch --vendor-batch``
        runs them on rows before they go into a vendor job)."""
        return self._router.screens

    def add_prescreen(self, prescreen: Screen | Sequence[Screen]) -> None:
        """Run ``prescreen`` (one screen or several) after the chain's own pre-screens, for the
        requests that start from now on (``batch --prescreen``)."""
        self._router.screens = self._router.screens + screens(prescreen)

    def _slot(self, provider: Provider, policy: Policy) -> Slot:
        own = policy.for_provider(provider.name, provider.key)
        breaker = CircuitBreaker(provider.key, fail_max=own.breaker_failures,
                                 reset_timeout_s=own.breaker_reset_s, clock=self.clock,
                                 store=self._stores.breakers,
                                 probe_lease_s=max(30.0, 2 * own.attempt_timeout_s),
                                 on_change=self._breaker_changed)
        limits = Limits(own.images_per_minute, own.max_concurrency, own.burst_images,
                        own.rate_margin_s)
        return Slot(provider, provider.key, own, breaker, limits)

    def _breaker_changed(self, key: str, old: str, new: str) -> None:
        if self.events:
            self.events.emit(BreakerStateChanged(self.name, key, old, new))

    # --------------------------------------------------------------------------- public

    @property
    def providers(self) -> list[Provider]:
        return [s.provider for s in self._slots]

    @property
    def order(self) -> Literal["given", "cost"]:
        """``"given"`` or ``"cost"`` (cheapest expected cost per image first); settable."""
        return self._router.order  # type: ignore[return-value]

    @order.setter
    def order(self, value: Literal["given", "cost"]) -> None:
        if value not in ("given", "cost"):
            raise ConfigurationError(f"order must be 'given' or 'cost' (got {value!r})")
        self._router.order = value

    def breaker(self, name: str) -> CircuitBreaker:
        """The circuit breaker of the provider called ``name``."""
        for s in self._slots:
            if name in (s.key, s.provider.name):
                return s.breaker
        raise KeyError(name)

    async def agenerate(self, request: ImageRequest | str | None = None, /, *,
                        validators: Sequence[Validator | str] = (),
                        **fields: Any) -> ChainResult:
        """Generate images: ``await chain.agenerate("a cat", size="1024x1024")`` or
        ``await chain.agenerate(ImageRequest(...))``.

        Raises ``RequestValidationError`` (nothing sent) for bad input,
        ``ContentPolicyError`` when a provider refuses on content grounds,
        ``DeadlineExceededError``, ``BudgetExceededError`` or ``ChainExhaustedError`` otherwise.
        Every error carries ``.attempts``. ``validators`` are added to the chain's for this
        request only (see ``fallback_chain.validators``).
        """
        req = _coerce(request, fields)
        # A request id only has to be unique, not secret: 64 random bits from the module's
        # generator (seeded from the OS, and reseeded in a forked child) cost a third of
        # ``secrets.token_hex(8)``, a measurable part of the router's overhead.
        run = RequestRun(self._router, req,
                         req.idempotency_key or f"{random.getrandbits(64):016x}",
                         _validators(validators) if validators else ())
        return await run.execute()

    def generate(self, request: ImageRequest | str | None = None, /, *,
                 validators: Sequence[Validator | str] = (), **fields: Any) -> ChainResult:
        """Blocking form of :meth:`agenerate`, for scripts, notebooks and threaded servers.

        Safe from any number of threads at once: every blocking call runs on one private event
        loop of this chain (on a thread of its own, started by the first call and stopped by
        :meth:`close`), so connection pools, capacity limits and breakers are shared by all
        threads. Cannot be called from inside a running event loop (use ``agenerate``).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "Chain.generate() blocks and cannot run inside a running event loop (it would "
                "deadlock); use `await chain.agenerate(...)` instead")
        return self._loop_thread().run(self.agenerate(request, validators=validators,
                                                      **fields))

    def session(self, *, image: GeneratedImage | bytes | str | Path | None = None) -> Session:
        """An edit session on this chain (``docs/sessions.md``): generate, then edit the image
        by instruction any number of times; ``image`` starts it from an existing image."""
        from .session import Session

        return Session(self, image=image)

    def _loop_thread(self) -> LoopThread:
        with self._sync_lock:
            if self._sync is None or self._sync.closed:
                self._sync = LoopThread(f"fallback-chain:{self.name}")
            return self._sync

    async def aclose(self) -> None:
        """Close every provider's connections, and the state backend's.

        Connections belong to the event loop that opened them (each loop gets its own pool),
        so await this before a loop of yours ends (``asyncio.run(main())``: at the end of
        ``main``); the chain stays usable and opens new connections when next called."""
        await asyncio.gather(*(s.provider.aclose() for s in self._slots),
                             *(s.aclose() for s in self._router.screens if hasattr(s, "aclose")))
        await self.state.aclose()

    def close(self) -> None:
        """Blocking form of :meth:`aclose`; also stops the private loop of :meth:`generate`.
        A later ``generate`` starts a new one."""
        with self._sync_lock:
            sync, self._sync = self._sync, None
        if sync is None:
            asyncio.run(self.aclose())
            return
        try:
            sync.run(self.aclose())
        finally:
            sync.close()

    async def __aenter__(self) -> Chain:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Chain({[s.key for s in self._slots]!r}, name={self.name!r})"


def _checked(providers: Sequence[Provider]) -> list[Provider]:
    providers = list(providers)
    if not providers:
        raise ConfigurationError("a chain needs at least one provider")
    for p in providers:
        if not isinstance(p, Provider):
            raise ConfigurationError(
                f"{p!r} is not a Provider (use an adapter from the providers package)")
    keys = [p.key for p in providers]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise ConfigurationError(
            f"provider name(s) {dupes} appear more than once; give each a distinct name=")
    return providers


def _coerce(request: ImageRequest | str | None, fields: dict[str, Any]) -> ImageRequest:
    if isinstance(request, ImageRequest):
        return ImageRequest(**{**request.model_dump(), **fields}) if fields else request
    if isinstance(request, str):
        return ImageRequest(prompt=request, **fields)
    if request is None:
        return ImageRequest(**fields)
    raise RequestValidationError(
        [("request", f"expected an ImageRequest or a prompt string, got {type(request).__name__}")])


def _backend(state: StateBackend | str | None) -> StateBackend:
    if state is None:
        return MemoryState()
    if isinstance(state, str):
        from .state.redis import RedisState

        return RedisState(state)
    if not callable(getattr(state, "bind", None)):
        raise ConfigurationError(
            f"state must be a state backend (MemoryState, RedisState) or a redis:// URL, "
            f"got {type(state).__name__}")
    return state


def _validators(items: Sequence[Validator | str]) -> tuple[Validator, ...]:
    """Validators given as callables or built-in names (``"not_blank"``, ...)."""
    if not items:
        return ()
    from .validators import resolve

    return tuple(resolve(items))


def _attach_recorder(providers: Sequence[Provider], recorder: Any) -> None:
    """Hand ``recorder`` to every adapter with a ``record_with`` hook (the HTTP adapters)."""
    if recorder is None:
        return
    for provider in providers:
        hook = getattr(provider, "record_with", None)
        if hook is not None:
            hook(recorder)
