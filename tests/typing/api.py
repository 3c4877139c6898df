"""
User-side code checked by ``mypy --strict`` (never executed).

Each block uses the public API the way a user would; a regression in the
library's annotations makes mypy fail here.
"""

from __future__ import annotations

import random

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


# --- circuit breaker ---


def circuit_breaker() -> None:
    breaker = stalwart.CircuitBreaker(
        name="payments",
        failure_rate=0.5,
        window=stalwart.CountWindow(100),
        minimum_calls=20,
        slow_call_rate=0.8,
        slow_call_duration=timedelta(seconds=2),
        recovery_time=30.0,
        recovery_multiplier=2.0,
        recovery_max=300.0,
        half_open_max_calls=3,
        half_open_max_wait=60.0,
        failure_on=(ConnectionError, TimeoutError),
        ignore=lambda e: isinstance(e, KeyError),
        failure_result=lambda r: r is None,
        clock=FakeClock(),
        hooks=[stalwart.LoggingHook()],
    )

    @breaker
    def charge(amount: int, *, currency: str = "EUR") -> str:
        return f"{amount} {currency}"

    @breaker
    async def acharge(amount: int) -> bytes:
        return b""

    assert_type(charge(1, currency="USD"), str)
    # The signature is kept: a wrong argument is an error (were it erased,
    # this ignore would be unused, which --strict reports).
    charge("1")  # type: ignore[arg-type]  # deliberate misuse
    assert_type(breaker.call(charge, 5), str)

    async def use() -> None:
        assert_type(await acharge(1), bytes)
        await acharge(b"")  # type: ignore[arg-type]  # deliberate misuse
        assert_type(await breaker.acall(acharge, 1), bytes)
        async with breaker:
            pass

    with breaker:
        pass
    permit = breaker.acquire()
    assert_type(permit, stalwart.CircuitPermit)
    permit.record_success()
    assert_type(breaker.state, stalwart.CircuitState)
    stats = breaker.statistics()
    assert_type(stats, stalwart.CircuitBreakerStatistics)
    assert_type(stats.failure_rate, float | None)
    assert_type(stats.calls, int)
    _ = stalwart.CircuitBreaker(window=stalwart.TimeWindow(60.0, buckets=12))


def circuit_events(event: stalwart.Event) -> None:
    if isinstance(event, stalwart.CircuitOpened):
        assert_type(event.recovery_time, float)
        assert_type(event.previous, stalwart.CircuitState)
    if isinstance(event, stalwart.CircuitStateChanged):
        assert_type(event.state, stalwart.CircuitState)


def circuit_error(error: stalwart.CircuitOpenError) -> None:
    assert_type(error.retry_after, float | None)
    assert_type(error.name, str)


# --- retry ---


def retry_api() -> None:
    from stalwart.testing import retry_testing, set_retry_testing

    budget = stalwart.RetryBudget(ratio=0.2, window=timedelta(seconds=10))
    retry = stalwart.Retry(
        attempts=5,
        on=(ConnectionError, TimeoutError),
        timeout=timedelta(seconds=30),
        wait=stalwart.ExponentialBackoff(initial=0.1, cap=5.0, jitter=0.2),
        budget=budget,
        hooks=[print],
    )
    stalwart.Retry(on=lambda e: 2.0, on_result=lambda r: r is None)
    stalwart.Retry(
        on=lambda e: isinstance(e, OSError), jitter_source=random.random
    )
    stalwart.Retry(wait=lambda attempt, outcome: timedelta(seconds=attempt))
    stalwart.Retry(
        wait=stalwart.DecorrelatedJitterBackoff(),
        jitter_source=random.Random(1),
    )

    @retry
    def fetch(url: str, *, tries: int = 1) -> bytes:
        return url.encode()

    @retry
    async def afetch(url: str) -> bytes:
        return url.encode()

    assert_type(fetch("x", tries=2), bytes)
    assert_type(retry.call(fetch, "x"), bytes)

    async def use() -> None:
        assert_type(await afetch("x"), bytes)
        assert_type(await retry.acall(afetch, "x"), bytes)
        async for attempt in retry:
            with attempt:
                assert_type(attempt.number, int)

    for attempt in retry:
        with attempt:
            assert_type(attempt.number, int)
            attempt.set_result(fetch("x"))

    assert_type(retry.statistics().retries, int)
    assert_type(budget.statistics().available, float)
    with retry_testing(attempts=1):
        set_retry_testing(False)


# --- bulkhead, timeout, fallback ---


def isolation_api() -> None:
    bulkhead = stalwart.Bulkhead(
        max_concurrent=10, max_queue=5, max_wait=timedelta(seconds=1)
    )
    timeout = stalwart.Timeout(seconds=2.5, name="api")
    fallback = stalwart.Fallback(value=b"", on=(ConnectionError,))
    cached = stalwart.Fallback(handler=lambda cause: b"cached")
    pool = stalwart.ThreadPoolBulkhead(max_workers=4, max_queue=8)

    @bulkhead
    @timeout
    @fallback
    def fetch(url: str, *, tries: int = 1) -> bytes:
        return url.encode()

    @bulkhead
    @timeout
    @cached
    async def afetch(url: str) -> bytes:
        return url.encode()

    @pool
    def blocking(n: int) -> int:
        return n

    assert_type(fetch("x", tries=2), bytes)
    assert_type(blocking(1), int)
    assert_type(bulkhead.call(fetch, "x"), bytes)
    assert_type(timeout.call(fetch, "x"), bytes)
    assert_type(fallback.call(fetch, "x"), bytes)
    assert_type(pool.call(blocking, 2), int)
    assert_type(pool.submit(blocking, 2).result(), int)
    assert_type(bulkhead.try_acquire(), bool)
    bulkhead.acquire(timeout=0.5)
    bulkhead.acquire(timeout=None)
    bulkhead.release()
    with bulkhead:
        pass
    with timeout:
        pass

    async def use() -> None:
        assert_type(await afetch("x"), bytes)
        assert_type(await bulkhead.acall(afetch, "x"), bytes)
        assert_type(await timeout.acall(afetch, "x"), bytes)
        assert_type(await fallback.acall(afetch, "x"), bytes)
        assert_type(await pool.acall(blocking, 3), int)
        await bulkhead.aacquire(timeout=timedelta(seconds=1))
        async with bulkhead:
            pass

    assert_type(bulkhead.statistics().high_water, int)
    assert_type(pool.statistics().running, int)
    assert_type(timeout.statistics().timeouts, int)
    assert_type(fallback.statistics().on_error, int)
    pool.shutdown(wait=True, cancel_pending=False)


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
    assert_type(limiter.peek(key="alice"), stalwart.RateLimitDecision)
    limiter.reset("alice")
    limiter.clear()
    limiter.acquire(timeout=timedelta(milliseconds=500))
    several = stalwart.SlidingWindowCounter(rate="10/second;1000/hour")
    assert_type(several.rates, tuple[stalwart.Rate, ...])
    stalwart.GCRA(rate=["10/s", (1000, 3600.0)]).try_acquire()
    assert_type(
        stalwart.Rate.parse_many("10/s;5/m"), tuple[stalwart.Rate, ...]
    )

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
