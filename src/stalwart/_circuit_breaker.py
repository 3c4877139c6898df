"""
The circuit breaker: stop calling a dependency that keeps failing.

The shell owns the clock, the lock, the hooks and the user's code; every
decision is made by :class:`~stalwart._core.circuit.BreakerCore` under the
lock, which guards O(1) bookkeeping only and is never held across the
guarded call.

The hot path is lock-free: while the breaker is closed, a call reads one
attribute before it runs (the gate, which is the generation of the closed
state) and, when it succeeds, one after (whether the success must be
recorded at all).  Under the consecutive-failures policy a success with no
failure streak changes nothing, so it takes no lock and reads no clock.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import itertools
import threading

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, TypeAlias, cast, final

import attrs

from . import _gil
from ._clock import DEFAULT_CLOCK, Clock
from ._core.circuit import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerCore,
    CircuitState,
    Transition,
)
from ._core.windows import FAILURE, SLOW, BucketRing, CountRing
from ._errors import CircuitOpenError, ConfigurationError
from ._events import (
    CallRejected,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    CircuitStateChanged,
    Event,
    Hook,
    emit,
)
from ._typing import AsyncDecorator, Decorator, P, T
from ._validators import (
    ExceptionFilter,
    collect,
    duration,
    exception_filter,
    finite,
    ge,
    gt,
    hooks,
    integer,
    le,
    non_empty_str,
    non_negative,
    optional_duration,
    optional_seconds,
    positive,
    seconds,
    sync_callable,
    valid_clock,
    valid_exception_filter,
    valid_hooks,
)


_new_refusal = CircuitOpenError.__new__
"""Builds a CircuitOpenError without its Python __init__ (see _errors)."""

_IGNORED = -1
"""Classification of an exception that is neither success nor failure."""

_DEFAULT_MINIMUM_CALLS = 10
"""``minimum_calls`` of a rate policy over a time window, by default."""

_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
_COUNT: list[_Validator] = [integer, ge(1)]
_RATE: list[_Validator] = [gt(0), le(1)]
_POSITIVE_SECONDS: list[_Validator] = [finite, positive]


@final
@attrs.frozen
class CountWindow:
    """
    A window over the outcomes of the last *size* calls.

    Args:
        size: How many calls the window holds.

    .. versionadded:: 0.1.0
    """

    size: int = attrs.field(validator=_COUNT)


@final
@attrs.frozen
class TimeWindow:
    """
    A window over the outcomes of the calls of the last *length* seconds.

    The window is a ring of *buckets* counters, each covering
    ``length / buckets`` seconds, so recording and reading cost O(1).
    Outcomes leave the window a whole bucket at a time: an outcome stays
    counted for at most *length* seconds and at least
    ``length - length / buckets`` (54 to 60 seconds for
    ``TimeWindow(60.0)``).

    Args:
        length: The span of the window, in seconds.
        buckets: How many buckets the span is cut into (its granularity).

    .. versionadded:: 0.1.0
    """

    length: float = attrs.field(
        converter=seconds,
        validator=[duration, *_POSITIVE_SECONDS],
    )
    buckets: int = attrs.field(default=10, kw_only=True, validator=_COUNT)


def _default_threshold(self: CircuitBreaker) -> int | None:
    if self.failure_rate is None and self.slow_call_rate is None:
        return 5
    return None


def _check_window(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if value is not None and not isinstance(value, CountWindow | TimeWindow):
        raise ConfigurationError(
            "'window' must be a CountWindow, a TimeWindow or None"
            f" (got {value!r})"
        )


@final
@attrs.frozen(kw_only=True, eq=False)
class CircuitBreaker:
    """
    Stop calling a dependency that keeps failing, and try it again later.

    While CLOSED, calls run and their outcomes are recorded by one policy:

    * **consecutive failures**: *failure_threshold* failures in a row open
      it (the default: 5);
    * **failures in a window**: *failure_threshold* failures within a
      *window*, ``CountWindow(m)`` ("N of the last m calls") or
      ``TimeWindow(t)`` ("N failures within t seconds");
    * **rates**: a *failure_rate* and/or a *slow_call_rate* over a
      *window*, evaluated once the window holds *minimum_calls* calls; a
      rate equal to its threshold opens.  A call whose duration is at
      least *slow_call_duration* is slow; a slow failure counts as both.

    OPEN refuses calls at once with :class:`~stalwart.CircuitOpenError`.
    The first call made *recovery_time* seconds or more after it opened
    turns it HALF_OPEN, where up to *half_open_max_calls* trial calls run
    and every other caller is refused at once.  Under a threshold policy a
    trial failure re-opens it and *success_threshold* trial successes close
    it; under a rate policy the verdict comes once every trial has
    reported, by the same rates.  With *recovery_multiplier* above 1 the
    open period grows with each consecutive trip, up to *recovery_max*,
    and starts again from *recovery_time* once the breaker closes.  With
    *half_open_max_wait*, trials that do not report in time send it back
    to OPEN, as of the moment the wait ran out.

    Exceptions matching *ignore* count as neither success nor failure and
    give back their trial slot; those matching *failure_on* are failures;
    any other exception means the dependency answered, so it counts as a
    success.  Exceptions that are not :class:`Exception` subclasses
    (``KeyboardInterrupt``, ``asyncio.CancelledError``...) are never
    failures and always give back their slot.  *failure_result* marks
    returned values as failures (the value is still returned).

    Use it as a decorator on ``def`` and ``async def`` functions, as a
    ``with`` / ``async with`` block, with :meth:`call` / :meth:`acall`, or
    with explicit steps (:meth:`acquire`, then record the outcome on the
    :class:`CircuitPermit`).  It is safe to share between threads and
    tasks.

    Args:
        name: Names the breaker in errors and events.
        failure_rate: Open when the failure rate of the window reaches
            this fraction (``0 < rate <= 1``).
        slow_call_rate: Open when the slow-call rate of the window reaches
            this fraction (``0 < rate <= 1``); needs *slow_call_duration*.
        failure_threshold: Failures that open it: consecutive ones
            without a *window*, within the window with one.  Defaults to 5
            unless a rate is given; cannot be combined with a rate.
        window: A :class:`CountWindow` or a :class:`TimeWindow`.
        minimum_calls: Calls the window must hold before a rate is
            evaluated; the count window's size or 10 with a time window by
            default.  Only for rate policies.
        slow_call_duration: A call taking at least this long is slow, in
            seconds.
        recovery_time: How long it stays open before a trial, in seconds.
        recovery_multiplier: Factor applied to the open period at each
            consecutive trip (1: constant).
        recovery_max: The cap of the growing open period, in seconds;
            required when *recovery_multiplier* is above 1.
        half_open_max_calls: Trial calls admitted while half-open.
        success_threshold: Trial successes that close it (threshold
            policies only; at most *half_open_max_calls*).
        half_open_max_wait: How long the trials may take before it goes
            back to OPEN, in seconds; ``None`` waits for them.
        failure_on: Exceptions that count as failures: a type, a tuple of
            types or a predicate.
        ignore: Exceptions that count as nothing; checked first.
        failure_result: A predicate marking a returned value as a failure.
        clock: Where time is read.
        hooks: Receive :class:`~stalwart.CircuitStateChanged` events (and
            their subclasses) and :class:`~stalwart.CallRejected`.

    Raises:
        ConfigurationError: For an invalid setting or combination, listing
            every problem.

    .. versionadded:: 0.1.0
    """

    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    failure_rate: float | None = attrs.field(default=None, validator=_RATE)
    slow_call_rate: float | None = attrs.field(default=None, validator=_RATE)
    failure_threshold: int | None = attrs.field(
        default=attrs.Factory(_default_threshold, takes_self=True),
        validator=_COUNT,
    )
    window: CountWindow | TimeWindow | None = attrs.field(
        default=None, validator=_check_window
    )
    minimum_calls: int | None = attrs.field(default=None, validator=_COUNT)
    slow_call_duration: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, *_POSITIVE_SECONDS],
    )
    recovery_time: float = attrs.field(
        default=30.0,
        converter=seconds,
        validator=[duration, finite, non_negative],
    )
    recovery_multiplier: float = attrs.field(
        default=1.0, validator=[finite, ge(1)]
    )
    recovery_max: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, *_POSITIVE_SECONDS],
    )
    half_open_max_calls: int = attrs.field(default=1, validator=_COUNT)
    success_threshold: int = attrs.field(default=1, validator=_COUNT)
    half_open_max_wait: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, *_POSITIVE_SECONDS],
    )
    failure_on: ExceptionFilter = attrs.field(
        default=ExceptionFilter(types=(Exception,)),
        converter=exception_filter,
        validator=valid_exception_filter,
    )
    ignore: ExceptionFilter = attrs.field(
        default=ExceptionFilter(),
        converter=exception_filter,
        validator=valid_exception_filter,
    )
    failure_result: Callable[[Any], bool] | None = attrs.field(
        default=None, validator=sync_callable
    )
    clock: Clock = attrs.field(
        default=DEFAULT_CLOCK, validator=valid_clock, repr=False
    )
    hooks: tuple[Hook, ...] = attrs.field(
        default=(),
        converter=hooks,
        validator=valid_hooks,
        repr=False,
    )

    _core: BreakerCore = attrs.field(init=False, repr=False)
    _lock: threading.Lock = attrs.field(init=False, repr=False)
    _fast_successes: itertools.count[int] = attrs.field(init=False, repr=False)
    _rejected: itertools.count[int] = attrs.field(init=False, repr=False)
    _fast: _FastGuards = attrs.field(init=False, repr=False)
    _held: contextvars.ContextVar[tuple[CircuitPermit, ...]] = attrs.field(
        init=False, repr=False
    )

    def __attrs_post_init__(self) -> None:
        self._validate()
        window: CountRing | BucketRing | None = None
        minimum = self.minimum_calls
        if isinstance(self.window, CountWindow):
            window = CountRing(self.window.size)
            minimum = minimum or self.window.size
        elif isinstance(self.window, TimeWindow):
            window = BucketRing(self.window.length, self.window.buckets)
            minimum = minimum or _DEFAULT_MINIMUM_CALLS
        core = BreakerCore(
            failure_threshold=self.failure_threshold,
            failure_rate=self.failure_rate,
            slow_call_rate=self.slow_call_rate,
            window=window,
            minimum_calls=minimum or 1,
            recovery_time=self.recovery_time,
            recovery_multiplier=self.recovery_multiplier,
            recovery_max=self.recovery_max,
            half_open_max_calls=self.half_open_max_calls,
            success_threshold=self.success_threshold,
            half_open_max_wait=self.half_open_max_wait,
        )
        core.track = bool(self.hooks)
        # The instance is frozen: private state is set once, here.
        set_private = functools.partial(object.__setattr__, self)
        set_private("_core", core)
        set_private("_lock", threading.Lock())
        # itertools.count's __next__ is atomic (with or without the GIL):
        # the lock-free paths of the other faces count with it.
        set_private("_fast_successes", itertools.count())
        set_private("_rejected", itertools.count())
        set_private("_fast", _fast_guards(self))
        set_private(
            "_held", contextvars.ContextVar(f"stalwart_breaker_{id(self)}")
        )

    def _validate(self) -> None:
        problems: list[str] = []
        rated = (
            self.failure_rate is not None or self.slow_call_rate is not None
        )
        threshold = self.failure_threshold
        window = self.window
        if rated and threshold is not None:
            problems.append(
                "'failure_threshold' cannot be combined with 'failure_rate' or"
                f" 'slow_call_rate' (got failure_threshold={threshold!r})"
            )
        if not rated and threshold is None:
            problems.append(
                "a policy is needed: 'failure_threshold', 'failure_rate' or"
                " 'slow_call_rate' (got none)"
            )
        if rated and window is None:
            problems.append(
                "'failure_rate' and 'slow_call_rate' need a 'window'"
                " (a CountWindow or a TimeWindow)"
            )
        if (self.slow_call_rate is None) != (self.slow_call_duration is None):
            problems.append(
                "'slow_call_rate' and 'slow_call_duration' go together (got"
                f" slow_call_rate={self.slow_call_rate!r},"
                f" slow_call_duration={self.slow_call_duration!r})"
            )
        if self.minimum_calls is not None:
            if not rated:
                problems.append(
                    "'minimum_calls' applies only with 'failure_rate' or"
                    f" 'slow_call_rate' (got {self.minimum_calls!r})"
                )
            elif (
                isinstance(window, CountWindow)
                and self.minimum_calls > window.size
            ):
                problems.append(
                    "'minimum_calls' must be <= the window's size"
                    f" {window.size} (got {self.minimum_calls!r})"
                )
        if (
            threshold is not None
            and isinstance(window, CountWindow)
            and threshold > window.size
        ):
            problems.append(
                "'failure_threshold' must be <= the window's size"
                f" {window.size} (got {threshold!r})"
            )
        growing = self.recovery_multiplier > 1
        if growing and self.recovery_max is None:
            problems.append(
                "'recovery_max' is required when 'recovery_multiplier' > 1"
                f" (got recovery_multiplier={self.recovery_multiplier!r})"
            )
        if not growing and self.recovery_max is not None:
            problems.append(
                "'recovery_max' needs a 'recovery_multiplier' > 1"
                f" (got recovery_max={self.recovery_max!r})"
            )
        if self.recovery_max is not None and (
            self.recovery_max < self.recovery_time
        ):
            problems.append(
                "'recovery_max' must be >= 'recovery_time'"
                f" {self.recovery_time:g} (got {self.recovery_max!r})"
            )
        if rated and self.success_threshold != 1:
            problems.append(
                "'success_threshold' applies only to 'failure_threshold'"
                " policies; a rate policy decides after"
                f" 'half_open_max_calls' trials (got {self.success_threshold!r})"
            )
        if not rated and self.success_threshold > self.half_open_max_calls:
            problems.append(
                "'success_threshold' must be <= 'half_open_max_calls'"
                f" {self.half_open_max_calls} (got {self.success_threshold!r})"
            )
        collect(problems)

    # --- reading -----------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """
        The current state (read without the lock).
        """
        return self._core.state

    def statistics(self) -> CircuitBreakerStatistics:
        """
        Return a snapshot of the breaker's state and counters.
        """
        now = self.clock.now()
        core = self._core
        cell_successes, cell_rejected = self._fast[2]()
        with self._lock:
            calls, failures, slow = core.window_totals(now)
            failure_rate, slow_rate = core.rates(now)
            return CircuitBreakerStatistics(
                state=core.state,
                successes=core.successes
                + _value(self._fast_successes)
                + cell_successes,
                failures=core.failures,
                slow_calls=core.slow_calls,
                ignored=core.ignored,
                rejected=_value(self._rejected) + cell_rejected,
                consecutive_failures=core.consecutive_failures,
                window_calls=calls,
                window_failures=failures,
                window_slow_calls=slow,
                failure_rate=failure_rate,
                slow_call_rate=slow_rate,
                trips=core.trips,
                open_until=core.open_until if core.state is OPEN else None,
                half_open_calls=(
                    core.trials_taken if core.state is HALF_OPEN else 0
                ),
            )

    # --- manual control ----------------------------------------------------

    def _control(self, action: Callable[[float], None]) -> None:
        now = self.clock.now()
        with self._lock:
            action(now)
            log = self._core.drain()
        self._announce(log)

    def force_open(self) -> None:
        """
        Refuse every call (``retry_after`` is ``None``) until :meth:`reset`.
        """
        self._control(self._core.force_open)

    def disable(self) -> None:
        """
        Admit every call and record nothing, until :meth:`reset`.

        The totals of :meth:`statistics` still count outcomes.
        """
        self._control(self._core.disable)

    def metrics_only(self) -> None:
        """
        Admit and record every call but never open, until :meth:`reset`.
        """
        self._control(self._core.metrics_only)

    def reset(self) -> None:
        """
        Close the breaker with an empty window and forget past trips.

        Outcomes of calls admitted before the reset are not recorded in the
        new window.
        """
        self._control(self._core.reset)

    # --- shared steps ------------------------------------------------------

    def _enter(self) -> int:
        """
        Admit a call: return its epoch or raise :class:`CircuitOpenError`.
        """
        core = self._core
        epoch = core.gate
        if epoch < 0:
            now = self.clock.now()
            until = core.refuse_until
            if now < until:
                raise self._refuse(now, until - now)
            epoch = self._admit(now)
        return epoch

    def _admit(self, now: float) -> int:
        """
        Admit a call under the lock, once the gate is shut and the open
        period is over: return its epoch or raise.
        """
        core = self._core
        with self._lock:
            epoch = core.admit(now)
            retry_after = core.retry_after(now) if epoch < 0 else None
            log = core.drain() if core.log else None
        if log:
            self._announce(log)
        if epoch < 0:
            raise self._refuse(now, retry_after)
        return epoch

    def _refuse(self, now: float, retry_after: float | None) -> Exception:
        # Returns the error for the caller to raise, so this frame is not
        # in its traceback.  Forced open refuses with retry_after inf, which
        # the error reads back as None.
        next(self._rejected)
        error = _new_refusal(CircuitOpenError, self.name, retry_after)
        if self.hooks:
            emit(
                self.hooks,
                CallRejected(primitive_name=self.name, at=now, error=error),
            )
        return error

    def _classify(self, exc: BaseException) -> int:
        if not isinstance(exc, Exception):
            return _IGNORED
        if self.ignore and self.ignore.matches(exc):
            return _IGNORED
        return FAILURE if self.failure_on.matches(exc) else 0

    def _failed(self, epoch: int, start: float, exc: BaseException) -> None:
        """
        Record a call that raised *exc*.
        """
        try:
            outcome = self._classify(exc)
        except BaseException:
            # A predicate failed: give the permit back, let its error out.
            self._release(epoch)
            raise
        if outcome == _IGNORED:
            self._release(epoch)
        else:
            self._finish(epoch, start, outcome)

    def _succeeded(self, epoch: int, start: float, result: object) -> None:
        """
        Record a call that returned *result*.
        """
        check = self.failure_result
        if check is not None:
            try:
                failed = check(result)
            except BaseException:
                self._release(epoch)
                raise
            self._finish(epoch, start, FAILURE if failed else 0)
        else:
            self._success(epoch, start)

    def _success(self, epoch: int, start: float) -> None:
        if self.slow_call_duration is None and not self._core.dirty:
            # Nothing would change: count it without the lock or the clock.
            next(self._fast_successes)
        else:
            self._finish(epoch, start, 0)

    def _finish(self, epoch: int, start: float, flags: int) -> None:
        now = self.clock.now()
        slow_after = self.slow_call_duration
        if slow_after is not None and now - start >= slow_after:
            flags |= SLOW
        core = self._core
        with self._lock:
            core.record(now, epoch, flags)
            log = core.drain() if core.log else None
        if log:
            self._announce(log)

    def _release(self, epoch: int) -> None:
        with self._lock:
            self._core.release(epoch)

    def _start(self) -> float:
        return self.clock.now() if self.slow_call_duration is not None else 0.0

    def _announce(self, log: list[Transition]) -> None:
        for previous, state, at, recovery_time in log:
            event: Event
            if state is OPEN:
                event = CircuitOpened(
                    primitive_name=self.name,
                    at=at,
                    previous=previous,
                    state=state,
                    recovery_time=recovery_time,
                )
            else:
                kind = _EVENTS.get(state, CircuitStateChanged)
                event = kind(
                    primitive_name=self.name,
                    at=at,
                    previous=previous,
                    state=state,
                )
            emit(self.hooks, event)

    # --- faces -------------------------------------------------------------

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Call ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: If the breaker refused the call.
        """
        epoch = self._enter()
        start = self._start()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._failed(epoch, start, exc)
            raise
        self._succeeded(epoch, start, result)
        return result

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """
        Await ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: If the breaker refused the call.
        """
        epoch = self._enter()
        start = self._start()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._failed(epoch, start, exc)
            raise
        self._succeeded(epoch, start, result)
        return result

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Guard *fn*, a ``def`` or an ``async def`` function.
        """
        if inspect.iscoroutinefunction(fn):
            return cast("Callable[P, T]", self._wrap_async(fn))
        if self._inlined():
            return self._fast[0](fn)
        call = self.call

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            return call(fn, *args, **kwargs)

        return guarded

    def _wrap_async(
        self, fn: Callable[P, Awaitable[T]]
    ) -> Callable[P, Awaitable[T]]:
        if self._inlined():
            return self._fast[1](fn)
        acall = self.acall

        @functools.wraps(fn)
        async def aguarded(*args: P.args, **kwargs: P.kwargs) -> T:
            return await acall(fn, *args, **kwargs)

        return aguarded

    def _inlined(self) -> bool:
        """
        Tell whether decorated functions take the inlined path, which
        measures no durations, checks no results and counts in cells.
        """
        return (
            _gil.CELL_COUNTING
            and self.slow_call_duration is None
            and self.failure_result is None
        )

    def acquire(self) -> CircuitPermit:
        """
        Take a permit for one call, for code that cannot be wrapped (such
        as callbacks); record its outcome on the permit.

        It never waits, so there is no async twin.

        Raises:
            CircuitOpenError: If the breaker refused the call.
        """
        return CircuitPermit(self, self._enter(), self._start())

    def __enter__(self) -> None:
        """
        Enter a guarded block.

        Raises:
            CircuitOpenError: If the breaker refused the block.
        """
        self._held.set((*self._held.get(()), self.acquire()))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """
        Record the outcome of the block; an exception is classified.
        """
        *outer, permit = self._held.get()
        self._held.set(tuple(outer))
        if exc is None:
            permit.record_success()
        else:
            permit.record_exception(exc)

    async def __aenter__(self) -> None:
        """
        Enter a guarded block (``async with``).

        Raises:
            CircuitOpenError: If the breaker refused the block.
        """
        self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """
        Record the outcome of the block; an exception is classified.
        """
        self.__exit__(exc_type, exc, tb)


_EVENTS: dict[CircuitState, type[CircuitStateChanged]] = {
    HALF_OPEN: CircuitHalfOpened,
    CLOSED: CircuitClosed,
}


def _value(counter: itertools.count[int]) -> int:
    # repr is the only non-deprecated way to read a count without
    # advancing it ("count(7)").
    return int(repr(counter)[6:-1])


@final
class CircuitPermit:
    """
    Permission for one call through a :class:`CircuitBreaker`, from
    :meth:`CircuitBreaker.acquire`.

    Report the outcome exactly once: :meth:`record_success`,
    :meth:`record_failure`, :meth:`record_exception`, or :meth:`release`
    when the call did not happen or must not count.  A second report
    raises :class:`RuntimeError`.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_breaker", "_done", "_epoch", "_start")

    def __init__(
        self, breaker: CircuitBreaker, epoch: int, start: float
    ) -> None:
        self._breaker = breaker
        self._epoch = epoch
        self._start = start
        self._done = False

    def __repr__(self) -> str:
        state = "used" if self._done else "held"
        return f"<CircuitPermit of {self._breaker.name!r} ({state})>"

    def _use(self) -> None:
        if self._done:
            msg = "this permit was already used"
            raise RuntimeError(msg)
        self._done = True

    def record_success(self) -> None:
        """
        Record that the call succeeded (it is slow if it took at least
        ``slow_call_duration`` since :meth:`~CircuitBreaker.acquire`).
        """
        self._use()
        self._breaker._success(self._epoch, self._start)

    def record_failure(self) -> None:
        """
        Record that the call failed.
        """
        self._use()
        self._breaker._finish(self._epoch, self._start, FAILURE)

    def record_exception(self, exc: BaseException) -> None:
        """
        Record that the call raised *exc*, classified as the other faces
        do (``ignore``, ``failure_on``, ``BaseException``).
        """
        self._use()
        self._breaker._failed(self._epoch, self._start, exc)

    def release(self) -> None:
        """
        Give the permit back without an outcome (and its trial slot).
        """
        self._use()
        self._breaker._release(self._epoch)


@final
@attrs.frozen(kw_only=True)
class CircuitBreakerStatistics:
    """
    A snapshot of a :class:`CircuitBreaker`, from
    :meth:`CircuitBreaker.statistics`.

    Attributes:
        state: The state.
        successes: Calls that succeeded (since the breaker was built).
        failures: Calls that failed.
        slow_calls: Calls that took at least ``slow_call_duration``.
        ignored: Calls that counted as neither (``ignore``,
            ``BaseException``, released permits).
        rejected: Calls refused.
        consecutive_failures: The current failure streak (consecutive
            policy).
        window_calls: Calls in the window (the trial calls that reported,
            while half-open); 0 without a window.
        window_failures: Failures among them.
        window_slow_calls: Slow calls among them.
        failure_rate: The window's failure rate, ``None`` below
            ``minimum_calls`` or without a window.
        slow_call_rate: The window's slow-call rate, ``None`` likewise or
            without slow calls.
        trips: Consecutive trips since the breaker last closed.
        open_until: When an open breaker will admit a trial, on its
            clock; ``None`` unless OPEN.
        half_open_calls: Trial slots taken, while half-open.

    .. versionadded:: 0.1.0
    """

    state: CircuitState
    successes: int
    failures: int
    slow_calls: int
    ignored: int
    rejected: int
    consecutive_failures: int
    window_calls: int
    window_failures: int
    window_slow_calls: int
    failure_rate: float | None
    slow_call_rate: float | None
    trips: int
    open_until: float | None
    half_open_calls: int

    @property
    def calls(self) -> int:
        """
        Calls that ran and reported (successes, failures and ignored).
        """
        return self.successes + self.failures + self.ignored


_FastGuards: TypeAlias = tuple[
    Decorator, AsyncDecorator, Callable[[], tuple[int, int]]
]


def _fast_guards(breaker: CircuitBreaker) -> _FastGuards:
    """
    Build the inlined wrappers of *breaker*'s decorator.

    The closed path reads one attribute before the call and one after it:
    no lock, no clock, no extra frame.  Successes and refusals are counted
    in the two cells below, which every wrapper built here shares.
    """
    # Floats: adding to one takes its result from the float free list,
    # cheaper than a new int, and they count exactly up to 2**53.
    successes = rejected = 0.0
    core, clock, name = breaker._core, breaker.clock, breaker.name
    # What neither the closed nor the refusing path reads, in one closure
    # variable: each one costs a copy at every call.
    rest = (
        breaker.hooks,
        breaker._admit,
        breaker._refuse,
        breaker._failed,
        breaker._finish,
    )

    def guard(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            nonlocal successes, rejected
            epoch = core.gate
            if epoch < 0:
                now = clock.now()
                until = core.refuse_until
                if now < until:
                    if rest[0]:  # events to emit
                        raise rest[2](now, until - now)  # _refuse
                    rejected += 1.0  # _refuse, inlined: a frame less
                    raise _new_refusal(CircuitOpenError, name, until - now)
                epoch = rest[1](now)  # _admit
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                rest[3](epoch, 0.0, exc)  # _failed
                raise
            if core.dirty:
                rest[4](epoch, 0.0, 0)  # _finish
            else:
                successes += 1.0
            return result

        return guarded

    def aguard(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            nonlocal successes, rejected
            epoch = core.gate
            if epoch < 0:
                now = clock.now()
                until = core.refuse_until
                if now < until:
                    if rest[0]:  # events to emit
                        raise rest[2](now, until - now)  # _refuse
                    rejected += 1.0  # _refuse, inlined: a frame less
                    raise _new_refusal(CircuitOpenError, name, until - now)
                epoch = rest[1](now)  # _admit
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                rest[3](epoch, 0.0, exc)  # _failed
                raise
            if core.dirty:
                rest[4](epoch, 0.0, 0)  # _finish
            else:
                successes += 1.0
            return result

        return guarded

    def counts() -> tuple[int, int]:
        return int(successes), int(rejected)

    return guard, aguard, counts
