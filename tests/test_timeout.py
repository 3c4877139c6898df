"""
Timeout: async cancellation, the sync worker thread, the signal path and
the deadline it sets.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import signal
import subprocess
import sys
import threading

from collections.abc import AsyncGenerator, Callable, Generator
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
    current_deadline,
    remaining_time,
)
from stalwart._deadline import deadline_scope
from stalwart._faces import guard_acall, guard_call
from stalwart._timeout import _ALARMS, _driver, _runs, _Workers
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
        assert TimeoutStatistics(name=t.name, timeouts=0) == t.statistics()

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
        assert TimeoutStatistics(name=t.name, timeouts=1) == t.statistics()

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

        assert TimeoutStatistics(name=t.name, timeouts=0) == t.statistics()

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
        assert (
            TimeoutStatistics(name=timeout.name, timeouts=1)
            == timeout.statistics()
        )

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
        assert TimeoutStatistics(name=t.name, timeouts=1) == t.statistics()

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


def _spin_until(predicate: Callable[[], bool]) -> None:
    """
    Spin until *predicate* holds (a state, never a duration).
    """
    while not predicate():
        pass


class TestSignal:
    def test_alarm_interrupts_block(self):
        """
        SIGALRM at the deadline raises TimeoutExceededError inside the
        block, and the previous handler and timer are back afterwards.
        """
        t = Timeout(seconds=0.001, name="block")
        before = signal.getsignal(signal.SIGALRM)

        with pytest.raises(TimeoutExceededError) as e, t:
            assert 0 < remaining_time() <= 0.001
            while True:
                pass

        assert "block" == e.value.name
        assert before == signal.getsignal(signal.SIGALRM)
        assert (0.0, 0.0) == signal.getitimer(signal.ITIMER_REAL)
        assert remaining_time() is None
        assert TimeoutStatistics(name=t.name, timeouts=1) == t.statistics()
        assert [] == _ALARMS.blocks

    def test_stray_signal_before_the_deadline(self):
        """
        A SIGALRM that comes before the deadline interrupts nothing.
        """
        with Timeout(seconds=60) as nothing:
            signal.raise_signal(signal.SIGALRM)

        assert nothing is None

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

    def test_earlier_outer_alarm_still_goes_off(self):
        """
        An alarm set before the block and due sooner still runs its own
        handler at its time; the timeout counts nothing.
        """

        def outer(signum: int, frame: Any) -> None:
            raise Boom

        previous = signal.signal(signal.SIGALRM, outer)
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        t = Timeout(seconds=60)
        try:
            with pytest.raises(Boom), t:
                while True:
                    pass
            handler = signal.getsignal(signal.SIGALRM)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

        assert outer == handler
        assert TimeoutStatistics(name=t.name, timeouts=0) == t.statistics()

    def test_earlier_ignored_alarm(self):
        """
        An outer alarm whose handler is SIG_IGN goes off without effect,
        and SIG_IGN is back afterwards.
        """
        previous = signal.signal(signal.SIGALRM, signal.SIG_IGN)
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        try:
            with Timeout(seconds=60):
                _spin_until(lambda: _ALARMS.outside[1] is None)  # type: ignore[index]  # open while inside
            handler = signal.getsignal(signal.SIGALRM)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

        assert signal.SIG_IGN == handler

    def test_earlier_default_alarm_ends_the_process(self):
        """
        An outer alarm with the default action ends the process at its
        time, as it would have without the block.
        """
        script = (
            "import signal, stalwart\n"
            "signal.setitimer(signal.ITIMER_REAL, 0.001)\n"
            "with stalwart.Timeout(seconds=60):\n"
            "    while True:\n"
            "        pass\n"
        )

        done = subprocess.run(
            [sys.executable, "-c", script], check=False, capture_output=True
        )

        assert -signal.SIGALRM == done.returncode

    def test_signal_while_busy_is_held(self):
        """
        A signal that lands while a block is being opened or closed is
        held, then looked at once that is done.
        """
        with Timeout(seconds=60):
            _ALARMS.busy = True
            _ALARMS._on_alarm(signal.SIGALRM, None)
            assert _ALARMS.pending
            _ALARMS._done()
            _spin_until(lambda: signal.getitimer(signal.ITIMER_REAL)[0] > 1)

        assert not _ALARMS.pending

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

    def test_refused_on_a_loop_thread(self):
        """
        Inside a coroutine, the sync block is refused on entry, pointing to
        `async with`: a signal would interrupt whatever task runs then.
        """
        before = signal.getsignal(signal.SIGALRM)

        async def main() -> None:
            with Timeout(seconds=1, name="api"):
                pass

        with pytest.raises(RuntimeError) as e:
            asyncio.run(main())

        assert (
            "Timeout 'api': a sync `with` block on the thread of a running"
            " event loop would be interrupted by SIGALRM wherever the loop"
            " is at the deadline (in another task, say); in async code use"
            " `async with timeout:`"
        ) == str(e.value)
        assert before == signal.getsignal(signal.SIGALRM)
        assert [] == _ALARMS.blocks

    @pytest.mark.parametrize("failing", ["setitimer", "signal"])
    def test_arming_failure_leaves_nothing(self, monkeypatch, failing):
        """
        If the platform refuses to arm the alarm, the block is not entered
        and leaves no handler, timer or deadline behind.
        """
        before = signal.getsignal(signal.SIGALRM)
        real = getattr(signal, failing)
        calls = [0]

        def refuse(*args: Any) -> Any:
            calls[0] += 1
            if calls[0] == 1:
                raise OSError("refused")
            return real(*args)

        monkeypatch.setattr(signal, failing, refuse)
        with pytest.raises(OSError, match="refused"), Timeout(seconds=1):
            pass
        monkeypatch.undo()

        assert before == signal.getsignal(signal.SIGALRM)
        assert (0.0, 0.0) == signal.getitimer(signal.ITIMER_REAL)
        assert remaining_time() is None
        assert [] == _ALARMS.blocks

    def test_deadline_beyond_the_platform(self):
        """
        A deadline longer than setitimer() can hold is armed in steps.
        """
        with Timeout(seconds=1e10):
            delay, _ = signal.getitimer(signal.ITIMER_REAL)
            left = remaining_time()

        assert 0 < delay <= 1e9
        assert left is not None and left > 9e9

    def test_nested_blocks_count_the_outer_deadline(self):
        """
        Inside a block due sooner, a longer block is interrupted by the
        outer deadline, which alone counts a timeout.
        """
        outer = Timeout(seconds=0.001, name="outer")
        inner = Timeout(seconds=60, name="inner")

        with pytest.raises(TimeoutExceededError) as e, outer, inner:
            while True:
                pass

        assert "outer" == e.value.name
        assert (1, 0) == (
            outer.statistics().timeouts,
            inner.statistics().timeouts,
        )

    def test_inner_call_cut_short_counts_the_outer(self):
        """
        A Timeout.call inside a block due sooner ends with the block's
        deadline, counted once by the block and never by the call.
        """
        gate = threading.Event()
        outer = Timeout(seconds=0.01, name="outer")
        inner = Timeout(seconds=60, name="inner")

        with pytest.raises(TimeoutExceededError) as e, outer:
            inner.call(gate.wait)
        gate.set()

        assert "outer" == e.value.name
        assert (1, 0) == (
            outer.statistics().timeouts,
            inner.statistics().timeouts,
        )


class TestSignalGenerators:
    def test_blocks_end_out_of_order(self):
        """
        Two generators holding `with timeout:` across a yield, stepped
        alternately: each block takes its own alarm away, so the one left
        is armed for its own deadline, and the end of both restores all.
        """
        before = signal.getsignal(signal.SIGALRM)

        def gen(seconds: float) -> Generator[None, None, None]:
            with Timeout(seconds=seconds):
                yield
                yield

        first, second = gen(60), gen(120)
        next(first)
        next(second)
        list(first)
        delay, _ = signal.getitimer(signal.ITIMER_REAL)
        open_blocks = [alarm.timeout.seconds for alarm in _ALARMS.blocks]
        list(second)

        assert 60 < delay <= 120
        assert [120.0] == open_blocks
        assert before == signal.getsignal(signal.SIGALRM)
        assert (0.0, 0.0) == signal.getitimer(signal.ITIMER_REAL)
        assert remaining_time() is None

    def test_suspended_block_is_not_interrupted(self):
        """
        A block suspended at a yield when its deadline passes interrupts
        nothing: the code that stepped the generator runs on; closing the
        generator then raises nothing and counts nothing.
        """
        t = Timeout(seconds=0.001)

        def gen() -> Generator[None, None, None]:
            with t:
                yield

        suspended = gen()
        next(suspended)
        _spin_until(lambda: _ALARMS.blocks[0].expired)
        suspended.close()

        assert TimeoutStatistics(name=t.name, timeouts=0) == t.statistics()
        assert [] == _ALARMS.blocks
        assert (0.0, 0.0) == signal.getitimer(signal.ITIMER_REAL)

    @pytest.mark.parametrize("busy", [True, False], ids=["runs", "ends"])
    def test_suspended_block_times_out_when_it_runs(self, busy):
        """
        A block whose deadline passed while it was suspended is interrupted
        once it runs again, or raises TimeoutExceededError at its end if it
        ends at once.
        """
        t = Timeout(seconds=0.001)

        def gen() -> Generator[None, None, None]:
            with t:
                yield
                while busy:
                    pass

        suspended = gen()
        next(suspended)
        _spin_until(lambda: _ALARMS.blocks[0].expired)

        with pytest.raises(TimeoutExceededError):
            next(suspended)
        assert TimeoutStatistics(name=t.name, timeouts=1) == t.statistics()


class TestValues:
    def test_negative_zero_reads_as_zero(self):
        """
        seconds=-0.0 is zero: it warns like zero and never says "-0s".
        """
        with pytest.warns(UserWarning, match="gives up on every call"):
            t = Timeout(seconds=-0.0)

        assert "0.0" == repr(t.seconds)
        with pytest.raises(TimeoutExceededError) as e:
            t.call(threading.Event().wait)
        assert "timed out after 0s" in str(e.value)

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (
                True,
                "'seconds' must be a number of seconds or a timedelta (got True)",
            ),
            (
                float("nan"),
                "'seconds' must be a number, not NaN (got nan)",
            ),
            (
                10**400,
                "'seconds' must be a number of seconds that fits a float (got "
                + str(10**400)
                + ")",
            ),
        ],
        ids=["bool", "nan", "huge-int"],
    )
    def test_refused_where_built(self, value, message):
        """
        Bools, NaN and ints a float cannot hold are refused where the
        timeout is built.
        """
        with pytest.raises(ConfigurationError) as e:
            Timeout(seconds=value)

        assert message == str(e.value)

    def test_call_beyond_the_platform(self):
        """
        A limit longer than the platform can wait (about 292 years) waits
        as if unbounded: the call works.
        """
        assert "ok" == Timeout(seconds=1e10).call(ok)

    @pytest.mark.parametrize("seconds", [1e10, 1e300])
    def test_async_beyond_the_platform(self, seconds):
        """
        The async faces take limits far beyond any timer, on both clocks.
        """
        clock = FakeClock()

        async def quick() -> str:
            await clock.asleep(1)
            return "ok"

        assert "ok" == asyncio.run(Timeout(seconds=seconds).acall(quick))
        assert "ok" == asyncio.run(
            Timeout(seconds=seconds, clock=clock).acall(quick)
        )


class TestSyncMisuse:
    def test_call_on_a_loop_thread(self):
        """
        call() inside a coroutine would block the event loop: it raises
        RuntimeError naming acall() instead.
        """
        t = Timeout(seconds=1, name="api")

        async def main() -> None:
            t.call(ok)

        with pytest.raises(RuntimeError) as e:
            asyncio.run(main())

        assert str(e.value).startswith(
            "Timeout 'api': call() would block the event loop"
        )
        assert "await timeout.acall()" in str(e.value)

    def test_call_with_an_async_function(self):
        """
        call() given an async function, or a function returning a
        coroutine, raises TypeError naming acall() and counts nothing.
        """
        t = Timeout(seconds=60, name="api")

        async def fetch() -> str:
            return "never awaited"

        with pytest.raises(TypeError, match=r"use acall\(\)"):
            t.call(fetch)
        with pytest.raises(TypeError, match=r"use acall\(\)"):
            t.call(lambda: fetch())

        assert TimeoutStatistics(name=t.name, timeouts=0) == t.statistics()

    def test_decorated_generator_function_refused(self):
        """
        A sync generator's steps cannot be interrupted: decorating one is
        refused with TypeError.
        """

        def numbers() -> Generator[int, None, None]:
            yield 1

        with pytest.raises(TypeError, match="cannot guard the generator"):
            Timeout(seconds=1)(numbers)

    def test_inner_call_cut_short_counts_only_the_outer(self, clock):
        """
        A Timeout.call inside another's worker ends at the outer deadline;
        only the outer timeout counts it.
        """
        gate = threading.Event()
        outer = Timeout(seconds=1, name="outer", clock=clock)
        inner = Timeout(seconds=5, name="inner", clock=clock)

        def slow() -> None:
            clock.advance(1.0)
            gate.wait()

        with pytest.raises(TimeoutExceededError) as e:
            outer.call(inner.call, slow)
        gate.set()

        assert "outer" == e.value.name
        assert 1.0 == clock.now()
        assert (1, 0) == (
            outer.statistics().timeouts,
            inner.statistics().timeouts,
        )

    def test_cut_error_reaching_the_outer_call_counts_once(self, clock):
        """
        When the inner call's cut error reaches the outer call before its
        own wait ends, the outer counts it, once.
        """
        outer = Timeout(seconds=1, name="outer", clock=clock)

        def cut() -> None:
            deadline = current_deadline()
            assert deadline is not None
            raise deadline.cut()

        with pytest.raises(TimeoutExceededError) as e:
            outer.call(cut)

        assert "outer" == e.value.name
        assert (
            TimeoutStatistics(name=outer.name, timeouts=1)
            == outer.statistics()
        )

    def test_own_timeout_error_from_the_function(self, clock):
        """
        A TimeoutExceededError of another timeout, raised by the function,
        passes and is not counted here.
        """
        t = Timeout(seconds=1, clock=clock)

        def other() -> None:
            raise TimeoutExceededError("other", 2.0)

        with pytest.raises(TimeoutExceededError, match="other"):
            t.call(other)
        assert TimeoutStatistics(name=t.name, timeouts=0) == t.statistics()

    def test_hook_raising_base_exception(self, clock):
        """
        A KeyboardInterrupt from a hook on a timeout propagates and leaves
        no deadline behind.
        """
        gate = threading.Event()

        def interrupt(event: Event) -> None:
            raise KeyboardInterrupt

        t = Timeout(seconds=1, clock=clock, hooks=interrupt)

        def slow() -> None:
            clock.advance(1.0)
            gate.wait()

        with pytest.raises(KeyboardInterrupt):
            t.call(slow)
        gate.set()

        assert remaining_time() is None
        assert TimeoutStatistics(name=t.name, timeouts=1) == t.statistics()


class TestAsyncMisuse:
    @pytest.mark.parametrize("fake", [True, False], ids=["fake", "system"])
    def test_acall_with_a_plain_function(self, fake):
        """
        acall() given a plain function raises TypeError naming call(),
        counts nothing and leaves no deadline or timer behind.
        """
        clock = FakeClock()
        t = Timeout(seconds=1, clock=clock) if fake else Timeout(seconds=1)

        async def main() -> tuple[float | None, int]:
            with pytest.raises(TypeError, match=r"use call\(\)"):
                await t.acall(ok)  # type: ignore[arg-type]  # the misuse under test
            await asyncio.sleep(0)
            pending = [
                task
                for task in asyncio.all_tasks()
                if task is not asyncio.current_task()
            ]
            return remaining_time(), len(pending)

        assert (None, 0) == asyncio.run(main())
        assert TimeoutStatistics(name=t.name, timeouts=0) == t.statistics()

    def test_async_callable_object(self, clock):
        """
        The decorator takes an object whose __call__ is async as an async
        function.
        """

        class Fetch:
            """An async callable object."""

            async def __call__(self) -> str:
                await clock.asleep(5)
                return "late"

        fetch = Timeout(seconds=1, clock=clock)(Fetch())

        with pytest.raises(TimeoutExceededError):
            asyncio.run(fetch())

    def test_function_raising_before_awaiting(self, clock):
        """
        A function that raises instead of returning an awaitable passes its
        exception through, and leaves no deadline.
        """

        def broken() -> Any:
            raise Boom

        async def main() -> float | None:
            with pytest.raises(Boom):
                await Timeout(seconds=1, clock=clock).acall(broken)
            return remaining_time()

        assert asyncio.run(main()) is None

    def test_hook_raising_base_exception(self, clock):
        """
        A KeyboardInterrupt from a hook on an async timeout propagates and
        leaves no deadline behind.
        """

        def interrupt(event: Event) -> None:
            raise KeyboardInterrupt

        t = Timeout(seconds=1, clock=clock, hooks=interrupt)

        async def main() -> float | None:
            with pytest.raises(KeyboardInterrupt):
                await t.acall(_forever(clock))
            return remaining_time()

        assert asyncio.run(main()) is None

    def test_hidden_driver_falls_back_to_the_task(self, clock):
        """
        A block driven through an awaitable stalwart cannot look into is
        cancelled in the task that entered it.
        """

        class Opaque:
            """An awaitable that hides the coroutine it runs."""

            def __init__(self, coro: Any) -> None:
                self.coro = coro

            def __await__(self) -> Any:
                return (yield from self.coro.__await__())

        async def main() -> None:
            await Opaque(
                Timeout(seconds=1, clock=clock).acall(_forever(clock))
            )

        with pytest.raises(TimeoutExceededError):
            asyncio.run(main())
        assert 1.0 == clock.now()


class TestInheritedDeadlines:
    def test_async_with_in_a_call_worker_fake(self, clock):
        """
        An async with inside Timeout.call's worker is cancelled at the
        outer, shorter deadline (not its own); only the outer counts.
        """
        outer = Timeout(seconds=1, name="outer", clock=clock)
        inner = Timeout(seconds=5, name="inner", clock=clock)

        async def work() -> None:
            async with inner:
                await clock.asleep(10)

        with pytest.raises(TimeoutExceededError) as e:
            outer.call(asyncio.run, work())

        assert ("outer", 1.0) == (e.value.name, clock.now())
        assert (1, 0) == (
            outer.statistics().timeouts,
            inner.statistics().timeouts,
        )

    def test_async_with_in_a_call_worker_system(self):
        """
        The same with the system clock: the inner block is cancelled at the
        outer deadline (it can end no other way).
        """
        outer = Timeout(seconds=0.01, name="outer")
        inner = Timeout(seconds=60, name="inner")

        async def work() -> None:
            async with inner:
                await asyncio.Event().wait()

        with pytest.raises(TimeoutExceededError) as e:
            outer.call(asyncio.run, work())

        assert "outer" == e.value.name
        assert 0 == inner.statistics().timeouts

    def test_acall_under_a_bare_deadline(self, clock):
        """
        Under a deadline that no Timeout owns, acall is cut short there,
        with an error naming the deadline, and counts nothing.
        """
        inner = Timeout(seconds=5, name="inner", clock=clock)

        async def main() -> None:
            await inner.acall(_forever(clock))

        with (
            deadline_scope(1.0, clock),
            pytest.raises(TimeoutExceededError) as e,
        ):
            asyncio.run(main())

        assert ("<deadline>", 1.0) == (e.value.name, e.value.timeout)
        assert 1.0 == clock.now()
        assert (
            TimeoutStatistics(name=inner.name, timeouts=0)
            == inner.statistics()
        )

    @pytest.mark.parametrize("fake", [True, False], ids=["fake", "system"])
    def test_nested_blocks_in_one_task(self, fake):
        """
        A longer block inside a shorter one ends at the outer deadline,
        which alone counts; the reverse counts the inner.
        """
        clock = FakeClock()

        def make(seconds: float, name: str) -> Timeout:
            if fake:
                return Timeout(seconds=seconds, name=name, clock=clock)
            return Timeout(seconds=seconds / 100, name=name)

        outer, inner = make(1, "outer"), make(5, "inner")
        short, long = make(1, "short"), make(5, "long")

        async def nested(first: Timeout, second: Timeout) -> str:
            try:
                async with first, second:
                    await asyncio.Event().wait()
            except TimeoutExceededError as e:
                return e.name
            return "unreachable"  # pragma: no cover

        assert "outer" == asyncio.run(nested(outer, inner))
        assert "short" == asyncio.run(nested(long, short))
        assert [1, 0, 1, 0] == [
            t.statistics().timeouts for t in (outer, inner, short, long)
        ]

    def test_background_task_under_an_outer_block(self, clock):
        """
        A task started inside a block and shielded from its cancellation is
        still cut short at the block's deadline by its own inner block; the
        outer counts once.
        """
        outer = Timeout(seconds=1, name="outer", clock=clock)
        inner = Timeout(seconds=5, name="inner", clock=clock)
        seen: list[str] = []

        async def child() -> None:
            try:
                async with inner:
                    await clock.asleep(10)
            except TimeoutExceededError as e:
                seen.append(f"{e.name} at {clock.now():g}")

        async def main() -> None:
            with pytest.raises(TimeoutExceededError):
                async with outer:
                    task = asyncio.create_task(child())
                    await asyncio.shield(task)
            await task

        asyncio.run(main())

        assert ["outer at 1"] == seen
        assert (1, 0) == (
            outer.statistics().timeouts,
            inner.statistics().timeouts,
        )


class TestAsyncGenerators:
    def test_deadline_belongs_to_the_block(self, clock):
        """
        An async generator holding `async with timeout:` across a yield,
        stepped from different tasks, ends without error within the
        deadline its block set at entry; another task stepping it does not
        see that deadline (context variables belong to tasks), though it
        is enforced there too (see the next test).
        """
        t = Timeout(seconds=2, clock=clock)

        async def agen() -> AsyncGenerator[float | None, None]:
            async with t:
                yield remaining_time()
                await clock.asleep(1)
                yield remaining_time()

        async def main() -> list[float | None]:
            gen = agen()
            seen = [await asyncio.create_task(anext(gen))]
            seen.append(await asyncio.wait_for(anext(gen), 100))
            with pytest.raises(StopAsyncIteration):
                await asyncio.create_task(anext(gen))
            return seen

        assert [2.0, None] == asyncio.run(main())
        assert TimeoutStatistics(name=t.name, timeouts=0) == t.statistics()
        assert 0 == len(t._blocks)

    @pytest.mark.parametrize("step", ["create_task", "wait_for"])
    def test_task_running_the_block_is_cancelled(self, clock, step):
        """
        At the deadline, the task stepping the block is cancelled, not the
        task that entered it, which goes on undisturbed.
        """
        t = Timeout(seconds=2, clock=clock, name="g")

        async def agen() -> AsyncGenerator[str, None]:
            async with t:
                yield "first"
                await clock.asleep(5)
                yield "late"

        async def main() -> list[str]:
            gen = agen()
            seen = [await anext(gen)]

            async def bystander() -> str:
                await clock.asleep(10)
                return "bystander done"

            other = asyncio.create_task(bystander())
            try:
                if step == "create_task":
                    await asyncio.create_task(anext(gen))
                else:
                    await asyncio.wait_for(anext(gen), 100)
            except TimeoutExceededError as e:
                seen.append(f"{e.name} at {clock.now():g}")
            seen.append(await other)
            return seen

        assert ["first", "g at 2", "bystander done"] == asyncio.run(main())
        assert TimeoutStatistics(name=t.name, timeouts=1) == t.statistics()

    def test_suspended_block_is_left_alone(self, clock):
        """
        A block suspended at a yield when its deadline passes cancels
        nothing (the consumer runs on), and is cancelled once it runs again.
        """
        t = Timeout(seconds=2, clock=clock)

        async def agen() -> AsyncGenerator[int, None]:
            async with t:
                yield 1
                await clock.asleep(100)
                yield 2  # pragma: no cover  # cancelled before

        async def main() -> tuple[float, float]:
            gen = agen()
            await anext(gen)
            await clock.asleep(5)  # past the deadline: not interrupted
            consumer_done = clock.now()
            with pytest.raises(TimeoutExceededError):
                await anext(gen)
            return consumer_done, clock.now()

        consumer_done, cut = asyncio.run(main())

        assert 5.0 == consumer_done
        assert 5.0 < cut < 6.0
        assert TimeoutStatistics(name=t.name, timeouts=1) == t.statistics()

    def test_suspended_block_that_ends_times_out(self, clock):
        """
        A block past its deadline while suspended, that ends without
        awaiting once resumed, raises TimeoutExceededError at its end.
        """
        t = Timeout(seconds=2, clock=clock)

        async def agen() -> AsyncGenerator[int, None]:
            async with t:
                yield 1

        async def main() -> None:
            gen = agen()
            await anext(gen)
            await clock.asleep(5)
            with pytest.raises(TimeoutExceededError):
                await anext(gen)

        asyncio.run(main())

        assert TimeoutStatistics(name=t.name, timeouts=1) == t.statistics()

    def test_suspended_block_closed(self, clock):
        """
        Closing a generator whose block is past its deadline raises nothing
        and counts nothing.
        """
        t = Timeout(seconds=2, clock=clock)

        async def agen() -> AsyncGenerator[int, None]:
            async with t:
                yield 1

        async def main() -> None:
            gen = agen()
            await anext(gen)
            await clock.asleep(5)
            await gen.aclose()

        asyncio.run(main())

        assert TimeoutStatistics(name=t.name, timeouts=0) == t.statistics()

    def test_suspended_block_on_the_system_clock(self):
        """
        With the system clock, a block suspended past its deadline is
        cancelled once it runs again (it can end no other way).
        """
        t = Timeout(seconds=0.001)

        async def agen() -> AsyncGenerator[int, None]:
            async with t:
                yield 1
                await asyncio.Event().wait()
                yield 2  # pragma: no cover  # cancelled before

        async def main() -> None:
            gen = agen()
            await anext(gen)
            (block,) = t._blocks.held.values()
            while not block.expired:  # noqa: ASYNC110  # set by a loop timer
                await asyncio.sleep(0)
            with pytest.raises(TimeoutExceededError):
                await anext(gen)

        asyncio.run(main())

        assert TimeoutStatistics(name=t.name, timeouts=1) == t.statistics()

    def test_decorated_async_generator(self, clock):
        """
        A decorated async generator runs its whole iteration under one
        deadline, from its first step.
        """

        @Timeout(seconds=2.5, clock=clock)
        async def numbers() -> AsyncGenerator[int, None]:
            for i in range(5):
                await clock.asleep(1)
                yield i

        async def main() -> list[int]:
            seen = []
            with pytest.raises(TimeoutExceededError):
                async for i in numbers():
                    seen.append(i)
            return seen

        assert [0, 1] == asyncio.run(main())
        assert 2.5 == clock.now()

    def test_nested_blocks_in_one_function(self, clock):
        """
        Blocks of one timeout nested in one coroutine each keep their own
        deadline.
        """
        t = Timeout(seconds=2, clock=clock)

        async def main() -> list[float | None]:
            seen = []
            async with t:
                await clock.asleep(1)
                async with t:
                    seen.append(remaining_time())
                seen.append(remaining_time())
            return seen

        assert [1.0, 1.0] == asyncio.run(main())

    def test_no_growth_of_the_context(self, clock):
        """
        Ten thousand timeouts each used once in `async with` leave the
        caller's context as it was.
        """
        timeouts = [Timeout(seconds=1, clock=clock) for _ in range(10_000)]

        async def main() -> int:
            before = len(contextvars.copy_context())
            for t in timeouts:
                async with t:
                    pass
            return len(contextvars.copy_context()) - before

        assert 0 == asyncio.run(main())
        assert all(len(t._blocks) == 0 for t in timeouts)


class TestGuardProtocol:
    def test_generic_sync_face_is_the_signal_block(self):
        """
        Through the generic call face of stalwart._faces, a timeout guards
        a call on the main thread with its signal block.
        """
        t = Timeout(seconds=0.001)

        def busy() -> None:
            while True:
                pass

        with pytest.raises(TimeoutExceededError):
            guard_call(t, busy, (), {})
        assert "ok" == guard_call(Timeout(seconds=60), ok, (), {})
        assert TimeoutStatistics(name=t.name, timeouts=1) == t.statistics()
        assert [] == _ALARMS.blocks

    def test_generic_faces_refuse_misuse(self, clock):
        """
        The generic faces give the block back, counting nothing, when call
        gets something awaitable or acall something that is not.
        """
        t = Timeout(seconds=60)
        fake = Timeout(seconds=60, clock=clock)

        async def fetch() -> str:
            return "never awaited"

        with pytest.raises(TypeError, match=r"use acall\(\)"):
            guard_call(t, fetch, (), {})
        with pytest.raises(TypeError, match=r"use call\(\)"):
            asyncio.run(guard_acall(fake, ok, (), {}))

        assert "never awaited" == asyncio.run(guard_acall(fake, fetch, (), {}))
        assert [] == _ALARMS.blocks
        assert (0, 0) == (
            t.statistics().timeouts,
            fake.statistics().timeouts,
        )


class TestDriver:
    def test_task_about_to_step_a_suspended_generator(self, clock):
        """
        A task created to step a generator whose block is suspended at a
        yield, but not started yet, is not taken for the task running it.
        """
        t = Timeout(seconds=1, clock=clock)

        async def agen() -> AsyncGenerator[int, None]:
            async with t:
                yield 1

        async def main() -> tuple[bool, bool]:
            gen = agen()
            await anext(gen)
            (block,) = t._blocks.held.values()
            pending = asyncio.create_task(anext(gen))
            found = _runs(pending, block.frame), _driver(block) is None
            with pytest.raises(StopAsyncIteration):
                await pending
            return found

        assert (False, True) == asyncio.run(main())

    def test_block_in_a_coroutine_awaited_by_a_generator(self, clock):
        """
        A block in a coroutine that an async generator awaits is cancelled
        in the task stepping the generator.
        """
        t = Timeout(seconds=1, clock=clock, name="inner")

        async def helper() -> None:
            async with t:
                await clock.asleep(10)

        async def agen() -> AsyncGenerator[int, None]:
            yield 1
            await helper()
            yield 2  # pragma: no cover  # cancelled before

        async def main() -> None:
            gen = agen()
            await anext(gen)
            with pytest.raises(TimeoutExceededError):
                await asyncio.create_task(anext(gen))

        asyncio.run(main())

        assert 1.0 == clock.now()

    def test_arming_failure_leaves_no_deadline(self, monkeypatch):
        """
        If the event loop refuses the timer, the block is not entered and
        leaves no deadline behind.
        """

        def refuse(*args: Any) -> Any:
            raise RuntimeError("no timers today")

        async def main() -> float | None:
            monkeypatch.setattr(
                asyncio.get_running_loop(), "call_later", refuse
            )
            with pytest.raises(RuntimeError, match="no timers"):
                async with Timeout(seconds=1):
                    pass
            return remaining_time()

        assert asyncio.run(main()) is None

    def test_signal_held_with_no_block_open(self):
        """
        A signal held while the last block closes leaves nothing armed.
        """
        with Timeout(seconds=60):
            _ALARMS.busy = True
            _ALARMS._on_alarm(signal.SIGALRM, None)
        assert not _ALARMS.pending
        assert (0.0, 0.0) == signal.getitimer(signal.ITIMER_REAL)
