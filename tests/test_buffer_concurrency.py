"""
BoundedBuffer under real threads and tasks sharing one buffer, with
timeouts, cancellations and every policy: every item is counted, none is
lost or duplicated, and waiters are served in FIFO order across kinds.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import random
import threading

from collections.abc import Callable

import pytest

from stalwart import (
    BoundedBuffer,
    BufferEmptyError,
    BufferFullError,
    Event,
    ItemDropped,
)
from stalwart.testing import FakeClock


def _until(predicate: Callable[[], bool]) -> None:
    """
    Spin until *predicate* holds (a state, never a duration).
    """
    while not predicate():
        pass


# The items dropped by the put running in this context (a thread, or a
# task, whose context copies the list set by its creator): hooks run
# synchronously in the context of the put that dropped.
_drops: contextvars.ContextVar[list[int]] = contextvars.ContextVar("drops")


class _Ledger:
    """
    Every item offered, put, taken and dropped, from every thread.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.put: list[int] = []
        self.not_put: list[int] = []
        self.taken: list[int] = []
        self.dropped: list[int] = []
        # Puts that returned but whose own item the policy dropped.
        self.new_dropped: list[int] = []

    def hook(self, event: Event) -> None:
        """
        Record dropped items (hooks run outside the buffer's lock).
        """
        if isinstance(event, ItemDropped):
            with self.lock:
                self.dropped.append(event.item)  # type: ignore[arg-type]
            _drops.get().append(event.item)  # type: ignore[arg-type]

    def record(self, where: list[int], item: int) -> None:
        """
        Append *item* to one of the lists.
        """
        with self.lock:
            where.append(item)

    def returned(self, item: int, drops: list[int]) -> None:
        """
        Record a put that returned; *drops* are the items its own call
        dropped.
        """
        with self.lock:
            self.put.append(item)
            if item in drops:
                self.new_dropped.append(item)


def _run_mix(policy: str, seed: int) -> tuple[_Ledger, BoundedBuffer[int]]:
    """
    Run producer and consumer threads and tasks (two event loops) against
    one small buffer, with timeouts and random cancellations, until every
    producer is done; then drain what is left.
    """
    rng = random.Random(seed)
    clock = FakeClock()
    ledger = _Ledger()
    buf: BoundedBuffer[int] = BoundedBuffer(
        capacity=3,
        when_full=policy,  # type: ignore[arg-type]
        max_wait=0.5 if policy == "block" else None,
        clock=clock,
        hooks=ledger.hook,
    )
    per_producer = 120
    producers_done = threading.Event()
    next_id = iter(range(10**9))
    id_lock = threading.Lock()

    def new_item() -> int:
        with id_lock:
            return next(next_id)

    def thread_producer() -> None:
        for _ in range(per_producer):
            item = new_item()
            drops: list[int] = []
            _drops.set(drops)
            try:
                buf.put(item)
            except BufferFullError:
                ledger.record(ledger.not_put, item)
            else:
                ledger.returned(item, drops)

    def thread_consumer() -> None:
        while True:
            try:
                item = buf.get(timeout=0.5)
            except BufferEmptyError:
                if producers_done.is_set():
                    return
            else:
                ledger.record(ledger.taken, item)

    async def task_producer(task_rng: random.Random) -> None:
        for _ in range(per_producer):
            item = new_item()
            drops: list[int] = []
            _drops.set(drops)
            put = asyncio.ensure_future(buf.aput(item))
            if task_rng.random() < 0.2:
                for _ in range(task_rng.randrange(3)):
                    await asyncio.sleep(0)
                put.cancel()
            try:
                await put
            except (BufferFullError, asyncio.CancelledError):
                ledger.record(ledger.not_put, item)
            else:
                ledger.returned(item, drops)

    async def task_consumer(task_rng: random.Random) -> None:
        while True:
            get = asyncio.ensure_future(buf.aget(timeout=0.5))
            if task_rng.random() < 0.2:
                for _ in range(task_rng.randrange(3)):
                    await asyncio.sleep(0)
                get.cancel()
            try:
                item = await get
            except asyncio.CancelledError:
                continue
            except BufferEmptyError:
                if producers_done.is_set():
                    return
            else:
                ledger.record(ledger.taken, item)

    def loop_thread(loop_seed: int) -> None:
        loop_rng = random.Random(loop_seed)

        async def main() -> None:
            producers = [
                task_producer(random.Random(loop_rng.random()))
                for _ in range(2)
            ]
            consumers = [
                task_consumer(random.Random(loop_rng.random()))
                for _ in range(2)
            ]
            await asyncio.gather(*producers)
            done_producers.release()
            await asyncio.gather(*consumers)

        asyncio.run(main())

    done_producers = threading.Semaphore(0)
    producer_threads = [
        threading.Thread(target=thread_producer) for _ in range(3)
    ]
    others = [threading.Thread(target=thread_consumer) for _ in range(2)] + [
        threading.Thread(target=loop_thread, args=(rng.random(),))
        for _ in range(2)
    ]
    for thread in producer_threads + others:
        thread.start()

    # Drive thread timeouts: fake time moves while anyone is blocked.
    def all_producers_done() -> bool:
        return not any(t.is_alive() for t in producer_threads)

    loops_done = 0
    while not all_producers_done() or loops_done < 2:
        clock.advance(0.05)
        if done_producers.acquire(blocking=False):
            loops_done += 1
    producers_done.set()
    while any(t.is_alive() for t in others):
        clock.advance(0.05)
    for thread in producer_threads + others:
        thread.join()
    while (item := buf.try_get(-1)) != -1:
        ledger.taken.append(item)
    return ledger, buf


class TestNoItemLost:
    @pytest.mark.parametrize("seed", range(4))
    @pytest.mark.parametrize(
        "policy", ["block", "drop_newest", "drop_oldest", "reject"]
    )
    def test_every_item_counted(self, policy, seed):
        """
        With threads and tasks of two loops producing and consuming, with
        timeouts and cancellations, every item taken was put exactly once,
        and every item put was taken or dropped by the policy.
        """
        ledger, buf = _run_mix(policy, seed)
        stats = buf.statistics()

        taken = collections.Counter(ledger.taken)
        assert [] == [item for item, n in taken.items() if n > 1]
        assert not set(taken) & set(ledger.not_put)
        assert 7 * 120 == len(ledger.put) + len(ledger.not_put)
        assert sorted(ledger.put) == sorted(ledger.taken + ledger.dropped)
        # A put whose own item was dropped returned, but the item never
        # went in.
        assert len(ledger.put) - len(ledger.new_dropped) == stats.accepted
        if policy == "drop_newest":
            assert sorted(ledger.new_dropped) == sorted(ledger.dropped)
        if policy in ("block", "reject"):
            assert [] == ledger.dropped
        assert len(ledger.dropped) == stats.dropped
        assert 0 == stats.depth
        assert 0 == stats.producers_waiting == stats.consumers_waiting
        assert 0 == buf._core.items_handed == buf._core.slots_reserved


class TestMixedFifo:
    def test_consumers_served_in_arrival_order(self, clock):
        """
        Threads and tasks waiting on one empty buffer get items in the
        order they started waiting.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=4, clock=clock)
        got: dict[str, int] = {}
        threads: list[threading.Thread] = []

        def thread_user(name: str) -> None:
            got[name] = buf.get()

        async def task_user(name: str) -> None:
            got[name] = await buf.aget()

        async def main() -> None:
            tasks = []
            for i, kind in enumerate("tatt"):
                name = f"{kind}{i}"
                if kind == "t":
                    thread = threading.Thread(target=thread_user, args=(name,))
                    thread.start()
                    threads.append(thread)
                else:
                    tasks.append(asyncio.create_task(task_user(name)))
                    await clock.asleep(0)
                _until(lambda i=i: buf.statistics().consumers_waiting == i + 1)
            for item in range(4):
                buf.put(item)
            await asyncio.gather(*tasks)
            for thread in threads:
                await asyncio.to_thread(thread.join)

        asyncio.run(main())

        assert {"t0": 0, "a1": 1, "t2": 2, "t3": 3} == got

    def test_producers_served_in_arrival_order(self, clock):
        """
        Threads and tasks blocked on one full buffer put their items in
        the order they started waiting.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=clock)
        buf.put("first")
        threads: list[threading.Thread] = []

        async def main() -> list[str]:
            tasks = []
            for i, kind in enumerate("atta"):
                name = f"{kind}{i}"
                if kind == "t":
                    thread = threading.Thread(target=buf.put, args=(name,))
                    thread.start()
                    threads.append(thread)
                else:
                    tasks.append(asyncio.create_task(buf.aput(name)))
                    await clock.asleep(0)
                _until(lambda i=i: buf.statistics().producers_waiting == i + 1)
            out = []
            for _ in range(5):
                out.append(await buf.aget())
            await asyncio.gather(*tasks)
            for thread in threads:
                await asyncio.to_thread(thread.join)
            return out

        assert ["first", "a0", "t1", "t2", "a3"] == asyncio.run(main())
