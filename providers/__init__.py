"""Provider adapters. Vendor SDKs load only when their adapter is first used."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'providers' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
