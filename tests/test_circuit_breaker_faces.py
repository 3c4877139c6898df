"""
The circuit breaker's faces and classification: decorator, with, call,
permits, the same story on every face, and what counts as a failure.
"""

from __future__ import annotations

import asyncio
import inspect

from collections.abc import AsyncGenerator, Generator

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
from stalwart._faces import guard_acall, guard_call


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


class Interrupt(BaseException):
    """
    A BaseException that is not an Exception, like a Ctrl-C.
    """


class TestHookRaising:
    @pytest.mark.parametrize("face", FACES)
    def test_base_exception_on_half_open_gives_the_trial_back(
        self, clock, face
    ):
        """
        A hook raising a BaseException on CircuitHalfOpened interrupts the
        call that took the trial, and the trial slot is given back: the
        next call is a trial and closes the breaker.
        """
        interrupt = [True]

        def hook(event: stalwart.Event) -> None:
            if isinstance(event, stalwart.CircuitHalfOpened) and interrupt:
                interrupt.clear()
                raise Interrupt

        cb = CircuitBreaker(
            failure_threshold=1, recovery_time=1, clock=clock, hooks=hook
        )
        with pytest.raises(Boom):
            cb.call(boom)
        clock.advance(1)
        with pytest.raises(Interrupt):
            through(face, cb, ok)

        assert 0 == cb.statistics().half_open_calls
        assert "ok" == through(face, cb, ok)
        assert CircuitState.CLOSED == cb.state
        assert (1, 1, 0) == (
            cb.statistics().successes,
            cb.statistics().failures,
            cb.statistics().ignored,
        )

    def test_base_exception_while_refusing(self, clock):
        """
        A hook raising a BaseException on the transition made by a call
        that is then refused (a late trial sends the breaker back to OPEN)
        propagates, and the breaker refuses the next call as usual.
        """

        def hook(event: stalwart.Event) -> None:
            if isinstance(event, stalwart.CircuitOpened) and event.at == 4:
                raise Interrupt

        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=1,
            half_open_max_wait=3,
            clock=clock,
            hooks=hook,
        )
        with pytest.raises(Boom):
            cb.call(boom)
        clock.advance(1)
        cb.acquire()  # lost
        clock.advance(3)
        with pytest.raises(Interrupt):
            cb.call(ok)
        with pytest.raises(CircuitOpenError) as e:
            cb.call(ok)

        assert 1.0 == e.value.retry_after
        assert 0 == cb.statistics().half_open_calls

    @pytest.mark.parametrize("face", FACES)
    def test_exception_from_a_hook_is_logged(self, clock, face, caplog):
        """
        A hook raising an Exception on CircuitHalfOpened is logged and the
        trial runs.
        """

        def hook(event: stalwart.Event) -> None:
            raise RuntimeError("hook bug")

        cb = CircuitBreaker(
            failure_threshold=1, recovery_time=1, clock=clock, hooks=hook
        )
        with pytest.raises(Boom):
            cb.call(boom)
        clock.advance(1)

        assert "ok" == through(face, cb, ok)
        assert CircuitState.CLOSED == cb.state
        assert "hook bug" in caplog.text


async def acoro() -> str:
    """
    Return "ok", asynchronously.
    """
    return "ok"


class AsyncCall:
    """
    An object whose __call__ is async.
    """

    async def __call__(self, x: int) -> int:
        return 2 * x


class TestMisuse:
    @pytest.mark.parametrize(
        "fn",
        [
            acoro,
            lambda: acoro(),
            lambda: asyncio.sleep(0),
        ],
        ids=["async-def", "returns-coroutine", "returns-awaitable"],
    )
    def test_call_with_an_awaitable(self, clock, fn):
        """
        call() given something whose result must be awaited raises a
        TypeError naming acall(), gives the trial back and counts nothing.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)
        cb.acquire().record_failure()
        clock.advance(1)
        before = cb.statistics()
        with pytest.raises(TypeError, match=r"use acall\(\)") as e:
            cb.call(fn)
        after = cb.statistics()

        assert "CircuitBreaker '<unnamed>': call() was given" in str(e.value)
        assert CircuitState.HALF_OPEN == after.state
        assert 0 == after.half_open_calls
        assert (before.successes, before.failures, before.ignored) == (
            after.successes,
            after.failures,
            after.ignored,
        )
        assert "ok" == cb.call(ok)
        assert CircuitState.CLOSED == cb.state

    def test_acall_with_a_plain_function(self, clock):
        """
        acall() given a function that does not return an awaitable raises
        a TypeError naming call(), gives the trial back and counts
        nothing.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)
        cb.acquire().record_failure()
        clock.advance(1)
        with pytest.raises(TypeError, match=r"use call\(\)"):
            asyncio.run(cb.acall(ok))  # type: ignore[arg-type]  # the misuse
        stats = cb.statistics()

        assert (0, 1, 0) == (stats.successes, stats.failures, stats.ignored)
        assert 0 == stats.half_open_calls
        assert "ok" == cb.call(ok)
        assert CircuitState.CLOSED == cb.state

    def test_acall_with_a_function_raising_at_once(self, clock):
        """
        A function that raises before it returns an awaitable is a call
        that failed: acall() records its exception.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)
        with pytest.raises(Boom):
            asyncio.run(cb.acall(boom))

        assert CircuitState.OPEN == cb.state

    @pytest.mark.parametrize("inlined", [True, False], ids=["fast", "general"])
    def test_decorated_async_callable_object(self, clock, inlined):
        """
        An object whose __call__ is async is awaited by the decorator, on
        the inlined and the general path.
        """
        extra = {} if inlined else {"failure_result": lambda r: r < 0}
        cb = CircuitBreaker(clock=clock, **extra)
        guarded = cb(AsyncCall())

        assert inspect.iscoroutinefunction(guarded)
        assert 6 == asyncio.run(guarded(3))
        assert 1 == cb.statistics().successes


class TestGenerators:
    @pytest.mark.parametrize("inlined", [True, False], ids=["fast", "general"])
    def test_whole_iteration_is_one_call(self, clock, inlined):
        """
        A decorated generator takes its permit at the first step and
        records the iteration's outcome when it ends: a failure mid-way
        opens the breaker, and the next iteration is refused at its first
        step, not when it is created.
        """
        extra = {} if inlined else {"failure_result": lambda r: False}
        cb = CircuitBreaker(failure_threshold=1, clock=clock, **extra)

        @cb
        def numbers(fail: bool) -> Generator[int, None, None]:
            yield 1
            yield 2
            if fail:
                raise Boom

        assert [1, 2] == list(numbers(False))
        assert 1 == cb.statistics().successes

        failing = numbers(True)
        assert [1, 2] == [next(failing), next(failing)]
        assert CircuitState.CLOSED == cb.state
        with pytest.raises(Boom):
            next(failing)

        assert CircuitState.OPEN == cb.state

        refused = numbers(False)  # created: nothing asked yet
        with pytest.raises(CircuitOpenError):
            next(refused)

    def test_closed_early_is_a_success(self, clock):
        """
        A generator closed before its end (the consumer had what it
        wanted) records a success and gives back its trial.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)

        @cb
        def numbers() -> Generator[int, None, None]:
            yield from range(10)

        trip(cb)
        clock.advance(1)
        gen = numbers()
        assert 0 == next(gen)

        assert CircuitState.HALF_OPEN == cb.state
        assert 1 == cb.statistics().half_open_calls

        gen.close()

        assert CircuitState.CLOSED == cb.state

    def test_async_generator(self, clock):
        """
        A decorated async generator is guarded over its whole iteration,
        stepped from several tasks, and its failure opens the breaker.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)

        @cb
        async def numbers(fail: bool) -> AsyncGenerator[int, None]:
            yield 1
            if fail:
                raise Boom

        async def main() -> list[int]:
            gen = numbers(False)
            first = await asyncio.create_task(anext(gen))
            rest = [item async for item in gen]
            failing = numbers(True)
            await anext(failing)
            with pytest.raises(Boom):
                await asyncio.wait_for(anext(failing), 10)
            return [first, *rest]

        assert [1] == asyncio.run(main())
        assert CircuitState.OPEN == cb.state
        assert (1, 1) == (
            cb.statistics().successes,
            cb.statistics().failures,
        )


class TestGuardSteps:
    def test_generic_faces_drive_the_breaker(self, clock):
        """
        The breaker's guard steps drive the generic faces of _faces (what a
        pipeline chains): outcomes are recorded and classified, and a
        refused misuse gives the trial back without counting.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)

        assert "ok" == guard_call(cb, ok, (), {})
        with pytest.raises(Boom):
            asyncio.run(guard_acall(cb, as_async(boom), (), {}))

        assert CircuitState.OPEN == cb.state

        clock.advance(1)
        with pytest.raises(TypeError, match=r"use acall\(\)"):
            guard_call(cb, acoro, (), {})

        assert 0 == cb.statistics().half_open_calls
        assert "ok" == asyncio.run(guard_acall(cb, acoro, (), {}))
        assert CircuitState.CLOSED == cb.state
        assert (2, 1, 0) == (
            cb.statistics().successes,
            cb.statistics().failures,
            cb.statistics().ignored,
        )

    def test_timed_tokens(self, clock):
        """
        A breaker that times its calls hands out tokens carrying the start
        time, and measures a call from its own _enter().
        """
        cb = CircuitBreaker(
            slow_call_rate=1.0,
            slow_call_duration=2.0,
            window=CountWindow(1),
            clock=clock,
        )
        token = cb._enter()
        clock.advance(2.0)
        cb._exit(token, None, "result")

        assert (0, 0.0) == token
        assert CircuitState.OPEN == cb.state

    def test_undo_of_a_timed_token(self, clock):
        """
        _undo gives back a timed token's trial slot and counts nothing.
        """
        cb = CircuitBreaker(
            failure_rate=1.0,
            slow_call_rate=1.0,
            slow_call_duration=2.0,
            window=CountWindow(1),
            recovery_time=1,
            clock=clock,
        )
        cb.acquire().record_failure()
        clock.advance(1)
        cb._undo(cb._enter())
        stats = cb.statistics()

        assert (0, 0, 1) == (
            stats.half_open_calls,
            stats.successes,
            stats.failures,
        )
