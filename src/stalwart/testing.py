"""
Tools for testing code that uses stalwart: a fake clock and the seams that
let code under test use it.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import threading

from collections.abc import Iterator, Sized
from contextlib import contextmanager
from typing import Any, final

from ._clock import DEFAULT_CLOCK, Clock
from ._errors import ConfigurationError
from ._retry import _set_testing, _TestingMode
from ._validators import collect


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


def _watched_files(loop: asyncio.AbstractEventLoop) -> Any:
    """
    Return *loop*'s selector map and the file descriptor of its own wake-up
    socket, or ``None`` if its type does not expose them.
    """
    # CPython's selector event loops (the default on every POSIX system).
    selector = getattr(loop, "_selector", None)
    wakeup = getattr(loop, "_ssock", None)
    if selector is None or wakeup is None:
        return None
    return selector.get_map(), wakeup.fileno()


def _is_listener(data: tuple[object, object]) -> bool:
    """
    Whether a selector entry's *data* is a server's listening socket,
    which waits for clients rather than for I/O in flight.
    """
    # asyncio registers (reader handle, writer handle); a server's reader
    # callback is the loop's _accept_connection.
    reader, writer = data
    callback = getattr(reader, "_callback", None)
    name = getattr(callback, "__name__", None)
    return writer is None and name == "_accept_connection"


def _io_pending(
    loop: asyncio.AbstractEventLoop,
    blocked: dict[int | None, threading.Event],
) -> bool:
    """
    Whether *loop* has real I/O in flight: a socket or pipe it watches
    (other than its own wake-up socket and servers' listening sockets), or
    work in its default executor, except threads blocked on a fake clock
    (*blocked*: their idents and the events that will wake them).
    """
    files, wakeup = _watched_files(loop)
    for key in files.values():
        if key.fd != wakeup and not _is_listener(key.data):
            return True
    executor: Any = getattr(loop, "_default_executor", None)
    try:
        # CPython's ThreadPoolExecutor: queued work, and threads neither
        # idle nor blocked on a fake clock.
        queued = executor._work_queue.qsize()
        threads = list(executor._threads)
        idle = executor._idle_semaphore._value
    except AttributeError:  # no executor yet, or one we cannot see into
        return False
    # A thread whose event is set has been woken, even if it has not run
    # yet: it is busy again.
    waiting = 0
    for thread in threads:
        event = blocked.get(thread.ident)
        if event is not None and not event.is_set():
            waiting += 1
    busy: int = len(threads) - idle - waiting
    return queued > 0 or busy > 0


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _seconds(method: str, seconds: object) -> float:
    """
    Check the *seconds* given to *method*: a number, not NaN or infinite.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        msg = f"{method}() takes a number of seconds (got {seconds!r})"
        raise TypeError(msg)
    try:
        value = float(seconds)
    except OverflowError:  # an int too large for a float
        value = math.inf
    if not math.isfinite(value):
        msg = f"{method}() takes a finite number of seconds (got {seconds!r})"
        raise ValueError(msg)
    return value


def _start(start: object) -> tuple[float, list[str]]:
    """
    Check FakeClock's *start*: the time as a float, and the problems found.
    """
    if isinstance(start, bool) or not isinstance(start, int | float):
        return 0.0, [f"'start' must be a number of seconds (got {start!r})"]
    try:
        value = float(start)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        return 0.0, [f"'start' must be finite (got {start!r})"]
    return value, []


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
    * Threads blocked on the clock (:meth:`wait_event`: a bulkhead's queue,
      :meth:`Timeout.call <stalwart.Timeout.call>`'s wait) wake when time
      reaches their deadline, whether it got there by :meth:`advance` or by
      an auto-jump; a loop's jump goes no further than the earliest
      deadline of its own sleepers and of the blocked threads.

    By default, awaiting a thread or real I/O counts as being blocked, so
    fake time can jump while such work is in flight, exactly as with trio's
    autojump clock: real I/O inside a :class:`~stalwart.Timeout` then times
    out at once.  Two ways out: *wait_for_io* keeps time still while the
    loop has real I/O in flight, and ``autojump=False`` leaves every move
    to :meth:`advance`.

    Args:
        start: The initial time, in seconds; a finite number.
        autojump: Jump fake time when every task of an event loop is
            blocked.  If false, async sleepers wake only when
            :meth:`advance` (or a thread's :meth:`sleep`) moves time.
        wait_for_io: Do not jump while the event loop has real I/O in
            flight: a socket or pipe it watches (a server's listening
            socket does not count, an open connection does), or work in
            its default executor (:func:`asyncio.to_thread`) other than
            threads blocked on this clock.  Needs CPython's selector event
            loop (the default on POSIX systems), and *autojump*.

    Raises:
        ConfigurationError: If *start* is not a finite number, or an
            option is not a ``bool``, listing every problem.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       *autojump* and *wait_for_io*; auto-jumps wake blocked threads;
       *start* is checked.
    """

    def __init__(
        self,
        start: float = 0.0,
        *,
        autojump: bool = True,
        wait_for_io: bool = False,
    ) -> None:
        self._now, problems = _start(start)
        for name, value in (
            ("autojump", autojump),
            ("wait_for_io", wait_for_io),
        ):
            if type(value) is not bool:
                problems.append(f"{name!r} must be a bool (got {value!r})")
        if wait_for_io is True and autojump is False:
            problems.append(
                "'wait_for_io' only applies with autojump=True "
                "(got wait_for_io=True, autojump=False)"
            )
        collect(problems)
        self._autojump = autojump
        self._wait_for_io = wait_for_io
        self.sleeps: list[float] = []
        """Every delay passed to :meth:`sleep` or :meth:`asleep`, in order."""
        self._lock = threading.Lock()
        self._seq = itertools.count()
        self._sleepers: list[
            tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future[None]]
        ] = []
        self._driven: set[asyncio.AbstractEventLoop] = set()
        self._idle_rounds = 0
        # Threads blocked in wait_event(): their deadlines, a heap of
        # (until, seq, event), and their events by thread ident.
        self._thread_waiters: list[tuple[float, int, threading.Event]] = []
        self._blocked: dict[int | None, threading.Event] = {}

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"

    @property
    def autojump(self) -> bool:
        """
        Whether fake time jumps when every task of an event loop is blocked.

        .. versionadded:: 0.2.0
        """
        return self._autojump

    @property
    def wait_for_io(self) -> bool:
        """
        Whether a jump waits until the event loop has no real I/O in flight.

        .. versionadded:: 0.2.0
        """
        return self._wait_for_io

    @property
    def waiting_threads(self) -> int:
        """
        How many threads are blocked on this clock now (in
        :meth:`wait_event`: a bulkhead's queue, :meth:`Timeout.call
        <stalwart.Timeout.call>`'s wait), so that a test can wait for a
        state rather than for a duration.

        .. versionadded:: 0.2.0
        """
        return len(self._blocked)

    def now(self) -> float:
        """
        Return the current fake time, in seconds.
        """
        return self._now

    def advance(self, seconds: float) -> None:
        """
        Move time forward by *seconds* and wake the sleepers and blocked
        threads now due.

        Raises:
            ValueError: If *seconds* is negative (time can't go backwards),
                NaN or infinite, or would take time past the largest float.
            TypeError: If *seconds* is not a number.
        """
        seconds = _seconds("advance", seconds)
        if seconds < 0:
            msg = f"time can't go backwards (advance({seconds!r}))"
            raise ValueError(msg)
        with self._lock:
            now = self._now + seconds
            if math.isinf(now):
                msg = (
                    f"advance({seconds!r}) would take time from "
                    f"{self._now!r} past the largest float"
                )
                raise ValueError(msg)
            due, woken = self._move_to(now)
        self._wake(None, due, woken)

    def _move_to(
        self, now: float
    ) -> tuple[
        list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]],
        list[threading.Event],
    ]:
        """
        Set the time to *now* and take the sleepers and threads now due;
        called with the lock held.
        """
        self._now = now
        due = []
        heap = self._sleepers
        while heap and heap[0][0] <= now:
            _, _, loop, fut = heapq.heappop(heap)
            if not fut.done():
                due.append((loop, fut))
        waiters = self._thread_waiters
        woken = []
        while waiters and waiters[0][0] <= now:
            woken.append(heapq.heappop(waiters)[2])
        return due, woken

    @staticmethod
    def _wake(
        current: asyncio.AbstractEventLoop | None,
        due: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]],
        woken: list[threading.Event],
    ) -> None:
        """
        Resolve the *due* sleepers (at once if on *current*, the running
        loop) and set the events of the *woken* threads; called without
        the lock.
        """
        for loop, fut in due:
            if loop is current:
                _resolve(fut)
            else:
                loop.call_soon_threadsafe(_resolve, fut)
        for event in woken:
            event.set()

    def wait_event(self, event: threading.Event, until: float | None) -> None:
        """
        Block the calling thread until *event* is set or fake time reaches
        *until* (``None`` or ``inf``: no limit); in the latter case, set
        *event*.

        Fake time moves by :meth:`advance`, a :meth:`sleep` in another
        thread, or an event loop's auto-jump, so a thread blocked here
        waits until one of those happens.  Used by stalwart's blocking
        waits (bulkhead queueing, the sync :class:`~stalwart.Timeout`) so
        that they follow the fake clock.

        .. versionadded:: 0.1.0
        """
        entry = None
        with self._lock:
            if until is not None:
                if self._now >= until:
                    return
                if math.isfinite(until):
                    entry = (until, next(self._seq), event)
                    heapq.heappush(self._thread_waiters, entry)
            self._blocked[threading.get_ident()] = event
        try:
            event.wait()
        finally:
            with self._lock:
                del self._blocked[threading.get_ident()]
                waiters = self._thread_waiters
                if entry is not None and entry in waiters:
                    # Woken by its event: its deadline must not draw a
                    # jump any more.  O(n), n the blocked threads.
                    waiters.remove(entry)
                    heapq.heapify(waiters)

    def sleep(self, seconds: float) -> None:
        """
        Record *seconds* in :attr:`sleeps` and advance by it at once.

        Raises:
            ValueError: If *seconds* is NaN or infinite (a thread would
                sleep forever).
        """
        _seconds("sleep", seconds)  # recorded as given
        self.sleeps.append(seconds)
        if seconds > 0:
            self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        """
        Record *seconds* in :attr:`sleeps`, then wait until fake time has
        moved on by that much.

        A delay of zero or less only yields to the event loop once; a delay
        of ``inf`` waits until the task is cancelled.

        Raises:
            ValueError: If *seconds* is NaN.
            RuntimeError: With *wait_for_io*, on an event loop whose I/O
                the clock cannot see.
        """
        if math.isnan(seconds):
            msg = f"asleep() takes a number of seconds, not NaN (got {seconds!r})"
            raise ValueError(msg)
        loop = asyncio.get_running_loop()
        if self._wait_for_io and _watched_files(loop) is None:
            msg = (
                f"FakeClock(wait_for_io=True) cannot see the I/O of {loop!r}; "
                "use asyncio's default (selector) event loop, or "
                "FakeClock(autojump=False) and advance()"
            )
            raise RuntimeError(msg)
        self.sleeps.append(seconds)
        fut: asyncio.Future[None] = loop.create_future()
        if seconds <= 0:
            loop.call_soon(_resolve, fut)
            await fut
            return
        with self._lock:
            deadline = self._now + seconds
            if not math.isinf(deadline):
                entry = (deadline, next(self._seq), loop, fut)
                heapq.heappush(self._sleepers, entry)
                start_driver = self._autojump and loop not in self._driven
                if start_driver:
                    self._driven.add(loop)
            else:
                start_driver = False
        if start_driver:
            loop.call_soon(self._drive, loop)
        # A cancelled sleep stays in the heap as a done future and is
        # skipped when popped: removal from the middle of a heap is O(n).
        await fut

    def _drive(self, loop: asyncio.AbstractEventLoop) -> None:
        """
        Jump to the next deadline of *loop*'s sleepers, or of a blocked
        thread if that comes first, once nothing else on *loop* can run;
        runs as a callback on *loop*.
        """
        with self._lock:
            waiting = [
                entry[0]
                for entry in self._sleepers
                if entry[2] is loop and not entry[3].done()
            ]
            if not waiting:
                self._driven.discard(loop)
                return
        busy = False
        if self._wait_for_io:
            # Before the ready queue: work that ends between the two looks
            # has queued its callback by the time it stops counting here.
            with self._lock:
                blocked = dict(self._blocked)
            busy = _io_pending(loop, blocked)
        if not busy:
            ready = _ready_queue(loop)
            if ready is None:
                self._idle_rounds += 1
                busy = self._idle_rounds < _IDLE_ROUNDS_WITHOUT_READY_QUEUE
            else:
                # CPython's loop keeps runnable callbacks in ``_ready``; if
                # any is queued, some task can still run: time stays.
                busy = bool(ready)
        if not busy:
            self._idle_rounds = 0
            with self._lock:
                deadline = min(waiting)
                if self._thread_waiters:
                    deadline = min(deadline, self._thread_waiters[0][0])
                due, woken = self._move_to(max(self._now, deadline))
            self._wake(loop, due, woken)
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
