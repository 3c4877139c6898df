"""
The bookkeeping of a bulkhead: permits against a limit, and a FIFO queue
of waiters.

The core never parks anyone.  A caller that cannot enter at once is
*enqueued* with a waiter object of the shell's choosing (a
:class:`threading.Event` for a thread, a future's waker for a task); when
permits come back, the core hands them straight to the head of the queue
and returns the waiters it served so the shell can wake them (trio's
``ParkingLot``: bookkeeping here, parking in the shell).  Because permits
are handed over rather than put back, a newcomer can never overtake a
waiter: service is FIFO.

Every permit has a *cost*, the units of the limit it holds: 1 for a
bulkhead that counts calls, a payload's size for one that caps the weight
in flight (:class:`~stalwart.WeightedBulkhead`).  A permit is either a
token of its own (a positive int, never reused, taken with
:meth:`~BulkheadCore.try_take`), so that one given back twice is caught:
the second :meth:`~BulkheadCore.give_back` finds its token gone and
raises, instead of handing a second permit to the next waiter; or
anonymous, of cost 1 (:meth:`~BulkheadCore.try_enter` /
:meth:`~BulkheadCore.exit`), for the faces whose every entry is matched by
exactly one exit (a ``with`` block, a decorated call), where only the
count matters and the bookkeeping is cheapest.  A permit handed over to a
waiter is a new token, which the waiter may make anonymous.

FIFO with costs: the waiter at the head of the queue *reserves* whatever
units are free while it waits for the rest, so that nobody behind it, nor
a newcomer, can take them (a small request never overtakes a large one
that came first); if it gives up, its reservation goes on to the next
waiter.  While anyone waits, every unit is therefore held or reserved,
which is why the entry tests need not look at the queue.

The limit may change (:meth:`~BulkheadCore.set_limit`, for an adaptive
bulkhead): raising it serves the waiters that now fit; lowering it below
what is held revokes nothing, and newcomers wait until enough comes back.

Invariants (checked by the state-machine tests):

* ``0 <= weight <= limit`` (the weight of the permits held, whatever
  their kind), unless the limit was lowered under it;
* every unit is held or reserved while waiters are queued, and units are
  reserved only for the head of the queue;
* ``len(queue) <= max_queue`` (``None``: no limit).
"""

from __future__ import annotations

import math

from typing import Generic, TypeVar

import attrs


W = TypeVar("W")


@attrs.frozen
class BulkheadSnapshot:
    """
    The counters of a :class:`BulkheadCore` at one moment.

    Attributes:
        in_flight: Permits held (granted to a waiter, or taken).
        queued: Waiters in the queue.
        refused: Refusals counted so far.
        high_water: The most units ever held at once.
        weight: The units held now (``in_flight`` when every cost is 1).
        queued_weight: The units the waiters ask for, in all.
        limit: The limit now.
    """

    in_flight: int
    queued: int
    refused: int
    high_water: int
    weight: int = 0
    queued_weight: int = 0
    limit: float = 0


class BulkheadCore(Generic[W]):
    """
    Permits for at most *limit* units (``math.inf``: no limit) and a FIFO
    queue of at most *max_queue* waiters (``None``: no limit).
    """

    __slots__ = (
        "_anonymous",
        "_granted",
        "_held",
        "_last",
        "_queue",
        "_queue_limit",
        "_reserved",
        "high_water",
        "limit",
        "max_queue",
        "refused",
        "used",
    )

    def __init__(self, limit: float, max_queue: int | None) -> None:
        self.limit = limit
        self.max_queue = max_queue
        self._queue_limit: float = math.inf if max_queue is None else max_queue
        self.refused = 0
        self.high_water = 0
        # The units held or reserved: the permits' costs plus _reserved.
        self.used = 0
        self._reserved = 0  # for the head of the queue
        self._last = 0  # the last token issued
        # The cost of each permit held as a token, and how many anonymous
        # permits (of cost 1) are held.
        self._held: dict[int, int] = {}
        self._anonymous = 0
        # A dict is an ordered set: FIFO order, each waiter's cost, and
        # O(1) removal of a waiter that gives up from the middle.
        self._queue: dict[W, int] = {}
        # The token handed to each waiter that was served but has not yet
        # taken it (see withdraw()).
        self._granted: dict[W, int] = {}

    @property
    def in_flight(self) -> int:
        """
        How many permits are held now.
        """
        return len(self._held) + self._anonymous

    @property
    def weight(self) -> int:
        """
        How many units the permits held now hold.
        """
        return self.used - self._reserved

    def try_enter(self) -> bool:
        """
        Take an anonymous permit of cost 1 if a unit is free; never queue.
        Give it back with :meth:`exit`.
        """
        # While anyone waits every unit is held or reserved, so checking
        # the units is enough for FIFO.
        used = self.used
        if used < self.limit:
            self.used = used + 1
            self._anonymous += 1
            if used >= self.high_water:  # cheaper than max()
                self.high_water = used + 1
            return True
        return False

    def try_take(self, cost: int = 1) -> int:
        """
        Take a permit of *cost* units as a token if they are free; never
        queue.  Give it back with :meth:`give_back`.

        Returns:
            The permit's token (a positive int), or ``0`` when the units
            are not free.
        """
        used = self.used + cost
        if used <= self.limit:
            self.used = used
            self._last = token = self._last + 1
            self._held[token] = cost
            if used > self.high_water:  # noqa: PLR1730  # max() costs a call
                self.high_water = used
            return token
        return 0

    def anonymize(self, token: int) -> None:
        """
        Turn the permit *token* (of cost 1: one handed over to a waiter,
        say) into an anonymous one.
        """
        del self._held[token]
        self._anonymous += 1

    def enqueue(self, waiter: W, cost: int = 1) -> bool:
        """
        Queue *waiter* for a permit of *cost* units, after a
        :meth:`try_take` (or :meth:`try_enter`) that found them taken.

        Returns:
            ``False`` (and counts a refusal) when the queue is full.
        """
        queue = self._queue
        if len(queue) >= self._queue_limit:
            self.refused += 1
            return False
        queue[waiter] = cost
        if len(queue) == 1:
            # The new head reserves the units free now (too few: the entry
            # failed).
            self._reserve()
        return True

    def would_queue(self) -> bool:
        """
        Tell whether :meth:`enqueue` would queue a waiter now (the queue
        has room).
        """
        return len(self._queue) < self._queue_limit

    def refuse(self) -> None:
        """
        Count a refusal decided by the shell (``try_acquire`` said no).
        """
        self.refused += 1

    def exit(self) -> list[W] | None:
        """
        Give back an anonymous permit.

        Returns:
            The waiters the units were handed to, which the shell must
            wake, or ``None`` when nobody was served.

        Raises:
            RuntimeError: If no anonymous permit is held.
        """
        if not self._anonymous:
            msg = "exit() without a matching try_enter()"
            raise RuntimeError(msg)
        self._anonymous -= 1
        self.used -= 1
        if self._queue:
            return self._hand_over()
        return None

    def give_back(self, token: int) -> list[W] | None:
        """
        Give back the permit *token*.

        Returns:
            The waiters its units were handed to, which the shell must
            wake, or ``None`` when nobody was served.

        Raises:
            RuntimeError: If *token* is not held (given back twice, or
                never taken).
        """
        try:
            cost = self._held.pop(token)
        except KeyError:
            msg = (
                "a bulkhead permit was given back that is not held (given"
                " back twice, or never taken)"
            )
            raise RuntimeError(msg) from None
        self.used -= cost
        if self._queue:
            return self._hand_over()
        return None

    def set_limit(self, limit: float) -> list[W] | None:
        """
        Change the limit; permits held above a lower one are not revoked.

        Returns:
            The waiters served because the limit rose, or ``None``.
        """
        self.limit = limit
        if self._queue:
            # The head reserves afresh, under the new limit.
            self.used -= self._reserved
            self._reserved = 0
            return self._hand_over()
        return None

    def cost_of(self, token: int) -> int:
        """
        Return the cost of the permit *token*, held now.
        """
        return self._held[token]

    def _hand_over(self) -> list[W] | None:
        """
        Serve the waiters at the head of the queue while their permits fit,
        each with a new token; the first that does not fit reserves what is
        left.
        """
        queue = self._queue
        served: list[W] | None = None
        while queue:
            waiter = next(iter(queue))
            cost = queue[waiter]
            free = self.limit - self.used
            if cost - self._reserved > free:
                self._reserve()
                break
            del queue[waiter]
            self.used += cost - self._reserved
            self._reserved = 0
            self._last = token = self._last + 1
            self._held[token] = cost
            self._granted[waiter] = token
            self.high_water = max(self.high_water, self.used)
            if served is None:
                served = [waiter]
            else:
                served.append(waiter)
        return served

    def _reserve(self) -> None:
        """
        Reserve the free units for the head of the queue.
        """
        free = self.limit - self.used
        if free > 0:
            # A finite limit: a queue forms only under one.
            units = int(free)
            self.used += units
            self._reserved += units

    def withdraw(
        self, waiter: W, *, refused: bool
    ) -> tuple[int, list[W] | None]:
        """
        Take *waiter* out of the queue, or take the permit handed to it.

        Args:
            waiter: A waiter passed to :meth:`enqueue`.
            refused: Count a refusal if the waiter was still queued (it
                timed out, rather than being cancelled).

        Returns:
            ``0`` if it was still queued (it is no longer), or else the
            token of the permit handed to it, which it now holds and must
            use or give back with :meth:`give_back`; and the waiters served
            by the units it had reserved at the head of the queue (which
            the shell must wake), or ``None``.
        """
        queue = self._queue
        if waiter not in queue:
            return self._granted.pop(waiter), None
        head = next(iter(queue)) is waiter
        del queue[waiter]
        if refused:
            self.refused += 1
        if not head:
            return 0, None
        # Its reservation goes back, to the next head if there is one.
        self.used -= self._reserved
        self._reserved = 0
        return 0, self._hand_over() if queue else None

    def snapshot(self) -> BulkheadSnapshot:
        """
        Copy the counters.
        """
        return BulkheadSnapshot(
            in_flight=len(self._held) + self._anonymous,
            queued=len(self._queue),
            refused=self.refused,
            high_water=self.high_water,
            weight=self.used - self._reserved,
            queued_weight=sum(self._queue.values()),
            limit=self.limit,
        )
