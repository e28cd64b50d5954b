"""The connection to Redis, and what happens when it is gone.

One ``redis.asyncio`` client per event loop (a client's connections belong to the loop that
opened them; ``Chain.generate`` runs one loop per thread). Every store operation goes through
:meth:`Link.call` with a local fallback:

* Redis answers: the shared result.
* Redis is unreachable: the first failure logs one warning for the outage, then, with
  ``on_unavailable="local"`` (the default), the operation runs on this worker's local state;
  with ``"fail"``, an operation that admits a call (breaker, cooldown, rate limit, budget
  reservation) raises ``SharedStateUnavailableError`` instead, while bookkeeping after a call
  (settling spend, recording an outcome) still lands locally so nothing is lost.
* While it is down, Redis is tried again at most every ``retry_s`` seconds (no per-request
  connection attempts); the first success logs that it is back and shared state resumes.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

from ...errors import ConfigurationError, SharedStateUnavailableError
from ...secrets import register_secret
from .urls import safe_url, secrets_in

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

log = logging.getLogger("fallback_chain.state")

T = TypeVar("T")
OnUnavailable = Literal["local", "fail"]
ENV_URL = "FALLBACK_CHAIN_REDIS_URL"


class Link:
    def __init__(self, url: str | None = None, *, on_unavailable: OnUnavailable = "local",
                 retry_s: float = 1.0, socket_timeout_s: float = 0.5,
                 client_factory: Callable[[], Redis] | None = None) -> None:
        url = url or os.environ.get(ENV_URL)
        if not url:
            raise ConfigurationError(
                f"no Redis URL: pass one (redis://host:6379/0) or set {ENV_URL}")
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigurationError(
                f"not a Redis URL: {safe_url(url)!r} (expected redis://, rediss:// or unix://)")
        if on_unavailable not in ("local", "fail"):
            raise ConfigurationError(
                f"on_unavailable must be 'local' or 'fail' (got {on_unavailable!r})")
        if client_factory is None and importlib.util.find_spec("redis") is None:
            raise ConfigurationError(
                "shared state in Redis needs redis-py: pip install 'fallback-chain[redis]'")
        for secret in secrets_in(url):  # the userinfo's and the query string's
            register_secret(secret)
        self.url = url
        self.shown_url = safe_url(url)
        self.on_unavailable: OnUnavailable = on_unavailable
        self.retry_s = retry_s
        self.socket_timeout_s = socket_timeout_s
        self._factory = client_factory
        # per event loop: its client, and the scripts registered on that client
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Redis, dict[str, AsyncScript]]] = (
            weakref.WeakKeyDictionary())
        self._retry_at: float | None = None  # set while Redis is unreachable
        self.outages = 0  # how many times Redis was found unreachable
        self.round_trips = 0  # operations sent to Redis (for benchmarks and tests)

    # ------------------------------------------------------------------------- clients

    def _entry(self) -> tuple[Redis, dict[str, AsyncScript]]:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is None:
            client = self._factory() if self._factory is not None else self._connect()
            entry = self._clients[loop] = (client, {})
        return entry

    def client(self) -> Redis:
        return self._entry()[0]

    def _connect(self) -> Redis:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # One immediate retry (a pooled connection that went stale when Redis restarted);
        # redis-py's default of 10 retries with backoff would stall requests for seconds.
        return Redis.from_url(
            self.url, socket_timeout=self.socket_timeout_s,
            socket_connect_timeout=self.socket_timeout_s, retry=Retry(NoBackoff(), 1),
            decode_responses=True)

    def script(self, source: str) -> AsyncScript:
        client, scripts = self._entry()
        script = scripts.get(source)
        if script is None:
            script = scripts[source] = client.register_script(source)
        return script

    async def run(self, source: str, keys: list[str], args: list[Any]) -> Any:
        return await self.script(source)(keys=keys, args=args)

    async def aclose(self) -> None:
        """Close the client of the running loop (others close with their loops)."""
        entry = self._clients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose()

    # ------------------------------------------------------------------------- failover

    @property
    def available(self) -> bool:
        """Whether the last operation reached Redis."""
        return self._retry_at is None

    async def call(self, what: str, remote: Callable[[], Awaitable[T]],
                   local: Callable[[], Awaitable[T]], *, admits: bool) -> T:
        """Run ``remote`` on Redis, or ``local`` when Redis is unreachable (see the module
        docstring). ``admits``: the operation decides whether a call may go."""
        if self._retry_at is not None and time.monotonic() < self._retry_at:
            return await self._without(what, local, admits)
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self.round_trips += 1
        try:
            result = await remote()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            first = self._retry_at is None
            self._retry_at = time.monotonic() + self.retry_s
            if first:
                self.outages += 1
                fallback = ("continuing on this worker's local state"
                            if self.on_unavailable == "local"
                            else "refusing calls until it is back (on_unavailable='fail')")
                log.warning("shared state: Redis at %s is unreachable (%s); %s; retrying "
                            "every %gs", self.shown_url, _describe(exc), fallback,
                            self.retry_s)
            return await self._without(what, local, admits)
        if self._retry_at is not None:
            self._retry_at = None
            log.info("shared state: Redis at %s is reachable again; shared state resumes",
                     self.shown_url)
        return result

    async def _without(self, what: str, local: Callable[[], Awaitable[T]],
                       admits: bool) -> T:
        if admits and self.on_unavailable == "fail":
            raise SharedStateUnavailableError(
                f"shared state unavailable: Redis at {self.shown_url} is unreachable, so "
                f"{what} cannot be checked (on_unavailable='fail')") from None
        return await local()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
