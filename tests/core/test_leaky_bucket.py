"""
The leaky bucket cores: the meter (the bucket core) and the shaper.
"""

from __future__ import annotations

from hypothesis import given

from stalwart._core.limits import BucketAlgorithm, ShaperAlgorithm
from strategies_limiters import TOL, run, shapers, traces


class TestMeter:
    def test_overflow_refused(self):
        """
        The meter refuses what would overflow and says when it will fit.
        """
        bucket = BucketAlgorithm(rate=2.0, capacity=3.0)
        state, _, _ = bucket.decide(bucket.fresh(), 0.0, 3, 0.0)

        refused = bucket.decide(state, 0.0, 2, 0.0)
        waited = bucket.decide(state, 0.0, 2, 1.0)

        assert (state, False, 1.0) == refused
        assert ((1.0, 3.0, 1.0), True, 1.0) == waited
        assert (0, 1.5, 3) == bucket.status(state, 0.0)


class TestShaper:
    @given(shapers(), traces())
    def test_slots_evenly_spaced_and_queue_bounded(self, shaper, trace):
        """
        Granted requests are released one after the other, each
        ``cost / rate`` after the one before, and no more than *capacity*
        is ever queued.
        """
        _, results = run(shaper, trace)
        slots = [(at, cost) for now, cost, ok, at in results if ok]
        queued = [
            (at - now) * shaper.rate
            for now, _, ok, at in results
            if ok and at > now
        ]

        assert all(q <= shaper.capacity + TOL for q in queued)
        for (first, cost), (second, _) in zip(slots, slots[1:]):
            assert second >= first + cost / shaper.rate - TOL

    def test_release_at_slots_and_full_queue(self):
        """
        Waiters are released at their slots; a full queue refuses at once
        whatever the wait allowed, with the time the queue empties.
        """
        shaper = ShaperAlgorithm(rate=2.0, capacity=2.0)
        state = shaper.fresh()

        slots = []
        for _ in range(3):
            state, _, at = shaper.decide(state, 0.0, 1, 10.0)
            slots.append(at)
        full = shaper.decide(state, 0.0, 1, 10.0)

        assert [0.0, 0.5, 1.0] == slots
        assert (state, False, 1.0) == full
        assert (0, 1.0, 2) == shaper.status(state, 0.0)
        assert (1, 0.0, 2) == shaper.status(state, 1.0)

    def test_try_only_when_no_one_is_queued(self):
        """
        Without a wait, a request goes only when the queue is empty.
        """
        shaper = ShaperAlgorithm(rate=1.0, capacity=5.0)
        state, first, _ = shaper.decide(shaper.fresh(), 0.0, 1, 0.0)

        _, second, at = shaper.decide(state, 0.0, 1, 0.0)

        assert (True, False, 1.0) == (first, second, at)

    def test_refund_of_older_slot_keeps_spacing(self):
        """
        A shaper gives back only the latest slot.
        """
        shaper = ShaperAlgorithm(rate=1.0, capacity=5.0)
        fresh = shaper.fresh()
        first, _, _ = shaper.decide(fresh, 0.0, 1, 10.0)
        second, _, _ = shaper.decide(first, 0.0, 1, 10.0)

        kept = shaper.refund(
            second, 0.0, cost=1, slot=0.0, before=fresh, after=first
        )
        latest = shaper.refund(
            second, 0.0, cost=1, slot=1.0, before=first, after=second
        )

        assert second == kept
        assert first == latest
