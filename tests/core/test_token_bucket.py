"""
The token bucket core.
"""

from __future__ import annotations

from hypothesis import given

from stalwart._core.limits import TokenBucketAlgorithm
from strategies_limiters import (
    TOL,
    granted_slots,
    run,
    token_buckets,
    traces,
)


class TestTokenBucket:
    @given(token_buckets(), traces())
    def test_at_most_capacity_plus_rate_times_t(self, bucket, trace):
        """
        In any interval of length T, the granted cost is at most
        ``capacity + rate * T`` (reservations counted at their slots).
        """
        _, results = run(bucket, trace)
        slots = granted_slots(results)

        for i, (start, _) in enumerate(slots):
            total = 0.0
            for end, cost in slots[i:]:
                total += cost
                assert (
                    total
                    <= bucket.capacity + bucket.rate * (end - start) + TOL
                )

    def test_burst_then_refill(self):
        """
        A full bucket grants a burst of *capacity*, then one token per
        ``1 / rate`` seconds.
        """
        bucket = TokenBucketAlgorithm(rate=10.0, capacity=2.0)
        state = bucket.fresh()

        ok1, state, _ = bucket.reserve(state, 0.0, 1, 0.0)
        ok2, state, _ = bucket.reserve(state, 0.0, 1, 0.0)
        refused, _, retry_after = bucket.reserve(state, 0.0, 1, 0.0)
        ok3, state, _ = bucket.reserve(state, 0.1, 1, 0.0)

        assert (True, True, False, True) == (ok1, ok2, refused, ok3)
        assert 0.1 == retry_after
        assert (0, 0.2) == bucket.status(state, 0.1)

    def test_reservations_queue_in_order(self):
        """
        Reservations take the bucket into debt, so each waits after the
        one before it.
        """
        bucket = TokenBucketAlgorithm(rate=1.0, capacity=1.0)
        state = bucket.fresh()

        waits = []
        for _ in range(3):
            _, state, wait = bucket.reserve(state, 0.0, 1, 10.0)
            waits.append(wait)

        assert [0.0, 1.0, 2.0] == waits

    def test_refund_of_older_reservation_gives_tokens(self):
        """
        Refunding a reservation that is no longer the latest puts its
        tokens back without moving the later slot.
        """
        bucket = TokenBucketAlgorithm(rate=1.0, capacity=2.0)
        state = (0.0, 0.0)
        _, first, _ = bucket.reserve(state, 0.0, 1, 10.0)
        _, second, _ = bucket.reserve(first, 0.0, 1, 10.0)

        state = bucket.refund(
            second, 0.5, cost=1, before=state, after=first, slot=1.0
        )

        assert (-0.5, 0.5) == state

    def test_clock_stepping_back(self):
        """
        A time before the last refill adds nothing and counts the wait
        from the last refill.
        """
        bucket = TokenBucketAlgorithm(rate=1.0, capacity=1.0)

        granted, state, wait = bucket.reserve((0.0, 10.0), 4.0, 1, 100.0)

        assert granted
        assert 7.0 == wait
        assert (-1.0, 10.0) == state
