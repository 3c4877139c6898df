"""
Hot paths of the rate limiters, as ratios to a plain call (or a plain
await) measured in the same run.

Every limiter is set far above what the run consumes, so each call is
granted.  The sliding-log rows use a clock that moves on at every reading
so that the window holds a steady 10 or 100,000 entries: the cost per hit
must not grow with them.
"""

from __future__ import annotations

import stalwart

from harness import LOOP, abatch, batch
from peers_limiters import BIG, FloorTokenBucket, stepping_log, thread_scaling


def _system() -> stalwart.SystemClock:
    return stalwart.SystemClock()


def test_floor_token_bucket(benchmark):
    """A hand-written token bucket with a lock: the floor."""
    floor = FloorTokenBucket(BIG, BIG)
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq()", {"acq": floor.try_acquire}))


def test_token_bucket_try_acquire(benchmark):
    """``TokenBucket.try_acquire()`` on the default key (thread-safe)."""
    bucket = stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=_system())
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq()", {"acq": bucket.try_acquire}))


def test_token_bucket_try_acquire_key(benchmark):
    """``TokenBucket.try_acquire(key=...)``: the per-key store."""
    bucket = stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=_system())
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq(key='k')", {"acq": bucket.try_acquire}))


def test_token_bucket_acquire(benchmark):
    """``TokenBucket.acquire()`` with a token available."""
    bucket = stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=_system())
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq()", {"acq": bucket.acquire}))


def test_token_bucket_aacquire(benchmark):
    """``await TokenBucket.aacquire()`` with a token available."""
    bucket = stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=_system())
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await acq()", {"acq": bucket.aacquire}, loop=LOOP))


def test_gcra_try_acquire(benchmark):
    """``GCRA.try_acquire()`` (the generic path of the shell)."""
    gcra = stalwart.GCRA(rate=BIG, burst=BIG, clock=_system())
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq()", {"acq": gcra.try_acquire}))


def test_sliding_log_10(benchmark):
    """``SlidingWindowLog.try_acquire()`` with 10 entries in the window."""
    log = stepping_log(10)
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq()", {"acq": log.try_acquire}))


def test_sliding_log_100k(benchmark):
    """``SlidingWindowLog.try_acquire()`` with 100,000 entries."""
    log = stepping_log(100_000)
    benchmark.extra_info["baseline"] = "test_sliding_log_10"
    benchmark(batch("acq()", {"acq": log.try_acquire}))


def test_two_threads(benchmark):
    """
    Two threads on one token bucket: throughput relative to one thread
    (recorded in ``extra_info``, not timed by pytest-benchmark).
    """
    ratios = thread_scaling(seconds=0.3, reps=3)
    benchmark.extra_info.update(ratios)
    print()
    for name, ratio in ratios.items():
        print(f"  {name}: two threads = {ratio:.2f}x one thread")
    benchmark(lambda: None)
