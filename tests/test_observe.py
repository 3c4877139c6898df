"""
Hooks attached after construction, and per-call events: the breaker and
the retry report each call through every face once a hook asks for it,
and go back to their fast paths when it leaves.
"""

from __future__ import annotations

import asyncio
import json

from typing import cast

import attrs
import pytest

from hypothesis import given
from hypothesis import strategies as st

import stalwart

from helpers import Boom, as_async, boom, ok
from stalwart import CallFinished, CircuitBreaker, CircuitState, Retry
from stalwart._core.circuit import BreakerCore
from stalwart._observe import LiveHooks
from stalwart.testing import FakeClock


def finished(events: list[stalwart.Event]) -> list[tuple]:
    """
    The (outcome, duration, attempts) of each CallFinished.
    """
    return [
        (e.outcome, e.duration, e.attempts)
        for e in events
        if isinstance(e, CallFinished)
    ]


class TestAttach:
    def test_decorated_before_attach(self, clock):
        """
        A hook attached after decoration gets the transitions and
        refusals of the decorated function.
        """
        breaker = CircuitBreaker(failure_threshold=1, clock=clock)
        guarded = breaker(boom)
        events: list[stalwart.Event] = []
        breaker.add_hook(events.append)
        with pytest.raises(Boom):
            guarded()
        with pytest.raises(stalwart.CircuitOpenError):
            guarded()

        assert ["CircuitOpened", "CallRejected"] == [
            type(e).__name__ for e in events
        ]
        assert () == breaker.hooks

    def test_remove(self, clock):
        """
        A removed hook gets nothing more; removing an unknown one is an
        error; a non-callable or async hook is refused.
        """
        breaker = CircuitBreaker(failure_threshold=1, clock=clock)
        events: list[stalwart.Event] = []
        breaker.add_hook(events.append)
        breaker.add_hook(events.append)
        breaker.remove_hook(events.append)
        breaker.remove_hook(events.append)
        with pytest.raises(Boom):
            breaker.call(boom)

        assert [] == events
        with pytest.raises(ValueError, match="is not a hook"):
            breaker.remove_hook(events.append)
        with pytest.raises(TypeError, match="must be callable"):
            breaker.add_hook(3)  # type: ignore[arg-type]

        async def ahook(event: stalwart.Event) -> None: ...

        with pytest.raises(TypeError, match="never awaited"):
            breaker.add_hook(ahook)

    def test_per_call_attribute(self):
        """
        A hook whose per_call attribute is true asks for per-call events;
        per_call= overrides it.
        """
        hook = stalwart.LoggingHook(per_call=True)
        live = LiveHooks(())
        live.add(hook, None)
        live.add(print, True)
        live.add(stalwart.LoggingHook(per_call=True), False)

        assert [hook, print] == live.calls
        assert 3 == len(live.all)


class TestBreakerPerCall:
    @pytest.mark.parametrize("face", ["decorator", "call", "with", "permit"])
    def test_sync_faces(self, face, clock):
        """
        Every sync face reports success, failure and ignored calls with
        their duration.
        """
        breaker = CircuitBreaker(ignore=KeyError, clock=clock)
        events: list[stalwart.Event] = []
        breaker.add_hook(events.append, per_call=True)

        def run(error: BaseException | None) -> None:
            def body() -> None:
                clock.advance(0.5)
                if error is not None:
                    raise error

            if face == "decorator":
                breaker(body)()
            elif face == "call":
                breaker.call(body)
            elif face == "with":
                with breaker:
                    body()
            else:
                permit = breaker.acquire()
                try:
                    body()
                except KeyError:
                    permit.release()
                    raise
                except Exception as exc:
                    permit.record_exception(exc)
                    raise
                permit.record_success()

        run(None)
        with pytest.raises(Boom):
            run(Boom())
        with pytest.raises(KeyError):
            run(KeyError())

        assert [
            ("success", 0.5, 1),
            ("failure", 0.5, 1),
            ("ignored", 0.5, 1),
        ] == finished(events)
        assert "circuit_breaker" == events[0].primitive

    @pytest.mark.parametrize("face", ["decorator", "acall", "async with"])
    def test_async_faces(self, face, clock):
        """
        Every async face reports its calls with their duration.
        """
        breaker = CircuitBreaker(clock=clock)
        events: list[stalwart.Event] = []
        breaker.add_hook(events.append, per_call=True)

        async def body(fail: bool) -> None:
            clock.advance(0.25)
            if fail:
                raise Boom

        async def run(fail: bool) -> None:
            if face == "decorator":
                await breaker(body)(fail)
            elif face == "acall":
                await breaker.acall(body, fail)
            else:
                async with breaker:
                    await body(fail)

        asyncio.run(run(False))
        with pytest.raises(Boom):
            asyncio.run(run(True))

        assert [("success", 0.25, 1), ("failure", 0.25, 1)] == finished(events)

    def test_events_in_order_and_back_to_the_fast_path(self, clock):
        """
        The failing call comes before the transition it causes; once the
        per-call hook leaves, the gate opens again.
        """
        breaker = CircuitBreaker(
            failure_threshold=1, recovery_time=1, clock=clock
        )
        events: list[stalwart.Event] = []
        breaker.add_hook(events.append, per_call=True)
        with pytest.raises(Boom):
            breaker.call(boom)
        clock.advance(1)
        breaker.call(ok)
        breaker.remove_hook(events.append)

        assert [
            "CallFinished",
            "CircuitOpened",
            "CircuitHalfOpened",
            "CallFinished",
            "CircuitClosed",
        ] == [type(e).__name__ for e in events]
        assert 0 <= breaker._core.gate
        assert not breaker._core.dirty

    @pytest.mark.parametrize("is_async", [False, True], ids=["def", "async"])
    @pytest.mark.parametrize(
        "window", [None, stalwart.CountWindow(2)], ids=["streak", "window"]
    )
    def test_decorator_events_in_order(self, window, is_async, clock):
        """
        Through the decorator, each call's CallFinished comes before the
        transition it causes, whether its success changes nothing (no
        streak), ends a streak or fills a window; the counts are those of
        a breaker without per-call hooks.
        """
        events: list[stalwart.Event] = []
        watched = CircuitBreaker(
            failure_threshold=2, window=window, recovery_time=1, clock=clock
        )
        plain = attrs.evolve(watched, clock=FakeClock())
        watched.add_hook(events.append, per_call=True)
        for breaker in (watched, plain):

            def body(error: bool, breaker: CircuitBreaker = breaker) -> str:
                cast("FakeClock", breaker.clock).advance(0.25)
                if error:
                    raise Boom
                return "ok"

            guarded = breaker(as_async(body) if is_async else body)
            for error in (False, True, False, True, True):
                try:
                    if is_async:
                        asyncio.run(guarded(error))
                    else:
                        guarded(error)
                except Boom:
                    pass

        assert [
            ("CallFinished", "success"),
            ("CallFinished", "failure"),
            ("CallFinished", "success"),
            ("CallFinished", "failure"),
            ("CallFinished", "failure"),
            ("CircuitOpened", None),
        ] == [(type(e).__name__, getattr(e, "outcome", None)) for e in events]
        assert [0.25] * 5 == [
            e.duration for e in events if isinstance(e, CallFinished)
        ]
        assert attrs_of(plain) == attrs_of(watched)

    @pytest.mark.parametrize("is_async", [False, True], ids=["def", "async"])
    def test_decorator_trial_with_hooks(self, is_async, clock):
        """
        A decorated trial call that fails while hooks listen (none for
        per-call events) takes the guard's steps, which re-open the
        breaker and tell the hooks.
        """
        events: list[stalwart.Event] = []
        breaker = CircuitBreaker(
            failure_threshold=1, recovery_time=1, clock=clock
        )
        breaker.add_hook(events.append)
        guarded = breaker(as_async(boom) if is_async else boom)
        for _ in range(2):
            with pytest.raises(Boom):
                asyncio.run(guarded()) if is_async else guarded()
            clock.advance(1)

        assert ["CircuitOpened", "CircuitHalfOpened", "CircuitOpened"] == [
            type(e).__name__ for e in events
        ]

    def test_call_admitted_before_attach(self, clock):
        """
        A call admitted before per-call events were asked for reports no
        duration.
        """
        breaker = CircuitBreaker(clock=clock)
        events: list[stalwart.Event] = []
        permit = breaker.acquire()
        blocked = breaker.acquire()
        breaker.add_hook(events.append, per_call=True)
        permit.record_success()
        blocked.release()

        assert [("success", None, 1), ("ignored", None, 1)] == finished(events)

    def test_statistics_unchanged_by_observation(self, clock, invoke):
        """
        Counts are the same whether or not per-call hooks listen.
        """
        plain = CircuitBreaker(failure_threshold=3, clock=clock)
        watched = CircuitBreaker(failure_threshold=3, clock=clock)
        watched.add_hook(lambda e: None, per_call=True)
        for breaker in (plain, watched):
            invoke(breaker, ok)
            with pytest.raises(Boom):
                invoke(breaker, boom)
            invoke(breaker, ok)

        assert attrs_of(plain) == attrs_of(watched)


def attrs_of(breaker: CircuitBreaker) -> dict:
    """
    The breaker's statistics as data.
    """
    return breaker.statistics().to_dict()


@given(
    ops=st.lists(
        st.sampled_from(["ok", "fail", "advance", "hold", "release"]),
        max_size=40,
    )
)
def test_held_core_decides_the_same(ops):
    """
    Holding the gate shut (per-call events) never changes a decision:
    admissions, states and counts match an unheld core's.
    """
    cores = [
        BreakerCore(failure_threshold=2, recovery_time=1.0),
        BreakerCore(failure_threshold=2, recovery_time=1.0),
    ]
    now = 0.0
    for op in ops:
        if op == "advance":
            now += 0.6
            continue
        if op in {"hold", "release"}:
            cores[1].hold(op == "hold")
            continue
        epochs = [core.admit(now) for core in cores]
        assert (epochs[0] < 0) == (epochs[1] < 0)
        if epochs[0] >= 0:
            for core, epoch in zip(cores, epochs):
                core.record(now, epoch, 1 if op == "fail" else 0)
        assert cores[0].state is cores[1].state
        assert cores[0].failures == cores[1].failures
        if cores[1].held:
            assert cores[1].gate < 0 and cores[1].dirty


class TestRetryPerCall:
    @pytest.mark.parametrize("face", ["decorator", "call", "loop"])
    def test_sync_faces(self, face, clock):
        """
        Each sync face reports a call with its attempts and duration:
        recovered, given up, not retryable.
        """
        retry = Retry(attempts=3, on=OSError, wait=1.0, clock=clock)
        events: list[stalwart.Event] = []
        retry.add_hook(events.append, per_call=True)

        def run(errors: list[BaseException | None]) -> object:
            answers = iter(errors)

            def body() -> str:
                error = next(answers)
                if error is not None:
                    raise error
                return "ok"

            if face == "decorator":
                return retry(body)()
            if face == "call":
                return retry.call(body)
            for attempt in retry:
                with attempt:
                    return body()
            return None

        assert "ok" == run([OSError(), None])
        with pytest.raises(OSError):
            run([OSError()] * 3)
        with pytest.raises(KeyError):
            run([KeyError()])

        assert [
            ("success", 1.0, 2),
            ("failure", 2.0, 3),
            ("failure", 0.0, 1),
        ] == finished(events)

    @pytest.mark.parametrize("timeout", [None, 45.0], ids=["untimed", "timed"])
    @pytest.mark.parametrize("face", ["decorator", "acall", "loop"])
    def test_async_faces(self, face, timeout, clock):
        """
        Each async face reports its calls, with or without a time budget.
        """
        retry = Retry(
            attempts=2, on=OSError, wait=0.5, timeout=timeout, clock=clock
        )
        events: list[stalwart.Event] = []
        retry.add_hook(events.append, per_call=True)

        async def run(errors: list[BaseException | None]) -> object:
            answers = iter(errors)

            async def body() -> str:
                error = next(answers)
                if error is not None:
                    raise error
                return "ok"

            if face == "decorator":
                return await retry(body)()
            if face == "acall":
                return await retry.acall(body)
            attempts = aiter(retry)
            try:
                async for attempt in attempts:
                    with attempt:
                        return await body()
            finally:
                await attempts.aclose()
            return None

        assert "ok" == asyncio.run(run([OSError(), None]))
        with pytest.raises(OSError):
            asyncio.run(run([OSError(), OSError()]))

        assert [("success", 0.5, 2), ("failure", 0.5, 2)] == finished(events)

    def test_results_and_cancellation(self, clock):
        """
        A result on_result still rejects when attempts run out is a
        failure; a cancellation is ignored.
        """
        retry = Retry(
            attempts=2, on_result=lambda r: r == "bad", wait=0, clock=clock
        )
        events: list[stalwart.Event] = []
        retry.add_hook(events.append, per_call=True)

        assert "bad" == retry.call(lambda: "bad")
        with pytest.raises(KeyboardInterrupt):
            retry.call(_interrupt)

        assert [("failure", 0.0, 2), ("ignored", 0.0, 1)] == finished(events)

    def test_misuse_through_the_observed_path(self, clock):
        """
        The observed path refuses what call() and acall() refuse.
        """
        retry = Retry(clock=clock)
        retry.add_hook(lambda e: None, per_call=True)

        with pytest.raises(TypeError, match="needs a callable"):
            retry.call(3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="needs a callable"):
            asyncio.run(retry.acall(3))  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="must be awaited"):
            retry.call(as_async(ok))
        with pytest.raises(TypeError, match="cannot be awaited"):
            asyncio.run(retry.acall(ok))

    @pytest.mark.parametrize("timeout", [None, 45.0], ids=["untimed", "timed"])
    @pytest.mark.parametrize(
        "face", ["decorator", "call", "async decorator", "acall"]
    )
    def test_first_attempt_reported_inline(self, face, timeout, clock):
        """
        A call that succeeds at once is reported as the attempt loop
        reported it (success, one attempt, its duration), and counted; a
        first attempt that fails goes on through the failure path, which
        reports every attempt and the events before the call's end, in
        order; a BaseException is ignored after one attempt.
        """
        retry = Retry(
            attempts=3, on=OSError, wait=0.5, timeout=timeout, clock=clock
        )
        events: list[stalwart.Event] = []
        retry.add_hook(events.append, per_call=True)
        answers: list[BaseException | None] = [None, OSError(), None]
        answers += [KeyboardInterrupt(), OSError(), OSError(), KeyError()]

        def body() -> str:
            clock.advance(0.25)
            error = answers.pop(0)
            if error is not None:
                raise error
            return "ok"

        def run() -> object:
            if face == "decorator":
                return retry(body)()
            if face == "call":
                return retry.call(body)
            if face == "acall":
                return asyncio.run(retry.acall(as_async(body)))
            return asyncio.run(retry(as_async(body))())

        assert "ok" == run()
        assert "ok" == run()
        with pytest.raises(KeyboardInterrupt):
            run()
        with pytest.raises(KeyError):
            run()

        assert [
            ("success", 0.25, 1),
            ("success", 1.0, 2),
            ("ignored", 0.25, 1),
            ("failure", 1.75, 3),
        ] == finished(events)
        assert [
            "CallFinished",
            "RetryScheduled",
            "CallFinished",
            "CallFinished",
            "RetryScheduled",
            "RetryScheduled",
            "RetryGaveUp",
            "CallFinished",
        ] == [type(e).__name__ for e in events]
        assert (4, 3) == (
            retry.statistics().calls,
            retry.statistics().retries,
        )

    @pytest.mark.parametrize("face", ["call", "acall"])
    def test_first_attempt_deposits_in_the_budget(self, face, clock):
        """
        A call reported inline is counted in the retry's budget, as a call
        that is not observed is.
        """
        budget = stalwart.RetryBudget(clock=clock)
        retry = Retry(budget=budget, clock=clock)
        events: list[stalwart.Event] = []
        retry.add_hook(events.append, per_call=True)

        if face == "call":
            assert "ok" == retry.call(ok)
        else:
            assert "ok" == asyncio.run(retry.acall(as_async(ok)))

        assert [("success", 0.0, 1)] == finished(events)
        assert (1, 1) == (retry.statistics().calls, budget.statistics().calls)

    @pytest.mark.parametrize("face", ["call", "acall"])
    def test_judged_results_through_the_loop(self, face, clock):
        """
        With on_result, an observed call goes through the attempt loop,
        which judges each result and reports the call; the loop refuses a
        misuse as call() and acall() do.
        """
        retry = Retry(
            attempts=2, on_result=lambda r: r == "bad", wait=0, clock=clock
        )
        events: list[stalwart.Event] = []
        retry.add_hook(events.append, per_call=True)
        answers = ["bad", "ok", "bad", "bad"]

        def body() -> str:
            return answers.pop(0)

        def run(fn: object) -> object:
            if face == "call":
                return retry.call(fn)  # type: ignore[arg-type]
            return asyncio.run(retry.acall(fn))  # type: ignore[arg-type]

        sync, wrong = (body, as_async(ok))
        if face == "acall":
            sync, wrong = as_async(body), ok
        assert "ok" == run(sync)
        assert "bad" == run(sync)
        with pytest.raises(TypeError, match="await"):
            run(wrong)

        assert [("success", 0.0, 2), ("failure", 0.0, 2)] == finished(events)[
            :2
        ]

    def test_statistics_travel(self, clock):
        """
        Give-ups by reason and the total wait are counted, and the record
        goes through json.dumps as is.
        """
        retry = Retry(attempts=2, on=OSError, wait=1.5, clock=clock)
        with pytest.raises(OSError):
            retry.call(_oserror)
        data = json.loads(json.dumps(retry.statistics().to_dict()))

        assert 1 == data["give_ups_by_reason"]["attempts"]
        assert 1.5 == data["total_wait"]
        assert "retry" == data["primitive"]


def _interrupt() -> None:
    raise KeyboardInterrupt


def _oserror() -> None:
    raise OSError


def test_every_record_travels(clock):
    """
    Each statistics record of the primitives owned here carries its name
    and goes through json.dumps as is (states as strings, inf as null).
    """
    breaker = CircuitBreaker(name="b", clock=clock)
    breaker.force_open()
    records = [
        breaker.statistics(),
        stalwart.RetryBudget(name="rb").statistics(),
        stalwart.Chaos(fault=OSError(), name="c").statistics(),
        stalwart.BoundedBuffer(capacity=1, name="q").statistics(),
        stalwart.ResourcePool(
            factory=object, max_size=1, name="p"
        ).statistics(),
    ]
    data = [json.loads(json.dumps(record.to_dict())) for record in records]

    assert ["b", "rb", "c", "q", "p"] == [d["name"] for d in data]
    assert [
        "circuit_breaker",
        "retry_budget",
        "chaos",
        "bounded_buffer",
        "resource_pool",
    ] == [d["primitive"] for d in data]
    assert CircuitState.FORCED_OPEN.value == data[0]["state"]


class TestStatisticsData:
    def test_jsonable(self):
        """
        Plain data comes out of every value a record may hold.
        """
        import datetime as dt
        import math

        import attrs

        from stalwart._statistics import jsonable, record_kind

        @attrs.frozen
        class InnerStatistics:
            count: int

        assert 1.5 == jsonable(dt.timedelta(seconds=1.5))
        assert None is jsonable(math.inf)
        assert {"primitive": "inner", "count": 2} == jsonable(
            InnerStatistics(2)
        )
        assert {"open": [1, "x"]} == jsonable({CircuitState.OPEN: (1, "x")})
        assert "<object>" == jsonable(
            type("O", (), {"__str__": lambda s: "<object>"})()
        )
        assert "inner" == record_kind(InnerStatistics(1))
