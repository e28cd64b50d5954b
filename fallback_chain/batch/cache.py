"""A content-addressed cache of delivered images across runs (``--cache DIR``, a folder or an
fsspec URL): a request whose generation parameters (prompt, size, quality, n, seed, negative
prompt, format, background, size match, exact prompt) were delivered before is served from the
stored images instead of paying again. The chain and provider are not part of the key: any
provider's image for the same request is a hit.

Layout: ``KEY[:2]/KEY~N.ext`` for the images and ``KEY[:2]/KEY.json`` for what the sidecar of
the original said, written last, so an entry is complete exactly when its JSON exists.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .storage import Storage

if TYPE_CHECKING:
    from ..results import GeneratedImage

_KEEP = ("id", "revised_prompt", "provider", "model", "size_delivered", "cost_usd",
         "attempts", "moderation", "finished_at")


class ResultCache:
    def __init__(self, url: str, storage_options: dict[str, Any] | None = None, *,
                 fsync: bool = True) -> None:
        self.storage = Storage(url, storage_options, fsync=fsync, threads=8, temp_depth=1)
        self.hits = 0
        self.stores = 0

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
        return entry if isinstance(entry, dict) and entry.get("images") else None

    async def image(self, key: str, file: str) -> bytes:
        return await self.storage.read(key[:2], file)

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
