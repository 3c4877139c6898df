"""
WeightedBulkhead: cap the weight of what is in flight (bytes of payloads,
rows, tokens of a model), not only the number of calls.

Each permit has a cost, and the bulkhead lets permits in while their costs
add up to at most *max_weight*.  The core (:mod:`stalwart._core.bulkhead`)
serves waiters in FIFO order: the head of the queue reserves the units
that free up until its cost fits, so a small request never overtakes a
large one that came first, and a large one is never starved by a stream of
small ones.  Waiting, the explicit steps, refusals and per-call events are
those of every bulkhead (:mod:`stalwart._permits`).

Every face takes its permits as tokens (each knows its cost).  A
:class:`WeightedHold` is the bulkhead at a fixed cost: a guard
(:class:`stalwart._faces.Guard`) with every face, which
:class:`~stalwart.Pipeline` chains like any other.  The bulkhead itself
weighs each call by its arguments (*cost_func*) and so runs through its
``call`` / ``acall`` in a pipeline.
"""

from __future__ import annotations

import functools

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from types import TracebackType
from typing import Any, ClassVar, Literal, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock
from ._core.bulkhead import BulkheadCore
from ._errors import BulkheadFullError, ConfigurationError
from ._events import Hook
from ._faces import (
    NO_RESULT,
    Blocks,
    caller,
    guard_acall,
    guard_async_generator,
    guard_call,
    guard_decorate,
    guard_generator,
    is_async_callable,
    is_async_generator_function,
    is_generator_function,
)
from ._observe import LiveHooks, live_hooks
from ._permits import CALL_FACES, WITH_FACES, BulkheadBase
from ._statistics import Statistics
from ._typing import P, Seconds, T
from ._validators import (
    finite,
    hooks,
    integer,
    non_empty_str,
    non_negative,
    number,
    optional_duration,
    optional_seconds,
    positive,
    sync_callable,
    valid_clock,
    valid_hooks,
)
from ._waiters import MAX_WAIT, Default, queue_wait


class _WeightFullError(BulkheadFullError):
    """
    A :class:`WeightedBulkhead` could not grant a permit's cost (in time).
    """

    @property
    def max_weight(self) -> int:
        return self.max_concurrent

    def _reason(self) -> str:
        return f"bulkhead full (max_weight {self.max_concurrent})"


class _CostTooLargeError(_WeightFullError):
    """
    A permit's cost exceeds what a :class:`WeightedBulkhead` can ever grant.
    """

    def __init__(self, name: str, max_weight: int, cost: int) -> None:
        super().__init__(name, max_weight)
        self.cost = cost

    def _reason(self) -> str:
        return (
            f"cost {self.cost} can never be granted (max_weight"
            f" {self.max_concurrent})"
        )

    def _init_args(self) -> tuple[Any, ...]:
        return (self.name, self.max_concurrent, self.cost)


@final
@attrs.frozen(kw_only=True)
class WeightedBulkheadStatistics(Statistics):
    """
    A snapshot of a :class:`WeightedBulkhead`'s counters.

    Attributes:
        name: The bulkhead's name.
        in_flight: Permits held now.
        weight: Their costs, added up.
        queued: Callers waiting for a permit now.
        queued_weight: The costs they wait for, added up.
        refused: Callers refused so far (queue full, wait timed out,
            ``try_acquire()`` said no, or a cost above *max_weight*).
        high_water: The most weight ever held at once.

    .. versionadded:: 0.2.0
    """

    kind: ClassVar[str] = "weighted_bulkhead"

    name: str
    in_flight: int
    weight: int
    queued: int
    queued_weight: int
    refused: int
    high_water: int


def _check_cost(cost: object) -> int:
    """
    Return *cost*, a whole number of units >= 0, or raise.
    """
    if type(cost) is not int:
        if isinstance(cost, bool) or not isinstance(cost, int):
            msg = f"'cost' must be an int (got {cost!r})"
            raise TypeError(msg)
        cost = int(cost)
    if cost < 0:
        msg = f"'cost' must be >= 0 (got {cost!r})"
        raise ConfigurationError(msg)
    return cost


@final
@attrs.frozen(kw_only=True, eq=False)
class WeightedBulkhead(BulkheadBase):
    """
    Let calls in while the costs of their permits add up to at most
    *max_weight*; queue a few more.

    A permit's cost is a whole number of units of your choosing: bytes of
    a payload ("at most 512 MiB of in-flight uploads"), rows of a batch,
    tokens of a prompt.  A caller whose cost does not fit now waits in
    FIFO order, if the queue has room, for at most *max_wait*; anyone
    beyond is refused at once with :class:`~stalwart.BulkheadFullError`,
    and a waiter whose wait runs out gets the same error.  Waiters are
    served strictly in order: the first one reserves the units that free
    up until its cost fits, so a small request never overtakes a large one
    that came first, and a waiter that gives up passes its reservation to
    those behind it.  A cost above *max_weight* can never fit: it is
    refused at once, with a :class:`~stalwart.BulkheadFullError` that says
    so.  A cost of 0 holds nothing and is granted at once.

    Waits never go past the current deadline; threads and event loops
    share one instance; a permit is always given back, however the call
    ends; a sync face that would have to wait on the thread of a running
    event loop raises :class:`RuntimeError` (all as
    :class:`~stalwart.Bulkhead` does).

    Faces: the decorator, :meth:`call` and :meth:`acall` weigh each call
    with *cost_func*; :meth:`hold` gives the bulkhead at a fixed cost,
    with ``with`` / ``async with`` blocks, ``call`` / ``acall`` and a
    decorator; and the explicit steps :meth:`try_acquire`,
    :meth:`acquire`, :meth:`aacquire` take a *cost*, given back with
    :meth:`release`.

    Args:
        max_weight: The most units in flight at once.
        max_queue: How many callers may wait; ``None`` for no limit.
        max_wait: How long a caller waits in the queue, in seconds;
            ``None`` waits as long as it takes (or until the deadline).
        cost_func: For the decorator and ``call`` / ``acall``: a function
            of the call's arguments that returns its cost; ``None`` makes
            every call cost 1.
        name: Used in errors and events.
        clock: Where time is read and waited on.
        hooks: Receive a :class:`~stalwart.CallRejected` for each refusal;
            hooks that ask for per-call events also get a
            :class:`~stalwart.CallAdmitted` and a
            :class:`~stalwart.CallFinished` for each call.

    .. versionadded:: 0.2.0
    """

    max_weight: int = attrs.field(validator=(number, integer, positive))
    max_queue: int | None = attrs.field(
        default=0, validator=(integer, non_negative)
    )
    max_wait: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, non_negative, finite],
    )
    cost_func: Callable[..., int] | None = attrs.field(
        default=None, validator=sync_callable, repr=False
    )
    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    clock: Clock = attrs.field(
        default=DEFAULT_CLOCK, validator=valid_clock, repr=False
    )
    hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=hooks, validator=valid_hooks, repr=False
    )

    _kind: ClassVar[str] = "WeightedBulkhead"
    _primitive: ClassVar[str] = "weighted_bulkhead"

    def __attrs_post_init__(self) -> None:
        self._init_base(BulkheadCore(self.max_weight, self.max_queue))
        live_hooks(self, self.hooks, self._hooks_changed)
        self._hooks_changed()

    # -- explicit steps ---------------------------------------------------

    def try_acquire(self, cost: int = 1) -> bool:
        """
        Take a permit of *cost* units if they are free now and nobody
        waits before; never wait.

        Returns:
            ``True`` if the permit was taken (give it back with
            :meth:`release`, from the same task or thread); ``False``,
            counted as a refusal and sent to the hooks as a
            :class:`~stalwart.CallRejected`, if not.

        Raises:
            BulkheadFullError: If *cost* is above *max_weight*.
            TypeError: If *cost* is not an int.
            ConfigurationError: If *cost* is negative.

        .. versionadded:: 0.2.0
        """
        return self._try_acquire(self._cost(cost))

    def acquire(
        self,
        cost: int = 1,
        timeout: Seconds | Literal[Default.MAX_WAIT] | None = MAX_WAIT,
    ) -> None:
        """
        Take a permit of *cost* units, waiting in the queue if there is
        room.

        Args:
            cost: The permit's units.
            timeout: How long to wait, in seconds; *max_wait* by default,
                ``None`` for as long as it takes.  The current deadline
                caps it.

        Raises:
            BulkheadFullError: If the queue is full, the wait ran out, or
                *cost* is above *max_weight*.
            ConfigurationError: If *cost* is negative, or *timeout* is not
                a number of seconds >= 0, a timedelta or ``None``.
            TypeError: If *cost* is not an int.
            RuntimeError: If it would have to wait on the thread of a
                running event loop; use :meth:`aacquire`.

        .. versionadded:: 0.2.0
        """
        wait = queue_wait(timeout, self.max_wait, strict=True)
        self._acquire(wait, self._cost(cost))

    async def aacquire(
        self,
        cost: int = 1,
        timeout: Seconds | Literal[Default.MAX_WAIT] | None = MAX_WAIT,  # noqa: ASYNC109  # the shared limiter/bulkhead vocabulary
    ) -> None:
        """
        Take a permit of *cost* units, waiting in the queue if there is
        room (async twin of :meth:`acquire`).

        .. versionadded:: 0.2.0
        """
        wait = queue_wait(timeout, self.max_wait, strict=True)
        await self._aacquire(wait, self._cost(cost))

    def hold(self, cost: int) -> WeightedHold:
        """
        Return the bulkhead at a fixed *cost*: each ``with`` block, call or
        decorated call through it holds a permit of *cost* units.

        Raises:
            BulkheadFullError: If *cost* is above *max_weight*.
            TypeError: If *cost* is not an int.
            ConfigurationError: If *cost* is negative.

        .. versionadded:: 0.2.0
        """
        return WeightedHold(self, self._cost(cost))

    def statistics(self) -> WeightedBulkheadStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            snap = self._core.snapshot()
        return WeightedBulkheadStatistics(
            name=self.name,
            in_flight=snap.in_flight,
            weight=snap.weight,
            queued=snap.queued,
            queued_weight=snap.queued_weight,
            refused=snap.refused,
            high_water=snap.high_water,
        )

    # -- calls --------------------------------------------------------------

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run ``fn(*args, **kwargs)`` holding a permit of the cost
        *cost_func* gives the arguments (1 without one).

        Raises:
            BulkheadFullError: If no permit could be had, or the cost is
                above *max_weight*.
            TypeError: If *fn* returned something awaitable; the permit is
                given back.  Use :meth:`acall`.
            RuntimeError: If it would have to wait on the thread of a
                running event loop; use :meth:`acall`.

        .. versionadded:: 0.2.0
        """
        return guard_call(self._weigh(args, kwargs), fn, args, kwargs)

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """
        Await ``fn(*args, **kwargs)`` holding a permit of the cost
        *cost_func* gives the arguments (async twin of :meth:`call`).

        .. versionadded:: 0.2.0
        """
        return await guard_acall(self._weigh(args, kwargs), fn, args, kwargs)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate a function so each call holds a permit of the cost
        *cost_func* gives its arguments: a ``def``, an ``async def``, or a
        generator function of either kind, whose whole iteration holds the
        permit.

        .. versionadded:: 0.2.0
        """
        weigh = self._weigh
        if is_async_generator_function(fn):
            agen = cast("Callable[..., AsyncGenerator[Any, Any]]", fn)

            @functools.wraps(fn)
            def aiterate(*args: Any, **kwargs: Any) -> Any:
                hold = weigh(args, kwargs)
                return guard_async_generator(hold, agen)(*args, **kwargs)

            return cast("Callable[P, T]", aiterate)
        if is_generator_function(fn):
            gen = cast("Callable[..., Generator[Any, Any, Any]]", fn)

            @functools.wraps(fn)
            def iterate(*args: Any, **kwargs: Any) -> Any:
                return guard_generator(weigh(args, kwargs), gen)(
                    *args, **kwargs
                )

            return cast("Callable[P, T]", iterate)
        if is_async_callable(fn):
            afn = cast("Callable[..., Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                return await guard_acall(
                    weigh(args, kwargs), afn, args, kwargs
                )

            return cast("Callable[P, T]", awrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return guard_call(weigh(args, kwargs), fn, args, kwargs)

        return wrapper

    # -- internals ----------------------------------------------------------

    def _cost(self, cost: object) -> int:
        """
        Check a permit's *cost*; refuse one that can never fit.
        """
        units = _check_cost(cost)
        if units > self.max_weight:
            with self._lock:
                self._core.refuse()
            raise self._refused(
                _CostTooLargeError(self.name, self.max_weight, units)
            )
        return units

    def _weigh(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> WeightedHold:
        """
        The hold for one call: its cost, from its arguments.
        """
        cost_func = self.cost_func
        if cost_func is None:
            return WeightedHold(self, 1)
        cost = cost_func(*args, **kwargs)
        if type(cost) is not int or not 0 <= cost <= self.max_weight:
            try:
                cost = self._cost(cost)  # refuse it, or take an int subclass
            except (TypeError, ConfigurationError) as exc:
                msg = f"'cost_func' returned {cost!r}: {exc}"
                raise type(exc)(msg) from None
        return WeightedHold(self, cost)

    def _enter_cost(self, cost: int) -> int:
        lock = self._lock
        lock.acquire()
        token = self._gate.try_take(cost)
        lock.release()
        if token:
            return token
        return self._take(MAX_WAIT, CALL_FACES, cost)

    async def _aenter_cost(self, cost: int) -> int:
        lock = self._lock
        lock.acquire()
        token = self._gate.try_take(cost)
        lock.release()
        if token:
            return token
        return await self._atake(MAX_WAIT, cost)

    def _exit_token(self, token: int, exc: BaseException | None) -> None:
        lock = self._lock
        lock.acquire()
        try:
            served = self._gate.give_back(token)
        finally:
            lock.release()
        if served is not None:
            self._finished(served, self._starts.pop(token, None), exc)

    def _full(self) -> BulkheadFullError:
        return _WeightFullError(self.name, self.max_weight)


@final
class WeightedHold:
    """
    A :class:`WeightedBulkhead` at a fixed cost, returned by
    :meth:`WeightedBulkhead.hold`: every ``with`` / ``async with`` block,
    :meth:`call` / :meth:`acall` or decorated call through it holds a
    permit of :attr:`cost` units of the bulkhead.

    A hold may be kept and shared (threads, tasks, blocks that end out of
    order): each block's permit is its own.  It is a stage of a
    :class:`~stalwart.Pipeline` like the bulkhead's other guards.

    .. versionadded:: 0.2.0
    """

    __slots__ = ("__weakref__", "_blocks", "bulkhead", "cost")

    _kind: ClassVar[str] = "WeightedBulkhead"

    def __init__(self, bulkhead: WeightedBulkhead, cost: int) -> None:
        self.bulkhead = bulkhead
        """The bulkhead."""
        self.cost = cost
        """The units each permit holds."""
        self._blocks: Blocks[int] | None = None

    def __repr__(self) -> str:
        return f"<WeightedHold of {self.cost} of {self.bulkhead.name!r}>"

    @property
    def name(self) -> str:
        """
        The bulkhead's name.
        """
        return self.bulkhead.name

    def statistics(self) -> WeightedBulkheadStatistics:
        """
        Return the bulkhead's statistics (so a pipeline with this hold as a
        stage reports them).

        .. versionadded:: 0.2.0
        """
        return self.bulkhead.statistics()

    def add_hook(self, hook: Hook, /, *, per_call: bool | None = None) -> None:
        """
        Attach *hook* to the bulkhead (see
        :meth:`~stalwart.Observable.add_hook`).

        .. versionadded:: 0.2.0
        """
        self.bulkhead.add_hook(hook, per_call=per_call)

    def remove_hook(self, hook: Hook, /) -> None:
        """
        Detach *hook* from the bulkhead (see
        :meth:`~stalwart.Observable.remove_hook`).

        .. versionadded:: 0.2.0
        """
        self.bulkhead.remove_hook(hook)

    @property
    def _live(self) -> LiveHooks:
        # The bulkhead's hooks: metrics see a hold in a pipeline as its
        # bulkhead.
        return self.bulkhead._live

    # -- the guard protocol (stalwart._faces.Guard) ---------------------------

    def _enter(self) -> int:
        return self.bulkhead._enter_cost(self.cost)

    async def _aenter(self) -> int:
        return await self.bulkhead._aenter_cost(self.cost)

    def _exit(
        self, token: int, exc: BaseException | None, result: object
    ) -> None:
        self.bulkhead._exit_token(token, exc)

    async def _aexit(
        self, token: int, exc: BaseException | None, result: object
    ) -> None:
        self.bulkhead._exit_token(token, exc)

    def _undo(self, token: int) -> None:
        self.bulkhead._give_back(token, None, report=False)

    # -- faces ----------------------------------------------------------------

    def _block_tokens(self) -> Blocks[int]:
        blocks = self._blocks
        if blocks is None:
            # Built on first use: a hold made for one call never needs it.
            blocks = self._blocks = Blocks()
        return blocks

    def __enter__(self) -> None:
        frame = caller(1)
        bulkhead = self.bulkhead
        lock = bulkhead._lock
        lock.acquire()
        token = bulkhead._gate.try_take(self.cost)
        lock.release()
        if not token:
            token = bulkhead._take(MAX_WAIT, WITH_FACES, self.cost)
        self._block_tokens().push(frame, token)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(self._block_tokens().pop(caller(1)), exc, NO_RESULT)

    async def __aenter__(self) -> None:
        frame = caller(1)
        self._block_tokens().push(frame, await self._aenter())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(self._block_tokens().pop(caller(1)), exc, NO_RESULT)

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run ``fn(*args, **kwargs)`` holding a permit of :attr:`cost`.

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
        Await ``fn(*args, **kwargs)`` holding a permit of :attr:`cost`.

        .. versionadded:: 0.2.0
        """
        return await guard_acall(self, fn, args, kwargs)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate a function (``def``, ``async def``, generator functions)
        so each call holds a permit of :attr:`cost`.

        .. versionadded:: 0.2.0
        """
        return guard_decorate(self, fn)
