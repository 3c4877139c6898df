"""
Rate limiters side by side: stalwart, a hand-written floor and the peers
(limits, pyrate-limiter, throttled-py, token-bucket, aiolimiter).

Every limiter is set far above what the run can consume, so every call is
granted (the hot path).  The sliding-window log rows use a clock that
steps by a fixed amount per reading, so the window holds a steady number
of entries (10 or 100,000) while one expires and one is added per call.

Also: :func:`thread_scaling` measures two threads against one on one
limiter (calls per second); ``python benchmarks/peers_limiters.py``
prints it.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from collections.abc import Callable
from typing import Any

from harness import Suite


BIG = 10**9
SYNC = "rate limiter, permit granted, sync (thread-safe)"
ASYNC = "rate limiter, permit granted, async"
LOG = "sliding-window log: cost per hit vs entries in the window"

_monotonic = time.monotonic


class FloorTokenBucket:
    """
    A minimal thread-safe token bucket: the clock read before the lock,
    a few float operations under it.
    """

    __slots__ = ("_lock", "capacity", "last", "rate", "tokens")

    def __init__(self, rate: float, capacity: float) -> None:
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.tokens = float(capacity)
        self.last = _monotonic()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take one token if there is one."""
        now = _monotonic()
        with self._lock:
            elapsed = now - self.last
            if elapsed > 0.0:
                tokens = self.tokens + elapsed * self.rate
                self.tokens = min(tokens, self.capacity)
                self.last = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False

    async def __aenter__(self) -> None:
        if not self.try_acquire():
            raise RuntimeError("would wait")

    async def __aexit__(self, *exc: object) -> None:
        return None


class SteppingClock:
    """
    A clock that moves on by *step* seconds at every reading (C-level).
    """

    def __init__(self, step: float) -> None:
        self.now: Callable[[], float] = itertools.count(1.0, step).__next__

    def sleep(self, seconds: float) -> None:
        """Never called on the measured paths."""
        raise AssertionError(seconds)

    async def asleep(self, seconds: float) -> None:
        """Never called on the measured paths."""
        raise AssertionError(seconds)


def stepping_log(entries: int) -> Any:
    """
    A sliding log whose window holds *entries* entries in steady state.
    """
    import stalwart

    step = 1e-6
    # The limit is twice what the window holds: every call is granted.
    log = stalwart.SlidingWindowLog(
        rate=(2 * entries, entries * step), clock=SteppingClock(step)
    )
    for _ in range(2 * entries):
        log.try_acquire()
    return log


def ours(suite: Suite) -> None:
    """Add stalwart's rows."""
    import stalwart

    system = stalwart.SystemClock()
    tb = stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=system)
    suite.add(
        SYNC,
        "stalwart TokenBucket.try_acquire()",
        "acq()",
        {"acq": tb.try_acquire},
    )
    tbd = stalwart.TokenBucket(rate=BIG, capacity=BIG)
    suite.add(
        SYNC,
        "stalwart TokenBucket.try_acquire(), default clock",
        "acq()",
        {"acq": tbd.try_acquire},
    )
    tbk = stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=system)
    suite.add(
        SYNC,
        "stalwart TokenBucket.try_acquire(key='k')",
        "acq(key='k')",
        {"acq": tbk.try_acquire},
    )
    tba = stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=system)
    suite.add(
        SYNC, "stalwart TokenBucket.acquire()", "acq()", {"acq": tba.acquire}
    )
    for cls, kwargs in (
        (stalwart.GCRA, {"rate": BIG, "burst": BIG}),
        (stalwart.LeakyBucket, {"rate": BIG, "capacity": BIG}),
        (stalwart.FixedWindow, {"rate": (BIG, 3600.0)}),
        (stalwart.SlidingWindowCounter, {"rate": (BIG, 3600.0)}),
    ):
        lim: Any = cls(**kwargs, clock=system)
        suite.add(
            SYNC,
            f"stalwart {cls.__name__}.try_acquire()",
            "acq()",
            {"acq": lim.try_acquire},
        )
    log = stepping_log(1000)
    suite.add(
        SYNC,
        "stalwart SlidingWindowLog.try_acquire() (1k entries)",
        "acq()",
        {"acq": log.try_acquire},
    )

    floor = FloorTokenBucket(BIG, BIG)
    suite.add(
        SYNC,
        "floor: token bucket, threading.Lock",
        "acq()",
        {"acq": floor.try_acquire},
        kind="floor",
    )

    atb = stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=system)
    suite.add(
        ASYNC,
        "stalwart await TokenBucket.aacquire()",
        "await acq()",
        {"acq": atb.aacquire},
        is_async=True,
    )
    suite.add(
        ASYNC,
        "stalwart async with TokenBucket",
        "async with lim:\n    pass",
        {"lim": atb},
        is_async=True,
    )
    suite.add(
        ASYNC,
        "stalwart TokenBucket.try_acquire() in a coroutine",
        "acq()",
        {"acq": atb.try_acquire},
        is_async=True,
    )
    suite.add(
        ASYNC,
        "floor: async with token bucket",
        "async with lim:\n    pass",
        {"lim": FloorTokenBucket(BIG, BIG)},
        is_async=True,
        kind="floor",
    )

    for entries in (10, 100_000):
        log = stepping_log(entries)
        suite.add(
            LOG,
            f"stalwart SlidingWindowLog ({entries:,} entries)",
            "acq()",
            {"acq": log.try_acquire},
        )


def peers(suite: Suite) -> None:
    """Add the peers' rows; a peer that is missing is skipped."""
    try:
        from limits import RateLimitItemPerHour
        from limits.storage import MemoryStorage
        from limits.strategies import (
            FixedWindowRateLimiter,
            SlidingWindowCounterRateLimiter,
        )

        item = RateLimitItemPerHour(BIG)
        for cls, label in (
            (FixedWindowRateLimiter, "fixed window"),
            (SlidingWindowCounterRateLimiter, "sliding window counter"),
        ):
            hit = cls(MemoryStorage()).hit
            suite.add(
                SYNC,
                f"limits {label} .hit()",
                "hit(item, 'k')",
                {"hit": hit, "item": item},
                kind="peer",
            )
    except ImportError as e:
        suite.skipped.append(("limits", repr(e)))
    try:
        from pyrate_limiter import (
            GCRA,
            Duration,
            Limiter,
            Rate,
            StateBucket,
            TokenBucket,
        )

        for alg, label in ((TokenBucket, "TokenBucket"), (GCRA, "GCRA")):
            lim = Limiter(
                StateBucket([Rate(BIG, Duration.SECOND)], algorithm=alg())
            )
            suite.add(
                SYNC,
                f"pyrate-limiter StateBucket({label})",
                "acq('k')",
                {"acq": lim.try_acquire},
                kind="peer",
            )
    except ImportError as e:
        suite.skipped.append(("pyrate-limiter", repr(e)))
    try:
        from throttled import MemoryStore, RateLimiterType, Throttled, per_sec

        for kind in ("token_bucket", "gcra", "fixed_window"):
            th = Throttled(
                key="k",
                using=RateLimiterType(kind).value,
                quota=per_sec(BIG, burst=BIG),
                store=MemoryStore(),
            )
            suite.add(
                SYNC,
                f"throttled-py {kind} .limit()",
                "lim('k')",
                {"lim": th.limit},
                kind="peer",
            )
    except ImportError as e:
        suite.skipped.append(("throttled-py", repr(e)))
    try:
        import token_bucket

        tbl = token_bucket.Limiter(
            rate=float(BIG), capacity=BIG, storage=token_bucket.MemoryStorage()
        )
        suite.add(
            SYNC,
            "token-bucket Limiter.consume (no lock)",
            "consume('k')",
            {"consume": tbl.consume},
            kind="peer",
        )
    except ImportError as e:
        suite.skipped.append(("token-bucket", repr(e)))
    try:
        from aiolimiter import AsyncLimiter

        async def make() -> Any:
            return AsyncLimiter(BIG, 1)

        alim = suite.loop.run_until_complete(make())
        suite.add(
            ASYNC,
            "aiolimiter async with",
            "async with lim:\n    pass",
            {"lim": alim},
            is_async=True,
            kind="peer",
        )
    except ImportError as e:
        suite.skipped.append(("aiolimiter", repr(e)))
    try:
        from limits import RateLimitItemPerHour
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        for entries in (10, 100_000):
            storage = MemoryStorage()
            moving = MovingWindowRateLimiter(storage)
            item = RateLimitItemPerHour(BIG)
            moving.hit(item, "k", cost=entries)
            suite.add(
                LOG,
                f"limits moving window ({entries:,}+ entries)",
                "hit(item, 'k')",
                {"hit": moving.hit, "item": item},
                kind="peer",
            )
    except ImportError as e:
        suite.skipped.append(("limits moving window", repr(e)))


def rows(suite: Suite) -> None:
    """Add every row of this area."""
    ours(suite)
    peers(suite)


def _hammer(op: Callable[[], object], threads: int, seconds: float) -> float:
    """
    Calls per second of *threads* threads calling *op* for *seconds*.
    """
    counts = [0] * threads
    stop = threading.Event()
    barrier = threading.Barrier(threads + 1)

    def work(i: int) -> None:
        n = 0
        barrier.wait()
        while not stop.is_set():
            for _ in itertools.repeat(None, 256):
                op()
            n += 256
        counts[i] = n

    workers = [
        threading.Thread(target=work, args=(i,)) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    stop.wait(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - start)


def thread_scaling(seconds: float = 1.0, reps: int = 3) -> dict[str, float]:
    """
    Throughput of two threads on one limiter over that of one thread
    (median of *reps*), for stalwart's token bucket and the floor.
    """
    import stalwart

    out: dict[str, float] = {}
    for name, make in (
        (
            "stalwart TokenBucket.try_acquire",
            lambda: (
                stalwart.TokenBucket(
                    rate=BIG, capacity=BIG, clock=stalwart.SystemClock()
                ).try_acquire
            ),
        ),
        ("floor token bucket", lambda: FloorTokenBucket(BIG, BIG).try_acquire),
    ):
        ratios = []
        for _ in range(reps):
            op = make()
            one = _hammer(op, 1, seconds)
            two = _hammer(op, 2, seconds)
            ratios.append(two / one)
        out[name] = sorted(ratios)[len(ratios) // 2]
    return out


if __name__ == "__main__":
    for row, ratio in thread_scaling().items():
        print(f"{row}: two threads = {ratio:.2f}x one thread")
    asyncio.set_event_loop(None)
