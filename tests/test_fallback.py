"""
Fallback: values and handlers, exception and result triggers, both faces,
chains, and handlers that fail.
"""

from __future__ import annotations

import asyncio
import functools
import inspect

from collections.abc import AsyncGenerator, Generator
from typing import Any

import pytest

from helpers import Boom, as_async, boom, ok
from stalwart import (
    ConfigurationError,
    Event,
    Fallback,
    FallbackStatistics,
    FallbackUsed,
)


class TestConfig:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {},
                "exactly one of 'value' and 'handler' must be given (got neither)",
            ),
            (
                {"value": 1, "handler": str},
                "exactly one of 'value' and 'handler' must be given (got both)",
            ),
            ({"handler": 3}, "'handler' must be callable (got 3)"),
            (
                {"value": 1, "on_result": 3},
                "'on_result' must be callable (got 3)",
            ),
            (
                {"value": 1, "on": 3},
                "'on' must be an exception type, a tuple of them, or a predicate (got 3)",
            ),
        ],
        ids=["neither", "both", "handler", "on_result", "on"],
    )
    def test_rejects_bad_values(self, kwargs, message):
        """
        Bad settings fail where the fallback is built.
        """
        with pytest.raises(ConfigurationError) as e:
            Fallback(**kwargs)

        assert message == str(e.value)

    def test_value_none_is_a_value(self):
        """
        value=None is a real fallback value, not "missing".
        """
        assert None is Fallback(value=None).call(boom)
        assert "Fallback(value=<missing>, on=" in repr(Fallback(handler=str))


class TestFaces:
    def test_value_on_exception(self, invoke):
        """
        A matching exception gives the fallback value.
        """
        f = Fallback(value="cached")

        assert "cached" == invoke(f, boom)
        assert "ok" == invoke(f, ok)
        assert (
            FallbackStatistics(name=f.name, on_error=1, on_result=0)
            == f.statistics()
        )

    def test_handler_receives_exception(self, invoke):
        """
        The handler gets the exception and its result is returned.
        """
        f = Fallback(handler=lambda e: type(e).__name__)

        assert "Boom" == invoke(f, boom)

    def test_unmatched_exception_passes(self, invoke):
        """
        An exception outside on= propagates unchanged.
        """
        f = Fallback(value=0, on=KeyError)

        with pytest.raises(Boom):
            invoke(f, boom)

    def test_predicate(self, invoke):
        """
        on= may be a predicate on the exception.
        """
        f = Fallback(value=0, on=lambda e: isinstance(e, Boom))

        assert 0 == invoke(f, boom)

    def test_on_result(self, invoke):
        """
        A result the on_result predicate accepts is replaced too.
        """
        f = Fallback(
            handler=lambda r: f"not {r}", on_result=lambda r: r == "ok"
        )

        assert "not ok" == invoke(f, ok)
        assert "x" == invoke(f, lambda: "x")
        assert (
            FallbackStatistics(name=f.name, on_error=0, on_result=1)
            == f.statistics()
        )

    def test_base_exceptions_never_fall_back(self, invoke):
        """
        KeyboardInterrupt passes through even with on=BaseException.
        """

        def interrupt() -> None:
            raise KeyboardInterrupt

        f = Fallback(value=0, on=BaseException)

        with pytest.raises(KeyboardInterrupt):
            invoke(f, interrupt)

    def test_handler_error_is_chained(self, invoke):
        """
        An exception from the handler propagates, chained to the original.
        """

        def handler(e: BaseException) -> Any:
            raise KeyError("no cache")

        f = Fallback(handler=handler)

        with pytest.raises(KeyError) as e:
            invoke(f, boom)

        assert isinstance(e.value.__context__, Boom)

    def test_cancellation_passes(self):
        """
        Cancellation is never replaced by a fallback.
        """

        async def cancelled() -> None:
            raise asyncio.CancelledError

        with pytest.raises(asyncio.CancelledError):
            asyncio.run(Fallback(value=0).acall(cancelled))

    def test_async_handler(self):
        """
        acall awaits an async handler.
        """

        async def handler(e: BaseException) -> str:
            return "async " + type(e).__name__

        assert "async Boom" == asyncio.run(
            Fallback(handler=handler).acall(as_async(boom))
        )

    def test_async_handler_refused_on_sync_call(self):
        """
        A sync call cannot await an async handler: refused before running.
        """

        async def handler(e: BaseException) -> str:
            return ""

        f = Fallback(handler=handler, name="cache")
        calls: list[int] = []

        with pytest.raises(TypeError) as e:
            f.call(calls.append, 1)
        with pytest.raises(TypeError):
            f(ok)

        assert [] == calls
        assert (
            "Fallback 'cache' has an async handler, which a sync call "
            "cannot await; use acall() or decorate an async def"
        ) == str(e.value)

    def test_decorators(self):
        """
        The decorator works on def and async def and keeps their shape.
        """
        f = Fallback(value=-1)

        @f
        def parse(text: str) -> int:
            return int(text)

        @f
        async def aparse(text: str) -> int:
            return int(text)

        assert (3, -1) == (parse("3"), parse("x"))
        assert (3, -1) == (asyncio.run(aparse("3")), asyncio.run(aparse("x")))
        assert inspect.iscoroutinefunction(aparse)
        assert "parse" == parse.__name__

    def test_decorators_filter(self):
        """
        The decorators let unmatched exceptions through and check results.
        """
        f = Fallback(
            value="fallback", on=KeyError, on_result=lambda r: r is None
        )

        @f
        def sync(kind: str) -> str | None:
            if kind == "boom":
                raise Boom
            return None if kind == "none" else kind

        @f
        async def asyn(kind: str) -> str | None:
            if kind == "boom":
                raise Boom
            if kind == "key":
                raise KeyError(kind)
            return None if kind == "none" else kind

        def key() -> None:
            raise KeyError

        assert ("fallback", "x") == (sync("none"), sync("x"))
        assert ("fallback", "fallback", "x") == (
            asyncio.run(asyn("none")),
            asyncio.run(asyn("key")),
            asyncio.run(asyn("x")),
        )
        assert "fallback" == f(key)()
        with pytest.raises(Boom):
            sync("boom")
        with pytest.raises(Boom):
            asyncio.run(asyn("boom"))

    def test_chain_by_stacking(self):
        """
        Stacked fallbacks form a chain: primary, then cache, then default.
        """
        cache: dict[str, str] = {}

        def from_cache(e: BaseException) -> str:
            return cache["answer"]

        @Fallback(value="default")
        @Fallback(handler=from_cache, on=Boom)
        def primary() -> str:
            raise Boom

        assert "default" == primary()
        cache["answer"] = "cached"
        assert "cached" == primary()

    def test_events(self, clock):
        """
        Each fallback emits FallbackUsed with its cause.
        """
        events: list[Event] = []
        f = Fallback(
            value=0,
            on_result=lambda r: r is None,
            name="f",
            clock=clock,
            hooks=events.append,
        )
        error = Boom()

        def fail() -> None:
            raise error

        f.call(fail)
        f.call(lambda: None)

        assert [
            FallbackUsed(primitive_name="f", at=0.0, error=error, result=None),
            FallbackUsed(primitive_name="f", at=0.0, error=None, result=None),
        ] == events


class TestValues:
    def test_on_none_refused(self):
        """
        on=None would silently match nothing: it is refused, pointing to
        on=() for results only.
        """
        with pytest.raises(ConfigurationError) as e:
            Fallback(value=0, on=None)

        assert (
            "'on' must be an exception type, a tuple of them, or a predicate"
            " (got None); use on=() to fall back on results only"
        ) == str(e.value)

    def test_results_only(self, invoke):
        """
        on=() falls back on results only; exceptions pass.
        """
        f = Fallback(value="empty", on=(), on_result=lambda r: r == "")

        assert "empty" == invoke(f, lambda: "")
        with pytest.raises(Boom):
            invoke(f, boom)

    def test_never_used_refused(self):
        """
        A fallback that nothing can trigger is refused where it is built,
        with every problem listed.
        """
        with pytest.raises(ConfigurationError) as e:
            Fallback(on=())

        assert (
            "invalid configuration:\n"
            "- exactly one of 'value' and 'handler' must be given (got"
            " neither)\n"
            "- the fallback can never be used: 'on' matches no exception and"
            " 'on_result' is not given"
        ) == str(e.value)

    def test_async_on_result_refused(self):
        """
        An async on_result predicate would always read as true: refused
        where the fallback is built.
        """

        async def bad(result: object) -> bool:
            return False

        with pytest.raises(TypeError, match="'on_result' must be a plain"):
            Fallback(value=0, on_result=bad)


class AsyncHandler:
    """
    A handler object whose __call__ is async.
    """

    async def __call__(self, cause: object) -> str:
        return "async"


class TestMisuse:
    @pytest.mark.parametrize(
        "handler",
        [AsyncHandler(), functools.partial(AsyncHandler().__call__)],
        ids=["async-call-object", "partial"],
    )
    def test_async_handler_objects_refused_on_sync_faces(self, handler):
        """
        An async handler object or partial is known to be async: sync faces
        refuse it before running anything.
        """
        f = Fallback(handler=handler)
        calls: list[int] = []

        with pytest.raises(TypeError, match="has an async handler"):
            f.call(calls.append, 1)
        with pytest.raises(TypeError, match="has an async handler"):
            f(ok)
        assert [] == calls
        assert "async" == asyncio.run(f.acall(as_async(boom)))

    def test_sync_handler_returning_a_coroutine(self):
        """
        A sync face whose handler returns a coroutine raises TypeError and
        counts nothing.
        """

        async def later(cause: object) -> str:
            return "never awaited"

        f = Fallback(handler=lambda cause: later(cause))

        with pytest.raises(TypeError, match=r"use acall\(\)"):
            f.call(boom)
        assert (
            FallbackStatistics(name=f.name, on_error=0, on_result=0)
            == f.statistics()
        )

    @pytest.mark.parametrize("on", [Exception, TypeError])
    def test_call_with_an_async_function(self, on):
        """
        call() given an async function raises TypeError naming acall(),
        never the fallback value, even with on=TypeError, and counts
        nothing.
        """
        f = Fallback(value="fallback", on=on)

        async def fetch() -> str:
            return "never awaited"

        @f
        def start() -> Any:
            return fetch()

        with pytest.raises(TypeError, match=r"use acall\(\)"):
            f.call(fetch)
        with pytest.raises(TypeError, match=r"use acall\(\)"):
            start()
        assert (
            FallbackStatistics(name=f.name, on_error=0, on_result=0)
            == f.statistics()
        )

    @pytest.mark.parametrize("on", [Exception, TypeError])
    def test_acall_with_a_plain_function(self, on):
        """
        acall() given a plain function raises TypeError naming call(),
        never the fallback value, and counts nothing.
        """
        f = Fallback(value="fallback", on=on)

        with pytest.raises(TypeError, match=r"use call\(\)"):
            asyncio.run(f.acall(ok))  # type: ignore[arg-type]  # the misuse under test
        assert (
            FallbackStatistics(name=f.name, on_error=0, on_result=0)
            == f.statistics()
        )

    def test_acall_function_raising_before_awaiting(self, invoke):
        """
        An exception raised by calling the function (before any await) is
        a failure like any other.
        """
        f = Fallback(value="fallback")

        assert "fallback" == asyncio.run(f.acall(boom))

    def test_acall_unmatched_exception_before_awaiting(self):
        """
        An exception outside on=, raised by calling the function, passes.
        """
        with pytest.raises(Boom):
            asyncio.run(Fallback(value=0, on=KeyError).acall(boom))

    def test_async_handler_error_is_counted_and_chained(self):
        """
        An async handler that fails propagates its error, chained to the
        original, and the fallback still counts as used.
        """

        async def handler(cause: BaseException) -> str:
            raise KeyError("no cache")

        f = Fallback(handler=handler)

        with pytest.raises(KeyError) as e:
            asyncio.run(f.acall(as_async(boom)))
        assert isinstance(e.value.__context__, Boom)
        assert (
            FallbackStatistics(name=f.name, on_error=1, on_result=0)
            == f.statistics()
        )

    @pytest.mark.parametrize("kind", ["generator", "async-generator"])
    def test_generator_functions_refused(self, kind):
        """
        A fallback replaces one outcome; an iteration has one per item:
        decorating a generator function of either kind is refused.
        """

        def numbers() -> Generator[int, None, None]:
            yield 1

        async def anumbers() -> AsyncGenerator[int, None]:
            yield 1

        with pytest.raises(TypeError, match="cannot guard the generator"):
            Fallback(value=0)(numbers if kind == "generator" else anumbers)
