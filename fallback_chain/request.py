"""``ImageRequest``: what the caller wants, validated once, before any provider is called."""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import RequestValidationError
from .imaging import InvalidImageError, image_size, inspect_image

Quality = Literal["draft", "standard", "final"]
OutputFormat = Literal["png", "jpeg", "webp"]
Background = Literal["auto", "transparent", "opaque"]
SizeMatch = Literal["nearest", "exact"]

#: The longest prompt any supported vendor accepts (GPT Image: 32,000 characters).
MAX_PROMPT_CHARS = 32_000
MAX_N = 10
MAX_EDIT_IMAGES = 16
MAX_EDIT_IMAGE_BYTES = 50 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 64, 8192

_PIXELS = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")
_RATIO = re.compile(r"^\s*(\d{1,3})\s*:\s*(\d{1,3})\s*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SIZE_HELP = "use 'WxH' in pixels (e.g. '1024x1024'), an aspect ratio (e.g. '16:9'), or 'auto'"


class Turn(BaseModel):
    """One earlier turn of a conversation: what the user said (and showed), or what the model
    answered (``role="model"``, its image). Sessions fill ``ImageRequest.history`` with these
    when the previous step ran on Gemini, which takes the conversation natively; every other
    provider ignores the history and edits ``ImageRequest.images``."""

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64",
                              val_json_bytes="base64")

    role: Literal["user", "model"]
    text: str | None = None
    images: tuple[bytes, ...] = ()

    def __repr_args__(self) -> Any:
        yield "role", self.role
        yield "text", self.text
        yield "images", f"<{len(self.images)} image(s)>"


class ImageRequest(BaseModel):
    """One request for images. Construction validates everything; invalid input raises
    :class:`~fallback_chain.errors.RequestValidationError` naming each bad field.

    ``quality`` is a tier that each provider maps to its own settings: ``draft`` (cheapest),
    ``standard``, ``final`` (best). ``size_match="exact"`` skips providers that cannot produce the
    requested size; ``"nearest"`` (default) lets them deliver their closest supported size.
    ``exact_prompt=True`` uses only providers that do not rewrite prompts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64",
                              val_json_bytes="base64")

    prompt: str
    size: str = "auto"
    quality: Quality = "standard"
    n: int = 1
    output_format: OutputFormat = "png"
    background: Background = "auto"
    negative_prompt: str | None = None
    seed: int | None = None
    images: tuple[bytes, ...] = ()
    #: Images a provider may use as a reference for a new image (a draft for its final):
    #: sent only to providers whose capabilities say ``reference_image``, dropped (and the
    #: attempt says so) for the others, which still serve the request.
    reference_images: tuple[bytes, ...] = ()
    mask: bytes | None = None
    exact_prompt: bool = False
    size_match: SizeMatch = "nearest"
    # a factory: a ``{}`` default would be deep-copied for every request
    metadata: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = None
    user: str | None = None
    project: str | None = None
    #: Earlier turns of a conversation (see :class:`Turn`); read by Gemini only.
    history: tuple[Turn, ...] = ()

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _translate(exc) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> ImageRequest:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise _translate(exc) from None

    # --------------------------------------------------------------------------- validators

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty or whitespace")
        return _check_text(v)

    @field_validator("negative_prompt")
    @classmethod
    def _negative_prompt(cls, v: str | None) -> str | None:
        return None if v is None else _check_text(v)

    @field_validator("n", "seed", mode="before")
    @classmethod
    def _not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool):  # pydantic would take True as 1
            raise ValueError(f"must be an integer, not {v!r}")
        return v

    @field_validator("n")
    @classmethod
    def _n(cls, v: int) -> int:
        if not 1 <= v <= MAX_N:
            raise ValueError(f"must be between 1 and {MAX_N} (got {v})")
        return v

    @field_validator("size")
    @classmethod
    def _size(cls, v: str) -> str:
        return _normal_size(v)

    @field_validator("seed")
    @classmethod
    def _seed(cls, v: int | None) -> int | None:
        if v is not None and not 0 <= v < 2**32:
            raise ValueError(f"must be between 0 and {2**32 - 1} (got {v})")
        return v

    @field_validator("images", "reference_images", mode="before")
    @classmethod
    def _read_paths(cls, v: Any) -> Any:
        if isinstance(v, bytes | Path | str):
            v = (v,)
        return tuple(_read_image_arg(x) for x in v) if isinstance(v, list | tuple) else v

    @field_validator("mask", mode="before")
    @classmethod
    def _read_mask(cls, v: Any) -> Any:
        return None if v is None else _read_image_arg(v)

    @field_validator("images", "reference_images")
    @classmethod
    def _images(cls, v: tuple[bytes, ...]) -> tuple[bytes, ...]:
        if len(v) > MAX_EDIT_IMAGES:
            raise ValueError(f"at most {MAX_EDIT_IMAGES} images (got {len(v)})")
        for i, data in enumerate(v):
            _check_image(data, f"image {i}")
        return v

    @field_validator("mask")
    @classmethod
    def _mask(cls, v: bytes | None) -> bytes | None:
        if v is not None:
            _check_image(v, "mask")
        return v

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, v: dict[str, Any]) -> dict[str, Any]:
        if not v:
            return v
        try:
            json.dumps(v)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be JSON-serialisable ({exc})") from None
        return v

    @field_validator("idempotency_key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None and not (1 <= len(v) <= 255 and v.isprintable()):
            raise ValueError("must be 1–255 printable characters")
        return v

    @field_validator("user", "project")
    @classmethod
    def _tenant(cls, v: str | None) -> str | None:
        if v is not None and not (1 <= len(v) <= 255 and v.isprintable() and v.strip() == v):
            raise ValueError("must be 1–255 printable characters, without surrounding spaces")
        return v

    @model_validator(mode="after")
    def _cross_checks(self) -> ImageRequest:
        if self.background == "transparent" and self.output_format == "jpeg":
            raise ValueError("background='transparent' needs output_format 'png' or 'webp'")
        if self.mask is not None:
            if not self.images:
                raise ValueError("a mask needs at least one image to edit (images=[...])")
            mask, first = image_size(self.mask), image_size(self.images[0])  # both verified
            if mask != first:
                raise ValueError(
                    f"mask is {mask[0]}x{mask[1]} but the image is {first[0]}x{first[1]}; "
                    "they must be the same size")
        return self

    # ------------------------------------------------------------------------------ views

    @property
    def pixels(self) -> tuple[int, int] | None:
        """``(width, height)`` when the size was given in pixels, else ``None``."""
        return _size_views(self.size)[0]

    @property
    def aspect_ratio(self) -> tuple[int, int] | None:
        """The requested aspect ratio, reduced (``1536x1024`` → ``(3, 2)``); ``None`` for auto."""
        return _size_views(self.size)[1]

    @property
    def is_edit(self) -> bool:
        return bool(self.images)

    def __repr_args__(self) -> Any:
        for key, value in super().__repr_args__():
            if key in ("images", "reference_images") and value:
                yield key, f"<{len(value)} image(s)>"
            elif key == "history" and value:
                yield key, f"<{len(value)} turn(s)>"
            elif key == "mask" and value is not None:
                yield key, f"<mask {len(value)} bytes>"
            else:
                yield key, value


@lru_cache(maxsize=256)
def _normal_size(v: str) -> str:
    """The size as stored (``"1024x1024"``, ``"16:9"``, ``"auto"``), or ``ValueError``.
    Requests use a handful of sizes: after the first, this is a cache hit (errors are not
    cached)."""
    v = v.strip().lower()
    if v == "auto":
        return v
    if m := _PIXELS.match(v):
        w, h = int(m[1]), int(m[2])
        if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
            raise ValueError(
                f"{w}x{h} is out of range; each side must be {MIN_SIDE}–{MAX_SIDE} pixels")
        return f"{w}x{h}"
    if m := _RATIO.match(v):
        w, h = int(m[1]), int(m[2])
        if not (w and h) or max(w / h, h / w) > 8:
            raise ValueError(f"aspect ratio {w}:{h} is out of range (1:8 to 8:1)")
        return f"{w}:{h}"
    raise ValueError(f"{v!r} is not a size; {_SIZE_HELP}")


@lru_cache(maxsize=256)
def _size_views(size: str) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """``(pixels, reduced aspect ratio)`` of a validated ``size`` string. Read from the size
    when asked (requests use a handful of sizes, so this is a cache hit), not stored in every
    request: private attributes cost each construction their setup."""
    if m := _PIXELS.match(size):
        w, h = int(m[1]), int(m[2])
        g = math.gcd(w, h)
        return (w, h), (w // g, h // g)
    if m := _RATIO.match(size):
        w, h = int(m[1]), int(m[2])
        g = math.gcd(w, h)
        return None, (w // g, h // g)
    return None, None


def _check_text(v: str) -> str:
    """A prompt every provider can be sent: not longer than any accepts, valid Unicode (a
    lone surrogate, e.g. from a mis-decoded file, cannot be encoded for the wire) and free of
    control characters (a NUL or an escape sequence is never part of a brief, and would reach
    logs, terminals and sidecars)."""
    if len(v) > MAX_PROMPT_CHARS:
        raise ValueError(
            f"is {len(v):,} characters; the longest any provider accepts is "
            f"{MAX_PROMPT_CHARS:,}")
    try:
        if not v.isascii():  # ASCII has no surrogates; encoding would copy the prompt
            v.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"is not valid Unicode text: {v[exc.start]!r} at character {exc.start + 1} is a "
            "lone surrogate (was the text decoded with the wrong encoding?)") from None
    if m := _CONTROL.search(v):
        raise ValueError(f"contains the control character U+{ord(m[0]):04X} at character "
                         f"{m.start() + 1} (only tab and line breaks are text)")
    return v


def _read_image_arg(v: Any) -> Any:
    if isinstance(v, str | Path) and not isinstance(v, bytes):
        path = Path(v)
        if not path.is_file():
            raise ValueError(f"{str(v)[:200]!r} is not a file")
        if path.stat().st_size > MAX_EDIT_IMAGE_BYTES:
            raise ValueError(f"{path.name} is larger than {MAX_EDIT_IMAGE_BYTES // 2**20} MB")
        return path.read_bytes()
    if isinstance(v, bytearray | memoryview):
        return bytes(v)
    return v


def _check_image(data: bytes, what: str) -> Any:
    if len(data) > MAX_EDIT_IMAGE_BYTES:
        raise ValueError(f"{what} is {len(data) / 2**20:.1f} MB; the limit is "
                         f"{MAX_EDIT_IMAGE_BYTES // 2**20} MB")
    try:
        return inspect_image(data)
    except InvalidImageError as exc:
        raise ValueError(f"{what} is not a usable image: {exc}") from None


def _translate(exc: ValidationError) -> RequestValidationError:
    problems: list[tuple[str, str]] = []
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a field of ImageRequest"
        elif err["type"] == "missing":
            msg = "is required"
        elif err["type"] in _OWN_WORDS:
            msg = f"{_own_words(err)} (got {_short(err.get('input'))})"
        problems.append((field, msg))
    return RequestValidationError(problems)


#: pydantic's error types that get our own wording (the one every field problem uses:
#: ``FIELD: must ... (got VALUE)``).
_OWN_WORDS = {"literal_error": "", "enum": "", "int_parsing": "must be a whole number",
              "int_type": "must be a whole number", "int_from_float": "must be a whole number",
              "string_type": "must be text", "bool_parsing": "must be true or false",
              "bool_type": "must be true or false"}


def _own_words(err: Any) -> str:
    import re

    fixed = _OWN_WORDS[err["type"]]
    if fixed:
        return fixed
    choices = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
    return f"must be one of {', '.join(choices)}" if choices else "is not an allowed value"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
