"""
The one place where stalwart reads time and waits.

Every primitive reads time through a :class:`Clock`.  The default clock of
every primitive is :data:`DEFAULT_CLOCK`, a proxy that forwards to the
system clock, or to the clock installed by
:func:`stalwart.testing.use_clock` inside a test.
"""

from __future__ import annotations

import asyncio
import threading
import time

from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable


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
    attribute lookup and no extra frame.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("asleep", "now", "sleep")

    now: Callable[[], float]
    sleep: Callable[[float], None]
    asleep: Callable[[float], Awaitable[None]]

    def __init__(self) -> None:
        self.now = time.monotonic
        self.sleep = time.sleep
        self.asleep = asyncio.sleep

    def __repr__(self) -> str:
        return "SystemClock()"


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
    :meth:`threading.Event.wait`.  Callers must therefore not read the
    outcome from *event*; they check their own state afterwards.
    """
    target = clock.target if isinstance(clock, DefaultClock) else clock
    hook = getattr(target, "wait_event", None)
    if hook is not None:
        hook(event, until)
    elif until is None:
        event.wait()
    else:
        event.wait(max(0.0, until - target.now()))
