"""
The bounded buffer's core: policies, reservations for woken waiters, FIFO
service, and the count of every item.
"""

from __future__ import annotations

import collections

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from stalwart._core.buffer import (
    DROPPED,
    EMPTY,
    FULL,
    POLICIES,
    BufferCore,
    BufferSnapshot,
    Evicted,
    Handover,
)


class TestPolicies:
    def test_accepts_until_full(self):
        """
        A put with room is accepted and wakes nobody.
        """
        core: BufferCore[int, str] = BufferCore(2, "block")

        assert [None, None, FULL] == [core.put(i) for i in range(3)]
        assert 2 == core.depth

    def test_drop_newest_drops_the_new_item(self):
        """
        Under drop_newest a full buffer keeps its items and drops the new.
        """
        core: BufferCore[int, str] = BufferCore(1, "drop_newest")
        core.put(1)

        assert DROPPED is core.put(2)
        assert 1 == core.get(0.0)
        assert BufferSnapshot(0, 1, 1, 1, 1, 0, 0, 0) == core.snapshot()

    def test_drop_oldest_evicts_the_head(self):
        """
        Under drop_oldest a full buffer drops its oldest item for the new.
        """
        core: BufferCore[int, str] = BufferCore(2, "drop_oldest")
        core.put(1)
        core.put(2)

        assert Evicted(1) == core.put(3)
        assert [2, 3] == [core.get(0.0), core.get(0.0)]
        assert BufferSnapshot(0, 2, 3, 2, 1, 0, 0, 0) == core.snapshot()

    def test_reject_reports_full(self):
        """
        Under reject a full buffer changes nothing; the shell refuses.
        """
        core: BufferCore[int, str] = BufferCore(1, "reject")
        core.put(1)

        assert FULL is core.put(2)
        assert None is core.refuse()
        assert 1 == core.snapshot().refused


class TestPace:
    def test_no_estimate_before_two_takes(self):
        """
        retry_after cannot be estimated before the consumers took twice.
        """
        core: BufferCore[int, str] = BufferCore(3, "reject")
        for i in range(3):
            core.put(i)
        core.get(1.0)

        assert None is core.pace

    def test_smoothed_interval_between_takes(self):
        """
        The pace is an exponentially weighted mean of take intervals.
        """
        core: BufferCore[int, str] = BufferCore(4, "reject")
        for i in range(4):
            core.put(i)
        for now in (0.0, 1.0, 1.0):
            core.get(now)

        # First interval 1.0; then 1.0 + 0.2 * (0.0 - 1.0).
        assert 0.8 == core.pace
        assert 0.8 == core.refuse()

    def test_clock_going_back_counts_as_zero(self):
        """
        A take timed before the previous one counts as no interval.
        """
        core: BufferCore[int, str] = BufferCore(2, "reject")
        core.put(1)
        core.put(2)
        core.get(5.0)
        core.get(4.0)

        assert 0.0 == core.pace


class TestWaiters:
    def test_put_hands_item_to_queued_consumer(self):
        """
        An item put while consumers wait is handed to the first one; a
        newcomer cannot take it.
        """
        core: BufferCore[int, str] = BufferCore(2, "block")
        assert EMPTY is core.get(0.0)
        core.enqueue_getter("a")
        core.enqueue_getter("b")

        assert "a" == core.put(1)
        assert EMPTY is core.get(0.0)
        assert not core.withdraw_getter("a")
        assert 1 == core.depth
        assert 1 == core.complete_get("a", 0.0)

    def test_handed_item_is_not_overtaken(self):
        """
        A newcomer takes the next free item, never the older one handed to
        a woken consumer.
        """
        core: BufferCore[int, str] = BufferCore(2, "block")
        core.enqueue_getter("a")
        core.put(1)
        core.put(2)

        assert 2 == core.get(0.0)
        assert 1 == core.complete_get("a", 0.0)

    def test_handed_items_count_against_capacity(self):
        """
        Items handed to consumers that have not taken them yet still fill
        the buffer.
        """
        core: BufferCore[int, str] = BufferCore(1, "block")
        core.enqueue_getter("a")
        core.put(1)

        assert FULL is core.put(2)

    def test_drop_oldest_spares_handed_items(self):
        """
        Under drop_oldest, with every item handed to a consumer, the new
        item is the one dropped.
        """
        core: BufferCore[int, str] = BufferCore(1, "drop_oldest")
        core.enqueue_getter("a")
        core.put(1)

        assert DROPPED is core.put(2)
        assert 1 == core.complete_get("a", 0.0)

    def test_take_reserves_room_for_queued_producer(self):
        """
        A take from a full buffer reserves the freed room for the first
        blocked producer, which a newcomer cannot take.
        """
        core: BufferCore[int, str] = BufferCore(1, "block")
        core.put(1)
        core.enqueue_putter("p")
        core.enqueue_putter("q")

        assert Handover(1, "p") == core.get(0.0)
        assert FULL is core.put(9)
        assert None is core.complete_put(2)
        assert Handover(2, "q") == core.get(0.0)

    def test_woken_producer_hands_item_to_queued_consumer(self):
        """
        A woken producer's item goes to a consumer that queued meanwhile.
        """
        core: BufferCore[int, str] = BufferCore(1, "block")
        core.put(1)
        core.enqueue_putter("p")
        assert Handover(1, "p") == core.get(0.0)
        assert EMPTY is core.get(0.0)
        core.enqueue_getter("g")

        assert "g" == core.complete_put(2)
        assert 2 == core.complete_get("g", 0.0)

    def test_abandoned_item_goes_to_next_consumer(self):
        """
        A woken consumer that is cancelled hands its item to the next
        consumer, or puts it back at the head of the buffer.
        """
        core: BufferCore[int, str] = BufferCore(2, "block")
        core.enqueue_getter("a")
        core.enqueue_getter("b")
        core.put(1)

        assert "b" == core.abandon_get("a")
        core.put(2)
        assert None is core.abandon_get("b")
        assert [1, 2] == [core.get(0.0), core.get(0.0)]

    def test_abandoned_room_goes_to_next_producer(self):
        """
        A woken producer that is cancelled leaves its room for the next.
        """
        core: BufferCore[int, str] = BufferCore(1, "block")
        core.put(1)
        core.enqueue_putter("p")
        core.enqueue_putter("q")
        core.get(0.0)

        assert "q" == core.abandon_put()
        assert None is core.abandon_put()
        assert None is core.put(2)

    def test_withdraw_counts_a_timed_out_producer(self):
        """
        A producer that gives up while queued leaves; a timeout counts as
        a refusal, a cancellation does not.
        """
        core: BufferCore[int, str] = BufferCore(1, "block")
        core.put(1)
        core.enqueue_putter("p")
        core.enqueue_putter("q")

        assert core.withdraw_putter("p", refused=True)
        assert core.withdraw_putter("q", refused=False)
        assert not core.withdraw_putter("q", refused=True)
        assert 1 == core.snapshot().refused


class BufferMachine(RuleBasedStateMachine):
    """
    The core against a reference model: items come out oldest first,
    waiters are served in FIFO order, an item handed to a waiter or room
    reserved for one is never taken by a newcomer, and every item is
    counted.
    """

    @initialize(
        capacity=st.integers(min_value=1, max_value=4),
        policy=st.sampled_from(POLICIES),
    )
    def build(self, capacity, policy):
        self.capacity = capacity
        self.policy = policy
        self.core: BufferCore[int, str] = BufferCore(capacity, policy)
        self.counter = 0
        # Free items, oldest first, and items handed to woken consumers.
        self.items: collections.deque[int] = collections.deque()
        self.handed: dict[str, int] = {}
        self.taken = 0
        self.evicted = 0
        # Queued producers (waiter -> item) and consumers, in order.
        self.putters: dict[str, int] = {}
        self.getters: list[str] = []
        # Woken producers holding reserved room (waiter -> item).
        self.room: dict[str, int] = {}
        self.now = 0.0

    def _new(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def _handed_to(self, waiter: object, item: int) -> None:
        assert self.getters, waiter
        assert self.getters.pop(0) == waiter
        self.handed[waiter] = item

    def _accepted(self, outcome: object, item: int) -> None:
        if outcome is None:
            assert not self.getters
            self.items.append(item)
        else:
            self._handed_to(outcome, item)

    def _took(self, outcome: object, expected: int) -> None:
        if isinstance(outcome, Handover):
            putter = next(iter(self.putters))
            assert putter == outcome.waiter
            self.room[putter] = self.putters.pop(putter)
            outcome = outcome.item
        assert expected == outcome
        self.taken += 1

    @rule(enqueue=st.booleans())
    def put(self, enqueue):
        self.counter += 1
        item = self.counter
        outcome = self.core.put(item)
        depth = len(self.items) + len(self.handed)
        free = depth + len(self.room) < self.capacity
        if outcome is FULL:
            assert not free
            assert self.policy in ("block", "reject")
            if enqueue and self.policy == "block":
                waiter = self._new("p")
                self.core.enqueue_putter(waiter)
                self.putters[waiter] = item
            else:
                self.core.refuse()
        elif outcome is DROPPED:
            assert not free
            assert "drop_newest" == self.policy or (
                "drop_oldest" == self.policy and not self.items
            )
        elif isinstance(outcome, Evicted):
            assert not free
            assert "drop_oldest" == self.policy
            assert self.items.popleft() == outcome.item
            self.items.append(item)
            self.evicted += 1
        else:
            assert free
            self._accepted(outcome, item)

    @rule(dt=st.sampled_from([0.0, 0.5, 2.0]), enqueue=st.booleans())
    def get(self, dt, enqueue):
        self.now += dt
        outcome = self.core.get(self.now)
        if outcome is EMPTY:
            assert not self.items
            if enqueue:
                waiter = self._new("g")
                self.core.enqueue_getter(waiter)
                self.getters.append(waiter)
        else:
            self._took(outcome, self.items.popleft())

    @precondition(lambda self: self.room)
    @rule(data=st.data(), complete=st.booleans())
    def woken_producer(self, data, complete):
        waiter = data.draw(st.sampled_from(sorted(self.room)))
        # A woken waiter can no longer withdraw: it holds the room.
        assert not self.core.withdraw_putter(waiter, refused=True)
        item = self.room.pop(waiter)
        if complete:
            self._accepted(self.core.complete_put(item), item)
        else:
            outcome = self.core.abandon_put()
            if self.putters:
                first = next(iter(self.putters))
                assert first == outcome
                self.room[first] = self.putters.pop(first)
            else:
                assert None is outcome

    @precondition(lambda self: self.handed)
    @rule(data=st.data(), complete=st.booleans())
    def woken_consumer(self, data, complete):
        waiter = data.draw(st.sampled_from(sorted(self.handed)))
        assert not self.core.withdraw_getter(waiter)
        item = self.handed.pop(waiter)
        if complete:
            self._took(self.core.complete_get(waiter, self.now), item)
        else:
            outcome = self.core.abandon_get(waiter)
            if self.getters:
                self._handed_to(outcome, item)
            else:
                assert None is outcome
                self.items.appendleft(item)

    @precondition(lambda self: self.putters)
    @rule(data=st.data(), refused=st.booleans())
    def producer_gives_up(self, data, refused):
        waiter = data.draw(st.sampled_from(sorted(self.putters)))
        before = self.core.refused

        assert self.core.withdraw_putter(waiter, refused=refused)
        del self.putters[waiter]
        assert before + refused == self.core.refused

    @precondition(lambda self: self.getters)
    @rule(data=st.data())
    def consumer_gives_up(self, data):
        waiter = data.draw(st.sampled_from(self.getters))

        assert self.core.withdraw_getter(waiter)
        self.getters.remove(waiter)

    @invariant()
    def matches_model(self):
        snap = self.core.snapshot()

        assert len(self.items) + len(self.handed) == snap.depth
        assert len(self.handed) == self.core.items_handed
        assert len(self.putters) == snap.putters
        assert len(self.getters) == snap.getters
        assert len(self.room) == self.core.slots_reserved
        assert self.taken == snap.taken

    @invariant()
    def bounded(self):
        core = self.core

        assert core.depth + core.slots_reserved <= self.capacity
        assert core.high_water <= self.capacity

    @invariant()
    def waiters_only_when_needed(self):
        core = self.core
        if self.putters:
            assert self.capacity == core.depth + core.slots_reserved
        if self.getters:
            assert not self.items

    @invariant()
    def every_item_counted(self):
        snap = self.core.snapshot()

        # (That they come out oldest first is checked on every take,
        # against the model.)
        assert snap.accepted == snap.taken + snap.depth + self.evicted


TestBufferMachine = BufferMachine.TestCase
