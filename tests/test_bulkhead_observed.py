"""
A decorated call through a :class:`~stalwart.Bulkhead` while a per-call
hook listens: admitted at once it takes the fast gate, is timed from its
admission (waited exactly 0.0) and sends CallAdmitted then CallFinished
inline, under the hook contract (a hook's error is logged and swallowed; a
BaseException from a hook at admission gives the permit back, and wakes
whoever queued meanwhile); one that must wait keeps the slow path.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from collections.abc import Callable
from typing import Any

import pytest

from stalwart import Bulkhead, CallAdmitted, CallFinished, Event
from stalwart.testing import FakeClock


def _until(predicate: Callable[[], bool]) -> None:
    """
    Spin until *predicate* holds (a state, never a duration).
    """
    while not predicate():
        pass


def _counts(b: Bulkhead) -> tuple[int, int, int]:
    stats = b.statistics()
    return stats.in_flight, stats.queued, stats.refused


def _per_call(events: list[Event]) -> list[tuple[Any, ...]]:
    """
    The per-call events, as (kind, at, wait or outcome, duration).
    """
    seen: list[tuple[Any, ...]] = []
    for event in events:
        if isinstance(event, CallAdmitted):
            seen.append(("admitted", event.at, event.wait))
        elif isinstance(event, CallFinished):
            seen.append(("finished", event.at, event.outcome, event.duration))
    return seen


def _decorate(b: Bulkhead, is_async: bool, body: Callable[[], Any]) -> Any:
    """
    Decorate *body* as a ``def`` or an ``async def`` and return a
    function that makes one call (running the loop for the async one).
    """
    if is_async:

        @b
        async def acall() -> Any:
            return body()

        return lambda: asyncio.run(acall())

    @b
    def call() -> Any:
        return body()

    return call


@pytest.fixture(name="is_async", params=[False, True], ids=["sync", "async"])
def _is_async(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


class _ReleasingClock(FakeClock):
    """
    A fake clock that runs a callback on its next reading: what another
    thread may do between the fast gate and the slow path's second try.
    """

    def __init__(self) -> None:
        super().__init__()
        self.on_read: Callable[[], None] | None = None

    def now(self) -> float:
        """
        Run the pending callback once, then read the time.
        """
        callback, self.on_read = self.on_read, None
        if callback is not None:
            callback()
        return super().now()


class TestAtOnce:
    def test_events_in_order_timed_from_admission(self, is_async, clock):
        """
        CallAdmitted (at the call's start, waited 0.0) reaches the hook
        before the call runs, CallFinished (its duration) after.
        """
        seen: list[Event] = []
        b = Bulkhead(max_concurrent=2, name="b", clock=clock)
        b.add_hook(seen.append, per_call=True)
        clock.advance(10.0)

        def body() -> str:
            assert [("admitted", 10.0, 0.0)] == _per_call(seen)
            assert 1 == b.statistics().in_flight
            clock.advance(1.5)
            return "x"

        assert "x" == _decorate(b, is_async, body)()

        assert [
            ("admitted", 10.0, 0.0),
            ("finished", 11.5, "success", 1.5),
        ] == _per_call(seen)
        assert (0, 0, 0) == _counts(b)
        assert 1 == b.statistics().high_water

    @pytest.mark.parametrize(
        ("error", "outcome"),
        [(ValueError("no"), "failure"), (KeyboardInterrupt(), "ignored")],
    )
    def test_call_that_raises(self, is_async, error, outcome, clock):
        """
        A call that raises is reported with its outcome and error, and
        gives its permit back.
        """
        seen: list[Event] = []
        b = Bulkhead(max_concurrent=1, name="b", clock=clock, hooks=())
        b.add_hook(seen.append, per_call=True)

        def body() -> None:
            clock.advance(0.25)
            raise error

        with pytest.raises(type(error)):
            _decorate(b, is_async, body)()

        finished = [e for e in seen if isinstance(e, CallFinished)]
        assert [(outcome, 0.25, error)] == [
            (e.outcome, e.duration, e.error) for e in finished
        ]
        assert (0, 0, 0) == _counts(b)

    def test_raising_hook_logged_and_swallowed(self, is_async, clock, caplog):
        """
        A per-call hook that raises on both events is logged twice; the
        hook after it gets both, and the call returns its result.
        """
        seen: list[Event] = []

        def bad(event: Event) -> None:
            raise ValueError("bad hook")

        b = Bulkhead(max_concurrent=1, name="b", clock=clock)
        b.add_hook(bad, per_call=True)
        b.add_hook(seen.append, per_call=True)

        with caplog.at_level(logging.ERROR, logger="stalwart"):
            assert 3 == _decorate(b, is_async, lambda: 3)()

        assert ["admitted", "finished"] == [e[0] for e in _per_call(seen)]
        failures = [r for r in caplog.records if "bad" in r.getMessage()]
        assert 2 == len(failures)
        assert (0, 0, 0) == _counts(b)

    def test_hook_removed_during_the_call(self, is_async, clock):
        """
        A call whose only per-call hook went away meanwhile reports no end;
        its permit comes back.
        """
        seen: list[Event] = []
        b = Bulkhead(max_concurrent=1, name="b", clock=clock)
        b.add_hook(seen.append, per_call=True)

        def body() -> str:
            b.remove_hook(seen.append)
            return "x"

        assert "x" == _decorate(b, is_async, body)()

        assert [("admitted", 0.0, 0.0)] == _per_call(seen)
        assert (0, 0, 0) == _counts(b)

    def test_base_exception_at_admission_wakes_a_waiter(self, is_async, clock):
        """
        A hook that raises KeyboardInterrupt on the admission gives the
        permit back before the call runs; a thread that queued for it
        meanwhile gets it and runs.
        """
        ran: list[str] = []
        b = Bulkhead(max_concurrent=1, max_queue=1, name="b", clock=clock)
        fn = _decorate(b, is_async, lambda: ran.append("call"))
        armed = [True]
        waiter: list[threading.Thread] = []

        def interrupt(event: Event) -> None:
            if isinstance(event, CallAdmitted) and armed:
                armed.pop()
                thread = threading.Thread(target=fn)
                waiter.append(thread)
                thread.start()
                _until(lambda: b.statistics().queued == 1)
                raise KeyboardInterrupt

        b.add_hook(interrupt, per_call=True)

        with pytest.raises(KeyboardInterrupt):
            fn()
        waiter[0].join()

        assert ["call"] == ran  # the waiter's; the interrupted call never ran
        assert (0, 0, 0) == _counts(b)
        assert "y" == _decorate(b, is_async, lambda: "y")()

    def test_end_wakes_a_waiter(self, is_async, clock):
        """
        An observed call that ends hands its permit to the thread queued
        behind it, which waited as long as the call still ran.
        """
        seen: list[Event] = []
        b = Bulkhead(max_concurrent=1, max_queue=1, name="b", clock=clock)
        b.add_hook(seen.append, per_call=True)
        done: list[str] = []
        inner = _decorate(b, False, lambda: done.append("waiter"))
        threads: list[threading.Thread] = []

        def body() -> str:
            thread = threading.Thread(target=inner)
            threads.append(thread)
            thread.start()
            _until(lambda: b.statistics().queued == 1)
            clock.advance(2.0)
            return "holder"

        assert "holder" == _decorate(b, is_async, body)()
        threads[0].join()

        assert ["waiter"] == done
        waits = [e.wait for e in seen if isinstance(e, CallAdmitted)]
        assert [0.0, 2.0] == waits
        assert 4 == len(seen)
        assert (0, 0, 0) == _counts(b)

    def test_misuse_refused_not_reported(self, clock):
        """
        A decorated def returning a coroutine is refused: admitted, never
        reported as a call, its permit back.
        """
        seen: list[Event] = []
        b = Bulkhead(max_concurrent=1, name="b", clock=clock)
        b.add_hook(seen.append, per_call=True)

        async def coro() -> None: ...

        pending = coro()

        @b
        def sneaky() -> Any:
            return pending

        with pytest.raises(TypeError, match="acall"):
            sneaky()
        pending.close()

        assert ["admitted"] == [e[0] for e in _per_call(seen)]
        assert (0, 0, 0) == _counts(b)


class TestSecondTry:
    """
    The gate finds no permit; another thread gives it back before the slow
    path's second try (while the clock is read): the call is admitted there,
    having waited 0.0.
    """

    def _held(self) -> tuple[Bulkhead, _ReleasingClock]:
        """
        A bulkhead of one permit, held by a thread that gives it back when
        the clock is next read.
        """
        clock = _ReleasingClock()
        b = Bulkhead(max_concurrent=1, name="b", clock=clock)
        release = threading.Event()

        def hold() -> None:
            b.acquire()
            release.wait()
            b.release()

        holder = threading.Thread(target=hold)
        holder.start()
        _until(lambda: b.statistics().in_flight == 1)

        def give_back() -> None:
            release.set()
            holder.join()

        clock.on_read = give_back
        return b, clock

    def test_admitted_on_the_second_try(self, is_async):
        b, clock = self._held()
        seen: list[Event] = []
        b.add_hook(seen.append, per_call=True)

        assert "x" == _decorate(b, is_async, lambda: "x")()

        assert clock.on_read is None  # the holder gave it back meanwhile
        assert [
            ("admitted", 0.0, 0.0),
            ("finished", 0.0, "success", 0.0),
        ] == _per_call(seen)[-2:]
        assert (0, 0, 0) == _counts(b)

    def test_base_exception_at_admission_gives_it_back(self, is_async):
        b, _ = self._held()

        def interrupt(event: Event) -> None:
            if isinstance(event, CallAdmitted):
                raise KeyboardInterrupt

        b.add_hook(interrupt, per_call=True)
        ran: list[str] = []

        with pytest.raises(KeyboardInterrupt):
            _decorate(b, is_async, lambda: ran.append("x"))()

        assert [] == ran
        assert (0, 0, 0) == _counts(b)


@pytest.mark.parametrize("observed", [False, True], ids=["quiet", "hook"])
def test_threads_count_exactly(observed):
    """
    Threads calling a decorated function through a small bulkhead: every
    call is admitted and ends once (one of each event while a hook
    listens), the count never goes past the limit, and none is left in.
    """
    seen: list[Event] = []
    b = Bulkhead(max_concurrent=2, max_queue=None, name="b")
    if observed:
        b.add_hook(seen.append, per_call=True)
    inside = [0]
    most = [0]
    lock = threading.Lock()

    @b
    def work() -> None:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        with lock:
            inside[0] -= 1

    threads, calls = 4, 500

    def run() -> None:
        for _ in range(calls):
            work()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()

    assert most[0] <= 2
    assert (0, 0, 0) == _counts(b)
    kinds = [type(e) for e in seen]
    expected = threads * calls if observed else 0
    assert expected == kinds.count(CallAdmitted)
    assert expected == kinds.count(CallFinished)
    assert 2 >= b.statistics().high_water >= 1
