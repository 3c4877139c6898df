"""
Reservations move up: when a waiter gives its place back (cancelled,
interrupted), the waiters behind it are served as early as if it had never
asked, in the order they asked; on every algorithm, for tasks and threads.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from hypothesis import assume, given
from hypothesis import strategies as st

from limiter_support import ALL, IDS
from stalwart import (
    FixedWindow,
    SlidingWindowLog,
    SystemClock,
    TokenBucket,
)
from stalwart._stores import MemoryStore
from stalwart.testing import FakeClock
from strategies_limiters import TOL, any_algorithm, costs


class TestTheIssueExample:
    def test_waiters_behind_a_cancelled_one_move_up_in_order(self):
        """
        A (cost 3) waits, B and C wait behind it; A is cancelled: B is
        served at once and C next, and D, who asks after, is served after
        C (never before B).
        """
        clock = FakeClock()
        bucket = TokenBucket(rate=1, capacity=3, clock=clock)
        bucket.try_acquire(3)
        served = {}

        async def waiter(name, cost):
            await bucket.aacquire(cost)
            served[name] = clock.now()

        async def main():
            a = asyncio.ensure_future(waiter("A", 3))
            b = asyncio.ensure_future(waiter("B", 1))
            c = asyncio.ensure_future(waiter("C", 1))
            for _ in range(3):
                await asyncio.sleep(0)  # every one is booked
            clock.advance(1.0)
            a.cancel()
            await asyncio.sleep(0)
            d = asyncio.ensure_future(waiter("D", 1))
            await asyncio.gather(a, b, c, d, return_exceptions=True)
            return a.cancelled()

        cancelled = asyncio.run(main())

        assert cancelled
        assert {"B": 1.0, "C": 2.0, "D": 3.0} == served


class TestTasks:
    @pytest.mark.parametrize("cls", ALL, ids=IDS)
    @pytest.mark.parametrize("position", [0, 1, 2])
    def test_every_algorithm(self, cls, position):
        """
        With five tasks waiting, cancelling one serves the others at the
        times a run without it gives, in the order they asked.
        """
        clock = FakeClock()
        limiter = cls(rate=(2, 4.0), clock=clock)
        limiter.try_acquire(2)
        served = {}

        async def waiter(i):
            await limiter.aacquire()
            served[i] = clock.now()

        async def main():
            tasks = [asyncio.ensure_future(waiter(i)) for i in range(5)]
            await asyncio.sleep(0)
            tasks[position].cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(main())

        assert run_without(cls, 5, position) == served
        assert sorted(served) == list(served)

    def test_a_cancelled_sleeper_wakes_the_next_at_once(self):
        """
        The next waiter does not sleep out its old slot: it wakes when the
        one before it is cancelled.
        """
        clock = FakeClock()
        window = FixedWindow(rate=(1, 60.0), clock=clock)
        window.try_acquire()
        order = []

        async def waiter(name):
            await window.aacquire()
            order.append((name, clock.now()))

        async def main():
            first = asyncio.ensure_future(waiter("first"))
            second = asyncio.ensure_future(waiter("second"))
            await asyncio.sleep(0)
            first.cancel()
            await asyncio.gather(first, second, return_exceptions=True)

        asyncio.run(main())

        assert [("second", 60.0)] == order


def run_without(cls, count, skip):
    """
    The times at which *count* waiters but *skip* are served when *skip*
    never asked.
    """
    clock = FakeClock()
    limiter = cls(rate=(2, 4.0), clock=clock)
    limiter.try_acquire(2)
    served = {}

    async def waiter(i):
        await limiter.aacquire()
        served[i] = clock.now()

    async def main():
        await asyncio.gather(*(waiter(i) for i in range(count) if i != skip))

    asyncio.run(main())
    return served


class ParkingClock(SystemClock):
    """
    A system clock whose time stands still, whose waiting threads block
    until woken, and which can interrupt one of them (as Ctrl+C would).
    """

    def __init__(self):
        super().__init__()
        self.now = FakeClock(100.0).now
        self._lock = threading.Lock()
        self.waiting = {}
        self._interrupt = set()

    def wait_event(self, event, until):
        """
        Block until *event* is set; raise KeyboardInterrupt if this thread
        was interrupted meanwhile.
        """
        me = threading.get_ident()
        with self._lock:
            self.waiting[me] = event
        event.wait()
        with self._lock:
            del self.waiting[me]
            if me in self._interrupt:
                raise KeyboardInterrupt

    def interrupt(self, ident):
        """
        Interrupt the thread *ident* in its wait.
        """
        with self._lock:
            self._interrupt.add(ident)
            self.waiting[ident].set()

    def parked(self, count):
        """
        Whether *count* threads are waiting.
        """
        with self._lock:
            return len(self.waiting) == count


def _spin_until(predicate):
    while not predicate():  # a state, never a duration
        pass


class TestThreads:
    @pytest.mark.parametrize("cls", ALL, ids=IDS)
    def test_an_interrupted_thread_hands_its_place_on(self, cls):
        """
        Thread A waits, thread B waits behind it; A is interrupted: B is
        woken and served at once, as if A had never asked.
        """
        clock = ParkingClock()
        limiter = cls(rate=(2, 3600.0), clock=clock)
        limiter.try_acquire()
        outcome = {}

        def ask(name, cost):
            try:
                limiter.acquire(cost)
            except KeyboardInterrupt:
                outcome[name] = "interrupted"
            else:
                outcome[name] = "served"

        a = threading.Thread(target=ask, args=("A", 2))
        a.start()
        _spin_until(lambda: clock.parked(1))
        b = threading.Thread(target=ask, args=("B", 1))
        b.start()
        _spin_until(lambda: clock.parked(2))

        clock.interrupt(a.ident)
        a.join()
        b.join()

        assert {"A": "interrupted", "B": "served"} == outcome
        assert not limiter.try_acquire()
        assert 2 == limiter.statistics().granted

    def test_a_cancelled_task_wakes_a_thread(self):
        """
        A task and a thread wait on one limiter: cancelling the task wakes
        the thread behind it.
        """
        clock = ParkingClock()
        bucket = TokenBucket(rate=(1, 3600.0), capacity=2, clock=clock)
        bucket.try_acquire()
        done = threading.Event()
        served = []

        def thread():
            bucket.acquire()
            served.append("thread")

        async def main():
            task = asyncio.ensure_future(bucket.aacquire(2))
            await asyncio.sleep(0)  # the task is booked first
            worker = threading.Thread(target=thread)
            worker.start()
            await asyncio.to_thread(_spin_until, lambda: clock.parked(1))
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.to_thread(worker.join)
            done.set()

        asyncio.run(main())

        assert done.is_set()
        assert ["thread"] == served


class TestExactRefund:
    def test_fractional_costs_on_a_sliding_log(self):
        """
        Two thirds taken, then an interrupted wait for a half: the log is
        exactly as it was, and the next half waits for the same slot.
        """

        class Interrupting(FakeClock):
            def sleep(self, seconds):
                raise KeyboardInterrupt

        clock = Interrupting()
        log = SlidingWindowLog(rate=(1, 10), clock=clock)
        log.try_acquire(1 / 3)
        log.try_acquire(1 / 3)
        before = log.peek(0.5)

        with pytest.raises(KeyboardInterrupt):
            log.acquire(0.5)

        assert before == log.peek(0.5)
        assert log.try_acquire(1 / 3)


operations = st.lists(st.tuples(costs, st.booleans()), min_size=1, max_size=12)


class TestEveryAlgorithmProperty:
    @given(any_algorithm(), operations, st.data())
    def test_cancel_at_once_is_as_if_never_asked(self, algorithm, ops, data):
        """
        Waiters booked at one instant, one of them cancelled at that
        instant: the others' slots are those of a run without it.
        """
        store = MemoryStore(algorithm)
        store.decide(None, 0.0, algorithm.capacity, 0.0)  # full
        asked = []
        for cost, _ in ops:
            if cost > algorithm.capacity:
                continue
            *_, reservation = store.decide(None, 0.0, cost, float("inf"))
            if reservation is not None:
                asked.append(reservation)
        assume(asked)
        victim = data.draw(st.sampled_from(asked))

        store.cancel(victim, 0.0)

        model = MemoryStore(algorithm)
        model.decide(None, 0.0, algorithm.capacity, 0.0)
        expected = [
            model.decide(None, 0.0, r.cost, float("inf"))[1]
            for r in asked
            if r is not victim
        ]
        assert expected == [r.slot for r in asked if r is not victim]

    @given(any_algorithm(), operations, st.data())
    def test_cancel_later_moves_up_never_back(self, algorithm, ops, data):
        """
        A cancellation at any later time moves every waiter to a slot no
        later than before and no earlier than a run without the cancelled
        one gives (to rounding), keeps their order, and reports the ones
        that moved.
        """
        store = MemoryStore(algorithm)
        store.decide(None, 0.0, algorithm.capacity, 0.0)
        asked = []
        for cost, _ in ops:
            if cost > algorithm.capacity:
                continue
            *_, reservation = store.decide(None, 0.0, cost, float("inf"))
            if reservation is not None:
                asked.append(reservation)
        assume(asked)
        victim = data.draw(st.sampled_from(asked))
        when = data.draw(st.integers(0, 16).map(lambda n: n / 4))
        old = {id(r): r.slot for r in asked}
        without = run_store_without(algorithm, asked, victim)

        moved = store.cancel(victim, when)

        rest = [r for r in asked if r is not victim]
        slots = [r.slot for r in rest]
        assert slots == sorted(slots)
        for r, earliest in zip(rest, without, strict=True):
            assert earliest - TOL <= r.slot <= old[id(r)]
            assert (r in moved) == (r.slot != old[id(r)])


def run_store_without(algorithm, asked, victim):
    """
    The slots the waiters but *victim* get when *victim* never asked.
    """
    model = MemoryStore(algorithm)
    model.decide(None, 0.0, algorithm.capacity, 0.0)
    return [
        model.decide(None, 0.0, r.cost, float("inf"))[1]
        for r in asked
        if r is not victim
    ]
