"""
The rate limiters' shell: configuration, decisions, waiting, faces, keys,
hooks and statistics, on every algorithm.
"""

from __future__ import annotations

import asyncio
import pickle

from datetime import timedelta

import pytest

import stalwart

from helpers import ok
from limiter_support import ALL, IDS
from stalwart import (
    GCRA,
    CallRejected,
    ConfigurationError,
    FixedWindow,
    LeakyBucket,
    RateLimitDecision,
    RateLimiterStatistics,
    RateLimitExceededError,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from stalwart._deadline import deadline_scope
from stalwart.testing import FakeClock, use_clock


@pytest.fixture(name="cls", params=ALL, ids=IDS)
def _cls(request):
    """
    Every limiter class.
    """
    return request.param


def three_per_minute(cls, clock, **kwargs):
    """
    A limiter of *cls* allowing three requests at once, then no more for a
    while (and a full refill after a minute).
    """
    return cls(rate="3/minute", clock=clock, **kwargs)


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {"rate": 0},
                "'rate' must have a finite limit > 0 (got 0)",
            ),
            (
                {"rate": 1, "capacity": 0},
                "'capacity' must be > 0 (got 0)",
            ),
            (
                {"rate": 1, "capacity": float("inf")},
                "'capacity' must be finite (got inf)",
            ),
            (
                {"rate": 1, "timeout": -1},
                "'timeout' must be >= 0 (got -1.0)",
            ),
            (
                {"rate": 1, "timeout": "soon"},
                (
                    "'timeout' must be a number of seconds or a timedelta "
                    "(got 'soon')"
                ),
            ),
            (
                {"rate": 1, "key_func": 3},
                "'key_func' must be callable (got 3)",
            ),
            (
                {"rate": 1, "hooks": 3},
                "'hooks' must be an iterable of callables (got 3)",
            ),
        ],
        ids=["rate", "capacity", "finite", "timeout", "type", "key", "hooks"],
    )
    def test_bad_values(self, kwargs, message):
        """
        A bad value fails where the limiter is built, naming the field and
        the value.
        """
        with pytest.raises(ConfigurationError) as e:
            TokenBucket(**kwargs)

        assert message == str(e.value)

    def test_bad_mode_and_burst(self):
        """
        The leaky bucket's mode and GCRA's burst are validated too.
        """
        with pytest.raises(ConfigurationError) as mode:
            LeakyBucket(rate=1, mode="drip")
        with pytest.raises(ConfigurationError) as burst:
            GCRA(rate=1, burst=-1)

        assert "'mode' must be 'meter' or 'shaper' (got 'drip')" == str(
            mode.value
        )
        assert "'burst' must be > 0 (got -1)" == str(burst.value)

    @pytest.mark.parametrize(
        ("rate", "limit"),
        [
            ("100/minute", 100),
            ((100, 60.0), 100),
            ((100, timedelta(minutes=1)), 100),
            (0.5, 1),
            (20, 20),
        ],
        ids=["text", "pair", "timedelta", "slow", "number"],
    )
    def test_rates_and_default_capacity(self, rate, limit):
        """
        The capacity defaults to the rate's limit (at least one).
        """
        bucket = TokenBucket(rate=rate)

        assert limit == bucket.try_acquire().limit

    def test_explicit_capacity_and_timeout(self):
        """
        An explicit capacity and a timedelta timeout are taken as given.
        """
        bucket = TokenBucket(
            rate=10, capacity=2, timeout=timedelta(milliseconds=500)
        )

        assert 2 == bucket.capacity
        assert 0.5 == bucket.timeout
        assert 10.0 == bucket.rate.per_second

    def test_explicit_burst_and_capacity(self, clock):
        """
        GCRA's burst and the leaky bucket's capacity are taken as given.
        """
        gcra = GCRA(rate="1/s", burst=3, clock=clock)
        leaky = LeakyBucket(rate="1/s", capacity=4, clock=clock)

        assert 3 == gcra.try_acquire().limit
        assert 4 == leaky.try_acquire().limit

    def test_frozen(self):
        """
        A limiter's configuration cannot change after it is built.
        """
        bucket = TokenBucket(rate=1)

        with pytest.raises(AttributeError):
            bucket.capacity = 3  # type: ignore[misc]


class TestTryAcquire:
    def test_grants_then_refuses(self, cls, clock):
        """
        Three requests are granted and the fourth refused, with the
        numbers the HTTP headers need.
        """
        limiter = three_per_minute(cls, clock)

        decisions = [limiter.try_acquire() for _ in range(4)]

        assert [True, True, True, False] == list(map(bool, decisions))
        assert [2, 1, 0, 0] == [d.remaining for d in decisions]
        assert {3} == {d.limit for d in decisions}
        assert 0.0 == decisions[0].retry_after
        assert decisions[3].retry_after > 0

    def test_refusal_changes_nothing(self, cls, clock):
        """
        A refused request leaves the limiter exactly as it was.
        """
        limiter = three_per_minute(cls, clock)
        for _ in range(3):
            limiter.try_acquire()

        first = limiter.try_acquire()
        second = limiter.try_acquire()

        assert first == second
        assert 3 == limiter.statistics().granted

    def test_retry_after_is_honoured(self, cls, clock):
        """
        After waiting ``retry_after``, the refused request is granted.
        """
        limiter = three_per_minute(cls, clock)
        for _ in range(3):
            limiter.try_acquire()

        refused = limiter.try_acquire(2)
        clock.advance(refused.retry_after)

        assert limiter.try_acquire(2)

    def test_token_bucket_numbers(self, clock):
        """
        A token bucket reports whole tokens left and the time to refill.
        """
        bucket = TokenBucket(rate=10, capacity=2, clock=clock)

        first = bucket.try_acquire()
        second = bucket.try_acquire()
        third = bucket.try_acquire()
        clock.advance(0.05)
        partial = bucket.try_acquire(0.5)

        assert RateLimitDecision(True, 1, 0.0, 0.1, 2) == first
        assert RateLimitDecision(True, 0, 0.0, 0.2, 2) == second
        assert RateLimitDecision(False, 0, 0.1, 0.2, 2) == third
        assert RateLimitDecision(True, 0, 0.0, 0.2, 2) == partial

    def test_hot_path_on_a_partial_bucket(self, clock):
        """
        A token from a bucket that is not full reports the exact state.
        """
        bucket = TokenBucket(rate=1, capacity=4, clock=clock)
        bucket.try_acquire(2)

        decision = bucket.try_acquire()

        assert RateLimitDecision(True, 1, 0.0, 3.0, 4) == decision

    def test_headers(self, clock):
        """
        A decision gives the RateLimit headers, and Retry-After when
        refused, in whole seconds rounded up.
        """
        limiter = FixedWindow(rate="2/minute", clock=clock)
        clock.advance(10.5)

        granted = limiter.try_acquire()
        limiter.try_acquire()
        refused = limiter.try_acquire()

        assert {
            "RateLimit-Limit": "2",
            "RateLimit-Remaining": "1",
            "RateLimit-Reset": "50",
        } == granted.headers()
        assert "50" == refused.headers()["Retry-After"]

    @pytest.mark.parametrize("cost", [0, -1, float("nan")])
    def test_bad_cost(self, cls, cost):
        """
        A cost that is not > 0 is a ValueError.
        """
        limiter = cls(rate=5)

        with pytest.raises(ValueError, match="'cost' must be > 0"):
            limiter.try_acquire(cost)
        with pytest.raises(ValueError, match="'cost' must be > 0"):
            limiter.acquire(cost)

    def test_cost_that_never_fits(self, cls, clock):
        """
        A cost above the capacity is refused at once, consuming nothing,
        with a clear error and no ``retry_after``.
        """
        limiter = cls(rate=5, name="api", clock=clock)

        with pytest.raises(RateLimitExceededError) as tried:
            limiter.try_acquire(6)
        with pytest.raises(RateLimitExceededError) as waited:
            limiter.acquire(6)

        assert tried.value.retry_after is None
        assert "cost 6 can never be granted (at most 5 at once) by 'api'" == (
            str(waited.value)
        )
        assert [] == clock.sleeps
        assert 5 == limiter.try_acquire().remaining + 1
        error = pickle.loads(pickle.dumps(waited.value))
        assert (6, 5.0) == (error.cost, error.capacity)

    def test_weighted_costs(self, clock):
        """
        Costs are weights: a bandwidth limit takes bytes.
        """
        limiter = TokenBucket(rate="1000/s", clock=clock)

        big = limiter.try_acquire(600)
        too_big = limiter.try_acquire(600)
        small = limiter.try_acquire(400)

        assert (True, False, True) == (bool(big), bool(too_big), bool(small))
        assert 0.2 == pytest.approx(too_big.retry_after)


class TestKeys:
    def test_keys_are_independent(self, cls, clock):
        """
        Each key has its own limit, and the default key its own too.
        """
        limiter = three_per_minute(cls, clock)
        for _ in range(3):
            limiter.try_acquire(key="alice")

        assert not limiter.try_acquire(key="alice")
        assert limiter.try_acquire(key="bob")
        assert limiter.try_acquire()
        assert 2 == limiter.statistics().keys

    def test_idle_keys_are_forgotten(self, cls, clock):
        """
        A key back to fresh is freed by later grants; a live one is kept.
        """
        limiter = three_per_minute(cls, clock)
        limiter.try_acquire(key="old")
        clock.advance(30.0)
        limiter.try_acquire(key="live")
        clock.advance(150.0)

        limiter.try_acquire(key="new")

        assert 1 == limiter.statistics().keys

    def test_live_key_is_not_reset(self, clock):
        """
        A key whose window is still running keeps its count.
        """
        limiter = FixedWindow(rate="2/minute", clock=clock)
        limiter.try_acquire(key="a")
        limiter.try_acquire(key="a")
        for i in range(100):
            limiter.try_acquire(key=i)

        assert not limiter.try_acquire(key="a")


class TestAcquire:
    def test_waits_for_its_slot(self, cls, clock):
        """
        ``acquire`` books the request and sleeps until its slot.
        """
        limiter = three_per_minute(cls, clock)
        for _ in range(3):
            limiter.acquire()

        limiter.acquire()

        assert [] != clock.sleeps
        assert clock.now() == pytest.approx(sum(clock.sleeps))
        assert 4 == limiter.statistics().granted

    def test_waiters_in_order(self, clock):
        """
        Each waiter is booked after the one before it.
        """
        limiter = TokenBucket(rate=1, capacity=1, clock=clock)
        limiter.acquire()
        slots = []
        for _ in range(3):
            slots.append(limiter._reserve(clock.now(), 1, None, None).slot)

        assert [1.0, 2.0, 3.0] == slots

    def test_timeout_refuses_at_once(self, cls, clock):
        """
        A request that cannot be served within the timeout is refused at
        once, with ``retry_after``, consuming nothing.
        """
        limiter = three_per_minute(cls, clock, name="api")
        for _ in range(3):
            limiter.acquire()
        before = limiter.try_acquire()

        with pytest.raises(RateLimitExceededError) as e:
            limiter.acquire(timeout=1.0)

        assert [] == clock.sleeps
        assert "api" == e.value.name
        assert before.retry_after == e.value.retry_after
        assert before == limiter.try_acquire()

    def test_zero_wait_never_sleeps(self, clock):
        """
        A request granted at once does not sleep, not even for zero.
        """
        limiter = SlidingWindowLog(rate=5, clock=clock)

        limiter.acquire()
        limiter.acquire(key="k")

        assert [] == clock.sleeps

    def test_deadline_caps_the_wait(self, clock):
        """
        Under a deadline, a reservation that cannot be served before it
        is refused at once, consuming nothing.
        """
        limiter = TokenBucket(rate=1, capacity=1, clock=clock)
        limiter.acquire()

        with deadline_scope(0.5, clock), pytest.raises(RateLimitExceededError):
            limiter.acquire()
        with deadline_scope(2.0, clock):
            limiter.acquire()

        assert [1.0] == clock.sleeps

    def test_timeout_deadline_caps_the_wait(self, clock):
        """
        Inside a ``Timeout``, a reservation that cannot be served before
        its deadline is refused at once and the limiter stays untouched.
        """
        limiter = TokenBucket(rate=1, capacity=1, clock=clock)
        timeout = stalwart.Timeout(seconds=0.5, clock=clock)

        async def limited():
            await limiter.aacquire()

        async def main():
            await limiter.aacquire()
            with pytest.raises(RateLimitExceededError) as e:
                await timeout.acall(limited)
            return e.value.retry_after

        retry_after = asyncio.run(main())

        assert 1.0 == retry_after
        assert [] == clock.sleeps
        assert 1 == limiter.statistics().granted

    def test_interrupted_wait_gives_back(self, cls):
        """
        A sleep interrupted by KeyboardInterrupt gives the reservation
        back: the next caller gets the slot.
        """

        class Interrupting(FakeClock):
            def sleep(self, seconds):
                raise KeyboardInterrupt

        clock = Interrupting()
        limiter = three_per_minute(cls, clock)
        for _ in range(3):
            limiter.acquire()
        expected = limiter.try_acquire()

        with pytest.raises(KeyboardInterrupt):
            limiter.acquire(key=None)

        assert expected == limiter.try_acquire()
        assert 3 == limiter.statistics().granted

    def test_interrupted_keyed_wait_gives_back(self, cls):
        """
        The same holds for a keyed reservation.
        """

        class Interrupting(FakeClock):
            def sleep(self, seconds):
                raise KeyboardInterrupt

        clock = Interrupting()
        limiter = three_per_minute(cls, clock)
        for _ in range(3):
            limiter.acquire(key="k")
        expected = limiter.try_acquire(key="k")

        with pytest.raises(KeyboardInterrupt):
            limiter.acquire(key="k")

        assert expected == limiter.try_acquire(key="k")
        assert 3 == limiter.statistics().granted

    def test_async_waits(self, cls, clock):
        """
        ``aacquire`` waits on the clock's ``asleep`` and serves tasks in
        the order they asked.
        """
        limiter = three_per_minute(cls, clock)
        done = []

        async def worker(i):
            await limiter.aacquire(key="k")
            done.append((i, clock.now()))

        async def main():
            await asyncio.gather(*(worker(i) for i in range(5)))

        asyncio.run(main())

        assert [0, 1, 2, 3, 4] == [i for i, _ in done]
        assert [t for _, t in done] == sorted(t for _, t in done)
        assert done[2][1] < done[3][1]

    def test_cancelled_wait_gives_back(self, cls, clock):
        """
        A cancelled ``aacquire`` gives its reservation back.
        """
        limiter = three_per_minute(cls, clock)

        async def main():
            for _ in range(3):
                await limiter.aacquire()
            expected = limiter.try_acquire()
            task = asyncio.ensure_future(limiter.aacquire())
            await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return expected, task.cancelled()

        expected, cancelled = asyncio.run(main())

        assert cancelled
        assert expected == limiter.try_acquire()

    def test_async_timeout(self, clock):
        """
        ``aacquire`` refuses at once what it cannot serve in time.
        """
        limiter = GCRA(rate=1, clock=clock)

        async def main():
            await limiter.aacquire()
            with pytest.raises(RateLimitExceededError):
                await limiter.aacquire(timeout=0.5)
            await limiter.aacquire(cost=1, key=None, timeout=1.0)

        asyncio.run(main())

        assert [1.0] == clock.sleeps


class TestFaces:
    def test_call(self, cls, clock, invoke):
        """
        ``call``/``acall`` acquire before calling, and refuse without
        calling once the limit is hit.
        """
        limiter = cls(rate="1/minute", timeout=0, clock=clock)
        calls = []

        def fn(x):
            calls.append(x)
            return x

        assert 1 == invoke(limiter, fn, 1)
        with pytest.raises(RateLimitExceededError):
            invoke(limiter, fn, 2)
        assert [1] == calls

    def test_decorator_sync(self, clock):
        """
        A decorated function keeps its name and is limited per key.
        """
        limiter = FixedWindow(
            rate="1/minute", timeout=0, key_func=lambda user: user, clock=clock
        )

        @limiter
        def greet(user: str) -> str:
            """Say hello."""
            return f"hello {user}"

        assert "hello ann" == greet("ann")
        assert "hello bob" == greet("bob")
        with pytest.raises(RateLimitExceededError):
            greet("ann")
        assert "greet" == greet.__name__

    def test_decorator_async(self, clock):
        """
        A decorated coroutine function waits on the clock before running.
        """
        limiter = TokenBucket(rate=2, capacity=1, clock=clock)

        @limiter
        async def work(x: int) -> int:
            return x * 2

        async def main():
            return [await work(i) for i in range(3)]

        assert [0, 2, 4] == asyncio.run(main())
        assert [0.5, 0.5] == clock.sleeps

    def test_context_managers(self, clock):
        """
        ``with`` and ``async with`` acquire one permit, with the
        configured timeout.
        """
        limiter = LeakyBucket(rate="2/s", timeout=0.1, clock=clock)

        with limiter:
            pass
        with limiter:
            pass
        with pytest.raises(RateLimitExceededError), limiter:
            pass

        async def main():
            clock.advance(1.0)
            async with limiter:
                pass

        asyncio.run(main())

        assert 3 == limiter.statistics().granted

    def test_call_with_key_func(self, clock):
        """
        ``call`` limits by the key the key function returns.
        """
        limiter = TokenBucket(
            rate="1/minute",
            timeout=0,
            key_func=lambda *args, **kwargs: kwargs.get("user"),
            clock=clock,
        )

        assert "ok" == limiter.call(ok, user="ann")
        assert "ok" == limiter.call(ok, user="bob")
        with pytest.raises(RateLimitExceededError):
            limiter.call(ok, user="ann")

    def test_default_clock_follows_use_clock(self):
        """
        A limiter built with the default clock waits on the clock that
        ``use_clock`` installs.
        """
        limiter = TokenBucket(rate=1, capacity=1)
        clock = FakeClock(100.0)

        with use_clock(clock):
            limiter.acquire()
            limiter.acquire()

        assert [1.0] == clock.sleeps


class TestObservability:
    def test_hooks_see_refusals(self, cls, clock):
        """
        Every refusal, tried or waited, emits a CallRejected event.
        """
        events = []
        limiter = cls(
            rate="1/minute", name="api", hooks=events.append, clock=clock
        )

        limiter.try_acquire()
        limiter.try_acquire()
        with pytest.raises(RateLimitExceededError):
            limiter.acquire(timeout=0)

        assert 2 == len(events)
        assert all(isinstance(e, CallRejected) for e in events)
        assert {"api"} == {e.primitive_name for e in events}
        assert events[0].error.retry_after == events[1].error.retry_after

    def test_statistics(self, clock):
        """
        Statistics count grants and refusals on every key.
        """
        limiter = SlidingWindowCounter(rate="1/minute", name="s", clock=clock)
        limiter.try_acquire()
        limiter.try_acquire()
        limiter.try_acquire(key="a")
        limiter.try_acquire(key="a")

        assert (
            RateLimiterStatistics(
                name="s", granted=2, refused=2, keys=1, remaining=0
            )
            == limiter.statistics()
        )

    def test_exported(self):
        """
        The limiters and their records are exported flat.
        """
        assert stalwart.TokenBucket is TokenBucket
        assert stalwart.Rate.parse("1/s").per_second == 1.0
