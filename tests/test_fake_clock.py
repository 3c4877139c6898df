"""
FakeClock with threads and real I/O: auto-jumps wake blocked threads, and
the two ways to keep fake time still while real work is in flight.

Each test decides on states and counts (what was raised, what was read,
where fake time stands), never on how long anything took.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import stalwart

from stalwart.testing import FakeClock


class _SignalingSelector(selectors.DefaultSelector):
    """
    A selector that sets *ready* when the event loop polls it and *armed*
    says so (given the selector and the poll's timeout).
    """

    def __init__(
        self, armed: Callable[[_SignalingSelector, float | None], bool]
    ) -> None:
        super().__init__()
        self.armed = armed
        self.ready = threading.Event()

    def select(self, timeout: float | None = None) -> Any:
        if self.armed(self, timeout):
            self.ready.set()
        return super().select(timeout)


def _run(
    main: Callable[[], Awaitable[Any]], selector: _SignalingSelector
) -> Any:
    """
    Run *main* on a fresh selector event loop over *selector*; set
    *ready* at the end whatever happened, so no helper thread waits on.
    """
    loop = asyncio.SelectorEventLoop(selector)
    try:
        return loop.run_until_complete(main())
    finally:
        selector.ready.set()
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def _idle_on(
    sock: socket.socket,
) -> Callable[[_SignalingSelector, float | None], bool]:
    """
    Armed when the loop blocks (a poll that may wait) watching *sock*:
    nothing on it can run until *sock* is readable.
    """
    return lambda selector, timeout: (
        timeout != 0 and sock.fileno() in selector.get_map()
    )


def _watching(
    sock: socket.socket,
) -> Callable[[_SignalingSelector, float | None], bool]:
    """
    Armed when the loop polls, in any way, while it watches *sock*.
    """
    return lambda selector, timeout: sock.fileno() in selector.get_map()


def _in_background(fn: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=fn)
    thread.start()
    return thread


class TestAutoJumpWakesThreads:
    def test_bulkhead_waiter_gives_up_when_the_loop_jumps(self):
        """
        A thread queued in a bulkhead on the clock gives up when an event
        loop's auto-jump passes its max_wait, as it would after advance().
        """
        clock = FakeClock()
        bulkhead = stalwart.Bulkhead(
            max_concurrent=1, max_queue=1, max_wait=2.0, clock=clock
        )
        bulkhead.acquire()
        seen: list[float] = []

        def waiter() -> None:
            with pytest.raises(stalwart.BulkheadFullError):
                bulkhead.acquire()
            seen.append(clock.now())

        thread = _in_background(waiter)
        while bulkhead.statistics().queued == 0:  # a state, not a duration
            pass
        asyncio.run(clock.asleep(5.0))
        thread.join()

        assert 1 == len(seen)
        assert 2.0 <= seen[0]
        assert 5.0 == clock.now()

    def test_timeout_call_gives_up_when_the_loop_jumps(self):
        """
        A thread waiting in Timeout.call on the clock raises
        TimeoutExceededError when an event loop's auto-jump passes the
        deadline, though the function is still running.
        """
        clock = FakeClock()
        timeout = stalwart.Timeout(seconds=3.0, clock=clock)
        running = threading.Event()
        release = threading.Event()
        outcome: list[str] = []

        def work() -> str:
            running.set()
            release.wait()
            return "late"

        def caller() -> None:
            with pytest.raises(stalwart.TimeoutExceededError):
                timeout.call(work)
            outcome.append("timed out")

        thread = _in_background(caller)
        running.wait()
        asyncio.run(clock.asleep(10.0))
        thread.join()
        release.set()

        assert ["timed out"] == outcome
        assert 1 == timeout.statistics().timeouts


class TestThreadWaits:
    def test_waiting_threads_counts_blocked_threads(self):
        """
        waiting_threads counts the threads blocked on the clock, until each
        is woken.
        """
        clock = FakeClock()
        first, second = threading.Event(), threading.Event()
        threads = [
            _in_background(lambda: clock.wait_event(first, 1.0)),
            _in_background(lambda: clock.wait_event(second, None)),
        ]
        while clock.waiting_threads < 2:
            pass
        clock.advance(1.0)
        threads[0].join()
        after_advance = clock.waiting_threads
        second.set()
        threads[1].join()

        assert (1, 0) == (after_advance, clock.waiting_threads)
        assert first.is_set()

    @pytest.mark.parametrize("until", [float("inf"), float("nan")])
    def test_deadline_that_is_not_finite_waits_for_the_event(self, until):
        """
        A thread waiting until inf or nan is woken by its event alone, and
        does not hold up the wake-up of other threads.
        """
        clock = FakeClock()
        odd, timed = threading.Event(), threading.Event()
        first = _in_background(lambda: clock.wait_event(odd, until))
        while clock.waiting_threads < 1:
            pass
        second = _in_background(lambda: clock.wait_event(timed, 2.0))
        while clock.waiting_threads < 2:
            pass
        clock.advance(1e300)
        second.join()
        woken_by_time = odd.is_set()
        odd.set()
        first.join()

        assert timed.is_set()
        assert not woken_by_time


class TestAutojumpOff:
    def test_real_io_inside_a_timeout_is_not_cut_short(self):
        """
        With autojump=False, real I/O awaited inside a Timeout on the fake
        clock completes, however long the loop waits for it.
        """
        clock = FakeClock(autojump=False)
        timeout = stalwart.Timeout(seconds=5.0, clock=clock)
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        selector = _SignalingSelector(_idle_on(ours))

        def peer() -> None:
            selector.ready.wait()  # the loop went idle, waiting for us
            theirs.send(b"pong")

        async def main() -> bytes:
            loop = asyncio.get_running_loop()
            return await timeout.acall(loop.sock_recv, ours, 4)

        thread = _in_background(peer)
        with ours, theirs:
            got = _run(main, selector)
        thread.join()

        assert b"pong" == got
        assert 0.0 == clock.now()
        assert 0 == timeout.statistics().timeouts

    def test_time_moves_only_by_advance(self):
        """
        With autojump=False, a sleeper on an idle loop wakes only when
        another thread advances the clock, and sees that time.
        """
        clock = FakeClock(autojump=False)
        timeout = stalwart.Timeout(seconds=5.0, clock=clock)
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        selector = _SignalingSelector(_idle_on(ours))

        def tester() -> None:
            selector.ready.wait()
            clock.advance(5.0)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            await timeout.acall(loop.sock_recv, ours, 4)

        thread = _in_background(tester)
        with ours, theirs, pytest.raises(stalwart.TimeoutExceededError):
            _run(main, selector)
        thread.join()

        assert 5.0 == clock.now()
        assert [5.0] == clock.sleeps


class TestWaitForIo:
    def test_socket_io_inside_a_timeout_is_not_cut_short(self):
        """
        With wait_for_io, fake time stays still while the loop waits on a
        socket, and jumps again once the I/O is done.
        """
        clock = FakeClock(wait_for_io=True)
        timeout = stalwart.Timeout(seconds=5.0, clock=clock)
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        selector = _SignalingSelector(_watching(ours))

        def peer() -> None:
            selector.ready.wait()
            theirs.send(b"pong")

        async def main() -> tuple[bytes, float, float]:
            loop = asyncio.get_running_loop()
            got = await timeout.acall(loop.sock_recv, ours, 4)
            during = clock.now()
            await clock.asleep(2.0)
            return got, during, clock.now()

        thread = _in_background(peer)
        with ours, theirs:
            got, during, after = _run(main, selector)
        thread.join()

        assert (b"pong", 0.0, 2.0) == (got, during, after)
        assert 0 == timeout.statistics().timeouts

    def test_thread_work_inside_a_timeout_is_not_cut_short(self):
        """
        With wait_for_io, fake time stays still while the loop awaits work
        in its default executor (asyncio.to_thread).
        """
        clock = FakeClock(wait_for_io=True)
        timeout = stalwart.Timeout(seconds=5.0, clock=clock)
        started = threading.Event()
        release = threading.Event()
        selector = _SignalingSelector(lambda _, timeout: started.is_set())

        def work() -> str:
            started.set()
            release.wait()
            return "done"

        def tester() -> None:
            selector.ready.wait()  # the loop came round while work runs
            release.set()

        async def main() -> tuple[str, float]:
            got = await timeout.acall(asyncio.to_thread, work)
            await clock.asleep(1.0)
            return got, clock.now()

        thread = _in_background(tester)
        got = _run(main, selector)
        thread.join()

        assert ("done", 1.0) == got
        assert 0 == timeout.statistics().timeouts

    def test_thread_blocked_on_the_clock_lets_time_jump(self):
        """
        With wait_for_io, an executor thread blocked on the fake clock is
        not I/O: time jumps to its deadline, and no further until it has
        run, so a bulkhead's max_wait ends at exactly t=2 while a longer
        sleeper waits.
        """
        clock = FakeClock(wait_for_io=True)
        bulkhead = stalwart.Bulkhead(
            max_concurrent=1, max_queue=1, max_wait=2.0, clock=clock
        )
        bulkhead.acquire()

        async def queued() -> float:
            with pytest.raises(stalwart.BulkheadFullError):
                await asyncio.to_thread(bulkhead.acquire)
            return clock.now()

        async def main() -> list[Any]:
            return await asyncio.gather(queued(), clock.asleep(5.0))

        gave_up_at, _ = asyncio.run(main())

        assert 2.0 == gave_up_at
        assert 5.0 == clock.now()

    def test_listening_server_does_not_hold_time(self):
        """
        With wait_for_io, a server's listening socket is not I/O in flight:
        sleepers still jump while it waits for clients.
        """
        clock = FakeClock(wait_for_io=True)

        async def main() -> float:
            server = await asyncio.start_server(
                lambda reader, writer: None, "127.0.0.1", 0
            )
            async with server:
                await clock.asleep(1.0)
                return clock.now()

        assert 1.0 == asyncio.run(main())

    def test_loop_without_visible_io_is_refused(self):
        """
        With wait_for_io, a sleep on an event loop whose I/O the clock
        cannot see raises RuntimeError saying what to use instead.
        """
        clock = FakeClock(wait_for_io=True)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            wakeup = loop._ssock
            # Hidden, as on an event loop of another kind (uvloop).
            del loop._ssock
            try:
                await clock.asleep(1.0)
            finally:
                loop._ssock = wakeup

        with pytest.raises(RuntimeError, match="autojump=False"):
            asyncio.run(main())

        assert [] == clock.sleeps
