"""
Bulkhead: cap how many calls run at once, with a bounded FIFO queue.

One instance serves threads and event loops at the same time: the core
(:mod:`stalwart._core.bulkhead`) keeps permits and a FIFO queue of waiters;
a thread parks on a :class:`threading.Event`, a task on a future that is
woken through :meth:`~asyncio.loop.call_soon_threadsafe`, and whoever gives
a permit back wakes the waiter it was handed to, whatever its kind.

The ``with`` faces and the decorator take anonymous permits: each entry is
matched by exactly one exit, so only the count matters, whichever order
blocks end in (generators stepped alternately, an async generator stepped
from several tasks) and the bookkeeping costs least.  The explicit steps
and the guard protocol (:class:`stalwart._faces.Guard`) take permits as
tokens of the core; the explicit steps keep theirs under the task or
thread that took them, so a second ``release()`` is caught instead of
handing a second permit to a waiter.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import math
import threading

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from types import CoroutineType, TracebackType
from typing import Any, ClassVar, Literal, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock, wait_event
from ._core.bulkhead import BulkheadCore
from ._deadline import cap_wait, wait_future
from ._errors import BulkheadFullError, ConfigurationError
from ._events import CallRejected, Hook, emit
from ._faces import (
    PLAIN,
    awaitable_result_error,
    blocking_on_loop,
    guard_acall,
    guard_async_generator,
    guard_call,
    guard_generator,
    is_async_callable,
    is_async_generator_function,
    is_awaitable,
    is_generator_function,
)
from ._typing import P, Seconds, T
from ._validators import (
    finite,
    hooks,
    integer,
    non_empty_str,
    non_negative,
    number,
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

_running_loop = asyncio.events._get_running_loop
_WITH_FACES = ("`with bulkhead`", "`async with bulkhead`")
_CALL_FACES = ("call()", "acall()")
_current_task = asyncio.current_task


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
        # Nothing else settles the future (waits never cancel it).
        self.loop.call_soon_threadsafe(self.fut.set_result, None)


_Waiter = threading.Event | _TaskWaiter


def _holder() -> object:
    """
    The task running now, or this thread outside any task: who holds a
    permit taken by an explicit step.
    """
    loop = _running_loop()
    if loop is not None:
        task = _current_task(loop)
        if task is not None:
            return task
    return threading.get_ident()


def _wait_seconds(value: object) -> float | None:
    """
    Validate a ``timeout=`` given at call time as configuration is
    validated: a number of seconds or a timedelta, >= 0 and finite, or
    ``None`` for no limit.
    """
    if value is None:
        return None
    wait = to_seconds(value, "timeout")
    if wait < 0:
        msg = f"'timeout' must be >= 0 (got {wait!r})"
        raise ConfigurationError(msg)
    if wait == math.inf:
        msg = (
            f"'timeout' must be finite (got {wait!r}); use None to wait as"
            " long as it takes"
        )
        raise ConfigurationError(msg)
    return wait


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

    Faces: decorator (``def``, ``async def``, and generator functions of
    both kinds, whose whole iteration holds one permit), ``with`` /
    ``async with``, :meth:`call` / :meth:`acall`, and the explicit steps
    :meth:`try_acquire`, :meth:`acquire`, :meth:`aacquire`, :meth:`release`.
    A sync face that would have to wait, used on the thread of a running
    event loop, raises :class:`RuntimeError` naming its async twin instead
    of blocking the loop.

    Waits are measured on *clock*: a :class:`~stalwart.testing.FakeClock`
    drives async waits by auto-jumping, and thread waits when it is
    advanced (see :meth:`~stalwart.testing.FakeClock.wait_event`).

    Args:
        max_concurrent: How many calls may run at once.
        max_queue: How many callers may wait for a permit; ``None`` for no
            limit.
        max_wait: How long a caller waits in the queue, in seconds;
            ``None`` waits as long as it takes (or until the deadline).
        name: Used in errors and events.
        clock: Where time is read and waited on.
        hooks: Receive a :class:`~stalwart.CallRejected` for each refusal.

    .. versionadded:: 0.1.0
    """

    max_concurrent: int = attrs.field(validator=(number, integer, positive))
    max_queue: int | None = attrs.field(
        default=0, validator=(integer, non_negative)
    )
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
    # The permits taken by explicit steps, by the task or thread holding
    # them (guarded by _lock).
    _held: dict[object, list[int]] = attrs.field(
        init=False, repr=False, factory=dict
    )

    _kind: ClassVar[str] = "Bulkhead"

    # -- explicit steps ---------------------------------------------------

    def try_acquire(self) -> bool:
        """
        Take a permit if one is free now; never wait.

        Returns:
            ``True`` if a permit was taken (give it back with
            :meth:`release`, from the same task or thread); ``False``,
            counted as a refusal and sent to the hooks as a
            :class:`~stalwart.CallRejected`, if not.  A bulkhead cannot
            tell when a permit will free up, so there is no
            ``retry_after``.

        .. versionadded:: 0.1.0
        """
        holder = _holder()
        lock = self._lock
        lock.acquire()
        try:
            token = self._core.try_take()
            if token:
                self._held.setdefault(holder, []).append(token)
            else:
                self._core.refuse()
        finally:
            lock.release()
        if token:
            return True
        self._refusal()
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
            ConfigurationError: If *timeout* is not a number of seconds
                >= 0, a timedelta or ``None``.
            RuntimeError: If it would have to wait on the thread of a
                running event loop; use :meth:`aacquire`.

        .. versionadded:: 0.1.0
        """
        wait = self.max_wait if timeout is MAX_WAIT else _wait_seconds(timeout)
        holder = _holder()
        with self._lock:
            token = self._core.try_take()
        if not token:
            token = self._wait(
                wait, ("acquire()", "await bulkhead.aacquire()")
            )
        with self._lock:
            self._held.setdefault(holder, []).append(token)

    async def aacquire(
        self,
        timeout: Seconds | Literal[_Default.MAX_WAIT] | None = MAX_WAIT,  # noqa: ASYNC109  # the shared limiter/bulkhead vocabulary
    ) -> None:
        """
        Take a permit, waiting in the queue if there is room (async twin of
        :meth:`acquire`).

        Raises:
            BulkheadFullError: If the queue is full or the wait ran out.
            ConfigurationError: If *timeout* is not valid.

        .. versionadded:: 0.1.0
        """
        wait = self.max_wait if timeout is MAX_WAIT else _wait_seconds(timeout)
        holder = _holder()
        with self._lock:
            token = self._core.try_take()
        if not token:
            token = await self._await(wait)
        with self._lock:
            self._held.setdefault(holder, []).append(token)

    def release(self) -> None:
        """
        Give back a permit that the calling task (or thread, outside any
        task) took with :meth:`try_acquire`, :meth:`acquire` or
        :meth:`aacquire`, handing it to the longest waiter if any.

        Raises:
            RuntimeError: If the caller holds no such permit: a second
                ``release()`` for one permit, or a permit taken by another
                task or thread.

        .. versionadded:: 0.1.0
        """
        holder = _holder()
        waiter: _Waiter | None = None
        lock = self._lock
        lock.acquire()
        try:
            tokens = self._held.get(holder)
            if tokens:
                token = tokens.pop()
                if not tokens:
                    del self._held[holder]
                waiter = self._core.give_back(token)
        finally:
            lock.release()
        if tokens is None:
            msg = (
                f"Bulkhead {self.name!r}: release() without a permit held by"
                " this task or thread (a second release() of one permit,"
                " or a permit taken elsewhere: give a permit back where it"
                " was taken)"
            )
            raise RuntimeError(msg)
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
        # Hot path: lock.acquire()/release() cost half of `with lock:`, and
        # try_enter() cannot raise.
        lock = self._lock
        lock.acquire()
        entered = self._core.try_enter()
        lock.release()
        if not entered:
            self._wait(self.max_wait, _WITH_FACES, anonymous=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lock = self._lock
        lock.acquire()
        try:
            waiter = self._core.exit()
        finally:
            lock.release()
        if waiter is not None:
            self._wake(waiter)

    async def __aenter__(self) -> None:
        lock = self._lock
        lock.acquire()
        entered = self._core.try_enter()
        lock.release()
        if not entered:
            await self._await(self.max_wait, anonymous=True)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run ``fn(*args, **kwargs)`` holding a permit.

        Raises:
            BulkheadFullError: If no permit could be had.
            TypeError: If *fn* returned something awaitable (an ``async``
                function); the permit is given back.  Use :meth:`acall`.
            RuntimeError: If it would have to wait on the thread of a
                running event loop; use :meth:`acall`.

        .. versionadded:: 0.1.0
        """
        return guard_call(self, fn, args, kwargs)

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
            TypeError: If *fn* did not return an awaitable; the permit is
                given back.  Use :meth:`call`.

        .. versionadded:: 0.1.0
        """
        return await guard_acall(self, fn, args, kwargs)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate a function so each call holds a permit: a ``def``, an
        ``async def``, or a generator function of either kind, whose whole
        iteration holds one permit (taken at its first step, given back
        when it ends, fails or is closed).

        .. versionadded:: 0.1.0
        """
        if is_async_generator_function(fn):
            agen = cast("Callable[P, AsyncGenerator[Any, Any]]", fn)
            return cast("Callable[P, T]", guard_async_generator(self, agen))
        if is_generator_function(fn):
            gen = cast("Callable[P, Generator[Any, Any, Any]]", fn)
            return cast("Callable[P, T]", guard_generator(self, gen))
        acquire = self._lock.acquire
        release = self._lock.release
        core = self._core
        wake = self._wake
        if is_async_callable(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                acquire()
                entered = core.try_enter()
                release()
                if not entered:
                    await self._await(self.max_wait, anonymous=True)
                try:
                    return await afn(*args, **kwargs)
                finally:
                    acquire()
                    try:
                        waiter = core.exit()
                    finally:
                        release()
                    if waiter is not None:
                        wake(waiter)

            return cast("Callable[P, T]", awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            acquire()
            entered = core.try_enter()
            release()
            if not entered:
                self._wait(self.max_wait, _CALL_FACES, anonymous=True)
            try:
                result = fn(*args, **kwargs)
            finally:
                acquire()
                try:
                    waiter = core.exit()
                finally:
                    release()
                if waiter is not None:
                    wake(waiter)
            if type(result) is CoroutineType or (
                type(result) not in PLAIN and is_awaitable(result)
            ):
                raise awaitable_result_error(
                    "Bulkhead", self.name, "call()", "acall()", result
                )
            return result

        return wrapper

    # -- the guard protocol (stalwart._faces.Guard) ---------------------------

    def _enter(self) -> int:
        lock = self._lock
        lock.acquire()
        token = self._core.try_take()
        lock.release()
        if token:
            return token
        return self._wait(self.max_wait, _CALL_FACES)

    async def _aenter(self) -> int:
        with self._lock:
            token = self._core.try_take()
        if token:
            return token
        return await self._await(self.max_wait)

    def _exit(
        self, token: int, exc: BaseException | None, result: object
    ) -> None:
        lock = self._lock
        lock.acquire()
        try:
            waiter = self._core.give_back(token)
        finally:
            lock.release()
        if waiter is not None:
            self._wake(waiter)

    async def _aexit(
        self, token: int, exc: BaseException | None, result: object
    ) -> None:
        self._exit(token, exc, result)

    def _undo(self, token: int) -> None:
        self._exit(token, None, None)

    # -- waiting (the slow path) --------------------------------------------

    def _wait(
        self,
        timeout: float | None,
        faces: tuple[str, str],
        *,
        anonymous: bool = False,
    ) -> int:
        """
        Queue the calling thread and park it until a permit is handed to it.

        Args:
            timeout: The longest wait, in seconds (``None``: no limit).
            faces: The sync face waiting and its async twin, named in the
                error when waiting would block an event loop.
            anonymous: Keep the permit anonymous (see the core).

        Returns:
            The token of the permit it now holds (unless *anonymous*).
        """
        wait, _ = cap_wait(timeout)
        until = None if wait is None else self.clock.now() + wait
        event = threading.Event()
        on_loop = _running_loop() is not None
        token = self._enqueue(event, wait, faces if on_loop else None)
        if token:
            return self._keep(token, anonymous)
        try:
            wait_event(self.clock, event, until)
        except BaseException:
            self._abandon(event)
            raise
        return self._settle(event, anonymous)

    async def _await(
        self,
        timeout: float | None,  # noqa: ASYNC109  # twin of _wait
        *,
        anonymous: bool = False,
    ) -> int:
        """
        Queue the calling task and park it until a permit is handed to it.
        """
        wait, _ = cap_wait(timeout)
        waiter = _TaskWaiter(asyncio.get_running_loop())
        token = self._enqueue(waiter, wait, None)
        if token:
            return self._keep(token, anonymous)
        try:
            await wait_future(waiter.fut, self.clock, wait)
        except BaseException:
            self._abandon(waiter)
            raise
        return self._settle(waiter, anonymous)

    def _enqueue(
        self,
        waiter: _Waiter,
        wait: float | None,
        blocking: tuple[str, str] | None,
    ) -> int:
        """
        Queue *waiter*, or raise if that is not possible (*blocking*: the
        sync face and its async twin, when waiting would block an event
        loop).

        Returns:
            The token of a permit that was free after all (now held), or
            ``0`` once queued.
        """
        with self._lock:
            token = self._core.try_take()
            if token:
                return token
            refused = blocked = False
            if wait == 0:
                self._core.refuse()
                refused = True
            elif blocking is not None and self._core.would_queue():
                blocked = True  # refused below, and not counted
            elif not self._core.enqueue(waiter):
                refused = True
        if blocked and blocking is not None:
            raise blocking_on_loop("Bulkhead", self.name, *blocking)
        if refused:
            raise self._refusal()
        return 0

    def _settle(self, waiter: _Waiter, anonymous: bool) -> int:
        """
        After a wait ended normally: keep the permit or report a timeout.
        """
        with self._lock:
            token = self._core.withdraw(waiter, refused=True)
        if not token:
            raise self._refusal()
        return self._keep(token, anonymous)

    def _keep(self, token: int, anonymous: bool) -> int:
        """
        Keep the permit *token*, made anonymous for the faces that count
        permits only (see the core).
        """
        if anonymous:
            with self._lock:
                self._core.anonymize(token)
        return token

    def _abandon(self, waiter: _Waiter) -> None:
        """
        Leave the queue; a permit that reached us meanwhile goes on.
        """
        with self._lock:
            token = self._core.withdraw(waiter, refused=False)
            if not token:
                return
            nxt = self._core.give_back(token)
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
                    token = self._core.withdraw(waiter, refused=False)
                    waiter = self._core.give_back(token)
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
