"""
The bulkhead core: permits, FIFO hand-over and withdrawal.
"""

from __future__ import annotations

import collections
import math

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
        try_take grants permits, each its own token, and try_enter
        anonymous ones, max_concurrent in all; then both say no.
        """
        core: BulkheadCore[str] = BulkheadCore(3, 0)

        assert [1, 2] == [core.try_take() for _ in range(2)]
        assert core.try_enter()
        assert (0, False) == (core.try_take(), core.try_enter())
        assert BulkheadSnapshot(3, 0, 0, 3) == core.snapshot()

    def test_anonymous_permits(self):
        """
        exit gives back an anonymous permit; one too many is an error, and
        a token can be made anonymous.
        """
        core: BulkheadCore[str] = BulkheadCore(2, 0)
        core.try_enter()
        token = core.try_take()
        core.anonymize(token)

        assert core.exit() is None
        assert core.exit() is None
        with pytest.raises(RuntimeError, match="without a matching"):
            core.exit()
        with pytest.raises(RuntimeError, match="given back twice"):
            core.give_back(token)
        assert BulkheadSnapshot(0, 0, 0, 2) == core.snapshot()

    def test_queue_is_bounded(self):
        """
        enqueue refuses, and counts, once max_queue waiters are queued.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 1)
        core.try_take()

        assert core.would_queue()
        assert core.enqueue("a")
        assert not core.would_queue()
        assert not core.enqueue("b")
        assert BulkheadSnapshot(1, 1, 1, 1) == core.snapshot()

    def test_unbounded_queue_and_permits(self):
        """
        max_queue=None queues everyone; max_concurrent=inf never refuses.
        """
        core: BulkheadCore[int] = BulkheadCore(1, None)
        core.try_enter()
        unlimited: BulkheadCore[int] = BulkheadCore(math.inf, 0)

        assert all(core.enqueue(i) for i in range(10_000))
        assert all(unlimited.try_take() for _ in range(10_000))
        assert BulkheadSnapshot(1, 10_000, 0, 1) == core.snapshot()
        assert 10_000 == unlimited.in_flight

    def test_exit_hands_over_in_fifo_order(self):
        """
        exit returns the longest waiter, which takes a new token.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 3)
        token = core.try_take()
        for name in "abc":
            core.enqueue(name)

        woken = []
        for _ in range(4):
            waiter = core.give_back(token)
            woken.append(waiter)
            if waiter is not None:
                token = core.withdraw(waiter, refused=True)

        assert ["a", "b", "c", None] == woken
        assert 0 == core.in_flight

    @pytest.mark.parametrize("token", [0, 1, 7], ids=["zero", "held", "never"])
    def test_exit_without_permit(self, token):
        """
        Giving back a permit nobody holds is a bug, reported loudly.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 0)
        if token == 1:
            core.give_back(core.try_take())

        with pytest.raises(RuntimeError, match="given back twice"):
            core.give_back(token)

    def test_second_exit_never_hands_over_twice(self):
        """
        A permit given back twice while callers wait is refused the second
        time: the waiter it went to stays the only holder.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 2)
        token = core.try_take()
        core.enqueue("a")
        core.enqueue("b")

        assert "a" == core.give_back(token)
        with pytest.raises(RuntimeError):
            core.give_back(token)
        assert BulkheadSnapshot(1, 1, 0, 1) == core.snapshot()
        assert core.withdraw("b", refused=False) == 0

    def test_withdraw(self):
        """
        withdraw removes a queued waiter, and hands over the token of a
        permit that reached it first.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 2)
        core.try_enter()
        core.enqueue("a")
        core.enqueue("b")

        assert 0 == core.withdraw("b", refused=True)
        assert "a" == core.exit()
        handed = core.withdraw("a", refused=True)
        assert handed > 0
        assert BulkheadSnapshot(1, 0, 1, 1) == core.snapshot()
        assert core.give_back(handed) is None

    def test_refuse_counts(self):
        """
        refuse counts a refusal decided by the shell.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 0)
        core.refuse()

        assert 1 == core.snapshot().refused


class BulkheadMachine(RuleBasedStateMachine):
    """
    The core matches a plain reference model: the tokens held and a FIFO
    list of waiters; a token given back twice never makes a second holder.
    """

    @initialize(
        limit=st.integers(min_value=1, max_value=4),
        queue=st.none() | st.integers(min_value=0, max_value=4),
    )
    def build(self, limit: int, queue: int | None) -> None:
        self.core: BulkheadCore[int] = BulkheadCore(limit, queue)
        self.limit = limit
        self.max_queue = queue
        self.held: list[int] = []
        self.anonymous = 0
        self.returned: list[int] = []
        self.queue: collections.deque[int] = collections.deque()
        self.granted: list[int] = []
        self.next_id = 0
        self.high = 0

    def holders(self) -> int:
        return len(self.held) + self.anonymous + len(self.granted)

    @rule(anonymous=st.booleans())
    def arrive(self, anonymous: bool) -> None:
        before = self.holders()
        if anonymous:
            entered = self.core.try_enter()
            self.anonymous += entered
        else:
            token = self.core.try_take()
            entered = token > 0
            if entered:
                assert token not in self.held + self.returned
                self.held.append(token)
        if entered:
            assert before < self.limit
        else:
            assert before == self.limit
            waiter = self.next_id
            self.next_id += 1
            queued = self.core.enqueue(waiter)
            room = self.max_queue is None or len(self.queue) < self.max_queue
            assert room == queued
            if queued:
                self.queue.append(waiter)
        self.high = max(self.high, self.holders())

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(self.held))
        woken = self.core.give_back(token)
        self.held.remove(token)
        self.returned.append(token)
        if self.queue:
            expected = self.queue.popleft()
            assert expected == woken
            self.granted.append(expected)
        else:
            assert woken is None

    @precondition(lambda self: self.anonymous)
    @rule()
    def leave_anonymous(self) -> None:
        woken = self.core.exit()
        self.anonymous -= 1
        if self.queue:
            expected = self.queue.popleft()
            assert expected == woken
            self.granted.append(expected)
        else:
            assert woken is None

    @precondition(lambda self: self.returned)
    @rule(data=st.data())
    def leave_twice(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(self.returned))

        with pytest.raises(RuntimeError):
            self.core.give_back(token)

    @precondition(lambda self: self.queue)
    @rule(data=st.data())
    def give_up_queued(self, data: st.DataObject) -> None:
        waiter = data.draw(st.sampled_from(list(self.queue)))

        assert 0 == self.core.withdraw(waiter, refused=False)
        self.queue.remove(waiter)

    @precondition(lambda self: self.granted)
    @rule(data=st.data(), anonymous=st.booleans())
    def take_granted(self, data: st.DataObject, anonymous: bool) -> None:
        waiter = data.draw(st.sampled_from(self.granted))
        token = self.core.withdraw(waiter, refused=True)

        assert token not in self.held + self.returned
        self.granted.remove(waiter)
        if anonymous:
            self.core.anonymize(token)
            self.anonymous += 1
        else:
            self.held.append(token)

    @invariant()
    def counters_agree(self) -> None:
        snap = self.core.snapshot()
        assert self.holders() == snap.in_flight
        assert len(self.queue) == snap.queued
        assert self.high == snap.high_water
        assert 0 <= snap.in_flight <= self.limit
        assert self.max_queue is None or snap.queued <= self.max_queue
        assert snap.queued == 0 or snap.in_flight == self.limit


TestBulkheadMachine = BulkheadMachine.TestCase
