"""
Rate limiters: one shell, shared by every algorithm of
:mod:`stalwart._core.limits`.

The shell owns the clock, the locks, the per-key store, the hooks and the
faces.  It reads the clock before taking a lock, holds a lock only around
O(1) bookkeeping, and waits outside every lock.  A wait is a reservation:
the slot is booked in the state first, so waiters are served in the order
they asked.  A waiter parks on its own event (a thread) or future (a
task) as well as on the clock, so that when a reservation before it is
given back (its caller cancelled or interrupted) the store books it again
for an earlier slot and wakes it.

Each limiter's default key, and its keys in the in-memory store, have a
hand-inlined hot path for a request granted at once (``try_acquire``, and
``acquire`` when no wait is needed); it makes exactly the decision of the
algorithm's ``decide`` (a property test runs both on the same requests),
and everything else goes through the store's operations.

Every face (the decorator, ``call`` / ``acall``, ``with`` / ``async
with``, a :class:`~stalwart.Pipeline`'s stage) takes its permit through
the guard protocol of :mod:`stalwart._faces` and ``_acquire`` /
``aacquire``: a limiter admits a call and never hears how it ended, so its
exit steps do nothing and a block keeps no state.  Per-call hooks
(:mod:`stalwart._observe`) hear every admission with its wait.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading

from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Generator,
    Hashable,
)
from datetime import timedelta
from types import CoroutineType, FunctionType
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Final,
    Literal,
    NamedTuple,
    cast,
    final,
)

import attrs

from ._clock import DEFAULT_CLOCK, Clock, DefaultClock, SystemClock, wait_event
from ._core.limits import (
    COMPACT_AFTER,
    INF,
    Algorithm,
    BucketAlgorithm,
    FixedWindowAlgorithm,
    MultiRateAlgorithm,
    ShaperAlgorithm,
    SlidingWindowCounterAlgorithm,
    SlidingWindowLogAlgorithm,
    window_of,
)
from ._deadline import cap_wait
from ._errors import ConfigurationError, RateLimitExceededError
from ._events import CallRejected, Hook, call_admitted, emit
from ._faces import (
    ASYNC_FLAGS,
    PLAIN,
    awaitable_result_error,
    blocking_on_loop,
    guard_acall,
    guard_async_generator,
    guard_call,
    guard_decorate,
    guard_generator,
    is_any_generator_function,
    is_async_callable,
    is_async_function,
    is_async_generator_function,
    is_awaitable,
    is_generator_function,
    not_awaitable_error,
)
from ._observe import LiveHooks, Observable, live_hooks
from ._rates import Rate, RateSpec, RatesSpec
from ._statistics import Statistics
from ._stores import (
    BucketCell,
    Cell,
    CounterCell,
    MemoryStore,
    Outcome,
    Reservation,
    WindowCell,
)
from ._typing import P, T
from ._validators import (
    finite,
    non_empty_str,
    non_negative,
    optional_duration,
    optional_seconds,
    positive,
    sync_callable,
    valid_clock,
    valid_hooks,
)
from ._validators import hooks as hooks_converter


if TYPE_CHECKING:
    from ._redis import RedisStore


@final
class RateLimitDecision(NamedTuple):
    """
    The answer of :meth:`~TokenBucket.try_acquire`: truthy when granted.

    It is an immutable named tuple: built on every call, and a tuple is the
    cheapest record Python can build.

    Attributes:
        granted: Whether the request was granted (and its cost taken).
        remaining: How many more requests of cost one would be granted
            right now.
        retry_after: Seconds until the same request would be granted;
            ``0.0`` when it was.  Waiting exactly this long is always
            enough (absent other requests), and it is never so small that
            the clock does not move.
        reset_after: Seconds until the key is back to its full allowance.
        limit: The nominal allowance (capacity, burst, or limit per
            window; with several rates, that of the rate with the least
            room left).

    .. versionadded:: 0.1.0
    """

    granted: bool
    remaining: int
    retry_after: float
    reset_after: float
    limit: int

    def __bool__(self) -> bool:
        return self.granted

    def headers(self) -> dict[str, str]:
        """
        Return the ``RateLimit-Limit``, ``RateLimit-Remaining`` and
        ``RateLimit-Reset`` HTTP headers, and ``Retry-After`` when refused
        (whole seconds, rounded up).
        """
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(math.ceil(self.reset_after)),
        }
        if not self.granted:
            headers["Retry-After"] = str(math.ceil(self.retry_after))
        return headers


# tuple.__new__ skips the named tuple's Python-level __new__: a decision is
# built on every call, and this is 2.5x cheaper.
_decision = tuple.__new__
_nextafter = math.nextafter
# Whole units of room, rounded toward zero: math.trunc is a faster call
# than int(), and a room of a hair below zero (the slack) is zero.
_trunc = math.trunc


def retry_after(now: float, at: float) -> float:
    """
    Return the wait from *now* until *at*: the float *r* closest to
    ``at - now`` with ``now + r >= at`` in floating point, so that a clock
    moved on by *r* has reached *at*.
    """
    wait = at - now
    while now + wait < at:
        wait = _nextafter(wait, INF)
    return wait


@final
@attrs.frozen(kw_only=True)
class RateLimiterStatistics(Statistics):
    """
    A snapshot of a limiter's counters.

    Attributes:
        name: The limiter's name.
        granted: Requests granted (at once or after a wait), less those
            given back.
        refused: Requests refused, a cost that can never fit included.
        keys: Keys whose state is held now (the default key excluded).
        remaining: How many requests of cost one the default key would
            grant now; ``None`` when a shared store cannot tell (its
            server unreachable, or it has no sync client).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Derives from :class:`~stalwart.Statistics`, is built with keyword
       arguments only, and has *remaining*.
    """

    kind: ClassVar[str] = "rate_limiter"

    name: str
    granted: int
    refused: int
    keys: int
    remaining: int | None


class _CostNeverFitsError(RateLimitExceededError):
    """
    The cost of a request exceeds what the limiter can ever grant.
    """

    def __init__(self, name: str, cost: float, capacity: float) -> None:
        super().__init__(name, None)
        self.cost = cost
        self.capacity = capacity

    def _reason(self) -> str:
        return (
            f"cost {self.cost:g} can never be granted "
            f"(at most {self.capacity:g} at once)"
        )

    def _init_args(self) -> tuple[Any, ...]:
        return (self.name, self.cost, self.capacity)


# Named converters: mypy's attrs plugin reads them.
def _to_rates(value: RatesSpec) -> Rate | tuple[Rate, ...]:
    rates = Rate.parse_many(value)
    return rates[0] if len(rates) == 1 else rates


def _mode(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value not in ("meter", "shaper"):
        msg = f"'mode' must be 'meter' or 'shaper' (got {value!r})"
        raise ConfigurationError(msg)


MAX_CAPACITY = 2.0**50
"""The largest capacity, burst or limit: a cost of one still counts."""


def _valid_store(
    inst: object, attr: attrs.Attribute[Any], value: object
) -> None:
    if value is not None and not hasattr(value, "_limiter_store"):
        msg = (
            "'store' must be a stalwart.redis.RedisStore or None "
            f"(got {value!r})"
        )
        raise TypeError(msg)


def _one_or_more(
    inst: object, attr: attrs.Attribute[Any], value: float | None
) -> None:
    if value is None:
        return
    if not 1 <= value <= MAX_CAPACITY:
        msg = (
            f"{attr.name!r} must be between 1 and {MAX_CAPACITY:g} (got "
            f"{value!r}): a bucket smaller than one request refuses every "
            f"request; for one request every 2 s, use rate=0.5 and "
            f"{attr.name}=1"
        )
        raise ConfigurationError(msg)


def _window_rate(rate: Rate) -> tuple[float, float]:
    """
    A window's ``(quota, period)``: a limit below one request per period
    means one request per longer period (0.5 per second: one per 2 s).
    """
    if rate.limit < 1.0:
        return 1.0, rate.period / rate.limit
    if rate.limit > MAX_CAPACITY:
        msg = (
            f"'rate' must allow at most {MAX_CAPACITY:g} per window "
            f"(got {rate})"
        )
        raise ConfigurationError(msg)
    return rate.limit, rate.period


class _TaskWaiter:
    """
    A task's wake-up: a future resolved from any thread.
    """

    __slots__ = ("fut", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.fut: asyncio.Future[None] = loop.create_future()

    def renew(self) -> asyncio.Future[None]:
        """
        A fresh future to wait on (the last one may be resolved already).
        """
        self.fut = self.loop.create_future()
        return self.fut

    def set(self) -> None:
        """
        Wake the task, from any thread (RuntimeError if its loop closed).
        """
        self.loop.call_soon_threadsafe(_resolve, self.fut)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


# Park a thread at most this long at a time (below threading.TIMEOUT_MAX);
# it loops until its slot.
_MAX_PARK = 1e6

_set = object.__setattr__

# What a sync face that would have to wait on the thread of a running
# event loop is called, and the async face to use instead.
_WITH_FACES: Final = ("`with limiter`", "`async with limiter`")
_CALL_FACES: Final = ("call()", "acall()")
_ACQUIRE_FACES: Final = ("acquire()", "await limiter.aacquire()")
_KIND: Final = RateLimiterStatistics.kind
"""The kind its per-call events name."""

# The C function behind asyncio.get_running_loop(), without its exception.
_running_loop = asyncio.events._get_running_loop


class _NoOutcome:
    """
    The exit steps of the guard protocol (:class:`stalwart._faces.Guard`)
    for a limiter: it admits a call and never hears how it ended.  Its
    permit is spent once the function was called, so a misuse found from
    what the function returned gives nothing back.
    """

    __slots__ = ()

    def _exit(
        self, token: None, exc: BaseException | None, result: object
    ) -> None:
        return None

    async def _aexit(
        self, token: None, exc: BaseException | None, result: object
    ) -> None:
        return None

    def _undo(self, token: None) -> None:
        return None


@attrs.frozen(kw_only=True, eq=False)
class _Limiter(_NoOutcome, Observable):
    """
    The faces shared by every limiter; see :class:`TokenBucket`.

    A limiter is a :class:`~stalwart._faces.Guard` (``_enter`` /
    ``_aenter`` take one permit of the default key with the configured
    *timeout*), and, when it has a *key_func*, one that admits by the
    call's arguments (``_enter_args`` / ``_aenter_args``), which is how a
    :class:`~stalwart.Pipeline` drives it.
    """

    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    timeout: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, finite, non_negative],
    )
    key_func: Callable[..., Hashable] | None = attrs.field(
        default=None, validator=sync_callable
    )
    clock: Clock = attrs.field(default=DEFAULT_CLOCK, validator=valid_clock)
    hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=hooks_converter, validator=valid_hooks
    )
    store: RedisStore | None = attrs.field(
        default=None, validator=_valid_store
    )
    _algorithm: Algorithm[Any] = attrs.field(init=False, repr=False)
    _capacity: float = attrs.field(init=False, repr=False)
    # The keys' state: in memory, or (store=) a shared store offering the
    # same operations, and adecide / acancel for the async faces; the hot
    # paths are off then.
    _store: MemoryStore[Any] = attrs.field(init=False, repr=False)
    _shared: bool = attrs.field(init=False, repr=False, default=False)
    # The hot path's largest cost (-1: no hot path), and its constants.
    _fast: float = attrs.field(init=False, repr=False, default=-1.0)
    _consts: Any = attrs.field(init=False, repr=False, default=None)
    # The default key's cell (the store's), one attribute away.
    _dcell: Any = attrs.field(init=False, repr=False, default=None)
    _live: LiveHooks = attrs.field(init=False, repr=False)

    # The cell that keeps a key's state as the hot path wants it.
    _cell_type: ClassVar[type[Cell]] = Cell

    def __attrs_post_init__(self) -> None:
        algorithm = self._build()
        cell_type = self._cell_type
        if isinstance(algorithm, MultiRateAlgorithm | ShaperAlgorithm):
            cell_type = Cell
        # Private derived fields of a frozen instance, set once here.
        _set(self, "_algorithm", algorithm)
        _set(self, "_capacity", algorithm.capacity)
        # Keys are looked at for eviction once a period (a rate below one
        # per period: once per the time one request takes).
        generation = max(r.period / min(r.limit, 1.0) for r in self.rates)
        store = MemoryStore(algorithm, cell_type, generation)
        _set(self, "_dcell", store.default)
        live_hooks(self, self.hooks)
        if self.store is not None:
            _set(self, "_store", self.store._limiter_store(algorithm, self))
            _set(self, "_shared", True)
            return
        _set(self, "_store", store)
        self._hot_init(algorithm)

    def _hot_init(self, algorithm: Any) -> None:
        """
        Set up the hand-inlined hot path, for the algorithms that have one.
        """

    def _build(self) -> Algorithm[Any]:
        raise NotImplementedError  # pragma: no cover  # every subclass has one

    @property
    def rates(self) -> tuple[Rate, ...]:
        """
        Every rate of this limiter (one, unless it was given several).

        .. versionadded:: 0.2.0
        """
        rate = self.rate  # type: ignore[attr-defined]  # every subclass has one
        return rate if isinstance(rate, tuple) else (rate,)

    # ---------------------------------------------------------------- steps

    def _try(
        self, now: float, cost: float, key: Hashable | None
    ) -> RateLimitDecision:
        if not self._fits(cost):
            self._bad_cost(now, cost, key)
        return self._tried(now, self._store.decide(key, now, cost, 0.0))

    async def atry_acquire(
        self, cost: float = 1, key: Hashable | None = None
    ) -> RateLimitDecision:
        """
        Take *cost* now if the limit allows it; never wait: the async twin
        of :meth:`try_acquire`.

        On a shared store (``store=``) the server is asked through the
        store's async client, so the event loop never blocks on the
        network; in memory it decides as :meth:`try_acquire` does.

        .. versionadded:: 0.2.0
        """
        if not self._shared:
            decision: RateLimitDecision = self.try_acquire(cost, key)  # type: ignore[attr-defined]  # every subclass has one
            return decision
        now = self.clock.now()
        if not self._fits(cost):
            self._bad_cost(now, cost, key)
        return self._tried(
            now,
            await self._store.adecide(  # type: ignore[attr-defined]  # a shared store's
                key, now, cost, 0.0
            ),
        )

    def _tried(self, now: float, outcome: Outcome) -> RateLimitDecision:
        """
        The decision of a request that waits for nothing.
        """
        granted, at, remaining, reset_after, limit, _ = outcome
        if granted:
            return _decision(
                RateLimitDecision, (True, remaining, 0.0, reset_after, limit)
            )
        wait = retry_after(now, at)
        if self._live.all:
            self._emit(now, RateLimitExceededError(self.name, wait))
        return _decision(
            RateLimitDecision, (False, remaining, wait, reset_after, limit)
        )

    def peek(
        self, cost: float = 1, key: Hashable | None = None
    ) -> RateLimitDecision:
        """
        Return the decision :meth:`try_acquire` would return now, changing
        nothing (no state, no counters, no events).

        Raises:
            RateLimitExceededError: With ``retry_after=None`` if *cost* can
                never be granted.
            ValueError: If *cost* is not > 0.
            TypeError: If *cost* is not a number.

        .. versionadded:: 0.2.0
        """
        if not self._fits(cost):
            self._check_cost(cost)
            raise _CostNeverFitsError(self.name, cost, self._capacity)
        now = self.clock.now()
        granted, at, remaining, reset_after, limit, _ = self._store.peek(
            key, now, cost
        )
        wait = 0.0 if granted else retry_after(now, at)
        return _decision(
            RateLimitDecision, (granted, remaining, wait, reset_after, limit)
        )

    def reset(self, key: Hashable | None = None) -> None:
        """
        Forget *key*'s state (``None``: the default key's), as if it had
        never been used.  Callers waiting on that key keep their order and
        are booked again at once, on the fresh state.

        .. versionadded:: 0.2.0
        """
        self._wake(self._store.reset(key, self.clock.now()))

    def clear(self) -> None:
        """
        Forget every key's state, the default key's included (counters
        stay).  Waiting callers are booked again as :meth:`reset` does.

        .. versionadded:: 0.2.0
        """
        self._wake(self._store.clear(self.clock.now()))

    def acquire(
        self,
        cost: float = 1,
        key: Hashable | None = None,
        timeout: float
        | timedelta
        | None = None,  # a wait on the injectable clock, not a deadline on the call
    ) -> None:
        """
        Take *cost*, waiting for it if it can be had within *timeout*.

        The request is booked at once; the caller then sleeps until its
        slot.  Waiters are served in the order they asked.  If a waiter
        is cancelled or interrupted (``KeyboardInterrupt``, say), its
        booking is given back and the waiters behind it move up.  A wait
        never goes past the deadline of an enclosing
        :class:`~stalwart.Timeout`.

        On the system clock a waiting thread wakes as soon as its slot
        moves; on another clock it sleeps with the clock's ``sleep`` (a
        :class:`~stalwart.testing.FakeClock` jumps to the slot at once).

        Args:
            cost: The weight of the request; must be > 0.
            key: Whose limit to use; ``None`` is the default key.
            timeout: The longest wait, in seconds (or a timedelta);
                ``None`` waits as long as needed, ``0`` never waits.

        Raises:
            RateLimitExceededError: At once, consuming nothing, if the
                request cannot be granted within *timeout* (or the
                deadline); ``retry_after=None`` if it never can.
            ValueError: If *cost* is not > 0, or *timeout* is negative or
                not a number.
            TypeError: If *cost* or *timeout* has the wrong type.
            RuntimeError: If it would have to wait on the thread of a
                running event loop (its booking is given back); use
                :meth:`aacquire`.

        .. versionadded:: 0.1.0
        """
        self._acquire(cost, key, timeout, _ACQUIRE_FACES)

    def _acquire(
        self,
        cost: float,
        key: Hashable | None,
        timeout: float | timedelta | None,
        faces: tuple[str, str],
    ) -> None:
        """
        :meth:`acquire`, for the sync face named first in *faces* (the
        second is its async twin, named when it would block a loop).
        """
        now = self.clock.now()
        reservation = self._reserve(now, cost, key, timeout)
        if reservation is not None:
            if _running_loop() is not None:
                self._cancel(reservation)
                raise blocking_on_loop(self._kind, self.name, *faces)
            self._sleep(reservation)
            if self._live.calls:
                self._admitted(now)
        elif self._live.calls:  # admitted at once, at the decision's time
            emit(
                self._live.calls_now, call_admitted(self.name, now, _KIND, 0.0)
            )

    async def aacquire(
        self,
        cost: float = 1,
        key: Hashable | None = None,
        timeout: float  # noqa: ASYNC109  # a wait on the injectable clock, not a deadline on the call
        | timedelta
        | None = None,
    ) -> None:
        """
        Take *cost*, waiting for it if it can be had within *timeout*: the
        async twin of :meth:`acquire`.

        A cancelled wait gives its booking back, and the waiters behind
        it move up.

        .. versionadded:: 0.1.0
        """
        now = self.clock.now()
        if self._shared:
            reservation = await self._areserve(now, cost, key, timeout)
        else:
            reservation = self._reserve(now, cost, key, timeout)
        if reservation is not None:
            await self._asleep(reservation)
            if self._live.calls:
                self._admitted(now)
        elif self._live.calls:
            emit(
                self._live.calls_now, call_admitted(self.name, now, _KIND, 0.0)
            )

    def _admitted(self, start: float) -> None:
        """
        Tell the per-call hooks that a caller who asked at *start* was
        admitted now.  A hook that raises a :class:`BaseException` does
        not give the permit back: it was granted, and is counted once.
        """
        now = self.clock.now()
        emit(
            self._live.calls_now,  # those left, if one went meanwhile
            call_admitted(self.name, now, _KIND, now - start),
        )

    def _reserve(
        self,
        now: float,
        cost: float,
        key: Hashable | None,
        timeout: float | timedelta | None,
    ) -> Reservation | None:
        """
        Grant or book *cost* at *now* and return its reservation (``None``:
        granted at once), or raise.
        """
        max_wait = self._max_wait(now, cost, key, timeout)
        if max_wait < 0.0:
            return None
        return self._booked(now, self._store.decide(key, now, cost, max_wait))

    async def _areserve(
        self,
        now: float,
        cost: float,
        key: Hashable | None,
        timeout: float  # noqa: ASYNC109  # a wait on the injectable clock, not a deadline on the call
        | timedelta
        | None,
    ) -> Reservation | None:
        """
        :meth:`_reserve` on a shared store's async client.
        """
        # Never -1: a shared store has no hot path.
        max_wait = self._max_wait(now, cost, key, timeout)
        outcome = await self._store.adecide(  # type: ignore[attr-defined]  # a shared store's
            key, now, cost, max_wait
        )
        return self._booked(now, outcome)

    def _max_wait(
        self,
        now: float,
        cost: float,
        key: Hashable | None,
        timeout: float | timedelta | None,
    ) -> float:
        """
        Check the request; ``-1`` if the hot path granted it at once, else
        the longest wait it accepts (within the deadline).
        """
        max_wait = INF if timeout is None else _timeout(timeout)
        if not self._fits(cost):
            self._bad_cost(now, cost, key)
        if self._take(now, cost, key):
            return -1.0
        capped, _ = cap_wait(max_wait)
        return INF if capped is None else capped

    def _booked(self, now: float, outcome: Outcome) -> Reservation | None:
        """
        The reservation of a granted request, or raise for a refused one.
        """
        granted, at, _, _, _, reservation = outcome
        if not granted:
            error = RateLimitExceededError(self.name, retry_after(now, at))
            if self._live.all:
                self._emit(now, error)
            raise error
        return reservation

    def _take(self, now: float, cost: float, key: Hashable | None) -> bool:
        """
        Take *cost* (a valid cost) at once on the hand-inlined hot path,
        if it applies; ``False`` sends the request the general way (which
        decides afresh).
        """
        raise NotImplementedError  # pragma: no cover  # every limiter has one

    def _sleep(self, reservation: Reservation) -> None:
        """
        Park the calling thread until its reservation's slot.
        """
        event = threading.Event()
        reservation.waker = event
        clock = self.clock
        try:
            while True:
                event.clear()
                now = clock.now()
                slot = reservation.slot
                if slot <= now:
                    return
                _park(clock, event, retry_after(now, slot))
        except BaseException:
            self._cancel(reservation)
            raise

    async def _asleep(self, reservation: Reservation) -> None:
        """
        Park the calling task until its reservation's slot.
        """
        waiter = _TaskWaiter(asyncio.get_running_loop())
        reservation.waker = waiter
        clock = self.clock
        try:
            while True:
                fut = waiter.renew()
                now = clock.now()
                slot = reservation.slot
                if slot <= now:
                    return
                # Race the wake-up against the clock's own sleep, so that
                # a FakeClock drives the wait.
                sleeper = asyncio.ensure_future(
                    clock.asleep(retry_after(now, slot))
                )
                try:
                    await asyncio.wait(
                        (fut, sleeper), return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    sleeper.cancel()
        except BaseException:
            if self._shared:
                moved = await self._store.acancel(  # type: ignore[attr-defined]  # a shared store's
                    reservation, clock.now()
                )
                self._wake(moved)
            else:
                self._cancel(reservation)
            raise

    def _cancel(self, reservation: Reservation) -> None:
        """
        Give a reservation back and wake the waiters that moved up.
        """
        self._wake(self._store.cancel(reservation, self.clock.now()))

    @staticmethod
    def _wake(moved: list[Reservation]) -> None:
        for reservation in moved:
            waker = reservation.waker
            if waker is not None:
                try:
                    waker.set()
                except RuntimeError:  # the waiter's event loop is closed
                    pass

    def _bad_cost(self, now: float, cost: float, key: Hashable | None) -> None:
        """
        Raise for a cost that is not a number > 0, or that can never fit
        (counted as a refusal, with its event).
        """
        self._check_cost(cost)
        error = _CostNeverFitsError(self.name, cost, self._capacity)
        self._store.refuse(key, now)
        if self._live.all:
            self._emit(now, error)
        raise error

    def _fits(self, cost: float) -> bool:
        """
        Whether *cost* is a number > 0 the limiter can ever grant.
        """
        try:
            return 0 < cost <= self._capacity
        except TypeError:  # not a number: say so
            raise _not_a_number(cost) from None

    @staticmethod
    def _check_cost(cost: float) -> None:
        if not cost > 0:
            msg = f"'cost' must be > 0 (got {cost!r})"
            raise ValueError(msg)

    def _emit(self, now: float, error: RateLimitExceededError) -> None:
        emit(
            self._live.all,
            CallRejected(primitive_name=self.name, at=now, error=error),
        )

    def statistics(self) -> RateLimiterStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.1.0
        """
        store = self._store
        granted, refused = store.counts()
        return RateLimiterStatistics(
            name=self.name,
            granted=granted,
            refused=refused,
            keys=len(store),
            remaining=store.remaining(self.clock.now()),
        )

    # ---------------------------------------------------------------- faces

    def __enter__(self) -> None:
        self._acquire(1, None, self.timeout, _WITH_FACES)

    def __exit__(self, *exc_info: object) -> None:
        return None

    async def __aenter__(self) -> None:
        await self.aacquire(1, None, self.timeout)

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Acquire (with the configured *timeout* and *key_func*), then
        call ``fn(*args, **kwargs)``.

        Raises:
            RateLimitExceededError: If no permit could be had in time.
            TypeError: If *fn* is an async function (nothing is taken),
                or returned something awaitable (its permit is spent: it
                was called); use :meth:`acall`.
            RuntimeError: If it would have to wait on the thread of a
                running event loop; use :meth:`acall`.

        .. versionadded:: 0.1.0
        """
        if (
            fn.__code__.co_flags & ASYNC_FLAGS
            if fn.__class__ is FunctionType
            else is_async_function(fn)
        ):
            msg = (
                f"{self._kind} {self.name!r}: call() was given the async"
                f" function {fn!r}; use acall()"
            )
            raise TypeError(msg)
        return guard_call(self._guard(args, kwargs), fn, args, kwargs)

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """
        Acquire, then await ``fn(*args, **kwargs)``: the async twin of
        :meth:`call`.

        Raises:
            RateLimitExceededError: If no permit could be had in time.
            TypeError: If *fn* did not return an awaitable (its permit is
                spent: it was called); use :meth:`call`.

        .. versionadded:: 0.1.0
        """
        guard = self._guard(args, kwargs)
        return await guard_acall(guard, fn, args, kwargs)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate *fn* so that every call first acquires one permit, with
        the configured *timeout*, for the key *key_func* returns from the
        call's arguments: a ``def``, an ``async def``, or a generator
        function of either kind, whose whole iteration takes one permit
        (at its first step).

        .. versionadded:: 0.1.0
        .. versionchanged:: 0.2.0
           Generator functions take their permit when iterated, not when
           called.
        """
        if self.key_func is None:
            return self._decorate(fn)
        guard = self._guard
        if is_async_generator_function(fn):
            agen = cast("Callable[..., AsyncGenerator[Any, Any]]", fn)

            @functools.wraps(fn)
            def limited_agen(*args: Any, **kwargs: Any) -> Any:
                limited = guard_async_generator(guard(args, kwargs), agen)
                return limited(*args, **kwargs)

            return cast("Callable[P, T]", limited_agen)
        if is_generator_function(fn):
            gen = cast("Callable[..., Generator[Any, Any, Any]]", fn)

            @functools.wraps(fn)
            def limited_gen(*args: Any, **kwargs: Any) -> Any:
                return guard_generator(guard(args, kwargs), gen)(
                    *args, **kwargs
                )

            return cast("Callable[P, T]", limited_gen)
        if is_async_callable(fn):
            afn = cast("Callable[..., Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def limited_async(*args: Any, **kwargs: Any) -> Any:
                return await guard_acall(
                    guard(args, kwargs), afn, args, kwargs
                )

            return cast("Callable[P, T]", limited_async)

        @functools.wraps(fn)
        def limited(*args: P.args, **kwargs: P.kwargs) -> T:
            return guard_call(guard(args, kwargs), fn, args, kwargs)

        return limited

    def _decorate(self, fn: Callable[P, T]) -> Callable[P, T]:
        """
        Decorate *fn* for the default key: a ``def`` or an ``async def``
        on a hand-inlined path (the guard's steps, less the calls to
        those that do nothing), anything else through the guard.
        """
        if is_any_generator_function(fn):
            return guard_decorate(self, fn)
        timeout = self.timeout
        if is_async_callable(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)
            aacquire = self.aacquire

            @functools.wraps(fn)
            async def limited_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                await aacquire(1, None, timeout)
                awaitable = afn(*args, **kwargs)
                if type(awaitable) is not CoroutineType and not is_awaitable(
                    awaitable
                ):
                    raise not_awaitable_error(
                        self._kind, self.name, "acall()", "call()", awaitable
                    )
                return await awaitable

            return cast("Callable[P, T]", limited_async)
        acquire = self._acquire

        @functools.wraps(fn)
        def limited(*args: P.args, **kwargs: P.kwargs) -> T:
            acquire(1, None, timeout, _CALL_FACES)
            result = fn(*args, **kwargs)
            if type(result) not in PLAIN and is_awaitable(result):
                raise awaitable_result_error(
                    self._kind, self.name, "call()", "acall()", result
                )
            return result

        return limited

    # -------------------------------------------------- the guard protocol

    @property
    def _kind(self) -> str:
        return type(self).__name__

    def _enter(self) -> None:
        self._acquire(1, None, self.timeout, _CALL_FACES)

    async def _aenter(self) -> None:
        await self.aacquire(1, None, self.timeout)

    def _guard(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Limiter | _AtKey:
        """
        The guard for a call with these arguments: the limiter, or the
        limiter at the key *key_func* returns.
        """
        key_func = self.key_func
        if key_func is None:
            return self
        return _AtKey(self, key_func(*args, **kwargs))

    @property
    def _enter_args(
        self,
    ) -> Callable[[tuple[Any, ...], dict[str, Any]], None] | None:
        """
        With a *key_func*: admit a call by its arguments (the guard steps
        of a limiter keyed by them); else ``None``, and the limiter is a
        plain guard.
        """
        return None if self.key_func is None else self._enter_by_args

    @property
    def _aenter_args(
        self,
    ) -> Callable[[tuple[Any, ...], dict[str, Any]], Awaitable[None]] | None:
        """
        The async twin of :attr:`_enter_args`.
        """
        return None if self.key_func is None else self._aenter_by_args

    def _enter_by_args(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self._guard(args, kwargs)._enter()

    async def _aenter_by_args(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        await self._guard(args, kwargs)._aenter()


class _AtKey(_NoOutcome):
    """
    A limiter at one key, as a guard (:class:`stalwart._faces.Guard`).
    """

    __slots__ = ("key", "limiter")

    def __init__(self, limiter: _Limiter, key: Hashable) -> None:
        self.limiter = limiter
        self.key = key

    @property
    def name(self) -> str:
        return self.limiter.name

    @property
    def _kind(self) -> str:
        return self.limiter._kind

    def _enter(self) -> None:
        limiter = self.limiter
        limiter._acquire(1, self.key, limiter.timeout, _CALL_FACES)

    async def _aenter(self) -> None:
        limiter = self.limiter
        await limiter.aacquire(1, self.key, limiter.timeout)


def _not_a_number(cost: object) -> TypeError:
    return TypeError(f"'cost' must be a number (got {cost!r})")


def _timeout(timeout: object) -> float:
    """
    Check an ``acquire`` *timeout* (not ``None``): seconds >= 0.
    """
    if isinstance(timeout, timedelta):
        timeout = timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        msg = (
            f"'timeout' must be a number of seconds, a timedelta or None "
            f"(got {timeout!r})"
        )
        raise TypeError(msg)
    if not timeout >= 0:
        msg = f"'timeout' must be >= 0 (got {timeout!r})"
        raise ValueError(msg)
    return float(timeout)


def _park(clock: Clock, event: threading.Event, seconds: float) -> None:
    """
    Wait up to *seconds*: on the system clock, on *event* too (set when
    the slot moves); on any other clock, with its ``sleep``.
    """
    target = clock.target if isinstance(clock, DefaultClock) else clock
    if isinstance(target, SystemClock):
        wait_event(target, event, target.now() + min(seconds, _MAX_PARK))
    else:
        clock.sleep(seconds)


# ------------------------------------------------------------- hot paths
#
# Each is the algorithm's decide() with max_wait=0 and its status(),
# hand-inlined over a cell's attributes for a request granted at once; a
# property test (tests/test_limiters_hot.py) runs them against the core on
# the same requests.  A key's lookup happens under the store's lock, so an
# idle key forgotten meanwhile is never updated.  Any other case (a
# refusal, a queue of waiters, several rates) returns False or falls back
# to the general path, which decides afresh.


# No call is made while a hot path holds its lock, but for the rare
# branches (a new key, a new window): a thread switch can only happen at a
# call or a backward jump, so a lock held without one is never held by a
# thread that has lost the interpreter, and two threads on one limiter do
# not queue up on it (tests/test_limiters_concurrency.py measures it).


@attrs.frozen(kw_only=True, eq=False)
class _BucketLimiter(_Limiter):
    """
    The bucket's hot path (token bucket, GCRA, leaky meter).
    """

    def _hot_init(self, algorithm: Any) -> None:
        if isinstance(algorithm, BucketAlgorithm):
            rate, capacity, limit = (
                algorithm.rate,
                algorithm.capacity,
                algorithm.limit,
            )
            # The decision after a request of one on a drained bucket,
            # computed as the hot path computes it (at == now).
            idle = _decision(
                RateLimitDecision,
                (True, _trunc(capacity - 1.0), 0.0, 1.0 / rate + 0.0, limit),
            )
            _set(self, "_fast", capacity)
            _set(
                self,
                "_consts",
                (rate, algorithm.eps, algorithm.top, capacity, limit, idle),
            )

    def try_acquire(
        self, cost: float = 1, key: Hashable | None = None
    ) -> RateLimitDecision:
        """
        Take *cost* now if the limit allows it; never wait.

        A refused request changes no state.  A request is never granted
        ahead of a waiter that asked earlier (:meth:`acquire`).

        Args:
            cost: The weight of the request (1 for a plain request; bytes
                for a bandwidth limit).  Must be > 0.
            key: Whose limit to use; every key is independent.  ``None``
                is the default key.

        Returns:
            A decision, truthy when granted, with what the ``RateLimit``
            and ``Retry-After`` HTTP headers need.

        Raises:
            RateLimitExceededError: With ``retry_after=None`` at once if
                *cost* can never be granted (counted as refused).
            ValueError: If *cost* is not > 0.
            TypeError: If *cost* is not a number.

        .. versionadded:: 0.1.0
        """
        now = self.clock.now()
        try:
            fast = 0 < cost <= self._fast
        except TypeError:  # not a number: say so
            raise _not_a_number(cost) from None
        if fast:
            rate, eps, top, capacity, limit, idle = self._consts
            level = -1.0  # stays negative unless granted
            at = now
            cell: Any
            if key is None:
                cell = self._dcell
                with cell.lock:
                    if now >= cell.gate:
                        since = cell.at
                        new = cell.level
                        if now > since:
                            new -= (now - since) * rate
                            if new <= eps:
                                if cost == 1:
                                    # An idle limiter: a request of one on
                                    # a drained bucket; the decision is
                                    # always the same (no call made).
                                    cell.level = 1.0
                                    cell.at = now
                                    cell.granted += 1
                                    return idle  # type: ignore[no-any-return]  # a RateLimitDecision
                                new = 0.0
                            since = now
                        new += cost
                        if new <= top:
                            cell.level = level = new
                            cell.at = at = since
                            cell.granted += 1
            else:
                # The same, for a key's cell (counted on the store).
                store = self._store
                with store.lock:
                    try:
                        cell = store.cells[key]
                    except KeyError:
                        cell = store.cell(key, now)
                    else:
                        if now >= store.swap_at:
                            cell = store.cell(key, now)
                    if now >= cell.gate:
                        since = cell.at
                        new = cell.level
                        if now > since:
                            new -= (now - since) * rate
                            if new <= eps:
                                new = 0.0
                            since = now
                        new += cost
                        if new <= top:
                            cell.level = level = new
                            cell.at = at = since
                            store.granted += 1
            if level >= 0.0:
                return _decision(
                    RateLimitDecision,
                    (
                        True,
                        _trunc(capacity - level),
                        0.0,
                        level / rate + (at - now),
                        limit,
                    ),
                )
        return self._try(now, cost, key)

    def _take(self, now: float, cost: float, key: Hashable | None) -> bool:
        if not 0 < cost <= self._fast:
            return False
        lock = self._dcell.lock if key is None else self._store.lock
        taken = False
        with lock:
            cell: Any = (
                self._dcell if key is None else self._store.cell(key, now)
            )
            tally = cell.tally
            if now >= cell.gate:
                rate, eps, top, _, _, _ = self._consts
                at = cell.at
                level = cell.level
                if now > at:
                    level -= (now - at) * rate
                    if level <= eps:
                        level = 0.0
                    at = now
                level += cost
                if level <= top:
                    cell.level = level
                    cell.at = at
                    tally.granted += 1
                    taken = True
        return taken


@attrs.frozen(kw_only=True, eq=False)
class _FixedLimiter(_Limiter):
    """
    The fixed window's hot path.
    """

    def _hot_init(self, algorithm: Any) -> None:
        if isinstance(algorithm, FixedWindowAlgorithm):
            _set(self, "_fast", algorithm.quota)
            _set(
                self,
                "_consts",
                (
                    algorithm.period,
                    algorithm.top,
                    algorithm.quota,
                    algorithm.limit,
                ),
            )

    def try_acquire(
        self, cost: float = 1, key: Hashable | None = None
    ) -> RateLimitDecision:
        """
        Take *cost* now if the limit allows it; never wait.  See
        :meth:`TokenBucket.try_acquire`.

        .. versionadded:: 0.1.0
        """
        now = self.clock.now()
        try:
            fast = 0 < cost <= self._fast
        except TypeError:  # not a number: say so
            raise _not_a_number(cost) from None
        if fast:
            store: Any
            if key is None:
                cell = tally = self._dcell
                lock = cell.lock
                store = None
            else:
                store = tally = self._store
                lock = store.lock
                cell = None
            period, top, quota, limit = self._consts
            count = -1.0  # stays negative unless granted
            end = now
            with lock:
                if cell is None:
                    try:
                        cell = store.cells[key]
                    except KeyError:
                        cell = store.cell(key, now)
                    else:
                        if now >= store.swap_at:
                            cell = store.cell(key, now)
                if now >= cell.gate:
                    if cell.start <= now < cell.end:
                        new = cell.count + cost
                        if new <= top:
                            cell.count = count = new
                            end = cell.end
                            tally.granted += 1
                    elif self._count(cell, now, cost, period, top):
                        count = cell.count
                        end = cell.end
            if count >= 0.0:
                return _decision(
                    RateLimitDecision,
                    (True, _trunc(quota - count), 0.0, end - now, limit),
                )
        return self._try(now, cost, key)

    @staticmethod
    def _count(
        cell: WindowCell, now: float, cost: float, period: float, top: float
    ) -> bool:
        """
        Count *cost* in the window of *now* (not the one the cell has
        bounds for), if it fits.
        """
        window = cell.window
        k = window_of(now, period)
        if k < window:  # before the window counted: wait for it
            return False
        count = cost if k > window else cell.count + cost
        if count > top:
            return False
        cell.window = k
        cell.count = count
        cell.start = k * period
        cell.end = (k + 1) * period
        cell.tally.granted += 1
        return True

    def _take(self, now: float, cost: float, key: Hashable | None) -> bool:
        if not 0 < cost <= self._fast:
            return False
        lock = self._dcell.lock if key is None else self._store.lock
        taken = False
        with lock:
            cell: Any = (
                self._dcell if key is None else self._store.cell(key, now)
            )
            if now >= cell.gate:
                period, top, _, _ = self._consts
                taken = self._count(cell, now, cost, period, top)
        return taken


@attrs.frozen(kw_only=True, eq=False)
class _CounterLimiter(_Limiter):
    """
    The sliding-window counter's hot path.
    """

    def _hot_init(self, algorithm: Any) -> None:
        if isinstance(algorithm, SlidingWindowCounterAlgorithm):
            _set(self, "_fast", algorithm.quota)
            _set(
                self,
                "_consts",
                (
                    algorithm.period,
                    algorithm.top,
                    algorithm.quota,
                    algorithm.limit,
                ),
            )

    def try_acquire(
        self, cost: float = 1, key: Hashable | None = None
    ) -> RateLimitDecision:
        """
        Take *cost* now if the limit allows it; never wait.  See
        :meth:`TokenBucket.try_acquire`.

        .. versionadded:: 0.1.0
        """
        now = self.clock.now()
        try:
            fast = 0 < cost <= self._fast
        except TypeError:  # not a number: say so
            raise _not_a_number(cost) from None
        if fast:
            store: Any
            if key is None:
                cell = tally = self._dcell
                lock = cell.lock
                store = None
            else:
                store = tally = self._store
                lock = store.lock
                cell = None
            period, top, quota, limit = self._consts
            estimate = INF  # stays infinite unless granted
            window = 0
            with lock:
                if cell is None:
                    try:
                        cell = store.cells[key]
                    except KeyError:
                        cell = store.cell(key, now)
                    else:
                        if now >= store.swap_at:
                            cell = store.cell(key, now)
                if now >= cell.gate:
                    start = cell.start
                    if start <= now < cell.end:
                        current = cell.current + cost
                        new = (
                            cell.previous * (1.0 - (now - start) / period)
                            + current
                        )
                        if new <= top:
                            cell.current = current
                            estimate = new
                            tally.granted += 1
                    else:
                        estimate = self._count(cell, now, cost, period, top)
                    window = cell.window
            if estimate != INF:
                return _decision(
                    RateLimitDecision,
                    (
                        True,
                        _trunc(quota - estimate),
                        0.0,
                        (window + 2) * period - now,
                        limit,
                    ),
                )
        return self._try(now, cost, key)

    @staticmethod
    def _count(
        cell: CounterCell, now: float, cost: float, period: float, top: float
    ) -> float:
        """
        Count *cost* at *now*, moving the cell on to the window of *now*,
        if it fits; return the estimate with it (``inf``: it does not).
        """
        window = cell.window
        k = window_of(now, period)
        if k < window:  # before the window counted: wait for it
            return INF
        if k == window:
            previous, current = cell.previous, cell.current
        elif k == window + 1:
            previous, current = cell.current, 0.0
        else:
            previous = current = 0.0
        start = k * period
        current += cost
        estimate = previous * (1.0 - (now - start) / period) + current
        if estimate > top:
            return INF
        cell.window = k
        cell.previous = previous
        cell.current = current
        cell.start = start
        cell.end = (k + 1) * period
        cell.tally.granted += 1
        return estimate

    def _take(self, now: float, cost: float, key: Hashable | None) -> bool:
        if not 0 < cost <= self._fast:
            return False
        lock = self._dcell.lock if key is None else self._store.lock
        estimate = INF
        with lock:
            cell: Any = (
                self._dcell if key is None else self._store.cell(key, now)
            )
            if now >= cell.gate:
                period, top, _, _ = self._consts
                estimate = self._count(cell, now, cost, period, top)
        return estimate != INF


@attrs.frozen(kw_only=True, eq=False)
class _LogLimiter(_Limiter):
    """
    The sliding-window log's hot path.
    """

    def _hot_init(self, algorithm: Any) -> None:
        if isinstance(algorithm, SlidingWindowLogAlgorithm):
            _set(self, "_fast", algorithm.quota)
            _set(
                self,
                "_consts",
                (
                    algorithm,
                    algorithm.period,
                    algorithm.top,
                    algorithm.quota,
                    algorithm.limit,
                ),
            )

    def try_acquire(
        self, cost: float = 1, key: Hashable | None = None
    ) -> RateLimitDecision:
        """
        Take *cost* now if the limit allows it; never wait.  See
        :meth:`TokenBucket.try_acquire`.

        .. versionadded:: 0.1.0
        """
        now = self.clock.now()
        try:
            fast = 0 < cost <= self._fast
        except TypeError:  # not a number: say so
            raise _not_a_number(cost) from None
        if fast:
            store: Any
            if key is None:
                cell = tally = self._dcell
                lock = cell.lock
                store = None
            else:
                store = tally = self._store
                lock = store.lock
                cell = None
            algorithm, period, top, quota, limit = self._consts
            held = INF  # stays infinite unless granted
            at = now
            with lock:
                if cell is None:
                    try:
                        cell = store.cells[key]
                    except KeyError:
                        cell = store.cell(key, now)
                    else:
                        if now >= store.swap_at:
                            cell = store.cell(key, now)
                if now >= cell.gate:
                    log = cell.state
                    times = log.times
                    stamp = log.latest
                    if now >= stamp:
                        stamp = log.latest = now
                    head = log.head
                    size = len(times)
                    totals = log.totals
                    if head < size and times[head] + period <= stamp:
                        # Steady state: one entry expires per entry logged
                        # (the core compacts the expired ones in bulk).
                        if (
                            head + 1 < size
                            and times[head + 1] + period > stamp
                            and (head < COMPACT_AFTER or head * 2 < size)
                        ):
                            log.gone = totals[head]
                            log.head = head = head + 1
                        else:
                            algorithm.expire(log, stamp)
                            head = log.head
                            size = len(times)
                    gone = log.gone
                    total = INF
                    if head == size:
                        total = gone + cost
                    elif (
                        times[-1] <= stamp and totals[-1] - gone + cost <= top
                    ):
                        total = totals[-1] + cost
                    if total != INF:
                        times.append(stamp)
                        totals.append(total)
                        tally.granted += 1
                        held = total - gone
                        at = stamp
            if held != INF:
                return _decision(
                    RateLimitDecision,
                    (
                        True,
                        _trunc(quota - held),
                        0.0,
                        at + period - now,
                        limit,
                    ),
                )
        return self._try(now, cost, key)

    def _take(self, now: float, cost: float, key: Hashable | None) -> bool:
        if not 0 < cost <= self._fast:
            return False
        lock = self._dcell.lock if key is None else self._store.lock
        with lock:
            cell: Any = (
                self._dcell if key is None else self._store.cell(key, now)
            )
            tally = cell.tally
            if now >= cell.gate:
                algorithm, _, top, _, _ = self._consts
                log = cell.state
                at = algorithm.expire(log, now)
                if log.head == len(log.times) or (
                    log.times[-1] <= at
                    and (log.totals[-1] - log.gone + cost <= top)
                ):
                    algorithm.book(log, now, now, cost)
                else:
                    return False
                tally.granted += 1
                return True
        return False


def _several(name: str, limiter: str) -> ConfigurationError:
    return ConfigurationError(
        f"{name!r} cannot be given with several rates: each rate's limit "
        f"is its {name} in {limiter}"
    )


def _buckets(
    rate: Rate | tuple[Rate, ...],
    capacity: float | None,
    name: str,
    limiter: str,
    make: Callable[[float, float], Any],
) -> Algorithm[Any]:
    if isinstance(rate, tuple):
        if capacity is not None:
            raise _several(name, limiter)
        return MultiRateAlgorithm(
            tuple(make(r.per_second, max(1.0, r.limit)) for r in rate)
        )
    if capacity is None:
        capacity = min(MAX_CAPACITY, max(1.0, rate.limit))
    return cast("Algorithm[Any]", make(rate.per_second, float(capacity)))


def _windows(
    rate: Rate | tuple[Rate, ...], make: Callable[[float, float], Any]
) -> Algorithm[Any]:
    if isinstance(rate, tuple):
        return MultiRateAlgorithm(tuple(make(*_window_rate(r)) for r in rate))
    return cast("Algorithm[Any]", make(*_window_rate(rate)))


@final
@attrs.frozen(kw_only=True, eq=False)
class TokenBucket(_BucketLimiter):
    """
    Allow bursts of up to *capacity*, refilled continuously at *rate*.

    Every limiter shares this interface: :meth:`try_acquire` never waits
    and returns a :class:`RateLimitDecision`; :meth:`peek` tells what it
    would return without taking anything; :meth:`acquire` and
    :meth:`aacquire` wait for a booked slot up to a timeout (or raise
    :class:`~stalwart.RateLimitExceededError` at once, consuming nothing);
    :meth:`reset` and :meth:`clear` forget state.  Used as a decorator,
    ``with`` / ``async with`` block, or through ``call`` / ``acall``, a
    limiter acquires one permit before the call.  Each *key* has its own
    independent state, forgotten once it is back to fresh.

    Args:
        rate: Tokens added per second, a ``(limit, period)`` pair, a
            string such as ``"100/minute"``, or several of those (a list,
            or ``"10/second;1000/hour"``): then a request is granted only
            if every rate's bucket holds it.
        capacity: The most tokens the bucket holds (the largest burst),
            at least 1; by default the rate's limit (``100`` for
            ``"100/minute"``; the rate itself, at least 1, for a number
            per second).  Not with several rates: each rate's limit is its
            bucket's capacity.
        timeout: The longest wait, in seconds, of the decorator and
            context-manager faces; ``None`` waits as long as needed.
        key_func: For decorated calls (and ``call`` / ``acall``), a
            function of the call's arguments that returns the key to
            limit by; ``None`` uses the default key.
        name: Used in errors and events.
        clock: The clock to read and wait on.
        hooks: Receive a :class:`~stalwart.CallRejected` for every
            refusal.
        store: Where the keys' state lives: ``None`` in this process's
            memory; a :class:`~stalwart.redis.RedisStore` on a Redis
            server, shared by every process that uses it with this
            limiter's *name* (see :doc:`/redis`).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 *store*.
    """

    rate: Rate | tuple[Rate, ...] = attrs.field(converter=_to_rates)
    capacity: float | None = attrs.field(
        default=None, validator=[finite, positive, _one_or_more]
    )

    _cell_type = BucketCell

    def _build(self) -> Algorithm[Any]:
        return _buckets(
            self.rate,
            self.capacity,
            "capacity",
            "TokenBucket",
            BucketAlgorithm,
        )


@final
@attrs.frozen(kw_only=True, eq=False)
class GCRA(_BucketLimiter):
    """
    The generic cell rate algorithm: a token bucket kept as one timestamp.

    It makes exactly the decisions of ``TokenBucket(rate=rate,
    capacity=burst)`` (they share one arithmetic), and its state is the
    theoretical arrival time, kept relative to the time it was last
    updated so that it stays exact at any clock value.  Same interface as
    :class:`TokenBucket`.

    Args:
        rate: Requests per second, a ``(limit, period)`` pair, a string
            such as ``"100/minute"``, or several of those.
        burst: How many may come at once, at least 1; by default the
            rate's limit.  Not with several rates.

    .. versionadded:: 0.1.0
    """

    rate: Rate | tuple[Rate, ...] = attrs.field(converter=_to_rates)
    burst: float | None = attrs.field(
        default=None, validator=[finite, positive, _one_or_more]
    )

    _cell_type = BucketCell

    def _build(self) -> Algorithm[Any]:
        return _buckets(
            self.rate, self.burst, "burst", "GCRA", BucketAlgorithm
        )


@final
@attrs.frozen(kw_only=True, eq=False)
class LeakyBucket(_BucketLimiter):
    """
    A bucket of *capacity* leaking at *rate*: a meter or a shaper.

    As a ``"meter"`` a request is granted when its cost fits in the bucket
    and refused when it would overflow (the decisions of a token bucket).
    As a ``"shaper"`` granted requests are spaced evenly at the rate:
    :meth:`acquire` releases each caller at its slot, and refuses when the
    queue (the bucket) is full; :meth:`try_acquire` grants only when no
    one is queued.  Same interface as :class:`TokenBucket`.

    Args:
        rate: Units leaking per second, a ``(limit, period)`` pair, a
            string such as ``"100/minute"``, or (a meter only) several of
            those.
        capacity: The bucket's size, at least 1; by default the rate's
            limit.  Not with several rates.
        mode: ``"meter"`` or ``"shaper"``.

    .. versionadded:: 0.1.0
    """

    rate: Rate | tuple[Rate, ...] = attrs.field(converter=_to_rates)
    capacity: float | None = attrs.field(
        default=None, validator=[finite, positive, _one_or_more]
    )
    mode: Literal["meter", "shaper"] = attrs.field(
        default="meter", validator=_mode
    )

    _cell_type = BucketCell

    def _build(self) -> Algorithm[Any]:
        if self.mode == "shaper":
            if isinstance(self.rate, tuple):
                msg = (
                    "'rate' must be one rate for a shaper, which spaces "
                    f"requests at one rate (got {len(self.rate)} rates)"
                )
                raise ConfigurationError(msg)
            make: Callable[[float, float], Any] = ShaperAlgorithm
        else:
            make = BucketAlgorithm
        return _buckets(
            self.rate, self.capacity, "capacity", "LeakyBucket", make
        )


@final
@attrs.frozen(kw_only=True, eq=False)
class FixedWindow(_FixedLimiter):
    """
    At most the rate's limit in each aligned window of its period.

    Windows start at multiples of the period on the limiter's clock.
    Cheap and simple; allows up to twice the limit across a window
    boundary.  A limit below one per period means one per longer period
    (``rate=0.5``: one request per 2 s window).  Same interface as
    :class:`TokenBucket`.

    Args:
        rate: ``"100/minute"``, ``(100, 60.0)``, a number per second, or
            several of those (a request must fit in every window).

    .. versionadded:: 0.1.0
    """

    rate: Rate | tuple[Rate, ...] = attrs.field(converter=_to_rates)

    _cell_type = WindowCell

    def _build(self) -> Algorithm[Any]:
        return _windows(self.rate, FixedWindowAlgorithm)


@final
@attrs.frozen(kw_only=True, eq=False)
class SlidingWindowLog(_LogLimiter):
    """
    Exactly at most the rate's limit in every window of its period.

    Keeps one entry per granted request (at most *limit* per key); every
    operation is amortised O(1) whatever the number of entries.  A limit
    below one per period means one per longer period.  Same interface as
    :class:`TokenBucket`.

    Args:
        rate: ``"100/minute"``, ``(100, 60.0)``, a number per second, or
            several of those.

    .. versionadded:: 0.1.0
    """

    rate: Rate | tuple[Rate, ...] = attrs.field(converter=_to_rates)

    def _build(self) -> Algorithm[Any]:
        return _windows(self.rate, SlidingWindowLogAlgorithm)


@final
@attrs.frozen(kw_only=True, eq=False)
class SlidingWindowCounter(_CounterLimiter):
    """
    Approximately the rate's limit per sliding window, in O(1) memory.

    Weighs the previous fixed window by how much of it the sliding window
    still covers.  Each aligned window holds at most the limit, so any
    window of the period holds less than twice the limit.  A limit below
    one per period means one per longer period.  Same interface as
    :class:`TokenBucket`.

    Args:
        rate: ``"100/minute"``, ``(100, 60.0)``, a number per second, or
            several of those.

    .. versionadded:: 0.1.0
    """

    rate: Rate | tuple[Rate, ...] = attrs.field(converter=_to_rates)

    _cell_type = CounterCell

    def _build(self) -> Algorithm[Any]:
        return _windows(self.rate, SlidingWindowCounterAlgorithm)


__all__ = [
    "GCRA",
    "FixedWindow",
    "LeakyBucket",
    "RateLimitDecision",
    "RateLimiterStatistics",
    "RateSpec",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "TokenBucket",
]
