"""
The sliding-window log core: exact, checked against a brute-force model.
"""

from __future__ import annotations

from hypothesis import given

from stalwart._core.limits import SlidingWindowLogAlgorithm
from strategies_limiters import (
    any_steps,
    granted_slots,
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

    def test_lagging_time_sees_entries_expired_later(self):
        """
        A request whose time lags one the log was read at is not granted
        room freed by entries that expired only at that later time.
        """
        log = SlidingWindowLogAlgorithm(2.0, 4.0)
        state = log.fresh()
        log.reserve(state, 0.0, 1.0, 0.0)
        log.reserve(state, 0.0625, 1.0, 0.0)
        log.reserve(state, 4.0, 2.0, 0.0)  # refused; expires the entry at 0

        granted, _, wait = log.reserve(state, 3.9375, 1.0, 0.0)

        assert (False, 0.0625) == (granted, wait)

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
        The log keeps at most *limit* entries of one window (seen from its
        latest slot) and compacts the rest.
        """
        state, _ = run(log, trace)
        log.idle(state, max(state.times, default=0.0))  # expires entries

        assert len(state) <= log.quota
        assert len(state.times) <= 2 * log.quota + 64

    def test_compacts_long_runs(self):
        """
        Expired entries are dropped in amortised O(1): the lists stay short
        however many requests went through.
        """
        log = SlidingWindowLogAlgorithm(10.0, 1.0)
        state = log.fresh()
        for i in range(10_000):
            _, state, _ = log.reserve(state, i * 0.1, 1, 0.0)

        assert 10 == len(state)
        assert len(state.times) < 200

    def test_waits_for_the_oldest_entries(self):
        """
        A request waits until enough of the oldest entries expire.
        """
        log = SlidingWindowLogAlgorithm(3.0, 10.0)
        state = log.fresh()
        for now in (0.0, 1.0, 2.0):
            _, state, _ = log.reserve(state, now, 1, 0.0)

        one = log.reserve(state, 3.0, 1, 0.0)
        two = log.reserve(state, 3.0, 2, 0.0)

        assert (False, 7.0) == (one[0], one[2])
        assert (False, 8.0) == (two[0], two[2])
        assert (0, 9.0) == log.status(state, 3.0)
        assert (1, 2.0) == log.status(state, 10.0)

    def test_refund_only_latest(self):
        """
        Refund removes the latest entry if it is the one booked, else
        leaves the log alone.
        """
        log = SlidingWindowLogAlgorithm(5.0, 10.0)
        _, state, _ = log.reserve(log.fresh(), 0.0, 2, 0.0)
        _, state, _ = log.reserve(state, 1.0, 1, 0.0)

        log.refund(state, 1.0, cost=2, before=state, after=state, slot=0.0)
        log.refund(state, 1.0, cost=3, before=state, after=state, slot=1.0)
        kept = len(state)
        log.refund(state, 1.0, cost=1, before=state, after=state, slot=1.0)
        log.refund(state, 1.0, cost=2, before=state, after=state, slot=0.0)
        log.refund(state, 1.0, cost=2, before=state, after=state, slot=0.0)

        assert 2 == kept
        assert 0 == len(state)

    def test_status_with_a_booked_future_entry(self):
        """
        While a booked entry waits for its slot, nothing is left now.
        """
        log = SlidingWindowLogAlgorithm(2.0, 10.0)
        _, state, _ = log.reserve(log.fresh(), 0.0, 2, 0.0)
        _, state, wait = log.reserve(state, 1.0, 1, 60.0)

        assert 9.0 == wait
        assert (0, 19.0) == log.status(state, 1.0)
        assert (2, 0.0) == log.status(log.fresh(), 1.0)
