"""
Retry hot paths: success on the first attempt, and one failure then
success with a zero wait, through the decorators (sync and async).

Success is compared with a plain call (``test_plain_call`` /
``test_plain_await``); one failure with a hand-written inline retry
(``try: fl(x) except Boom: fl(x)``), measured here in the same run.
"""

from __future__ import annotations

from harness import (
    AINLINE_RETRY,
    INLINE_RETRY,
    Boom,
    abatch,
    af,
    aflaky,
    batch,
    f,
    flaky,
)
from stalwart import Retry, RetryBudget


def test_retry_success(benchmark):
    """Decorated def, success, default settings (timeout=45 s, whose
    budget starts with the call: one clock read)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": Retry()(f), "x": 1}))


def test_retry_success_untimed(benchmark):
    """Decorated def, success, timeout=None."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": Retry(timeout=None)(f), "x": 1}))


def test_retry_success_call(benchmark):
    """``retry.call(f, x)``, success."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("r.call(f, x)", {"r": Retry(), "f": f, "x": 1}))


def test_retry_success_loop(benchmark):
    """``for attempt in retry: with attempt: f(x)``, success."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    loop = "for attempt in r:\n    with attempt:\n        f(x)"
    benchmark(batch(loop, {"r": Retry(), "f": f, "x": 1}))


def test_retry_success_budget(benchmark):
    """Decorated def, success, with a shared retry budget (each call is
    deposited: a clock read and the budget's lock)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    retry = Retry(budget=RetryBudget())
    benchmark(batch("g(x)", {"g": retry(f), "x": 1}))


def test_retry_success_async(benchmark):
    """Decorated async def, success, default settings."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await g(x)", {"g": Retry()(af), "x": 1}))


def test_retry_success_async_untimed(benchmark):
    """Decorated async def, success, timeout=None."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await g(x)", {"g": Retry(timeout=None)(af), "x": 1}))


def test_retry_zz_inline(benchmark):
    """The reference: a hand-written inline retry of one failure."""
    benchmark(batch(INLINE_RETRY, {"fl": flaky(), "Boom": Boom, "x": 1}))


def test_retry_zz_ainline(benchmark):
    """The async reference: a hand-written inline retry of one failure."""
    benchmark(abatch(AINLINE_RETRY, {"fl": aflaky(), "Boom": Boom, "x": 1}))


def test_retry_one_failure(benchmark):
    """One failure then success, zero wait, default timeout."""
    benchmark.extra_info["baseline"] = "test_retry_zz_inline"
    g = Retry(attempts=3, on=Boom, wait=0)(flaky())
    benchmark(batch("g(x)", {"g": g, "x": 1}))


def test_retry_one_failure_untimed(benchmark):
    """One failure then success, zero wait, timeout=None."""
    benchmark.extra_info["baseline"] = "test_retry_zz_inline"
    g = Retry(attempts=3, on=Boom, wait=0, timeout=None)(flaky())
    benchmark(batch("g(x)", {"g": g, "x": 1}))


def test_retry_one_failure_async(benchmark):
    """Async: one failure then success, zero wait, default timeout."""
    benchmark.extra_info["baseline"] = "test_retry_zz_ainline"
    g = Retry(attempts=3, on=Boom, wait=0)(aflaky())
    benchmark(abatch("await g(x)", {"g": g, "x": 1}))
