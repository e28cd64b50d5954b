"""Which providers to compare, from the command line's ``--providers`` text.

An item is ``vendor`` or ``vendor:model`` (a registered vendor whose adapter calls an API, such
as ``gemini``, ``leonardo``, ``openai``: an adapter that reads its key from the environment, or
points at the emulator) or the name of a
provider in the config file. Items are comma-separated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import registry
from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..provider import Provider


def vendors() -> tuple[str, ...]:
    """The vendors a spec may name: every registered vendor whose adapter calls an API."""
    return registry.api_vendors()


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
    known = vendors()
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ConfigurationError(f"--providers {text!r}: an empty item (two commas, or a "
                                     "comma at the end)")
        head, sep, tail = item.partition(":")
        vendor = head.strip().lower()
        if vendor in known:
            model = tail.strip() or None
            if sep and model is None:
                raise ConfigurationError(f"--providers: {item!r} names no model after ':'")
            specs.append(ProviderSpec(item, vendor, model))
        elif sep:
            raise ConfigurationError(
                f"--providers: {item!r}: {head.strip()!r} is not a vendor (use "
                f"{', '.join(known)}, as 'vendor' or 'vendor:model')")
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
    vendor's root (the adapter's ``emulator_path``, ``/v1`` for OpenAI, is added).
    ``fast_poll`` passes the adapter's ``fast_poll_options`` (Leonardo polls its jobs every
    0.1 s: the emulator's jobs finish in well under a second)."""
    if spec.vendor is None:
        raise ConfigurationError(f"{spec.text!r} is not a vendor spec")
    cls = registry.get(spec.vendor)
    args: dict[str, Any] = {"api_key": api_key,
                            "base_url": f"{base_url.rstrip('/')}{cls.emulator_path}"
                            if base_url else None}
    if spec.model:
        args[cls.model_param] = spec.model
    if fast_poll:
        args.update(cls.fast_poll_options)
    return cls(**args)


def build_vendor_providers(specs: Sequence[ProviderSpec], *, api_key: str | None = None,
                           base_url: str | None = None, fast_poll: bool = False
                           ) -> list[Provider]:
    return [build_vendor_provider(s, api_key=api_key, base_url=base_url, fast_poll=fast_poll)
            for s in specs]
