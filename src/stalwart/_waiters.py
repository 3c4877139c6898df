"""
Parking threads and tasks that wait on a core's FIFO queue.

A core keeps waiters in order and, when one may go on, returns it to the
shell, which wakes it (trio's ``ParkingLot``: bookkeeping in the core,
parking here).  Every shell whose callers wait in a queue (the bulkheads,
the bounded buffer, the resource pool) parks and wakes them through this
module:

* :func:`park` blocks a thread on a :class:`threading.Event`, through
  :func:`~stalwart._clock.wait_event` so that a
  :class:`~stalwart.testing.FakeClock` drives its timeout; :func:`apark`
  suspends a task on a future of its own loop, raced against the clock's
  own sleep.  Both queue the caller first, and on the way out either
  settle (the wait ended: the caller reads from the core what it got) or
  abandon (the wait was cancelled or interrupted: whatever reached the
  caller meanwhile goes on);
* :func:`wake` wakes waiters from any thread (a task's through
  :meth:`~asyncio.loop.call_soon_threadsafe`), handing on what was meant
  for one whose event loop is closed;
* :func:`queue_wait` turns the ``timeout=`` of a call into the wait it may
  make, capped by the current deadline.

Threads and tasks can therefore share one queue.
"""

from __future__ import annotations

import asyncio
import enum
import math
import threading

from collections.abc import Awaitable, Callable, Iterable
from typing import Literal, TypeVar

from ._clock import Clock, wait_event
from ._deadline import cap_wait, wait_future
from ._errors import ConfigurationError
from ._typing import Seconds
from ._validators import to_seconds


R = TypeVar("R")


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


class Queued(enum.Enum):
    """
    What a shell's enqueue step returns when it queued the caller.
    """

    QUEUED = enum.auto()


QUEUED = Queued.QUEUED


def park(
    clock: Clock,
    wait: float | None,
    enqueue: Callable[[threading.Event], R | Literal[Queued.QUEUED]],
    settle: Callable[[threading.Event], R],
    abandon: Callable[[threading.Event], object],
) -> R:
    """
    Queue the calling thread and block it until it is woken or *wait*
    seconds have passed on *clock* (``None``: no limit).

    Args:
        clock: The clock the wait is measured on.
        wait: The longest wait.
        enqueue: Queue the thread's event, under the shell's lock, unless
            what it waits for is there after all: returns :data:`QUEUED`,
            or what to return at once.
        settle: Called once the wait ended (woken or timed out): returns
            what the thread got, or raises (it timed out).  Its outcome is
            read from the core, never from the event.
        abandon: Called when the wait is cut short by a
            :class:`BaseException` (an interrupt), which then goes on:
            leave the queue, handing on what reached the thread meanwhile.
    """
    event = threading.Event()
    ready = enqueue(event)
    if ready is not QUEUED:
        return ready
    until = None if wait is None else clock.now() + wait
    try:
        wait_event(clock, event, until)
    except BaseException:
        abandon(event)
        raise
    return settle(event)


async def apark(
    clock: Clock,
    wait: float | None,
    enqueue: Callable[[TaskWaiter], R | Literal[Queued.QUEUED]],
    settle: Callable[[TaskWaiter], R],
    abandon: Callable[[TaskWaiter], Awaitable[object] | object],
    *,
    then: Callable[[], Awaitable[object]] | None = None,
) -> R:
    """
    Queue the calling task and suspend it until it is woken or *wait*
    seconds have passed on *clock* (the async twin of :func:`park`).

    A pool closing resources with an async disposer awaits: *then*, once
    the task is queued and before it parks (resources it found dead); and
    what *abandon* returns, before the cancellation goes on.
    """
    waiter = TaskWaiter(asyncio.get_running_loop())
    ready = enqueue(waiter)
    if ready is not QUEUED:
        return ready
    try:
        if then is not None:
            await then()
        await wait_future(waiter.fut, clock, wait)
    except BaseException:
        gone = abandon(waiter)
        if isinstance(gone, Awaitable):
            await gone
        raise
    return settle(waiter)


def wake(
    waiters: Iterable[Waiter],
    hand_on: Callable[[Waiter], Iterable[Waiter] | None],
) -> None:
    """
    Wake each of *waiters*, from any thread.

    A waiter whose event loop is closed will never run again: *hand_on*
    (which takes the shell's lock) passes on what it was handed (a permit,
    an item, room, a resource) and returns the waiters that got it, who
    are woken in turn.
    """
    pending = list(waiters)
    for waiter in pending:  # in order; grows while it runs
        try:
            waiter.set()
        except RuntimeError:
            more = hand_on(waiter)
            if more:
                pending.extend(more)


def one(waiter: Waiter | None) -> tuple[Waiter, ...]:
    """
    Return *waiter* as a sequence for :func:`wake`: empty for ``None``.
    """
    return () if waiter is None else (waiter,)


# -- timeouts -------------------------------------------------------------


class Default(enum.Enum):
    """
    The default of a ``timeout=`` that means the primitive's *max_wait*.
    """

    MAX_WAIT = enum.auto()


MAX_WAIT = Default.MAX_WAIT

Timeout = Seconds | Literal[Default.MAX_WAIT] | None
"""A ``timeout=`` given at call time."""


def queue_wait(
    timeout: Timeout, max_wait: float | None, *, strict: bool = False
) -> float | None:
    """
    Return how long a caller may wait: *timeout* in seconds (*max_wait*
    for :data:`MAX_WAIT`, ``None`` for no limit), capped by the current
    deadline; ``0`` means it may not wait at all.

    Args:
        timeout: The ``timeout=`` given at call time.
        max_wait: The primitive's configured wait.
        strict: Validate *timeout* as configuration is validated
            (:class:`~stalwart.ConfigurationError` for a negative, NaN or
            infinite one); otherwise a negative one means no wait.
    """
    if timeout is MAX_WAIT:
        seconds = max_wait
    elif timeout is None:
        seconds = None
    else:
        seconds = to_seconds(timeout, "timeout")
        if not strict:
            seconds = max(0.0, seconds)
        elif seconds < 0:
            msg = f"'timeout' must be >= 0 (got {seconds!r})"
            raise ConfigurationError(msg)
        elif seconds == math.inf:
            msg = (
                f"'timeout' must be finite (got {seconds!r}); use None to"
                " wait as long as it takes"
            )
            raise ConfigurationError(msg)
    wait, _ = cap_wait(seconds)
    return wait
