"""
Rate limiters side by side: stalwart, hand-written floors and the peers
(limits, pyrate-limiter, throttled-py, token-bucket, pyresilience,
aiolimiter, hyx).

Two regimes, as ``shared/bench/peers_overhead.py`` measures them:

* *draining*: a limiter under load, ``rate=(10**9, 3600)``: the bucket is
  never full again and every window keeps counting, so each call takes the
  path a limiter exists for (every call is still granted);
* *full* (idle): set far above what the run consumes, so a token bucket is
  full once refilled.

The floors are minimal hand-written token buckets with a
``threading.Lock``: the one of ``shared/bench/peers_overhead.py`` (clock
read inside the lock; DESIGN.md's "locked floor"), the same with the clock
read outside and no call inside the lock, and one doing the work every
stalwart call must do: count the grant and return a
:class:`stalwart.RateLimitDecision` with ``remaining``, ``retry_after``,
``reset_after`` and ``limit``.

The sliding-window log rows use a clock that steps by a fixed amount per
reading, so the window holds a steady number of entries (10 or 100,000)
while one expires and one is added per call.

:func:`thread_scaling` measures two threads against one on one limiter
(calls per second); ``python benchmarks/peers_limiters.py`` prints it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time

from collections.abc import Callable
from typing import Any

from harness import Suite, af, f


BIG = 10**9
DRAIN = (BIG, 3600.0)
"""A limiter under load: the rate of the shared benchmark's draining row."""

SYNC = "rate limiter under load (draining), sync, thread-safe"
KEYED = "rate limiter under load (draining), keyed call"
FULL = "rate limiter idle (full), sync, thread-safe"
ASYNC = "rate limiter, permit granted, async"
LOG = "sliding-window log: cost per hit vs entries in the window"
FACES = (
    "token bucket faces around the same call (budget: `with` <= 1.5x the"
    " decorator)"
)

_monotonic = time.monotonic
_trunc = math.trunc
_decision = tuple.__new__


class FloorTokenBucket:
    """
    Minimal thread-safe token buckets: a few float operations under a
    ``threading.Lock``.
    """

    __slots__ = (
        "_decision",
        "_lock",
        "capacity",
        "granted",
        "last",
        "rate",
        "tokens",
    )

    def __init__(self, rate: float, capacity: float) -> None:
        import stalwart

        self._decision = stalwart.RateLimitDecision
        self.rate = float(rate)
        self.capacity = float(capacity)
        self.tokens = float(capacity)
        self.last = _monotonic()
        self.granted = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """
        The clock read inside the lock (``shared/bench``'s locked floor).
        """
        with self._lock:
            now = _monotonic()
            tokens = self.tokens + (now - self.last) * self.rate
            if tokens > self.capacity:  # noqa: PLR1730  # no call under the lock
                tokens = self.capacity
            self.last = now
            if tokens >= 1.0:
                self.tokens = tokens - 1.0
                return True
            self.tokens = tokens
            return False

    def try_acquire_outside(self) -> bool:
        """
        The clock read before the lock, and no call under it.
        """
        now = _monotonic()
        with self._lock:
            elapsed = now - self.last
            if elapsed > 0.0:
                tokens = self.tokens + elapsed * self.rate
                self.tokens = (
                    tokens if tokens < self.capacity else self.capacity  # noqa: FURB136  # no call under the lock
                )
                self.last = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False

    def try_acquire_decision(self) -> Any:
        """
        The work every stalwart call must do: count the grant, and return
        a decision with ``remaining``, ``retry_after``, ``reset_after`` and
        ``limit`` (built after the lock is released).
        """
        now = _monotonic()
        tokens = -1.0
        with self._lock:
            elapsed = now - self.last
            if elapsed > 0.0:
                left = self.tokens + elapsed * self.rate
                self.tokens = left if left < self.capacity else self.capacity  # noqa: FURB136  # no call under the lock
                self.last = now
            if self.tokens >= 1.0:
                self.tokens = tokens = self.tokens - 1.0
                self.granted += 1
        if tokens >= 0.0:
            return _decision(
                self._decision,
                (
                    True,
                    _trunc(tokens),
                    0.0,
                    (self.capacity - tokens) / self.rate,
                    BIG,
                ),
            )
        return None

    async def __aenter__(self) -> None:
        if not self.try_acquire_outside():
            raise RuntimeError("would wait")

    async def __aexit__(self, *exc: object) -> None:
        return None


def draining_floor() -> FloorTokenBucket:
    """
    A floor in the draining regime.
    """
    return FloorTokenBucket(BIG / 3600.0, BIG)


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


def algorithms() -> list[tuple[str, Any, dict[str, Any]]]:
    """
    Every algorithm, with the keyword arguments of its draining regime.
    """
    import stalwart

    return [
        ("TokenBucket", stalwart.TokenBucket, {"rate": DRAIN}),
        ("GCRA", stalwart.GCRA, {"rate": DRAIN}),
        ("LeakyBucket", stalwart.LeakyBucket, {"rate": DRAIN}),
        ("FixedWindow", stalwart.FixedWindow, {"rate": DRAIN}),
        (
            "SlidingWindowCounter",
            stalwart.SlidingWindowCounter,
            {"rate": DRAIN},
        ),
        ("SlidingWindowLog", stalwart.SlidingWindowLog, {"rate": DRAIN}),
    ]


def ours(suite: Suite) -> None:
    """Add stalwart's rows and the floors."""
    import stalwart

    system = stalwart.SystemClock()
    for name, how in (
        ("floor: token bucket, Lock (clock inside)", "try_acquire"),
        ("floor: token bucket, Lock, no call inside", "try_acquire_outside"),
        (
            "floor: token bucket, Lock, counted, RateLimitDecision",
            "try_acquire_decision",
        ),
    ):
        floor = draining_floor()
        suite.add(
            SYNC, name, "acq()", {"acq": getattr(floor, how)}, kind="floor"
        )
    for label, cls, kwargs in algorithms():
        lim: Any = cls(**kwargs, clock=system)
        suite.add(
            SYNC,
            f"stalwart {label}.try_acquire()",
            "acq()",
            {"acq": lim.try_acquire},
        )
        keyed: Any = cls(**kwargs, clock=system)
        suite.add(
            KEYED,
            f"stalwart {label}.try_acquire(key='k')",
            "acq(key='k')",
            {"acq": keyed.try_acquire},
        )
    tbd = stalwart.TokenBucket(rate=DRAIN)
    suite.add(
        SYNC,
        "stalwart TokenBucket.try_acquire(), default clock",
        "acq()",
        {"acq": tbd.try_acquire},
    )
    tba = stalwart.TokenBucket(rate=DRAIN, clock=system)
    suite.add(
        SYNC, "stalwart TokenBucket.acquire()", "acq()", {"acq": tba.acquire}
    )
    log = stepping_log(1000)
    suite.add(
        SYNC,
        "stalwart SlidingWindowLog.try_acquire(), steady 1,000 entries",
        "acq()",
        {"acq": log.try_acquire},
    )

    full_floor = FloorTokenBucket(BIG, BIG)
    suite.add(
        FULL,
        "floor: token bucket, Lock (clock inside) [full]",
        "acq()",
        {"acq": full_floor.try_acquire},
        kind="floor",
    )
    tb = stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=system)
    suite.add(
        FULL,
        "stalwart TokenBucket.try_acquire() [full]",
        "acq()",
        {"acq": tb.try_acquire},
    )

    atb = stalwart.TokenBucket(rate=DRAIN, clock=system)
    suite.add(
        ASYNC,
        "stalwart await TokenBucket.aacquire() [draining]",
        "await acq()",
        {"acq": atb.aacquire},
        is_async=True,
    )
    suite.add(
        ASYNC,
        "stalwart async with TokenBucket [draining]",
        "async with lim:\n    pass",
        {"lim": atb},
        is_async=True,
    )
    suite.add(
        ASYNC,
        "floor: async with token bucket",
        "async with lim:\n    pass",
        {"lim": draining_floor()},
        is_async=True,
        kind="floor",
    )

    faces(suite)

    for entries in (10, 100_000):
        log = stepping_log(entries)
        suite.add(
            LOG,
            f"stalwart SlidingWindowLog ({entries:,} entries)",
            "acq()",
            {"acq": log.try_acquire},
        )


def face_limiters() -> list[tuple[str, Any]]:
    """The token buckets the faces are measured on: idle and draining."""
    import stalwart

    system = stalwart.SystemClock()
    return [
        (
            "idle",
            stalwart.TokenBucket(rate=BIG, capacity=BIG, clock=system),
        ),
        ("draining", stalwart.TokenBucket(rate=DRAIN, clock=system)),
    ]


def faces(suite: Suite) -> None:
    """Add the token bucket's decorator and `with` rows, sync and async."""
    for regime, lim in face_limiters():
        suite.add(
            FACES,
            f"stalwart @TokenBucket def [{regime}]",
            "g(x)",
            {"g": lim(f), "x": 1},
        )
        suite.add(
            FACES,
            f"stalwart with TokenBucket: f(x) [{regime}]",
            "with g:\n    f(x)",
            {"g": lim, "f": f, "x": 1},
        )
        suite.add(
            FACES,
            f"stalwart @TokenBucket async def [{regime}]",
            "await g(x)",
            {"g": lim(af), "x": 1},
            is_async=True,
        )
        suite.add(
            FACES,
            f"stalwart async with TokenBucket: await f(x) [{regime}]",
            "async with g:\n    await f(x)",
            {"g": lim, "f": af, "x": 1},
            is_async=True,
        )


def peers(suite: Suite) -> None:  # noqa: C901, PLR0915  # one guarded block per peer
    """Add the peers' rows (draining where they can); a missing peer is
    skipped."""
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
                f"limits {label} .hit() (keyed)",
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
                StateBucket([Rate(BIG, Duration.HOUR)], algorithm=alg())
            )
            suite.add(
                SYNC,
                f"pyrate-limiter StateBucket({label}) (keyed)",
                "acq('k')",
                {"acq": lim.try_acquire},
                kind="peer",
            )
    except ImportError as e:
        suite.skipped.append(("pyrate-limiter", repr(e)))
    try:
        from throttled import (
            MemoryStore,
            RateLimiterType,
            Throttled,
            per_hour,
        )

        for kind in (
            "token_bucket",
            "gcra",
            "leaking_bucket",
            "fixed_window",
            "sliding_window",
        ):
            th = Throttled(
                key="k",
                using=RateLimiterType(kind).value,
                quota=per_hour(BIG, burst=BIG),
                store=MemoryStore(),
            )
            suite.add(
                SYNC,
                f"throttled-py {kind} .limit() (keyed)",
                "lim('k')",
                {"lim": th.limit},
                kind="peer",
            )
    except ImportError as e:
        suite.skipped.append(("throttled-py", repr(e)))
    try:
        import token_bucket

        tbl = token_bucket.Limiter(
            rate=BIG / 3600.0,
            capacity=BIG,
            storage=token_bucket.MemoryStorage(),
        )
        suite.add(
            SYNC,
            "token-bucket Limiter.consume (keyed, no lock)",
            "consume('k')",
            {"consume": tbl.consume},
            kind="peer",
        )
    except ImportError as e:
        suite.skipped.append(("token-bucket", repr(e)))
    try:
        from pyresilience import RateLimiter, RateLimiterConfig

        rl = RateLimiter(RateLimiterConfig(max_calls=BIG, period=3600.0))
        suite.add(
            SYNC,
            "pyresilience RateLimiter.acquire()",
            "acq()",
            {"acq": rl.acquire},
            kind="peer",
        )
    except ImportError as e:
        suite.skipped.append(("pyresilience", repr(e)))
    try:
        from aiolimiter import AsyncLimiter

        async def make() -> Any:
            return AsyncLimiter(BIG, 3600)

        alim = suite.loop.run_until_complete(make())
        suite.add(
            ASYNC,
            "aiolimiter async with [draining]",
            "async with lim:\n    pass",
            {"lim": alim},
            is_async=True,
            kind="peer",
        )
    except ImportError as e:
        suite.skipped.append(("aiolimiter", repr(e)))
    try:
        from hyx.ratelimit import tokenbucket

        async def make_hyx() -> Any:
            return tokenbucket(
                max_executions=BIG, per_time_secs=3600, bucket_size=BIG
            )

        hyx = suite.loop.run_until_complete(make_hyx())
        suite.add(
            ASYNC,
            "hyx tokenbucket, async with",
            "async with lim:\n    pass",
            {"lim": hyx},
            is_async=True,
            kind="peer",
        )
    except ImportError as e:
        suite.skipped.append(("hyx", repr(e)))
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


class _Grouped:
    """
    Collects rows, then adds them to a suite section by section (the
    report starts a table wherever the section changes).
    """

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.loop = suite.loop
        self.skipped = suite.skipped
        self.rows: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def add(self, *args: Any, **kwargs: Any) -> None:
        """Remember a row."""
        self.rows.append((args, kwargs))

    def flush(self) -> None:
        """Add the rows, grouped by section in the order of SECTIONS."""
        for section in SECTIONS:
            for args, kwargs in self.rows:
                if args[0] == section:
                    self.suite.add(*args, **kwargs)


SECTIONS = (SYNC, KEYED, FULL, ASYNC, LOG, FACES)


def rows(suite: Suite) -> None:
    """Add every row of this area."""
    grouped = _Grouped(suite)
    ours(grouped)  # type: ignore[arg-type]  # a Suite's add()
    peers(grouped)  # type: ignore[arg-type]  # a Suite's add()
    grouped.flush()


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


def _keyed(op: Callable[..., object]) -> Callable[[], object]:
    return lambda: op(key="k")


def thread_scaling(seconds: float = 1.0, reps: int = 3) -> dict[str, float]:
    """
    Throughput of two threads on one limiter over that of one thread
    (median of *reps*), for every algorithm draining, a keyed call, and
    the floors.
    """
    import stalwart

    system = stalwart.SystemClock()
    makers: list[tuple[str, Callable[[], Callable[[], object]]]] = [
        (
            "floor: token bucket, Lock (clock inside)",
            lambda: draining_floor().try_acquire,
        ),
        (
            "floor: token bucket, Lock, no call inside",
            lambda: draining_floor().try_acquire_outside,
        ),
    ]
    for label, cls, kwargs in algorithms():
        makers.append(
            (
                f"stalwart {label}.try_acquire()",
                lambda cls=cls, kwargs=kwargs: (
                    cls(**kwargs, clock=system).try_acquire
                ),
            )
        )
    makers.append(
        (
            "stalwart TokenBucket.try_acquire(key='k')",
            lambda: _keyed(
                stalwart.TokenBucket(rate=DRAIN, clock=system).try_acquire
            ),
        )
    )
    out: dict[str, float] = {}
    for name, make in makers:
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
