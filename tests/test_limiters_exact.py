"""
Exact at any clock value: waiting exactly ``retry_after`` is always enough,
``retry_after`` always moves the clock, GCRA and the token bucket agree,
and the numeric edges found by a fuzzer and long-run probes stay fixed.
Everything here goes through the public API.
"""

from __future__ import annotations

import math
import random

import pytest

from hypothesis import assume, given
from hypothesis import strategies as st

from limiter_support import ALL, IDS
from stalwart import (
    GCRA,
    ConfigurationError,
    FixedWindow,
    LeakyBucket,
    SlidingWindowLog,
    TokenBucket,
)
from stalwart._limiters import retry_after
from stalwart.testing import FakeClock


starts = st.one_of(
    st.sampled_from([0.0, 1e5, 1e6, 1e7, 2.0**24, 1e9, 1e9 + 0.3]),
    st.floats(0.0, 1e9),
)
# Rates per second from one a day to 1e9, log-uniform.
per_second = st.floats(-4.94, 9.0).map(lambda e: 10.0**e)


class TestWaitingRetryAfterIsEnough:
    @given(st.sampled_from(ALL), starts, per_second, st.data())
    def test_any_magnitude(self, cls, start, rate, data):
        """
        At clock values up to 1e9 s and rates from one a day to 1e9 a
        second, a refused request waits exactly ``retry_after`` and is
        granted, and ``retry_after`` always moves the clock.
        """
        limit = data.draw(st.integers(1, 50))
        steps = data.draw(
            st.lists(st.floats(0.0, 2.0), min_size=1, max_size=20)
        )
        clock = FakeClock(start)
        limiter = cls(rate=(limit, limit / rate), clock=clock)
        cost = data.draw(st.sampled_from([1.0, float(limit)]))
        unit = 1.0 / rate
        for step in steps:  # traffic at about the limit's own pace
            clock.advance(step * unit)
            limiter.try_acquire()
        for _ in range(limit + 1):
            refused = limiter.try_acquire(cost)
            if not refused:
                break
        assume(not refused)
        before = clock.now()

        clock.advance(refused.retry_after)

        assert clock.now() > before
        assert limiter.try_acquire(cost)

    @pytest.mark.parametrize("cls", ALL, ids=IDS)
    def test_ten_million_seconds(self, cls):
        """
        At 1e7 s, ten a second: take one, wait 0.03 s, be refused, wait
        ``retry_after``: granted (not refused again with 3.7e-10).
        """
        clock = FakeClock(1e7)
        limiter = cls(rate=(1, 0.1), clock=clock)
        limiter.try_acquire()
        clock.advance(0.03)
        refused = limiter.try_acquire()

        clock.advance(refused.retry_after)

        assert not refused
        assert limiter.try_acquire()

    def test_a_retry_after_that_moves_the_clock(self):
        """
        At 1e5 s and a million a second, ``retry_after`` is never so small
        that adding it leaves the clock where it was.
        """
        clock = FakeClock(1e5)
        bucket = TokenBucket(rate=1e6, capacity=1, clock=clock)
        bucket.try_acquire()
        refused = bucket.try_acquire()

        clock.advance(refused.retry_after)

        assert not refused
        assert clock.now() > 1e5
        assert bucket.try_acquire()

    def test_hundreds_of_probes_at_ten_million_seconds(self):
        """
        Hundreds of token buckets at about 1e7 s, each refused after a
        short wait and retried after exactly ``retry_after``: every retry
        is granted (a hundred missed before).
        """
        rng = random.Random(1)
        misses = 0
        for _ in range(525):
            clock = FakeClock(1e7 + rng.random() * 1000)
            bucket = TokenBucket(
                rate=rng.choice([3, 7, 10, 33, 100, 1000]),
                capacity=1,
                clock=clock,
            )
            bucket.try_acquire()
            clock.advance(rng.random() * 0.1)
            refused = bucket.try_acquire()
            if not refused:
                clock.advance(refused.retry_after)
                misses += not bucket.try_acquire()

        assert 0 == misses


class TestGCRAAndTokenBucketAgree:
    @given(
        starts,
        per_second,
        st.integers(1, 20),
        st.lists(
            st.tuples(st.floats(0.0, 3.0), st.sampled_from([1.0, 2.0, 0.5])),
            min_size=1,
            max_size=60,
        ),
    )
    def test_same_decisions(self, start, rate, burst, requests):
        """
        With the same rate and burst, GCRA and the token bucket grant the
        same requests with the same ``retry_after``, at any magnitude.
        """
        clock = FakeClock(start)
        gcra = GCRA(rate=rate, burst=burst, clock=clock)
        bucket = TokenBucket(rate=rate, capacity=burst, clock=clock)

        for step, cost in requests:
            clock.advance(step / rate)
            if cost > burst:
                continue
            assert bucket.try_acquire(cost) == gcra.try_acquire(cost)

    def test_eight_thousand_decisions_at_ten_million_seconds(self):
        """
        The probe that found 143 disagreements in 8,000 decisions at 1e7 s
        finds none.
        """
        clock = FakeClock(1e7)
        gcra = GCRA(rate=100, burst=5, clock=clock)
        bucket = TokenBucket(rate=100, capacity=5, clock=clock)
        disagreements = 0
        for i in range(8000):
            clock.advance((i * 7919 % 13) / 1000)
            disagreements += bool(gcra.try_acquire()) != bool(
                bucket.try_acquire()
            )

        assert 0 == disagreements


class TestHighRates:
    @pytest.mark.parametrize("cls", [GCRA, LeakyBucket, TokenBucket])
    def test_tiny_increments_at_194_days(self, cls):
        """
        At 2**24 s, a billion a second with a burst of ten grants ten
        requests at one instant, not a thousand.
        """
        clock = FakeClock(2.0**24)
        limiter = cls(rate=1e9, clock=clock, **_burst(cls, 10))

        granted = sum(bool(limiter.try_acquire()) for _ in range(1000))

        assert 10 == granted

    def test_shaper_at_194_days(self):
        """
        The shaper spaces requests at a billion a second at 2**24 s too:
        one goes at once, the next waits for its slot.
        """
        clock = FakeClock(2.0**24)
        shaper = LeakyBucket(rate=1e9, capacity=10, mode="shaper", clock=clock)

        granted = sum(bool(shaper.try_acquire()) for _ in range(1000))

        assert 1 == granted

    def test_no_excess_at_a_billion_seconds(self):
        """
        At 1e9 s and a million a second, a long run grants no more than
        the burst plus the rate times the time (4.65% too many before).
        """
        clock = FakeClock(1e9)
        gcra = GCRA(rate=1e6, burst=10, clock=clock)
        start = clock.now()
        granted = 0
        for _ in range(2000):
            clock.advance(1e-7)
            granted += sum(bool(gcra.try_acquire()) for _ in range(3))

        assert granted <= 10 + 1e6 * (clock.now() - start)


class TestFixedWindowStarts:
    @given(st.floats(0.0, 1e6), st.sampled_from([0.1, 0.3, 0.7, 1 / 3]))
    def test_limit_at_any_window_start(self, start, period):
        """
        Wherever the window boundaries fall, requests at one instant get
        the limit, never twice it.
        """
        window = FixedWindow(rate=(10, period), clock=FakeClock(start))

        granted = sum(bool(window.try_acquire()) for _ in range(30))

        assert 10 == granted

    def test_the_start_that_granted_twenty(self):
        """
        Ten per 0.1 s at 4.3 s grants ten.
        """
        window = FixedWindow(rate=(10, 0.1), clock=FakeClock(4.3))

        assert 10 == sum(bool(window.try_acquire()) for _ in range(30))


class TestBelowOneRequest:
    @pytest.mark.parametrize("cls", [FixedWindow, SlidingWindowLog])
    def test_half_a_request_a_second(self, cls):
        """
        ``rate=0.5`` means one request every 2 s, not a limiter that
        refuses everything.
        """
        clock = FakeClock()
        limiter = cls(rate=0.5, clock=clock)

        first = limiter.try_acquire()
        clock.advance(2.0)
        second = limiter.try_acquire()

        assert (True, True) == (bool(first), bool(second))

    @pytest.mark.parametrize(
        ("cls", "name"),
        [
            (TokenBucket, "capacity"),
            (GCRA, "burst"),
            (LeakyBucket, "capacity"),
        ],
    )
    def test_a_bucket_smaller_than_a_request(self, cls, name):
        """
        A bucket smaller than one request is refused where it is built.
        """
        with pytest.raises(ConfigurationError, match=f"'{name}' must be"):
            cls(rate=1, **{name: 0.5})

    @pytest.mark.parametrize(
        "rate", [(1e308, 1e-10), 1e-320], ids=["infinite", "subnormal"]
    )
    def test_rates_that_do_not_fit(self, rate):
        """
        A rate too fast or too slow to compute with is refused where it is
        built (no overflow in ``headers()`` later).
        """
        with pytest.raises(ConfigurationError, match="out of range"):
            TokenBucket(rate=rate)


def _burst(cls, burst):
    return {"burst": burst} if cls is GCRA else {"capacity": burst}


def test_headers_never_overflow():
    """
    The slowest rate accepted still gives finite headers.
    """
    limiter = TokenBucket(rate=1e-12, capacity=1, clock=FakeClock())
    limiter.try_acquire()

    headers = limiter.try_acquire().headers()

    assert math.isfinite(float(headers["Retry-After"]))


class TestRetryAfter:
    @given(
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(allow_nan=False, allow_infinity=False),
    )
    def test_always_reaches_the_ready_time(self, now, at):
        """
        A clock moved on by ``retry_after`` has reached the ready time, for
        any pair of floats.
        """
        assume(at > now and math.isfinite(at - now))

        wait = retry_after(now, at)

        assert now + wait >= at
        assert wait > 0

    def test_rounding_across_zero(self):
        """
        Where ``at - now`` rounds down and adding it back falls short, the
        wait is the next float up.
        """
        now, at = -3.0989065991270934e-37, 7.810762098099828e-209

        wait = retry_after(now, at)

        assert now + (at - now) < at
        assert math.nextafter(at - now, math.inf) == wait
