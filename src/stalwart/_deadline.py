"""
A deadline that travels with the call through a context variable.

:class:`~stalwart.Timeout` sets it; nested code reads it with
:func:`current_deadline`; waits inside stalwart's primitives (retry
backoff, bulkhead queueing, limiter reservations) never wait past it.
Context variables follow both threads (each thread starts empty; a worker
started by stalwart copies the caller's context) and asyncio tasks.
"""

from __future__ import annotations

import contextvars

from collections.abc import Iterator
from contextlib import contextmanager

import attrs

from ._clock import Clock


@attrs.frozen
class Deadline:
    """
    A point in time, on *clock*, by which the current call must be done.

    Attributes:
        at: The deadline, in the clock's seconds.
        clock: The clock the deadline is measured on.

    .. versionadded:: 0.1.0
    """

    at: float
    clock: Clock = attrs.field(repr=False)

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


def enter_deadline(
    seconds: float, clock: Clock
) -> tuple[Deadline, contextvars.Token[Deadline | None]]:
    """
    Set a deadline *seconds* from now, unless an enclosing one is earlier.

    The low-level form of :func:`deadline_scope` for hot paths: pass the
    returned token to :func:`exit_deadline` when the call ends.
    """
    new = Deadline(clock.now() + seconds, clock)
    outer = _current.get()
    if outer is not None and outer.remaining() <= seconds:
        new = outer
    return new, _current.set(new)


def exit_deadline(token: contextvars.Token[Deadline | None]) -> None:
    """
    Restore the deadline that was current before :func:`enter_deadline`.
    """
    _current.reset(token)


@contextmanager
def deadline_scope(seconds: float, clock: Clock) -> Iterator[Deadline]:
    """
    Set a deadline *seconds* from now for the block.

    An enclosing deadline that is earlier stays in force: nesting can only
    shorten the time left.
    """
    new, token = enter_deadline(seconds, clock)
    try:
        yield new
    finally:
        _current.reset(token)


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
