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

Invariants (checked by the state-machine tests):

* ``0 <= in_flight <= max_concurrent``;
* waiters are queued only while every permit is taken;
* ``len(queue) <= max_queue``.
"""

from __future__ import annotations

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
    Permits for at most *max_concurrent* holders and a FIFO queue of at
    most *max_queue* waiters.
    """

    __slots__ = (
        "_queue",
        "high_water",
        "in_flight",
        "max_concurrent",
        "max_queue",
        "refused",
    )

    def __init__(self, max_concurrent: int, max_queue: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.in_flight = 0
        self.refused = 0
        self.high_water = 0
        # A dict is an ordered set: FIFO order, and O(1) removal of a
        # waiter that gives up from the middle of the queue.
        self._queue: dict[W, None] = {}

    def try_enter(self) -> bool:
        """
        Take a permit if one is free and nobody waits for it; never queue.
        """
        # A waiter exists only while every permit is taken (permits are
        # handed over in exit()), so checking in_flight is enough for FIFO.
        if self.in_flight < self.max_concurrent:
            self.in_flight += 1
            self.high_water = max(self.high_water, self.in_flight)
            return True
        return False

    def enqueue(self, waiter: W) -> bool:
        """
        Queue *waiter* for the next free permit.

        Returns:
            ``False`` (and counts a refusal) when the queue is full.
        """
        if len(self._queue) >= self.max_queue:
            self.refused += 1
            return False
        self._queue[waiter] = None
        return True

    def refuse(self) -> None:
        """
        Count a refusal decided by the shell (``try_acquire`` said no).
        """
        self.refused += 1

    def exit(self) -> W | None:
        """
        Give a permit back.

        Returns:
            The waiter the permit was handed to, which the shell must wake,
            or ``None`` when nobody was waiting.

        Raises:
            RuntimeError: If no permit is held.
        """
        if self._queue:
            # The permit goes straight to the head of the queue: in_flight
            # does not change.
            waiter = next(iter(self._queue))
            del self._queue[waiter]
            return waiter
        if self.in_flight == 0:
            msg = "release() without a matching acquire()"
            raise RuntimeError(msg)
        self.in_flight -= 1
        return None

    def withdraw(self, waiter: W, *, refused: bool) -> bool:
        """
        Take *waiter* out of the queue because it gives up waiting.

        Args:
            waiter: A waiter passed to :meth:`enqueue`.
            refused: Count a refusal if the waiter was still queued (it
                timed out, rather than being cancelled).

        Returns:
            ``True`` if it was still queued; ``False`` if a permit was
            handed to it first, in which case it holds that permit and
            must use it or give it back with :meth:`exit`.
        """
        if waiter in self._queue:
            del self._queue[waiter]
            if refused:
                self.refused += 1
            return True
        return False

    def snapshot(self) -> BulkheadSnapshot:
        """
        Copy the counters.
        """
        return BulkheadSnapshot(
            in_flight=self.in_flight,
            queued=len(self._queue),
            refused=self.refused,
            high_water=self.high_water,
        )
