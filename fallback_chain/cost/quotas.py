"""``Quotas``: per-tenant caps (a user, a project) on images and USD per UTC day and month,
reserved before every attempt and settled after it, exactly like a period :class:`Budget`.

The totals live in a ``BudgetStore``: in the process by default (the quotas' own, shared by
every chain given them), or in Redis with ``RedisState`` (the chain's), where each reservation
is one Lua script, so a tenant's cap holds across every worker. Store keys carry a digest of
the tenant id, never the id itself (``quota:user:<sha256[:24]>:usd:day:2026-12-06``); the id
is only in the request, the refusal shown to that same tenant, the alert events and the cost
ledger (see docs/cost.md, "Quotas").

Per attempt (the ``QuotaCheck`` admission check does this)::

    held = await quotas.reserve(request.user, request.project, request.n, estimate)
    if isinstance(held, QuotaRefused): skip the provider (budget_exceeded), remember why
    ... call ...
    await quotas.settle(held, cost, images)     # or quotas.release(held): nothing billed

Images are booked for a successful call (``n``); USD for every billed call.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ..clock import SYSTEM_CLOCK, Clock
from ..events import TenantQuotaAlert
from .binding import ChainBound, Shared
from .budget_store import BudgetStore, MemoryBudgetStore, from_nano, to_nano

log = logging.getLogger("fallback_chain.cost")

Kind = Literal["user", "project"]
_UNCAPPED = 2**62


@dataclass(frozen=True, slots=True)
class Limit:
    """Caps for one tenant: images and USD per UTC day and month (``None``: no cap)."""

    daily_images: int | None = None
    daily_usd: float | None = None
    monthly_images: int | None = None
    monthly_usd: float | None = None

    def __post_init__(self) -> None:
        for what in ("daily_images", "monthly_images"):
            v = getattr(self, what)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise ValueError(f"{what} must be a non-negative integer (got {v!r})")
        for what in ("daily_usd", "monthly_usd"):
            v = getattr(self, what)
            if v is not None and not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"{what} must be a non-negative number (got {v!r})")

    def caps(self) -> list[tuple[str, str, int]]:
        """``(unit, period, cap)`` for every cap set; USD caps in nano-USD."""
        out: list[tuple[str, str, int]] = []
        for unit, period, value in (("usd", "day", self.daily_usd),
                                    ("usd", "month", self.monthly_usd),
                                    ("images", "day", self.daily_images),
                                    ("images", "month", self.monthly_images)):
            if value is not None:
                out.append((unit, period, to_nano(value) if unit == "usd" else int(value)))
        return out


@dataclass(frozen=True, slots=True)
class QuotaRefused:
    """Why a tenant's quota refused an attempt: the tenant, which limit, and a message that
    names only that tenant."""

    kind: Kind
    tenant: str
    limit: str  # "daily_usd", "monthly_images", ...
    message: str


@dataclass(slots=True)
class QuotaHold:
    """What one attempt reserved: nano-USD against ``usd_keys``, images against
    ``image_keys``; ``caps`` names each key's tenant, limit and cap (for alerts)."""

    usd: int
    images: int
    usd_keys: tuple[str, ...]
    image_keys: tuple[str, ...]
    caps: dict[str, tuple[Kind, str, str, int]]
    done: bool = False


_LABEL = {"day": "daily", "month": "monthly"}


def digest(tenant: str) -> str:
    """The tenant id as it appears in store keys: not the id itself."""
    return hashlib.sha256(tenant.encode()).hexdigest()[:24]


class Quotas(ChainBound):
    """Per-user and per-project quotas.

    ``per_user`` applies to every request with a ``user``, ``per_project`` to every request
    with a ``project``; ``overrides`` (by user id) and ``project_overrides`` (by project id)
    replace them for named tenants. A request without a user (or project) is not subject to
    the per-user (per-project) limit. ``alert_thresholds`` are fractions of each cap: a
    ``TenantQuotaAlert`` event fires once per tenant, cap and period, across every worker
    sharing the store. Without a ``store`` the totals live in the process, or in the store of
    a chain whose state is shared (Redis); a chain binds a copy (``chain.quotas``) and never
    changes these quotas.
    """

    def __init__(self, *, per_user: Limit | None = None, per_project: Limit | None = None,
                 overrides: Mapping[str, Limit] | None = None,
                 project_overrides: Mapping[str, Limit] | None = None,
                 alert_thresholds: tuple[float, ...] = (0.8, 1.0), clock: Clock = SYSTEM_CLOCK,
                 store: BudgetStore | None = None) -> None:
        if any(not (t > 0 and math.isfinite(t)) for t in alert_thresholds):
            raise ValueError(f"alert thresholds must be positive (got {alert_thresholds!r})")
        self.per_user = per_user
        self.per_project = per_project
        self.overrides = dict(overrides or {})
        self.project_overrides = dict(project_overrides or {})
        self.alert_thresholds = tuple(sorted(set(alert_thresholds)))
        self._clock = clock
        self._own_store: BudgetStore = store if store is not None else MemoryBudgetStore()
        self.store_given = store is not None
        self._emit: Callable[[TenantQuotaAlert], None] | None = None
        self._chain = ""
        self._shared = Shared()
        self._fired: set[str] = set()

    def bind(self, *, clock: Clock, store: BudgetStore,
             emit: Callable[[TenantQuotaAlert], None], chain: str = "") -> Quotas:
        """A copy for one chain (like ``Budget.bind``): alerts go to ``emit``; without a store
        of its own it books into ``store`` when that is shared (Redis), else into these
        quotas' own in-process totals. These quotas are not changed."""
        bound = self._bound_copy(clock, store)
        bound._emit = emit
        bound._chain = chain
        return bound

    def limit_for(self, kind: Kind, tenant: str | None) -> Limit | None:
        """The limit that applies to ``tenant`` (``None``: none)."""
        if tenant is None:
            return None
        if kind == "user":
            return self.overrides.get(tenant, self.per_user)
        return self.project_overrides.get(tenant, self.per_project)

    @property
    def active(self) -> bool:
        return any((self.per_user, self.per_project, self.overrides, self.project_overrides))

    # ---------------------------------------------------------------------------- checks

    async def reserve(self, user: str | None, project: str | None, images: int,
                      estimate: float | None) -> QuotaHold | QuotaRefused | None:
        """Reserve ``images`` and ``estimate`` USD against the caps of ``user`` and
        ``project``; ``None`` when no cap applies, a :class:`QuotaRefused` when one would be
        overshot (then nothing is held)."""
        usd = 0 if estimate is None else to_nano(estimate)
        caps = self._caps(user, project)
        if not caps:
            return None
        usd_caps = [(k, c) for k, (_, _, unit, c) in caps.items() if unit.endswith("usd")]
        image_caps = [(k, c) for k, (_, _, unit, c) in caps.items() if unit.endswith("images")]
        store = self.store
        if usd_caps and (refused := await store.reserve_if_fits(usd_caps, usd)) is not None:
            return await self._refusal(refused, caps, usd, estimate)
        if image_caps and (refused := await store.reserve_if_fits(image_caps, images)):
            if usd_caps:
                await store.release([k for k, _ in usd_caps], usd)
            return await self._refusal(refused, caps, images, estimate)
        return QuotaHold(usd, images, tuple(k for k, _ in usd_caps),
                         tuple(k for k, _ in image_caps), caps)

    async def settle(self, hold: QuotaHold, actual_usd: float, images: int) -> None:
        """Release the hold, book ``actual_usd`` and ``images``; fire the alerts."""
        if hold.done:
            raise RuntimeError("this quota hold was already settled or released")
        if not (actual_usd >= 0 and math.isfinite(actual_usd)):
            raise ValueError(f"actual_usd must be a non-negative number (got {actual_usd!r})")
        hold.done = True
        totals: list[tuple[str, int]] = []
        if hold.usd_keys:
            spent = await self.store.settle(hold.usd_keys, hold.usd, to_nano(actual_usd))
            totals += zip(hold.usd_keys, spent, strict=True)
        if hold.image_keys:
            used = await self.store.settle(hold.image_keys, hold.images, images)
            totals += zip(hold.image_keys, used, strict=True)
        await self._alerts(hold, totals)

    async def release(self, hold: QuotaHold) -> None:
        """Give the hold back (nothing billed). A no-op if already done."""
        if hold.done:
            return
        hold.done = True
        if hold.usd_keys:
            await self.store.release(hold.usd_keys, hold.usd)
        if hold.image_keys:
            await self.store.release(hold.image_keys, hold.images)

    # --------------------------------------------------------------------------- queries

    async def used(self, kind: Kind, tenant: str, limit: str) -> float:
        """What ``tenant`` used in the current period of ``limit`` (``"daily_usd"``,
        ``"monthly_images"``, ...): USD or images, settled attempts only."""
        period = "day" if limit.startswith("daily") else "month"
        unit = "usd" if limit.endswith("usd") else "images"
        spent, _ = await self.store.totals(self._key(kind, tenant, unit, period))
        return from_nano(spent) if unit == "usd" else float(spent)

    # --------------------------------------------------------------------------- helpers

    def _key(self, kind: Kind, tenant: str, unit: str, period: str) -> str:
        t = datetime.fromtimestamp(self.clock.wall(), UTC)
        stamp = f"{t:%Y-%m-%d}" if period == "day" else f"{t:%Y-%m}"
        return f"quota:{kind}:{digest(tenant)}:{unit}:{period}:{stamp}"

    def _caps(self, user: str | None,
              project: str | None) -> dict[str, tuple[Kind, str, str, int]]:
        caps: dict[str, tuple[Kind, str, str, int]] = {}
        kinds: tuple[tuple[Kind, str | None], ...] = (("user", user), ("project", project))
        for kind, tenant in kinds:
            limit = self.limit_for(kind, tenant)
            if limit is None or tenant is None:
                continue
            for unit, period, cap in limit.caps():
                name = f"{_LABEL[period]}_{unit}"
                caps[self._key(kind, tenant, unit, period)] = (kind, tenant, name, cap)
        return caps

    async def _refusal(self, key: str, caps: Mapping[str, tuple[Kind, str, str, int]],
                       amount: int, estimate: float | None) -> QuotaRefused:
        kind, tenant, limit, cap = caps[key]
        spent, reserved = await self.store.totals(key)
        if limit.endswith("usd"):
            need = "an unknown amount" if estimate is None else f"${from_nano(amount):.4f}"
            text = (f"${from_nano(spent):.4f} spent and ${from_nano(reserved):.4f} reserved "
                    f"of ${from_nano(cap):.2f}; this attempt needs {need}")
        else:
            text = (f"{spent} image(s) made and {reserved} reserved of {cap}; this attempt "
                    f"needs {amount}")
        return QuotaRefused(kind, tenant, limit, f"{limit} quota of {kind} {tenant!r} would be "
                            f"exceeded: {text}")

    async def _alerts(self, hold: QuotaHold, totals: list[tuple[str, int]]) -> None:
        alerts: list[tuple[str, TenantQuotaAlert]] = []
        with self._shared.lock:
            for key, total in totals:
                kind, tenant, limit, cap = hold.caps[key]
                if cap <= 0 or total <= 0:
                    continue
                for t in self.alert_thresholds:
                    marker = f"{key}:alert:{t:g}"
                    if total >= t * cap and marker not in self._fired:
                        self._fired.add(marker)
                        usd = limit.endswith("usd")
                        alerts.append((marker, TenantQuotaAlert(
                            self._chain, kind, tenant, limit, t,
                            from_nano(total) if usd else float(total),
                            from_nano(cap) if usd else float(cap))))
            if len(self._fired) > 4096:  # old periods: their markers are claimed in the store
                self._fired.clear()
        for marker, alert in alerts:
            if not await self.store.claim(marker) or self._emit is None:
                continue  # another worker sharing the store fired it
            try:
                self._emit(alert)
            except Exception:
                log.exception("quota alert %s could not be emitted", alert.limit)

    def __repr__(self) -> str:
        return (f"Quotas(per_user={self.per_user!r}, per_project={self.per_project!r}, "
                f"overrides={len(self.overrides)}, project_overrides="
                f"{len(self.project_overrides)})")
