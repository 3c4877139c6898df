"""
AdaptiveBulkhead: a bulkhead whose limit finds itself.

The limit moves between *min_limit* and *max_limit* as calls end: each
finished call is a sample (its latency, the calls in flight when it was
admitted, whether it signals overload) fed to a pure algorithm
(:mod:`stalwart._core.adaptive`: AIMD or Gradient) under the lock, and the
limit it returns is the core's (:mod:`stalwart._core.bulkhead`) from then
on: a higher one serves the waiters that now fit, a lower one refuses
newcomers until enough calls have ended.

Waiting, refusals and the explicit steps' bookkeeping are those of every
bulkhead (:mod:`stalwart._permits`).  Every face times its calls, so the
per-call events cost only the events themselves: the ``with`` faces keep
each block's start under the frame that entered it (blocks that end out of
order each find their own), the decorator in its locals, the guard steps
(``call`` / ``acall``, generator functions, :class:`~stalwart.Pipeline`)
in their token, and the explicit steps by permit.
"""

from __future__ import annotations

import functools

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from types import CoroutineType, TracebackType
from typing import Any, ClassVar, Literal, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock
from ._core.adaptive import AIMD, Gradient, free_in
from ._core.bulkhead import BulkheadCore
from ._errors import BulkheadFullError, RejectedError
from ._events import Hook, LimitChanged, emit
from ._faces import (
    PLAIN,
    Blocks,
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
    holder,
)
from ._statistics import Statistics
from ._typing import P, Seconds, T
from ._validators import (
    ExceptionFilter,
    collect,
    duration,
    exception_filter,
    finite,
    hooks,
    integer,
    le,
    non_empty_str,
    non_negative,
    number,
    optional_duration,
    optional_seconds,
    positive,
    seconds,
    sync_callable,
    valid_clock,
    valid_exception_filter,
    valid_hooks,
)
from ._waiters import MAX_WAIT, Default, Waiter, queue_wait


_Outcome = Literal["success", "dropped", "ignored"]
_OUTCOMES = ("success", "dropped", "ignored")
# What a CallFinished says of each outcome of release().
_REPORTED = {"success": "success", "dropped": "failure", "ignored": "ignored"}


# The default of ``_end(dropped=...)``: classify the call by its outcome.
_CLASSIFY: Any = object()


# -- the algorithms -------------------------------------------------------------


@final
@attrs.frozen(kw_only=True)
class AIMDLimit:
    """
    Additive increase, multiplicative decrease (TCP's loss-based
    controller, as in Netflix concurrency-limits' ``AIMDLimit``): each call
    that ends well adds one to the limit while at least half of it is in
    use; a dropped call (see :class:`AdaptiveBulkhead`'s *drop_on*)
    multiplies it by *backoff_ratio*, rounding down, once per overload:
    only calls admitted after the last cut can cut it again.

    AIMD needs drops to find the limit, so it saw-tooths around the point
    where the downstream starts refusing or timing out.

    Args:
        backoff_ratio: What a drop multiplies the limit by; in (0, 1).
        timeout: A call slower than this, in seconds, counts as dropped;
            ``None``: only the outcomes do.

    .. versionadded:: 0.2.0
    """

    backoff_ratio: float = attrs.field(
        default=0.9, validator=[number, positive, le(0.999_999)]
    )
    timeout: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, positive, finite],
    )


@final
@attrs.frozen(kw_only=True)
class GradientLimit:
    """
    Latency-based (the update of Netflix concurrency-limits'
    ``Gradient2Limit``, on a no-load latency measured as in ``VegasLimit``
    and Envoy's adaptive concurrency filter): calls are summarised in
    windows of at least *window* seconds and *window_samples* calls; at
    the end of each, with ``rtt`` the window's mean latency and
    ``rtt_noload`` the latency without queueing::

        gradient = clamp(rtt_noload / rtt, 0.5, 1.0)
        target   = estimate * gradient + queue_size   # estimate / 2 after a drop
        estimate = estimate * (1 - smoothing) + target * smoothing
        limit    = floor(clamp(estimate, min_limit, max_limit))

    ``rtt_noload`` is measured at start-up and then every
    *probe_interval* seconds: the limit drops to *min_limit* until
    *probe_samples* calls admitted at that concurrency have ended, and
    their mean latency becomes ``rtt_noload``.  With
    ``probe_interval=None`` it is the fastest window seen.  For a
    downstream that serves ``C`` calls at once and queues the rest, the
    limit settles near ``C + queue_size``.

    Args:
        smoothing: How far each window moves the estimate; in (0, 1].
        queue_size: The headroom added to each target, in calls.
        window: The shortest window, in seconds.
        window_samples: The fewest calls in a window.
        probe_interval: Seconds between measures of the no-load latency;
            ``None``: never probe.
        probe_samples: Calls a probe measures.

    .. versionadded:: 0.2.0
    """

    smoothing: float = attrs.field(
        default=0.2, validator=[number, positive, le(1)]
    )
    queue_size: float = attrs.field(
        default=4.0, validator=[number, non_negative, finite]
    )
    window: float = attrs.field(
        default=1.0,
        converter=seconds,
        validator=[duration, non_negative, finite],
    )
    window_samples: int = attrs.field(
        default=10, validator=[number, integer, positive]
    )
    probe_interval: float | None = attrs.field(
        default=60.0,
        converter=optional_seconds,
        validator=[optional_duration, positive, finite],
    )
    probe_samples: int = attrs.field(
        default=10, validator=[number, integer, positive]
    )


def _algorithm(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, AIMDLimit | GradientLimit):
        msg = (
            f"{attr.name!r} must be a stalwart.AIMDLimit or a"
            f" stalwart.GradientLimit (got {value!r})"
        )
        raise TypeError(msg)


# -- statistics ---------------------------------------------------------------


@final
@attrs.frozen(kw_only=True)
class AdaptiveBulkheadStatistics(Statistics):
    """
    A snapshot of an :class:`AdaptiveBulkhead`'s state and counters.

    Attributes:
        name: The bulkhead's name.
        limit: How many calls may run at once now.
        in_flight: Calls holding a permit now (more than *limit* for a
            while after the limit was cut).
        queued: Callers waiting for a permit now.
        refused: Callers refused so far.
        dropped: Calls that ended in a way that signals overload (see
            *drop_on*), so far.
        high_water: The most calls that ever held a permit at once.
        rtt: The latency estimate, in seconds: the mean of the last window
            (Gradient) or a moving average of the calls that ended well
            (AIMD); ``None`` before there is one.
        rtt_noload: The latency without queueing, in seconds (Gradient;
            ``None`` for AIMD or before the first measure).
        probing: Whether the limit is held at *min_limit* to measure
            ``rtt_noload`` now (Gradient).

    .. versionadded:: 0.2.0
    """

    kind: ClassVar[str] = "adaptive_bulkhead"

    name: str
    limit: int
    in_flight: int
    queued: int
    refused: int
    dropped: int
    high_water: int
    rtt: float | None
    rtt_noload: float | None
    probing: bool


# -- the bulkhead ---------------------------------------------------------------

_DEFAULT_INITIAL = 20


@final
@attrs.frozen(kw_only=True, eq=False)
class AdaptiveBulkhead(BulkheadBase):
    """
    Let at most *limit* calls in at once, where the limit moves between
    *min_limit* and *max_limit* with what the calls show: it grows while
    they end well and fast, and shrinks when they slow down (Gradient) or
    signal overload (AIMD, and both on a drop).

    A call *drops* when it raises an exception matching *drop_on* (by
    default a timeout, :class:`TimeoutError`, or a refusal from further
    down, :class:`~stalwart.RejectedError`), or returns a result that
    *drop_result* says signals overload (an HTTP 503, say).  A call that
    raises another exception is *ignored*: it is not a latency sample (a
    fast failure would read as a fast downstream); so is a
    :class:`BaseException` such as a cancellation.

    Everything else is as in :class:`~stalwart.Bulkhead`: a caller that
    finds the limit reached waits in FIFO order, if the queue has room,
    for at most *max_wait* (never past the current deadline); anyone else
    is refused at once with :class:`~stalwart.BulkheadFullError`, whose
    ``retry_after`` estimates when a permit frees up (the latency estimate
    divided by the limit, for each caller ahead; ``None`` before any call
    ended).  Threads and event loops share one instance, a permit is
    always given back, and a sync face that would have to wait on the
    thread of a running event loop raises :class:`RuntimeError`.

    Faces: decorator (``def``, ``async def``, generator functions of both
    kinds), ``with`` / ``async with``, :meth:`call` / :meth:`acall`, and
    the explicit steps :meth:`try_acquire`, :meth:`acquire`,
    :meth:`aacquire` and :meth:`release` (which says how the work went).

    Args:
        min_limit: The lowest limit.
        max_limit: The highest limit.
        initial_limit: The limit to start from; ``None``: 20, kept within
            the bounds.  (Gradient first measures the no-load latency at
            *min_limit*.)
        algorithm: :class:`~stalwart.GradientLimit` (the default) or
            :class:`~stalwart.AIMDLimit`, with its settings.
        max_queue: How many callers may wait; ``None`` for no limit.
        max_wait: How long a caller waits in the queue, in seconds;
            ``None`` waits as long as it takes (or until the deadline).
        drop_on: Exceptions that signal overload: types, a tuple of them,
            or a predicate.
        drop_result: A predicate on a call's result that signals overload;
            ``None``: results never do.
        name: Used in errors and events.
        clock: Where time is read, calls are timed and waits are measured.
        hooks: Receive a :class:`~stalwart.LimitChanged` for each move of
            the limit and a :class:`~stalwart.CallRejected` for each
            refusal; hooks that ask for per-call events also get a
            :class:`~stalwart.CallAdmitted` and a
            :class:`~stalwart.CallFinished` for each call.

    .. versionadded:: 0.2.0
    """

    min_limit: int = attrs.field(
        default=1, validator=(number, integer, positive)
    )
    max_limit: int = attrs.field(
        default=200, validator=(number, integer, positive)
    )
    initial_limit: int | None = attrs.field(
        default=None, validator=(integer, positive)
    )
    algorithm: AIMDLimit | GradientLimit = attrs.field(
        factory=GradientLimit, validator=_algorithm
    )
    max_queue: int | None = attrs.field(
        default=0, validator=(integer, non_negative)
    )
    max_wait: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, non_negative, finite],
    )
    drop_on: ExceptionFilter = attrs.field(
        default=ExceptionFilter(types=(TimeoutError, RejectedError)),
        converter=exception_filter,
        validator=valid_exception_filter,
        repr=False,
    )
    drop_result: Callable[[Any], bool] | None = attrs.field(
        default=None, validator=sync_callable, repr=False
    )
    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    clock: Clock = attrs.field(
        default=DEFAULT_CLOCK, validator=valid_clock, repr=False
    )
    hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=hooks, validator=valid_hooks, repr=False
    )
    # The algorithm's core; each open block's (start, in flight at
    # admission), by frame; and each explicit permit's.
    _limiter: AIMD | Gradient = attrs.field(init=False, repr=False)
    _calls: Blocks[tuple[float, int]] = attrs.field(init=False, repr=False)
    _samples: dict[int, tuple[float, int]] = attrs.field(
        init=False, repr=False
    )
    _dropped: list[int] = attrs.field(init=False, repr=False)

    _kind: ClassVar[str] = "AdaptiveBulkhead"
    _primitive: ClassVar[str] = "adaptive_bulkhead"

    def __attrs_post_init__(self) -> None:
        low, high = self.min_limit, self.max_limit
        initial = self.initial_limit
        problems = []
        if low > high:
            problems.append(
                f"'min_limit' must be <= 'max_limit' {high} (got {low})"
            )
        elif initial is not None and not low <= initial <= high:
            problems.append(
                f"'initial_limit' must be within [min_limit, max_limit] ="
                f" [{low}, {high}] (got {initial})"
            )
        collect(problems)
        if initial is None:
            initial = min(high, max(low, _DEFAULT_INITIAL))
        settings = self.algorithm
        limiter: AIMD | Gradient
        if isinstance(settings, AIMDLimit):
            limiter = AIMD(
                initial=initial,
                min_limit=low,
                max_limit=high,
                backoff_ratio=settings.backoff_ratio,
                timeout=settings.timeout,
            )
        else:
            limiter = Gradient(
                initial=initial,
                min_limit=low,
                max_limit=high,
                smoothing=settings.smoothing,
                queue_size=settings.queue_size,
                window=settings.window,
                window_samples=settings.window_samples,
                probe_interval=settings.probe_interval,
                probe_samples=settings.probe_samples,
            )
        self._init_base(BulkheadCore(limiter.limit, self.max_queue))
        set_private = functools.partial(object.__setattr__, self)
        set_private("_limiter", limiter)
        set_private("_calls", Blocks())
        set_private("_samples", {})
        set_private("_dropped", [0])
        live_hooks(self, self.hooks, self._hooks_changed)
        self._hooks_changed()

    def _hooks_changed(self) -> None:
        # Every call is timed: the gate stays the core.
        object.__setattr__(self, "_observing", bool(self._live.calls))

    @property
    def limit(self) -> int:
        """
        How many calls may run at once now.
        """
        return int(self._core.limit)

    # -- explicit steps ---------------------------------------------------

    def try_acquire(self) -> bool:
        """
        Take a permit if one is free now; never wait.

        Returns:
            ``True`` if a permit was taken (give it back with
            :meth:`release`, from the same task or thread); ``False``,
            counted as a refusal and sent to the hooks as a
            :class:`~stalwart.CallRejected` (with a ``retry_after``
            estimate), if not.

        .. versionadded:: 0.2.0
        """
        start = self.clock.now()
        with self._lock:
            token = self._core.try_take()
            if token:
                self._samples[token] = (start, self._core.used)
            else:
                self._core.refuse()
        if not token:
            self._refusal()
            return False
        self._hold_token(token, start, start)
        return True

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

        .. versionadded:: 0.2.0
        """
        wait = queue_wait(timeout, self.max_wait, strict=True)
        start = self.clock.now()
        token = self._wait(wait, ("acquire()", "await bulkhead.aacquire()"))
        self._hold_token(token, start, self.clock.now())

    async def aacquire(
        self,
        timeout: Seconds | Literal[Default.MAX_WAIT] | None = MAX_WAIT,  # noqa: ASYNC109  # the shared limiter/bulkhead vocabulary
    ) -> None:
        """
        Take a permit, waiting in the queue if there is room (async twin of
        :meth:`acquire`).

        .. versionadded:: 0.2.0
        """
        wait = queue_wait(timeout, self.max_wait, strict=True)
        start = self.clock.now()
        token = await self._await(wait)
        self._hold_token(token, start, self.clock.now())

    def release(self, outcome: _Outcome = "success") -> None:
        """
        Give back the permit that the calling task (or thread, outside any
        task) took last with :meth:`try_acquire`, :meth:`acquire` or
        :meth:`aacquire`, saying how the work went.

        Args:
            outcome: ``"success"`` (a latency sample), ``"dropped"`` (it
                signals overload), or ``"ignored"`` (neither: the permit
                goes back and the limit learns nothing).

        Raises:
            ValueError: If *outcome* is none of those.
            RuntimeError: If the caller holds no such permit: a second
                ``release()`` for one permit, or a permit taken by another
                task or thread.

        .. versionadded:: 0.2.0
        """
        if outcome not in _OUTCOMES:
            msg = f"'outcome' must be one of {_OUTCOMES!r} (got {outcome!r})"
            raise ValueError(msg)
        owner = holder()
        with self._lock:
            tokens = self._held.get(owner)
            token = tokens.pop() if tokens else 0
            if tokens == []:
                del self._held[owner]
            sample = self._samples.pop(token, None)
        if sample is None:
            msg = (
                f"AdaptiveBulkhead {self.name!r}: release() without a permit"
                " held by this task or thread (a second release() of one"
                " permit, or a permit taken elsewhere: give a permit back"
                " where it was taken)"
            )
            raise RuntimeError(msg)
        start, in_flight = sample
        self._end(
            token,
            start,
            in_flight,
            None,
            dropped=None if outcome == "ignored" else outcome == "dropped",
            outcome=_REPORTED[outcome],
        )

    def _hold_token(self, token: int, start: float, admitted: float) -> None:
        """
        Keep the permit *token* for the calling task or thread; report its
        admission (a hook that raises a :class:`BaseException` gives it
        back).
        """
        with self._lock:
            self._samples.setdefault(token, (admitted, self._core.used))
        try:
            self._report_admitted(start, admitted)
        except BaseException:
            with self._lock:
                del self._samples[token]
            self._give_back(token, None, report=False)
            raise
        with self._lock:
            self._hold(holder(), token)

    def statistics(self) -> AdaptiveBulkheadStatistics:
        """
        Return a snapshot of the state and counters.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            snap = self._core.snapshot()
            algorithm = self._limiter.snapshot()
            dropped = self._dropped[0]
        return AdaptiveBulkheadStatistics(
            name=self.name,
            limit=int(snap.limit),
            in_flight=snap.in_flight,
            queued=snap.queued,
            refused=snap.refused,
            dropped=dropped,
            high_water=snap.high_water,
            rtt=algorithm.rtt,
            rtt_noload=getattr(algorithm, "rtt_noload", None),
            probing=getattr(algorithm, "probing", False),
        )

    # -- context managers and calls -----------------------------------------

    def __enter__(self) -> None:
        arrived, in_flight = self._try_enter()
        start = arrived
        if not in_flight:
            start, in_flight = self._enter_anonymous(WITH_FACES)
        self._block_entered(caller(1), arrived, start, in_flight)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        _depth: int = 1,
    ) -> None:
        start, in_flight = self._calls.pop(caller(_depth))
        self._end(0, start, in_flight, exc)

    async def __aenter__(self) -> None:
        arrived, in_flight = self._try_enter()
        start = arrived
        if not in_flight:
            start, in_flight = await self._aenter_anonymous()
        self._block_entered(caller(1), arrived, start, in_flight)

    def _try_enter(self) -> tuple[float, int]:
        """
        Try the core for an anonymous permit, now.

        Returns:
            The time now, and the calls in flight once admitted (``0`` if
            the caller must queue).
        """
        now = self.clock.now()
        lock = self._lock
        lock.acquire()
        core = self._core
        entered = core.try_enter()
        in_flight = core.used
        lock.release()
        return now, in_flight if entered else 0

    def _try_take(self) -> tuple[float, int, int]:
        """
        Try the core for a permit as a token, now.

        Returns:
            The time now, the token (``0`` if the caller must queue), and
            the calls in flight then.
        """
        now = self.clock.now()
        lock = self._lock
        lock.acquire()
        core = self._core
        token = core.try_take()
        in_flight = core.used
        lock.release()
        return now, token, in_flight

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb, 2)

    def _block_entered(
        self, frame: Any, arrived: float, start: float, in_flight: int
    ) -> None:
        """
        Keep a block's start under its *frame*; report its admission if a
        per-call hook listens.
        """
        self._calls.push(frame, (start, in_flight))
        if self._observing:
            self._call_admitted(arrived, start, lambda: self._calls.pop(frame))

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run ``fn(*args, **kwargs)`` holding a permit; its outcome and
        latency are a sample for the limit.

        Raises:
            BulkheadFullError: If no permit could be had.
            TypeError: If *fn* returned something awaitable (an ``async``
                function); the permit is given back.  Use :meth:`acall`.
            RuntimeError: If it would have to wait on the thread of a
                running event loop; use :meth:`acall`.

        .. versionadded:: 0.2.0
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
        Await ``fn(*args, **kwargs)`` holding a permit (async twin of
        :meth:`call`).

        .. versionadded:: 0.2.0
        """
        return await guard_acall(self, fn, args, kwargs)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate a function so each call holds a permit and is a sample for
        the limit: a ``def``, an ``async def``, or a generator function of
        either kind, whose whole iteration holds one permit.

        .. versionadded:: 0.2.0
        """
        if is_async_generator_function(fn):
            agen = cast("Callable[P, AsyncGenerator[Any, Any]]", fn)
            return cast("Callable[P, T]", guard_async_generator(self, agen))
        if is_generator_function(fn):
            gen = cast("Callable[P, Generator[Any, Any, Any]]", fn)
            return cast("Callable[P, T]", guard_generator(self, gen))
        now = self.clock.now
        lock = self._lock
        core = self._core
        calls = self._live.calls  # the live list: hooks may come later
        sample = self._sample
        end = self._end
        # The success path feeds its sample straight in unless results may
        # signal overload.
        classify = self.drop_result is not None
        if is_async_callable(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                start = now()
                lock.acquire()
                entered = core.try_enter()
                in_flight = core.used
                lock.release()
                if not entered:
                    start, in_flight = await self._aenter_call(start)
                elif calls:
                    self._call_admitted(start, start, None)
                try:
                    result = await afn(*args, **kwargs)
                except BaseException as exc:
                    end(0, start, in_flight, exc)
                    raise
                if classify:
                    end(0, start, in_flight, None, result)
                else:
                    sample(0, start, in_flight, False)
                return result

            return cast("Callable[P, T]", awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            start = now()
            lock.acquire()
            entered = core.try_enter()
            in_flight = core.used
            lock.release()
            if not entered:
                start, in_flight = self._enter_call(start)
            elif calls:
                self._call_admitted(start, start, None)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                end(0, start, in_flight, exc)
                raise
            if type(result) is CoroutineType or (
                type(result) not in PLAIN and is_awaitable(result)
            ):
                end(0, start, in_flight, None, dropped=None, report=False)
                raise awaitable_result_error(
                    "AdaptiveBulkhead", self.name, "call()", "acall()", result
                )
            if classify:
                end(0, start, in_flight, None, result)
            else:
                sample(0, start, in_flight, False)
            return result

        return wrapper

    def _enter_call(self, arrived: float) -> tuple[float, int]:
        """
        The slow path of a decorated call that arrived at *arrived*: wait
        for an anonymous permit.

        Returns:
            When the call began, and the calls in flight then.
        """
        start, in_flight = self._enter_anonymous(CALL_FACES)
        if self._observing:
            self._call_admitted(arrived, start, None)
        return start, in_flight

    async def _aenter_call(self, arrived: float) -> tuple[float, int]:
        """
        The slow path of a decorated async call (twin of
        :meth:`_enter_call`).
        """
        start, in_flight = await self._aenter_anonymous()
        if self._observing:
            self._call_admitted(arrived, start, None)
        return start, in_flight

    def _call_admitted(
        self,
        arrived: float,
        start: float,
        forget: Callable[[], object] | None,
    ) -> None:
        """
        Report the admission of a call that arrived at *arrived* and holds
        an anonymous permit since *start*; a hook that raises a
        :class:`BaseException` gives the permit back (and *forget* drops
        what was kept for it).
        """
        try:
            self._report_admitted(arrived, start)
        except BaseException:
            if forget is not None:
                forget()
            self._end(0, start, 0, None, dropped=None, report=False)
            raise

    def _enter_anonymous(self, faces: tuple[str, str]) -> tuple[float, int]:
        """
        Wait for an anonymous permit.

        Returns:
            When the call was admitted, and the calls in flight then.
        """
        self._wait(MAX_WAIT, faces, anonymous=True)
        return self._admitted_now()

    async def _aenter_anonymous(self) -> tuple[float, int]:
        """
        Wait for an anonymous permit (twin of :meth:`_enter_anonymous`).
        """
        await self._await(MAX_WAIT, anonymous=True)
        return self._admitted_now()

    def _admitted_now(self) -> tuple[float, int]:
        """
        Return the time now and the calls in flight: a waiter's start.
        """
        now = self.clock.now()
        with self._lock:
            return now, self._core.used

    # -- the guard protocol (stalwart._faces.Guard) ---------------------------

    def _enter(self) -> tuple[int, float, int]:
        start, token, in_flight = self._try_take()
        if token:
            return self._token_entered(token, start, start, in_flight)
        token = self._wait(MAX_WAIT, CALL_FACES)
        return self._token_entered(token, start, *self._admitted_now())

    async def _aenter(self) -> tuple[int, float, int]:
        start, token, in_flight = self._try_take()
        if token:
            return self._token_entered(token, start, start, in_flight)
        token = await self._await(MAX_WAIT)
        return self._token_entered(token, start, *self._admitted_now())

    def _token_entered(
        self, token: int, arrived: float, start: float, in_flight: int
    ) -> tuple[int, float, int]:
        """
        The guard's token for the permit *token*: when its call began and
        the calls in flight then; its admission reported if a per-call hook
        listens.
        """
        if self._observing:
            try:
                self._report_admitted(arrived, start)
            except BaseException:
                self._end(
                    token, start, in_flight, None, dropped=None, report=False
                )
                raise
        return token, start, in_flight

    def _exit(
        self,
        token: tuple[int, float, int],
        exc: BaseException | None,
        result: object,
    ) -> None:
        permit, start, in_flight = token
        self._end(permit, start, in_flight, exc, result)

    async def _aexit(
        self,
        token: tuple[int, float, int],
        exc: BaseException | None,
        result: object,
    ) -> None:
        self._exit(token, exc, result)

    def _undo(self, token: tuple[int, float, int]) -> None:
        permit, start, in_flight = token
        self._end(permit, start, in_flight, None, dropped=None, report=False)

    # -- samples and the limit ---------------------------------------------------

    def _drop(self, exc: BaseException | None, result: object) -> bool | None:
        """
        Classify how a call ended: ``True`` if it signals overload,
        ``False`` if it is a latency sample, ``None`` if it is neither.
        """
        if exc is None:
            check = self.drop_result
            return False if check is None else bool(check(result))
        if isinstance(exc, Exception):
            return True if self.drop_on.matches(exc) else None
        return None

    def _end(
        self,
        token: int,
        start: float,
        in_flight: int,
        exc: BaseException | None,
        result: object = None,
        *,
        dropped: bool | None = _CLASSIFY,
        outcome: str | None = None,
        report: bool = True,
    ) -> None:
        """
        A call ended (with *exc*, or returning *result*): feed its sample
        to the algorithm, move the limit, and give its permit back
        (*token*, or an anonymous one for ``0``); then wake the waiters
        served and report.

        Args:
            dropped: Whether the call signals overload, ``False`` for a
                latency sample and ``None`` for neither; by default, what
                *drop_on* and *drop_result* say of its outcome.
            outcome: What its :class:`~stalwart.CallFinished` says; by
                default, what *exc* (and a drop) makes.
            report: Report its end to per-call hooks.
        """
        if dropped is _CLASSIFY:
            try:
                dropped = self._drop(exc, result)
            except BaseException:
                # A predicate failed: the permit still goes back.
                self._sample(token, start, in_flight, None, exc)
                raise
        self._sample(
            token,
            start,
            in_flight,
            dropped,
            exc,
            outcome=outcome,
            report=report,
        )

    def _sample(
        self,
        token: int,
        start: float,
        in_flight: int,
        dropped: bool | None,
        exc: BaseException | None = None,
        *,
        outcome: str | None = None,
        report: bool = True,
    ) -> None:
        """
        The work of :meth:`_end` once the call is classified (*dropped*);
        the decorator's success path comes here directly.
        """
        now = self.clock.now()
        lock = self._lock
        lock.acquire()
        try:
            core = self._core
            previous = core.limit
            if dropped is not None:
                if dropped:
                    self._dropped[0] += 1
                limit = self._limiter.observe(
                    now, now - start, in_flight, dropped
                )
                if limit != previous:
                    # Set before the permit goes back: a higher limit then
                    # serves every waiter that fits.
                    core.limit = limit
            served = core.give_back(token) if token else core.exit()
            after = core.limit
        finally:
            lock.release()
        if served or after != previous or self._observing:
            self._ended(served, now, previous, after)
            if report and self._observing:
                if outcome is None and dropped and exc is None:
                    outcome = "failure"  # a result that signals overload
                self._finished(None, start, exc, outcome=outcome)

    def _ended(
        self,
        served: list[Waiter] | None,
        now: float,
        previous: float,
        after: float,
    ) -> None:
        """
        After a permit came back: wake the waiters it served, and report a
        move of the limit.
        """
        if served:
            self._wake(served)
        if after != previous and self._live.all:
            emit(
                self._live.all,
                LimitChanged(
                    primitive_name=self.name,
                    at=now,
                    limit=int(after),
                    previous_limit=int(previous),
                ),
            )

    def _full(self) -> BulkheadFullError:
        with self._lock:
            snap = self._limiter.snapshot()
            limit = int(self._core.limit)
            ahead = len(self._core._queue)
        rtt = snap.rtt
        if rtt is None:
            rtt = getattr(snap, "rtt_noload", None)
        return BulkheadFullError(self.name, limit, free_in(rtt, limit, ahead))
