"""A content-addressed cache of delivered images across runs (``--cache DIR``, a folder or an
fsspec URL): a request whose generation parameters (prompt, size, quality, n, seed, negative
prompt, format, background, size match, exact prompt) were delivered before is served from the
stored images instead of paying again. The chain and provider are not part of the key: any
provider's image for the same request is a hit.

Layout: ``KEY[:2]/KEY~N.ext`` for the images and ``KEY[:2]/KEY.json`` for what the sidecar of
the original said, written last, so an entry is complete exactly when its JSON exists.

Entries are verified when they are read: every image must match the ``sha256`` its entry
records and be a whole image (``inspect_image``), else the entry is a miss and the item is
generated again (an overwritten or truncated file is never delivered).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from ..imaging import InvalidImageError, inspect_image
from .storage import Storage

if TYPE_CHECKING:
    from ..results import GeneratedImage

_KEEP = ("id", "revised_prompt", "provider", "model", "size_delivered", "cost_usd",
         "attempts", "moderation", "finished_at")

#: Verified entries whose images are held between ``get`` and ``image`` (one per worker).
_HELD = 64


class ResultCache:
    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, *,
                 fsync: bool = True) -> None:
        self.storage = Storage(url, storage_options, fsync=fsync, threads=8, temp_depth=1)
        self.hits = 0
        self.stores = 0
        self._read: dict[str, dict[str, bytes]] = {}  # images verified by get(), by key

    async def prepare(self) -> None:
        await self.storage.prepare()

    async def get(self, key: str) -> dict[str, Any] | None:
        """The entry for ``key`` (its ``images`` name files readable with :meth:`image`)."""
        try:
            data = await self.storage.read(key[:2], f"{key}.json")
        except FileNotFoundError:
            return None
        try:
            entry = json.loads(data)
        except ValueError:
            return None
        if not isinstance(entry, dict) or not entry.get("images"):
            return None
        images = entry["images"]
        if not isinstance(images, list) or not all(isinstance(im, dict) for im in images):
            return None
        read: dict[str, bytes] = {}
        for meta in images:
            try:
                read[str(meta["file"])] = await self._verified(key, meta)
            except (FileNotFoundError, KeyError, ValueError):
                return None  # a bad entry is a miss: the item is generated again
        if len(self._read) >= _HELD:
            self._read.clear()  # entries read but never copied: stays bounded
        self._read[key] = read
        return entry

    async def image(self, key: str, file: str) -> bytes:
        """The bytes of ``file`` of the entry :meth:`get` just verified (read again, and
        checked again, if that entry is no longer at hand)."""
        kept = self._read.get(key)
        if kept is None or file not in kept:
            if await self.get(key) is None:
                raise ValueError(f"cache entry {key} is missing or does not verify")
            kept = self._read.get(key, {})
            if file not in kept:
                raise ValueError(f"cache entry {key} has no file {file!r}")
        data = kept.pop(file)
        if not kept:
            self._read.pop(key, None)
        return data

    async def _verified(self, key: str, meta: dict[str, Any]) -> bytes:
        """The bytes of one image of an entry; ``ValueError`` unless they hash to the recorded
        ``sha256`` and are a whole image of the recorded type."""
        file = str(meta["file"])
        if "/" in file or "\\" in file or not file.startswith(key):
            raise ValueError(f"cache entry {key} names a foreign file {file!r}")
        data = await self.storage.read(key[:2], file)
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise ValueError(f"cache file {file} does not match its recorded sha256")
        try:
            info = inspect_image(data)
        except InvalidImageError as exc:
            raise ValueError(f"cache file {file} is not a whole image: {exc}") from None
        if meta.get("mime_type") not in (None, info.mime_type):
            raise ValueError(f"cache file {file} is {info.mime_type}, not {meta['mime_type']}")
        return data

    async def put(self, key: str, sidecar: dict[str, Any],
                  images: list[GeneratedImage]) -> None:
        files = [f"{key}~{i + 1}{im.extension}" for i, im in enumerate(images)]
        for file, im in zip(files, images, strict=True):
            await self.storage.write(im.data, key[:2], file)
        entry = {k: sidecar.get(k) for k in _KEEP}
        entry["key"] = key
        entry["images"] = [{**meta, "file": f}
                           for f, meta in zip(files, sidecar["images"], strict=True)]
        await self.storage.write(json.dumps(entry, indent=1).encode(), key[:2], f"{key}.json")
        self.stores += 1

    def close(self) -> None:
        self.storage.close()
