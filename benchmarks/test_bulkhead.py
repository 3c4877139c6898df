"""
Isolation hot paths: bulkhead acquire/release (sync and async) against
``threading.BoundedSemaphore`` and ``asyncio.Semaphore`` from the same run,
decorators against a plain call, the fallback, timeout and thread-pool
paths, every ``with`` / ``async with`` face against its decorator
(DESIGN.md's budget: at most 1.5x), and the weighted and adaptive
bulkheads' paths next to the bulkhead's.
"""

from __future__ import annotations

import asyncio

from typing import Any

import pytest

from harness import LOOP, abatch, af, batch, f
from stalwart import (
    AdaptiveBulkhead,
    AIMDLimit,
    Bulkhead,
    Fallback,
    GradientLimit,
    ThreadPoolBulkhead,
    Timeout,
    WeightedBulkhead,
)


def test_bulkhead_with(benchmark):
    """``with bulkhead: pass``, a free permit (vs BoundedSemaphore)."""
    benchmark.extra_info["baseline"] = "test_bounded_semaphore"
    benchmark(batch("with b:\n    pass", {"b": Bulkhead(max_concurrent=10)}))


def test_bulkhead_try_acquire_release(benchmark):
    """``try_acquire()`` then ``release()`` (vs BoundedSemaphore)."""
    benchmark.extra_info["baseline"] = "test_bounded_semaphore"
    b = Bulkhead(max_concurrent=10)
    benchmark(batch("t()\nr()", {"t": b.try_acquire, "r": b.release}))


def test_bulkhead_async_with(benchmark):
    """``async with bulkhead: pass`` (vs asyncio.Semaphore)."""
    benchmark.extra_info["baseline"] = "test_asyncio_semaphore"
    benchmark(
        abatch("async with b:\n    pass", {"b": Bulkhead(max_concurrent=10)})
    )


def test_bulkhead_decorator(benchmark):
    """A decorated def (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": Bulkhead(max_concurrent=10)(f), "x": 1}))


def test_bulkhead_async_decorator(benchmark):
    """A decorated async def (vs a plain await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(
        abatch("await g(x)", {"g": Bulkhead(max_concurrent=10)(af), "x": 1})
    )


def test_fallback_decorator_success(benchmark):
    """A decorated def that succeeds (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": Fallback(value=0)(f), "x": 1}))


def test_fallback_async_decorator_success(benchmark):
    """A decorated async def that succeeds (vs a plain await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await g(x)", {"g": Fallback(value=0)(af), "x": 1}))


def test_timeout_async_decorator(benchmark):
    """A decorated async def under a system-clock Timeout (vs await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await g(x)", {"g": Timeout(seconds=60)(af), "x": 1}))


def test_timeout_sync_call(benchmark):
    """Timeout.call on a worker thread (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(
        batch("c(f, x)", {"c": Timeout(seconds=60).call, "f": f, "x": 1})
    )


def test_timeout_sync_decorator(benchmark):
    """A decorated def under a Timeout: a worker thread (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": Timeout(seconds=60)(f), "x": 1}))


# Each `with` face next to its decorator face, doing the same call inside.
WITH_FACES: list[tuple[str, str, Any, bool, str]] = [
    (
        "bulkhead",
        "with b:\n    f(x)",
        Bulkhead(max_concurrent=10),
        False,
        "test_bulkhead_decorator",
    ),
    (
        "bulkhead-async",
        "async with b:\n    await f(x)",
        Bulkhead(max_concurrent=10),
        True,
        "test_bulkhead_async_decorator",
    ),
    (
        "timeout-async",
        "async with b:\n    await f(x)",
        Timeout(seconds=60),
        True,
        "test_timeout_async_decorator",
    ),
    (
        "timeout-sigalrm",
        "with b:\n    f(x)",
        Timeout(seconds=60),
        False,
        "test_timeout_sync_decorator",
    ),
]


@pytest.mark.parametrize(
    ("stmt", "guard", "is_async", "decorator"),
    [row[1:] for row in WITH_FACES],
    ids=[row[0] for row in WITH_FACES],
)
def test_with_face(benchmark, stmt, guard, is_async, decorator):
    """A `with` / `async with` face around one call (vs its decorator)."""
    benchmark.extra_info["baseline"] = decorator
    ns = {"b": guard, "f": af if is_async else f, "x": 1}
    benchmark(abatch(stmt, ns) if is_async else batch(stmt, ns))


def test_thread_pool_call(benchmark):
    """ThreadPoolBulkhead.call (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    pool = ThreadPoolBulkhead(max_workers=2)
    benchmark(batch("c(f, x)", {"c": pool.call, "f": f, "x": 1}))
    pool.shutdown()


def _unused() -> None:
    """Keep the LOOP and asyncio imports referenced for type checkers."""
    _ = (LOOP, asyncio)


# -- the weighted and adaptive bulkheads, next to the bulkhead's rows ----------


def _adaptive() -> AdaptiveBulkhead:
    # A limit that cannot move: the path, not the algorithm.
    return AdaptiveBulkhead(min_limit=10, max_limit=10, algorithm=AIMDLimit())


def test_weighted_hold_with(benchmark):
    """``with hold: pass``, a hold of cost 1 (vs BoundedSemaphore)."""
    benchmark.extra_info["baseline"] = "test_bounded_semaphore"
    hold = WeightedBulkhead(max_weight=10).hold(1)
    benchmark(batch("with b:\n    pass", {"b": hold}))


def test_weighted_try_acquire_release(benchmark):
    """``try_acquire(1)`` then ``release()`` (vs BoundedSemaphore)."""
    benchmark.extra_info["baseline"] = "test_bounded_semaphore"
    b = WeightedBulkhead(max_weight=10)
    benchmark(batch("t(1)\nr()", {"t": b.try_acquire, "r": b.release}))


def test_weighted_decorator(benchmark):
    """A def decorated by a weighted bulkhead with a cost_func (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    g = WeightedBulkhead(max_weight=10, cost_func=lambda x: 1)(f)
    benchmark(batch("g(x)", {"g": g, "x": 1}))


def test_adaptive_with(benchmark):
    """``with adaptive: pass`` (vs BoundedSemaphore)."""
    benchmark.extra_info["baseline"] = "test_bounded_semaphore"
    benchmark(batch("with b:\n    pass", {"b": _adaptive()}))


def test_adaptive_decorator(benchmark):
    """A def decorated by an adaptive bulkhead, AIMD (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": _adaptive()(f), "x": 1}))


def test_adaptive_async_decorator(benchmark):
    """An async def decorated by an adaptive bulkhead (vs a plain await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await g(x)", {"g": _adaptive()(af), "x": 1}))


def test_adaptive_gradient_decorator(benchmark):
    """A def decorated by an adaptive bulkhead, Gradient (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    b = AdaptiveBulkhead(
        min_limit=10,
        max_limit=10,
        algorithm=GradientLimit(probe_interval=None),
    )
    benchmark(batch("g(x)", {"g": b(f), "x": 1}))
