"""
The parking shared by every shell whose callers queue: waking tasks from
any thread, handing on past waiters whose loop is closed, and the timeout
plumbing.
"""

from __future__ import annotations

import asyncio
import threading

from datetime import timedelta

import pytest

from stalwart import ConfigurationError
from stalwart._deadline import deadline_scope
from stalwart._waiters import MAX_WAIT, TaskWaiter, one, queue_wait, wake
from stalwart.testing import FakeClock


class TestTaskWaiter:
    def test_woken_twice_resolves_once(self):
        """
        A task's waiter woken twice (from two threads, say) resolves its
        future once, without an error in the loop.
        """

        async def main() -> None:
            waiter = TaskWaiter(asyncio.get_running_loop())
            waiter.set()
            waiter.set()
            await waiter.fut

        asyncio.run(main())


class TestWake:
    def test_hands_on_past_closed_loops(self):
        """
        What a waiter on a closed loop was handed goes on to those it is
        handed on to, who are woken in turn, in order.
        """
        loop = asyncio.new_event_loop()
        dead = TaskWaiter(loop)
        loop.close()
        first, second = threading.Event(), threading.Event()
        woken: list[threading.Event] = []
        handed_on: list[object] = []

        class Recording(threading.Event):
            def set(self) -> None:
                woken.append(self)
                super().set()

        a, b = Recording(), Recording()

        def hand_on(waiter: object) -> list[threading.Event]:
            handed_on.append(waiter)
            return [a, b]

        wake([dead, first], hand_on)
        wake([second], hand_on)

        assert [dead] == handed_on
        assert [a, b] == woken
        assert first.is_set()
        assert second.is_set()

    def test_one(self):
        """
        one() turns an optional waiter into a sequence.
        """
        event = threading.Event()

        assert ((), (event,)) == (one(None), one(event))


class TestQueueWait:
    @pytest.mark.parametrize(
        ("timeout", "strict", "wait"),
        [
            (MAX_WAIT, False, 5.0),
            (None, False, None),
            (2, False, 2.0),
            (timedelta(seconds=3), True, 3.0),
            (-1, False, 0.0),
        ],
        ids=["max_wait", "none", "seconds", "timedelta", "negative-lenient"],
    )
    def test_wait(self, timeout, strict, wait):
        """
        A timeout is the primitive's max_wait by default, seconds or a
        timedelta otherwise; a negative one means no wait unless strict.
        """
        assert wait == queue_wait(timeout, 5.0, strict=strict)

    @pytest.mark.parametrize(
        ("timeout", "message"),
        [
            (-1, "'timeout' must be >= 0 (got -1.0)"),
            (
                float("inf"),
                (
                    "'timeout' must be finite (got inf); use None to wait as"
                    " long as it takes"
                ),
            ),
            (
                "1",
                "'timeout' must be a number of seconds or a timedelta (got '1')",
            ),
        ],
        ids=["negative", "inf", "str"],
    )
    def test_strict(self, timeout, message):
        """
        Strict timeouts are checked like configuration.
        """
        with pytest.raises(ConfigurationError) as e:
            queue_wait(timeout, None, strict=True)

        assert message == str(e.value)

    def test_deadline_caps(self):
        """
        The current deadline caps every wait, an unbounded one included.
        """
        clock = FakeClock()

        with deadline_scope(1.5, clock):
            assert (1.5, 1.5, 1.0) == (
                queue_wait(None, None),
                queue_wait(MAX_WAIT, 10.0),
                queue_wait(1.0, None),
            )
