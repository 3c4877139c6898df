"""
A worker process of the fleet tests: threads that hammer one limit on a
real server and record, for every request granted, the server's time of
the decision (the store uses the server's ``TIME``, so every process's
decisions are on one timeline, in the order the server made them).
"""

from __future__ import annotations

import threading
import time

from typing import Any

from stalwart import (
    GCRA,
    FixedWindow,
    LeakyBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from stalwart.redis import RedisStore


KINDS: dict[str, Any] = {
    "token_bucket": lambda rate, **kw: TokenBucket(rate=rate, **kw),
    "gcra": lambda rate, **kw: GCRA(rate=rate, **kw),
    "leaky_meter": lambda rate, **kw: LeakyBucket(rate=rate, **kw),
    "leaky_shaper": lambda rate, **kw: LeakyBucket(
        rate=rate, mode="shaper", **kw
    ),
    "fixed_window": lambda rate, **kw: FixedWindow(rate=rate, **kw),
    "sliding_log": lambda rate, **kw: SlidingWindowLog(rate=rate, **kw),
    "sliding_counter": lambda rate, **kw: SlidingWindowCounter(
        rate=rate, **kw
    ),
}


class RecordingStore(RedisStore):
    """
    A store that keeps the server's time of every decision that granted.
    """

    def _run(self, script: Any, keys: Any, args: Any) -> Any:
        answer = RedisStore._run(self, script, keys, args)
        if args[0] == "decide" and answer[0] == 1:
            self.granted_at.append(float(answer[5]))
        return answer


def work(  # noqa: PLR0913, PLR0917  # a process's arguments
    url: str,
    kind: str,
    rate: tuple[int, float],
    seconds: float,
    threads: int,
    ready: Any,
    results: Any,
) -> None:
    """
    Run *threads* threads asking for one permit after the other for
    *seconds* of real time, once every process is *ready* (a barrier);
    put the server times of the grants and the number of requests on
    *results* (a queue).
    """
    store = RecordingStore(url=url, time="server", timeout=5.0)
    store.granted_at = []
    limiter = KINDS[kind](rate, store=store, name=kind)
    asked = [0] * threads
    start = threading.Barrier(threads)
    ready.wait()
    deadline = time.monotonic() + seconds  # real time: a load test

    def hammer(i: int) -> None:
        start.wait()
        while time.monotonic() < deadline:
            limiter.try_acquire()
            asked[i] += 1

    workers = [
        threading.Thread(target=hammer, args=(i,)) for i in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    results.put((store.granted_at, sum(asked)))
