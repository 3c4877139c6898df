"""
The circuit breaker shared through Redis, next to the in-memory breaker,
a plain call and pybreaker's Redis storage, against one local
``redis-server`` started for the run (or ``REDIS_URL``).

Two measures per row:

* per-call cost, as a ratio to a plain call (``plain``, ``await``) sampled
  in the same rounds (``harness.Suite``: medians of same-round ratios);
* commands the server ran per call (``INFO stats``
  ``total_commands_processed``, less the ``INFO`` itself), which are round
  trips: neither stalwart nor pybreaker pipelines them.

The rows on Redis are given as ratios to the floor: ``rt`` (``art``
async) is one round trip and nothing else, ``EVALSHA`` of a script that
returns 1, on a client of the same kind.

Run::

    python benchmarks/redis_breaker.py [--quick] [--md FILE]

pybreaker is optional (``pip install pybreaker``); without it its rows are
left out.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import statistics
import sys
import time

from typing import Any


HERE = pathlib.Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import redis  # noqa: E402
import redis.asyncio  # noqa: E402

import stalwart  # noqa: E402
import stalwart.testing  # noqa: E402

from harness import Boom, Suite, af, boom, f  # noqa: E402
from redis_support import RedisServer  # noqa: E402
from stalwart.redis import RedisStore  # noqa: E402


REFUSED = "try:\n    g(x)\nexcept E:\n    pass"
FAILED = "try:\n    g(x)\nexcept E:\n    pass"


def commands(client: redis.Redis) -> tuple[int, int]:
    """
    Scripts run (EVALSHA, EVAL) and commands run at all, so far, from
    ``INFO commandstats``.
    """
    stats = client.info("commandstats")
    scripts = sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
        for name in ("evalsha", "eval")
    )
    return scripts, sum(int(row["calls"]) for row in stats.values())


def per_call(client: redis.Redis, run: Any, n: int = 200) -> float:
    """
    Round trips per call of *run*: the scripts it ran (the commands a
    script runs are counted by the server too, but cost no round trip),
    or, running none, the commands it ran (less the INFO reading them).
    """
    scripts, total = commands(client)
    for _ in range(n):
        run()
    after_scripts, after_total = commands(client)
    if after_scripts > scripts:
        return (after_scripts - scripts) / n
    return (after_total - total - 1) / n


def breaker(url: str, name: str, **kwargs: Any) -> stalwart.CircuitBreaker:
    return stalwart.CircuitBreaker(
        name=name, store=RedisStore(url=url), **kwargs
    )


def opened(cb: stalwart.CircuitBreaker) -> stalwart.CircuitBreaker:
    with contextlib.suppress(Boom):
        cb.call(boom, 1)
    return cb


def rows(suite: Suite, url: str) -> dict[str, Any]:
    """
    Add the rows; return, by row, a function making one call (for the
    round-trip counts).
    """
    section = "breaker on Redis"
    calls: dict[str, Any] = {}
    client = redis.Redis.from_url(url)
    one = client.register_script("return 1")
    one()
    suite.add(section, "rt", "g()", {"g": one}, kind="base")
    calls["rt"] = one
    aclient = suite._in_loop(lambda: redis.asyncio.Redis.from_url(url))
    aone = aclient.register_script("return 1")
    suite.add(
        section, "art", "await g()", {"g": aone}, is_async=True, kind="base"
    )
    calls["art"] = lambda: suite.loop.run_until_complete(aone())

    memory = stalwart.CircuitBreaker(name="memory")(f)
    suite.add(
        section, "stalwart in memory, closed", "g(x)", {"g": memory, "x": 1}
    )

    def add(
        name: str, stmt: str, g: Any, *, is_async: bool = False, **ns: Any
    ) -> None:
        suite.add(
            section,
            name,
            stmt,
            {"g": g, "x": 1, **ns},
            is_async=is_async,
            baseline="art" if is_async else "rt",
        )
        if is_async:
            loop = suite.loop
            calls[name] = lambda: loop.run_until_complete(
                _swallow(g(1), ns.get("E"))
            )
        elif "E" in ns:
            calls[name] = lambda: _call_swallowing(g, ns["E"])
        else:
            calls[name] = lambda: g(1)

    add("stalwart Redis, closed, success", "g(x)", breaker(url, "s1")(f))
    add(
        "stalwart Redis, closed, failure",
        FAILED,
        breaker(url, "s2", failure_threshold=10**9)(boom),
        E=Boom,
    )
    add(
        "stalwart Redis, open, refused",
        REFUSED,
        opened(breaker(url, "s3", failure_threshold=1, recovery_time=1e9))(f),
        E=stalwart.CircuitOpenError,
    )
    add(
        "stalwart Redis, closed, success, max_staleness=0",
        "g(x)",
        breaker(url, "s4", max_staleness=0)(f),
    )
    add(
        "stalwart Redis, closed, rate over CountWindow(100)",
        "g(x)",
        breaker(url, "s5", failure_rate=0.5, window=stalwart.CountWindow(100))(
            f
        ),
    )
    abreaker = suite._in_loop(lambda: breaker(url, "s6"))
    add(
        "stalwart Redis, closed, success, async",
        "await g(x)",
        abreaker(af),
        is_async=True,
    )
    try:
        import pybreaker
    except ImportError:
        return calls
    pclient = redis.Redis.from_url(url)

    def pb(name: str, **kwargs: Any) -> Any:
        return pybreaker.CircuitBreaker(
            state_storage=pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED, pclient, namespace=name
            ),
            **kwargs,
        )

    add("pybreaker Redis, closed, success", "g(x)", pb("p1")(f))
    add(
        "pybreaker Redis, closed, failure",
        FAILED,
        pb("p2", fail_max=10**9)(boom),
        E=Boom,
    )
    refusing = pb("p3", fail_max=1, reset_timeout=1e9)
    with contextlib.suppress(Exception):
        refusing.call(boom, 1)
    add(
        "pybreaker Redis, open, refused",
        REFUSED,
        refusing(f),
        E=pybreaker.CircuitBreakerError,
    )
    return calls


def _call_swallowing(g: Any, error: type[BaseException]) -> None:
    with contextlib.suppress(error):
        g(1)


async def _swallow(awaitable: Any, error: Any) -> None:
    if error is None:
        await awaitable
        return
    with contextlib.suppress(error):
        await awaitable


def latencies(url: str, n: int = 5000) -> tuple[float, float]:
    """p50 and p99, in microseconds, of a closed shared breaker's call."""
    g = breaker(url, "latency")(f)
    took = []
    clock = time.perf_counter_ns
    for _ in range(n):
        start = clock()
        g(1)
        took.append(clock() - start)
    took.sort()
    return took[n // 2] / 1e3, took[n * 99 // 100] / 1e3


def trial_round_trips(url: str) -> float:
    """Round trips of one half-open trial (admission and outcome)."""
    client = redis.Redis.from_url(url)
    clock = stalwart.testing.FakeClock()
    cb = stalwart.CircuitBreaker(
        name="trial",
        failure_threshold=1,
        recovery_time=1,
        clock=clock,
        store=RedisStore(url=url),
    )
    total = 0
    for _ in range(50):
        opened(cb)
        clock.advance(1)
        total += per_call(client, lambda: cb.call(f, 1), 1)
    return total / 50


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="5 rounds of 5 ms"
    )
    parser.add_argument("--md", help="also write the report to this file")
    args = parser.parse_args(argv)
    server = None
    url = os.environ.get("REDIS_URL")
    if url is None:
        server = RedisServer()
        server.start()
        url = server.url
    try:
        suite = Suite()
        calls = rows(suite, url)
        suite.run(*((5, 5.0) if args.quick else (15, 20.0)))
        client = redis.Redis.from_url(url)
        trips = {name: per_call(client, run) for name, run in calls.items()}
        p50, p99 = latencies(url)
        trial = trial_round_trips(url)
    finally:
        if server is not None:
            server.close()
    ratios = suite.ratios()
    lines = [
        "| row | ns/call | ratio | vs | round trips/call |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for row in suite.rows:
        if row.kind == "base" and row.name not in {"rt", "art"}:
            continue
        lines.append(
            f"| {row.name} | {statistics.median(row.samples):,.0f} | "
            f"{ratios[row.name]:.1f}x | {row.baseline} | "
            f"{trips.get(row.name, 0.0):.2f} |"
        )
    lines += [
        "",
        f"closed shared call, sync, latency: p50 {p50:.1f} us, p99 {p99:.1f} us",
        f"half-open trial (admission + outcome): {trial:.2f} round trips",
    ]
    lines += [f"skipped {name}: {why}" for name, why in suite.skipped]
    report = "\n".join(lines)
    print(report)
    if args.md:
        pathlib.Path(args.md).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
