"""
The one place where stalwart reads time and waits.

Every primitive reads time through a :class:`Clock`.  The default clock of
every primitive is :data:`DEFAULT_CLOCK`, a proxy that forwards to the
system clock, or to the clock installed by
:func:`stalwart.testing.use_clock` inside a test.  The real waits made
here can be observed through :func:`observe_real_waits`, the seam of the
pytest plugin's ``no_real_sleep`` check.
"""

from __future__ import annotations

import asyncio
import threading
import time

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable


# Real waits longer than this are made in chunks of it.  ``time.sleep()``
# and ``threading.Event.wait()`` raise ``OverflowError`` past what the
# platform can hold (``threading.TIMEOUT_MAX``, about 9.2e9 s, or a
# ``time_t`` deadline); a wait that long should behave like an unbounded
# one instead (issue #11).  A year keeps a 32-bit ``time_t`` deadline in
# range until 2037.
_LONGEST_BLOCK = 365 * 86400.0

# What the real waits block on; module globals, so a test can count the
# chunks of a very long wait without waiting.
_block = time.sleep
_monotonic = time.monotonic

RealWaitObserver = Callable[[str, float], None]
"""
Told ``(kind, seconds)`` just before a real wait starts: *kind* is
``"sleep"``, ``"asleep"`` or ``"wait"`` (a blocking wait with a time limit,
see :func:`wait_event`).  It may raise to stop the wait.
"""

# The observers of real waits (stalwart's pytest plugin, through
# :func:`observe_real_waits`).  Replaced whole under the lock and read
# without it: the waits test it for truth and nothing else, so the path
# costs one global read when nothing observes.
_observers: tuple[RealWaitObserver, ...] = ()
_observers_lock = threading.Lock()


def _report(kind: str, seconds: float) -> None:
    for observer in _observers:
        observer(kind, seconds)


@contextmanager
def observe_real_waits(observer: RealWaitObserver) -> Iterator[None]:
    """
    Tell *observer* about every real wait stalwart starts inside the block,
    in any thread: a :class:`SystemClock` sleep or async sleep, or a
    :func:`wait_event` with a time limit on a clock that runs in real time.

    Waits of zero or less, and waits with no time limit (for a permit, not
    for time), are not reported.
    """
    global _observers
    with _observers_lock:
        _observers = (*_observers, observer)
    try:
        yield
    finally:
        with _observers_lock:
            remaining = list(_observers)
            remaining.remove(observer)
            _observers = tuple(remaining)


def _sleep(seconds: float) -> None:
    """
    :func:`time.sleep`, observed, for any length (see `_LONGEST_BLOCK`).
    """
    if _observers and seconds > 0:
        _report("sleep", seconds)
    if seconds > _LONGEST_BLOCK:
        end = _monotonic() + seconds
        while (left := end - _monotonic()) > 0:
            _block(min(left, _LONGEST_BLOCK))
    else:
        _block(seconds)


def _asleep(seconds: float) -> Awaitable[None]:
    """
    :func:`asyncio.sleep`, observed.  It takes any length: the event loop
    caps each of its own waits.
    """
    if _observers and seconds > 0:
        _report("asleep", seconds)
    return asyncio.sleep(seconds)


@runtime_checkable
class Clock(Protocol):
    """
    A source of monotonic time that can also wait.

    Times are in seconds.  ``now()`` never goes backwards on a well-behaved
    clock, but primitives stay safe if it does.

    .. versionadded:: 0.1.0
    """

    def now(self) -> float:
        """
        Return the current monotonic time, in seconds.
        """
        ...

    def sleep(self, seconds: float) -> None:
        """
        Block the calling thread for *seconds*.
        """
        ...

    def asleep(self, seconds: float) -> Awaitable[None]:
        """
        Suspend the calling task for *seconds* (an ``async def`` method, or
        any callable that returns an awaitable).
        """
        ...


class SystemClock:
    """
    The real clock: :func:`time.monotonic`, :func:`time.sleep` and
    :func:`asyncio.sleep`.

    The three are stored as instance attributes so a call costs one
    attribute lookup; ``now`` is :func:`time.monotonic` itself.  A sleep
    of any length works: one longer than the platform can block in one go
    (``threading.TIMEOUT_MAX``) is made in chunks, and ``inf`` sleeps
    forever.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("asleep", "now", "sleep")

    now: Callable[[], float]
    sleep: Callable[[float], None]
    asleep: Callable[[float], Awaitable[None]]

    def __init__(self) -> None:
        self.now = time.monotonic
        self.sleep = _sleep
        self.asleep = _asleep

    def __repr__(self) -> str:
        return "SystemClock()"


def wall_time() -> float:
    """
    Return the wall-clock time, in seconds since the epoch
    (:func:`time.time`).

    Only for dates that come from outside (an HTTP ``Retry-After`` date
    read without the response's ``Date``), never to measure time: that is
    what a :class:`Clock` is for.
    """
    return time.time()


class DefaultClock:
    """
    The clock every primitive uses unless given one.

    It forwards to the system clock, or to the clock installed by
    :func:`stalwart.testing.use_clock`.  Forwarding is done by swapping the
    three attributes, so a primitive built at import time follows the swap
    and the normal path costs nothing extra.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_lock", "_stack", "asleep", "now", "sleep")

    now: Callable[[], float]
    sleep: Callable[[float], None]
    asleep: Callable[[float], Awaitable[None]]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stack: list[Clock] = [SystemClock()]
        self._point_at(self._stack[0])

    def _point_at(self, clock: Clock) -> None:
        self.now = clock.now
        self.sleep = clock.sleep
        self.asleep = clock.asleep

    @property
    def target(self) -> Clock:
        """
        The clock this proxy forwards to now.
        """
        return self._stack[-1]

    def push(self, clock: Clock) -> None:
        """
        Forward to *clock* until the matching :meth:`pop`.
        """
        with self._lock:
            self._stack.append(clock)
            self._point_at(clock)

    def pop(self, clock: Clock) -> None:
        """
        Stop forwarding to *clock*; it must be the one pushed last.
        """
        with self._lock:
            if len(self._stack) == 1 or self._stack[-1] is not clock:
                msg = "use_clock() contexts must be exited in LIFO order"
                raise RuntimeError(msg)
            self._stack.pop()
            self._point_at(self._stack[-1])

    def __repr__(self) -> str:
        return f"DefaultClock(target={self.target!r})"


DEFAULT_CLOCK = DefaultClock()
"""The clock primitives use when none is given."""


def wait_event(
    clock: Clock, event: threading.Event, until: float | None
) -> None:
    """
    Block until *event* is set or *clock* reaches *until* (``None``: no
    limit), whichever comes first.

    A clock may take part by offering ``wait_event(event, until)``, which
    must return once *event* is set or its own time reaches *until*, and may
    set *event* itself to end the wait (:class:`~stalwart.testing.FakeClock`
    does so when it is advanced past *until*).  Any other clock is taken to
    run in real time, and the wait is measured with
    :meth:`threading.Event.wait`, in chunks if it is longer than the
    platform can block in one go (an *until* of ``inf`` waits for *event*
    alone).  Callers must therefore not read the outcome from *event*; they
    check their own state afterwards.
    """
    target = clock.target if isinstance(clock, DefaultClock) else clock
    hook = getattr(target, "wait_event", None)
    if hook is not None:
        hook(event, until)
        return
    if until is None:
        event.wait()
        return
    left = until - target.now()
    if _observers and left > 0 and not event.is_set():
        _report("wait", left)
    while left > _LONGEST_BLOCK:
        if event.wait(_LONGEST_BLOCK):
            return
        left = until - target.now()
    event.wait(max(0.0, left))
