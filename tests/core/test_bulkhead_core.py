"""
The bulkhead core: permits with costs against a limit that may change,
FIFO hand-over, reservations at the head of the queue, and withdrawal.
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
        anonymous ones, up to the limit in all; then both say no.
        """
        core: BulkheadCore[str] = BulkheadCore(3, 0)

        assert [1, 2] == [core.try_take() for _ in range(2)]
        assert core.try_enter()
        assert (0, False) == (core.try_take(), core.try_enter())
        assert BulkheadSnapshot(3, 0, 0, 3, 3, 0, 3) == core.snapshot()

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
        assert BulkheadSnapshot(0, 0, 0, 2, 0, 0, 2) == core.snapshot()

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
        assert BulkheadSnapshot(1, 1, 1, 1, 1, 1, 1) == core.snapshot()

    def test_unbounded_queue_and_permits(self):
        """
        max_queue=None queues everyone; an infinite limit never refuses.
        """
        core: BulkheadCore[int] = BulkheadCore(1, None)
        core.try_enter()
        unlimited: BulkheadCore[int] = BulkheadCore(math.inf, 0)

        assert all(core.enqueue(i) for i in range(10_000))
        assert all(unlimited.try_take() for _ in range(10_000))
        assert (1, 10_000) == (core.in_flight, core.snapshot().queued)
        assert 10_000 == unlimited.in_flight

    def test_exit_hands_over_in_fifo_order(self):
        """
        Each permit given back goes to the longest waiter, as a new token.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 3)
        token = core.try_take()
        for name in "abc":
            core.enqueue(name)

        woken = []
        for _ in range(4):
            served = core.give_back(token)
            woken.append(served)
            if served is not None:
                token, _ = core.withdraw(served[0], refused=True)

        assert [["a"], ["b"], ["c"], None] == woken
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

        assert ["a"] == core.give_back(token)
        with pytest.raises(RuntimeError):
            core.give_back(token)
        assert (1, 1) == (core.in_flight, core.snapshot().queued)
        assert (0, None) == core.withdraw("b", refused=False)

    def test_withdraw(self):
        """
        withdraw removes a queued waiter, and hands over the token of a
        permit that reached it first.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 2)
        core.try_enter()
        core.enqueue("a")
        core.enqueue("b")

        assert (0, None) == core.withdraw("b", refused=True)
        assert ["a"] == core.exit()
        handed, served = core.withdraw("a", refused=True)
        assert handed > 0
        assert served is None
        assert BulkheadSnapshot(1, 0, 1, 1, 1, 0, 1) == core.snapshot()
        assert core.give_back(handed) is None

    def test_refuse_counts(self):
        """
        refuse counts a refusal decided by the shell.
        """
        core: BulkheadCore[str] = BulkheadCore(1, 0)
        core.refuse()

        assert 1 == core.snapshot().refused


class TestCosts:
    def test_cost_up_to_the_limit(self):
        """
        Permits of any cost are granted while their units fit.
        """
        core: BulkheadCore[str] = BulkheadCore(10, 0)

        assert core.try_take(6)
        assert core.try_take(4)
        assert not core.try_take(1)
        assert (2, 10, 10) == (core.in_flight, core.weight, core.high_water)

    def test_small_never_overtakes_large(self):
        """
        A small request that would fit waits behind a large one that came
        first: the head reserves the free units.
        """
        core: BulkheadCore[str] = BulkheadCore(10, None)
        first = core.try_take(6)
        core.enqueue("large", 8)

        assert 0 == core.try_take(1)
        assert not core.try_enter()
        assert core.enqueue("small", 1)
        assert core.give_back(first) == ["large", "small"]
        assert 9 == core.weight

    def test_head_giving_up_lets_the_next_move_up(self):
        """
        A head that gives up passes its reservation on: those behind it
        that fit are served at once.
        """
        core: BulkheadCore[str] = BulkheadCore(10, None)
        core.try_take(6)
        core.enqueue("large", 8)
        core.enqueue("a", 2)
        core.enqueue("b", 2)
        core.enqueue("c", 2)

        assert (0, ["a", "b"]) == core.withdraw("large", refused=False)
        assert (1, 2) == (
            core.snapshot().queued,
            core.snapshot().queued_weight,
        )
        assert 10 == core.weight

    def test_last_waiter_giving_up_frees_its_reservation(self):
        """
        When the only waiter gives up, the units it reserved are free
        again.
        """
        core: BulkheadCore[str] = BulkheadCore(10, None)
        core.try_take(6)
        core.enqueue("large", 8)

        assert (0, None) == core.withdraw("large", refused=True)
        assert core.try_take(4)

    def test_raising_the_limit_serves_waiters(self):
        """
        A higher limit serves the waiters that now fit, in order.
        """
        core: BulkheadCore[str] = BulkheadCore(2, None)
        core.try_enter()
        core.try_enter()
        for name in "abc":
            core.enqueue(name)

        assert core.set_limit(4) == ["a", "b"]
        assert core.set_limit(3) is None
        assert core.set_limit(5) == ["c"]

    def test_lowering_the_limit_revokes_nothing(self):
        """
        Below what is held, a lower limit refuses newcomers until enough
        comes back.
        """
        core: BulkheadCore[str] = BulkheadCore(4, 0)
        tokens = [core.try_take() for _ in range(4)]

        assert core.set_limit(2) is None
        assert 4 == core.in_flight
        for token in tokens[:2]:
            core.give_back(token)
        assert not core.try_enter()
        core.give_back(tokens[2])
        assert core.try_enter()

    def test_cost_of(self):
        """
        cost_of tells a held permit's cost.
        """
        core: BulkheadCore[str] = BulkheadCore(10, 0)

        assert 7 == core.cost_of(core.try_take(7))


class BulkheadMachine(RuleBasedStateMachine):
    """
    The core matches a plain reference model: the permits held (with their
    costs) and a FIFO list of waiters, served strictly in order while the
    head's cost fits under the limit; a token given back twice never makes
    a second holder, the weight held never exceeds the limit, and no unit
    is lost.
    """

    @initialize(
        limit=st.integers(min_value=1, max_value=8),
        queue=st.none() | st.integers(min_value=0, max_value=4),
    )
    def build(self, limit: int, queue: int | None) -> None:
        self.core: BulkheadCore[int] = BulkheadCore(limit, queue)
        self.limit = limit
        self.max_queue = queue
        self.held: dict[int, int] = {}  # token -> cost
        self.anonymous = 0
        self.returned: list[int] = []
        self.queue: collections.deque[tuple[int, int]] = collections.deque()
        self.granted: dict[int, int] = {}  # waiter -> cost
        self.next_id = 0
        self.high = 0
        self.lowered = False

    def weight(self) -> int:
        return (
            sum(self.held.values())
            + self.anonymous
            + sum(self.granted.values())
        )

    def serve(self) -> list[int]:
        """
        What the model serves: the head while its cost fits.
        """
        served = []
        while self.queue and self.queue[0][1] <= self.limit - self.weight():
            waiter, cost = self.queue.popleft()
            self.granted[waiter] = cost
            served.append(waiter)
            self.high = max(self.high, self.weight())
        return served

    @rule(cost=st.integers(min_value=1, max_value=8), anonymous=st.booleans())
    def arrive(self, cost: int, anonymous: bool) -> None:
        if anonymous:
            cost = 1
        fits = not self.queue and self.weight() + cost <= self.limit
        if anonymous:
            entered = self.core.try_enter()
            assert fits == entered
            self.anonymous += entered
        else:
            token = self.core.try_take(cost)
            assert fits == (token > 0)
            if token:
                assert token not in self.held
                assert token not in self.returned
                self.held[token] = cost
        if fits:
            self.high = max(self.high, self.weight())
            return
        waiter = self.next_id
        self.next_id += 1
        queued = self.core.enqueue(waiter, cost)
        room = self.max_queue is None or len(self.queue) < self.max_queue
        assert room == queued
        if queued:
            self.queue.append((waiter, cost))

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(sorted(self.held)))
        served = self.core.give_back(token)
        del self.held[token]
        self.returned.append(token)

        assert self.serve() == (served or [])

    @precondition(lambda self: self.anonymous)
    @rule()
    def leave_anonymous(self) -> None:
        served = self.core.exit()
        self.anonymous -= 1

        assert self.serve() == (served or [])

    @precondition(lambda self: self.returned)
    @rule(data=st.data())
    def leave_twice(self, data: st.DataObject) -> None:
        token = data.draw(st.sampled_from(self.returned))

        with pytest.raises(RuntimeError):
            self.core.give_back(token)

    @precondition(lambda self: self.queue)
    @rule(data=st.data(), refused=st.booleans())
    def give_up_queued(self, data: st.DataObject, refused: bool) -> None:
        waiter, cost = data.draw(st.sampled_from(list(self.queue)))
        token, served = self.core.withdraw(waiter, refused=refused)
        self.queue.remove((waiter, cost))

        assert 0 == token
        assert self.serve() == (served or [])

    @precondition(lambda self: self.granted)
    @rule(data=st.data(), anonymous=st.booleans())
    def take_granted(self, data: st.DataObject, anonymous: bool) -> None:
        waiter = data.draw(st.sampled_from(sorted(self.granted)))
        token, served = self.core.withdraw(waiter, refused=True)
        cost = self.granted.pop(waiter)

        assert served is None
        assert token not in self.held
        assert token not in self.returned
        assert cost == self.core.cost_of(token)
        if anonymous and cost == 1:
            self.core.anonymize(token)
            self.anonymous += 1
        else:
            self.held[token] = cost

    @rule(limit=st.integers(min_value=1, max_value=8))
    def change_limit(self, limit: int) -> None:
        self.lowered = self.lowered or limit < self.limit
        self.limit = limit
        served = self.core.set_limit(limit)

        assert self.serve() == (served or [])

    @invariant()
    def counters_agree(self) -> None:
        snap = self.core.snapshot()
        in_flight = len(self.held) + self.anonymous + len(self.granted)
        assert in_flight == snap.in_flight
        assert self.weight() == snap.weight
        assert len(self.queue) == snap.queued
        assert sum(cost for _, cost in self.queue) == snap.queued_weight
        assert self.max_queue is None or snap.queued <= self.max_queue
        if not self.lowered:
            assert self.high == snap.high_water
            assert 0 <= snap.weight <= self.limit

    @invariant()
    def every_unit_held_or_reserved_while_anyone_waits(self) -> None:
        # Nothing is lost either: used is the weight plus the reservation,
        # which exists only for a head that does not fit.
        core = self.core
        if self.queue:
            free = self.limit - self.weight()
            assert self.queue[0][1] > free
            assert core.used == self.weight() + max(0, free)
        else:
            assert core.used == self.weight()


TestBulkheadMachine = BulkheadMachine.TestCase
