"""
The circuit breaker's policies and transitions: consecutive failures,
windows, rates, slow calls, recovery and stale outcomes.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

import stalwart

from breaker_support import FACES, slow, through, trip
from helpers import Boom, boom, ok
from stalwart import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    CountWindow,
    TimeWindow,
)


class TestConsecutive:
    def test_opens_at_threshold(self, clock, invoke):
        """
        failure_threshold consecutive failures open it; the next call is
        refused with retry_after = recovery_time.
        """
        cb = CircuitBreaker(failure_threshold=3, recovery_time=10, clock=clock)
        for _ in range(2):
            with pytest.raises(Boom):
                invoke(cb, boom)

        assert CircuitState.CLOSED == cb.state

        with pytest.raises(Boom):
            invoke(cb, boom)
        clock.advance(4)
        with pytest.raises(CircuitOpenError) as e:
            invoke(cb, ok)

        assert CircuitState.OPEN == cb.state
        assert 6.0 == e.value.retry_after

    def test_success_resets_the_streak(self, clock, invoke):
        """
        A success in between starts the count again.
        """
        cb = CircuitBreaker(failure_threshold=2, clock=clock)
        with pytest.raises(Boom):
            invoke(cb, boom)
        result = invoke(cb, ok)
        with pytest.raises(Boom):
            invoke(cb, boom)

        assert "ok" == result
        assert CircuitState.CLOSED == cb.state
        assert 1 == cb.statistics().consecutive_failures

    def test_half_open_at_recovery_time_inclusive(self, clock, invoke):
        """
        The first call at exactly opened_at + recovery_time is a trial, and
        its success closes the breaker.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=5, clock=clock)
        trip(cb)
        clock.advance(4.5)
        with pytest.raises(CircuitOpenError):
            invoke(cb, ok)
        clock.advance(0.5)

        assert "ok" == invoke(cb, ok)
        assert CircuitState.CLOSED == cb.state

    def test_trial_failure_reopens(self, clock, invoke):
        """
        A failed trial re-opens for another recovery_time.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=5, clock=clock)
        trip(cb)
        clock.advance(5)
        with pytest.raises(Boom):
            invoke(cb, boom)
        with pytest.raises(CircuitOpenError) as e:
            invoke(cb, ok)

        assert CircuitState.OPEN == cb.state
        assert 5.0 == e.value.retry_after

    def test_success_threshold(self, clock):
        """
        With success_threshold=2 the first trial success leaves it half-open.
        """
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=1,
            half_open_max_calls=2,
            success_threshold=2,
            clock=clock,
        )
        trip(cb)
        clock.advance(1)
        cb.call(ok)

        assert CircuitState.HALF_OPEN == cb.state

        cb.call(ok)

        assert CircuitState.CLOSED == cb.state

    @pytest.mark.parametrize("face", FACES)
    @pytest.mark.parametrize(
        ("max_wait", "expected"),
        [(None, None), (5.0, 3.5)],
        ids=["no-max-wait", "max-wait"],
    )
    def test_half_open_full_never_says_zero(
        self, clock, face, max_wait, expected
    ):
        """
        While its only trial runs, a half-open breaker refuses with the
        time left until the trial must have reported, or None when that is
        unknown; never 0, so a caller waiting that long never spins.
        """
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=1,
            half_open_max_wait=max_wait,
            clock=clock,
        )
        trip(cb)
        clock.advance(1)
        permit = cb.acquire()
        clock.advance(1.5)
        with pytest.raises(CircuitOpenError) as e:
            through(face, cb, ok)
        permit.record_success()

        assert expected == e.value.retry_after
        assert CircuitState.CLOSED == cb.state

    def test_timedelta_durations(self, clock):
        """
        Durations accept timedelta.
        """
        cb = CircuitBreaker(
            recovery_time=timedelta(minutes=1),
            half_open_max_wait=timedelta(seconds=3),
            clock=clock,
        )

        assert 60.0 == cb.recovery_time
        assert 3.0 == cb.half_open_max_wait


class TestWindows:
    def test_n_of_last_m_calls(self, clock, invoke):
        """
        failure_threshold=2 with CountWindow(3): two failures among the
        last three calls open it, older ones have dropped out.
        """
        cb = CircuitBreaker(
            failure_threshold=2, window=CountWindow(3), clock=clock
        )
        with pytest.raises(Boom):
            invoke(cb, boom)
        invoke(cb, ok)
        invoke(cb, ok)
        invoke(cb, ok)  # the first failure leaves the window
        with pytest.raises(Boom):
            invoke(cb, boom)

        assert CircuitState.CLOSED == cb.state

        invoke(cb, ok)
        with pytest.raises(Boom):
            invoke(cb, boom)

        assert CircuitState.OPEN == cb.state

    def test_n_failures_within_t_seconds(self, clock, invoke):
        """
        failure_threshold=2 with TimeWindow(10, buckets=10): failures 10 s
        apart never meet; two within a second open it.
        """
        cb = CircuitBreaker(
            failure_threshold=2,
            window=TimeWindow(10.0, buckets=10),
            clock=clock,
        )
        with pytest.raises(Boom):
            invoke(cb, boom)
        clock.advance(10)
        with pytest.raises(Boom):
            invoke(cb, boom)

        assert CircuitState.CLOSED == cb.state

        clock.advance(0.5)
        with pytest.raises(Boom):
            invoke(cb, boom)

        assert CircuitState.OPEN == cb.state

    def test_failure_rate_waits_for_minimum_calls(self, clock, invoke):
        """
        The rate reads None below minimum_calls, and a rate equal to the
        threshold opens.
        """
        cb = CircuitBreaker(
            failure_rate=0.5,
            window=CountWindow(10),
            minimum_calls=4,
            clock=clock,
        )
        for _ in range(3):
            with pytest.raises(Boom):
                invoke(cb, boom)

        assert cb.statistics().failure_rate is None
        assert CircuitState.CLOSED == cb.state

        invoke(cb, ok)  # 3 of 4: the rate is evaluated for the first time

        assert CircuitState.OPEN == cb.state

    def test_rate_equal_to_threshold_opens(self, clock):
        """
        3 failures of 10 calls is a rate of exactly 0.3, which opens.
        """
        cb = CircuitBreaker(
            failure_rate=0.3, window=CountWindow(10), clock=clock
        )
        for _ in range(7):
            cb.call(ok)
        trip(cb, 2)

        assert CircuitState.CLOSED == cb.state

        trip(cb)

        assert CircuitState.OPEN == cb.state

    def test_failure_rate_over_time_window(self, clock):
        """
        A rate over a TimeWindow forgets calls older than the window.
        """
        cb = CircuitBreaker(
            failure_rate=0.5,
            window=TimeWindow(10.0),
            minimum_calls=2,
            clock=clock,
        )
        trip(cb)
        clock.advance(10)
        cb.call(ok)
        cb.call(ok)

        assert 0.0 == cb.statistics().failure_rate

        trip(cb, 2)

        assert CircuitState.OPEN == cb.state

    def test_default_minimum_calls(self):
        """
        minimum_calls defaults to the count window's size, or 10 over time.
        """
        count = CircuitBreaker(failure_rate=0.5, window=CountWindow(4))
        timed = CircuitBreaker(failure_rate=0.5, window=TimeWindow(60))

        assert 4 == count._core._minimum_calls
        assert 10 == timed._core._minimum_calls

    def test_slow_calls_open(self, clock, invoke):
        """
        Slow successes open the breaker on the slow-call rate alone; a
        call exactly slow_call_duration long is slow.
        """
        cb = CircuitBreaker(
            failure_rate=0.9,
            slow_call_rate=0.5,
            slow_call_duration=2.0,
            window=CountWindow(4),
            minimum_calls=2,
            clock=clock,
        )
        invoke(cb, slow(clock, 1.9))

        assert cb.statistics().slow_call_rate is None

        invoke(cb, slow(clock, 2.0))

        assert CircuitState.OPEN == cb.state
        assert 1 == cb.statistics().slow_calls

    def test_slow_failure_counts_as_both(self, clock, invoke):
        """
        A slow failure is a failure and a slow call.
        """
        cb = CircuitBreaker(
            failure_rate=1.0,
            slow_call_rate=1.0,
            slow_call_duration=1.0,
            window=CountWindow(5),
            clock=clock,
        )
        with pytest.raises(Boom):
            invoke(cb, slow(clock, 1.0, boom))
        stats = cb.statistics()

        assert (1, 1) == (stats.failures, stats.slow_calls)
        assert (1, 1) == (stats.window_failures, stats.window_slow_calls)

    def test_rate_policy_half_open_verdict_after_all_trials(self, clock):
        """
        Under a rate policy the trials decide together: 1 failure of 2
        trials is below 0.6, so it closes after the second.
        """
        cb = CircuitBreaker(
            failure_rate=0.6,
            window=CountWindow(2),
            recovery_time=1,
            half_open_max_calls=2,
            clock=clock,
        )
        trip(cb, 2)
        clock.advance(1)
        trip(cb)

        assert CircuitState.HALF_OPEN == cb.state
        assert 1.0 == cb.statistics().failure_rate

        cb.call(ok)

        assert CircuitState.CLOSED == cb.state
        assert 0 == cb.statistics().window_calls

    def test_rate_policy_half_open_reopens(self, clock):
        """
        Under a rate policy, trials whose failure rate reaches the
        threshold re-open it.
        """
        cb = CircuitBreaker(
            failure_rate=0.5,
            window=CountWindow(2),
            recovery_time=1,
            half_open_max_calls=2,
            clock=clock,
        )
        trip(cb, 2)
        clock.advance(1)
        cb.call(ok)
        trip(cb)

        assert CircuitState.OPEN == cb.state


class TestRecovery:
    def test_growing_recovery_time(self, clock):
        """
        Each consecutive trip multiplies the open period, up to the cap; a
        close starts again from recovery_time.
        """
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=1,
            recovery_multiplier=3,
            recovery_max=5,
            clock=clock,
        )
        periods = []
        for _ in range(4):
            trip(cb)
            periods.append(cb.statistics().open_until - clock.now())
            clock.advance(periods[-1])
        cb.call(ok)
        trip(cb)

        assert [1.0, 3.0, 5.0, 5.0] == periods
        assert clock.now() + 1.0 == cb.statistics().open_until

    def test_half_open_max_wait(self, clock):
        """
        Trials that never report send it back to OPEN at the end of the
        wait; their late outcome decides nothing.
        """
        events: list[stalwart.Event] = []
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=10,
            half_open_max_wait=3,
            clock=clock,
            hooks=events.append,
        )
        trip(cb)
        clock.advance(10)
        stuck = cb.acquire()
        clock.advance(3)
        with pytest.raises(CircuitOpenError) as e:
            cb.call(ok)
        stuck.record_success()

        assert CircuitState.OPEN == cb.state
        assert 10.0 == e.value.retry_after
        assert [
            ("closed", "open", 0.0),
            ("open", "half_open", 10.0),
            ("half_open", "open", 13.0),
        ] == [
            (ev.previous.value, ev.state.value, ev.at)
            for ev in events
            if isinstance(ev, stalwart.CircuitStateChanged)
        ]

    def test_lost_trial_reads_open_without_hooks(self, clock):
        """
        Without hooks too, reading the state sends a late half-open
        breaker back to OPEN.
        """
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=10,
            half_open_max_wait=3,
            clock=clock,
        )
        trip(cb)
        clock.advance(10)
        cb.acquire()
        clock.advance(3)

        assert CircuitState.OPEN == cb.state

    @pytest.mark.parametrize("read", ["state", "statistics"])
    def test_lost_trial_reads_open(self, clock, read):
        """
        A half-open breaker whose trial never reports reads OPEN as soon
        as half_open_max_wait has passed, through state or statistics(),
        with no call made; the transition is announced once, as of the end
        of the wait.
        """
        events: list[stalwart.Event] = []
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=10,
            half_open_max_wait=3,
            clock=clock,
            hooks=events.append,
        )

        def observe() -> CircuitState:
            if read == "state":
                return cb.state
            return cb.statistics().state

        trip(cb)
        clock.advance(10)
        cb.acquire()  # lost: never reports
        clock.advance(2.5)

        assert CircuitState.HALF_OPEN == observe()

        clock.advance(0.5)

        assert CircuitState.OPEN == observe()
        assert CircuitState.OPEN == observe()
        assert 13.0 + 10.0 == cb.statistics().open_until
        assert 0 == cb.statistics().half_open_calls
        assert [
            ("closed", "open", 0.0),
            ("open", "half_open", 10.0),
            ("half_open", "open", 13.0),
        ] == [
            (ev.previous.value, ev.state.value, ev.at)
            for ev in events
            if isinstance(ev, stalwart.CircuitStateChanged)
        ]

    def test_trial_reporting_after_max_wait(self, clock):
        """
        A trial that reports after half_open_max_wait re-opens the breaker
        as of the end of the wait, even though it succeeded.
        """
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=10,
            half_open_max_wait=5,
            clock=clock,
        )
        trip(cb)
        clock.advance(10)

        def slow_success() -> str:
            clock.advance(6)
            return "ok"

        result = cb.call(slow_success)

        assert "ok" == result
        assert CircuitState.OPEN == cb.state
        assert 15.0 + 10.0 == cb.statistics().open_until

    def test_zero_recovery_time(self, clock):
        """
        With recovery_time=0 the next call is already a trial.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=0, clock=clock)
        trip(cb)

        assert "ok" == cb.call(ok)
        assert CircuitState.CLOSED == cb.state


class TestStaleOutcomes:
    def test_closed_call_cannot_close_half_open(self, clock):
        """
        A call admitted while closed that succeeds during the half-open
        period does not close the breaker.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)
        early = cb.acquire()
        trip(cb)
        clock.advance(1)
        trial = cb.acquire()
        early.record_success()

        assert CircuitState.HALF_OPEN == cb.state

        trial.record_success()

        assert CircuitState.CLOSED == cb.state

    def test_closed_failure_cannot_reopen(self, clock):
        """
        A failure from a call admitted before a reset does not count.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)
        early = cb.acquire()
        cb.reset()
        early.record_failure()

        assert CircuitState.CLOSED == cb.state
        assert 0 == cb.statistics().consecutive_failures
        assert 1 == cb.statistics().failures
