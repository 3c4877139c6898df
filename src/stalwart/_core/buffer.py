"""
The bookkeeping of a bounded buffer: items, the policy applied when it is
full, and FIFO queues of blocked producers and consumers.

The core never parks anyone.  A caller that must wait is *enqueued* with a
waiter object of the shell's choosing; the core returns a waiter to the
shell when it may go on, and the shell wakes it (trio's ``ParkingLot``:
bookkeeping here, parking in the shell).

* An item put while consumers wait is *handed* to the first of them: it
  stays counted in the buffer until that consumer takes it
  (:meth:`BufferCore.complete_get`).  A consumer cancelled before it took
  its item gives it back (:meth:`BufferCore.abandon_get`): to the next
  consumer, or to the head of the buffer, where it belongs as the oldest
  item.  Nothing leaves the buffer before a consumer really takes it, and
  a newcomer never takes an item promised to a waiter.
* Room freed while producers wait is *reserved* for the first of them,
  which then puts its item (:meth:`BufferCore.complete_put`) or, if it was
  cancelled, gives the room back (:meth:`BufferCore.abandon_put`): a
  cancelled put has not put.  A newcomer never takes room reserved for a
  waiter.

Invariants (checked by the state-machine tests):

* ``depth + slots_reserved <= capacity``, where ``depth`` counts the items
  in the buffer, handed ones included;
* producers wait only while the buffer is full for newcomers
  (``depth + slots_reserved == capacity``);
* consumers wait only while no item is free for them;
* ``accepted == taken + depth + evicted`` (``drop_oldest`` evicts; the
  other policies never remove an accepted item).
"""

from __future__ import annotations

import enum

from collections import deque
from typing import Final, Generic, Literal, TypeAlias, TypeVar

import attrs


T = TypeVar("T")
W = TypeVar("W")

Policy: TypeAlias = Literal["block", "drop_newest", "drop_oldest", "reject"]
"""The policy of a full buffer for a new item (wait for room, drop the new
item, drop the oldest one, or refuse the new one)."""
POLICIES: Final = ("block", "drop_newest", "drop_oldest", "reject")

# How much each new interval between takes moves the estimate of the
# consumers' pace (an exponentially weighted moving average).
_PACE_WEIGHT: Final = 0.2


class Full(enum.Enum):
    """
    ``put``: no room, and the policy does not drop (block or reject);
    nothing changed.
    """

    FULL = "full"


class Dropped(enum.Enum):
    """
    ``put``: no room; the new item was dropped (``drop_newest``).
    """

    DROPPED = "dropped"


class Empty(enum.Enum):
    """
    ``get``: no item available for a newcomer.
    """

    EMPTY = "empty"


FULL: Final = Full.FULL
DROPPED: Final = Dropped.DROPPED
EMPTY: Final = Empty.EMPTY


@attrs.frozen(slots=True)
class Evicted(Generic[T]):
    """
    ``put``: no room; the oldest *item* was dropped to make room for the
    new one, which was accepted (``drop_oldest``).
    """

    item: T


@attrs.frozen(slots=True)
class Handover(Generic[T, W]):
    """
    ``get``: *item* was taken, and the room it freed was reserved for the
    blocked producer *waiter*, which the shell must wake.
    """

    item: T
    waiter: W


@attrs.frozen
class BufferSnapshot:
    """
    The counters of a :class:`BufferCore` at one moment.
    """

    depth: int
    high_water: int
    accepted: int
    taken: int
    dropped: int
    refused: int
    putters: int
    getters: int


class BufferCore(Generic[T, W]):
    """
    At most *capacity* items, and what to do when a producer finds no room:
    wait (``"block"``), drop the new item (``"drop_newest"``), drop the
    oldest item (``"drop_oldest"``) or refuse (``"reject"``).
    """

    __slots__ = (
        "_getters",
        "_handed",
        "_items",
        "_last_take",
        "_pace",
        "_putters",
        "accepted",
        "capacity",
        "dropped",
        "high_water",
        "policy",
        "refused",
        "slots_reserved",
        "taken",
    )

    def __init__(self, capacity: int, policy: Policy) -> None:
        self.capacity = capacity
        self.policy = policy
        # Free items, oldest first; and items handed to woken consumers.
        self._items: deque[T] = deque()
        self._handed: dict[W, T] = {}
        # Dicts are ordered sets: FIFO order, and O(1) removal of a waiter
        # that gives up from the middle of the queue.
        self._putters: dict[W, None] = {}
        self._getters: dict[W, None] = {}
        self.slots_reserved = 0
        self.accepted = 0
        self.taken = 0
        self.dropped = 0
        self.refused = 0
        self.high_water = 0
        self._last_take: float | None = None
        self._pace: float | None = None

    @property
    def depth(self) -> int:
        """
        Items in the buffer now (handed ones included).
        """
        return len(self._items) + len(self._handed)

    @property
    def items_handed(self) -> int:
        """
        Items handed to woken consumers that have not taken them yet.
        """
        return len(self._handed)

    # -- producers -------------------------------------------------------

    def put(self, item: T) -> W | Full | Dropped | Evicted[T] | None:
        """
        Offer *item*.

        Returns:
            ``None`` if it was accepted; a consumer waiter if it was
            accepted and handed to that waiter (wake it); :data:`FULL`
            if there is no room and the policy neither drops nor evicts
            (nothing changed; the shell waits or refuses);
            :data:`DROPPED` if the item was dropped (``drop_newest``, or
            ``drop_oldest`` when every item is already handed to a
            consumer); an :class:`Evicted` record if the oldest item was
            dropped to let this one in (``drop_oldest``).
        """
        items = self._items
        depth = len(items) + len(self._handed)
        if depth + self.slots_reserved < self.capacity:
            # _accept(), inlined: this is the hot path.
            self.accepted += 1
            if depth >= self.high_water:  # cheaper than max() here
                self.high_water = depth + 1
            if self._getters:
                return self._hand(item)
            items.append(item)
            return None
        policy = self.policy
        if policy == "drop_oldest" and self._items:
            # Only "block" makes producers wait, so no room is reserved
            # here: the buffer holds `capacity` items.
            old = self._items.popleft()
            self._items.append(item)
            self.accepted += 1
            self.dropped += 1
            return Evicted(old)
        if policy not in {"block", "reject"}:
            # "drop_newest", or "drop_oldest" with every item already on
            # its way to a consumer: the new item is the one to go.
            self.dropped += 1
            return DROPPED
        return FULL

    def refuse(self) -> float | None:
        """
        Count a refused put (no room, and no waiting or no time left).

        Returns:
            An estimate of the seconds until room frees up: :attr:`pace`.
        """
        self.refused += 1
        return self._pace

    @property
    def pace(self) -> float | None:
        """
        The smoothed interval between recent takes, in seconds, or
        ``None`` before two takes: how soon room usually frees up.
        """
        return self._pace

    def enqueue_putter(self, waiter: W) -> None:
        """
        Queue *waiter* for the next free room (after :data:`FULL`).
        """
        self._putters[waiter] = None

    def withdraw_putter(self, waiter: W, *, refused: bool) -> bool:
        """
        Take *waiter* off the producers' queue because it gives up.

        Args:
            waiter: A waiter passed to :meth:`enqueue_putter`.
            refused: Count a refusal if it was still queued (it timed out,
                rather than being cancelled).

        Returns:
            ``True`` if it was still queued; ``False`` if room was
            reserved for it first, in which case it must use it
            (:meth:`complete_put`) or give it back (:meth:`abandon_put`).
        """
        if waiter in self._putters:
            del self._putters[waiter]
            if refused:
                self.refused += 1
            return True
        return False

    def complete_put(self, item: T) -> W | None:
        """
        Put *item* in the room reserved for a woken producer.

        Returns:
            A consumer waiter the item was reserved for (wake it), or
            ``None``.
        """
        self.slots_reserved -= 1
        return self._accept(item)

    def abandon_put(self) -> W | None:
        """
        Give back the room reserved for a woken producer that will not put
        after all (it was cancelled).

        Returns:
            The next producer waiter, now holding that room (wake it), or
            ``None``.
        """
        self.slots_reserved -= 1
        if self._putters:
            return self._reserve_slot()
        return None

    # -- consumers -------------------------------------------------------

    def get(self, now: float) -> T | Empty | Handover[T, W]:
        """
        Take the oldest item not handed to a woken consumer.

        Returns:
            The item; a :class:`Handover` carrying it if the room it freed
            went to a blocked producer (wake it); or :data:`EMPTY`.
        """
        items = self._items
        if not items:
            return EMPTY
        # _took(), inlined: this is the hot path.
        item = items.popleft()
        self.taken += 1
        last = self._last_take
        self._last_take = now
        if last is not None:
            pace = self._pace
            interval = now - last if now > last else 0.0
            self._pace = (
                interval
                if pace is None
                else pace + _PACE_WEIGHT * (interval - pace)
            )
        if self._putters:
            return Handover(item, self._reserve_slot())
        return item

    def enqueue_getter(self, waiter: W) -> None:
        """
        Queue *waiter* for the next item (after :data:`EMPTY`).
        """
        self._getters[waiter] = None

    def withdraw_getter(self, waiter: W) -> bool:
        """
        Take *waiter* off the consumers' queue because it gives up.

        Returns:
            ``True`` if it was still queued; ``False`` if an item was
            handed to it first, in which case it must take it
            (:meth:`complete_get`) or give it back (:meth:`abandon_get`).
        """
        if waiter in self._getters:
            del self._getters[waiter]
            return True
        return False

    def complete_get(self, waiter: W, now: float) -> T | Handover[T, W]:
        """
        Take the item handed to the woken consumer *waiter*.

        Returns:
            As :meth:`get`, never :data:`EMPTY`.
        """
        return self._took(self._handed.pop(waiter), now)

    def abandon_get(self, waiter: W) -> W | None:
        """
        Give back the item handed to the woken consumer *waiter*, which
        will not take it (it was cancelled): it goes to the next consumer,
        or back to the head of the buffer.

        Returns:
            The next consumer waiter, now holding the item (wake it), or
            ``None``.
        """
        item = self._handed.pop(waiter)
        getters = self._getters
        if getters:
            nxt = next(iter(getters))
            del getters[nxt]
            self._handed[nxt] = item
            return nxt
        # It was handed over while no item was free, so it is older than
        # every free item.
        self._items.appendleft(item)
        return None

    def snapshot(self) -> BufferSnapshot:
        """
        Copy the counters.
        """
        return BufferSnapshot(
            depth=len(self._items) + len(self._handed),
            high_water=self.high_water,
            accepted=self.accepted,
            taken=self.taken,
            dropped=self.dropped,
            refused=self.refused,
            putters=len(self._putters),
            getters=len(self._getters),
        )

    # -- internals -------------------------------------------------------

    def _accept(self, item: T) -> W | None:
        self.accepted += 1
        self.high_water = max(
            self.high_water, len(self._items) + len(self._handed) + 1
        )
        if self._getters:
            return self._hand(item)
        self._items.append(item)
        return None

    def _hand(self, item: T) -> W:
        # Consumers wait only while no item is free: hand it over.
        getters = self._getters
        waiter = next(iter(getters))
        del getters[waiter]
        self._handed[waiter] = item
        return waiter

    def _took(self, item: T, now: float) -> T | Handover[T, W]:
        self.taken += 1
        last = self._last_take
        self._last_take = now
        if last is not None:
            pace = self._pace
            interval = now - last if now > last else 0.0
            self._pace = (
                interval
                if pace is None
                else pace + _PACE_WEIGHT * (interval - pace)
            )
        if self._putters:
            return Handover(item, self._reserve_slot())
        return item

    def _reserve_slot(self) -> W:
        # Called with a producer queued and room just freed: producers wait
        # only while the buffer is full, and every caller has just taken an
        # item or released a reservation.
        waiter = next(iter(self._putters))
        del self._putters[waiter]
        self.slots_reserved += 1
        return waiter
