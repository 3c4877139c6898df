"""
Pipeline rows for ``compare_peers.py``: three compositions on their success
path, sync and async, as ratios to a plain call / await sampled in the same
rounds: a breaker alone; a retry around a breaker; a fallback, a retry, a
breaker and a timeout.

For each: the stages' decorators stacked by hand (the budget's reference:
a pipeline costs at most that plus one call frame per stage), the
pipeline's decorator, and its ``call()`` / ``acall()``; for the all-guard
pipelines (one breaker, two breakers), the ``with`` / ``async with`` face
next to the decorator.  Peers that can compose: hyx by stacking its
decorators (async only), pyresilience with its one ``resilient(...)``
decorator taking several configurations.  The sync timeout runs the call
on a worker thread in every library, so its rows measure that hand-off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import stalwart

from harness import Suite, af, f


SYNC = "pipeline, success path, sync"
ASYNC = "pipeline, success path, async"
WITH = "pipeline of guards: with / async with next to the decorator"

KINDS = {
    "breaker": "B",
    "retry-breaker": "R+B",
    "fallback-retry-breaker-timeout": "F+R+B+T",
}


def _stages(kind: str) -> list[Any]:
    """
    Fresh stages of the composition *kind*, outermost first.
    """
    breaker = stalwart.CircuitBreaker(name="bench")
    if kind == "breaker":
        return [breaker]
    if kind == "two-breakers":
        return [breaker, stalwart.CircuitBreaker(name="bench-2")]
    if kind == "retry-breaker":
        return [stalwart.Retry(name="bench"), breaker]
    return [
        stalwart.Fallback(value=0, name="bench"),
        stalwart.Retry(name="bench"),
        breaker,
        stalwart.Timeout(seconds=60.0, name="bench"),
    ]


def _stacked(kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    for stage in reversed(_stages(kind)):
        fn = stage(fn)
    return fn


async def _zero(*args: Any) -> int:
    return 0


def _hyx(kind: str) -> Callable[[], dict[str, Any]]:
    """
    hyx's decorators stacked in the same order (async only).
    """

    def make() -> dict[str, Any]:
        from hyx.circuitbreaker import consecutive_breaker
        from hyx.fallback import fallback
        from hyx.retry import retry
        from hyx.timeout import timeout

        g = consecutive_breaker()(af)
        if kind == "fallback-retry-breaker-timeout":
            g = fallback(_zero)(
                retry(attempts=3, backoff=0)(
                    consecutive_breaker()(timeout(60)(af))
                )
            )
        elif kind == "retry-breaker":
            g = retry(attempts=3, backoff=0)(g)
        return {"g": g, "x": 1}

    return make


def _pyresilience(kind: str, fn: Any) -> Callable[[], dict[str, Any]]:
    """
    pyresilience's one decorator configured with the same patterns.
    """

    def make() -> dict[str, Any]:
        import pyresilience

        config: dict[str, Any] = {
            "circuit_breaker": pyresilience.CircuitBreakerConfig()
        }
        if kind != "breaker":
            config["retry"] = pyresilience.RetryConfig(delay=0, jitter=False)
        if kind == "fallback-retry-breaker-timeout":
            config["fallback"] = pyresilience.FallbackConfig(handler=0)
            config["timeout"] = pyresilience.TimeoutConfig(seconds=60)
        return {"g": pyresilience.resilient(**config)(fn), "x": 1}

    return make


def _peer(
    suite: Suite,
    section: str,
    name: str,
    make: Callable[[], dict[str, Any]],
    *,
    is_async: bool,
) -> None:
    try:
        # Built inside the loop: hyx binds to the running loop.
        ns = suite._in_loop(make)
    except Exception as e:  # a missing or changed peer must not kill the run
        suite.skipped.append((name, f"{type(e).__name__}: {e}"))
        return
    stmt = "await g(x)" if is_async else "g(x)"
    suite.add(section, name, stmt, ns, is_async=is_async, kind="peer")


def rows(suite: Suite) -> None:
    """
    Add stalwart's rows and the peers' rows (row names are unique: the
    suite keys its ratios by name).
    """
    for kind, short in KINDS.items():
        for section, fn, face in ((SYNC, f, "sync"), (ASYNC, af, "async")):
            is_async = face == "async"
            call = "await g(x)" if is_async else "g(x)"
            suite.add(
                section,
                f"{short} stacked decorators, {face}",
                call,
                {"g": _stacked(kind, fn), "x": 1},
                is_async=is_async,
            )
            suite.add(
                section,
                f"{short} Pipeline decorator, {face}",
                call,
                {"g": stalwart.Pipeline(*_stages(kind))(fn), "x": 1},
                is_async=is_async,
            )
            suite.add(
                section,
                f"{short} Pipeline {'acall' if is_async else 'call'}",
                "await p.acall(g, x)" if is_async else "p.call(g, x)",
                {"p": stalwart.Pipeline(*_stages(kind)), "g": fn, "x": 1},
                is_async=is_async,
            )
            _peer(
                suite,
                section,
                f"{short} pyresilience resilient(...), {face}",
                _pyresilience(kind, fn),
                is_async=is_async,
            )
        _peer(
            suite,
            ASYNC,
            f"{short} hyx stacked, async",
            _hyx(kind),
            is_async=True,
        )

    for kind in ("breaker", "two-breakers"):
        short = "B" if kind == "breaker" else "B+B"
        suite.add(
            WITH,
            f"{short} Pipeline decorator (guards)",
            "g(x)",
            {"g": stalwart.Pipeline(*_stages(kind))(f), "x": 1},
        )
        suite.add(
            WITH,
            f"{short} with Pipeline",
            "with p:\n    f(x)",
            {"p": stalwart.Pipeline(*_stages(kind)), "f": f, "x": 1},
        )
        suite.add(
            WITH,
            f"{short} Pipeline decorator (guards), async",
            "await g(x)",
            {"g": stalwart.Pipeline(*_stages(kind))(af), "x": 1},
            is_async=True,
        )
        suite.add(
            WITH,
            f"{short} async with Pipeline",
            "async with p:\n    await af(x)",
            {"p": stalwart.Pipeline(*_stages(kind)), "af": af, "x": 1},
            is_async=True,
        )
    suite.add(
        WITH,
        "B with CircuitBreaker (the primitive's own with)",
        "with b:\n    f(x)",
        {"b": stalwart.CircuitBreaker(name="bench"), "f": f, "x": 1},
    )
    suite.add(
        WITH,
        "floor: with a no-op context manager",
        "with b:\n    f(x)",
        {"b": _Noop(), "f": f, "x": 1},
        kind="floor",
    )


class _Noop:
    """A context manager that does nothing: the cost of ``with`` itself."""

    __slots__ = ()

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        pass
