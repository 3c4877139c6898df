"""
The in-memory store: per-key state, lazy eviction of idle keys only.
"""

from __future__ import annotations

from stalwart import _stores
from stalwart._core.limits import (
    FixedWindowAlgorithm,
    SlidingWindowCounterAlgorithm,
    SlidingWindowLogAlgorithm,
    TokenBucketAlgorithm,
)
from stalwart._stores import MemoryStore


class TestMemoryStore:
    def test_keys_independent_and_counted(self):
        """
        Each key has its own state; grants and refusals are counted.
        """
        store = MemoryStore(FixedWindowAlgorithm(1.0, 10.0))

        a = store.try_acquire("a", 0.0, 1)
        b = store.try_acquire("b", 0.0, 1)
        again = store.try_acquire("a", 0.0, 1)

        assert (True, 0.0, 0, 10.0) == a
        assert (True, 0.0, 0, 10.0) == b
        assert (False, 10.0, 0, 10.0) == again
        assert (2, 1, 2) == (store.granted, store.refused, len(store))

    def test_evicts_idle_oldest_only(self):
        """
        Grants forget the oldest keys once idle, and stop at the first
        live one, so a live limit is never reset.
        """
        store = MemoryStore(TokenBucketAlgorithm(1.0, 2.0))
        store.reserve("old", 0.0, 1, 0.0)
        store.reserve("live", 0.5, 2, 0.0)

        store.reserve("new", 0.9, 1, 0.0)
        kept = len(store)
        store.reserve("new", 2.0, 1, 0.0)

        assert 3 == kept
        assert 2 == len(store)
        assert (False, 0.5) == store.try_acquire("live", 2.0, 2)[:2]

    def test_evicts_a_bounded_batch(self):
        """
        One call forgets at most EVICT_BATCH keys (amortised O(1)).
        """
        store = MemoryStore(SlidingWindowLogAlgorithm(1.0, 1.0))
        for key in range(100):
            store.reserve(key, 0.0, 1, 0.0)

        store.try_acquire("x", 5.0, 1)

        assert 101 - _stores.EVICT_BATCH == len(store)

    def test_table_shrinks(self):
        """
        Once most keys are gone the table is rebuilt smaller.
        """
        store = MemoryStore(SlidingWindowCounterAlgorithm(1.0, 1.0))
        for key in range(_stores._SHRINK_FROM * 2):
            store.reserve(key, 0.0, 1, 0.0)
        table = store._states

        while len(store) > 1:
            store.try_acquire("tick", 10.0, 1)

        assert table is not store._states
        assert 1 == len(store)

    def test_refund(self):
        """
        A refund restores the key's state; on a forgotten key it only
        uncounts the grant.
        """
        store = MemoryStore(TokenBucketAlgorithm(1.0, 1.0))
        granted, wait, before, after = store.reserve("k", 0.0, 1, 0.0)

        store.refund("k", 0.0, cost=1, before=before, after=after, slot=0.0)
        store.refund("gone", 0.0, cost=1, before=before, after=after, slot=0.0)

        assert (True, 0.0) == (granted, wait)
        assert (True, 0.0, 0, 1.0) == store.try_acquire("k", 0.0, 1)
        assert 0 == store.granted
