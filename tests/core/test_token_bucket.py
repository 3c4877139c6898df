"""
The bucket core: the token bucket, GCRA and the leaky meter's arithmetic.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from stalwart._core.limits import BucketAlgorithm
from strategies_limiters import (
    TOL,
    any_steps,
    buckets,
    granted_slots,
    run,
    traces,
    wide_capacities,
    wide_rates,
    wide_starts,
    wide_traces,
)


def _within_bound(bucket, slots, tol):
    for i, (start, _) in enumerate(slots):
        total = 0.0
        for end, cost in slots[i:]:
            total += cost
            assert total <= bucket.capacity + bucket.rate * (end - start) + tol


class TestBucket:
    @given(buckets(), traces(any_steps))
    def test_at_most_capacity_plus_rate_times_t(self, bucket, trace):
        """
        In any interval of length T, the granted cost is at most
        ``capacity + rate * T`` (reservations counted at their slots), a
        clock stepping back included.
        """
        _, results = run(bucket, trace)

        _within_bound(bucket, granted_slots(results), TOL)

    @given(st.data(), wide_rates, wide_capacities, wide_starts)
    def test_bound_at_any_magnitude(self, data, rate, capacity, start):
        """
        At clock values up to 1e9 s and rates up to 1e9 a second, the
        bound holds to a part in a million: no cost is lost to rounding.
        """
        bucket = BucketAlgorithm(rate, capacity)
        trace = data.draw(wide_traces(bucket))

        _, results = run(bucket, trace, start)

        _within_bound(bucket, granted_slots(results), capacity * 1e-6)

    def test_tiny_increments_at_large_clock_values(self):
        """
        At 2**24 s (194 days of uptime) a burst of ten at 1e9 a second
        grants ten requests at one instant, not all of them.
        """
        bucket = BucketAlgorithm(1e9, 10.0)
        state = bucket.fresh()

        granted = 0
        for _ in range(1000):
            state, ok, _ = bucket.decide(state, 2.0**24, 1.0, 0.0)
            granted += ok

        assert 10 == granted

    def test_no_excess_over_a_long_run(self):
        """
        At 1e9 s and a million a second, requests at every tick of the
        clock for a thousand ticks get at most the burst plus the rate
        times the time that passed.
        """
        bucket = BucketAlgorithm(1e6, 10.0)
        state = bucket.fresh()
        now = start = 1e9
        granted = 0
        for _ in range(1000):
            now = math.nextafter(now, math.inf)
            for _ in range(5):
                state, ok, _ = bucket.decide(state, now, 1.0, 0.0)
                granted += ok

        assert granted <= 10 + 1e6 * (now - start)
        assert granted >= 1e6 * (now - start) - 1

    def test_burst_then_refill(self):
        """
        A full bucket grants a burst of *capacity*, then one request per
        ``1 / rate`` seconds, and says so exactly.
        """
        bucket = BucketAlgorithm(rate=10.0, capacity=2.0)
        state = bucket.fresh()

        state, ok1, _ = bucket.decide(state, 0.0, 1, 0.0)
        state, ok2, _ = bucket.decide(state, 0.0, 1, 0.0)
        _, refused, at = bucket.decide(state, 0.0, 1, 0.0)
        state, ok3, _ = bucket.decide(state, 0.1, 1, 0.0)

        assert (True, True, False, True) == (ok1, ok2, refused, ok3)
        assert 0.1 == at
        assert (0, 0.2, 2) == bucket.status(state, 0.1)

    def test_reservations_queue_in_order(self):
        """
        Each reservation leaves the bucket full at its slot, so each waits
        after the one before it.
        """
        bucket = BucketAlgorithm(rate=1.0, capacity=1.0)
        state = bucket.fresh()

        slots = []
        for _ in range(3):
            state, _, at = bucket.decide(state, 0.0, 1, 10.0)
            slots.append(at)

        assert [0.0, 1.0, 2.0] == slots
        assert (0, 3.0, 1) == bucket.status(state, 0.0)
        assert (2.0, 1.0, 2.0) == state

    def test_refund_of_older_grant_gives_room(self):
        """
        Refunding a grant that is no longer the latest takes its cost out
        of the bucket without touching the later one's slot.
        """
        bucket = BucketAlgorithm(rate=1.0, capacity=2.0)
        first = bucket.fresh()
        second, _, _ = bucket.decide(first, 0.0, 1, 10.0)
        third, _, _ = bucket.decide(second, 0.0, 1, 10.0)

        state = bucket.refund(
            third, 0.5, cost=1, slot=0.0, before=first, after=second
        )

        assert (0.0, 2.0, -math.inf) == third
        assert (0.5, 0.5, -math.inf) == state

    def test_clock_stepping_back(self):
        """
        A time before the bucket's own adds nothing and books from the
        bucket's time.
        """
        bucket = BucketAlgorithm(rate=1.0, capacity=1.0)

        state, granted, at = bucket.decide((10.0, 1.0, 0.0), 4.0, 1, 100.0)

        assert (True, 11.0) == (granted, at)
        assert (11.0, 1.0, 11.0) == state

    def test_lagging_request_counted_at_the_bucket_time(self):
        """
        A request stamped just before the bucket's time (and after any
        booked slot) is granted at once if the bucket has room, and
        counted at the bucket's time.
        """
        bucket = BucketAlgorithm(rate=1.0, capacity=2.0)

        state, granted, at = bucket.decide((10.0, 1.0, 0.0), 9.5, 1, 0.0)

        assert (True, 9.5) == (granted, at)
        assert (10.0, 2.0, 0.0) == state

    def test_nothing_goes_before_a_booked_slot(self):
        """
        Once a waiter is booked, a later request waits after it even when
        the bucket would have room before its slot (floats too coarse to
        hold the exact slot).
        """
        bucket = BucketAlgorithm(rate=1e9 / 30, capacity=2.0)
        start = 1e9  # floats here are 1.2e-7 s apart
        state, _, _ = bucket.decide(bucket.fresh(), start, 1.0, 0.0)
        state, _, slot = bucket.decide(state, start, 2.0, 1.0)

        after, granted, at = bucket.decide(state, start, 1.0, 1.0)

        assert slot > start
        assert (True, True) == (granted, at > slot)
