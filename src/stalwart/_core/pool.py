"""
The bookkeeping of a resource pool: idle resources, resources lent out,
the slots of resources being created, and a FIFO queue of waiters.

The core never creates, checks or closes a resource (the shell runs the
user's factory, validator and disposer) and never parks anyone.  It
decides:

* :meth:`PoolCore.checkout`: lend the most recently returned idle
  resource (LIFO, so that the others stay idle long enough to expire),
  or grant a slot to create one (:data:`CREATE`), or say the pool is
  :data:`FULL`;
* :meth:`PoolCore.checkin`: hand a returned resource straight to the
  first waiter, or keep it idle; a broken or expired one is closed, and
  its slot handed to the first waiter as :data:`CREATE`.

Resources to close are collected in a list the shell drains with
:meth:`PoolCore.take_dead` and closes outside its lock.  Idle resources
that expire (``max_idle``, ``max_lifetime``) are found at the next
checkout or checkin: no background thread.

Invariants (checked by the state-machine tests):

* ``size == idle + lent + creating + handed <= max_size``;
* waiters wait only while nothing is idle and ``size == max_size``;
* ``len(queue) <= max_queue``.
"""

from __future__ import annotations

import enum

from collections import deque
from typing import Final, Generic, TypeVar

import attrs


R = TypeVar("R")
W = TypeVar("W")


class Outcome(enum.Enum):
    """
    What a checkout got, when it is not a resource.
    """

    CREATE = "create"
    """A slot: the caller must create a resource and report it."""
    FULL = "full"
    """No idle resource and no slot: wait or give up."""
    CLOSED = "closed"
    """The pool is closed."""


CREATE: Final = Outcome.CREATE
FULL: Final = Outcome.FULL
CLOSED: Final = Outcome.CLOSED


class Entry(Generic[R]):
    """
    A resource of the pool and its times.
    """

    __slots__ = ("created_at", "idle_since", "resource")

    def __init__(self, resource: R, now: float) -> None:
        self.resource = resource
        self.created_at = now
        self.idle_since = now

    def __repr__(self) -> str:
        return f"Entry({self.resource!r}, created_at={self.created_at!r})"


@attrs.frozen
class PoolSnapshot:
    """
    The counters of a :class:`PoolCore` at one moment.
    """

    size: int
    idle: int
    in_use: int
    waiting: int
    created: int
    closed: int
    refused: int


class PoolCore(Generic[R, W]):
    """
    At most *max_size* resources; at most *max_queue* waiters (``None``:
    no limit); idle ones closed after *max_idle* seconds idle, and any
    after *max_lifetime* seconds (``None``: never).
    """

    __slots__ = (
        "_dead",
        "_handed",
        "_idle",
        "_out",
        "_waiters",
        "closed",
        "created",
        "creating",
        "disposed",
        "max_idle",
        "max_lifetime",
        "max_queue",
        "max_size",
        "refused",
        "size",
    )

    def __init__(
        self,
        max_size: int,
        max_queue: int | None,
        max_idle: float | None,
        max_lifetime: float | None,
    ) -> None:
        self.max_size = max_size
        self.max_queue = max_queue
        self.max_idle = max_idle
        self.max_lifetime = max_lifetime
        # Oldest idle first; lent from the right (LIFO).
        self._idle: deque[Entry[R]] = deque()
        # Lent out, by the identity of the resource (it may be unhashable).
        self._out: dict[int, Entry[R]] = {}
        # A dict is an ordered set: FIFO order, O(1) removal from the middle.
        self._waiters: dict[W, None] = {}
        # What woken waiters were given and have not claimed yet.
        self._handed: dict[W, Entry[R] | Outcome] = {}
        self._dead: list[tuple[Entry[R], str]] = []
        self.size = 0
        self.creating = 0
        self.closed = False
        self.created = 0
        self.disposed = 0
        self.refused = 0

    # -- lending ---------------------------------------------------------

    def checkout(self, now: float) -> Entry[R] | Outcome:
        """
        Lend an idle resource, or grant a slot to create one.

        Returns:
            The :class:`Entry` lent (the shell may validate it, and
            :meth:`replace` it if it is not valid); :data:`CREATE` (the
            shell must call :meth:`record_created` or :meth:`create_failed`);
            :data:`FULL`; or :data:`CLOSED`.
        """
        if self.closed:
            return CLOSED
        idle = self._idle
        if idle:
            self._reap(now)
            lifetime = self.max_lifetime
            while idle:
                entry = idle.pop()
                if lifetime is not None and now - entry.created_at >= lifetime:
                    self._bury(entry, "lifetime")
                    continue
                self._out[id(entry.resource)] = entry
                return entry
        if self.size < self.max_size:
            self.size += 1
            self.creating += 1
            return CREATE
        return FULL

    def record_created(self, resource: R, now: float) -> Entry[R]:
        """
        Record the resource created in a slot granted by :data:`CREATE`;
        it is lent to its creator.
        """
        entry = Entry(resource, now)
        self.creating -= 1
        self.created += 1
        self._out[id(resource)] = entry
        return entry

    def create_failed(self) -> W | None:
        """
        Give back a slot granted by :data:`CREATE` whose creation failed.

        Returns:
            The waiter the slot was handed to (wake it), or ``None``.
        """
        self.creating -= 1
        self.size -= 1
        return self._hand_slot()

    def replace(self, entry: Entry[R], now: float) -> Entry[R] | Outcome:
        """
        Close a lent resource that failed validation and check out again
        (the caller keeps its place: its slot is never handed to a
        waiter).
        """
        del self._out[id(entry.resource)]
        self._bury(entry, "invalid")
        return self.checkout(now)

    def checkin(self, resource: R, now: float, *, broken: bool) -> W | None:
        """
        Take back a lent resource: close it if *broken* or expired (or if
        the pool is closed), else hand it to the first waiter or keep it
        idle.

        Returns:
            The waiter that was handed the resource, or the slot of a
            closed one (wake it), or ``None``.

        Raises:
            RuntimeError: If *resource* is not lent out by this pool.
        """
        entry = self._out.pop(id(resource), None)
        if entry is None:
            msg = (
                f"{resource!r} is not checked out from this pool (given back"
                " twice, or never lent)"
            )
            raise RuntimeError(msg)
        if self._idle:
            self._reap(now)
        return self._release(entry, now, broken=broken)

    # -- waiting ---------------------------------------------------------

    def enqueue(self, waiter: W) -> bool:
        """
        Queue *waiter* for the next resource or slot (after :data:`FULL`).

        Returns:
            ``False`` (and counts a refusal) when the queue is full.
        """
        if self.max_queue is not None and len(self._waiters) >= self.max_queue:
            self.refused += 1
            return False
        self._waiters[waiter] = None
        return True

    def refuse(self) -> None:
        """
        Count a refusal decided by the shell (no time to wait).
        """
        self.refused += 1

    def withdraw(self, waiter: W, *, refused: bool) -> bool:
        """
        Take *waiter* out of the queue because it gives up.

        Args:
            waiter: A waiter passed to :meth:`enqueue`.
            refused: Count a refusal if it was still queued (it timed out,
                rather than being cancelled).

        Returns:
            ``True`` if it was still queued; ``False`` if something was
            handed to it first: it must :meth:`claim` it, or give it back
            with :meth:`abandon`.
        """
        if waiter in self._waiters:
            del self._waiters[waiter]
            if refused:
                self.refused += 1
            return True
        return False

    def claim(self, waiter: W) -> Entry[R] | Outcome:
        """
        Take what was handed to the woken *waiter*: a resource (now lent
        to it), :data:`CREATE` or :data:`CLOSED`.
        """
        handed = self._handed.pop(waiter)
        if type(handed) is Entry:
            self._out[id(handed.resource)] = handed
        return handed

    def abandon(self, waiter: W, now: float) -> W | None:
        """
        Give back what was handed to a woken *waiter* that will not use it
        (it was cancelled, or its event loop is closed).

        Returns:
            The next waiter it was handed to (wake it), or ``None``.
        """
        handed = self._handed.pop(waiter)
        if handed is CREATE:
            self.creating -= 1
            self.size -= 1
            return self._hand_slot()
        if type(handed) is Entry:
            return self._release(handed, now, broken=False)
        return None

    # -- closing ---------------------------------------------------------

    def close(self) -> list[W]:
        """
        Close the pool: every idle resource is to be closed, resources lent
        out are closed when they come back, and every waiter is handed
        :data:`CLOSED`.

        Returns:
            The waiters to wake.
        """
        self.closed = True
        while self._idle:
            self._bury(self._idle.popleft(), "closed")
        woken = list(self._waiters)
        self._waiters.clear()
        for waiter in woken:
            self._handed[waiter] = CLOSED
        return woken

    def take_dead(self) -> list[tuple[Entry[R], str]]:
        """
        Return the resources to close, with the reason for each, and
        forget them.
        """
        dead = self._dead
        if dead:
            self._dead = []
        return dead

    def snapshot(self) -> PoolSnapshot:
        """
        Copy the counters.
        """
        return PoolSnapshot(
            size=self.size,
            idle=len(self._idle),
            in_use=len(self._out),
            waiting=len(self._waiters),
            created=self.created,
            closed=self.disposed,
            refused=self.refused,
        )

    # -- internals -------------------------------------------------------

    def _release(
        self, entry: Entry[R], now: float, *, broken: bool
    ) -> W | None:
        lifetime = self.max_lifetime
        if broken or self.closed:
            reason = "broken" if broken else "closed"
        elif lifetime is not None and now - entry.created_at >= lifetime:
            reason = "lifetime"
        else:
            waiters = self._waiters
            if waiters:
                waiter = next(iter(waiters))
                del waiters[waiter]
                self._handed[waiter] = entry
                return waiter
            entry.idle_since = now
            self._idle.append(entry)
            return None
        self._bury(entry, reason)
        return self._hand_slot()

    def _hand_slot(self) -> W | None:
        """
        After the pool shrank: hand the free slot to the first waiter.
        """
        waiters = self._waiters
        if not waiters:
            return None
        waiter = next(iter(waiters))
        del waiters[waiter]
        self.size += 1
        self.creating += 1
        self._handed[waiter] = CREATE
        return waiter

    def _bury(self, entry: Entry[R], reason: str) -> None:
        self.size -= 1
        self.disposed += 1
        self._dead.append((entry, reason))

    def _reap(self, now: float) -> None:
        """
        Close the idle resources idle for longer than *max_idle* (the
        oldest are on the left).
        """
        max_idle = self.max_idle
        if max_idle is None:
            return
        idle = self._idle
        while idle and now - idle[0].idle_since >= max_idle:
            self._bury(idle.popleft(), "idle")
