"""
Retry: run a call again after a failure, waiting a backoff in between.

The decisions (stop rules, backoff arithmetic, the retry budget) live in
the pure cores under ``_core``; this shell owns the clock, randomness, user
predicates, events and the faces.  A successful first attempt through the
decorator costs one ``try`` around the call and one counter increment; the
time budget starts at the first failure, and every other piece of per-call
state is made only once an attempt fails.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import random
import threading
import warnings

from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
)
from datetime import timedelta
from types import TracebackType
from typing import Any, ClassVar, Literal, TypeAlias, cast, final

import attrs

from . import _gil
from ._clock import DEFAULT_CLOCK, Clock
from ._core import backoff as _backoff
from ._core.budget import BudgetCore
from ._core.retry import GiveUp, RetryCore
from ._deadline import _current as _current_deadline
from ._errors import ConfigurationError, RetryExhaustedError
from ._events import Hook, RetryBudgetExhausted, RetryGaveUp, RetryScheduled
from ._events import emit as _emit
from ._typing import AsyncDecorator, Decorator, P, T
from ._validators import (
    ExceptionFilter,
    collect,
    duration,
    finite,
    ge,
    gt,
    hooks,
    integer,
    non_empty_str,
    non_negative,
    optional_duration,
    optional_seconds,
    seconds,
    sync_callable,
    to_exception_filter,
    to_seconds,
    valid_clock,
    valid_hooks,
)


Jitter: TypeAlias = Literal["none", "full", "equal"] | float
"""A jitter kind is ``"none"``, ``"full"``, ``"equal"``, or a fraction in
``(0, 1]`` meaning "+/- that fraction of the delay"."""

WaitFunction: TypeAlias = Callable[[int, Any], "float | timedelta"]
"""A user backoff is ``(attempt, outcome) -> seconds``, where *outcome* is
the exception that failed the attempt, or its rejected result."""

_STOP = -1.0  # what _decide returns to end the loop with the last outcome
_get_deadline = _current_deadline.get
_NUMBERS = frozenset({int, float})  # exact classes (so not bool): fast
_NO_RESULT = object()  # an Attempt given no result

# The failure path (see _failure_path): the decision after a bad outcome,
# the mark starting the time budget, and the sync and async retry loops.
_Decide: TypeAlias = Callable[
    [int, "Exception | None", object, float, float], float
]
_Mark: TypeAlias = Callable[[], float]
_Run: TypeAlias = Callable[
    [Callable[..., Any], Any, Any, "Exception | None", Any], Any
]
_ARun: TypeAlias = Callable[
    [Callable[..., Awaitable[Any]], Any, Any, "Exception | None", Any],
    Awaitable[Any],
]


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


_delay_validators = attrs.validators.and_(duration, non_negative, finite)


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


@final
@attrs.frozen(kw_only=True)
class ConstantBackoff:
    """
    Wait the same *delay* before every retry.

    Args:
        delay: The wait, in seconds.

    .. versionadded:: 0.1.0
    """

    delay: float = attrs.field(
        default=1.0, converter=seconds, validator=_delay_validators
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
        cap: The longest wait, jitter included, in seconds.
        jitter: ``"none"``, ``"full"``, ``"equal"`` or a fraction.

    .. versionadded:: 0.1.0
    """

    initial: float = attrs.field(
        default=0.1, converter=seconds, validator=_delay_validators
    )
    increment: float = attrs.field(
        default=0.1, converter=seconds, validator=_delay_validators
    )
    cap: float = attrs.field(
        default=5.0, converter=seconds, validator=_delay_validators
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
        cap: The longest wait, jitter included, in seconds.
        jitter: ``"none"``, ``"full"``, ``"equal"`` or a fraction.

    .. versionadded:: 0.1.0
    """

    initial: float = attrs.field(
        default=0.1, converter=seconds, validator=_delay_validators
    )
    multiplier: float = attrs.field(
        default=2.0, validator=attrs.validators.and_(ge(1), finite)
    )
    cap: float = attrs.field(
        default=5.0, converter=seconds, validator=_delay_validators
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
        cap: The longest wait, in seconds.

    .. versionadded:: 0.1.0
    """

    initial: float = attrs.field(
        default=0.1, converter=seconds, validator=_delay_validators
    )
    multiplier: float = attrs.field(
        default=3.0, validator=attrs.validators.and_(ge(1), finite)
    )
    cap: float = attrs.field(
        default=5.0, converter=seconds, validator=_delay_validators
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


RetryOn: TypeAlias = (
    type[Exception]
    | tuple[type[Exception], ...]
    | Callable[[Exception], object]
    | ExceptionFilter
)
"""What ``on=`` accepts: exception types, or a predicate that returns
whether to retry, or the delay to retry after."""


def _to_on(value: RetryOn) -> ExceptionFilter:
    spec = to_exception_filter(value, "on")
    for kind in spec.types:
        if not issubclass(kind, Exception):
            msg = (
                "'on' must name Exception subclasses; "
                f"{kind.__name__} is never retried (got {value!r})"
            )
            raise ConfigurationError(msg)
    return spec


def _verdict(value: object) -> tuple[bool, float | None]:
    """
    Read what a predicate returned: retry or not, and a dictated delay.

    ``True``/``False`` (or any truthy/falsy value) say whether to retry; a
    number or a ``timedelta`` says "retry after that many seconds".
    """
    if value is True:
        return True, None
    if value is None or value is False:
        return False, None
    if isinstance(value, (int, float)):  # a tuple is faster
        return True, float(value)
    if isinstance(value, timedelta):
        return True, value.total_seconds()
    return bool(value), None


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


@final
@attrs.frozen(kw_only=True)
class RetryBudgetStatistics:
    """
    A snapshot of a :class:`RetryBudget`'s counters.

    Attributes:
        calls: Calls counted in the current window.
        retries: Retries granted in the current window.
        refused: Retries refused since the budget was built.
        available: Retries the budget would grant now.

    .. versionadded:: 0.1.0
    """

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
        window: How far back calls and retries are counted, in seconds.
            The window slides in tenths of itself.
        clock: The clock the window is measured on.

    .. versionadded:: 0.1.0
    """

    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    ratio: float = attrs.field(
        default=0.2, validator=attrs.validators.and_(non_negative, finite)
    )
    min_per_second: float = attrs.field(
        default=1.0, validator=attrs.validators.and_(non_negative, finite)
    )
    window: float = attrs.field(
        default=10.0,
        converter=seconds,
        validator=attrs.validators.and_(duration, gt(0), finite),
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


@final
@attrs.frozen(kw_only=True)
class RetryStatistics:
    """
    A snapshot of a :class:`Retry`'s counters since it was built.

    Attributes:
        calls: Calls started (through any face).
        retries: Retries scheduled.
        give_ups: Calls that ended because retrying stopped (attempts,
            time, deadline or budget) while the outcome was still bad.

    .. versionadded:: 0.1.0
    """

    calls: int
    retries: int
    give_ups: int


@final
class Attempt:
    """
    One attempt of a retry loop: ``for attempt in retry: with attempt:``.

    Entering it does nothing; leaving it with an exception that is to be
    retried swallows the exception and schedules the next attempt, which
    the loop waits for.  An exception that is not retried, or the last one
    when the retry gives up, leaves the ``with`` block unchanged.

    A block that produces a result hands it over with :meth:`set_result`,
    so the retry's *on_result* can ask for another attempt.

    Attributes:
        number: The attempt's number, ``1`` for the first.

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "_delay",
        "_previous",
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
            return False
        if self.number == 1:  # the first failure starts the time budget
            self._start = retry._mark()
        self._delay = retry._decide(
            self.number, exc, result, self._start, self._previous
        )
        return self._delay >= 0.0


@final
@attrs.frozen(kw_only=True, eq=False)
class Retry:
    """
    Call again after a failure, waiting a backoff between attempts.

    Use it as a decorator on a ``def`` or an ``async def`` (each call has
    its own attempt count), with :meth:`call`/:meth:`acall`, or as an
    attempt loop for a block of code::

        for attempt in retry:
            with attempt:
                ...

    (``async for`` in coroutines).  A ``with retry:`` form cannot exist: a
    ``with`` block cannot be run again.

    Retrying stops at *attempts*, at the *timeout* (never waiting up to or
    past it: when the next wait would reach it, the retry gives up at
    once), at the deadline of an enclosing :class:`~stalwart.Timeout`
    (same rule), or when a shared *budget* is spent.  On giving up after an
    exception, that exception is re-raised unchanged.  ``KeyboardInterrupt``,
    ``SystemExit``, ``GeneratorExit`` and ``asyncio.CancelledError`` are
    never retried, and cancelling an async wait ends the call at once.

    All durations are in seconds (``float`` or ``timedelta``).

    Args:
        name: Names the retry in events and errors.
        attempts: The most attempts, counting the first call; ``None`` for
            no limit (then set a *timeout*).
        timeout: The time budget of the retrying, in seconds: it starts
            when the first attempt fails and covers every wait and every
            later attempt; ``None`` for no limit.  To bound the whole call,
            first attempt included, run it inside a
            :class:`~stalwart.Timeout`, whose deadline the retry never
            waits past.
        on: Which exceptions to retry: a type, a tuple of types, or a
            predicate receiving the exception and returning ``True`` or
            ``False``, or a delay (seconds or ``timedelta``) to retry after,
            overriding the backoff (a ``Retry-After`` header, say).
        on_result: A predicate on a successful result with the same
            returns as *on*: truthy means the result is bad, retry.
        result_exhausted: When attempts run out on a result *on_result*
            still rejects: ``"return"`` it (the default) or ``"raise"``
            :class:`~stalwart.RetryExhaustedError`.
        wait: The backoff: a :class:`ConstantBackoff`,
            :class:`LinearBackoff`, :class:`ExponentialBackoff` or
            :class:`DecorrelatedJitterBackoff`, a number of seconds (a
            constant wait), or a callable ``(attempt, outcome) -> seconds``
            whose result is kept within ``[0, wait_max]``.  ``None`` (the
            default) builds an exponential backoff from the ``wait_*``
            fields and *jitter*; when *wait* is given, those keep their
            defaults (a callable may set *wait_max*, its cap).
        wait_initial: The first wait of the default exponential backoff.
        wait_max: The longest wait of the default backoff (jitter
            included), and the cap of a callable *wait*.
        wait_multiplier: The growth factor of the default backoff.
        jitter: The jitter of the default backoff: ``"none"``, ``"full"``
            (uniform in ``[0, wait]``), ``"equal"`` (in ``[wait/2, wait]``)
            or a fraction *f* (in ``wait * [1 - f, 1 + f]``).
        use_retry_after: Wait exactly what an exception's ``retry_after``
            attribute says (stalwart's own :class:`~stalwart.RejectedError`
            carry one), instead of the backoff.
        retry_after_max: The longest server-dictated wait honoured (from
            ``retry_after`` or a predicate); longer ones are cut to it.
        jitter_source: Where jitter draws from: a :class:`random.Random`
            or a callable returning a float in ``[0, 1)``.  By default
            each retry has its own private generator.
        budget: A :class:`RetryBudget` shared with other retries.
        hooks: Receive :class:`~stalwart.RetryScheduled`,
            :class:`~stalwart.RetryGaveUp` and
            :class:`~stalwart.RetryBudgetExhausted` events.
        clock: The clock used to wait and to measure *timeout*.

    Raises:
        ConfigurationError: On an invalid setting.

    .. versionadded:: 0.1.0
    """

    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    attempts: int | None = attrs.field(
        default=10, validator=attrs.validators.and_(integer, ge(1))
    )
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
        default=0.1, converter=seconds, validator=_delay_validators
    )
    wait_max: float = attrs.field(
        default=5.0, converter=seconds, validator=_delay_validators
    )
    wait_multiplier: float = attrs.field(
        default=2.0, validator=attrs.validators.and_(ge(1), finite)
    )
    jitter: Jitter = attrs.field(default="full", validator=_check_jitter)
    use_retry_after: bool = attrs.field(default=True, validator=_check_bool)
    retry_after_max: float = attrs.field(
        default=60.0, converter=seconds, validator=_delay_validators
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

    _core: RetryCore = attrs.field(init=False, repr=False)
    _strategy: Backoff | None = attrs.field(init=False, repr=False)
    _wait_fn: WaitFunction | None = attrs.field(init=False, repr=False)
    _decide: _Decide = attrs.field(init=False, repr=False)
    _mark: _Mark = attrs.field(init=False, repr=False)
    _run: _Run = attrs.field(init=False, repr=False)
    _arun: _ARun = attrs.field(init=False, repr=False)
    _calls: _Counter = attrs.field(init=False, repr=False, factory=_Counter)
    _fast: _FastDecorators = attrs.field(init=False, repr=False)
    _retries: _Counter = attrs.field(init=False, repr=False, factory=_Counter)
    _give_ups: _Counter = attrs.field(init=False, repr=False, factory=_Counter)
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )

    def __attrs_post_init__(self) -> None:
        problems: list[str] = []
        strategy: Backoff | None = None
        wait_fn: WaitFunction | None = None
        wait = self.wait
        if wait is None:
            if self.wait_max < self.wait_initial:
                problems.append(
                    f"'wait_max' must be >= 'wait_initial' "
                    f"(got {self.wait_max!r} < {self.wait_initial!r})"
                )
            else:
                strategy = ExponentialBackoff(
                    initial=self.wait_initial,
                    multiplier=self.wait_multiplier,
                    cap=self.wait_max,
                    jitter=self.jitter,
                )
        else:
            # A callable's waits are capped by wait_max; a backoff object
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
                delay = to_seconds(wait, "wait")
                if 0.0 <= delay < math.inf:
                    strategy = ConstantBackoff(delay=delay)
                else:
                    problems.append(
                        f"'wait' must be a finite number >= 0 (got {wait!r})"
                    )
            elif callable(wait):
                wait_fn = wait
            else:
                problems.append(
                    "'wait' must be a backoff, a number of seconds or a "
                    f"callable (got {wait!r})"
                )
        collect(problems)
        core = RetryCore(
            attempts=self.attempts,
            timeout=self.timeout,
            retry_after_max=self.retry_after_max,
        )
        object.__setattr__(self, "_core", core)
        object.__setattr__(self, "_strategy", strategy)
        object.__setattr__(self, "_wait_fn", wait_fn)
        decide, mark, run, arun = _failure_path(self)
        object.__setattr__(self, "_decide", decide)
        object.__setattr__(self, "_mark", mark)
        object.__setattr__(self, "_run", run)
        object.__setattr__(self, "_arun", arun)
        object.__setattr__(self, "_fast", _fast_decorators(self))
        if self.attempts is None and self.timeout is None:
            warnings.warn(
                "Retry(attempts=None, timeout=None) retries forever",
                stacklevel=3,
            )
        elif self.timeout == 0:
            warnings.warn(
                "Retry(timeout=0) never retries: its time budget is spent "
                "as soon as the first attempt fails",
                stacklevel=3,
            )

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
            u = self.jitter_source() if strategy.uses_random else 0.0
            return strategy.compute(attempt, previous, u)
        wait_fn = cast("WaitFunction", self._wait_fn)
        chosen = wait_fn(attempt, result if error is None else error)
        if isinstance(chosen, timedelta):
            chosen = chosen.total_seconds()
        return _backoff.clamp(chosen, self.wait_max)

    def _give_up(
        self,
        reason: GiveUp,
        attempt: int,
        error: Exception | None,
        result: object,
        now: float,
    ) -> float:
        self._give_ups.incr()
        if self.hooks:
            if reason is GiveUp.BUDGET:
                event: RetryGaveUp = RetryBudgetExhausted(
                    primitive_name=self.name,
                    at=now,
                    attempt=attempt,
                    reason=reason.value,
                    caused_by=error,
                    result=result,
                    budget_name=cast("RetryBudget", self.budget).name,
                )
            else:
                event = RetryGaveUp(
                    primitive_name=self.name,
                    at=now,
                    attempt=attempt,
                    reason=reason.value,
                    caused_by=error,
                    result=result,
                )
            _emit(self.hooks, event)
        if error is None and self.result_exhausted == "raise":
            raise RetryExhaustedError(self.name, result, attempt)
        return _STOP

    def _begin(self) -> None:
        """
        Count a call (and deposit it in the budget).
        """
        self._calls.incr()
        if self.budget is not None:
            self.budget._deposit()

    # -- faces ------------------------------------------------------------

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate *fn* (a ``def`` or an ``async def``) to retry it.

        .. versionadded:: 0.1.0
        """
        if inspect.iscoroutinefunction(fn):
            return cast("Callable[P, T]", self._decorate_async(fn))
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

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Call ``fn(*args, **kwargs)``, retrying as configured.

        Returns:
            What *fn* returned.

        Raises:
            Exception: The last exception, unchanged, once retrying stops.

        .. versionadded:: 0.1.0
        """
        self._begin()
        try:
            result: Any = fn(*args, **kwargs)
        except Exception as e:
            error: Exception | None = e
            result = None
        else:
            if self.on_result is None:
                return cast("T", result)
            error = None
        try:
            return cast("T", self._run(fn, args, kwargs, error, result))
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

        .. versionadded:: 0.1.0
        """
        self._begin()
        try:
            result: Any = await fn(*args, **kwargs)
        except Exception as e:
            error: Exception | None = e
            result = None
        else:
            if self.on_result is None:
                return cast("T", result)
            error = None
        try:
            return cast("T", await self._arun(fn, args, kwargs, error, result))
        finally:
            error = None

    def __iter__(self) -> Iterator[Attempt]:
        """
        Iterate over attempts: ``for attempt in retry: with attempt: ...``.

        *on_result* judges what the block gives
        :meth:`Attempt.set_result`.

        .. versionadded:: 0.1.0
        """
        self._begin()
        attempt = Attempt(self, 1, 0.0, 0.0)
        while True:
            yield attempt
            delay = attempt._delay
            if delay < 0.0:
                return
            if delay > 0.0:
                self.clock.sleep(delay)
            attempt = Attempt(self, attempt.number + 1, attempt._start, delay)

    async def _aiter(self) -> AsyncIterator[Attempt]:
        self._begin()
        attempt = Attempt(self, 1, 0.0, 0.0)
        while True:
            yield attempt
            delay = attempt._delay
            if delay < 0.0:
                return
            if delay > 0.0:
                await self.clock.asleep(delay)
            attempt = Attempt(self, attempt.number + 1, attempt._start, delay)

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
                calls=self._calls.value() + self._fast[2](),
                retries=self._retries.value(),
                give_ups=self._give_ups.value(),
            )


_FastDecorators: TypeAlias = tuple[
    Decorator, AsyncDecorator, Callable[[], int]
]


def _failure_path(retry: Retry) -> tuple[_Decide, _Mark, _Run, _ARun]:
    """
    Build the failure path of *retry*, which every face shares: the
    decision that follows a bad outcome, the mark that starts the time
    budget, and the sync and async loops that run the later attempts.

    They are closures, not methods, so the settings they read on every
    retry are closure variables rather than attribute look-ups: a retry
    around a zero wait must stay cheap.
    """
    types, predicate = retry.on.types, retry.on.predicate
    on_result, use_retry_after = retry.on_result, retry.use_retry_after
    core, budget, hooks, clock = (
        retry._core,
        retry.budget,
        retry.hooks,
        retry.clock,
    )
    strategy = retry._strategy
    fixed = strategy.delay if isinstance(strategy, ConstantBackoff) else -1.0
    # The clock is read on failure only for the time budget or events.
    clocked = retry.timeout is not None or bool(hooks)
    variable_delay, give_up = retry._variable_delay, retry._give_up
    count_retry = retry._retries.incr

    def decide(
        attempt: int,
        error: Exception | None,
        result: object,
        start: float,
        previous: float,
    ) -> float:
        """
        Classify the outcome of attempt *attempt*; return the wait before
        the next attempt, or ``_STOP`` to end with this outcome.

        Written flat, with each optional feature behind one test.
        """
        hint: object = None
        if error is not None:
            if not isinstance(error, types):
                if predicate is None:
                    return _STOP
                again, hint = _verdict(predicate(error))
                if not again:
                    return _STOP
            if hint is None and use_retry_after:
                hint = getattr(error, "retry_after", None)
                if hint is not None and hint.__class__ not in _NUMBERS:
                    hint = None  # not a delay: ignore it
        else:
            # Faces only pass results here when on_result is set.
            again, hint = _verdict(
                cast("Callable[[Any], object]", on_result)(result)
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
        # The first failure's time is *start* itself, read by the caller.
        now = clock.now() if clocked and attempt > 1 else start
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
        count_retry()
        if hooks:
            _emit(
                hooks,
                RetryScheduled(
                    primitive_name=retry.name,
                    at=now,
                    attempt=attempt,
                    wait=delay,
                    caused_by=error,
                    result=result,
                ),
            )
        return delay

    def mark() -> float:
        """
        Return the time of a first failure, which starts the time budget
        (``0.0`` when neither a *timeout* nor an event reads it).
        """
        return clock.now() if clocked else 0.0

    # The sync and async loops are twins over decide().

    def run(
        fn: Callable[..., Any],
        args: Any,
        kwargs: Any,
        error: Exception | None,
        result: Any,
    ) -> Any:
        attempt, delay = 1, 0.0
        start = clock.now() if clocked else 0.0  # mark(), a frame less
        while True:
            delay = decide(attempt, error, result, start, delay)
            if delay < 0.0:
                if error is None:
                    return result
                try:
                    raise error
                finally:  # break the frame <-> traceback cycle
                    error = None
            if delay > 0.0:
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

    async def arun(
        fn: Callable[..., Awaitable[Any]],
        args: Any,
        kwargs: Any,
        error: Exception | None,
        result: Any,
    ) -> Any:
        attempt, delay = 1, 0.0
        start = clock.now() if clocked else 0.0  # mark(), a frame less
        while True:
            delay = decide(attempt, error, result, start, delay)
            if delay < 0.0:
                if error is None:
                    return result
                try:
                    raise error
                finally:  # break the frame <-> traceback cycle
                    error = None
            if delay > 0.0:
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

    return decide, mark, run, arun


def _fast_decorators(retry: Retry) -> _FastDecorators:
    """
    Build the decorators' wrappers for *retry*.

    A success costs one ``try`` around the call and one increment of the
    ``calls`` cell below, which every wrapper built here shares; after a
    failure, the loop of the ``call()`` faces takes over.  Only exceptions
    the retry may retry are caught, by an ``except`` on its types when it
    has no predicate.
    """
    # A float: adding to one takes its result from the float free list,
    # cheaper than a new int, and it counts exactly up to 2**53 calls.
    calls = 0.0
    run, arun = retry._run, retry._arun
    types, predicate = retry.on.types, retry.on.predicate
    # *on*'s types are Exception subclasses (checked when it is built).
    catch: type[Exception] | tuple[type[Exception], ...] = (
        cast("tuple[type[Exception], ...]", types)
        if predicate is None
        else Exception
    )

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            nonlocal calls
            calls += 1.0
            try:
                return fn(*args, **kwargs)
            except catch as e:
                error = e
            # Outside the except block, so later errors get no __context__.
            try:
                result: T = run(fn, args, kwargs, error, None)
            finally:
                del error  # no frame <-> traceback cycle left to the GC
            return result

        return retrying

    def adecorate(
        fn: Callable[P, Awaitable[T]],
    ) -> Callable[P, Awaitable[T]]:
        @functools.wraps(fn)
        async def retrying(*args: P.args, **kwargs: P.kwargs) -> T:
            nonlocal calls
            calls += 1.0
            try:
                return await fn(*args, **kwargs)
            except catch as e:
                error = e
            try:
                result: T = await arun(fn, args, kwargs, error, None)
            finally:
                del error  # no frame <-> traceback cycle left to the GC
            return result

        return retrying

    def count() -> int:
        return int(calls)

    return decorate, adecorate, count
