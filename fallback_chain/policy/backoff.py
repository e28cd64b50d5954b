"""Jittered exponential backoff between retries on the same provider."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial_s * multiplier**k``, capped at ``max_s``, minus up to ``jitter`` of itself.

    With the defaults the first retry waits 0.375–0.5 s, the second 0.75–1 s (the shape the
    OpenAI SDK uses), so concurrent clients do not retry in lockstep.
    """

    initial_s: float = 0.5
    max_s: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.initial_s < 0 or self.max_s < 0 or self.multiplier < 1:
            raise ValueError("backoff needs initial_s >= 0, max_s >= 0 and multiplier >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("backoff jitter must be between 0 and 1")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Wait before retry number ``retry`` (0 for the first retry)."""
        base = min(self.initial_s * self.multiplier**retry, self.max_s)
        return base * (1.0 - self.jitter * rng.random())
