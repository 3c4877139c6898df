"""
Chaos: what is injected, into which calls, through every face, and how it
composes with the other primitives.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import threading

from collections.abc import AsyncGenerator, Callable, Generator
from datetime import timedelta
from typing import Any

import pytest

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from helpers import Boom, as_async
from stalwart import (
    Chaos,
    ChaosContext,
    ChaosInjected,
    ChaosStatistics,
    CircuitBreaker,
    ConfigurationError,
    Event,
    Fallback,
    Retry,
    Timeout,
    TimeoutExceededError,
)
from stalwart.testing import FakeClock


class Calls:
    """
    A function double that counts its calls and returns ``"real"``.
    """

    def __init__(self) -> None:
        self.count = 0
        self.seen: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self.count += 1
        self.seen.append(args)
        return "real"


@pytest.fixture(name="real")
def _real() -> Calls:
    """
    A fresh counting function double.
    """
    return Calls()


def outcomes(
    invoke: Callable[..., Any], chaos: Chaos, fn: Callable[..., Any], n: int
) -> list[str]:
    """
    Call *fn* through *chaos* *n* times; each outcome is its result or the
    name of the exception it raised.
    """
    seen = []
    for _ in range(n):
        try:
            seen.append(invoke(chaos, fn))
        except Exception as exc:
            seen.append(type(exc).__name__)
    return seen


class TestConfiguration:
    def test_nothing_to_inject(self):
        """
        A chaos that would inject nothing is refused where it is built.
        """
        with pytest.raises(ConfigurationError) as err:
            Chaos()

        assert (
            "nothing to inject: give at least one of 'fault', 'result',"
            " 'result_factory', 'latency' and 'behavior'"
        ) == str(err.value)

    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            ({"probability": 1.5}, "'probability' must be a number in [0, 1] (got 1.5)"),
            ({"probability": -0.1}, "'probability' must be a number in [0, 1] (got -0.1)"),
            ({"probability": math.nan}, "'probability' must be a number in [0, 1] (got nan)"),
            ({"probability": True}, "'probability' must be a number in [0, 1] (got True)"),
            ({"probability": "0.5"}, "'probability' must be a number in [0, 1] (got '0.5')"),
            ({"latency": -1.0}, "'latency' must be a finite number of seconds > 0 (got -1.0)"),
            ({"latency": 0}, "'latency' must be a finite number of seconds > 0 (got 0.0)"),
            ({"latency": math.inf}, "'latency' must be a finite number of seconds > 0 (got inf)"),
            ({"latency": math.nan}, "'latency' must be a finite number of seconds > 0 (got nan)"),
            ({"latency": "1"}, "'latency' must be a finite number of seconds > 0 (got '1')"),
            ({"every": 0}, "'every' must be an int >= 1 (got 0)"),
            ({"every": 2.0}, "'every' must be an int >= 1 (got 2.0)"),
            ({"first": -1}, "'first' must be an int >= 1 (got -1)"),
            ({"first": True}, "'first' must be an int >= 1 (got True)"),
            ({"after": -1}, "'after' must be an int >= 0 (got -1)"),
            ({"after": None}, "'after' must be an int >= 0 (got None)"),
            ({"first": 3, "after": 3}, "no call can be injected: 'first' (3) must be > 'after' (3)"),
            ({"seed": 1.5}, "'seed' must be an int (got 1.5)"),
            ({"random_source": 3}, "'random_source' must be a random.Random or a function returning floats in [0, 1) (got 3)"),
            ({"seed": 1, "random_source": random.Random()}, "give at most one of 'seed' and 'random_source'"),
            ({"when": True}, "'when' must be callable (got True)"),
            ({"enabled": 1}, "'enabled' must be a bool (got 1)"),
            ({"name": ""}, "'name' must be a non-empty str (got '')"),
            ({"clock": object}, "'clock' must be a Clock (with now(), sleep() and asleep()) (got <class 'object'>)"),
            ({"hooks": 3}, "'hooks' must be an iterable of callables (got 3)"),
        ],
        ids=lambda v: "" if isinstance(v, str) else "-".join(map(str, v.items())),
    )  # fmt: skip
    def test_bad_setting(self, settings, message):
        """
        A bad setting is refused with a ConfigurationError naming it and
        the value.
        """
        with pytest.raises(ConfigurationError) as err:
            Chaos(fault=Boom, **settings)

        assert message == str(err.value)

    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            ({"fault": int}, "'fault' must be an exception, an exception class, or a function returning an exception (got <class 'int'>)"),
            ({"fault": "boom"}, "'fault' must be an exception, an exception class, or a function returning an exception (got 'boom')"),
            ({"result_factory": 3}, "'result_factory' must be callable (got 3)"),
            ({"behavior": 3}, "'behavior' must be callable (got 3)"),
            ({"result": 1, "result_factory": list}, "give at most one of 'result' and 'result_factory'"),
            ({"fault": Boom, "result": 1}, "give 'fault' or 'result'/'result_factory', not both: both replace the call's outcome"),
            ({"fault": Boom, "result_factory": list}, "give 'fault' or 'result'/'result_factory', not both: both replace the call's outcome"),
        ],
        ids=["fault-int", "fault-str", "factory", "behavior", "result-twice", "fault-result", "fault-factory"],
    )  # fmt: skip
    def test_bad_injection(self, settings, message):
        """
        What to inject is checked too; fault and result exclude each
        other.
        """
        with pytest.raises(ConfigurationError) as err:
            Chaos(latency=1.0, **settings)

        assert message == str(err.value)

    @pytest.mark.parametrize(
        "during",
        [
            (20.0, 10.0),
            (10.0, 10.0),
            ((math.nan, 1.0),),
            ((-math.inf, 1.0),),
            ((0.0, math.nan),),
            [(0, 1), (2,)],
            "0-10",
            5,
            [(0, "1")],
            (10**400, 10**401),
        ],
        ids=[
            "reversed",
            "empty",
            "nan-start",
            "inf-start",
            "nan-end",
            "short-pair",
            "string",
            "number",
            "string-end",
            "too-large",
        ],
    )
    def test_bad_periods(self, during):
        """
        Periods must be (start, end) pairs with a finite start before the
        end.
        """
        with pytest.raises(ConfigurationError, match="^'during' must be"):
            Chaos(fault=Boom, during=during)

    def test_good_periods(self):
        """
        One pair, or an iterable of pairs (lists too), become float pairs;
        an end may be infinite.
        """
        one = Chaos(fault=Boom, during=(1, 2))
        many = Chaos(fault=Boom, during=[[0, 1], (5, math.inf)])

        assert ((1.0, 2.0),) == one.during
        assert ((0.0, 1.0), (5.0, math.inf)) == many.during

    def test_every_problem_listed(self):
        """
        Several wrong settings are reported together, in one error.
        """
        with pytest.raises(ConfigurationError) as err:
            Chaos(probability=2, every=0, name="", latency=-1)

        assert (
            "invalid configuration:\n"
            "- 'name' must be a non-empty str (got '')\n"
            "- 'latency' must be a finite number of seconds > 0"
            " (got -1.0)\n"
            "- 'probability' must be a number in [0, 1] (got 2)\n"
            "- 'every' must be an int >= 1 (got 0)"
        ) == str(err.value)

    def test_nothing_to_inject_among_others(self):
        """
        An empty chaos with a bad setting reports both.
        """
        with pytest.raises(ConfigurationError) as err:
            Chaos(every=0)

        assert (
            "invalid configuration:\n"
            "- nothing to inject: give at least one of 'fault', 'result',"
            " 'result_factory', 'latency' and 'behavior'\n"
            "- 'every' must be an int >= 1 (got 0)"
        ) == str(err.value)

    @pytest.mark.parametrize(
        "name", ["when", "result_factory", "fault", "random_source", "hooks"]
    )
    def test_async_callables_refused(self, name):
        """
        An async def where a plain callable is needed is a TypeError that
        names the setting.
        """

        async def coro(*args: Any) -> Any:
            return None  # pragma: no cover  # never called

        with pytest.raises(TypeError, match=f"^'{name}' must be a plain"):
            Chaos(latency=1.0, **{name: coro})

    def test_accepted_values(self):
        """
        timedelta latencies, int probabilities and a Random source are
        accepted as they are meant.
        """
        chaos = Chaos(
            latency=timedelta(milliseconds=250),
            probability=1,
            random_source=random.Random(3),
            every=1,
            first=10,
            after=0,
        )

        assert 0.25 == chaos.latency
        assert chaos.enabled

    def test_repr_shows_what_was_given(self):
        """
        The repr names the chaos and shows the settings given and the
        switch.
        """
        chaos = Chaos(
            name="db", fault=ConnectionError("down"), every=2, enabled=False
        )

        assert (
            "Chaos(name='db', fault=ConnectionError('down'), every=2,"
            " enabled=False)"
        ) == repr(chaos)
        assert (
            "Chaos(name='<unnamed>', result=None, probability=0.5, after=2,"
            " during=((0.0, 1.0),), enabled=True)"
        ) == repr(Chaos(result=None, probability=0.5, after=2, during=(0, 1)))


class TestWhat:
    def test_fault_instance(self, invoke, real):
        """
        A fault instance is raised, the same object each time, and the
        function is never called.
        """
        fault = ConnectionError("injected")
        chaos = Chaos(fault=fault)
        raised = []
        for _ in range(3):
            with pytest.raises(ConnectionError) as err:
                invoke(chaos, real)
            raised.append(err.value)

        assert [fault, fault, fault] == raised
        assert 0 == real.count

    def test_fault_traceback_does_not_grow(self, real):
        """
        Raising one instance again and again keeps its traceback short.
        """
        fault = ConnectionError("injected")
        chaos = Chaos(fault=fault)
        depths = []
        for _ in range(50):
            try:
                chaos.call(real)
            except ConnectionError as exc:
                tb, depth = exc.__traceback__, 0
                while tb is not None:
                    tb, depth = tb.tb_next, depth + 1
                depths.append(depth)

        assert depths[0] == depths[-1]

    def test_fault_context_not_stale(self, real):
        """
        An instance raised once while another exception was handled does
        not carry that exception into its next raise.
        """
        chaos = Chaos(fault=ConnectionError("injected"))
        try:
            raise KeyError("earlier")
        except KeyError:
            with pytest.raises(ConnectionError) as inside:
                chaos.call(real)
        context_inside = inside.value.__context__
        with pytest.raises(ConnectionError) as outside:
            chaos.call(real)

        assert isinstance(context_inside, KeyError)
        assert None is outside.value.__context__

    def test_fault_class_and_factory(self, invoke, real):
        """
        An exception class or a factory makes a fresh exception for each
        injected call.
        """
        made = []

        def factory() -> Exception:
            made.append(TimeoutError(f"slow #{len(made) + 1}"))
            return made[-1]

        by_class = Chaos(fault=ConnectionError)
        by_factory = Chaos(fault=factory)
        with pytest.raises(ConnectionError) as first:
            invoke(by_class, real)
        with pytest.raises(ConnectionError) as second:
            invoke(by_class, real)
        with pytest.raises(TimeoutError, match="slow #1"):
            invoke(by_factory, real)
        with pytest.raises(TimeoutError, match="slow #2"):
            invoke(by_factory, real)

        assert first.value is not second.value
        assert 2 == len(made)

    def test_factory_returning_no_exception(self, invoke, real):
        """
        A fault factory that returns something else is a TypeError saying
        so.
        """
        chaos = Chaos(fault=lambda: "oops", name="db")  # type: ignore[arg-type,return-value]  # the misuse under test

        with pytest.raises(TypeError) as err:
            invoke(chaos, real)

        assert (
            "Chaos 'db': 'fault' returned 'oops', which is not an exception"
        ) == str(err.value)

    def test_base_exception_fault(self, real):
        """
        A BaseException can be injected too (a simulated interrupt).
        """
        chaos = Chaos(fault=KeyboardInterrupt)

        with pytest.raises(KeyboardInterrupt):
            chaos.call(real)

    def test_result(self, invoke, real):
        """
        An injected result replaces the call, None included.
        """
        assert 503 == invoke(Chaos(result=503), real)
        assert None is invoke(Chaos(result=None), real)
        assert 0 == real.count

    def test_result_factory(self, invoke, real):
        """
        A result factory is called for each injected call.
        """
        chaos = Chaos(result_factory=list)

        first, second = invoke(chaos, real), invoke(chaos, real)

        assert [] == first == second
        assert first is not second

    def test_latency_then_call(self, invoke, clock, real):
        """
        Latency is slept on the chaos's clock, then the call runs.
        """
        chaos = Chaos(latency=2.5, clock=clock)

        assert "real" == invoke(chaos, real)
        assert [2.5] == clock.sleeps
        assert 2.5 == clock.now()
        assert 1 == real.count

    def test_behavior_then_call(self, invoke, real):
        """
        A behavior runs before the call, which then runs as usual.
        """
        log = []
        chaos = Chaos(behavior=lambda: log.append(real.count))

        assert "real" == invoke(chaos, real)
        assert [0] == log
        assert 1 == real.count

    def test_order_behavior_latency_fault(self, invoke, clock):
        """
        Every kind given is applied, in order: behavior, latency, fault.
        """
        log: list[tuple[str, float]] = []
        chaos = Chaos(
            behavior=lambda: log.append(("behavior", clock.now())),
            latency=1.0,
            fault=lambda: log.append(("fault", clock.now())) or Boom(),
            hooks=lambda e: log.append(("event", e.at)),
            clock=clock,
        )

        with pytest.raises(Boom):
            invoke(chaos, lambda: None)

        assert [
            ("fault", 0.0),
            ("event", 0.0),
            ("behavior", 0.0),
        ] == log
        assert 1.0 == clock.now()

    def test_slow_result(self, invoke, clock, real):
        """
        Latency and a result together: a slow, wrong answer.
        """
        chaos = Chaos(latency=3.0, result="stale", clock=clock)

        assert "stale" == invoke(chaos, real)
        assert 3.0 == clock.now()
        assert 0 == real.count


class TestWhich:
    def test_every_nth(self, invoke, real):
        """
        every=3 injects calls 3, 6, 9.
        """
        chaos = Chaos(fault=Boom, every=3)

        assert ["real", "real", "Boom"] * 3 == outcomes(invoke, chaos, real, 9)

    def test_first_and_after(self, invoke, real):
        """
        first/after select a window of call numbers.
        """
        first = Chaos(fault=Boom, first=2)
        after = Chaos(fault=Boom, after=2)
        window = Chaos(fault=Boom, after=1, first=3)

        assert ["Boom", "Boom", "real", "real"] == outcomes(
            invoke, first, real, 4
        )
        assert ["real", "real", "Boom", "Boom"] == outcomes(
            invoke, after, real, 4
        )
        assert ["real", "Boom", "Boom", "real"] == outcomes(
            invoke, window, real, 4
        )

    def test_during(self, invoke, clock, real):
        """
        Periods are read on the chaos's clock.
        """
        chaos = Chaos(fault=Boom, during=[(10, 20)], clock=clock)
        seen = []
        for _ in range(4):
            seen += outcomes(invoke, chaos, real, 1)
            clock.advance(7.0)

        # t = 0, 7, 14, 21
        assert ["real", "real", "Boom", "real"] == seen

    def test_seed_is_reproducible(self, invoke, real):
        """
        Two chaoses with one seed inject the same calls; the share
        injected follows the probability.
        """
        runs = [
            outcomes(invoke, Chaos(fault=Boom, probability=0.3, seed=7), real, 200)
            for _ in range(2)
        ]  # fmt: skip

        assert runs[0] == runs[1]
        assert 40 <= runs[0].count("Boom") <= 80

    def test_random_source(self, invoke, real):
        """
        A function source decides each call: a draw below the probability
        injects.
        """
        draws = iter([0.1, 0.9, 0.49, 0.5])
        chaos = Chaos(
            fault=Boom, probability=0.5, random_source=lambda: next(draws)
        )

        assert ["Boom", "real", "Boom", "real"] == outcomes(
            invoke, chaos, real, 4
        )

    @pytest.mark.parametrize("probability", [0.0, 1.0], ids=["0", "1"])
    def test_no_draw_when_certain(self, invoke, real, probability):
        """
        Probabilities 0 and 1 never consume a draw.
        """
        draws = []
        chaos = Chaos(
            fault=Boom,
            probability=probability,
            random_source=lambda: draws.append(1) or 0.0,
        )
        seen = outcomes(invoke, chaos, real, 3)

        assert [] == draws
        assert 3 == seen.count("Boom" if probability else "real")

    def test_default_sources_are_private(self):
        """
        Without a seed, each chaos draws from its own generator and leaves
        the global random state alone.
        """
        random.seed(5)
        expected = random.random()
        random.seed(5)
        chaos = Chaos(fault=Boom, probability=0.5)
        for _ in range(10):
            try:
                chaos.call(lambda: None)
            except Boom:
                pass

        assert expected == random.random()


class TestSwitch:
    def test_disable_and_enable(self, invoke, real):
        """
        A disabled chaos lets calls through and counts nothing.
        """
        chaos = Chaos(fault=Boom)
        chaos.disable()
        off = outcomes(invoke, chaos, real, 2)
        stats_off = chaos.statistics()
        chaos.enable()
        on = outcomes(invoke, chaos, real, 1)

        assert ["real", "real"] == off
        assert 0 == stats_off.calls
        assert ["Boom"] == on
        assert chaos.enabled

    def test_built_disabled(self, invoke, real):
        """
        enabled=False builds the chaos switched off.
        """
        chaos = Chaos(fault=Boom, enabled=False)

        assert not chaos.enabled
        assert "real" == invoke(chaos, real)

    def test_when_sees_the_call(self, invoke, real):
        """
        when= receives the function and its arguments, and decides per
        call; calls it refuses are not counted.
        """
        seen: list[ChaosContext] = []

        def only_flagged(call: ChaosContext) -> bool:
            seen.append(call)
            return call.kwargs.get("chaos", False)

        chaos = Chaos(fault=Boom, when=only_flagged, every=1)

        assert "real" == invoke(chaos, real, 1)
        with pytest.raises(Boom):
            invoke(chaos, real, 2, chaos=True)

        assert [(1,), {}] == [seen[0].args, seen[0].kwargs]
        assert [(2,), {"chaos": True}] == [seen[1].args, seen[1].kwargs]
        assert seen[0].fn is not None
        assert 1 == chaos.statistics().calls

    def test_when_not_asked_while_disabled(self, real):
        """
        The predicate is not even called while the switch is off.
        """
        asked = []
        chaos = Chaos(fault=Boom, when=asked.append, enabled=False)
        chaos.call(real)

        assert [] == asked

    def test_when_raising_propagates(self, real):
        """
        A predicate that raises fails the call with its exception.
        """

        def broken(call: ChaosContext) -> bool:
            raise KeyError("header")

        with pytest.raises(KeyError):
            Chaos(fault=Boom, when=broken).call(real)

    def test_reset_numbers_from_one(self, invoke, real):
        """
        reset() starts the schedule over and zeroes the statistics.
        """
        chaos = Chaos(fault=Boom, first=1)
        before = outcomes(invoke, chaos, real, 2)
        chaos.reset()
        stats = chaos.statistics()
        after = outcomes(invoke, chaos, real, 2)

        assert ["Boom", "real"] == before == after
        assert (
            ChaosStatistics(
                name=chaos.name,
                calls=0,
                injected=0,
                faults=0,
                results=0,
                latencies=0,
                behaviors=0,
            )
            == stats
        )


class TestObservability:
    def test_statistics_by_kind(self, invoke, clock, real):
        """
        statistics() counts calls, injections, and each kind injected.
        """
        chaos = Chaos(
            fault=Boom,
            latency=1.0,
            behavior=lambda: None,
            every=2,
            clock=clock,
        )
        outcomes(invoke, chaos, real, 5)

        assert (
            ChaosStatistics(
                name=chaos.name,
                calls=5,
                injected=2,
                faults=2,
                results=0,
                latencies=2,
                behaviors=2,
            )
            == chaos.statistics()
        )

    def test_statistics_of_results(self, real):
        """
        A result injection counts under results.
        """
        chaos = Chaos(result=1)
        chaos.call(real)

        assert (
            ChaosStatistics(
                name=chaos.name,
                calls=1,
                injected=1,
                faults=0,
                results=1,
                latencies=0,
                behaviors=0,
            )
            == chaos.statistics()
        )

    def test_event(self, invoke, clock, real):
        """
        Each injected call sends one ChaosInjected, before the latency.
        """
        events: list[Event] = []
        fault = Boom("x")
        chaos = Chaos(
            name="db",
            fault=fault,
            latency=2.0,
            every=2,
            clock=clock,
            hooks=[events.append],
        )
        outcomes(invoke, chaos, real, 2)

        assert [
            ChaosInjected(
                primitive_name="db",
                at=0.0,
                call_number=2,
                kinds=("latency", "fault"),
                fault=fault,
                result=None,
                latency=2.0,
            )
        ] == events

    def test_result_event(self, invoke, real):
        """
        A result injection's event carries the result.
        """
        events: list[Any] = []
        invoke(Chaos(result=[1], hooks=events.append), real)

        assert [("result",), [1], None] == [
            events[0].kinds,
            events[0].result,
            events[0].fault,
        ]

    def test_hook_failure_is_logged(self, invoke, real, caplog):
        """
        A hook that raises is logged, and the injection goes on.
        """

        def broken(event: Event) -> None:
            raise RuntimeError("hook")

        chaos = Chaos(result="fake", hooks=broken)
        with caplog.at_level(logging.ERROR, logger="stalwart"):
            assert "fake" == invoke(chaos, real)

        assert "ChaosInjected" in caplog.text

    def test_hook_base_exception(self, real):
        """
        A BaseException from a hook propagates; the chaos holds nothing
        and keeps working.
        """
        stop = [True]

        def interrupt(event: Event) -> None:
            if stop[0]:
                raise KeyboardInterrupt

        chaos = Chaos(result="fake", hooks=interrupt)
        with pytest.raises(KeyboardInterrupt):
            chaos.call(real)
        stop[0] = False

        assert "fake" == chaos.call(real)
        assert 2 == chaos.statistics().injected


async def double(x: int) -> int:
    """
    Return *x* doubled, asynchronously.
    """
    return 2 * x


def plain_double(x: int) -> int:
    """
    Return *x* doubled.
    """
    return 2 * x


class TestDecorator:
    def test_def(self):
        """
        A decorated def keeps its name and result, and is injected.
        """
        chaos = Chaos(fault=Boom, every=2)
        wrapped = chaos(plain_double)

        assert "plain_double" == wrapped.__name__
        assert 4 == wrapped(2)
        with pytest.raises(Boom):
            wrapped(2)

    def test_async_def(self, clock):
        """
        A decorated async def is injected, its latency awaited.
        """
        chaos = Chaos(latency=1.0, result=0, every=2, clock=clock)
        wrapped = chaos(double)

        async def main() -> list[int]:
            return [await wrapped(2), await wrapped(2)]

        assert [4, 0] == asyncio.run(main())
        assert [1.0] == clock.sleeps

    def test_def_result(self):
        """
        A decorated def can have its result replaced.
        """
        wrapped = Chaos(result=-1, first=1)(plain_double)

        assert [-1, 4] == [wrapped(2), wrapped(2)]

    def test_disabled_decorated_calls_pass(self):
        """
        A disabled chaos's decorated functions run untouched, sync and
        async.
        """
        chaos = Chaos(fault=Boom, enabled=False)

        assert 4 == chaos(plain_double)(2)
        assert 4 == asyncio.run(chaos(double)(2))

    def test_async_callable_object(self):
        """
        An object with an async __call__ goes through the async path.
        """

        class Service:
            async def __call__(self) -> str:
                return "ok"

        assert "fake" == asyncio.run(Chaos(result="fake")(Service())())


class TestAsyncBehavior:
    def test_awaited_by_async_faces(self, clock):
        """
        An async behavior is awaited by acall, the async decorator and
        async with.
        """
        log = []

        async def restart() -> None:
            await clock.asleep(1.0)
            log.append(clock.now())

        chaos = Chaos(behavior=restart, clock=clock)

        async def main() -> None:
            await chaos.acall(double, 1)
            await chaos(double)(1)
            async with chaos:
                pass

        asyncio.run(main())

        assert [1.0, 2.0, 3.0] == log

    def test_refused_by_sync_faces(self):
        """
        The sync faces refuse a chaos with an async behavior, saying where
        to go.
        """

        async def restart() -> None:
            pass  # pragma: no cover  # never called

        def numbers() -> Generator[int, None, None]:
            yield 1  # pragma: no cover  # never run

        chaos = Chaos(behavior=restart, name="db")
        message = (
            r"^Chaos 'db' has an async behavior, which .* cannot await; use"
            r" acall\(\), `async with` or decorate an async def$"
        )

        with pytest.raises(TypeError, match=message):
            chaos.call(plain_double, 1)
        with pytest.raises(TypeError, match=message):
            chaos(plain_double)
        with pytest.raises(TypeError, match=message):
            chaos(numbers)
        with pytest.raises(TypeError, match=message), chaos:
            pass


class AsyncService:
    """
    A service with async and sync methods, and an async __call__.
    """

    async def fetch(self) -> str:
        return "async"  # pragma: no cover  # refused before the call

    def label(self) -> str:
        return "sync"

    async def __call__(self) -> str:
        return "async"  # pragma: no cover  # refused before the call


class TestMisuse:
    def test_call_with_async_function(self, real):
        """
        call() given an async def is a TypeError naming acall(), and
        nothing is counted.
        """
        chaos = Chaos(fault=Boom, name="db")

        with pytest.raises(TypeError) as err:
            chaos.call(double, 1)

        assert (
            f"Chaos 'db': call() was given the async function {double!r};"
            " use acall() for async functions"
        ) == str(err.value)
        assert 0 == chaos.statistics().calls

    @pytest.mark.parametrize(
        "make",
        [
            lambda: AsyncService().fetch,
            lambda: functools.partial(double, 1),
            lambda: AsyncService(),
        ],
        ids=["bound-method", "partial", "async-call-object"],
    )
    def test_call_with_other_async_callables(self, make):
        """
        call() refuses async bound methods, partials of async functions
        and objects whose __call__ is async.
        """
        with pytest.raises(TypeError, match=r"use acall\(\)"):
            Chaos(fault=Boom).call(make())

    def test_call_with_sync_bound_method(self):
        """
        call() runs a plain bound method.
        """
        assert "sync" == Chaos(fault=Boom, enabled=False).call(
            AsyncService().label
        )

    def test_call_with_function_returning_a_coroutine(self):
        """
        call() given a function that returns a coroutine is a TypeError
        naming acall() (the coroutine is closed, never left un-awaited).
        """
        chaos = Chaos(fault=Boom, enabled=False)

        with pytest.raises(TypeError, match=r"use acall\(\)"):
            chaos.call(lambda: double(1))

    def test_acall_with_plain_function(self):
        """
        acall() given a plain function is a TypeError naming call().
        """
        chaos = Chaos(latency=1.0, enabled=False)

        with pytest.raises(TypeError, match=r"use call\(\) for plain"):
            asyncio.run(chaos.acall(plain_double, 1))  # type: ignore[arg-type]  # the misuse under test

    def test_acall_accepts_any_awaitable(self):
        """
        acall() awaits whatever awaitable the function returns.
        """

        async def main() -> int:
            future = asyncio.get_running_loop().create_future()
            future.set_result(7)
            return await Chaos(latency=1.0, enabled=False).acall(
                lambda: future
            )

        assert 7 == asyncio.run(main())

    @pytest.mark.parametrize("face", ["call", "with", "decorator"])
    def test_sync_latency_on_a_loop_thread(self, face):
        """
        A sync face that may sleep, used on a thread running an event
        loop, is refused with a RuntimeError naming the async faces.
        """
        chaos = Chaos(latency=1.0, name="db", clock=FakeClock())

        async def main() -> None:
            if face == "call":
                chaos.call(plain_double, 1)
            elif face == "with":
                with chaos:
                    pass  # pragma: no cover  # refused on entry
            else:
                chaos(plain_double)(1)

        with pytest.raises(RuntimeError) as err:
            asyncio.run(main())

        assert (
            "Chaos 'db': its latency on a sync face would block the event"
            " loop running on this thread (and every task on it); in async"
            " code use acall(), `async with` or an async def"
        ) == str(err.value)
        assert 0 == chaos.statistics().calls

    def test_sync_face_without_latency_on_a_loop_thread(self):
        """
        Without latency, a sync face may run on a loop thread.
        """

        async def main() -> str:
            return Chaos(result="fake").call(plain_double, 1)

        assert "fake" == asyncio.run(main())


class TestBlocks:
    def test_with_fault(self):
        """
        A fault is raised on entry: the block never runs.
        """
        ran = []
        chaos = Chaos(fault=Boom)

        with pytest.raises(Boom), chaos:
            ran.append(1)  # pragma: no cover  # the point: never runs

        assert [] == ran

    def test_with_latency(self, clock):
        """
        Latency is slept on entry, then the block runs; its own exceptions
        pass through.
        """
        chaos = Chaos(latency=2.0, clock=clock)

        with chaos:
            entered = clock.now()
        with pytest.raises(Boom), chaos:
            raise Boom

        assert 2.0 == entered

    def test_async_with(self, clock):
        """
        async with raises the fault or awaits the latency on entry.
        """
        slow = Chaos(latency=2.0, clock=clock)
        failing = Chaos(fault=Boom, every=2)

        async def main() -> list[str]:
            seen = []
            async with slow:
                seen.append(f"in at {clock.now()}")
            for _ in range(2):
                try:
                    async with failing:
                        seen.append("ran")
                except Boom:
                    seen.append("Boom")
            return seen

        assert ["in at 2.0", "ran", "Boom"] == asyncio.run(main())

    def test_disabled_blocks_run_untouched(self, clock):
        """
        Switched off, with and async with inject nothing and count
        nothing.
        """
        chaos = Chaos(fault=Boom, latency=1.0, enabled=False, clock=clock)

        async def main() -> None:
            async with chaos:
                pass

        with chaos:
            pass
        asyncio.run(main())

        assert [] == clock.sleeps
        assert 0 == chaos.statistics().calls

    def test_when_sees_no_arguments(self):
        """
        In a with block, when= receives a context with no function and no
        arguments.
        """
        seen = []
        chaos = Chaos(fault=Boom, when=lambda c: seen.append(c))

        with chaos:
            pass

        assert [ChaosContext(None, (), {})] == seen

    @pytest.mark.parametrize("enabled", [True, False], ids=["on", "off"])
    def test_results_need_the_call_faces(self, enabled):
        """
        A chaos that injects results refuses with / async with, even
        switched off, pointing to the call faces.
        """
        chaos = Chaos(result=1, name="db", enabled=enabled)
        message = (
            r"^Chaos 'db': an? `(async )?with` block has no result to"
            r" replace; result injection \(result=, result_factory=\) needs"
            r" the call faces: call\(\), acall\(\) or the decorator"
        )

        async def main() -> None:
            async with chaos:
                pass  # pragma: no cover  # refused on entry

        with pytest.raises(TypeError, match=message), chaos:
            pass  # pragma: no cover  # refused on entry
        with pytest.raises(TypeError, match=message):
            asyncio.run(main())

    def test_out_of_order_blocks(self):
        """
        Blocks left out of order (two generators stepped alternately) keep
        no state that could mix up.
        """
        chaos = Chaos(behavior=lambda: None)

        def gen() -> Generator[int, None, None]:
            with chaos:
                yield 1
                yield 2

        first, second = gen(), gen()
        next(first)
        next(second)

        assert [2] == list(first)
        assert [2] == list(second)
        assert 2 == chaos.statistics().injected


class TestGenerators:
    def test_injected_at_first_step(self, clock):
        """
        A decorated generator function is injected when iteration starts,
        not when the generator is created; send() and its return value
        pass through.
        """
        chaos = Chaos(fault=Boom, every=2, latency=1.0, clock=clock)

        @chaos
        def numbers(n: int) -> Generator[int, int, str]:
            got = yield n
            yield got
            return "done"

        ok = numbers(1)
        failing = numbers(2)
        created = chaos.statistics().calls
        assert 1 == next(ok)
        assert 5 == ok.send(5)
        with pytest.raises(StopIteration) as stop:
            next(ok)

        assert 0 == created
        assert "done" == stop.value.value
        with pytest.raises(Boom):
            next(failing)
        assert [1.0] == clock.sleeps

    def test_when_sees_generator_arguments(self):
        """
        when= receives the generator function's arguments.
        """
        chaos = Chaos(fault=Boom, when=lambda c: c.args == (13,))

        @chaos
        def numbers(n: int) -> Generator[int, None, None]:
            yield n

        assert [1] == list(numbers(1))
        with pytest.raises(Boom):
            list(numbers(13))

    def test_async_generator(self, clock):
        """
        A decorated async generator is injected at its first step; asend,
        athrow and aclose pass through.
        """
        chaos = Chaos(fault=Boom, every=2, latency=1.0, clock=clock)

        @chaos
        async def numbers() -> AsyncGenerator[int, int]:
            try:
                got = yield 1
                yield got
            except KeyError:
                yield -1

        async def main() -> list[Any]:
            seen: list[Any] = []
            gen = numbers()
            seen += [await anext(gen), await gen.asend(7)]
            seen.append(await gen.athrow(KeyError()))
            with pytest.raises(StopAsyncIteration):
                await anext(gen)
            try:
                await anext(numbers())
            except Boom:
                seen.append("Boom")
            closed = numbers()
            await anext(closed)
            await closed.aclose()
            empty = Chaos(latency=1.0, clock=clock)(_empty)()
            seen += [item async for item in empty]
            return seen

        assert [1, 7, -1, "Boom"] == asyncio.run(main())
        assert [1.0, 1.0] == clock.sleeps  # the failing call, the empty one

    def test_async_generator_stepped_from_tasks(self, clock):
        """
        A decorated async generator stepped from several tasks is injected
        once, at its first step, whichever task takes it.
        """
        chaos = Chaos(latency=2.0, clock=clock)

        @chaos
        async def numbers() -> AsyncGenerator[int, None]:
            yield 1
            yield 2

        async def main() -> list[int]:
            gen = numbers()
            first = await asyncio.create_task(anext(gen))
            second = await asyncio.wait_for(anext(gen), 10)
            with pytest.raises(StopAsyncIteration):
                await asyncio.create_task(anext(gen))
            return [first, second]

        assert [1, 2] == asyncio.run(main())
        assert [2.0] == clock.sleeps
        assert 1 == chaos.statistics().injected

    def test_disabled_generators_untouched(self):
        """
        Switched off, decorated generators iterate as they are.
        """
        chaos = Chaos(fault=Boom, enabled=False)

        @chaos
        def numbers() -> Generator[int, None, None]:
            yield from range(3)

        @chaos
        async def anumbers() -> AsyncGenerator[int, None]:
            for i in range(3):
                yield i

        async def collect() -> list[int]:
            return [i async for i in anumbers()]

        assert [0, 1, 2] == list(numbers())
        assert [0, 1, 2] == asyncio.run(collect())

    def test_results_refused(self):
        """
        A chaos that injects results refuses generator functions.
        """

        def numbers() -> Generator[int, None, None]:
            yield 1  # pragma: no cover  # never run

        async def anumbers() -> AsyncGenerator[int, None]:
            yield 1  # pragma: no cover  # never run

        chaos = Chaos(result=1)

        with pytest.raises(TypeError, match="a generator function has no"):
            chaos(numbers)
        with pytest.raises(TypeError, match="a generator function has no"):
            chaos(anumbers)


async def _empty() -> AsyncGenerator[int, None]:
    """
    An async generator that yields nothing.
    """
    return
    yield  # pragma: no cover  # makes this an async generator


class TestConcurrency:
    def test_threads_number_every_call_once(self):
        """
        Calls from many threads get distinct numbers, and every=2 injects
        exactly half of them.
        """
        numbers: list[int] = []
        chaos = Chaos(
            behavior=lambda: None,
            every=2,
            hooks=lambda e: numbers.append(e.call_number),
        )
        fn = chaos(plain_double)
        barrier = threading.Barrier(8)

        def work() -> None:
            barrier.wait()
            for _ in range(500):
                fn(1)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert list(range(2, 4001, 2)) == sorted(numbers)
        assert ChaosStatistics(
            name=chaos.name,
            calls=4000,
            injected=2000,
            faults=0,
            results=0,
            latencies=0,
            behaviors=2000,
        ) == (chaos.statistics())

    def test_concurrent_latencies_overlap(self, clock):
        """
        Tasks delayed at once wake together on fake time: latency is
        per call, not a queue.
        """
        chaos = Chaos(latency=5.0, clock=clock)

        async def main() -> list[int]:
            return await asyncio.gather(
                *(chaos.acall(double, i) for i in range(3))
            )

        assert [0, 2, 4] == asyncio.run(main())
        assert 5.0 == clock.now()

    def test_cancelled_during_latency(self, clock, real):
        """
        A call cancelled while its latency is slept never runs; the next
        call goes on normally.
        """
        chaos = Chaos(latency=5.0, every=1, clock=clock)
        fn = as_async(real)

        async def main() -> str:
            task = asyncio.create_task(chaos.acall(fn))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await chaos.acall(fn)

        assert "real" == asyncio.run(main())
        assert 1 == real.count
        assert 2 == chaos.statistics().latencies


class TestComposition:
    def test_fallback_breaker_chaos(self, clock):
        """
        Injected faults open a breaker; a fallback answers for both the
        faults and the refusals, and the breaker closes once chaos stops.
        """
        chaos = Chaos(fault=ConnectionError("injected"), after=2, clock=clock)
        breaker = CircuitBreaker(
            failure_threshold=2, recovery_time=10.0, clock=clock
        )
        fallback = Fallback(value="cached")

        @fallback
        @breaker
        @chaos
        def price(item: str) -> str:
            return "fresh"

        seen = [price("a") for _ in range(5)]
        refused = breaker.statistics().rejected
        chaos.disable()
        clock.advance(10.0)
        seen.append(price("a"))

        assert ["fresh", "fresh", "cached", "cached", "cached", "fresh"] == (
            seen
        )
        assert 1 == refused
        assert "closed" == breaker.state.value

    def test_retry_outlasts_injected_faults(self, clock):
        """
        A retry around a chaos that fails the first two calls succeeds on
        the third.
        """
        chaos = Chaos(fault=ConnectionError, first=2, clock=clock)
        retry = Retry(attempts=3, on=ConnectionError, clock=clock)

        assert 4 == retry(chaos(plain_double))(2)
        assert 3 == chaos.statistics().calls

    def test_timeout_cuts_injected_latency(self, clock):
        """
        An enclosing async timeout gives up on an injected latency that
        is too long, as it would on a slow dependency.
        """
        chaos = Chaos(latency=30.0, clock=clock)
        timeout = Timeout(seconds=1.0, clock=clock)

        async def main() -> None:
            await timeout.acall(chaos.acall, double, 1)

        with pytest.raises(TimeoutExceededError):
            asyncio.run(main())

        assert 1.0 == clock.now()

    def test_through_call_protocol(self, clock):
        """
        As a stage composed through call()/acall() (as a Pipeline will), a
        chaos receives the real call's arguments.
        """
        seen = []
        chaos = Chaos(
            result="staged",
            when=lambda c: seen.append(c.args) or c.args == ("x",),
        )
        breaker = CircuitBreaker(failure_threshold=3, clock=clock)

        assert "staged" == breaker.call(chaos.call, plain_double, "x")
        assert [("x",)] == seen
        assert "closed" == breaker.state.value


class ChaosMachine(RuleBasedStateMachine):
    """
    Through the switch, the predicate, resets and the passing of time, the
    shell numbers exactly the enabled calls and injects exactly those its
    schedule selects.
    """

    @initialize(
        every=st.none() | st.integers(1, 4),
        first=st.none() | st.integers(3, 20),
        after=st.integers(0, 2),
        period=st.none() | st.tuples(st.integers(0, 10), st.integers(1, 10)),
    )
    def build(self, every, first, after, period):
        self.clock = FakeClock()
        self.schedule = (every, first, after, period)
        during = () if period is None else [(period[0], sum(period))]
        self.chaos = Chaos(
            result="fake",
            every=every,
            first=first,
            after=after,
            during=during,
            when=lambda call: call.args[0],
            clock=self.clock,
        )
        self.on = True
        self.calls = 0
        self.injected = 0

    def selects(self, number: int) -> bool:
        every, first, after, period = self.schedule
        now = self.clock.now()
        return (
            number > after
            and (first is None or number <= first)
            and (every is None or number % every == 0)
            and (period is None or period[0] <= now < sum(period))
        )

    @rule(flagged=st.booleans())
    def call(self, flagged):
        result = self.chaos.call(lambda flag: "real", flagged)
        injected = False
        if self.on and flagged:
            self.calls += 1
            injected = self.selects(self.calls)
            self.injected += injected

        assert ("fake" if injected else "real") == result

    @rule(on=st.booleans())
    def switch(self, on):
        (self.chaos.enable if on else self.chaos.disable)()
        self.on = on

    @rule(seconds=st.integers(0, 4))
    def advance(self, seconds):
        self.clock.advance(seconds)

    @rule()
    def reset(self):
        self.chaos.reset()
        self.calls = self.injected = 0

    @invariant()
    def counts_agree(self):
        stats = self.chaos.statistics()

        assert (self.calls, self.injected, self.injected) == (
            stats.calls,
            stats.injected,
            stats.results,
        )
        assert self.on is self.chaos.enabled


TestChaosMachine = ChaosMachine.TestCase
