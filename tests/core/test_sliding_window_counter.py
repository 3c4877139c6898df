"""
The sliding-window counter core.
"""

from __future__ import annotations

import math

from hypothesis import given

from stalwart._core.limits import SlidingWindowCounterAlgorithm
from strategies_limiters import (
    TOL,
    any_steps,
    granted_slots,
    run,
    sliding_counters,
    traces,
)


class TestSlidingWindowCounter:
    @given(sliding_counters(), traces(any_steps))
    def test_documented_bound(self, counter, trace):
        """
        Each aligned window holds at most *limit*, and any window of
        length *period* at most twice the limit.
        """
        _, results = run(counter, trace)
        slots = granted_slots(results)
        per_window = {}
        for slot, cost in slots:
            index = math.floor(slot / counter.period)
            per_window[index] = per_window.get(index, 0.0) + cost

        assert all(t <= counter.quota + TOL for t in per_window.values())
        for end, _ in slots:
            total = sum(c for t, c in slots if end - counter.period < t <= end)
            assert total <= 2 * counter.quota

    @given(sliding_counters(), traces())
    def test_matches_weighted_model_without_waits(self, counter, trace):
        """
        Without waiting, a request is granted exactly when the previous
        window's count, weighted by its overlap, plus the current count
        leaves room for it.
        """
        trace = [(step, cost, 0.0) for step, cost, _ in trace]
        _, results = run(counter, trace)
        counts = {}
        for now, cost, granted, _ in results:
            k = math.floor(now / counter.period)
            weight = 1 - (now - k * counter.period) / counter.period
            estimate = counts.get(k - 1, 0.0) * weight + counts.get(k, 0.0)
            assert (estimate + cost <= counter.quota + 1e-9) == granted
            if granted:
                counts[k] = counts.get(k, 0.0) + cost

    def test_weighted_previous_window(self):
        """
        Half-way through a window, the previous one counts for half.
        """
        counter = SlidingWindowCounterAlgorithm(4.0, 10.0)
        state = counter.fresh()
        for _ in range(4):
            state, _, _ = counter.decide(state, 1.0, 1, 0.0)

        state, first, _ = counter.decide(state, 15.0, 1, 0.0)
        state, _, _ = counter.decide(state, 15.0, 1, 0.0)
        _, third, at = counter.decide(state, 15.0, 1, 0.0)

        assert (True, False, 17.5) == (first, third, at)
        assert (0, 15.0, 4) == counter.status(state, 15.0)

    def test_waits_into_the_next_window(self):
        """
        A request that cannot fit in the current window is booked where
        the weighted count first allows it, and later ones after it.
        """
        counter = SlidingWindowCounterAlgorithm(2.0, 10.0)
        state, _, _ = counter.decide(counter.fresh(), 0.0, 2, 0.0)

        state, granted, at = counter.decide(state, 5.0, 1, 60.0)
        _, now, _ = counter.decide(state, 14.0, 1, 0.0)

        assert (True, 15.0) == (granted, at)
        assert (1, 2.0, 1.0, 15.0) == state
        assert not now
        assert (0, 25.0, 2) == counter.status(state, 5.0)

    def test_refund(self):
        """
        A refund takes the cost off the window it was counted in.
        """
        counter = SlidingWindowCounterAlgorithm(5.0, 10.0)
        fresh = counter.fresh()
        first, _, _ = counter.decide(fresh, 1.0, 2, 0.0)
        second, _, _ = counter.decide(first, 1.0, 1, 0.0)

        same = counter.refund(
            second, 2.0, cost=2, slot=1.0, before=fresh, after=first
        )
        previous = counter.refund(
            (1, 3.0, 0.0, 1.0),
            12.0,
            cost=2,
            slot=1.0,
            before=fresh,
            after=first,
        )
        gone = counter.refund(
            (5, 0.0, 1.0, 51.0),
            52.0,
            cost=2,
            slot=1.0,
            before=fresh,
            after=first,
        )

        assert (0, 0.0, 1.0, -math.inf) == same
        assert (1, 1.0, 0.0, 1.0) == previous
        assert (5, 0.0, 1.0, 51.0) == gone

    def test_status_of_previous_window(self):
        """
        With nothing counted in the current window, the previous one
        resets at the current window's end.
        """
        counter = SlidingWindowCounterAlgorithm(4.0, 10.0)

        status = counter.status((1, 4.0, 0.0, 12.0), 15.0)

        assert (2, 5.0, 4) == status

    def test_a_full_cost_behind_a_full_window(self):
        """
        A cost of the whole limit, behind a full window, waits until both
        windows have passed.
        """
        counter = SlidingWindowCounterAlgorithm(2.0, 10.0)
        state, _, _ = counter.decide(counter.fresh(), 5.0, 2, 0.0)

        _, granted, at = counter.decide(state, 5.0, 2, 0.0)

        assert (False, 20.0) == (granted, at)

    def test_room_in_the_next_window(self):
        """
        With the current window full, a request fits in the next one as
        soon as the weight of this one has dropped enough.
        """
        counter = SlidingWindowCounterAlgorithm(4.0, 10.0)
        state, _, _ = counter.decide(counter.fresh(), 5.0, 4, 0.0)

        _, granted, at = counter.decide(state, 5.0, 2, 0.0)

        assert (False, 15.0) == (granted, at)
