"""The four stores on Redis. Each operation is one Lua script (atomic across workers) and has
a local twin that runs when Redis is unreachable (see ``link.py``). Keys live under
``fc:{<namespace>}:``; the braces make them one Redis Cluster hash slot, so a script may touch
several of them."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ...cost.budget_store import MemoryBudgetStore
from ...resilience.breaker import Admission, BreakerRules, MemoryBreakers, Verdict
from ...resilience.capacity import Limits, MemoryCapacity
from ...resilience.cooldown import MemoryCooldowns
from . import scripts

if TYPE_CHECKING:
    from ...clock import Clock
    from .link import Link

BUDGET_TTL_S = 40 * 86400  # a month's key outlives its month; a day's goes with it
_LOCAL = "local"  # a capacity grant made on local state while Redis was down
_serial = itertools.count()


def _token() -> str:
    return f"{os.getpid()}-{next(_serial)}"


class _Store:
    def __init__(self, link: Link, prefix: str, time_source: Callable[[], float] | None) -> None:
        self._link = link
        self._prefix = prefix
        self._time = time_source

    def _now(self) -> str:
        """ARGV[1] of every script: the injected clock, or '' for the Redis server's clock."""
        return "" if self._time is None else repr(self._time())

    def _key(self, kind: str, key: str) -> str:
        return f"{self._prefix}:{kind}:{key}"


class RedisBreakers(_Store):
    """Breakers as hashes (``state``, ``failures``, ``opened_at``: pybreaker's state fields),
    with the half-open probe as a lease key that expires."""

    def __init__(self, link: Link, prefix: str, time_source: Callable[[], float] | None,
                 local_clock: Clock) -> None:
        super().__init__(link, prefix, time_source)
        self.local = MemoryBreakers(local_clock)
        self._seen: dict[str, str] = {}
        self._failures: dict[str, int] = {}  # failures counted, as of this worker's last admit
        self._probes: dict[str, str] = {}  # key -> the lease token this worker holds

    def _keys(self, key: str) -> list[str]:
        return [self._key("breaker", key), self._key("probe", key)]

    async def admit(self, key: str, rules: BreakerRules) -> Verdict:
        token = _token()

        async def remote() -> Verdict:
            admission, state, wait, changed, failures = await self._link.run(
                scripts.BREAKER_ADMIT, self._keys(key),
                [self._now(), rules.reset_timeout_s, int(rules.probe_lease_s * 1000), token])
            verdict = Verdict(Admission(int(admission)), state, float(wait), changed or None)
            self._failures[key] = int(failures)
            if verdict.admission is Admission.PROBE:
                self._probes[key] = token
            return verdict

        verdict = await self._link.call(f"the breaker of {key}", remote,
                                        lambda: self.local.admit(key, rules), admits=True)
        self._seen[key] = verdict.state
        return verdict

    async def record(self, key: str, admission: Admission, healthy: bool | None,
                     rules: BreakerRules) -> tuple[str, str] | None:
        token = self._probes.pop(key, "") if admission is Admission.PROBE else ""
        if (healthy and admission is Admission.PASS and self._seen.get(key) == "closed"
                and not self._failures.get(key)):
            return None  # a success on a closed breaker with no failures: nothing to reset
        flag = "" if healthy is None else ("1" if healthy else "0")

        async def remote() -> tuple[str, str] | None:
            change = await self._link.run(
                scripts.BREAKER_RECORD, self._keys(key),
                [self._now(), int(admission), flag, rules.fail_max, token])
            return (change[0], change[1]) if change else None

        change = await self._link.call(
            f"the breaker of {key}", remote,
            lambda: self.local.record(key, admission, healthy, rules), admits=False)
        if change is not None:
            self._seen[key] = change[1]
        return change

    async def reset(self, key: str) -> tuple[str, str] | None:
        async def remote() -> tuple[str, str] | None:
            old = await self._link.run(scripts.BREAKER_RESET, self._keys(key), [])
            return (old, "closed") if old != "closed" else None

        self._probes.pop(key, None)
        change = await self._link.call(f"the breaker of {key}", remote,
                                        lambda: self.local.reset(key), admits=False)
        self._seen[key] = "closed"
        return change

    def peek(self, key: str) -> str:
        return self._seen.get(key, "closed")


class RedisCooldowns(_Store):
    """Cooldowns as keys holding the end time, expiring with it."""

    def __init__(self, link: Link, prefix: str,
                 time_source: Callable[[], float] | None) -> None:
        super().__init__(link, prefix, time_source)
        self.local = MemoryCooldowns()

    async def remaining(self, key: str, now: float) -> float:
        async def remote() -> float:
            return float(await self._link.run(scripts.COOLDOWN_REMAINING,
                                              [self._key("cooldown", key)], [self._now()]))

        return await self._link.call(f"the cooldown of {key}", remote,
                                     lambda: self.local.remaining(key, now), admits=True)

    async def start(self, key: str, seconds: float, now: float) -> float:
        async def remote() -> float:
            left = await self._link.run(scripts.COOLDOWN_START, [self._key("cooldown", key)],
                                        [self._now(), seconds])
            return now + float(left)

        return await self._link.call(f"the cooldown of {key}", remote,
                                     lambda: self.local.start(key, seconds, now), admits=False)

    async def clear(self, key: str) -> None:
        async def remote() -> None:
            await self._link.client().delete(self._key("cooldown", key))

        await self._link.call(f"the cooldown of {key}", remote,
                              lambda: self.local.clear(key), admits=False)


class RedisCapacity(_Store):
    """The images-per-minute limiter (GCRA on one shared time) and in-flight leases (a sorted
    set scored by expiry, so a worker that dies does not hold its slots for ever)."""

    def __init__(self, link: Link, prefix: str, time_source: Callable[[], float] | None,
                 lease_s: float, poll_s: float) -> None:
        super().__init__(link, prefix, time_source)
        self.local = MemoryCapacity()
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._leases: dict[str, list[str]] = {}  # key -> lease ids this worker holds
        self._released: asyncio.Event | None = None

    def _keys(self, key: str) -> list[str]:
        return [self._key("rate", key), self._key("inflight", key)]

    async def try_acquire(self, key: str, images: int, now: float,
                          limits: Limits) -> float | None:
        lease = _token()

        async def remote() -> float | None:
            interval = "" if limits.interval_s is None else limits.interval_s
            slots = "" if limits.max_concurrency is None else limits.max_concurrency
            answer = await self._link.run(
                scripts.CAPACITY_ACQUIRE, self._keys(key),
                [self._now(), images, interval, limits.burst_images, slots, lease,
                 self._lease_s])
            if answer == "slot":
                return None
            wait = float(answer)
            if wait == 0.0 and limits.max_concurrency is not None:
                self._leases.setdefault(key, []).append(lease)
            return wait

        async def local() -> float | None:
            wait = await self.local.try_acquire(key, images, now, limits)
            if wait == 0.0:
                self._leases.setdefault(key, []).append(_LOCAL)
            return wait

        return await self._link.call(f"the capacity of {key}", remote, local, admits=True)

    async def release(self, key: str, limits: Limits) -> None:
        await self._give_back(key, limits, None)

    async def refund(self, key: str, images: int, limits: Limits) -> None:
        await self._give_back(key, limits, images)

    async def _give_back(self, key: str, limits: Limits, refund_images: int | None) -> None:
        held = self._leases.get(key)
        lease = held.pop() if held else ""

        async def local() -> None:
            if refund_images is None:
                await self.local.release(key, limits)
            else:
                await self.local.refund(key, refund_images, limits)

        interval = limits.interval_s
        rate = "" if refund_images is None or interval is None else refund_images * interval
        if lease == _LOCAL:  # granted while Redis was down
            await local()
        elif lease or rate:
            async def remote() -> None:
                await self._link.run(scripts.CAPACITY_REFUND, self._keys(key), [rate, lease])

            await self._link.call(f"the capacity of {key}", remote, local, admits=False)
        if self._released is not None:
            self._released.set()
            self._released = None

    async def wait_for_release(self, timeout: float) -> None:
        """Slots may free in any worker: wake on a release here, else poll."""
        if self._released is None:
            self._released = asyncio.Event()
        event = self._released
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), min(timeout, self._poll_s))


class RedisBudgets(_Store):
    """Budget totals as hashes (``spent``, ``reserved``, nano-USD) per period key."""

    def __init__(self, link: Link, prefix: str) -> None:
        super().__init__(link, prefix, None)
        self.local = MemoryBudgetStore()

    async def reserve_if_fits(self, caps: Sequence[tuple[str, int]], amount: int) -> str | None:
        async def remote() -> str | None:
            refused = int(await self._link.run(
                scripts.BUDGET_RESERVE, [self._key("budget", k) for k, _ in caps],
                [amount, *(cap for _, cap in caps), BUDGET_TTL_S]))
            return caps[refused - 1][0] if refused else None

        return await self._link.call(
            "the budget", remote, lambda: self.local.reserve_if_fits(caps, amount), admits=True)

    async def settle(self, keys: Sequence[str], reserved: int, actual: int) -> list[int]:
        async def remote() -> list[int]:
            spent = await self._link.run(scripts.BUDGET_SETTLE,
                                         [self._key("budget", k) for k in keys],
                                         [reserved, actual, BUDGET_TTL_S])
            return [int(x) for x in spent]

        return await self._link.call("the budget", remote,
                                     lambda: self.local.settle(keys, reserved, actual),
                                     admits=False)

    async def release(self, keys: Sequence[str], reserved: int) -> None:
        await self.settle(keys, reserved, 0)

    async def totals(self, key: str) -> tuple[int, int]:
        async def remote() -> tuple[int, int]:
            spent, reserved = await self._link.client().hmget(
                self._key("budget", key), ["spent", "reserved"])
            return int(spent or 0), int(reserved or 0)

        return await self._link.call("the budget", remote, lambda: self.local.totals(key),
                                     admits=False)

    async def claim(self, marker: str) -> bool:
        async def remote() -> bool:
            return bool(await self._link.client().set(
                self._key("claimed", marker), "1", nx=True, ex=BUDGET_TTL_S))

        return await self._link.call("the budget", remote, lambda: self.local.claim(marker),
                                     admits=False)
