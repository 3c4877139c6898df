"""
A retry budget: retries allowed up to a ratio of recent calls plus a small
reserve, over a sliding time window.

The window is split into *slots* buckets of equal width, so memory and the
cost of every operation are bounded by *slots* whatever the traffic; the
window therefore slides in steps of ``window / slots``.
"""

from __future__ import annotations

import math

import attrs


_HUGE = 2.0**62  # slot indices stay small ints, cheap to compare


@attrs.define
class BudgetCore:
    """
    Count calls and retries per slot; allow a retry while
    ``retries + 1 <= ratio * calls + min_per_second * window`` over the
    last *window* seconds.

    Attributes:
        ratio: Retries allowed per call made.
        min_per_second: Retries always allowed per second of window, even
            without calls (so a quiet service can still retry).
        window: The span remembered, in seconds.
        slots: How many buckets the window is split into.
    """

    ratio: float
    min_per_second: float
    window: float
    slots: int = 10
    _width: float = attrs.field(init=False)
    _calls: list[int] = attrs.field(init=False)
    _retries: list[int] = attrs.field(init=False)
    _head: int | None = attrs.field(init=False, default=None)
    _total_calls: int = attrs.field(init=False, default=0)
    _total_retries: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        self._width = self.window / self.slots
        self._calls = [0] * self.slots
        self._retries = [0] * self.slots

    def _slot(self, now: float) -> int:
        """
        Slide the window to *now* and return the position of its slot.
        """
        head = self._head
        position = now / self._width
        # A time no slot index can hold (a clock at +/-inf or NaN) counts
        # in the newest slot, as a clock that went backwards does.
        if -_HUGE < position < _HUGE:
            index = math.floor(position)
            if head is None or index > head:
                head = self._roll(head, index)
        elif head is None:
            head = self._roll(None, 0)
        return head % self.slots

    def _roll(self, head: int | None, index: int) -> int:
        """
        Empty the slots between *head* and *index*; make *index* the head.
        """
        if head is not None:
            calls, retries, slots = self._calls, self._retries, self.slots
            for step in range(1, min(index - head, slots) + 1):
                pos = (head + step) % slots
                self._total_calls -= calls[pos]
                self._total_retries -= retries[pos]
                calls[pos] = retries[pos] = 0
        self._head = index
        return index

    def allowance(self, now: float) -> float:
        """
        Return how many more retries the budget allows at *now*.
        """
        self._slot(now)
        return max(
            0.0,
            self.ratio * self._total_calls
            + self.min_per_second * self.window
            - self._total_retries,
        )

    def deposit(self, now: float) -> None:
        """
        Count one call (a first attempt) made at *now*.
        """
        pos = self._slot(now)
        self._calls[pos] += 1
        self._total_calls += 1

    def withdraw(self, now: float) -> bool:
        """
        Take one retry from the budget at *now* if it allows one.

        Returns:
            Whether the retry may go ahead; a refused retry is not counted.
        """
        pos = self._slot(now)
        if (
            self._total_retries + 1
            > self.ratio * self._total_calls
            + self.min_per_second * self.window
        ):
            return False
        self._retries[pos] += 1
        self._total_retries += 1
        return True

    @property
    def calls(self) -> int:
        """
        Calls counted in the window as of the last operation.
        """
        return self._total_calls

    @property
    def retries(self) -> int:
        """
        Retries counted in the window as of the last operation.
        """
        return self._total_retries
