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

Every face is built on the steps of the :class:`~stalwart._faces.Guard`
protocol (``_enter`` / ``_exit`` / ``_undo``), whose token is the epoch of
the admitted call (with its start time when calls are timed).  The
decorator keeps a hand-inlined copy of those steps, and the ``with`` face
keeps each block's token in a :class:`~stalwart._faces.Blocks`, keyed by
the frame that entered it.

Events go through a :class:`~stalwart._events.Delivery`: the core appends
its transitions to the delivery's queue under the lock, so hooks see them
in the order they happened, whichever thread made them.

Hooks may be attached after the breaker was built
(:class:`~stalwart._observe.Observable`): the hot paths test the live list
of hooks where they tested the ``hooks`` tuple.  While a hook asks for
per-call events, the core holds its gate shut (``BreakerCore.hold``), so
every face takes the slow path, which times each call and posts a
:class:`~stalwart.CallFinished` to the delivery's queue under the lock,
before the transition it may cause (the decorator inlines those steps, and
posts the event of a success that changes nothing but the count without
the lock: it causes no transition); without such a hook the fast paths do
exactly what they did.
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
import threading

from collections.abc import Awaitable, Callable
from types import CoroutineType, FrameType, TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeAlias, cast, final

import attrs

from . import _gil
from ._clock import DEFAULT_CLOCK, Clock
from ._core.circuit import (
    _ADMITTING,
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
    CallFinished,
    CallRejected,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    CircuitStateChanged,
    Delivery,
    Event,
    Hook,
    call_finished,
)
from ._faces import (
    FORWARDING_GLOBALS,
    NO_RESULT,
    PLAIN,
    Blocks,
    awaitable_result_error,
    caller,
    guard_decorate,
    is_async_callable,
    is_async_generator_function,
    is_awaitable,
    is_generator_function,
    not_awaitable_error,
)
from ._observe import LiveHooks, Observable, live_hooks
from ._statistics import Statistics
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


if TYPE_CHECKING:
    from ._redis import RedisStore


_new_refusal = CircuitOpenError.__new__
"""Builds a CircuitOpenError without its Python __init__ (see _errors)."""

_KIND_EVENT = "circuit_breaker"
"""The kind its per-call events name."""

_IGNORED = -1
"""Classification of an exception that is neither success nor failure."""

_DEFAULT_MINIMUM_CALLS = 10
"""``minimum_calls`` of a rate policy over a time window, by default."""

_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _int_given(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    # integer() lets None through, for the counts where None means "none".
    if value is None:
        raise ConfigurationError(f"{attr.name!r} must be an int (got None)")


_COUNT: list[_Validator] = [integer, ge(1)]
"""An optional count: ``None`` or an int >= 1."""
_REQUIRED_COUNT: list[_Validator] = [_int_given, integer, ge(1)]
"""A count that must be given: an int >= 1 (``None`` is refused)."""
_RATE: list[_Validator] = [gt(0), le(1)]
_POSITIVE_SECONDS: list[_Validator] = [finite, positive]

_MAX_BUCKETS = 100_000
"""The most buckets a :class:`TimeWindow` may have: each is three counters,
allocated up front and swept when time moves on."""

_MIN_BUCKET_WIDTH = 1e-9
"""The narrowest bucket of a :class:`TimeWindow`, in seconds: finer than any
clock a program reads, and wide enough that a bucket's index stays finite
for any clock reading below 1e299 seconds."""

_INF = math.inf

_getframe = sys._getframe


def _holdable(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    # A list (or a bytearray) holds at most sys.maxsize items.
    if value > sys.maxsize:
        raise ConfigurationError(
            f"{attr.name!r} must be <= {sys.maxsize} (sys.maxsize, the most"
            f" outcomes this platform can hold) (got {value!r})"
        )


@final
@attrs.frozen
class CountWindow:
    """
    A window over the outcomes of the last *size* calls.

    Its memory grows with the calls recorded, one byte each, up to *size*.

    Args:
        size: How many calls the window holds, at most ``sys.maxsize``.

    .. versionadded:: 0.1.0
    """

    size: int = attrs.field(validator=[*_REQUIRED_COUNT, _holdable])


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
        length: The span of the window, in seconds; at least a nanosecond
            per bucket.
        buckets: How many buckets the span is cut into (its granularity),
            at most 100,000.

    .. versionadded:: 0.1.0
    """

    length: float = attrs.field(
        converter=seconds,
        validator=[duration, *_POSITIVE_SECONDS],
    )
    buckets: int = attrs.field(
        default=10,
        kw_only=True,
        validator=[*_REQUIRED_COUNT, le(_MAX_BUCKETS)],
    )

    def __attrs_post_init__(self) -> None:
        if self.length / self.buckets < _MIN_BUCKET_WIDTH:
            raise ConfigurationError(
                f"'length' must be at least {_MIN_BUCKET_WIDTH:g} s per"
                f" bucket (>= {_MIN_BUCKET_WIDTH * self.buckets:g} with"
                f" {self.buckets} buckets) (got {self.length!r})"
            )


def _check_store(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    from ._redis import RedisStore  # noqa: PLC0415  # only with a store: it imports redis

    if not isinstance(value, RedisStore):
        msg = f"'store' must be a stalwart.redis.RedisStore or None (got {value!r})"
        raise TypeError(msg)


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


@attrs.frozen(kw_only=True, eq=False)
class CircuitBreaker(Observable):
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
            their subclasses) and :class:`~stalwart.CallRejected`; those
            asking for per-call events also get a
            :class:`~stalwart.CallFinished` per call.  More can be attached
            later with :meth:`~stalwart.Observable.add_hook`.
        store: Share the state with every process using the same store
            and name (a :class:`~stalwart.redis.RedisStore`): the state,
            the window, the trial slots (*half_open_max_calls* for the
            whole fleet), the manual states and the growing recovery
            time.  The half-open wait is then always bounded (by
            *half_open_max_wait*, else *recovery_time*, at least one
            second), so a trial whose process died frees its slot.
        max_staleness: With a *store*: how old, in seconds, the fleet's
            state this process last saw may be and still admit or refuse
            a call without asking the server (1 by default; with 0 every
            admission asks: one more round trip per call).

    Raises:
        ConfigurationError: For an invalid setting or combination, listing
            every problem.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       *store* and *max_staleness*: a breaker shared by processes.
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
        default=1.0, validator=[number, finite, ge(1)]
    )
    recovery_max: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, *_POSITIVE_SECONDS],
    )
    half_open_max_calls: int = attrs.field(
        default=1, validator=_REQUIRED_COUNT
    )
    success_threshold: int = attrs.field(default=1, validator=_REQUIRED_COUNT)
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
    store: RedisStore | None = attrs.field(
        default=None, validator=_check_store
    )
    max_staleness: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, finite, non_negative],
    )

    _kind: ClassVar[str] = "CircuitBreaker"

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        # A breaker built with a store is a SharedCircuitBreaker, in a
        # module of its own: the in-memory breaker's paths stay as they are.
        if kwargs.get("store") is not None:
            from ._shared_breaker import SharedCircuitBreaker  # noqa: PLC0415  # it imports redis

            return cast("Self", object.__new__(SharedCircuitBreaker))
        if cls is CircuitBreaker:
            return object.__new__(cls)
        # attrs.evolve(shared, store=None): Python calls __init__ only on
        # an instance of cls, so this one is initialised here.
        breaker = object.__new__(CircuitBreaker)
        breaker.__init__(*args, **kwargs)  # type: ignore[misc]  # see above
        return cast("Self", breaker)

    _core: BreakerCore = attrs.field(init=False, repr=False)
    _lock: threading.Lock = attrs.field(init=False, repr=False)
    _fast_successes: itertools.count[int] = attrs.field(init=False, repr=False)
    _rejected: itertools.count[int] = attrs.field(init=False, repr=False)
    _fast: _FastGuards = attrs.field(init=False, repr=False)
    _events: Delivery = attrs.field(init=False, repr=False)
    _live: LiveHooks = attrs.field(init=False, repr=False)
    # The live list of every hook (tested where `hooks` was), whether
    # _enter() reads a start time (slow calls, per-call events), and
    # whether outcomes post per-call events.
    _hooked: list[Hook] = attrs.field(init=False, repr=False)
    _timed: bool = attrs.field(init=False, repr=False)
    # Whether a success without a failure streak changes nothing but the
    # count (the consecutive policy, no slow calls to time): while a hook
    # asks for per-call events, the decorator then counts it without the
    # lock, as it does without such a hook, and posts its event at once
    # (it causes no transition for the event to come before).  Any other
    # success is recorded under the lock by _finish(), its event first.
    _quiet: bool = attrs.field(init=False, repr=False)
    _observed: bool = attrs.field(init=False, repr=False)
    # The with faces: each open block's token, keyed by its frame (_held
    # and _outer are _blocks' own dictionaries, read inline on the fast
    # path); the core whose gate they read before a block and whose dirty
    # flag after it, or _SLOW_PATH where they must not take the fast path.
    _blocks: Blocks[_Token] = attrs.field(init=False, repr=False)
    _held: dict[FrameType, _Token] = attrs.field(init=False, repr=False)
    _outer: dict[FrameType, list[_Token]] = attrs.field(init=False, repr=False)
    _gate: BreakerCore | _SlowPath = attrs.field(init=False, repr=False)
    _clean: BreakerCore | _SlowPath = attrs.field(init=False, repr=False)
    # Likewise for call() and acall(), which check results.
    _call_clean: BreakerCore | _SlowPath = attrs.field(init=False, repr=False)

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
        # The instance is frozen: private state is set once, here (and by
        # _hooks_changed, as hooks come and go).
        set_private = functools.partial(object.__setattr__, self)
        live = live_hooks(self, self.hooks, self._hooks_changed)
        events = Delivery(render=self._render, live=live)
        # Transitions join the other events in the order they happen.
        core.log = events.queue
        set_private("_hooked", live.all)
        set_private("_core", core)
        set_private("_events", events)
        set_private("_lock", threading.Lock())
        # itertools.count's __next__ is atomic (with or without the GIL):
        # the lock-free paths of the other faces count with it.
        set_private("_fast_successes", itertools.count())
        set_private("_rejected", itertools.count())
        timed = self.slow_call_duration is not None
        set_private("_quiet", window is None and not timed)
        set_private("_fast", _fast_guards(self))
        self._hooks_changed()
        blocks: Blocks[_Token] = Blocks()
        set_private("_blocks", blocks)
        set_private("_held", blocks.held)
        set_private("_outer", blocks.outer)
        set_private("_gate", _SLOW_PATH if timed else core)
        # Lock-free successes of blocks are counted on the core, where the
        # GIL makes `+= 1` atomic; free-threaded builds count them through
        # _success() and its atomic counter.
        set_private("_clean", core if _gil.CELL_COUNTING else _SLOW_PATH)
        checked = self.failure_result is not None
        set_private(
            "_call_clean",
            core if _gil.CELL_COUNTING and not checked else _SLOW_PATH,
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
        if growing and self.recovery_time == 0:
            problems.append(
                "'recovery_time' must be > 0 when 'recovery_multiplier' > 1:"
                " a zero open period never grows (got recovery_time=0.0,"
                f" recovery_multiplier={self.recovery_multiplier!r})"
            )
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
        if self.max_staleness is not None and self.store is None:
            problems.append(
                "'max_staleness' applies only with a 'store'"
                f" (got {self.max_staleness!r})"
            )
        collect(problems)

    def _hooks_changed(self) -> None:
        """
        Follow the live hooks: track transitions while there is a hook, and
        time every call while one asks for per-call events.
        """
        live = self._live
        observed = bool(live.calls)
        with self._lock:
            self._core.track = bool(live.all)
            self._core.hold(observed)
            self._fast[3](observed)
            object.__setattr__(self, "_observed", observed)
            object.__setattr__(
                self,
                "_timed",
                observed or self.slow_call_duration is not None,
            )

    # --- reading -----------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """
        The current state.

        A half-open breaker whose trials did not report within
        *half_open_max_wait* reads as OPEN (it went back to OPEN as of the
        end of the wait), whether or not a call was made since.
        """
        core = self._core
        if core.expires_at < _INF:
            self._expire()
        return core.state

    def _expire(self) -> None:
        """
        Send a half-open breaker whose wait ran out back to OPEN now.
        """
        now = self.clock.now()
        core = self._core
        if now >= core.expires_at:
            with self._lock:
                core.expire(now)
            if core.log:
                self._events.deliver()

    def statistics(self) -> CircuitBreakerStatistics:
        """
        Return a snapshot of the breaker's state and counters.
        """
        now = self.clock.now()
        core = self._core
        cell_successes, cell_rejected = self._fast[2]()
        with self._lock:
            core.expire(now)
            calls, failures, slow = core.window_totals(now)
            failure_rate, slow_rate = core.rates(now)
            stats = CircuitBreakerStatistics(
                name=self.name,
                state=core.state,
                successes=core.successes
                + core.unlocked_successes
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
                transitions={
                    state.value: count for state, count in core.entered.items()
                },
            )
        if core.log:
            self._events.deliver()
        return stats

    # --- manual control ----------------------------------------------------

    def _control(self, action: Callable[[float], None]) -> None:
        now = self.clock.now()
        with self._lock:
            action(now)
        if self._core.log:
            self._events.deliver()

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

    # --- the guard's steps -------------------------------------------------

    def _enter(self) -> _Token:
        """
        Admit a call: return its token (its epoch, with its start time
        when calls are timed) or raise :class:`CircuitOpenError`.
        """
        core = self._core
        epoch = core.gate
        if epoch < 0:
            now = self.clock.now()
            until = core.refuse_until
            if now < until:
                raise self._refuse(now, until - now)
            epoch = self._admit(now)
        if not self._timed:
            return epoch
        return epoch, self.clock.now()

    async def _aenter(self) -> _Token:
        """
        Admit a call (it never waits): see :meth:`_enter`.
        """
        return self._enter()

    def _exit(
        self, token: _Token, exc: BaseException | None, result: object
    ) -> None:
        """
        Record the outcome of the call admitted with *token*: *exc* when it
        raised, else *result* (:data:`~stalwart._faces.NO_RESULT` for a
        block, which ``failure_result`` does not judge).
        """
        if exc is None:
            # The lock-free success of call() and the with faces, for the
            # faces built on the steps (a pipeline's runs of guards).
            clean = self._clean if result is NO_RESULT else self._call_clean
            if not clean.dirty:
                clean.unlocked_successes += 1
                return
        epoch, start = token if isinstance(token, tuple) else (token, None)
        if exc is not None:
            self._failed(epoch, start, exc)
        elif result is NO_RESULT:
            self._success(epoch, start)
        else:
            self._succeeded(epoch, start, result)

    async def _aexit(
        self, token: _Token, exc: BaseException | None, result: object
    ) -> None:
        """
        Record the outcome of a call: see :meth:`_exit`.
        """
        self._exit(token, exc, result)

    def _undo(self, token: _Token) -> None:
        """
        Give back the permit of a call that did not happen (its trial slot
        too); nothing is counted.
        """
        with self._lock:
            self._core.undo(token[0] if isinstance(token, tuple) else token)

    def _admit(self, now: float) -> int:
        """
        Admit a call under the lock, once the gate is shut and the open
        period is over: return its epoch or raise.

        Whatever a hook raises while the transitions of this admission are
        delivered, the permit is given back.
        """
        core = self._core
        # Held open for per-call events while admitting every call: no
        # lock needed.  The generation is read first, so a transition in
        # between makes the epoch stale (its outcome does not decide the
        # new state), as a call admitted through the open gate would be.
        generation = core.generation
        if core.held and core.state in _ADMITTING:
            return generation
        with self._lock:
            epoch = core.admit(now)
            retry_after = core.retry_after(now) if epoch < 0 else None
        if core.log:
            try:
                self._events.deliver()
            except BaseException:
                if epoch >= 0:
                    self._undo(epoch)
                raise
        if epoch < 0:
            raise self._refuse(now, retry_after)
        return epoch

    def _refuse(self, now: float, retry_after: float | None) -> Exception:
        # Returns the error for the caller to raise, so this frame is not
        # in its traceback.  Forced open refuses with retry_after inf, which
        # the error reads back as None.
        next(self._rejected)
        error = _new_refusal(CircuitOpenError, self.name, retry_after)
        if self._hooked:
            events = self._events
            events.post(
                CallRejected(primitive_name=self.name, at=now, error=error)
            )
            events.deliver()
        return error

    def _classify(self, exc: BaseException) -> int:
        if not isinstance(exc, Exception):
            return _IGNORED
        if self.ignore and self.ignore.matches(exc):
            return _IGNORED
        return FAILURE if self.failure_on.matches(exc) else 0

    def _failed(
        self, epoch: int, start: float | None, exc: BaseException
    ) -> None:
        """
        Record a call that raised *exc*.
        """
        try:
            outcome = self._classify(exc)
        except BaseException:
            # A predicate failed: give the permit back, let its error out.
            self._release(epoch, start, exc)
            raise
        if outcome == _IGNORED:
            self._release(epoch, start, exc)
        else:
            self._finish(epoch, start, outcome, exc)

    def _succeeded(
        self, epoch: int, start: float | None, result: object
    ) -> None:
        """
        Record a call that returned *result*.
        """
        check = self.failure_result
        if check is not None:
            try:
                failed = check(result)
            except BaseException:
                self._release(epoch, start)
                raise
            self._finish(epoch, start, FAILURE if failed else 0)
        else:
            self._success(epoch, start)

    def _success(self, epoch: int, start: float | None) -> None:
        if not self._core.dirty:
            # Nothing would change (and the call is not timed: a timed
            # breaker's core is always dirty): count it without the lock or
            # the clock.
            next(self._fast_successes)
        else:
            self._finish(epoch, start, 0)

    def _finish(
        self,
        epoch: int,
        start: float | None,
        flags: int,
        error: BaseException | None = None,
    ) -> None:
        """
        Record the outcome *flags* of a call admitted at *epoch* (at
        *start* on the clock, ``None`` when it was not timed).
        """
        now = self.clock.now()
        slow_after = self.slow_call_duration
        # A timed breaker's tokens always carry their start.
        if slow_after is not None and now - cast("float", start) >= slow_after:
            flags |= SLOW
        core = self._core
        if not self._observed:
            with self._lock:
                core.record(now, epoch, flags)
        else:
            event = self._call_finished(
                now, start, "failure" if flags & FAILURE else "success", error
            )
            with self._lock:
                core.log.append(event)  # before the transition it may cause
                core.record(now, epoch, flags)
        if core.log:
            self._events.deliver()

    def _release(
        self,
        epoch: int,
        start: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        """
        Forget a call that was neither a success nor a failure, giving back
        its trial slot.
        """
        core = self._core
        if not self._observed:
            with self._lock:
                core.release(epoch)
            return
        event = self._call_finished(self.clock.now(), start, "ignored", error)
        with self._lock:
            core.log.append(event)
            core.release(epoch)
        self._events.deliver()

    def _call_finished(
        self,
        now: float,
        start: float | None,
        outcome: str,
        error: BaseException | None = None,
    ) -> CallFinished:
        """
        Build the :class:`~stalwart.CallFinished` of a call that started at
        *start* (``None``: before calls were timed) and ended *now*.
        """
        return call_finished(
            self.name,
            now,
            _KIND_EVENT,
            outcome,
            None if start is None else now - start,
            error,
        )

    def _slow_call(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """
        The decorator's path while the gate is shut and hooks listen: the
        guard's steps, which refuse, time and report.  (While a hook asks
        for per-call events in a state that admits every call, the
        decorator's wrappers admit, time and report a call inline: see
        :func:`_fast_guards`.)
        """
        token = self._enter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._exit(token, exc, NO_RESULT)
            raise
        self._exit(token, None, NO_RESULT)
        return result

    async def _aslow_call(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """
        The async twin of :meth:`_slow_call`.
        """
        token = self._enter()
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            self._exit(token, exc, NO_RESULT)
            raise
        self._exit(token, None, NO_RESULT)
        return result

    def _render(self, transition: Transition) -> Event:
        """
        Turn a transition logged by the core into its event (at delivery,
        outside the lock).
        """
        previous, state, at, recovery_time = transition
        if state is OPEN:
            return CircuitOpened(
                primitive_name=self.name,
                at=at,
                previous=previous,
                state=state,
                recovery_time=recovery_time,
            )
        kind = _EVENTS.get(state, CircuitStateChanged)
        return kind(
            primitive_name=self.name, at=at, previous=previous, state=state
        )

    # --- faces -------------------------------------------------------------

    # call() and acall() are guard_call() and guard_acall() of _faces with
    # the steps inlined where they never wait: half the cost of acall().

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Call ``fn(*args, **kwargs)`` through the breaker.

        Raises:
            CircuitOpenError: If the breaker refused the call.
            TypeError: If *fn* returned something awaitable (use
                :meth:`acall`); its permit is given back and nothing is
                counted.
        """
        token = self._enter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._exit(token, exc, NO_RESULT)
            raise
        if type(result) not in PLAIN and is_awaitable(result):
            self._undo(token)
            raise awaitable_result_error(
                self._kind, self.name, "call()", "acall()", result
            )
        clean = self._call_clean
        if clean.dirty:
            self._exit(token, None, result)
        else:
            clean.unlocked_successes += 1
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
            TypeError: If *fn* returned something that cannot be awaited
                (use :meth:`call`); its permit is given back and nothing is
                counted.
        """
        token = self._enter()
        try:
            awaitable = fn(*args, **kwargs)
        except BaseException as exc:
            self._exit(token, exc, NO_RESULT)
            raise
        if type(awaitable) is not CoroutineType and not is_awaitable(
            awaitable
        ):
            self._undo(token)
            raise not_awaitable_error(
                self._kind, self.name, "acall()", "call()", awaitable
            )
        try:
            result = await awaitable
        except BaseException as exc:
            self._exit(token, exc, NO_RESULT)
            raise
        clean = self._call_clean
        if clean.dirty:
            self._exit(token, None, result)
        else:
            clean.unlocked_successes += 1
        return result

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Guard *fn*: a ``def`` or an ``async def`` function (or an object
        whose ``__call__`` is one), a generator function or an async
        generator function, whose whole iteration is then one call.
        """
        if (
            self._inlined()
            and not is_generator_function(fn)
            and not is_async_generator_function(fn)
        ):
            if is_async_callable(fn):
                afn = cast("Callable[P, Awaitable[Any]]", fn)
                return cast("Callable[P, T]", self._fast[1](afn))
            return self._fast[0](fn)
        return guard_decorate(self, fn)

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
        token = self._enter()
        if isinstance(token, tuple):
            return CircuitPermit(self, *token)
        return CircuitPermit(self, token, None)

    # The with faces inline Blocks.push / Blocks.pop and the closed path of
    # _enter / _exit: a block then costs little more than a decorated call.

    def __enter__(self) -> None:
        """
        Enter a guarded block.

        Raises:
            CircuitOpenError: If the breaker refused the block.
        """
        epoch = self._gate.gate
        token = epoch if epoch >= 0 else self._enter()
        frame = _getframe(1)
        if frame.f_globals is FORWARDING_GLOBALS:
            frame = caller(1)
        held = self._held
        if frame in held:
            self._blocks.push(frame, token)
        else:
            held[frame] = token

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """
        Record the outcome of the block; an exception is classified.
        """
        frame = _getframe(1)
        try:
            token = self._held.pop(frame)
        except KeyError:
            # Left through an exit stack (keyed by the frame that owns it),
            # or from another frame than the one that entered.
            token = self._blocks.pop(caller(1))
        else:
            if self._outer:
                self._blocks.unnest(frame)
        core = self._clean
        if exc is None and not core.dirty:
            core.unlocked_successes += 1
        else:
            self._exit(token, exc, NO_RESULT)

    async def __aenter__(self) -> None:
        """
        Enter a guarded block (``async with``).

        Raises:
            CircuitOpenError: If the breaker refused the block.
        """
        epoch = self._gate.gate
        token = epoch if epoch >= 0 else self._enter()
        frame = _getframe(1)
        if frame.f_globals is FORWARDING_GLOBALS:
            frame = caller(1)
        held = self._held
        if frame in held:
            self._blocks.push(frame, token)
        else:
            held[frame] = token

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """
        Record the outcome of the block; an exception is classified.
        """
        frame = _getframe(1)
        try:
            token = self._held.pop(frame)
        except KeyError:
            # Left through an exit stack (keyed by the frame that owns it),
            # or from another frame than the one that entered.
            token = self._blocks.pop(caller(1))
        else:
            if self._outer:
                self._blocks.unnest(frame)
        core = self._clean
        if exc is None and not core.dirty:
            core.unlocked_successes += 1
        else:
            self._exit(token, exc, NO_RESULT)


_Token: TypeAlias = int | tuple[int, float]
"""What the guard's steps hand over: the epoch of an admitted call, with
its start time on the breaker's clock when calls are timed."""


@final
class _SlowPath:
    """
    Read by the ``with`` faces instead of the core where they must take the
    slow path: a gate always shut (calls are timed: every block takes the
    step that reads the clock), or a core always dirty (free-threaded
    builds: every success is counted through the atomic counter).
    """

    __slots__ = ()

    gate = -1
    dirty = True
    unlocked_successes = 0  # never counted here: it is always dirty


_SLOW_PATH = _SlowPath()


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
        self, breaker: CircuitBreaker, epoch: int, start: float | None
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
        self._breaker._release(self._epoch, self._start)


@final
@attrs.frozen(kw_only=True)
class CircuitBreakerStatistics(Statistics):
    """
    A snapshot of a :class:`CircuitBreaker`, from
    :meth:`CircuitBreaker.statistics`.

    Attributes:
        name: The breaker's name.
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
        transitions: How many times it entered each state, by the state's
            value (``"open"``, ``"half_open"``...).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       *name*, *transitions* and :meth:`~stalwart.Statistics.to_dict`.
    """

    name: str
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
    transitions: dict[str, int] = attrs.field(hash=False)

    @property
    def calls(self) -> int:
        """
        Calls that ran and reported (successes, failures and ignored).
        """
        return self.successes + self.failures + self.ignored


_FastGuards: TypeAlias = tuple[
    Decorator,
    AsyncDecorator,
    Callable[[], tuple[int, int]],
    Callable[[bool], None],
]


def _fast_guards(breaker: CircuitBreaker) -> _FastGuards:
    """
    Build the inlined wrappers of *breaker*'s decorator.

    The closed path reads one attribute before the call and one after it:
    no lock, no clock, no extra frame.  Successes and refusals are counted
    in the two cells below, which every wrapper built here shares.

    While a hook asks for per-call events, the core holds the gate shut
    (so the closed path above is never taken) and ``observing`` is set:
    in a state that admits every call, the wrapper then admits the call
    with the generation of the moment, times it and reports it inline.  A
    success that changes nothing but the count (``_quiet``, no failure
    streak) is counted in the cell and its event handed to
    :meth:`Delivery.send <stalwart._events.Delivery.send>` (it causes no
    transition for the event to come before); any other outcome is
    recorded under the lock by ``_finish`` / ``_failed``, its event posted
    first, before the transition it may cause (the documented order).

    The closed path comes first in each wrapper and jumps over nothing:
    the shut path after it (refusals, the observed calls) may grow
    without the closed path paying for it, and a call it admits loops
    back to the closed path's steps.
    """
    # Floats: adding to one takes its result from the float free list,
    # cheaper than a new int, and they count exactly up to 2**53.
    successes = rejected = 0.0
    core, clock, name = breaker._core, breaker.clock, breaker.name
    # What neither the closed nor the refusing path reads, in one closure
    # variable: each one costs a copy at every call.  Its last item says
    # whether a hook asks for per-call events: set by watch() under the
    # breaker's lock, with the core's hold.
    rest: list[Any] = [
        breaker._hooked,  # the live list: hooks may be attached later
        breaker._admit,
        breaker._slow_call,
        breaker._failed,
        breaker._finish,
        breaker._aslow_call,
        breaker._quiet,
        breaker._events.send,
        False,  # observing
    ]

    def guard(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            nonlocal successes, rejected
            epoch = core.gate
            # The closed path first, so it jumps over nothing; a call the
            # shut path admits loops back to it.
            while True:
                if epoch >= 0:
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:
                        rest[3](epoch, None, exc)  # _failed
                        raise
                    if core.dirty:
                        rest[4](epoch, None, 0)  # _finish
                    else:
                        successes += 1.0
                    return result
                if rest[8]:  # observing
                    # The generation first: a transition in between makes
                    # it stale.
                    epoch = core.generation
                    state = core.state
                    if state is CLOSED or state in _ADMITTING:
                        start = clock.now()
                        try:
                            result = fn(*args, **kwargs)
                        except BaseException as exc:
                            rest[3](epoch, start, exc)  # _failed
                            raise
                        if rest[6] and not core.consecutive_failures:
                            successes += 1.0
                            now = clock.now()
                            rest[7](  # Delivery.send
                                call_finished(
                                    name,
                                    now,
                                    _KIND_EVENT,
                                    "success",
                                    now - start,
                                )
                            )
                        else:
                            rest[4](epoch, start, 0)  # _finish
                        return result
                if rest[0]:  # hooks listen: the steps that tell them
                    return rest[2](fn, args, kwargs)  # type: ignore[no-any-return]  # _slow_call
                now = clock.now()
                until = core.refuse_until
                if now < until:
                    rejected += 1.0  # _refuse, inlined: a frame less
                    raise _new_refusal(CircuitOpenError, name, until - now)
                epoch = rest[1](now)  # _admit

        return guarded

    def aguard(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            nonlocal successes, rejected
            epoch = core.gate
            while True:
                if epoch >= 0:
                    try:
                        result = await fn(*args, **kwargs)
                    except BaseException as exc:
                        rest[3](epoch, None, exc)  # _failed
                        raise
                    if core.dirty:
                        rest[4](epoch, None, 0)  # _finish
                    else:
                        successes += 1.0
                    return result
                if rest[8]:  # observing
                    epoch = core.generation
                    state = core.state
                    if state is CLOSED or state in _ADMITTING:
                        start = clock.now()
                        try:
                            result = await fn(*args, **kwargs)
                        except BaseException as exc:
                            rest[3](epoch, start, exc)  # _failed
                            raise
                        if rest[6] and not core.consecutive_failures:
                            successes += 1.0
                            now = clock.now()
                            rest[7](  # Delivery.send
                                call_finished(
                                    name,
                                    now,
                                    _KIND_EVENT,
                                    "success",
                                    now - start,
                                )
                            )
                        else:
                            rest[4](epoch, start, 0)  # _finish
                        return result
                if rest[0]:  # hooks listen: the steps that tell them
                    return await rest[5](fn, args, kwargs)  # type: ignore[no-any-return]  # _aslow_call
                now = clock.now()
                until = core.refuse_until
                if now < until:
                    rejected += 1.0  # _refuse, inlined: a frame less
                    raise _new_refusal(CircuitOpenError, name, until - now)
                epoch = rest[1](now)  # _admit

        return guarded

    def counts() -> tuple[int, int]:
        return int(successes), int(rejected)

    def watch(on: bool) -> None:
        rest[8] = on

    return guard, aguard, counts, watch
