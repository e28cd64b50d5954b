"""Serving one item: skip it if done, recover it if its files exist, share an identical
request's images, take them from the cache, or generate them, then write them.

A generated result is written by a task of its own, started the moment the chain returns (a
Ctrl-C does not cancel it), so the worker can take its next item at once; the pool waits while
``max_writes`` results are being written. Order of writes for a delivered item: each image
(atomically), then the sidecar (atomically), then the manifest line. So a sidecar implies its
images, and a manifest line implies both; resume treats an item with a readable sidecar as
done even when its manifest line is missing.

Identical requests (same generation key): the first item to arrive is the *leader*; the others
wait for it (or, arriving later, find it in the index), then copy its files (server-side on
object stores). A request refused on content grounds, or invalid, is refused for its identical
items too in this run (it would be refused again); after any other failure the next identical
item tries itself. A re-run tries a refused request once more.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ChainError
from ..secrets import redact
from .naming import image_name, safe_name, sidecar_name
from .sidecar import failure_details, result_sidecar, shared_sidecar
from .storage import IMAGE_SUFFIXES

if TYPE_CHECKING:
    from ..chain import Chain
    from ..request import ImageRequest
    from ..results import ChainResult
    from ..validators import Validator
    from .cache import ResultCache
    from .failures import FailuresWriter
    from .index import BatchIndex
    from .items import BatchItem
    from .manifest import Manifest
    from .stats import BatchStats
    from .storage import Storage

log = logging.getLogger("fallback_chain.batch")

#: Failures that identical requests share instead of trying again.
SHARED_FAILURES = frozenset({"content_policy", "invalid_request"})


@dataclass(frozen=True, slots=True)
class Delivered:
    sidecar: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failed:
    item_id: str
    reason: str
    error: str


@dataclass(frozen=True, slots=True)
class _Writing:
    """A generated result being written (the item is done when the task is)."""

    task: asyncio.Future[Delivered | Failed | None]


class FatalStorageError(Exception):
    """Writing outputs failed: the batch stops rather than pay for images it cannot keep."""


Outcome = Delivered | Failed | None  # None: the leader gave up (cancelled, storage failure)


class ItemServer:
    def __init__(self, chain: Chain, storage: Storage, manifest: Manifest, index: BatchIndex,
                 stats: BatchStats, failures: FailuresWriter, cache: ResultCache | None, *,
                 source: str, retry_failed: bool,
                 on_failure: Callable[[str], None] | None = None,
                 on_fatal: Callable[[FatalStorageError], None] | None = None,
                 max_writes: int = 64) -> None:
        self.chain = chain
        self._named: dict[str, Validator] = {}  # the rows' named validators, shared
        self.storage = storage
        self.manifest = manifest
        self.index = index
        self.stats = stats
        self.failures = failures
        self.cache = cache
        self.source = source
        self.retry_failed = retry_failed
        self.probe = True  # look for files of items the manifest does not list
        self.on_failure = on_failure
        self.on_fatal = on_fatal
        self.max_writes = max_writes
        self.live: set[str] = set()  # request ids (item names) being generated
        self._leaders: dict[str, asyncio.Future[Outcome]] = {}
        self._writes: set[asyncio.Future[Any]] = set()

    # ------------------------------------------------------------------ entry point

    async def serve(self, item: BatchItem) -> None:
        # Index look-ups only where they can find something: an id's state comes from the
        # manifest of earlier runs (ids are unique in an input); a key was delivered or refused
        # before only if an earlier row had it, or an earlier run delivered something.
        state = self.index.state(item.id) if self.index.loaded_items else None
        if state is not None and state.status == "delivered":
            self.stats.skipped += 1
            return
        if state is not None and not self.retry_failed:
            self._record_failure(item, state.reason or "error",
                                 f"{state.error} (earlier run; not retried)", {}, manifest=False)
            return
        if await self._recover(item):
            return
        while True:
            leader = self._leaders.get(item.key)
            if leader is None:
                break
            outcome = await asyncio.shield(leader)
            if isinstance(outcome, Delivered):
                if await self._share(item, outcome.sidecar, kind="batch"):
                    return
            elif isinstance(outcome, Failed) and outcome.reason in SHARED_FAILURES:
                self._share_failure(item, outcome.item_id, outcome.reason, outcome.error)
                return
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._leaders[item.key] = future
        led: Outcome | _Writing = None
        try:
            led = await self._lead(item)
        finally:
            if isinstance(led, _Writing):  # identical items wait until the files exist
                led.task.add_done_callback(lambda task: self._settle(item.key, future, task))
            else:
                self._release(item.key, future, led)

    def _settle(self, key: str, future: asyncio.Future[Outcome],
                task: asyncio.Future[Outcome]) -> None:
        outcome: Outcome = None
        if not task.cancelled():
            error = task.exception()
            if error is None:
                outcome = task.result()
            elif isinstance(error, FatalStorageError | OSError):  # OSError: the manifest's
                if self.on_fatal is not None:
                    self.on_fatal(error if isinstance(error, FatalStorageError)
                                  else FatalStorageError(str(error)))
            else:
                log.error("writing a result failed: %r", error)
        self._release(key, future, outcome)

    def _release(self, key: str, future: asyncio.Future[Outcome], outcome: Outcome) -> None:
        if self._leaders.get(key) is future:
            del self._leaders[key]
        if not future.done():
            future.set_result(outcome)

    async def room_to_write(self) -> None:
        """Wait while ``max_writes`` results are being written (the pool calls this before
        taking the next item, so a slow disk or bucket slows generation down instead of
        piling results up in memory)."""
        while len(self._writes) >= self.max_writes:
            await asyncio.wait(list(self._writes), return_when=asyncio.FIRST_COMPLETED)

    def fail_unexpectedly(self, item: BatchItem, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        self._record_failure(item, "error", message, {"error": message})

    async def drain(self) -> None:
        """Wait for the results still being written."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    # ------------------------------------------------------------------ the leader

    async def _lead(self, item: BatchItem) -> Outcome | _Writing:
        refused = self.index.refused(item.key) if item.repeat and self.index.refusals else None
        if refused is not None:
            self._share_failure(item, *refused)
            return None
        found = (self.index.delivered(item.key)
                 if item.repeat or self.index.loaded_delivered else None)
        if found is None and item.repeat:  # the first row with this key, if it delivered
            first = self.index.first_with_key(item.key)
            if first is not None and first != item.id:
                found = (first, sidecar_name(safe_name(first)))
        if found is not None:
            original = await self._read_sidecar(found[1])
            if (original is not None and original.get("id") == found[0]
                    and await self._share(item, original, kind="batch")):
                return Delivered(original)
        if self.cache is not None:
            entry = await self.cache.get(item.key)
            if entry is not None and await self._share(item, entry, kind="cache"):
                return Delivered(entry)
        return await self._generate(item)

    def _validators(self, request: ImageRequest) -> tuple[Validator, ...]:
        """The row's ``validators`` column: one instance per name for the whole batch (so
        ``not_duplicate`` compares with every earlier image of the batch)."""
        names = request.metadata.get("validators") or ()
        if not names:
            return ()
        from ..validators import resolve

        for name in names:
            if name not in self._named:
                self._named[name] = resolve([name])[0]
        return tuple(self._named[n] for n in names)

    async def _generate(self, item: BatchItem) -> Outcome | _Writing:
        request = item.request.model_copy(update={"idempotency_key": item.name})
        started = time.time()
        self.live.add(item.name)
        try:
            result = await self.chain.agenerate(request, validators=self._validators(request))
        except ChainError as exc:
            details = failure_details(exc)
            self._record_failure(item, details["reason"], str(exc), details)
            if details["reason"] in SHARED_FAILURES:
                self.index.add_refused(item.key, item.id, details["reason"], str(exc))
            return Failed(item.id, details["reason"], str(exc))
        except Exception as exc:  # a bug below must not stop the batch
            log.exception("item %s: the chain raised %s", item.id, type(exc).__name__)
            message = f"{type(exc).__name__}: {exc}"
            self._record_failure(item, "error", message, {"error": message})
            return None
        finally:
            self.live.discard(item.name)
        # The vendor has answered (and billed): the result is written by a task of its own,
        # which a Ctrl-C does not cancel, while this worker goes on to its next item.
        write = asyncio.ensure_future(self._deliver(item, result, started))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        return _Writing(write)

    async def _deliver(self, item: BatchItem, result: ChainResult, started: float) -> Outcome:
        n = len(result.images)
        files = [image_name(item.name, i, n, im.extension) for i, im in enumerate(result.images)]
        sidecar = result_sidecar(item, result, files, chain=self.chain.name,
                                 source=self.source, started=started, finished=time.time())
        writes = [(image.data, file) for file, image in zip(files, result.images, strict=True)]
        writes.append((_json(sidecar), sidecar_name(item.name)))  # last: it marks them whole
        try:
            await self.storage.write_all(writes)
        except Exception as exc:
            self._record_failure(item, "storage_error", f"writing the result failed: {exc}",
                                 {"cost_usd": result.cost_usd})
            raise FatalStorageError(f"cannot write to {self.storage.display()}: {exc}") from exc
        self._record_delivery(item, sidecar, "generated")
        self.stats.generated += 1
        self.stats.latency.add(result.latency_s)
        if self.cache is not None:
            try:
                await self.cache.put(item.key, sidecar, result.images)
            except Exception as exc:
                log.warning("could not store %s in the cache: %s", item.id, exc)
        return Delivered(sidecar)

    # ------------------------------------------------------------------ without a call

    async def _recover(self, item: BatchItem) -> bool:
        """An item whose sidecar and images exist (its manifest line was lost) is done. One
        without a (usable) sidecar is not: images an earlier, killed attempt at it wrote are
        removed, so that the item's new images (perhaps in another format, from another
        provider) are the only ones under its name."""
        if not self.probe:
            return False
        name = sidecar_name(item.name)
        if await self.storage.exists(name):
            sidecar = await self._read_sidecar(name)
            if sidecar is not None and sidecar.get("id") != item.id:
                return False  # another item's name (ids that differ only in case): not ours
            if sidecar is not None and await self._images_exist(sidecar):
                self._record_delivery(item, sidecar, "recovered")
                self.stats.recovered += 1
                return True
        await self._remove_leftovers(item)
        return False

    async def _images_exist(self, sidecar: dict[str, Any]) -> bool:
        for image in sidecar.get("images") or [None]:
            if not isinstance(image, dict) or not await self.storage.exists(str(image["file"])):
                return False
        return True

    async def _remove_leftovers(self, item: BatchItem) -> None:
        n = item.request.n
        names = [image_name(item.name, i, n, ext) for i in range(n) for ext in IMAGE_SUFFIXES]
        try:
            removed = await self.storage.delete_names(names)
        except Exception as exc:
            raise FatalStorageError(f"cannot write to {self.storage.display()}: {exc}") from exc
        if removed:
            log.info("item %s: removed %s, left by an earlier run that was stopped before "
                     "its sidecar", item.id, ", ".join(removed))

    async def _share(self, item: BatchItem, original: dict[str, Any], *, kind: str) -> bool:
        """Copy ``original``'s images (another item's, or a cache entry's) as this item's."""
        started = time.time()
        images = original.get("images") or []
        files = [image_name(item.name, i, len(images), "." + str(im["file"]).rsplit(".", 1)[-1])
                 for i, im in enumerate(images)]
        try:
            for file, im in zip(files, images, strict=True):
                if kind == "cache":
                    assert self.cache is not None
                    data = await self.cache.image(item.key, str(im["file"]))
                    await self.storage.write(data, file)
                elif file != im["file"]:
                    await self.storage.copy((str(im["file"]),), (file,))
        except (FileNotFoundError, KeyError, ValueError) as exc:
            log.info("item %s: cannot reuse %s images (%s); generating", item.id, kind, exc)
            if kind == "batch":
                self.index.forget_delivered(item.key)
            return False
        sidecar = shared_sidecar(item, original, files, kind=kind, chain=self.chain.name,
                                 source=self.source, started=started, finished=time.time())
        try:
            await self.storage.write(_json(sidecar), sidecar_name(item.name))
        except Exception as exc:
            raise FatalStorageError(f"cannot write to {self.storage.display()}: {exc}") from exc
        self._record_delivery(item, sidecar, kind)
        if kind == "cache":
            self.stats.from_cache += 1
        else:
            self.stats.shared += 1
        return True

    async def _read_sidecar(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads(await self.storage.read(name))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    # ------------------------------------------------------------------ for the vendor batch

    def is_delivered(self, item_id: str) -> bool:
        """Whether an earlier run delivered ``item_id`` (its manifest says so)."""
        state = self.index.state(item_id)
        return state is not None and state.status == "delivered"

    async def recover(self, item: BatchItem) -> bool:
        """Record ``item`` as delivered if its sidecar and images are already written (a run
        killed before its manifest line); see :meth:`_recover`."""
        return await self._recover(item)

    def record_delivery(self, item: BatchItem, sidecar: dict[str, Any], how: str) -> None:
        """Record an item whose images and sidecar were written elsewhere (the vendor batch)."""
        self._record_delivery(item, sidecar, how)

    def record_failure(self, item: BatchItem, reason: str, error: str,
                       details: dict[str, Any], *, manifest: bool = True) -> None:
        """Record an item that failed outside the chain (manifest line, failures file,
        summary); ``details`` as :func:`~.sidecar.failure_details` gives them."""
        self._record_failure(item, reason, error, details, manifest=manifest)

    # ------------------------------------------------------------------ bookkeeping

    def _record_delivery(self, item: BatchItem, sidecar: dict[str, Any], how: str) -> None:
        files = [im["file"] for im in sidecar["images"]]
        name = sidecar_name(item.name)
        self.manifest.append({
            "type": "item", "id": item.id, "status": "delivered", "how": how, "key": item.key,
            "sidecar": name, "files": files, "provider": sidecar.get("provider"),
            "model": sidecar.get("model"), "cost_usd": sidecar.get("cost_usd", 0.0),
            "line": item.line, "at": sidecar.get("finished_at")})
        if item.repeat:  # the first row with a key is found through the input's keys
            self.index.add_delivered(item.key, item.id, name)
        self.stats.delivered += 1
        self.stats.images += len(files)

    def _share_failure(self, item: BatchItem, source_id: str, reason: str, error: str) -> None:
        self._record_failure(item, reason, f"{error} (as identical item {source_id})",
                             {"shared_from": source_id, "cost_usd": 0.0, "attempts": []})

    def _record_failure(self, item: BatchItem, reason: str, error: str,
                        details: dict[str, Any], *, manifest: bool = True) -> None:
        # the error may be any exception's text (a bug below, a storage failure): no key in
        # the manifest, the failures file or the progress messages
        error, details = redact(error), _scrub(details)
        if manifest:
            self.manifest.append({"type": "item", "id": item.id, "status": "failed",
                                  "key": item.key, "line": item.line,
                                  **details, "reason": reason, "error": error,
                                  "at": _now_iso()})
        self.stats.on_failed(reason)
        self.failures.write(item.row, item.id, error)
        if self.on_failure is not None:
            self.on_failure(f"failed: {item.id} (line {item.line}): {reason}: {error}")


def _scrub(value: Any) -> Any:
    """``value`` with every string in it (at any depth) passed through ``redact``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _json(value: dict[str, Any]) -> bytes:
    # compact: with ``indent`` the json module falls back to its pure-Python encoder
    return (json.dumps(value, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")


def _now_iso() -> str:
    from .sidecar import iso

    return iso(time.time())
