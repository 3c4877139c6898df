"""
The bookkeeping of a bulkhead: permits and a FIFO queue of waiters.

The core never parks anyone.  A caller that cannot enter at once is
*enqueued* with a waiter object of the shell's choosing (a
:class:`threading.Event` for a thread, a future's waker for a task); when a
permit comes back, :meth:`BulkheadCore.exit` hands it straight to the head
of the queue and returns that waiter so the shell can wake it (trio's
``ParkingLot``: bookkeeping here, parking in the shell).  Because permits
are handed over rather than put back, a newcomer can never overtake a
waiter: service is FIFO.

A permit is either a token of its own (a positive int, never reused,
taken with :meth:`~BulkheadCore.try_take`), so that one given back twice is
caught: the second :meth:`~BulkheadCore.give_back` finds its token gone
and raises, instead of handing a second permit to the next waiter; or
anonymous (:meth:`~BulkheadCore.try_enter` / :meth:`~BulkheadCore.exit`),
for the faces whose every entry is matched by exactly one exit (a ``with``
block, a decorated call), where only the count matters and the bookkeeping
is cheapest.  A permit handed over to a waiter is a new token, which the
waiter may make anonymous.

Invariants (checked by the state-machine tests):

* ``0 <= in_flight <= max_concurrent``, where ``in_flight`` is the number
  of tokens held plus the anonymous permits;
* waiters are queued only while every permit is taken;
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
    """

    in_flight: int
    queued: int
    refused: int
    high_water: int


class BulkheadCore(Generic[W]):
    """
    Permits for at most *max_concurrent* holders (``math.inf``: no limit)
    and a FIFO queue of at most *max_queue* waiters (``None``: no limit).
    """

    __slots__ = (
        "_anonymous",
        "_granted",
        "_held",
        "_last",
        "_queue",
        "_queue_limit",
        "high_water",
        "max_concurrent",
        "max_queue",
        "refused",
    )

    def __init__(self, max_concurrent: float, max_queue: int | None) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self._queue_limit: float = math.inf if max_queue is None else max_queue
        self.refused = 0
        self.high_water = 0
        self._last = 0  # the last token issued
        # The tokens of the permits held now, and how many anonymous ones.
        self._held: set[int] = set()
        self._anonymous = 0
        # A dict is an ordered set: FIFO order, and O(1) removal of a
        # waiter that gives up from the middle of the queue.
        self._queue: dict[W, None] = {}
        # The token handed to each waiter that was woken but has not yet
        # taken it (see withdraw()).
        self._granted: dict[W, int] = {}

    @property
    def in_flight(self) -> int:
        """
        How many permits are held now.
        """
        return len(self._held) + self._anonymous

    def try_enter(self) -> bool:
        """
        Take an anonymous permit if one is free and nobody waits for it;
        never queue.  Give it back with :meth:`exit`.
        """
        # A waiter exists only while every permit is taken (permits are
        # handed over on exit), so counting the holders is enough for FIFO.
        taken = len(self._held) + self._anonymous
        if taken < self.max_concurrent:
            self._anonymous += 1
            if taken >= self.high_water:  # cheaper than max()
                self.high_water = taken + 1
            return True
        return False

    def try_take(self) -> int:
        """
        Take a permit as a token if one is free and nobody waits for it;
        never queue.  Give it back with :meth:`give_back`.

        Returns:
            The permit's token (a positive int), or ``0`` when every permit
            is taken.
        """
        taken = len(self._held) + self._anonymous
        if taken < self.max_concurrent:
            self._last = token = self._last + 1
            self._held.add(token)
            if taken >= self.high_water:  # cheaper than max()
                self.high_water = taken + 1
            return token
        return 0

    def anonymize(self, token: int) -> None:
        """
        Turn the permit *token* (one handed over to a waiter, say) into an
        anonymous one.
        """
        self._held.remove(token)
        self._anonymous += 1

    def enqueue(self, waiter: W) -> bool:
        """
        Queue *waiter* for the next free permit.

        Returns:
            ``False`` (and counts a refusal) when the queue is full.
        """
        if len(self._queue) >= self._queue_limit:
            self.refused += 1
            return False
        self._queue[waiter] = None
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

    def exit(self) -> W | None:
        """
        Give back an anonymous permit.

        Returns:
            The waiter the permit was handed to, which the shell must wake,
            or ``None`` when nobody was waiting.

        Raises:
            RuntimeError: If no anonymous permit is held.
        """
        if not self._anonymous:
            msg = "exit() without a matching try_enter()"
            raise RuntimeError(msg)
        self._anonymous -= 1
        return self._hand_over()

    def give_back(self, token: int) -> W | None:
        """
        Give back the permit *token*.

        Returns:
            The waiter the permit was handed to, which the shell must wake,
            or ``None`` when nobody was waiting.

        Raises:
            RuntimeError: If *token* is not held (given back twice, or
                never taken).
        """
        try:
            self._held.remove(token)
        except KeyError:
            msg = (
                "a bulkhead permit was given back that is not held (given"
                " back twice, or never taken)"
            )
            raise RuntimeError(msg) from None
        return self._hand_over()

    def _hand_over(self) -> W | None:
        if self._queue:
            # The permit goes straight to the head of the queue, as a new
            # token: in_flight does not change.
            waiter = next(iter(self._queue))
            del self._queue[waiter]
            self._last = handed = self._last + 1
            self._held.add(handed)
            self._granted[waiter] = handed
            return waiter
        return None

    def withdraw(self, waiter: W, *, refused: bool) -> int:
        """
        Take *waiter* out of the queue, or take the permit handed to it.

        Args:
            waiter: A waiter passed to :meth:`enqueue`.
            refused: Count a refusal if the waiter was still queued (it
                timed out, rather than being cancelled).

        Returns:
            ``0`` if it was still queued (it is no longer); otherwise the
            token of the permit handed to it, which it now holds and must
            use or give back with :meth:`give_back`.
        """
        if waiter in self._queue:
            del self._queue[waiter]
            if refused:
                self.refused += 1
            return 0
        return self._granted.pop(waiter)

    def snapshot(self) -> BulkheadSnapshot:
        """
        Copy the counters.
        """
        return BulkheadSnapshot(
            in_flight=len(self._held) + self._anonymous,
            queued=len(self._queue),
            refused=self.refused,
            high_water=self.high_water,
        )
