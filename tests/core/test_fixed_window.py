"""
The fixed window core.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from stalwart._core.limits import FixedWindowAlgorithm, window_of
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

    @given(
        st.floats(0.0, 1e9),
        st.sampled_from([0.1, 0.3, 0.7, 1 / 3, 1.1]),
        st.integers(1, 10),
    )
    def test_limit_at_any_window_start(self, start, period, quota):
        """
        Requests at one instant get exactly the limit, wherever the
        window boundaries fall.
        """
        window = FixedWindowAlgorithm(float(quota), period)
        state = window.fresh()

        granted = 0
        for _ in range(2 * quota + 1):
            state, ok, _ = window.decide(state, start, 1.0, 0.0)
            granted += ok

        assert quota == granted

    def test_window_start_where_division_rounds_down(self):
        """
        At 4.3 s, with ten per 0.1 s, ten requests are granted, not twenty.
        """
        window = FixedWindowAlgorithm(10.0, 0.1)
        state = window.fresh()

        granted = 0
        for _ in range(30):
            state, ok, _ = window.decide(state, 4.3, 1.0, 0.0)
            granted += ok

        assert 10 == granted
        assert 43 == window_of(4.3, 0.1)

    def test_waits_for_next_window(self):
        """
        A request that does not fit is booked at the next window's start,
        and later ones follow it there.
        """
        window = FixedWindowAlgorithm(2.0, 10.0)
        state, _, _ = window.decide(window.fresh(), 3.0, 2, 0.0)

        state, granted, at = window.decide(state, 4.0, 1, 60.0)
        state, _, second = window.decide(state, 5.0, 1, 60.0)

        assert granted
        assert (10.0, 10.0) == (at, second)
        assert (1, 2.0) == state
        assert (0, 15.0, 2) == window.status(state, 5.0)
        assert (0, 10.0, 2) == window.status(state, 10.0)

    def test_clock_stepping_back_into_an_earlier_window(self):
        """
        A time before the window counted last waits for that window.
        """
        window = FixedWindowAlgorithm(2.0, 10.0)

        _, granted, at = window.decide((1, 1.0), 5.0, 1, 0.0)

        assert (False, 10.0) == (granted, at)

    def test_refund(self):
        """
        A refund takes the cost off its window while it is the one counted.
        """
        window = FixedWindowAlgorithm(5.0, 10.0)
        first, _, _ = window.decide(window.fresh(), 1.0, 2, 0.0)
        second, _, _ = window.decide(first, 1.0, 1, 0.0)

        same = window.refund(
            second, 2.0, cost=2, slot=1.0, before=window.fresh(), after=first
        )
        gone = window.refund(
            (1, 1.0),
            12.0,
            cost=2,
            slot=1.0,
            before=window.fresh(),
            after=first,
        )

        assert (0, 1.0) == same
        assert (1, 1.0) == gone
