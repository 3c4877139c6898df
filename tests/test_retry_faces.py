"""
Retry's faces at their joints: misuse refused before anything is counted,
a sync face that would block an event loop, generators and async
callables under the decorator, failures kept as the context of what
judging them raised, and the time checked again right before every wait.
"""

from __future__ import annotations

import asyncio

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from helpers import Boom, as_async
from retry_support import FACES, Flaky, counts, exp
from stalwart import (
    Retry,
    RetryBudget,
    RetryGaveUp,
    RetryScheduled,
)
from stalwart._deadline import deadline_scope
from stalwart.testing import FakeClock


@pytest.fixture(name="face", params=list(FACES))
def _face(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """
    Run ``retry`` around ``fn(*args)`` through one of the six faces.
    """
    return FACES[request.param]


@pytest.fixture(name="events")
def _events() -> list[Any]:
    """
    A list that a hook appends every event to.
    """
    return []


class _Future:
    """
    An awaitable that is not a coroutine.
    """

    def __await__(self) -> Iterator[None]:
        """
        Yield once to the event loop.
        """
        yield  # never awaited: call() refuses it


def _nothing_counted(retry: Retry, budget: RetryBudget) -> bool:
    """
    Tell whether neither the retry nor its budget counted a call.
    """
    return (0, 0, 0) == counts(
        retry.statistics()
    ) and 0 == budget.statistics().calls


class TestMisuse:
    @pytest.mark.parametrize(
        "fn",
        [as_async(lambda: "ok"), lambda: _Future()],
        ids=["coroutine-function", "returns-awaitable"],
    )
    def test_call_refuses_an_awaitable(self, clock, fn):
        """
        call() given a function whose result must be awaited raises a
        TypeError naming acall(), and counts nothing.
        """
        budget = RetryBudget(clock=clock)
        retry = Retry(name="db", budget=budget, clock=clock)

        with pytest.raises(TypeError, match=r"use acall\(\)") as info:
            retry.call(fn)

        assert str(info.value).startswith("Retry 'db': call() was given")
        assert _nothing_counted(retry, budget)

    def test_acall_refuses_a_plain_function(self, clock):
        """
        acall() given a function that returns a plain value raises a
        TypeError naming call(), and counts nothing.
        """
        budget = RetryBudget(clock=clock)
        retry = Retry(name="db", budget=budget, clock=clock)

        with pytest.raises(TypeError, match=r"use call\(\)") as info:
            asyncio.run(retry.acall(lambda: "ok"))  # type: ignore[arg-type, return-value]

        assert str(info.value).startswith("Retry 'db': acall() was given")
        assert _nothing_counted(retry, budget)

    @pytest.mark.parametrize("face", ["call", "acall"])
    def test_not_callable(self, clock, face):
        """
        A face given something that cannot be called says so at once,
        instead of retrying the TypeError of calling it.
        """
        budget = RetryBudget(clock=clock)
        retry = Retry(name="db", budget=budget, clock=clock)

        with pytest.raises(TypeError) as info:
            if face == "call":
                retry.call(42)  # type: ignore[arg-type]
            else:
                asyncio.run(retry.acall(42))  # type: ignore[arg-type]

        assert f"Retry 'db': {face}() needs a callable (got 42)" == str(
            info.value
        )
        assert info.value.__suppress_context__
        assert [] == clock.sleeps
        assert _nothing_counted(retry, budget)

    def test_acall_judges_a_failure_to_start(self, clock):
        """
        acall() given a function that raises before returning its
        awaitable judges that failure like any other.
        """
        fn = Flaky(Boom())

        def start() -> Any:
            fn()
            return as_async(lambda: "started")()

        assert "started" == asyncio.run(exp(clock).acall(start))
        assert [1.0] == clock.sleeps

    def test_decorator_refuses_a_non_callable(self, clock):
        """
        Decorating something that cannot be called raises a TypeError.
        """
        with pytest.raises(TypeError, match="decorates callables"):
            Retry(clock=clock)(42)  # type: ignore[arg-type]


class TestBlockingOnALoop:
    @pytest.mark.parametrize(
        "run",
        [
            lambda retry, fn: retry.call(fn),
            lambda retry, fn: retry(fn)(),
        ],
        ids=["call", "decorator"],
    )
    def test_sync_face_refuses_to_block(self, clock, run):
        """
        A sync face about to wait on the thread of a running event loop
        raises a RuntimeError naming the async face, with the failure it
        was retrying as context, instead of freezing the loop.
        """
        error = Boom()
        fn = Flaky(error)
        retry = Retry(name="db", on=Boom, wait=1.0, clock=clock)

        async def main() -> None:
            run(retry, fn)

        with pytest.raises(
            RuntimeError, match=r"in async code use acall\(\)"
        ) as info:
            asyncio.run(main())

        assert str(info.value).startswith("Retry 'db': call()")
        assert error is info.value.__context__
        assert [] == clock.sleeps
        assert 1 == fn.calls
        assert (1, 0, 0) == counts(retry.statistics())

    def test_sync_loop_refuses_to_block(self, clock):
        """
        The sync attempt loop about to wait in a coroutine points to
        ``async for``.
        """
        retry = Retry(on=Boom, wait=1.0, clock=clock)

        async def main() -> None:
            for attempt in retry:
                with attempt:
                    raise Boom

        with pytest.raises(RuntimeError, match="'async for attempt in retry'"):
            asyncio.run(main())

        assert [] == clock.sleeps
        assert 0 == retry.statistics().retries

    def test_zero_waits_do_not_block(self, clock):
        """
        Retrying without waiting blocks nothing, so it is allowed.
        """
        retry = Retry(on=Boom, wait=0, clock=clock)
        fn = Flaky(Boom(), Boom())

        async def main() -> str:
            return retry.call(fn)

        assert "ok" == asyncio.run(main())
        assert 3 == fn.calls

    def test_other_threads_may_block(self, clock):
        """
        A sync face on a worker thread of an async program may wait.
        """
        retry = Retry(on=Boom, wait=1.0, clock=clock)
        fn = Flaky(Boom())

        async def main() -> str:
            return await asyncio.to_thread(retry.call, fn)

        assert "ok" == asyncio.run(main())
        assert [1.0] == clock.sleeps


class TestDecoratedCallables:
    def test_async_call_object(self, clock):
        """
        An object whose __call__ is async is retried as a coroutine.
        """

        class Client:
            def __init__(self) -> None:
                self.flaky = Flaky(Boom(), Boom())

            async def __call__(self, path: str) -> str:
                return f"{self.flaky()}:{path}"

        retry = exp(clock)
        client = Client()

        assert "ok:/x" == asyncio.run(retry(client)("/x"))
        assert [1.0, 2.0] == clock.sleeps
        assert 3 == client.flaky.calls

    def test_async_call_object_through_acall(self, clock):
        """
        The same object through the non-inlined decorator (a budget).
        """

        class Client:
            def __init__(self) -> None:
                self.flaky = Flaky(Boom())

            async def __call__(self) -> str:
                return self.flaky()

        retry = exp(clock, budget=RetryBudget(clock=clock))

        assert "ok" == asyncio.run(retry(Client())())
        assert [1.0] == clock.sleeps


class TestGenerators:
    def test_retried_until_the_first_item(self, clock):
        """
        A generator that fails before its first item is run again.
        """
        starts = Flaky(Boom(), Boom())

        @exp(clock)
        def numbers(n: int) -> Iterator[int]:
            starts()
            yield from range(n)

        assert [0, 1, 2] == list(numbers(3))
        assert 3 == starts.calls
        assert [1.0, 2.0] == clock.sleeps

    def test_not_retried_after_the_first_item(self, clock):
        """
        After an item was yielded, a failure goes to the caller unchanged.
        """
        error = Boom("late")
        runs = []
        retry = exp(clock)

        @retry
        def items() -> Iterator[int]:
            runs.append(1)
            yield 1
            raise error

        gen = items()
        assert 1 == next(gen)
        with pytest.raises(Boom) as info:
            next(gen)

        assert error is info.value
        assert [1] == runs
        assert [] == clock.sleeps
        assert (1, 0, 0) == counts(retry.statistics())

    def test_gives_up_before_the_first_item(self, clock):
        """
        A generator that never yields fails like a function would.
        """
        retry = exp(clock, attempts=2)

        @retry
        def broken() -> Iterator[int]:
            raise Boom
            yield 1  # makes it a generator

        with pytest.raises(Boom):
            list(broken())

        assert (1, 1, 1) == counts(retry.statistics())

    def test_empty_generator(self, clock):
        """
        A generator that ends at once returns its value.
        """

        @exp(clock)
        def empty() -> Iterator[int]:
            return
            yield 1  # makes it a generator

        assert [] == list(empty())

    def test_return_value(self, clock):
        """
        The generator's return value comes back through yield from.
        """

        @exp(clock)
        def empty() -> Any:
            return "done"
            yield  # makes it a generator

        @exp(clock)
        def one() -> Any:
            yield 1
            return "done"

        def outer(inner: Callable[[], Any]) -> Iterator[Any]:
            result = yield from inner()
            yield result

        assert ["done"] == list(outer(empty))
        assert [1, "done"] == list(outer(one))

    def test_send_throw_close(self, clock):
        """
        send(), throw() and close() reach the generator.
        """
        seen: list[Any] = []
        closed = []

        @exp(clock)
        def echo() -> Iterator[Any]:
            try:
                item = yield "ready"
                while True:
                    try:
                        item = yield item * 2
                    except KeyError as e:
                        seen.append(e)
                        item = yield "caught"
            finally:
                closed.append(True)

        gen = echo()
        assert "ready" == next(gen)
        assert 4 == gen.send(2)
        assert "caught" == gen.throw(KeyError("k"))
        assert 6 == gen.send(3)
        gen.close()

        assert 1 == len(seen)
        assert [True] == closed

    def test_throw_ends_the_generator(self, clock):
        """
        An exception thrown in and not caught ends the iteration with it;
        one the generator turns into a return ends it cleanly.
        """

        @exp(clock)
        def plain() -> Iterator[int]:
            yield 1

        @exp(clock)
        def stops() -> Any:
            try:
                yield 1
            except KeyError:
                return "stopped"

        gen = plain()
        next(gen)
        with pytest.raises(KeyError):
            gen.throw(KeyError("k"))
        gen = stops()
        next(gen)
        with pytest.raises(StopIteration) as info:
            gen.throw(KeyError("k"))

        assert "stopped" == info.value.value

    def test_on_result_is_refused(self, clock):
        """
        on_result judges results, not items: refused on a generator.
        """

        def items() -> Iterator[int]:
            yield 1

        async def aitems() -> AsyncIterator[int]:
            yield 1

        retry = exp(clock, on_result=bool)

        with pytest.raises(TypeError, match="on_result judges results"):
            retry(items)
        with pytest.raises(TypeError, match="on_result judges results"):
            retry(aitems)


class TestAsyncGenerators:
    def test_retried_until_the_first_item(self, clock):
        """
        An async generator that fails before its first item is run again.
        """
        starts = Flaky(Boom(), Boom())

        @exp(clock)
        async def numbers(n: int) -> AsyncIterator[int]:
            starts()
            for i in range(n):
                yield i

        async def main() -> list[int]:
            return [i async for i in numbers(3)]

        assert [0, 1, 2] == asyncio.run(main())
        assert 3 == starts.calls
        assert [1.0, 2.0] == clock.sleeps

    def test_not_retried_after_the_first_item(self, clock):
        """
        After an item was yielded, a failure goes to the caller unchanged.
        """
        error = Boom("late")
        runs = []

        @exp(clock)
        async def items() -> AsyncIterator[int]:
            runs.append(1)
            yield 1
            raise error

        async def main() -> None:
            agen = items()
            assert 1 == await agen.__anext__()
            with pytest.raises(Boom) as info:
                await agen.__anext__()
            assert error is info.value

        asyncio.run(main())

        assert [1] == runs
        assert [] == clock.sleeps

    def test_gives_up_before_the_first_item(self, clock):
        """
        An async generator that never yields fails like a coroutine.
        """
        retry = exp(clock, attempts=3)

        @retry
        async def broken() -> AsyncIterator[int]:
            raise Boom
            yield 1  # makes it an async generator

        async def main() -> None:
            async for _ in broken():
                pass  # nothing is yielded

        with pytest.raises(Boom):
            asyncio.run(main())

        assert [1.0, 2.0] == clock.sleeps
        assert 1 == retry.statistics().give_ups

    def test_empty(self, clock):
        """
        An async generator that ends at once ends the iteration.
        """

        @exp(clock)
        async def empty() -> AsyncIterator[int]:
            return
            yield 1  # makes it an async generator

        async def main() -> list[int]:
            return [i async for i in empty()]

        assert [] == asyncio.run(main())

    def test_asend_athrow_aclose_from_other_tasks(self, clock):
        """
        Stepped from other tasks, asend(), athrow() and aclose() reach the
        async generator.
        """
        seen: list[Any] = []
        closed = []

        @exp(clock)
        async def echo() -> AsyncIterator[Any]:
            try:
                item = yield "ready"
                while True:
                    try:
                        item = yield item * 2
                    except KeyError as e:
                        seen.append(e)
                        item = yield "caught"
            finally:
                closed.append(True)

        async def main() -> list[Any]:
            agen = echo()
            got = [await asyncio.create_task(agen.__anext__())]
            got.append(await asyncio.wait_for(agen.asend(2), 10))
            got.append(await asyncio.create_task(agen.athrow(KeyError("k"))))
            got.append(await asyncio.create_task(agen.asend(3)))
            await asyncio.create_task(agen.aclose())
            return got

        assert ["ready", 4, "caught", 6] == asyncio.run(main())
        assert 1 == len(seen)
        assert [True] == closed

    def test_athrow_ends_the_iteration(self, clock):
        """
        An exception thrown in and not caught ends the iteration with it;
        one the generator catches and returns on ends it cleanly.
        """

        @exp(clock)
        async def plain() -> AsyncIterator[int]:
            yield 1

        @exp(clock)
        async def stops() -> AsyncIterator[int]:
            try:
                yield 1
            except KeyError:
                return

        async def main() -> None:
            agen = plain()
            await agen.__anext__()
            with pytest.raises(KeyError):
                await agen.athrow(KeyError("k"))
            agen = stops()
            await agen.__anext__()
            with pytest.raises(StopAsyncIteration):
                await agen.athrow(KeyError("k"))

        asyncio.run(main())


class TestJudgingFailures:
    def test_predicate_error_keeps_the_failure(self, face, clock):
        """
        An exception raised by the on= predicate has the failure it was
        judging as its __context__.
        """
        error = Boom()

        def judge(e: Exception) -> bool:
            raise ValueError("bad predicate")

        with pytest.raises(ValueError, match="bad predicate") as info:
            face(exp(clock, on=judge), Flaky(error))

        assert error is info.value.__context__

    def test_wait_function_error_keeps_the_failure(self, face, clock):
        """
        An exception raised by the wait= callable has the failure as its
        __context__.
        """
        error = Boom()

        def wait(attempt: int, outcome: object) -> float:
            raise ValueError("bad wait")

        retry = Retry(on=Boom, wait=wait, clock=clock)

        with pytest.raises(ValueError, match="bad wait") as info:
            face(retry, Flaky(error))

        assert error is info.value.__context__

    def test_error_inside_the_predicate_chains_below(self, face, clock):
        """
        A predicate that fails while handling its own exception keeps that
        chain, with the judged failure at its end.
        """
        error = Boom()

        def judge(e: Exception) -> bool:
            try:
                {}["key"]
            except KeyError:
                raise ValueError("bad predicate") from None
            return True

        with pytest.raises(ValueError, match="bad predicate") as info:
            face(exp(clock, on=judge), Flaky(error))

        assert isinstance(info.value.__context__, KeyError)
        assert error is info.value.__context__.__context__

    def test_predicate_reraising_the_failure(self, face, clock):
        """
        A predicate that raises the very failure it judges raises it
        unchanged.
        """
        error = Boom()

        def judge(e: Exception) -> bool:
            raise e

        with pytest.raises(Boom) as info:
            face(exp(clock, on=judge), Flaky(error))

        assert error is info.value
        assert info.value.__context__ is None

    def test_base_exception_from_a_hook(self, face, clock):
        """
        A KeyboardInterrupt raised by a hook ends the call, with the
        failure as its context, and nothing is retried.
        """
        error = Boom()
        fn = Flaky(error)

        def interrupt(event: object) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt) as info:
            face(exp(clock, hooks=interrupt), fn)

        assert error is info.value.__context__
        assert 1 == fn.calls

    def test_cyclic_chains(self, clock):
        """
        Exception chains that loop (built by hand) are left as they are,
        and judging never hangs on them.
        """
        first, second = Boom("first"), Boom("second")
        first.__context__, second.__context__ = second, first
        raised = ValueError("bad predicate")
        other = KeyError("k")
        raised.__context__, other.__context__ = other, raised

        def judge(e: Exception) -> bool:
            raise raised

        with pytest.raises(ValueError, match="bad predicate") as info:
            exp(clock, on=judge).call(Flaky(first))

        assert other is info.value.__context__
        assert raised is other.__context__

    def test_chain_through_the_failure(self, clock):
        """
        An error whose chain already holds the failure is left as it is.
        """
        error = Boom()
        raised = ValueError("bad predicate")
        raised.__context__ = error

        def judge(e: Exception) -> bool:
            raise raised

        with pytest.raises(ValueError):
            exp(clock, on=judge).call(Flaky(error))

        assert error is raised.__context__
        assert error.__context__ is None

    def test_failure_chained_to_the_error(self, clock):
        """
        A failure whose own chain holds the error raised while judging it
        is not chained back to it (no cycle).
        """
        raised = ValueError("bad predicate")
        error = Boom()
        error.__context__ = raised

        def judge(e: Exception) -> bool:
            raise raised

        with pytest.raises(ValueError):
            exp(clock, on=judge).call(Flaky(error))

        assert raised.__context__ is None

    def test_result_predicate_error(self, clock):
        """
        An on_result predicate that raises has no failure to keep.
        """

        def judge(result: object) -> bool:
            raise ValueError("bad predicate")

        with pytest.raises(ValueError, match="bad predicate") as info:
            exp(clock, on_result=judge).call(Flaky())

        assert info.value.__context__ is None


class TestJitterSource:
    @pytest.mark.parametrize(
        ("draw", "expected"),
        [
            (1.5, [1.0, 2.0, 4.0]),
            (-0.5, [0.0, 0.0, 0.0]),
            (float("nan"), [0.0, 0.0, 0.0]),
            (float("inf"), [1.0, 2.0, 4.0]),
            (1, [1.0, 2.0, 4.0]),
        ],
        ids=["above", "below", "nan", "inf", "int"],
    )
    def test_draws_out_of_range(self, face, clock, draw, expected):
        """
        Whatever the jitter source returns, every wait stays within
        [0, cap] and retrying goes on.
        """
        waits: list[float] = []
        retry = exp(
            clock,
            jitter="full",
            jitter_source=lambda: draw,
            hooks=lambda e: waits.append(e.wait),
        )
        fn = Flaky(Boom(), Boom(), Boom())

        assert "ok" == face(retry, fn)
        assert expected == waits
        assert 4 == fn.calls
        assert (1, 3, 0) == counts(retry.statistics())

    def test_not_a_number(self, face, clock):
        """
        A source that returns something else than a number raises a
        TypeError naming it, with the failure as its context.
        """
        error = Boom()
        retry = exp(clock, jitter="full", jitter_source=lambda: "0.5")

        with pytest.raises(
            TypeError, match="'jitter_source' returned '0.5'"
        ) as info:
            face(retry, Flaky(error))

        assert error is info.value.__context__


class TestUserWait:
    def test_used_as_given(self, face, clock):
        """
        A wait callable's waits are used as given, beyond the default
        backoff's 5 s cap.
        """
        retry = Retry(
            on=Boom, wait=lambda attempt, outcome: attempt * 5.0, clock=clock
        )

        face(retry, Flaky(Boom(), Boom(), Boom()))

        assert [5.0, 10.0, 15.0] == clock.sleeps

    def test_capped_by_an_explicit_wait_max(self, face, clock):
        """
        A wait_max given with the callable caps its waits.
        """
        retry = Retry(
            on=Boom,
            wait=lambda attempt, outcome: attempt * 5,
            wait_max=7,
            clock=clock,
        )

        face(retry, Flaky(Boom(), Boom()))

        assert [5.0, 7.0] == clock.sleeps

    def test_never_longer_than_a_clock_can_sleep(self, clock):
        """
        An endless wait is cut to the longest one a clock can sleep.
        """
        retry = Retry(
            on=Boom,
            timeout=None,
            wait=lambda attempt, outcome: float("inf"),
            clock=clock,
        )

        retry.call(Flaky(Boom()))

        assert [1e9] == clock.sleeps

    def test_not_a_number(self, face, clock):
        """
        A wait callable returning something else than seconds raises a
        TypeError naming it, with the failure as its context.
        """
        error = Boom()
        retry = Retry(on=Boom, wait=lambda attempt, outcome: "1", clock=clock)

        with pytest.raises(
            TypeError, match="'wait' returned '1': it must return a number"
        ) as info:
            face(retry, Flaky(error))

        assert error is info.value.__context__


class TestTimeCheckedBeforeEveryWait:
    def test_slow_hook(self, face, clock, events):
        """
        A hook that takes time cannot push a wait past the time budget:
        the retry gives up instead, and counts no retry.
        """
        error = Boom()

        def slow(event: object) -> None:
            events.append(event)
            if isinstance(event, RetryScheduled):
                clock.advance(3.5)

        retry = Retry(on=Boom, wait=2.0, timeout=5.0, hooks=slow, clock=clock)

        with pytest.raises(Boom) as info:
            face(retry, Flaky(error))

        assert error is info.value
        assert [] == clock.sleeps
        assert ["RetryScheduled", "RetryGaveUp"] == [
            type(e).__name__ for e in events
        ]
        assert ("timeout", 3.5) == (events[1].reason, events[1].at)
        assert (1, 0, 1) == counts(retry.statistics())

    def test_slow_hook_and_a_deadline(self, face, clock, events):
        """
        The same holds for the deadline of an enclosing call.
        """

        def slow(event: object) -> None:
            events.append(event)
            if isinstance(event, RetryScheduled):
                clock.advance(3.5)

        retry = Retry(on=Boom, wait=2.0, timeout=None, hooks=slow, clock=clock)

        with deadline_scope(5.0, clock), pytest.raises(Boom):
            face(retry, Flaky(Boom()))

        assert [] == clock.sleeps
        assert "deadline" == events[-1].reason

    def test_slow_hook_inside_the_limits(self, face, clock):
        """
        A hook that leaves time for the wait changes nothing.
        """
        retry = Retry(
            on=Boom,
            wait=2.0,
            timeout=5.0,
            hooks=lambda event: clock.advance(1.0),
            clock=clock,
        )

        assert "ok" == face(retry, Flaky(Boom()))
        assert [2.0] == clock.sleeps

    def test_loop_body_after_the_block(self, clock, events):
        """
        Time spent in a loop body after its ``with`` block counts: no wait
        ends past the budget (timeout 5, wait 2, 3.5 s after the block),
        and the loop raises the failure it swallowed.
        """
        error = Boom()
        retry = Retry(
            on=Boom, wait=2.0, timeout=5.0, hooks=events.append, clock=clock
        )
        attempts = []

        with pytest.raises(Boom) as info:
            for attempt in retry:
                attempts.append(attempt.number)
                with attempt:
                    raise error
                clock.advance(3.5)

        assert error is info.value
        assert [1] == attempts
        assert [] == clock.sleeps
        assert "timeout" == events[-1].reason
        assert (1, 0, 1) == counts(retry.statistics())

    def test_async_loop_body_after_the_block(self, clock):
        """
        The async attempt loop checks the budget again too.
        """
        retry = Retry(on=Boom, wait=2.0, timeout=5.0, clock=clock)
        attempts = []

        async def main() -> None:
            async for attempt in retry:
                attempts.append(attempt.number)
                with attempt:
                    raise Boom
                await clock.asleep(3.5)

        with pytest.raises(Boom):
            asyncio.run(main())

        assert [1] == attempts
        assert [3.5] == clock.sleeps

    def test_loop_body_and_a_deadline(self, clock):
        """
        The loop checks the enclosing deadline again before waiting.
        """
        retry = Retry(on=Boom, wait=2.0, timeout=None, clock=clock)

        with deadline_scope(5.0, clock), pytest.raises(Boom):
            for attempt in retry:
                with attempt:
                    raise Boom
                clock.advance(3.5)

        assert [] == clock.sleeps

    def test_loop_body_on_a_rejected_result(self, clock):
        """
        On a rejected result the loop just ends when time ran out after
        the block, or raises RetryExhaustedError when asked to.
        """
        from stalwart import RetryExhaustedError

        ending = []
        for exhausted in ("return", "raise"):
            retry = Retry(
                on_result=lambda r: r is None,
                result_exhausted=exhausted,  # type: ignore[arg-type]
                wait=2.0,
                timeout=5.0,
                clock=clock,
            )
            try:
                for attempt in retry:
                    with attempt:
                        attempt.set_result(None)
                    clock.advance(3.5)
                ending.append("ended")
            except RetryExhaustedError as e:
                ending.append(e.result)

        assert ["ended", None] == ending
        assert [] == clock.sleeps

    def test_loop_body_inside_the_limits(self, clock):
        """
        A loop body that leaves time for the wait changes nothing.
        """
        retry = Retry(on=Boom, wait=2.0, timeout=5.0, clock=clock)
        fn = Flaky(Boom())

        for attempt in retry:
            with attempt:
                fn()
            clock.advance(1.0)

        assert [2.0] == clock.sleeps
        assert 2 == fn.calls


async def _await_acall(retry: Retry, fn: Callable[..., Any]) -> Any:
    """
    Await ``retry.acall()`` on an async twin of *fn*, from this file.
    """
    return await retry.acall(as_async(fn))


async def _await_decorated(retry: Retry, fn: Callable[..., Any]) -> Any:
    """
    Await an async twin of *fn* decorated with *retry*, from this file.
    """
    return await retry(as_async(fn))()


async def _async_loop(retry: Retry, fn: Callable[..., Any]) -> None:
    """
    Run *fn* in an async attempt loop written in this file.
    """
    async for attempt in retry:
        with attempt:
            fn()


def _sync_loop(retry: Retry, fn: Callable[..., Any]) -> None:
    """
    Run *fn* in a sync attempt loop written in this file.
    """
    for attempt in retry:
        with attempt:
            fn()


# Each face driven from this file, so that the user's line is here.
_LOCAL_FACES: dict[str, Callable[..., Any]] = {
    "call": lambda retry, fn: retry.call(fn),
    "acall": lambda retry, fn: asyncio.run(_await_acall(retry, fn)),
    "decorator": lambda retry, fn: retry(fn)(),
    "async-decorator": lambda retry, fn: asyncio.run(
        _await_decorated(retry, fn)
    ),
    "loop": _sync_loop,
    "async-loop": lambda retry, fn: asyncio.run(_async_loop(retry, fn)),
}


class TestNonePredicate:
    @pytest.mark.parametrize("face", list(_LOCAL_FACES))
    def test_warns_once(self, clock, face):
        """
        A predicate returning None (a forgotten return) warns once, at
        the user's line, whichever face it went through.
        """

        def judge(error: Exception) -> bool:
            isinstance(error, Boom)  # no return
            return None  # type: ignore[return-value]

        retry = exp(clock, name="db", on=judge)

        with pytest.warns(UserWarning, match="returned None") as record:
            for _ in range(3):
                with pytest.raises(Boom):
                    _LOCAL_FACES[face](retry, Flaky(Boom()))

        assert 1 == len(record)
        assert __file__ == record[0].filename
        assert str(record[0].message).startswith(
            "Retry 'db': the on= predicate"
        )

    def test_result_predicate_warns(self, clock):
        """
        An on_result predicate whose first answer is None warns too.
        """
        retry = exp(clock, on_result=lambda r: None)

        with pytest.warns(
            UserWarning, match="the on_result= predicate"
        ) as record:
            retry.call(Flaky())

        assert __file__ == record[0].filename

    def test_no_warning_after_a_real_answer(self, clock):
        """
        A predicate that answered something else before may answer None.
        """
        answers = iter([True, None])
        retry = exp(clock, on=lambda e: next(answers))

        with pytest.raises(Boom):
            retry.call(Flaky(Boom(), Boom()))

        assert [1.0] == clock.sleeps


def test_async_face_counts_calls(clock):
    """
    acall() counts a successful call once its awaitable was checked.
    """
    retry = exp(clock)

    assert "ok" == asyncio.run(retry.acall(as_async(Flaky())))
    assert (1, 0, 0) == counts(retry.statistics())


def test_events_at_times(clock, events):
    """
    Events carry the time they happened at, after the call started.
    """
    clock.advance(10.0)
    retry = exp(clock, attempts=2, hooks=events.append)

    with pytest.raises(Boom):
        retry.call(Flaky(Boom(), Boom(), clock=clock, takes=0.5))

    assert [10.5, 12.0] == [e.at for e in events]
    assert isinstance(events[1], RetryGaveUp)


def test_fake_clock_start(clock):
    """
    The budget is measured from the call's start on any clock.
    """
    late = FakeClock(start=1000.0)
    retry = Retry(on=Boom, wait=1.0, timeout=2.5, clock=late)
    fn = Flaky(Boom(), Boom(), clock=late, takes=0.5)

    with pytest.raises(Boom):
        retry.call(fn)

    assert [1000.0, 1001.5] == fn.started
