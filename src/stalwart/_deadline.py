"""
A deadline that travels with the call through a context variable.

:class:`~stalwart.Timeout` sets it; nested code reads it with
:func:`current_deadline`; waits inside stalwart's primitives (retry
backoff, bulkhead queueing, limiter reservations) never wait past it.
Context variables follow both threads (each thread starts empty; a worker
started by stalwart copies the caller's context) and asyncio tasks.

Each scope that sets a deadline gets a :class:`Deadline` of its own, which
knows the deadline it replaced and who set the time it holds (its *owner*,
which builds the error for code that the deadline cuts short).  Scopes
usually end in the reverse order they began, but two generators that each
hold a ``with timeout:`` block across a ``yield``, stepped alternately,
end theirs out of order: :func:`exit_deadline` then restores the deadline
of the scopes still open, never one that has ended.
"""

from __future__ import annotations

import asyncio
import contextvars

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from ._clock import Clock
from ._errors import TimeoutExceededError


class Owner(Protocol):
    """
    Whoever set a deadline.
    """

    def cut(self) -> TimeoutExceededError:
        """
        Return the error for code cut short by this deadline (not counted:
        the owner counts its own timeouts).
        """
        ...


class Deadline:
    """
    A point in time, on *clock*, by which the current call must be done.

    Attributes:
        at: The deadline, in the clock's seconds.
        clock: The clock the deadline is measured on.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_outer", "_owner", "_stale", "at", "clock")

    def __init__(
        self,
        at: float,
        clock: Clock,
        *,
        outer: Deadline | None = None,
        owner: Owner | None = None,
    ) -> None:
        self.at = at
        self.clock = clock
        self._outer = outer
        self._owner = owner
        # Set when the scope ended while another deadline was current (out
        # of order, or from another context): it is skipped on restore.
        self._stale = False

    def __repr__(self) -> str:
        return f"Deadline(at={self.at!r})"

    def remaining(self) -> float:
        """
        Return the seconds left before the deadline; negative once past.
        """
        return self.at - self.clock.now()

    @property
    def expired(self) -> bool:
        """
        Whether the deadline has passed.
        """
        return self.clock.now() >= self.at

    def cut(self) -> TimeoutExceededError:
        """
        Return the error for a wait or a call cut short by this deadline.
        """
        if self._owner is None:
            return TimeoutExceededError("<deadline>", 0.0)
        return self._owner.cut()


_current: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "stalwart_deadline", default=None
)


def current_deadline() -> Deadline | None:
    """
    Return the innermost deadline of the current call, or ``None``.

    .. versionadded:: 0.1.0
    """
    return _current.get()


def remaining_time() -> float | None:
    """
    Return the seconds left before the current deadline, or ``None`` when
    there is none.  Code running under a :class:`~stalwart.Timeout` calls
    this to stop cooperatively.

    .. versionadded:: 0.1.0
    """
    deadline = _current.get()
    return None if deadline is None else deadline.remaining()


def enter_deadline(seconds: float, clock: Clock, owner: Owner) -> Deadline:
    """
    Set a deadline *seconds* from now, unless an enclosing one is earlier.

    Returns:
        The deadline now in force: the new one, owned by *owner*, or a copy
        of the enclosing one, owned by whoever owns that.  Pass it to
        :func:`exit_deadline` when the scope ends.
    """
    outer = _current.get()
    if outer is not None and outer.remaining() <= seconds:
        # Nesting can only shorten the time left.
        new = Deadline(outer.at, outer.clock, outer=outer, owner=outer._owner)
    else:
        new = Deadline(clock.now() + seconds, clock, outer=outer, owner=owner)
    _current.set(new)
    return new


def exit_deadline(deadline: Deadline) -> None:
    """
    End the scope of *deadline*: restore the innermost deadline of the
    scopes still open in this context.
    """
    current = _current.get()
    if current is not deadline:
        # Ended out of order (or from another context): whoever restores
        # over it later skips it.
        deadline._stale = True
        if current is None or not current._stale:
            return
    while current is not None and (current is deadline or current._stale):
        current = current._outer
    _current.set(current)


class _Scope:
    """The owner of a bare :func:`deadline_scope`."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def cut(self) -> TimeoutExceededError:
        return TimeoutExceededError("<deadline>", self.seconds)


@contextmanager
def deadline_scope(seconds: float, clock: Clock) -> Iterator[Deadline]:
    """
    Set a deadline *seconds* from now for the block.

    An enclosing deadline that is earlier stays in force: nesting can only
    shorten the time left.
    """
    deadline = enter_deadline(seconds, clock, _Scope(seconds))
    try:
        yield deadline
    finally:
        exit_deadline(deadline)


def cap_wait(seconds: float | None) -> tuple[float | None, bool]:
    """
    Cap a wait of *seconds* (``None``: unbounded) by the current deadline.

    Returns:
        The capped wait, and whether the deadline is what capped it (so a
        caller that needed the full wait knows it cannot succeed).
    """
    deadline = _current.get()
    if deadline is None:
        return seconds, False
    left = max(0.0, deadline.remaining())
    if seconds is None or left < seconds:
        return left, True
    return seconds, False


async def wait_future(
    future: asyncio.Future[Any], clock: Clock, wait: float | None
) -> None:
    """
    Wait until *future* is done, or for *wait* seconds of *clock*
    (``None``: no limit), whichever comes first; *future* is left as it is.

    The wait is the clock's own sleep, raced against the future, so that a
    :class:`~stalwart.testing.FakeClock` drives it.
    """
    if wait is None:
        await asyncio.wait((future,))
        return
    sleeper = asyncio.ensure_future(clock.asleep(wait))
    try:
        await asyncio.wait(
            (future, sleeper), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        sleeper.cancel()
