"""
The clock seam: SystemClock, DefaultClock, FakeClock and use_clock.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import pytest

import stalwart._clock
import stalwart.testing

from stalwart import Clock, ConfigurationError, DefaultClock, SystemClock
from stalwart._clock import DEFAULT_CLOCK, observe_real_waits, wait_event
from stalwart.testing import FakeClock, use_clock


YEAR = 365 * 86400.0  # the longest real wait made in one go


class _Alarm(Exception):
    """
    Raised by the SIGALRM handler of the real-time smoke tests.
    """


@pytest.fixture(name="alarm")
def _alarm():
    """
    Raise _Alarm in the main thread 10 ms after the test calls alarm().
    """
    if not hasattr(signal, "setitimer"):
        pytest.skip("needs SIGALRM")

    def ring(signum, frame):
        raise _Alarm

    previous = signal.signal(signal.SIGALRM, ring)
    yield lambda: signal.setitimer(signal.ITIMER_REAL, 0.01)
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(name="fake_blocks")
def _fake_blocks(monkeypatch):
    """
    Make _clock's real blocking sleeps record their length and move a fake
    monotonic time instead of waiting.
    """
    blocks: list[float] = []
    now = [0.0]

    def block(seconds: float) -> None:
        blocks.append(seconds)
        if len(blocks) > 5:
            raise _Alarm
        now[0] += seconds

    monkeypatch.setattr(stalwart._clock, "_block", block)
    monkeypatch.setattr(stalwart._clock, "_monotonic", lambda: now[0])
    return blocks


class _StepClock:
    """
    A clock that runs "in real time" (no wait_event of its own), whose time
    the waits below move by hand.
    """

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        raise AssertionError("unreachable")

    async def asleep(self, seconds: float) -> None:
        raise AssertionError("unreachable")


class _StepEvent(threading.Event):
    """
    An event whose timed waits record their timeout and move a _StepClock
    by it; it is set during the wait numbered *set_on* (from 1).
    """

    def __init__(self, clock: _StepClock, set_on: int = 0) -> None:
        super().__init__()
        self.clock = clock
        self.set_on = set_on
        self.timeouts: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        if timeout is None or len(self.timeouts) > 5:
            raise _Alarm
        self.clock.t += timeout
        if len(self.timeouts) == self.set_on:
            self.set()
        return self.is_set()


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

    def test_long_sleep_is_made_in_chunks(self, fake_blocks):
        """
        A sleep longer than the platform can block in one go is made in
        chunks of a year and lasts as long as asked.
        """
        SystemClock().sleep(2.5 * YEAR)

        assert [YEAR, YEAR, 0.5 * YEAR] == fake_blocks

    def test_infinite_sleep_never_ends(self, fake_blocks):
        """
        sleep(inf) sleeps a year at a time, forever.
        """
        with pytest.raises(_Alarm):
            SystemClock().sleep(float("inf"))

        assert [YEAR] * 6 == fake_blocks

    def test_short_sleep_is_one_block(self, fake_blocks):
        """
        A sleep the platform can hold is one time.sleep() call.
        """
        SystemClock().sleep(YEAR)

        assert [YEAR] == fake_blocks

    @pytest.mark.parametrize("seconds", [1e10, 1e12, float("inf")])
    def test_sleep_past_platform_limit_blocks(self, alarm, seconds):
        """
        A real sleep longer than threading.TIMEOUT_MAX blocks (until a
        signal interrupts it here) instead of raising OverflowError.
        """
        assert seconds > threading.TIMEOUT_MAX or seconds == float("inf")
        alarm()

        with pytest.raises(_Alarm):
            SystemClock().sleep(seconds)

    def test_async_sleep_takes_any_length(self):
        """
        asleep() of 1e12 s or inf waits (until cancelled) instead of
        raising.
        """

        async def main() -> list[bool]:
            tasks = [
                asyncio.ensure_future(SystemClock().asleep(seconds))
                for seconds in (1e12, float("inf"))
            ]
            await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return [task.cancelled() for task in tasks]

        assert [True, True] == asyncio.run(main())

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


class TestFakeClockValues:
    @pytest.mark.parametrize(
        "start",
        [float("-inf"), float("inf"), float("nan"), 10**400],
        ids=["-inf", "inf", "nan", "huge-int"],
    )
    def test_start_must_be_finite(self, start):
        """
        A start time that is not a finite float is refused where the clock
        is built, naming start and the value.
        """
        with pytest.raises(ConfigurationError) as e:
            FakeClock(start=start)

        assert str(e.value).startswith(
            f"'start' must be finite (got {start!r}"
        )

    @pytest.mark.parametrize(
        "start",
        [True, "1.0", None, [1.0]],
        ids=["bool", "str", "None", "list"],
    )
    def test_start_must_be_a_number(self, start):
        """
        A start time that is not a number (a bool included) is refused,
        naming start and the value.
        """
        with pytest.raises(ConfigurationError) as e:
            FakeClock(start)

        assert f"'start' must be a number of seconds (got {start!r})" == str(
            e.value
        )

    def test_int_start_becomes_float(self):
        """
        An int start time is accepted as the same float.
        """
        clock = FakeClock(start=-5)

        assert -5.0 == clock.now()
        assert isinstance(clock.now(), float)

    def test_every_problem_is_listed(self):
        """
        Several wrong options are reported together.
        """
        with pytest.raises(ConfigurationError) as e:
            FakeClock(start=float("nan"), autojump=1, wait_for_io="yes")

        assert (
            "invalid configuration:\n"
            "- 'start' must be finite (got nan)\n"
            "- 'autojump' must be a bool (got 1)\n"
            "- 'wait_for_io' must be a bool (got 'yes')"
        ) == str(e.value)

    def test_wait_for_io_needs_autojump(self):
        """
        wait_for_io without auto-jumping means nothing, so it is refused.
        """
        with pytest.raises(ConfigurationError, match="'wait_for_io' only"):
            FakeClock(autojump=False, wait_for_io=True)

    def test_options_are_readable(self):
        """
        autojump and wait_for_io read back as given.
        """
        default = FakeClock()
        manual = FakeClock(autojump=False)
        io = FakeClock(wait_for_io=True)

        assert (True, False) == (default.autojump, default.wait_for_io)
        assert (False, False) == (manual.autojump, manual.wait_for_io)
        assert (True, True) == (io.autojump, io.wait_for_io)

    @pytest.mark.parametrize(
        "seconds",
        [float("nan"), float("inf"), float("-inf"), 10**400],
        ids=["nan", "inf", "-inf", "huge-int"],
    )
    @pytest.mark.parametrize("method", ["advance", "sleep"])
    def test_advance_and_sleep_refuse_non_finite(self, method, seconds):
        """
        advance() and sleep() refuse NaN and infinities with a clear error,
        leaving time and the record alone.
        """
        clock = FakeClock(start=1.0)

        with pytest.raises(ValueError) as e:
            getattr(clock, method)(seconds)

        assert (
            f"{method}() takes a finite number of seconds (got {seconds!r})"
            == str(e.value)
        )
        assert 1.0 == clock.now()
        assert [] == clock.sleeps

    @pytest.mark.parametrize("seconds", [True, "1", None])
    @pytest.mark.parametrize("method", ["advance", "sleep"])
    def test_advance_and_sleep_refuse_non_numbers(self, method, seconds):
        """
        advance() and sleep() refuse what is not a number with TypeError.
        """
        clock = FakeClock()

        with pytest.raises(TypeError, match=f"{method}\\(\\) takes a number"):
            getattr(clock, method)(seconds)

        assert 0.0 == clock.now()

    def test_advance_past_the_largest_float_is_refused(self):
        """
        An advance that would make time infinite is refused; time stays.
        """
        clock = FakeClock(start=1e308)

        with pytest.raises(ValueError, match="past the largest float"):
            clock.advance(1e308)

        assert 1e308 == clock.now()

    def test_async_sleep_refuses_nan(self):
        """
        asleep(nan) is refused before anything is recorded.
        """
        clock = FakeClock()

        with pytest.raises(ValueError, match="not NaN"):
            asyncio.run(clock.asleep(float("nan")))

        assert [] == clock.sleeps

    def test_infinite_async_sleep_waits_until_cancelled(self):
        """
        asleep(inf) never draws a jump: other sleepers wake at their time,
        and it ends only when cancelled.
        """
        clock = FakeClock()

        async def main() -> bool:
            forever = asyncio.ensure_future(clock.asleep(float("inf")))
            await clock.asleep(1.0)
            await clock.asleep(2.0)
            forever.cancel()
            await asyncio.gather(forever, return_exceptions=True)
            return forever.cancelled()

        assert asyncio.run(main())
        assert 3.0 == clock.now()
        assert [1.0, float("inf"), 2.0] == clock.sleeps


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


class TestRealWaitEvent:
    def test_long_wait_is_made_in_chunks(self):
        """
        A wait longer than the platform can block in one go is made in
        chunks of a year, up to its deadline.
        """
        clock = _StepClock()
        event = _StepEvent(clock)

        wait_event(clock, event, 2.5 * YEAR)

        assert [YEAR, YEAR, 0.5 * YEAR] == event.timeouts

    def test_long_wait_ends_when_the_event_is_set(self):
        """
        A chunked wait ends with the chunk during which its event is set.
        """
        clock = _StepClock()
        event = _StepEvent(clock, set_on=2)

        wait_event(clock, event, 1e12)

        assert [YEAR, YEAR] == event.timeouts

    def test_infinite_deadline_waits_for_the_event(self):
        """
        A deadline of inf waits a year at a time until the event is set.
        """
        clock = _StepClock()
        event = _StepEvent(clock, set_on=3)

        wait_event(clock, event, float("inf"))

        assert [YEAR] * 3 == event.timeouts

    def test_past_deadline_does_not_block(self):
        """
        A deadline already reached returns at once (a zero wait).
        """
        clock = _StepClock()
        clock.t = 10.0
        event = _StepEvent(clock)

        wait_event(clock, event, 5.0)

        assert [0.0] == event.timeouts

    @pytest.mark.parametrize("until", [1e10, 1e12, float("inf")])
    def test_wait_past_platform_limit_blocks(self, alarm, until):
        """
        A real wait_event() with a deadline past threading.TIMEOUT_MAX
        blocks (until a signal interrupts it here) instead of raising
        OverflowError.
        """
        alarm()

        with pytest.raises(_Alarm):
            wait_event(
                SystemClock(), threading.Event(), time.monotonic() + until
            )


class TestObserveRealWaits:
    def test_reports_each_kind_of_real_wait(self):
        """
        Real sleeps, async sleeps and timed waits are reported with their
        length before they start, and may be stopped by the observer.
        """
        seen: list[tuple[str, float]] = []

        def observer(kind: str, seconds: float) -> None:
            seen.append((kind, seconds))
            if kind != "wait":  # the step clock's waits are instant
                raise _Alarm

        clock = _StepClock()
        event = _StepEvent(clock, set_on=1)
        with observe_real_waits(observer):
            with pytest.raises(_Alarm):
                SystemClock().sleep(2.0)
            with pytest.raises(_Alarm):
                SystemClock().asleep(3.0)
            wait_event(clock, event, 4.0)

        assert [("sleep", 2.0), ("asleep", 3.0), ("wait", 4.0)] == seen
        assert [4.0] == event.timeouts

    def test_ignores_waits_that_do_not_wait_on_time(self):
        """
        Zero waits, untimed waits, waits on a set event, past deadlines and
        every FakeClock wait are not reported.
        """
        seen: list[tuple[str, float]] = []
        system = SystemClock()
        step = _StepClock()
        fake = FakeClock()
        done = threading.Event()
        done.set()

        with observe_real_waits(lambda *wait: seen.append(wait)):
            system.sleep(0)
            asyncio.run(system.asleep(0))
            wait_event(system, done, None)
            wait_event(system, done, time.monotonic() + 60)
            wait_event(step, _StepEvent(step), -1.0)
            fake.sleep(1.0)
            asyncio.run(fake.asleep(1.0))
            wait_event(fake, threading.Event(), 0.5)

        assert [] == seen

    def test_observers_nest_and_leave(self):
        """
        Every observer in force is told; one that left is not.
        """
        outer: list[str] = []
        inner: list[str] = []

        def stop(kind: str, seconds: float) -> None:
            raise _Alarm

        with observe_real_waits(lambda kind, s: outer.append(kind)):
            with observe_real_waits(lambda kind, s: inner.append(kind)):
                with observe_real_waits(stop), pytest.raises(_Alarm):
                    SystemClock().sleep(1.0)
            with observe_real_waits(stop), pytest.raises(_Alarm):
                SystemClock().sleep(1.0)

        assert ["sleep", "sleep"] == outer
        assert ["sleep"] == inner
        assert () == stalwart._clock._observers


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
