"""
Backpressure hot paths, as ratios to a plain call (sync) or a plain await
(async) from the same run: a bounded buffer's put-then-get next to
``queue.Queue`` and ``asyncio.Queue``, and a resource pool's checkout and
checkin next to a minimal hand-written pool (a ``queue.Queue`` of
resources, the floor doing the same work: take one, give it back) and to
``Bulkhead``'s acquire and release.

Run: ``python -m pytest benchmarks/test_backpressure.py --benchmark-enable
-p no:cacheprovider``
"""

from __future__ import annotations

import asyncio
import queue

from harness import LOOP, abatch, batch
from stalwart import BoundedBuffer, Bulkhead, ResourcePool


def _filled(buffer: BoundedBuffer[int]) -> BoundedBuffer[int]:
    for i in range(buffer.capacity):
        buffer.put(i)
    return buffer


# -- bounded buffer, sync -----------------------------------------------------


def test_queue_queue_put_get(benchmark):
    """``q.put(x); q.get()`` on a ``queue.Queue(maxsize=100)`` (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    q: queue.Queue[int] = queue.Queue(maxsize=100)
    benchmark(batch("p(x)\ng()", {"p": q.put, "g": q.get, "x": 1}))


def test_queue_queue_nowait(benchmark):
    """``put_nowait`` / ``get_nowait`` on a ``queue.Queue`` (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    q: queue.Queue[int] = queue.Queue(maxsize=100)
    benchmark(
        batch("p(x)\ng()", {"p": q.put_nowait, "g": q.get_nowait, "x": 1})
    )


def test_buffer_put_get(benchmark):
    """``b.put(x); b.get()`` on a ``BoundedBuffer`` (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    b: BoundedBuffer[int] = BoundedBuffer(capacity=100)
    benchmark(batch("p(x)\ng()", {"p": b.put, "g": b.get, "x": 1}))


def test_buffer_try_put_try_get(benchmark):
    """``try_put`` / ``try_get`` on a ``BoundedBuffer`` (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    b: BoundedBuffer[int] = BoundedBuffer(capacity=100)
    benchmark(batch("p(x)\ng()", {"p": b.try_put, "g": b.try_get, "x": 1}))


def test_buffer_put_drop_oldest_full(benchmark):
    """A put into a full ``drop_oldest`` buffer, evicting (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    b = _filled(BoundedBuffer(capacity=100, when_full="drop_oldest"))
    benchmark(batch("p(x)", {"p": b.put, "x": 1}))


def test_buffer_put_drop_newest_full(benchmark):
    """A put into a full ``drop_newest`` buffer, dropped (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    b = _filled(BoundedBuffer(capacity=100, when_full="drop_newest"))
    benchmark(batch("p(x)", {"p": b.put, "x": 1}))


def test_buffer_try_put_refused(benchmark):
    """``try_put`` refused by a full ``reject`` buffer (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    b = _filled(BoundedBuffer(capacity=100, when_full="reject"))
    benchmark(batch("p(x)", {"p": b.try_put, "x": 1}))


# -- bounded buffer, async ----------------------------------------------------


def test_asyncio_queue_put_get(benchmark):
    """``await q.put(x); await q.get()`` on an ``asyncio.Queue`` (vs await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"

    async def make() -> asyncio.Queue[int]:
        return asyncio.Queue(maxsize=100)

    q = LOOP.run_until_complete(make())
    benchmark(
        abatch("await p(x)\nawait g()", {"p": q.put, "g": q.get, "x": 1})
    )


def test_buffer_aput_aget(benchmark):
    """``await b.aput(x); await b.aget()`` on a ``BoundedBuffer`` (vs await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    b: BoundedBuffer[int] = BoundedBuffer(capacity=100)
    benchmark(
        abatch("await p(x)\nawait g()", {"p": b.aput, "g": b.aget, "x": 1})
    )


# -- resource pool --------------------------------------------------------------


def test_pool_floor_queue(benchmark):
    """A hand-written pool: ``r = q.get_nowait(); q.put_nowait(r)`` (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    q: queue.Queue[object] = queue.Queue()
    q.put(object())
    benchmark(batch("p(g())", {"p": q.put_nowait, "g": q.get_nowait}))


def test_pool_checkout_checkin(benchmark):
    """``r = pool.checkout(); pool.checkin(r)``, an idle resource (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    pool = ResourcePool(factory=object, max_size=10)
    benchmark(batch("i(o())", {"o": pool.checkout, "i": pool.checkin}))


def test_pool_with(benchmark):
    """``with pool.acquire(): pass``, an idle resource (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    pool = ResourcePool(factory=object, max_size=10)
    benchmark(batch("with a():\n    pass", {"a": pool.acquire}))


def test_pool_with_validate(benchmark):
    """``with pool.acquire(): pass`` with a trivial validator (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    pool = ResourcePool(factory=object, max_size=10, validate=bool)
    benchmark(batch("with a():\n    pass", {"a": pool.acquire}))


def test_pool_async_with(benchmark):
    """``async with pool.acquire(): pass``, an idle resource (vs await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    pool = ResourcePool(factory=object, max_size=10)
    benchmark(abatch("async with a():\n    pass", {"a": pool.acquire}))


def test_bulkhead_with_vs_plain(benchmark):
    """``with bulkhead: pass``, a free permit (vs a call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("with b:\n    pass", {"b": Bulkhead(max_concurrent=10)}))


def test_bulkhead_async_with_vs_plain(benchmark):
    """``async with bulkhead: pass``, a free permit (vs await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(
        abatch("async with b:\n    pass", {"b": Bulkhead(max_concurrent=10)})
    )
