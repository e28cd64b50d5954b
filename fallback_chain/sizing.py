"""Size negotiation: map a requested size or aspect ratio onto what a provider can produce."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .provider import Capabilities
    from .request import ImageRequest

Size = tuple[int, int]


def _ratio_distance(a: float, b: float) -> float:
    return abs(math.log(a) - math.log(b))


def target_ratio(request: ImageRequest, default: Size) -> float:
    r = request.aspect_ratio
    return r[0] / r[1] if r else default[0] / default[1]


def nearest_fixed_size(request: ImageRequest, sizes: tuple[Size, ...]) -> Size:
    """The listed size closest in aspect ratio, then in area, to what was asked."""
    ratio = target_ratio(request, sizes[0])
    area = request.pixels[0] * request.pixels[1] if request.pixels else None

    def score(s: Size) -> tuple[float, float]:
        return (round(_ratio_distance(s[0] / s[1], ratio), 6),
                abs(math.log(s[0] * s[1] / area)) if area else 0.0)

    return min(sizes, key=score)


def nearest_free_size(request: ImageRequest, caps: Capabilities) -> Size:
    """A size for providers that take any ``WxH`` within limits (rounded to ``size_multiple``)."""
    w: float
    h: float
    if request.pixels:
        w, h = request.pixels
    elif request.aspect_ratio:
        rw, rh = request.aspect_ratio
        area = caps.default_size[0] * caps.default_size[1]
        w, h = math.sqrt(area * rw / rh), math.sqrt(area * rh / rw)
    else:
        return caps.default_size
    ratio = max(min(w / h, caps.max_ratio), 1 / caps.max_ratio)
    scale = min(1.0, caps.max_side / max(w, h), math.sqrt(caps.max_pixels / (w * h)))
    w = w * scale
    h = w / ratio
    m = caps.size_multiple
    return (min(max(round(w / m) * m, caps.min_side), caps.max_side),
            min(max(round(h / m) * m, caps.min_side), caps.max_side))


def nearest_aspect_ratio(request: ImageRequest, ratios: tuple[Size, ...]) -> Size | None:
    """The supported aspect ratio closest to the request; ``None`` lets the provider choose."""
    if request.aspect_ratio is None:
        return None
    ratio = request.aspect_ratio[0] / request.aspect_ratio[1]
    return min(ratios, key=lambda r: _ratio_distance(r[0] / r[1], ratio))


def supports_exactly(request: ImageRequest, caps: Capabilities) -> bool:
    """Whether the provider can deliver exactly the requested size (for ``size_match='exact'``)."""
    if request.size == "auto":
        return True
    if caps.sizes:
        if request.pixels:
            return request.pixels in caps.sizes
        return any(_same_ratio(s, request.aspect_ratio) for s in caps.sizes)
    if caps.aspect_ratios:
        if request.pixels:  # ratio-only providers choose the pixel size themselves
            return False
        return request.aspect_ratio in caps.aspect_ratios
    w: float
    h: float
    if request.pixels:
        w, h = request.pixels
        return (w % caps.size_multiple == 0 and h % caps.size_multiple == 0
                and caps.min_side <= min(w, h) and max(w, h) <= caps.max_side
                and w * h <= caps.max_pixels and max(w / h, h / w) <= caps.max_ratio)
    assert request.aspect_ratio is not None
    rw, rh = request.aspect_ratio
    return max(rw / rh, rh / rw) <= caps.max_ratio


def _same_ratio(size: Size, ratio: Size | None) -> bool:
    if ratio is None:
        return False
    g = math.gcd(*size)
    return (size[0] // g, size[1] // g) == ratio
