"""
The breaker's pure core: the sliding windows against naive models, and the
lock-free attributes the shell reads.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from stalwart._core.circuit import BreakerCore, CircuitState
from stalwart._core.windows import FAILURE, SLOW, BucketRing, CountRing


FLAGS = st.sampled_from([0, FAILURE, SLOW, FAILURE | SLOW])


def naive(outcomes: list[int]) -> tuple[int, int, int]:
    """
    Totals of a list of outcome flags, counted one by one.
    """
    return (
        len(outcomes),
        sum(1 for o in outcomes if o & FAILURE),
        sum(1 for o in outcomes if o & SLOW),
    )


class TestCountRing:
    @given(size=st.integers(1, 8), outcomes=st.lists(FLAGS, max_size=40))
    def test_matches_the_last_outcomes(self, size, outcomes):
        """
        The ring's totals are those of the last *size* outcomes.
        """
        ring = CountRing(size)
        for flags in outcomes:
            ring.record(flags, 0.0)

        assert naive(outcomes[-size:]) == ring.totals(0.0)

    def test_memory_follows_the_calls(self):
        """
        A ring of a huge size holds only the outcomes it was given, one
        byte each, and counts them exactly.
        """
        ring = CountRing(10**12)
        for flags in (FAILURE, 0, SLOW):
            ring.record(flags, 0.0)

        assert 3 == len(ring._flags)
        assert (3, 1, 1) == ring.totals(0.0)

    def test_clear(self):
        """
        clear() forgets everything.
        """
        ring = CountRing(2)
        ring.record(FAILURE, 0.0)
        ring.clear()

        assert (0, 0, 0) == ring.totals(0.0)


class TestBucketRing:
    @given(
        length=st.sampled_from([1.0, 7.0, 10.0, 60.0]),
        buckets=st.integers(1, 12),
        steps=st.lists(
            st.tuples(st.floats(0, 20, allow_nan=False), FLAGS), max_size=40
        ),
        read_after=st.floats(0, 30, allow_nan=False),
    )
    def test_matches_the_bucket_rule(self, length, buckets, steps, read_after):
        """
        An outcome at t is counted at now while floor(now / width) -
        floor(t / width) < buckets.
        """
        ring = BucketRing(length, buckets)
        width = length / buckets
        now = 0.0
        recorded: list[tuple[float, int]] = []
        for dt, flags in steps:
            now += dt
            ring.record(flags, now)
            recorded.append((now, flags))
        now += read_after
        current = math.floor(now / width)
        inside = [
            flags
            for t, flags in recorded
            if current - math.floor(t / width) < buckets
        ]

        assert naive(inside) == ring.totals(now)

    def test_granularity(self):
        """
        With TimeWindow(60) in 10 buckets an outcome counts for 54 to 60
        seconds.
        """
        early, late = BucketRing(60.0, 10), BucketRing(60.0, 10)
        early.record(FAILURE, 0.0)
        late.record(FAILURE, 5.9)

        assert (1, 1, 0) == early.totals(59.9)
        assert (0, 0, 0) == early.totals(60.0)
        assert (1, 1, 0) == late.totals(59.9)
        assert (0, 0, 0) == late.totals(60.0)

    def test_clock_going_backwards(self):
        """
        A clock that goes backwards records into the current bucket.
        """
        ring = BucketRing(10.0, 10)
        ring.record(FAILURE, 5.0)
        ring.record(0, 1.0)

        assert (2, 1, 0) == ring.totals(5.5)
        assert (0, 0, 0) == ring.totals(15.0)


class TestCore:
    def test_gate_and_refusal_time_follow_the_state(self):
        """
        The attributes read without the lock match each state.
        """
        core = BreakerCore(failure_threshold=1, recovery_time=5.0)

        assert (0, -math.inf, False) == (
            core.gate,
            core.refuse_until,
            core.dirty,
        )

        core.record(1.0, core.admit(1.0), FAILURE)

        assert CircuitState.OPEN == core.state
        assert (-1, 6.0) == (core.gate, core.refuse_until)
        assert -1 == core.admit(2.0)
        assert 4.0 == core.retry_after(2.0)

        epoch = core.admit(6.0)

        assert CircuitState.HALF_OPEN == core.state
        assert (-1, -math.inf) == (core.gate, core.refuse_until)
        assert core.retry_after(6.0) is None

        core.record(6.0, epoch, 0)

        assert (core.generation, False) == (core.gate, core.dirty)

        core.force_open(7.0)

        assert (-1, math.inf) == (core.gate, core.refuse_until)
        assert core.retry_after(7.0) is None

    def test_log_only_when_tracked(self):
        """
        Transitions are logged only when the shell asks (it has hooks).
        """
        core = BreakerCore(failure_threshold=1, recovery_time=5.0)
        core.force_open(0.0)

        assert [] == core.drain()

        core.track = True
        core.reset(1.0)

        assert [
            (CircuitState.FORCED_OPEN, CircuitState.CLOSED, 1.0, 0.0)
        ] == core.drain()
        assert 0 == len(core.log)

    def test_window_rates(self):
        """
        rates() reads None below minimum_calls, then the window's rates.
        """
        core = BreakerCore(
            failure_threshold=None,
            failure_rate=1.0,
            slow_call_rate=1.0,
            window=CountRing(4),
            minimum_calls=2,
            recovery_time=1.0,
        )
        core.record(0.0, 0, FAILURE)

        assert (None, None) == core.rates(0.0)

        core.record(0.0, 0, SLOW)

        assert (0.5, 0.5) == core.rates(0.0)
