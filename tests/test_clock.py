"""
The clock seam: SystemClock, DefaultClock, FakeClock and use_clock.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import stalwart.testing

from stalwart import Clock, DefaultClock, SystemClock
from stalwart._clock import DEFAULT_CLOCK
from stalwart.testing import FakeClock, use_clock


class TestSystemClock:
    def test_reads_monotonic_time(self):
        """
        now() is time.monotonic and never goes backwards.
        """
        clock = SystemClock()
        first = clock.now()
        second = clock.now()

        assert clock.now is time.monotonic
        assert second >= first

    def test_zero_sleeps_return(self):
        """
        sleep(0) and asleep(0) return (smoke test of the real waits).
        """
        clock = SystemClock()

        clock.sleep(0)
        asyncio.run(clock.asleep(0))

    def test_is_a_clock(self):
        """
        SystemClock, DefaultClock and FakeClock satisfy the Clock protocol.
        """
        assert isinstance(SystemClock(), Clock)
        assert isinstance(DefaultClock(), Clock)
        assert isinstance(FakeClock(), Clock)
        assert "SystemClock()" == repr(SystemClock())


class TestFakeClockSync:
    def test_starts_where_told(self):
        """
        The clock starts at *start* and only moves when advanced.
        """
        clock = FakeClock(start=10.0)

        assert 10.0 == clock.now()
        assert "FakeClock(now=10.0)" == repr(clock)

    def test_advance(self):
        """
        advance() moves time forward by exactly the amount given.
        """
        clock = FakeClock()
        clock.advance(1.5)
        clock.advance(0)

        assert 1.5 == clock.now()

    def test_advance_backwards_raises(self):
        """
        Time can't go backwards.
        """
        clock = FakeClock()

        with pytest.raises(ValueError, match="time can't go backwards"):
            clock.advance(-1)

    def test_sleep_advances_and_records(self):
        """
        sleep() advances at once and records each delay, zero included.
        """
        clock = FakeClock()
        clock.sleep(1.0)
        clock.sleep(0)
        clock.sleep(2.5)

        assert [1.0, 0, 2.5] == clock.sleeps
        assert 3.5 == clock.now()


class TestFakeClockAsync:
    def test_concurrent_sleeps_overlap(self):
        """
        Tasks sleeping 3 s and 5 s at once wake at t=3 and t=5, not t=8.
        """
        clock = FakeClock()
        woke: dict[str, float] = {}

        async def sleeper(name: str, seconds: float) -> None:
            await clock.asleep(seconds)
            woke[name] = clock.now()

        async def main() -> None:
            await asyncio.gather(sleeper("five", 5), sleeper("three", 3))

        asyncio.run(main())

        assert {"three": 3.0, "five": 5.0} == woke
        assert 5.0 == clock.now()
        assert [5, 3] == clock.sleeps

    def test_runnable_task_never_sees_time_move(self):
        """
        Time does not jump while another task can still run.
        """
        clock = FakeClock()
        seen: list[float] = []

        async def busy() -> None:
            for _ in range(100):
                seen.append(clock.now())
                await asyncio.sleep(0)

        async def main() -> None:
            await asyncio.gather(clock.asleep(1.0), busy())

        asyncio.run(main())

        assert {0.0} == set(seen)
        assert 1.0 == clock.now()

    def test_wakes_in_deadline_order(self):
        """
        Sleepers wake in the order of their deadlines.
        """
        clock = FakeClock()
        order: list[int] = []

        async def sleeper(i: int, seconds: float) -> None:
            await clock.asleep(seconds)
            order.append(i)

        async def main() -> None:
            await asyncio.gather(
                *(sleeper(i, s) for i, s in enumerate([4.0, 1.0, 3.0, 2.0]))
            )

        asyncio.run(main())

        assert [1, 3, 2, 0] == order

    def test_zero_sleep_yields_without_moving_time(self):
        """
        asleep(0) yields once and leaves time alone.
        """
        clock = FakeClock()

        asyncio.run(clock.asleep(0))

        assert 0.0 == clock.now()
        assert [0] == clock.sleeps

    def test_cancelled_sleep_does_not_move_time(self):
        """
        A cancelled sleeper leaves the schedule; time does not jump to it.
        """
        clock = FakeClock()

        async def main() -> None:
            task = asyncio.create_task(clock.asleep(10.0))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await clock.asleep(1.0)

        asyncio.run(main())

        assert 1.0 == clock.now()

    def test_advance_wakes_due_sleepers(self):
        """
        advance() from a test wakes the sleepers it passes.
        """
        clock = FakeClock()

        async def main() -> float:
            task = asyncio.create_task(clock.asleep(2.0))
            await asyncio.sleep(0)
            clock.advance(2.0)
            await task
            return clock.now()

        assert 2.0 == asyncio.run(main())

    def test_loop_without_ready_queue_still_jumps(self, monkeypatch):
        """
        On an event loop whose ready queue cannot be inspected, time still
        jumps after a few idle rounds.
        """
        clock = FakeClock()

        monkeypatch.setattr(
            stalwart.testing, "_ready_queue", lambda loop: None
        )

        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(clock.asleep(3.0))
        finally:
            loop.close()

        assert 3.0 == clock.now()

    def test_sleeper_on_other_loop_woken_by_jump(self):
        """
        A jump made for one event loop wakes due sleepers of another loop.
        """
        clock = FakeClock()
        other_started = threading.Event()
        done: list[float] = []

        def other_thread() -> None:
            async def sleep_long() -> None:
                await clock.asleep(1.0)
                done.append(clock.now())

            async def stay_busy() -> None:
                # Keeps this loop's ready queue non-empty, so only the
                # main thread's loop can make time jump.
                other_started.set()
                while not done:  # noqa: ASYNC110  # busy on purpose
                    await asyncio.sleep(0)

            async def main() -> None:
                await asyncio.gather(sleep_long(), stay_busy())

            asyncio.run(main())

        thread = threading.Thread(target=other_thread)
        thread.start()
        other_started.wait()
        asyncio.run(clock.asleep(1.0))
        thread.join()

        assert [1.0] == done

    def test_wake_of_a_cancelled_sleeper_is_skipped(self):
        """
        A sleeper cancelled after advance() woke it stays cancelled.
        """
        clock = FakeClock()

        async def main() -> bool:
            task = asyncio.create_task(clock.asleep(2.0))
            await asyncio.sleep(0)
            clock.advance(2.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return task.cancelled()

        assert asyncio.run(main())


class TestUseClock:
    def test_default_clock_follows_use_clock(self):
        """
        Inside use_clock(), the default clock reads and sleeps on the given
        clock; outside, it is the system clock again.
        """
        fake = FakeClock(start=100.0)

        with use_clock(fake) as installed:
            DEFAULT_CLOCK.sleep(2.0)
            now = DEFAULT_CLOCK.now()
            asyncio.run(DEFAULT_CLOCK.asleep(1.0))

        assert installed is fake
        assert 102.0 == now
        assert [2.0, 1.0] == fake.sleeps
        assert DEFAULT_CLOCK.now is time.monotonic
        assert isinstance(DEFAULT_CLOCK.target, SystemClock)

    def test_nested(self):
        """
        use_clock() blocks nest; the innermost clock wins.
        """
        outer, inner = FakeClock(1.0), FakeClock(2.0)

        with use_clock(outer):
            with use_clock(inner):
                assert 2.0 == DEFAULT_CLOCK.now()
                assert "FakeClock(now=2.0)" in repr(DEFAULT_CLOCK)
            assert 1.0 == DEFAULT_CLOCK.now()

    def test_out_of_order_exit_raises(self):
        """
        Exiting use_clock() blocks out of order is refused.
        """
        a, b = FakeClock(), FakeClock()
        first = use_clock(a)
        second = use_clock(b)
        first.__enter__()
        second.__enter__()

        with pytest.raises(RuntimeError, match="LIFO"):
            DEFAULT_CLOCK.pop(a)

        second.__exit__(None, None, None)
        first.__exit__(None, None, None)

        assert DEFAULT_CLOCK.now is time.monotonic
