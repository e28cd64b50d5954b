"""In-process fake providers for tests, demos and reliability experiments.

``FakeProvider`` behaves like a real adapter: it returns real, decodable PNG images of the
requested size (pixels vary with the prompt), and it fails by raising exactly the
``ProviderError`` a real adapter raises for the same vendor answer. Two modes, combinable:

* **Scripted**: ``script=[429, 500, "ok", "content_policy", ...]``. Each call consumes one item:
  an :class:`~fallback_chain.Outcome` (or its string), an HTTP status code, ``"ok"``, or a
  :class:`Step` for full control (latency, Retry-After, message). When the script runs out the
  fake keeps succeeding.
* **Stochastic**: ``rates={"rate_limited": 0.1, 500: 0.05}`` draws a fault per call from a
  ``random.Random(seed)``; ``latency_s`` is a number, a ``(low, high)`` uniform range, or a
  callable taking the ``Random``. Same seed, same sequence.

``image=<bytes>`` makes every success deliver those bytes instead of a drawn image (to test
your own validators and pipelines on real photographs, or a benchmark at real sizes). They are
verified once, when the fake is made (``InvalidImageError`` if they are not a whole PNG, JPEG,
WebP or GIF); each delivered ``GeneratedImage`` is that one verified image.

``blocked_terms=("weapon", ...)`` makes the fake refuse any prompt containing one of the terms
(case-insensitive) with ``content_policy``, like a vendor's safety system.

A ``"timeout"`` (or a ``Step`` with ``hang=True``) really hangs: the call sleeps past its
timeout, so the router's timeout handling is what ends it. Every call is counted in ``calls``
and the requests seen are kept in ``requests``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from fallback_chain.clock import SYSTEM_CLOCK, Clock
from fallback_chain.errors import ProviderError
from fallback_chain.imaging import placeholder_image, seed_for
from fallback_chain.outcome import Outcome, outcome_for_status
from fallback_chain.provider import Capabilities, Provider, ProviderReply
from fallback_chain.request import ImageRequest
from fallback_chain.results import GeneratedImage

Latency = float | tuple[float, float] | Callable[[random.Random], float]
ScriptItem = "Outcome | str | int | Step"

#: How a real vendor typically says each outcome (status code, vendor code, message).
_VENDOR_SHAPE: dict[Outcome, tuple[int | None, str | None, str]] = {
    Outcome.RATE_LIMITED: (429, "rate_limit_exceeded", "Rate limit reached; please try again"),
    Outcome.QUOTA_EXHAUSTED: (429, "insufficient_quota", "You exceeded your current quota"),
    Outcome.SERVER_ERROR: (500, "server_error", "The server had an error processing your request"),
    Outcome.CONNECTION_ERROR: (None, None, "Connection reset by peer"),
    Outcome.MALFORMED_RESPONSE: (200, None, "Response had no usable image"),
    Outcome.CONTENT_POLICY: (400, "content_policy_violation",
                             "Your request was rejected by the safety system"),
    Outcome.INVALID_REQUEST: (400, "invalid_value", "Invalid value for a parameter"),
    Outcome.AUTH_ERROR: (401, "invalid_api_key", "Incorrect API key provided"),
    Outcome.NOT_FOUND: (404, "model_not_found", "The model does not exist"),
    Outcome.TIMEOUT: (None, None, "Request timed out"),
}

_RAISABLE = frozenset(_VENDOR_SHAPE)


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted call. ``outcome`` is ``"ok"``/``success`` or a failure outcome."""

    outcome: Outcome | str | int = "ok"
    latency_s: float | None = None
    retry_after_s: float | None = None
    message: str | None = None
    status_code: int | None = None
    provider_code: str | None = None
    images: int | None = None  # deliver this many images instead of n (to test short replies)
    hang: bool = False


_OK = Step("ok")  # frozen: one for every call that just succeeds


def _as_step(item: object) -> Step:
    if isinstance(item, Step):
        return item
    if isinstance(item, bool):
        raise TypeError(f"script item {item!r} is not an outcome, status code or 'ok'")
    if isinstance(item, int):
        return Step(outcome=item, status_code=item)
    if isinstance(item, str) and item.lower() == "ok":
        return Step("ok")
    if isinstance(item, str) and item.isdigit():
        return Step(outcome=int(item), status_code=int(item))
    if isinstance(item, Outcome | str):
        try:
            Outcome(item)
        except ValueError:
            raise ValueError(
                f"unknown script item {item!r}: use 'ok', an HTTP status code or one of "
                f"{', '.join(o.value for o in _RAISABLE)}") from None
        return Step(outcome=item)
    raise TypeError(f"script item {item!r} is not an outcome, status code or 'ok'")


def _outcome_of(step: Step) -> Outcome:
    raw = step.outcome
    if isinstance(raw, int):
        return Outcome.SUCCESS if 200 <= raw < 300 else outcome_for_status(raw)
    if isinstance(raw, str) and raw.lower() == "ok":
        return Outcome.SUCCESS
    outcome = Outcome(raw)
    if outcome is not Outcome.SUCCESS and outcome not in _RAISABLE:
        raise ValueError(f"{outcome.value!r} is decided by the router, not by a provider")
    return outcome


class FakeProvider(Provider):
    """A provider that follows a script and/or fault rates; see the module docstring."""

    vendor = "fake"
    default_model = "fake-image-1"
    config_options = ("blocked_terms", "image_size", "keep_requests", "latency_s", "price_usd",
                      "rates", "retry_after_s", "script", "seed")
    needs_key = False
    catalogued = False

    def __init__(
        self,
        name: str = "fake",
        script: Iterable[object] = (),
        *,
        model: str = default_model,
        rates: Mapping[Outcome | str | int, float] | None = None,
        latency_s: Latency = 0.0,
        price_usd: float = 0.01,
        retry_after_s: float | None = None,
        capabilities: Capabilities | None = None,
        seed: int = 0,
        clock: Clock | None = None,
        image_size: tuple[int, int] | None = None,
        blocked_terms: Iterable[str] = (),
        keep_requests: bool = True,
        image: bytes | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.capabilities = capabilities or Capabilities(
            max_n=10, edits=True, reference_image=True, transparent_background=True,
            negative_prompt=True, seed=True, output_formats=frozenset({"png"}), size_multiple=16,
            max_side=4096)
        self.price_usd = price_usd
        self.retry_after_s = retry_after_s
        self.image_size = image_size
        self.image = None if image is None else GeneratedImage.from_bytes(image)
        self._script: list[Step] = [_as_step(x) for x in script]
        self._rates = self._check_rates(rates or {})
        self._latency = latency_s
        self._rng = random.Random(seed)
        self._clock = clock or SYSTEM_CLOCK
        self._keep = keep_requests
        self._blocked = tuple(t.lower() for t in blocked_terms)
        self.calls = 0
        self.requests: list[ImageRequest] = []

    @staticmethod
    def _check_rates(rates: Mapping[Outcome | str | int, float]) -> list[tuple[Step, float]]:
        out = []
        total = 0.0
        for key, p in rates.items():
            step = _as_step(key)
            if _outcome_of(step) is Outcome.SUCCESS:
                raise ValueError("rates lists failures only; success is what is left over")
            if not 0 <= p <= 1:
                raise ValueError(f"rate for {key!r} must be between 0 and 1 (got {p})")
            total += p
            out.append((step, p))
        if total > 1 + 1e-9:
            raise ValueError(f"fault rates add up to {total:.3f}, more than 1")
        return out

    def script(self, items: Sequence[object]) -> None:
        """Append more scripted steps."""
        self._script.extend(_as_step(x) for x in items)

    def estimate_cost(self, request: ImageRequest) -> float | None:
        return self.price_usd * request.n

    def _next_step(self) -> Step:
        if self._script:
            return self._script.pop(0)
        if self._rates:
            u = self._rng.random()
            for step, p in self._rates:
                if u < p:
                    return step
                u -= p
        return _OK

    def _is_blocked(self, prompt: str) -> bool:
        lowered = prompt.lower()
        return any(t in lowered for t in self._blocked)

    def _latency_for(self, step: Step) -> float:
        if step.latency_s is not None:
            return step.latency_s
        lat = self._latency
        if callable(lat):
            return max(0.0, float(lat(self._rng)))
        if isinstance(lat, tuple):
            return self._rng.uniform(*lat)
        return float(lat)

    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        self.calls += 1
        if self._keep:
            self.requests.append(request)
        step = self._next_step()
        if self._blocked and self._is_blocked(request.prompt):
            step = Step("content_policy", latency_s=step.latency_s,
                        message="the prompt contains a blocked term")
        outcome = _outcome_of(step)
        latency = self._latency_for(step)
        if outcome is Outcome.TIMEOUT or step.hang:
            await self._clock.sleep(timeout)
            raise ProviderError(Outcome.TIMEOUT, f"no answer within {timeout:g}s")
        if latency > timeout:
            await self._clock.sleep(timeout)
            raise ProviderError(Outcome.TIMEOUT, f"no answer within {timeout:g}s")
        if latency:
            await self._clock.sleep(latency)
        if outcome is not Outcome.SUCCESS:
            status, code, message = _VENDOR_SHAPE[outcome]
            retry_after = step.retry_after_s
            if retry_after is None and outcome is Outcome.RATE_LIMITED:
                retry_after = self.retry_after_s
            raise ProviderError(
                outcome, step.message or f"{message} ({self.name})",
                status_code=step.status_code or status,
                provider_code=step.provider_code or code, retry_after_s=retry_after,
                details={"categories": ["fake"]} if outcome is Outcome.CONTENT_POLICY else None)
        count = request.n if step.images is None else step.images
        if self.image is not None:
            return ProviderReply(images=[self.image] * count, cost_usd=self.price_usd * count,
                                 usage={"images": count}, model=self.model)
        return ProviderReply(images=self._draw(request, count), cost_usd=self.price_usd * count,
                             usage={"images": count}, model=self.model)

    def _draw(self, request: ImageRequest, count: int) -> list[GeneratedImage]:
        # Out of ``generate``: a comprehension there would make its locals cells, allocated
        # on every call and held while the call sleeps (benchmarks/bench_gc.py).
        w, h = self.image_size or self.capabilities.size_for(request)
        base = seed_for(request.prompt) ^ (request.seed or 0)
        alpha = request.background == "transparent"
        return [GeneratedImage.from_bytes(placeholder_image(w, h, seed=base + i, alpha=alpha))
                for i in range(count)]
