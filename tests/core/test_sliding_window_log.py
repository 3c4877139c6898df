"""
The sliding-window log core: exact, checked against a brute-force model.
"""

from __future__ import annotations

from hypothesis import given

from stalwart._core.limits import COMPACT_AFTER, SlidingWindowLogAlgorithm
from strategies_limiters import (
    any_steps,
    granted_slots,
    live,
    run,
    sliding_logs,
    traces,
)


class TestSlidingWindowLog:
    @given(sliding_logs(), traces(any_steps))
    def test_at_most_limit_in_every_window(self, log, trace):
        """
        Every window ``(t - period, t]`` holds at most *limit*.
        """
        _, results = run(log, trace)
        slots = granted_slots(results)

        for end, _ in slots:
            total = sum(c for t, c in slots if end - log.period < t <= end)
            assert total <= log.quota

    def test_lagging_time_is_served_at_the_time_read(self):
        """
        A request stamped before the time the log was last read at is
        served as if at that time: room freed only then is not room in
        its own window, and its entry is logged at that time.
        """
        log = SlidingWindowLogAlgorithm(2.0, 4.0)
        state = log.fresh()
        state, _, _ = log.decide(state, 0.0, 1.0, 0.0)
        state, _, _ = log.decide(state, 0.0625, 1.0, 0.0)
        state, _, _ = log.decide(state, 4.0, 2.0, 0.0)  # refused; expires 0

        state, granted, at = log.decide(state, 3.9375, 1.0, 0.0)

        assert (True, 3.9375) == (granted, at)
        assert [(0.0625, 1.0), (4.0, 1.0)] == live(log, state, 4.0)

    @given(sliding_logs(), traces())
    def test_matches_brute_force_model(self, log, trace):
        """
        Without waiting, a request is granted exactly when the requests
        granted in the last *period* leave room for it.
        """
        trace = [(step, cost, 0.0) for step, cost, _ in trace]
        _, results = run(log, trace)
        granted_so_far = []

        for now, cost, granted, _ in results:
            held = sum(c for t, c in granted_so_far if t > now - log.period)
            assert (held + cost <= log.quota) == granted
            if granted:
                granted_so_far.append((now, cost))

    @given(sliding_logs(), traces())
    def test_memory_bounded(self, log, trace):
        """
        The log keeps at most *limit* live entries and compacts the rest.
        """
        state, _ = run(log, trace)
        log.idle(state, max(state.times, default=0.0))  # expires entries

        assert len(state) <= log.quota
        assert len(state.times) <= 2 * log.quota + COMPACT_AFTER

    def test_compacts_long_runs(self):
        """
        Expired entries are dropped in amortised O(1): the lists stay short
        however many requests went through.
        """
        log = SlidingWindowLogAlgorithm(10.0, 1.0)
        state = log.fresh()
        for i in range(10_000):
            state, _, _ = log.decide(state, i * 0.1, 1, 0.0)

        assert 10 == len(state)
        assert len(state.times) < 200

    def test_totals_restart_when_empty(self):
        """
        Once every entry has expired, the running totals start again from
        zero, so they never grow past one window's worth.
        """
        log = SlidingWindowLogAlgorithm(3.0, 1.0)
        state = log.fresh()
        for i in range(3):
            state, _, _ = log.decide(state, 0.0, 1 / 3, 0.0)
        state, _, _ = log.decide(state, 5.0, 1 / 3, 0.0)

        assert [1 / 3] == state.totals
        assert 3 == state.dropped

    def test_waits_for_the_oldest_entries(self):
        """
        A request waits until enough of the oldest entries expire.
        """
        log = SlidingWindowLogAlgorithm(3.0, 10.0)
        state = log.fresh()
        for now in (0.0, 1.0, 2.0):
            state, _, _ = log.decide(state, now, 1, 0.0)

        one = log.decide(state, 3.0, 1, 0.0)
        two = log.decide(state, 3.0, 2, 0.0)

        assert (False, 10.0) == one[1:]
        assert (False, 11.0) == two[1:]
        assert (0, 9.0, 3) == log.status(state, 3.0)
        assert (1, 2.0, 3) == log.status(state, 10.0)

    def test_refund_only_latest(self):
        """
        Refund removes the entry while it is the latest one, else leaves
        the log alone.
        """
        log = SlidingWindowLogAlgorithm(5.0, 10.0)
        state = log.fresh()
        marks = [log.mark(state)]
        state, _, _ = log.decide(state, 0.0, 2, 0.0)
        marks.append(log.mark(state))
        state, _, _ = log.decide(state, 1.0, 1, 0.0)
        marks.append(log.mark(state))

        log.refund(
            state, 1.0, cost=2, slot=0.0, before=marks[0], after=marks[1]
        )
        kept = len(state)
        log.refund(
            state, 1.0, cost=1, slot=1.0, before=marks[1], after=marks[2]
        )
        log.refund(
            state, 1.0, cost=2, slot=0.0, before=marks[0], after=marks[1]
        )

        assert 2 == kept
        assert 0 == len(state)

    def test_fractional_costs_rewind_exactly(self):
        """
        Two requests of a third and a booked half, rewound: the log is
        exactly as before the booking.
        """
        log = SlidingWindowLogAlgorithm(1.0, 10.0)
        state = log.fresh()
        for _ in range(2):
            state, _, _ = log.decide(state, 0.0, 1 / 3, 0.0)
        before = live(log, state, 0.0)
        mark = log.mark(state)

        state, granted, at = log.decide(state, 0.0, 0.5, 60.0)
        state = log.rewind(state, mark)

        assert (True, 10.0) == (granted, at)
        assert before == live(log, state, 0.0)

    def test_status_with_a_booked_future_entry(self):
        """
        While a booked entry waits for its slot, nothing is left now.
        """
        log = SlidingWindowLogAlgorithm(2.0, 10.0)
        state, _, _ = log.decide(log.fresh(), 0.0, 2, 0.0)
        state, _, at = log.decide(state, 1.0, 1, 60.0)

        assert 10.0 == at
        assert (0, 19.0, 2) == log.status(state, 1.0)
        assert (2, 0.0, 2) == log.status(log.fresh(), 1.0)
