"""
The per-call events of every bulkhead (Bulkhead, AdaptiveBulkhead and a
WeightedBulkhead's holds): a CallAdmitted with the queue wait and a
CallFinished with the outcome and duration, on every face, while a hook
that asked for them listens; nothing (and no cost) otherwise.
"""

from __future__ import annotations

import asyncio
import threading

from collections.abc import Callable
from typing import Any

import pytest

import stalwart

from bulkhead_faces import FACES, SYNC_FACES, awork, work
from helpers import as_async, ok
from stalwart import (
    AdaptiveBulkhead,
    AIMDLimit,
    Bulkhead,
    CallAdmitted,
    CallFinished,
    Event,
    WeightedBulkhead,
)
from stalwart.testing import FakeClock


def _bulkhead(clock: FakeClock, **kwargs: Any) -> Any:
    return Bulkhead(max_concurrent=1, name="b", clock=clock, **kwargs)


def _adaptive(clock: FakeClock, **kwargs: Any) -> Any:
    return AdaptiveBulkhead(
        min_limit=1,
        max_limit=1,
        initial_limit=1,
        algorithm=AIMDLimit(),
        name="b",
        clock=clock,
        **kwargs,
    )


def _weighted(clock: FakeClock, **kwargs: Any) -> Any:
    return WeightedBulkhead(max_weight=3, name="b", clock=clock, **kwargs)


def _face_of(bulkhead: Any) -> Any:
    """
    What the faces run through: the bulkhead, or a hold of its whole
    weight.
    """
    if isinstance(bulkhead, WeightedBulkhead):
        return bulkhead.hold(3)
    return bulkhead


KINDS: dict[str, Callable[..., Any]] = {
    "bulkhead": _bulkhead,
    "adaptive_bulkhead": _adaptive,
    "weighted_bulkhead": _weighted,
}


class Recorder:
    """
    A hook that asks for per-call events and keeps them.
    """

    per_call = True

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        """
        Keep *event*.
        """
        self.events.append(event)

    def calls(self) -> list[tuple[Any, ...]]:
        """
        The per-call events, as (kind, outcome or wait, duration).
        """
        seen: list[tuple[Any, ...]] = []
        for event in self.events:
            if isinstance(event, CallAdmitted):
                seen.append(("admitted", event.primitive, event.wait))
            elif isinstance(event, CallFinished):
                seen.append(
                    ("finished", event.outcome, event.duration, event.error)
                )
        return seen


class Interrupt(Recorder):
    """
    A per-call hook that raises KeyboardInterrupt on every admission.
    """

    def __call__(self, event: Event) -> None:
        """
        Interrupt on a CallAdmitted.
        """
        if isinstance(event, CallAdmitted):
            raise KeyboardInterrupt


@pytest.fixture(name="kind", params=sorted(KINDS))
def _kind(request: pytest.FixtureRequest) -> str:
    """
    Each kind of bulkhead.
    """
    return str(request.param)


class TestPerCallEvents:
    @pytest.mark.parametrize("face", sorted(FACES))
    def test_success(self, kind, face, clock):
        """
        A call that ends well reports its admission (no wait) and its end
        (success, its duration), through any face.
        """
        hook = Recorder()
        b = KINDS[kind](clock, hooks=hook)

        FACES[face](_face_of(b), clock, 0.5, "x")

        assert [
            ("admitted", kind, 0.0),
            ("finished", "success", 0.5, None),
        ] == hook.calls()
        assert 0 == b.statistics().in_flight

    @pytest.mark.parametrize("face", sorted(FACES))
    def test_failure(self, kind, face, clock):
        """
        A call that raises an Exception ends as a failure, carrying it.
        """
        hook = Recorder()
        b = KINDS[kind](clock, hooks=hook)
        error = ValueError("no")

        with pytest.raises(ValueError):
            FACES[face](_face_of(b), clock, 0.25, error)

        assert ("finished", "failure", 0.25, error) == hook.calls()[-1]

    @pytest.mark.parametrize("face", sorted(SYNC_FACES))
    def test_base_exception_is_ignored(self, kind, face, clock):
        """
        A KeyboardInterrupt ends the call as "ignored".
        """
        hook = Recorder()
        b = KINDS[kind](clock, hooks=hook)

        with pytest.raises(KeyboardInterrupt):
            FACES[face](_face_of(b), clock, 0.25, KeyboardInterrupt())

        assert "ignored" == hook.calls()[-1][1]
        assert 0 == b.statistics().in_flight

    def test_queue_wait(self, kind, clock):
        """
        A caller that waited in the queue reports how long.
        """
        hook = Recorder()
        b = KINDS[kind](clock, hooks=hook, max_queue=1)
        face = _face_of(b)

        async def main() -> None:
            first = asyncio.ensure_future(face.acall(awork, clock, 2.0, 1))
            await asyncio.sleep(0)
            await face.acall(awork, clock, 1.0, 2)
            await first

        asyncio.run(main())

        assert [
            ("admitted", kind, 0.0),
            ("finished", "success", 2.0, None),
            ("admitted", kind, 2.0),
            ("finished", "success", 1.0, None),
        ] == hook.calls()

    def test_only_per_call_hooks_get_them(self, kind, clock):
        """
        A hook that did not ask for per-call events gets none.
        """
        plain: list[Event] = []
        b = KINDS[kind](clock, hooks=plain.append)

        FACES["call"](_face_of(b), clock, 0.5, "x")

        assert [] == [
            e for e in plain if isinstance(e, CallAdmitted | CallFinished)
        ]

    @pytest.mark.parametrize("face", sorted(FACES))
    def test_hook_attached_later(self, kind, face, clock):
        """
        A per-call hook attached after the bulkhead was built gets the
        events from then on, through any face (decorators included).
        """
        b = KINDS[kind](clock)
        face_of = _face_of(b)
        FACES[face](face_of, clock, 0.5, "x")
        hook = Recorder()
        b.add_hook(hook)

        FACES[face](face_of, clock, 0.5, "x")
        b.remove_hook(hook)
        FACES[face](face_of, clock, 0.5, "x")

        assert [
            ("admitted", kind, 0.0),
            ("finished", "success", 0.5, None),
        ] == hook.calls()
        assert 0 == b.statistics().in_flight

    @pytest.mark.parametrize("attach", [True, False], ids=["on", "off"])
    @pytest.mark.parametrize("face", ["with", "call", "decorator"])
    def test_hook_switched_during_a_call(self, kind, face, attach, clock):
        """
        A call under way when a per-call hook comes reports no duration; one
        under way when it goes reports nothing; neither leaks a permit.
        """
        hook = Recorder()
        b = KINDS[kind](clock, hooks=() if attach else hook)

        def switch() -> str:
            if attach:
                b.add_hook(hook)
            else:
                b.remove_hook(hook)
            return "x"

        runner = {
            "with": lambda: _with(_face_of(b), switch),
            "call": lambda: _face_of(b).call(switch),
            "decorator": lambda: _face_of(b)(switch)(),
        }[face]
        runner()

        expected: list[tuple[Any, ...]] = (
            [("finished", "success", None, None)]
            if attach
            else [("admitted", kind, 0.0)]
        )
        if kind == "adaptive_bulkhead" and attach:
            # Every adaptive call is timed: its duration is known.
            expected = [("finished", "success", 0.0, None)]
        assert expected == hook.calls()
        assert 0 == b.statistics().in_flight
        FACES["call"](_face_of(b), clock, 0.0, None)
        assert 0 == b.statistics().in_flight

    @pytest.mark.parametrize("face", sorted(SYNC_FACES))
    def test_base_exception_from_the_admission_hook(self, kind, face, clock):
        """
        A KeyboardInterrupt raised by the hook reporting an admission
        propagates and leaves no permit taken.
        """
        b = KINDS[kind](clock, hooks=Interrupt())

        with pytest.raises(KeyboardInterrupt):
            FACES[face](_face_of(b), clock, 0.0, "x")

        assert (0, 0) == (b.statistics().in_flight, b.statistics().queued)
        b.remove_hook(b.hooks[0])
        assert "x" == FACES[face](_face_of(b), clock, 0.0, "x")

    def test_misuse_is_not_a_call(self, kind, clock):
        """
        A decorated def that returns a coroutine is refused, not reported.
        """
        hook = Recorder()
        b = KINDS[kind](clock, hooks=hook)

        @_face_of(b)
        def sneaky() -> Any:
            return as_async(ok)()

        with pytest.raises(TypeError):
            sneaky()

        assert [("admitted", kind, 0.0)] == hook.calls()
        assert 0 == b.statistics().in_flight


def _with(guard: Any, fn: Callable[[], object]) -> object:
    with guard:
        return fn()


class TestExplicitSteps:
    @pytest.mark.parametrize("kind", ["bulkhead", "weighted_bulkhead"])
    def test_acquire_and_release(self, kind, clock):
        """
        Explicit steps report the admission and, at release, an "ignored"
        end (they do not say how the work went) with its duration.
        """
        hook = Recorder()
        b = KINDS[kind](clock, hooks=hook, max_queue=1)

        assert b.try_acquire()
        clock.advance(1.0)
        b.release()
        b.acquire()
        clock.advance(2.0)
        b.release()

        assert [
            ("admitted", kind, 0.0),
            ("finished", "ignored", 1.0, None),
            ("admitted", kind, 0.0),
            ("finished", "ignored", 2.0, None),
        ] == hook.calls()

    @pytest.mark.parametrize(
        ("outcome", "reported"),
        [
            ("success", "success"),
            ("dropped", "failure"),
            ("ignored", "ignored"),
        ],
    )
    def test_adaptive_release(self, outcome, reported, clock):
        """
        The adaptive bulkhead's release reports the outcome it was given.
        """
        hook = Recorder()
        b = _adaptive(clock, hooks=hook)

        b.acquire()
        clock.advance(1.0)
        b.release(outcome)

        assert [
            ("admitted", "adaptive_bulkhead", 0.0),
            ("finished", reported, 1.0, None),
        ] == hook.calls()

    def test_async_steps_wait(self, kind, clock):
        """
        aacquire reports the time it waited.
        """
        hook = Recorder()
        b = KINDS[kind](clock, hooks=hook, max_queue=1)
        cost = (3,) if kind == "weighted_bulkhead" else ()

        async def holder() -> None:
            await b.aacquire(*cost)
            await clock.asleep(1.5)
            b.release()

        async def waiter() -> None:
            await asyncio.sleep(0)
            await b.aacquire(*cost)
            b.release()

        async def main() -> None:
            await asyncio.gather(holder(), waiter())

        asyncio.run(main())

        assert ("admitted", kind, 1.5) == hook.calls()[2]

    @pytest.mark.parametrize("step", ["try_acquire", "acquire"])
    def test_base_exception_from_the_admission_hook(self, kind, step, clock):
        """
        A KeyboardInterrupt from the admission hook of an explicit step
        leaves no permit held, so release() then has nothing to give back.
        """
        b = KINDS[kind](clock, hooks=Interrupt())

        with pytest.raises(KeyboardInterrupt):
            getattr(b, step)()

        assert 0 == b.statistics().in_flight
        with pytest.raises(RuntimeError, match="release"):
            b.release()

    def test_refusal_of_a_timed_try_acquire(self, kind, clock):
        """
        A try_acquire that finds the bulkhead full while timing is refused
        and reported as usual.
        """
        hook = Recorder()
        b = KINDS[kind](clock, hooks=hook)
        cost = (3,) if kind == "weighted_bulkhead" else ()
        b.try_acquire(*cost)

        assert not b.try_acquire(*cost)
        assert 1 == b.statistics().refused
        assert isinstance(hook.events[-1], stalwart.CallRejected)
        b.release()


class TestSlowPaths:
    @pytest.mark.parametrize("observed", [False, True], ids=["quiet", "hook"])
    @pytest.mark.parametrize("face", sorted(FACES))
    def test_every_face_waits_its_turn(self, kind, face, observed, clock):
        """
        Through every face, a caller that finds the bulkhead full waits in
        the queue (a thread holding the permit advances the fake clock)
        until the holder is done, then runs; a per-call hook hears how long
        it waited.
        """
        hook = Recorder()
        b = KINDS[kind](clock, max_queue=1, hooks=hook if observed else ())
        face_of = _face_of(b)
        gate = threading.Event()

        def holder() -> None:
            with face_of:
                gate.set()
                while not b.statistics().queued:
                    pass
                clock.advance(2.0)

        thread = threading.Thread(target=holder)
        thread.start()
        gate.wait()
        assert "x" == FACES[face](face_of, clock, 0.0, "x")
        thread.join()

        assert (0, 0) == (b.statistics().in_flight, b.statistics().queued)
        assert observed == (("admitted", kind, 2.0) in hook.calls())

    def test_nested_timed_blocks(self, clock):
        """
        Nested blocks in one frame are timed each on its own.
        """
        hook = Recorder()
        b = Bulkhead(max_concurrent=2, clock=clock, hooks=hook)

        with b:
            clock.advance(1.0)
            with b:
                clock.advance(2.0)
            clock.advance(1.0)

        assert [
            ("admitted", "bulkhead", 0.0),
            ("admitted", "bulkhead", 0.0),
            ("finished", "success", 2.0, None),
            ("finished", "success", 4.0, None),
        ] == hook.calls()

    def test_adaptive_result_drop_is_a_failure(self, clock):
        """
        A result that drop_result marks ends the call as a failure.
        """
        hook = Recorder()
        b = _adaptive(clock, hooks=hook, drop_result=lambda r: r == 503)

        assert 503 == b.call(work, clock, 0.5, 503)

        assert ("finished", "failure", 0.5, None) == hook.calls()[-1]
