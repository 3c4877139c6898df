"""
Per-call overhead of the circuit breaker, as ratios to the baselines of
``test_baselines.py`` measured in the same run.

Budget (DESIGN.md): closed <= 6x a plain call sync and <= 3.5x async;
refused <= 2x a plain raise+catch.
"""

from __future__ import annotations

import pytest

import stalwart

from harness import Boom, abatch, af, batch, f


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


def test_failure_recorded(benchmark):
    """A failing call through a closed breaker that never opens."""
    breaker = stalwart.CircuitBreaker(name="bench")
    breaker.metrics_only()
    g = breaker(_boom)
    benchmark.extra_info["baseline"] = "test_raise_catch"
    benchmark(batch("try:\n    g()\nexcept E:\n    pass", {"g": g, "E": Boom}))


def _boom() -> None:
    raise Boom
