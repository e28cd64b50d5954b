"""State shared by the vendor APIs of one emulator: keys, clock, faults, log, files, ids."""

from __future__ import annotations

import random
import struct
import threading
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fallback_chain.clock import SYSTEM_CLOCK, Clock
from fallback_chain.imaging import MIME_BY_FORMAT, placeholder_image, seed_for

from .faults import FaultEngine, vendors
from .log import RequestLog


class IdSource:
    """Request ids, generation ids and URL tokens from a seeded generator (reproducible)."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._rng = random.Random(f"ids/{seed}")

    def reset(self) -> None:
        with self._lock:
            self._rng = random.Random(f"ids/{self._seed}")

    def hex(self, nbytes: int = 16) -> str:
        with self._lock:
            return self._rng.getrandbits(nbytes * 8).to_bytes(nbytes, "big").hex()

    def uuid(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))


@dataclass(frozen=True, slots=True)
class ImageRecipe:
    """How to draw an image on demand (the store keeps recipes, not bytes)."""

    width: int
    height: int
    seed: int
    fmt: str = "png"
    alpha: bool = False
    corrupt: bool = False
    blank: bool = False  # one flat colour (the ``blank_image`` fault)

    @property
    def mime_type(self) -> str:
        return MIME_BY_FORMAT[self.fmt]

    def render(self) -> bytes:
        if self.blank:
            return _flat_image(self.width, self.height, self.fmt)
        data = placeholder_image(self.width, self.height, seed=self.seed, fmt=self.fmt,
                                 alpha=self.alpha)
        return data[: len(data) // 2] if self.corrupt else data


@lru_cache(maxsize=16)
def _flat_image(width: int, height: int, fmt: str) -> bytes:
    """An image of one flat colour: a PNG written with zlib alone (fast, no Pillow import);
    other formats converted with Pillow."""
    row = b"\x00" + b"\xec" * (3 * width)  # filter byte 0, then light grey RGB pixels
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(row * height, 6)) + chunk(b"IEND", b""))
    if fmt == "png":
        return png
    import io

    from PIL import Image

    out = io.BytesIO()
    with Image.open(io.BytesIO(png)) as img:
        img.save(out, format={"jpeg": "JPEG", "webp": "WEBP", "gif": "GIF"}.get(fmt, "PNG"))
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class StoredFile:
    recipe: ImageRecipe
    vendor: str
    model: str | None
    expires_at: float
    expired_status: int


class FileStore:
    """Images served by URL (DALL-E ``url`` responses, Leonardo results) that expire."""

    def __init__(self, clock: Clock, ids: IdSource, max_files: int = 50_000) -> None:
        self._clock = clock
        self._ids = ids
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()
        self._max = max_files

    def put(self, recipe: ImageRecipe, *, vendor: str, model: str | None, ttl_s: float,
            expired_status: int = 403) -> str:
        """Store ``recipe``; return the URL token."""
        token = self._ids.hex(12)
        with self._lock:
            if len(self._files) >= self._max:  # drop the oldest (dicts keep insertion order)
                self._files.pop(next(iter(self._files)))
            self._files[token] = StoredFile(recipe, vendor, model, self._clock.now() + ttl_s,
                                            expired_status)
        return token

    def get(self, token: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(token)

    def is_expired(self, stored: StoredFile) -> bool:
        return self._clock.now() >= stored.expires_at

    def clear(self) -> None:
        with self._lock:
            self._files.clear()


def normalise_keys(api_keys: str | Mapping[str, str] | None) -> dict[str, str | None]:
    """One key for all vendors, or a key per vendor; ``None`` accepts any non-empty key."""
    if api_keys is None or isinstance(api_keys, str):
        return dict.fromkeys(vendors(), api_keys)
    unknown = set(api_keys) - set(vendors())
    if unknown:
        raise ValueError(f"api_keys: unknown vendors {sorted(unknown)}")
    return {v: api_keys.get(v) for v in vendors()}


@dataclass
class EmulatorState:
    """Everything the route handlers share.

    ``jobs`` (Leonardo generations) and ``files`` (images behind URLs) are bounded: past
    ``max_jobs`` / ``max_files`` the oldest is forgotten (a poll of it answers
    ``generations_by_pk: null``, its URL 404), so a long-running emulator stays flat.
    """

    api_keys: dict[str, str | None]
    faults: FaultEngine
    clock: Clock = SYSTEM_CLOCK
    log: RequestLog = field(default_factory=RequestLog)
    ids: IdSource = field(default_factory=IdSource)
    files: FileStore = field(init=False)
    jobs: dict[str, Any] = field(default_factory=dict)
    jobs_lock: threading.Lock = field(default_factory=threading.Lock)
    max_jobs: int = 50_000
    max_files: int = 50_000
    #: Draw a new placeholder on every call (per vendor), as the real services do when no seed
    #: is given; off by default, so the same prompt always gives the same bytes.
    vary_images: bool = False
    #: What other parts keep and a reset forgets too (the batch jobs register here), so
    #: ``Emulator.reset()`` and ``POST /_emulator/reset`` forget the same things.
    resets: list[Callable[[], None]] = field(default_factory=list)
    _image_calls: dict[str, int] = field(default_factory=dict)
    _image_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.max_jobs < 1 or self.max_files < 1:
            raise ValueError("max_jobs and max_files must be >= 1")
        self.files = FileStore(self.clock, self.ids, self.max_files)

    def image_seed(self, vendor: str, base: int) -> int:
        """The seed of the placeholder a ``vendor`` call draws from ``base`` (derived from the
        prompt): ``base`` itself, or with ``vary_images`` a seed unique to this vendor and
        call, so each vendor's images differ from the others' and from run to run."""
        if not self.vary_images:
            return base
        with self._image_lock:
            n = self._image_calls[vendor] = self._image_calls.get(vendor, 0) + 1
        return seed_for(f"{vendor}/{base}/{n}")

    def add_job(self, job_id: str, job: Any) -> None:
        """Keep ``job``; forget the oldest one past ``max_jobs`` (dicts keep insertion order)."""
        with self.jobs_lock:
            while len(self.jobs) >= self.max_jobs:
                self.jobs.pop(next(iter(self.jobs)))
            self.jobs[job_id] = job

    def key_ok(self, vendor: str, presented: str | None) -> bool:
        expected = self.api_keys.get(vendor)
        if not presented:
            return False
        return expected is None or presented == expected

    def reset(self) -> None:
        """Forget requests, jobs and files; restart fault scripts and id streams."""
        self.log.clear()
        self.files.clear()
        with self.jobs_lock:
            self.jobs.clear()
        self.faults.reset()
        self.ids.reset()
        for forget in self.resets:
            forget()
