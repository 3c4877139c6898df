"""
Rate limiters: one shell, shared by every algorithm of
:mod:`stalwart._core.limits`.

The shell owns the clock, the locks, the per-key store, the hooks and the
faces.  It reads the clock before taking a lock, holds a lock only around
an O(1) call into the algorithm, and waits (``clock.sleep`` or
``await clock.asleep``) outside every lock.  A wait is a reservation: the
slot is booked in the state first, so waiters are served in the order they
asked, and a wait that is cancelled or interrupted gives its reservation
back (how exactly is stated by each algorithm).
"""

from __future__ import annotations

import functools
import inspect
import math
import threading

from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Literal, NamedTuple, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock
from ._core.limits import (
    EPSILON,
    Algorithm,
    FixedWindowAlgorithm,
    GCRAAlgorithm,
    LeakyBucketAlgorithm,
    SlidingWindowCounterAlgorithm,
    SlidingWindowLogAlgorithm,
    TokenBucketAlgorithm,
)
from ._deadline import cap_wait
from ._errors import ConfigurationError, RateLimitExceededError
from ._events import CallRejected, Hook, emit
from ._rates import Rate, RateSpec
from ._stores import MemoryStore
from ._typing import P, T
from ._validators import (
    finite,
    is_callable,
    non_negative,
    optional_duration,
    optional_seconds,
    positive,
    valid_hooks,
)
from ._validators import hooks as hooks_converter


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
            ``0.0`` when it was.
        reset_after: Seconds until the key is back to its full allowance.
        limit: The nominal allowance (capacity, burst, or limit per
            window).

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


@final
@attrs.frozen
class RateLimiterStatistics:
    """
    A snapshot of a limiter's counters.

    Attributes:
        name: The limiter's name.
        granted: Requests granted (at once or after a wait).
        refused: Requests refused.
        keys: Keys whose state is held now (the default key excluded).

    .. versionadded:: 0.1.0
    """

    name: str
    granted: int
    refused: int
    keys: int


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


# A named converter: mypy's attrs plugin reads it.
def _to_rate(value: RateSpec) -> Rate:
    return Rate.parse(value)


def _mode(inst: object, attr: attrs.Attribute[Any], value: object) -> None:
    if value not in ("meter", "shaper"):
        msg = f"'mode' must be 'meter' or 'shaper' (got {value!r})"
        raise ConfigurationError(msg)


Ticket = tuple[float, Any, Any, float]

_set = object.__setattr__
"""What a refund needs: ``(now, before, after, slot)``."""


class _Cell:
    """
    The mutable state of a limiter's default key, and its counters,
    guarded by *lock*.

    It lives outside the (frozen) limiter so that writing it costs a plain
    slot store.
    """

    __slots__ = ("granted", "lock", "refused", "state")

    def __init__(self, state: Any) -> None:
        self.lock = threading.Lock()
        self.state = state
        self.granted = 0
        self.refused = 0


class _BucketCell:
    """
    A token bucket's cell: like :class:`_Cell`, but the state is kept as
    two floats, which the hand-inlined hot path reads and writes directly.
    """

    __slots__ = ("granted", "last", "lock", "refused", "tokens")

    def __init__(self, state: tuple[float, float]) -> None:
        self.lock = threading.Lock()
        self.tokens, self.last = state
        self.granted = 0
        self.refused = 0

    @property
    def state(self) -> tuple[float, float]:
        return (self.tokens, self.last)

    @state.setter
    def state(self, state: tuple[float, float]) -> None:
        self.tokens, self.last = state


@attrs.frozen(kw_only=True, eq=False)
class _Limiter:
    """
    The faces shared by every limiter; see :class:`TokenBucket`.
    """

    name: str = attrs.field(default="<unnamed>")
    timeout: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, finite, non_negative],
    )
    key_func: Callable[..., Hashable] | None = attrs.field(
        default=None, validator=is_callable
    )
    clock: Clock = attrs.field(default=DEFAULT_CLOCK)
    hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=hooks_converter, validator=valid_hooks
    )
    _algorithm: Algorithm[Any] = attrs.field(init=False, repr=False)
    _capacity: float = attrs.field(init=False, repr=False)
    _limit: int = attrs.field(init=False, repr=False)
    _store: MemoryStore[Any] = attrs.field(init=False, repr=False)
    _cell: _Cell | _BucketCell = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        algorithm = self._build()
        # Private derived fields of a frozen instance, set once here.
        _set(self, "_algorithm", algorithm)
        _set(self, "_capacity", algorithm.capacity + EPSILON)
        _set(self, "_limit", algorithm.limit)
        _set(self, "_store", MemoryStore(algorithm))
        _set(self, "_cell", self._new_cell(algorithm.fresh()))

    def _build(self) -> Algorithm[Any]:
        raise NotImplementedError  # pragma: no cover  # every subclass has one

    def _new_cell(self, fresh: Any) -> _Cell | _BucketCell:
        # The default key's state lives in the cell (no dict lookup).
        return _Cell(fresh)

    # ---------------------------------------------------------------- steps

    def try_acquire(
        self, cost: float = 1, key: Hashable | None = None
    ) -> RateLimitDecision:
        """
        Take *cost* now if the limit allows it; never wait.

        A refused request changes no state.

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
                *cost* can never be granted.
            ValueError: If *cost* is not > 0.

        .. versionadded:: 0.1.0
        """
        now = self.clock.now()
        return self._try(now, cost, key)

    def _try(
        self, now: float, cost: float, key: Hashable | None
    ) -> RateLimitDecision:
        if cost > self._capacity or not cost > 0:
            self._check(cost)
        algorithm = self._algorithm
        if key is None:
            cell = self._cell
            with cell.lock:
                granted, state, wait = algorithm.reserve(
                    cell.state, now, cost, 0.0
                )
                if granted:
                    cell.state = state
                    cell.granted += 1
                else:
                    cell.refused += 1
                remaining, reset_after = algorithm.status(state, now)
        else:
            granted, wait, remaining, reset_after = self._store.try_acquire(
                key, now, cost
            )
        if granted:
            wait = 0.0
        elif self.hooks:
            self._emit(now, wait)
        return _decision(
            RateLimitDecision,
            (granted, remaining, wait, reset_after, self._limit),
        )

    def acquire(
        self,
        cost: float = 1,
        key: Hashable | None = None,
        timeout: float
        | None = None,  # a wait on the injectable clock, not a deadline on the call
    ) -> None:
        """
        Take *cost*, waiting for it if it can be had within *timeout*.

        The request is booked at once; the caller then sleeps until its
        slot.  Waiters are served in the order they asked.  If the wait
        is interrupted (``KeyboardInterrupt``, say) the booking is given
        back.  A wait never goes past the deadline of an enclosing
        :class:`~stalwart.Timeout`.

        Args:
            cost: The weight of the request; must be > 0.
            key: Whose limit to use; ``None`` is the default key.
            timeout: The longest wait, in seconds; ``None`` waits as long
                as needed, ``0`` never waits.

        Raises:
            RateLimitExceededError: At once, consuming nothing, if the
                request cannot be granted within *timeout* (or the
                deadline); ``retry_after=None`` if it never can.
            ValueError: If *cost* is not > 0.

        .. versionadded:: 0.1.0
        """
        wait, ticket = self._reserve(cost, key, timeout)
        if wait > 0.0:
            try:
                self.clock.sleep(wait)
            except BaseException:
                self._refund(cost, key, ticket)
                raise

    async def aacquire(
        self,
        cost: float = 1,
        key: Hashable | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  # a wait on the injectable clock, not a deadline on the call
    ) -> None:
        """
        Take *cost*, waiting for it if it can be had within *timeout*: the
        async twin of :meth:`acquire`.

        A cancelled wait gives its booking back.

        .. versionadded:: 0.1.0
        """
        wait, ticket = self._reserve(cost, key, timeout)
        if wait > 0.0:
            try:
                await self.clock.asleep(wait)
            except BaseException:
                self._refund(cost, key, ticket)
                raise

    def _reserve(
        self, cost: float, key: Hashable | None, timeout: float | None
    ) -> tuple[float, Ticket]:
        """
        Book *cost* and return the wait for its slot, or raise.
        """
        now = self.clock.now()
        self._check(cost)
        max_wait, _ = cap_wait(timeout)
        if max_wait is None:
            max_wait = math.inf
        if key is None:
            cell = self._cell
            with cell.lock:
                before = cell.state
                granted, after, wait = self._algorithm.reserve(
                    before, now, cost, max_wait
                )
                if granted:
                    cell.state = after
                    cell.granted += 1
                else:
                    cell.refused += 1
        else:
            granted, wait, before, after = self._store.reserve(
                key, now, cost, max_wait
            )
        if not granted:
            error = RateLimitExceededError(self.name, wait)
            if self.hooks:
                emit(
                    self.hooks,
                    CallRejected(
                        primitive_name=self.name, at=now, error=error
                    ),
                )
            raise error
        return wait, (now, before, after, now + wait)

    def _refund(
        self, cost: float, key: Hashable | None, ticket: Ticket
    ) -> None:
        """
        Give back the booking described by *ticket*.
        """
        now = self.clock.now()
        _, before, after, slot = ticket
        if key is None:
            cell = self._cell
            with cell.lock:
                cell.state = self._algorithm.refund(
                    cell.state,
                    now,
                    cost=cost,
                    before=before,
                    after=after,
                    slot=slot,
                )
                cell.granted -= 1
        else:
            self._store.refund(
                key, now, cost=cost, before=before, after=after, slot=slot
            )

    def _check(self, cost: float) -> None:
        if cost > self._capacity:
            raise _CostNeverFitsError(
                self.name, cost, self._algorithm.capacity
            )
        if not cost > 0:
            msg = f"'cost' must be > 0 (got {cost!r})"
            raise ValueError(msg)

    def _emit(self, now: float, retry_after: float) -> None:
        emit(
            self.hooks,
            CallRejected(
                primitive_name=self.name,
                at=now,
                error=RateLimitExceededError(self.name, retry_after),
            ),
        )

    def statistics(self) -> RateLimiterStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.1.0
        """
        store = self._store
        cell = self._cell
        with cell.lock:
            granted, refused = cell.granted, cell.refused
        return RateLimiterStatistics(
            name=self.name,
            granted=granted + store.granted,
            refused=refused + store.refused,
            keys=len(store),
        )

    # ---------------------------------------------------------------- faces

    def __enter__(self) -> None:
        self.acquire(1, None, self.timeout)

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

        .. versionadded:: 0.1.0
        """
        key = self.key_func
        self.acquire(
            1, None if key is None else key(*args, **kwargs), self.timeout
        )
        return fn(*args, **kwargs)

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

        .. versionadded:: 0.1.0
        """
        key = self.key_func
        await self.aacquire(
            1, None if key is None else key(*args, **kwargs), self.timeout
        )
        return await fn(*args, **kwargs)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate *fn* (``def`` or ``async def``) so that every call first
        acquires one permit, with the configured *timeout*, for the key
        *key_func* returns from the call's arguments.

        .. versionadded:: 0.1.0
        """
        key = self.key_func
        timeout = self.timeout
        if inspect.iscoroutinefunction(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)
            aacquire = self.aacquire

            @functools.wraps(fn)
            async def limited_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                await aacquire(
                    1, None if key is None else key(*args, **kwargs), timeout
                )
                return await afn(*args, **kwargs)

            return cast("Callable[P, T]", limited_async)

        acquire = self.acquire

        @functools.wraps(fn)
        def limited(*args: P.args, **kwargs: P.kwargs) -> T:
            acquire(1, None if key is None else key(*args, **kwargs), timeout)
            return fn(*args, **kwargs)

        return limited


@final
@attrs.frozen(kw_only=True, eq=False)
class TokenBucket(_Limiter):
    """
    Allow bursts of up to *capacity*, refilled continuously at *rate*.

    Every limiter shares this interface: :meth:`try_acquire` never waits
    and returns a :class:`RateLimitDecision`; :meth:`acquire` and
    :meth:`aacquire` wait for a booked slot up to a timeout (or raise
    :class:`~stalwart.RateLimitExceededError` at once, consuming nothing);
    used as a decorator, ``with`` / ``async with`` block, or through
    ``call`` / ``acall``, a limiter acquires one permit before the call.
    Each *key* has its own independent state, freed once it is back to
    fresh.

    Args:
        rate: Tokens added per second, a ``(limit, period)`` pair, or a
            string such as ``"100/minute"``.
        capacity: The most tokens the bucket holds (the largest burst);
            by default the rate's limit (``100`` for ``"100/minute"``;
            the rate itself, at least 1, for a number per second).
        timeout: The longest wait, in seconds, of the decorator and
            context-manager faces; ``None`` waits as long as needed.
        key_func: For decorated calls (and ``call`` / ``acall``), a
            function of the call's arguments that returns the key to
            limit by; ``None`` uses the default key.
        name: Used in errors and events.
        clock: The clock to read and wait on.
        hooks: Receive a :class:`~stalwart.CallRejected` for every
            refusal.

    .. versionadded:: 0.1.0
    """

    rate: Rate = attrs.field(converter=_to_rate)
    capacity: float | None = attrs.field(
        default=None, validator=[finite, positive]
    )
    _rate: float = attrs.field(init=False, repr=False, default=0.0)
    _cap: float = attrs.field(init=False, repr=False, default=0.0)
    _full_at: float = attrs.field(init=False, repr=False, default=0.0)
    _full: RateLimitDecision = attrs.field(init=False, repr=False)
    _bucket: TokenBucketAlgorithm = attrs.field(init=False, repr=False)
    _bcell: _BucketCell = attrs.field(init=False, repr=False)

    def _build(self) -> Algorithm[Any]:
        capacity = self.capacity
        if capacity is None:
            capacity = max(1.0, self.rate.limit)
        algorithm = TokenBucketAlgorithm(self.rate.per_second, capacity)
        _set(self, "_rate", algorithm.rate)
        _set(self, "_cap", capacity)
        # A capacity below one token never takes try_acquire's hot path.
        _set(self, "_full_at", capacity if capacity >= 1 else math.inf)
        _set(self, "_bucket", algorithm)
        _set(self, "_full", self._after_grant(algorithm, capacity - 1.0))
        return algorithm

    def _new_cell(self, fresh: Any) -> _Cell | _BucketCell:
        cell = _BucketCell(fresh)
        _set(self, "_bcell", cell)
        return cell

    @staticmethod
    def _after_grant(
        algorithm: TokenBucketAlgorithm, tokens: float
    ) -> RateLimitDecision:
        remaining, reset_after = algorithm.status((tokens, 0.0), 0.0)
        return RateLimitDecision(
            True, remaining, 0.0, reset_after, algorithm.limit
        )

    def try_acquire(
        self, cost: float = 1, key: Hashable | None = None
    ) -> RateLimitDecision:
        """
        Take *cost* tokens now if the bucket holds them; never wait.

        See :meth:`_Limiter.try_acquire`.

        .. versionadded:: 0.1.0
        """
        now = self.clock.now()
        if key is None and cost == 1:
            # The hot path: one token from a bucket that is full once
            # refilled (the common case of a limit that is not hit) leaves
            # the same state as TokenBucketAlgorithm.reserve (a test proves
            # it) and the same decision every time, built once.
            cell = self._bcell
            with cell.lock:
                if (
                    cell.tokens + (now - cell.last) * self._rate
                    >= self._full_at
                ):
                    cell.tokens = self._full_at - 1.0
                    cell.last = now
                    cell.granted += 1
                    return self._full
        return self._try(now, cost, key)

    def _take_one(self, now: float) -> bool:
        """
        Take one token from the default key if the bucket holds it now.
        """
        # TokenBucketAlgorithm.reserve with cost 1 and no wait, inlined.
        cell = self._bcell
        with cell.lock:
            tokens = cell.tokens
            last = cell.last
            if now > last:
                tokens += (now - last) * self._rate
                if tokens > self._cap:  # noqa: PLR1730  # min() costs a call
                    tokens = self._cap
                last = now
            if 1.0 - tokens <= 1e-9:  # EPSILON, as a constant
                cell.tokens = tokens - 1.0
                cell.last = last
                cell.granted += 1
                return True
        return False

    def acquire(
        self,
        cost: float = 1,
        key: Hashable | None = None,
        timeout: float | None = None,
    ) -> None:
        """
        Take *cost* tokens, waiting up to *timeout*: see
        :meth:`_Limiter.acquire`.

        .. versionadded:: 0.1.0
        """
        # A token available now needs no reservation or deadline check.
        if key is None and cost == 1 and self._take_one(self.clock.now()):
            return
        _Limiter.acquire(self, cost, key, timeout)

    async def aacquire(
        self,
        cost: float = 1,
        key: Hashable | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  # a wait on the injectable clock, not a deadline on the call
    ) -> None:
        """
        Take *cost* tokens, waiting up to *timeout*: see
        :meth:`_Limiter.aacquire`.

        .. versionadded:: 0.1.0
        """
        if key is None and cost == 1 and self._take_one(self.clock.now()):
            return
        await _Limiter.aacquire(self, cost, key, timeout)


@final
@attrs.frozen(kw_only=True, eq=False)
class GCRA(_Limiter):
    """
    The generic cell rate algorithm: a token bucket kept as one timestamp.

    It makes the same decisions as ``TokenBucket(rate=rate,
    capacity=burst)`` with a state of two floats, the shape a shared store
    prefers.  Same interface as :class:`TokenBucket`.

    Args:
        rate: Requests per second, a ``(limit, period)`` pair, or a string
            such as ``"100/minute"``.
        burst: How many may come at once; by default the rate's limit.

    .. versionadded:: 0.1.0
    """

    rate: Rate = attrs.field(converter=_to_rate)
    burst: float | None = attrs.field(
        default=None, validator=[finite, positive]
    )

    def _build(self) -> Algorithm[Any]:
        burst = self.burst
        if burst is None:
            burst = max(1.0, self.rate.limit)
        return GCRAAlgorithm(self.rate.per_second, burst)


@final
@attrs.frozen(kw_only=True, eq=False)
class LeakyBucket(_Limiter):
    """
    A bucket of *capacity* leaking at *rate*: a meter or a shaper.

    As a ``"meter"`` a request is granted when its cost fits in the bucket
    and refused when it would overflow.  As a ``"shaper"`` granted
    requests are spaced evenly at the rate: :meth:`acquire` releases each
    caller at its slot, and refuses when the queue (the bucket) is full;
    :meth:`try_acquire` grants only when no one is queued.  Same interface
    as :class:`TokenBucket`.

    Args:
        rate: Units leaking per second, a ``(limit, period)`` pair, or a
            string such as ``"100/minute"``.
        capacity: The bucket's size; by default the rate's limit.
        mode: ``"meter"`` or ``"shaper"``.

    .. versionadded:: 0.1.0
    """

    rate: Rate = attrs.field(converter=_to_rate)
    capacity: float | None = attrs.field(
        default=None, validator=[finite, positive]
    )
    mode: Literal["meter", "shaper"] = attrs.field(
        default="meter", validator=_mode
    )

    def _build(self) -> Algorithm[Any]:
        capacity = self.capacity
        if capacity is None:
            capacity = max(1.0, self.rate.limit)
        return LeakyBucketAlgorithm(
            self.rate.per_second, capacity, shape=self.mode == "shaper"
        )


@final
@attrs.frozen(kw_only=True, eq=False)
class FixedWindow(_Limiter):
    """
    At most the rate's limit in each aligned window of its period.

    Windows start at multiples of the period on the limiter's clock.
    Cheap and simple; allows up to twice the limit across a window
    boundary.  Same interface as :class:`TokenBucket`.

    Args:
        rate: ``"100/minute"``, ``(100, 60.0)``, or a number per second.

    .. versionadded:: 0.1.0
    """

    rate: Rate = attrs.field(converter=_to_rate)

    def _build(self) -> Algorithm[Any]:
        return FixedWindowAlgorithm(self.rate.limit, self.rate.period)


@final
@attrs.frozen(kw_only=True, eq=False)
class SlidingWindowLog(_Limiter):
    """
    Exactly at most the rate's limit in every window of its period.

    Keeps one entry per granted request (at most *limit* per key); every
    operation is amortised O(1) whatever the number of entries.  Same
    interface as :class:`TokenBucket`.

    Args:
        rate: ``"100/minute"``, ``(100, 60.0)``, or a number per second.

    .. versionadded:: 0.1.0
    """

    rate: Rate = attrs.field(converter=_to_rate)

    def _build(self) -> Algorithm[Any]:
        return SlidingWindowLogAlgorithm(self.rate.limit, self.rate.period)


@final
@attrs.frozen(kw_only=True, eq=False)
class SlidingWindowCounter(_Limiter):
    """
    Approximately the rate's limit per sliding window, in O(1) memory.

    Weighs the previous fixed window by how much of it the sliding window
    still covers.  Each aligned window holds at most the limit, so any
    window of the period holds less than twice the limit.  Same interface
    as :class:`TokenBucket`.

    Args:
        rate: ``"100/minute"``, ``(100, 60.0)``, or a number per second.

    .. versionadded:: 0.1.0
    """

    rate: Rate = attrs.field(converter=_to_rate)

    def _build(self) -> Algorithm[Any]:
        return SlidingWindowCounterAlgorithm(self.rate.limit, self.rate.period)


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
