"""What a chain hands back: images, one ``Attempt`` per try or skip, and the result."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from .imaging import EXTENSION_BY_MIME, UNKNOWN_EXTENSION, inspect_image
from .outcome import Outcome

ModelT = TypeVar("ModelT", bound=BaseModel)

CostSource = Literal["reported", "estimated", "none"]


def trusted(cls: type[ModelT], **values: Any) -> ModelT:
    """Build a model from values the router produced itself, skipping validation.

    The router's hot path builds several models per request; ``model_construct`` spends most of
    its time on per-field bookkeeping we do not need because every field is passed. The result
    is the same object a validated construction gives (a test checks this).

    This writes pydantic's own slots (``__pydantic_fields_set__`` and the others), which is
    reaching into the library; it stays because it measurably pays. ``benchmarks/
    bench_construct.py`` (2026-12-06, pydantic 2, shared 2-core machine): per ``Attempt``
    about 3.8 µs here against 8.0 µs validated and 15 µs with ``model_construct`` (slower
    than validating); and ``benchmarks/bench_router.py`` (CPU time, median of runs) goes
    from 17.6 to 22.0 µs per attempt on the success path (+25 %; +18 % on the 429 path)
    when the router's ``Attempt`` and ``ChainResult`` are validated instead.
    """
    obj = cls.__new__(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(values))
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


_set = object.__setattr__


class GeneratedImage(BaseModel):
    """One image. Built from bytes, which are verified; size and type are read from them.

    ``sha256`` (hex digest of ``data``) is computed on first use and then kept: most images
    are handed over without anyone asking for it, and hashing a large image costs more than
    verifying it. It is still part of ``model_dump()`` and the JSON form.
    """

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64", val_json_bytes="base64")

    data: bytes = Field(repr=False)
    mime_type: str
    width: int
    height: int

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, values: Any) -> Any:
        # Without ``sha256`` these are fresh bytes: verify them and read type and size. With it,
        # this is our own serialised form (``model_dump``), whose metadata is taken as it is.
        if isinstance(values, dict) and "data" in values and "sha256" not in values:
            return {**values, **_describe(bytes(values["data"]))}
        return values

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sha256(self) -> str:
        """Hex SHA-256 of ``data`` (computed once, on first use)."""
        cached: str | None = self.__dict__.get("sha256")
        if cached is None:
            cached = self.__dict__["sha256"] = hashlib.sha256(self.data).hexdigest()
        return cached

    @classmethod
    def from_bytes(cls, data: bytes) -> GeneratedImage:
        """Verify ``data`` (raises ``InvalidImageError`` if it is not a whole image) and wrap it."""
        info = inspect_image(data)
        return trusted(cls, data=data, mime_type=info.mime_type, width=info.width,
                       height=info.height)

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> GeneratedImage:
        copied = super().model_copy(update=update, deep=deep)
        if update and "data" in update:
            copied.__dict__.pop("sha256", None)  # other bytes: hash them afresh when asked
        return copied

    @property
    def extension(self) -> str:
        return EXTENSION_BY_MIME.get(self.mime_type, UNKNOWN_EXTENSION)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the image atomically (temporary file, then rename) and return the path.

        A path without a suffix gets the one matching ``mime_type``.
        """
        target = Path(path)
        if not target.suffix:
            target = target.with_suffix(self.extension)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def __repr__(self) -> str:
        return (f"GeneratedImage({self.mime_type}, {self.width}x{self.height}, "
                f"{len(self.data)} bytes, sha256={self.sha256[:12]}…)")


def _describe(data: bytes) -> dict[str, Any]:
    info = inspect_image(data)
    return {"mime_type": info.mime_type, "width": info.width, "height": info.height}


class Attempt(BaseModel):
    """One try of one provider, or one decision not to try it (``outcome`` says which).

    ``attempt`` counts tries per provider within a request, from 1. ``cost_usd`` is the settled
    cost: ``reported`` by the vendor, ``estimated`` from the price catalogue, or ``none`` when
    nothing was billed. ``estimated_cost_usd`` is what was expected before the call.
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    attempt: int
    outcome: Outcome
    status_code: int | None = None
    provider_code: str | None = None
    message: str | None = None
    started_at: datetime
    latency_s: float = 0.0
    cost_usd: float = 0.0
    cost_source: CostSource = "none"
    retry_after_s: float | None = None
    estimated_cost_usd: float | None = None


class ImageOrigin(BaseModel):
    """Which provider (and model) made one image of a result."""

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str


class ChainResult(BaseModel):
    """Images delivered, and the full story of how they were obtained.

    ``provider`` and ``model`` are the provider that completed the request. Usually it made
    every image; after a partial delivery (a provider delivered some of ``n`` images before
    failing) the images it delivered are kept and the next provider made the rest.
    ``origins`` says, image by image, who made it.
    """

    model_config = ConfigDict(frozen=True, ser_json_bytes="base64")

    images: list[GeneratedImage]
    provider: str
    model: str
    revised_prompt: str | None = None
    attempts: list[Attempt]
    cost_usd: float
    latency_s: float
    request_id: str = ""
    usage: dict[str, Any] | None = None
    origins: list[ImageOrigin] = Field(default_factory=list)

    @property
    def image(self) -> GeneratedImage:
        """The first image (a result always has at least the number asked for)."""
        return self.images[0]

    @property
    def failed_attempts(self) -> list[Attempt]:
        return [a for a in self.attempts if a.outcome is not Outcome.SUCCESS]
