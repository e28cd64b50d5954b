"""The blocking facade (``Chain.generate``/``Chain.close``) from many threads and loops.

One chain of real ``OpenAIProvider`` and ``GeminiProvider`` adapters (the official SDKs as
clients) against the emulator on a loopback server: every blocking call, from whichever thread,
must succeed without touching the breakers, and ``close()`` must leave no loop, thread or socket
behind.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from fallback_chain import Chain, Policy
from fallback_chain.emulator import Emulator, serve_in_thread
from fallback_chain.providers import GeminiProvider, OpenAIProvider

pytestmark = pytest.mark.filterwarnings(
    "ignore::fallback_chain.providers.catalogue.ModelLifecycleWarning")

KEY = "test-key"
THREADS, CALLS = 16, 4


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve_in_thread(Emulator(api_keys=KEY)) as url:
        yield url


def _chain(base_url: str) -> Chain:
    openai = OpenAIProvider("gpt-image-2", api_key=KEY, base_url=f"{base_url}/v1")
    gemini = GeminiProvider(api_key=KEY, base_url=base_url)
    # the breaker opens after one failure: any call that fails shows up as a state change
    return Chain([openai, gemini], policy=Policy(breaker_failures=1), log=False)


def _open_sockets() -> int:
    gc.collect()
    import socket

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return sum(1 for o in gc.get_objects()
                   if isinstance(o, socket.socket) and o.fileno() != -1)


def _loops() -> int:
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        return sum(1 for o in gc.get_objects()
                   if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed())


def test_blocking_generate_from_many_threads_on_one_chain(base_url: str) -> None:
    threads_before = set(threading.enumerate())
    sockets_before, loops_before = _open_sockets(), _loops()
    chain = _chain(base_url)
    changes: list[object] = []
    chain.events.subscribe(lambda e: changes.append(e)
                           if type(e).__name__ == "BreakerStateChanged" else None)
    start = threading.Barrier(THREADS)

    def worker(i: int) -> list[str]:
        start.wait()
        out = []
        for j in range(CALLS):
            result = chain.generate(f"a lighthouse, thread {i} call {j}")
            out.append(result.provider)
        return out

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            done = [f.result() for f in [pool.submit(worker, i) for i in range(THREADS)]]
    finally:
        chain.close()
    providers = [p for row in done for p in row]
    assert len(providers) == THREADS * CALLS
    assert set(providers) == {"openai"}  # the first provider served every call
    assert changes == []
    assert all(chain.breaker(name).state == "closed" for name in ("openai", "gemini"))
    assert set(threading.enumerate()) <= threads_before
    assert _loops() <= loops_before
    assert _open_sockets() <= sockets_before


def test_async_use_from_several_loops_then_blocking(base_url: str) -> None:
    chain = _chain(base_url)
    try:
        first = asyncio.run(chain.agenerate("a harbour"))
        second = asyncio.run(chain.agenerate("a harbour at night"))
        third = chain.generate("a harbour at dawn")
    finally:
        chain.close()
    assert [first.provider, second.provider, third.provider] == ["openai"] * 3
    assert chain.breaker("openai").state == "closed"


def test_generate_inside_a_running_loop_is_refused(base_url: str) -> None:
    chain = _chain(base_url)

    async def inside() -> None:
        with pytest.raises(RuntimeError, match="agenerate"):
            chain.generate("a cat")

    asyncio.run(inside())
    chain.close()


def test_loop_thread_runs_returns_raises_and_closes_once() -> None:
    from fallback_chain.loopthread import LoopThread

    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    async def fail() -> None:
        raise ValueError("boom")

    worker = LoopThread("test-loop")
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda x: worker.run(double(x)), range(32))) == [
            2 * x for x in range(32)]
    with pytest.raises(ValueError, match="boom"):
        worker.run(fail())
    worker.close()
    worker.close()  # idempotent
    assert "test-loop" not in {t.name for t in threading.enumerate()}
    coro = double(1)
    with pytest.raises(RuntimeError, match="closed"):
        worker.run(coro)
    assert coro.cr_frame is None  # closed, never "was never awaited"


def test_close_then_generate_starts_a_fresh_loop(base_url: str) -> None:
    threads_before = set(threading.enumerate())
    chain = _chain(base_url)
    try:
        assert chain.generate("one").provider == "openai"
        chain.close()
        assert chain.generate("two").provider == "openai"
    finally:
        chain.close()
    assert set(threading.enumerate()) <= threads_before
