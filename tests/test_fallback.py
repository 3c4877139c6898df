"""
Fallback: values and handlers, exception and result triggers, both faces,
chains, and handlers that fail.
"""

from __future__ import annotations

import asyncio
import inspect

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
        assert FallbackStatistics(1, 0) == f.statistics()

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
        assert FallbackStatistics(0, 1) == f.statistics()

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
