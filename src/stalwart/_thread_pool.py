"""
Thread-pool isolation: a bulkhead that runs sync callables on its own
bounded pool of threads, with a bounded queue.

Give each dependency its own pool, and a slow dependency can only exhaust
its own threads, never those of the others.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import threading

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock, wait_event
from ._core.bulkhead import BulkheadCore
from ._deadline import Deadline, current_deadline, wait_future
from ._errors import BulkheadFullError
from ._events import CallRejected, Hook, call_admitted, call_finished, emit
from ._faces import (
    awaitable_result_error,
    blocking_on_loop,
    generator_function_error,
    is_any_generator_function,
    is_async_callable,
    is_awaitable,
    on_loop_thread,
)
from ._observe import LiveHooks, Observable, live_hooks
from ._statistics import Statistics
from ._typing import P, T
from ._validators import (
    hooks,
    integer,
    non_empty_str,
    non_negative,
    number,
    positive,
    valid_clock,
    valid_hooks,
)


_KIND = "thread_pool_bulkhead"
"""The pool's kind in per-call events."""


@final
@attrs.frozen(kw_only=True)
class ThreadPoolBulkheadStatistics(Statistics):
    """
    A snapshot of a :class:`ThreadPoolBulkhead`'s counters.

    Attributes:
        name: The pool's name.
        running: Calls running on a worker thread now.
        queued: Calls accepted and waiting for a worker now.
        refused: Calls refused so far because the pool and its queue were
            full.
        high_water: The most calls ever accepted at once (running plus
            queued).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Carries the pool's *name*; its fields are keyword-only.
    """

    name: str
    running: int
    queued: int
    refused: int
    high_water: int


@final
@attrs.frozen(kw_only=True, eq=False)
class ThreadPoolBulkhead(Observable):
    """
    Run sync callables on a dedicated pool of *max_workers* threads.

    Up to *max_queue* more calls wait for a free thread; a call beyond that
    is refused at once with :class:`~stalwart.BulkheadFullError`.
    :meth:`call` submits and waits for the result; :meth:`acall` lets
    async code run a blocking function there without blocking its event
    loop.  The callable runs in a copy of the caller's context, so it sees
    the current deadline (:func:`~stalwart.remaining_time`).

    The pool's threads start on demand.  Shut it down with
    :meth:`shutdown`, or use the pool as a context manager; after that,
    calls raise :class:`RuntimeError`.  Abandoning an :meth:`acall`
    (cancellation) withdraws a call that has not started; one that is
    running cannot be stopped and keeps its thread until it returns.

    While a hook asks for per-call events (``add_hook(hook,
    per_call=True)``), each call a worker runs sends a
    :class:`~stalwart.CallAdmitted` when the worker starts it (its
    ``wait`` is the time it spent queued since it was submitted) and a
    :class:`~stalwart.CallFinished` when it ends (its ``duration`` is the
    time it ran), both from the worker thread, in the caller's context.

    Args:
        max_workers: How many threads run calls at once.
        max_queue: How many accepted calls may wait for a thread; ``None``
            for no limit.
        name: Used in errors, events and the threads' names.
        clock: Where event times are read.
        hooks: Receive a :class:`~stalwart.CallRejected` per refusal (more
            can be attached later with
            :meth:`~stalwart.Observable.add_hook`).

    .. versionadded:: 0.1.0
    """

    max_workers: int = attrs.field(validator=(number, integer, positive))
    max_queue: int | None = attrs.field(
        default=0, validator=(integer, non_negative)
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
    # Permits cover running and queued calls alike; nobody waits for one.
    # Built in __attrs_post_init__, once the settings are validated.
    _core: BulkheadCore[None] = attrs.field(init=False, repr=False)
    # Built in __attrs_post_init__, once the settings are validated.
    _executor: ThreadPoolExecutor = attrs.field(init=False, repr=False)
    _running: list[int] = attrs.field(
        init=False, repr=False, factory=lambda: [0]
    )
    # Held for O(1) bookkeeping only; never across user code.
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )
    _live: LiveHooks = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        live_hooks(self, self.hooks)
        executor = ThreadPoolExecutor(
            self.max_workers, thread_name_prefix=f"stalwart-{self.name}"
        )
        object.__setattr__(self, "_executor", executor)
        # The sum of ints, never int + inf: a huge int does not fit a float.
        admitted = (
            math.inf
            if self.max_queue is None
            else self.max_workers + self.max_queue
        )
        object.__setattr__(self, "_core", BulkheadCore(admitted, 0))

    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        """
        Hand ``fn(*args, **kwargs)`` to the pool without waiting.

        Returns:
            A :class:`concurrent.futures.Future` for the result.

        Raises:
            BulkheadFullError: If every thread is busy and the queue full.
            RuntimeError: If the pool is shut down.
            TypeError: If *fn* is an ``async`` function: coroutines belong
                on an event loop (use a :class:`~stalwart.Bulkhead`).

        .. versionadded:: 0.1.0
        """
        if is_async_callable(fn):
            raise self._async_misuse(fn)
        with self._lock:
            admitted = self._core.try_enter()
            if not admitted:
                self._core.refuse()
        if not admitted:
            raise self._refusal()
        context = contextvars.copy_context()
        job = functools.partial(fn, *args, **kwargs)
        try:
            if self._live.calls:
                future = self._executor.submit(
                    context.run, self._observed_run, job, self.clock.now()
                )
            else:
                future = self._executor.submit(self._run, context, job)
        except RuntimeError:
            self._release()
            msg = f"ThreadPoolBulkhead {self.name!r} is shut down"
            raise RuntimeError(msg) from None
        # _run gives the permit back before the result is visible, so a
        # caller that saw its result can call again at once; a call
        # withdrawn before it started never runs _run.
        future.add_done_callback(self._release_if_cancelled)
        return future

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run ``fn(*args, **kwargs)`` on the pool and wait for its result.

        The wait ends at the current deadline
        (:func:`~stalwart.current_deadline`): a call still queued then is
        withdrawn and refused with :class:`~stalwart.BulkheadFullError`;
        one already running goes on, and the caller gets the deadline's
        :class:`~stalwart.TimeoutExceededError`.

        Raises:
            BulkheadFullError: If every thread is busy and the queue full,
                or the call was still queued at the deadline.
            TimeoutExceededError: If the call was running at the deadline.
            TypeError: If *fn* is ``async`` or returned something
                awaitable.
            RuntimeError: If called on the thread of a running event
                loop, which it would block; use :meth:`acall`.

        .. versionadded:: 0.1.0
        """
        if on_loop_thread():
            raise blocking_on_loop(
                "ThreadPoolBulkhead", self.name, "call()", "await pool.acall()"
            )
        future = self.submit(fn, *args, **kwargs)
        deadline = current_deadline()
        try:
            if deadline is None:
                return self._checked(future.result())
            done = threading.Event()
            future.add_done_callback(lambda _: done.set())
            wait_event(deadline.clock, done, deadline.at)
        except BaseException:
            # Interrupted while waiting: withdraw the call if it has not
            # started (it has finished if the exception is its own).
            future.cancel()
            raise
        return self._checked(self._at_deadline(future, deadline))

    async def acall(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run the blocking ``fn(*args, **kwargs)`` on the pool and await its
        result without blocking the event loop.

        Cancelling the awaiting task withdraws the call if it has not
        started; the current deadline ends the wait as in :meth:`call`.

        Raises:
            BulkheadFullError: If every thread is busy and the queue full,
                or the call was still queued at the deadline.
            TimeoutExceededError: If the call was running at the deadline.
            TypeError: If *fn* is ``async`` or returned something
                awaitable.

        .. versionadded:: 0.1.0
        """
        future = self.submit(fn, *args, **kwargs)
        deadline = current_deadline()
        if deadline is None:
            return self._checked(await asyncio.wrap_future(future))
        try:
            await wait_future(
                asyncio.wrap_future(future),
                deadline.clock,
                max(0.0, deadline.remaining()),
            )
        except BaseException:
            future.cancel()
            raise
        return self._checked(self._at_deadline(future, deadline))

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate a ``def`` so that each call runs on the pool.

        Raises:
            TypeError: If *fn* is an ``async def`` (coroutines belong on an
                event loop, not on a thread pool) or a generator function
                of either kind (the pool would only create the generator;
                its steps would run in the caller's thread).

        .. versionadded:: 0.1.0
        """
        if is_any_generator_function(fn):
            raise generator_function_error(
                "ThreadPoolBulkhead",
                self.name,
                fn,
                "only its creation would run on the pool, never its steps",
            )
        if is_async_callable(fn):
            raise self._async_misuse(fn)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call(fn, *args, **kwargs)

        return wrapper

    def statistics(self) -> ThreadPoolBulkheadStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            snap = self._core.snapshot()
            running = self._running[0]
        return ThreadPoolBulkheadStatistics(
            name=self.name,
            running=running,
            queued=snap.in_flight - running,
            refused=snap.refused,
            high_water=snap.high_water,
        )

    def shutdown(
        self, *, wait: bool = True, cancel_pending: bool = False
    ) -> None:
        """
        Stop accepting calls and let the threads exit.

        Args:
            wait: Block until the running and queued calls are done.
            cancel_pending: Withdraw the queued calls that have not started.

        .. versionadded:: 0.1.0
        """
        self._executor.shutdown(wait=wait, cancel_futures=cancel_pending)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.shutdown()

    def _run(self, context: contextvars.Context, job: Callable[[], T]) -> T:
        with self._lock:
            self._running[0] += 1
        try:
            return context.run(job)
        finally:
            with self._lock:
                self._running[0] -= 1
                self._core.exit()

    def _observed_run(self, job: Callable[[], T], submitted: float) -> T:
        """
        :meth:`_run` for a call submitted at *submitted* while a hook asked
        for per-call events (on the worker, in the caller's context): report
        its wait and its outcome.
        """
        calls, clock = self._live.calls_now, self.clock
        error: BaseException | None = None
        start = clock.now()
        with self._lock:
            self._running[0] += 1
        try:
            emit(
                calls,
                call_admitted(self.name, start, _KIND, start - submitted),
            )
            return job()
        except BaseException as exc:
            error = exc
            raise
        finally:
            with self._lock:
                self._running[0] -= 1
                self._core.exit()
            now = clock.now()
            if error is None:
                outcome = "success"
            elif isinstance(error, Exception):
                outcome = "failure"
            else:
                outcome = "ignored"
            emit(
                calls,
                call_finished(
                    self.name, now, _KIND, outcome, now - start, error
                ),
            )
            del error  # no frame <-> traceback cycle left to the GC

    def _release_if_cancelled(self, future: Future[Any]) -> None:
        if future.cancelled():
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._core.exit()

    def _at_deadline(self, future: Future[T], deadline: Deadline) -> T:
        """
        The wait for *future* ended at *deadline*, or because it is done.
        """
        if not future.done() and future.cancel():
            # Still queued: withdrawn, and refused.
            with self._lock:
                self._core.refuse()
            raise self._refusal()
        if not future.done():
            # Running: it goes on, and the caller stops waiting.
            raise deadline.cut()
        return future.result()

    def _checked(self, result: T) -> T:
        if is_awaitable(result):
            raise awaitable_result_error(
                "ThreadPoolBulkhead", self.name, "call()", "acall()", result
            )
        return result

    def _async_misuse(self, fn: object) -> TypeError:
        return TypeError(
            f"ThreadPoolBulkhead {self.name!r} runs blocking functions, not"
            f" the async {fn!r}: coroutines belong on an event loop; use a"
            " Bulkhead for an async def"
        )

    def _refusal(self) -> BulkheadFullError:
        error = BulkheadFullError(self.name, self.max_workers)
        if self._live.all:
            emit(
                self._live.all,
                CallRejected(
                    primitive_name=self.name, at=self.clock.now(), error=error
                ),
            )
        return error
