"""
Per-call overhead of the circuit breaker, as ratios to the baselines of
``test_baselines.py`` measured in the same run.

Budget (DESIGN.md): closed <= 6x a plain call sync and <= 3.5x async;
refused <= 2.5x a plain raise+catch; the ``with`` / ``async with`` faces
<= 1.5x the decorator (their rows name the decorator's test as baseline,
next to the floors of ``peers_breaker.py``: a no-op context manager, and
one keeping each block's state under its frame).
"""

from __future__ import annotations

import pytest

import stalwart

from harness import Boom, abatch, af, batch, f
from peers_breaker import FrameKeyedBlock, NoopBlock


REFUSED = "try:\n    g(x)\nexcept E:\n    pass"


def _opened() -> stalwart.CircuitBreaker:
    breaker = stalwart.CircuitBreaker(
        name="bench", failure_threshold=1, recovery_time=1e9
    )
    permit = breaker.acquire()
    permit.record_failure()
    return breaker


def test_closed_sync(benchmark):
    """A closed breaker's decorator on a def (consecutive policy)."""
    g = stalwart.CircuitBreaker(name="bench")(f)
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": g, "x": 1}))


def test_closed_async(benchmark):
    """A closed breaker's decorator on an async def."""
    g = stalwart.CircuitBreaker(name="bench")(af)
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await g(x)", {"g": g, "x": 1}))


WITH = "with b:\n    f(x)"
AWITH = "async with b:\n    await af(x)"


def test_closed_with(benchmark):
    """A closed breaker's ``with`` block around f(x)."""
    breaker = stalwart.CircuitBreaker(name="bench")
    benchmark.extra_info["baseline"] = "test_closed_sync"
    benchmark(batch(WITH, {"b": breaker, "f": f, "x": 1}))


def test_closed_async_with(benchmark):
    """A closed breaker's ``async with`` block around await af(x)."""
    breaker = stalwart.CircuitBreaker(name="bench")
    benchmark.extra_info["baseline"] = "test_closed_async"
    benchmark(abatch(AWITH, {"b": breaker, "af": af, "x": 1}))


@pytest.mark.parametrize(
    "block", [NoopBlock, FrameKeyedBlock], ids=["noop", "frame-keyed"]
)
def test_floor_with(benchmark, block):
    """A ``with`` block that does nothing / only keeps per-block state."""
    benchmark.extra_info["baseline"] = "test_closed_sync"
    benchmark(batch(WITH, {"b": block(), "f": f, "x": 1}))


@pytest.mark.parametrize(
    "block", [NoopBlock, FrameKeyedBlock], ids=["noop", "frame-keyed"]
)
def test_floor_async_with(benchmark, block):
    """The async twins of the ``with`` floors."""
    benchmark.extra_info["baseline"] = "test_closed_async"
    benchmark(abatch(AWITH, {"b": block(), "af": af, "x": 1}))


def test_closed_acall_method(benchmark):
    """await breaker.acall(af, x) on a closed breaker."""
    breaker = stalwart.CircuitBreaker(name="bench")
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await b.acall(af, x)", {"b": breaker, "af": af, "x": 1}))


def test_closed_call_method(benchmark):
    """breaker.call(f, x) on a closed breaker."""
    breaker = stalwart.CircuitBreaker(name="bench")
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("b.call(f, x)", {"b": breaker, "f": f, "x": 1}))


@pytest.mark.parametrize(
    "window",
    [stalwart.CountWindow(100), stalwart.TimeWindow(60.0)],
    ids=["count", "time"],
)
def test_closed_rate_policy(benchmark, window):
    """A closed breaker with a failure rate over a window (takes the lock)."""
    g = stalwart.CircuitBreaker(name="bench", failure_rate=0.5, window=window)(
        f
    )
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": g, "x": 1}))


def test_refused(benchmark):
    """An open breaker refusing a call, caught by the caller."""
    g = _opened()(f)
    benchmark.extra_info["baseline"] = "test_raise_catch"
    benchmark(batch(REFUSED, {"g": g, "x": 1, "E": stalwart.CircuitOpenError}))


@pytest.mark.parametrize(
    "stmt",
    [
        "try:\n    with b:\n        f(x)\nexcept E:\n    pass",
        "try:\n    b.call(f, x)\nexcept E:\n    pass",
    ],
    ids=["with", "call"],
)
def test_refused_other_faces(benchmark, stmt):
    """An open breaker refusing a block / a call(), caught by the caller."""
    breaker = _opened()
    benchmark.extra_info["baseline"] = "test_raise_catch"
    benchmark(
        batch(
            stmt,
            {"b": breaker, "f": f, "x": 1, "E": stalwart.CircuitOpenError},
        )
    )


def test_failure_recorded(benchmark):
    """A failing call through a closed breaker that never opens."""
    breaker = stalwart.CircuitBreaker(name="bench")
    breaker.metrics_only()
    g = breaker(_boom)
    benchmark.extra_info["baseline"] = "test_raise_catch"
    benchmark(batch("try:\n    g()\nexcept E:\n    pass", {"g": g, "E": Boom}))


def _boom() -> None:
    raise Boom
