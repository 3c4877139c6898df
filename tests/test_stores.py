"""
The in-memory store: per-key state, eviction of idle keys only, and the
operations a store offers (decide, cancel, peek, reset, clear).
"""

from __future__ import annotations

import pytest

from stalwart import _stores
from stalwart._core.limits import (
    BucketAlgorithm,
    FixedWindowAlgorithm,
    MultiRateAlgorithm,
    SlidingWindowCounterAlgorithm,
    SlidingWindowLogAlgorithm,
)
from stalwart._stores import BucketCell, Cell, MemoryStore


def bucket_store(rate=1.0, capacity=1.0):
    """
    A store of buckets, with the bucket cells the limiters use.
    """
    return MemoryStore(BucketAlgorithm(rate, capacity), BucketCell)


class TestKeys:
    def test_keys_independent_and_counted(self):
        """
        Each key has its own state; grants and refusals are counted.
        """
        store = MemoryStore(FixedWindowAlgorithm(1.0, 10.0))

        a = store.decide("a", 0.0, 1, 0.0)
        b = store.decide("b", 0.0, 1, 0.0)
        again = store.decide("a", 0.0, 1, 0.0)

        assert (True, 0.0, 0, 10.0, 1, None) == a
        assert (True, 0.0, 0, 10.0, 1, None) == b
        assert (False, 10.0, 0, 10.0, 1, None) == again
        assert ((2, 1), 2) == (store.counts(), len(store))

    def test_default_key_apart(self):
        """
        The default key has its own cell, outside the keys' table.
        """
        store = bucket_store()

        store.decide(None, 0.0, 1, 0.0)

        assert 0 == len(store)
        assert (1, 0) == store.counts()
        assert (0.0, 1.0, float("-inf")) == store.default.state


class TestEviction:
    def test_idle_keys_forgotten_live_ones_kept(self):
        """
        Once a generation is over, its idle keys are forgotten as new keys
        come in, and a live key is kept (its limit is never reset).
        """
        store = bucket_store(rate=1.0, capacity=2.0)
        store.decide("old", 0.0, 1, 0.0)  # idle at 1.0
        store.decide("live", 0.5, 2, 0.0)  # idle at 2.5

        store.decide("new", 2.1, 1, 0.0)  # the first generation is over
        store.decide("newer", 2.2, 1, 0.0)

        assert 3 == len(store)
        assert (False, 2.5) == store.decide("live", 2.2, 2, 0.0)[:2]

    def test_a_busy_key_does_not_hold_up_the_others(self):
        """
        A hundred waiters on one key, then twenty thousand keys, then ten
        seconds, then twenty thousand new keys: about twenty thousand and
        one keys are held, not forty thousand.
        """
        store = MemoryStore(BucketAlgorithm(10.0, 10.0), BucketCell)
        for _ in range(100):
            store.decide("busy", 0.0, 10, float("inf"))
        for key in range(20_000):
            store.decide(key, 0.0, 1, 0.0)
        peak = len(store)

        for key in range(20_000, 40_000):
            store.decide(key, 10.0, 1, 0.0)

        assert 20_001 == peak
        assert 20_001 == len(store)
        assert store.decide("busy", 10.0, 1, 0.0)[4] == 10  # still there
        assert not store.decide("busy", 10.0, 1, 0.0)[0]

    def test_a_large_drained_bucket_does_not_hold_up_the_others(self):
        """
        A key whose bucket takes long to drain is carried from generation
        to generation while the idle keys around it are forgotten.
        """
        store = MemoryStore(BucketAlgorithm(1.0, 1000.0), BucketCell, 1.0)
        store.decide("big", 0.0, 1000, 0.0)  # idle at 1000 s
        for key in range(100):
            store.decide(key, 0.0, 1, 0.0)  # idle at 1 s

        for key in range(100, 200):
            store.decide(key, 2.0 + key / 100, 1, 0.0)

        assert "big" in store.cells
        assert 101 == len(store)

    def test_every_key_looked_at_within_two_generations(self):
        """
        With steady traffic, a key idle for two generations is gone.
        """
        store = MemoryStore(FixedWindowAlgorithm(5.0, 1.0))
        for key in range(1000):
            store.decide(key, 0.5, 1, 0.0)

        for step in range(3000):
            store.decide("tick", 1.5 + step / 1000, 1, 0.0)

        assert ["tick"] == list(store.cells)
        assert 1 == len(store)

    def test_many_keys_are_freed(self):
        """
        A hundred thousand keys hit once are forgotten once idle, a batch
        per call, and their tables with them.
        """
        store = MemoryStore(FixedWindowAlgorithm(5.0, 1.0))
        for key in range(100_000):
            store.decide(key, 0.5, 1, 0.0)
        peak = len(store)

        calls = 0
        while len(store) > 1:
            store.decide("tick", 2.0, 1, 0.0)
            calls += 1

        assert 100_000 == peak
        assert 1 == len(store)
        assert calls <= 100_000 / _stores.SWEEP_BATCH + 1
        assert [] == store._older

    def test_a_key_with_a_queue_is_kept(self):
        """
        A key whose reservation is still queued is never forgotten, even if
        its state says idle.
        """
        store = MemoryStore(SlidingWindowLogAlgorithm(1.0, 100.0), Cell, 1.0)
        store.decide("k", 0.0, 1, 0.0)
        *_, reservation = store.decide("k", 0.0, 1, 100.0)
        reservation.cell.state = store.algorithm.fresh()

        for key in range(100):
            store.decide(key, 5.0, 1, 0.0)

        assert "k" in store.cells

    def test_forgotten_keys_keep_their_counts(self):
        """
        The counters of forgotten keys stay in the statistics.
        """
        store = MemoryStore(FixedWindowAlgorithm(1.0, 1.0))
        store.decide("a", 0.0, 1, 0.0)
        store.decide("a", 0.0, 1, 0.0)
        for key in range(50):
            store.decide(key, 3.0, 1, 0.0)

        assert "a" not in store.cells
        assert (51, 1) == store.counts()


class TestOperations:
    def test_peek_changes_nothing(self):
        """
        Peek tells what a request would get, for the default key, a known
        key and an unknown one, and changes no state.
        """
        store = MemoryStore(SlidingWindowLogAlgorithm(2.0, 10.0))
        store.decide(None, 0.0, 1, 0.0)
        store.decide("k", 0.0, 2, 0.0)

        default = store.peek(None, 1.0, 1)
        known = store.peek("k", 1.0, 1)
        unknown = store.peek("x", 1.0, 1)

        assert (True, 1.0, 0, 10.0, 2, None) == default
        assert (False, 10.0, 0, 9.0, 2, None) == known
        assert (True, 1.0, 1, 10.0, 2, None) == unknown
        assert 1 == len(store.default.state)
        assert ((2, 0), 1) == (store.counts(), len(store))

    def test_reset_forgets_one_key(self):
        """
        Reset forgets one key's state and the key itself.
        """
        store = bucket_store()
        store.decide("a", 0.0, 1, 0.0)
        store.decide("b", 0.0, 1, 0.0)
        store.decide(None, 0.0, 1, 0.0)

        store.reset("a", 0.0)
        store.reset(None, 0.0)
        store.reset("unknown", 0.0)

        assert store.decide("a", 0.0, 1, 0.0)[0]
        assert store.decide(None, 0.0, 1, 0.0)[0]
        assert not store.decide("b", 0.0, 1, 0.0)[0]

    def test_clear_forgets_every_key(self):
        """
        Clear forgets every key, the default one included; counters stay.
        """
        store = bucket_store()
        for key in (None, "a", "b"):
            store.decide(key, 0.0, 1, 0.0)

        store.clear(0.0)

        assert 0 == len(store)
        assert all(store.decide(key, 0.0, 1, 0.0)[0] for key in (None, "a"))
        assert (5, 0) == store.counts()

    def test_refuse_counts(self):
        """
        A request refused before the algorithm is asked is counted.
        """
        store = bucket_store()

        store.refuse(None, 0.0)
        store.refuse("k", 0.0)

        assert (0, 2) == store.counts()


class TestRescheduling:
    def test_cancel_moves_the_waiters_behind_up(self):
        """
        A cancelled reservation's waiters behind it are booked again at
        once, as early as if it had never asked, in the same order.
        """
        store = bucket_store(rate=1.0, capacity=1.0)
        store.decide(None, 0.0, 1, 0.0)
        *_, a = store.decide(None, 0.0, 1, 10.0)
        *_, b = store.decide(None, 0.0, 1, 10.0)
        *_, c = store.decide(None, 0.0, 1, 10.0)

        moved = store.cancel(a, 0.5)

        assert [b, c] == moved
        assert (1.0, 2.0) == (b.slot, c.slot)
        assert [b, c] == store.default.queue
        assert (3, 0) == store.counts()

    def test_cancel_after_the_slot_refunds(self):
        """
        A reservation given back after its slot refunds its cost (exactly,
        if nothing was booked after it).
        """
        store = bucket_store(rate=1.0, capacity=1.0)
        store.decide(None, 0.0, 1, 0.0)
        *_, a = store.decide(None, 0.0, 1, 10.0)

        moved = store.cancel(a, 1.0)

        assert [] == moved
        assert (0.0, 1.0, float("-inf")) == store.default.state
        assert store.default.queue is None

    def test_cancel_after_the_slot_moves_the_waiters_behind(self):
        """
        A reservation given back after its slot, with another still
        waiting behind it, refunds its cost and books that waiter again at
        the earliest time the limit now allows.
        """
        store = bucket_store(rate=1.0, capacity=1.0)
        store.decide(None, 0.0, 1, 0.0)
        *_, a = store.decide(None, 0.0, 1, 10.0)
        *_, b = store.decide(None, 0.0, 1, 10.0)

        moved = store.cancel(a, 1.5)

        assert [b] == moved
        assert 1.5 == b.slot
        assert (2, 0) == store.counts()

    def test_cancel_of_a_forgotten_key(self):
        """
        A reservation on a key since forgotten only uncounts its grant.
        """
        store = MemoryStore(FixedWindowAlgorithm(1.0, 1.0))
        store.decide("k", 0.0, 1, 0.0)
        *_, a = store.decide("k", 0.0, 1, 10.0)
        for key in range(100):
            store.decide(key, 5.0, 1, 0.0)

        moved = store.cancel(a, 5.0)

        assert [] == moved
        assert a.cell.evicted
        assert (101, 0) == store.counts()

    @pytest.mark.parametrize(
        "algorithm",
        [
            BucketAlgorithm(1.0, 2.0),
            FixedWindowAlgorithm(2.0, 1.0),
            SlidingWindowLogAlgorithm(2.0, 1.0),
            SlidingWindowCounterAlgorithm(2.0, 1.0),
            MultiRateAlgorithm(
                (BucketAlgorithm(1.0, 2.0), FixedWindowAlgorithm(3.0, 2.0))
            ),
        ],
        ids=["bucket", "fixed", "log", "counter", "multi"],
    )
    def test_reset_rebooks_the_waiters(self, algorithm):
        """
        Resetting a key with waiters books them again on a fresh state: the
        first goes at once, the others keep their order.
        """
        store = MemoryStore(algorithm)
        store.decide(None, 0.0, 2, 0.0)
        *_, a = store.decide(None, 0.0, 1, 10.0)
        *_, b = store.decide(None, 0.0, 2, 10.0)

        moved = store.reset(None, 0.0)

        assert [a, b] == moved
        assert 0.0 == a.slot
        assert a.slot <= b.slot


class TestKeysInOlderGenerations:
    def test_peek_and_reset_find_them(self):
        """
        A key of a past generation not yet looked at is found by peek and
        reset.
        """
        store = MemoryStore(FixedWindowAlgorithm(1.0, 100.0), Cell, 1.0)
        for key in range(40):
            store.decide(key, 0.0, 1, 0.0)
        store.decide("new", 5.0, 1, 0.0)  # looks at 16 of the 40
        assert 0 not in store.cells

        peeked = store.peek(0, 5.0, 1)
        unknown = store.peek("never", 5.0, 1)
        store.reset(0, 5.0)

        assert (False, True) == (peeked[0], unknown[0])
        assert store.decide(0, 5.0, 1, 0.0)[0]

    def test_reset_and_clear_keep_keys_with_waiters(self):
        """
        A key with waiters is rebooked, not forgotten, by reset and clear.
        """
        store = bucket_store()
        for key in ("a", "b"):
            store.decide(key, 0.0, 1, 0.0)
            for _ in range(3):
                store.decide(key, 0.0, 1, 10.0)

        store.reset("a", 0.0)
        store.clear(0.0)

        assert {"a", "b"} == set(store.cells)
        assert [1.0] == [r.slot for r in store.cells["a"].queue]
        assert [1.0, 2.0] == [r.slot for r in store.cells["b"].queue]
