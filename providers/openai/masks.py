"""Edit inputs for the OpenAI Images API: checks (cheap, before any call) and conversions
(Pillow, only when the provider is actually called).

Why the split. A request that this provider cannot serve must never reach the vendor, and the
router must be free to try the next provider: so every *refusal* is decided in
``edit_problem``, which ``OpenAIProvider.unsupported_reason`` returns and the router records as
a skip (nothing is sent, nothing is spent). ``ImageRequest`` itself already refuses a mask whose
size differs from the first image (``RequestValidationError``, no provider is called), so that
check here is only a second line of defence. What *can* be fixed safely is fixed in
``prepare_edit``, which ``generate`` runs in a worker thread: decoding and re-encoding images is
too slow for ``unsupported_reason``, which the router calls on every turn, and it would be wasted
on a provider the chain never reaches.

Conversions (documented behaviour):

* **Mask without an alpha channel** (RGB, greyscale, JPEG, WebP without alpha): read as
  greyscale, where **white marks the area to edit** (the usual inpainting convention) and black
  the area to keep; it becomes a PNG whose alpha is ``255 - grey`` (OpenAI edits where the mask
  is transparent). Grey levels give partial transparency.
* **Mask with transparency that is not an RGBA/LA PNG** (palette PNG with ``tRNS``, WebP with
  alpha): converted to an RGBA PNG, alpha kept.
* **Input images**: GPT Image models take PNG, JPEG and WebP as they are; anything else (GIF),
  and every non-PNG input for DALL-E 2, is re-encoded as PNG (alpha kept).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from fallback_chain.errors import ProviderError
from fallback_chain.imaging import InvalidImageError, inspect_image
from fallback_chain.outcome import Outcome

from .wire import MAX_MASK_BYTES, Dialect

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from fallback_chain.request import ImageRequest

#: (filename, bytes, content type) as the SDK's multipart encoder takes it.
Upload = tuple[str, bytes, str]

_GPT_INPUT_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def edit_problem(request: ImageRequest, dialect: Dialect, model: str) -> str | None:
    """Why this model cannot take these edit inputs (``None``: it can, maybe after conversion).

    Reads image headers only (no decoding).
    """
    if not request.images:
        return None
    if len(request.images) > dialect.max_edit_images:
        return (f"{model} edits at most {dialect.max_edit_images} image(s) per call; "
                f"the request has {len(request.images)}")
    try:
        infos = [inspect_image(b) for b in request.images]
        mask = inspect_image(request.mask) if request.mask is not None else None
    except InvalidImageError as exc:
        return f"an edit input is not a usable image: {exc}"
    if dialect.edit_square_png:
        for i, (info, data) in enumerate(zip(infos, request.images, strict=True)):
            if info.width != info.height:
                return (f"{model} edits square images only; image {i} is "
                        f"{info.width}x{info.height}")
            if len(data) > MAX_MASK_BYTES:
                return f"{model} takes edit images under 4 MB; image {i} is {len(data):,} bytes"
    if mask is not None and request.mask is not None:
        first = infos[0]
        if (mask.width, mask.height) != (first.width, first.height):
            return (f"the mask is {mask.width}x{mask.height} but the first image is "
                    f"{first.width}x{first.height}; OpenAI needs them the same size")
        if len(request.mask) > MAX_MASK_BYTES:
            return f"the mask is {len(request.mask):,} bytes; OpenAI takes masks under 4 MB"
    return None


def prepare_edit(request: ImageRequest, dialect: Dialect) -> tuple[list[Upload], Upload | None]:
    """The files to upload: inputs in a format the model takes, and an RGBA PNG mask."""
    images = [_input_image(data, i, dialect) for i, data in enumerate(request.images)]
    mask = None
    if request.mask is not None:
        mask_png = mask_to_png(request.mask)
        if len(mask_png) > MAX_MASK_BYTES:
            raise ProviderError(Outcome.INVALID_REQUEST,
                                f"the mask is {len(mask_png):,} bytes as a PNG; OpenAI takes "
                                "masks under 4 MB")
        mask = ("mask.png", mask_png, "image/png")
    return images, mask


def _input_image(data: bytes, index: int, dialect: Dialect) -> Upload:
    info = inspect_image(data)
    accepted = {"image/png": "png"} if dialect.edit_square_png else _GPT_INPUT_TYPES
    ext = accepted.get(info.mime_type)
    if ext is not None:
        return (f"image_{index}.{ext}", data, info.mime_type)
    return (f"image_{index}.png", to_png(data), "image/png")


def to_png(data: bytes) -> bytes:
    """Re-encode any image Pillow reads as PNG, keeping transparency."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        keep_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
        out = img.convert("RGBA" if keep_alpha else "RGB")
    return _png(out)


def mask_to_png(data: bytes) -> bytes:
    """An OpenAI mask: a PNG with an alpha channel, transparent where the image is edited.

    An RGBA/LA PNG is returned unchanged; other images are converted as the module docstring
    says (white = edit for masks without alpha).
    """
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as img:
        if img.format == "PNG" and img.mode in ("RGBA", "LA"):
            return data
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            return _png(img.convert("RGBA"))
        alpha = ImageOps.invert(img.convert("L"))
    out = Image.new("RGBA", alpha.size, (0, 0, 0, 255))
    out.putalpha(alpha)
    return _png(out)


def _png(img: PILImage) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
