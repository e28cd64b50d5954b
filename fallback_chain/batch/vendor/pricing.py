"""``--dry-run --vendor-batch``: the batch priced both ways, side by side. Real-time: every
item through the chain (the expected case of :func:`fallback_chain.cost.estimate_batch`).
Vendor batch: the eligible items at the batch price of the first provider with a batch API
(from its model record), the others through the chain. No provider is called."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine import detect_format
from ..index import BatchIndex
from ..items import BatchItem
from ..items_stream import RowRewrite, iter_items
from ..reader import open_input

if TYPE_CHECKING:
    from ...cost.batch import ChainStep
    from ...cost.catalogue import PriceCatalogue
    from ...providers.batch_api import BatchClient
    from ...request import ImageRequest


@dataclass(frozen=True, slots=True)
class VendorBatchPrice:
    """Both modes' expected cost of the items a run would generate."""

    batch_provider: str | None  # "vendor:model" of the batch step (None: the chain has none)
    items: int
    eligible: int
    images: int
    realtime_usd: float  # every item real-time
    batch_usd: float  # the eligible items at the batch price
    rest_usd: float  # the other items real-time
    source: str | None = None  # of the batch price
    as_of: str | None = None
    unpriced: int = 0  # eligible items the record has no batch price for (priced real-time)
    ineligible: dict[str, int] = field(default_factory=dict)  # why, how many

    @property
    def vendor_batch_usd(self) -> float:
        return self.batch_usd + self.rest_usd

    @property
    def saving_pct(self) -> float | None:
        if not self.realtime_usd:
            return None
        return 100.0 * (1 - self.vendor_batch_usd / self.realtime_usd)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "vendor_batch_usd": round(self.vendor_batch_usd, 6),
                "saving_pct": None if self.saving_pct is None else round(self.saving_pct, 1)}


def _batch_step(steps: Sequence[ChainStep]) -> tuple[ChainStep, type[BatchClient]] | None:
    from ... import registry
    from ...providers.batch_api import client_class

    for step in steps:
        if registry.is_registered(step.vendor):
            cls = client_class(registry.get(step.vendor))
            if cls is not None:
                return step, cls
    return None


def price_both_ways(steps: Sequence[ChainStep], source: str, *, out: str | None = None,
                    input_format: str | None = None,
                    input_options: dict[str, Any] | None = None,
                    storage_options: dict[str, Any] | None = None,
                    catalogue: PriceCatalogue | None = None,
                    rewrite: RowRewrite | None = None) -> VendorBatchPrice:
    from ...cost.batch import estimate_batch
    from ..pricing import _load_delivered

    fmt = detect_format(source, input_format, input_options)
    found = _batch_step(steps)
    every: list[ImageRequest] = []
    rest: list[ImageRequest] = []
    eligible: list[ImageRequest] = []
    reasons: Counter[str] = Counter()
    with BatchIndex() as index:
        if out is not None:
            _load_delivered(out, storage_options, index)
        with open_input(source, input_options) as fh:
            _, entries = iter_items(fh, fmt, source, index, rewrite=rewrite)
            for entry in entries:
                if not isinstance(entry, BatchItem):
                    continue
                state = index.state(entry.id)
                if state is not None and state.status == "delivered":
                    continue
                every.append(entry.request)
                why = _why_not(entry, found[1] if found else None)
                if why is None:
                    eligible.append(entry.request)
                else:
                    reasons[why] += 1
                    rest.append(entry.request)
    realtime = estimate_batch(steps, every, catalogue=catalogue).expected_usd
    if found is None:
        return VendorBatchPrice(None, len(every), 0, sum(r.n for r in every), realtime, 0.0,
                                realtime, ineligible=dict(reasons))
    step = found[0]
    batch_usd, unpriced, source_of, as_of = _at_batch_price(step, eligible, rest, catalogue)
    rest_usd = estimate_batch(steps, rest, catalogue=catalogue).expected_usd if rest else 0.0
    return VendorBatchPrice(step.label, len(every), len(eligible) - unpriced,
                            sum(r.n for r in every), realtime, batch_usd, rest_usd, source_of,
                            as_of, unpriced, dict(reasons))


def _why_not(item: BatchItem, cls: type[BatchClient] | None) -> str | None:
    if cls is None:
        return "no batch API in the chain"
    if item.repeat:
        return "identical to an earlier row"
    if item.request.metadata.get("validators"):
        return "validators"
    return cls.batch_reason(item.request)


def _at_batch_price(step: ChainStep, eligible: list[ImageRequest], rest: list[ImageRequest],
                    catalogue: PriceCatalogue | None
                    ) -> tuple[float, int, str | None, str | None]:
    """The eligible items at the batch price; those it cannot price join ``rest``."""
    from .price import batch_price

    total = 0.0
    unpriced = 0
    source = as_of = None
    for request in eligible:
        price = batch_price(step.vendor, step.model, request, catalogue=catalogue)
        if price.per_image_usd is None:
            unpriced += 1
            rest.append(request)
            continue
        total += price.per_image_usd * request.n
        source, as_of = price.source, price.as_of
    return total, unpriced, source, as_of
