"""
Keyed limiter state held in memory.

A store applies an algorithm of :mod:`stalwart._core.limits` to the state
of one key atomically.  A store that keeps state elsewhere (Redis, running
the same arithmetic in a Lua script) offers the same methods.

Eviction is lazy and amortised O(1), with no background thread: keys are
kept in the order they were last granted, and every call forgets up to
:data:`EVICT_BATCH` of the oldest keys whose state is indistinguishable
from a fresh key's (a full bucket, an expired window).  The oldest key
becomes idle at most one period (plus any wait it booked) after its last
grant, so the store holds only the keys granted within about one period,
and a live limit is never reset.
"""

from __future__ import annotations

import threading

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from ._core.limits import Algorithm


S = TypeVar("S")

EVICT_BATCH = 16
"""How many idle keys one grant may forget at most."""

# Rebuild the table once it holds a quarter of its peak (dicts never
# shrink on deletion); amortised O(1) against the deletions that led there.
_SHRINK_FROM = 4096


class MemoryStore(Generic[S]):
    """
    The state of every key of one limiter, in a dict, under a lock.

    The lock guards O(1) bookkeeping only (plus the eviction of at most
    :data:`EVICT_BATCH` keys).
    """

    __slots__ = (
        "_algorithm",
        "_high",
        "_lock",
        "_states",
        "granted",
        "refused",
    )

    def __init__(self, algorithm: Algorithm[S]) -> None:
        self._algorithm = algorithm
        self._lock = threading.Lock()
        self._states: OrderedDict[Hashable, S] = OrderedDict()
        self._high = 0
        self.granted = 0
        """Requests granted (refunds taken off)."""
        self.refused = 0
        """Requests refused."""

    def __len__(self) -> int:
        """
        The number of keys whose state is held.
        """
        return len(self._states)

    def reserve(
        self, key: Hashable, now: float, cost: float, max_wait: float
    ) -> tuple[bool, float, Any, Any]:
        """
        Book *cost* for *key*.

        Returns:
            ``(granted, wait, before, after)``: *wait* is the wait for the
            slot when granted, else the ``retry_after``; *before* and
            *after* are the states to hand back to :meth:`refund`.
        """
        algorithm = self._algorithm
        with self._lock:
            states = self._states
            before = states.get(key)
            if before is None:
                before = algorithm.fresh()
            granted, after, wait = algorithm.reserve(
                before, now, cost, max_wait
            )
            if granted:
                self._put(key, after, now)
                self.granted += 1
            else:
                self.refused += 1
                self._evict(now)
        return granted, wait, before, after

    def try_acquire(
        self, key: Hashable, now: float, cost: float
    ) -> tuple[bool, float, int, float]:
        """
        Take *cost* for *key* now or not at all.

        Returns:
            ``(granted, retry_after, remaining, reset_after)``.
        """
        algorithm = self._algorithm
        with self._lock:
            states = self._states
            state = states.get(key)
            if state is None:
                state = algorithm.fresh()
            granted, state, wait = algorithm.reserve(state, now, cost, 0.0)
            if granted:
                self._put(key, state, now)
                self.granted += 1
            else:
                self.refused += 1
                self._evict(now)
            remaining, reset_after = algorithm.status(state, now)
        return granted, wait, remaining, reset_after

    def refund(
        self,
        key: Hashable,
        now: float,
        *,
        cost: float,
        before: S,
        after: S,
        slot: float,
    ) -> None:
        """
        Give back a reservation made by :meth:`reserve`.
        """
        with self._lock:
            self.granted -= 1
            state = self._states.get(key)
            if state is not None:
                self._states[key] = self._algorithm.refund(
                    state,
                    now,
                    cost=cost,
                    before=before,
                    after=after,
                    slot=slot,
                )

    def _put(self, key: Hashable, state: S, now: float) -> None:
        """
        Store *state* as the newest; forget a few idle oldest keys.
        """
        states = self._states
        states[key] = state
        states.move_to_end(key)
        self._evict(now)

    def _evict(self, now: float) -> None:
        """
        Forget up to :data:`EVICT_BATCH` idle keys, oldest first.
        """
        states = self._states
        idle = self._algorithm.idle
        for _ in range(EVICT_BATCH):
            if len(states) < 2:  # keep the newest key
                break
            oldest = next(iter(states))
            if not idle(states[oldest], now):
                break
            del states[oldest]
        size = len(states)
        if size > self._high:
            self._high = size
        elif size * 4 < self._high and self._high >= _SHRINK_FROM:
            self._states = OrderedDict(states)
            self._high = size
