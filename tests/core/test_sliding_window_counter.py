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

    def test_weighted_previous_window(self):
        """
        Half-way through a window, the previous one counts for half.
        """
        counter = SlidingWindowCounterAlgorithm(4.0, 10.0)
        state = counter.fresh()
        for _ in range(4):
            _, state, _ = counter.reserve(state, 1.0, 1, 0.0)

        two = [counter.reserve(state, 15.0, 1, 0.0)[0] for _ in range(1)]
        _, state, _ = counter.reserve(state, 15.0, 1, 0.0)
        _, state, _ = counter.reserve(state, 15.0, 1, 0.0)
        third = counter.reserve(state, 15.0, 1, 0.0)

        assert [True] == two
        assert (False, 2.5) == (third[0], third[2])
        assert (0, 15.0) == counter.status(state, 15.0)

    def test_waits_into_the_next_window(self):
        """
        A request that cannot fit in the current window is booked where
        the weighted count first allows it.
        """
        counter = SlidingWindowCounterAlgorithm(2.0, 10.0)
        _, state, _ = counter.reserve(counter.fresh(), 0.0, 2, 0.0)

        granted, state, wait = counter.reserve(state, 5.0, 1, 60.0)

        assert granted
        assert 10.0 == wait
        assert (1.0, 2.0, 1.0, 15.0) == state

    def test_refund(self):
        """
        A refund takes the cost off the window it was counted in.
        """
        counter = SlidingWindowCounterAlgorithm(5.0, 10.0)
        _, first, _ = counter.reserve(counter.fresh(), 1.0, 2, 0.0)
        _, second, _ = counter.reserve(first, 1.0, 1, 0.0)

        same = counter.refund(
            second, 2.0, cost=2, before=counter.fresh(), after=first, slot=1.0
        )
        previous = counter.refund(
            (1.0, 3.0, 0.0, 1.0),
            12.0,
            cost=2,
            before=first,
            after=first,
            slot=1.0,
        )
        gone = counter.refund(
            (5.0, 0.0, 1.0, 51.0),
            52.0,
            cost=2,
            before=first,
            after=first,
            slot=1.0,
        )

        assert (0.0, 0.0, 1.0, 1.0) == same
        assert (1.0, 1.0, 0.0, 1.0) == previous
        assert (5.0, 0.0, 1.0, 51.0) == gone

    def test_status_of_previous_window(self):
        """
        With nothing counted in the current window, the previous one
        resets at the current window's end.
        """
        counter = SlidingWindowCounterAlgorithm(4.0, 10.0)

        status = counter.status((1.0, 4.0, 0.0, 12.0), 15.0)

        assert (2, 5.0) == status
