"""
The operations users of ``limits`` and ``aiolimiter`` reach for: peek,
reset, clear, several rates at once; and every refusal counted, with
call-time values checked.
"""

from __future__ import annotations

import asyncio
import math

from datetime import timedelta

import pytest

from limiter_support import ALL, IDS
from stalwart import (
    CallRejected,
    FixedWindow,
    RateLimitDecision,
    RateLimiterStatistics,
    RateLimitExceededError,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from stalwart._limiters import _TaskWaiter
from strategies_limiters import live


@pytest.fixture(name="cls", params=ALL, ids=IDS)
def _cls(request):
    """
    Every limiter class.
    """
    return request.param


@pytest.fixture(name="key", params=[None, "k"], ids=["default", "keyed"])
def _key(request):
    """
    The default key and a named one.
    """
    return request.param


class TestPeek:
    def test_tells_what_try_acquire_would_return(self, cls, clock, key):
        """
        Peek returns the decision try_acquire would return, granted or
        refused, and changes nothing: no state, no counters, no events.
        """
        events = []
        limiter = cls(rate="3/minute", clock=clock, hooks=events.append)
        limiter.try_acquire(2, key)

        granted = limiter.peek(1, key)
        refused = limiter.peek(2, key)
        statistics = limiter.statistics()

        assert refused == limiter.try_acquire(2, key)
        assert granted == limiter.try_acquire(1, key)
        assert (True, False) == (bool(granted), bool(refused))
        assert (
            RateLimiterStatistics(
                name="<unnamed>",
                granted=1,
                refused=0,
                keys=key is not None,
                remaining=1 if key is None else 3,
            )
            == statistics
        )
        assert 1 == len(events)  # the real refusal only
        assert 1 + (key is not None) == limiter.statistics().keys + 1

    def test_a_key_never_seen(self, cls, clock):
        """
        Peeking at an unknown key neither creates it nor counts.
        """
        limiter = cls(rate="3/minute", clock=clock)

        decision = limiter.peek(key="new")

        assert decision
        assert 0 == limiter.statistics().keys

    def test_cost_that_never_fits(self, cls, clock):
        """
        Peek raises, without counting, for a cost that can never fit, and
        checks its cost like try_acquire.
        """
        limiter = cls(rate=5, clock=clock)

        with pytest.raises(RateLimitExceededError) as e:
            limiter.peek(6)
        with pytest.raises(ValueError, match="'cost' must be > 0"):
            limiter.peek(0)

        assert e.value.retry_after is None
        assert 0 == limiter.statistics().refused


class TestResetAndClear:
    def test_reset_forgets_one_key(self, cls, clock, key):
        """
        Reset gives one key its full allowance back and leaves the other
        keys alone.
        """
        limiter = cls(rate="2/minute", clock=clock)
        for _ in range(2):
            limiter.try_acquire(key=key)
            limiter.try_acquire(key="other")

        limiter.reset(key)

        assert limiter.try_acquire(key=key)
        assert not limiter.try_acquire(key="other")

    def test_clear_forgets_every_key(self, cls, clock):
        """
        Clear gives every key, the default one included, its allowance
        back; the counters stay.
        """
        limiter = cls(rate="1/minute", clock=clock)
        for key in (None, "a", "b"):
            limiter.try_acquire(key=key)

        limiter.clear()

        assert 0 == limiter.statistics().keys
        assert all(limiter.try_acquire(key=key) for key in (None, "a", "b"))
        assert 6 == limiter.statistics().granted

    def test_reset_serves_the_waiters_at_once(self, clock):
        """
        Waiting tasks are booked again on the fresh state: they keep their
        order and the first goes at once.
        """
        window = FixedWindow(rate="1/minute", clock=clock)
        window.try_acquire()
        served = []

        async def waiter(name):
            await window.aacquire()
            served.append((name, clock.now()))

        async def main():
            tasks = [asyncio.ensure_future(waiter(n)) for n in "ab"]
            await asyncio.sleep(0)
            clock.advance(1.0)
            window.reset()
            await asyncio.gather(*tasks)

        asyncio.run(main())

        assert [("a", 1.0), ("b", 60.0)] == served

    def test_a_closed_loop_is_skipped(self, clock):
        """
        Waking a waiter whose event loop has closed does not fail the
        reset that moved it.
        """

        class Closed:
            def set(self):
                raise RuntimeError("Event loop is closed")

        window = FixedWindow(rate="1/minute", clock=clock)
        window.try_acquire()
        reservation = window._reserve(window.clock.now(), 1, None, None)
        reservation.waker = Closed()

        window.reset()

        assert clock.now() == reservation.slot


class TestSeveralRates:
    def test_admitted_only_if_every_rate_admits(self, cls, clock):
        """
        Two per second and three per minute: two at once, then the
        second's limit waits a second, the minute's limit waits for the
        third, and a refused request consumes from neither.
        """
        limiter = cls(rate="2/second;3/minute", clock=clock)

        first = [bool(limiter.try_acquire()) for _ in range(3)]
        clock.advance(2.0)
        second = limiter.try_acquire()
        third = limiter.try_acquire()

        assert [True, True, False] == first
        assert second
        assert not third
        assert third.retry_after > 1.0
        assert 3 == limiter.statistics().granted

    def test_refused_by_one_consumes_from_none(self, cls, clock):
        """
        Requests the hour limit refuses take nothing from the second limit:
        its state is as the granted ones left it.
        """
        limiter = cls(rate="10/second;3/hour", clock=clock)
        for _ in range(3):
            limiter.try_acquire()
        per_second = limiter._algorithm.parts[0]
        before = live(per_second, limiter._store.default.state[0], 0.0)

        refused = [bool(limiter.try_acquire()) for _ in range(20)]

        assert [False] * 20 == refused
        assert before == live(per_second, limiter._store.default.state[0], 0.0)

    def test_retry_after_is_the_longest_wait(self, clock):
        """
        ``retry_after`` is the longest of the rates' waits, and waiting it
        is enough.
        """
        bucket = TokenBucket(rate=[(1, 1.0), (2, 60.0)], clock=clock)
        bucket.try_acquire()
        clock.advance(1.0)
        bucket.try_acquire()
        clock.advance(1.0)

        refused = bucket.try_acquire()
        clock.advance(refused.retry_after)

        assert 28.0 == pytest.approx(refused.retry_after)
        assert bucket.try_acquire()

    def test_headers_show_the_binding_rate(self, clock):
        """
        The decision's limit and remaining are those of the rate with the
        least room left.
        """
        window = FixedWindow(rate="5/second;7/minute", clock=clock)
        for _ in range(4):
            window.try_acquire()
        clock.advance(1.0)

        decision = window.try_acquire()

        assert RateLimitDecision(True, 2, 0.0, decision.reset_after, 7) == (
            decision
        )

    def test_waits_for_every_rate(self, clock):
        """
        A waiter is booked for a slot every rate allows.
        """
        log = SlidingWindowLog(rate="1/second;2/10s", clock=clock)
        log.acquire()
        log.acquire()
        log.acquire()

        assert [1.0, 9.0] == clock.sleeps

    def test_keys_with_several_rates(self, clock):
        """
        Each key has its own set of limits.
        """
        limiter = SlidingWindowCounter(rate="1/s;5/h", clock=clock)

        assert limiter.try_acquire(key="a")
        assert limiter.try_acquire(key="b")
        assert not limiter.try_acquire(key="a")


class TestEveryRefusalCounted:
    def test_cost_above_capacity(self, cls, clock, key):
        """
        A cost that can never fit is counted as refused and sends a
        CallRejected, from try_acquire and from acquire.
        """
        events = []
        limiter = cls(rate=5, clock=clock, hooks=events.append, name="api")

        with pytest.raises(RateLimitExceededError):
            limiter.try_acquire(6, key)
        with pytest.raises(RateLimitExceededError):
            limiter.acquire(6, key)

        assert 2 == limiter.statistics().refused
        assert 2 == len(events)
        assert all(isinstance(e, CallRejected) for e in events)
        assert {None} == {e.error.retry_after for e in events}

    @pytest.mark.parametrize(
        ("timeout", "error", "message"),
        [
            (-1, ValueError, "'timeout' must be >= 0 (got -1)"),
            (math.nan, ValueError, "'timeout' must be >= 0 (got nan)"),
            (
                "soon",
                TypeError,
                (
                    "'timeout' must be a number of seconds, a timedelta or "
                    "None (got 'soon')"
                ),
            ),
            (
                True,
                TypeError,
                (
                    "'timeout' must be a number of seconds, a timedelta or "
                    "None (got True)"
                ),
            ),
        ],
        ids=["negative", "nan", "string", "bool"],
    )
    def test_bad_timeouts(self, cls, clock, timeout, error, message):
        """
        A timeout that is not a number of seconds >= 0 is a clear error,
        never a refusal saying "retry after 0", granted or not.
        """
        limiter = cls(rate=5, clock=clock)

        with pytest.raises(error) as free:
            limiter.acquire(timeout=timeout)
        with pytest.raises(error):
            asyncio.run(limiter.aacquire(timeout=timeout))

        assert message == str(free.value)
        assert (0, 0) == (
            limiter.statistics().granted,
            limiter.statistics().refused,
        )

    def test_timedelta_timeout(self, clock):
        """
        A timeout may be a timedelta.
        """
        bucket = TokenBucket(rate=1, clock=clock)
        bucket.acquire()

        bucket.acquire(timeout=timedelta(seconds=1))

        assert [1.0] == clock.sleeps

    @pytest.mark.parametrize("cost", ["1", None, 1j])
    def test_cost_of_the_wrong_type(self, cls, clock, cost):
        """
        A cost that is not a number is a TypeError that says so, on every
        face.
        """
        limiter = cls(rate=5, clock=clock)

        with pytest.raises(TypeError) as tried:
            limiter.try_acquire(cost)
        with pytest.raises(TypeError) as waited:
            limiter.acquire(cost)

        assert f"'cost' must be a number (got {cost!r})" == str(tried.value)
        assert str(tried.value) == str(waited.value)


class TestWaking:
    def test_a_reservation_without_a_waker_yet(self, clock):
        """
        A reservation whose caller has not parked yet moves too: its caller
        reads the new slot when it does.
        """
        window = FixedWindow(rate="1/minute", clock=clock)
        window.try_acquire()
        reservation = window._reserve(window.clock.now(), 1, None, None)

        window.reset()

        assert reservation.waker is None
        assert clock.now() == reservation.slot

    def test_woken_twice_before_it_runs(self, clock):
        """
        A task moved twice before it runs again wakes once, at its latest
        slot.
        """
        bucket = TokenBucket(rate=1, capacity=1, clock=clock)
        bucket.try_acquire()
        served = []

        async def waiter():
            await bucket.aacquire()
            served.append(clock.now())

        async def main():
            task = asyncio.ensure_future(waiter())
            await asyncio.sleep(0)
            bucket.reset()
            bucket.reset()
            await task

        asyncio.run(main())

        assert [0.0] == served


class TestSeveralRatesWait:
    @pytest.mark.parametrize("cls", ALL, ids=IDS)
    def test_acquire_waits_for_every_rate(self, cls, clock):
        """
        ``acquire`` with several rates waits until every one allows it.
        """
        limiter = cls(rate="1/second;3/minute", clock=clock)

        for _ in range(3):
            limiter.acquire()

        assert 3 == limiter.statistics().granted
        assert clock.now() >= 2.0

    def test_a_slot_set_by_another_rate(self, clock):
        """
        A log booked for a slot its other rate set holds no room for a
        request before that slot, however much it has: the next request
        waits for the slot after.
        """
        log = SlidingWindowLog(rate="1/second;10/minute", clock=clock)
        log.try_acquire()
        log._reserve(
            log.clock.now(), 1, None, None
        )  # booked for 1.0 by the 1/second rate

        decision = log.peek()

        assert (False, 2.0) == (decision.granted, decision.retry_after)


class TestSteadyLog:
    def test_one_entry_expires_per_entry_logged(self, clock):
        """
        Requests spaced so that one entry expires for each one logged keep
        the window at its limit, on the hot path.
        """
        log = SlidingWindowLog(rate=(3, 1.0), clock=clock)
        granted = []
        for _ in range(200):
            granted.append(bool(log.try_acquire()))
            clock.advance(0.25)

        assert all(granted[i] for i in range(0, 200, 2))
        assert len(log._store.default.state) <= 4

    @pytest.mark.parametrize("cls", ALL, ids=IDS)
    def test_no_one_goes_ahead_of_a_waiter(self, cls, clock):
        """
        While a waiter is booked, try_acquire refuses even a request that
        would fit: no one goes ahead of a waiter.
        """
        limiter = cls(rate="2/minute", clock=clock)
        limiter.try_acquire()
        limiter._reserve(limiter.clock.now(), 2, None, None)

        assert not limiter.try_acquire()

    def test_resolving_a_woken_future_twice(self):
        """
        A task's wake-up may be set again before it runs: it stays woken.
        """
        loop = asyncio.new_event_loop()
        try:
            waiter = _TaskWaiter(loop)
            waiter.set()
            waiter.set()
            loop.run_until_complete(waiter.fut)
        finally:
            loop.close()

        assert waiter.fut.done()
