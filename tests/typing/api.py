"""
User-side code checked by ``mypy --strict`` (never executed).

Each block uses the public API the way a user would; a regression in the
library's annotations makes mypy fail here.
"""

from __future__ import annotations

from datetime import timedelta

from typing_extensions import assert_type

import stalwart

from stalwart.testing import FakeClock, use_clock


def clocks() -> None:
    clock: stalwart.Clock = FakeClock()
    assert_type(clock.now(), float)
    system: stalwart.Clock = stalwart.SystemClock()
    system.sleep(0.0)
    with use_clock(FakeClock()) as fake:
        assert_type(fake, stalwart.Clock)
    deadline = stalwart.current_deadline()
    if deadline is not None:
        assert_type(deadline.remaining(), float)
    assert_type(stalwart.remaining_time(), float | None)
    _ = timedelta(seconds=1)


def errors(error: stalwart.RejectedError) -> None:
    assert_type(error.name, str)
    assert_type(error.retry_after, float | None)
    if isinstance(error, stalwart.BulkheadFullError):
        assert_type(error.max_concurrent, int)
    if isinstance(error, stalwart.TimeoutExceededError):
        assert_type(error.timeout, float)


def rate_limiters() -> None:
    limiter = stalwart.TokenBucket(rate="100/minute", capacity=10)
    decision = limiter.try_acquire(2, key="alice")
    assert_type(decision, stalwart.RateLimitDecision)
    assert_type(decision.retry_after, float)
    assert_type(decision.headers(), dict[str, str])
    limiter.acquire(timeout=0.5)
    stalwart.SlidingWindowLog(rate=(10, timedelta(seconds=1))).acquire()
    stalwart.LeakyBucket(rate=5.0, mode="shaper").try_acquire()
    assert_type(limiter.statistics(), stalwart.RateLimiterStatistics)
    assert_type(stalwart.Rate.parse("10/s").per_second, float)

    per_user = stalwart.FixedWindow(rate="5/s", key_func=lambda user: user)

    @per_user
    def fetch(user: str, *, page: int = 1) -> bytes:
        return b""

    assert_type(fetch("ann", page=2), bytes)

    @stalwart.GCRA(rate=3)
    async def afetch(user: str) -> int:
        return 1

    async def use() -> None:
        assert_type(await afetch("ann"), int)
        await limiter.aacquire()
        async with limiter:
            pass
        assert_type(await limiter.acall(afetch, "bob"), int)

    with limiter:
        pass
    assert_type(limiter.call(fetch, "ann"), bytes)
    _ = use
