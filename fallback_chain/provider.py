"""The contract between the router and the adapters (re-exported by
``fallback_chain.providers.base``).

An adapter subclasses :class:`Provider`, declares its :class:`Capabilities`, and implements
``generate`` (return a :class:`ProviderReply` or raise
:class:`~fallback_chain.errors.ProviderError`) and ``estimate_cost``. The router never sees a
vendor exception.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from . import sizing

if TYPE_CHECKING:
    from .request import ImageRequest
    from .results import GeneratedImage

Size = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider (one model) can do. The router skips providers that cannot serve a request.

    Sizes come in one of three shapes: a fixed list (``sizes``), a list of aspect ratios the
    vendor renders at its own resolution (``aspect_ratios``), or free ``WxH`` within
    ``min_side``/``max_side``/``max_pixels``/``max_ratio``, rounded to ``size_multiple``.
    ``max_n`` is how many images the adapter can deliver for one request (it may make several
    calls to get them). ``reference_image`` says the model takes an image as a reference for a
    new one (``ImageRequest.reference_images``: GPT Image's edits endpoint, Gemini's inline
    image parts); a provider without it gets the request without the reference (the attempt
    records that it was dropped) instead of being skipped.
    """

    sizes: tuple[Size, ...] = ()
    aspect_ratios: tuple[Size, ...] = ()
    default_size: Size = (1024, 1024)
    min_side: int = 64
    max_side: int = 4096
    max_pixels: int = 4096 * 4096
    max_ratio: float = 4.0
    size_multiple: int = 1
    max_n: int = 1
    max_prompt_chars: int = 32_000
    edits: bool = False
    reference_image: bool = False
    rewrites_prompt: bool = False
    output_formats: frozenset[str] = frozenset({"png"})
    transparent_background: bool = False
    negative_prompt: bool = False
    seed: bool = False

    def unsupported_reason(self, request: ImageRequest) -> str | None:
        """Why this provider cannot serve ``request``, or ``None`` if it can."""
        if request.n > self.max_n:
            return f"n={request.n} is more than this provider delivers (max {self.max_n})"
        if len(request.prompt) > self.max_prompt_chars:
            return (f"prompt is {len(request.prompt):,} characters; this provider accepts "
                    f"{self.max_prompt_chars:,}")
        if request.images and not self.edits:
            return "this provider does not edit images"
        if request.exact_prompt and self.rewrites_prompt:
            return "exact_prompt is set and this provider rewrites prompts"
        if request.background == "transparent" and not self.transparent_background:
            return "this provider cannot make transparent backgrounds"
        if request.size_match == "exact" and not sizing.supports_exactly(request, self):
            return f"size_match='exact' and this provider cannot produce {request.size}"
        return None

    def size_for(self, request: ImageRequest) -> Size:
        """The pixel size to ask for (nearest supported); for ratio-only vendors, the default."""
        if self.sizes:
            return sizing.nearest_fixed_size(request, self.sizes)
        if self.aspect_ratios:
            return self.default_size
        return sizing.nearest_free_size(request, self)

    def aspect_ratio_for(self, request: ImageRequest) -> Size | None:
        """For ratio-driven vendors: the supported ratio nearest the request (``None``: auto)."""
        return sizing.nearest_aspect_ratio(request, self.aspect_ratios or ((1, 1),))


@dataclass(slots=True)
class ProviderReply:
    """A successful vendor answer: verified images plus what the vendor reported."""

    images: list[GeneratedImage]
    revised_prompt: str | None = None
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None  # as reported (or computed from reported usage) by the vendor
    model: str | None = None  # the model version the vendor says it used
    vendor_request_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of a credentials preflight that spends no money."""

    provider: str
    model: str
    ok: bool
    detail: str = ""


class Provider(ABC):
    """Base class of every adapter. Subclasses set ``name``, ``model`` and ``capabilities``.

    An adapter class also declares, as class data, what the vendor registry
    (:mod:`fallback_chain.registry`) and everything built on it (config, compare, batch
    pricing, the catalogue, the emulator) need to know about its vendor, without importing the
    vendor's SDK. See ``docs/adding-a-vendor.md``.
    """

    #: The vendor id (the entry-point name in ``fallback_chain.providers``; the config's
    #: ``vendor = "..."``; the folder of its model records).
    vendor: ClassVar[str] = ""
    #: Environment variables the key is read from, in the order they are tried.
    env_vars: ClassVar[tuple[str, ...]] = ()
    #: The model used when none is given (the constructor's default).
    default_model: ClassVar[str] = ""
    #: The constructor keyword that takes the model id.
    model_param: ClassVar[str] = "model"
    #: Constructor keywords a config file may set in a provider's ``options`` table.
    config_options: ClassVar[tuple[str, ...]] = ()
    #: Whether the adapter calls a vendor API (takes ``api_key`` and ``base_url``).
    needs_key: ClassVar[bool] = True
    #: Whether this vendor has model records (``providers/<vendor>/models.json``).
    catalogued: ClassVar[bool] = True
    #: Appended to an emulator's root URL to make this adapter's ``base_url`` (``"/v1"``).
    emulator_path: ClassVar[str] = ""
    #: The emulated API, as ``"module:Class"`` (``None``: the emulator has none).
    emulator_api: ClassVar[str | None] = None
    #: Constructor keywords that suit a fast server such as the emulator (shorter polls).
    fast_poll_options: ClassVar[Mapping[str, object]] = {}
    #: The module that turns this vendor's reported usage into USD (``None``: none).
    cost_module: ClassVar[str | None] = None
    #: The vendor's batch API client, as ``"module:Class"`` (``None``: the vendor has none);
    #: see ``fallback_chain.providers.batch_api`` and ``--vendor-batch`` in docs/batch.md.
    batch_api: ClassVar[str | None] = None

    name: str
    model: str
    capabilities: Capabilities

    @classmethod
    def provider_key(cls, model: str, name: str | None = None) -> str:
        """The key an instance built with ``model`` and ``name`` will have (the config
        layer checks keys are distinct before building anything)."""
        return name or cls.vendor

    @property
    def key(self) -> str:
        """Identity of this provider inside a chain (breakers, cooldowns, overrides)."""
        return self.name

    @abstractmethod
    async def generate(self, request: ImageRequest, *, timeout: float) -> ProviderReply:
        """Produce ``request.n`` images within ``timeout`` seconds, or raise ``ProviderError``."""

    def estimate_cost(self, request: ImageRequest) -> float | None:
        """Expected cost in USD of serving ``request`` (``None`` if unknown)."""
        return None

    def unsupported_reason(self, request: ImageRequest) -> str | None:
        return self.capabilities.unsupported_reason(request)

    def retired_reason(self, wall: float) -> str | None:
        """Why this provider's model can no longer be called at ``wall`` (seconds since the
        epoch, from the chain's clock), e.g. it was shut down; ``None`` if it can. The chain
        skips a retired provider without calling it. Adapters that know their model's
        lifecycle override this; the default knows nothing."""
        return None

    async def check(self) -> CheckResult:
        """Verify credentials without spending money. Adapters override this."""
        return CheckResult(self.name, self.model, True, "no preflight for this provider")

    async def aclose(self) -> None:
        """Release pooled connections."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r})"
