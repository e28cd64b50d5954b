"""Provider adapters. Vendor SDKs load only when their adapter is first used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fallback_chain._lazy import lazy_exports

if TYPE_CHECKING:
    from .fake import FakeProvider, Step
    from .gemini import GeminiProvider
    from .leonardo import LeonardoProvider
    from .openai import OpenAIProvider

__all__ = ["FakeProvider", "GeminiProvider", "LeonardoProvider", "OpenAIProvider", "Step"]

_WHERE = {
    "FakeProvider": ".fake",
    "Step": ".fake",
    "GeminiProvider": ".gemini",
    "LeonardoProvider": ".leonardo",
    "OpenAIProvider": ".openai",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
