"""
The fixed window core.
"""

from __future__ import annotations

import math

from hypothesis import given

from stalwart._core.limits import FixedWindowAlgorithm
from strategies_limiters import (
    any_steps,
    fixed_windows,
    granted_slots,
    run,
    traces,
)


class TestFixedWindow:
    @given(fixed_windows(), traces(any_steps))
    def test_at_most_limit_per_aligned_window(self, window, trace):
        """
        Each aligned window holds at most *limit*, reservations counted in
        the window of their slot.
        """
        _, results = run(window, trace)
        totals = {}
        for slot, cost in granted_slots(results):
            index = math.floor(slot / window.period)
            totals[index] = totals.get(index, 0.0) + cost

        assert all(total <= window.quota for total in totals.values())

    @given(fixed_windows(), traces())
    def test_matches_model_without_waits(self, window, trace):
        """
        Without waiting, a request is granted exactly when its window has
        room for it.
        """
        trace = [(step, cost, 0.0) for step, cost, _ in trace]
        _, results = run(window, trace)
        counts = {}

        for now, cost, granted, _ in results:
            index = math.floor(now / window.period)
            fits = counts.get(index, 0.0) + cost <= window.quota
            assert fits == granted
            if granted:
                counts[index] = counts.get(index, 0.0) + cost

    def test_waits_for_next_window(self):
        """
        A request that does not fit is booked at the next window's start,
        and later ones follow it there.
        """
        window = FixedWindowAlgorithm(2.0, 10.0)
        _, state, _ = window.reserve(window.fresh(), 3.0, 2, 0.0)

        granted, state, wait = window.reserve(state, 4.0, 1, 60.0)
        _, state, second = window.reserve(state, 5.0, 1, 60.0)

        assert granted
        assert (6.0, 5.0) == (wait, second)
        assert (1.0, 2.0) == state
        assert (0, 15.0) == window.status(state, 5.0)
        assert (0, 10.0) == window.status(state, 10.0)

    def test_refund(self):
        """
        A refund takes the cost off its window while it is the one booked.
        """
        window = FixedWindowAlgorithm(5.0, 10.0)
        _, first, _ = window.reserve(window.fresh(), 1.0, 2, 0.0)
        _, second, _ = window.reserve(first, 1.0, 1, 0.0)

        same = window.refund(
            second, 2.0, cost=2, before=window.fresh(), after=first, slot=1.0
        )
        gone = window.refund(
            (1.0, 1.0),
            12.0,
            cost=2,
            before=window.fresh(),
            after=first,
            slot=1.0,
        )

        assert (0.0, 1.0) == same
        assert (1.0, 1.0) == gone
