"""Which provider takes the vendor batch, which items are eligible, and how they are split
into jobs within the vendor's limits (requests per job, bytes per job)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ...chain import Chain
    from ...provider import Provider
    from ...providers.batch_api import BatchClient
    from ..items import BatchItem


def batch_provider(chain: Chain) -> Provider | None:
    """The first provider of ``chain`` whose vendor has a batch API (``batch_api`` on its
    adapter class, as the registry declares it)."""
    for provider in chain.providers:
        if getattr(type(provider), "batch_api", None):
            return provider
    return None


def ineligible_reason(item: BatchItem, client: BatchClient) -> str | None:
    """Why ``item`` stays real-time: an identical earlier row (it shares that row's images),
    named validators (they run inside the chain), or what the vendor batch cannot take."""
    if item.repeat:
        return "an identical earlier row"
    if item.request.metadata.get("validators"):
        return "validators run in the real-time chain"
    return client.unsupported_reason(item.request)


@dataclass(frozen=True, slots=True)
class PlannedJob:
    items: dict[str, str]  # custom id -> item id
    lines: list[dict[str, Any]]


def split(entries: Iterable[tuple[str, BatchItem]], client: BatchClient,
          max_items: int | None = None) -> Iterator[PlannedJob]:
    """Jobs of at most ``max_items`` (or the vendor's limit) requests and ``client.max_bytes``
    bytes, in input order. ``entries``: (custom id, item)."""
    from ...providers.batch_api import line_size

    cap = min(max_items or client.max_items, client.max_items)
    items: dict[str, str] = {}
    lines: list[dict[str, Any]] = []
    size = 0
    for custom_id, item in entries:
        line = client.line(custom_id, item.request)
        n = line_size(line)
        if lines and (len(lines) >= cap or size + n > client.max_bytes):
            yield PlannedJob(items, lines)
            items, lines, size = {}, [], 0
        items[custom_id] = item.id
        lines.append(line)
        size += n
    if lines:
        yield PlannedJob(items, lines)
