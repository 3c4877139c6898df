"""
Bulkhead: cap how many calls run at once, with a bounded FIFO queue.

One instance serves threads and event loops at the same time: the core
(:mod:`stalwart._core.bulkhead`) keeps permits and a FIFO queue of waiters;
a thread parks on a :class:`threading.Event`, a task on a future that is
woken through :meth:`~asyncio.loop.call_soon_threadsafe`
(:mod:`stalwart._waiters`), and whoever gives a permit back wakes the
waiter it was handed to, whatever its kind.  Waiting, the explicit steps,
refusals and per-call events are shared with the other bulkheads
(:mod:`stalwart._permits`); this module holds the counting bulkhead's hot
paths.

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

import functools

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from types import CoroutineType, TracebackType
from typing import Any, ClassVar, Final, Literal, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock
from ._core.bulkhead import BulkheadCore
from ._errors import BulkheadFullError
from ._events import Hook, call_admitted, call_finished, hook_failed
from ._faces import (
    PLAIN,
    awaitable_result_error,
    caller,
    guard_acall,
    guard_async_generator,
    guard_call,
    guard_generator,
    is_async_callable,
    is_async_generator_function,
    is_awaitable,
    is_generator_function,
)
from ._observe import live_hooks
from ._permits import (
    CALL_FACES,
    WITH_FACES,
    BulkheadBase,
    outcome_of,
)
from ._statistics import Statistics
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
    valid_clock,
    valid_hooks,
)
from ._waiters import MAX_WAIT, Default, queue_wait


# What a decorated def that returned an awaitable ended with: refused, not
# reported as a call.
_MISUSE: BaseException = TypeError("a sync face returned an awaitable")

_KIND: Final = "bulkhead"


@final
@attrs.frozen(kw_only=True)
class BulkheadStatistics(Statistics):
    """
    A snapshot of a :class:`Bulkhead`'s counters.

    Attributes:
        name: The bulkhead's name.
        in_flight: Calls holding a permit now.
        queued: Callers waiting for a permit now.
        refused: Callers refused so far (queue full, wait timed out, or
            ``try_acquire()`` said no).
        high_water: The most calls that ever held a permit at once.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Derives from :class:`~stalwart.Statistics`, carries *name*, and is
       built with keyword arguments only.
    """

    kind: ClassVar[str] = "bulkhead"

    name: str
    in_flight: int
    queued: int
    refused: int
    high_water: int


@final
@attrs.frozen(kw_only=True, eq=False)
class Bulkhead(BulkheadBase):
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
        hooks: Receive a :class:`~stalwart.CallRejected` for each refusal;
            hooks that ask for per-call events (see
            :meth:`~stalwart.Observable.add_hook`) also get a
            :class:`~stalwart.CallAdmitted` and a
            :class:`~stalwart.CallFinished` for each call.  More can be
            attached later with :meth:`~stalwart.Observable.add_hook`.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Hooks attached after construction; per-call events.
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

    _kind: ClassVar[str] = "Bulkhead"
    _primitive: ClassVar[str] = _KIND

    def __attrs_post_init__(self) -> None:
        self._init_base(BulkheadCore(self.max_concurrent, self.max_queue))
        live_hooks(self, self.hooks, self._hooks_changed)
        self._hooks_changed()

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
        return self._try_acquire()

    def acquire(
        self, timeout: Seconds | Literal[Default.MAX_WAIT] | None = MAX_WAIT
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
        self._acquire(queue_wait(timeout, self.max_wait, strict=True))

    async def aacquire(
        self,
        timeout: Seconds | Literal[Default.MAX_WAIT] | None = MAX_WAIT,  # noqa: ASYNC109  # the shared limiter/bulkhead vocabulary
    ) -> None:
        """
        Take a permit, waiting in the queue if there is room (async twin of
        :meth:`acquire`).

        Raises:
            BulkheadFullError: If the queue is full or the wait ran out.
            ConfigurationError: If *timeout* is not valid.

        .. versionadded:: 0.1.0
        """
        await self._aacquire(queue_wait(timeout, self.max_wait, strict=True))

    def statistics(self) -> BulkheadStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            snap = self._core.snapshot()
        return BulkheadStatistics(
            name=self.name,
            in_flight=snap.in_flight,
            queued=snap.queued,
            refused=snap.refused,
            high_water=int(snap.high_water),
        )

    # -- context managers and calls -----------------------------------------

    def __enter__(self) -> None:
        # Hot path: lock.acquire()/release() cost half of `with lock:`, and
        # try_enter() cannot raise.  The gate is the core, or the stand-in
        # that times a call (see the decorator).
        lock = self._lock
        lock.acquire()
        entered = self._gate.try_enter()
        lock.release()
        if not entered:
            times = self._enter_anonymous(WITH_FACES, entered)
            if times is not None:
                self._block_admitted(caller(1), *times)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        _depth: int = 1,
    ) -> None:
        lock = self._lock
        lock.acquire()
        try:
            served = self._gate.exit()
        finally:
            lock.release()
        if served is not None:
            self._finished(served, self._block_start(caller(_depth)), exc)

    async def __aenter__(self) -> None:
        lock = self._lock
        lock.acquire()
        entered = self._gate.try_enter()
        lock.release()
        if not entered:
            times = await self._aenter_anonymous(entered)
            if times is not None:
                self._block_admitted(caller(1), *times)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb, 2)

    def _enter_anonymous(
        self, faces: tuple[str, str], entered: bool | None = False
    ) -> tuple[float, float] | None:
        """
        The slow path of the faces that take anonymous permits: time a
        call the gate admitted while observing (*entered* ``None``), or
        wait for a permit and time the call if a hook listens.

        Returns:
            When a timed call began and was admitted, or ``None``.
        """
        if entered is None:
            return self._at_once()
        start, entered = self._first_enter()
        if not entered:
            self._wait(MAX_WAIT, faces, anonymous=True)
        return self._entered(start, entered)

    async def _aenter_anonymous(
        self, entered: bool | None = False
    ) -> tuple[float, float] | None:
        """
        The slow path of the async faces that take anonymous permits (twin
        of :meth:`_enter_anonymous`).
        """
        if entered is None:
            return self._at_once()
        start, entered = self._first_enter()
        if not entered:
            await self._await(MAX_WAIT, anonymous=True)
        return self._entered(start, entered)

    def _at_once(self) -> tuple[float, float]:
        """
        When a call the gate admitted at once began and was admitted: now,
        both (it waited 0.0).
        """
        now = self.clock.now()
        return now, now

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
        # The gate says how a call goes: True, admitted at once while no
        # per-call hook listens, it runs as it always did; None, admitted
        # at once while one listens, it is timed from its admission (wait
        # 0.0) and reported inline; False, it takes the slow path (it waits
        # for a permit, timed if a hook listens).
        acquire = self._lock.acquire
        release = self._lock.release
        finished = self._finished
        # In one closure variable: each costs a copy at every call.  The
        # two wrappers repeat the observed admission and end inline (not in
        # a shared method): a frame each way costs about a quarter of a
        # hook call.
        observed = (self.clock, self.name, self._live, self._core.exit)
        if is_async_callable(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                acquire()
                entered = self._gate.try_enter()
                release()
                if entered:
                    error = None
                    try:
                        return await afn(*args, **kwargs)
                    except BaseException as exc:
                        error = exc
                        raise
                    finally:
                        acquire()
                        try:
                            served = self._gate.exit()
                        finally:
                            release()
                        if served is not None:
                            finished(served, None, error)
                start: float | None  # an annotation: no code on any path
                if entered is None:  # at once, observed: waited 0.0
                    start = observed[0].now()
                    admission = call_admitted(observed[1], start, _KIND, 0.0)
                    try:
                        for hook in observed[2].calls_now:
                            try:
                                hook(admission)
                            except Exception:
                                hook_failed(hook, admission)
                    except BaseException:
                        self._refund()
                        raise
                else:
                    start = self._call_admitted(await self._aenter_anonymous())
                error = None
                try:
                    return await afn(*args, **kwargs)
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    acquire()
                    try:
                        served = observed[3]()
                    finally:
                        release()
                    if served:
                        self._wake(served)
                    hooks = observed[2].calls_now
                    if hooks:
                        now = observed[0].now()
                        event = call_finished(
                            observed[1],
                            now,
                            _KIND,
                            "success" if error is None else outcome_of(error),
                            None if start is None else now - start,
                            error,
                        )
                        for hook in hooks:
                            try:
                                hook(event)
                            except Exception:
                                hook_failed(hook, event)

            return cast("Callable[P, T]", awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            acquire()
            entered = self._gate.try_enter()
            release()
            error: BaseException | None = None
            if entered:
                try:
                    result = fn(*args, **kwargs)
                    if type(result) is CoroutineType or (
                        type(result) not in PLAIN and is_awaitable(result)
                    ):
                        error = _MISUSE
                except BaseException as exc:
                    error = exc
                    raise
                finally:
                    acquire()
                    try:
                        served = self._gate.exit()
                    finally:
                        release()
                    if served is not None:
                        # A misuse is refused, not reported as a call.
                        finished(served, None, error, error is not _MISUSE)
                if error is _MISUSE:
                    raise self._misuse(result)
                return result
            start: float | None  # an annotation: no code on any path
            if entered is None:  # at once, observed: waited 0.0
                start = observed[0].now()
                admission = call_admitted(observed[1], start, _KIND, 0.0)
                try:
                    for hook in observed[2].calls_now:
                        try:
                            hook(admission)
                        except Exception:
                            hook_failed(hook, admission)
                except BaseException:
                    self._refund()
                    raise
            else:
                start = self._call_admitted(self._enter_anonymous(CALL_FACES))
            try:
                result = fn(*args, **kwargs)
                if type(result) is CoroutineType or (
                    type(result) not in PLAIN and is_awaitable(result)
                ):
                    error = _MISUSE
            except BaseException as exc:
                error = exc
                raise
            finally:
                acquire()
                try:
                    served = observed[3]()
                finally:
                    release()
                if served:
                    self._wake(served)
                hooks = observed[2].calls_now
                if hooks and error is not _MISUSE:
                    now = observed[0].now()
                    event = call_finished(
                        observed[1],
                        now,
                        _KIND,
                        "success" if error is None else outcome_of(error),
                        None if start is None else now - start,
                        error,
                    )
                    for hook in hooks:
                        try:
                            hook(event)
                        except Exception:
                            hook_failed(hook, event)
            if error is _MISUSE:
                raise self._misuse(result)
            return result

        return wrapper

    def _misuse(self, result: object) -> TypeError:
        """
        The error for a decorated ``def`` that returned *result*, an
        awaitable.
        """
        return awaitable_result_error(
            "Bulkhead", self.name, "call()", "acall()", result
        )

    def _call_admitted(
        self, times: tuple[float, float] | None
    ) -> float | None:
        """
        Report a decorated call's admission after the slow path (if it is
        timed); a hook that raises a :class:`BaseException` gives its
        anonymous permit back.

        Returns:
            When the call began, if it is timed.
        """
        if times is None:
            return None
        try:
            self._report_admitted(*times)
        except BaseException:
            self._refund()
            raise
        return times[1]

    # -- the guard protocol (stalwart._faces.Guard) ---------------------------

    def _enter(self) -> int:
        lock = self._lock
        lock.acquire()
        token = self._gate.try_take()
        lock.release()
        if token:
            return token
        return self._take(MAX_WAIT, CALL_FACES)

    async def _aenter(self) -> int:
        lock = self._lock
        lock.acquire()
        token = self._gate.try_take()
        lock.release()
        if token:
            return token
        return await self._atake(MAX_WAIT)

    def _exit(
        self, token: int, exc: BaseException | None, result: object
    ) -> None:
        lock = self._lock
        lock.acquire()
        try:
            served = self._gate.give_back(token)
        finally:
            lock.release()
        if served is not None:
            self._finished(served, self._starts.pop(token, None), exc)

    async def _aexit(
        self, token: int, exc: BaseException | None, result: object
    ) -> None:
        self._exit(token, exc, result)

    def _undo(self, token: int) -> None:
        self._give_back(token, None, report=False)

    # -- refusals ------------------------------------------------------------

    def _full(self) -> BulkheadFullError:
        return BulkheadFullError(self.name, self.max_concurrent)
