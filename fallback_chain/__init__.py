"""fallback-chain: image generation across several providers behind one call.

Names are loaded on first use (PEP 562), so ``import fallback_chain`` stays fast and never
imports a vendor SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from ._version import __version__ as __version__

if TYPE_CHECKING:
    from .chain import Chain
    from .clock import Clock, SystemClock
    from .events import Event, EventBus
    from .outcome import Outcome
    from .policy import Policy
    from .provider import Capabilities, Provider, ProviderReply
    from .request import ImageRequest
    from .results import Attempt, ChainResult, GeneratedImage

__all__ = [
    "Attempt",
    "Capabilities",
    "Chain",
    "ChainResult",
    "Clock",
    "Event",
    "EventBus",
    "GeneratedImage",
    "ImageRequest",
    "Outcome",
    "Policy",
    "Provider",
    "ProviderReply",
    "SystemClock",
]

_WHERE = {
    "Attempt": ".results",
    "Capabilities": ".provider",
    "Chain": ".chain",
    "ChainResult": ".results",
    "Clock": ".clock",
    "Event": ".events",
    "EventBus": ".events",
    "GeneratedImage": ".results",
    "ImageRequest": ".request",
    "Outcome": ".outcome",
    "Policy": ".policy",
    "Provider": ".provider",
    "ProviderReply": ".provider",
    "SystemClock": ".clock",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
