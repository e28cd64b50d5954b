"""Downscaled inline thumbnails: an image's bytes to a ``data:`` URI (WebP, else JPEG)."""

from __future__ import annotations

import base64
import io
import logging

log = logging.getLogger("fallback_chain.report")

#: The longest side of a thumbnail, in pixels.
THUMB_PX = 360


def thumbnail_uri(data: bytes, max_px: int = THUMB_PX) -> str | None:
    """A small WebP (or JPEG when Pillow lacks WebP) of ``data`` as a data URI; None when
    the bytes are not an image Pillow reads."""
    from PIL import Image, UnidentifiedImageError, features

    try:
        with Image.open(io.BytesIO(data)) as source:
            source.thumbnail((max_px, max_px))
            has_alpha = source.mode in ("RGBA", "LA", "PA") or "transparency" in source.info
            im = source.convert("RGBA" if has_alpha else "RGB")
            out = io.BytesIO()
            if features.check("webp"):
                im.save(out, "WEBP", quality=72, method=4)
                mime = "image/webp"
            else:
                if has_alpha:
                    im = im.convert("RGB")
                im.save(out, "JPEG", quality=75, optimize=True)
                mime = "image/jpeg"
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        log.warning("thumbnail failed: %s", exc)
        return None
    return f"data:{mime};base64,{base64.b64encode(out.getvalue()).decode('ascii')}"
