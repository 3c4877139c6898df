"""
The bulkhead core: permits, FIFO hand-over and withdrawal.
"""

from __future__ import annotations

import collections

import pytest

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from stalwart._core.bulkhead import BulkheadCore, BulkheadSnapshot


class TestBulkheadCore:
    def test_enter_until_full(self):
        """
        try_enter grants max_concurrent permits, then says no.
        """
        core: BulkheadCore[str] = BulkheadCore(2, 0)

        assert [True, True, False] == [core.try_enter() for _ in range(3)]
        assert BulkheadSnapshot(2, 0, 0, 2) == core.snapshot()

    def test_queue_is_bounded(self):
        """
        enqueue refuses, and counts, once max_queue waiters are queued.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 1)
        core.try_enter()

        assert core.enqueue("a")
        assert not core.enqueue("b")
        assert BulkheadSnapshot(1, 1, 1, 1) == core.snapshot()

    def test_exit_hands_over_in_fifo_order(self):
        """
        exit returns the longest waiter, keeping the permit in use.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 3)
        core.try_enter()
        for name in "abc":
            core.enqueue(name)

        assert ["a", "b", "c", None] == [core.exit() for _ in range(4)]
        assert 0 == core.in_flight

    def test_exit_without_permit(self):
        """
        Giving back a permit nobody holds is a bug, reported loudly.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 0)

        with pytest.raises(RuntimeError, match="without a matching"):
            core.exit()

    def test_withdraw(self):
        """
        withdraw removes a queued waiter, and tells when a permit won.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 2)
        core.try_enter()
        core.enqueue("a")
        core.enqueue("b")

        assert core.withdraw("b", refused=True)
        assert "a" == core.exit()
        assert not core.withdraw("a", refused=True)
        assert BulkheadSnapshot(1, 0, 1, 1) == core.snapshot()

    def test_refuse_counts(self):
        """
        refuse counts a refusal decided by the shell.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 0)
        core.refuse()

        assert 1 == core.snapshot().refused


class BulkheadMachine(RuleBasedStateMachine):
    """
    The core matches a plain reference model: a permit count and a FIFO
    list of waiters.
    """

    @initialize(
        limit=st.integers(min_value=1, max_value=4),
        queue=st.integers(min_value=0, max_value=4),
    )
    def build(self, limit: int, queue: int) -> None:
        self.core: BulkheadCore[int] = BulkheadCore(limit, queue)
        self.limit = limit
        self.max_queue = queue
        self.holders = 0
        self.queue: collections.deque[int] = collections.deque()
        self.granted: list[int] = []
        self.next_id = 0
        self.high = 0

    @rule()
    def arrive(self) -> None:
        if self.core.try_enter():
            assert self.holders < self.limit
            self.holders += 1
        else:
            assert self.holders == self.limit
            waiter = self.next_id
            self.next_id += 1
            queued = self.core.enqueue(waiter)
            assert (len(self.queue) < self.max_queue) == queued
            if queued:
                self.queue.append(waiter)
        self.high = max(self.high, self.holders)

    @precondition(lambda self: self.holders > 0)
    @rule()
    def leave(self) -> None:
        woken = self.core.exit()
        if self.queue:
            expected = self.queue.popleft()
            assert expected == woken
            self.granted.append(expected)
        else:
            assert woken is None
            self.holders -= 1

    @precondition(lambda self: self.queue)
    @rule(data=st.data())
    def give_up_queued(self, data: st.DataObject) -> None:
        waiter = data.draw(st.sampled_from(list(self.queue)))

        assert self.core.withdraw(waiter, refused=False)
        self.queue.remove(waiter)

    @precondition(lambda self: self.granted)
    @rule(data=st.data())
    def give_up_granted(self, data: st.DataObject) -> None:
        waiter = data.draw(st.sampled_from(self.granted))

        assert not self.core.withdraw(waiter, refused=True)
        self.granted.remove(waiter)

    @invariant()
    def counters_agree(self) -> None:
        snap = self.core.snapshot()

        assert self.holders == snap.in_flight
        assert len(self.queue) == snap.queued
        assert self.high == snap.high_water
        assert 0 <= snap.in_flight <= self.limit
        assert snap.queued <= self.max_queue
        assert snap.queued == 0 or snap.in_flight == self.limit


TestBulkheadMachine = BulkheadMachine.TestCase
