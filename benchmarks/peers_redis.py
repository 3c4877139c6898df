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


def measure(call: Callable[[], Any]) -> tuple[float, float, float, float]:
    """
    ``(decisions/s, p50 µs, p99 µs, round trips per decision)``.
    """
    for _ in range(WARMUP):
        call()
    lat = []
    clock = time.perf_counter
    sent = _sent[0]
    start = clock()
    for _ in range(N):
        t = clock()
        call()
        lat.append(clock() - t)
    total = clock() - start
    trips = (_sent[0] - sent) / N
    q = statistics.quantiles(lat, n=100)
    return N / total, q[49] * 1e6, q[98] * 1e6, trips


async def ameasure(
    call: Callable[[], Awaitable[Any]],
) -> tuple[float, float, float, float]:
    for _ in range(WARMUP):
        await call()
    lat = []
    clock = time.perf_counter
    sent = _sent[0]
    start = clock()
    for _ in range(N):
        t = clock()
        await call()
        lat.append(clock() - t)
    total = clock() - start
    trips = (_sent[0] - sent) / N
    q = statistics.quantiles(lat, n=100)
    return N / total, q[49] * 1e6, q[98] * 1e6, trips


def sync_rows(url: str) -> list[tuple[str, str, Any]]:
    import limits
    import limits.storage
    import limits.strategies

    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    from stalwart import (
        FixedWindow,
        SlidingWindowCounter,
        SlidingWindowLog,
        TokenBucket,
    )
    from stalwart.redis import RedisStore

    store = RedisStore(url=url)
    rate = (BIG, 3600.0)
    item = limits.RateLimitItemPerHour(BIG)
    storage = limits.storage.RedisStorage(url)
    fixed = limits.strategies.FixedWindowRateLimiter(storage)
    moving = limits.strategies.MovingWindowRateLimiter(storage)
    counter = limits.strategies.SlidingWindowCounterRateLimiter(storage)
    client = redis.Redis.from_url(url)
    bucket = RedisBucket.init([Rate(BIG, Duration.HOUR)], client, "pyrate")
    pyrate = Limiter(bucket)
    stal_fixed = FixedWindow(rate=rate, store=store, name="fw")
    stal_log = SlidingWindowLog(rate=rate, store=store, name="log")
    stal_counter = SlidingWindowCounter(rate=rate, store=store, name="swc")
    stal_bucket = TokenBucket(rate=rate, store=store, name="tb")
    return [
        ("fixed window", "stalwart", lambda: stal_fixed.try_acquire(key="k")),
        ("fixed window", "limits", lambda: fixed.hit(item, "kf")),
        (
            "sliding counter",
            "stalwart",
            lambda: stal_counter.try_acquire(key="k"),
        ),
        ("sliding counter", "limits", lambda: counter.hit(item, "kc")),
        ("sliding log", "stalwart", lambda: stal_log.try_acquire(key="k")),
        (
            "sliding log",
            "limits (moving window)",
            lambda: moving.hit(item, "km"),
        ),
        (
            "sliding log",
            "pyrate-limiter (RedisBucket)",
            lambda: pyrate.try_acquire("k", blocking=False),
        ),
        ("token bucket", "stalwart", lambda: stal_bucket.try_acquire(key="k")),
    ]


async def async_rows(url: str) -> list[tuple[str, str, Any]]:
    import limits
    import limits.aio.storage
    import limits.aio.strategies

    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    from stalwart import (
        FixedWindow,
        SlidingWindowCounter,
        SlidingWindowLog,
        TokenBucket,
    )
    from stalwart.redis import RedisStore

    store = RedisStore(url=url)
    rate = (BIG, 3600.0)
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
    stal_fixed = FixedWindow(rate=rate, store=store, name="afw")
    stal_log = SlidingWindowLog(rate=rate, store=store, name="alog")
    stal_counter = SlidingWindowCounter(rate=rate, store=store, name="aswc")
    stal_bucket = TokenBucket(rate=rate, store=store, name="atb")
    return [
        ("fixed window", "stalwart", lambda: stal_fixed.aacquire(key="k")),
        ("fixed window", "limits", lambda: fixed.hit(item, "kf")),
        (
            "sliding counter",
            "stalwart",
            lambda: stal_counter.aacquire(key="k"),
        ),
        ("sliding counter", "limits", lambda: counter.hit(item, "kc")),
        ("sliding log", "stalwart", lambda: stal_log.aacquire(key="k")),
        (
            "sliding log",
            "limits (moving window)",
            lambda: moving.hit(item, "km"),
        ),
        (
            "sliding log",
            "pyrate-limiter (RedisBucket)",
            lambda: pyrate.try_acquire_async("k", blocking=False),
        ),
        ("token bucket", "stalwart", lambda: stal_bucket.aacquire(key="k")),
    ]


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
        sync = [
            (algorithm, library, measure(call))
            for algorithm, library, call in sync_rows(server.url)
        ]

        async def run_async() -> list[tuple[str, str, tuple[float, ...]]]:
            rows = await async_rows(server.url)
            return [
                (algorithm, library, await ameasure(call))
                for algorithm, library, call in rows
            ]

        aio = asyncio.run(run_async())
    finally:
        server.close()
    print(table("sync (redis-py, hiredis)", sync))
    print()
    print(table("async (redis.asyncio)", aio))


if __name__ == "__main__":
    main()
