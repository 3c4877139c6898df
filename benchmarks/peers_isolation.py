"""
Isolation rows for ``compare_peers.py``: bulkhead acquire/release against
``threading.BoundedSemaphore`` (``bsem``) and ``asyncio.Semaphore``
(``asem``) from the same rounds, the bulkhead, fallback and timeout
decorators on their success path against a plain call/await (the
thread pool's too, whose hand-off to a worker thread dominates), and each
``with`` / ``async with`` face around the same call (to set against its
decorator row).  The weighted and adaptive bulkheads have rows next to
the bulkhead's, with a hand-written floor for the adaptive one (the work
its path must do: time the call, count under a lock, grow the limit).
Peers: pyresilience (sync and async) and hyx (async only).
"""

from __future__ import annotations

import asyncio
import threading
import time

from collections.abc import Callable
from typing import Any

from harness import Suite, af, f
from stalwart import (
    AdaptiveBulkhead,
    AIMDLimit,
    Bulkhead,
    Fallback,
    GradientLimit,
    ThreadPoolBulkhead,
    Timeout,
    WeightedBulkhead,
)


SYNC = "bulkhead acquire/release, sync (vs BoundedSemaphore)"
ASYNC = "bulkhead acquire/release, async (vs asyncio.Semaphore)"
DECO = "isolation decorators, success path"
WITH = (
    "isolation with faces around the same call (budget: <= 1.5x the decorator)"
)


async def _zero(*args: Any) -> int:
    return 0


def _peer(
    suite: Suite,
    section: str,
    name: str,
    make: Callable[[], Any],
    stmt: str,
    *,
    is_async: bool,
    baseline: str | None = None,
) -> None:
    """
    Add a peer row; a peer whose import or API fails is skipped.
    """
    try:
        # Built inside the loop: hyx binds to the running loop.
        ns = suite._in_loop(make)
    except Exception as e:  # a missing or changed peer must not kill the run
        suite.skipped.append((name, f"{type(e).__name__}: {e}"))
        return
    suite.add(
        section,
        name,
        stmt,
        ns,
        is_async=is_async,
        baseline=baseline,
        kind="peer",
    )


def _pr_bulkhead() -> dict[str, Any]:
    from pyresilience import BulkheadConfig
    from pyresilience._bulkhead import Bulkhead as PrBulkhead

    b = PrBulkhead(BulkheadConfig(max_concurrent=10))
    return {"a": b.acquire, "r": b.release}


def _pr(fn: Any, **config: Any) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        import pyresilience

        kwargs = {}
        for key, value in config.items():
            cls = {
                "bulkhead": pyresilience.BulkheadConfig,
                "fallback": pyresilience.FallbackConfig,
                "timeout": pyresilience.TimeoutConfig,
            }[key]
            kwargs[key] = cls(**value)
        return {"g": pyresilience.resilient(**kwargs)(fn), "x": 1}

    return make


def _hyx_bulkhead() -> dict[str, Any]:
    from hyx.bulkhead import bulkhead

    return {"b": bulkhead(max_concurrency=10, max_capacity=20)}


def _hyx(kind: str) -> Callable[[], dict[str, Any]]:
    def make() -> dict[str, Any]:
        if kind == "bulkhead":
            from hyx.bulkhead import bulkhead

            g = bulkhead(max_concurrency=10, max_capacity=20)(af)
        elif kind == "fallback":
            from hyx.fallback import fallback

            g = fallback(_zero)(af)
        else:
            from hyx.timeout import timeout

            g = timeout(60)(af)
        return {"g": g, "x": 1}

    return make


def _floor_adaptive(fn: Callable[[int], int]) -> Callable[[int], int]:
    """
    A minimal hand-written adaptive limit around *fn*: read the clock at
    the start and the end, admit and count under a lock while below the
    limit, and grow the limit by one (AIMD's success rule) as it ends.
    """
    lock = threading.Lock()
    state = [0, 10]  # in flight, limit
    now = time.monotonic

    def limited(x: int) -> int:
        start = now()
        with lock:
            if state[0] >= state[1]:
                raise RuntimeError
            state[0] = in_flight = state[0] + 1
        try:
            return fn(x)
        finally:
            rtt = now() - start
            with lock:
                state[0] -= 1
                if rtt >= 0 and in_flight * 2 >= state[1] < 200:
                    state[1] += 1

    return limited


def _adaptive() -> AdaptiveBulkhead:
    # A limit that cannot move, as the floor's: the path, not the algorithm.
    return AdaptiveBulkhead(
        min_limit=10,
        max_limit=10,
        algorithm=AIMDLimit(),
    )


def _weighted() -> WeightedBulkhead:
    return WeightedBulkhead(max_weight=10, cost_func=lambda x: 1)


def rows(suite: Suite) -> None:
    """
    Add stalwart's rows, a hand-written floor and the peers' rows.
    """
    b = Bulkhead(max_concurrent=10)
    with_b = "with b:\n    pass"
    suite.add(
        SYNC, "stalwart with bulkhead", with_b, {"b": b}, baseline="bsem"
    )
    steps = {"t": b.try_acquire, "r": b.release}
    suite.add(
        SYNC,
        "stalwart try_acquire/release",
        "t()\nr()",
        steps,
        baseline="bsem",
    )
    suite.add(
        SYNC,
        "stalwart with weighted hold (cost 1)",
        with_b,
        {"b": WeightedBulkhead(max_weight=10).hold(1)},
        baseline="bsem",
    )
    suite.add(
        SYNC,
        "stalwart with adaptive bulkhead",
        with_b,
        {"b": _adaptive()},
        baseline="bsem",
    )
    weighted = WeightedBulkhead(max_weight=10)
    suite.add(
        SYNC,
        "stalwart weighted try_acquire(1)/release",
        "t(1)\nr()",
        {"t": weighted.try_acquire, "r": weighted.release},
        baseline="bsem",
    )
    adaptive = _adaptive()
    suite.add(
        SYNC,
        "stalwart adaptive try_acquire/release",
        "t()\nr()",
        {"t": adaptive.try_acquire, "r": adaptive.release},
        baseline="bsem",
    )
    _peer(
        suite,
        SYNC,
        "pyresilience Bulkhead acquire/release",
        _pr_bulkhead,
        "a()\nr()",
        is_async=False,
        baseline="bsem",
    )

    async_with = "async with b:\n    pass"
    suite.add(
        ASYNC,
        "stalwart async with bulkhead",
        async_with,
        {"b": b},
        is_async=True,
        baseline="asem",
    )
    for name, guard in [
        ("stalwart async with weighted hold (cost 1)", weighted.hold(1)),
        ("stalwart async with adaptive bulkhead", _adaptive()),
    ]:
        suite.add(
            ASYNC,
            name,
            async_with,
            {"b": guard},
            is_async=True,
            baseline="asem",
        )
    _peer(
        suite,
        ASYNC,
        "hyx bulkhead async with",
        _hyx_bulkhead,
        async_with,
        is_async=True,
        baseline="asem",
    )

    call, acall = "g(x)", "await g(x)"
    ours: list[tuple[str, Any, bool]] = [
        ("stalwart bulkhead", Bulkhead(max_concurrent=10)(f), False),
        ("stalwart bulkhead async", Bulkhead(max_concurrent=10)(af), True),
        ("stalwart weighted bulkhead (cost_func)", _weighted()(f), False),
        ("stalwart weighted bulkhead async", _weighted()(af), True),
        ("stalwart adaptive bulkhead (AIMD)", _adaptive()(f), False),
        ("stalwart adaptive bulkhead async", _adaptive()(af), True),
        (
            "stalwart adaptive bulkhead (Gradient)",
            AdaptiveBulkhead(
                min_limit=10,
                max_limit=10,
                algorithm=GradientLimit(probe_interval=None),
            )(f),
            False,
        ),
        ("stalwart fallback", Fallback(value=0)(f), False),
        ("stalwart fallback async", Fallback(value=0)(af), True),
        ("stalwart timeout (worker thread)", Timeout(seconds=60)(f), False),
        ("stalwart timeout async", Timeout(seconds=60)(af), True),
        # Never shut down: concurrent.futures stops its idle worker
        # when the interpreter exits.
        (
            "stalwart thread pool (worker thread)",
            ThreadPoolBulkhead(max_workers=1)(f),
            False,
        ),
    ]
    for name, g, is_async in ours:
        stmt = acall if is_async else call
        suite.add(DECO, name, stmt, {"g": g, "x": 1}, is_async=is_async)
    suite.add(
        DECO,
        "floor: adaptive limit (two clock reads, lock, AIMD growth)",
        "g(x)",
        {"g": _floor_adaptive(f), "x": 1},
        kind="floor",
    )
    suite.add(
        DECO,
        "floor: async with asyncio.timeout",
        "async with t(60):\n    await af(x)",
        {"t": asyncio.timeout, "af": af, "x": 1},
        is_async=True,
        kind="floor",
    )
    peers: list[tuple[str, Callable[[], dict[str, Any]], bool]] = [
        (
            "pyresilience bulkhead",
            _pr(f, bulkhead={"max_concurrent": 10}),
            False,
        ),
        (
            "pyresilience bulkhead async",
            _pr(af, bulkhead={"max_concurrent": 10}),
            True,
        ),
        ("pyresilience fallback", _pr(f, fallback={"handler": 0}), False),
        (
            "pyresilience fallback async",
            _pr(af, fallback={"handler": 0}),
            True,
        ),
        (
            "pyresilience timeout (worker thread)",
            _pr(f, timeout={"seconds": 60}),
            False,
        ),
        ("pyresilience timeout async", _pr(af, timeout={"seconds": 60}), True),
        ("hyx bulkhead async", _hyx("bulkhead"), True),
        ("hyx fallback async", _hyx("fallback"), True),
        ("hyx timeout async", _hyx("timeout"), True),
    ]
    for name, make, is_async in peers:
        _peer(
            suite,
            DECO,
            name,
            make,
            acall if is_async else call,
            is_async=is_async,
        )
    with_faces: list[tuple[str, str, Any, bool]] = [
        ("stalwart with bulkhead: f(x)", "with g:\n    f(x)", b, False),
        (
            "stalwart async with bulkhead: await f(x)",
            "async with g:\n    await f(x)",
            b,
            True,
        ),
        (
            "stalwart with adaptive bulkhead: f(x)",
            "with g:\n    f(x)",
            _adaptive(),
            False,
        ),
        (
            "stalwart async with adaptive bulkhead: await f(x)",
            "async with g:\n    await f(x)",
            _adaptive(),
            True,
        ),
        (
            "stalwart with weighted hold: f(x)",
            "with g:\n    f(x)",
            WeightedBulkhead(max_weight=10).hold(1),
            False,
        ),
        (
            "stalwart async with timeout: await f(x)",
            "async with g:\n    await f(x)",
            Timeout(seconds=60),
            True,
        ),
        (
            "stalwart with timeout (SIGALRM): f(x)",
            "with g:\n    f(x)",
            Timeout(seconds=60),
            False,
        ),
    ]
    for name, stmt, guard, is_async in with_faces:
        ns = {"g": guard, "f": af if is_async else f, "x": 1}
        suite.add(WITH, name, stmt, ns, is_async=is_async)
