"""
The circuit breaker next to pybreaker, circuitbreaker and purgatory: a
closed call (decorator, ``call`` / ``acall``, ``with`` / ``async with``,
sync and async) and a refused call, as ratios to a plain call, a plain
await and a plain raise+catch sampled in the same rounds.

Rows ``floor`` are the hand-written minimum, as in
``shared/bench/peers_overhead.py``: one attribute read and test before the
call and one after, no lock; a refusal reads the clock (has the open period
ended?) and raises a new exception.  A second refused floor also counts the
refusal and gives its error the breaker's name and ``retry_after``.

The ``with`` faces have two floors: a context manager that does nothing
(the cost of the ``with`` statement itself), and one that does the least a
breaker's block must: test the gate, keep the block's epoch under the
frame that entered it (so blocks that end out of order each find their
own), take it back at exit, and count the success.
"""

from __future__ import annotations

import sys
import time

from typing import Any

from harness import Boom, Suite, af, f


_monotonic = time.monotonic
_getframe = sys._getframe


class NoopBlock:
    """A context manager that does nothing: the cost of ``with`` itself."""

    __slots__ = ()

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass

    async def __aenter__(self) -> None:
        pass

    async def __aexit__(self, *exc: object) -> None:
        pass


class FrameKeyedBlock:
    """
    The least a breaker's ``with`` block can do: test the gate, keep the
    block's epoch under its frame, take it back at exit, count a success.
    """

    __slots__ = ("gate", "held", "successes")

    def __init__(self) -> None:
        self.gate = 0
        self.held: dict[Any, int] = {}
        self.successes = 0

    def __enter__(self) -> None:
        if self.gate < 0:
            raise Boom
        self.held[_getframe(1)] = self.gate

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.held.pop(_getframe(1))
        if exc is None:
            self.successes += 1

    async def __aenter__(self) -> None:
        if self.gate < 0:
            raise Boom
        self.held[_getframe(1)] = self.gate

    async def __aexit__(
        self, exc_type: object, exc: object, tb: object
    ) -> None:
        self.held.pop(_getframe(1))
        if exc is None:
            self.successes += 1


class _Floor:
    """The least a breaker can do."""

    def __init__(self) -> None:
        self.open_until = 0.0
        self.failures = 0

    def wrap(self, fn: Any) -> Any:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.open_until and _monotonic() < self.open_until:
                raise Boom
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                self.failures += 1
                raise
            if self.failures:
                self.failures = 0
            return result

        return guarded

    def awrap(self, fn: Any) -> Any:
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.open_until and _monotonic() < self.open_until:
                raise Boom
            try:
                result = await fn(*args, **kwargs)
            except BaseException:
                self.failures += 1
                raise
            if self.failures:
                self.failures = 0
            return result

        return guarded


REFUSED = "try:\n    g(x)\nexcept E:\n    pass"
AREFUSED = "try:\n    await g(x)\nexcept E:\n    pass"


WITH = "with b:\n    f(x)"
AWITH = "async with b:\n    await af(x)"
REFUSED_WITH = "try:\n    with b:\n        f(x)\nexcept E:\n    pass"
REFUSED_CALL = "try:\n    b.call(f, x)\nexcept E:\n    pass"


def _ours(suite: Suite) -> None:
    import stalwart

    closed = stalwart.CircuitBreaker(name="bench")
    suite.add("breaker", "stalwart closed", "g(x)", {"g": closed(f), "x": 1})
    suite.add(
        "breaker",
        "stalwart closed async",
        "await g(x)",
        {"g": closed(af), "x": 1},
        is_async=True,
    )
    suite.add(
        "breaker",
        "stalwart closed, with",
        WITH,
        {"b": closed, "f": f, "x": 1},
    )
    suite.add(
        "breaker",
        "stalwart closed, async with",
        AWITH,
        {"b": closed, "af": af, "x": 1},
        is_async=True,
    )
    suite.add(
        "breaker",
        "stalwart closed, call()",
        "b.call(f, x)",
        {"b": closed, "f": f, "x": 1},
    )
    suite.add(
        "breaker",
        "stalwart closed, acall()",
        "await b.acall(af, x)",
        {"b": closed, "af": af, "x": 1},
        is_async=True,
    )
    refusing = stalwart.CircuitBreaker(name="bench", recovery_time=1e9)
    refusing.force_open()
    opened = stalwart.CircuitBreaker(
        name="bench", failure_threshold=1, recovery_time=1e9
    )
    try:
        opened.call(_boom)
    except Boom:
        pass
    suite.add(
        "breaker",
        "stalwart refused",
        REFUSED,
        {"g": opened(f), "x": 1, "E": stalwart.CircuitOpenError},
        baseline="raise",
    )
    suite.add(
        "breaker",
        "stalwart refused, with",
        REFUSED_WITH,
        {"b": opened, "f": f, "x": 1, "E": stalwart.CircuitOpenError},
        baseline="raise",
    )
    suite.add(
        "breaker",
        "stalwart refused, call()",
        REFUSED_CALL,
        {"b": opened, "f": f, "x": 1, "E": stalwart.CircuitOpenError},
        baseline="raise",
    )
    window = stalwart.CircuitBreaker(
        name="bench", failure_rate=0.5, window=stalwart.CountWindow(100)
    )
    suite.add(
        "breaker",
        "stalwart closed, rate over CountWindow(100)",
        "g(x)",
        {"g": window(f), "x": 1},
    )


class _Refused(Exception):
    """A refusal carrying the breaker's name and retry_after in ``args``."""

    __init__ = Exception.__init__  # C-level: positional arguments only


def _floor_kept(fn: Any) -> Any:
    """
    The floor's refusal with the work a refusal must do: count it, and
    raise an error carrying the breaker's name and ``retry_after``.  Its
    state lives in the closure (a breaker shares it across faces) and its
    error takes positional arguments only (stalwart's takes keywords too).
    """
    open_until, refused = float("inf"), 0

    def guarded(*args: Any, **kwargs: Any) -> Any:
        nonlocal refused
        if open_until:
            now = _monotonic()
            if now < open_until:
                refused += 1
                raise _Refused("bench", open_until - now)
        return fn(*args, **kwargs)

    return guarded


def _boom() -> None:
    raise Boom


def _floor(suite: Suite) -> None:
    floor = _Floor()
    suite.add(
        "breaker",
        "floor closed",
        "g(x)",
        {"g": floor.wrap(f), "x": 1},
        kind="floor",
    )
    suite.add(
        "breaker",
        "floor closed async",
        "await g(x)",
        {"g": floor.awrap(af), "x": 1},
        is_async=True,
        kind="floor",
    )
    for name, block in (
        ("no-op", NoopBlock()),
        ("keyed by frame", FrameKeyedBlock()),
    ):
        suite.add(
            "breaker",
            f"floor with, {name}",
            WITH,
            {"b": block, "f": f, "x": 1},
            kind="floor",
        )
        suite.add(
            "breaker",
            f"floor async with, {name}",
            AWITH,
            {"b": block, "af": af, "x": 1},
            is_async=True,
            kind="floor",
        )
    shut = _Floor()
    shut.open_until = float("inf")
    suite.add(
        "breaker",
        "floor refused",
        REFUSED,
        {"g": shut.wrap(f), "x": 1, "E": Boom},
        baseline="raise",
        kind="floor",
    )
    suite.add(
        "breaker",
        "floor refused, counted, error with name and retry_after",
        REFUSED,
        {"g": _floor_kept(f), "x": 1, "E": _Refused},
        baseline="raise",
        kind="floor",
    )


def _pybreaker(suite: Suite) -> None:
    import pybreaker

    closed = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=1e9)
    suite.add(
        "breaker",
        "pybreaker closed",
        "g(x)",
        {"g": closed(f), "x": 1},
        kind="peer",
    )
    suite.add(
        "breaker",
        "pybreaker closed, with calling()",
        "with b.calling():\n    f(x)",
        {"b": closed, "f": f, "x": 1},
        kind="peer",
    )
    opened = pybreaker.CircuitBreaker(fail_max=1, reset_timeout=1e9)
    opened.open()
    suite.add(
        "breaker",
        "pybreaker refused",
        REFUSED,
        {"g": opened(f), "x": 1, "E": pybreaker.CircuitBreakerError},
        baseline="raise",
        kind="peer",
    )


def _circuitbreaker(suite: Suite) -> None:
    import circuitbreaker

    closed = circuitbreaker.CircuitBreaker(
        failure_threshold=5, recovery_timeout=10**9
    )
    suite.add(
        "breaker",
        "circuitbreaker closed",
        "g(x)",
        {"g": closed(f), "x": 1},
        kind="peer",
    )
    aclosed = circuitbreaker.CircuitBreaker(
        failure_threshold=5, recovery_timeout=10**9
    )
    suite.add(
        "breaker",
        "circuitbreaker closed async",
        "await g(x)",
        {"g": aclosed(af), "x": 1},
        is_async=True,
        kind="peer",
    )
    opened = circuitbreaker.CircuitBreaker(
        failure_threshold=1, recovery_timeout=10**9, expected_exception=Boom
    )
    guarded = opened(_boom)
    try:
        guarded()
    except Boom:
        pass
    suite.add(
        "breaker",
        "circuitbreaker refused",
        REFUSED,
        {
            "g": opened(f),
            "x": 1,
            "E": circuitbreaker.CircuitBreakerError,
        },
        baseline="raise",
        kind="peer",
    )


def _purgatory(suite: Suite) -> None:
    import purgatory

    factory = purgatory.SyncCircuitBreakerFactory(
        default_threshold=5, default_ttl=1e9
    )
    suite.add(
        "breaker",
        "purgatory closed, with",
        WITH,
        {"b": factory.get_breaker("bench"), "f": f, "x": 1},
        kind="peer",
    )

    async def abreaker() -> Any:
        afactory = purgatory.AsyncCircuitBreakerFactory(
            default_threshold=5, default_ttl=1e9
        )
        return await afactory.get_breaker("bench")

    suite.add(
        "breaker",
        "purgatory closed, async with",
        AWITH,
        {"b": suite.loop.run_until_complete(abreaker()), "af": af, "x": 1},
        is_async=True,
        kind="peer",
    )


def rows(suite: Suite) -> None:
    """Add the breaker rows: ours, the floor, then each peer."""
    _ours(suite)
    _floor(suite)
    for peer in (_pybreaker, _circuitbreaker, _purgatory):
        try:
            peer(suite)
        except Exception as e:  # a peer that is missing or moved is skipped
            suite.skipped.append((peer.__name__.lstrip("_"), repr(e)))
