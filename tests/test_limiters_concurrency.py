"""
Rate limiters under many threads and many tasks, and memory with a
million keys.
"""

from __future__ import annotations

import asyncio
import sys
import threading

from limiter_support import ALL
from stalwart import (
    FixedWindow,
    RateLimitExceededError,
    TokenBucket,
)
from stalwart.testing import FakeClock


LIMIT = 300


def _hammer(op, threads=8, calls=100):
    """
    Line *threads* threads up on a barrier, each calling *op* *calls*
    times; return how many calls returned true.
    """
    barrier = threading.Barrier(threads)
    granted = [0] * threads

    def work(i):
        barrier.wait()
        granted[i] = sum(1 for _ in range(calls) if op())

    workers = [
        threading.Thread(target=work, args=(i,)) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(granted)


def _acquired(limiter, key=None):
    def op():
        try:
            limiter.acquire(key=key, timeout=0)
        except RateLimitExceededError:
            return False
        return True

    return op


class TestThreads:
    def test_never_over_admit(self):
        """
        Eight threads hammering one limiter whose clock does not move get
        exactly the limit, on the default key and on a shared key, through
        ``try_acquire`` and ``acquire``.
        """
        for cls in ALL:
            for key in (None, "shared"):
                limiter = cls(rate=(LIMIT, 3600.0), clock=FakeClock())
                tried = _hammer(lambda: limiter.try_acquire(key=key))
                other = cls(rate=(LIMIT, 3600.0), clock=FakeClock())
                waited = _hammer(_acquired(other, key))

                assert (LIMIT, LIMIT) == (tried, waited), (cls, key)

    def test_hot_path_never_over_admits(self):
        """
        The token bucket's hot path (a bucket full at every call, on a
        clock that moves) never grants more than capacity plus refill.
        """
        clock = FakeClock()
        bucket = TokenBucket(rate=1, capacity=LIMIT, clock=clock)

        granted = _hammer(bucket.try_acquire)

        assert LIMIT == granted


class TestTasks:
    def test_never_over_admit(self):
        """
        Many tasks on one limiter get exactly the limit.
        """

        async def one(limiter):
            try:
                await limiter.aacquire(timeout=0)
            except RateLimitExceededError:
                return False
            return True

        async def main(limiter):
            return sum(
                await asyncio.gather(*(one(limiter) for _ in range(2 * LIMIT)))
            )

        for cls in ALL:
            limiter = cls(rate=(LIMIT, 3600.0), clock=FakeClock())

            assert LIMIT == asyncio.run(main(limiter)), cls


class TestMemory:
    def test_million_keys_are_freed(self):
        """
        A million keys hit once are all forgotten once their period has
        passed, while one key keeps being used: no state entry is left and
        the tables shrink back.
        """
        clock = FakeClock()
        limiter = FixedWindow(rate=(5, 1.0), clock=clock)
        for key in range(1_000_000):
            limiter.try_acquire(key=key)
        peak_keys = limiter.statistics().keys
        peak_bytes = sys.getsizeof(limiter._store.cells)
        clock.advance(1.0)

        while limiter.statistics().keys > 1:
            limiter.try_acquire(key="tick")

        assert 1_000_000 == peak_keys
        assert sys.getsizeof(limiter._store.cells) < peak_bytes / 100
