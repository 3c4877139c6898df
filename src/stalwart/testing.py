"""
Tools for testing code that uses stalwart: a fake clock and the seams that
let code under test use it.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading

from collections.abc import Iterator, Sized
from contextlib import contextmanager
from typing import final

from ._clock import DEFAULT_CLOCK, Clock
from ._errors import ConfigurationError
from ._retry import _set_testing, _TestingMode


__all__ = ["FakeClock", "retry_testing", "set_retry_testing", "use_clock"]

# How many rounds of the event loop the fake clock yields before it jumps
# on a loop whose ready queue it cannot inspect (not CPython's asyncio).
_IDLE_ROUNDS_WITHOUT_READY_QUEUE = 16


def _ready_queue(loop: asyncio.AbstractEventLoop) -> Sized | None:
    """
    Return the runnable callbacks of *loop*, if its type exposes them.
    """
    # CPython's BaseEventLoop keeps runnable callbacks in ``_ready``.
    return getattr(loop, "_ready", None)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


@final
class FakeClock:
    """
    A clock that only moves when told to, or when everything waits on it.

    * :meth:`advance` moves time forward by hand.
    * :meth:`sleep` advances at once and records the delay in :attr:`sleeps`.
    * :meth:`asleep` suspends the task until fake time reaches its deadline.
      Time *auto-jumps* to the earliest deadline once every task of the event
      loop is blocked, as trio's autojump clock does: a task that can still
      run never sees time move under it, concurrent sleeps overlap (tasks
      sleeping 3 s and 5 s at once wake at t=3 and t=5), and a test of
      concurrent async code is exact and runs in near-zero real time.

    Awaiting a thread or real I/O counts as being blocked, so fake time can
    jump while such work is in flight, exactly as with trio's autojump
    clock.

    Args:
        start: The initial time, in seconds.

    .. versionadded:: 0.1.0
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self.sleeps: list[float] = []
        """Every delay passed to :meth:`sleep` or :meth:`asleep`, in order."""
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._sleepers: list[
            tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future[None]]
        ] = []
        self._driven: set[asyncio.AbstractEventLoop] = set()
        self._idle_rounds = 0
        # Threads blocked in wait_event(): (until, seq, event).
        self._thread_waiters: list[tuple[float, int, threading.Event]] = []

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"

    def now(self) -> float:
        """
        Return the current fake time, in seconds.
        """
        return self._now

    def advance(self, seconds: float) -> None:
        """
        Move time forward by *seconds* and wake the sleepers now due.

        Raises:
            ValueError: If *seconds* is negative: time can't go backwards.
        """
        if seconds < 0:
            msg = f"time can't go backwards (advance({seconds!r}))"
            raise ValueError(msg)
        with self._lock:
            self._now += seconds
            due = self._pop_due()
            waiters = self._thread_waiters
            woken = []
            while waiters and waiters[0][0] <= self._now:
                woken.append(heapq.heappop(waiters)[2])
        for loop, fut in due:
            loop.call_soon_threadsafe(_resolve, fut)
        for event in woken:
            event.set()

    def wait_event(self, event: threading.Event, until: float | None) -> None:
        """
        Block the calling thread until *event* is set or fake time reaches
        *until* (``None``: no limit); in the latter case, set *event*.

        Only :meth:`advance` (or a :meth:`sleep` in another thread) moves
        fake time, so a thread blocked here waits until some other thread
        does.  Used by stalwart's blocking waits (bulkhead queueing, the sync
        :class:`~stalwart.Timeout`) so that they follow the fake clock.

        .. versionadded:: 0.1.0
        """
        if until is not None:
            with self._lock:
                if self._now >= until:
                    return
                entry = (until, next(self._seq), event)
                heapq.heappush(self._thread_waiters, entry)
        event.wait()

    def sleep(self, seconds: float) -> None:
        """
        Record *seconds* in :attr:`sleeps` and advance by it at once.
        """
        self.sleeps.append(seconds)
        if seconds > 0:
            self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        """
        Record *seconds* in :attr:`sleeps`, then wait until fake time has
        moved on by that much.

        A delay of zero or less only yields to the event loop once.
        """
        self.sleeps.append(seconds)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        if seconds <= 0:
            loop.call_soon(_resolve, fut)
            await fut
            return
        with self._lock:
            entry = (self._now + seconds, next(self._seq), loop, fut)
            heapq.heappush(self._sleepers, entry)
            start_driver = loop not in self._driven
            self._driven.add(loop)
        if start_driver:
            loop.call_soon(self._drive, loop)
        # A cancelled sleep stays in the heap as a done future and is
        # skipped when popped: removal from the middle of a heap is O(n).
        await fut

    def _pop_due(
        self,
    ) -> list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]:
        due = []
        heap = self._sleepers
        while heap and heap[0][0] <= self._now:
            _, _, loop, fut = heapq.heappop(heap)
            if not fut.done():
                due.append((loop, fut))
        return due

    def _drive(self, loop: asyncio.AbstractEventLoop) -> None:
        """
        Jump to the next deadline of *loop*'s sleepers once nothing else
        on *loop* can run; runs as a callback on *loop*.
        """
        with self._lock:
            waiting = [
                entry
                for entry in self._sleepers
                if entry[2] is loop and not entry[3].done()
            ]
            if not waiting:
                self._driven.discard(loop)
                return
        ready = _ready_queue(loop)
        if ready is None:
            self._idle_rounds += 1
            busy = self._idle_rounds < _IDLE_ROUNDS_WITHOUT_READY_QUEUE
        else:
            # CPython's loop keeps runnable callbacks in ``_ready``; if any
            # is queued, some task can still run, so time must not move.
            busy = bool(ready)
        if not busy:
            self._idle_rounds = 0
            with self._lock:
                deadline = min(entry[0] for entry in waiting)
                self._now = max(self._now, deadline)
                due = self._pop_due()
            for other, fut in due:
                if other is loop:
                    _resolve(fut)
                else:
                    other.call_soon_threadsafe(_resolve, fut)
        loop.call_soon(self._drive, loop)


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """
    Make every primitive that uses the default clock use *clock* instead.

    This covers primitives built before the block (at import time, say) as
    well as those built inside it, in every thread.  Blocks nest and must
    be exited in the order they were entered.

    Args:
        clock: The clock to use, usually a :class:`FakeClock`.

    .. versionadded:: 0.1.0
    """
    DEFAULT_CLOCK.push(clock)
    try:
        yield clock
    finally:
        DEFAULT_CLOCK.pop(clock)


# --- retry: the test-mode switch ---


def set_retry_testing(enabled: bool, *, attempts: int | None = None) -> None:
    """
    Switch every :class:`~stalwart.Retry` into test mode, or back.

    In test mode a retry never waits (no sleep at all), and, when
    *attempts* is given, makes at most that many attempts; everything else
    (what is retried, events, statistics) is unchanged.  Flip it in your
    own test suite (a ``conftest.py`` fixture, say) so that code under
    test retries instantly.

    Args:
        enabled: Turn test mode on or off.
        attempts: The most attempts in test mode (``1``: never retry);
            ``None`` keeps each retry's own limit.

    Raises:
        ConfigurationError: If *attempts* is not an int >= 1.

    .. versionadded:: 0.1.0
    """
    _set_testing(_testing_mode(enabled, attempts))


@contextmanager
def retry_testing(*, attempts: int | None = None) -> Iterator[None]:
    """
    Put every :class:`~stalwart.Retry` in test mode for the block (see
    :func:`set_retry_testing`), then restore the previous mode.

    .. versionadded:: 0.1.0
    """
    previous = _set_testing(_testing_mode(True, attempts))
    try:
        yield
    finally:
        _set_testing(previous)


def _testing_mode(enabled: bool, attempts: int | None) -> _TestingMode | None:
    if attempts is not None and (type(attempts) is not int or attempts < 1):
        msg = f"'attempts' must be an int >= 1 (got {attempts!r})"
        raise ConfigurationError(msg)
    return _TestingMode(attempts=attempts) if enabled else None
