"""
Sliding windows of call outcomes for the circuit breaker.

Both windows keep running totals, so recording an outcome and reading the
totals are O(1): a count window is a ring of the last *size* outcomes
(grown as calls come, so its memory follows the calls seen); a
time window is a ring of *buckets* counters, each covering
``length / buckets`` seconds, and moving it forward clears at most
*buckets* counters however far time jumped.

An outcome is a small int of flags: ``FAILURE`` and/or ``SLOW`` (``0`` is a
fast success).
"""

from __future__ import annotations

import math

from typing import final


FAILURE = 1
"""Flag: the call failed."""
SLOW = 2
"""Flag: the call took at least the slow-call duration."""


@final
class CountRing:
    """
    The outcomes of the last *size* calls.

    The ring grows with the calls it is given, one byte per outcome, up to
    *size*: memory follows the calls seen, not the size asked for.
    """

    __slots__ = ("_flags", "_next", "calls", "failures", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self._flags = bytearray()
        self._next = 0
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def record(self, flags: int, now: float) -> None:
        """
        Add one outcome; the oldest drops out once the ring is full.
        """
        if self.calls < self.size:
            self._flags.append(flags)
            self.calls += 1
        else:
            index = self._next
            old = self._flags[index]
            self.failures -= old & FAILURE
            self.slow -= (old & SLOW) >> 1
            self._flags[index] = flags
            self._next = index + 1 if index + 1 < self.size else 0
        self.failures += flags & FAILURE
        self.slow += (flags & SLOW) >> 1

    def totals(self, now: float) -> tuple[int, int, int]:
        """
        Return ``(calls, failures, slow calls)`` in the window.
        """
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        """
        Forget every outcome.
        """
        self._flags = bytearray()
        self._next = 0
        self.calls = self.failures = self.slow = 0


@final
class BucketRing:
    """
    The outcomes of the last *length* seconds, in *buckets* buckets.

    Bucket ``k`` holds the outcomes recorded at times ``t`` with
    ``floor(t / width) == k``, where ``width = length / buckets``.  At time
    *now* the window holds the current bucket and the ``buckets - 1``
    before it, so an outcome recorded at ``t`` is counted while
    ``floor(now / width) - floor(t / width) < buckets``: for at most
    *length* seconds and at least ``length - width``.  A clock that goes
    backwards keeps recording into the current bucket.
    """

    __slots__ = (
        "_calls",
        "_failures",
        "_head",
        "_slow",
        "buckets",
        "calls",
        "failures",
        "length",
        "slow",
        "width",
    )

    def __init__(self, length: float, buckets: int) -> None:
        self.length = length
        self.buckets = buckets
        self.width = length / buckets
        self._calls = [0] * buckets
        self._failures = [0] * buckets
        self._slow = [0] * buckets
        # Absolute index of the current bucket; None until the first use.
        self._head: int | None = None
        self.calls = 0
        self.failures = 0
        self.slow = 0

    def _advance(self, now: float) -> int:
        """
        Move the window to *now*, clearing buckets that fell out of it, and
        return the ring slot of the current bucket.
        """
        index = math.floor(now / self.width)
        head = self._head
        if head is None:
            self._head = index
        elif index > head:
            if index - head >= self.buckets:
                self.clear()
                self._head = index
            else:
                calls, failures, slow = self._calls, self._failures, self._slow
                for absolute in range(head + 1, index + 1):
                    slot = absolute % self.buckets
                    self.calls -= calls[slot]
                    self.failures -= failures[slot]
                    self.slow -= slow[slot]
                    calls[slot] = failures[slot] = slow[slot] = 0
                self._head = index
        else:
            index = head
        return index % self.buckets

    def record(self, flags: int, now: float) -> None:
        """
        Add one outcome at time *now*.
        """
        slot = self._advance(now)
        failed = flags & FAILURE
        slow = (flags & SLOW) >> 1
        self._calls[slot] += 1
        self._failures[slot] += failed
        self._slow[slot] += slow
        self.calls += 1
        self.failures += failed
        self.slow += slow

    def totals(self, now: float) -> tuple[int, int, int]:
        """
        Return ``(calls, failures, slow calls)`` in the window at *now*.
        """
        self._advance(now)
        return self.calls, self.failures, self.slow

    def clear(self) -> None:
        """
        Forget every outcome.
        """
        self._calls = [0] * self.buckets
        self._failures = [0] * self.buckets
        self._slow = [0] * self.buckets
        self._head = None
        self.calls = self.failures = self.slow = 0
