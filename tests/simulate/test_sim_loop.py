"""The simulation's event loop: virtual time, asyncio semantics, reproducible order."""

from __future__ import annotations

import asyncio

import pytest

from fallback_chain.simulate import SimClock, SimLoop, SimulationDeadlock, run_simulation


def test_time_jumps_to_the_next_timer_without_sleeping() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(3600)
        async with asyncio.timeout(5):
            await asyncio.sleep(2)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1):
                await asyncio.sleep(10)
        return loop.time()

    assert run_simulation(main(), start=100.0) == 100.0 + 3600 + 2 + 1


def test_timers_due_at_the_same_instant_run_in_scheduling_order() -> None:
    seen: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for i in range(50):
            loop.call_at(10.0, seen.append, i)
        await asyncio.sleep(20)

    run_simulation(main())
    assert seen == list(range(50))


def test_cancelled_timers_are_dropped_and_compacted() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        handles = [loop.call_at(1000.0 + i, lambda: None) for i in range(2000)]
        for h in handles:
            h.cancel()
        await asyncio.sleep(1)  # nothing else to wait for: cancelled timers do not count
        return loop.time()

    assert run_simulation(main()) == 1.0


def test_waiting_on_nothing_is_a_deadlock_not_a_hang() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(SimulationDeadlock):
        run_simulation(main())


def test_clock_reads_the_loop_and_the_simulated_date() -> None:
    loop = SimLoop(start=36_000.0)
    clock = SimClock(loop, epoch=1_767_225_600.0)

    async def main() -> tuple[float, float]:
        await clock.sleep(30)
        return clock.now(), clock.wall()

    now, wall = run_simulation(main(), loop=loop)
    assert now == 36_030.0 and wall == 1_767_225_600.0 + 36_030.0


def test_executor_jobs_take_no_virtual_time_even_with_a_timer_pending() -> None:
    """Work handed to threads (``to_thread``, ``run_in_executor``) completes at the instant it
    started: the loop waits for it in real time before jumping to the next timer."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    order: list[str] = []

    def work(tag: str) -> str:
        time.sleep(0.01)  # real time: a thread doing blocking I/O
        assert threading.current_thread() is not threading.main_thread()
        return tag

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        loop.call_at(50.0, order.append, "timer")
        seen = []
        for tag in ("to_thread", "pool"):
            with ThreadPoolExecutor(1) as pool:
                got = (await asyncio.to_thread(work, tag) if tag == "to_thread"
                       else await loop.run_in_executor(pool, work, tag))
            order.append(got)
            seen.append(loop.time())
        await asyncio.sleep(100)
        return seen

    assert run_simulation(main(), start=10.0) == [10.0, 10.0]
    assert order == ["to_thread", "pool", "timer"]


def test_a_cancelled_executor_job_does_not_hold_the_clock() -> None:
    import threading

    release = threading.Event()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        job = loop.run_in_executor(None, release.wait, 10.0)
        job.cancel()  # abandoned (a thread cannot be stopped): the loop no longer waits for it
        await asyncio.sleep(1)
        release.set()
        return loop.time()

    assert run_simulation(main()) == 1.0
