"""
Pipeline: the call faces, the decorator, statistics, and how it is built,
through doubles that log every step (tests/pipeline_support.py) and
through stalwart's own primitives.
"""

from __future__ import annotations

import asyncio
import functools

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import pytest

import stalwart

from helpers import Boom, as_async
from pipeline_support import Gate, Log, Runner
from stalwart._events import running_pipeline
from stalwart._faces import is_async_function
from stalwart.testing import FakeClock


@pytest.fixture(name="log")
def _log() -> Log:
    """
    A fresh log shared by the doubles of a test.
    """
    return []


def double(x: int) -> int:
    """
    Return *x* doubled.
    """
    return 2 * x


async def adouble(x: int) -> int:
    """
    Return *x* doubled, asynchronously.
    """
    return 2 * x


class TestCallFaces:
    def test_stages_outermost_first(
        self, log: Log, invoke: Callable[..., Any]
    ) -> None:
        """
        Guards and call stages run outermost first and hear the outcome
        innermost first, through call() and acall().
        """
        pipeline = stalwart.Pipeline(
            Gate("a", log), Gate("b", log), Runner("r", log), Gate("c", log)
        )

        assert 6 == invoke(pipeline, double, 3)
        assert [
            ("a", "enter", 1),
            ("b", "enter", 1),
            ("r", "call"),
            ("c", "enter", 1),
            ("c", "exit", 1, 6),
            ("r", "returned", 6),
            ("b", "exit", 1, 6),
            ("a", "exit", 1, 6),
        ] == log

    def test_failure_reaches_every_stage(
        self, log: Log, invoke: Callable[..., Any]
    ) -> None:
        """
        An exception from the function is reported to every guard, and
        reaches the caller unchanged.
        """
        pipeline = stalwart.Pipeline(
            Gate("a", log), Runner("r", log), Gate("b", log), Gate("c", log)
        )

        def fail() -> None:
            raise Boom

        with pytest.raises(Boom):
            invoke(pipeline, fail)

        assert [
            ("c", "exit", 1, "Boom"),
            ("b", "exit", 1, "Boom"),
            ("a", "exit", 1, "Boom"),
        ] == [step for step in log if step[1] == "exit"]

    def test_inner_refusal_is_the_outcome_outside(
        self, log: Log, invoke: Callable[..., Any]
    ) -> None:
        """
        A guard that refuses is seen by the guards around it as the call's
        outcome, as stacked decorators would see it, and nothing inside
        it runs.
        """
        refusing = Gate("c", log, refuse=stalwart.BulkheadFullError("c", 1))
        pipeline = stalwart.Pipeline(Gate("a", log), Gate("b", log), refusing)

        with pytest.raises(stalwart.BulkheadFullError):
            invoke(pipeline, double, 1)

        assert [
            ("a", "enter", 1),
            ("b", "enter", 1),
            ("c", "refuse"),
            ("b", "exit", 1, "BulkheadFullError"),
            ("a", "exit", 1, "BulkheadFullError"),
        ] == log

    def test_refusal_replaced_on_its_way_out(
        self, log: Log, invoke: Callable[..., Any]
    ) -> None:
        """
        A guard whose exit replaces a refusal from inside hands the
        replacement to the guards around it and to the caller, chained to
        the refusal.
        """
        pipeline = stalwart.Pipeline(
            Gate("a", log),
            Gate("b", log, replace=Boom()),
            Gate("c", log, refuse=stalwart.BulkheadFullError("c", 1)),
        )

        with pytest.raises(Boom) as raised:
            invoke(pipeline, double, 1)

        assert isinstance(raised.value.__context__, stalwart.BulkheadFullError)
        assert ("a", "exit", 1, "Boom") == log[-1]

    def test_exit_replaces_the_exception(
        self, log: Log, invoke: Callable[..., Any]
    ) -> None:
        """
        An exception raised by a guard's exit (as a timeout turns its
        cancellation into an error) is what the guards around it and the
        caller get, in a run of guards and for a lone guard.
        """
        for stages in (
            (Gate("a", log), Gate("b", log, replace=Boom())),
            (Gate("a", log), Runner("r", log), Gate("b", log, replace=Boom())),
        ):
            log.clear()
            pipeline = stalwart.Pipeline(*stages)

            def fail() -> None:
                raise KeyError

            with pytest.raises(Boom) as raised:
                invoke(pipeline, fail)

            assert isinstance(raised.value.__context__, KeyError)
            assert ("a", "exit", 1, "Boom") == log[-1]

    def test_exit_raising_after_success(
        self, log: Log, invoke: Callable[..., Any]
    ) -> None:
        """
        A guard whose exit raises after a success hands that exception to
        the guards around it, and the caller gets it.
        """

        class Failing(Gate):
            def _exit(
                self, token: int, exc: BaseException | None, result: object
            ) -> None:
                super()._exit(token, exc, result)
                raise Boom

        pipeline = stalwart.Pipeline(Gate("a", log), Failing("b", log))

        with pytest.raises(Boom):
            invoke(pipeline, double, 2)

        assert [("b", "exit", 1, 4), ("a", "exit", 1, "Boom")] == [
            step for step in log if step[1] == "exit"
        ]

    def test_empty_pipeline(self, invoke: Callable[..., Any]) -> None:
        """
        An empty pipeline calls the function and changes nothing.
        """
        assert 8 == invoke(stalwart.Pipeline(), double, 4)

    def test_one_guard_around_a_call_stage(
        self, log: Log, invoke: Callable[..., Any]
    ) -> None:
        """
        A lone guard around a call stage hears its success.
        """
        pipeline = stalwart.Pipeline(Gate("a", log), Runner("r", log))

        assert 2 == invoke(pipeline, double, 1)
        assert ("a", "exit", 1, 2) == log[-1]

    def test_keyword_arguments(
        self, log: Log, invoke: Callable[..., Any]
    ) -> None:
        """
        Positional and keyword arguments reach the function through call
        stages and guards.
        """
        pipeline = stalwart.Pipeline(Runner("r", log), Gate("g", log))

        assert (1, 2) == invoke(pipeline, lambda a, *, b: (a, b), 1, b=2)


class TestMisuse:
    def test_call_refuses_an_async_function(self, log: Log) -> None:
        """
        call() given an async function, method, partial or async generator
        function raises TypeError naming acall() before any stage runs.
        """

        class Client:
            async def fetch(self) -> int:
                return 1

        async def numbers() -> AsyncGenerator[int, None]:
            yield 1

        pipeline = stalwart.Pipeline(Gate("g", log), name="p")

        for fn in (adouble, Client().fetch, functools.partial(adouble, 1)):
            with pytest.raises(TypeError, match=r"use acall\(\)"):
                pipeline.call(fn)
        with pytest.raises(TypeError, match=r"use acall\(\)"):
            pipeline.call(numbers)
        assert [] == log

    def test_call_refuses_an_awaitable_result(self, log: Log) -> None:
        """
        A plain function that returns a coroutine is refused after the
        call: every guard gets its token back and no stage counts it.
        """
        retry = stalwart.Retry(attempts=3, wait=0.0)
        pipeline = stalwart.Pipeline(
            Gate("a", log), retry, Gate("b", log), name="p"
        )

        with pytest.raises(TypeError, match=r"Pipeline 'p'.*use acall\(\)"):
            pipeline.call(lambda: adouble(1))

        assert [
            ("a", "enter", 1),
            ("b", "enter", 1),
            ("b", "undo", 1),
            ("a", "undo", 1),
        ] == log
        stats = retry.statistics()
        assert (0, 0, 0) == (stats.calls, stats.retries, stats.give_ups)

    @pytest.mark.parametrize("tagged", [False, True])
    def test_call_refuses_an_awaitable_under_a_call_stage(
        self, log: Log, tagged: bool
    ) -> None:
        """
        A call stage innermost hands the function to the pipeline's own
        check, so an awaitable result is refused the same way, whether
        one guard or several are outside it, and a run of guards
        innermost refuses it too.
        """
        hooks = (print,) if tagged else ()
        for stages in (
            (Gate("a", log, hooks=hooks), Runner("r", log)),
            (Gate("a", log, hooks=hooks), Gate("b", log), Runner("r", log)),
            (Gate("a", log, hooks=hooks), Gate("b", log)),
        ):
            log.clear()
            pipeline = stalwart.Pipeline(*stages)

            with pytest.raises(TypeError, match=r"use acall\(\)"):
                pipeline.call(lambda: adouble(1))

            entered = [step[0] for step in log if step[1] == "enter"]
            assert entered[::-1] == [
                step[0] for step in log if step[1] == "undo"
            ]
            assert entered[0] == "a"
            assert [] == [step for step in log if step[1] == "exit"]

    @pytest.mark.parametrize("tagged", [False, True])
    def test_acall_refuses_a_plain_result(
        self, log: Log, tagged: bool
    ) -> None:
        """
        acall() given a function that returns something that cannot be
        awaited raises TypeError naming call(); every guard gets its token
        back and a retry inside counts nothing (in a pipeline that tags
        its events too).
        """
        retry = stalwart.Retry(attempts=3, wait=0.0, hooks=[print] * tagged)
        for stages in (
            (Gate("a", log),),
            (Gate("a", log), Gate("b", log)),
            (Gate("a", log), retry),
            (Gate("a", log), retry, Gate("b", log)),
            (Gate("a", log), Gate("b", log), Runner("r", log)),
        ):
            log.clear()
            pipeline = stalwart.Pipeline(*stages, name="p")

            with pytest.raises(TypeError, match=r"Pipeline 'p'.*use call\(\)"):
                asyncio.run(pipeline.acall(double, 1))  # type: ignore[arg-type]  # the misuse under test

            assert [] == [step for step in log if step[1] == "exit"]
            assert {step[0] for step in log if step[1] == "enter"} == {
                step[0] for step in log if step[1] == "undo"
            }
        assert 0 == retry.statistics().calls

    def test_acall_reports_an_error_raised_by_the_call(self, log: Log) -> None:
        """
        A function that raises instead of returning an awaitable fails
        the call; the guards record that failure.
        """

        def broken() -> Any:
            raise Boom

        for stages in ((Gate("a", log),), (Gate("a", log), Gate("b", log))):
            log.clear()
            with pytest.raises(Boom):
                asyncio.run(stalwart.Pipeline(*stages).acall(broken))
            assert ("a", "exit", 1, "Boom") == log[-1]

    def test_async_function_detection(self) -> None:
        """
        The cheap check tells async functions and methods from plain ones,
        and defers to the full check for other callables.
        """

        class Client:
            def get(self) -> int:
                return 1

            async def fetch(self) -> int:
                return 1

        assert is_async_function(adouble)
        assert is_async_function(Client().fetch)
        assert not is_async_function(double)
        assert not is_async_function(Client().get)
        assert not is_async_function(print)
        assert is_async_function(functools.partial(adouble))

    def test_decorator_refuses_what_is_not_callable(self) -> None:
        """
        Decorating something that is not callable is a TypeError.
        """
        with pytest.raises(TypeError, match="decorates callables"):
            stalwart.Pipeline(name="p")(42)  # type: ignore[arg-type]  # the misuse under test


class TestDecorator:
    def test_empty_pipeline_returns_the_function(self) -> None:
        """
        An empty pipeline decorates a function into itself.
        """
        assert double is stalwart.Pipeline()(double)

    def test_stacks_the_stages_decorators(self) -> None:
        """
        The decorator is the stages' own decorators stacked outermost
        first: a retry around a breaker re-runs the breaker's call, and
        both count as they would stacked by hand.
        """
        clock = FakeClock()
        breaker = stalwart.CircuitBreaker(failure_threshold=5, clock=clock)
        retry = stalwart.Retry(attempts=3, wait=0.0, clock=clock)
        calls = []

        @stalwart.Pipeline(retry, breaker)
        def flaky(x: int) -> int:
            calls.append(x)
            if len(calls) < 3:
                raise Boom
            return x

        assert 7 == flaky(7)
        assert 3 == len(calls)
        assert (2, 1) == (
            breaker.statistics().failures,
            breaker.statistics().successes,
        )
        assert 2 == retry.statistics().retries

    def test_async_def(self, log: Log) -> None:
        """
        An async def is decorated through every stage's async face,
        doubles without a decorator included.
        """
        decorated = stalwart.Pipeline(
            Gate("a", log), Runner("r", log), stalwart.CircuitBreaker()
        )(adouble)

        assert 10 == asyncio.run(decorated(5))
        assert [
            ("a", "enter", 1),
            ("r", "call"),
            ("r", "returned", 10),
            ("a", "exit", 1, 10),
        ] == log

    def test_keeps_the_function_s_identity(self) -> None:
        """
        The decorated function keeps its name and docstring.
        """
        decorated = stalwart.Pipeline(stalwart.CircuitBreaker())(double)

        assert ("double", "Return *x* doubled.") == (
            decorated.__name__,
            (decorated.__doc__ or "").strip(),
        )

    def test_generator_function_gets_each_stage_s_rules(self) -> None:
        """
        A generator function decorated with a retry around a breaker is
        re-run until its first item, and the breaker hears the outcome of
        the whole iteration, failures after the first item included.
        """
        breaker = stalwart.CircuitBreaker(failure_threshold=5)
        retry = stalwart.Retry(attempts=3, wait=0.0)
        starts = []

        @stalwart.Pipeline(retry, breaker)
        def numbers(fail_late: bool) -> Generator[int, None, None]:
            starts.append(1)
            if len(starts) == 1:
                raise Boom
            yield 1
            if fail_late:
                raise KeyError

        assert [1] == list(numbers(fail_late=False))
        with pytest.raises(KeyError):
            list(numbers(fail_late=True))

        assert 3 == len(starts)
        assert (2, 1) == (
            breaker.statistics().failures,
            breaker.statistics().successes,
        )

    def test_async_generator_function(self, log: Log) -> None:
        """
        An async generator function decorated with guards holds their
        tokens for the whole iteration.
        """

        @stalwart.Pipeline(Gate("a", log), stalwart.CircuitBreaker())
        async def numbers() -> AsyncGenerator[int, None]:
            yield 1
            log.append(("body", "between"))
            yield 2

        async def main() -> list[int]:
            return [item async for item in numbers()]

        assert [1, 2] == asyncio.run(main())
        assert [
            ("a", "enter", 1),
            ("body", "between"),
            ("a", "exit", 1, "block"),
        ] == log

    def test_call_stage_without_a_decorator(self, log: Log) -> None:
        """
        A stage that only has call()/acall() decorates a def through
        call().
        """
        assert 4 == stalwart.Pipeline(Runner("r", log))(double)(2)
        assert [("r", "call"), ("r", "returned", 4)] == log

    def test_call_stage_without_a_decorator_refuses_generators(
        self, log: Log
    ) -> None:
        """
        A stage that only has call()/acall() cannot guard an iteration,
        so decorating a generator function with it is refused.
        """

        def numbers() -> Generator[int, None, None]:
            yield 1

        with pytest.raises(TypeError, match="only the creation"):
            stalwart.Pipeline(Runner("r", log))(numbers)

    def test_pipeline_with_a_thread_pool_refuses_async(self) -> None:
        """
        A pipeline holding a thread-pool bulkhead has sync faces only: an
        async def, an async generator function and acall() are refused
        with the reason and what to do instead.
        """
        with stalwart.ThreadPoolBulkhead(max_workers=1) as pool:
            pipeline = stalwart.Pipeline(stalwart.Retry(), pool, name="p")

            async def numbers() -> AsyncGenerator[int, None]:
                yield 1

            for fn in (adouble, numbers):
                with pytest.raises(TypeError, match="sync faces only"):
                    pipeline(fn)
            with pytest.raises(TypeError, match=r"pool\.acall"):
                asyncio.run(pipeline.acall(adouble, 1))
            assert 4 == pipeline(double)(2)
            assert 6 == pipeline.call(double, 3)


class TestStatistics:
    def test_by_stage_name(self) -> None:
        """
        statistics() maps each stage's name to its own statistics record,
        outermost first.
        """
        breaker = stalwart.CircuitBreaker(name="db")
        retry = stalwart.Retry(name="db-retry")
        pipeline = stalwart.Pipeline(retry, breaker, name="orders")
        pipeline.call(double, 1)

        stats = pipeline.statistics()

        assert "orders" == stats.name
        assert ["db-retry", "db"] == list(stats.stages)
        assert retry.statistics() == stats["db-retry"]
        assert breaker.statistics() == stats.stages["db"]

    def test_shared_names_told_apart_by_position(self, log: Log) -> None:
        """
        Stages that share a name are keyed by the name and their position;
        a stage without statistics() maps to None.
        """
        pipeline = stalwart.Pipeline(
            stalwart.Retry(), stalwart.CircuitBreaker(), Runner("r", log)
        )

        stats = pipeline.statistics()

        assert ["<unnamed>#0", "<unnamed>#1", "r"] == list(stats.stages)
        assert stats["r"] is None

    def test_is_a_snapshot(self) -> None:
        """
        The record does not change when the stages do, and cannot be
        changed.
        """
        breaker = stalwart.CircuitBreaker(name="b")
        pipeline = stalwart.Pipeline(breaker)
        before = pipeline.statistics()
        pipeline.call(double, 1)

        assert 0 == before["b"].successes
        assert 1 == pipeline.statistics()["b"].successes
        with pytest.raises(TypeError):
            before.stages["b"] = None  # type: ignore[index]  # read-only


class TestBuilding:
    def test_name_must_be_a_non_empty_str(self) -> None:
        """
        A name that is not a non-empty string is a ConfigurationError.
        """
        for name in ("", None, 3):
            with pytest.raises(stalwart.ConfigurationError, match="'name'"):
                stalwart.Pipeline(name=name)  # type: ignore[arg-type]  # the misuse under test

    def test_objects_without_a_protocol_are_refused(self) -> None:
        """
        A stage with neither call()/acall() nor the guard steps is refused
        with a TypeError naming, for each such stage, what it lacks.
        """

        class HalfGuard:
            def _enter(self) -> None: ...

            def call(self) -> None: ...

        with pytest.raises(TypeError) as raised:
            stalwart.Pipeline(
                stalwart.CircuitBreaker(), 42, HalfGuard(), name="p"
            )  # type: ignore[call-overload, arg-type]  # the misuse under test

        message = str(raised.value)
        assert message.startswith("Pipeline 'p': stage 1 (42)")
        assert "it lacks call() and acall()" in message
        assert "stage 2" in message
        assert "it lacks acall())" in message
        assert "it lacks _aenter(), _exit(), _aexit(), _undo()" in message

    def test_pipelines_are_unpacked(self, log: Log) -> None:
        """
        A pipeline given as a stage is replaced by its stages.
        """
        inner = stalwart.Pipeline(Gate("b", log), Gate("c", log), name="in")
        outer = stalwart.Pipeline(Gate("a", log), inner, name="out")

        assert ("a", "b", "c") == tuple(
            stage.name  # type: ignore[attr-defined]  # the doubles' names
            for stage in outer.stages
        )
        assert 2 == outer.call(double, 1)
        assert ["a", "b", "c", "c", "b", "a"] == [step[0] for step in log]

    def test_repr(self, log: Log) -> None:
        """
        The repr names the pipeline and each stage.
        """
        pipeline = stalwart.Pipeline(
            stalwart.Retry(name="r"), Gate("g", log), object.__new__(Runner)
        )

        assert repr(pipeline).startswith(
            "<Pipeline '<unnamed>': Retry 'r', Gate 'g', <pipeline_support"
        )


class TestEvents:
    def test_stage_events_carry_the_pipeline_s_name(
        self, invoke: Callable[..., Any]
    ) -> None:
        """
        The events a stage sends while the pipeline runs it carry the
        pipeline's name; a primitive used inside the function sends
        untagged events, and nothing is left set once the call is over.
        """
        events: list[stalwart.Event] = []
        retry = stalwart.Retry(
            name="r", attempts=2, wait=0.0, hooks=events.append
        )
        breaker = stalwart.CircuitBreaker(
            name="b", failure_threshold=1, hooks=events.append
        )
        inside = stalwart.CircuitBreaker(name="inside", hooks=events.append)
        pipeline = stalwart.Pipeline(retry, breaker, name="orders")

        def fail() -> None:
            inside.force_open()
            raise Boom

        with pytest.raises(stalwart.CircuitOpenError):
            invoke(pipeline, fail)

        assert [
            ("inside", None),
            ("b", "orders"),
            ("r", "orders"),
            ("b", "orders"),
            ("r", "orders"),
        ] == [(event.primitive_name, event.pipeline) for event in events]
        assert running_pipeline.get() is None

    def test_logging_hook_names_the_pipeline(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        LoggingHook logs a stage's event with the pipeline's name.
        """
        breaker = stalwart.CircuitBreaker(
            name="b", failure_threshold=1, hooks=stalwart.LoggingHook()
        )

        with caplog.at_level("INFO", logger="stalwart"), pytest.raises(Boom):
            stalwart.Pipeline(breaker, name="orders").call(_raise, Boom())

        assert caplog.records[0].getMessage().endswith(" in pipeline 'orders'")

    @pytest.mark.parametrize("kind", ["def", "async", "gen", "agen"])
    def test_decorated_functions_of_every_kind(self, kind: str) -> None:
        """
        The decorator tags the stages' events for plain, async, generator
        and async generator functions, and not the function's own.
        """
        events: list[stalwart.Event] = []
        inside = stalwart.Fallback(value=0, name="in", hooks=events.append)
        breaker = stalwart.CircuitBreaker(
            name="b", failure_threshold=1, hooks=events.append
        )
        decorate = stalwart.Pipeline(breaker, name="p")

        def use_inside() -> int:
            return inside.call(_raise, Boom())

        def fail() -> int:
            use_inside()
            raise Boom

        async def afail() -> int:
            return fail()

        def numbers() -> Generator[int, None, None]:
            yield use_inside()
            raise Boom

        async def anumbers() -> AsyncGenerator[int, None]:
            yield use_inside()
            raise Boom

        run: dict[str, Callable[[], object]] = {
            "def": decorate(fail),
            "async": lambda: asyncio.run(decorate(afail)()),
            "gen": lambda: list(decorate(numbers)()),
            "agen": lambda: asyncio.run(_collect(decorate(anumbers)())),
        }
        with pytest.raises(Boom):
            run[kind]()

        assert [("in", None), ("b", "p")] == [
            (event.primitive_name, event.pipeline) for event in events
        ]

    def test_generators_stepped_with_send_throw_and_close(self) -> None:
        """
        A tagged decorated generator passes send(), throw() and close()
        through, for sync and async generators alike.
        """
        breaker = stalwart.CircuitBreaker(hooks=[lambda event: None])
        decorate = stalwart.Pipeline(breaker, name="p")

        @decorate
        def echo() -> Generator[int, int, str]:
            got = yield 1
            try:
                yield got
            except KeyError:
                yield -1
            return "done"

        @decorate
        async def aecho() -> AsyncGenerator[int, int]:
            got = yield 1
            try:
                yield got
            except KeyError:
                yield -1
                yield -2

        gen = echo()
        assert [1, 5, -1] == [next(gen), gen.send(5), gen.throw(KeyError())]
        with pytest.raises(StopIteration) as stop:
            next(gen)
        assert "done" == stop.value.value
        closed = echo()
        next(closed)
        closed.close()

        async def main() -> list[int]:
            agen = aecho()
            seen = [await anext(agen), await agen.asend(7)]
            seen.append(await agen.athrow(KeyError()))
            await agen.aclose()
            seen.extend([item async for item in aecho()])
            return seen

        assert [1, 7, -1, 1, None] == asyncio.run(main())
        assert 4 == breaker.statistics().successes


def _raise(error: BaseException) -> Any:
    raise error


async def _collect(agen: AsyncGenerator[int, None]) -> list[int]:
    return [item async for item in agen]


def test_invoke_twins_are_equivalent() -> None:
    """
    The async double of a function returns the same value through a
    pipeline (the suite's invoke fixture relies on it).
    """
    pipeline = stalwart.Pipeline(stalwart.CircuitBreaker())

    assert pipeline.call(double, 2) == asyncio.run(
        pipeline.acall(as_async(double), 2)
    )
