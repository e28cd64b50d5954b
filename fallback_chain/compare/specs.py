"""Which providers to compare, from the command line's ``--providers`` text.

An item is ``vendor`` or ``vendor:model`` (``gemini``, ``leonardo``, ``openai``: an adapter
that reads its key from the environment, or points at the emulator) or the name of a
provider in the config file. Items are comma-separated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..provider import Provider

VENDORS = ("gemini", "leonardo", "openai")


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One ``--providers`` item: a vendor (and model), or a name from the config file."""

    text: str
    vendor: str | None = None
    model: str | None = None

    @property
    def is_vendor(self) -> bool:
        return self.vendor is not None


def parse_specs(text: str) -> list[ProviderSpec]:
    """``"gemini:gemini-2.5-flash-image,openai:gpt-image-2,leonardo,fast"`` as specs.

    Raises ``ConfigurationError`` for an empty list, an empty item, a repeated item, or
    ``x:y`` where ``x`` is not a vendor.
    """
    specs: list[ProviderSpec] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ConfigurationError(f"--providers {text!r}: an empty item (two commas, or a "
                                     "comma at the end)")
        head, sep, tail = item.partition(":")
        vendor = head.strip().lower()
        if vendor in VENDORS:
            model = tail.strip() or None
            if sep and model is None:
                raise ConfigurationError(f"--providers: {item!r} names no model after ':'")
            specs.append(ProviderSpec(item, vendor, model))
        elif sep:
            raise ConfigurationError(
                f"--providers: {item!r}: {head.strip()!r} is not a vendor (use "
                f"{', '.join(VENDORS)}, as 'vendor' or 'vendor:model')")
        else:
            specs.append(ProviderSpec(item))
    if not specs:
        raise ConfigurationError("--providers is empty")
    seen = [s.text for s in specs]
    dupes = sorted({t for t in seen if seen.count(t) > 1})
    if dupes:
        raise ConfigurationError(f"--providers names {', '.join(dupes)} more than once")
    return specs


def build_vendor_provider(spec: ProviderSpec, *, api_key: str | None = None,
                          base_url: str | None = None, fast_poll: bool = False) -> Provider:
    """The adapter for a vendor spec. Without ``api_key`` it reads the vendor's environment
    variable (``ConfigurationError`` naming it when unset); ``base_url`` is the emulator's or
    vendor's root (``/v1`` is added for OpenAI). ``fast_poll`` polls Leonardo jobs every
    0.1 s (for the emulator, whose jobs finish in well under a second)."""
    from fallback_chain.providers import GeminiProvider, LeonardoProvider, OpenAIProvider

    args: dict[str, Any] = {"api_key": api_key, "base_url": base_url}
    if spec.vendor == "gemini":
        if spec.model:
            args["model"] = spec.model
        return GeminiProvider(**args)
    if spec.vendor == "leonardo":
        if spec.model:
            args["model_id"] = spec.model
        if fast_poll:
            args.update(poll_initial_s=0.1, poll_interval_s=0.1)
        return LeonardoProvider(**args)
    if spec.vendor == "openai":
        if spec.model:
            args["model"] = spec.model
        args["base_url"] = f"{base_url.rstrip('/')}/v1" if base_url else None
        return OpenAIProvider(**args)
    raise ConfigurationError(f"{spec.text!r} is not a vendor spec")


def build_vendor_providers(specs: Sequence[ProviderSpec], *, api_key: str | None = None,
                           base_url: str | None = None, fast_poll: bool = False
                           ) -> list[Provider]:
    return [build_vendor_provider(s, api_key=api_key, base_url=base_url, fast_poll=fast_poll)
            for s in specs]
