"""
Hot paths of the rate limiters, as ratios to a plain call (or a plain
await) measured in the same run.

Every algorithm is measured under load (draining: ``rate=(10**9, 3600)``,
so the bucket is never full again and each window keeps counting; every
call is still granted), on the default key and on a key, next to
hand-written locked token buckets; the token bucket also idle (full). The
sliding-log rows use a clock that moves on at every reading so that the
window holds a steady 10 or 100,000 entries: the cost per hit must not
grow with them.
"""

from __future__ import annotations

import pytest

import stalwart

from harness import LOOP, abatch, af, batch, f
from peers_limiters import (
    BIG,
    DRAIN,
    FloorTokenBucket,
    algorithms,
    draining_floor,
    face_limiters,
    stepping_log,
    thread_scaling,
)


ALGORITHMS = algorithms()
NAMES = [label for label, _, _ in ALGORITHMS]


def _system() -> stalwart.SystemClock:
    return stalwart.SystemClock()


@pytest.mark.parametrize(
    "how", ["try_acquire", "try_acquire_outside", "try_acquire_decision"]
)
def test_floor_token_bucket(benchmark, how):
    """Hand-written locked token buckets, draining: the floors."""
    floor = draining_floor()
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq()", {"acq": getattr(floor, how)}))


@pytest.mark.parametrize(("label", "cls", "kwargs"), ALGORITHMS, ids=NAMES)
def test_draining(benchmark, label, cls, kwargs):
    """``try_acquire()`` on the default key of a limiter under load."""
    limiter = cls(**kwargs, clock=_system())
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq()", {"acq": limiter.try_acquire}))


@pytest.mark.parametrize(("label", "cls", "kwargs"), ALGORITHMS, ids=NAMES)
def test_draining_keyed(benchmark, label, cls, kwargs):
    """``try_acquire(key=...)`` of a limiter under load: the key store."""
    limiter = cls(**kwargs, clock=_system())
    benchmark.extra_info["baseline"] = f"test_draining[{label}]"
    benchmark(batch("acq(key='k')", {"acq": limiter.try_acquire}))


def test_token_bucket_full(benchmark):
    """``TokenBucket.try_acquire()`` on an idle (full) bucket."""
    bucket = stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=_system())
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq()", {"acq": bucket.try_acquire}))


def test_floor_token_bucket_full(benchmark):
    """The locked floor on an idle (full) bucket."""
    floor = FloorTokenBucket(BIG, BIG)
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq()", {"acq": floor.try_acquire}))


def test_token_bucket_acquire(benchmark):
    """``TokenBucket.acquire()`` under load (no wait needed)."""
    bucket = stalwart.TokenBucket(rate=DRAIN, clock=_system())
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("acq()", {"acq": bucket.acquire}))


def test_token_bucket_aacquire(benchmark):
    """``await TokenBucket.aacquire()`` under load (no wait needed)."""
    bucket = stalwart.TokenBucket(rate=DRAIN, clock=_system())
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await acq()", {"acq": bucket.aacquire}, loop=LOOP))


FACES = face_limiters()
REGIMES = [regime for regime, _ in FACES]


@pytest.mark.parametrize(("regime", "lim"), FACES, ids=REGIMES)
def test_token_bucket_decorator(benchmark, regime, lim):
    """A decorated def under a token bucket (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": lim(f), "x": 1}))


@pytest.mark.parametrize(("regime", "lim"), FACES, ids=REGIMES)
def test_token_bucket_with(benchmark, regime, lim):
    """``with bucket: f(x)``: budget <= 1.5x the decorator."""
    benchmark.extra_info["baseline"] = f"test_token_bucket_decorator[{regime}]"
    benchmark(batch("with g:\n    f(x)", {"g": lim, "f": f, "x": 1}))


@pytest.mark.parametrize(("regime", "lim"), FACES, ids=REGIMES)
def test_token_bucket_async_decorator(benchmark, regime, lim):
    """A decorated async def under a token bucket (vs a plain await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await g(x)", {"g": lim(af), "x": 1}, loop=LOOP))


@pytest.mark.parametrize(("regime", "lim"), FACES, ids=REGIMES)
def test_token_bucket_async_with(benchmark, regime, lim):
    """``async with bucket: await f(x)``: budget <= 1.5x the decorator."""
    benchmark.extra_info["baseline"] = (
        f"test_token_bucket_async_decorator[{regime}]"
    )
    benchmark(
        abatch(
            "async with g:\n    await f(x)",
            {"g": lim, "f": af, "x": 1},
            loop=LOOP,
        )
    )


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
    Two threads on one limiter, for every algorithm under load:
    throughput relative to one thread (recorded in ``extra_info``, not
    timed by pytest-benchmark).
    """
    ratios = thread_scaling(seconds=0.3, reps=3)
    benchmark.extra_info.update(ratios)
    print()
    for name, ratio in ratios.items():
        print(f"  {name}: two threads = {ratio:.2f}x one thread")
    benchmark(lambda: None)
