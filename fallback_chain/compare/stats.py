"""Per-provider figures of a comparison, and the image-difference ("spread") measure.

**Spread.** Each delivered image is reduced to a 32x32 greyscale thumbnail (squashed to a
square whatever its aspect ratio); the difference between two images is the mean absolute
difference of their thumbnails' pixels divided by 255. A provider's ``spread`` is the mean of
that difference over every pair of its runs: ``0.0`` means the runs look the same at thumbnail
scale (identical composition and tones), ``1.0`` would be pure black against pure white. It
sees layout, brightness and large shapes, not subject matter or style: two different
pictures of the same scene can differ as much as two unrelated pictures with the same tones.
Use it to spot a provider whose runs swing wildly, not to rank quality.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import combinations
from typing import Any

from .decode import decoded
from .model import Row

SIGNATURE_PX = 32


@dataclass(frozen=True, slots=True)
class ProviderStats:
    """One provider's runs in figures.

    Latencies are over delivered runs only (a fast failure says nothing about how long an
    image takes); ``None`` when nothing was delivered. ``cost_usd`` is everything spent,
    failures included; ``cost_per_image_usd`` divides it by the images delivered. ``spread``
    is the mean pairwise image difference between runs (see the module doc; ``None`` with
    fewer than two delivered runs); ``distinct_images`` counts different image files by hash.
    """

    label: str
    provider: str
    model: str
    runs: int
    delivered: int
    failed: int
    failures: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    latency_mean_s: float | None = None
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    cost_usd: float = 0.0
    cost_per_image_usd: float | None = None
    spread: float | None = None
    distinct_images: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) with linear interpolation between ranks; ``None`` for
    no values. With five values p50 is the middle one and p95 lies between the two largest."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100 (got {q})")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def provider_stats(row: Row) -> ProviderStats:
    delivered = row.delivered
    latencies = [c.latency_s for c in delivered]
    images = sum(len(c.result.images) for c in delivered if c.result is not None)
    cost = sum(c.cost_usd for c in row.cells)
    failures = Counter(c.outcome for c in row.cells if not c.delivered)
    return ProviderStats(
        label=row.label, provider=row.provider, model=row.model, runs=len(row.cells),
        delivered=len(delivered), failed=len(row.cells) - len(delivered),
        failures=dict(sorted(failures.items())), calls=sum(c.calls for c in row.cells),
        latency_mean_s=sum(latencies) / len(latencies) if latencies else None,
        latency_p50_s=percentile(latencies, 50), latency_p95_s=percentile(latencies, 95),
        cost_usd=cost, cost_per_image_usd=cost / images if images else None,
        spread=image_spread(_first_images(row)),
        distinct_images=len({c.image.sha256 for c in delivered if c.image is not None}))


def _first_images(row: Row) -> list[bytes]:
    return [c.image.data for c in row.cells if c.image is not None]


@lru_cache(maxsize=256)
def signature(data: bytes) -> bytes | None:
    """The 32x32 greyscale thumbnail the spread is measured on (1,024 bytes); cached, as the
    per-provider and cross-provider figures measure the same images. ``None`` for an image
    that cannot be decoded (see ``decode``): it is left out of the spreads."""
    from PIL import Image

    grey = decoded(data, draft=("L", SIGNATURE_PX * 4), mode=lambda _img: "L")
    if grey is None:
        return None
    return grey.resize((SIGNATURE_PX, SIGNATURE_PX), Image.Resampling.BOX).tobytes()


def _signatures(images: Iterable[bytes]) -> list[bytes]:
    return [s for s in map(signature, images) if s is not None]


def difference(a: bytes, b: bytes) -> float:
    """Mean absolute pixel difference of two signatures, from 0 (same) to 1."""
    if len(a) != len(b) or not a:
        raise ValueError("signatures must be non-empty and of equal length")
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / (255 * len(a))


def image_spread(images: Iterable[bytes]) -> float | None:
    """Mean pairwise difference between images (see the module doc); ``None`` for fewer
    than two images."""
    sigs = _signatures(images)
    pairs = list(combinations(sigs, 2))
    if not pairs:
        return None
    return sum(difference(a, b) for a, b in pairs) / len(pairs)


def cross_spread(rows: Sequence[Row]) -> dict[tuple[int, int], float | None]:
    """Mean difference between the images of each pair of rows (every image of one against
    every image of the other)."""
    sigs = [_signatures(_first_images(r)) for r in rows]
    out: dict[tuple[int, int], float | None] = {}
    for i, j in combinations(range(len(rows)), 2):
        pairs = [(a, b) for a in sigs[i] for b in sigs[j]]
        out[(i, j)] = (sum(difference(a, b) for a, b in pairs) / len(pairs)) if pairs else None
    return out
