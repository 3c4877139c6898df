"""
Rate limiters on one Redis server: stalwart's Redis store next to
``limits`` (its Redis storage: fixed window, moving window, sliding
window counter) and ``pyrate-limiter`` (its Redis bucket), sync and
async, same server, same run.

Run: ``python benchmarks/peers_redis.py`` (it starts its own
``redis-server`` on a free loopback port, as the tests do).  For each
contender it reports decisions per second (one caller, one after the
other), the p50 and p99 latency of a decision, and the round trips per
decision, counted on the client: every request a redis-py connection
sends (``send_packed_command``; a pipeline is one) is one round trip.

Every limit is set far above what the run consumes (``10**9`` per hour),
so every decision grants and updates the state: the path a limiter
takes for a request it lets through.  The sliding-window log and the
moving window keep every grant of the hour, so their state grows during
the run (as it would under such a load).
"""

from __future__ import annotations

import asyncio
import functools
import pathlib
import statistics
import sys
import time

from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio

from redis.asyncio.connection import Connection as AsyncConnection
from redis.connection import Connection


sys.path.insert(0, str(pathlib.Path(__file__).parent.parent / "tests"))

from redis_support import started_server  # noqa: E402


BIG = 10**9
N = 4000
WARMUP = 200
# The contenders take turns, N // ROUNDS decisions each per round, so
# that a machine whose speed drifts during the run (shared cores) slows
# them alike.
ROUNDS = 10

_sent = [0]


def _counting(cls: Any) -> None:
    send = cls.send_packed_command

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sent[0] += 1
        return send(self, *args, **kwargs)

    async def acounted(self: Any, *args: Any, **kwargs: Any) -> Any:
        _sent[0] += 1
        return await send(self, *args, **kwargs)

    cls.send_packed_command = (
        acounted if asyncio.iscoroutinefunction(send) else counted
    )


_counting(Connection)
_counting(AsyncConnection)


Result = tuple[float, float, float, float]


def _summary(lat: list[float], total: float, sent: int) -> Result:
    """
    ``(decisions/s, p50 µs, p99 µs, round trips per decision)``.
    """
    q = statistics.quantiles(lat, n=100)
    return len(lat) / total, q[49] * 1e6, q[98] * 1e6, sent / len(lat)


def measure(calls: list[Callable[[], Any]]) -> list[Result]:
    """
    Each of *calls* measured, in turns.
    """
    clock = time.perf_counter
    lat: list[list[float]] = [[] for _ in calls]
    total = [0.0] * len(calls)
    sent = [0] * len(calls)
    for call in calls:
        for _ in range(WARMUP):
            call()
    for _ in range(ROUNDS):
        for i, call in enumerate(calls):
            before = _sent[0]
            start = clock()
            for _ in range(N // ROUNDS):
                t = clock()
                call()
                lat[i].append(clock() - t)
            total[i] += clock() - start
            sent[i] += _sent[0] - before
    return [_summary(*row) for row in zip(lat, total, sent, strict=True)]


async def ameasure(calls: list[Callable[[], Awaitable[Any]]]) -> list[Result]:
    """
    :func:`measure` for coroutine functions.
    """
    clock = time.perf_counter
    lat: list[list[float]] = [[] for _ in calls]
    total = [0.0] * len(calls)
    sent = [0] * len(calls)
    for call in calls:
        for _ in range(WARMUP):
            await call()
    for _ in range(ROUNDS):
        for i, call in enumerate(calls):
            before = _sent[0]
            start = clock()
            for _ in range(N // ROUNDS):
                t = clock()
                await call()
                lat[i].append(clock() - t)
            total[i] += clock() - start
            sent[i] += _sent[0] - before
    return [_summary(*row) for row in zip(lat, total, sent, strict=True)]


def _stalwart(url: str, prefix: str) -> dict[str, Any]:
    """
    stalwart's limiters by algorithm, on one store.
    """
    from stalwart import (
        FixedWindow,
        SlidingWindowCounter,
        SlidingWindowLog,
        TokenBucket,
    )
    from stalwart.redis import RedisStore

    store = RedisStore(url=url)
    rate = (BIG, 3600.0)
    return {
        "fixed window": FixedWindow(
            rate=rate, store=store, name=prefix + "fw"
        ),
        "sliding counter": SlidingWindowCounter(
            rate=rate, store=store, name=prefix + "swc"
        ),
        "sliding log": SlidingWindowLog(
            rate=rate, store=store, name=prefix + "log"
        ),
        "token bucket": TokenBucket(
            rate=rate, store=store, name=prefix + "tb"
        ),
    }


def _rows(  # noqa: PLR0913, PLR0917  # one per contender
    ping: Callable[[], Any],
    ours: dict[str, Callable[[], Any]],
    fixed: Callable[[], Any],
    counter: Callable[[], Any],
    moving: Callable[[], Any],
    pyrate: Callable[[], Any],
) -> list[tuple[str, str, Any]]:
    return [
        ("(a round trip)", "redis-py PING", ping),
        ("fixed window", "stalwart", ours["fixed window"]),
        ("fixed window", "limits", fixed),
        ("sliding counter", "stalwart", ours["sliding counter"]),
        ("sliding counter", "limits", counter),
        ("sliding log", "stalwart", ours["sliding log"]),
        ("sliding log", "limits (moving window)", moving),
        ("sliding log", "pyrate-limiter (RedisBucket)", pyrate),
        ("token bucket", "stalwart", ours["token bucket"]),
    ]


def sync_rows(url: str) -> list[tuple[str, str, Any]]:
    import limits
    import limits.storage
    import limits.strategies

    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    item = limits.RateLimitItemPerHour(BIG)
    storage = limits.storage.RedisStorage(url)
    fixed = limits.strategies.FixedWindowRateLimiter(storage)
    moving = limits.strategies.MovingWindowRateLimiter(storage)
    counter = limits.strategies.SlidingWindowCounterRateLimiter(storage)
    client = redis.Redis.from_url(url)
    bucket = RedisBucket.init([Rate(BIG, Duration.HOUR)], client, "pyrate")
    pyrate = Limiter(bucket)
    ours = {
        algorithm: functools.partial(limiter.try_acquire, key="k")
        for algorithm, limiter in _stalwart(url, "").items()
    }
    return _rows(
        client.ping,
        ours,
        lambda: fixed.hit(item, "kf"),
        lambda: counter.hit(item, "kc"),
        lambda: moving.hit(item, "km"),
        lambda: pyrate.try_acquire("k", blocking=False),
    )


async def async_rows(url: str) -> list[tuple[str, str, Any]]:
    import limits
    import limits.aio.storage
    import limits.aio.strategies

    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    item = limits.RateLimitItemPerHour(BIG)
    storage = limits.aio.storage.RedisStorage(
        "async+" + url, implementation="redispy"
    )
    fixed = limits.aio.strategies.FixedWindowRateLimiter(storage)
    moving = limits.aio.strategies.MovingWindowRateLimiter(storage)
    counter = limits.aio.strategies.SlidingWindowCounterRateLimiter(storage)
    aclient = redis.asyncio.Redis.from_url(url)
    bucket = await RedisBucket.init(
        [Rate(BIG, Duration.HOUR)], aclient, "apyrate"
    )
    pyrate = Limiter(bucket)
    ours = {
        algorithm: functools.partial(limiter.atry_acquire, key="k")
        for algorithm, limiter in _stalwart(url, "a").items()
    }
    return _rows(
        aclient.ping,
        ours,
        lambda: fixed.hit(item, "akf"),
        lambda: counter.hit(item, "akc"),
        lambda: moving.hit(item, "akm"),
        lambda: pyrate.try_acquire_async("k", blocking=False),
    )


def table(title: str, rows: list[tuple[str, str, tuple[float, ...]]]) -> str:
    out = [
        f"### {title}",
        "",
        "| algorithm | library | decisions/s | p50 µs | p99 µs | round trips / decision |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for algorithm, library, (rate, p50, p99, trips) in rows:
        out.append(
            f"| {algorithm} | {library} | {rate:,.0f} | {p50:.0f} | {p99:.0f}"
            f" | {trips:.2f} |"
        )
    return "\n".join(out)


def main() -> None:
    server = started_server()
    try:
        rows = sync_rows(server.url)
        sync = [
            (algorithm, library, result)
            for (algorithm, library, _), result in zip(
                rows, measure([call for _, _, call in rows]), strict=True
            )
        ]

        async def run_async() -> list[tuple[str, str, tuple[float, ...]]]:
            rows = await async_rows(server.url)
            results = await ameasure([call for _, _, call in rows])
            return [
                (algorithm, library, result)
                for (algorithm, library, _), result in zip(
                    rows, results, strict=True
                )
            ]

        aio = asyncio.run(run_async())
    finally:
        server.close()
    print(table("sync (redis-py, hiredis)", sync))
    print()
    print(table("async (redis.asyncio)", aio))


if __name__ == "__main__":
    main()
