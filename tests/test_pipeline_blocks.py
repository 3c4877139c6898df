"""
Pipeline: the ``with`` / ``async with`` faces of a pipeline of guards, and
the attempt loops of a retry followed by guards.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import warnings

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import pytest

import stalwart

from helpers import Boom
from pipeline_support import Gate, Log
from stalwart.testing import FakeClock


@pytest.fixture(name="log")
def _log() -> Log:
    """
    A fresh log shared by the doubles of a test.
    """
    return []


@pytest.fixture(name="block", params=["with", "async with"])
def _block(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """
    Run ``body()`` inside ``with pipeline:`` or ``async with pipeline:``
    (in a fresh event loop): ``block(pipeline, body)``.
    """
    if request.param == "with":

        def run(pipeline: stalwart.Pipeline, body: Callable[[], Any]) -> Any:
            with pipeline:
                return body()

        return run

    def arun(pipeline: stalwart.Pipeline, body: Callable[[], Any]) -> Any:
        async def main() -> Any:
            async with pipeline:
                return body()

        return asyncio.run(main())

    return arun


def gates(log: Log, *names: str, **kwargs: Any) -> list[Gate]:
    """
    One gate per name, sharing *log*.
    """
    return [Gate(name, log, **kwargs) for name in names]


class TestBlocks:
    def test_enters_outermost_first(
        self, log: Log, block: Callable[..., Any]
    ) -> None:
        """
        A block enters the guards outermost first and reports its outcome
        to them innermost first.
        """
        pipeline = stalwart.Pipeline(*gates(log, "a", "b", "c"))

        assert "body" == block(pipeline, lambda: "body")
        with pytest.raises(Boom):
            block(pipeline, _raise)

        assert [
            ("a", "enter", 1),
            ("b", "enter", 1),
            ("c", "enter", 1),
            ("c", "exit", 1, "block"),
            ("b", "exit", 1, "block"),
            ("a", "exit", 1, "block"),
        ] == log[:6]
        assert [
            ("c", "exit", 2, "Boom"),
            ("b", "exit", 2, "Boom"),
            ("a", "exit", 2, "Boom"),
        ] == [step for step in log[6:] if step[1] == "exit"]

    def test_one_guard(self, log: Log, block: Callable[..., Any]) -> None:
        """
        A pipeline of one guard uses its steps as they are, and what its
        exit raises replaces the block's exception.
        """
        pipeline = stalwart.Pipeline(Gate("a", log, replace=KeyError()))

        block(pipeline, lambda: None)
        with pytest.raises(KeyError):
            block(pipeline, _raise)

        assert [("a", "exit", 1, "block"), ("a", "exit", 2, "Boom")] == [
            step for step in log if step[1] == "exit"
        ]

    def test_refusal_at_entry(
        self, log: Log, block: Callable[..., Any]
    ) -> None:
        """
        A guard that refuses stops the block before its body; the guards
        already entered see the refusal as its outcome.
        """
        refusing = Gate("c", log, refuse=stalwart.BulkheadFullError("c", 1))
        pipeline = stalwart.Pipeline(*gates(log, "a", "b"), refusing)
        ran = []

        with pytest.raises(stalwart.BulkheadFullError):
            block(pipeline, lambda: ran.append(1))

        assert [] == ran
        assert [
            ("b", "exit", 1, "BulkheadFullError"),
            ("a", "exit", 1, "BulkheadFullError"),
        ] == [step for step in log if step[1] == "exit"]

    def test_exit_replaces_the_exception(
        self, log: Log, block: Callable[..., Any]
    ) -> None:
        """
        What a guard's exit raises is what the guards around it see and
        what leaves the block.
        """
        a, b = gates(log, "a"), gates(log, "b", replace=KeyError())
        pipeline = stalwart.Pipeline(*a, *b)

        with pytest.raises(KeyError):
            block(pipeline, _raise)

        assert ("a", "exit", 1, "KeyError") == log[-1]

    def test_empty_pipeline(self, block: Callable[..., Any]) -> None:
        """
        A block of an empty pipeline just runs.
        """
        assert 3 == block(stalwart.Pipeline(), lambda: 3)

    def test_no_with_face(self, block: Callable[..., Any]) -> None:
        """
        A pipeline holding a stage that runs the call has no with face: a
        retry's error offers the attempt loop when the pipeline has one,
        the others offer call() / acall().
        """
        retry = stalwart.Retry(name="r")
        breaker = stalwart.CircuitBreaker(name="b")
        cases = [
            (
                stalwart.Pipeline(retry, breaker, name="p"),
                (
                    r"Pipeline 'p' has no `with` face: its stage 0, Retry 'r',"
                    r" re-runs the call, and a `with` block cannot be run again;"
                    r" use its attempt loop: `for attempt in pipeline:"
                ),
            ),
            (
                stalwart.Pipeline(
                    stalwart.Fallback(value=1, name="f"), breaker, name="p"
                ),
                (
                    r"stage 0, Fallback 'f', replaces the call's outcome, which"
                    r" a `with` block cannot; use call\(\) / acall\(\)"
                ),
            ),
            (
                stalwart.Pipeline(breaker, stalwart.Chaos(fault=Boom)),
                r"stage 1, Chaos '<unnamed>', is not a guard",
            ),
        ]
        for pipeline, message in cases:
            with pytest.raises(TypeError, match=message):
                block(pipeline, lambda: None)

    def test_exit_without_enter(self) -> None:
        """
        Leaving a block that was never entered is a RuntimeError.
        """
        pipeline = stalwart.Pipeline(stalwart.CircuitBreaker())

        with pytest.raises(RuntimeError, match="without a matching"):
            pipeline.__exit__(None, None, None)

    def test_nested_blocks(self, log: Log) -> None:
        """
        Blocks of one pipeline nested in one function each report on
        their own tokens, innermost first.
        """
        pipeline = stalwart.Pipeline(*gates(log, "a", "b"))

        with pipeline:
            with pytest.raises(Boom), pipeline:
                raise Boom

        assert [
            ("b", "exit", 2, "Boom"),
            ("a", "exit", 2, "Boom"),
            ("b", "exit", 1, "block"),
            ("a", "exit", 1, "block"),
        ] == [step for step in log if step[1] == "exit"]

    def test_generators_stepped_alternately(self, log: Log) -> None:
        """
        Two generators whose blocks exit out of order each report on the
        tokens their own block took.
        """
        pipeline = stalwart.Pipeline(*gates(log, "a", "b"))

        def gen(fail: bool) -> Generator[int, None, None]:
            with pipeline:
                yield 1
                if fail:
                    raise Boom

        first, second = gen(fail=True), gen(fail=False)
        next(first)
        next(second)
        with pytest.raises(Boom):
            next(first)
        next(second, None)

        assert [
            ("b", "exit", 1, "Boom"),
            ("a", "exit", 1, "Boom"),
            ("b", "exit", 2, "block"),
            ("a", "exit", 2, "block"),
        ] == [step for step in log if step[1] == "exit"]

    def test_breaker_trial_not_closed_by_an_older_block(self) -> None:
        """
        A block that entered before the breaker opened ends after its
        trial failed: its late success does not close the breaker.
        """
        clock = FakeClock()
        breaker = stalwart.CircuitBreaker(
            failure_threshold=1, recovery_time=10, clock=clock
        )
        pipeline = stalwart.Pipeline(breaker, stalwart.CircuitBreaker())

        def gen(fail: bool) -> Generator[None, None, None]:
            with pipeline:
                yield
                if fail:
                    raise Boom

        old = gen(fail=False)
        next(old)
        with pytest.raises(Boom):
            list(gen(fail=True))  # opens it
        clock.advance(10)
        with pytest.raises(Boom):
            list(gen(fail=True))  # the trial fails: open again
        next(old, None)

        assert stalwart.CircuitState.OPEN == breaker.state

    def test_exit_stack(self, log: Log) -> None:
        """
        Blocks entered through an exit stack close in the stack's order.
        """
        pipeline = stalwart.Pipeline(*gates(log, "a"))

        with contextlib.ExitStack() as stack:
            stack.enter_context(pipeline)
            stack.enter_context(pipeline)

        assert [("a", "exit", 2, "block"), ("a", "exit", 1, "block")] == [
            step for step in log if step[1] == "exit"
        ]

    def test_exit_from_another_frame(self, log: Log) -> None:
        """
        An exit stack closed by another function still gives the tokens
        back, most recent first.
        """
        pipeline = stalwart.Pipeline(*gates(log, "a", "b"))

        def open_stack() -> contextlib.ExitStack:
            stack = contextlib.ExitStack()
            stack.enter_context(pipeline)
            return stack

        open_stack().close()

        assert [("b", "exit", 1, "block"), ("a", "exit", 1, "block")] == [
            step for step in log if step[1] == "exit"
        ]

    def test_nothing_left_in_the_context(self, log: Log) -> None:
        """
        Ten thousand pipelines used once in a block (tagged ones too)
        leave the caller's context and their own state as they were.
        """
        before = len(contextvars.copy_context())
        pipelines = [
            stalwart.Pipeline(
                Gate("a", log, hooks=(print,) if i % 2 else ()),
                stalwart.CircuitBreaker(),
            )
            for i in range(10_000)
        ]
        for pipeline in pipelines:
            with pipeline:
                pass

        assert before == len(contextvars.copy_context())
        assert all(len(pipeline._blocks) == 0 for pipeline in pipelines)

    def test_threads(self) -> None:
        """
        Blocks open on several threads at once each report their own
        outcome.
        """
        breaker = stalwart.CircuitBreaker(failure_threshold=100)
        pipeline = stalwart.Pipeline(stalwart.CircuitBreaker(), breaker)
        barrier = threading.Barrier(8)

        def work(fail: bool) -> None:
            with contextlib.suppress(Boom), pipeline:
                barrier.wait()
                if fail:
                    raise Boom

        threads = [
            threading.Thread(target=work, args=(i % 2 == 0,)) for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        stats = breaker.statistics()
        assert (4, 4) == (stats.successes, stats.failures)
        assert 0 == len(pipeline._blocks)


class TestAsyncBlocks:
    def test_async_generator_stepped_from_tasks(self, log: Log) -> None:
        """
        An async generator whose block is entered in one task and left in
        another reports on its own tokens, without error.
        """
        pipeline = stalwart.Pipeline(*gates(log, "a", "b"))

        async def agen() -> AsyncGenerator[int, None]:
            async with pipeline:
                yield 1
                yield 2

        async def main() -> None:
            gen = agen()
            await asyncio.create_task(anext(gen))
            await asyncio.wait_for(anext(gen), 10)
            with pytest.raises(StopAsyncIteration):
                await asyncio.create_task(anext(gen))

        asyncio.run(main())

        assert [("b", "exit", 1, "block"), ("a", "exit", 1, "block")] == [
            step for step in log if step[1] == "exit"
        ]
        assert 0 == len(pipeline._blocks)

    def test_interleaved_tasks(self, log: Log) -> None:
        """
        Tasks whose blocks overlap and end in any order each report on
        their own tokens.
        """
        pipeline = stalwart.Pipeline(*gates(log, "a", "b"))

        async def work(hold: asyncio.Event, fail: bool) -> None:
            async with pipeline:
                await hold.wait()
                if fail:
                    raise Boom

        async def main() -> None:
            first, second = asyncio.Event(), asyncio.Event()
            one = asyncio.create_task(work(first, fail=True))
            two = asyncio.create_task(work(second, fail=False))
            await asyncio.sleep(0)
            second.set()
            await two
            first.set()
            with pytest.raises(Boom):
                await one

        asyncio.run(main())

        assert [
            ("b", "exit", 2, "block"),
            ("a", "exit", 2, "block"),
            ("b", "exit", 1, "Boom"),
            ("a", "exit", 1, "Boom"),
        ] == [step for step in log if step[1] == "exit"]

    def test_nested_blocks_and_exit_stack(self, log: Log) -> None:
        """
        Async blocks nested in one coroutine, and blocks entered through
        an async exit stack, each report on their own tokens.
        """
        pipeline = stalwart.Pipeline(*gates(log, "a", "b"))

        async def main() -> None:
            async with pipeline:
                with pytest.raises(Boom):
                    async with pipeline:
                        raise Boom
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(pipeline)
                await stack.enter_async_context(pipeline)

        asyncio.run(main())

        assert [
            ("b", "exit", 2, "Boom"),
            ("a", "exit", 2, "Boom"),
            ("b", "exit", 1, "block"),
            ("a", "exit", 1, "block"),
            ("b", "exit", 4, "block"),
            ("a", "exit", 4, "block"),
            ("b", "exit", 3, "block"),
            ("a", "exit", 3, "block"),
        ] == [step for step in log if step[1] == "exit"]
        assert 0 == len(pipeline._blocks)

    def test_cancelled_block(self, log: Log) -> None:
        """
        A block cancelled while it waits reports the cancellation to every
        guard and stays cancelled.
        """
        pipeline = stalwart.Pipeline(*gates(log, "a", "b"))

        async def work() -> None:
            async with pipeline:
                await asyncio.Event().wait()

        async def main() -> None:
            task = asyncio.create_task(work())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())

        assert [
            ("b", "exit", 1, "CancelledError"),
            ("a", "exit", 1, "CancelledError"),
        ] == [step for step in log if step[1] == "exit"]


class TestBlockEvents:
    def test_entry_and_exit_tagged_body_not(
        self, block: Callable[..., Any]
    ) -> None:
        """
        The guards' events at entry and exit carry the pipeline's name; a
        primitive used in the body sends untagged events.
        """
        events: list[stalwart.Event] = []
        breaker = stalwart.CircuitBreaker(
            name="b", failure_threshold=1, hooks=events.append
        )
        inside = stalwart.CircuitBreaker(name="in", hooks=events.append)
        pipeline = stalwart.Pipeline(
            breaker, stalwart.CircuitBreaker(), name="p"
        )

        def body() -> None:
            inside.force_open()
            raise Boom

        with pytest.raises(Boom):
            block(pipeline, body)
        with pytest.raises(stalwart.CircuitOpenError):
            block(pipeline, body)

        assert [("in", None), ("b", "p"), ("b", "p")] == [
            (event.primitive_name, event.pipeline) for event in events
        ]


class TestAttemptLoop:
    def test_retries_the_block(self, log: Log) -> None:
        """
        Each attempt enters the guards; a failure the retry covers is
        swallowed and the loop hands out the next attempt.
        """
        clock = FakeClock()
        retry = stalwart.Retry(attempts=3, wait=1.0, clock=clock)
        pipeline = stalwart.Pipeline(retry, *gates(log, "a", "b"))
        numbers = []

        for attempt in pipeline:
            with attempt:
                numbers.append(attempt.number)
                if attempt.number < 3:
                    raise Boom

        assert [1, 2, 3] == numbers
        assert [1.0, 1.0] == clock.sleeps
        assert [
            ("b", "exit", 1, "Boom"),
            ("a", "exit", 1, "Boom"),
            ("b", "exit", 2, "Boom"),
            ("a", "exit", 2, "Boom"),
            ("b", "exit", 3, "block"),
            ("a", "exit", 3, "block"),
        ] == [step for step in log if step[1] == "exit"]
        assert "<PipelineAttempt 3>" == repr(attempt)

    def test_async_loop(self, log: Log) -> None:
        """
        ``async for`` / ``async with`` retry the block the same way, with
        the guards' async steps.
        """
        clock = FakeClock()
        retry = stalwart.Retry(attempts=3, wait=1.0, clock=clock)
        pipeline = stalwart.Pipeline(retry, *gates(log, "a"))

        async def main() -> list[int]:
            numbers = []
            async for attempt in pipeline:
                async with attempt:
                    numbers.append(attempt.number)
                    if attempt.number < 2:
                        raise Boom
            return numbers

        assert [1, 2] == asyncio.run(main())
        assert [("a", "exit", 1, "Boom"), ("a", "exit", 2, "block")] == [
            step for step in log if step[1] == "exit"
        ]

    @pytest.mark.parametrize("face", ["sync", "async"])
    def test_refusal_waits_as_long_as_it_says(self, face: str) -> None:
        """
        A breaker that refuses an attempt is that attempt's outcome: the
        retry waits its retry_after, and the trial that follows closes it.
        """
        clock = FakeClock()
        breaker = stalwart.CircuitBreaker(
            failure_threshold=1, recovery_time=30, clock=clock
        )
        retry = stalwart.Retry(
            attempts=4,
            on=ConnectionError,
            wait=0.5,
            clock=clock,
        )
        pipeline = stalwart.Pipeline(retry, breaker)
        seen = []

        def body(number: int) -> None:
            seen.append((number, clock.now()))
            if number == 1:
                raise ConnectionError

        if face == "sync":
            for attempt in pipeline:
                with attempt:
                    body(attempt.number)
        else:

            async def main() -> None:
                async for attempt in pipeline:
                    async with attempt:
                        body(attempt.number)

            asyncio.run(main())

        assert [(1, 0.0), (3, 30.0)] == seen
        assert stalwart.CircuitState.CLOSED == breaker.state

    @pytest.mark.parametrize("face", ["sync", "async"])
    def test_refusal_not_retried(self, face: str, log: Log) -> None:
        """
        A refusal the retry does not retry leaves the loop unchanged.
        """
        retry = stalwart.Retry(
            attempts=3, on=ConnectionError, honor_rejections=False, wait=0.0
        )
        refusal = stalwart.BulkheadFullError("g", 1)
        pipeline = stalwart.Pipeline(retry, Gate("g", log, refuse=refusal))

        with pytest.raises(stalwart.BulkheadFullError):
            if face == "sync":
                for _ in pipeline:
                    pytest.fail("no attempt is handed out")
            else:

                async def main() -> None:
                    async for _ in pipeline:
                        pytest.fail("no attempt is handed out")

                asyncio.run(main())

        assert 1 == retry.statistics().give_ups

    def test_replaced_exception_judged_by_the_retry(self, log: Log) -> None:
        """
        The retry judges what the guards leave: a replacement it covers is
        retried, and one it does not leaves the loop.
        """
        retry = stalwart.Retry(attempts=3, on=Boom, wait=0.0)
        pipeline = stalwart.Pipeline(retry, Gate("g", log, replace=Boom()))
        numbers = []

        with pytest.raises(Boom):
            for attempt in pipeline:
                with attempt:
                    numbers.append(attempt.number)
                    raise KeyError

        assert [1, 2, 3] == numbers

        uncovered = stalwart.Pipeline(
            stalwart.Retry(attempts=3, on=ConnectionError, wait=0.0),
            Gate("h", log, replace=KeyError()),
        )
        with pytest.raises(KeyError):
            for attempt in uncovered:
                with attempt:
                    raise Boom

    def test_set_result(self, log: Log) -> None:
        """
        A block hands its result to the retry's on_result, which may ask
        for another attempt.
        """
        retry = stalwart.Retry(attempts=3, on_result=lambda r: r < 2, wait=0.0)
        pipeline = stalwart.Pipeline(retry, *gates(log, "a"))
        results = []

        for attempt in pipeline:
            with attempt:
                results.append(attempt.number)
                attempt.set_result(attempt.number)

        assert [1, 2] == results

    def test_base_exception_not_retried(self, log: Log) -> None:
        """
        A KeyboardInterrupt in the block reaches every guard and leaves
        the loop at once.
        """
        pipeline = stalwart.Pipeline(
            stalwart.Retry(attempts=3, wait=0.0), *gates(log, "a")
        )

        with pytest.raises(KeyboardInterrupt):
            for attempt in pipeline:
                with attempt:
                    raise KeyboardInterrupt

        assert [("a", "exit", 1, "KeyboardInterrupt")] == [
            step for step in log if step[1] == "exit"
        ]

    def test_misused_attempts(self, log: Log) -> None:
        """
        An attempt is left with the with statement of its loop's kind,
        once.
        """
        pipeline = stalwart.Pipeline(
            stalwart.Retry(attempts=3, wait=0.0), *gates(log, "a")
        )

        async def wrong_kind() -> None:
            for attempt in pipeline:
                with pytest.raises(
                    TypeError, match="with attempt`, not `async"
                ):
                    async with attempt:
                        pass
            async for attempt in pipeline:
                with pytest.raises(TypeError, match="not `with attempt`"):
                    with attempt:
                        pass

        asyncio.run(wrong_kind())
        for attempt in pipeline:
            with attempt:
                pass
            with pytest.raises(RuntimeError, match="already used"), attempt:
                pass

    def test_abandoned_attempt_gives_tokens_back(self, log: Log) -> None:
        """
        An attempt never used (the loop left before its block) gives the
        guards their tokens back.
        """
        pipeline = stalwart.Pipeline(
            stalwart.Retry(attempts=3, wait=0.0), *gates(log, "a", "b")
        )

        for _ in pipeline:
            break

        async def main() -> None:
            loop = aiter(pipeline)
            await anext(loop)
            await loop.aclose()  # type: ignore[attr-defined]  # an async generator

        asyncio.run(main())

        assert [
            ("a", "enter", 1),
            ("b", "enter", 1),
            ("b", "undo", 1),
            ("a", "undo", 1),
        ] == log[:4]
        assert ["undo", "undo"] == [step[1] for step in log[6:]]

    @pytest.mark.parametrize(
        "stages",
        [
            list,
            lambda: [stalwart.CircuitBreaker(), stalwart.Retry()],
            lambda: [stalwart.Retry(), stalwart.Fallback(value=1)],
        ],
        ids=["empty", "retry-second", "retry-then-fallback"],
    )
    def test_no_attempt_loop(self, stages: Callable[[], list[Any]]) -> None:
        """
        Only a retry followed by guards has an attempt loop.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stalwart.PipelineOrderWarning)
            pipeline = stalwart.Pipeline(*stages(), name="p")

        with pytest.raises(
            TypeError, match="Pipeline 'p' has no attempt loop"
        ):
            iter(pipeline)
        with pytest.raises(
            TypeError, match="needs a Retry as its first stage"
        ):
            aiter(pipeline)

    def test_tagged_events(self) -> None:
        """
        The retry's and the guards' events in an attempt loop carry the
        pipeline's name; those of the block's own code do not.
        """
        events: list[stalwart.Event] = []
        retry = stalwart.Retry(
            attempts=2, wait=0.0, name="r", hooks=events.append
        )
        breaker = stalwart.CircuitBreaker(
            name="b", failure_threshold=1, hooks=events.append
        )
        inside = stalwart.Fallback(value=0, name="in", hooks=events.append)
        pipeline = stalwart.Pipeline(retry, breaker, name="p")

        with pytest.raises(stalwart.CircuitOpenError):
            for attempt in pipeline:
                with attempt:
                    inside.call(_raise)
                    raise Boom

        assert [
            ("in", None),
            ("b", "p"),
            ("r", "p"),
            ("b", "p"),
            ("r", "p"),
        ] == [(event.primitive_name, event.pipeline) for event in events]


def _raise() -> Any:
    raise Boom
