"""
BoundedBuffer: a bounded hand-off between producers and consumers, with a
policy for when it is full.

One instance serves threads and event loops at the same time: the core
(:mod:`stalwart._core.buffer`) keeps the items and FIFO queues of blocked
producers and consumers; a thread parks on a :class:`threading.Event`, a
task on a future of its loop (:mod:`stalwart._waiters`), and whoever frees
room or adds an item wakes the waiter the core reserved it for, whatever
its kind.
"""

from __future__ import annotations

import functools
import threading

from typing import (
    Any,
    ClassVar,
    Generic,
    Literal,
    NamedTuple,
    TypeVar,
    final,
    overload,
)

import attrs

from ._clock import DEFAULT_CLOCK, Clock
from ._core.buffer import (
    POLICIES,
    BufferCore,
    Dropped,
    Empty,
    Evicted,
    Full,
    Handover,
    Policy,
)
from ._errors import BufferEmptyError, BufferFullError, ConfigurationError
from ._events import CallRejected, Hook, ItemDropped, emit
from ._faces import blocking_on_loop, on_loop_thread
from ._observe import LiveHooks, Observable, live_hooks
from ._statistics import Statistics
from ._typing import Seconds
from ._validators import (
    collect,
    finite,
    hooks,
    integer,
    non_empty_str,
    non_negative,
    number,
    optional_duration,
    optional_seconds,
    positive,
    valid_clock,
    valid_hooks,
)
from ._waiters import (
    MAX_WAIT,
    QUEUED,
    Default,
    Queued,
    Waiter,
    apark,
    one,
    park,
    queue_wait,
    wake,
)


T = TypeVar("T")
D = TypeVar("D")


class BufferDecision(NamedTuple):
    """
    What :meth:`BoundedBuffer.try_put` did with an item; truthy when the
    item is in the buffer.

    Attributes:
        accepted: Whether the item went in (under ``"drop_oldest"`` it may
            have pushed the oldest item out).
        retry_after: When the item was refused (``"block"`` or
            ``"reject"``), an estimate of the seconds until room frees up,
            or ``None`` when none can be made yet; ``None`` when accepted
            or dropped.

    .. versionadded:: 0.2.0
    """

    accepted: bool
    retry_after: float | None

    def __bool__(self) -> bool:
        return self.accepted


_ACCEPTED = BufferDecision(True, None)
_DROPPED = BufferDecision(False, None)


@final
@attrs.frozen(kw_only=True)
class BufferStatistics(Statistics):
    """
    A snapshot of a :class:`BoundedBuffer`'s counters.

    Attributes:
        name: The buffer's name.
        depth: Items in the buffer now.
        high_water: The most items it ever held at once.
        accepted: Items put in so far.
        taken: Items consumers took so far.
        dropped: Items the policy dropped so far: new items refused
            entry (``"drop_newest"``) or old items pushed out
            (``"drop_oldest"``, so ``accepted == taken + depth +
            dropped``).
        refused: Puts refused so far (``"reject"``, a ``"block"`` wait
            that ran out, or :meth:`~BoundedBuffer.try_put` finding no
            room under either).
        producers_waiting: Producers blocked for room now.
        consumers_waiting: Consumers blocked for an item now.

    .. versionadded:: 0.2.0
    """

    kind: ClassVar[str] = "bounded_buffer"

    name: str
    depth: int
    high_water: int
    accepted: int
    taken: int
    dropped: int
    refused: int
    producers_waiting: int
    consumers_waiting: int


def _policy(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if value not in POLICIES:
        msg = f"{attr.name!r} must be one of {POLICIES!r} (got {value!r})"
        raise ConfigurationError(msg)


@final
@attrs.frozen(kw_only=True, eq=False)
class BoundedBuffer(Observable, Generic[T]):
    """
    Hand items from producers to consumers through at most *capacity*
    slots, applying *when_full* when a producer finds no room.

    * ``"block"`` (the default): the producer waits for room, in FIFO
      order, for at most *max_wait* (and never past the current deadline,
      see :func:`~stalwart.remaining_time`), then gets
      :class:`~stalwart.BufferFullError`.
    * ``"drop_newest"``: the new item is dropped; the put returns at once.
    * ``"drop_oldest"``: the oldest item is dropped to make room; the put
      returns at once.
    * ``"reject"``: the put raises :class:`~stalwart.BufferFullError` at
      once, with a ``retry_after`` estimated from the consumers' pace.

    Consumers take items in FIFO order; one that finds the buffer empty
    waits, in FIFO order with the other consumers, for at most its
    *timeout* (none by default, and never past the current deadline),
    then gets :class:`~stalwart.BufferEmptyError`.

    One instance may be used from threads and from event loops at the
    same time: ``put`` / ``get`` block a thread, ``aput`` / ``aget``
    suspend a task, and either kind wakes the other.  No item is lost or
    duplicated: an item put while consumers wait is handed to the first of
    them, and if that consumer is cancelled (or interrupted) before it
    takes it, the item goes to the next consumer or back to the head of
    the buffer; a producer cancelled while waiting for room has not put
    its item.  Items handed to a consumer still count in the buffer until
    it takes them, so the buffer never holds more than *capacity*.

    Waits are measured on *clock*: a :class:`~stalwart.testing.FakeClock`
    drives async waits by auto-jumping, and thread waits when it is
    advanced.

    Args:
        capacity: How many items the buffer holds.
        when_full: ``"block"``, ``"drop_newest"``, ``"drop_oldest"`` or
            ``"reject"``.
        max_wait: How long a producer waits for room under ``"block"``,
            in seconds; ``None`` waits as long as it takes (or until the
            deadline).  Only valid with ``"block"``.
        name: Used in errors and events.
        clock: Where time is read and waited on.
        hooks: Receive an :class:`~stalwart.ItemDropped` for each dropped
            item and a :class:`~stalwart.CallRejected` for each refused
            put.

    .. versionadded:: 0.2.0
    """

    capacity: int = attrs.field(validator=(number, integer, positive))
    when_full: Policy = attrs.field(default="block", validator=_policy)
    max_wait: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, non_negative, finite],
    )
    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    clock: Clock = attrs.field(
        default=DEFAULT_CLOCK, validator=valid_clock, repr=False
    )
    hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=hooks, validator=valid_hooks, repr=False
    )
    _core: BufferCore[T, Waiter] = attrs.field(
        init=False,
        repr=False,
        default=attrs.Factory(
            lambda self: BufferCore(self.capacity, self.when_full),
            takes_self=True,
        ),
    )
    # Held for O(1) core bookkeeping only; never across a wait or a hook.
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )
    _live: LiveHooks = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        live_hooks(self, self.hooks)
        problems = []
        if self.max_wait is not None and self.when_full != "block":
            problems.append(
                "'max_wait' applies only with when_full='block'"
                f" (got max_wait={self.max_wait!r},"
                f" when_full={self.when_full!r})"
            )
        collect(problems)

    # -- producers -------------------------------------------------------

    def put(
        self,
        item: T,
        timeout: Seconds | Literal[Default.MAX_WAIT] | None = MAX_WAIT,
    ) -> None:
        """
        Put *item* in the buffer, applying the *when_full* policy if there
        is no room.

        Args:
            item: The item.
            timeout: Under ``"block"``, how long to wait for room, in
                seconds; *max_wait* by default, ``None`` for as long as
                it takes.  The current deadline caps it.

        Raises:
            BufferFullError: Under ``"reject"`` when full, or under
                ``"block"`` when the wait ran out.
            RuntimeError: If it would block the thread of a running
                event loop (use :meth:`aput` there).

        .. versionadded:: 0.2.0
        """
        with self._lock:
            outcome = self._core.put(item)
        if outcome is None:
            return
        if outcome is not Full.FULL:
            self._after_put(item, outcome)
            return
        wait = self._room_wait(timeout)
        if on_loop_thread():
            raise blocking_on_loop(
                "BoundedBuffer", self.name, "put()", "aput()"
            )
        park(
            self.clock,
            wait,
            functools.partial(self._enqueue_putter, item),
            functools.partial(self._settle_putter, item),
            self._abandon_putter,
        )

    async def aput(
        self,
        item: T,
        timeout: Seconds | Literal[Default.MAX_WAIT] | None = MAX_WAIT,  # noqa: ASYNC109  # the shared waiting vocabulary
    ) -> None:
        """
        Put *item* in the buffer (async twin of :meth:`put`).

        Raises:
            BufferFullError: Under ``"reject"`` when full, or under
                ``"block"`` when the wait ran out.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            outcome = self._core.put(item)
        if outcome is None:
            return
        if outcome is not Full.FULL:
            self._after_put(item, outcome)
            return
        await apark(
            self.clock,
            self._room_wait(timeout),
            functools.partial(self._enqueue_putter, item),
            functools.partial(self._settle_putter, item),
            self._abandon_putter,
        )

    def try_put(self, item: T) -> BufferDecision:
        """
        Put *item* in the buffer if the policy allows it now; never wait
        and never raise.

        Under ``"block"`` and ``"reject"`` a full buffer refuses the item
        (counted, and reported to hooks); under ``"drop_newest"`` it drops
        it; under ``"drop_oldest"`` it takes it and drops the oldest.

        Returns:
            A decision, truthy when the item went in; when refused, its
            ``retry_after`` estimates when room will free up.

        .. versionadded:: 0.2.0
        """
        retry_after = None
        with self._lock:
            outcome = self._core.put(item)
            if outcome is Full.FULL:
                retry_after = self._core.refuse()
        if outcome is None:
            return _ACCEPTED
        if outcome is Full.FULL:
            if self._live.all:
                self._report(
                    BufferFullError(self.name, self.capacity, retry_after)
                )
            return BufferDecision(False, retry_after)
        self._after_put(item, outcome)
        return _DROPPED if outcome is Dropped.DROPPED else _ACCEPTED

    # -- consumers -------------------------------------------------------

    def get(self, timeout: Seconds | None = None) -> T:
        """
        Take the oldest item, waiting for one if the buffer is empty.

        Args:
            timeout: How long to wait, in seconds; ``None`` (the default)
                for as long as it takes.  The current deadline caps it.

        Raises:
            BufferEmptyError: If no item came in time.
            RuntimeError: If it would block the thread of a running
                event loop (use :meth:`aget` there).

        .. versionadded:: 0.2.0
        """
        now = self.clock.now()
        with self._lock:
            outcome = self._core.get(now)
        if outcome is not Empty.EMPTY:
            if type(outcome) is not Handover:
                return outcome  # type: ignore[return-value]  # an item: a Handover is checked by exact type (items are the user's)
            return self._got(outcome)
        wait = self._item_wait(timeout)
        if on_loop_thread():
            raise blocking_on_loop(
                "BoundedBuffer", self.name, "get()", "aget()"
            )
        return park(
            self.clock,
            wait,
            self._enqueue_getter,
            functools.partial(self._settle_getter, wait),
            self._abandon_getter,
        )

    async def aget(self, timeout: Seconds | None = None) -> T:  # noqa: ASYNC109  # the shared waiting vocabulary
        """
        Take the oldest item, waiting for one if the buffer is empty
        (async twin of :meth:`get`).

        Raises:
            BufferEmptyError: If no item came in time.

        .. versionadded:: 0.2.0
        """
        now = self.clock.now()
        with self._lock:
            outcome = self._core.get(now)
        if outcome is not Empty.EMPTY:
            if type(outcome) is not Handover:
                return outcome  # type: ignore[return-value]  # an item: a Handover is checked by exact type (items are the user's)
            return self._got(outcome)
        wait = self._item_wait(timeout)
        return await apark(
            self.clock,
            wait,
            self._enqueue_getter,
            functools.partial(self._settle_getter, wait),
            self._abandon_getter,
        )

    @overload
    def try_get(self) -> T | None: ...

    @overload
    def try_get(self, default: D) -> T | D: ...

    def try_get(self, default: object = None) -> object:
        """
        Take the oldest item if there is one; never wait.

        Args:
            default: What to return when the buffer is empty; pass a
                sentinel of your own when ``None`` is a valid item.

        Returns:
            The item, or *default*.

        .. versionadded:: 0.2.0
        """
        now = self.clock.now()
        with self._lock:
            outcome = self._core.get(now)
        if outcome is Empty.EMPTY:
            return default
        if type(outcome) is not Handover:
            return outcome
        return self._got(outcome)

    def statistics(self) -> BufferStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            snap = self._core.snapshot()
        return BufferStatistics(
            name=self.name,
            depth=snap.depth,
            high_water=snap.high_water,
            accepted=snap.accepted,
            taken=snap.taken,
            dropped=snap.dropped,
            refused=snap.refused,
            producers_waiting=snap.putters,
            consumers_waiting=snap.getters,
        )

    def __len__(self) -> int:
        """
        Return how many items the buffer holds now.

        .. versionadded:: 0.2.0
        """
        return self._core.depth

    # -- internals: producers ----------------------------------------------

    def _after_put(
        self, item: T, outcome: Waiter | Dropped | Evicted[T]
    ) -> None:
        """
        Act on an accepted or dropped put: wake the consumer it went to,
        or report what was dropped.
        """
        if outcome is Dropped.DROPPED:
            self._dropped(item)
        elif isinstance(outcome, Evicted):
            self._dropped(outcome.item)
        else:
            self._wake_getter(outcome)

    def _room_wait(
        self, timeout: Seconds | Literal[Default.MAX_WAIT] | None
    ) -> float | None:
        """
        Return how long a producer may wait for room, or raise if it may
        not wait at all.
        """
        if self.when_full == "reject":
            raise self._refusal()
        wait = queue_wait(timeout, self.max_wait)
        if wait == 0:
            raise self._refusal()
        return wait

    def _enqueue_putter(
        self, item: T, waiter: Waiter
    ) -> Literal[Queued.QUEUED] | None:
        """
        Queue *waiter* for room.

        Returns:
            ``QUEUED``, or ``None`` if room had freed up after all (the
            item is in).
        """
        with self._lock:
            outcome = self._core.put(item)
            if outcome is Full.FULL:
                self._core.enqueue_putter(waiter)
                return QUEUED
        if outcome is not None:
            # Under "block" an accepted put may wake a consumer; it never
            # drops.
            self._after_put(item, outcome)
        return None

    def _settle_putter(self, item: T, waiter: Waiter) -> None:
        """
        After a wait ended normally: put the item in its room, or report
        that the wait ran out.
        """
        with self._lock:
            timed_out = self._core.withdraw_putter(waiter, refused=True)
            retry_after = self._core.pace
            getter = None if timed_out else self._core.complete_put(item)
        if timed_out:
            error = BufferFullError(self.name, self.capacity, retry_after)
            self._report(error)
            raise error
        if getter is not None:
            self._wake_getter(getter)

    def _abandon_putter(self, waiter: Waiter) -> None:
        """
        Leave the producers' queue; room reserved for us meanwhile goes on.
        """
        with self._lock:
            if self._core.withdraw_putter(waiter, refused=False):
                return
            nxt = self._core.abandon_put()
        if nxt is not None:
            self._wake_putter(nxt)

    def _wake_putter(self, waiter: Waiter) -> None:
        wake((waiter,), self._putter_gone)

    def _putter_gone(self, waiter: Waiter) -> tuple[Waiter, ...]:
        """
        Hand on the room reserved for a producer whose event loop is
        closed (it will never use it).
        """
        with self._lock:
            return one(self._core.abandon_put())

    # -- internals: consumers ----------------------------------------------

    def _got(self, outcome: T | Handover[T, Waiter]) -> T:
        """
        Return the item of a take, waking the producer it made room for.
        """
        if isinstance(outcome, Handover):
            self._wake_putter(outcome.waiter)
            item: T = outcome.item
            return item
        return outcome

    def _item_wait(self, timeout: Seconds | None) -> float | None:
        """
        Return how long a consumer may wait for an item, or raise if it
        may not wait at all.
        """
        wait = queue_wait(timeout, None)
        if wait == 0:
            raise BufferEmptyError(self.name, 0.0)
        return wait

    def _enqueue_getter(self, waiter: Waiter) -> T | Literal[Queued.QUEUED]:
        """
        Queue *waiter* for an item, unless one came meanwhile.

        Returns:
            ``QUEUED``, or the item of the take that succeeded after all.
        """
        now = self.clock.now()
        with self._lock:
            outcome = self._core.get(now)
            if outcome is Empty.EMPTY:
                self._core.enqueue_getter(waiter)
                return QUEUED
        return self._got(outcome)

    def _settle_getter(self, wait: float | None, waiter: Waiter) -> T:
        """
        After a wait ended normally: take the item set aside for us, or
        report that the wait ran out.
        """
        now = self.clock.now()
        with self._lock:
            if self._core.withdraw_getter(waiter):
                outcome: T | Empty | Handover[T, Waiter] = Empty.EMPTY
            else:
                outcome = self._core.complete_get(waiter, now)
        if outcome is Empty.EMPTY:
            raise BufferEmptyError(self.name, 0.0 if wait is None else wait)
        return self._got(outcome)

    def _abandon_getter(self, waiter: Waiter) -> None:
        """
        Leave the consumers' queue; an item set aside for us meanwhile
        stays in the buffer for the next consumer.
        """
        with self._lock:
            if self._core.withdraw_getter(waiter):
                return
            nxt = self._core.abandon_get(waiter)
        if nxt is not None:
            self._wake_getter(nxt)

    def _wake_getter(self, waiter: Waiter) -> None:
        wake((waiter,), self._getter_gone)

    def _getter_gone(self, waiter: Waiter) -> tuple[Waiter, ...]:
        """
        Hand on the item set aside for a consumer whose event loop is
        closed: to the next consumer, or back to the head of the buffer.
        """
        with self._lock:
            return one(self._core.abandon_get(waiter))

    # -- internals: reports ------------------------------------------------

    def _refusal(self) -> BufferFullError:
        with self._lock:
            retry_after = self._core.refuse()
        error = BufferFullError(self.name, self.capacity, retry_after)
        self._report(error)
        return error

    def _report(self, error: BufferFullError) -> None:
        if self._live.all:
            emit(
                self._live.all,
                CallRejected(
                    primitive_name=self.name, at=self.clock.now(), error=error
                ),
            )

    def _dropped(self, item: object) -> None:
        if self._live.all:
            emit(
                self._live.all,
                ItemDropped(
                    primitive_name=self.name,
                    at=self.clock.now(),
                    item=item,
                    policy=self.when_full,
                ),
            )
