"""
BoundedBuffer: configuration, every policy through every face, waits on
the fake clock, deadlines, cancellation and interruption, events, and a
limiter throttling the consumer side.
"""

from __future__ import annotations

import asyncio
import pickle
import threading

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from stalwart import (
    BoundedBuffer,
    BufferDecision,
    BufferEmptyError,
    BufferFullError,
    BufferStatistics,
    CallRejected,
    ConfigurationError,
    Event,
    ItemDropped,
    RejectedError,
    TokenBucket,
)
from stalwart._deadline import deadline_scope
from stalwart._waiters import TaskWaiter
from stalwart.testing import FakeClock, use_clock


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


class _Faces:
    """
    The producer and consumer faces of a buffer, sync or async.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def put(self, buf: BoundedBuffer[Any], item: Any, **kwargs: Any) -> None:
        """
        Put through put() or aput().
        """
        if self.kind == "sync":
            buf.put(item, **kwargs)
        else:
            asyncio.run(buf.aput(item, **kwargs))

    def get(self, buf: BoundedBuffer[Any], **kwargs: Any) -> Any:
        """
        Take through get() or aget().
        """
        if self.kind == "sync":
            return buf.get(**kwargs)
        return asyncio.run(buf.aget(**kwargs))


@pytest.fixture(name="face", params=["sync", "async"])
def _face(request: pytest.FixtureRequest) -> _Faces:
    """
    Run each scenario through the sync and the async faces.
    """
    return _Faces(request.param)


def _stats(name: str = "<unnamed>", **kwargs: int) -> BufferStatistics:
    """
    Statistics with every counter zero but those given.
    """
    fields = dict.fromkeys(
        (
            "depth",
            "high_water",
            "accepted",
            "taken",
            "dropped",
            "refused",
            "producers_waiting",
            "consumers_waiting",
        ),
        0,
    )
    fields.update(kwargs)
    return BufferStatistics(name=name, **fields)


class TestConfig:
    def test_defaults(self):
        """
        Only capacity is required; a full buffer blocks by default.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=3)

        assert (
            "BoundedBuffer(capacity=3, when_full='block', max_wait=None, name='<unnamed>')"
            == repr(buf)
        )

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"capacity": 0}, "'capacity' must be > 0 (got 0)"),
            ({"capacity": 2.0}, "'capacity' must be an int (got 2.0)"),
            (
                {"capacity": 1, "when_full": "drop"},
                (
                    "'when_full' must be one of ('block', 'drop_newest',"
                    " 'drop_oldest', 'reject') (got 'drop')"
                ),
            ),
            (
                {"capacity": 1, "max_wait": -1},
                "'max_wait' must be >= 0 (got -1.0)",
            ),
            (
                {"capacity": 1, "max_wait": float("nan")},
                "'max_wait' must be a number, not NaN (got nan)",
            ),
            (
                {"capacity": 1, "when_full": "reject", "max_wait": 1.0},
                (
                    "'max_wait' applies only with when_full='block'"
                    " (got max_wait=1.0, when_full='reject')"
                ),
            ),
            (
                {"capacity": 1, "name": ""},
                "'name' must be a non-empty str (got '')",
            ),
        ],
        ids=["zero", "float", "policy", "wait", "nan", "wait-reject", "name"],
    )
    def test_rejects_bad_values(self, kwargs, message):
        """
        Bad settings fail where the buffer is built, naming field and value.
        """
        with pytest.raises(ConfigurationError) as e:
            BoundedBuffer(**kwargs)

        assert message == str(e.value)

    def test_timedelta(self):
        """
        max_wait accepts a timedelta.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1, max_wait=timedelta(milliseconds=250)
        )

        assert 0.25 == buf.max_wait

    def test_async_hook_refused(self):
        """
        An async hook is refused: hooks are called, never awaited.
        """

        async def hook(event: Event) -> None:
            pass

        with pytest.raises(TypeError, match="hooks are called"):
            BoundedBuffer(capacity=1, hooks=hook)


class TestHandOff:
    def test_fifo(self, face):
        """
        Items come out in the order they went in.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=3)
        for i in range(3):
            face.put(buf, i)

        assert [0, 1, 2] == [face.get(buf) for _ in range(3)]
        assert _stats(high_water=3, accepted=3, taken=3) == buf.statistics()

    def test_len(self):
        """
        len() is the number of items held now.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=3)
        buf.put("a")
        buf.put("b")

        assert 2 == len(buf)

    def test_try_get(self):
        """
        try_get returns the oldest item, or the default when empty.
        """
        buf: BoundedBuffer[int | None] = BoundedBuffer(capacity=2)
        missing = object()
        buf.put(None)

        assert None is buf.try_get(missing)
        assert None is buf.try_get()
        assert missing is buf.try_get(missing)

    def test_none_is_an_item(self, face, clock):
        """
        None goes through the buffer like any other item, also to a
        waiting consumer.
        """
        buf: BoundedBuffer[None] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> list[None]:
            waiter = asyncio.create_task(buf.aget())
            await clock.asleep(0)
            if face.kind == "sync":
                buf.put(None)  # room to spare: fine on the loop's thread
            else:
                await buf.aput(None)
            return [await waiter]

        assert [None] == asyncio.run(main())

    def test_try_put_accepts(self):
        """
        try_put with room accepts the item: a truthy decision.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1)

        decision = buf.try_put(1)

        assert BufferDecision(True, None) == decision
        assert decision
        assert 1 == buf.get()


class TestDropNewest:
    def test_put_drops_the_new_item(self, face):
        """
        A full drop_newest buffer keeps its items; the put returns.
        """
        events: list[Event] = []
        clock = FakeClock(3.0)
        buf: BoundedBuffer[str] = BoundedBuffer(
            capacity=1,
            when_full="drop_newest",
            name="q",
            clock=clock,
            hooks=events.append,
        )
        face.put(buf, "old")

        face.put(buf, "new")

        assert "old" == face.get(buf)
        assert _stats("q", high_water=1, accepted=1, taken=1, dropped=1) == (
            buf.statistics()
        )
        assert [
            ItemDropped(
                primitive_name="q", at=3.0, item="new", policy="drop_newest"
            )
        ] == events

    def test_try_put_says_dropped(self):
        """
        try_put reports a dropped item as not accepted, with no
        retry_after.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1, when_full="drop_newest"
        )
        buf.put(1)

        decision = buf.try_put(2)

        assert BufferDecision(False, None) == decision
        assert not decision


class TestDropOldest:
    def test_put_evicts_the_oldest(self, face):
        """
        A full drop_oldest buffer drops its oldest item for the new one.
        """
        events: list[Event] = []
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=2,
            when_full="drop_oldest",
            name="q",
            clock=FakeClock(),
            hooks=events.append,
        )
        for i in range(4):
            face.put(buf, i)

        assert [2, 3] == [face.get(buf), face.get(buf)]
        assert _stats("q", high_water=2, accepted=4, taken=2, dropped=2) == (
            buf.statistics()
        )
        assert [0, 1] == [e.item for e in events if isinstance(e, ItemDropped)]

    def test_try_put_accepts(self):
        """
        try_put under drop_oldest always takes the item in.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1, when_full="drop_oldest"
        )
        buf.put(1)

        assert BufferDecision(True, None) == buf.try_put(2)
        assert 2 == buf.get()


class TestReject:
    def test_put_refuses(self, face):
        """
        A full reject buffer refuses at once with BufferFullError.
        """
        events: list[Event] = []
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1,
            when_full="reject",
            name="q",
            clock=FakeClock(),
            hooks=events.append,
        )
        face.put(buf, 1)

        with pytest.raises(BufferFullError) as e:
            face.put(buf, 2)

        assert ("q", 1, None) == (
            e.value.name,
            e.value.capacity,
            e.value.retry_after,
        )
        assert isinstance(e.value, RejectedError)
        assert [CallRejected(primitive_name="q", at=0.0, error=e.value)] == (
            events
        )
        assert _stats("q", depth=1, high_water=1, accepted=1, refused=1) == (
            buf.statistics()
        )

    def test_retry_after_follows_consumers_pace(self, clock):
        """
        retry_after estimates when room frees up from the consumers' pace.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=2, when_full="reject", clock=clock
        )
        for i in range(2):
            buf.put(i)
        buf.get()
        clock.advance(0.5)
        buf.get()
        buf.put(2)
        buf.put(3)

        with pytest.raises(BufferFullError) as e:
            buf.put(4)

        assert 0.5 == e.value.retry_after
        assert BufferDecision(False, 0.5) == buf.try_put(4)

    def test_try_put_reports_refusal(self):
        """
        try_put on a full buffer refuses without raising; hooks see it.
        """
        events: list[Event] = []
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1, when_full="reject", hooks=events.append
        )
        buf.put(1)

        assert not buf.try_put(2)
        assert [BufferFullError] == [
            type(e.error) for e in events if isinstance(e, CallRejected)
        ]
        assert 1 == buf.statistics().refused


class TestBlock:
    def test_async_producer_waits_for_room(self, clock):
        """
        A task blocked on a full buffer puts its item once a consumer
        takes one.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> list[int]:
            await buf.aput(1)
            producer = asyncio.create_task(buf.aput(2))
            await clock.asleep(0)
            assert 1 == buf.statistics().producers_waiting
            first = await buf.aget()
            await producer
            return [first, await buf.aget()]

        assert [1, 2] == asyncio.run(main())
        assert 0.0 == clock.now()

    def test_async_wait_runs_out_on_fake_clock(self, clock):
        """
        A task's wait for room ends exactly at max_wait on the fake clock.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1, max_wait=2.0, clock=clock
        )
        buf.put(1)

        with pytest.raises(BufferFullError):
            asyncio.run(buf.aput(2))
        assert 2.0 == clock.now()
        assert _stats(depth=1, high_water=1, accepted=1, refused=1) == (
            buf.statistics()
        )

    def test_timeout_argument_overrides_max_wait(self, clock):
        """
        aput(timeout=) replaces max_wait; None waits without limit.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1, max_wait=1.0, clock=clock
        )
        buf.put(1)

        with pytest.raises(BufferFullError):
            asyncio.run(buf.aput(2, timeout=timedelta(seconds=3)))
        assert 3.0 == clock.now()

        async def unbounded() -> None:
            producer = asyncio.create_task(buf.aput(3, timeout=None))
            await clock.asleep(100)
            assert not producer.done()
            buf.get()
            await producer

        asyncio.run(unbounded())
        assert 3 == buf.get()

    def test_zero_wait_refuses_at_once(self, face, clock):
        """
        A zero (or negative) wait refuses at once without queueing.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1, max_wait=0, clock=clock
        )
        face.put(buf, 1)

        with pytest.raises(BufferFullError):
            face.put(buf, 2)
        with pytest.raises(BufferFullError):
            face.put(buf, 2, timeout=-1)
        assert 2 == buf.statistics().refused
        assert 0.0 == clock.now()

    def test_deadline_caps_wait(self, clock):
        """
        A wait for room never goes past the current deadline.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1, clock=clock)
        buf.put(1)

        async def main() -> None:
            with deadline_scope(1.5, clock):
                await buf.aput(2)

        with pytest.raises(BufferFullError):
            asyncio.run(main())
        assert 1.5 == clock.now()

    def test_thread_producer_waits_for_room(self, clock):
        """
        A blocked thread puts its item when another thread takes one.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1, clock=clock)
        buf.put(1)
        thread, out = _start(lambda: buf.put(2))
        _until(lambda: buf.statistics().producers_waiting == 1)

        first = buf.get()
        thread.join()

        assert [None] == out
        assert [1, 2] == [first, buf.get()]

    def test_thread_wait_runs_out_when_clock_advances(self, clock):
        """
        A blocked thread is refused once the fake clock passes its wait.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1, max_wait=2.0, clock=clock
        )
        buf.put(1)
        thread, out = _start(lambda: buf.put(2))
        _until(lambda: buf.statistics().producers_waiting == 1)

        clock.advance(1.0)
        clock.advance(1.0)
        thread.join()

        assert isinstance(out[0], BufferFullError)
        assert 1 == len(buf)

    def test_thread_deadline_caps_wait(self, clock):
        """
        A thread's wait for room ends at the deadline of its context.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1, clock=clock)
        buf.put(1)

        def put_under_deadline() -> None:
            with deadline_scope(1.0, clock):
                buf.put(2)

        thread, out = _start(put_under_deadline)
        _until(lambda: buf.statistics().producers_waiting == 1)
        clock.advance(1.0)
        thread.join()

        assert isinstance(out[0], BufferFullError)

    def test_room_at_timeout_is_used(self):
        """
        A producer whose wait ends just as room is set aside for it puts
        its item.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1, max_wait=1.0, clock=_HookClock(lambda: buf.get())
        )
        buf.put(1)

        buf.put(2)

        assert _stats(depth=1, high_water=1, accepted=2, taken=1) == (
            buf.statistics()
        )

    def test_woken_producer_feeds_consumer_queued_meanwhile(self, clock):
        """
        A consumer that queues while a woken producer is on its way gets
        that producer's item.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> list[int | None]:
            await buf.aput(1)
            producer = asyncio.create_task(buf.aput(2))
            await clock.asleep(0)
            first = buf.try_get()  # room set aside for the producer
            consumer = asyncio.create_task(buf.aget())
            await producer
            return [first, await consumer]

        assert [1, 2] == asyncio.run(main())
        assert _stats(high_water=1, accepted=2, taken=2) == buf.statistics()

    @pytest.mark.parametrize("kind", ["sync", "async"])
    def test_room_frees_while_queueing(self, kind):
        """
        Room that frees up after a put found none, but before it queued,
        is used at once (the deadline check between the two reads a clock
        that takes an item).
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1)
        buf.put(1)
        trigger = _TriggerClock()

        def put_under_deadline() -> None:
            with deadline_scope(10.0, trigger):
                trigger.action = buf.try_get
                if kind == "sync":
                    buf.put(2)
                else:
                    asyncio.run(buf.aput(2))

        put_under_deadline()

        assert [2, None] == [buf.try_get(), buf.try_get()]

    @pytest.mark.parametrize("kind", ["sync", "async"])
    def test_item_comes_while_queueing(self, kind):
        """
        An item that comes after a get found none, but before it queued,
        is taken at once.
        """
        trigger = _TriggerClock()
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=trigger)
        # The get reads the clock once before its first try and once
        # before queueing: the second read puts an item.
        trigger.action = lambda: None
        trigger.then = lambda: buf.try_put("x")

        got = buf.get() if kind == "sync" else asyncio.run(buf.aget())

        assert "x" == got

    def test_room_freed_before_queueing(self):
        """
        Room that frees up between the first try and queueing is used at
        once, waking a consumer if one waits.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1)
        event = threading.Event()

        assert not buf._enqueue_putter(1, event)
        buf._core.get(0.0)
        buf._core.enqueue_getter(event)
        assert not buf._enqueue_putter(2, threading.Event())
        assert event.is_set()


class TestConsumers:
    def test_async_consumer_waits_for_item(self, clock):
        """
        A task blocked on an empty buffer gets the next item put.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> str:
            consumer = asyncio.create_task(buf.aget())
            await clock.asleep(0)
            assert 1 == buf.statistics().consumers_waiting
            buf.put("x")
            return await consumer

        assert "x" == asyncio.run(main())

    def test_async_wait_runs_out(self, clock):
        """
        A task's wait for an item ends exactly at its timeout.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=clock)

        with pytest.raises(BufferEmptyError) as e:
            asyncio.run(buf.aget(timeout=2.5))

        assert 2.5 == clock.now()
        assert 2.5 == e.value.timeout
        assert 0 == buf.statistics().consumers_waiting

    def test_zero_timeout_refuses_at_once(self, face, clock):
        """
        get(timeout=0) on an empty buffer fails at once.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=clock)

        with pytest.raises(BufferEmptyError) as e:
            face.get(buf, timeout=0)

        assert 0.0 == e.value.timeout
        assert 0.0 == clock.now()

    def test_deadline_caps_consumer_wait(self, clock):
        """
        A wait for an item never goes past the current deadline.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> str:
            with deadline_scope(0.75, clock):
                return await buf.aget(timeout=60)

        with pytest.raises(BufferEmptyError) as e:
            asyncio.run(main())
        assert 0.75 == clock.now() == e.value.timeout

    def test_thread_consumer_waits_for_item(self, clock):
        """
        A blocked thread gets the item another thread puts.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=clock)
        thread, out = _start(buf.get)
        _until(lambda: buf.statistics().consumers_waiting == 1)

        buf.put("x")
        thread.join()

        assert ["x"] == out

    def test_thread_consumer_times_out(self, clock):
        """
        A blocked thread gets BufferEmptyError when the clock passes its
        timeout.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=clock)
        thread, out = _start(lambda: buf.get(timeout=timedelta(seconds=1)))
        _until(lambda: buf.statistics().consumers_waiting == 1)

        clock.advance(1.0)
        thread.join()

        assert isinstance(out[0], BufferEmptyError)
        assert 1.0 == out[0].timeout

    def test_item_at_timeout_is_taken(self):
        """
        A consumer whose wait ends just as an item is set aside for it
        takes the item.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(
            capacity=1, clock=_HookClock(lambda: buf.put("x"))
        )

        assert "x" == buf.get(timeout=1.0)

    def test_item_put_before_queueing(self):
        """
        An item put between the first try and queueing is taken at once.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1)
        buf.put("x")

        assert "x" == buf._enqueue_getter(threading.Event())

    def test_take_wakes_blocked_producer(self, clock):
        """
        A take from a full buffer wakes the producer blocked on it, also
        through try_get.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> list[int]:
            await buf.aput(1)
            producer = asyncio.create_task(buf.aput(2))
            await clock.asleep(0)
            first = buf.try_get()
            await producer
            return [first, buf.try_get()]

        assert [1, 2] == asyncio.run(main())


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


class _TriggerClock(FakeClock):
    """
    A fake clock that runs *action* on the first read of the time after it
    is armed, then *then* on the next one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.action: Callable[[], object] | None = None
        self.then: Callable[[], object] | None = None

    def now(self) -> float:
        """
        Run the armed action, then read the time.
        """
        action, self.action, self.then = self.action, self.then, None
        if action is not None:
            action()
        return super().now()


def _interrupt() -> None:
    raise KeyboardInterrupt


class TestCancellation:
    def test_cancelled_consumer_leaves_queue(self, clock):
        """
        A consumer cancelled while waiting leaves the queue; the next
        item goes to the next consumer.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> str:
            first = asyncio.create_task(buf.aget())
            second = asyncio.create_task(buf.aget())
            await clock.asleep(0)
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            assert 1 == buf.statistics().consumers_waiting
            buf.put("x")
            return await second

        assert "x" == asyncio.run(main())

    def test_cancel_after_item_set_aside_keeps_item(self, clock):
        """
        A consumer cancelled just as an item was set aside for it leaves
        the item to the next consumer: nothing is lost.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> str:
            first = asyncio.create_task(buf.aget())
            second = asyncio.create_task(buf.aget())
            await clock.asleep(0)
            buf.put("x")  # set aside for `first`...
            first.cancel()  # ...which is cancelled before it runs
            await asyncio.gather(first, return_exceptions=True)
            return await second

        assert "x" == asyncio.run(main())
        assert _stats(high_water=1, accepted=1, taken=1) == buf.statistics()

    def test_cancel_after_item_set_aside_without_next(self, clock):
        """
        With no other consumer, a cancelled consumer's item stays in the
        buffer.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> None:
            only = asyncio.create_task(buf.aget())
            await clock.asleep(0)
            buf.put("x")
            only.cancel()
            await asyncio.gather(only, return_exceptions=True)

        asyncio.run(main())

        assert "x" == buf.try_get()

    def test_cancelled_producer_did_not_put(self, clock):
        """
        A producer cancelled while waiting for room has not put its item.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> None:
            await buf.aput(1)
            producer = asyncio.create_task(buf.aput(2))
            await clock.asleep(0)
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)

        asyncio.run(main())

        assert [1, None] == [buf.try_get(), buf.try_get()]
        assert _stats(high_water=1, accepted=1, taken=1) == buf.statistics()

    def test_cancel_after_room_set_aside_hands_room_on(self, clock):
        """
        A producer cancelled just as room was set aside for it hands the
        room to the next producer.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> list[int | None]:
            await buf.aput(1)
            first = asyncio.create_task(buf.aput(2))
            second = asyncio.create_task(buf.aput(3))
            await clock.asleep(0)
            taken = buf.try_get()  # room set aside for `first`...
            first.cancel()  # ...which is cancelled before it runs
            await asyncio.gather(first, return_exceptions=True)
            await second
            return [taken, buf.try_get(), buf.try_get()]

        assert [1, 3, None] == asyncio.run(main())

    def test_interrupted_thread_consumer_leaves_queue(self):
        """
        A thread interrupted while waiting for an item leaves the queue.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(
            capacity=1, clock=_HookClock(_interrupt)
        )

        with pytest.raises(KeyboardInterrupt):
            buf.get()
        assert 0 == buf.statistics().consumers_waiting

    def test_interrupted_thread_consumer_keeps_item(self):
        """
        A thread interrupted just as an item was set aside for it leaves
        the item in the buffer.
        """

        def put_then_interrupt() -> None:
            buf.put("x")
            raise KeyboardInterrupt

        buf: BoundedBuffer[str] = BoundedBuffer(
            capacity=1, clock=_HookClock(put_then_interrupt)
        )

        with pytest.raises(KeyboardInterrupt):
            buf.get()
        assert "x" == buf.try_get()

    def test_interrupted_thread_producer(self):
        """
        A thread interrupted while waiting for room has not put its item;
        one interrupted just as room was set aside gives the room back.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=1, clock=_HookClock(_interrupt)
        )
        buf.put(1)

        with pytest.raises(KeyboardInterrupt):
            buf.put(2)

        def take_then_interrupt() -> None:
            buf.get()
            raise KeyboardInterrupt

        buf.clock.on_wait = take_then_interrupt  # type: ignore[attr-defined]
        with pytest.raises(KeyboardInterrupt):
            buf.put(3)

        assert _stats(high_water=1, accepted=1, taken=1) == buf.statistics()
        assert buf.try_put(4)

    def test_closed_loop_consumer_is_skipped(self):
        """
        An item set aside for a consumer whose loop is closed goes to the
        next consumer, or stays in the buffer.
        """
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=2)
        loop = asyncio.new_event_loop()
        dead = TaskWaiter(loop)
        loop.close()
        alive = threading.Event()
        with buf._lock:
            buf._core.enqueue_getter(dead)
            buf._core.enqueue_getter(alive)

        buf.put("x")
        assert alive.is_set()
        assert not buf._core.withdraw_getter(alive)
        assert "x" == buf._settle_getter(None, alive)

        with buf._lock:
            buf._core.enqueue_getter(dead)
        buf.put("y")
        assert "y" == buf.try_get()

    def test_closed_loop_producer_is_skipped(self):
        """
        Room set aside for a producer whose loop is closed goes to the
        next producer, or back to the buffer.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1)
        loop = asyncio.new_event_loop()
        dead = TaskWaiter(loop)
        loop.close()
        alive = threading.Event()
        buf.put(1)
        with buf._lock:
            buf._core.enqueue_putter(dead)
            buf._core.enqueue_putter(alive)

        assert 1 == buf.get()
        assert alive.is_set()
        buf._settle_putter(2, alive)
        with buf._lock:
            buf._core.enqueue_putter(dead)
        assert 2 == buf.get()

        assert buf.try_put(3)


class TestMisuse:
    def test_sync_faces_refuse_to_block_a_loop(self, clock):
        """
        put() and get() raise rather than block an event loop's thread;
        when they need not wait they work there.
        """
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1, clock=clock)

        async def main() -> None:
            with pytest.raises(RuntimeError, match="aget"):
                buf.get()
            buf.put(1)
            with pytest.raises(RuntimeError, match="aput"):
                buf.put(2)
            assert 1 == buf.get()

        asyncio.run(main())

        assert _stats(high_water=1, accepted=1, taken=1) == buf.statistics()

    def test_use_clock_drives_default(self):
        """
        A buffer on the default clock follows use_clock for thread waits.
        """
        clock = FakeClock()
        buf: BoundedBuffer[int] = BoundedBuffer(capacity=1, max_wait=1.0)
        buf.put(1)
        with use_clock(clock):
            thread, out = _start(lambda: buf.put(2))
            _until(lambda: buf.statistics().producers_waiting == 1)
            clock.advance(1.0)
            thread.join()

        assert isinstance(out[0], BufferFullError)


class TestErrors:
    @pytest.mark.parametrize(
        ("error", "text"),
        [
            (
                BufferFullError("q", 8, 0.25),
                "buffer full (8 items) by 'q'; retry after 0.250s",
            ),
            (BufferFullError("q", 8), "buffer full (8 items) by 'q'"),
            (
                BufferEmptyError("q", 1.5),
                "buffer still empty after 1.5s by 'q'",
            ),
        ],
        ids=["full", "full-no-retry", "empty"],
    )
    def test_message_and_pickle(self, error, text):
        """
        Buffer errors say what happened and survive pickling.
        """
        copy = pickle.loads(pickle.dumps(error))

        assert text == str(error)
        assert isinstance(error, RejectedError)
        assert vars(error) == vars(copy)
        assert repr(error) == repr(copy)


class TestThrottledConsumer:
    def test_limiter_paces_the_consumer(self, clock):
        """
        A token bucket in front of each take paces the consumer; a fast
        producer then fills the buffer and drop_oldest sheds the excess.
        """
        limiter = TokenBucket(rate=10, capacity=1, clock=clock)
        buf: BoundedBuffer[int] = BoundedBuffer(
            capacity=3, when_full="drop_oldest", clock=clock
        )
        taken: list[tuple[float, int]] = []

        async def producer() -> None:
            for i in range(20):  # 40 items a second for half a second
                await buf.aput(i)
                await clock.asleep(0.025)

        async def consumer() -> None:
            while True:
                await limiter.aacquire()
                try:
                    item = await buf.aget(timeout=0.5)
                except BufferEmptyError:
                    return
                taken.append((clock.now(), item))

        async def main() -> None:
            await asyncio.gather(producer(), consumer())

        asyncio.run(main())

        times = [round(t, 9) for t, _ in taken]
        assert [round(0.1 * i, 9) for i in range(len(taken))] == times
        stats = buf.statistics()
        assert 20 == stats.accepted == stats.taken + stats.dropped
        assert 0 == stats.depth
        items = [item for _, item in taken]
        assert items == sorted(items)
        assert 19 == items[-1]

    def test_decorated_sync_consumer(self, clock):
        """
        A consumer function decorated with a limiter takes items at the
        limiter's pace on the fake clock.
        """
        limiter = TokenBucket(rate=4, capacity=1, clock=clock)
        buf: BoundedBuffer[str] = BoundedBuffer(capacity=3, clock=clock)
        seen: list[tuple[float, str]] = []

        @limiter
        def handle() -> None:
            seen.append((clock.now(), buf.get()))

        for item in "abc":
            buf.put(item)
        for _ in range(3):
            handle()

        assert [(0.0, "a"), (0.25, "b"), (0.5, "c")] == seen
        assert [0.25, 0.25] == clock.sleeps
