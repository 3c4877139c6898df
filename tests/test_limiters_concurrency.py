"""
Rate limiters under many threads and many tasks, the token bucket's hot
paths against its core, and memory with a million keys.
"""

from __future__ import annotations

import asyncio
import sys
import threading

from hypothesis import given
from hypothesis import strategies as st

from stalwart import (
    GCRA,
    FixedWindow,
    LeakyBucket,
    RateLimitExceededError,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from stalwart._core.limits import TokenBucketAlgorithm
from stalwart.testing import FakeClock


ALL = [
    TokenBucket,
    GCRA,
    LeakyBucket,
    FixedWindow,
    SlidingWindowLog,
    SlidingWindowCounter,
]
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


operations = st.lists(
    st.tuples(
        st.sampled_from(["try", "try2", "acquire", "aacquire", "refused"]),
        st.integers(0, 12).map(lambda n: n / 4),
    ),
    max_size=40,
)


class TestHotPaths:
    @given(
        st.integers(1, 5).map(float),
        st.integers(1, 5).map(float),
        operations,
    )
    def test_same_states_as_the_core(self, rate, capacity, ops):
        """
        Whatever path a token bucket call takes, the default key's state
        is exactly what the core computes.
        """
        clock = FakeClock()
        bucket = TokenBucket(rate=rate, capacity=capacity, clock=clock)
        core = TokenBucketAlgorithm(rate, capacity)
        state = core.fresh()

        for op, step in ops:
            clock.advance(step)
            now = clock.now()
            cost = 2.0 if op == "try2" else 1.0
            max_wait = 10.0 if op in ("acquire", "aacquire") else 0.0
            if cost > capacity:
                continue
            granted, after, wait = core.reserve(state, now, cost, max_wait)
            if op in ("try", "try2", "refused"):
                decision = bucket.try_acquire(cost)
                assert granted == bool(decision)
            elif op == "acquire":
                bucket.acquire(cost, timeout=10.0)
            else:
                asyncio.run(bucket.aacquire(cost, timeout=10.0))
            if granted:
                state = after
            if wait and granted:
                # The face slept until the slot; the core's clock follows.
                assert now + wait == clock.now()
            assert state == bucket._cell.state


class TestMemory:
    def test_million_keys_are_freed(self):
        """
        A million keys hit once are all forgotten once their period has
        passed: no state entry is left and the table shrinks back.
        """
        clock = FakeClock()
        limiter = FixedWindow(rate=(5, 1.0), clock=clock)
        store = limiter._store
        reserve = store.reserve
        for key in range(1_000_000):
            reserve(key, 0.5, 1.0, 0.0)
        peak_keys = len(store)
        peak_bytes = sys.getsizeof(store._states)
        clock.advance(1.0)

        while len(store) > 1:
            limiter.try_acquire(key="tick")

        assert 1_000_000 == peak_keys
        assert 1 == len(store)
        assert sys.getsizeof(store._states) < peak_bytes / 100
