"""
Every face of a bulkhead, as one function each (importable as
``bulkhead_faces``): run one call that takes *seconds* on a
:class:`~stalwart.testing.FakeClock` and then returns or raises
*outcome* (or what it returns, if it is callable).  Shared by the tests of :class:`~stalwart.Bulkhead`,
:class:`~stalwart.AdaptiveBulkhead` and :class:`~stalwart.WeightedHold`,
whose faces are the same.
"""

from __future__ import annotations

import asyncio
import threading

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from stalwart.testing import FakeClock


def _end(outcome: object) -> Any:
    if isinstance(outcome, BaseException):
        raise outcome
    if callable(outcome):
        return outcome()
    return outcome


def work(clock: FakeClock, seconds: float, outcome: object) -> Any:
    """
    Take *seconds* of fake time, then return or raise *outcome*.
    """
    clock.advance(seconds)
    return _end(outcome)


async def awork(clock: FakeClock, seconds: float, outcome: object) -> Any:
    """
    Sleep *seconds* of fake time, then return or raise *outcome*.
    """
    await clock.asleep(seconds)
    return _end(outcome)


def _decorator(b: Any, clock: FakeClock, s: float, o: object) -> Any:
    @b
    def call() -> Any:
        return work(clock, s, o)

    return call()


def _async_decorator(b: Any, clock: FakeClock, s: float, o: object) -> Any:
    @b
    async def call() -> Any:
        return await awork(clock, s, o)

    return asyncio.run(call())


def _with(b: Any, clock: FakeClock, s: float, o: object) -> Any:
    with b:
        return work(clock, s, o)


def _async_with(b: Any, clock: FakeClock, s: float, o: object) -> Any:
    async def main() -> Any:
        async with b:
            return await awork(clock, s, o)

    return asyncio.run(main())


def _call(b: Any, clock: FakeClock, s: float, o: object) -> Any:
    return b.call(work, clock, s, o)


def _acall(b: Any, clock: FakeClock, s: float, o: object) -> Any:
    return asyncio.run(b.acall(awork, clock, s, o))


def _generator(b: Any, clock: FakeClock, s: float, o: object) -> Any:
    @b
    def gen() -> Iterator[Any]:
        yield work(clock, s, o)

    return next(iter(list(gen())))


def _async_generator(b: Any, clock: FakeClock, s: float, o: object) -> Any:
    @b
    async def agen() -> AsyncIterator[Any]:
        yield await awork(clock, s, o)

    async def main() -> Any:
        return [item async for item in agen()][0]

    return asyncio.run(main())


FACES: dict[str, Callable[[Any, FakeClock, float, object], Any]] = {
    "decorator": _decorator,
    "async-decorator": _async_decorator,
    "with": _with,
    "async-with": _async_with,
    "call": _call,
    "acall": _acall,
    "generator": _generator,
    "async-generator": _async_generator,
}
"""Each face: ``run(bulkhead, clock, seconds, outcome) -> result``."""

SYNC_FACES = ("decorator", "with", "call", "generator")
"""The faces whose call runs on the calling thread, without a loop."""


def threads_and_tasks(
    plans: list[list[Any]],
    thread_calls: Callable[[list[Any]], None],
    task_calls: Callable[[list[Any]], Any],
    *,
    cancel_last: bool = False,
) -> None:
    """
    Run ``thread_calls(plans[0])`` and ``thread_calls(plans[1])`` on two
    threads and ``task_calls(plan)`` for the other plans as tasks of one
    event loop on a third, all at once (cancelling the last task as soon
    as it started, if asked); return when all are done.
    """

    def loop_calls() -> None:
        async def main() -> None:
            tasks = [asyncio.ensure_future(task_calls(p)) for p in plans[2:]]
            await asyncio.sleep(0)
            if cancel_last:
                tasks[-1].cancel()
            await asyncio.gather(*tasks, return_exceptions=cancel_last)

        asyncio.run(main())

    threads = [
        threading.Thread(target=thread_calls, args=(plans[0],)),
        threading.Thread(target=thread_calls, args=(plans[1],)),
        threading.Thread(target=loop_calls),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
