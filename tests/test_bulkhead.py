"""
Bulkhead: limits, FIFO queueing, waits on the fake clock, cancellation and
the mix of threads and event loops.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import random
import threading

from collections.abc import AsyncGenerator, Callable, Generator
from datetime import timedelta
from typing import Any

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import Boom, as_async, boom, ok
from stalwart import (
    Bulkhead,
    BulkheadFullError,
    CallRejected,
    ConfigurationError,
    Event,
)
from stalwart._clock import wait_event
from stalwart._deadline import deadline_scope
from stalwart._waiters import TaskWaiter
from stalwart.testing import FakeClock, use_clock


def _counts(b: Bulkhead) -> tuple[int, int, int, int]:
    """
    The counters of *b*: in flight, queued, refused, high water.
    """
    stats = b.statistics()
    return (stats.in_flight, stats.queued, stats.refused, stats.high_water)


def _until(predicate: Callable[[], bool]) -> None:
    """
    Spin until *predicate* holds (a state, never a duration).
    """
    while not predicate():
        pass


def _start(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """
    Run *target* on a thread; its result or exception lands in the list.
    """
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(target())
        except BaseException as e:
            out.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


class TestConfig:
    def test_defaults(self):
        """
        Only max_concurrent is required; nobody waits by default.
        """
        b = Bulkhead(max_concurrent=3)

        assert (0, None, "<unnamed>") == (b.max_queue, b.max_wait, b.name)
        assert (
            "Bulkhead(max_concurrent=3, max_queue=0, max_wait=None, name='<unnamed>')"
            == repr(b)
        )

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"max_concurrent": 0}, "'max_concurrent' must be > 0 (got 0)"),
            (
                {"max_concurrent": 1.5},
                "'max_concurrent' must be an int (got 1.5)",
            ),
            (
                {"max_concurrent": 1, "max_queue": -1},
                "'max_queue' must be >= 0 (got -1)",
            ),
            (
                {"max_concurrent": 1, "max_wait": -1},
                "'max_wait' must be >= 0 (got -1.0)",
            ),
            (
                {"max_concurrent": 1, "max_wait": float("inf")},
                "'max_wait' must be finite (got inf)",
            ),
            (
                {"max_concurrent": 1, "max_wait": "1"},
                "'max_wait' must be a number of seconds or a timedelta (got '1')",
            ),
        ],
        ids=["zero", "float", "queue", "wait", "inf", "str"],
    )
    def test_rejects_bad_values(self, kwargs, message):
        """
        Bad settings fail where the bulkhead is built, naming field and value.
        """
        with pytest.raises(ConfigurationError) as e:
            Bulkhead(**kwargs)

        assert message == str(e.value)

    def test_timedelta(self):
        """
        max_wait accepts a timedelta.
        """
        assert (
            1.5
            == Bulkhead(
                max_concurrent=1, max_wait=timedelta(seconds=1.5)
            ).max_wait
        )


class TestFaces:
    def test_call_returns_and_releases(self, invoke):
        """
        A call runs with a permit and gives it back.
        """
        b = Bulkhead(max_concurrent=1)

        assert "ok" == invoke(b, ok)
        assert (0, 0, 0, 1) == _counts(b)

    def test_failure_releases(self, invoke):
        """
        The user's exception passes through unchanged; the permit comes back.
        """
        b = Bulkhead(max_concurrent=1)

        with pytest.raises(Boom):
            invoke(b, boom)
        assert 0 == b.statistics().in_flight

    def test_full_refuses(self, invoke):
        """
        With every permit taken and no queue, a call is refused at once.
        """
        b = Bulkhead(max_concurrent=1, name="db")
        b.try_acquire()

        with pytest.raises(BulkheadFullError) as e:
            invoke(b, ok)

        assert ("db", 1) == (e.value.name, e.value.max_concurrent)
        assert (1, 0, 1, 1) == _counts(b)

    def test_base_exception_releases(self, invoke):
        """
        KeyboardInterrupt passes through and gives the permit back.
        """
        b = Bulkhead(max_concurrent=1)

        def interrupt() -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            invoke(b, interrupt)
        assert 0 == b.statistics().in_flight

    def test_sync_decorator(self):
        """
        The decorator keeps the function's name and holds a permit per call.
        """
        b = Bulkhead(max_concurrent=1)
        seen = []

        @b
        def double(x: int) -> int:
            seen.append(b.statistics().in_flight)
            return 2 * x

        assert 4 == double(2)
        assert "double" == double.__name__
        assert [1] == seen
        assert not inspect.iscoroutinefunction(double)
        assert 0 == b.statistics().in_flight

    def test_async_decorator(self):
        """
        The decorator on an async def gives a coroutine function.
        """
        b = Bulkhead(max_concurrent=1)

        @b
        async def double(x: int) -> int:
            return 2 * x

        assert inspect.iscoroutinefunction(double)
        assert 4 == asyncio.run(double(2))
        assert 0 == b.statistics().in_flight

    def test_decorators_refuse_and_release(self):
        """
        Both decorators refuse when full and give permits back on failure.
        """
        b = Bulkhead(max_concurrent=1)
        sync_boom = b(boom)

        async def aboom() -> None:
            raise Boom

        async_boom = b(aboom)

        with pytest.raises(Boom):
            sync_boom()
        with pytest.raises(Boom):
            asyncio.run(async_boom())
        b.acquire()
        with pytest.raises(BulkheadFullError):
            sync_boom()
        with pytest.raises(BulkheadFullError):
            asyncio.run(async_boom())
        assert (1, 0, 2, 1) == _counts(b)

    def test_decorators_hand_permits_to_waiters(self, clock):
        """
        A decorated call that ends hands its permit to the next waiter.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, clock=clock)

        @b
        def sync_call() -> str:
            thread, out = _start(lambda: b.call(ok))
            _until(lambda: b.statistics().queued == 1)
            threads.append((thread, out))
            return "first"

        @b
        async def async_call() -> str:
            waiter = asyncio.create_task(b.acall(as_async(ok)))
            await clock.asleep(0)
            tasks.append(waiter)
            return "first"

        async def main() -> list[str]:
            return [await async_call(), await tasks[0]]

        threads: list[tuple[threading.Thread, list[Any]]] = []
        tasks: list[asyncio.Task[str]] = []

        assert "first" == sync_call()
        threads[0][0].join()
        assert ["ok"] == threads[0][1]
        assert ["first", "ok"] == asyncio.run(main())
        assert (0, 0, 0, 1) == _counts(b)

    def test_permit_freed_before_queueing(self):
        """
        A permit freed between the first try and queueing is taken at once.
        """
        b = Bulkhead(max_concurrent=2, max_queue=1)

        b._wait(None, ("call()", "acall()"))
        asyncio.run(b._await(None))

        assert (2, 0, 0, 2) == _counts(b)

    def test_context_managers(self):
        """
        with and async with hold a permit for the block.
        """
        b = Bulkhead(max_concurrent=2)

        async def main() -> int:
            async with b:
                return b.statistics().in_flight

        with b:
            inside = b.statistics().in_flight

        assert 1 == inside
        assert 1 == asyncio.run(main())
        assert 0 == b.statistics().in_flight

    def test_explicit_steps(self):
        """
        try_acquire, acquire, aacquire and release manage permits by hand.
        """
        b = Bulkhead(max_concurrent=2)

        async def in_a_task() -> None:
            await b.aacquire()
            b.release()

        assert b.try_acquire()
        b.acquire()
        assert not b.try_acquire()
        b.release()
        asyncio.run(in_a_task())
        b.release()
        with pytest.raises(RuntimeError, match="without a permit held"):
            b.release()
        assert (0, 0, 1, 2) == _counts(b)

    def test_hooks_see_refusals(self):
        """
        Each refusal is reported as a CallRejected carrying the error.
        """
        events: list[Event] = []
        clock = FakeClock(5.0)
        b = Bulkhead(
            max_concurrent=1, name="db", clock=clock, hooks=events.append
        )
        b.acquire()

        with pytest.raises(BulkheadFullError) as e:
            b.call(ok)

        assert [
            CallRejected(primitive_name="db", at=5.0, error=e.value)
        ] == events


class TestAsyncQueue:
    def test_fifo_and_timeout_on_fake_clock(self, clock):
        """
        Waiters are served in arrival order; one whose wait runs out is
        refused exactly at max_wait on the fake clock.
        """
        b = Bulkhead(max_concurrent=1, max_queue=2, max_wait=2.0, clock=clock)
        order: list[str] = []
        refused_at: list[float] = []

        async def user(name: str, hold: float) -> None:
            try:
                async with b:
                    order.append(name)
                    await clock.asleep(hold)
            except BulkheadFullError:
                refused_at.append(clock.now())
                raise

        async def main() -> list[Any]:
            first = asyncio.create_task(user("a", 1.5))
            await clock.asleep(0)
            second = asyncio.create_task(user("b", 1.0))
            await clock.asleep(0)
            third = asyncio.create_task(user("c", 0.0))
            return await asyncio.gather(
                first, second, third, return_exceptions=True
            )

        results = asyncio.run(main())

        assert ["a", "b"] == order
        assert None is results[0] is results[1]
        assert isinstance(results[2], BulkheadFullError)
        assert [2.0] == refused_at
        assert 2.5 == clock.now()
        assert (0, 0, 1, 1) == _counts(b)

    def test_queue_full_refuses_at_once(self, clock):
        """
        A caller beyond max_queue is refused without waiting.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, max_wait=5.0, clock=clock)

        async def take_and_release() -> None:
            await b.aacquire()
            b.release()

        async def main() -> None:
            await b.aacquire()
            waiter = asyncio.create_task(take_and_release())
            await clock.asleep(0)
            with pytest.raises(BulkheadFullError):
                await b.aacquire()
            assert 0.0 == clock.now()
            b.release()
            await waiter

        asyncio.run(main())

        assert (0, 0, 1, 1) == _counts(b)

    def test_zero_wait_refuses(self, clock):
        """
        max_wait=0 refuses at once even with room in the queue.
        """
        b = Bulkhead(max_concurrent=1, max_queue=5, max_wait=0, clock=clock)
        b.acquire()

        with pytest.raises(BulkheadFullError):
            asyncio.run(b.aacquire())
        with pytest.raises(BulkheadFullError):
            b.acquire()
        assert (1, 0, 2, 1) == _counts(b)

    def test_timeout_argument(self, clock):
        """
        aacquire(timeout=) overrides max_wait; the wait ends on the clock.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, clock=clock)
        b.acquire()

        with pytest.raises(BulkheadFullError):
            asyncio.run(b.aacquire(timeout=timedelta(seconds=3)))
        assert 3.0 == clock.now()
        assert [3.0] == clock.sleeps

    def test_deadline_caps_wait(self, clock):
        """
        A wait never goes past the current deadline.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, clock=clock)
        b.acquire()

        async def main() -> None:
            with deadline_scope(1.5, clock):
                await b.aacquire(timeout=None)

        with pytest.raises(BulkheadFullError):
            asyncio.run(main())
        assert 1.5 == clock.now()

    def test_cancelled_waiter_leaves_queue(self, clock):
        """
        A cancelled waiter leaves the queue and the next one is served.
        """
        b = Bulkhead(max_concurrent=1, max_queue=2, clock=clock)

        async def take_and_release() -> None:
            await b.aacquire()
            b.release()

        async def main() -> None:
            await b.aacquire()
            first = asyncio.create_task(b.aacquire())
            second = asyncio.create_task(take_and_release())
            await clock.asleep(0)
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            assert 1 == b.statistics().queued
            b.release()
            await second

        asyncio.run(main())

        assert (0, 0, 0, 1) == _counts(b)

    def test_grant_and_cancel_race_hands_permit_on(self, clock):
        """
        A waiter cancelled just as a permit reached it hands the permit on.
        """
        b = Bulkhead(max_concurrent=1, max_queue=2, clock=clock)

        async def take_and_release() -> int:
            await b.aacquire()
            inside = b.statistics().in_flight
            b.release()
            return inside

        async def main() -> None:
            await b.aacquire()
            first = asyncio.create_task(b.aacquire())
            second = asyncio.create_task(take_and_release())
            await clock.asleep(0)
            b.release()  # the permit goes to `first`...
            first.cancel()  # ...which is cancelled before it runs
            await asyncio.gather(first, return_exceptions=True)
            assert 1 == await second

        asyncio.run(main())

        assert (0, 0, 0, 1) == _counts(b)

    def test_grant_at_timeout_keeps_permit(self):
        """
        A waiter whose time runs out just as a permit arrives keeps it.
        """
        clock = FakeClock()
        b = Bulkhead(max_concurrent=1, max_queue=1, max_wait=1.0, clock=clock)

        async def main() -> None:
            await b.aacquire()
            waiter = asyncio.create_task(b.aacquire())
            await clock.asleep(0)
            # Expire the wait and hand over the permit in the same round.
            clock.advance(1.0)
            b.release()
            await waiter

        asyncio.run(main())

        assert (1, 0, 0, 1) == _counts(b)

    def test_closed_loop_waiter_is_skipped(self):
        """
        A permit handed to a waiter whose loop is closed goes on.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1)
        loop = asyncio.new_event_loop()
        waiter = TaskWaiter(loop)
        loop.close()
        b.acquire()
        with b._lock:
            b._core.enqueue(waiter)

        b.release()

        assert (0, 0, 0, 1) == _counts(b)


class _HookClock(FakeClock):
    """
    A fake clock whose thread waits run a callback instead of blocking.
    """

    def __init__(self, on_wait: Callable[[], None]) -> None:
        super().__init__()
        self.on_wait = on_wait

    def wait_event(self, event: threading.Event, until: float | None) -> None:
        """
        Run the callback: it decides how the wait ends.
        """
        self.on_wait()


class TestThreadQueue:
    def test_thread_waiter_times_out_on_fake_clock(self, clock):
        """
        A blocked thread is refused when the fake clock passes its wait.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, max_wait=2.0, clock=clock)
        b.acquire()
        thread, out = _start(b.acquire)
        _until(lambda: b.statistics().queued == 1)

        clock.advance(1.0)
        clock.advance(1.0)
        thread.join()

        assert isinstance(out[0], BulkheadFullError)
        assert (1, 0, 1, 1) == _counts(b)

    def test_thread_waiter_is_granted(self, clock):
        """
        A blocked thread gets the permit when another thread releases it.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, clock=clock)
        b.acquire()
        thread, out = _start(lambda: b.acquire(timeout=None))
        _until(lambda: b.statistics().queued == 1)

        b.release()
        thread.join()

        assert [None] == out
        assert (1, 0, 0, 1) == _counts(b)

    def test_thread_deadline_caps_wait(self, clock):
        """
        A thread's wait ends at the deadline of its context.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, max_wait=10.0, clock=clock)
        b.acquire()

        def wait_under_deadline() -> None:
            with deadline_scope(1.0, clock):
                b.acquire()

        thread, out = _start(wait_under_deadline)
        _until(lambda: b.statistics().queued == 1)
        clock.advance(1.0)
        thread.join()

        assert isinstance(out[0], BulkheadFullError)

    def test_interrupted_waiter_hands_permit_on(self):
        """
        A thread interrupted just as a permit reached it hands it on.
        """

        def grant_then_interrupt() -> None:
            b.release()
            raise KeyboardInterrupt

        b = Bulkhead(
            max_concurrent=1,
            max_queue=1,
            clock=_HookClock(grant_then_interrupt),
        )
        b.acquire()

        with pytest.raises(KeyboardInterrupt):
            b.acquire()
        assert (0, 0, 0, 1) == _counts(b)

    def test_interrupted_waiter_leaves_queue(self):
        """
        A thread interrupted while queued leaves the queue.
        """

        def interrupt() -> None:
            raise KeyboardInterrupt

        b = Bulkhead(
            max_concurrent=1, max_queue=1, clock=_HookClock(interrupt)
        )
        b.acquire()

        with pytest.raises(KeyboardInterrupt):
            b.acquire()
        assert (1, 0, 0, 1) == _counts(b)

    def test_grant_at_timeout_keeps_permit(self):
        """
        A thread whose wait ends just as a permit arrives keeps it.
        """
        b = Bulkhead(
            max_concurrent=1,
            max_queue=1,
            max_wait=1.0,
            clock=_HookClock(lambda: b.release()),
        )
        b.acquire()

        b.acquire()

        assert (1, 0, 0, 1) == _counts(b)

    def test_system_clock_wait(self):
        """
        With the system clock a thread waits on its event (no time spent:
        the permit is already on its way).
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, max_wait=60.0)
        b.acquire()
        thread, out = _start(b.acquire)
        _until(lambda: b.statistics().queued == 1)

        b.release()
        thread.join()

        assert [None] == out

    def test_system_clock_unbounded_wait(self):
        """
        With the system clock and no limit a thread waits until granted.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1)
        b.acquire()
        thread, out = _start(b.acquire)
        _until(lambda: b.statistics().queued == 1)

        b.release()
        thread.join()

        assert [None] == out

    def test_use_clock_drives_default(self):
        """
        A bulkhead on the default clock follows use_clock for thread waits.
        """
        clock = FakeClock()
        b = Bulkhead(max_concurrent=1, max_queue=1, max_wait=1.0)
        b.acquire()
        with use_clock(clock):
            thread, out = _start(b.acquire)
            _until(lambda: b.statistics().queued == 1)
            clock.advance(1.0)
            thread.join()

        assert isinstance(out[0], BulkheadFullError)


class TestMixed:
    def test_fifo_across_threads_and_tasks(self, clock):
        """
        Threads and tasks queued on one bulkhead are served in arrival order.
        """
        b = Bulkhead(max_concurrent=1, max_queue=4, clock=clock)
        order: list[str] = []
        threads = []

        def thread_user(name: str) -> None:
            with b:
                order.append(name)

        async def task_user(name: str) -> None:
            async with b:
                order.append(name)

        async def main() -> None:
            await b.aacquire()
            tasks = []
            for i, kind in enumerate("tatt"):
                name = f"{kind}{i}"
                if kind == "t":
                    thread, _ = _start(lambda name=name: thread_user(name))
                    threads.append(thread)
                else:
                    tasks.append(asyncio.create_task(task_user(name)))
                    await clock.asleep(0)
                _until(lambda i=i: b.statistics().queued == i + 1)
            b.release()
            await asyncio.gather(*tasks)
            for thread in threads:
                await asyncio.to_thread(thread.join)

        asyncio.run(main())

        assert ["t0", "a1", "t2", "t3"] == order
        assert (0, 0, 0, 1) == _counts(b)

    @pytest.mark.parametrize("seed", range(8))
    def test_random_interleavings(self, seed):
        """
        Under threads and tasks with random cancellations, concurrency never
        exceeds the limit and every permit comes back.
        """
        rng = random.Random(seed)
        limit = rng.randint(1, 3)
        b = Bulkhead(max_concurrent=limit, max_queue=100)
        lock = threading.Lock()
        inside = [0]
        peak = [0]

        def enter() -> None:
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])

        def leave() -> None:
            with lock:
                inside[0] -= 1

        def thread_user(rounds: int) -> None:
            for _ in range(rounds):
                with b:
                    enter()
                    leave()

        async def task_user(steps: int) -> None:
            async with b:
                enter()
                try:
                    for _ in range(steps):
                        await asyncio.sleep(0)
                finally:
                    leave()

        async def main() -> None:
            tasks = [
                asyncio.create_task(task_user(rng.randint(0, 3)))
                for _ in range(30)
            ]
            for _ in range(rng.randint(1, 10)):
                await asyncio.sleep(0)
                victim = rng.choice(tasks)
                victim.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        threads = [
            threading.Thread(target=thread_user, args=(rng.randint(10, 50),))
            for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        asyncio.run(main())
        for thread in threads:
            thread.join()

        assert peak[0] <= limit
        assert 0 == inside[0]
        stats = b.statistics()
        assert (0, 0, 0) == (stats.in_flight, stats.queued, stats.refused)
        assert peak[0] <= stats.high_water <= limit


class TestWaitEvent:
    def test_fake_clock_past_deadline_returns(self, clock):
        """
        FakeClock.wait_event returns at once when the time is already up.
        """
        event = threading.Event()
        clock.advance(2.0)

        wait_event(clock, event, 1.0)

        assert not event.is_set()

    def test_fake_clock_sets_event_when_due(self, clock):
        """
        Advancing the fake clock past a thread's wait ends it.
        """
        event = threading.Event()
        thread, out = _start(lambda: wait_event(clock, event, 1.0))
        _until(lambda: bool(clock._thread_waiters))

        clock.advance(1.0)
        thread.join()

        assert event.is_set()
        assert [None] == out


jobs = st.lists(
    st.tuples(
        st.integers(0, 10).map(lambda t: t / 2),  # arrival time
        st.integers(0, 6).map(lambda t: t / 2),  # time held inside
        st.none() | st.integers(0, 16).map(lambda t: t / 2),  # cancel time
    ),
    max_size=12,
)


class TestFakeClockInterleavings:
    @settings(max_examples=60, deadline=None)
    @given(
        limit=st.integers(1, 3),
        queue=st.integers(0, 6),
        max_wait=st.none() | st.integers(1, 8).map(lambda t: t / 2),
        jobs=jobs,
    )
    def test_invariants(self, limit, queue, max_wait, jobs):
        """
        With random arrivals, holds, waits and cancellations on the fake
        clock: concurrency stays within the limit, service is FIFO, and
        every permit comes back.
        """
        clock = FakeClock()
        b = Bulkhead(
            max_concurrent=limit,
            max_queue=queue,
            max_wait=max_wait,
            clock=clock,
        )
        arrivals: list[int] = []
        entries: list[int] = []
        inside = [0]
        peak = [0]

        async def job(number: int, arrive: float, hold: float) -> None:
            await clock.asleep(arrive)
            arrivals.append(number)
            async with b:
                entries.append(number)
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
                try:
                    await clock.asleep(hold)
                finally:
                    inside[0] -= 1

        async def cancel(task: asyncio.Task[None], at: float) -> None:
            await clock.asleep(at)
            task.cancel()

        async def main() -> None:
            tasks = []
            for number, (arrive, hold, cancel_at) in enumerate(jobs):
                task = asyncio.create_task(job(number, arrive, hold))
                tasks.append(task)
                if cancel_at is not None:
                    tasks.append(asyncio.create_task(cancel(task, cancel_at)))
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(main())
        stats = b.statistics()

        assert peak[0] <= limit
        assert [n for n in arrivals if n in entries] == entries
        assert (0, 0) == (stats.in_flight, stats.queued)
        assert stats.high_water <= limit


class TestValues:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {"max_concurrent": None},
                "'max_concurrent' must be a number (got None)",
            ),
            (
                {"max_concurrent": True},
                "'max_concurrent' must be a number (got True)",
            ),
            (
                {"max_concurrent": 1, "max_queue": 1.0},
                "'max_queue' must be an int (got 1.0)",
            ),
            (
                {"max_concurrent": 1, "max_wait": float("nan")},
                "'max_wait' must be a number, not NaN (got nan)",
            ),
            (
                {"max_concurrent": 1, "max_wait": 10**400},
                "'max_wait' must be a number of seconds that fits a float (got "
                + str(10**400)
                + ")",
            ),
        ],
        ids=["none", "bool", "float-queue", "nan-wait", "huge-wait"],
    )
    def test_refused_where_built(self, kwargs, message):
        """
        None, bools, NaN and numbers a float cannot hold are refused where
        the bulkhead is built, naming the field and the value.
        """
        with pytest.raises(ConfigurationError) as e:
            Bulkhead(**kwargs)

        assert message == str(e.value)

    def test_unbounded_queue(self, clock):
        """
        max_queue=None lets any number of callers wait, in FIFO order.
        """
        b = Bulkhead(max_concurrent=1, max_queue=None, clock=clock)
        order: list[int] = []

        async def user(number: int) -> None:
            async with b:
                order.append(number)
                await clock.asleep(1)

        async def main() -> None:
            await asyncio.gather(*(user(i) for i in range(500)))

        asyncio.run(main())

        assert list(range(500)) == order
        assert (0, 0, 0, 1) == _counts(b)
        assert "max_queue=None" in repr(b)

    def test_huge_limit(self, invoke):
        """
        A limit larger than any float works as a plain int.
        """
        b = Bulkhead(max_concurrent=10**400)

        assert "ok" == invoke(b, ok)
        assert (0, 0, 0, 1) == _counts(b)

    def test_wait_longer_than_the_platform_can_block(self):
        """
        A queued thread with a max_wait beyond threading.TIMEOUT_MAX waits
        as if unbounded instead of failing, and gets the permit.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, max_wait=1e10)
        b.acquire()
        thread, out = _start(b.acquire)
        _until(lambda: b.statistics().queued == 1)

        b.release()
        thread.join()

        assert [None] == out
        assert (1, 0, 0, 1) == _counts(b)

    @pytest.mark.parametrize(
        ("timeout", "error", "message"),
        [
            (
                "1",
                ConfigurationError,
                "'timeout' must be a number of seconds or a timedelta (got '1')",
            ),
            (-1, ConfigurationError, "'timeout' must be >= 0 (got -1.0)"),
            (
                float("nan"),
                ConfigurationError,
                "'timeout' must be a number, not NaN (got nan)",
            ),
            (
                float("inf"),
                ConfigurationError,
                (
                    "'timeout' must be finite (got inf); use None to wait as"
                    " long as it takes"
                ),
            ),
            (
                True,
                ConfigurationError,
                "'timeout' must be a number of seconds or a timedelta (got True)",
            ),
        ],
        ids=["str", "negative", "nan", "inf", "bool"],
    )
    @pytest.mark.parametrize("face", ["sync", "async"])
    def test_call_time_timeout_validated(self, timeout, error, message, face):
        """
        acquire(timeout=) and aacquire(timeout=) validate their value as
        configuration is validated, even when a permit is free, and take
        nothing when they refuse it.
        """
        b = Bulkhead(max_concurrent=1)

        with pytest.raises(error) as e:
            if face == "sync":
                b.acquire(timeout=timeout)
            else:
                asyncio.run(b.aacquire(timeout=timeout))

        assert message == str(e.value)
        assert (0, 0, 0, 0) == _counts(b)


class TestRelease:
    @pytest.mark.parametrize("kind", ["thread", "task"])
    def test_second_release_with_callers_queued(self, kind, clock):
        """
        A second release() of one permit is an error: with callers queued
        behind a bulkhead of one, the caller it went to stays the only
        holder.
        """
        b = Bulkhead(max_concurrent=1, max_queue=2, clock=clock)
        inside: list[int] = []

        def thread_user() -> None:
            with b:
                inside.append(b.statistics().in_flight)

        async def task_user() -> None:
            async with b:
                inside.append(b.statistics().in_flight)
                await clock.asleep(0)

        async def main() -> None:
            await b.aacquire()
            if kind == "task":
                users = [asyncio.create_task(task_user()) for _ in range(2)]
                await clock.asleep(0)
            else:
                threads = [_start(thread_user)[0] for _ in range(2)]
                _until(lambda: b.statistics().queued == 2)
            b.release()
            with pytest.raises(RuntimeError, match="a second release"):
                b.release()
            assert (1, 1, 0, 1) == _counts(b)
            if kind == "task":
                await asyncio.gather(*users)
            else:
                for thread in threads:
                    await asyncio.to_thread(thread.join)

        asyncio.run(main())

        assert [1, 1] == inside
        assert (0, 0, 0, 1) == _counts(b)

    def test_release_from_another_thread(self):
        """
        A permit is given back by the task or thread that took it; another
        one is told so, and the permit stays held.
        """
        b = Bulkhead(max_concurrent=1, name="db")
        b.acquire()
        thread, out = _start(b.release)
        thread.join()

        assert isinstance(out[0], RuntimeError)
        assert (
            "Bulkhead 'db': release() without a permit held by this task or"
            " thread (a second release() of one permit, or a permit taken"
            " elsewhere: give a permit back where it was taken)"
        ) == str(out[0])
        assert 1 == b.statistics().in_flight
        b.release()

    def test_tasks_hold_their_own_permits(self):
        """
        Two tasks on one loop each give back their own permit; a task that
        took none cannot give back another's.
        """
        b = Bulkhead(max_concurrent=2)

        async def take() -> None:
            await b.aacquire()

        async def main() -> None:
            await asyncio.create_task(take())
            with pytest.raises(RuntimeError):
                b.release()
            await b.aacquire()
            b.release()

        asyncio.run(main())

        assert 1 == b.statistics().in_flight


class TestEvents:
    def test_refused_try_acquire_sends_call_rejected(self, clock):
        """
        A refused try_acquire() sends a CallRejected, as the limiters' do.
        """
        events: list[Event] = []
        b = Bulkhead(
            max_concurrent=1, name="db", clock=clock, hooks=events.append
        )
        b.try_acquire()

        assert not b.try_acquire()
        assert 1 == len(events)
        assert isinstance(events[0], CallRejected)
        assert ("db", 1) == (
            events[0].error.name,
            events[0].error.max_concurrent,
        )

    @pytest.mark.parametrize(
        "how", ["try_acquire", "queue-full", "timed-out", "zero-wait"]
    )
    def test_base_exception_from_a_hook_leaks_nothing(self, how, clock):
        """
        A KeyboardInterrupt raised by a hook on a refusal propagates, and
        leaves no permit taken and nobody queued.
        """

        def interrupt(event: Event) -> None:
            raise KeyboardInterrupt

        b = Bulkhead(
            max_concurrent=1,
            max_queue=0 if how == "queue-full" else 1,
            max_wait=0 if how == "zero-wait" else 1.0,
            clock=clock,
            hooks=interrupt,
        )
        b.acquire()

        with pytest.raises(KeyboardInterrupt):
            if how == "try_acquire":
                b.try_acquire()
            else:
                asyncio.run(b.acall(as_async(ok)))

        assert (1, 0, 1, 1) == _counts(b)
        b.release()
        assert "ok" == b.call(ok)


class TestMisuse:
    def test_call_with_an_async_function(self):
        """
        call() given an async function raises TypeError naming acall(),
        gives the permit back and counts nothing.
        """
        b = Bulkhead(max_concurrent=1, name="db")

        async def fetch() -> str:
            return "never awaited"

        with pytest.raises(TypeError, match=r"use acall\(\)"):
            b.call(fetch)
        with pytest.raises(TypeError, match=r"use acall\(\)"):
            b.call(lambda: fetch())

        assert (0, 0, 0, 1) == _counts(b)

    def test_acall_with_a_plain_function(self):
        """
        acall() given a plain function raises TypeError naming call() and
        gives the permit back.
        """
        b = Bulkhead(max_concurrent=1)

        with pytest.raises(TypeError, match=r"use call\(\)"):
            asyncio.run(b.acall(ok))  # type: ignore[arg-type]  # the misuse under test

        assert (0, 0, 0, 1) == _counts(b)

    def test_decorated_def_returning_a_coroutine(self):
        """
        A decorated def that returns a coroutine is refused: the permit
        would be back before the work ran.
        """
        b = Bulkhead(max_concurrent=1)

        async def work() -> None:
            pass

        @b
        def start() -> Any:
            return work()

        with pytest.raises(TypeError, match=r"use acall\(\)"):
            start()
        assert 0 == b.statistics().in_flight

    @pytest.mark.parametrize(
        ("use", "face"),
        [
            ("with", "`with bulkhead` would block"),
            ("acquire", "acquire() would block"),
            ("call", "call() would block"),
            ("decorator", "call() would block"),
        ],
    )
    def test_sync_face_that_would_block_a_loop(self, use, face):
        """
        A sync face that would have to wait, used on the thread of a
        running event loop, raises RuntimeError naming the async face
        instead of freezing the loop; nothing is counted or queued.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, name="db")
        decorated = b(ok)

        async def main() -> None:
            await b.aacquire()
            with pytest.raises(RuntimeError) as e:
                if use == "with":
                    with b:
                        pass
                elif use == "acquire":
                    b.acquire()
                elif use == "call":
                    b.call(ok)
                else:
                    decorated()
            assert face in str(e.value)
            assert "in async code use" in str(e.value)
            assert (1, 0, 0, 1) == _counts(b)
            b.release()

        asyncio.run(main())

    def test_sync_faces_that_do_not_wait_work_on_a_loop(self):
        """
        On a loop thread, a free permit, a full queue or a zero wait is
        answered at once: no wait, so no error.
        """
        b = Bulkhead(max_concurrent=1, max_queue=0)

        async def main() -> None:
            with b:
                with pytest.raises(BulkheadFullError):
                    b.call(ok)
            assert b.try_acquire()
            with pytest.raises(BulkheadFullError):
                b.acquire(timeout=0)
            b.release()

        asyncio.run(main())

        assert (0, 0, 2, 1) == _counts(b)


class TestGenerators:
    def test_decorated_generator_holds_one_permit(self):
        """
        A decorated generator function holds one permit from its first step
        to its end, and gives it back when it fails or is closed.
        """
        b = Bulkhead(max_concurrent=1)

        @b
        def numbers(fail: bool) -> Generator[int, None, None]:
            yield b.statistics().in_flight
            yield b.statistics().in_flight
            if fail:
                raise Boom

        assert [1, 1] == list(numbers(False))
        failing = numbers(True)
        next(failing)
        with pytest.raises(BulkheadFullError):
            b.call(ok)
        with pytest.raises(Boom):
            list(failing)
        closed = numbers(False)
        next(closed)
        closed.close()
        assert (0, 0, 1, 1) == _counts(b)

    def test_decorated_async_generator_stepped_from_tasks(self):
        """
        A decorated async generator stepped from different tasks holds one
        permit for the whole iteration and gives it back at its end.
        """
        b = Bulkhead(max_concurrent=1)

        @b
        async def numbers() -> AsyncGenerator[int, None]:
            for _ in range(3):
                yield b.statistics().in_flight

        async def main() -> list[int]:
            agen = numbers()
            seen = [await asyncio.create_task(anext(agen))]
            seen.append(await asyncio.wait_for(anext(agen), 10))
            seen.append(await asyncio.create_task(anext(agen)))
            with pytest.raises(StopAsyncIteration):
                await anext(agen)
            return seen

        assert [1, 1, 1] == asyncio.run(main())
        assert (0, 0, 0, 1) == _counts(b)

    def test_with_blocks_in_generators_stepped_alternately(self):
        """
        Two generators with `with bulkhead:` around a yield, stepped
        alternately, each give back their own permit, and a queued thread
        gets the first one freed.
        """
        b = Bulkhead(max_concurrent=2, max_queue=1)

        def gen(name: str) -> Generator[str, None, None]:
            with b:
                yield name
                yield name

        first, second = gen("a"), gen("b")
        next(first)
        next(second)
        thread, out = _start(lambda: b.call(lambda: b.statistics().in_flight))
        _until(lambda: b.statistics().queued == 1)
        list(first)
        thread.join()
        list(second)

        assert [2] == out
        assert (0, 0, 0, 2) == _counts(b)

    def test_async_with_in_an_async_generator_stepped_from_tasks(self):
        """
        An async generator holding `async with bulkhead:` across a yield,
        stepped from different tasks, gives its permit back without error.
        """
        b = Bulkhead(max_concurrent=1)

        async def agen() -> AsyncGenerator[int, None]:
            async with b:
                yield 1
                yield 2

        async def main() -> None:
            gen = agen()
            await asyncio.create_task(anext(gen))
            await asyncio.wait_for(anext(gen), 10)
            with pytest.raises(StopAsyncIteration):
                await asyncio.create_task(anext(gen))

        asyncio.run(main())

        assert (0, 0, 0, 1) == _counts(b)

    def test_nested_blocks_in_one_function(self):
        """
        Blocks of one bulkhead nested in one function each hold a permit.
        """
        b = Bulkhead(max_concurrent=2)

        with b, b:
            inside = b.statistics().in_flight
            with pytest.raises(BulkheadFullError), b:
                pass

        assert 2 == inside
        assert (0, 0, 1, 2) == _counts(b)

    def test_no_growth_of_the_context(self):
        """
        Ten thousand bulkheads each used once in `with` and `async with`
        leave the caller's context as it was.
        """
        before = len(contextvars.copy_context())
        bulkheads = [Bulkhead(max_concurrent=1) for _ in range(10_000)]

        async def main() -> None:
            for b in bulkheads:
                async with b:
                    pass

        for b in bulkheads:
            with b:
                pass
        asyncio.run(main())

        assert before == len(contextvars.copy_context())
        assert all(b.statistics().in_flight == 0 for b in bulkheads)

    def test_exit_without_enter(self):
        """
        Leaving a block that was never entered is a RuntimeError.
        """
        with pytest.raises(RuntimeError, match="without a matching"):
            Bulkhead(max_concurrent=1).__exit__(None, None, None)


class TestHolders:
    def test_loop_callback_holds_as_its_thread(self):
        """
        Explicit steps made in a loop callback (no task) hold their permit
        as the loop's thread.
        """
        b = Bulkhead(max_concurrent=1)
        seen: list[bool] = []

        def callback() -> None:
            seen.append(b.try_acquire())

        async def main() -> None:
            asyncio.get_running_loop().call_soon(callback)
            await asyncio.sleep(0)

        asyncio.run(main())
        b.release()  # the same thread, outside any task

        assert [True] == seen
        assert 0 == b.statistics().in_flight

    def test_call_hands_its_permit_to_a_waiter(self, clock):
        """
        A call() that ends hands its permit to the caller waiting for it.
        """
        b = Bulkhead(max_concurrent=1, max_queue=1, clock=clock)
        out: list[Any] = []

        def first() -> str:
            thread, result = _start(lambda: b.call(ok))
            _until(lambda: b.statistics().queued == 1)
            out.append((thread, result))
            return "first"

        assert "first" == b.call(first)
        out[0][0].join()
        assert ["ok"] == out[0][1]
        assert (0, 0, 0, 1) == _counts(b)
