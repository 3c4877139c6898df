"""
The resource pool's core: lending, creation slots, FIFO hand-over,
expiry, closing, and where every resource is at every moment.
"""

from __future__ import annotations

import itertools

import pytest

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from stalwart._core.pool import (
    CLOSED,
    CREATE,
    FULL,
    Entry,
    PoolCore,
    PoolSnapshot,
)


class _Res(str):
    """
    A resource: equal to its name in asserts, lent and given back by
    identity (as the pool keys resources).
    """

    __slots__ = ()


A, B = _Res("a"), _Res("b")


def _core(
    max_size: int = 2,
    max_queue: int | None = None,
    max_idle: float | None = None,
    max_lifetime: float | None = None,
) -> PoolCore[str, str]:
    return PoolCore(max_size, max_queue, max_idle, max_lifetime)


class TestLending:
    def test_create_until_full(self):
        """
        Checkouts get creation slots up to max_size, then FULL.
        """
        core = _core(2)

        assert [CREATE, CREATE, FULL] == [core.checkout(0.0) for _ in "abc"]

    def test_reuses_most_recently_returned(self):
        """
        Idle resources are lent last in, first out.
        """
        core = _core(2)
        for res in (A, B):
            core.checkout(0.0)
            core.record_created(res, 0.0)
        core.checkin(A, 1.0, broken=False)
        core.checkin(B, 2.0, broken=False)

        assert "b" == core.checkout(3.0).resource  # type: ignore[union-attr]
        assert "a" == core.checkout(3.0).resource  # type: ignore[union-attr]

    def test_create_failed_frees_the_slot(self):
        """
        A failed creation gives its slot back.
        """
        core = _core(1)
        core.checkout(0.0)

        assert None is core.create_failed()
        assert CREATE is core.checkout(0.0)

    def test_unknown_checkin(self):
        """
        Giving back a resource the pool did not lend is a bug, reported.
        """
        core = _core(1)

        with pytest.raises(RuntimeError, match="not checked out"):
            core.checkin("x", 0.0, broken=False)

    def test_broken_is_closed(self):
        """
        A resource given back broken is closed and its slot freed.
        """
        core = _core(1)
        core.checkout(0.0)
        core.record_created(A, 0.0)

        assert None is core.checkin(A, 1.0, broken=True)
        assert [("a", "broken")] == [
            (e.resource, why) for e, why in core.take_dead()
        ]
        assert [] == core.take_dead()
        assert PoolSnapshot(0, 0, 0, 0, 1, 1, 0) == core.snapshot()

    def test_replace_keeps_the_callers_place(self):
        """
        A resource that failed validation is closed and its caller gets
        a slot at once, even with waiters queued.
        """
        core = _core(1)
        core.checkout(0.0)
        entry = core.record_created(A, 0.0)

        assert CREATE is core.replace(entry, 0.0)
        assert [("a", "invalid")] == [
            (e.resource, why) for e, why in core.take_dead()
        ]


class TestExpiry:
    def test_idle_too_long(self):
        """
        Idle resources idle for max_idle are closed at the next checkout,
        oldest first.
        """
        core = _core(2, max_idle=5.0)
        for res in (A, B):
            core.checkout(0.0)
            core.record_created(res, 0.0)
        core.checkin(A, 1.0, broken=False)
        core.checkin(B, 4.0, broken=False)

        entry = core.checkout(6.0)

        assert "b" == entry.resource  # type: ignore[union-attr]
        assert [("a", "idle")] == [
            (e.resource, why) for e, why in core.take_dead()
        ]

    def test_lifetime(self):
        """
        Resources older than max_lifetime are closed when met: at
        checkout, or when given back.
        """
        core = _core(2, max_lifetime=10.0)
        for res in (A, B):
            core.checkout(0.0)
            core.record_created(res, 0.0)
        core.checkin(A, 1.0, broken=False)

        assert None is core.checkin(B, 10.0, broken=False)
        assert CREATE is core.checkout(10.0)
        assert ["b", "a"] == [e.resource for e, _ in core.take_dead()]

    def test_expired_at_checkin_gives_slot_to_waiter(self):
        """
        A resource that comes back expired hands its slot to a waiter.
        """
        core = _core(1, max_lifetime=10.0)
        core.checkout(0.0)
        core.record_created(A, 0.0)
        core.checkout(0.0)
        core.enqueue("w")

        assert "w" == core.checkin(A, 10.0, broken=False)
        assert CREATE is core.claim("w")


class TestWaiters:
    def test_checkin_hands_resource_to_first_waiter(self):
        """
        A resource given back goes straight to the longest waiter.
        """
        core = _core(1)
        core.checkout(0.0)
        core.record_created(A, 0.0)
        core.enqueue("w1")
        core.enqueue("w2")

        assert "w1" == core.checkin(A, 1.0, broken=False)
        assert not core.withdraw("w1", refused=True)
        assert "a" == core.claim("w1").resource  # type: ignore[union-attr]
        assert 1 == core.snapshot().waiting

    def test_queue_is_bounded(self):
        """
        enqueue refuses, and counts, beyond max_queue.
        """
        core = _core(1, max_queue=1)
        core.checkout(0.0)

        assert core.enqueue("w1")
        assert not core.enqueue("w2")
        assert 1 == core.snapshot().refused

    def test_abandoned_resource_goes_on(self):
        """
        A woken waiter that gives up passes its resource to the next
        waiter, or back to the idle set.
        """
        core = _core(1)
        core.checkout(0.0)
        core.record_created(A, 0.0)
        core.enqueue("w1")
        core.enqueue("w2")
        core.checkin(A, 1.0, broken=False)

        assert "w2" == core.abandon("w1", 1.0)
        assert None is core.abandon("w2", 1.0)
        assert "a" == core.checkout(1.0).resource  # type: ignore[union-attr]

    def test_abandoned_slot_goes_on(self):
        """
        A woken waiter handed a creation slot that gives up passes the
        slot on, or frees it.
        """
        core = _core(1)
        core.checkout(0.0)
        core.enqueue("w1")
        core.enqueue("w2")

        assert "w1" == core.create_failed()
        assert "w2" == core.abandon("w1", 0.0)
        assert None is core.abandon("w2", 0.0)
        assert CREATE is core.checkout(0.0)

    def test_refuse_counts(self):
        """
        A refusal decided by the shell is counted.
        """
        core = _core(1)
        core.refuse()

        assert 1 == core.snapshot().refused

    def test_entry_repr(self):
        """
        An entry shows its resource and creation time.
        """
        assert "Entry('a', created_at=2.0)" == repr(Entry("a", 2.0))

    def test_timeout_counts_cancel_does_not(self):
        """
        A waiter that withdraws on timeout is counted as refused; one that
        is cancelled is not.
        """
        core = _core(1)
        core.checkout(0.0)
        core.enqueue("w1")
        core.enqueue("w2")

        assert core.withdraw("w1", refused=True)
        assert core.withdraw("w2", refused=False)
        assert 1 == core.snapshot().refused


class TestClose:
    def test_close(self):
        """
        Closing closes idle resources, hands CLOSED to waiters, refuses
        checkouts and closes lent resources when they come back.
        """
        core = _core(2)
        for res in (A, B):
            core.checkout(0.0)
            core.record_created(res, 0.0)
        core.checkin(A, 0.0, broken=False)
        core.checkout(0.0)  # takes "a" again
        core.enqueue("w")

        assert ["w"] == core.close()
        assert CLOSED is core.claim("w")
        assert CLOSED is core.checkout(0.0)
        assert None is core.checkin(A, 0.0, broken=False)
        assert [("a", "closed")] == [
            (e.resource, why) for e, why in core.take_dead()
        ]

    def test_close_closes_idle(self):
        """
        Closing closes every idle resource at once.
        """
        core = _core(2)
        core.checkout(0.0)
        core.record_created(A, 0.0)
        core.checkin(A, 0.0, broken=False)

        assert [] == core.close()
        assert [("a", "closed")] == [
            (e.resource, why) for e, why in core.take_dead()
        ]
        assert PoolSnapshot(0, 0, 0, 0, 1, 1, 0) == core.snapshot()

    def test_abandoned_closed_is_nothing(self):
        """
        A woken waiter handed CLOSED that gives up gives nothing back.
        """
        core = _core(1)
        core.checkout(0.0)
        core.enqueue("w")
        core.close()

        assert None is core.abandon("w", 0.0)


class PoolMachine(RuleBasedStateMachine):
    """
    Every resource is in exactly one place (idle, lent, handed to a woken
    waiter, or closed), the pool never exceeds max_size, waiters wait only
    when they must and are served in FIFO order, and nothing expired is
    ever lent.
    """

    @initialize(
        max_size=st.integers(min_value=1, max_value=3),
        max_queue=st.none() | st.integers(min_value=0, max_value=2),
        max_idle=st.none() | st.sampled_from([1.0, 3.0]),
        max_lifetime=st.none() | st.sampled_from([2.0, 5.0]),
    )
    def build(self, max_size, max_queue, max_idle, max_lifetime):
        self.cfg = (max_size, max_queue, max_idle, max_lifetime)
        self.core: PoolCore[int, str] = PoolCore(
            max_size, max_queue, max_idle, max_lifetime
        )
        self.now = 0.0
        self.ids = itertools.count()
        self.made: set[int] = set()
        self.dead: set[int] = set()
        self.lent: dict[int, Entry[int]] = {}
        self.slots = 0  # CREATE outcomes not reported yet
        self.queued: list[str] = []
        self.woken: list[str] = []

    def _bury(self) -> None:
        for entry, _ in self.core.take_dead():
            assert entry.resource not in self.dead
            self.dead.add(entry.resource)

    def _woke(self, waiter: object) -> None:
        if waiter is not None:
            assert self.queued.pop(0) == waiter
            self.woken.append(waiter)

    def _lend(self, entry: Entry[int]) -> None:
        _, _, max_idle, max_lifetime = self.cfg
        if max_idle is not None:
            assert self.now - entry.idle_since < max_idle
        if max_lifetime is not None:
            assert self.now - entry.created_at < max_lifetime
        assert entry.resource not in self.lent
        self.lent[entry.resource] = entry

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 2.5]))
    def advance(self, dt):
        self.now += dt

    @rule(enqueue=st.booleans())
    def checkout(self, enqueue):
        outcome = self.core.checkout(self.now)
        self._bury()
        if outcome is CREATE:
            self.slots += 1
        elif outcome is FULL:
            assert 0 == len(self.core._idle)
            assert self.cfg[0] == self.core.size
            if enqueue:
                waiter = f"w{next(self.ids)}"
                max_queue = self.cfg[1]
                room = max_queue is None or len(self.queued) < max_queue
                assert room == self.core.enqueue(waiter)
                if room:
                    self.queued.append(waiter)
        elif outcome is CLOSED:
            assert self.core.closed
        else:
            self._lend(outcome)

    @precondition(lambda self: self.slots)
    @rule(ok=st.booleans())
    def create(self, ok):
        self.slots -= 1
        if ok:
            resource = next(self.ids)
            self.made.add(resource)
            self._lend(self.core.record_created(resource, self.now))
        else:
            self._woke(self.core.create_failed())

    @precondition(lambda self: self.lent)
    @rule(data=st.data(), broken=st.booleans(), invalid=st.booleans())
    def give_back(self, data, broken, invalid):
        resource = data.draw(st.sampled_from(sorted(self.lent)))
        entry = self.lent.pop(resource)
        if invalid and not self.core.closed:
            outcome = self.core.replace(entry, self.now)
            self._bury()
            assert resource in self.dead
            if outcome is CREATE:
                self.slots += 1
            else:
                assert outcome is not FULL
                self._lend(outcome)  # type: ignore[arg-type]
            return
        self._woke(self.core.checkin(resource, self.now, broken=broken))
        self._bury()
        if broken:
            assert resource in self.dead

    @precondition(lambda self: self.woken)
    @rule(data=st.data(), use=st.booleans())
    def woken_waiter(self, data, use):
        waiter = data.draw(st.sampled_from(self.woken))
        self.woken.remove(waiter)
        assert not self.core.withdraw(waiter, refused=True)
        if use:
            outcome = self.core.claim(waiter)
            if outcome is CREATE:
                self.slots += 1
            elif outcome is not CLOSED:
                assert outcome is not FULL
                self.lent[outcome.resource] = outcome  # type: ignore[union-attr]
        else:
            self._woke(self.core.abandon(waiter, self.now))
            self._bury()

    @precondition(lambda self: self.queued)
    @rule(data=st.data(), refused=st.booleans())
    def waiter_gives_up(self, data, refused):
        waiter = data.draw(st.sampled_from(self.queued))

        assert self.core.withdraw(waiter, refused=refused)
        self.queued.remove(waiter)

    @rule()
    def close(self):
        woken = self.core.close()
        self._bury()

        assert self.queued == woken
        self.woken.extend(woken)
        self.queued.clear()

    @invariant()
    def every_resource_in_one_place(self):
        core = self.core
        idle = [e.resource for e in core._idle]
        handed = [
            h.resource for h in core._handed.values() if isinstance(h, Entry)
        ]
        creates = sum(1 for h in core._handed.values() if h is CREATE)
        places = idle + list(self.lent) + handed + list(self.dead)

        assert sorted(self.made) == sorted(places)
        assert core.size == len(idle) + len(self.lent) + len(handed) + (
            self.slots + creates
        )
        assert core.size <= self.cfg[0]
        assert core.creating == self.slots + creates

    @invariant()
    def waiters_only_when_needed(self):
        core = self.core
        snap = core.snapshot()

        assert len(self.queued) == snap.waiting
        if self.queued:
            assert 0 == snap.idle
            assert self.cfg[0] == core.size
        if self.cfg[1] is not None:
            assert snap.waiting <= self.cfg[1]
        if core.closed:
            assert 0 == snap.idle
            assert not self.queued

    @invariant()
    def counters(self):
        snap = self.core.snapshot()

        assert len(self.made) == snap.created
        assert len(self.dead) == snap.closed
        assert len(self.lent) == snap.in_use


TestPoolMachine = PoolMachine.TestCase
