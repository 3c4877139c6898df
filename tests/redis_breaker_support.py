"""
Helpers of the shared breaker's tests: a fleet of "processes" (each its own
store, with its own clients) on one server, one event loop for the async
faces, and the round trips the server counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from collections.abc import Awaitable
from typing import Any, TypeVar

import redis

from breaker_support import FACES as BREAKER_FACES
from helpers import Boom, as_async
from stalwart import CircuitBreaker, CircuitOpenError, Pipeline
from stalwart.redis import RedisStore
from stalwart.testing import FakeClock


T = TypeVar("T")

FACES = [*BREAKER_FACES, "pipeline", "async pipeline"]


class Fleet:
    """
    Processes sharing one server: each :meth:`breaker` has a store of its
    own (its own connections), as a breaker in another process would.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.clock = FakeClock()
        self.loop = asyncio.new_event_loop()
        self.stores: list[RedisStore] = []
        self.admin = redis.Redis.from_url(url)

    def store(self, **kwargs: Any) -> RedisStore:
        store = RedisStore(url=self.url, **kwargs)
        self.stores.append(store)
        return store

    def breaker(
        self, store: RedisStore | None = None, **kwargs: Any
    ) -> CircuitBreaker:
        kwargs.setdefault("name", "payments")
        kwargs.setdefault("clock", self.clock)
        return CircuitBreaker(store=store or self.store(), **kwargs)

    def run(self, awaitable: Awaitable[T]) -> T:
        async def wait() -> T:
            return await awaitable

        return self.loop.run_until_complete(wait())

    def round_trips(self) -> int:
        """
        Scripts the server ran so far (``INFO commandstats``).
        """
        stats = self.admin.info("commandstats")
        return sum(
            int(stats.get(f"cmdstat_{name}", {}).get("calls", 0))
            for name in ("evalsha", "eval")
        )

    def close(self) -> None:
        for store in self.stores:
            store.close()
            self.loop.run_until_complete(store.aclose())
        self.loop.close()
        self.admin.close()


def through(fleet: Fleet, face: str, cb: CircuitBreaker, fn: Any) -> Any:
    """
    Run ``fn()`` through one face of *cb* (async faces on the fleet's
    loop).
    """
    if face == "call":
        return cb.call(fn)
    if face == "acall":
        return fleet.run(cb.acall(as_async(fn)))
    if face == "decorator":
        return cb(fn)()
    if face == "async decorator":
        return fleet.run(cb(as_async(fn))())
    if face == "with":
        with cb:
            return fn()
    if face == "async with":

        async def block() -> Any:
            async with cb:
                return fn()

        return fleet.run(block())
    if face == "pipeline":
        return Pipeline(cb).call(fn)
    if face == "async pipeline":
        return fleet.run(Pipeline(cb).acall(as_async(fn)))
    permit = cb.acquire()
    try:
        result = fn()
    except BaseException as e:
        permit.record_exception(e)
        raise
    permit.record_success()
    return result


FLEET_KEY = "stalwart:breaker:{fleet}"
"""The state of the breaker :func:`hammer` shares."""


def fleet_breaker(url: str) -> CircuitBreaker:
    """
    The breaker every process of the fleet test builds: one failure opens
    it for 20 ms of the server's time, one trial at a time.
    """
    return CircuitBreaker(
        name="fleet",
        failure_threshold=1,
        recovery_time=0.02,
        half_open_max_wait=60,
        store=RedisStore(url=url, time="server", timeout=5),
    )


def hammer(url: str, seconds: float, threads: int) -> int:
    """
    One process of the fleet test: *threads* threads call the breaker for
    *seconds* of real time; every call admitted notes the state and the
    generation it ran in (``HINCRBY trials <state>:<generation>``) and
    fails.  Return the calls admitted.
    """
    cb = fleet_breaker(url)
    spy = redis.Redis.from_url(url)
    deadline = time.monotonic() + seconds
    admitted = []

    def trial() -> None:
        state, generation = spy.hmget(FLEET_KEY, "state", "generation")
        spy.hincrby("trials", f"{state.decode()}:{generation.decode()}", 1)
        admitted.append(1)
        raise Boom

    def run() -> None:
        while time.monotonic() < deadline:
            with contextlib.suppress(Boom, CircuitOpenError):
                cb.call(trial)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    spy.close()
    cb.store.close()  # type: ignore[union-attr]  # built with one
    return len(admitted)
