"""Vendor batch APIs at about half price, with the chain as the safety net
(``fallback-chain batch INPUT --out DIR --vendor-batch``; see docs/batch.md, "Vendor batch").

Before the real-time pool runs, the eligible items go to the first provider of the chain whose
vendor has a batch API (the registry says so: ``batch_api`` on the adapter class), as one or
more vendor jobs within the vendor's limits (:mod:`.planning`), the input read a job's worth
at a time; each row first passes the chain's pre-screen, budget and quotas as a real-time call
would (:mod:`.gate`). The jobs are recorded in a
journal in the output *before* they are submitted (:mod:`.journal`), so a killed run
re-attaches to them instead of paying again; they are polled with backoff on an injected
clock until done or until the deadline, when they are cancelled (:mod:`.polling`). Delivered
items are written like any other (images, a sidecar with the batch id and the cost at the
batch price with its source, a manifest line; :mod:`.collect`). A refusal is reported and
never re-sent; everything else the batch did not deliver (errors, expired, cancelled, lost
lines) is left to the real-time chain. :mod:`.phase` runs it all; :mod:`.pricing` prices a
batch both ways for ``--dry-run``.

Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_exports

if TYPE_CHECKING:
    from .options import VendorBatchOptions, parse_duration
    from .pricing import VendorBatchPrice, price_both_ways

__all__ = ["VendorBatchOptions", "VendorBatchPrice", "parse_duration", "price_both_ways"]

_WHERE = {"VendorBatchOptions": ".options", "parse_duration": ".options",
          "VendorBatchPrice": ".pricing", "price_both_ways": ".pricing"}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
