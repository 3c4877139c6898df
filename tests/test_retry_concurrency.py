"""
Retry under concurrency: per-call state, cancellation, exact counters.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading

from typing import Any

import pytest

from helpers import Boom, as_async
from retry_support import Flaky
from stalwart import Retry, _gil


class TestConcurrency:
    def test_threads_have_their_own_attempts(self, clock):
        """
        Concurrent calls of one decorated function never share counters.
        """
        import threading

        barrier = threading.Barrier(4)
        local = threading.local()

        @Retry(on=Boom, attempts=3, wait=0, clock=clock)
        def work() -> str:
            local.calls = getattr(local, "calls", 0) + 1
            if local.calls == 1:
                barrier.wait(timeout=10)
            if local.calls < 3:
                raise Boom
            return "ok"

        results: list[str] = []
        threads = [
            threading.Thread(target=lambda: results.append(work()))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert ["ok"] * 4 == results

    def test_tasks_have_their_own_attempts(self, clock):
        """
        Concurrent tasks of one decorated coroutine keep separate counts.
        """
        calls: dict[int, int] = {}

        @Retry(on=Boom, attempts=3, wait=1.0, clock=clock)
        async def work(key: int) -> int:
            calls[key] = calls.get(key, 0) + 1
            if calls[key] < 3:
                raise Boom
            return key

        async def main() -> list[int]:
            return await asyncio.gather(*(work(k) for k in range(5)))

        assert [0, 1, 2, 3, 4] == asyncio.run(main())
        assert 2.0 == clock.now()

    def test_cancelled_wait_ends_the_retry(self, clock):
        """
        Cancelling a task during its wait ends the retry at once.
        """
        fn = Flaky(Boom(), Boom())
        retry = Retry(on=Boom, wait=10.0, clock=clock)

        async def main() -> None:
            task = asyncio.ensure_future(retry.acall(as_async(fn)))
            for _ in range(3):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())

        assert 1 == fn.calls
        assert 0.0 == clock.now()
        assert [10.0] == clock.sleeps


class TestStatisticsUnderThreads:
    @pytest.mark.parametrize(
        "cell_counting",
        [True, False],
        ids=["closure-cell", "free-threaded-route"],
    )
    def test_counts_are_exact(self, monkeypatch, cell_counting):
        """
        Calls and retries counted from many threads at once are exact, both
        with the decorator's counter (GIL builds) and through the atomic
        counters that free-threaded builds use.
        """
        monkeypatch.setattr(_gil, "CELL_COUNTING", cell_counting)
        retry = Retry(on=Boom, wait=0, timeout=None)
        barrier = threading.Barrier(4)
        toggles: dict[int, Any] = {}

        @retry
        def work() -> None:
            me = threading.get_ident()
            flip = toggles.setdefault(me, itertools.cycle([True, False]))
            if next(flip):
                raise Boom

        def worker() -> None:
            barrier.wait(timeout=10)
            for _ in range(2_000):
                work()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)  # many more thread switches
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            sys.setswitchinterval(interval)
        stats = retry.statistics()

        assert (8_000, 8_000, 0) == (
            stats.calls,
            stats.retries,
            stats.give_ups,
        )
