"""A tiny autopilot that embeds fallback-chain: it makes a cover image for an article, and when
no provider can deliver it falls back to a text-only cover instead of failing the publication.

Its tests (``tests/``) use only the fixtures of fallback-chain's pytest plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fallback_chain import Chain
from fallback_chain.errors import (
    ChainError,
    ChainExhaustedError,
    ContentPolicyError,
    DeadlineExceededError,
)
from fallback_chain.results import Attempt, ChainResult

#: What the autopilot survives with a text-only cover (a bad request still raises).
NO_IMAGE = (ChainExhaustedError, ContentPolicyError, DeadlineExceededError)


@dataclass
class Cover:
    title: str
    image: bytes | None  # None: a text-only cover
    provider: str | None
    cost_usd: float
    attempts: list[Attempt] = field(default_factory=list)


def prompt_for(title: str) -> str:
    return f"flat illustration, bold shapes, cover art for an article titled {title!r}"


def _cover(title: str, result: ChainResult) -> Cover:
    return Cover(title, result.image.data, result.provider, result.cost_usd, result.attempts)


def _text_only(title: str, error: ChainError) -> Cover:
    return Cover(title, None, None, error.cost_usd, error.attempts)


def make_cover(chain: Chain, title: str, **options: Any) -> Cover:
    """Blocking: one cover for ``title``; a text-only cover when the chain cannot deliver."""
    try:
        return _cover(title, chain.generate(prompt_for(title), size="1024x1024", **options))
    except NO_IMAGE as error:
        return _text_only(title, error)


async def amake_cover(chain: Chain, title: str, **options: Any) -> Cover:
    """The same, for async code."""
    try:
        result = await chain.agenerate(prompt_for(title), size="1024x1024", **options)
    except NO_IMAGE as error:
        return _text_only(title, error)
    return _cover(title, result)
