"""One private event loop on a thread of its own: the engine of the blocking facade.

``Chain.generate()`` may be called from any number of threads at once. Everything a chain holds
that touches asyncio (the vendor SDKs' connection pools, the capacity store's wake-up event, a
Redis client) is bound to the loop that first used it, so the blocking calls of every thread are
submitted to this one loop (``asyncio.run_coroutine_threadsafe``) rather than each thread running
a loop of its own. One loop also means one connection pool per provider and capacity limits that
hold across threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """An event loop running on a daemon thread until :meth:`close`; :meth:`run` blocks the
    calling thread until a coroutine finished on it. Thread-safe."""

    def __init__(self, name: str = "fallback-chain") -> None:
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            try:
                _cancel_all(self._loop)  # calls still running when close() came: cancelled
                self._loop.run_until_complete(self._loop.shutdown_asyncgens())
                self._loop.run_until_complete(self._loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                self._loop.close()

    @property
    def closed(self) -> bool:
        return self._closing

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and return its result (or raise its exception) in the
        calling thread. If the caller is interrupted (``KeyboardInterrupt``), the coroutine is
        cancelled."""
        with self._lock:
            if self._closing:
                coro.close()
                raise RuntimeError("the event loop of the blocking facade is closed")
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()
                # let the cancellation run (releases permits, closes responses)
                with contextlib.suppress(concurrent.futures.CancelledError, Exception):
                    future.result(timeout=5)
            raise

    def close(self) -> None:
        """Stop the loop, wait for its thread and close it. Idempotent."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("a LoopThread cannot be closed from its own loop")
        with self._lock:
            if not self._closing:
                self._closing = True
                self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
