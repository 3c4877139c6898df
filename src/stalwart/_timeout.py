"""
Timeout: give up on a call at its deadline, and tell nested code about it.

Each face does what Python allows, and no more:

* async (``async with``, :meth:`Timeout.acall`, the decorator on
  ``async def``): the awaited work is cancelled at the deadline;
* sync (:meth:`Timeout.call`, the decorator on ``def``): the function runs
  on a worker thread and the caller stops waiting at the deadline; the
  thread cannot be killed, so the function should watch the deadline;
* ``with`` on the main thread: ``SIGALRM`` interrupts the block.

Every entry (a call, a block) has a state of its own, the *owner* of the
deadline it sets.  The deadline belongs to that entry wherever it runs: an
``async with`` block in an async generator stepped from several tasks is
cancelled in the task that runs it at the deadline, and a block suspended
at a ``yield`` is not interrupted (the code that stepped the generator is
not the block's) until it runs again.  Code cut short by an enclosing,
shorter deadline raises that deadline's error, and only the timeout whose
deadline it was counts it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import gc
import inspect
import queue
import signal
import sys
import threading
import warnings

from collections.abc import AsyncGenerator, Awaitable, Callable
from concurrent.futures import Future
from datetime import timedelta
from types import (
    AsyncGeneratorType,
    CoroutineType,
    FrameType,
    GeneratorType,
    TracebackType,
)
from typing import Any, ClassVar, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock, DefaultClock, SystemClock, wait_event
from ._deadline import Deadline, enter_deadline, exit_deadline
from ._errors import TimeoutExceededError
from ._events import (
    Hook,
    TimeoutExceeded,
    call_finished,
    emit,
    hook_failed,
)
from ._faces import (
    Blocks,
    awaitable_result_error,
    blocking_on_loop,
    caller,
    generator_function_error,
    guard_async_generator,
    is_async_callable,
    is_async_generator_function,
    is_awaitable,
    is_generator_function,
    not_awaitable_error,
)
from ._observe import LiveHooks, Observable, live_hooks
from ._statistics import Statistics
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

# A block whose deadline passed while it was suspended at a `yield` is
# looked at again after these many seconds of its clock, doubling up to the
# maximum, until it runs (and is interrupted) or ends.
_POLL_FIRST = 0.001
_POLL_MAX = 0.1

# The longest delay given to setitimer(): longer deadlines are armed in
# steps (the platform's limit is about 9.2e9 s).
_ITIMER_MAX = 1e9


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
_SYSTEM = SystemClock()
_running_loop = asyncio.events._get_running_loop


def _target(clock: Clock) -> Clock:
    return clock.target if isinstance(clock, DefaultClock) else clock


def _seconds(value: float | timedelta) -> float:
    """
    Converter: like :func:`~stalwart._validators.seconds`, with ``-0.0``
    read as ``0.0`` (it would read "after -0s" in errors).
    """
    converted = seconds(value)
    return converted + 0.0 if type(converted) is float else converted


def _next_poll(poll: float) -> float:
    return _POLL_FIRST if not poll else min(2 * poll, _POLL_MAX)


@final
@attrs.frozen(kw_only=True)
class TimeoutStatistics(Statistics):
    """
    A snapshot of a :class:`Timeout`'s counters.

    Attributes:
        name: The timeout's name.
        timeouts: Calls given up at their deadline so far.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Carries the timeout's *name*; its fields are keyword-only.
    """

    name: str
    timeouts: int


# -- the state of one entry ----------------------------------------------------


class _Entry:
    """
    One call or block under a :class:`Timeout`: the owner of the deadline
    it sets.
    """

    __slots__ = ("deadline", "start", "timeout")

    deadline: Deadline

    def __init__(self, timeout: Timeout) -> None:
        self.timeout = timeout
        # When it started, read only while a hook asks for per-call events
        # (None otherwise: the entry is not reported).
        self.start = timeout.clock.now() if timeout._live.calls else None

    def cut(self) -> TimeoutExceededError:
        """
        Return the error for code cut short by this entry's deadline; the
        entry counts it when the error reaches it.
        """
        error = TimeoutExceededError(self.timeout.name, self.timeout.seconds)
        error.__dict__["_cut_by"] = self
        return error


def _cut_by(exc: BaseException) -> object:
    return exc.__dict__.get("_cut_by")


class _Block(_Entry):
    """One ``async with`` block (or ``acall``), cancelled at its deadline."""

    __slots__ = (
        "base",
        "expired",
        "fired",
        "frame",
        "handle",
        "loop",
        "poll",
        "target",
        "task",
    )

    handle: asyncio.TimerHandle | asyncio.Task[None]
    target: asyncio.Task[Any]
    base: int

    def __init__(
        self,
        timeout: Timeout,
        frame: FrameType,
        task: asyncio.Task[Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(timeout)
        self.frame = frame
        self.task = task
        self.loop = loop
        # fired: a task was cancelled for this block; expired: the
        # deadline passed while no task ran the block.
        self.fired = False
        self.expired = False
        self.poll = 0.0


class _Alarm(_Entry):
    """One sync ``with`` block, interrupted by ``SIGALRM``."""

    __slots__ = ("at", "expired", "fired", "frame", "poll")

    def __init__(self, timeout: Timeout, frame: FrameType) -> None:
        super().__init__(timeout)
        self.frame = frame
        self.at = 0.0
        self.fired = False
        self.expired = False
        self.poll = 0.0


@final
@attrs.frozen(kw_only=True, eq=False)
class Timeout(Observable):
    """
    Give up on a call that takes longer than *seconds*.

    While the call runs, the deadline travels with it
    (:func:`~stalwart.current_deadline`, :func:`~stalwart.remaining_time`):
    waits inside stalwart never go past it, and the call's own code can
    read it to stop in time.  Nested timeouts can only shorten it: a call
    or block inside a shorter enclosing deadline is cut short at that
    deadline, raising its error, and only the timeout whose deadline it
    was counts a timeout.

    * ``async with timeout:``, ``await timeout.acall(fn)`` and the
      decorator on ``async def`` cancel the awaited work at the deadline
      and raise :class:`~stalwart.TimeoutExceededError` (also a
      :class:`TimeoutError`).  The caller's own cancellation stays a
      cancellation.  The deadline belongs to the block: in an async
      generator stepped from several tasks, the task running the block at
      the deadline is cancelled; a block suspended at a ``yield`` is left
      alone and cancelled once it runs again.  The decorator on an async
      generator function guards the whole iteration that way.
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

    While a hook asks for per-call events (``add_hook(hook,
    per_call=True)``), each call or block ends with a
    :class:`~stalwart.CallFinished`: ``"success"``, ``"failure"`` (an
    :class:`Exception`; a timeout is a failure carrying its
    :class:`~stalwart.TimeoutExceededError`) or ``"ignored"`` (a
    ``BaseException`` such as the caller's own cancellation).

    Args:
        seconds: The time limit, in seconds.
        name: Used in errors and events.
        clock: Where the deadline is measured.  The ``with`` face needs the
            system clock, since signals run in real time.
        hooks: Receive a :class:`~stalwart.TimeoutExceeded` per timeout
            (more can be attached later with
            :meth:`~stalwart.Observable.add_hook`).

    .. versionadded:: 0.1.0
    """

    seconds: float = attrs.field(
        converter=_seconds,
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
    # The open `async with` blocks and sync `with` blocks, by frame.
    _blocks: Blocks[_Block] = attrs.field(
        init=False, repr=False, factory=Blocks
    )
    _alarms: Blocks[_Alarm] = attrs.field(
        init=False, repr=False, factory=Blocks
    )
    _live: LiveHooks = attrs.field(init=False, repr=False)

    _kind: ClassVar[str] = "Timeout"

    def __attrs_post_init__(self) -> None:
        live_hooks(self, self.hooks)
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
            timeouts = self._timeouts[0]
        return TimeoutStatistics(name=self.name, timeouts=timeouts)

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
            TypeError: If *fn* is an ``async`` function or returned
                something awaitable; use :meth:`acall`.
            RuntimeError: If called on a thread running an event loop,
                which it would block; use :meth:`acall`.

        .. versionadded:: 0.1.0
        """
        if _running_loop() is not None:
            raise blocking_on_loop(
                "Timeout", self.name, "call()", "await timeout.acall()"
            )
        if is_async_callable(fn):
            raise TypeError(
                f"Timeout {self.name!r}: call() was given the async function"
                f" {fn!r}; use acall() for async functions"
            )
        entry = _Entry(self)
        deadline = entry.deadline = enter_deadline(
            self.seconds, self.clock, entry
        )
        try:
            context = contextvars.copy_context()
        finally:
            exit_deadline(deadline)
        done = threading.Event()
        future = _WORKERS.submit(
            functools.partial(context.run, fn, *args, **kwargs)
        )
        future.add_done_callback(lambda _: done.set())
        wait_event(deadline.clock, done, deadline.at)
        if not future.done():
            error = self._give_up(entry)
            if entry.start is not None:
                self._finished(entry, error)
            raise error
        try:
            result = future.result()
        except TimeoutExceededError as exc:
            self._settle(entry, exc)
            if entry.start is not None:
                self._finished(entry, exc)
            raise
        except BaseException as exc:
            if entry.start is not None:
                self._finished(entry, exc)
            raise
        if type(result) is CoroutineType or is_awaitable(result):
            raise awaitable_result_error(
                "Timeout", self.name, "call()", "acall()", result
            )
        if entry.start is not None:
            self._finished(entry, None)
        return result

    def __enter__(self) -> None:
        frame = caller(1)
        self._alarms.push(frame, self._open_alarm(frame))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close_alarm(self._alarms.pop(caller(1)), exc)

    def _open_alarm(self, frame: FrameType) -> _Alarm:
        if (
            threading.current_thread() is not threading.main_thread()
            or not hasattr(signal, "setitimer")
        ):
            raise RuntimeError(
                f"Timeout {self.name!r}: a sync `with` block can only be "
                "interrupted by SIGALRM, on the main thread of a POSIX "
                "system; use Timeout.call(fn, ...) to run the function on a "
                "worker thread instead"
            )
        if _running_loop() is not None:
            raise RuntimeError(
                f"Timeout {self.name!r}: a sync `with` block on the thread"
                " of a running event loop would be interrupted by SIGALRM"
                " wherever the loop is at the deadline (in another task,"
                " say); in async code use `async with timeout:`"
            )
        clock = _target(self.clock)
        if not isinstance(clock, SystemClock):
            raise TypeError(
                f"Timeout {self.name!r}: a sync `with` block is "
                "interrupted by SIGALRM, which runs in real time and cannot "
                f"follow {clock!r}; use Timeout.call(fn, ...) instead"
            )
        alarm = _Alarm(self, frame)
        _ALARMS.enter(alarm)
        return alarm

    def _close_alarm(self, alarm: _Alarm, exc: BaseException | None) -> None:
        _ALARMS.leave(alarm)
        if alarm.fired:
            # Its error is on its way (it is exc), or was handled in the
            # block.
            if alarm.start is not None:
                self._finished(alarm, exc)
            return
        if exc is not None:
            self._settle(alarm, exc)
        elif alarm.expired:
            # The deadline passed while the block was suspended at a
            # `yield`, and it ended before it could be interrupted.
            exc = self._own_error(alarm)
            if alarm.start is not None:
                self._finished(alarm, exc)
            raise exc
        if alarm.start is not None:
            self._finished(alarm, exc)

    # -- async ---------------------------------------------------------------

    async def __aenter__(self) -> None:
        """
        Cancel the block at the deadline (then raise
        :class:`~stalwart.TimeoutExceededError` from ``__aexit__``).

        With the system clock, a timer of the event loop fires at the
        deadline; with any other clock, a watcher task sleeps on that
        clock.  Either then cancels the task that runs the block, and
        counting cancellations, as :func:`asyncio.timeout` does, tells its
        cancel from the caller's.
        """
        frame = caller(1)
        self._blocks.push(frame, self._astart(frame))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._afinish(self._blocks.pop(caller(1)), exc, late=True)

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
            TypeError: If *fn* did not return an awaitable; use
                :meth:`call`.

        .. versionadded:: 0.1.0
        """
        # This frame awaits fn's work: it is what the deadline looks for.
        block = self._astart(sys._getframe())
        try:
            awaitable = fn(*args, **kwargs)
        except BaseException as exc:
            self._afinish(block, exc)
            raise
        if type(awaitable) is not CoroutineType and not is_awaitable(
            awaitable
        ):
            self._aundo(block)
            raise not_awaitable_error(
                "Timeout", self.name, "acall()", "call()", awaitable
            )
        try:
            result = await awaitable
        except BaseException as exc:
            self._afinish(block, exc)
            raise
        self._afinish(block, None)
        return result

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate a ``def`` (run through :meth:`call`), an ``async def``
        (run through :meth:`acall`) or an async generator function (the
        whole iteration runs under one deadline, from its first step).

        Raises:
            TypeError: If *fn* is a generator function: a timeout cannot
                interrupt the steps of a sync generator.

        .. versionadded:: 0.1.0
        """
        if is_async_generator_function(fn):
            agen = cast("Callable[P, AsyncGenerator[Any, Any]]", fn)
            return cast("Callable[P, T]", guard_async_generator(self, agen))
        if is_generator_function(fn):
            raise generator_function_error(
                "Timeout",
                self.name,
                fn,
                "its steps run in the caller's thread, where a timeout cannot"
                " interrupt them; time the consumer with call() instead, or"
                " make it an async generator",
            )
        if is_async_callable(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(afn, *args, **kwargs)

            return cast("Callable[P, T]", awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def _astart(self, frame: FrameType) -> _Block:
        """
        Set the deadline of a block run by *frame* and arm its timer.
        """
        loop = _running_loop()
        task = None if loop is None else asyncio.current_task(loop)
        if loop is None or task is None:
            raise RuntimeError(
                f"Timeout {self.name!r}: async with / acall() must run in an"
                " asyncio task"
            )
        block = _Block(self, frame, task, loop)
        block.base = task.cancelling()
        deadline = block.deadline = enter_deadline(
            self.seconds, self.clock, block
        )
        try:
            # An enclosing deadline that is sooner cuts the block short.
            delay = (
                self.seconds
                if deadline._owner is block
                else deadline.remaining()
            )
            if isinstance(_target(self.clock), SystemClock):
                block.handle = loop.call_later(delay, self._fire_soon, block)
            else:
                block.handle = loop.create_task(self._watch(block, delay))
        except BaseException:
            exit_deadline(deadline)
            raise
        return block

    def _fire_soon(self, block: _Block) -> None:
        if self._fire(block):
            block.handle = block.loop.call_later(
                block.poll, self._fire_soon, block
            )

    async def _watch(self, block: _Block, delay: float) -> None:
        await self.clock.asleep(delay)
        while self._fire(block):
            await self.clock.asleep(block.poll)

    def _fire(self, block: _Block) -> bool:
        """
        The deadline of *block* has come: cancel the task that runs it.

        Returns:
            ``True`` if no task runs it (it is suspended at a ``yield``),
            so it must be looked at again later.
        """
        task = _driver(block)
        if task is None and not (
            block.frame.f_code.co_flags & inspect.CO_ASYNC_GENERATOR
        ):
            # A coroutine's frame is suspended only in an await: whoever
            # drives it hides it (an awaitable stalwart cannot look into).
            task = block.task
        if task is None or task.done():
            # Suspended at a `yield`: the code running now is not the
            # block's.  Look again later.
            block.expired = True
            block.poll = _next_poll(block.poll)
            return True
        owner = block.deadline._owner
        if (
            type(owner) is _Block
            and owner is not block
            and owner.fired
            and owner.target is task
        ):
            return False  # the enclosing block's timeout cancels the task
        block.fired = True
        block.target = task
        if task is not block.task:
            # Counted from now: a cancel it had before is not ours to
            # judge (for the entering task, from its entry).
            block.base = task.cancelling()
        task.cancel()
        return False

    def _afinish(
        self, block: _Block, exc: BaseException | None, *, late: bool = False
    ) -> None:
        """
        End *block*: disarm it, restore the deadline, and turn its own
        cancellation into :class:`~stalwart.TimeoutExceededError`; with
        *late* (an ``async with`` block), also a deadline that passed
        while the block was suspended at a ``yield``, before it could be
        cancelled.
        """
        block.handle.cancel()
        exit_deadline(block.deadline)
        if (
            block.fired
            and block.target.uncancel() <= block.base
            and isinstance(exc, asyncio.CancelledError)
        ):
            error = self._give_up(block)
            if block.start is not None:
                self._finished(block, error)
            raise error from exc
        if exc is not None:
            self._settle(block, exc)
        elif late and block.expired and not block.fired:
            exc = self._give_up(block)
            if block.start is not None:
                self._finished(block, exc)
            raise exc
        if block.start is not None:
            self._finished(block, exc)

    def _aundo(self, block: _Block) -> None:
        block.handle.cancel()
        exit_deadline(block.deadline)

    # -- the guard protocol (stalwart._faces.Guard) ---------------------------

    def _enter(self) -> _Alarm:
        return self._open_alarm(caller(1))

    async def _aenter(self) -> _Block:
        return self._astart(caller(1))

    def _exit(
        self, token: _Alarm, exc: BaseException | None, result: object
    ) -> None:
        self._close_alarm(token, exc)

    async def _aexit(
        self, token: _Block, exc: BaseException | None, result: object
    ) -> None:
        self._afinish(token, exc)

    def _undo(self, token: _Alarm | _Block) -> None:
        if type(token) is _Block:
            self._aundo(token)
        else:
            _ALARMS.leave(cast("_Alarm", token))

    # -- outcomes --------------------------------------------------------------

    def _give_up(self, entry: _Entry) -> TimeoutExceededError:
        """
        Return the error for *entry*, at its deadline: its own, counted,
        or the error of the enclosing deadline that cut it short.
        """
        if entry.deadline._owner is not entry:
            return entry.deadline.cut()
        return self._own_error(entry)

    def _own_error(self, entry: _Entry) -> TimeoutExceededError:
        self._count(entry)
        return TimeoutExceededError(self.name, self.seconds)

    def _settle(self, entry: _Entry, exc: BaseException) -> None:
        """
        Count the error that an inner call cut short at *entry*'s deadline
        raised, when it reaches *entry*.
        """
        if type(exc) is TimeoutExceededError and _cut_by(exc) is entry:
            self._count(entry)

    def _count(self, entry: _Entry) -> None:
        # Each entry ends once, on one path: it is counted at most once.
        with self._lock:
            self._timeouts[0] += 1
        if self._live.all:
            emit(
                self._live.all,
                TimeoutExceeded(
                    primitive_name=self.name,
                    at=self.clock.now(),
                    timeout=self.seconds,
                ),
            )

    def _finished(self, entry: _Entry, exc: BaseException | None) -> None:
        """
        Send the :class:`~stalwart.CallFinished` of *entry*, timed since
        it started, which ended with *exc* (``None``: a success).
        """
        now = self.clock.now()
        if exc is None:
            outcome = "success"
        else:
            outcome = "failure" if isinstance(exc, Exception) else "ignored"
        event = call_finished(
            self.name,
            now,
            "timeout",
            outcome,
            now - cast("float", entry.start),
            exc,
        )
        # The snapshot, iterated inline: emit()'s contract without its frame.
        for hook in self._live.calls_now:
            try:
                hook(event)
            except Exception:
                hook_failed(hook, event)


# -- which task runs a block ---------------------------------------------------


async def _agen() -> AsyncGenerator[None, None]:
    yield  # pragma: no cover  # never run: only its step types are read


_AGEN = _agen()
# The awaitables that step an async generator (`anext()`, `asend()`,
# `athrow()`, `aclose()`); they hold the generator but do not expose it.
_AGEN_STEPS = (type(_AGEN.asend(None)), type(_AGEN.aclose()))
del _AGEN


def _runs(task: asyncio.Task[Any], frame: FrameType) -> bool:
    """
    Tell whether *frame* is on the chain of awaits that *task* is
    suspended in.
    """
    obj: object = task.get_coro()
    while obj is not None:
        kind = type(obj)
        if kind is CoroutineType:
            coro = cast("CoroutineType[Any, Any, Any]", obj)
            if coro.cr_frame is frame:
                return True
            obj = coro.cr_await
        elif kind is AsyncGeneratorType:
            agen = cast("AsyncGeneratorType[Any, Any]", obj)
            if not agen.ag_running:
                return False  # suspended at a `yield`: nobody runs it
            if agen.ag_frame is frame:
                return True
            obj = agen.ag_await
        elif kind is GeneratorType:
            # A generator-based coroutine: it holds no `async with` block.
            obj = cast("GeneratorType[Any, Any, Any]", obj).gi_yieldfrom
        elif kind in _AGEN_STEPS:
            obj = next(
                (
                    held
                    for held in gc.get_referents(obj)
                    if type(held) is AsyncGeneratorType
                ),
                None,
            )
        else:
            return False  # a future, or an awaitable we cannot look into
    return False


def _driver(block: _Block) -> asyncio.Task[Any] | None:
    """
    Return the task that runs *block* now, or ``None`` if none does.
    """
    if not block.task.done() and _runs(block.task, block.frame):
        return block.task
    for task in asyncio.all_tasks(block.loop):
        if task is not block.task and _runs(task, block.frame):
            return task
    return None


# -- SIGALRM ------------------------------------------------------------------


class _AlarmClock:
    """
    The open sync ``with`` blocks of every :class:`Timeout`, armed with the
    one ``SIGALRM`` timer of the process.

    The timer is set for the soonest deadline of the blocks still open, so
    blocks may end in any order (generators stepped alternately): each
    takes its own deadline away.  At a deadline the block is interrupted
    only if it is running (its frame is on the stack); one suspended at a
    ``yield`` is looked at again until it runs or ends.  The handler and
    timer found when the first block opened are put back when the last one
    ends, and that outer alarm still goes off at its time meanwhile.

    Only the main thread uses it, so it needs no lock; a signal that lands
    while a block is being opened or closed is held until that is done.
    """

    def __init__(self) -> None:
        self.blocks: list[_Alarm] = []
        # The handler, due time and interval found when the first block
        # opened.
        self.outside: tuple[Any, float | None, float] | None = None
        self.busy = False
        self.pending = False

    def enter(self, alarm: _Alarm) -> None:
        """
        Open *alarm*: set its deadline and arm the timer.
        """
        timeout = alarm.timeout
        self.busy = True
        try:
            alarm.deadline = enter_deadline(
                timeout.seconds, timeout.clock, alarm
            )
            try:
                # Its own deadline: an enclosing block has its own alarm.
                now = _SYSTEM.now()
                alarm.at = now + timeout.seconds
                if not self.blocks:
                    self._take_over(now)
                self.blocks.append(alarm)
                self._arm(now)
            except BaseException:
                # Arming failed: leave nothing behind.
                self._drop(alarm)
                raise
        finally:
            self._done()

    def leave(self, alarm: _Alarm) -> None:
        """
        Close *alarm*: take its deadline away and re-arm for the others.
        """
        self.busy = True
        try:
            self._drop(alarm)
        finally:
            self._done()

    def _drop(self, alarm: _Alarm) -> None:
        if alarm in self.blocks:
            self.blocks.remove(alarm)
            if self.blocks:
                self._arm(_SYSTEM.now())
            else:
                self._give_back(_SYSTEM.now())
        exit_deadline(alarm.deadline)

    def _done(self) -> None:
        self.busy = False
        if self.pending:
            # A signal came while we were busy: look again at once.
            self.pending = False
            if self.blocks:
                signal.setitimer(signal.ITIMER_REAL, 1e-6)

    def _outside(self) -> tuple[Any, float | None, float]:
        # Set while any block is open, which is whenever this is called.
        return cast("tuple[Any, float | None, float]", self.outside)

    def _take_over(self, now: float) -> None:
        handler = signal.getsignal(signal.SIGALRM)
        delay, interval = signal.getitimer(signal.ITIMER_REAL)
        signal.signal(signal.SIGALRM, self._on_alarm)
        self.outside = (handler, now + delay if delay else None, interval)

    def _give_back(self, now: float) -> None:
        handler, due, interval = self._outside()
        self.outside = None
        signal.signal(
            signal.SIGALRM, signal.SIG_DFL if handler is None else handler
        )
        signal.setitimer(signal.ITIMER_REAL, 0)
        if due is not None:
            signal.setitimer(
                signal.ITIMER_REAL, max(due - now, 1e-6), interval
            )

    def _arm(self, now: float) -> None:
        soonest = None
        for alarm in self.blocks:
            if not alarm.fired:
                at = now + alarm.poll if alarm.expired else alarm.at
                if soonest is None or at < soonest:
                    soonest = at
        due = self._outside()[1]
        if due is not None and (soonest is None or due < soonest):
            soonest = due
        if soonest is None:
            signal.setitimer(signal.ITIMER_REAL, 0)
        else:
            delay = min(max(soonest - now, 1e-6), _ITIMER_MAX)
            signal.setitimer(signal.ITIMER_REAL, delay)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self.busy:
            self.pending = True
            return
        self.busy = True
        try:
            self._ring(signum, frame)
        finally:
            self._done()

    def _ring(self, signum: int, frame: FrameType | None) -> None:
        now = _SYSTEM.now()
        on_stack = set()
        here = frame
        while here is not None:
            on_stack.add(here)
            here = here.f_back
        running: list[_Alarm] = []
        for alarm in self.blocks:
            if alarm.fired or now < alarm.at:
                continue
            if alarm.frame in on_stack:
                running.append(alarm)
            else:
                # Suspended at a `yield`: the code running now is not the
                # block's.  Look again later.
                alarm.expired = True
                alarm.poll = _next_poll(alarm.poll)
        if running:
            # The deadline that came first is the one that cut the code.
            first = min(running, key=lambda alarm: alarm.at)
            first.fired = True
            self._arm(now)
            raise first.timeout._own_error(first)
        handler, due, interval = self._outside()
        if due is not None and now >= due:
            self.outside = (
                handler,
                due + interval if interval else None,
                interval,
            )
            self._arm(now)
            self._ring_outside(handler, signum, frame)
            return
        self._arm(now)

    def _ring_outside(
        self, handler: Any, signum: int, frame: FrameType | None
    ) -> None:
        """
        Do what the handler found when the first block opened would have
        done with its alarm.
        """
        if callable(handler):
            handler(signum, frame)
        elif handler != signal.SIG_IGN:  # pragma: no cover  # in a subprocess
            # SIG_DFL: the process ends, as it would have without us
            # (test_earlier_default_alarm_ends_the_process, whose process
            # coverage does not follow).
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGALRM)


_ALARMS = _AlarmClock()
