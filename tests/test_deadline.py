"""
The deadline that travels with a call.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading

from collections.abc import Generator

import pytest

from stalwart import (
    Deadline,
    TimeoutExceededError,
    current_deadline,
    remaining_time,
)
from stalwart._clock import wait_event
from stalwart._deadline import (
    cap_wait,
    deadline_scope,
    wait_future,
)
from stalwart.testing import FakeClock


class TestDeadline:
    def test_no_deadline_by_default(self):
        """
        Outside any scope there is no deadline and waits are not capped.
        """
        assert current_deadline() is None
        assert remaining_time() is None
        assert (5.0, False) == cap_wait(5.0)

    def test_scope_sets_and_restores(self, clock):
        """
        A scope sets a deadline relative to its clock and removes it on exit.
        """
        with deadline_scope(2.0, clock) as deadline:
            clock.advance(0.5)

            assert current_deadline() is deadline
            assert 1.5 == remaining_time()
            assert not deadline.expired
            clock.advance(1.5)
            assert deadline.expired

        assert current_deadline() is None

    def test_nesting_only_shortens(self, clock):
        """
        An inner scope longer than the outer one keeps the outer deadline.
        """
        with deadline_scope(1.0, clock) as outer:
            with deadline_scope(5.0, clock) as inner:
                assert (outer.at, outer.clock) == (inner.at, inner.clock)
                assert "Deadline(at=1.0)" == repr(inner)
            assert current_deadline() is outer
            with deadline_scope(0.5, clock) as shorter:
                assert 0.5 == shorter.at

    def test_cap_wait(self, clock):
        """
        Waits are capped by the time left, and say when they were.
        """
        with deadline_scope(2.0, clock):
            assert (1.0, False) == cap_wait(1.0)
            assert (2.0, True) == cap_wait(3.0)
            assert (2.0, True) == cap_wait(None)
            clock.advance(3.0)
            assert (0.0, True) == cap_wait(1.0)

    def test_follows_tasks(self, clock):
        """
        A task started inside a scope sees its deadline; the outside not.
        """

        async def main() -> tuple[float | None, float | None]:
            with deadline_scope(3.0, clock):
                inside = await asyncio.create_task(_remaining())
            outside = await asyncio.create_task(_remaining())
            return inside, outside

        async def _remaining() -> float | None:
            return remaining_time()

        assert (3.0, None) == asyncio.run(main())


class TestOutOfOrder:
    def test_generators_stepped_alternately(self, clock):
        """
        Two generators whose deadline scopes end out of order leave no
        deadline behind, and the one still open stays in force meanwhile.
        """

        def gen(seconds: float) -> Generator[None, None, None]:
            with deadline_scope(seconds, clock):
                yield
                yield

        first, second = gen(2.0), gen(1.0)
        next(first)
        next(second)
        list(first)
        during = remaining_time()
        list(second)

        assert 1.0 == during
        assert current_deadline() is None

    def test_stale_deadline_of_another_context_is_skipped(self, clock):
        """
        A scope ended in another context (an async generator stepped from
        another task) is skipped when this context restores its own.
        """

        def enter(seconds: float) -> Generator[None, None, None]:
            with deadline_scope(seconds, clock):
                yield

        outer = enter(5.0)
        next(outer)
        context = contextvars.copy_context()
        gen = enter(1.0)
        context.run(next, gen)  # begins in the copy...
        next(gen, None)  # ...ends here, where another deadline is current
        inner = context.run(current_deadline)
        context.run(next, outer, None)  # the copy ends its outer scope

        assert 1.0 == inner.at
        assert context.run(current_deadline) is None
        # This context still reads the scope ended elsewhere, until it ends
        # a scope of its own.
        assert 5.0 == remaining_time()
        with deadline_scope(9.0, clock):
            pass
        assert current_deadline() is None

    def test_cut_error(self, clock):
        """
        Code cut short by a deadline gets its owner's error; a deadline
        built by hand has none and names itself.
        """
        with deadline_scope(1.5, clock) as deadline:
            scoped = deadline.cut()
        bare = Deadline(3.0, clock).cut()

        assert ("<deadline>", 1.5) == (scoped.name, scoped.timeout)
        assert ("<deadline>", 0.0) == (bare.name, bare.timeout)
        assert isinstance(bare, TimeoutExceededError)


class TestWaits:
    def test_wait_beyond_the_platform(self):
        """
        A thread wait longer than the platform can block waits without a
        limit instead of raising OverflowError.
        """
        event = threading.Event()
        clock = FakeClock()

        class RealTime:
            """A clock without a wait_event hook: waits in real time."""

            now = clock.now
            sleep = clock.sleep
            asleep = clock.asleep

        threading.Timer(0, event.set).start()
        wait_event(RealTime(), event, 1e12)  # type: ignore[arg-type]  # a duck-typed clock

        assert event.is_set()

    def test_wait_future(self, clock):
        """
        wait_future ends when the future is done or the clock's wait runs
        out, and leaves the future as it is.
        """

        async def main() -> tuple[bool, float, bool, float]:
            loop = asyncio.get_running_loop()
            never = loop.create_future()
            await wait_future(never, clock, 2.0)
            soon = loop.create_future()
            loop.call_soon(soon.set_result, None)
            await wait_future(soon, clock, None)
            return never.done(), clock.now(), soon.done(), clock.now()

        assert (False, 2.0, True, 2.0) == asyncio.run(main())

    @pytest.mark.parametrize("seconds", [1e10, 1e300])
    def test_huge_scopes(self, clock, seconds):
        """
        A deadline far in the future is held as a plain float.
        """
        with deadline_scope(seconds, clock):
            assert seconds == remaining_time()
