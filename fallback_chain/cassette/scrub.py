"""What a cassette may keep: images become placeholders, keys, tokens and signed URLs go.

* An image (base64 text inside a JSON body, or a binary body) becomes
  ``"fallback-chain:image;<mime>;<W>x<H>"``; replay draws an image of that format and size.
* A URL keeps its scheme, host and path; its query and fragment (where signatures, expiry
  and tokens live) are dropped (``?scrubbed``).
* The value of a key that names a secret (``api_key``, ``token``, ``signature``...) is masked.
* Every string passes through :func:`fallback_chain.secrets.redact` (registered keys, their
  long pieces, and key-shaped tokens such as ``sk-...`` and ``AIza...``).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from ..imaging import InvalidImageError, inspect_image, placeholder_image
from ..secrets import MASK, redact

PLACEHOLDER = "fallback-chain:image"
_PLACEHOLDER_RE = re.compile(r"^fallback-chain:image;(image/[a-z]+);(\d+)x(\d+)$")
_URL_RE = re.compile(r"(?P<base>https?://[^\s?#\"'<>]+)(?P<rest>[?#][^\s\"'<>]*)?")
_SECRET_KEYS = re.compile(
    r"(api[_-]?key|apikey|token|secret|signature|sig|authorization|password|credential)",
    re.IGNORECASE)
_B64_MIN = 64
_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp", "image/gif": "gif"}


def placeholder_for(data: bytes) -> str | None:
    """The placeholder naming ``data``'s format and size, or None if it is not an image."""
    try:
        info = inspect_image(data)
    except InvalidImageError:
        return None
    return f"{PLACEHOLDER};{info.mime_type};{info.width}x{info.height}"


def image_for(placeholder: str) -> bytes | None:
    """An image of the placeholder's format and size (None if ``placeholder`` is not one)."""
    m = _PLACEHOLDER_RE.match(placeholder)
    if m is None or m[1] not in _FORMATS:
        return None
    return placeholder_image(int(m[2]), int(m[3]), seed=7, fmt=_FORMATS[m[1]])


def scrub_url(text: str) -> str:
    """Every URL in ``text`` without its query and fragment."""
    return _URL_RE.sub(lambda m: m["base"] + ("?scrubbed" if m["rest"] else ""), text)


def scrub_text(text: str) -> str:
    if len(text) >= _B64_MIN and " " not in text:
        image = _decoded_image(text)
        if image is not None:
            return image
    return redact(scrub_url(text))


def _decoded_image(text: str) -> str | None:
    head = text.split(",", 1)[1] if text.startswith("data:") and "," in text else text
    try:
        data = base64.b64decode(head, validate=True)
    except (binascii.Error, ValueError):
        return None
    return placeholder_for(data)


def scrub(value: Any) -> Any:
    """A copy of a JSON value with images, URLs' queries and secrets removed."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            secret = isinstance(item, str) and _SECRET_KEYS.search(str(key)) is not None
            out[redact(str(key))] = MASK if secret else scrub(item)
        return out
    return value


def expand(value: Any, *, base64_images: bool = True) -> Any:
    """The inverse for replay: placeholders become real images (base64 text in JSON)."""
    if isinstance(value, str):
        image = image_for(value)
        if image is None:
            return value
        return base64.b64encode(image).decode("ascii") if base64_images else value
    if isinstance(value, list):
        return [expand(v) for v in value]
    if isinstance(value, dict):
        return {k: expand(v) for k, v in value.items()}
    return value


#: Request fields that hold the user's prompt (kept only with ``include_prompt=True``).
PROMPT_FIELDS = frozenset({"prompt", "negative_prompt"})


def request_shape(body: Any, *, include_prompt: bool) -> Any:
    """The request body's shape: options kept, prompts dropped unless opted in, images as
    placeholders, secrets masked."""
    if not isinstance(body, dict):
        return None
    shape = {k: v for k, v in body.items() if include_prompt or k not in PROMPT_FIELDS}
    if not include_prompt and "contents" in shape:  # Gemini: text parts are the prompt
        shape["contents"] = [_without_text(c) for c in shape["contents"]] \
            if isinstance(shape["contents"], list) else None
    return scrub(shape)


def _without_text(content: Any) -> Any:
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        return content
    parts = [p if not (isinstance(p, dict) and "text" in p) else {"text": "<prompt not kept>"}
             for p in content["parts"]]
    return {**content, "parts": parts}
