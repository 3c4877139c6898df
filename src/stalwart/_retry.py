"""
Retry: run a call again after a failure, waiting a backoff in between.

Retry is a *run step*, not a guard: it re-runs the call, so its faces are
``call`` / ``acall`` (the protocol a pipeline chains), the decorators and
the attempt loops, all thin drivers over one failure path
(:func:`_failure_path`) and the pure cores under ``_core``.  The shell owns
the clock, randomness, user predicates, events and the faces.

The time budget starts when the call starts, so a decorated call with a
*timeout* costs one clock read, one ``try`` around the call and one
counter increment when it succeeds at once; every other piece of per-call
state is made only once an attempt fails.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import sys
import threading
import warnings

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
)
from datetime import timedelta
from pathlib import Path
from types import CoroutineType, TracebackType
from typing import Any, ClassVar, Literal, TypeAlias, cast, final

import attrs

from . import _gil
from ._clock import DEFAULT_CLOCK, Clock
from ._core import backoff as _backoff
from ._core.budget import BudgetCore
from ._core.retry import GiveUp, RetryCore
from ._deadline import _current as _current_deadline
from ._errors import ConfigurationError, RejectedError, RetryExhaustedError
from ._events import (
    Hook,
    RetryBudgetExhausted,
    RetryGaveUp,
    RetryScheduled,
    call_finished,
    hook_failed,
)
from ._events import emit as _emit
from ._faces import (
    async_callable_error,
    awaitable_result_error,
    blocking_on_loop,
    is_async_callable,
    is_async_generator_function,
    is_awaitable,
    is_generator_function,
    not_awaitable_error,
    on_loop_thread,
)
from ._observe import LiveHooks, Observable, live_hooks
from ._statistics import Statistics
from ._typing import AsyncDecorator, Decorator, P, T
from ._validators import (
    ExceptionFilter,
    collect,
    duration,
    finite,
    ge,
    hooks,
    le,
    non_empty_str,
    non_negative,
    optional_duration,
    optional_seconds,
    seconds,
    sync_callable,
    to_exception_filter,
    valid_clock,
    valid_hooks,
)


Jitter: TypeAlias = Literal["none", "full", "equal"] | float
"""A jitter kind is ``"none"``, ``"full"``, ``"equal"``, or a fraction in
``(0, 1]`` meaning "+/- that fraction of the delay"."""

WaitFunction: TypeAlias = Callable[[int, Any], "float | timedelta"]
"""A user backoff is ``(attempt, outcome) -> seconds``, where *outcome* is
the exception that failed the attempt, or its rejected result."""

_KIND = "Retry"
_KIND_EVENT = "retry"  # the kind its per-call events name
_STOP = -1.0  # what the decision returns to end the loop on its outcome
_GAVE_UP = -2.0  # the same, after giving up (the outcome is still bad)
_get_deadline = _current_deadline.get
_NUMBERS = frozenset({int, float})  # exact classes (so not bool): fast
_NO_RESULT = object()  # an Attempt given no result
# Results that are never awaitable: a set lookup spares call() a call.
_MISUSE: Any = object()  # what an observed acall() got that is no awaitable
_PLAIN = frozenset({type(None), bool, int, float, str, bytes, tuple, list})
_WAIT_MAX = 5.0  # the default backoff's cap when wait_max is not given
_MIN_WINDOW = 0.001  # a shorter budget window cannot slide in slots
_PACKAGE = str(Path(__file__).parent) + os.sep  # as in co_filename

# The failure path (see _failure_path): the decision after a bad outcome,
# the check right before a wait, and the sync and async retry loops.
_Decide: TypeAlias = Callable[
    [int, "Exception | None", object, float, float], float
]
_Settle: TypeAlias = Callable[
    [int, float, float, "Exception | None", object], float
]
_Run: TypeAlias = Callable[
    [Callable[..., Any], Any, Any, "Exception | None", Any, float], Any
]
_ARun: TypeAlias = Callable[
    [Callable[..., Awaitable[Any]], Any, Any, "Exception | None", Any, float],
    Awaitable[Any],
]


# -- validation ---------------------------------------------------------------


def _fail(name: str, requirement: str, value: object) -> ConfigurationError:
    return ConfigurationError(
        f"{name!r} must be {requirement} (got {value!r})"
    )


def _real(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    """
    Validator: an ``int`` or a ``float`` a float can hold (not ``None``,
    not a ``bool``, not an int beyond the float range, which the
    comparison validators cannot test).
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(attr.name, "a number", value)
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            raise _fail(attr.name, "finite", value) from None


def _check_attempts(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    # Not _validators.ge: an int beyond the float range is a fine limit.
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(attr.name, "an int", value)
    if value < 1:
        raise _fail(attr.name, ">= 1", value)


def _check_jitter(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if value in ("none", "full", "equal") and isinstance(value, str):
        return
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0.0 < value <= 1.0
    ):
        return
    msg = (
        f"{attr.name!r} must be 'none', 'full', 'equal' or a fraction in "
        f"(0, 1] (got {value!r})"
    )
    raise ConfigurationError(msg)


# A wait: seconds, at least 0, at most what a clock can sleep.
_wait_validators = attrs.validators.and_(
    duration, non_negative, le(_backoff.LONGEST_WAIT)
)
_multiplier_validators = attrs.validators.and_(_real, ge(1), finite)


def _check_result_exhausted(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if value not in ("return", "raise") or not isinstance(value, str):
        msg = f"{attr.name!r} must be 'return' or 'raise' (got {value!r})"
        raise ConfigurationError(msg)


def _check_bool(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, bool):
        msg = f"{attr.name!r} must be a bool (got {value!r})"
        raise ConfigurationError(msg)


# -- backoffs -----------------------------------------------------------------


@final
@attrs.frozen(kw_only=True)
class ConstantBackoff:
    """
    Wait the same *delay* before every retry.

    Args:
        delay: The wait, in seconds (at most ``1e9``).

    .. versionadded:: 0.1.0
    """

    delay: float = attrs.field(
        default=1.0, converter=seconds, validator=_wait_validators
    )
    uses_random: ClassVar[bool] = False

    def compute(self, attempt: int, previous: float, u: float) -> float:
        """
        Return the wait after attempt *attempt* failed.
        """
        return _backoff.constant(self.delay, self.delay)


class _Jittered:
    """
    What the strategies with a *jitter* share.
    """

    __slots__ = ()

    jitter: Jitter

    @property
    def uses_random(self) -> bool:
        """
        Whether a uniform draw is needed (any jitter but ``"none"``).
        """
        return self.jitter != "none"


@final
@attrs.frozen(kw_only=True)
class LinearBackoff(_Jittered):
    """
    Wait ``initial + increment * (n - 1)`` before retry *n*, at most *cap*,
    then apply *jitter*.

    Args:
        initial: The first wait, in seconds.
        increment: Added to the wait at every retry, in seconds.
        cap: The longest wait, jitter included, in seconds (at most
            ``1e9``).
        jitter: ``"none"``, ``"full"``, ``"equal"`` or a fraction.

    .. versionadded:: 0.1.0
    """

    initial: float = attrs.field(
        default=0.1, converter=seconds, validator=_wait_validators
    )
    increment: float = attrs.field(
        default=0.1, converter=seconds, validator=_wait_validators
    )
    cap: float = attrs.field(
        default=5.0, converter=seconds, validator=_wait_validators
    )
    jitter: Jitter = attrs.field(default="none", validator=_check_jitter)

    def compute(self, attempt: int, previous: float, u: float) -> float:
        """
        Return the wait after attempt *attempt* failed.
        """
        delay = _backoff.linear(
            attempt, self.initial, self.increment, self.cap
        )
        return _backoff.jitter(delay, self.jitter, self.cap, u)


@final
@attrs.frozen(kw_only=True)
class ExponentialBackoff(_Jittered):
    """
    Wait ``initial * multiplier ** (n - 1)`` before retry *n*, at most
    *cap*, then apply *jitter*.

    Args:
        initial: The first wait, in seconds.
        multiplier: The growth factor, at least ``1``.
        cap: The longest wait, jitter included, in seconds (at most
            ``1e9``).
        jitter: ``"none"``, ``"full"``, ``"equal"`` or a fraction.

    .. versionadded:: 0.1.0
    """

    initial: float = attrs.field(
        default=0.1, converter=seconds, validator=_wait_validators
    )
    multiplier: float = attrs.field(
        default=2.0, validator=_multiplier_validators
    )
    cap: float = attrs.field(
        default=5.0, converter=seconds, validator=_wait_validators
    )
    jitter: Jitter = attrs.field(default="full", validator=_check_jitter)

    def compute(self, attempt: int, previous: float, u: float) -> float:
        """
        Return the wait after attempt *attempt* failed.
        """
        delay = _backoff.exponential(
            attempt, self.initial, self.multiplier, self.cap
        )
        return _backoff.jitter(delay, self.jitter, self.cap, u)


@final
@attrs.frozen(kw_only=True)
class DecorrelatedJitterBackoff:
    """
    Decorrelated jitter: each wait is drawn from ``[initial, previous *
    multiplier]``, at most *cap*; the waits grow on average but not
    monotonically, and concurrent callers spread out.

    Args:
        initial: The shortest wait, in seconds.
        multiplier: How far the next wait may grow past the previous one.
        cap: The longest wait, in seconds (at most ``1e9``).

    .. versionadded:: 0.1.0
    """

    initial: float = attrs.field(
        default=0.1, converter=seconds, validator=_wait_validators
    )
    multiplier: float = attrs.field(
        default=3.0, validator=_multiplier_validators
    )
    cap: float = attrs.field(
        default=5.0, converter=seconds, validator=_wait_validators
    )
    uses_random: ClassVar[bool] = True

    def compute(self, attempt: int, previous: float, u: float) -> float:
        """
        Return the wait after attempt *attempt* failed, given the
        *previous* wait.
        """
        return _backoff.decorrelated(
            previous, self.initial, self.multiplier, self.cap, u
        )


Backoff: TypeAlias = (
    ConstantBackoff
    | LinearBackoff
    | ExponentialBackoff
    | DecorrelatedJitterBackoff
)
"""One of the backoff strategies."""

_BACKOFFS = (
    ConstantBackoff,
    LinearBackoff,
    ExponentialBackoff,
    DecorrelatedJitterBackoff,
)


def _to_jitter_source(
    value: random.Random | Callable[[], float],
) -> Callable[[], float]:
    if isinstance(value, random.Random):
        return value.random
    if callable(value):
        if is_async_callable(value):
            raise async_callable_error(
                "jitter_source", value, "a draw must be a float, not awaited"
            )
        return value
    msg = (
        "'jitter_source' must be a random.Random or a callable "
        f"(got {value!r})"
    )
    raise ConfigurationError(msg)


def _private_random() -> Callable[[], float]:
    # Each Retry gets its own generator: jitter never touches, nor depends
    # on, the global ``random`` state of the user's program.
    return random.Random().random  # jitter is not crypto


# -- what predicates answer ---------------------------------------------------


@final
@attrs.frozen
class RetryAfter:
    """
    A predicate's answer meaning "retry, after *seconds*" instead of the
    backoff (the value of a ``Retry-After`` header, say).

    A predicate given to ``on=`` or ``on_result=`` answers by truthiness
    (``True``: retry after the backoff; ``False`` or ``None``: do not
    retry), so a number it returns is a yes or a no, never a delay; a
    delay is a ``RetryAfter`` or a :class:`~datetime.timedelta`.  The wait
    is capped by the retry's ``retry_after_max``.

    Args:
        seconds: The wait, in seconds or as a ``timedelta``; at least 0.

    Raises:
        ConfigurationError: If *seconds* is not a number of seconds >= 0.

    .. versionadded:: 0.2.0
    """

    seconds: float = attrs.field(
        converter=seconds,
        validator=attrs.validators.and_(duration, non_negative),
    )


def _verdict(value: object) -> tuple[bool, float | None]:
    """
    Read what a predicate returned: retry or not, and a dictated delay.

    A :class:`RetryAfter` or a ``timedelta`` means "retry after that
    delay"; anything else is read by truthiness (a number is a yes or a
    no, never a delay).
    """
    if value is True:
        return True, None
    if value is None or value is False:
        return False, None
    if value.__class__ is RetryAfter:
        return True, value.seconds
    if isinstance(value, timedelta):
        return True, value.total_seconds()
    return bool(value), None


def _user_seconds(value: object) -> float:
    """
    Read the wait a user's ``wait=`` callable returned, in seconds.

    Raises:
        TypeError: If it is neither a number nor a ``timedelta``.
    """
    if value.__class__ in _NUMBERS:
        return cast("float", value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    msg = (
        f"'wait' returned {value!r}: it must return a number of seconds "
        "or a timedelta"
    )
    raise TypeError(msg)


def _chain(error: BaseException, cause: BaseException) -> None:
    """
    Give *error*, raised while *cause* was being judged, *cause* as the
    ``__context__`` at the end of its chain, as an ``except`` block around
    the judging would have (the faces judge outside one, so that the
    failure they re-raise gets no context of its own).
    """
    link: BaseException | None = cause
    for _ in range(100):  # a chain leading back to *error*: leave it
        if link is None:
            break
        if link is error:
            return
        link = link.__context__
    link = error
    for _ in range(100):
        context = link.__context__
        if context is cause:
            return
        if context is None:
            link.__context__ = cause
            return
        link = context


def _stacklevel() -> int:
    """
    Return the ``stacklevel`` that points a warning issued by the caller
    of this function at the first frame outside stalwart (the user's
    line, whichever face it went through).
    """
    frame = sys._getframe(2)  # the caller's caller, stacklevel 2
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(
        _PACKAGE
    ):
        frame = frame.f_back
        level += 1
    return level


@final
class _Counter:
    """
    A counter incremented without a lock: ``itertools.count.__next__`` is
    one atomic C call under the GIL.  Reads consume one step, which
    :meth:`value` subtracts; call it under a lock.
    """

    __slots__ = ("_reads", "incr")

    def __init__(self) -> None:
        self.incr = itertools.count().__next__
        self._reads = 0

    def value(self) -> int:
        n = self.incr() - self._reads
        self._reads += 1
        return n


@final
@attrs.frozen(kw_only=True)
class _TestingMode:
    attempts: int | None


# The documented testing seam (stalwart.testing.set_retry_testing).  Read
# without a lock on the failure path: rebinding a global is atomic.
_testing: _TestingMode | None = None


def _set_testing(mode: _TestingMode | None) -> _TestingMode | None:
    global _testing
    previous, _testing = _testing, mode
    return previous


# -- retry budget -------------------------------------------------------------


@final
@attrs.frozen(kw_only=True)
class RetryBudgetStatistics(Statistics):
    """
    A snapshot of a :class:`RetryBudget`'s counters.

    Attributes:
        name: The budget's name.
        calls: Calls counted in the current window.
        retries: Retries granted in the current window.
        refused: Retries refused since the budget was built.
        available: Retries the budget would grant now.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       *name* and :meth:`~stalwart.Statistics.to_dict`.
    """

    name: str
    calls: int
    retries: int
    refused: int
    available: float


@final
@attrs.frozen(kw_only=True, eq=False)
class RetryBudget:
    """
    A budget of retries shared by several :class:`Retry` objects, to
    prevent retry storms.

    Over the last *window* seconds, retries are allowed up to
    ``ratio * calls + min_per_second * window``, where *calls* counts the
    first attempts of every call made through the retries that share it.
    When it is spent, a call that would retry fails with its last error
    instead, and the retry emits :class:`~stalwart.RetryBudgetExhausted`.

    Args:
        name: Names the budget in events.
        ratio: Retries allowed per call, e.g. ``0.2`` for 20% extra load.
        min_per_second: Retries always allowed per second, so that a
            service with little traffic can still retry.
        window: How far back calls and retries are counted, in seconds
            (at least ``0.001``).  The window slides in tenths of itself.
        clock: The clock the window is measured on.

    .. versionadded:: 0.1.0
    """

    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    ratio: float = attrs.field(
        default=0.2,
        validator=attrs.validators.and_(_real, non_negative, finite),
    )
    min_per_second: float = attrs.field(
        default=1.0,
        validator=attrs.validators.and_(_real, non_negative, finite),
    )
    window: float = attrs.field(
        default=10.0,
        converter=seconds,
        validator=attrs.validators.and_(duration, ge(_MIN_WINDOW), finite),
    )
    clock: Clock = attrs.field(
        default=DEFAULT_CLOCK, validator=valid_clock, repr=False
    )
    _core: BudgetCore = attrs.field(init=False, repr=False)
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )
    _refused: list[int] = attrs.field(
        init=False, repr=False, factory=lambda: [0]
    )

    def __attrs_post_init__(self) -> None:
        object.__setattr__(
            self,
            "_core",
            BudgetCore(self.ratio, self.min_per_second, self.window),
        )
        if self.ratio == 0 and self.min_per_second == 0:
            warnings.warn(
                "RetryBudget(ratio=0, min_per_second=0) never allows a retry",
                stacklevel=3,
            )

    def _deposit(self) -> None:
        now = self.clock.now()
        with self._lock:
            self._core.deposit(now)

    def _withdraw(self) -> bool:
        now = self.clock.now()
        with self._lock:
            granted = self._core.withdraw(now)
            if not granted:
                self._refused[0] += 1
        return granted

    def statistics(self) -> RetryBudgetStatistics:
        """
        Return a snapshot of the budget's counters.

        .. versionadded:: 0.1.0
        """
        now = self.clock.now()
        with self._lock:
            available = self._core.allowance(now)
            return RetryBudgetStatistics(
                name=self.name,
                calls=self._core.calls,
                retries=self._core.retries,
                refused=self._refused[0],
                available=available,
            )


def _check_budget(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if value is not None and not isinstance(value, RetryBudget):
        msg = f"{attr.name!r} must be a RetryBudget or None (got {value!r})"
        raise ConfigurationError(msg)


# -- retry --------------------------------------------------------------------


RetryOn: TypeAlias = (
    type[Exception]
    | tuple[type[Exception], ...]
    | Callable[[Exception], object]
    | ExceptionFilter
)
"""What ``on=`` accepts: exception types, or a predicate that answers
whether to retry (by truthiness), or with a :class:`RetryAfter` or a
``timedelta``, the delay to retry after."""


def _to_on(value: RetryOn) -> ExceptionFilter:
    if value is None:
        msg = (
            "'on' must be an exception type, a tuple of them, or a "
            "predicate (got None); on=() retries no exception"
        )
        raise ConfigurationError(msg)
    spec = to_exception_filter(value, "on")
    for kind in spec.types:
        if not issubclass(kind, Exception):
            msg = (
                "'on' must name Exception subclasses; "
                f"{kind.__name__} is never retried (got {value!r})"
            )
            raise ConfigurationError(msg)
    return spec


def _check_wait_max(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if value is not None:
        _wait_validators(inst, attr, value)


@final
@attrs.frozen(kw_only=True)
class RetryStatistics(Statistics):
    """
    A snapshot of a :class:`Retry`'s counters since it was built.

    Attributes:
        name: The retry's name.
        calls: Calls started (through any face).
        retries: Retries made: waits started (or skipped, when zero)
            before another attempt.
        give_ups: Calls that ended on a bad outcome: retrying stopped
            (attempts, time, deadline or budget) while the outcome was
            still bad, or the outcome was not one to retry (an exception
            *on* does not cover).  Every one of them also sends a
            :class:`~stalwart.RetryGaveUp` event saying why.
        give_ups_by_reason: The give-ups by reason: ``"attempts"``,
            ``"timeout"``, ``"deadline"``, ``"budget"`` and
            ``"not_retryable"``.
        total_wait: The time spent waiting between attempts, in seconds.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       *name*, *give_ups_by_reason*, *total_wait* and
       :meth:`~stalwart.Statistics.to_dict`.
    """

    name: str
    calls: int
    retries: int
    give_ups: int
    give_ups_by_reason: dict[str, int] = attrs.field(factory=dict, hash=False)
    total_wait: float = 0.0


@final
class Attempt:
    """
    One attempt of a retry loop: ``for attempt in retry: with attempt:``.

    Entering it does nothing; leaving it with an exception that is to be
    retried swallows the exception and schedules the next attempt, which
    the loop waits for.  An exception that is not retried, or the last one
    when the retry gives up, leaves the ``with`` block unchanged.  When
    retrying stops only at the next step of the loop (the time budget or
    the deadline was spent by code after the ``with`` block, or by a slow
    hook), the loop raises the swallowed exception there.

    A block that produces a result hands it over with :meth:`set_result`,
    so the retry's *on_result* can ask for another attempt.

    Attributes:
        number: The attempt's number, ``1`` for the first.

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "_delay",
        "_error",
        "_judged",
        "_previous",
        "_raised",
        "_result",
        "_retry",
        "_start",
        "number",
    )

    def __init__(
        self, retry: Retry, number: int, start: float, previous: float
    ) -> None:
        self._retry = retry
        self.number = number
        self._start = start
        self._previous = previous
        self._delay = _STOP
        self._result: object = _NO_RESULT
        self._error: Exception | None = None
        self._judged: object = None
        # What left the block (not retried), for per-call events.
        self._raised: BaseException | None = None

    def __repr__(self) -> str:
        return f"<Attempt {self.number} of {self._retry.name!r}>"

    def set_result(self, value: object) -> None:
        """
        Give the retry this attempt's result.

        When the block ends without an exception, the retry's *on_result*
        judges *value* as it judges what a decorated function returns: a
        rejected result is retried, and when retrying stops on one,
        *result_exhausted* says whether the loop just ends (*value* is the
        last result) or raises :class:`~stalwart.RetryExhaustedError`.
        Without *on_result*, it has no effect.  Let the block end rather
        than ``return`` from it: returning leaves the loop, retry or not.

        .. versionadded:: 0.1.0
        """
        self._result = value

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        retry = self._retry
        result = self._result
        if exc is None:
            if result is _NO_RESULT or retry.on_result is None:
                return False
        elif isinstance(exc, Exception):
            result = None
        else:  # BaseExceptions that are not Exceptions are never retried
            self._raised = exc
            return False
        # The loop counts the retry once it has checked the time again.
        self._raised = exc
        delay = retry._decide(
            self.number, exc, result, self._start, self._previous
        )
        self._delay = delay
        if delay < 0.0:
            return False
        self._error, self._judged = exc, result
        return True

    def _step(self) -> float:
        """
        Return the wait before the next attempt, or ``_STOP`` to end the
        loop, checking the time budget and the deadline once more right
        before the wait (code after the ``with`` block took time).

        Raises:
            Exception: The swallowed exception, when retrying stops here.
        """
        delay = self._delay
        if delay < 0.0:
            return delay
        retry = self._retry
        error, self._error = self._error, None
        try:
            delay = retry._settle(
                self.number, self._start, delay, error, self._judged
            )
            if delay < 0.0:
                if error is not None:
                    raise error
                return delay
        finally:
            error = None  # no frame <-> traceback cycle
        return delay


@final
@attrs.frozen(kw_only=True, eq=False)
class Retry(Observable):
    """
    Call again after a failure, waiting a backoff between attempts.

    Use it as a decorator on a ``def`` or an ``async def`` (each call has
    its own attempt count), on a generator function or an async one (the
    call is re-run only until its first item is yielded), with
    :meth:`call`/:meth:`acall`, or as an attempt loop for a block of
    code::

        for attempt in retry:
            with attempt:
                ...

    (``async for`` in coroutines).  A ``with retry:`` form cannot exist: a
    ``with`` block cannot be run again.

    Retrying stops at *attempts*, at the *timeout* (never starting a wait
    that would end at or past it: the retry gives up at once instead), at
    the deadline of an enclosing :class:`~stalwart.Timeout` (same rule),
    or when a shared *budget* is spent.  On giving up after an exception,
    that exception is re-raised unchanged.  ``KeyboardInterrupt``,
    ``SystemExit``, ``GeneratorExit`` and ``asyncio.CancelledError`` are
    never retried, and cancelling an async wait ends the call at once.

    A stalwart refusal (:class:`~stalwart.CircuitOpenError`,
    :class:`~stalwart.RateLimitExceededError`,
    :class:`~stalwart.BulkheadFullError`, any
    :class:`~stalwart.RejectedError`) that says when to come back
    (``retry_after``) is retried after exactly that wait, whatever *on*
    says, when the wait fits the time left (*honor_rejections*).

    All durations are in seconds (``float`` or ``timedelta``).

    Args:
        name: Names the retry in events and errors.
        attempts: The most attempts, counting the first call; ``None`` for
            no limit (then set a *timeout*).
        timeout: The time budget of the whole call, in seconds: it starts
            when the call starts and covers every attempt and every wait;
            ``None`` for no limit.
        on: Which exceptions to retry: a type, a tuple of types (``()``
            for none), or a predicate receiving the exception.  A
            predicate answers by truthiness (a number is a yes or a no,
            never a delay), or with a :class:`RetryAfter` or a
            ``timedelta`` to retry after that delay instead of the backoff
            (a ``Retry-After`` header, say).  A predicate whose every
            answer so far was ``None`` warns once: it is almost always a
            forgotten ``return``.
        on_result: A predicate on a successful result with the same
            answers as *on*: a truthy answer means the result is bad,
            retry.
        result_exhausted: When attempts run out on a result *on_result*
            still rejects: ``"return"`` it (the default) or ``"raise"``
            :class:`~stalwart.RetryExhaustedError`.
        wait: The backoff: a :class:`ConstantBackoff`,
            :class:`LinearBackoff`, :class:`ExponentialBackoff` or
            :class:`DecorrelatedJitterBackoff`, a number of seconds (a
            constant wait), or a callable ``(attempt, outcome) -> seconds``
            whose waits are used as given (a negative one counts as 0),
            capped only by a *wait_max* given with it.  ``None`` (the
            default) builds an exponential backoff from the ``wait_*``
            fields and *jitter*; a backoff or a number cannot be combined
            with them.
        wait_initial: The first wait of the default exponential backoff.
        wait_max: The longest wait of the default backoff, jitter included
            (5 s when not given), or the cap of a callable *wait* (none
            when not given).  Every wait is at most ``1e9`` s.
        wait_multiplier: The growth factor of the default backoff.
        jitter: The jitter of the default backoff: ``"none"``, ``"full"``
            (uniform in ``[0, wait]``), ``"equal"`` (in ``[wait/2, wait]``)
            or a fraction *f* (in ``wait * [1 - f, 1 + f]``).
        use_retry_after: Wait exactly what a retried exception's numeric
            ``retry_after`` attribute says, instead of the backoff.
        honor_rejections: Retry a stalwart rejection that carries a
            positive ``retry_after`` after that wait whatever *on* says,
            when it fits the time left.  A rejection without one is
            retried only if *on* covers it, after the backoff, and never
            after a zero wait (retrying a refusal at once cannot help).
            ``False`` treats rejections like any other exception.
        retry_after_max: The longest server-dictated wait honoured (from
            ``retry_after`` or a predicate); longer ones are cut to it.
        jitter_source: Where jitter draws from: a :class:`random.Random`
            or a callable returning a float in ``[0, 1)`` (a draw outside
            ``[0, 1]`` is brought back into it).  By default each retry
            has its own private generator.
        budget: A :class:`RetryBudget` shared with other retries.
        hooks: Receive :class:`~stalwart.RetryScheduled`,
            :class:`~stalwart.RetryGaveUp` and
            :class:`~stalwart.RetryBudgetExhausted` events; those asking
            for per-call events also get a :class:`~stalwart.CallFinished`
            per call, with its attempts.  More can be attached later with
            :meth:`~stalwart.Observable.add_hook`.
        clock: The clock used to wait and to measure *timeout*.

    Raises:
        ConfigurationError: On an invalid setting.
        TypeError: For an ``async def`` where a plain callable is needed.

    .. versionadded:: 0.1.0
    """

    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    attempts: int | None = attrs.field(default=10, validator=_check_attempts)
    timeout: float | None = attrs.field(
        default=45.0,
        converter=optional_seconds,
        validator=attrs.validators.and_(optional_duration, ge(0), finite),
    )
    on: ExceptionFilter = attrs.field(
        default=ExceptionFilter(types=(Exception,)), converter=_to_on
    )
    on_result: Callable[[Any], object] | None = attrs.field(
        default=None, validator=sync_callable
    )
    result_exhausted: Literal["return", "raise"] = attrs.field(
        default="return", validator=_check_result_exhausted
    )
    wait: Backoff | WaitFunction | float | timedelta | None = None
    wait_initial: float = attrs.field(
        default=0.1, converter=seconds, validator=_wait_validators
    )
    wait_max: float | None = attrs.field(
        default=None, converter=optional_seconds, validator=_check_wait_max
    )
    wait_multiplier: float = attrs.field(
        default=2.0, validator=_multiplier_validators
    )
    jitter: Jitter = attrs.field(default="full", validator=_check_jitter)
    use_retry_after: bool = attrs.field(default=True, validator=_check_bool)
    honor_rejections: bool = attrs.field(default=True, validator=_check_bool)
    retry_after_max: float = attrs.field(
        default=60.0, converter=seconds, validator=_wait_validators
    )
    jitter_source: Callable[[], float] = attrs.field(
        factory=_private_random,
        converter=_to_jitter_source,
        repr=False,
    )
    budget: RetryBudget | None = attrs.field(
        default=None, validator=_check_budget
    )
    hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=hooks, validator=valid_hooks
    )
    clock: Clock = attrs.field(
        default=DEFAULT_CLOCK, validator=valid_clock, repr=False
    )

    # Names the primitive in errors, as _faces.Guard's _kind does: a
    # pipeline chains a Retry through call() / acall(), its run step.
    _kind: ClassVar[str] = _KIND
    _core: RetryCore = attrs.field(init=False, repr=False)
    _strategy: Backoff | None = attrs.field(init=False, repr=False)
    _wait_fn: WaitFunction | None = attrs.field(init=False, repr=False)
    _wait_cap: float = attrs.field(init=False, repr=False)
    _decide: _Decide = attrs.field(init=False, repr=False)
    _settle: _Settle = attrs.field(init=False, repr=False)
    _run: _Run = attrs.field(init=False, repr=False)
    _arun: _ARun = attrs.field(init=False, repr=False)
    _calls: _Counter = attrs.field(init=False, repr=False, factory=_Counter)
    _fast: _FastDecorators = attrs.field(init=False, repr=False)
    _retries: _Counter = attrs.field(init=False, repr=False, factory=_Counter)
    _give_ups: _Counter = attrs.field(init=False, repr=False, factory=_Counter)
    _reasons: dict[GiveUp, _Counter] = attrs.field(
        init=False,
        repr=False,
        factory=lambda: {reason: _Counter() for reason in GiveUp},
    )
    # Seconds waited between attempts, added under _lock (only before a
    # wait, which costs far more).
    _waited: list[float] = attrs.field(
        init=False, repr=False, factory=lambda: [0.0]
    )
    _live: LiveHooks = attrs.field(init=False, repr=False)
    # The live list of hooks asking for per-call events: while it is not
    # empty, every face takes the attempt loop, which reports each call.
    _observing: list[Hook] = attrs.field(init=False, repr=False)
    # Predicates (by field name) that answered something else than None,
    # and those already warned about answering None.
    _answered: set[str] = attrs.field(init=False, repr=False, factory=set)
    _warned: set[str] = attrs.field(init=False, repr=False, factory=set)
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )

    def __attrs_post_init__(self) -> None:
        live = live_hooks(self, self.hooks, self._hooks_changed)
        object.__setattr__(self, "_observing", live.calls)
        strategy, wait_fn, cap = self._backoff()
        core = RetryCore(
            attempts=self.attempts,
            timeout=self.timeout,
            retry_after_max=self.retry_after_max,
        )
        object.__setattr__(self, "_core", core)
        object.__setattr__(self, "_strategy", strategy)
        object.__setattr__(self, "_wait_fn", wait_fn)
        object.__setattr__(self, "_wait_cap", cap)
        decide, settle, run, arun = _failure_path(self)
        object.__setattr__(self, "_decide", decide)
        object.__setattr__(self, "_settle", settle)
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_arun", arun)
        object.__setattr__(self, "_fast", _fast_decorators(self))
        self._hooks_changed()
        if self.attempts is None and self.timeout is None:
            warnings.warn(
                "Retry(attempts=None, timeout=None) retries forever",
                stacklevel=3,
            )
        elif self.timeout == 0:
            warnings.warn(
                "Retry(timeout=0) never retries: its time budget is spent "
                "as soon as the call starts",
                stacklevel=3,
            )

    def _backoff(self) -> tuple[Backoff | None, WaitFunction | None, float]:
        """
        Build the backoff from *wait* and the ``wait_*`` fields: a
        strategy, or a user's wait function and its cap.

        Raises:
            ConfigurationError: Listing every conflicting setting.
        """
        problems: list[str] = []
        strategy: Backoff | None = None
        wait_fn: WaitFunction | None = None
        wait = self.wait
        if wait is None:
            cap = _WAIT_MAX if self.wait_max is None else self.wait_max
            if cap < self.wait_initial:
                default = " (the default)" if self.wait_max is None else ""
                collect(
                    [
                        (
                            f"'wait_max' must be >= 'wait_initial' (got "
                            f"{cap!r}{default} < {self.wait_initial!r})"
                        )
                    ]
                )
            strategy = ExponentialBackoff(
                initial=self.wait_initial,
                multiplier=self.wait_multiplier,
                cap=cap,
                jitter=self.jitter,
            )
            return strategy, None, cap
        # A callable's waits may be capped by wait_max; a backoff object
        # (or a number) carries its own.
        fields = ["wait_initial", "wait_multiplier", "jitter"]
        if not callable(wait):
            fields.append("wait_max")
        defaults = attrs.fields_dict(type(self))
        problems.extend(
            f"{field!r} cannot be set together with 'wait' "
            f"(got {getattr(self, field)!r})"
            for field in fields
            if getattr(self, field) != defaults[field].default
        )
        if isinstance(wait, _BACKOFFS):
            strategy = wait
        elif isinstance(wait, int | float | timedelta) and not isinstance(
            wait, bool
        ):
            delay = seconds(wait)
            # A NaN, or an int too large for a float, compares False.
            if 0.0 <= delay <= _backoff.LONGEST_WAIT:
                strategy = ConstantBackoff(delay=delay)
            else:
                problems.append(
                    "'wait' must be a number of seconds in [0, "
                    f"{_backoff.LONGEST_WAIT:g}] (got {wait!r})"
                )
        elif callable(wait):
            if is_async_callable(wait):
                raise async_callable_error(
                    "wait", wait, "a wait must be a number, not awaited"
                )
            wait_fn = wait
        else:
            problems.append(
                "'wait' must be a backoff, a number of seconds or a "
                f"callable (got {wait!r})"
            )
        collect(problems)
        cap = _backoff.LONGEST_WAIT if self.wait_max is None else self.wait_max
        return strategy, wait_fn, cap

    def _variable_delay(
        self,
        attempt: int,
        error: Exception | None,
        result: object,
        previous: float,
    ) -> float:
        """
        Ask the backoff (or the user's wait function) for the next delay.
        """
        strategy = self._strategy
        if strategy is not None:
            u = self._draw() if strategy.uses_random else 0.0
            return strategy.compute(attempt, previous, u)
        wait_fn = cast("WaitFunction", self._wait_fn)
        chosen = wait_fn(attempt, result if error is None else error)
        return _backoff.clamp(_user_seconds(chosen), self._wait_cap)

    def _draw(self) -> float:
        """
        Draw a uniform number from *jitter_source* (brought into
        ``[0, 1]`` by the backoff).

        Raises:
            TypeError: If the source returned something else than a
                number.
        """
        u = self.jitter_source()
        if u.__class__ in _NUMBERS:
            return u
        msg = (
            f"'jitter_source' returned {u!r}: it must return a float in [0, 1)"
        )
        raise TypeError(msg)

    def _ask(
        self, field: str, predicate: Callable[[Any], object], value: object
    ) -> tuple[bool, float | None]:
        """
        Ask the *field* predicate about *value*: retry or not, and a
        dictated delay.
        """
        answer = predicate(value)
        if answer is None:
            if field not in self._answered and field not in self._warned:
                self._warned.add(field)
                warnings.warn(
                    f"Retry {self.name!r}: the {field}= predicate "
                    f"{predicate!r} returned None, read as 'do not "
                    "retry'. A predicate answers True or False (is a "
                    "return missing?), or a RetryAfter or a timedelta to "
                    "retry after that delay.",
                    stacklevel=_stacklevel(),
                )
            return False, None
        if field not in self._answered:
            self._answered.add(field)
        return _verdict(answer)

    def _give_up(
        self,
        reason: GiveUp,
        attempt: int,
        error: Exception | None,
        result: object,
        now: float | None = None,
    ) -> float:
        """
        End the call on its bad outcome: count it, tell the hooks why.

        Raises:
            RetryExhaustedError: If it ends on a rejected result and
                *result_exhausted* is ``"raise"``.
        """
        self._give_ups.incr()
        self._reasons[reason].incr()
        if self._live.all:
            at = self.clock.now() if now is None else now
            if reason is GiveUp.BUDGET:
                event: RetryGaveUp = RetryBudgetExhausted(
                    primitive_name=self.name,
                    at=at,
                    attempt=attempt,
                    reason=reason.value,
                    caused_by=error,
                    result=result,
                    budget_name=cast("RetryBudget", self.budget).name,
                )
            else:
                event = RetryGaveUp(
                    primitive_name=self.name,
                    at=at,
                    attempt=attempt,
                    reason=reason.value,
                    caused_by=error,
                    result=result,
                )
            _emit(self._live.all, event)
        if error is None and self.result_exhausted == "raise":
            raise RetryExhaustedError(self.name, result, attempt)
        return _GAVE_UP

    def _begin(self) -> None:
        """
        Count a call (and deposit it in the budget).
        """
        self._calls.incr()
        if self.budget is not None:
            self.budget._deposit()

    def _start(self) -> float:
        """
        Return the time the call starts, which starts the time budget
        (``0.0`` when there is no *timeout* to measure).
        """
        return 0.0 if self.timeout is None else self.clock.now()

    # -- faces ------------------------------------------------------------

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate *fn* to retry it: a ``def``, an ``async def`` (or an
        object whose ``__call__`` is one), or a generator function or an
        async one, which is re-run only until it yields its first item
        (after that, its items may have been used: an exception goes to
        the caller).

        Raises:
            TypeError: If *fn* is not callable, or is a generator
                function and the retry has *on_result* (which judges
                results, not items).

        .. versionadded:: 0.1.0
        """
        if not callable(fn):
            msg = f"{_KIND} {self.name!r} decorates callables (got {fn!r})"
            raise TypeError(msg)
        generator = is_generator_function(fn)
        agenerator = not generator and is_async_generator_function(fn)
        if (generator or agenerator) and self.on_result is not None:
            msg = (
                f"{_KIND} {self.name!r}: on_result judges results, and a "
                f"generator function ({fn!r}) yields items; judge the items "
                "in the generator, or retry without on_result"
            )
            raise TypeError(msg)
        if generator:
            return cast(
                "Callable[P, T]", _retry_generator(self, cast("Any", fn))
            )
        if agenerator:
            return cast(
                "Callable[P, T]", _retry_async_generator(self, cast("Any", fn))
            )
        if is_async_callable(fn):
            return cast(
                "Callable[P, T]", self._decorate_async(cast("Any", fn))
            )
        return self._decorate(fn)

    def _inlined(self) -> bool:
        """
        Tell whether decorated functions take the inlined wrappers rather
        than :meth:`call`: those neither check results, nor deposit in a
        budget, nor count atomically without the GIL.
        """
        return (
            _gil.CELL_COUNTING
            and self.on_result is None
            and self.budget is None
        )

    def _decorate(self, fn: Callable[P, T]) -> Callable[P, T]:
        if self._inlined():
            return self._fast[0](fn)
        call = self.call

        @functools.wraps(fn)
        def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            return call(fn, *args, **kwargs)

        return retrying

    def _decorate_async(
        self, fn: Callable[P, Awaitable[T]]
    ) -> Callable[P, Awaitable[T]]:
        if self._inlined():
            return self._fast[1](fn)
        acall = self.acall

        @functools.wraps(fn)
        async def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            return await acall(fn, *args, **kwargs)

        return retrying

    def _not_callable(self, face: str, fn: object) -> TypeError:
        return TypeError(
            f"{_KIND} {self.name!r}: {face} needs a callable (got {fn!r})"
        )

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Call ``fn(*args, **kwargs)``, retrying as configured.

        Returns:
            What *fn* returned.

        Raises:
            Exception: The last exception, unchanged, once retrying stops.
            TypeError: If *fn* is not callable, or returned something to
                await (use :meth:`acall`); nothing is counted then.
            RuntimeError: If it would wait on the thread of a running
                event loop, which it would block (use :meth:`acall`).

        .. versionadded:: 0.1.0
        """
        if self._observing:
            return self._observed_call(fn, args, kwargs)
        start = 0.0 if self.timeout is None else self.clock.now()
        try:
            result: Any = fn(*args, **kwargs)
        except Exception as e:
            if not callable(fn):
                raise self._not_callable("call()", fn) from None
            error: Exception | None = e
            result = None
        else:
            if result.__class__ not in _PLAIN and is_awaitable(result):
                raise awaitable_result_error(
                    _KIND, self.name, "call()", "acall()", result
                )
            if self.on_result is None and self.budget is None:
                self._calls.incr()  # _begin(), a frame less
                return cast("T", result)
            error = None
        self._begin()
        if error is None and self.on_result is None:
            return cast("T", result)
        try:
            return cast("T", self._run(fn, args, kwargs, error, result, start))
        finally:
            error = None

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """
        Await ``fn(*args, **kwargs)``, retrying as configured.

        Returns:
            What *fn* returned.

        Raises:
            Exception: The last exception, unchanged, once retrying stops.
            TypeError: If *fn* is not callable, or returned something that
                cannot be awaited (use :meth:`call`); nothing is counted
                then.

        .. versionadded:: 0.1.0
        """
        if self._observing:
            return await self._aobserved_call(fn, args, kwargs)
        start = 0.0 if self.timeout is None else self.clock.now()
        try:
            awaitable: Any = fn(*args, **kwargs)
        except Exception as e:
            if not callable(fn):
                raise self._not_callable("acall()", fn) from None
            error: Exception | None = e
            result: Any = None
        else:
            if awaitable.__class__ is not CoroutineType and not is_awaitable(
                awaitable
            ):
                raise not_awaitable_error(
                    _KIND, self.name, "acall()", "call()", awaitable
                )
            try:
                result = await awaitable
            except Exception as e:
                error = e
                result = None
            else:
                if self.on_result is None:
                    self._begin()
                    return cast("T", result)
                error = None
        self._begin()
        try:
            return cast(
                "T", await self._arun(fn, args, kwargs, error, result, start)
            )
        finally:
            error = None

    def __iter__(self) -> Iterator[Attempt]:
        """
        Iterate over attempts: ``for attempt in retry: with attempt: ...``.

        *on_result* judges what the block gives
        :meth:`Attempt.set_result`.

        Raises:
            RuntimeError: If it would wait on the thread of a running
                event loop, which it would block (use ``async for``).

        .. versionadded:: 0.1.0
        """
        start = self._start()
        self._begin()
        began = self.clock.now() if self._observing else 0.0
        attempt = Attempt(self, 1, start, 0.0)
        try:
            while True:
                yield attempt
                delay = attempt._step()
                if delay < 0.0:
                    if self._observing:
                        self._reported(began, attempt, None, delay)
                    return
                if delay > 0.0 and on_loop_thread():
                    raise blocking_on_loop(  # noqa: TRY301  # reported as the call ends
                        _KIND,
                        self.name,
                        "'for attempt in retry'",
                        "'async for attempt in retry'",
                    )
                self._retries.incr()
                if delay > 0.0:
                    self._wait(delay)
                    self.clock.sleep(delay)
                attempt = Attempt(self, attempt.number + 1, start, delay)
        except BaseException as exc:
            if self._observing:
                self._reported(began, attempt, exc, _STOP)
            raise

    async def _aiter(self) -> AsyncGenerator[Attempt, None]:
        start = self._start()
        self._begin()
        began = self.clock.now() if self._observing else 0.0
        attempt = Attempt(self, 1, start, 0.0)
        try:
            while True:
                yield attempt
                delay = attempt._step()
                if delay < 0.0:
                    if self._observing:
                        self._reported(began, attempt, None, delay)
                    return
                self._retries.incr()
                if delay > 0.0:
                    self._wait(delay)
                    await self.clock.asleep(delay)
                attempt = Attempt(self, attempt.number + 1, start, delay)
        except BaseException as exc:
            if self._observing:
                self._reported(began, attempt, exc, _STOP)
            raise

    def __aiter__(self) -> AsyncIterator[Attempt]:
        """
        Iterate over attempts in a coroutine: ``async for attempt in
        retry: with attempt: ...``.

        .. versionadded:: 0.1.0
        """
        return self._aiter()

    def statistics(self) -> RetryStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            return RetryStatistics(
                name=self.name,
                calls=self._calls.value() + self._fast[2](),
                retries=self._retries.value(),
                give_ups=self._give_ups.value(),
                give_ups_by_reason={
                    reason.value: counter.value()
                    for reason, counter in self._reasons.items()
                },
                total_wait=self._waited[0],
            )

    # -- per-call events ----------------------------------------------------

    def _hooks_changed(self) -> None:
        """
        Tell the decorators' wrappers whether a hook asks for per-call
        events.
        """
        self._fast[3](bool(self._observing))

    def _wait(self, delay: float) -> None:
        """
        Count *delay* in the total wait (right before waiting it).
        """
        with self._lock:
            self._waited[0] += delay

    def _reported(
        self,
        began: float,
        attempt: Attempt,
        exc: BaseException | None,
        delay: float,
    ) -> None:
        """
        Send the :class:`~stalwart.CallFinished` of a call of the attempt
        loop that ended on *attempt*: with *exc* escaping the loop (a
        ``GeneratorExit`` when the loop was left from its block), or after
        *delay*, which says whether it gave up on a result.
        """
        if isinstance(exc, GeneratorExit):
            exc = attempt._raised
        if exc is None:
            outcome = "failure" if delay == _GAVE_UP else "success"
        else:
            outcome = "failure" if isinstance(exc, Exception) else "ignored"
        self._finished(began, outcome, exc, attempt.number)

    def _finished(
        self,
        began: float,
        outcome: str,
        exc: BaseException | None,
        attempts: int,
    ) -> None:
        """
        Send the :class:`~stalwart.CallFinished` of a call that began at
        *began*.
        """
        now = self.clock.now()
        _emit(
            self._live.calls_now,
            call_finished(
                self.name,
                now,
                _KIND_EVENT,
                outcome,
                now - began,
                exc,
                attempts,
            ),
        )

    def _observed_call(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """
        The path of :meth:`call` and the decorator while hooks ask for
        per-call events: a first attempt that succeeds is reported inline
        (the one hook call of an observed call); after a failure, the
        failure path of :meth:`call` runs the later attempts, counted, and
        the call is reported as it ends.  With *on_result*, the attempt
        loop runs the call, which judges and reports it.
        """
        if not callable(fn):
            raise self._not_callable("call()", fn)
        if self.on_result is not None:
            return self._looped_call(fn, args, kwargs)
        return self._observed_first(fn, args, kwargs)

    def _observed_first(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """
        :meth:`_observed_call` of a callable *fn* without *on_result*.  The
        decorators' wrappers inline it (see :func:`_fast_decorators`).
        """
        began = self.clock.now()
        try:
            result: T = fn(*args, **kwargs)
        except BaseException as e:
            error = e
        else:
            # A misuse is refused as call() refuses it: not counted, not
            # reported.
            if result.__class__ not in _PLAIN and is_awaitable(result):
                raise awaitable_result_error(
                    _KIND, self.name, "call()", "acall()", result
                )
            self._calls.incr()  # _begin(), a frame less
            if self.budget is not None:
                self.budget._deposit()
            self._finished(began, "success", None, 1)
            return result  # no cast(): a call of its own
        # Outside the except block: a later attempt's failure gets no
        # __context__ of its own.
        try:
            return self._observed_rest(fn, args, kwargs, began, error)
        finally:
            del error  # no frame <-> traceback cycle

    def _observed_rest(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        began: float,
        error: BaseException,
    ) -> T:
        """
        An observed call, begun at *began*, whose first attempt raised
        *error*: count it, run the later attempts through the failure path
        of :meth:`call` (a :class:`BaseException` is not retried) and
        report the call as it ends.
        """
        self._begin()
        if not isinstance(error, Exception):
            self._finished(began, "ignored", error, 1)
            raise error
        attempts = 1

        def again(*args: Any, **kwargs: Any) -> Any:
            nonlocal attempts
            attempts += 1
            return fn(*args, **kwargs)

        start = began if self.timeout is not None else 0.0
        try:
            result = self._run(again, args, kwargs, error, None, start)
        except BaseException as exc:
            outcome = "failure" if isinstance(exc, Exception) else "ignored"
            self._finished(began, outcome, exc, attempts)
            raise
        finally:
            del error  # no frame <-> traceback cycle
        self._finished(began, "success", None, attempts)
        return cast("T", result)

    def _looped_call(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """
        Run a call through the attempt loop, which reports it.
        """
        result: Any = None
        for attempt in self:
            with attempt:
                result = fn(*args, **kwargs)
                if result.__class__ not in _PLAIN and is_awaitable(result):
                    raise awaitable_result_error(
                        _KIND, self.name, "call()", "acall()", result
                    )
                attempt.set_result(result)
        return cast("T", result)

    async def _aobserved_call(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """
        The async twin of :meth:`_observed_call`.
        """
        if not callable(fn):
            raise self._not_callable("acall()", fn)
        if self.on_result is not None:
            return await self._alooped_call(fn, args, kwargs)
        return await self._aobserved_first(fn, args, kwargs)

    async def _aobserved_first(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """
        The async twin of :meth:`_observed_first`.
        """
        began = self.clock.now()
        try:
            awaitable: Any = fn(*args, **kwargs)
            if awaitable.__class__ is CoroutineType or is_awaitable(awaitable):
                result: T = await awaitable
            else:
                result = _MISUSE
        except BaseException as e:
            error = e
        else:
            if result is _MISUSE:  # refused as acall() refuses it
                raise not_awaitable_error(
                    _KIND, self.name, "acall()", "call()", awaitable
                )
            self._calls.incr()  # _begin(), a frame less
            if self.budget is not None:
                self.budget._deposit()
            self._finished(began, "success", None, 1)
            return result
        try:
            return await self._aobserved_rest(fn, args, kwargs, began, error)
        finally:
            del error

    async def _aobserved_rest(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        began: float,
        error: BaseException,
    ) -> T:
        """
        The async twin of :meth:`_observed_rest`.
        """
        self._begin()
        if not isinstance(error, Exception):
            self._finished(began, "ignored", error, 1)
            raise error
        attempts = 1

        def again(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            nonlocal attempts
            attempts += 1
            return fn(*args, **kwargs)

        start = began if self.timeout is not None else 0.0
        try:
            result = await self._arun(again, args, kwargs, error, None, start)
        except BaseException as exc:
            outcome = "failure" if isinstance(exc, Exception) else "ignored"
            self._finished(began, outcome, exc, attempts)
            raise
        finally:
            del error
        self._finished(began, "success", None, attempts)
        return cast("T", result)

    async def _alooped_call(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """
        The async twin of :meth:`_looped_call`.
        """
        result: Any = None
        attempts = self._aiter()
        try:
            async for attempt in attempts:
                with attempt:
                    awaitable = fn(*args, **kwargs)
                    if (
                        awaitable.__class__ is not CoroutineType
                        and not is_awaitable(awaitable)
                    ):
                        raise not_awaitable_error(
                            _KIND, self.name, "acall()", "call()", awaitable
                        )
                    result = await awaitable
                    attempt.set_result(result)
        finally:
            await attempts.aclose()
        return cast("T", result)


_FastDecorators: TypeAlias = tuple[
    Decorator, AsyncDecorator, Callable[[], int], Callable[[bool], None]
]


def _blocking(name: str, error: Exception | None) -> Exception:
    """
    Return the error for a sync face about to wait on the thread of a
    running event loop, with the failure it was retrying as its context.
    """
    blocked = blocking_on_loop(
        _KIND,
        name,
        "call() (or a decorated def)",
        "acall() (or decorate an async def)",
    )
    blocked.__context__ = error
    return blocked


def _failure_path(retry: Retry) -> tuple[_Decide, _Settle, _Run, _ARun]:
    """
    Build the failure path of *retry*, which every face shares: the
    decision that follows a bad outcome, the check right before a wait,
    and the sync and async loops that run the later attempts.

    They are closures, not methods, so the settings they read on every
    retry are closure variables rather than attribute look-ups: a retry
    around a zero wait must stay cheap.
    """
    types, predicate = retry.on.types, retry.on.predicate
    on_result = retry.on_result
    use_retry_after, honor = retry.use_retry_after, retry.honor_rejections
    core, budget, hooks, clock = (
        retry._core,
        retry.budget,
        retry._live.all,  # the live list: hooks may be attached later
        retry.clock,
    )
    strategy = retry._strategy
    fixed = strategy.delay if isinstance(strategy, ConstantBackoff) else -1.0
    timed = retry.timeout is not None
    wait = retry._wait
    variable_delay, give_up, ask = (
        retry._variable_delay,
        retry._give_up,
        retry._ask,
    )
    count_retry = retry._retries.incr
    name = retry.name
    not_retryable = GiveUp.NOT_RETRYABLE

    def settle(
        attempt: int,
        start: float,
        delay: float,
        error: Exception | None,
        result: object,
    ) -> float:
        """
        Check the time budget and the deadline again right before a wait
        of *delay* decided earlier (a hook, or the body of an attempt
        loop, took time since); return *delay*, or ``_STOP`` after giving
        up.
        """
        deadline = _get_deadline()
        if not timed and deadline is None:
            return delay
        now = clock.now()
        decision = core.decide(
            attempt,
            now - start,
            delay,
            None if deadline is None else deadline.remaining(),
        )
        if decision.__class__ is GiveUp:
            return give_up(decision, attempt, error, result, now)
        return delay

    def decide(
        attempt: int,
        error: Exception | None,
        result: object,
        start: float,
        previous: float,
    ) -> float:
        """
        Classify the outcome of attempt *attempt*; return the wait before
        the next attempt, or ``_STOP`` to end with this outcome.  The face
        counts the retry once it is about to wait (or to retry at once).

        Written flat, with each optional feature behind one test.
        Whatever a predicate, the backoff or a hook raises gets the
        failure being judged as its ``__context__``.
        """
        try:
            rejection = False  # a refusal that needs a wait to help
            hint: object = None
            if error is not None:
                if honor and isinstance(error, RejectedError):
                    after = getattr(error, "retry_after", None)
                    if (
                        after.__class__ in _NUMBERS
                        and cast("float", after) > 0
                    ):
                        hint = after
                    else:  # None, 0 or NaN: it does not say when
                        rejection = True
                if hint is None:
                    if not isinstance(error, types):
                        if predicate is None:
                            return give_up(not_retryable, attempt, error, None)
                        again, hint = ask("on", predicate, error)
                        if not again:
                            return give_up(not_retryable, attempt, error, None)
                    if hint is None and use_retry_after and not rejection:
                        hint = getattr(error, "retry_after", None)
                        if hint is not None and hint.__class__ not in _NUMBERS:
                            hint = None  # not a delay: ignore it
            else:
                # Faces only pass results here when on_result is set.
                again, hint = ask(
                    "on_result",
                    cast("Callable[[Any], object]", on_result),
                    result,
                )
                if not again:
                    return _STOP
            testing = _testing  # read once: another thread may flip it
            rules = core
            if testing is not None:
                rules = core.capped(testing.attempts)
                delay = 0.0
            elif hint is not None:
                delay = core.server_delay(cast("float", hint))
            elif (delay := fixed) < 0.0:
                delay = variable_delay(attempt, error, result, previous)
            if rejection and not delay > 0.0 and testing is None:
                # Asking again at once is refused again: never spin.
                return give_up(not_retryable, attempt, error, None)
            # The clock is read on failure only for the time budget or
            # events.
            now = clock.now() if timed or hooks else 0.0
            deadline = _get_deadline()
            decision = rules.decide(
                attempt,
                now - start,
                delay,
                None if deadline is None else deadline.remaining(),
            )
            if decision.__class__ is GiveUp:
                return give_up(decision, attempt, error, result, now)
            if budget is not None and not budget._withdraw():
                return give_up(GiveUp.BUDGET, attempt, error, result, now)
            if hooks:
                _emit(
                    hooks,
                    RetryScheduled(
                        primitive_name=name,
                        at=now,
                        attempt=attempt,
                        wait=delay,
                        caused_by=error,
                        result=result,
                    ),
                )
                # A slow hook must not push the wait past a limit.
                delay = settle(attempt, start, delay, error, result)
                if delay < 0.0:
                    return delay
        except BaseException as exc:
            if error is not None:
                _chain(exc, error)
            raise
        return delay

    # The sync and async loops are twins over decide().

    def run(  # noqa: PLR0917  # positional: called on every retry
        fn: Callable[..., Any],
        args: Any,
        kwargs: Any,
        error: Exception | None,
        result: Any,
        start: float,
    ) -> Any:
        attempt, delay = 1, 0.0
        while True:
            delay = decide(attempt, error, result, start, delay)
            if delay < 0.0:
                if error is None:
                    return result
                try:
                    raise error
                finally:  # break the frame <-> traceback cycle
                    error = None
            if delay > 0.0 and on_loop_thread():
                blocked, error = _blocking(name, error), None
                raise blocked
            count_retry()
            if delay > 0.0:
                wait(delay)
                clock.sleep(delay)
            attempt += 1
            try:
                result = fn(*args, **kwargs)
            except Exception as e:
                error = e
            else:
                error = None  # before returning: no frame <-> traceback cycle
                if on_result is None:
                    return result

    async def arun(  # noqa: PLR0917  # positional: called on every retry
        fn: Callable[..., Awaitable[Any]],
        args: Any,
        kwargs: Any,
        error: Exception | None,
        result: Any,
        start: float,
    ) -> Any:
        attempt, delay = 1, 0.0
        while True:
            delay = decide(attempt, error, result, start, delay)
            if delay < 0.0:
                if error is None:
                    return result
                try:
                    raise error
                finally:  # break the frame <-> traceback cycle
                    error = None
            count_retry()
            if delay > 0.0:
                wait(delay)
                await clock.asleep(delay)
            attempt += 1
            try:
                result = await fn(*args, **kwargs)
            except Exception as e:
                error = e
            else:
                error = None  # before returning: no frame <-> traceback cycle
                if on_result is None:
                    return result

    return decide, settle, run, arun


def _fast_decorators(retry: Retry) -> _FastDecorators:
    """
    Build the decorators' wrappers for *retry*.

    A success costs one clock read (when there is a *timeout*: its budget
    starts with the call), one ``try`` around the call and one increment
    of the ``calls`` cell below, which every wrapper built here shares;
    after a failure, the loop of the ``call()`` faces takes over, which
    also counts and reports the failures it does not retry.
    """
    # A float: adding to one takes its result from the float free list,
    # cheaper than a new int, and it counts exactly up to 2**53 calls.
    calls = 0.0
    run, arun = retry._run, retry._arun
    clock = retry.clock  # its now() is read per call: use_clock() swaps it
    timed = retry.timeout is not None
    # True while a hook asks for per-call events: each call then goes
    # through the attempt loop, which reports it.  A bool in a cell, set
    # by watch(): the cheapest test there is (no length to take).
    observing = False
    # The wrappers are built only without on_result and without a budget:
    # the attempt loop is not needed to judge results.  Observed, they
    # inline Retry._observed_first: a first attempt that succeeds is
    # counted in the cell and reported to the snapshot of the per-call
    # hooks, each hook call guarded as emit() guards it.
    # In one closure variable per face: each one costs a copy at every
    # call, observed or not.
    observed = (retry._observed_rest, retry._live, retry.name)
    aobserved = (retry._aobserved_rest, retry._live, retry.name)

    # Two wrappers per face, chosen once: a test per call would cost more
    # than the time budget's clock read does.

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        if not timed:
            return decorate_untimed(fn)

        @functools.wraps(fn)
        def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            nonlocal calls
            if not observing:
                calls += 1.0
                start = clock.now()
                try:
                    return fn(*args, **kwargs)
                except Exception as e:
                    error = e
                # Outside the except block, so the failure re-raised at the
                # end gets no __context__ of its own.
                try:
                    result: T = run(fn, args, kwargs, error, None, start)
                finally:
                    del error  # no frame <-> traceback cycle left to the GC
                return result
            began = clock.now()
            try:
                result = fn(*args, **kwargs)
            except BaseException as e:
                raised = e
            else:
                if result.__class__ not in _PLAIN and is_awaitable(result):
                    raise awaitable_result_error(
                        _KIND, observed[2], "call()", "acall()", result
                    )
                calls += 1.0
                now = clock.now()
                event = call_finished(
                    observed[2], now, _KIND_EVENT, "success", now - began
                )
                for hook in observed[1].calls_now:
                    try:
                        hook(event)
                    except Exception:
                        hook_failed(hook, event)
                return result
            try:
                return observed[0](fn, args, kwargs, began, raised)
            finally:
                del raised

        return retrying

    def decorate_untimed(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            nonlocal calls
            if not observing:
                calls += 1.0
                try:
                    return fn(*args, **kwargs)
                except Exception as e:
                    error = e
                try:
                    result: T = run(fn, args, kwargs, error, None, 0.0)
                finally:
                    del error
                return result
            began = clock.now()
            try:
                result = fn(*args, **kwargs)
            except BaseException as e:
                raised = e
            else:
                if result.__class__ not in _PLAIN and is_awaitable(result):
                    raise awaitable_result_error(
                        _KIND, observed[2], "call()", "acall()", result
                    )
                calls += 1.0
                now = clock.now()
                event = call_finished(
                    observed[2], now, _KIND_EVENT, "success", now - began
                )
                for hook in observed[1].calls_now:
                    try:
                        hook(event)
                    except Exception:
                        hook_failed(hook, event)
                return result
            try:
                return observed[0](fn, args, kwargs, began, raised)
            finally:
                del raised

        return retrying

    def adecorate(
        fn: Callable[P, Awaitable[T]],
    ) -> Callable[P, Awaitable[T]]:
        if not timed:
            return adecorate_untimed(fn)

        @functools.wraps(fn)
        async def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            nonlocal calls
            if not observing:
                calls += 1.0
                start = clock.now()
                try:
                    return await fn(*args, **kwargs)
                except Exception as e:
                    error = e
                try:
                    result: T = await arun(
                        fn, args, kwargs, error, None, start
                    )
                finally:
                    del error
                return result
            began = clock.now()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as e:
                raised = e
            else:
                calls += 1.0
                now = clock.now()
                event = call_finished(
                    aobserved[2], now, _KIND_EVENT, "success", now - began
                )
                for hook in aobserved[1].calls_now:
                    try:
                        hook(event)
                    except Exception:
                        hook_failed(hook, event)
                return result
            try:
                return await aobserved[0](fn, args, kwargs, began, raised)
            finally:
                del raised

        return retrying

    def adecorate_untimed(
        fn: Callable[P, Awaitable[T]],
    ) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            nonlocal calls
            if not observing:
                calls += 1.0
                try:
                    return await fn(*args, **kwargs)
                except Exception as e:
                    error = e
                try:
                    result: T = await arun(fn, args, kwargs, error, None, 0.0)
                finally:
                    del error
                return result
            began = clock.now()
            try:
                result = await fn(*args, **kwargs)
            except BaseException as e:
                raised = e
            else:
                calls += 1.0
                now = clock.now()
                event = call_finished(
                    aobserved[2], now, _KIND_EVENT, "success", now - began
                )
                for hook in aobserved[1].calls_now:
                    try:
                        hook(event)
                    except Exception:
                        hook_failed(hook, event)
                return result
            try:
                return await aobserved[0](fn, args, kwargs, began, raised)
            finally:
                del raised

        return retrying

    def count() -> int:
        return int(calls)

    def watch(on: bool) -> None:
        nonlocal observing
        observing = on

    return decorate, adecorate, count, watch


def _retry_generator(
    retry: Retry, fn: Callable[..., Generator[Any, Any, Any]]
) -> Callable[..., Generator[Any, Any, Any]]:
    """
    Retry the generator function *fn* until it yields its first item;
    from then on the caller has items that may have been used, so what
    the generator raises is the caller's.  ``send``, ``throw`` and
    ``close`` are passed through.
    """

    @functools.wraps(fn)
    def retrying(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        for attempt in retry:
            with attempt:
                gen = fn(*args, **kwargs)
                try:
                    item = next(gen)
                except StopIteration as stop:  # empty: done
                    return stop.value
                break
        else:  # the loop ends on the first success, or raises
            raise AssertionError("unreachable")
        while True:
            try:
                sent = yield item
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as thrown:  # passed on to the generator
                try:
                    item = gen.throw(thrown)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    item = gen.send(sent)
                except StopIteration as stop:
                    return stop.value

    return retrying


def _retry_async_generator(
    retry: Retry, fn: Callable[..., AsyncGenerator[Any, Any]]
) -> Callable[..., AsyncGenerator[Any, Any]]:
    """
    Retry the async generator function *fn* until it yields its first
    item, as :func:`_retry_generator` does; ``asend``, ``athrow`` and
    ``aclose`` are passed through.
    """

    @functools.wraps(fn)
    async def retrying(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        attempts = retry._aiter()
        try:
            async for attempt in attempts:
                with attempt:
                    agen = fn(*args, **kwargs)
                    try:
                        item = await agen.__anext__()
                    except StopAsyncIteration:  # empty: done
                        return
                    break
            else:  # the loop ends on the first success, or raises
                raise AssertionError("unreachable")
        finally:
            await attempts.aclose()
        while True:
            try:
                sent = yield item
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as thrown:  # passed on to the generator
                try:
                    item = await agen.athrow(thrown)
                except StopAsyncIteration:
                    return
            else:
                try:
                    item = await agen.asend(sent)
                except StopAsyncIteration:
                    return

    return retrying
