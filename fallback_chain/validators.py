"""Output quality gate: check each delivered image before it is handed over.

A validator is any callable ``validator(image, request)`` (sync or ``async``) that receives the
:class:`~fallback_chain.results.GeneratedImage` and the
:class:`~fallback_chain.request.ImageRequest`. It accepts the image by returning ``None`` or
``True`` and rejects it by returning a reason (a string), returning ``False``, or raising
:class:`ImageRejected`. A rejected image makes the attempt a ``rejected`` outcome: billed as the
vendor billed it, not counted by the circuit breaker, and the chain advances to the next
provider (``Policy(retries={"rejected": 1})`` retries the same provider first).

Synchronous validators run on a small bounded thread pool, so decoding images never blocks the
event loop. The built-ins (Pillow, imported lazily)::

    SizeMatches(tolerance=0.05)   # delivered size/aspect within 5% of what was asked
    NotBlank(min_stddev=3.0)      # not blank or near-uniform
    NotDuplicate(max_distance=5)  # no near-duplicate (dHash) of an input or earlier image
    DecodesFully()                # the whole image decodes

Names for configuration files and batch rows: ``size``, ``not_blank``, ``not_duplicate``,
``decodes`` (see :func:`resolve`).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeAlias

from .errors import ConfigurationError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from .request import ImageRequest
    from .results import GeneratedImage

#: What a validator answers: ``None``/``True`` accept; a string or ``False`` reject.
Verdict: TypeAlias = "bool | str | None"
Validator: TypeAlias = Callable[
    ["GeneratedImage", "ImageRequest"], "bool | str | Awaitable[bool | str | None] | None"]

_POOL_SIZE = 2
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


class ImageRejected(Exception):
    """Raised by a validator to reject an image; ``reason`` is recorded in the attempt."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_POOL_SIZE, thread_name_prefix="fallback-chain-validate")
        return _pool


def _name(validator: Validator) -> str:
    return getattr(validator, "__name__", None) or type(validator).__name__


def _is_async(validator: Validator) -> bool:
    return inspect.iscoroutinefunction(validator) or inspect.iscoroutinefunction(
        getattr(validator, "__call__", None))  # noqa: B004 - an instance's async __call__


async def _verdict(validator: Validator, image: GeneratedImage,
                   request: ImageRequest) -> str | None:
    try:
        if _is_async(validator):
            answer: Any = await validator(image, request)  # type: ignore[misc]
        else:
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(_executor(), validator, image, request)
            if inspect.isawaitable(answer):
                answer = await answer
    except ImageRejected as exc:
        return exc.reason or f"rejected by {_name(validator)}"
    if answer is None or answer is True:
        return None
    if answer is False:
        return f"rejected by {_name(validator)}"
    if isinstance(answer, str):
        return answer or f"rejected by {_name(validator)}"
    raise TypeError(f"validator {_name(validator)} returned {type(answer).__name__}; "
                    "return None/True to accept, a reason string or False to reject")


async def check_images(validators: Sequence[Validator], images: Iterable[GeneratedImage],
                       request: ImageRequest) -> str | None:
    """Run ``validators`` over each image in order; the first rejection's reason, or None."""
    for i, image in enumerate(images, 1):
        for validator in validators:
            reason = await _verdict(validator, image, request)
            if reason is not None:
                return f"image {i}: {reason}"
    return None


# ------------------------------------------------------------------------------- built-ins

def _open(data: bytes) -> PILImage:
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    return img


class SizeMatches:
    """The delivered size is within ``tolerance`` (a fraction) of what was asked: each side
    when exact pixels were asked (``size="1024x1536"``), the aspect ratio when a ratio was
    asked (``size="3:2"``); ``size="auto"`` accepts any size."""

    __name__ = "size"

    def __init__(self, tolerance: float = 0.05) -> None:
        if not 0 <= tolerance < 1:
            raise ConfigurationError("SizeMatches tolerance must be >= 0 and < 1")
        self.tolerance = tolerance

    def __call__(self, image: GeneratedImage, request: ImageRequest) -> str | None:
        pixels, ratio = request.pixels, request.aspect_ratio
        got = f"{image.width}x{image.height}"
        if pixels is not None:
            w, h = pixels
            if (abs(image.width - w) > self.tolerance * w
                    or abs(image.height - h) > self.tolerance * h):
                return f"size {got} is not within {self.tolerance:.0%} of {w}x{h}"
            return None
        if ratio is not None:
            want, have = ratio[0] / ratio[1], image.width / image.height
            if abs(have - want) > self.tolerance * want:
                return (f"aspect {got} is not within {self.tolerance:.0%} of "
                        f"{ratio[0]}:{ratio[1]}")
        return None


class NotBlank:
    """Not blank or near-uniform: the grey-level standard deviation (on a 64 px thumbnail)
    must reach ``min_stddev`` (0-255 scale)."""

    __name__ = "not_blank"

    def __init__(self, min_stddev: float = 3.0) -> None:
        self.min_stddev = min_stddev

    def __call__(self, image: GeneratedImage, request: ImageRequest) -> str | None:
        from PIL import ImageStat

        with _open(image.data) as img:
            grey = img.convert("L")
            grey.thumbnail((64, 64))
            stddev = ImageStat.Stat(grey).stddev[0]
        if stddev < self.min_stddev:
            return f"blank or near-uniform image (grey stddev {stddev:.2f} < {self.min_stddev:g})"
        return None


def dhash(data: bytes, size: int = 8) -> int:
    """A difference hash of image bytes: ``size * size`` bits comparing neighbouring pixels
    of a ``(size + 1) x size`` grey thumbnail (close images have close hashes)."""
    from PIL import Image

    with _open(data) as img:
        small = img.convert("L").resize((size + 1, size), Image.Resampling.LANCZOS)
        px = small.tobytes()  # mode L: one byte per pixel, row by row
    bits = 0
    for row in range(size):
        for col in range(size):
            left, right = px[row * (size + 1) + col], px[row * (size + 1) + col + 1]
            bits = (bits << 1) | (left > right)
    return bits


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class NotDuplicate:
    """Not a near-duplicate of an input image of the request, nor of an image this validator
    accepted earlier (one instance per batch: it remembers what it accepted). Near means the
    dHashes differ in at most ``max_distance`` of 64 bits."""

    __name__ = "not_duplicate"

    def __init__(self, max_distance: int = 5) -> None:
        self.max_distance = max_distance
        self._seen: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, image: GeneratedImage, request: ImageRequest) -> str | None:
        h = dhash(image.data)
        for i, data in enumerate(request.images, 1):
            distance = hamming(h, dhash(data))
            if distance <= self.max_distance:
                return f"near-duplicate of input image {i} (dHash distance {distance})"
        with self._lock:
            for distance in map(lambda seen: hamming(h, seen), self._seen):
                if distance <= self.max_distance:
                    return f"near-duplicate of an earlier image (dHash distance {distance})"
            self._seen.append(h)
        return None


class DecodesFully:
    """The whole image decodes with Pillow (every pixel, not only the header)."""

    __name__ = "decodes"

    def __call__(self, image: GeneratedImage, request: ImageRequest) -> str | None:
        try:
            with _open(image.data):
                pass
        except Exception as exc:  # Pillow raises many types for broken data
            return f"does not decode: {type(exc).__name__}: {exc}"[:300]
        return None


#: Built-in validators by the names configuration files and batch rows use.
BUILTIN: dict[str, Callable[[], Validator]] = {
    "size": SizeMatches, "not_blank": NotBlank, "not_duplicate": NotDuplicate,
    "decodes": DecodesFully,
}


def resolve(names: Iterable[str | Validator]) -> list[Validator]:
    """Validators from built-in names (``"size"``, ``"not_blank"``, ``"not_duplicate"``,
    ``"decodes"``) or callables, in order. Each call makes new instances."""
    out: list[Validator] = []
    for item in names:
        if callable(item):
            out.append(item)
            continue
        name = str(item).strip()
        if name not in BUILTIN:
            raise ConfigurationError(
                f"unknown validator {name!r}; built-ins: {', '.join(sorted(BUILTIN))}")
        out.append(BUILTIN[name]())
    return out
