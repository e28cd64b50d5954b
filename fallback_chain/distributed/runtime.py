"""What one worker process holds for all its tasks: the event loop thread every generation runs
on, the chains (one per chain name, built on first use), the output storages, the Redis client
of the job records and claims, and the thread that renews the claims.

The Celery pool is a pool of threads; each task thread hands its generation to the one event
loop (:class:`~fallback_chain.loopthread.LoopThread`), so one process keeps ``--concurrency``
generations in flight on one connection pool per provider, and the chain's capacity limits hold
across the threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..loopthread import LoopThread
from .jobs import Jobs
from .lease import Claims, Renewer

if TYPE_CHECKING:
    from ..batch.storage import Storage
    from ..chain import Chain
    from .jobs import JobSpec

ChainFactory = Callable[[str | None], "Chain"]

#: A claim lives this long unless renewed (renewed every third of it).
LEASE_S = 30.0


def scope_of(out: str) -> str:
    """The claims' scope of an output: two jobs writing to one output share claims."""
    return hashlib.sha256(out.rstrip("/").encode()).hexdigest()[:16]


class WorkerRuntime:
    def __init__(self, queue: str, chain_factory: ChainFactory, *, lease_s: float = LEASE_S,
                 hostname: str | None = None, io_threads: int = 16) -> None:
        from redis import Redis

        self.queue = queue
        self.redis = Redis.from_url(queue)
        self.jobs = Jobs(self.redis)
        self.lease_s = lease_s
        self.hostname = hostname or f"{socket.gethostname()}:{os.getpid()}"
        self.io_threads = io_threads
        self.loop = LoopThread("fallback-chain-worker")
        self.renewer = Renewer(lease_s / 3)
        self._factory = chain_factory
        self._chains: dict[str | None, Chain] = {}
        self._storages: dict[str, Storage] = {}
        self._claims: dict[str, Claims] = {}
        self._lock = threading.Lock()

    def chain(self, name: str | None) -> Chain:
        with self._lock:
            chain = self._chains.get(name)
            if chain is None:
                chain = self._chains[name] = self._factory(name)
            return chain

    def warm_up(self) -> None:
        """Build the default chain and load the vendor SDKs and fsspec now, before the first
        item: a cold start inside a task would hold the interpreter while claims are young."""
        import importlib

        self.chain(None)
        for module in ("fsspec", "openai", "google.genai", "httpx"):
            with contextlib.suppress(ImportError):
                importlib.import_module(module)

    def storage(self, spec: JobSpec) -> Storage:
        from ..batch.storage import Storage

        key = json.dumps([spec.out, spec.storage_options, spec.fsync], sort_keys=True)
        with self._lock:
            storage = self._storages.get(key)
            if storage is None:
                storage = self._storages[key] = Storage(
                    spec.out, spec.storage_options, fsync=spec.fsync, threads=self.io_threads)
                if storage.local:
                    os.makedirs(storage.root, exist_ok=True)
            return storage

    def claims(self, spec: JobSpec) -> Claims:
        scope = scope_of(spec.out)
        with self._lock:
            claims = self._claims.get(scope)
            if claims is None:
                claims = self._claims[scope] = Claims(self.redis, scope, lease_s=self.lease_s)
            return claims

    def close(self) -> None:
        """Close the chains (on their loop), the storages, the renewer, the loop."""
        for chain in list(self._chains.values()):
            with contextlib.suppress(Exception):  # closing is best effort at shutdown
                self.loop.run(chain.aclose())
        for storage in self._storages.values():
            storage.close()
        self.renewer.close()
        self.loop.close()
        self.redis.close()
