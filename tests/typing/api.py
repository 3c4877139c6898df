"""
User-side code checked by ``mypy --strict`` (never executed).

Each block uses the public API the way a user would; a regression in the
library's annotations makes mypy fail here.
"""

from __future__ import annotations

import random

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

from typing_extensions import assert_type

import stalwart

from stalwart.redis import RedisStore
from stalwart.testing import FakeClock, use_clock


def clocks() -> None:
    clock: stalwart.Clock = FakeClock()
    assert_type(clock.now(), float)
    system: stalwart.Clock = stalwart.SystemClock()
    system.sleep(0.0)
    with use_clock(FakeClock()) as fake:
        assert_type(fake, stalwart.Clock)
    manual = FakeClock(start=5, autojump=False)
    assert_type(manual.autojump, bool)
    assert_type(FakeClock(wait_for_io=True).wait_for_io, bool)
    assert_type(manual.waiting_threads, int)
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
    shared = stalwart.CircuitBreaker(
        name="payments",
        store=RedisStore(url="redis://localhost:6379/0"),
        max_staleness=0.5,
    )
    assert_type(shared, stalwart.CircuitBreaker)
    assert_type(shared.call(len, "abc"), int)

    # A generator function is guarded over its whole iteration; its type
    # is kept.
    @breaker
    def rows(limit: int) -> Iterator[int]:
        yield from range(limit)

    @breaker
    async def arows(limit: int) -> AsyncIterator[int]:
        for i in range(limit):
            yield i

    assert_type(rows(3), Iterator[int])
    assert_type(arows(3), AsyncIterator[int])


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
        on=lambda e: stalwart.RetryAfter(timedelta(seconds=2)),
        on_result=lambda r: stalwart.RetryAfter(1.5) if r else False,
        honor_rejections=False,
    )
    assert_type(stalwart.RetryAfter(2.0).seconds, float)
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

    @retry
    def lines(path: str) -> Iterator[str]:
        yield path

    @retry
    async def alines(path: str) -> AsyncIterator[str]:
        yield path

    assert_type(lines("x"), Iterator[str])
    assert_type(alines("x"), AsyncIterator[str])

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
    unbounded = stalwart.Bulkhead(max_concurrent=1, max_queue=None)
    assert_type(unbounded.max_queue, int | None)
    assert_type(
        stalwart.ThreadPoolBulkhead(max_workers=1, max_queue=None).max_queue,
        int | None,
    )
    results_only = stalwart.Fallback(value=0, on=(), on_result=lambda r: not r)
    assert_type(results_only.call(lambda: 1), int)


def bulkheads_that_adapt_and_weigh() -> None:
    bulkhead = stalwart.Bulkhead(max_concurrent=4, name="db")
    assert_type(bulkhead.statistics().name, str)
    assert_type(bulkhead.statistics().to_dict(), dict[str, Any])
    bulkhead.add_hook(stalwart.LoggingHook(per_call=True))

    adaptive = stalwart.AdaptiveBulkhead(
        min_limit=2,
        max_limit=100,
        initial_limit=10,
        algorithm=stalwart.GradientLimit(
            smoothing=0.2, queue_size=4, window=timedelta(seconds=1)
        ),
        max_queue=10,
        max_wait=0.5,
        drop_on=(TimeoutError, stalwart.RejectedError),
        drop_result=lambda status: status == 503,
        name="api",
    )
    aimd = stalwart.AdaptiveBulkhead(
        algorithm=stalwart.AIMDLimit(backoff_ratio=0.9, timeout=2.0),
        drop_on=lambda error: isinstance(error, OSError),
    )

    @adaptive
    def get(url: str, *, tries: int = 1) -> int:
        return 200

    @aimd
    async def aget(url: str) -> int:
        return 200

    assert_type(get("x", tries=2), int)
    assert_type(adaptive.call(get, "x"), int)
    assert_type(adaptive.limit, int)
    assert_type(adaptive.try_acquire(), bool)
    adaptive.acquire(timeout=1.0)
    adaptive.release("dropped")
    with adaptive:
        pass
    stats = adaptive.statistics()
    assert_type(stats.limit, int)
    assert_type(stats.rtt, float | None)
    assert_type(stats.rtt_noload, float | None)
    assert_type(stats.probing, bool)

    memory = stalwart.WeightedBulkhead(
        max_weight=512 * 1024 * 1024,
        max_queue=100,
        max_wait=timedelta(seconds=5),
        cost_func=lambda payload: len(payload),
        name="uploads",
    )

    @memory
    def upload(payload: bytes) -> str:
        return "ok"

    hold: stalwart.WeightedHold = memory.hold(1024)
    assert_type(upload(b"x"), str)
    assert_type(memory.call(upload, b"x"), str)
    assert_type(hold.call(upload, b"x"), str)
    assert_type(hold(upload)(b"x"), str)
    assert_type(hold.cost, int)
    assert_type(memory.try_acquire(10), bool)
    memory.acquire(10, timeout=1.0)
    memory.release()
    with memory.hold(10):
        pass
    assert_type(memory.statistics().weight, int)
    assert_type(memory.statistics().queued_weight, int)

    async def use() -> None:
        assert_type(await aget("x"), int)
        assert_type(await aimd.acall(aget, "x"), int)
        await adaptive.aacquire()
        adaptive.release()
        async with adaptive:
            pass
        await memory.aacquire(5)
        memory.release()
        async with hold:
            pass
        assert_type(await memory.acall(aget, "y"), int)

    def on_event(event: stalwart.Event) -> None:
        if isinstance(event, stalwart.LimitChanged):
            assert_type(event.limit, int)
            assert_type(event.previous_limit, int)

    adaptive.add_hook(on_event)
    _ = stalwart.Pipeline(stalwart.Retry(), adaptive, hold)


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
    assert_type(limiter.statistics().remaining, int | None)
    assert_type(limiter.statistics().to_dict(), dict[str, Any])
    limiter.add_hook(print, per_call=True)
    limiter.remove_hook(print)
    assert_type(stalwart.Rate.parse("10/s").per_second, float)
    assert_type(limiter.peek(key="alice"), stalwart.RateLimitDecision)
    limiter.reset("alice")

    async def decide() -> None:
        assert_type(
            await limiter.atry_acquire(1, "alice"), stalwart.RateLimitDecision
        )

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


# --- chaos ---


def chaos_api() -> None:
    def only_flagged(call: stalwart.ChaosContext) -> bool:
        assert_type(call.args, tuple[Any, ...])
        assert_type(call.kwargs, dict[str, Any])
        return call.kwargs.get("chaos") == "on"

    faults = stalwart.Chaos(
        fault=ConnectionError("injected"),
        probability=0.1,
        seed=42,
        when=only_flagged,
        enabled=False,
        name="payments",
        clock=FakeClock(),
        hooks=[stalwart.LoggingHook()],
    )
    stalwart.Chaos(fault=TimeoutError, every=3, first=30, after=3)
    stalwart.Chaos(fault=lambda: OSError("disk"), during=[(10.0, 20.0)])
    stalwart.Chaos(latency=timedelta(seconds=2), random_source=random.random)
    stalwart.Chaos(result=None, random_source=random.Random(1))
    stalwart.Chaos(result_factory=lambda: b"stale", during=(0, 60))

    async def restart() -> None:
        pass

    slow = stalwart.Chaos(latency=0.5, behavior=restart)
    stalwart.Chaos(fault=42)  # type: ignore[arg-type]  # deliberate misuse
    stalwart.Chaos(latency="1")  # type: ignore[arg-type]  # deliberate misuse
    stalwart.Chaos(enabled=1.5, latency=1.0)  # type: ignore[arg-type]  # deliberate misuse

    @faults
    def charge(amount: int, *, currency: str = "EUR") -> str:
        return f"{amount} {currency}"

    @slow
    async def acharge(amount: int) -> bytes:
        return b""

    assert_type(charge(1, currency="USD"), str)
    charge("1")  # type: ignore[arg-type]  # deliberate misuse
    assert_type(faults.call(charge, 5), str)

    async def use() -> None:
        assert_type(await acharge(1), bytes)
        assert_type(await slow.acall(acharge, 1), bytes)
        async with slow:
            pass

    with faults:
        pass
    faults.enable()
    faults.disable()
    faults.reset()
    assert_type(faults.enabled, bool)
    stats = faults.statistics()
    assert_type(stats, stalwart.ChaosStatistics)
    assert_type(stats.injected, int)
    _ = use


def chaos_events(event: stalwart.Event) -> None:
    if isinstance(event, stalwart.ChaosInjected):
        assert_type(event.call_number, int)
        assert_type(event.kinds, tuple[str, ...])
        assert_type(event.fault, BaseException | None)
        assert_type(event.latency, float | None)


# --- backpressure: bounded buffer, resource pool ---


def bounded_buffer() -> None:
    jobs: stalwart.BoundedBuffer[bytes] = stalwart.BoundedBuffer(
        capacity=100,
        when_full="drop_oldest",
        name="jobs",
        hooks=[stalwart.LoggingHook()],
    )
    waiting = stalwart.BoundedBuffer[int](
        capacity=10, max_wait=timedelta(seconds=1)
    )
    jobs.put(b"x")
    waiting.put(1, timeout=0.5)
    waiting.put(2, timeout=None)
    decision = jobs.try_put(b"y")
    assert_type(decision, stalwart.BufferDecision)
    assert_type(decision.retry_after, float | None)
    assert_type(bool(decision), bool)
    assert_type(jobs.get(), bytes)
    assert_type(jobs.get(timeout=timedelta(seconds=1)), bytes)
    assert_type(jobs.try_get(), bytes | None)
    assert_type(jobs.try_get(b""), bytes)
    assert_type(jobs.try_get(0), bytes | int)
    assert_type(len(jobs), int)
    stats = jobs.statistics()
    assert_type(stats, stalwart.BufferStatistics)
    assert_type(stats.dropped, int)
    jobs.put("text")  # type: ignore[arg-type]  # items are typed

    async def use() -> None:
        await jobs.aput(b"z")
        assert_type(await jobs.aget(), bytes)
        assert_type(await waiting.aget(timeout=2.0), int)

    def errors(error: stalwart.RejectedError) -> None:
        if isinstance(error, stalwart.BufferFullError):
            assert_type(error.capacity, int)
            assert_type(error.retry_after, float | None)
        if isinstance(error, stalwart.BufferEmptyError):
            assert_type(error.timeout, float)

    def on_drop(event: stalwart.Event) -> None:
        if isinstance(event, stalwart.ItemDropped):
            assert_type(event.item, object)

    _ = (use, errors, on_drop)


class _Conn:
    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass


def resource_pool() -> None:
    def connect() -> _Conn:
        return _Conn()

    async def aconnect() -> _Conn:
        return _Conn()

    async def aping(conn: _Conn) -> bool:
        return conn.ping()

    pool = stalwart.ResourcePool(
        factory=connect,
        max_size=5,
        max_queue=10,
        max_wait=timedelta(seconds=2),
        max_idle=300.0,
        max_lifetime=3600,
        validate=lambda conn: conn.ping(),
        dispose=_Conn.close,
        discard_on=(ConnectionError,),
        name="db",
        clock=FakeClock(),
    )
    assert_type(pool, stalwart.ResourcePool[_Conn])
    apool = stalwart.ResourcePool(factory=aconnect, max_size=2, validate=aping)
    assert_type(apool, stalwart.ResourcePool[_Conn])

    lease = pool.acquire(timeout=1.0)
    assert_type(lease, stalwart.Lease[_Conn])
    with lease as conn:
        assert_type(conn, _Conn)
        assert_type(lease.resource, _Conn)
        lease.discard()
    conn = pool.checkout(timeout=None)
    assert_type(conn, _Conn)
    pool.checkin(conn, broken=True)
    pool.checkin("not a conn")  # type: ignore[arg-type]  # resources are typed
    stats = pool.statistics()
    assert_type(stats, stalwart.PoolStatistics)
    assert_type(stats.in_use, int)
    pool.close()

    async def use() -> None:
        async with apool.acquire() as aconn:
            assert_type(aconn, _Conn)
        got = await apool.acheckout(timeout=timedelta(seconds=1))
        await apool.acheckin(got)
        await apool.aclose()

    def errors(error: stalwart.RejectedError) -> None:
        if isinstance(error, stalwart.PoolExhaustedError):
            assert_type(error.max_size, int)

    def on_event(event: stalwart.Event) -> None:
        if isinstance(event, stalwart.ResourceClosed):
            assert_type(event.reason, str)
        if isinstance(event, stalwart.ResourceCreated):
            assert_type(event.resource, object)

    _ = (use, errors, on_event)


# --- pipeline ---


def pipeline() -> None:
    clock = FakeClock()
    breaker = stalwart.CircuitBreaker(name="db", clock=clock)
    retry = stalwart.Retry(name="db-retry", attempts=3, clock=clock)
    policy = stalwart.Pipeline(
        stalwart.Fallback(value=None),
        stalwart.Timeout(seconds=10.0, clock=clock),
        retry,
        stalwart.TokenBucket(rate=10, clock=clock),
        stalwart.Bulkhead(max_concurrent=4, clock=clock),
        breaker,
        stalwart.Chaos(latency=0.1, enabled=False),
        name="db",
    )
    nested = stalwart.Pipeline(stalwart.Fallback(value=0), policy)
    assert_type(nested.stages, tuple[object, ...])
    stalwart.Pipeline(42)  # type: ignore[arg-type]  # not a stage
    stalwart.Pipeline(retry, stalwart.ThreadPoolBulkhead(max_workers=1))

    @policy
    def query(sql: str, *, timeout: float = 1.0) -> list[int]:
        return []

    @policy
    async def aquery(sql: str) -> bytes:
        return b""

    @policy
    def rows(n: int) -> Iterator[int]:
        yield n

    @policy
    async def arows(n: int) -> AsyncIterator[int]:
        yield n

    assert_type(query("select", timeout=2.0), list[int])
    query(1)  # type: ignore[arg-type]  # the signature is kept
    assert_type(rows(1), Iterator[int])
    assert_type(arows(1), AsyncIterator[int])
    assert_type(policy.call(query, "select"), list[int])
    policy.call(query, "select", timeout="1")  # type: ignore[arg-type]  # deliberate misuse

    async def use() -> None:
        assert_type(await aquery("select"), bytes)
        assert_type(await policy.acall(aquery, "select"), bytes)
        guards = stalwart.Pipeline(breaker, name="guards")
        async with guards:
            pass
        async for attempt in stalwart.Pipeline(retry, breaker):
            async with attempt:
                assert_type(attempt.number, int)

    with stalwart.Pipeline(breaker):
        pass
    for attempt in stalwart.Pipeline(retry, breaker):
        with attempt:
            attempt.set_result(1)

    stats = policy.statistics()
    assert_type(stats, stalwart.PipelineStatistics)
    assert_type(stats.name, str)
    assert_type(stats["db"], Any)
    warning: type[UserWarning] = stalwart.PipelineOrderWarning
    _ = warning

    def on_event(event: stalwart.Event) -> None:
        assert_type(event.pipeline, str | None)


def operations() -> None:
    """Statistics that travel, hooks attached later, the registry, per key."""
    breaker = stalwart.CircuitBreaker(name="payments")
    data = breaker.statistics().to_dict()
    assert_type(data, dict[str, Any])
    assert_type(breaker.statistics().name, str)
    assert_type(breaker.statistics().transitions, dict[str, int])
    assert_type(stalwart.Retry().statistics().total_wait, float)

    def hook(event: stalwart.Event) -> None:
        if isinstance(event, stalwart.CallFinished):
            assert_type(event.duration, float | None)
            assert_type(event.attempts, int)
        if isinstance(event, stalwart.CallAdmitted):
            assert_type(event.wait, float)

    breaker.add_hook(hook, per_call=True)
    breaker.remove_hook(hook)
    stalwart.LoggingHook(per_call=True)

    registry = stalwart.Registry(
        {stalwart.CircuitBreaker: {"failure_threshold": 3}, "retry": {}}
    )
    got = registry.get(stalwart.CircuitBreaker, "payments", recovery_time=5)
    assert_type(got, stalwart.CircuitBreaker)
    retry = registry.get(stalwart.Retry, "fetch")
    assert_type(retry, stalwart.Retry)
    health = registry.health()
    assert_type(health, dict[str, Any])
    registry = stalwart.Registry.from_dict({"retry": {"fetch": {}}})

    keyed: stalwart.KeyedCircuitBreaker[str] = stalwart.KeyedCircuitBreaker(
        breaker=breaker, key_func=lambda host, path: host
    )

    @keyed
    def get(host: str, path: str) -> bytes:
        return b""

    assert_type(get("h", "/"), bytes)
    assert_type(keyed.key("h"), stalwart.CircuitBreaker)
    assert_type(keyed.call(get, "h", "/"), bytes)
    assert_type(keyed.statistics().keys, int)
    get(1, "/")  # type: ignore[arg-type]  # the signature is kept


def operations_of_isolation_and_pipelines() -> None:
    """The thread pool, the timeout, the fallback and pipelines: the same."""
    pool = stalwart.ThreadPoolBulkhead(max_workers=2, name="workers")
    timeout = stalwart.Timeout(seconds=1.0, name="deadline")
    fallback = stalwart.Fallback(value=0, name="cache")
    assert_type(pool.statistics().name, str)
    assert_type(timeout.statistics().to_dict(), dict[str, Any])
    assert_type(fallback.statistics().on_error, int)
    for primitive in (pool, timeout, fallback):
        observed: stalwart.Observable = primitive
        observed.add_hook(print, per_call=True)

    keyed: stalwart.KeyedCircuitBreaker[str] = stalwart.KeyedCircuitBreaker(
        breaker=stalwart.CircuitBreaker(), key_func=lambda host: host
    )
    policy = stalwart.Pipeline(stalwart.Retry(), keyed, name="per-host")

    @policy
    def get(host: str) -> bytes:
        return b""

    assert_type(get("h"), bytes)
    assert_type(policy.call(get, "h"), bytes)
    policy.add_hook(print, per_call=True)
    policy.remove_hook(print)
    stats = policy.statistics()
    assert_type(stats.to_dict(), dict[str, Any])
    assert_type(stats.name, str)
    registry = stalwart.Registry()
    assert_type(registry.register(policy), stalwart.Pipeline)


def http_building_blocks() -> None:
    assert_type(stalwart.parse_retry_after("120"), float | None)
    assert_type(
        stalwart.parse_retry_after(b"1", date=None, now=0.0, max_delay=60),
        float | None,
    )
    policy = stalwart.HTTPPolicy(
        retry_methods=stalwart.HTTPPolicy.IDEMPOTENT_METHODS | {"POST"},
        retry_statuses=[429, 503],
        retry_after_max=timedelta(minutes=1),
    )
    assert_type(
        policy.retry_status("GET", 503, {}), bool | stalwart.RetryAfter
    )
    assert_type(policy.failure_status(500), bool)
    stalwart.Retry(on=policy.retry_on)
    stalwart.CircuitBreaker(failure_on=policy.failure_on)


def httpx_transport() -> None:
    import httpx

    from stalwart.httpx import (
        AsyncResilientTransport,
        ResilientTransport,
        StatusError,
        host,
    )

    def cached(error: Exception) -> httpx.Response:
        if isinstance(error, StatusError):
            assert_type(error.retry_after, float | None)
            assert_type(error.response, httpx.Response)
        return httpx.Response(200)

    transport = ResilientTransport(
        transport=httpx.HTTPTransport(retries=1),
        retry=stalwart.Retry(attempts=3),
        breaker=stalwart.CircuitBreaker(failure_threshold=5),
        limiter=stalwart.TokenBucket(rate="10/second"),
        bulkhead=stalwart.Bulkhead(max_concurrent=10),
        timeout=stalwart.Timeout(seconds=30.0),
        attempt_timeout=stalwart.Timeout(seconds=5.0),
        fallback=stalwart.Fallback(handler=cached),
        policy=stalwart.HTTPPolicy(),
        key=host,
    )
    client = httpx.Client(transport=transport)
    assert_type(client.get("https://example.org").status_code, int)
    assert_type(transport.statistics(), stalwart.PipelineStatistics)
    assert_type(transport.pipeline, stalwart.Pipeline)
    keyed: stalwart.KeyedCircuitBreaker[str] = stalwart.KeyedCircuitBreaker(
        breaker=stalwart.CircuitBreaker()
    )
    ResilientTransport(breaker=keyed, retry=None, key=None)
    ResilientTransport(limiter=stalwart.GCRA(rate=5), key=lambda r: r.url.path)
    ResilientTransport(retry=3)  # type: ignore[arg-type]  # a Retry or None
    httpx.AsyncClient(transport=AsyncResilientTransport())
    AsyncResilientTransport(transport=httpx.HTTPTransport())  # type: ignore[arg-type]  # the async face wraps an async transport


def asgi_middleware() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse

    from stalwart.asgi import (
        ASGIApp,
        Limit,
        LoadSheddingMiddleware,
        RateLimitMiddleware,
        Refusal,
        RequestInfo,
        client_ip,
        header,
    )

    def per_route(request: RequestInfo) -> tuple[str, str | None]:
        return request.path, request.client_ip

    def answer(refusal: Refusal) -> ASGIApp:
        assert_type(refusal.retry_after, float | None)
        return PlainTextResponse("slow down", status_code=429)

    app = Starlette()
    app.add_middleware(
        RateLimitMiddleware,
        limits=[
            Limit(
                limiter=stalwart.TokenBucket(rate="100/minute"),
                key=header("X-API-Key"),
            ),
            Limit(limiter=stalwart.GCRA(rate=10), key=client_ip, cost=2),
            Limit(
                limiter=stalwart.FixedWindow(rate="5/second"),
                key=per_route,
                paths=["/search"],
            ),
        ],
        exempt=lambda request: request.client_ip == "127.0.0.1",
        trusted_proxies=["10.0.0.0/8"],
        headers="refused",
        response=answer,
    )
    app.add_middleware(
        LoadSheddingMiddleware, bulkhead=stalwart.Bulkhead(max_concurrent=100)
    )
    wrapped: ASGIApp = RateLimitMiddleware(app, limits=[])
    LoadSheddingMiddleware(
        wrapped, bulkhead=stalwart.Bulkhead(max_concurrent=1)
    )
    RateLimitMiddleware(app, limits=[], headers="all")  # type: ignore[arg-type]  # always, refused or never
