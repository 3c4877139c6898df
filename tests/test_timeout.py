"""
Timeout: async cancellation, the sync worker thread, the signal path and
the deadline it sets.
"""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading

from typing import Any

import pytest

from helpers import Boom, boom, ok
from stalwart import (
    ConfigurationError,
    Event,
    Timeout,
    TimeoutExceeded,
    TimeoutExceededError,
    TimeoutStatistics,
    remaining_time,
)
from stalwart._deadline import deadline_scope
from stalwart._timeout import _Workers
from stalwart.testing import FakeClock, use_clock


def _forever(clock: FakeClock) -> Any:
    """
    An async function that waits on the clock far past any timeout.
    """

    async def wait() -> None:
        await clock.asleep(1_000)

    return wait


class TestConfig:
    def test_repr_and_defaults(self):
        """
        Only seconds is required.
        """
        t = Timeout(seconds=1.5)

        assert "Timeout(seconds=1.5, name='<unnamed>')" == repr(t)
        assert TimeoutStatistics(0) == t.statistics()

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (-1, "'seconds' must be >= 0 (got -1.0)"),
            (float("inf"), "'seconds' must be finite (got inf)"),
            (
                None,
                "'seconds' must be a number of seconds or a timedelta (got None)",
            ),
        ],
        ids=["negative", "inf", "none"],
    )
    def test_rejects_bad_values(self, value, message):
        """
        Bad limits fail where the timeout is built.
        """
        with pytest.raises(ConfigurationError) as e:
            Timeout(seconds=value)

        assert message == str(e.value)

    def test_zero_warns_at_caller(self):
        """
        A zero limit is legal but surprising: it warns at the user's line.
        """
        with pytest.warns(UserWarning, match="gives up on every call") as w:
            Timeout(seconds=0)

        assert __file__ == w[0].filename


class TestAsync:
    def test_returns_in_time(self, clock):
        """
        A call that finishes in time returns its result, on both clocks.
        """

        async def quick() -> str:
            await clock.asleep(1.0)
            return "ok"

        assert "ok" == asyncio.run(
            Timeout(seconds=2, clock=clock).acall(quick)
        )
        assert "ok" == asyncio.run(Timeout(seconds=2).acall(quick))

    def test_cancels_at_deadline_on_fake_clock(self, clock):
        """
        The work is cancelled exactly at the deadline on the fake clock.
        """
        seen: list[Any] = []

        async def slow() -> None:
            try:
                await clock.asleep(10)
            except asyncio.CancelledError:
                seen.append(clock.now())
                raise

        t = Timeout(seconds=2, name="api", clock=clock)

        with pytest.raises(TimeoutExceededError) as e:
            asyncio.run(t.acall(slow))

        assert [2.0] == seen
        assert ("api", 2.0) == (e.value.name, e.value.timeout)
        assert isinstance(e.value, TimeoutError)
        assert TimeoutStatistics(1) == t.statistics()

    def test_use_clock(self, clock):
        """
        A timeout on the default clock follows use_clock.
        """
        t = Timeout(seconds=3)

        with use_clock(clock), pytest.raises(TimeoutExceededError):
            asyncio.run(t.acall(_forever(clock)))
        assert 3.0 == clock.now()

    def test_system_clock_expires(self):
        """
        With the system clock the work is cancelled (smoke test: it can
        only end by the timeout).
        """

        async def never() -> None:
            await asyncio.Event().wait()

        with pytest.raises(TimeoutExceededError):
            asyncio.run(Timeout(seconds=0.001).acall(never))

    def test_own_timeout_error_passes(self, clock):
        """
        A TimeoutError raised by the work itself is not ours: it passes.
        """

        async def own() -> None:
            raise TimeoutError("mine")

        for t in (Timeout(seconds=5), Timeout(seconds=5, clock=clock)):
            with pytest.raises(TimeoutError, match="mine") as e:
                asyncio.run(t.acall(own))
            assert not isinstance(e.value, TimeoutExceededError)

    @pytest.mark.parametrize("fake", [True, False], ids=["fake", "system"])
    def test_caller_cancellation_is_not_a_timeout(self, fake):
        """
        Cancelling the caller gives CancelledError, never a timeout.
        """
        clock = FakeClock()
        t = Timeout(seconds=100, clock=clock) if fake else Timeout(seconds=100)

        async def main() -> None:
            started = asyncio.Event()

            async def work() -> None:
                started.set()
                await asyncio.Event().wait()

            task = asyncio.create_task(t.acall(work))
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())

        assert TimeoutStatistics(0) == t.statistics()

    def test_caller_cancellation_at_deadline_wins(self, clock):
        """
        A caller cancelling at the very moment of the deadline still gets
        CancelledError.
        """
        t = Timeout(seconds=1, clock=clock)

        async def main() -> None:
            task = asyncio.create_task(t.acall(_forever(clock)))
            await clock.asleep(1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())

    def test_swallowed_cancellation(self, clock):
        """
        Work that swallows the cancellation returns, and leaves the task
        with no pending cancellation.
        """

        async def stubborn() -> str:
            try:
                await clock.asleep(10)
            except asyncio.CancelledError:
                return "kept"
            return "unreachable"

        async def main() -> tuple[str, int]:
            result = await Timeout(seconds=1, clock=clock).acall(stubborn)
            task = asyncio.current_task()
            assert task is not None
            return result, task.cancelling()

        assert ("kept", 0) == asyncio.run(main())

    def test_deadline_visible_inside(self, clock):
        """
        Code under the timeout reads the time left on the deadline.
        """

        async def read() -> float | None:
            await clock.asleep(0.5)
            return remaining_time()

        assert 1.5 == asyncio.run(Timeout(seconds=2, clock=clock).acall(read))
        assert remaining_time() is None

    def test_decorator(self, clock):
        """
        The decorator on an async def keeps it a coroutine function.
        """
        t = Timeout(seconds=1, clock=clock)

        @t
        async def slow(x: int) -> int:
            await clock.asleep(x)
            return x

        assert inspect.iscoroutinefunction(slow)
        assert "slow" == slow.__name__
        assert 0 == asyncio.run(slow(0))
        with pytest.raises(TimeoutExceededError):
            asyncio.run(slow(5))

    def test_hooks(self, clock):
        """
        Each timeout emits TimeoutExceeded.
        """
        events: list[Event] = []
        t = Timeout(seconds=1, name="api", clock=clock, hooks=events.append)

        with pytest.raises(TimeoutExceededError):
            asyncio.run(t.acall(_forever(clock)))

        assert [
            TimeoutExceeded(primitive_name="api", at=1.0, timeout=1.0)
        ] == events


class TestAsyncWith:
    @pytest.mark.parametrize("use_fake", [True, False], ids=["fake", "system"])
    def test_block_within_the_limit(self, clock, use_fake):
        """
        A block that finishes in time runs to its end and sees the deadline.
        """
        timeout = (
            Timeout(seconds=2, clock=clock)
            if use_fake
            else Timeout(seconds=60)
        )

        async def main() -> float | None:
            async with timeout:
                left = remaining_time()
            assert remaining_time() is None
            return left

        left = asyncio.run(main())

        assert left is not None
        assert 0 < left <= (2 if use_fake else 60)

    def test_block_past_the_deadline_is_cancelled(self, clock):
        """
        The block is cancelled at the deadline, on the timeout's clock,
        and TimeoutExceededError is raised from the `async with`.
        """
        reached: list[str] = []

        async def main() -> None:
            async with Timeout(seconds=1.5, clock=clock, name="db"):
                await clock.asleep(10)
                reached.append("after the sleep")

        with pytest.raises(TimeoutExceededError) as info:
            asyncio.run(main())

        assert 1.5 == clock.now()
        assert [] == reached
        assert "db" == info.value.name
        assert isinstance(info.value.__cause__, asyncio.CancelledError)

    def test_concurrent_blocks_on_one_timeout(self, clock):
        """
        One Timeout serves concurrent blocks: each has its own deadline.
        """
        timeout = Timeout(seconds=2, clock=clock)

        async def block(seconds: float) -> str:
            try:
                async with timeout:
                    await clock.asleep(seconds)
            except TimeoutExceededError:
                return f"{seconds}: timed out at {clock.now()}"
            return f"{seconds}: done at {clock.now()}"

        async def main() -> list[str]:
            return await asyncio.gather(block(1), block(3), block(1.5))

        assert [
            "1: done at 1.0",
            "3: timed out at 2.0",
            "1.5: done at 1.5",
        ] == asyncio.run(main())
        assert TimeoutStatistics(timeouts=1) == timeout.statistics()

    @pytest.mark.parametrize("use_fake", [True, False], ids=["fake", "system"])
    def test_outside_a_task_restores_the_deadline(self, clock, use_fake):
        """
        Entering outside an event loop raises RuntimeError and leaves no
        deadline behind.
        """
        timeout = (
            Timeout(seconds=2, clock=clock) if use_fake else Timeout(seconds=2)
        )
        coro = timeout.__aenter__()

        with pytest.raises(RuntimeError):
            coro.send(None)

        assert remaining_time() is None

    def test_in_a_loop_callback_is_refused(self, clock):
        """
        With a fake clock, entering from a plain loop callback (no task)
        raises RuntimeError.
        """
        timeout = Timeout(seconds=2, clock=clock)
        errors: list[BaseException] = []

        def callback() -> None:
            coro = timeout.__aenter__()
            try:
                coro.send(None)
            except RuntimeError as e:
                errors.append(e)

        async def main() -> None:
            asyncio.get_running_loop().call_soon(callback)
            await asyncio.sleep(0)

        asyncio.run(main())

        assert "must run in an asyncio task" in str(errors[0])
        assert remaining_time() is None


class TestSyncCall:
    def test_returns_and_raises(self):
        """
        call returns the result and raises the function's own exception.
        """
        t = Timeout(seconds=60)

        assert "ok" == t.call(ok)
        with pytest.raises(Boom):
            t.call(boom)

    def test_base_exception_passes(self):
        """
        A KeyboardInterrupt in the function reaches the caller.
        """

        def interrupt() -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            Timeout(seconds=60).call(interrupt)

    def test_gives_up_at_fake_deadline(self, clock):
        """
        The caller stops waiting when the clock passes the deadline; the
        function goes on running until it returns.
        """
        gate = threading.Event()
        finished = threading.Event()
        t = Timeout(seconds=2, clock=clock)

        def slow() -> None:
            clock.advance(2.0)
            gate.wait()
            finished.set()

        with pytest.raises(TimeoutExceededError):
            t.call(slow)

        assert not finished.is_set()
        gate.set()
        finished.wait()
        assert TimeoutStatistics(1) == t.statistics()

    def test_worker_sees_deadline(self, clock):
        """
        The worker runs in a copy of the caller's context, deadline set.
        """
        marker: list[str] = []

        def read() -> tuple[float | None, str]:
            clock.advance(0.25)
            marker.append(threading.current_thread().name)
            return remaining_time()

        assert 0.75 == Timeout(seconds=1, clock=clock).call(read)
        assert ["stalwart-timeout"] == marker

    def test_outer_deadline_is_kept(self, clock):
        """
        A longer timeout inside a shorter deadline waits only until it.
        """
        gate = threading.Event()

        def slow() -> None:
            clock.advance(1.0)
            gate.wait()

        with deadline_scope(1.0, clock), pytest.raises(TimeoutExceededError):
            Timeout(seconds=5, clock=clock).call(slow)
        gate.set()

        assert 1.0 == clock.now()

    def test_decorator(self):
        """
        The decorator on a def runs it through call.
        """

        @Timeout(seconds=60)
        def where(x: int) -> tuple[int, str]:
            return x, threading.current_thread().name

        assert (3, "stalwart-timeout") == where(3)
        assert not inspect.iscoroutinefunction(where)
        assert "where" == where.__name__


class TestWorkers:
    def test_workers_are_reused(self):
        """
        Calls in sequence reuse an idle worker thread.
        """
        workers = _Workers(idle_timeout=60.0)
        first = workers.submit(threading.get_ident).result()

        assert first == workers.submit(threading.get_ident).result()

    def test_idle_worker_retires(self):
        """
        A worker with nothing to do exits.
        """
        workers = _Workers(idle_timeout=0.0)
        thread = workers.submit(threading.current_thread).result()

        thread.join()

        assert not thread.is_alive()
        assert 0 == workers._idle


class TestSignal:
    def test_alarm_interrupts_block(self):
        """
        SIGALRM inside the block raises TimeoutExceededError, and the
        previous handler and timer are back afterwards.
        """
        t = Timeout(seconds=60, name="block")
        before = signal.getsignal(signal.SIGALRM)

        with pytest.raises(TimeoutExceededError) as e:
            with t:
                assert 0 < remaining_time() <= 60
                signal.raise_signal(signal.SIGALRM)

        assert "block" == e.value.name
        assert before == signal.getsignal(signal.SIGALRM)
        assert (0.0, 0.0) == signal.getitimer(signal.ITIMER_REAL)
        assert remaining_time() is None

    def test_real_alarm(self):
        """
        A real timer interrupts a busy loop (it can end no other way).
        """
        with pytest.raises(TimeoutExceededError), Timeout(seconds=0.001):
            while True:
                pass

    def test_block_in_time(self):
        """
        A block that ends in time disarms the timer.
        """
        with Timeout(seconds=60):
            pass

        assert (0.0, 0.0) == signal.getitimer(signal.ITIMER_REAL)

    def test_restores_outer_handler_and_timer(self):
        """
        An earlier handler and a later timer are restored on exit.
        """
        calls: list[int] = []

        def outer(signum: int, frame: Any) -> None:
            calls.append(signum)

        previous = signal.signal(signal.SIGALRM, outer)
        signal.setitimer(signal.ITIMER_REAL, 500)
        try:
            with Timeout(seconds=60):
                assert outer != signal.getsignal(signal.SIGALRM)
            delay, _ = signal.getitimer(signal.ITIMER_REAL)
            handler = signal.getsignal(signal.SIGALRM)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

        assert outer == handler
        assert 60 < delay <= 500
        assert [] == calls

    def test_earlier_outer_alarm_stays_in_charge(self):
        """
        Inside an alarm due sooner, the block leaves it alone.
        """

        def outer(signum: int, frame: Any) -> None:
            raise Boom

        previous = signal.signal(signal.SIGALRM, outer)
        signal.setitimer(signal.ITIMER_REAL, 30)
        try:
            with Timeout(seconds=60):
                handler = signal.getsignal(signal.SIGALRM)
            with pytest.raises(Boom), Timeout(seconds=60):
                signal.raise_signal(signal.SIGALRM)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

        assert outer == handler

    def test_late_alarm_is_ignored(self):
        """
        An alarm landing while the block is being left does not raise.
        """
        from stalwart._timeout import _Alarm

        with Timeout(seconds=60):
            alarm = _Alarm._open[-1]
        alarm.on_alarm(signal.SIGALRM, None)

        assert [] == _Alarm._open

    def test_refused_off_main_thread(self):
        """
        Off the main thread the block is refused, pointing to call().
        """
        errors: list[BaseException] = []

        def run() -> None:
            try:
                with Timeout(seconds=1, name="w"):
                    pass
            except RuntimeError as e:
                errors.append(e)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()

        assert (
            "Timeout 'w': a sync `with` block can only be interrupted by "
            "SIGALRM, on the main thread of a POSIX system; use "
            "Timeout.call(fn, ...) to run the function on a worker thread "
            "instead"
        ) == str(errors[0])

    def test_refused_with_fake_clock(self, clock):
        """
        The signal path measures real time, so a fake clock is refused.
        """
        with pytest.raises(TypeError) as e, Timeout(seconds=1, clock=clock):
            pass

        assert (
            "Timeout '<unnamed>': a sync `with` block is interrupted by "
            "SIGALRM, which runs in real time and cannot follow "
            "FakeClock(now=0.0); use Timeout.call(fn, ...) instead"
        ) == str(e.value)
