"""
Bulkhead: cap how many calls run at once, with a bounded FIFO queue.

One instance serves threads and event loops at the same time: the core
(:mod:`stalwart._core.bulkhead`) keeps permits and a FIFO queue of waiters;
a thread parks on a :class:`threading.Event`, a task on a future that is
woken through :meth:`~asyncio.loop.call_soon_threadsafe`, and whoever gives
a permit back wakes the waiter it was handed to, whatever its kind.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import inspect
import threading

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock, wait_event
from ._core.bulkhead import BulkheadCore
from ._deadline import cap_wait
from ._errors import BulkheadFullError
from ._events import CallRejected, Hook, emit
from ._typing import P, Seconds, T
from ._validators import (
    finite,
    hooks,
    integer,
    non_empty_str,
    non_negative,
    optional_duration,
    optional_seconds,
    positive,
    to_seconds,
    valid_clock,
    valid_hooks,
)


class _Default(enum.Enum):
    MAX_WAIT = enum.auto()


MAX_WAIT = _Default.MAX_WAIT


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _TaskWaiter:
    """
    A task's place in the queue: a future, woken from any thread.
    """

    __slots__ = ("fut", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.fut: asyncio.Future[None] = loop.create_future()

    def set(self) -> None:
        # Raises RuntimeError if the loop is closed; see Bulkhead._wake.
        self.loop.call_soon_threadsafe(_resolve, self.fut)


_Waiter = threading.Event | _TaskWaiter


@final
@attrs.frozen
class BulkheadStatistics:
    """
    A snapshot of a :class:`Bulkhead`'s counters.

    Attributes:
        in_flight: Calls holding a permit now.
        queued: Callers waiting for a permit now.
        refused: Callers refused so far (queue full, wait timed out, or
            ``try_acquire()`` said no).
        high_water: The most calls that ever held a permit at once.

    .. versionadded:: 0.1.0
    """

    in_flight: int
    queued: int
    refused: int
    high_water: int


@final
@attrs.frozen(kw_only=True, eq=False)
class Bulkhead:
    """
    Let at most *max_concurrent* calls in at once; queue a few more.

    A caller that finds every permit taken waits in FIFO order, if the
    queue has room, for at most *max_wait*; anyone beyond is refused at
    once with :class:`~stalwart.BulkheadFullError`, and a waiter whose wait
    runs out gets the same error.  Waits never go past the current
    deadline (:func:`~stalwart.current_deadline`, set by
    :class:`~stalwart.Timeout`).

    One instance may be used from threads and from event loops at the same
    time; they share the one limit.  A permit is always given back, however
    the call ends (``KeyboardInterrupt`` and cancellation included), and a
    waiter that is cancelled or interrupted leaves the queue; if a permit
    reached it at that very moment, it is handed on to the next waiter.

    Faces: decorator (``def`` and ``async def``), ``with`` /
    ``async with``, :meth:`call` / :meth:`acall`, and the explicit steps
    :meth:`try_acquire`, :meth:`acquire`, :meth:`aacquire`, :meth:`release`.

    Waits are measured on *clock*: a :class:`~stalwart.testing.FakeClock`
    drives async waits by auto-jumping, and thread waits when it is
    advanced (see :meth:`~stalwart.testing.FakeClock.wait_event`).

    Args:
        max_concurrent: How many calls may run at once.
        max_queue: How many callers may wait for a permit.
        max_wait: How long a caller waits in the queue, in seconds;
            ``None`` waits as long as it takes (or until the deadline).
        name: Used in errors and events.
        clock: Where time is read and waited on.
        hooks: Receive a :class:`~stalwart.CallRejected` for each refusal.

    .. versionadded:: 0.1.0
    """

    max_concurrent: int = attrs.field(validator=(integer, positive))
    max_queue: int = attrs.field(default=0, validator=(integer, non_negative))
    max_wait: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, non_negative, finite],
    )
    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    clock: Clock = attrs.field(
        default=DEFAULT_CLOCK, validator=valid_clock, repr=False
    )
    hooks: tuple[Hook, ...] = attrs.field(
        default=(),
        converter=hooks,
        validator=valid_hooks,
        repr=False,
    )
    _core: BulkheadCore[_Waiter] = attrs.field(
        init=False,
        repr=False,
        default=attrs.Factory(
            lambda self: BulkheadCore(self.max_concurrent, self.max_queue),
            takes_self=True,
        ),
    )
    # Held for O(1) core bookkeeping only; never across user code or a wait.
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )

    # -- explicit steps ---------------------------------------------------

    def try_acquire(self) -> bool:
        """
        Take a permit if one is free now; never wait.

        Returns:
            ``True`` if a permit was taken (give it back with
            :meth:`release`); ``False``, counted as a refusal, if not.  A
            bulkhead cannot tell when a permit will free up, so there is no
            ``retry_after``.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            if self._core.try_enter():
                return True
            self._core.refuse()
        return False

    def acquire(
        self, timeout: Seconds | Literal[_Default.MAX_WAIT] | None = MAX_WAIT
    ) -> None:
        """
        Take a permit, waiting in the queue if there is room.

        Args:
            timeout: How long to wait, in seconds; *max_wait* by default,
                ``None`` for as long as it takes.  The current deadline
                caps it.

        Raises:
            BulkheadFullError: If the queue is full or the wait ran out.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            entered = self._core.try_enter()
        if not entered:
            self._wait(self._timeout(timeout))

    async def aacquire(
        self,
        timeout: Seconds | Literal[_Default.MAX_WAIT] | None = MAX_WAIT,  # noqa: ASYNC109  # the shared limiter/bulkhead vocabulary
    ) -> None:
        """
        Take a permit, waiting in the queue if there is room (async twin of
        :meth:`acquire`).

        Raises:
            BulkheadFullError: If the queue is full or the wait ran out.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            entered = self._core.try_enter()
        if not entered:
            await self._await(self._timeout(timeout))

    def release(self) -> None:
        """
        Give a permit back, handing it to the longest waiter if any.

        Raises:
            RuntimeError: If no permit is held.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            waiter = self._core.exit()
        if waiter is not None:
            self._wake(waiter)

    def statistics(self) -> BulkheadStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            snap = self._core.snapshot()
        return BulkheadStatistics(
            in_flight=snap.in_flight,
            queued=snap.queued,
            refused=snap.refused,
            high_water=snap.high_water,
        )

    # -- context managers and calls -----------------------------------------

    def __enter__(self) -> None:
        with self._lock:
            entered = self._core.try_enter()
        if not entered:
            self._wait(self.max_wait)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> None:
        with self._lock:
            entered = self._core.try_enter()
        if not entered:
            await self._await(self.max_wait)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run ``fn(*args, **kwargs)`` holding a permit.

        Raises:
            BulkheadFullError: If no permit could be had.

        .. versionadded:: 0.1.0
        """
        with self:
            return fn(*args, **kwargs)

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """
        Await ``fn(*args, **kwargs)`` holding a permit.

        Raises:
            BulkheadFullError: If no permit could be had.

        .. versionadded:: 0.1.0
        """
        async with self:
            return await fn(*args, **kwargs)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate a ``def`` or an ``async def`` so each call holds a permit.

        .. versionadded:: 0.1.0
        """
        lock = self._lock
        core = self._core
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with lock:
                    entered = core.try_enter()
                if not entered:
                    await self._await(self.max_wait)
                try:
                    return await fn(*args, **kwargs)
                finally:
                    with lock:
                        waiter = core.exit()
                    if waiter is not None:
                        self._wake(waiter)

            return cast("Callable[P, T]", awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            with lock:
                entered = core.try_enter()
            if not entered:
                self._wait(self.max_wait)
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    waiter = core.exit()
                if waiter is not None:
                    self._wake(waiter)

        return wrapper

    # -- waiting (the slow path) --------------------------------------------

    def _timeout(
        self, timeout: Seconds | Literal[_Default.MAX_WAIT] | None
    ) -> float | None:
        if timeout is MAX_WAIT:
            return self.max_wait
        if timeout is None:
            return None
        return max(0.0, to_seconds(timeout, "timeout"))

    def _wait(self, timeout: float | None) -> None:
        """
        Queue the calling thread and park it until a permit is handed to it.
        """
        wait, _ = cap_wait(timeout)
        until = None if wait is None else self.clock.now() + wait
        event = threading.Event()
        if not self._enqueue(event, wait):
            return
        try:
            wait_event(self.clock, event, until)
        except BaseException:
            self._abandon(event)
            raise
        self._settle(event)

    async def _await(self, timeout: float | None) -> None:  # noqa: ASYNC109  # twin of _wait
        """
        Queue the calling task and park it until a permit is handed to it.
        """
        wait, _ = cap_wait(timeout)
        waiter = _TaskWaiter(asyncio.get_running_loop())
        if not self._enqueue(waiter, wait):
            return
        try:
            await self._park(waiter.fut, wait)
        except BaseException:
            self._abandon(waiter)
            raise
        self._settle(waiter)

    async def _park(
        self, fut: asyncio.Future[None], wait: float | None
    ) -> None:
        if wait is None:
            await fut
            return
        # Race the wake-up against the clock's own sleep, so that a
        # FakeClock drives the wait.
        sleeper = asyncio.ensure_future(self.clock.asleep(wait))
        try:
            await asyncio.wait(
                (fut, sleeper), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            sleeper.cancel()

    def _enqueue(self, waiter: _Waiter, wait: float | None) -> bool:
        """
        Queue *waiter*, or raise if that is not possible.

        Returns:
            ``False`` if a permit was free after all (it is now held).
        """
        with self._lock:
            if self._core.try_enter():
                return False
            if wait == 0:
                self._core.refuse()
                queued = False
            else:
                queued = self._core.enqueue(waiter)
        if not queued:
            raise self._refusal()
        return True

    def _settle(self, waiter: _Waiter) -> None:
        """
        After a wait ended normally: keep the permit or report a timeout.
        """
        with self._lock:
            timed_out = self._core.withdraw(waiter, refused=True)
        if timed_out:
            raise self._refusal()

    def _abandon(self, waiter: _Waiter) -> None:
        """
        Leave the queue; a permit that reached us meanwhile goes on.
        """
        with self._lock:
            if self._core.withdraw(waiter, refused=False):
                return
            nxt = self._core.exit()
        if nxt is not None:
            self._wake(nxt)

    def _wake(self, waiter: _Waiter | None) -> None:
        while waiter is not None:
            try:
                waiter.set()
            except RuntimeError:
                # The waiter's event loop is closed: it will never take the
                # permit, so hand it on rather than leak it.
                with self._lock:
                    waiter = self._core.exit()
            else:
                return

    def _refusal(self) -> BulkheadFullError:
        error = BulkheadFullError(self.name, self.max_concurrent)
        if self.hooks:
            emit(
                self.hooks,
                CallRejected(
                    primitive_name=self.name, at=self.clock.now(), error=error
                ),
            )
        return error
