"""
The circuit breaker's shell: faces, policies, transitions, classification,
manual control, events and statistics.
"""

from __future__ import annotations

import asyncio
import inspect

from datetime import timedelta
from typing import Any

import pytest

import stalwart

from helpers import Boom, as_async, boom, ok
from stalwart import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    CountWindow,
    TimeWindow,
)
from stalwart.testing import FakeClock, use_clock


def trip(breaker: CircuitBreaker, times: int = 1) -> None:
    """
    Fail *times* calls through *breaker*.
    """
    for _ in range(times):
        with pytest.raises(Boom):
            breaker.call(boom)


def slow(clock: FakeClock, seconds: float, fn: Any = ok) -> Any:
    """
    Return a function that spends *seconds* on *clock*, then runs *fn*.
    """

    def run(*args: Any, **kwargs: Any) -> Any:
        clock.advance(seconds)
        return fn(*args, **kwargs)

    return run


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

    def test_half_open_full_refuses_with_zero_retry_after(self, clock):
        """
        While its only trial runs, a half-open breaker refuses with 0.0.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)
        trip(cb)
        clock.advance(1)
        permit = cb.acquire()
        with pytest.raises(CircuitOpenError) as e:
            cb.call(ok)
        permit.record_success()

        assert 0.0 == e.value.retry_after
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


class TestClassification:
    def test_failure_on_types(self, clock, invoke):
        """
        Only failure_on exceptions are failures; others are successes (the
        dependency answered).
        """
        cb = CircuitBreaker(
            failure_threshold=1, failure_on=ConnectionError, clock=clock
        )

        with pytest.raises(Boom):
            invoke(cb, boom)

        assert CircuitState.CLOSED == cb.state
        assert 1 == cb.statistics().successes

        with pytest.raises(ConnectionError):
            invoke(cb, _raise(ConnectionError()))

        assert CircuitState.OPEN == cb.state

    def test_answered_exception_resets_streak(self, clock):
        """
        An exception outside failure_on is a success and ends the streak.
        """
        cb = CircuitBreaker(
            failure_threshold=2, failure_on=ConnectionError, clock=clock
        )
        with pytest.raises(ConnectionError):
            cb.call(_raise(ConnectionError()))
        with pytest.raises(KeyError):
            cb.call(_raise(KeyError()))

        assert 0 == cb.statistics().consecutive_failures

    def test_failure_on_predicate(self, clock, invoke):
        """
        failure_on may be a predicate.
        """
        cb = CircuitBreaker(
            failure_threshold=1,
            failure_on=lambda e: "fatal" in str(e),
            clock=clock,
        )
        with pytest.raises(ValueError):
            invoke(cb, _raise(ValueError("mild")))

        assert CircuitState.CLOSED == cb.state

        with pytest.raises(ValueError):
            invoke(cb, _raise(ValueError("fatal")))

        assert CircuitState.OPEN == cb.state

    def test_ignore_wins_and_gives_back_the_trial(self, clock, invoke):
        """
        An ignored exception counts as nothing and frees its trial slot.
        """
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=1,
            ignore=KeyError,
            failure_on=(KeyError, Boom),
            clock=clock,
        )
        with pytest.raises(KeyError):
            invoke(cb, _raise(KeyError()))

        assert CircuitState.CLOSED == cb.state

        trip(cb)
        clock.advance(1)
        with pytest.raises(KeyError):
            invoke(cb, _raise(KeyError()))

        assert CircuitState.HALF_OPEN == cb.state
        assert "ok" == invoke(cb, ok)
        assert CircuitState.CLOSED == cb.state
        assert 2 == cb.statistics().ignored

    @pytest.mark.parametrize(
        "exc",
        [KeyboardInterrupt(), SystemExit(1), asyncio.CancelledError()],
        ids=["KeyboardInterrupt", "SystemExit", "CancelledError"],
    )
    def test_base_exceptions_give_back_the_slot(self, clock, exc):
        """
        A BaseException is never a failure and frees its trial slot.
        """
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=1,
            failure_on=BaseException,
            clock=clock,
        )
        with pytest.raises(type(exc)):
            cb.call(_raise(exc))

        assert CircuitState.CLOSED == cb.state

        trip(cb)
        clock.advance(1)
        with pytest.raises(type(exc)):
            cb.call(_raise(exc))

        assert 0 == cb.statistics().half_open_calls
        assert "ok" == cb.call(ok)
        assert CircuitState.CLOSED == cb.state

    def test_cancelled_trial_task(self, clock):
        """
        Cancelling the task of a half-open trial frees the slot: the
        breaker is neither closed by it nor stuck.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)
        trip(cb)
        clock.advance(1)

        async def main() -> CircuitState:
            started = asyncio.Event()

            async def trial() -> None:
                started.set()
                await asyncio.Event().wait()

            task = asyncio.create_task(cb.acall(trial))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return cb.state

        assert CircuitState.HALF_OPEN == asyncio.run(main())
        assert "ok" == cb.call(ok)
        assert CircuitState.CLOSED == cb.state

    def test_failure_result(self, clock, invoke):
        """
        failure_result marks a returned value as a failure; it is still
        returned.
        """
        cb = CircuitBreaker(
            failure_threshold=2,
            failure_result=lambda r: r is None,
            clock=clock,
        )
        results = [invoke(cb, lambda: None) for _ in range(2)]

        assert [None, None] == results
        assert CircuitState.OPEN == cb.state

    @pytest.mark.parametrize("field", ["failure_on", "failure_result"])
    def test_raising_predicate_gives_back_the_slot(self, clock, field):
        """
        A predicate that raises lets its error out and frees the trial
        slot.
        """

        def bad(value: object) -> bool:
            raise RuntimeError("predicate")

        cb = CircuitBreaker(
            failure_threshold=1, recovery_time=1, clock=clock, **{field: bad}
        )
        cb.acquire().record_failure()
        clock.advance(1)
        with pytest.raises(RuntimeError, match="predicate"):
            cb.call(boom if field == "failure_on" else ok)

        assert CircuitState.HALF_OPEN == cb.state
        assert 0 == cb.statistics().half_open_calls


def _raise(exc: BaseException) -> Any:
    def fn(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fn


class TestFaces:
    def test_call_passes_arguments(self, clock, invoke):
        """
        call/acall pass positional and keyword arguments through.
        """
        cb = CircuitBreaker(clock=clock)

        assert (1, 2) == invoke(cb, lambda a, b: (a, b), 1, b=2)

    def test_decorator_sync(self, clock):
        """
        The decorator keeps the function's name and result.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)

        @cb
        def add(a: int, b: int = 0) -> int:
            """Add."""
            if a < 0:
                raise Boom
            return a + b

        assert 3 == add(1, b=2)
        assert "add" == add.__name__
        assert "Add." == add.__doc__
        with pytest.raises(Boom):
            add(-1)
        with pytest.raises(CircuitOpenError):
            add(1)

    def test_decorator_async(self, clock):
        """
        The decorator on an async def returns an async def.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)

        @cb
        async def add(a: int, b: int = 0) -> int:
            if a < 0:
                raise Boom
            return a + b

        assert inspect.iscoroutinefunction(add)
        assert 3 == asyncio.run(add(1, b=2))
        with pytest.raises(Boom):
            asyncio.run(add(-1))
        with pytest.raises(CircuitOpenError):
            asyncio.run(add(1))

    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    def test_decorator_general_path(self, clock, is_async):
        """
        With slow calls or failure_result the decorator times and checks
        each call.
        """
        cb = CircuitBreaker(
            failure_rate=1.0,
            slow_call_rate=1.0,
            slow_call_duration=1.0,
            window=CountWindow(1),
            failure_result=lambda r: r == "bad",
            clock=clock,
        )
        fn = slow(clock, 1.0)
        guarded = cb(as_async(fn) if is_async else fn)
        result = asyncio.run(guarded()) if is_async else guarded()

        assert "ok" == result
        assert CircuitState.OPEN == cb.state

    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    def test_decorator_half_open(self, clock, is_async):
        """
        The decorator's trial call goes through the lock and closes it.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)
        guarded = cb(as_async(ok) if is_async else ok)
        trip(cb)
        clock.advance(1)
        result = asyncio.run(guarded()) if is_async else guarded()

        assert "ok" == result
        assert CircuitState.CLOSED == cb.state

    def test_decorator_records_after_a_failure(self, clock):
        """
        The fast decorator records the success that ends a failure streak.
        """
        cb = CircuitBreaker(failure_threshold=2, clock=clock)
        guarded = cb(ok)
        trip(cb)
        guarded()

        assert 0 == cb.statistics().consecutive_failures

    def test_decorator_failure_records(self, clock):
        """
        The fast decorator records failures.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)
        with pytest.raises(Boom):
            cb(boom)()

        assert CircuitState.OPEN == cb.state

    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    def test_context_manager(self, clock, is_async):
        """
        with / async with: failures in the block count, entering while
        open raises, and nested blocks pair up.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)

        def run(fail: bool) -> None:
            if is_async:

                async def block() -> None:
                    async with cb:
                        async with cb:
                            pass
                        if fail:
                            raise Boom

                asyncio.run(block())
            else:
                with cb:
                    with cb:
                        pass
                    if fail:
                        raise Boom

        run(fail=False)
        with pytest.raises(Boom):
            run(fail=True)
        with pytest.raises(CircuitOpenError):
            run(fail=False)

        assert CircuitState.OPEN == cb.state
        assert (3, 1) == (cb.statistics().successes, cb.statistics().failures)

    def test_context_manager_slow_block(self, clock):
        """
        A block's duration counts towards slow calls.
        """
        cb = CircuitBreaker(
            slow_call_rate=1.0,
            slow_call_duration=2.0,
            window=CountWindow(1),
            clock=clock,
        )
        with cb:
            clock.advance(2.0)

        assert CircuitState.OPEN == cb.state

    def test_explicit_steps(self, clock):
        """
        acquire() then record_* on the permit; a permit reports once.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)
        permit = cb.acquire()

        assert "<CircuitPermit of '<unnamed>' (held)>" == repr(permit)

        permit.record_failure()

        assert "<CircuitPermit of '<unnamed>' (used)>" == repr(permit)
        assert CircuitState.OPEN == cb.state
        with pytest.raises(RuntimeError, match="already used"):
            permit.release()
        with pytest.raises(CircuitOpenError):
            cb.acquire()

    def test_explicit_release_and_exception(self, clock):
        """
        release() and record_exception() count as ignored / classified.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)
        cb.acquire().release()
        cb.acquire().record_exception(KeyboardInterrupt())

        assert 2 == cb.statistics().ignored
        assert CircuitState.CLOSED == cb.state

        cb.acquire().record_exception(Boom())

        assert CircuitState.OPEN == cb.state


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
        assert 0.0 == events[-1].error.retry_after

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
            cb.call(_raise(KeyError()))
        trip(cb, 2)
        with pytest.raises(CircuitOpenError):
            cb.call(ok)
        stats = cb.statistics()

        assert (
            stalwart.CircuitBreakerStatistics(
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


def _through(face: str, cb: CircuitBreaker, fn: Any, *args: Any) -> Any:
    """
    Run ``fn(*args)`` through one face of *cb*.
    """
    if face == "call":
        return cb.call(fn, *args)
    if face == "acall":
        return asyncio.run(cb.acall(as_async(fn), *args))
    if face == "decorator":
        return cb(fn)(*args)
    if face == "async decorator":
        return asyncio.run(cb(as_async(fn))(*args))
    if face == "with":
        with cb:
            return fn(*args)
    if face == "async with":

        async def block() -> Any:
            async with cb:
                return fn(*args)

        return asyncio.run(block())
    permit = cb.acquire()
    try:
        result = fn(*args)
    except BaseException as e:
        permit.record_exception(e)
        raise
    permit.record_success()
    return result


FACES = [
    "call",
    "acall",
    "decorator",
    "async decorator",
    "with",
    "async with",
    "permit",
]


class TestFaceParity:
    @pytest.mark.parametrize("face", FACES)
    @pytest.mark.parametrize(
        "policy",
        [
            {"failure_threshold": 2},
            {
                "failure_rate": 0.6,
                "window": CountWindow(4),
                "minimum_calls": 3,
            },
            {
                "slow_call_rate": 0.3,
                "slow_call_duration": 5.0,
                "window": TimeWindow(60.0),
                "minimum_calls": 3,
            },
        ],
        ids=["consecutive", "rate", "slow"],
    )
    def test_same_story_on_every_face(self, clock, face, policy):
        """
        Every face tells the same story: ignored, answered and failed
        calls, the trip, a refusal, the trial and the close, with the same
        events at the same times.
        """
        events: list[stalwart.Event] = []
        cb = CircuitBreaker(
            recovery_time=10,
            ignore=KeyError,
            failure_on=Boom,
            clock=clock,
            hooks=events.append,
            **policy,
        )
        outcomes = []
        steps = [
            _raise(KeyError()),
            _raise(ValueError()),
            boom,
            slow(clock, 5.0, boom),
            ok,
        ]
        for step in steps:
            try:
                outcomes.append(_through(face, cb, step))
            except Exception as e:  # noqa: BLE001
                outcomes.append(type(e).__name__)
        clock.advance(10)
        outcomes.append(_through(face, cb, ok))

        assert [
            "KeyError",
            "ValueError",
            "Boom",
            "Boom",
            "CircuitOpenError",
            "ok",
        ] == outcomes
        assert [
            ("CircuitOpened", 5.0),
            ("CallRejected", 5.0),
            ("CircuitHalfOpened", 15.0),
            ("CircuitClosed", 15.0),
        ] == [(type(e).__name__, e.at) for e in events]
