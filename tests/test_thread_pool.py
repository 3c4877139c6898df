"""
ThreadPoolBulkhead: a dedicated bounded pool with a bounded queue.
"""

from __future__ import annotations

import asyncio
import threading

from collections.abc import AsyncGenerator, Generator
from concurrent.futures import Future
from typing import Any

import pytest

from helpers import Boom, boom, ok
from stalwart import (
    BulkheadFullError,
    CallRejected,
    ConfigurationError,
    Event,
    RejectedError,
    SystemClock,
    ThreadPoolBulkhead,
    ThreadPoolBulkheadStatistics,
    Timeout,
    TimeoutExceededError,
    remaining_time,
)
from stalwart._deadline import deadline_scope


def _until(predicate: Any) -> None:
    """
    Spin until *predicate* holds (a state, never a duration).
    """
    while not predicate():
        pass


@pytest.fixture(name="pool")
def _pool() -> Any:
    """
    A pool of one thread and a queue of one, shut down after the test.
    """
    with ThreadPoolBulkhead(max_workers=1, max_queue=1, name="db") as pool:
        yield pool


class TestConfig:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"max_workers": 0}, "'max_workers' must be > 0 (got 0)"),
            (
                {"max_workers": 1, "max_queue": -1},
                "'max_queue' must be >= 0 (got -1)",
            ),
        ],
        ids=["workers", "queue"],
    )
    def test_rejects_bad_values(self, kwargs, message):
        """
        Bad settings fail where the pool is built.
        """
        with pytest.raises(ConfigurationError) as e:
            ThreadPoolBulkhead(**kwargs)

        assert message == str(e.value)

    @pytest.mark.parametrize("max_queue", [None, 0])
    def test_huge_worker_count(self, max_queue):
        """
        A worker count too large for a float still builds a working pool
        (found by the constructor fuzzer).
        """
        pool = ThreadPoolBulkhead(max_workers=10**400, max_queue=max_queue)
        try:
            assert "ok" == pool.call(ok)
        finally:
            pool.shutdown()


class TestCalls:
    def test_call_runs_on_pool(self, pool):
        """
        call runs the function on a pool thread and returns its result.
        """
        name = pool.call(lambda: threading.current_thread().name)

        assert name.startswith("stalwart-db")
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=0, high_water=1
            )
            == pool.statistics()
        )

    def test_calls_in_sequence_never_refused(self, pool):
        """
        A permit is back before the result is seen, so calls can follow.
        """
        assert ["ok"] * 20 == [pool.call(ok) for _ in range(20)]

    def test_exceptions_pass(self, pool):
        """
        The function's exception reaches the caller unchanged.
        """
        with pytest.raises(Boom):
            pool.call(boom)
        assert 0 == pool.statistics().running

    def test_full_pool_refuses(self, pool):
        """
        With the thread busy and the queue full, a call is refused at once.
        """
        gate = threading.Event()
        events: list[Event] = []
        pool = ThreadPoolBulkhead(
            max_workers=1, max_queue=1, name="db", hooks=events.append
        )
        running = pool.submit(gate.wait)
        queued = pool.submit(ok)
        _until(lambda: pool.statistics().running == 1)

        with pytest.raises(BulkheadFullError) as e:
            pool.call(ok)
        stats = pool.statistics()
        gate.set()

        assert ("db", 1) == (e.value.name, e.value.max_concurrent)
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=1, queued=1, refused=1, high_water=2
            )
            == stats
        )
        assert [
            CallRejected(primitive_name="db", at=events[0].at, error=e.value)
        ] == events
        assert (True, "ok") == (running.result(), queued.result())
        pool.shutdown()

    def test_refusal_without_hooks(self):
        """
        A pool of one thread and no queue refuses a second call.
        """
        gate = threading.Event()
        pool = ThreadPoolBulkhead(max_workers=1)
        running = pool.submit(gate.wait)

        with pytest.raises(BulkheadFullError):
            pool.submit(ok)
        gate.set()

        assert running.result()
        pool.shutdown()

    def test_context_reaches_worker(self, pool, clock):
        """
        The worker sees the caller's deadline.
        """
        with deadline_scope(2.0, clock):
            assert 2.0 == pool.call(remaining_time)

    def test_decorator(self, pool):
        """
        The decorator runs a def on the pool and refuses an async def.
        """

        @pool
        def where(x: int) -> tuple[int, bool]:
            return x, threading.current_thread() is threading.main_thread()

        async def coro() -> None:
            pass

        assert (1, False) == where(1)
        assert "where" == where.__name__
        with pytest.raises(TypeError, match="use a Bulkhead for an async def"):
            pool(coro)

    def test_shutdown_refuses(self):
        """
        After shutdown, calls raise RuntimeError and no permit is kept.
        """
        pool = ThreadPoolBulkhead(max_workers=1, name="db")
        pool.shutdown()

        with pytest.raises(RuntimeError, match="'db' is shut down"):
            pool.call(ok)
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=0, high_water=1
            )
            == pool.statistics()
        )

    def test_shutdown_cancels_pending(self):
        """
        shutdown(cancel_pending=True) withdraws queued calls and frees their
        permits.
        """
        gate = threading.Event()
        pool = ThreadPoolBulkhead(max_workers=1, max_queue=1)
        running = pool.submit(gate.wait)
        queued = pool.submit(ok)
        _until(lambda: pool.statistics().running == 1)

        pool.shutdown(wait=False, cancel_pending=True)
        gate.set()
        running.result()

        assert queued.cancelled()
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=0, high_water=2
            )
            == pool.statistics()
        )

    def test_interrupted_call_withdraws(self, pool, monkeypatch):
        """
        A caller interrupted while its call is queued withdraws it.
        """
        gate = threading.Event()
        ran: list[int] = []
        running = pool.submit(gate.wait)
        _until(lambda: pool.statistics().running == 1)

        def interrupted(
            self: Future[Any], timeout: float | None = None
        ) -> Any:
            # What a KeyboardInterrupt delivered while the caller waits in
            # Future.result() looks like to ThreadPoolBulkhead.call.
            raise KeyboardInterrupt

        with monkeypatch.context() as patch:
            patch.setattr(Future, "result", interrupted)
            with pytest.raises(KeyboardInterrupt):
                pool.call(ran.append, 1)
        gate.set()
        running.result()

        assert [] == ran
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=0, high_water=2
            )
            == pool.statistics()
        )


class TestAsync:
    def test_acall_does_not_block_the_loop(self, pool):
        """
        While the blocking call runs, the loop runs other tasks (one of
        which releases it).
        """
        gate = threading.Event()

        async def main() -> bool:
            call = asyncio.create_task(pool.acall(gate.wait))
            await asyncio.sleep(0)
            gate.set()  # only possible because the loop is free
            return await call

        assert asyncio.run(main())

    def test_cancelled_acall_withdraws_queued_call(self, pool):
        """
        Cancelling an acall whose call is still queued withdraws it.
        """
        gate = threading.Event()
        ran: list[int] = []

        async def main() -> None:
            blocker = pool.submit(gate.wait)
            _until(lambda: pool.statistics().running == 1)
            task = asyncio.create_task(pool.acall(ran.append, 1))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            gate.set()
            await asyncio.wrap_future(blocker)

        asyncio.run(main())

        assert [] == ran
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=0, high_water=2
            )
            == pool.statistics()
        )


class TestValues:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {"max_workers": None},
                "'max_workers' must be a number (got None)",
            ),
            (
                {"max_workers": True},
                "'max_workers' must be a number (got True)",
            ),
            (
                {"max_workers": 1, "max_queue": 0.5},
                "'max_queue' must be an int (got 0.5)",
            ),
        ],
        ids=["none", "bool", "float-queue"],
    )
    def test_refused_where_built(self, kwargs, message):
        """
        None and bools are refused where the pool is built.
        """
        with pytest.raises(ConfigurationError) as e:
            ThreadPoolBulkhead(**kwargs)

        assert message == str(e.value)

    def test_unbounded_queue(self):
        """
        max_queue=None accepts every call; they wait for the one thread.
        """
        gate = threading.Event()
        with ThreadPoolBulkhead(max_workers=1, max_queue=None) as pool:
            running = pool.submit(gate.wait)
            queued = [pool.submit(ok) for _ in range(100)]
            stats = pool.statistics()
            gate.set()

            assert running.result()
            assert ["ok"] * 100 == [future.result() for future in queued]
        assert 0 == stats.refused
        assert 101 == stats.high_water


class TestMisuse:
    def test_async_functions_refused(self, pool):
        """
        call(), acall() and submit() refuse an async function before
        anything is counted: coroutines belong on an event loop.
        """

        async def fetch() -> str:
            return "never awaited"

        for face in (pool.call, pool.submit):
            with pytest.raises(TypeError, match="use a Bulkhead"):
                face(fetch)
        with pytest.raises(TypeError, match="use a Bulkhead"):
            asyncio.run(pool.acall(fetch))
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=0, high_water=0
            )
            == pool.statistics()
        )

    def test_result_that_must_be_awaited(self, pool):
        """
        A function that returns a coroutine is refused once it returns,
        through call() and acall().
        """

        async def fetch() -> str:
            return "never awaited"

        with pytest.raises(TypeError, match=r"use acall\(\)"):
            pool.call(lambda: fetch())
        with pytest.raises(TypeError, match=r"use acall\(\)"):
            asyncio.run(pool.acall(lambda: fetch()))
        assert 0 == pool.statistics().running

    @pytest.mark.parametrize("kind", ["generator", "async-generator"])
    def test_generator_functions_refused(self, pool, kind):
        """
        Only a generator's creation would run on the pool: decorating a
        generator function of either kind is refused.
        """

        def numbers() -> Generator[int, None, None]:
            yield 1

        async def anumbers() -> AsyncGenerator[int, None]:
            yield 1

        with pytest.raises(TypeError, match="cannot guard the generator"):
            pool(numbers if kind == "generator" else anumbers)

    def test_call_on_a_loop_thread(self, pool):
        """
        call() inside a coroutine would block the event loop: it raises
        RuntimeError naming acall(), and submits nothing.
        """

        async def main() -> None:
            pool.call(ok)

        with pytest.raises(RuntimeError) as e:
            asyncio.run(main())

        assert str(e.value).startswith(
            "ThreadPoolBulkhead 'db': call() would block the event loop"
        )
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=0, high_water=0
            )
            == pool.statistics()
        )


class TestDeadlines:
    def _busy(self, pool: ThreadPoolBulkhead) -> tuple[threading.Event, Any]:
        """
        Occupy the pool's only thread until the returned gate is set.
        """
        gate = threading.Event()
        running = pool.submit(gate.wait)
        _until(lambda: pool.statistics().running == 1)
        return gate, running

    def test_queued_call_withdrawn_at_the_deadline(self, pool, clock):
        """
        A call still queued when its caller's deadline passes is withdrawn
        and refused; it never runs.
        """
        gate, running = self._busy(pool)
        ran: list[int] = []
        out: list[BaseException] = []

        def caller() -> None:
            with deadline_scope(1.0, clock):
                try:
                    pool.call(ran.append, 1)
                except BulkheadFullError as e:
                    out.append(e)

        thread = threading.Thread(target=caller)
        thread.start()
        _until(lambda: pool.statistics().queued == 1)
        clock.advance(1.0)
        thread.join()
        gate.set()
        running.result()

        assert [] == ran
        assert isinstance(out[0], BulkheadFullError)
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=1, high_water=2
            )
            == pool.statistics()
        )

    def test_timeout_worker_is_not_left_blocked(self, pool, clock):
        """
        Under Timeout.call, a queued call is withdrawn at the timeout's
        deadline, so the timeout's worker thread returns at once instead of
        waiting for the pool.
        """
        gate, running = self._busy(pool)
        ran: list[int] = []
        worker_done = threading.Event()
        seen: list[BaseException] = []

        def through_the_pool() -> None:
            try:
                pool.call(ran.append, 1)
            except BaseException as e:
                seen.append(e)
                raise
            finally:
                worker_done.set()

        def advance_when_queued() -> None:
            _until(lambda: pool.statistics().queued == 1)
            clock.advance(1.0)

        threading.Thread(target=advance_when_queued).start()
        try:
            # The timeout's own wait and the pool's end together: either
            # refusal may reach the caller first.
            with pytest.raises(RejectedError):
                Timeout(seconds=1, clock=clock).call(through_the_pool)
            worker_done.wait()
        finally:
            gate.set()
        running.result()

        assert [] == ran
        assert isinstance(seen[0], BulkheadFullError)

    def test_running_call_at_the_deadline(self, pool, clock):
        """
        A call already running at the deadline goes on; its caller stops
        waiting with the deadline's TimeoutExceededError.
        """
        gate = threading.Event()
        started = threading.Event()

        def slow() -> str:
            started.set()
            gate.wait()
            return "done"

        def caller() -> Any:
            with deadline_scope(1.0, clock):
                return pool.call(slow)

        thread, out = threading.Thread, []

        def run() -> None:
            try:
                out.append(caller())
            except BaseException as e:
                out.append(e)

        worker = thread(target=run)
        worker.start()
        started.wait()
        clock.advance(1.0)
        worker.join()
        stats = pool.statistics()
        gate.set()

        assert isinstance(out[0], TimeoutExceededError)
        assert ("<deadline>", 1.0) == (out[0].name, out[0].timeout)
        assert 1 == stats.running

    def test_call_done_before_the_deadline(self, pool, clock):
        """
        Under a deadline, a call that ends in time returns its result.
        """
        with deadline_scope(5.0, clock):
            assert "ok" == pool.call(ok)
        # A fake clock jumps while a task awaits a thread: real time here.
        with deadline_scope(60.0, SystemClock()):
            assert "ok" == asyncio.run(pool.acall(ok))

    def test_async_queued_call_withdrawn_at_the_deadline(self, pool, clock):
        """
        acall withdraws a call still queued at the deadline and refuses it,
        on the fake clock.
        """
        gate, running = self._busy(pool)
        ran: list[int] = []

        async def main() -> None:
            with deadline_scope(1.0, clock):
                await pool.acall(ran.append, 1)

        with pytest.raises(BulkheadFullError):
            asyncio.run(main())
        gate.set()
        running.result()

        assert 1.0 == clock.now()
        assert [] == ran
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=1, high_water=2
            )
            == pool.statistics()
        )

    def test_async_running_call_at_the_deadline(self, pool):
        """
        acall stops waiting for a call running at the deadline.
        """
        gate = threading.Event()
        started = threading.Event()

        class Clock:
            """A clock whose time passes once the call has started."""

            def __init__(self) -> None:
                self.t = 0.0

            def now(self) -> float:
                return self.t

            def sleep(self, seconds: float) -> None:
                raise NotImplementedError

            async def asleep(self, seconds: float) -> None:
                await asyncio.to_thread(started.wait)
                self.t += seconds

        def slow() -> None:
            started.set()
            gate.wait()

        async def main() -> None:
            with deadline_scope(1.0, Clock()):
                await pool.acall(slow)

        try:
            with pytest.raises(TimeoutExceededError):
                asyncio.run(main())
        finally:
            gate.set()

    def test_cancelled_acall_under_a_deadline(self, pool, clock):
        """
        Cancelling an acall under a deadline withdraws its queued call.
        """
        gate, running = self._busy(pool)
        ran: list[int] = []

        async def main() -> None:
            with deadline_scope(100.0, clock):
                task = asyncio.create_task(pool.acall(ran.append, 1))
                await asyncio.sleep(0)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

        asyncio.run(main())
        gate.set()
        running.result()

        assert [] == ran
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=0, high_water=2
            )
            == pool.statistics()
        )

    def test_interrupted_call_under_a_deadline(self, pool, clock, monkeypatch):
        """
        A caller interrupted while waiting under a deadline withdraws its
        queued call.
        """
        gate, running = self._busy(pool)
        ran: list[int] = []

        def interrupted(*args: Any) -> None:
            raise KeyboardInterrupt

        import stalwart._thread_pool as module

        monkeypatch.setattr(module, "wait_event", interrupted)
        with deadline_scope(100.0, clock), pytest.raises(KeyboardInterrupt):
            pool.call(ran.append, 1)
        gate.set()
        running.result()

        assert [] == ran
        assert (
            ThreadPoolBulkheadStatistics(
                name=pool.name, running=0, queued=0, refused=0, high_water=2
            )
            == pool.statistics()
        )


class TestOwnTimeouts:
    def test_function_raising_timeout_error_under_a_deadline(
        self, pool, clock
    ):
        """
        Under a deadline, a function's own TimeoutError reaches the caller
        unchanged.
        """

        def own() -> None:
            raise TimeoutError("mine")

        with (
            deadline_scope(5.0, clock),
            pytest.raises(TimeoutError, match="mine"),
        ):
            pool.call(own)
