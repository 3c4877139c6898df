"""
The circuit breaker's manual control, events, statistics and example.
"""

from __future__ import annotations

import pickle

import pytest

import stalwart

from breaker_support import raising, trip
from helpers import Boom, boom, ok
from stalwart import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    CountWindow,
)
from stalwart.testing import FakeClock, use_clock


class TestManualControl:
    def test_force_open(self, clock, invoke):
        """
        A forced-open breaker refuses with retry_after None, whatever the
        time, until reset.
        """
        cb = CircuitBreaker(clock=clock)
        cb.force_open()
        clock.advance(1e6)
        with pytest.raises(CircuitOpenError) as e:
            invoke(cb, ok)

        assert e.value.retry_after is None
        assert "circuit open by '<unnamed>'" == str(e.value)
        assert pickle.loads(pickle.dumps(e.value)).retry_after is None
        assert CircuitState.FORCED_OPEN == cb.state

        cb.reset()

        assert "ok" == invoke(cb, ok)

    def test_disable(self, clock, invoke):
        """
        A disabled breaker admits everything and never opens.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)
        cb.disable()
        for _ in range(3):
            with pytest.raises(Boom):
                invoke(cb, boom)

        assert CircuitState.DISABLED == cb.state
        assert 0 == cb.statistics().consecutive_failures
        assert 3 == cb.statistics().failures

    def test_metrics_only(self, clock, invoke):
        """
        Metrics-only records outcomes but never opens.
        """
        cb = CircuitBreaker(
            failure_rate=0.5, window=CountWindow(2), clock=clock
        )
        cb.metrics_only()
        for _ in range(3):
            with pytest.raises(Boom):
                invoke(cb, boom)
        stats = cb.statistics()

        assert CircuitState.METRICS_ONLY == stats.state
        assert 1.0 == stats.failure_rate
        assert 2 == stats.window_calls

    def test_metrics_only_consecutive(self, clock):
        """
        Metrics-only counts the failure streak too, and a success ends it.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)
        cb.metrics_only()
        trip(cb, 2)

        assert 2 == cb.statistics().consecutive_failures

        cb.call(ok)

        assert 0 == cb.statistics().consecutive_failures

    def test_reset_clears_window_and_trips(self, clock):
        """
        reset() closes with an empty window and forgets past trips.
        """
        cb = CircuitBreaker(
            failure_threshold=2,
            window=CountWindow(5),
            recovery_time=1,
            recovery_multiplier=2,
            recovery_max=8,
            clock=clock,
        )
        trip(cb, 2)
        cb.reset()
        trip(cb)
        stats = cb.statistics()

        assert CircuitState.CLOSED == stats.state
        assert 1 == stats.window_failures
        assert 0 == stats.trips

    def test_one_event_per_real_transition(self, clock):
        """
        Manual control emits an event per change of state and none for a
        transition to the same state.
        """
        events: list[stalwart.Event] = []
        cb = CircuitBreaker(clock=clock, hooks=events.append)
        cb.reset()
        cb.force_open()
        cb.force_open()
        cb.disable()
        cb.disable()
        cb.metrics_only()
        cb.reset()

        assert [
            ("closed", "forced_open", stalwart.CircuitStateChanged),
            ("forced_open", "disabled", stalwart.CircuitStateChanged),
            ("disabled", "metrics_only", stalwart.CircuitStateChanged),
            ("metrics_only", "closed", stalwart.CircuitClosed),
        ] == [(e.previous.value, e.state.value, type(e)) for e in events]


class TestEvents:
    def test_transition_events(self, clock):
        """
        Opening, half-opening and closing each emit one typed event.
        """
        events: list[stalwart.Event] = []
        cb = CircuitBreaker(
            name="db",
            failure_threshold=1,
            recovery_time=2,
            clock=clock,
            hooks=[events.append],
        )
        trip(cb)
        with pytest.raises(CircuitOpenError) as refused:
            cb.call(ok)
        clock.advance(2)
        cb.call(ok)

        assert [
            stalwart.CircuitOpened(
                primitive_name="db",
                at=0.0,
                previous=CircuitState.CLOSED,
                state=CircuitState.OPEN,
                recovery_time=2.0,
            ),
            stalwart.CallRejected(
                primitive_name="db", at=0.0, error=refused.value
            ),
            stalwart.CircuitHalfOpened(
                primitive_name="db",
                at=2.0,
                previous=CircuitState.OPEN,
                state=CircuitState.HALF_OPEN,
            ),
            stalwart.CircuitClosed(
                primitive_name="db",
                at=2.0,
                previous=CircuitState.HALF_OPEN,
                state=CircuitState.CLOSED,
            ),
        ] == events

    def test_rejected_when_half_open_full(self, clock):
        """
        A refusal by a full half-open breaker is announced too.
        """
        events: list[stalwart.Event] = []
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=1,
            clock=clock,
            hooks=events.append,
        )
        trip(cb)
        clock.advance(1)
        cb.acquire()
        with pytest.raises(CircuitOpenError):
            cb.call(ok)

        assert isinstance(events[-1], stalwart.CallRejected)
        assert events[-1].error.retry_after is None

    def test_failing_hook_does_not_break_the_call(self, clock, caplog):
        """
        A hook that raises is logged and the call goes on.
        """

        def bad(event: stalwart.Event) -> None:
            raise RuntimeError("hook")

        cb = CircuitBreaker(failure_threshold=1, clock=clock, hooks=bad)
        trip(cb)

        assert CircuitState.OPEN == cb.state
        assert "hook" in caplog.text


class TestStatistics:
    def test_snapshot(self, clock):
        """
        statistics() counts every kind of outcome.
        """
        cb = CircuitBreaker(
            failure_threshold=2,
            recovery_time=5,
            ignore=KeyError,
            clock=clock,
        )
        cb.call(ok)
        with pytest.raises(KeyError):
            cb.call(raising(KeyError()))
        trip(cb, 2)
        with pytest.raises(CircuitOpenError):
            cb.call(ok)
        stats = cb.statistics()

        assert (
            stalwart.CircuitBreakerStatistics(
                name="<unnamed>",
                state=CircuitState.OPEN,
                successes=1,
                failures=2,
                slow_calls=0,
                ignored=1,
                rejected=1,
                consecutive_failures=2,
                window_calls=0,
                window_failures=0,
                window_slow_calls=0,
                failure_rate=None,
                slow_call_rate=None,
                trips=1,
                open_until=5.0,
                half_open_calls=0,
                transitions={
                    "closed": 0,
                    "open": 1,
                    "half_open": 0,
                    "forced_open": 0,
                    "disabled": 0,
                    "metrics_only": 0,
                },
            )
            == stats
        )
        assert 4 == stats.calls

    def test_half_open_statistics(self, clock):
        """
        While half-open, the statistics show the trial slots taken.
        """
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=1,
            half_open_max_calls=2,
            clock=clock,
        )
        trip(cb)
        clock.advance(1)
        cb.acquire()

        assert 1 == cb.statistics().half_open_calls
        assert cb.statistics().open_until is None

    def test_use_clock(self):
        """
        A breaker on the default clock follows use_clock().
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=10)
        with use_clock(FakeClock(100.0)) as fake:
            trip(cb)

            assert 110.0 == cb.statistics().open_until

            fake.advance(10)  # type: ignore[attr-defined]

            assert "ok" == cb.call(ok)


class TestExample:
    def test_flaky_dependency_example(self, capsys):
        """
        The README's breaker example runs, trips, refuses and recovers.
        """
        import pathlib
        import runpy

        root = pathlib.Path(__file__).parent.parent
        runpy.run_path(
            str(root / "examples" / "breaker_flaky_dependency.py"),
            run_name="__main__",
        )
        out = capsys.readouterr().out

        assert "breaker closed -> open" in out
        assert "refused at once, retry in 25s" in out
        assert "breaker half_open -> closed" in out
