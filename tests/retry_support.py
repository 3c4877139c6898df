"""
Test doubles and face drivers shared by the retry tests (importable as
``retry_support``).

``FACES`` runs a retry around ``fn(*args, **kwargs)`` through each of its
six faces (``call``, ``acall``, the sync and async decorators, and the
sync and async attempt loops); ``RESULT_FACES`` does the same with the
loops handing their result to ``Attempt.set_result()``.  The async faces
run *fn* wrapped in an ``async def``, in a fresh event loop.
"""

from __future__ import annotations

import asyncio

from collections.abc import Callable
from typing import Any

from helpers import Boom, as_async
from stalwart import Retry, RetryStatistics
from stalwart.testing import FakeClock


class Flaky:
    """
    Produce the given outcomes in turn (raising exceptions, returning
    anything else), then return ``"ok"``; each call may take fake time.
    """

    def __init__(
        self,
        *outcomes: object,
        clock: FakeClock | None = None,
        takes: float = 0.0,
    ) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.args: list[tuple[Any, ...]] = []
        self.started: list[float] = []
        self.clock = clock
        self.takes = takes

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.args.append((args, kwargs))
        if self.clock is not None:
            self.started.append(self.clock.now())
            if self.takes:
                self.clock.advance(self.takes)
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return "ok"


def exp(clock: FakeClock, **kwargs: Any) -> Retry:
    """
    Build a retry of Boom with an exponential backoff of 1, 2, 4... s, no
    jitter and no time budget (each setting can be overridden).
    """
    settings: dict[str, Any] = {
        "on": Boom,
        "wait_initial": 1.0,
        "wait_max": 100.0,
        "jitter": "none",
        "timeout": None,
        "clock": clock,
    }
    settings.update(kwargs)
    return Retry(**settings)


def loop(retry: Retry, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """
    Run *fn* in a sync attempt loop, returning from inside the block.
    """
    for attempt in retry:
        with attempt:
            return fn(*args, **kw)
    raise AssertionError("unreachable")


async def aloop(
    retry: Retry, fn: Callable[..., Any], *args: Any, **kw: Any
) -> Any:
    """
    Run the coroutine function *fn* in an async attempt loop.
    """
    async for attempt in retry:
        with attempt:
            return await fn(*args, **kw)
    raise AssertionError("unreachable")


def loop_result(
    retry: Retry, fn: Callable[..., Any], *args: Any, **kw: Any
) -> Any:
    """
    Run *fn* in a sync attempt loop that hands its result to the attempt.
    """
    for attempt in retry:
        with attempt:
            result = fn(*args, **kw)
            attempt.set_result(result)
    return result


async def aloop_result(
    retry: Retry, fn: Callable[..., Any], *args: Any, **kw: Any
) -> Any:
    """
    Run *fn* in an async attempt loop that hands its result to the attempt.
    """
    async for attempt in retry:
        with attempt:
            result = await fn(*args, **kw)
            attempt.set_result(result)
    return result


FACES: dict[str, Callable[..., Any]] = {
    "call": lambda r, fn, *a, **k: r.call(fn, *a, **k),
    "acall": lambda r, fn, *a, **k: asyncio.run(
        r.acall(as_async(fn), *a, **k)
    ),
    "decorator": lambda r, fn, *a, **k: r(fn)(*a, **k),
    "async-decorator": lambda r, fn, *a, **k: asyncio.run(
        r(as_async(fn))(*a, **k)
    ),
    "loop": loop,
    "async-loop": lambda r, fn, *a, **k: asyncio.run(
        aloop(r, as_async(fn), *a, **k)
    ),
}

RESULT_FACES: dict[str, Callable[..., Any]] = {
    **{
        name: FACES[name]
        for name in ("call", "acall", "decorator", "async-decorator")
    },
    "loop": loop_result,
    "async-loop": lambda r, fn, *a, **k: asyncio.run(
        aloop_result(r, as_async(fn), *a, **k)
    ),
}


def counts(stats: RetryStatistics) -> tuple[int, int, int]:
    """
    The calls, retries and give-ups of a retry's statistics.
    """
    return stats.calls, stats.retries, stats.give_ups
