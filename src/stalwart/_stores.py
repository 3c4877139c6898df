"""
Keyed limiter state: the store interface, and the in-memory store.

A store applies one algorithm of :mod:`stalwart._core.limits` to the
state of one key at a time, atomically.  :class:`MemoryStore` is the
reference implementation; a store that keeps the state elsewhere (Redis,
running the same arithmetic in Lua scripts, one round trip per
operation) offers the same operations with the same meaning:

``decide(key, now, cost, max_wait) -> Outcome``
    One request: the algorithm's ``decide`` on the key's state, written
    back if granted, and its ``status`` after it.  A grant whose slot is
    later than *now* is a *reservation*: the store queues it (in slot
    order, which is the order requests asked in) with the marks around
    its booking, and returns it; the caller sleeps until its slot.
    Counts the request as granted or refused.
``cancel(reservation, now) -> moved``
    The caller of a reservation gives it back (cancelled, interrupted).
    If its slot is still ahead, every booking from it on is undone
    (``rewind`` to its first mark) and the reservations queued behind it
    are booked again, in order, at *now*: each gets the earliest slot the
    limit allows, never a later one, as if the cancelled request had
    never asked.  If its slot has passed, the algorithm's ``refund``
    gives its cost back, and the queued reservations are booked again on
    top of that.  Returns the reservations whose slots moved, so that
    their callers can be woken.
``peek(key, now, cost) -> Outcome``
    What ``decide(..., max_wait=0)`` would return, changing nothing.
``remaining(now) -> int | None``
    The default key's room for requests of cost one, for statistics;
    ``None`` when it cannot be known (a shared store that cannot reach its
    server): a statistics read never fails, and is not a decision.
``reset(key, now) -> moved`` / ``clear(now) -> moved``
    Forget one key's state, or every key's; reservations still queued
    are booked again on a fresh state.

Every one of these runs on one key's state (``clear`` on each key in
turn) and none waits, so each can be one atomic server-side script.
Several rates at once are one algorithm
(:class:`~stalwart._core.limits.MultiRateAlgorithm`) over a tuple of
states, so they are admitted or refused together.  Waking the callers of
moved reservations is the shell's job; a shared store publishes the moved
reservations (or lets each caller find its new slot when it wakes:
slots only ever move earlier, so a caller that misses the news is
served late, never early).

Memory.  Eviction is lazy, with no background thread: keys live in
generations one period of the limit long.  A key used in a generation is
in the newest; once a generation is over, its keys are looked at, a few
on every keyed call until they are done: a key whose state is
indistinguishable from a fresh key's (``idle``: a full bucket, an ended
window) and that has no queued reservation is forgotten; any other key (a
long booked wait, a drained bucket larger than its rate) moves on to the
newest generation, without holding up the keys behind it.  So a key is
forgotten within about two periods of going idle (as long as the limiter
is used), the store holds the keys used within that time plus the keys
not yet idle, and a live limit is never reset.
"""

from __future__ import annotations

import threading

from collections.abc import Hashable
from typing import Any, Generic, Protocol, TypeVar

from ._core.limits import INF, Algorithm


S = TypeVar("S")

SWEEP_BATCH = 16
"""How many keys of a past generation one new key makes the store look at."""


class Waker(Protocol):
    """
    Whatever wakes the caller of a reservation whose slot moved.
    """

    def set(self) -> None:
        """
        Wake the caller (from any thread).
        """


class Reservation:
    """
    A request booked for a slot later than when it asked.

    Attributes:
        cell: The state it was booked in.
        cost: Its cost.
        slot: When it is served; moves earlier if a reservation before it
            is cancelled.
        before: The algorithm's mark before its booking.
        after: The algorithm's mark after it.
        waker: Wakes its caller when its slot moves.
    """

    __slots__ = ("after", "before", "cell", "cost", "slot", "waker")

    def __init__(
        self,
        cell: Cell,
        cost: float,
        slot: float,
        *,
        before: Any,
        after: Any,
        waker: Waker | None = None,
    ) -> None:
        self.cell = cell
        self.cost = cost
        self.slot = slot
        self.before = before
        self.after = after
        self.waker = waker


class Cell:
    """
    One key's state, its counters and its queue of reservations, guarded
    by *lock* (the store's lock for every key but the default one).

    Subclasses keep the state as separate attributes that a limiter's
    hand-inlined hot path reads and writes; :attr:`state` is the tuple
    the algorithm takes.
    """

    __slots__ = (
        "evicted",
        "gate",
        "granted",
        "lock",
        "queue",
        "refused",
        "state",
        "tally",
    )

    state: Any
    gate: float
    """The earliest time a request may be granted at once without asking
    the store: never while reservations are queued (``inf``)."""

    def __init__(self, state: Any, lock: threading.Lock) -> None:
        self.lock = lock
        self.queue: list[Reservation] | None = None
        self.state = state
        self.regate()
        self.granted = 0
        self.refused = 0
        self.tally: Cell | MemoryStore[Any] = self
        """What counts this key's requests: the key itself, or (every
        key but the default one) the store, so that statistics are O(1)."""
        self.evicted = False

    def regate(self) -> None:
        """
        Set :attr:`gate` after the queue or the state changed.
        """
        self.gate = -INF if self.queue is None else INF


class BucketCell(Cell):
    """
    A bucket's state as ``at``, ``level`` and ``booked``.
    """

    __slots__ = ("at", "booked", "level")

    @property
    def state(self) -> tuple[float, float, float]:
        return (self.at, self.level, self.booked)

    @state.setter
    def state(self, state: tuple[float, float, float]) -> None:
        self.at, self.level, self.booked = state
        self.regate()

    def regate(self) -> None:
        """
        No request goes at once before a booked slot either.
        """
        self.gate = self.booked if self.queue is None else INF


class WindowCell(Cell):
    """
    A fixed window's state as ``window`` and ``count``, and the bounds of
    that window (``start``, ``end``) for the hot path.
    """

    __slots__ = ("count", "end", "start", "window")

    @property
    def state(self) -> tuple[float, float]:
        return (self.window, self.count)

    @state.setter
    def state(self, state: tuple[float, float]) -> None:
        self.window, self.count = state
        # Unknown bounds: the hot path takes its slow branch once.
        self.start = INF
        self.end = -INF


class CounterCell(Cell):
    """
    A sliding-window counter's state as ``window``, ``previous``,
    ``current`` and ``booked``, and the bounds of the window (``start``,
    ``end``) for the hot path.
    """

    __slots__ = ("booked", "current", "end", "previous", "start", "window")

    @property
    def state(self) -> tuple[float, float, float, float]:
        return (self.window, self.previous, self.current, self.booked)

    @state.setter
    def state(self, state: tuple[float, float, float, float]) -> None:
        self.window, self.previous, self.current, self.booked = state
        self.start = INF
        self.end = -INF
        self.regate()

    def regate(self) -> None:
        """
        No request goes at once before a booked slot either.
        """
        self.gate = self.booked if self.queue is None else INF


Outcome = tuple[bool, float, int, float, int, Reservation | None]
"""``(granted, at, remaining, reset_after, limit, reservation)``: *at* is
the slot when granted, else the ready time."""


class MemoryStore(Generic[S]):
    """
    The state of every key of one limiter, in memory.

    The default key (``None``) has its own cell and lock; every other key
    shares the store's lock, which guards O(1) bookkeeping only (plus a
    batch of at most :data:`SWEEP_BATCH` keys looked at for eviction).
    """

    __slots__ = (
        "_cell_type",
        "_generation",
        "_next_swap",
        "_older",
        "algorithm",
        "cells",
        "default",
        "granted",
        "lock",
        "refused",
        "swap_at",
    )

    def __init__(
        self,
        algorithm: Algorithm[S],
        cell_type: type[Cell] = Cell,
        generation: float | None = None,
    ) -> None:
        """
        Args:
            algorithm: The algorithm every key follows.
            cell_type: The cell that holds a key's state.
            generation: How long a generation of keys lasts, in seconds:
                the limit's period (by default the algorithm's horizon).
        """
        self.algorithm = algorithm
        self._cell_type = cell_type
        self.lock = threading.Lock()
        self.default = cell_type(algorithm.fresh(), threading.Lock())
        self.cells: dict[Hashable, Cell] = {}
        """The newest generation of keys."""
        self._older: list[dict[Hashable, Cell]] = []
        self._generation = (
            algorithm.horizon if generation is None else generation
        )
        self._next_swap = -INF
        self.swap_at = -INF
        """When a keyed call must go through :meth:`cell`: when the newest
        generation is over, or at once while older ones are being swept."""
        self.granted = 0
        """Requests granted on keys since forgotten."""
        self.refused = 0
        """Requests refused on keys since forgotten."""

    def __len__(self) -> int:
        """
        The number of keys whose state is held (the default key aside).
        """
        return len(self.cells) + sum(map(len, self._older))

    # ------------------------------------------------------------- keys

    def cell(self, key: Hashable, now: float) -> Cell:
        """
        Return *key*'s cell, creating it if need be; the caller holds
        :attr:`lock`.
        """
        if now >= self._next_swap:
            self._older.append(self.cells)
            self.cells = {}
            self._next_swap = now + self._generation
        cells = self.cells
        cell = cells.get(key)
        if cell is None:
            for older in reversed(self._older):
                cell = older.pop(key, None)
                if cell is not None:
                    break
            else:
                cell = self._cell_type(self.algorithm.fresh(), self.lock)
                cell.tally = self
            cells[key] = cell
        self._sweep(now)
        return cell

    def _sweep(self, now: float) -> None:
        """
        Look at up to :data:`SWEEP_BATCH` keys of the oldest past
        generation: forget the idle ones, move the others to the newest.
        """
        older = self._older
        idle = self.algorithm.idle
        cells = self.cells
        for _ in range(SWEEP_BATCH):
            while older and not older[0]:
                del older[0]
            if not older:
                break
            key, cell = older[0].popitem()
            self._prune(cell, now)
            if cell.queue is None and idle(cell.state, now):
                self._forget(cell)
            else:
                cells[key] = cell
        while older and not older[0]:
            del older[0]
        # Every keyed call sweeps until the past generations are done.
        self.swap_at = -INF if older else self._next_swap

    @staticmethod
    def _forget(cell: Cell) -> None:
        cell.evicted = True

    def counts(self) -> tuple[int, int]:
        """
        ``(granted, refused)`` over every key, the default key included.
        """
        default = self.default
        with default.lock:
            granted, refused = default.granted, default.refused
        with self.lock:
            return granted + self.granted, refused + self.refused

    # ------------------------------------------------------- operations

    def decide(
        self, key: Hashable | None, now: float, cost: float, max_wait: float
    ) -> Outcome:
        """
        Grant, book or refuse *cost* for *key*; see the module docstring.

        A reservation is returned without a waker: its caller sets one
        before it reads its slot.
        """
        if key is None:
            cell = self.default
            with cell.lock:
                return self._decide(cell, now, cost, max_wait)
        with self.lock:
            return self._decide(self.cell(key, now), now, cost, max_wait)

    def _decide(
        self, cell: Cell, now: float, cost: float, max_wait: float
    ) -> Outcome:
        algorithm = self.algorithm
        self._prune(cell, now)
        state = cell.state
        before = algorithm.mark(state)
        state, granted, at = algorithm.decide(state, now, cost, max_wait)
        reservation = None
        if granted:
            cell.state = state
            cell.tally.granted += 1
            if at > now:
                reservation = Reservation(
                    cell, cost, at, before=before, after=algorithm.mark(state)
                )
                if cell.queue is None:
                    cell.queue = []
                    cell.regate()
                cell.queue.append(reservation)
        else:
            cell.tally.refused += 1
        remaining, reset_after, limit = algorithm.status(state, now)
        return granted, at, remaining, reset_after, limit, reservation

    def refuse(self, key: Hashable | None, now: float) -> None:
        """
        Count a request refused without asking the algorithm (its cost
        can never fit).
        """
        if key is None:
            cell = self.default
            with cell.lock:
                cell.refused += 1
            return
        with self.lock:
            self.cell(key, now)
            self.refused += 1

    def peek(self, key: Hashable | None, now: float, cost: float) -> Outcome:
        """
        What :meth:`decide` would return with no wait, changing nothing.
        """
        if key is None:
            cell = self.default
            with cell.lock:
                return self._peek(cell.state, now, cost)
        with self.lock:
            found = self._find(key)
            state = self.algorithm.fresh() if found is None else found.state
            return self._peek(state, now, cost)

    def remaining(self, now: float) -> int | None:
        """
        How many requests of cost one the default key would grant now
        (``None``: not known without the server, for a shared store).
        """
        granted, _, remaining, _, _, _ = self.peek(None, now, 1.0)
        # The room after a request of one, plus that request.
        return remaining + granted

    def _peek(self, state: Any, now: float, cost: float) -> Outcome:
        algorithm = self.algorithm
        before = algorithm.mark(state)
        after, granted, at = algorithm.decide(state, now, cost, 0.0)
        remaining, reset_after, limit = algorithm.status(after, now)
        algorithm.rewind(after, before)
        return granted, at, remaining, reset_after, limit, None

    def _find(self, key: Hashable) -> Cell | None:
        cell: Cell | None = self.cells.get(key)
        if cell is None:
            for older in self._older:
                cell = older.get(key)
                if cell is not None:
                    break
        return cell

    def cancel(
        self, reservation: Reservation, now: float
    ) -> list[Reservation]:
        """
        Give *reservation* back; return the reservations whose slots moved.
        """
        cell = reservation.cell
        with cell.lock:
            cell.tally.granted -= 1
            if cell.evicted:
                return []
            self._prune(cell, now)
            queue = cell.queue or []
            algorithm = self.algorithm
            index = next(
                (i for i, r in enumerate(queue) if r is reservation), None
            )
            if index is not None:
                state = algorithm.rewind(cell.state, reservation.before)
                kept, rest = queue[:index], queue[index + 1 :]
            else:
                state = cell.state
                if queue:
                    state = algorithm.rewind(state, queue[0].before)
                kept, rest = [], queue
                state = algorithm.refund(
                    state,
                    now,
                    cost=reservation.cost,
                    slot=reservation.slot,
                    before=reservation.before,
                    after=reservation.after,
                )
            return self._rebook(cell, state, kept, rest, now)

    def _prune(self, cell: Cell, now: float) -> None:
        """
        Drop the reservations whose slots have come: they are served.
        """
        queue = cell.queue
        if queue is None:
            return
        served = 0
        for reservation in queue:
            if reservation.slot > now:
                break
            served += 1
        del queue[:served]
        if not queue:
            cell.queue = None
            cell.regate()

    def _rebook(
        self,
        cell: Cell,
        state: Any,
        kept: list[Reservation],
        queued: list[Reservation],
        now: float,
    ) -> list[Reservation]:
        """
        Book *queued* again, in order, at *now* on *state* (which holds
        the bookings of *kept*); store the result and return the
        reservations whose slots moved.
        """
        algorithm = self.algorithm
        moved = []
        queue = kept
        for reservation in queued:
            reservation.before = algorithm.mark(state)
            slot = algorithm.ready(state, now, reservation.cost)
            state = algorithm.book(state, now, slot, reservation.cost)
            reservation.after = algorithm.mark(state)
            if slot != reservation.slot:
                reservation.slot = slot
                moved.append(reservation)
            if slot > now:
                queue.append(reservation)
        cell.queue = queue or None
        cell.state = state
        cell.regate()
        return moved

    def reset(self, key: Hashable | None, now: float) -> list[Reservation]:
        """
        Forget *key*'s state; rebook its queued reservations on a fresh
        one.  Returns the reservations whose slots moved.
        """
        if key is None:
            cell = self.default
            with cell.lock:
                return self._reset(cell, now)
        with self.lock:
            found = self._find(key)
            if found is None:
                return []
            moved = self._reset(found, now)
            if found.queue is None:
                for cells in (self.cells, *self._older):
                    cells.pop(key, None)
                self._forget(found)
            return moved

    def _reset(self, cell: Cell, now: float) -> list[Reservation]:
        self._prune(cell, now)
        queue = cell.queue or []
        return self._rebook(cell, self.algorithm.fresh(), [], queue, now)

    def clear(self, now: float) -> list[Reservation]:
        """
        Forget every key's state; rebook the queued reservations on fresh
        ones.  Returns the reservations whose slots moved.
        """
        moved = self.reset(None, now)
        with self.lock:
            kept: dict[Hashable, Cell] = {}
            for cells in (*self._older, self.cells):
                for key, cell in cells.items():
                    moved += self._reset(cell, now)
                    if cell.queue is None:
                        self._forget(cell)
                    else:
                        kept[key] = cell
            self._older = []
            self.cells = kept
        return moved
