"""
Chaos: what a chaos stage costs when it is switched off (the case that
matters: it may stay in production code) and when it is on but injects
nothing, against a plain call and against a hand-written floor, a wrapper
that checks a flag and calls through.
"""

from __future__ import annotations

import functools

from collections.abc import Awaitable, Callable
from typing import Any

from harness import Boom, abatch, af, batch, f
from stalwart import Chaos


class _Flag:
    __slots__ = ("on",)

    def __init__(self) -> None:
        self.on = False


def _floor(fn: Callable[..., Any]) -> Callable[..., Any]:
    """
    The least a switchable decorator can do: read a flag, call through.
    """
    flag = _Flag()

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if flag.on:
            raise Boom  # never: the flag stays off
        return fn(*args, **kwargs)

    return wrapper


def _afloor(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """
    The async twin of :func:`_floor`.
    """
    flag = _Flag()

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        if flag.on:
            raise Boom  # never: the flag stays off
        return await fn(*args, **kwargs)

    return wrapper


def _off() -> Chaos:
    return Chaos(fault=Boom, enabled=False)


def test_chaos_floor_flag_wrapper(benchmark):
    """The floor: a wrapper that checks a flag (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": _floor(f), "x": 1}))


def test_chaos_disabled_decorator(benchmark):
    """A decorated def, chaos switched off (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": _off()(f), "x": 1}))


def test_chaos_disabled_decorator_vs_floor(benchmark):
    """A decorated def, chaos switched off (vs the floor)."""
    benchmark.extra_info["baseline"] = "test_chaos_floor_flag_wrapper"
    benchmark(batch("g(x)", {"g": _off()(f), "x": 1}))


def test_chaos_floor_async_flag_wrapper(benchmark):
    """The async floor: a wrapper that checks a flag (vs a plain await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await g(x)", {"g": _afloor(af), "x": 1}))


def test_chaos_disabled_async_decorator(benchmark):
    """A decorated async def, chaos switched off (vs a plain await)."""
    benchmark.extra_info["baseline"] = "test_plain_await"
    benchmark(abatch("await g(x)", {"g": _off()(af), "x": 1}))


def test_chaos_disabled_async_decorator_vs_floor(benchmark):
    """A decorated async def, chaos switched off (vs the async floor)."""
    benchmark.extra_info["baseline"] = "test_chaos_floor_async_flag_wrapper"
    benchmark(abatch("await g(x)", {"g": _off()(af), "x": 1}))


def test_chaos_disabled_call(benchmark):
    """``chaos.call(f, x)`` switched off (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("c(f, x)", {"c": _off().call, "f": f, "x": 1}))


def test_chaos_disabled_with(benchmark):
    """``with chaos: f(x)`` switched off (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("with c:\n    f(x)", {"c": _off(), "f": f, "x": 1}))


def test_chaos_enabled_not_injected(benchmark):
    """A decorated def, chaos on, probability 0 (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"
    chaos = Chaos(fault=Boom, probability=0.0)
    benchmark(batch("g(x)", {"g": chaos(f), "x": 1}))


def test_chaos_enabled_every_other_latency(benchmark):
    """A decorated def, chaos on, a zero-cost latency injected into every
    other call on a no-op clock (vs a plain call)."""
    benchmark.extra_info["baseline"] = "test_plain_call"

    class _NoSleep:
        def now(self) -> float:
            return 0.0

        def sleep(self, seconds: float) -> None:
            pass

        async def asleep(self, seconds: float) -> None:
            pass

    chaos = Chaos(latency=1.0, every=2, clock=_NoSleep())
    benchmark(batch("g(x)", {"g": chaos(f), "x": 1}))
