"""One object per event loop, for things bound to the loop that first used them.

An SDK's async client holds a connection pool whose sockets and locks belong to one event loop;
an adapter used from two loops (``asyncio.run`` twice, or the blocking facade's loop and the
caller's) needs one client per loop. :class:`PerLoop` keeps them, keyed weakly by loop, so a
loop that is gone takes its client's entry with it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """``get()`` returns the running loop's object, made by ``make()`` on first use."""

    __slots__ = ("_items", "_make")

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._items: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = \
            weakref.WeakKeyDictionary()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        item = self._items.get(loop)
        if item is None:
            item = self._items[loop] = self._make()
        return item

    def peek(self) -> T | None:
        """The running loop's object if there is one (``None`` outside a loop)."""
        try:
            return self._items.get(asyncio.get_running_loop())
        except RuntimeError:
            return None

    def __len__(self) -> int:
        return len(self._items)

    async def aclose(self, close: Callable[[T], Awaitable[object]]) -> None:
        """Forget every object; ``close`` those of the running loop, and hand those of other
        loops that still run to their own loop (an object cannot be closed from a foreign
        loop). Objects of loops already closed are dropped: no loop is left to close them."""
        items, self._items = dict(self._items), weakref.WeakKeyDictionary()
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop, item in items.items():
            if loop is here:
                await close(item)
            elif loop.is_running() and not loop.is_closed():
                asyncio.run_coroutine_threadsafe(_call(close, item), loop)


async def _call(close: Callable[[T], Awaitable[object]], item: T) -> None:
    await close(item)
