"""
Parking threads and tasks that wait on a core's FIFO queue.

A core keeps waiters in order and, when one may go on, returns it to the
shell, which wakes it (trio's ``ParkingLot``: bookkeeping in the core,
parking here).  A thread parks on a :class:`threading.Event`, through
:func:`~stalwart._clock.wait_event` so that a
:class:`~stalwart.testing.FakeClock` drives its timeout; a task parks on a
future of its own loop, woken from any thread with
:meth:`~asyncio.loop.call_soon_threadsafe`, and races it against the
clock's own sleep.  Threads and tasks can therefore share one queue.
"""

from __future__ import annotations

import asyncio
import threading

from ._clock import Clock, wait_event


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class TaskWaiter:
    """
    A task's place in a queue: a future, woken from any thread.
    """

    __slots__ = ("fut", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.fut: asyncio.Future[None] = loop.create_future()

    def set(self) -> None:
        """
        Wake the task.

        Raises:
            RuntimeError: If its event loop is closed: the task will never
                run again, so whatever was handed to it must go on.
        """
        self.loop.call_soon_threadsafe(_resolve, self.fut)


Waiter = threading.Event | TaskWaiter
"""What a core queues: a thread's event or a task's waiter."""


def park_thread(
    clock: Clock, event: threading.Event, wait: float | None
) -> None:
    """
    Block the calling thread until *event* is set or *wait* seconds have
    passed on *clock* (``None``: no limit).

    Callers read the outcome from their core (was the waiter still
    queued?), never from *event*.
    """
    until = None if wait is None else clock.now() + wait
    wait_event(clock, event, until)


async def park_task(
    clock: Clock, waiter: TaskWaiter, wait: float | None
) -> None:
    """
    Suspend the calling task until *waiter* is woken or *wait* seconds
    have passed on *clock* (``None``: no limit).
    """
    if wait is None:
        await waiter.fut
        return
    # Race the wake-up against the clock's own sleep, so that a FakeClock
    # drives the wait.
    sleeper = asyncio.ensure_future(clock.asleep(wait))
    try:
        await asyncio.wait(
            (waiter.fut, sleeper), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        sleeper.cancel()
