"""
Helpers shared by the circuit breaker's tests.
"""

from __future__ import annotations

import asyncio

from typing import Any

import pytest

from helpers import Boom, as_async, boom, ok
from stalwart import CircuitBreaker
from stalwart.testing import FakeClock


def trip(breaker: CircuitBreaker, times: int = 1) -> None:
    """
    Fail *times* calls through *breaker*.
    """
    for _ in range(times):
        with pytest.raises(Boom):
            breaker.call(boom)


def slow(clock: FakeClock, seconds: float, fn: Any = ok) -> Any:
    """
    Return a function that spends *seconds* on *clock*, then runs *fn*.
    """

    def run(*args: Any, **kwargs: Any) -> Any:
        clock.advance(seconds)
        return fn(*args, **kwargs)

    return run


def raising(exc: BaseException) -> Any:
    """
    Return a function that raises *exc*.
    """

    def fn(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fn


def through(face: str, cb: CircuitBreaker, fn: Any, *args: Any) -> Any:
    """
    Run ``fn(*args)`` through one face of *cb*.
    """
    if face == "call":
        return cb.call(fn, *args)
    if face == "acall":
        return asyncio.run(cb.acall(as_async(fn), *args))
    if face == "decorator":
        return cb(fn)(*args)
    if face == "async decorator":
        return asyncio.run(cb(as_async(fn))(*args))
    if face == "with":
        with cb:
            return fn(*args)
    if face == "async with":

        async def block() -> Any:
            async with cb:
                return fn(*args)

        return asyncio.run(block())
    permit = cb.acquire()
    try:
        result = fn(*args)
    except BaseException as e:
        permit.record_exception(e)
        raise
    permit.record_success()
    return result


FACES = [
    "call",
    "acall",
    "decorator",
    "async decorator",
    "with",
    "async with",
    "permit",
]
