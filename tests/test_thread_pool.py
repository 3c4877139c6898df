"""
ThreadPoolBulkhead: a dedicated bounded pool with a bounded queue.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading

from typing import Any

import pytest

from helpers import Boom, boom, ok
from stalwart import (
    BulkheadFullError,
    CallRejected,
    ConfigurationError,
    Event,
    ThreadPoolBulkhead,
    ThreadPoolBulkheadStatistics,
    remaining_time,
)
from stalwart._deadline import deadline_scope


def _until(predicate: Any) -> None:
    """
    Spin until *predicate* holds (a state, never a duration).
    """
    while not predicate():
        pass


def _blocked_in_result(ident: int) -> bool:
    """
    Tell whether thread *ident* waits inside Future.result().
    """
    frame = sys._current_frames()[ident]
    back = frame.f_back
    return (
        frame.f_code.co_name == "wait"
        and back is not None
        and back.f_code.co_name == "result"
    )


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


class TestCalls:
    def test_call_runs_on_pool(self, pool):
        """
        call runs the function on a pool thread and returns its result.
        """
        name = pool.call(lambda: threading.current_thread().name)

        assert name.startswith("stalwart-db")
        assert ThreadPoolBulkheadStatistics(0, 0, 0, 1) == pool.statistics()

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
        assert ThreadPoolBulkheadStatistics(1, 1, 1, 2) == stats
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
        assert ThreadPoolBulkheadStatistics(0, 0, 0, 1) == pool.statistics()

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
        assert ThreadPoolBulkheadStatistics(0, 0, 0, 2) == pool.statistics()

    def test_interrupted_call_withdraws(self, pool):
        """
        A caller interrupted while its call is queued withdraws it.
        """
        gate = threading.Event()
        ran: list[int] = []
        running = pool.submit(gate.wait)
        _until(lambda: pool.statistics().running == 1)
        main = threading.get_ident()

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        def send() -> None:
            # Wait until the main thread blocks in Future.result().
            _until(lambda: _blocked_in_result(main))
            signal.pthread_kill(main, signal.SIGUSR1)

        previous = signal.signal(signal.SIGUSR1, interrupt)
        sender = threading.Thread(target=send)
        sender.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                pool.call(ran.append, 1)
        finally:
            signal.signal(signal.SIGUSR1, previous)
            sender.join()
        gate.set()
        running.result()

        assert [] == ran
        assert ThreadPoolBulkheadStatistics(0, 0, 0, 2) == pool.statistics()


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
        assert ThreadPoolBulkheadStatistics(0, 0, 0, 2) == pool.statistics()
