"""One item on a worker: done already? claim it, generate it, write it, record it, release it.

The steps, in order (each guards against a different way of paying twice):

1. the job's results hash has an outcome for the item: a redelivered message of an item
   already finished; acknowledge, do nothing;
2. the item's sidecar (with its images) is in the output: an earlier attempt wrote it (and
   died before recording); record ``recovered``;
3. take the claim (:mod:`.lease`); while another worker holds it, the task is retried after
   the lease's remaining time (:class:`Busy`). With the claim, look at storage once more (the
   holder before us may have finished a moment ago), then remove images a killed attempt left
   without a sidecar;
4. generate through the chain, the lease renewed in the background;
5. write the images, then the sidecar (atomically each, like a local batch), after checking
   that the claim is still ours; record ``delivered``; release the claim.

The time from the vendor's answer (4) to the sidecar written (5) is the window in which a
crash means paying twice: the next attempt finds no sidecar and generates again. It is measured
for every item and kept in the job's ``window`` list (:meth:`Jobs.add_window`).
"""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ..batch.naming import image_name, sidecar_name
from ..batch.sidecar import failure_details, result_sidecar
from ..batch.storage import IMAGE_SUFFIXES
from ..errors import ChainError
from ..secrets import redact
from .message import from_message

if TYPE_CHECKING:
    from ..batch.items import BatchItem
    from ..batch.storage import Storage
    from ..chain import Chain
    from ..results import ChainResult
    from ..validators import Validator
    from .jobs import JobSpec
    from .lease import Claim
    from .runtime import WorkerRuntime

log = logging.getLogger("fallback_chain.distributed")


class Busy(Exception):
    """Another worker holds the item's claim; try again in ``retry_in_s`` seconds."""

    def __init__(self, item_id: str, retry_in_s: float) -> None:
        super().__init__(f"item {item_id!r} is claimed by another worker")
        self.retry_in_s = retry_in_s


class ItemRunner:
    """Serves items for one worker process (thread-safe: one call per pool thread)."""

    def __init__(self, runtime: WorkerRuntime) -> None:
        self.rt = runtime
        self._named: dict[str, Validator] = {}

    def run(self, job_id: str, message: dict[str, Any]) -> str:
        """Serve one item; returns what happened (``done``, ``recovered``, ``delivered``,
        ``failed``). Raises :class:`Busy` while another worker holds the claim. Any other
        error (storage unreachable, a chain that cannot be built...) fails the item, so that
        ``batch --queue`` never waits for an outcome that will not come."""
        rt = self.rt
        spec = rt.jobs.spec(job_id)
        item = from_message(message)
        try:
            return self._run(spec, item)
        except Busy:
            raise
        except Exception as exc:
            log.exception("item %s failed unexpectedly", item.id)
            return self._failed(spec, item, "error", f"{type(exc).__name__}: {exc}", {})

    def _run(self, spec: JobSpec, item: BatchItem) -> str:
        rt = self.rt
        job_id = spec.job
        if rt.jobs.outcome(job_id, item.id) is not None:
            return "done"
        storage = rt.storage(spec)
        if rt.loop.run(stored_sidecar(storage, item)) is not None:
            return self._recovered(spec, item)
        claims = rt.claims(spec)
        claim = claims.acquire(item.name)
        if claim is None:
            raise Busy(item.id, claims.remaining_s(item.name) + 0.05)
        rt.renewer.add(claim)
        try:
            if rt.loop.run(stored_sidecar(storage, item)) is not None:
                return self._recovered(spec, item)
            rt.loop.run(_remove_leftovers(storage, item))
            return self._generate(spec, item, storage, claim)
        finally:
            rt.renewer.remove(claim)
            try:
                claim.release()
            except Exception as exc:  # it expires on its own
                log.warning("releasing the claim on %s failed: %s", item.id, exc)

    # ------------------------------------------------------------------ outcomes

    def _recovered(self, spec: JobSpec, item: BatchItem) -> str:
        self.rt.jobs.record(spec.job, item.id, {"status": "delivered", "how": "recovered",
                                                "worker": self.rt.hostname})
        return "recovered"

    def _failed(self, spec: JobSpec, item: BatchItem, reason: str, error: str,
                details: dict[str, Any]) -> str:
        outcome = {**details, "status": "failed", "how": reason, "reason": reason,
                   "error": redact(error), "line": item.line, "row": item.row,
                   "key": item.key, "worker": self.rt.hostname}
        self.rt.jobs.record(spec.job, item.id, json.loads(redact(json.dumps(outcome))))
        return "failed"

    # ------------------------------------------------------------------ generating

    def _generate(self, spec: JobSpec, item: BatchItem, storage: Storage, claim: Claim) -> str:
        rt = self.rt
        chain = rt.chain(spec.chain)
        request = item.request.model_copy(update={"idempotency_key": item.name})
        started = time.time()
        try:
            result = rt.loop.run(chain.agenerate(request, validators=self._validators(item)))
        except ChainError as exc:
            details = failure_details(exc)
            return self._failed(spec, item, details["reason"], str(exc), details)
        except Exception as exc:  # a bug below: this item fails, the worker goes on
            log.exception("item %s: the chain raised %s", item.id, type(exc).__name__)
            message = f"{type(exc).__name__}: {exc}"
            return self._failed(spec, item, "error", message, {})
        answered = time.monotonic()
        if not (rt.renewer.still_held(claim) and claim.held()):
            # paused past the lease: another worker may hold the item now. Keep what it wrote
            if rt.loop.run(stored_sidecar(storage, item)) is not None:
                log.warning("item %s: claim lost while generating; another worker delivered "
                            "it (this answer was paid twice)", item.id)
                return "done"
            log.warning("item %s: claim lost while generating; writing anyway", item.id)
        try:
            sidecar = rt.loop.run(_write(storage, chain, spec, item, result, started,
                                         rt.hostname))
        except Exception as exc:
            return self._failed(spec, item, "storage_error",
                                f"writing the result failed: {exc}",
                                {"cost_usd": result.cost_usd})
        rt.jobs.add_window(spec.job, time.monotonic() - answered)
        rt.jobs.record(spec.job, item.id, {"status": "delivered", "how": "generated",
                                           "worker": rt.hostname,
                                           "cost_usd": sidecar.get("cost_usd", 0.0)})
        return "delivered"

    def _validators(self, item: BatchItem) -> tuple[Validator, ...]:
        names = item.request.metadata.get("validators") or ()
        if not names:
            return ()
        from ..validators import resolve

        for name in names:
            if name not in self._named:
                self._named[name] = resolve([name])[0]
        return tuple(self._named[n] for n in names)


# ---------------------------------------------------------------------- storage steps

async def stored_sidecar(storage: Storage, item: BatchItem) -> dict[str, Any] | None:
    """The item's sidecar when it and every image it names are in storage."""
    name = sidecar_name(item.name)
    try:
        sidecar = json.loads(await storage.read(name))
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(sidecar, dict) or sidecar.get("id") != item.id:
        return None
    for image in sidecar.get("images") or [None]:
        if not isinstance(image, dict) or not await storage.exists(str(image["file"])):
            return None
    return sidecar


async def _remove_leftovers(storage: Storage, item: BatchItem) -> None:
    n = item.request.n
    names = [image_name(item.name, i, n, ext) for i in range(n) for ext in IMAGE_SUFFIXES]
    removed = await storage.delete_names(names)
    if removed:
        log.info("item %s: removed %s, left by an attempt stopped before its sidecar",
                 item.id, ", ".join(removed))


async def _write(storage: Storage, chain: Chain, spec: JobSpec, item: BatchItem,
                 result: ChainResult, started: float, worker: str) -> dict[str, Any]:
    n = len(result.images)
    files = [image_name(item.name, i, n, im.extension) for i, im in enumerate(result.images)]
    sidecar = result_sidecar(item, result, files, chain=chain.name, source=spec.source,
                             started=started, finished=time.time())
    sidecar["worker"] = worker
    writes = [(image.data, file) for file, image in zip(files, result.images, strict=True)]
    body = (json.dumps(sidecar, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass")
    writes.append((body, sidecar_name(item.name)))  # last: it marks the images whole
    await storage.write_all(writes)
    return sidecar

