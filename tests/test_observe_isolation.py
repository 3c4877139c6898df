"""
Hooks attached later and per-call events on the thread pool, the timeout
and the fallback: CallAdmitted and CallFinished through every face, exact
times on a FakeClock, and nothing timed while no hook asks for it.
"""

from __future__ import annotations

import asyncio
import json
import threading

from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

import pytest

import stalwart

from helpers import Boom, as_async, boom, ok
from stalwart import (
    CallAdmitted,
    CallFinished,
    Fallback,
    ThreadPoolBulkhead,
    Timeout,
    TimeoutExceededError,
)
from stalwart._timeout import _ALARMS


class Halt(BaseException):
    """
    A BaseException that is not a cancellation.
    """


def halt(*args: Any) -> None:
    """
    Raise :class:`Halt`.
    """
    raise Halt


def finished(events: list[stalwart.Event]) -> list[tuple[Any, ...]]:
    """
    The (primitive, outcome, duration, error type) of each CallFinished.
    """
    return [
        (e.primitive, e.outcome, e.duration, type(e.error).__name__)
        for e in events
        if isinstance(e, CallFinished)
    ]


def _until(predicate: Callable[[], bool]) -> None:
    """
    Wait until *predicate* holds (a state, never a duration).
    """
    while not predicate():
        threading.Event().wait(0.001)


# -- fallback ---------------------------------------------------------------


FACES = ["call", "acall", "decorator", "async decorator"]


def through(face: str, fallback: Fallback, fn: Callable[[], Any]) -> Any:
    """
    Run *fn* through one face of *fallback* (the async faces await an
    ``async def`` twin of it).
    """
    if face == "call":
        return fallback.call(fn)
    if face == "decorator":
        return fallback(fn)()
    if face == "acall":
        return asyncio.run(fallback.acall(as_async(fn)))
    return asyncio.run(fallback(as_async(fn))())


class TestFallback:
    def test_hooks_attached_later(self, clock):
        """
        A hook attached after decoration gets each FallbackUsed, and no
        per-call event unless it asks; removed, it gets nothing more.
        """
        fallback = Fallback(value=0, name="f", clock=clock)
        guarded = fallback(boom)
        events: list[stalwart.Event] = []
        fallback.add_hook(events.append)
        guarded()
        fallback.remove_hook(events.append)
        guarded()

        assert ["FallbackUsed"] == [type(e).__name__ for e in events]
        assert () == fallback.hooks

    @pytest.mark.parametrize("face", FACES)
    def test_outcomes(self, clock, face):
        """
        Each call reports the guarded call's own outcome, timed with the
        handler: success, a failure replaced, a failure let through, a
        result rejected.
        """
        events: list[stalwart.Event] = []

        def handler(cause: object) -> str:
            clock.advance(0.5)
            return "fallback"

        def slow_boom() -> None:
            clock.advance(0.25)
            raise Boom

        fallback = Fallback(
            handler=handler,
            on=Boom,
            on_result=lambda result: result is None,
            name="f",
            clock=clock,
        )
        fallback.add_hook(events.append, per_call=True)

        assert "ok" == through(face, fallback, ok)
        assert "fallback" == through(face, fallback, slow_boom)
        with pytest.raises(OSError, match="other"):
            through(face, fallback, lambda: _raise(OSError("other")))
        assert "fallback" == through(face, fallback, lambda: None)
        assert [
            ("fallback", "success", 0.0, "NoneType"),
            ("fallback", "failure", 0.75, "Boom"),
            ("fallback", "failure", 0.0, "OSError"),
            ("fallback", "failure", 0.5, "NoneType"),
        ] == finished(events)
        assert ["FallbackUsed", "FallbackUsed"] == [
            type(e).__name__ for e in events if not isinstance(e, CallFinished)
        ]

    @pytest.mark.parametrize("face", FACES)
    def test_base_exception_is_ignored(self, clock, face):
        """
        A BaseException passes through and is reported as ignored.
        """
        events: list[stalwart.Event] = []
        fallback = Fallback(value=0, clock=clock)
        fallback.add_hook(events.append, per_call=True)

        with pytest.raises(Halt):
            through(face, fallback, halt)

        assert [("fallback", "ignored", 0.0, "Halt")] == finished(events)

    @pytest.mark.parametrize("face", FACES)
    def test_failing_result_check_is_ignored(self, clock, face):
        """
        A call whose on_result check raises ends with the check's error,
        and is reported as ignored, timed to the check's end.
        """
        events: list[stalwart.Event] = []

        def check(result: object) -> bool:
            clock.advance(0.25)
            raise Boom

        fallback = Fallback(value=0, on_result=check, clock=clock)
        fallback.add_hook(events.append, per_call=True)

        with pytest.raises(Boom):
            through(face, fallback, ok)

        assert [("fallback", "ignored", 0.25, "NoneType")] == finished(events)

    def test_misuse_is_not_reported(self, clock):
        """
        A face given the wrong kind of function raises TypeError, and no
        call is reported.
        """
        events: list[stalwart.Event] = []
        fallback = Fallback(value=0, clock=clock)
        fallback.add_hook(events.append, per_call=True)

        with pytest.raises(TypeError, match="acall"):
            fallback.call(as_async(ok))
        with pytest.raises(TypeError, match="call"):
            asyncio.run(fallback.acall(ok))

        assert [] == events

    def test_removed_hook_back_to_fast_path(self, clock):
        """
        Once the last per-call hook leaves, calls are no longer reported.
        """
        events: list[stalwart.Event] = []
        fallback = Fallback(value=0, clock=clock)
        guarded = fallback(ok)
        fallback.add_hook(events.append, per_call=True)
        guarded()
        fallback.remove_hook(events.append)
        guarded()

        assert 1 == len(finished(events))

    def test_statistics_travel(self):
        """
        The statistics carry the name and go through json.dumps as is.
        """
        fallback = Fallback(value=0, name="f")
        fallback.call(boom)

        assert {
            "primitive": "fallback",
            "name": "f",
            "on_error": 1,
            "on_result": 0,
        } == json.loads(json.dumps(fallback.statistics().to_dict()))


def _raise(error: BaseException) -> None:
    raise error


# -- timeout ----------------------------------------------------------------


class TestTimeoutCall:
    def test_success_and_failures(self, clock):
        """
        call() reports a success, a failure of the function (its own
        TimeoutExceededError too) and a BaseException as ignored, timed.
        """
        events: list[stalwart.Event] = []
        timeout = Timeout(seconds=5, name="t", clock=clock)
        timeout.add_hook(events.append, per_call=True)

        def slow() -> str:
            clock.advance(0.25)
            return "ok"

        assert "ok" == timeout.call(slow)
        with pytest.raises(Boom):
            timeout.call(boom)
        with pytest.raises(TimeoutExceededError):
            timeout.call(_raise, TimeoutExceededError("inner", 1.0))
        with pytest.raises(Halt):
            timeout.call(halt)

        assert [
            ("timeout", "success", 0.25, "NoneType"),
            ("timeout", "failure", 0.0, "Boom"),
            ("timeout", "failure", 0.0, "TimeoutExceededError"),
            ("timeout", "ignored", 0.0, "Halt"),
        ] == finished(events)

    def test_timeout_is_a_failure(self, clock):
        """
        A call given up at its deadline is a failure carrying the
        TimeoutExceededError the caller got, after TimeoutExceeded.
        """
        gate = threading.Event()
        events: list[stalwart.Event] = []
        timeout = Timeout(seconds=2, clock=clock)
        timeout.add_hook(events.append, per_call=True)

        def stuck() -> None:
            clock.advance(2.0)
            gate.wait()

        with pytest.raises(TimeoutExceededError) as caught:
            timeout.call(stuck)
        gate.set()

        assert ["TimeoutExceeded", "CallFinished"] == [
            type(e).__name__ for e in events
        ]
        assert caught.value is events[-1].error
        assert [
            ("timeout", "failure", 2.0, "TimeoutExceededError")
        ] == finished(events)

    def test_misuse_is_not_reported(self, clock):
        """
        A function that returned an awaitable raises TypeError and is not
        reported.
        """
        events: list[stalwart.Event] = []
        timeout = Timeout(seconds=5, clock=clock)
        timeout.add_hook(events.append, per_call=True)
        coroutine = as_async(ok)()

        with pytest.raises(TypeError, match="acall"):
            timeout.call(lambda: coroutine)
        coroutine.close()

        assert [] == events

    def test_hooks_attached_later(self, clock):
        """
        A hook attached after decoration gets each TimeoutExceeded, and no
        per-call event unless it asks.
        """
        events: list[stalwart.Event] = []
        timeout = Timeout(seconds=1, clock=clock)

        @timeout
        async def slow() -> None:
            await clock.asleep(10)

        timeout.add_hook(events.append)
        with pytest.raises(TimeoutExceededError):
            asyncio.run(slow())

        assert ["TimeoutExceeded"] == [type(e).__name__ for e in events]

    def test_statistics_travel(self):
        """
        The statistics carry the name and go through json.dumps as is.
        """
        assert {"primitive": "timeout", "name": "t", "timeouts": 0} == (
            json.loads(
                json.dumps(Timeout(seconds=1, name="t").statistics().to_dict())
            )
        )


class TestTimeoutAsync:
    @pytest.mark.parametrize("face", ["acall", "async with"])
    def test_outcomes(self, clock, face):
        """
        acall() and async with report a success, a failure, a timeout (a
        failure carrying its error) and the caller's cancellation
        (ignored), timed on the fake clock.
        """
        events: list[stalwart.Event] = []
        timeout = Timeout(seconds=2, clock=clock)
        timeout.add_hook(events.append, per_call=True)

        async def run(delay: float, error: BaseException | None) -> str:
            async def work() -> str:
                await clock.asleep(delay)
                if error is not None:
                    raise error
                return "ok"

            if face == "acall":
                return await timeout.acall(work)
            async with timeout:
                return await work()

        async def main() -> None:
            assert "ok" == await run(0.5, None)
            with pytest.raises(Boom):
                await run(0.25, Boom())
            with pytest.raises(TimeoutExceededError):
                await run(10, None)
            task = asyncio.create_task(run(10, None))
            await clock.asleep(1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())

        assert [
            ("timeout", "success", 0.5, "NoneType"),
            ("timeout", "failure", 0.25, "Boom"),
            ("timeout", "failure", 2.0, "TimeoutExceededError"),
            ("timeout", "ignored", 1.0, "CancelledError"),
        ] == finished(events)

    def test_suspended_block_that_ends_times_out(self, clock):
        """
        A block past its deadline while suspended at a yield, ending
        without awaiting, is a failure carrying the error it raised.
        """
        events: list[stalwart.Event] = []
        timeout = Timeout(seconds=2, clock=clock)
        timeout.add_hook(events.append, per_call=True)

        async def agen() -> AsyncGenerator[int, None]:
            async with timeout:
                yield 1

        async def main() -> None:
            gen = agen()
            await anext(gen)
            await clock.asleep(5)
            with pytest.raises(TimeoutExceededError):
                await anext(gen)

        asyncio.run(main())

        assert [
            ("timeout", "failure", 5.0, "TimeoutExceededError")
        ] == finished(events)


class TestTimeoutSignal:
    def test_block_in_time_and_failing(self):
        """
        A sync with block that ends in time is a success; one that raises
        is a failure.
        """
        events: list[stalwart.Event] = []
        timeout = Timeout(seconds=60)
        timeout.add_hook(events.append, per_call=True)
        with timeout:
            pass
        with pytest.raises(Boom), timeout:
            boom()

        assert ["success", "failure"] == [e[1] for e in finished(events)]

    def test_interrupted_block(self):
        """
        A block interrupted at its deadline is a failure carrying the
        TimeoutExceededError that left it.
        """
        events: list[stalwart.Event] = []
        timeout = Timeout(seconds=0.001)
        timeout.add_hook(events.append, per_call=True)

        with pytest.raises(TimeoutExceededError) as caught, timeout:
            while True:
                pass

        assert caught.value is events[-1].error
        assert ["failure"] == [e[1] for e in finished(events)]

    def test_suspended_block_that_ends_times_out(self):
        """
        A block past its deadline while suspended at a yield, ending at
        once when resumed, is a failure carrying the error it raised.
        """
        events: list[stalwart.Event] = []
        timeout = Timeout(seconds=0.001)
        timeout.add_hook(events.append, per_call=True)

        def gen() -> Generator[None, None, None]:
            with timeout:
                yield

        suspended = gen()
        next(suspended)
        while not _ALARMS.blocks[0].expired:
            pass

        with pytest.raises(TimeoutExceededError) as caught:
            next(suspended)
        assert caught.value is events[-1].error
        assert ["failure"] == [e[1] for e in finished(events)]


# -- thread pool ------------------------------------------------------------


class TestThreadPool:
    def test_queue_wait_and_duration(self, clock):
        """
        Each call is admitted with the time it waited in the queue since
        it was submitted, and finishes with the time it ran, on the fake
        clock.
        """
        events: list[stalwart.Event] = []
        gate = threading.Event()
        with ThreadPoolBulkhead(
            max_workers=1, max_queue=1, name="tp", clock=clock
        ) as pool:
            pool.add_hook(events.append, per_call=True)
            first = pool.submit(gate.wait)
            _until(lambda: pool.statistics().running == 1)

            def second() -> str:
                clock.advance(0.25)
                return "ok"

            queued = pool.submit(second)
            clock.advance(0.5)
            gate.set()
            first.result()

            assert "ok" == queued.result()
        admitted = [
            (e.primitive, e.at, e.wait)
            for e in events
            if isinstance(e, CallAdmitted)
        ]

        assert [
            ("thread_pool_bulkhead", 0.0, 0.0),
            ("thread_pool_bulkhead", 0.5, 0.5),
        ] == admitted
        assert [
            ("thread_pool_bulkhead", "success", 0.5, "NoneType"),
            ("thread_pool_bulkhead", "success", 0.25, "NoneType"),
        ] == finished(events)

    def test_failure_and_ignored(self, clock):
        """
        A call that raises is a failure; one that raises a BaseException
        is ignored; both give their permits back.
        """
        events: list[stalwart.Event] = []
        with ThreadPoolBulkhead(max_workers=1, clock=clock) as pool:
            pool.add_hook(events.append, per_call=True)
            with pytest.raises(Boom):
                pool.call(boom)
            with pytest.raises(Halt):
                pool.call(halt)
            stats = pool.statistics()

        assert [
            ("thread_pool_bulkhead", "failure", 0.0, "Boom"),
            ("thread_pool_bulkhead", "ignored", 0.0, "Halt"),
        ] == finished(events)
        assert (0, 0) == (stats.running, stats.queued)

    def test_hook_raising_base_exception(self, clock):
        """
        A per-call hook raising a BaseException as the call is admitted
        stops the call before it runs and the permit is given back.
        """
        ran: list[bool] = []

        def hook(event: stalwart.Event) -> None:
            if isinstance(event, CallAdmitted):
                raise Halt

        with ThreadPoolBulkhead(max_workers=1, clock=clock) as pool:
            pool.add_hook(hook, per_call=True)
            with pytest.raises(Halt):
                pool.call(ran.append, True)
            pool.remove_hook(hook)

            assert "ok" == pool.call(ok)
            assert [] == ran
            assert 0 == pool.statistics().running

    def test_hooks_attached_later(self, clock):
        """
        A hook attached after decoration gets each refusal, and no per-call
        event unless it asks; removed, the calls are no longer timed.
        """
        events: list[stalwart.Event] = []
        gate = threading.Event()
        with ThreadPoolBulkhead(max_workers=1, clock=clock) as pool:
            guarded = pool(gate.wait)
            pool.add_hook(events.append)
            busy = pool.submit(gate.wait)
            with pytest.raises(stalwart.BulkheadFullError):
                guarded()
            gate.set()
            busy.result()
            pool.remove_hook(events.append)
            guarded()

        assert ["CallRejected"] == [type(e).__name__ for e in events]

    def test_statistics_travel(self):
        """
        The statistics carry the name and go through json.dumps as is.
        """
        with ThreadPoolBulkhead(max_workers=2, name="tp") as pool:
            data = json.loads(json.dumps(pool.statistics().to_dict()))

        assert {
            "primitive": "thread_pool_bulkhead",
            "name": "tp",
            "running": 0,
            "queued": 0,
            "refused": 0,
            "high_water": 0,
        } == data

    def test_events_carry_the_callers_pipeline(self, clock):
        """
        Events sent from the worker carry the pipeline that submitted the
        call, as every stage's events do.
        """
        events: list[stalwart.Event] = []
        with ThreadPoolBulkhead(max_workers=1, clock=clock) as pool:
            pool.add_hook(events.append, per_call=True)
            policy = stalwart.Pipeline(pool, name="policy")
            policy.call(ok)

        assert [("CallAdmitted", "policy"), ("CallFinished", "policy")] == [
            (type(e).__name__, e.pipeline) for e in events
        ]
