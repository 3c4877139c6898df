"""
The leaky bucket core, as a meter and as a shaper.
"""

from __future__ import annotations

from hypothesis import given

from stalwart._core.limits import LeakyBucketAlgorithm
from strategies_limiters import TOL, granted_slots, leaky_buckets, run, traces


class TestMeter:
    @given(leaky_buckets(shape=False), traces())
    def test_at_most_capacity_plus_rate_times_t(self, bucket, trace):
        """
        In any interval of length T the meter lets through at most
        ``capacity + rate * T``.
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

    def test_overflow_refused(self):
        """
        The meter refuses what would overflow and says when it will fit.
        """
        bucket = LeakyBucketAlgorithm(rate=2.0, capacity=3.0)
        _, state, _ = bucket.reserve(bucket.fresh(), 0.0, 3, 0.0)

        refused = bucket.reserve(state, 0.0, 2, 0.0)
        waited = bucket.reserve(state, 0.0, 2, 1.0)

        assert (False, state, 1.0) == refused
        assert (True, (2.5,), 1.0) == waited
        assert (0, 1.5) == bucket.status(state, 0.0)


class TestShaper:
    @given(leaky_buckets(shape=True), traces())
    def test_slots_evenly_spaced_and_queue_bounded(self, bucket, trace):
        """
        Granted requests are released one after the other, each
        ``cost / rate`` after the one before, and no more than *capacity*
        is ever queued.
        """
        state = bucket.fresh()
        now = 0.0
        slots = []
        for step, cost, max_wait in trace:
            now += step
            granted, after, wait = bucket.reserve(state, now, cost, max_wait)
            if granted:
                assert (after[0] - now) * bucket.rate <= bucket.capacity + TOL
                slots.append((now + wait, cost))
                state = after

        for (first, cost), (second, _) in zip(slots, slots[1:]):
            assert second >= first + cost / bucket.rate - TOL

    def test_release_at_slots_and_full_queue(self):
        """
        Waiters are released at their slots; a full queue refuses at once
        whatever the wait allowed.
        """
        bucket = LeakyBucketAlgorithm(rate=2.0, capacity=2.0, shape=True)
        state = bucket.fresh()

        waits = []
        for _ in range(2):
            _, state, wait = bucket.reserve(state, 0.0, 1, 10.0)
            waits.append(wait)
        full = bucket.reserve(state, 0.0, 1, 10.0)

        assert [0.0, 0.5] == waits
        assert (False, state, 1.0) == full
        assert (0, 1.0) == bucket.status(state, 0.0)
        assert (1, 0.0) == bucket.status(state, 1.0)

    def test_refund_of_older_slot_keeps_spacing(self):
        """
        A shaper only gives back the latest slot.
        """
        bucket = LeakyBucketAlgorithm(rate=1.0, capacity=5.0, shape=True)
        _, first, _ = bucket.reserve(bucket.fresh(), 0.0, 1, 10.0)
        _, second, _ = bucket.reserve(first, 0.0, 1, 10.0)

        kept = bucket.refund(
            second, 0.0, cost=1, before=bucket.fresh(), after=first, slot=0.0
        )
        meter = LeakyBucketAlgorithm(rate=1.0, capacity=5.0)
        drained = meter.refund(
            second, 0.0, cost=1, before=bucket.fresh(), after=first, slot=0.0
        )

        assert second == kept
        assert (1.0,) == drained
