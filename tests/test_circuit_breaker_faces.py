"""
The circuit breaker's faces and classification: decorator, with, call,
permits, the same story on every face, and what counts as a failure.
"""

from __future__ import annotations

import asyncio
import inspect

import pytest

import stalwart

from breaker_support import FACES, raising, slow, through, trip
from helpers import Boom, as_async, boom, ok
from stalwart import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    CountWindow,
    TimeWindow,
)


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
            invoke(cb, raising(ConnectionError()))

        assert CircuitState.OPEN == cb.state

    def test_answered_exception_resets_streak(self, clock):
        """
        An exception outside failure_on is a success and ends the streak.
        """
        cb = CircuitBreaker(
            failure_threshold=2, failure_on=ConnectionError, clock=clock
        )
        with pytest.raises(ConnectionError):
            cb.call(raising(ConnectionError()))
        with pytest.raises(KeyError):
            cb.call(raising(KeyError()))

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
            invoke(cb, raising(ValueError("mild")))

        assert CircuitState.CLOSED == cb.state

        with pytest.raises(ValueError):
            invoke(cb, raising(ValueError("fatal")))

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
            invoke(cb, raising(KeyError()))

        assert CircuitState.CLOSED == cb.state

        trip(cb)
        clock.advance(1)
        with pytest.raises(KeyError):
            invoke(cb, raising(KeyError()))

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
            cb.call(raising(exc))

        assert CircuitState.CLOSED == cb.state

        trip(cb)
        clock.advance(1)
        with pytest.raises(type(exc)):
            cb.call(raising(exc))

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
            # Caught by hand: under coverage, pytest.raises let it through.
            try:
                await task
            except asyncio.CancelledError:
                return cb.state
            raise AssertionError("the trial was not cancelled")

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
            raising(KeyError()),
            raising(ValueError()),
            boom,
            slow(clock, 5.0, boom),
            ok,
        ]
        for step in steps:
            try:
                outcomes.append(through(face, cb, step))
            except Exception as e:  # noqa: BLE001
                outcomes.append(type(e).__name__)
        clock.advance(10)
        outcomes.append(through(face, cb, ok))

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

    @pytest.mark.parametrize("face", FACES)
    def test_same_counts_on_every_face(self, clock, face):
        """
        Every face counts successes, failures and refusals alike, including
        the decorators' lock-free successes and refusals (no hooks).
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=10, clock=clock)
        for _ in range(3):
            assert "ok" == through(face, cb, ok)
        with pytest.raises(Boom):
            through(face, cb, boom)
        for _ in range(2):
            with pytest.raises(CircuitOpenError):
                through(face, cb, ok)
        stats = cb.statistics()

        assert (3, 1, 2) == (stats.successes, stats.failures, stats.rejected)
