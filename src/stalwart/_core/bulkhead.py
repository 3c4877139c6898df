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

Every permit is a token of its own (a positive int, never reused), so a
permit given back twice is caught: the second :meth:`~BulkheadCore.exit`
finds its token gone and raises, instead of handing a second permit to the
next waiter.  A permit handed over to a waiter is a new token.

Invariants (checked by the state-machine tests):

* ``0 <= in_flight <= max_concurrent``, where ``in_flight`` is the number
  of tokens held;
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
        # The tokens of the permits held now.
        self._held: set[int] = set()
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
        return len(self._held)

    def try_enter(self) -> int:
        """
        Take a permit if one is free and nobody waits for it; never queue.

        Returns:
            The permit's token (a positive int), or ``0`` when every permit
            is taken.
        """
        # A waiter exists only while every permit is taken (permits are
        # handed over in exit()), so counting the holders is enough for
        # FIFO.
        held = self._held
        if len(held) < self.max_concurrent:
            self._last = token = self._last + 1
            held.add(token)
            if len(held) > self.high_water:  # noqa: PLR1730  # cheaper than max()
                self.high_water = len(held)
            return token
        return 0

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

    def exit(self, token: int) -> W | None:
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
            use or give back with :meth:`exit`.
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
            in_flight=len(self._held),
            queued=len(self._queue),
            refused=self.refused,
            high_water=self.high_water,
        )
