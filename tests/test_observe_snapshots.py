"""
The hook contract on the per-call paths that iterate a snapshot of the
hooks inline (``LiveHooks.calls_now``): a hook's error is logged and
swallowed, a hook removed meanwhile never makes another miss an event, a
``BaseException`` from a hook goes through, with the call counted once;
and ``Delivery.send``, which delivers a breaker's quiet success at once
when nothing is queued and no thread delivers.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading

from typing import Any

import pytest

import stalwart

from stalwart import CallAdmitted, CallFinished, Event
from stalwart._events import Delivery, call_finished, hook_failed
from stalwart._observe import LiveHooks
from stalwart.testing import FakeClock


KINDS = [
    "breaker",
    "retry",
    "retry-untimed",
    "fallback",
    "limiter",
    "timeout",
]


def build(kind: str, clock: FakeClock) -> Any:
    """A primitive of *kind* whose decorated calls succeed at once."""
    if kind == "breaker":
        return stalwart.CircuitBreaker(name="b", clock=clock)
    if kind == "retry":
        return stalwart.Retry(name="r", wait=0, clock=clock)
    if kind == "retry-untimed":
        return stalwart.Retry(name="r", wait=0, timeout=None, clock=clock)
    if kind == "fallback":
        return stalwart.Fallback(name="f", value=0, clock=clock)
    if kind == "timeout":
        return stalwart.Timeout(name="t", seconds=60.0, clock=clock)
    return stalwart.TokenBucket(name="l", rate=(10**9, 3600.0), clock=clock)


def counted(primitive: Any) -> int:
    """The calls a primitive's statistics say it let through."""
    stats = primitive.statistics()
    if isinstance(stats, stalwart.CircuitBreakerStatistics):
        return stats.successes
    if isinstance(stats, stalwart.RetryStatistics):
        return stats.calls
    if isinstance(stats, stalwart.RateLimiterStatistics):
        return stats.granted
    return -1  # a fallback counts only the calls it answered; a timeout,
    # those it cut


def per_call(events: list[Event]) -> list[Event]:
    """The per-call events among *events*."""
    return [e for e in events if isinstance(e, (CallFinished, CallAdmitted))]


def f(x: int) -> int:
    return x


async def af(x: int) -> int:
    return x


class TestSnapshots:
    def test_follow_every_change(self):
        """
        ``all_now`` and ``calls_now`` are tuples replaced on every
        attachment and removal; the lists keep their identity.
        """

        def a(event: Event) -> None: ...

        def b(event: Event) -> None: ...

        live = LiveHooks((a,))
        lists = live.all, live.calls
        assert ((a,), ()) == (live.all_now, live.calls_now)

        live.add(b, per_call=True)
        before = live.calls_now
        assert ((a, b), (b,)) == (live.all_now, live.calls_now)

        live.add(a, per_call=True)
        assert ((a, b, a), (b, a)) == (live.all_now, live.calls_now)
        assert (b,) == before  # a snapshot never changes

        live.remove(a)
        live.remove(b)
        assert ((a,), ()) == (live.all_now, live.calls_now)
        assert lists[0] is live.all
        assert lists[1] is live.calls

    def test_built_from_per_call_hooks(self):
        """A hook given at construction with ``per_call`` is in both."""
        hook = stalwart.LoggingHook(per_call=True)
        live = LiveHooks((hook,))
        assert ((hook,), (hook,)) == (live.all_now, live.calls_now)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("kind", KINDS)
class TestContract:
    def call(self, primitive: Any, is_async: bool, n: int = 1) -> list[int]:
        if is_async:
            g = primitive(af)

            async def run() -> list[int]:
                return [await g(i) for i in range(n)]

            return asyncio.run(run())
        g = primitive(f)
        return [g(i) for i in range(n)]

    def test_raising_hook_logged_and_swallowed(self, kind, is_async, caplog):
        """
        A per-call hook that raises is logged; the hooks after it still
        get the event and the call returns its result.
        """
        primitive = build(kind, FakeClock())
        seen: list[Event] = []

        def bad(event: Event) -> None:
            raise ValueError("bad hook")

        primitive.add_hook(bad, per_call=True)
        primitive.add_hook(seen.append, per_call=True)

        with caplog.at_level(logging.ERROR, logger="stalwart"):
            assert [0, 1] == self.call(primitive, is_async, 2)

        assert 2 == len(per_call(seen))
        failures = [r for r in caplog.records if "bad" in r.getMessage()]
        assert 2 == len(failures)
        assert isinstance(failures[0].exc_info[1], ValueError)

    def test_base_exception_from_hook_goes_through(self, kind, is_async):
        """
        A ``BaseException`` from a per-call hook escapes the call, which
        was counted once; the next call is reported again.
        """
        primitive = build(kind, FakeClock())
        seen: list[Event] = []
        armed = [True]

        def interrupt(event: Event) -> None:
            if armed.pop() if armed else False:
                raise KeyboardInterrupt

        primitive.add_hook(interrupt, per_call=True)
        primitive.add_hook(seen.append, per_call=True)

        with pytest.raises(KeyboardInterrupt):
            self.call(primitive, is_async)
        assert [] == per_call(seen)  # the hooks after it missed it
        if kind not in {"fallback", "timeout"}:
            assert 1 == counted(primitive)

        assert [7] == [self.call(primitive, is_async, 8)[-1]]
        assert 8 == len(per_call(seen))
        if kind not in {"fallback", "timeout"}:
            assert 9 == counted(primitive)

    def test_removed_meanwhile(self, kind, is_async):
        """
        A hook that removes itself (or another) while an event is handed
        out never makes another hook miss that event.
        """
        primitive = build(kind, FakeClock())
        seen: list[Event] = []

        def once(event: Event) -> None:
            primitive.remove_hook(once)

        primitive.add_hook(once, per_call=True)
        primitive.add_hook(seen.append, per_call=True)

        self.call(primitive, is_async, 3)

        assert 3 == len(per_call(seen))


# Not the timeout: its sync decorator runs each call on a thread of its own.
@pytest.mark.parametrize("kind", [k for k in KINDS if k != "timeout"])
def test_hooks_come_and_go_while_threads_call(kind):
    """
    While threads call, another hook is attached and removed over and
    over: a hook attached throughout receives one event per call, and the
    statistics count every call.
    """
    primitive = build(kind, FakeClock())
    seen: list[Event] = []
    primitive.add_hook(seen.append, per_call=True)
    g = primitive(f)
    threads, calls = 4, 2000
    done = threading.Event()

    def other(event: Event) -> None: ...

    def churn() -> None:
        while not done.is_set():
            primitive.add_hook(other, per_call=True)
            primitive.remove_hook(other)

    def work() -> None:
        for i in range(calls):
            g(i)

    churner = threading.Thread(target=churn)
    churner.start()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    done.set()
    churner.join()

    assert threads * calls == len(per_call(seen))
    if kind not in {"fallback", "timeout"}:
        assert threads * calls == counted(primitive)


@pytest.mark.parametrize("timeout", [None, 45.0], ids=["untimed", "timed"])
def test_retry_decorator_refuses_a_misuse_observed(timeout):
    """
    Observed, a decorated ``def`` that returns an awaitable is refused as
    without hooks: neither counted nor reported.
    """
    retry = stalwart.Retry(name="r", wait=0, timeout=timeout)
    seen: list[Event] = []
    retry.add_hook(seen.append, per_call=True)
    coroutine = af(1)

    def misused() -> Any:
        return coroutine

    with pytest.raises(TypeError, match="must be awaited"):
        retry(misused)()
    coroutine.close()

    assert [] == seen
    assert 0 == retry.statistics().calls


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_breaker_observed_open_refuses(is_async):
    """
    With a per-call hook, an open breaker's decorator refuses (no call
    reported), a trial goes through the guard's steps, and once closed
    again the calls are reported inline, each event in order with the
    transitions.
    """
    clock = FakeClock()
    breaker = stalwart.CircuitBreaker(
        name="b", clock=clock, failure_threshold=1, recovery_time=10
    )
    events: list[Event] = []
    breaker.add_hook(events.append, per_call=True)

    def boom() -> None:
        raise ValueError

    async def aboom() -> None:
        raise ValueError

    g, bad = (
        (breaker(af), breaker(aboom))
        if is_async
        else (breaker(f), breaker(boom))
    )

    def run(fn: Any, *args: Any) -> Any:
        return asyncio.run(fn(*args)) if is_async else fn(*args)

    with pytest.raises(ValueError):
        run(bad)
    with pytest.raises(stalwart.CircuitOpenError):
        run(g, 1)
    clock.advance(10)
    assert 2 == run(g, 2)  # the trial, through the guard's steps
    assert 3 == run(g, 3)  # closed again: inline

    kinds = [type(e).__name__ for e in events]
    assert [
        "CallFinished",
        "CircuitOpened",
        "CallRejected",
        "CircuitHalfOpened",
        "CallFinished",
        "CircuitClosed",
        "CallFinished",
    ] == kinds
    assert ["failure", "success", "success"] == [
        e.outcome for e in events if isinstance(e, CallFinished)
    ]


def event(n: int) -> CallFinished:
    return call_finished("d", float(n), "circuit_breaker", "success", 0.0)


class TestSend:
    def test_delivered_at_once(self):
        """With nothing queued, the event reaches the hooks at once."""
        seen: list[float] = []
        delivery = Delivery(calls=(lambda e: seen.append(e.at),))
        delivery.send(event(1))
        assert [1.0] == seen
        assert not delivery.queue

    def test_after_the_queued_ones(self):
        """An event sent after others were posted comes after them."""
        seen: list[float] = []
        delivery = Delivery(calls=[lambda e: seen.append(e.at)])
        delivery.post(event(1))
        delivery.send(event(2))
        assert [1.0, 2.0] == seen

    def test_sent_by_a_hook(self):
        """
        An event sent by a hook while the right is held is delivered after
        the hook returns, by the same call.
        """
        seen: list[float] = []
        delivery: Delivery

        def hook(e: Event) -> None:
            seen.append(e.at)
            if e.at == 1.0:
                delivery.send(event(2))  # the right is held: queued
                seen.append(1.5)

        delivery = Delivery(calls=(hook,))
        delivery.send(event(1))
        assert [1.0, 1.5, 2.0] == seen

    def test_posted_while_taking_the_right(self):
        """
        An event posted by another thread between the test of the queue
        and the taking of the right is delivered first.
        """
        seen: list[float] = []
        delivery = Delivery(calls=(lambda e: seen.append(e.at),))

        class Racing(collections.deque):  # type: ignore[type-arg]
            tests = 0

            def __len__(self) -> int:
                Racing.tests += 1
                if Racing.tests == 1:  # seen empty, then filled
                    self.append(event(1))
                    return 0
                return super().__len__()

        delivery.queue = Racing()
        delivery.send(event(2))
        assert [1.0, 2.0] == seen
        assert not delivery.queue

    def test_base_exception_gives_the_right_back(self):
        """
        A ``BaseException`` from a hook goes through; the next event is
        delivered.
        """
        seen: list[float] = []

        def hook(e: Event) -> None:
            if e.at == 1.0:
                raise KeyboardInterrupt
            seen.append(e.at)

        delivery = Delivery(calls=(hook,))
        with pytest.raises(KeyboardInterrupt):
            delivery.send(event(1))
        delivery.send(event(2))
        assert [2.0] == seen

    def test_error_logged(self, caplog):
        """A hook's error is logged and the next hook gets the event."""
        seen: list[float] = []

        def bad(e: Event) -> None:
            raise ValueError

        delivery = Delivery(calls=(bad, lambda e: seen.append(e.at)))
        with caplog.at_level(logging.ERROR, logger="stalwart"):
            delivery.send(event(1))
            delivery.post(event(2))
            delivery.deliver()
        assert [1.0, 2.0] == seen
        assert 2 == len(caplog.records)


def test_hook_failed_logs_the_exception(caplog):
    """``hook_failed`` logs the error being handled, naming the hook."""

    def hook(e: Event) -> None: ...

    with caplog.at_level(logging.ERROR, logger="stalwart"):
        try:
            raise ValueError("x")
        except ValueError:
            hook_failed(hook, event(1))
    (record,) = caplog.records
    assert "CallFinished" in record.getMessage()
    assert isinstance(record.exc_info[1], ValueError)
