"""
Events, hooks, and hook isolation.
"""

from __future__ import annotations

import itertools
import logging
import pickle
import sys
import threading

import attrs
import pytest

from stalwart import CallAdmitted, CallFinished, Event
from stalwart._events import (
    Delivery,
    Hook,
    call_admitted,
    call_finished,
    emit,
    running_pipeline,
)


class TestEmit:
    def test_hooks_receive_events_in_order(self):
        """
        Every hook receives the event.
        """
        seen: list[tuple[str, Event]] = []
        event = Event(primitive_name="p", at=1.0)

        emit(
            [lambda e: seen.append(("a", e)), lambda e: seen.append(("b", e))],
            event,
        )

        assert [("a", event), ("b", event)] == seen

    def test_failing_hook_is_logged_and_isolated(self, caplog):
        """
        A hook that raises is logged on 'stalwart'; later hooks still run.
        """
        seen: list[Event] = []

        def bad(event: Event) -> None:
            raise RuntimeError("hook bug")

        with caplog.at_level(logging.ERROR, logger="stalwart"):
            emit([bad, seen.append], Event(primitive_name="p", at=0.0))

        assert 1 == len(seen)
        assert "hook" in caplog.records[0].getMessage()
        assert "stalwart" == caplog.records[0].name

    def test_events_are_frozen(self):
        """
        Event records cannot be changed by a hook.
        """
        event = Event(primitive_name="p", at=0.0)

        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            event.at = 1.0  # type: ignore[misc]


# Only a guard against a hung test; no result depends on it.
GUARD = 10.0


def event(n: int) -> Event:
    """
    An event numbered *n* (in its `at`).
    """
    return Event(primitive_name="p", at=float(n))


class Interrupt(BaseException):
    """
    A BaseException that is not an Exception, like a Ctrl-C.
    """


class TestDelivery:
    def test_in_order_with_render(self):
        """
        Posted events reach every hook in the order they were posted;
        items that are not events are rendered first.
        """
        seen: list[tuple[str, float]] = []
        delivery = Delivery(
            [
                lambda e: seen.append(("a", e.at)),
                lambda e: seen.append(("b", e.at)),
            ],
            render=event,
        )
        delivery.post(event(1))
        delivery.post(2)
        delivery.deliver()

        assert [("a", 1.0), ("b", 1.0), ("a", 2.0), ("b", 2.0)] == seen
        assert 0 == len(delivery.queue)

    def test_a_rendered_call_finished_goes_to_the_per_call_hooks(self):
        """
        An item rendered into a per-call event reaches the hooks that asked
        for per-call events, and only them, in its place in the order.
        """
        seen: list[tuple[str, float]] = []
        finished = CallFinished(
            primitive_name="p",
            at=2.0,
            primitive="p",
            outcome="success",
            duration=0.0,
        )
        delivery = Delivery(
            [lambda e: seen.append(("all", e.at))],
            render=lambda item: finished,
            calls=[lambda e: seen.append(("calls", e.at))],
        )
        delivery.post(event(1))
        delivery.post("a call")
        delivery.post(event(3))
        delivery.deliver()

        assert [("all", 1.0), ("calls", 2.0), ("all", 3.0)] == seen

    def test_nothing_to_render_with(self):
        """
        Posting a non-event without render= is a TypeError at delivery.
        """
        delivery = Delivery([print])
        delivery.post(1)

        with pytest.raises(TypeError, match="not an Event"):
            delivery.deliver()

    def test_failing_hook_is_logged_and_delivery_goes_on(self, caplog):
        """
        A hook raising an Exception is logged; later events still arrive.
        """
        seen: list[float] = []

        def hook(e: Event) -> None:
            if e.at == 1.0:
                raise RuntimeError("hook bug")
            seen.append(e.at)

        delivery = Delivery([hook])
        delivery.post(event(1))
        delivery.post(event(2))
        delivery.deliver()

        assert [2.0] == seen
        assert "hook bug" in caplog.text

    def test_base_exception_stops_and_later_delivery_resumes(self):
        """
        A hook raising a BaseException stops delivery and propagates; the
        events still queued are delivered at the next deliver().
        """
        seen: list[float] = []

        def hook(e: Event) -> None:
            if e.at == 1.0:
                raise Interrupt
            seen.append(e.at)

        delivery = Delivery([hook])
        delivery.post(event(1))
        delivery.post(event(2))
        with pytest.raises(Interrupt):
            delivery.deliver()

        assert [] == seen

        delivery.deliver()

        assert [2.0] == seen

    def test_reentrant_hook(self):
        """
        Events made by a hook (calling back into its primitive) are
        delivered after it returns, in order, by the same loop.
        """
        seen: list[float] = []
        hooks: list[Hook] = []  # a list: read at each delivery
        delivery = Delivery(hooks)

        def hook(e: Event) -> None:
            seen.append(e.at)
            if e.at == 1.0:
                delivery.post(event(2))
                delivery.deliver()  # the right is held: returns at once
                seen.append(1.5)

        hooks.append(hook)
        delivery.post(event(1))
        delivery.deliver()

        assert [1.0, 1.5, 2.0] == seen

    def test_contended_caller_returns_and_holder_delivers(self):
        """
        While one thread delivers (its hook is slow), another thread's
        deliver() returns at once; the first delivers both events, in the
        order they were posted.
        """
        seen: list[float] = []
        inside, release = threading.Event(), threading.Event()

        def hook(e: Event) -> None:
            if e.at == 1.0:
                inside.set()
                assert release.wait(GUARD)
            seen.append(e.at)

        delivery = Delivery([hook])
        delivery.post(event(1))
        first = threading.Thread(target=delivery.deliver)
        first.start()
        assert inside.wait(GUARD)
        delivery.post(event(2))
        delivery.deliver()  # returns: the first thread holds the right

        assert [] == seen

        release.set()
        first.join(GUARD)

        assert [1.0, 2.0] == seen

    def test_many_threads_every_event_once_in_order(self):
        """
        Threads that post under a lock and deliver after it, with frequent
        thread switches, get every event delivered exactly once, in the
        order posted.
        """
        seen: list[float] = []
        delivery = Delivery([lambda e: seen.append(e.at)])
        lock = threading.Lock()
        counter = itertools.count()
        threads, per_thread = 8, 500
        start = threading.Barrier(threads)

        def work() -> None:
            start.wait(GUARD)
            for _ in range(per_thread):
                with lock:
                    delivery.post(event(next(counter)))
                delivery.deliver()

        pool = [threading.Thread(target=work) for _ in range(threads)]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        try:
            for t in pool:
                t.start()
            for t in pool:
                t.join(GUARD)
        finally:
            sys.setswitchinterval(interval)

        assert [float(n) for n in range(threads * per_thread)] == seen


class TestBuilders:
    @pytest.mark.parametrize("pipeline", [None, "checkout"])
    def test_same_event_as_the_keyword_constructor(self, pipeline):
        """
        The builders the primitives use make the event the keyword
        constructor makes: same class, fields (the pipeline from the
        context), equality, hash and repr; frozen, picklable, evolvable.
        """
        error = OSError("down")
        token = running_pipeline.set(pipeline)
        try:
            built = [
                call_finished("p", 2.0, "retry", "failure", 0.5, error, 3),
                call_finished("p", 2.0, "retry", "success", None),
                call_admitted("p", 1.0, "rate_limiter", 0.25),
            ]
            expected = [
                CallFinished(
                    primitive_name="p",
                    at=2.0,
                    primitive="retry",
                    outcome="failure",
                    duration=0.5,
                    error=error,
                    attempts=3,
                ),
                CallFinished(
                    primitive_name="p",
                    at=2.0,
                    primitive="retry",
                    outcome="success",
                    duration=None,
                ),
                CallAdmitted(
                    primitive_name="p",
                    at=1.0,
                    primitive="rate_limiter",
                    wait=0.25,
                ),
            ]
        finally:
            running_pipeline.reset(token)

        for event, twin in zip(built, expected, strict=True):
            assert type(twin) is type(event)
            assert attrs.asdict(twin) == attrs.asdict(event)
            assert (twin, hash(twin), repr(twin)) == (
                event,
                hash(event),
                repr(event),
            )
            assert pipeline == event.pipeline
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                event.at = 3.0  # type: ignore[misc]
            copy = pickle.loads(pickle.dumps(event))  # a copy of the error
            assert (type(event), repr(event)) == (type(copy), repr(copy))
            assert 3.0 == attrs.evolve(event, at=3.0).at
