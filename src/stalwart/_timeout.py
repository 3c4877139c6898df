"""
Timeout: give up on a call at its deadline, and tell nested code about it.

Each face does what Python allows, and no more:

* async (``async with``, :meth:`Timeout.acall`, the decorator on
  ``async def``): the awaited work is cancelled at the deadline;
* sync (:meth:`Timeout.call`, the decorator on ``def``): the function runs
  on a worker thread and the caller stops waiting at the deadline; the
  thread cannot be killed, so the function should watch the deadline;
* ``with`` on the main thread: ``SIGALRM`` interrupts the block.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import queue
import signal
import threading
import warnings

from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from types import FrameType, TracebackType
from typing import Any, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock, DefaultClock, SystemClock, wait_event
from ._deadline import Deadline, deadline_scope, enter_deadline, exit_deadline
from ._errors import TimeoutExceededError
from ._events import Hook, TimeoutExceeded, emit
from ._typing import P, T
from ._validators import (
    duration,
    finite,
    hooks,
    non_empty_str,
    non_negative,
    seconds,
    valid_clock,
    valid_hooks,
)


# How long an idle worker thread waits for another call before it exits,
# in real seconds: workers are reused by calls in quick succession and do
# not linger after.
_WORKER_IDLE_TIMEOUT = 10.0


class _Workers:
    """
    A pool of daemon threads that grows on demand and shrinks when idle.

    It is unbounded on purpose: a call abandoned at its deadline keeps its
    thread until it returns, and a bounded pool would make later calls queue
    behind it and time out without ever running.  The threads are daemons,
    so abandoned calls never keep the process alive.
    """

    def __init__(self, idle_timeout: float) -> None:
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        # Invariant: threads waiting for a job == _idle + jobs queued.
        self._idle = 0
        self._jobs: queue.SimpleQueue[
            tuple[Future[Any], Callable[[], Any]]
        ] = queue.SimpleQueue()

    def submit(self, job: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((future, job))
        with self._lock:
            if self._idle:
                self._idle -= 1
                return future
        threading.Thread(
            target=self._work, name="stalwart-timeout", daemon=True
        ).start()
        return future

    def _work(self) -> None:
        while True:
            try:
                future, job = self._jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                with self._lock:
                    if self._idle:
                        self._idle -= 1
                        return
                # A submit() claimed this thread between the timeout and the
                # lock; its job is already queued, so go and take it.
                continue  # pragma: no cover  # a race, not reproducible on demand
            future.set_running_or_notify_cancel()
            try:
                result = job()
            except BaseException as exc:  # handed to the caller as is
                outcome: tuple[bool, Any] = (False, exc)
            else:
                outcome = (True, result)
            # Count this thread idle before the caller can see the result,
            # so a call that follows at once reuses it.
            with self._lock:
                self._idle += 1
            if outcome[0]:
                future.set_result(outcome[1])
            else:
                future.set_exception(outcome[1])
            del future, job, outcome


_WORKERS = _Workers(_WORKER_IDLE_TIMEOUT)


def _target(clock: Clock) -> Clock:
    return clock.target if isinstance(clock, DefaultClock) else clock


@final
@attrs.frozen
class TimeoutStatistics:
    """
    A snapshot of a :class:`Timeout`'s counters.

    Attributes:
        timeouts: Calls given up at their deadline so far.

    .. versionadded:: 0.1.0
    """

    timeouts: int


class _AsyncScope:
    """
    The state of one ``async with timeout:`` block, kept in a context
    variable, so that one Timeout serves any number of concurrent blocks.
    """

    __slots__ = (
        "base",
        "deadline",
        "fired",
        "limit",
        "task",
        "token",
        "watcher",
    )

    deadline: contextvars.Token[Deadline | None]
    token: contextvars.Token[_AsyncScope]
    task: asyncio.Task[Any]
    base: int
    watcher: asyncio.Future[None]

    def __init__(self) -> None:
        self.limit: asyncio.Timeout | None = None
        self.fired = False


_scopes: contextvars.ContextVar[_AsyncScope] = contextvars.ContextVar(
    "stalwart_timeout_scope"
)


@final
@attrs.frozen(kw_only=True, eq=False)
class Timeout:
    """
    Give up on a call that takes longer than *seconds*.

    While the call runs, the deadline travels with it
    (:func:`~stalwart.current_deadline`, :func:`~stalwart.remaining_time`):
    waits inside stalwart never go past it, and the call's own code can
    read it to stop in time.  Nested timeouts can only shorten it.

    * ``async with timeout:``, ``await timeout.acall(fn)`` and the
      decorator on ``async def`` cancel the awaited work at the deadline and raise
      :class:`~stalwart.TimeoutExceededError` (also a
      :class:`TimeoutError`).  The caller's own cancellation stays a
      cancellation.
    * ``timeout.call(fn)`` and the decorator on ``def`` run *fn* on a
      worker thread (with a copy of the caller's context, so it sees the
      deadline) and stop waiting at the deadline.
    * ``with timeout:`` works on the main thread only (POSIX), where
      ``SIGALRM`` interrupts the block; anywhere else it raises
      :class:`RuntimeError` pointing to :meth:`call` (and with a clock
      other than the system clock, :class:`TypeError`).

    .. warning::
        Python cannot stop a thread.  When :meth:`call` gives up, *fn*
        keeps running on its worker thread until it returns, and its result
        is dropped.  Make long sync work cooperative: check
        :func:`~stalwart.remaining_time` and return early.

    Args:
        seconds: The time limit, in seconds.
        name: Used in errors and events.
        clock: Where the deadline is measured.  The ``with`` face needs the
            system clock, since signals run in real time.
        hooks: Receive a :class:`~stalwart.TimeoutExceeded` per timeout.

    .. versionadded:: 0.1.0
    """

    seconds: float = attrs.field(
        converter=seconds,
        validator=attrs.validators.and_(duration, non_negative, finite),
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
    _timeouts: list[int] = attrs.field(
        init=False, repr=False, factory=lambda: [0]
    )
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )

    def __attrs_post_init__(self) -> None:
        if self.seconds == 0:
            warnings.warn(
                "Timeout(seconds=0) gives up on every call at once",
                stacklevel=3,
            )

    def statistics(self) -> TimeoutStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            return TimeoutStatistics(timeouts=self._timeouts[0])

    # -- sync ----------------------------------------------------------------

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run ``fn(*args, **kwargs)`` on a worker thread; wait for it until
        the deadline.

        The worker runs in a copy of the caller's context, with the
        deadline set.  Exceptions from *fn* are raised as they are.

        Raises:
            TimeoutExceededError: If *fn* is still running at the deadline
                (it goes on running; see the warning above).

        .. versionadded:: 0.1.0
        """
        with deadline_scope(self.seconds, self.clock) as deadline:
            context = contextvars.copy_context()
        done = threading.Event()
        future = _WORKERS.submit(
            functools.partial(context.run, fn, *args, **kwargs)
        )
        future.add_done_callback(lambda _: done.set())
        wait_event(deadline.clock, done, deadline.at)
        if future.done():
            return future.result()
        raise self._exceeded()

    def __enter__(self) -> None:
        _Alarm.open(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _Alarm.close()

    # -- async ---------------------------------------------------------------

    async def __aenter__(self) -> None:
        """
        Cancel the block at the deadline (then raise
        :class:`~stalwart.TimeoutExceededError` from ``__aexit__``).

        With the system clock this is :func:`asyncio.timeout`.  With any
        other clock, which :func:`asyncio.timeout` cannot follow, a watcher
        task sleeps on the clock and cancels this task; counting
        cancellations, as :func:`asyncio.timeout` does, tells its cancel
        from the caller's.
        """
        scope = _AsyncScope()
        scope.deadline = enter_deadline(self.seconds, self.clock)[1]
        try:
            if isinstance(_target(self.clock), SystemClock):
                scope.limit = asyncio.timeout(self.seconds)
                await scope.limit.__aenter__()
            else:
                self._start_watch(scope)
        except BaseException:
            exit_deadline(scope.deadline)
            raise
        scope.token = _scopes.set(scope)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scope = _scopes.get()
        _scopes.reset(scope.token)
        try:
            if scope.limit is not None:
                try:
                    await scope.limit.__aexit__(exc_type, exc, tb)
                except TimeoutError as expired:
                    # asyncio.timeout raises only on its own expiry.
                    raise self._exceeded() from expired
            else:
                scope.watcher.cancel()
                # If the block swallowed our cancel, withdraw it all the same.
                if (
                    scope.fired
                    and scope.task.uncancel() <= scope.base
                    and exc_type is asyncio.CancelledError
                ):
                    raise self._exceeded() from exc
        finally:
            exit_deadline(scope.deadline)

    def _start_watch(self, scope: _AsyncScope) -> None:
        task = asyncio.current_task()
        if task is None:
            msg = "async with Timeout(...) must run in an asyncio task"
            raise RuntimeError(msg)
        scope.task = task
        scope.base = task.cancelling()
        scope.watcher = asyncio.ensure_future(self._watch(scope))

    async def _watch(self, scope: _AsyncScope) -> None:
        await self.clock.asleep(self.seconds)
        scope.fired = True
        scope.task.cancel()

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """
        Await ``fn(*args, **kwargs)``, cancelling it at the deadline.

        Raises:
            TimeoutExceededError: If the deadline came first.

        .. versionadded:: 0.1.0
        """
        async with self:
            return await fn(*args, **kwargs)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate a ``def`` (run through :meth:`call`) or an ``async def``
        (run through :meth:`acall`).

        .. versionadded:: 0.1.0
        """
        if inspect.iscoroutinefunction(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(afn, *args, **kwargs)

            return cast("Callable[P, T]", awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def _exceeded(self) -> TimeoutExceededError:
        with self._lock:
            self._timeouts[0] += 1
        if self.hooks:
            emit(
                self.hooks,
                TimeoutExceeded(
                    primitive_name=self.name,
                    at=self.clock.now(),
                    timeout=self.seconds,
                ),
            )
        return TimeoutExceededError(self.name, self.seconds)


class _Alarm:
    """
    One ``with Timeout(...)`` block on the main thread, armed with
    ``SIGALRM``.

    Blocks nest, so the open ones form a stack; only the main thread uses
    it, so it needs no lock.
    """

    _open: list[_Alarm] = []  # noqa: RUF012  # main thread only

    def __init__(self, timeout: Timeout) -> None:
        self.timeout = timeout
        self.closing = False
        self.scope: AbstractContextManager[Deadline] = deadline_scope(
            timeout.seconds, timeout.clock
        )
        self.started = 0.0
        self.previous: tuple[Any, float, float] | None = None

    @classmethod
    def open(cls, timeout: Timeout) -> None:
        if (
            threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer")
        ):
            raise RuntimeError(
                f"Timeout {timeout.name!r}: a sync `with` block can only be "
                "interrupted by SIGALRM, on the main thread of a POSIX "
                "system; use Timeout.call(fn, ...) to run the function on a "
                "worker thread instead"
            )
        clock = _target(timeout.clock)
        if not isinstance(clock, SystemClock):
            raise TypeError(
                f"Timeout {timeout.name!r}: a sync `with` block is "
                "interrupted by SIGALRM, which runs in real time and cannot "
                f"follow {clock!r}; use Timeout.call(fn, ...) instead"
            )
        alarm = cls(timeout)
        alarm.arm(clock)
        cls._open.append(alarm)

    @classmethod
    def close(cls) -> None:
        cls._open.pop().disarm()

    def arm(self, clock: Clock) -> None:
        self.scope.__enter__()
        self.started = clock.now()
        delay, interval = signal.getitimer(signal.ITIMER_REAL)
        if delay and delay <= self.timeout.seconds:
            # An enclosing alarm goes off first: leave it in charge.
            return
        self.previous = (signal.getsignal(signal.SIGALRM), delay, interval)
        signal.signal(signal.SIGALRM, self.on_alarm)
        # setitimer(0) would disarm; the smallest delay fires at once.
        signal.setitimer(signal.ITIMER_REAL, max(self.timeout.seconds, 1e-6))

    def on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if not self.closing:
            raise self.timeout._exceeded()

    def disarm(self) -> None:
        # An alarm that lands while the block is being left is ignored.
        self.closing = True
        try:
            if self.previous is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
                handler, delay, interval = self.previous
                signal.signal(
                    signal.SIGALRM,
                    signal.SIG_DFL if handler is None else handler,
                )
                if delay:
                    left = delay - (self.timeout.clock.now() - self.started)
                    signal.setitimer(
                        signal.ITIMER_REAL, max(left, 1e-6), interval
                    )
        finally:
            self.scope.__exit__(None, None, None)
