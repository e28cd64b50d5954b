"""``RedisState``: a chain's breakers, cooldowns, rate limits and budgets in Redis."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...extras import require
from .link import ENV_URL, Link, OnUnavailable
from .stores import RedisBreakers, RedisBudgets, RedisCapacity, RedisCooldowns

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio import Redis

    from ...clock import Clock


@dataclass(slots=True)
class RedisBound:
    breakers: RedisBreakers
    cooldowns: RedisCooldowns
    capacity: RedisCapacity
    budgets: RedisBudgets


class RedisState:
    """Shared state for every worker that uses the same Redis and namespace.

    ``url`` is a ``redis://`` (or ``rediss://``, ``unix://``) URL; without one,
    ``$FALLBACK_CHAIN_REDIS_URL``. ``namespace`` defaults to the chain's name: chains with
    different names never share keys; give two chains one namespace to make them share one
    breaker, cooldown and rate limit per provider key, and their budgets.
    ``on_unavailable``: ``"local"`` (default) carries on with this worker's own state while
    Redis is unreachable, logging one warning per outage; ``"fail"`` refuses calls meanwhile
    (``SharedStateUnavailableError``). ``retry_s``: how often to try Redis again meanwhile.
    ``lease_s``: how long an in-flight slot (``max_concurrency``) may be held by a worker that
    died; a half-open probe's lease is twice the provider's attempt timeout (at least 30 s).
    ``clock``: the time the scripts use (default: the Redis server's clock, the same for every
    machine; tests inject a scaled clock).
    """

    def __init__(self, url: str | None = None, *, namespace: str | None = None,
                 on_unavailable: OnUnavailable = "local", retry_s: float = 1.0,
                 socket_timeout_s: float = 0.5, lease_s: float = 900.0,
                 poll_s: float = 0.05, clock: Clock | None = None,
                 client_factory: Callable[[], Redis] | None = None) -> None:
        if client_factory is None:
            require("redis", "shared state in Redis")
        self.link = Link(url, on_unavailable=on_unavailable, retry_s=retry_s,
                         socket_timeout_s=socket_timeout_s, client_factory=client_factory)
        self.namespace = namespace
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.clock = clock

    @property
    def url(self) -> str:
        """The URL without its password."""
        return self.link.shown_url

    @property
    def available(self) -> bool:
        """Whether the last operation reached Redis."""
        return self.link.available

    def prefix(self, namespace: str) -> str:
        return f"fc:{{{self.namespace or namespace}}}"

    def bind(self, namespace: str, clock: Clock) -> RedisBound:
        prefix = self.prefix(namespace)
        shared = self.clock
        source = None if shared is None else shared.wall
        return RedisBound(
            RedisBreakers(self.link, prefix, source, shared or clock),
            RedisCooldowns(self.link, prefix, source),
            RedisCapacity(self.link, prefix, source, self.lease_s, self.poll_s),
            RedisBudgets(self.link, prefix))

    async def ping(self, timeout: float = 2.0) -> str | None:
        """``None`` when Redis answers (and runs scripts) within ``timeout``, else why not."""
        import asyncio

        try:
            async with asyncio.timeout(timeout):
                await self.link.client().ping()
                await self.link.client().eval("return 1", 0)
        except TimeoutError:
            return f"Redis at {self.url} did not answer within {timeout:g}s"
        except Exception as exc:  # a connection error of any kind: report it
            return f"Redis at {self.url} is unreachable: {type(exc).__name__}: {exc}"
        return None

    async def aclose(self) -> None:
        await self.link.aclose()

    def __repr__(self) -> str:
        return (f"RedisState({self.url!r}, namespace={self.namespace!r}, "
                f"on_unavailable={self.link.on_unavailable!r})")


__all__ = ["ENV_URL", "RedisState"]
