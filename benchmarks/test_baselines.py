"""
The baselines every benchmark is compared with (see ``harness.py``).
"""

from __future__ import annotations

import asyncio
import threading

from harness import LOOP, Boom, abatch, af, batch, boom, f


def test_plain_call(benchmark):
    """A plain call ``f(x)``."""
    benchmark(batch("f(x)", {"f": f, "x": 1}))


def test_plain_await(benchmark):
    """A plain ``await af(x)``."""
    benchmark(abatch("await af(x)", {"af": af, "x": 1}))


def test_raise_catch(benchmark):
    """Calling a function that raises a new exception, and catching it."""
    benchmark(
        batch(
            "try:\n    boom(x)\nexcept E:\n    pass",
            {"boom": boom, "E": Boom, "x": 1},
        )
    )


def test_bounded_semaphore(benchmark):
    """``with threading.BoundedSemaphore``."""
    benchmark(
        batch("with s:\n    pass", {"s": threading.BoundedSemaphore(10)})
    )


def test_asyncio_semaphore(benchmark):
    """``async with asyncio.Semaphore``."""

    async def make() -> asyncio.Semaphore:
        return asyncio.Semaphore(10)

    sem = LOOP.run_until_complete(make())
    benchmark(abatch("async with s:\n    pass", {"s": sem}))
