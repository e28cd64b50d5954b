"""``SimProvider``: a lean simulated vendor that follows a :class:`ProviderProfile`.

It is a real :class:`~fallback_chain.provider.Provider`: the router calls it, times it out and
records it exactly as it does a real adapter. A success hands back one prebuilt, verified image
(repeated ``n`` times) with the cost the vendor would report; a failure raises the
``ProviderError`` a real adapter raises for that answer (status code, vendor code, Retry-After,
billed cost). Nothing is drawn or encoded per call beyond two or three random numbers, so a
call costs a few microseconds and a simulated day runs in seconds.

The vendor's own images-per-minute limit is a sliding window over the last 60 s of accepted
calls (calls it answered with a 429 do not count): a call that does not fit gets a 429 whose
Retry-After (whole seconds, rounded up) says when it would.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import random
from collections import deque
from functools import cache

from ..errors import ProviderError
from ..outcome import Outcome
from ..provider import Capabilities, Provider, ProviderReply
from ..request import ImageRequest
from ..results import GeneratedImage
from .distributions import Distribution
from .loop import SimLoop
from .profiles import ProviderProfile, fault_table

#: How a vendor says each failure (status code, vendor code, message).
_SHAPE: dict[Outcome, tuple[int | None, str | None, str]] = {
    Outcome.RATE_LIMITED: (429, "rate_limit_exceeded", "rate limit reached"),
    Outcome.QUOTA_EXHAUSTED: (429, "insufficient_quota", "out of quota"),
    Outcome.SERVER_ERROR: (500, "server_error", "server error"),
    Outcome.CONNECTION_ERROR: (None, None, "connection reset by peer"),
    Outcome.MALFORMED_RESPONSE: (200, None, "response had no usable image"),
    Outcome.CONTENT_POLICY: (400, "content_policy_violation", "rejected by the safety system"),
    Outcome.INVALID_REQUEST: (400, "invalid_value", "invalid value for a parameter"),
    Outcome.AUTH_ERROR: (401, "invalid_api_key", "incorrect API key"),
    Outcome.NOT_FOUND: (404, "model_not_found", "the model does not exist"),
    Outcome.TIMEOUT: (None, None, "no answer"),
}

WINDOW_S = 60.0


@cache
def sim_image() -> GeneratedImage:
    """The one tiny, verified PNG every simulated success delivers."""
    from ..imaging import placeholder_image

    return GeneratedImage.from_bytes(placeholder_image(8, 8))


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class VendorLimiter:
    """A vendor's images-per-minute limit over a sliding 60-second window."""

    __slots__ = ("_log", "_used", "limit")

    def __init__(self, images_per_minute: float) -> None:
        self.limit = images_per_minute
        self._log: deque[tuple[float, int]] = deque()
        self._used = 0

    def admit(self, now: float, images: int) -> float:
        """Accept ``images`` now (returns 0.0), or return the seconds until they would fit."""
        log = self._log
        while log and log[0][0] <= now - WINDOW_S:
            self._used -= log.popleft()[1]
        if self._used + images <= self.limit:
            log.append((now, images))
            self._used += images
            return 0.0
        if images > self.limit:
            return math.inf
        need = self._used + images - self.limit
        for t, count in log:
            need -= count
            if need <= 0:
                return t + WINDOW_S - now
        return WINDOW_S  # pragma: no cover - unreachable: the log holds what is used


class SimProvider(Provider):
    """A simulated vendor; ``seed`` fixes every draw it makes. ``calls`` counts calls."""

    def __init__(self, profile: ProviderProfile, *, seed: int = 0) -> None:
        self.profile = profile
        self.name = profile.name
        self.model = profile.model
        self.capabilities = Capabilities(max_n=profile.max_n, max_side=8192,
                                         max_pixels=8192 * 8192, max_ratio=8.0)
        self._rng = random.Random(seed)
        self._price = profile.price_usd
        self._faults = fault_table(profile.faults)
        self._windows = profile.outages
        self._window_starts = [o.start for o in profile.outages]
        self._window_faults = [fault_table(o.faults) for o in profile.outages]
        self._limiter = (VendorLimiter(profile.images_per_minute)
                         if profile.images_per_minute else None)
        self._success_latency = profile.latency_for(None)
        self._latency = {o: profile.latency_for(o) for o in _SHAPE}
        self._billed = dict(profile.billed_on_failure)
        self._replies: dict[int, ProviderReply] = {}
        self.calls = 0

    def estimate_cost(self, request: ImageRequest) -> float | None:
        return self._price * request.n

    def _reply(self, n: int) -> ProviderReply:
        reply = self._replies.get(n)
        if reply is None:
            reply = self._replies[n] = ProviderReply(
                images=[sim_image()] * n, cost_usd=self._price * n, usage={"images": n},
                model=self.model)
        return reply

    def _window(self, now: float) -> int:
        i = bisect.bisect_right(self._window_starts, now) - 1
        if i >= 0 and now < self._windows[i].end:
            return i
        return -1

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.calls += 1
        n = request.n
        rng = self._rng
        if self._limiter is not None:
            wait = self._limiter.admit(now, n)
            if wait > 0.0:
                await self._pause(loop, now, self._latency[Outcome.RATE_LIMITED].sample(rng))
                status, code, _ = _SHAPE[Outcome.RATE_LIMITED]
                raise ProviderError(
                    Outcome.RATE_LIMITED, f"{self.name}: {n} image(s) exceed "
                    f"{self._limiter.limit:g} images/min", status_code=status,
                    provider_code=code,
                    retry_after_s=float(max(1, math.ceil(wait))) if wait != math.inf else None)
        faults = self._faults
        latency: Distribution | None = None
        if self._windows:
            w = self._window(now)
            if w >= 0:
                faults = self._window_faults[w]
                latency = self._windows[w].latency
        outcome: Outcome | None = None
        u = rng.random()
        for bound, failure in faults:
            if u < bound:
                outcome = failure
                break
        if outcome is Outcome.TIMEOUT:  # hang: the router's attempt timeout ends the call
            await self._pause(loop, now, timeout)
            raise ProviderError(Outcome.TIMEOUT, f"{self.name}: no answer within {timeout:g}s")
        if latency is None:
            latency = self._success_latency if outcome is None else self._latency[outcome]
        seconds = latency.sample(rng)
        if seconds > 0.0:  # _pause, inlined on the path every call takes
            future: asyncio.Future[None] = loop.create_future()
            if type(loop) is SimLoop:
                loop.wake_at(now + seconds, _wake, future)
            else:
                loop.call_at(now + seconds, _wake, future)
            await future
        if outcome is None:
            return self._reply(n)
        status, code, message = _SHAPE[outcome]
        share = self._billed.get(outcome)
        raise ProviderError(
            outcome, f"{self.name}: {message}", status_code=status, provider_code=code,
            retry_after_s=(self.profile.retry_after_s if outcome is Outcome.RATE_LIMITED
                           else None),
            cost_usd=self._price * n * share if share else None,
            details={"categories": ["simulated"]} if outcome is Outcome.CONTENT_POLICY else None)

    @staticmethod
    async def _pause(loop: asyncio.AbstractEventLoop, now: float, seconds: float) -> None:
        """Wait ``seconds`` of (virtual) time with one timer and one future."""
        if seconds <= 0.0:
            return
        future: asyncio.Future[None] = loop.create_future()
        if type(loop) is SimLoop:
            loop.wake_at(now + seconds, _wake, future)
        else:
            loop.call_at(now + seconds, _wake, future)
        await future
