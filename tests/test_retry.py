"""
Retry: schedules, stop rules, what is retried, and the faces.

Scenarios run through every face (``call``, ``acall``, the sync and async
decorators, and the sync and async attempt loops) with the ``face``
fixture, on a fake clock, so every schedule is exact.
"""

from __future__ import annotations

import asyncio
import random

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from helpers import Boom, as_async
from retry_support import FACES, RESULT_FACES, Flaky, counts, exp
from stalwart import (
    CircuitOpenError,
    ConstantBackoff,
    DecorrelatedJitterBackoff,
    ExponentialBackoff,
    LinearBackoff,
    Retry,
    RetryAfter,
    RetryExhaustedError,
    RetryGaveUp,
    RetryScheduled,
)
from stalwart._deadline import deadline_scope
from stalwart.testing import FakeClock, use_clock


@pytest.fixture(name="face", params=list(FACES))
def _face(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """
    Run ``retry`` around ``fn(*args)`` through one of the six faces.
    """
    return FACES[request.param]


@pytest.fixture(name="result_face", params=list(RESULT_FACES))
def _result_face(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """
    Like ``face``, with the loops handing their result to the attempt.
    """
    return RESULT_FACES[request.param]


@pytest.fixture(name="events")
def _events() -> list[Any]:
    """
    A list that a hook appends every event to.
    """
    return []


class TestSchedules:
    def test_exponential_until_success(self, face, clock):
        """
        Failures are retried after 1, 2, 4 s and the result comes back.
        """
        fn = Flaky(Boom(), Boom(), Boom())
        retry = exp(clock)

        assert "ok" == face(retry, fn, 1, key="v")
        assert [1.0, 2.0, 4.0] == clock.sleeps
        assert 7.0 == clock.now()
        assert [((1,), {"key": "v"})] * 4 == fn.args
        assert (1, 3, 0) == counts(retry.statistics())

    def test_gives_up_with_last_error_unchanged(self, face, clock):
        """
        After the last attempt the last exception is re-raised as it is.
        """
        errors = [Boom("1"), Boom("2"), Boom("3")]
        retry = exp(clock, attempts=3)

        with pytest.raises(Boom) as info:
            face(retry, Flaky(*errors))

        assert errors[2] is info.value
        assert info.value.__context__ is None
        assert info.value.__cause__ is None
        assert [1.0, 2.0] == clock.sleeps
        assert (1, 2, 1) == counts(retry.statistics())

    def test_zero_wait_never_sleeps(self, face, clock):
        """
        A zero delay does not call sleep at all.
        """
        retry = Retry(on=Boom, wait=0, clock=clock)

        assert "ok" == face(retry, Flaky(Boom(), Boom()))
        assert [] == clock.sleeps

    def test_each_strategy(self, face, clock):
        """
        Constant, linear and decorrelated backoffs give their schedules.
        """
        constant = Retry(on=Boom, wait=ConstantBackoff(delay=0.5), clock=clock)
        linear = Retry(
            on=Boom,
            wait=LinearBackoff(initial=1, increment=2, cap=4),
            clock=clock,
        )
        decorrelated = Retry(
            on=Boom,
            wait=DecorrelatedJitterBackoff(initial=1, multiplier=3, cap=10),
            jitter_source=lambda: 0.5,
            clock=clock,
        )

        face(constant, Flaky(Boom(), Boom()))
        face(linear, Flaky(Boom(), Boom(), Boom()))
        face(decorrelated, Flaky(Boom(), Boom(), Boom()))

        assert [0.5, 0.5, 1.0, 3.0, 4.0, 2.0, 3.5, 5.5] == clock.sleeps

    def test_number_and_timedelta_waits(self, face, clock):
        """
        A plain number or a timedelta is a constant wait.
        """
        face(Retry(on=Boom, wait=1.5, clock=clock), Flaky(Boom()))
        face(
            Retry(on=Boom, wait=timedelta(seconds=2), clock=clock),
            Flaky(Boom()),
        )

        assert [1.5, 2.0] == clock.sleeps

    def test_jitter_is_reproducible(self, face):
        """
        Two retries seeded alike wait exactly alike, within [0, wait].
        """
        schedules = []
        for _ in range(2):
            clock = FakeClock()
            retry = exp(clock, jitter="full", jitter_source=random.Random(7))
            face(retry, Flaky(Boom(), Boom(), Boom()))
            schedules.append(clock.sleeps)

        assert schedules[0] == schedules[1]
        assert all(
            0 <= s <= cap
            for s, cap in zip(schedules[0], [1, 2, 4], strict=True)
        )

    @pytest.mark.parametrize(
        ("jitter", "expected"),
        [("full", [0.25, 0.5]), ("equal", [0.625, 1.25]), (0.5, [0.75, 1.5])],
        ids=["full", "equal", "fraction"],
    )
    def test_jitter_kinds(self, face, clock, jitter, expected):
        """
        Each jitter kind maps the same draw to its own band.
        """
        retry = exp(clock, jitter=jitter, jitter_source=lambda: 0.25)

        face(retry, Flaky(Boom(), Boom()))

        assert expected == clock.sleeps

    def test_user_wait_function(self, face, clock):
        """
        A wait callable gets (attempt, outcome), kept within [0, wait_max].
        """
        seen = []
        first, second = Boom(), Boom()

        def wait(attempt: int, outcome: object) -> float | timedelta:
            seen.append((attempt, outcome))
            return [30.0, -1.0, timedelta(seconds=2)][attempt - 1]

        retry = Retry(on=Boom, wait=wait, wait_max=10, clock=clock)

        face(retry, Flaky(first, second, Boom()))

        assert [10.0, 2.0] == clock.sleeps
        assert [(1, first), (2, second)] == seen[:2]

    def test_high_attempt_numbers(self, clock):
        """
        Ten thousand retries keep every wait within the cap.
        """
        retry = Retry(
            on=Boom,
            attempts=10_001,
            timeout=None,
            wait=ExponentialBackoff(initial=1, multiplier=10, cap=2),
            clock=clock,
        )

        assert "ok" == retry.call(Flaky(*[Boom()] * 10_000))
        assert 10_000 == len(clock.sleeps)
        assert max(clock.sleeps) <= 2.0


class TestTimeBudget:
    def test_gives_up_when_the_wait_would_cross(self, face, clock):
        """
        The loop gives up at once instead of waiting past its timeout.
        """
        retry = Retry(on=Boom, wait=1.0, timeout=2.5, clock=clock)
        fn = Flaky(Boom(), Boom(), Boom(), clock=clock, takes=0.5)

        with pytest.raises(Boom):
            face(retry, fn)

        assert [1.0] == clock.sleeps
        assert 2.0 == clock.now()
        assert 2 == fn.calls

    def test_starts_with_the_call(self, face, clock):
        """
        The time budget starts when the call starts: with attempts of 2 s,
        a wait of 0.25 s and a budget of 3 s, the attempts start at 0 and
        2.25 and the call ends at 4.25 (not a third attempt at 4.5).
        """
        retry = Retry(on=Boom, wait=0.25, timeout=3.0, clock=clock)
        fn = Flaky(Boom(), Boom(), Boom(), clock=clock, takes=2.0)

        with pytest.raises(Boom):
            face(retry, fn)

        assert [0.0, 2.25] == fn.started
        assert 4.25 == clock.now()

    def test_slow_first_attempt_spends_it(self, face, clock):
        """
        A first attempt longer than the budget leaves no time to retry.
        """
        retry = Retry(on=Boom, wait=0.1, timeout=2.0, clock=clock)
        fn = Flaky(Boom(), clock=clock, takes=3.0)

        with pytest.raises(Boom):
            face(retry, fn)

        assert [] == clock.sleeps
        assert 1 == fn.calls

    def test_later_attempts_count(self, face, clock):
        """
        Every attempt and every wait is charged to the budget.
        """
        retry = Retry(on=Boom, wait=0.1, timeout=3.5, clock=clock)
        fn = Flaky(Boom(), Boom(), Boom(), clock=clock, takes=1.5)

        with pytest.raises(Boom):
            face(retry, fn)

        # Failures at t=1.5, 3.1 (3.2 with the next wait: inside 3.5) and
        # 4.7 (4.8: past it).
        assert [0.0, 1.6, 3.2] == fn.started
        assert [0.1, 0.1] == clock.sleeps

    def test_no_wait_ends_at_or_past_it(self, face, clock):
        """
        A wait that would end exactly at the budget is not started.
        """
        retry = Retry(on=Boom, wait=1.0, timeout=3.0, clock=clock)
        fn = Flaky(Boom(), Boom(), clock=clock, takes=1.0)

        with pytest.raises(Boom):
            face(retry, fn)

        # 1 s attempt + 1 s wait + 1 s attempt = 2 s; one more wait would
        # end at 3.0, the budget itself.
        assert [0.0, 2.0] == fn.started
        assert 3.0 == clock.now()

    def test_whole_call_bounded_by_an_enclosing_deadline(self, face, clock):
        """
        To bound the whole call, first attempt included, a Timeout's
        deadline does it: the retry does not retry past it.
        """
        retry = Retry(on=Boom, wait=0.1, timeout=2.0, clock=clock)
        fn = Flaky(Boom(), clock=clock, takes=3.0)

        with deadline_scope(2.0, clock), pytest.raises(Boom):
            face(retry, fn)

        assert 1 == fn.calls
        assert [] == clock.sleeps

    def test_deadline_of_enclosing_call(self, face, clock):
        """
        A Timeout's deadline stops the retry before it waits past it.
        """
        retry = Retry(on=Boom, wait=1.0, timeout=None, clock=clock)
        fn = Flaky(Boom(), Boom(), Boom())

        with deadline_scope(1.5, clock), pytest.raises(Boom):
            face(retry, fn)

        assert [1.0] == clock.sleeps
        assert 2 == fn.calls

    def test_unbounded_attempts_with_timeout(self, face, clock):
        """
        attempts=None retries until the time budget is spent.
        """
        retry = Retry(
            on=Boom, attempts=None, wait=1.0, timeout=5.0, clock=clock
        )

        with pytest.raises(Boom):
            face(retry, Flaky(*[Boom()] * 10))

        assert [1.0] * 4 == clock.sleeps


class TestWhatIsRetried:
    def test_other_exceptions_propagate(self, face, clock, events):
        """
        An exception outside *on* propagates at once, unchanged, and the
        call is still visible: counted as given up, with an event that
        says the outcome was not one to retry.
        """
        error = KeyError("x")
        retry = exp(clock, name="api", hooks=events.append)

        with pytest.raises(KeyError) as info:
            face(retry, Flaky(error))

        assert error is info.value
        assert info.value.__context__ is None
        assert (1, 0, 1) == counts(retry.statistics())
        assert [
            RetryGaveUp(
                primitive_name="api",
                at=0.0,
                attempt=1,
                reason="not_retryable",
                caused_by=error,
            )
        ] == events

    def test_refused_by_a_predicate_is_visible(self, face, clock):
        """
        An exception a predicate declines is counted as given up too.
        """
        retry = exp(clock, on=lambda e: False)

        with pytest.raises(Boom):
            face(retry, Flaky(Boom()))

        assert (1, 0, 1) == counts(retry.statistics())

    @pytest.mark.parametrize(
        "error",
        [KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError],
    )
    @pytest.mark.parametrize(
        "on", [Exception, lambda e: True], ids=["types", "predicate"]
    )
    def test_base_exceptions_never_retried(self, face, clock, error, on):
        """
        KeyboardInterrupt and friends are never retried, whatever *on* says.
        """
        fn = Flaky(error(), Boom())
        retry = Retry(on=on, wait=0, clock=clock)

        with pytest.raises(error):
            face(retry, fn)

        assert 1 == fn.calls

    def test_predicate(self, face, clock):
        """
        A predicate chooses which exceptions are retried.
        """
        retry = exp(clock, on=lambda e: "again" in str(e))
        fn = Flaky(Boom("again"), Boom("stop"))

        with pytest.raises(Boom, match="stop"):
            face(retry, fn)

        assert 2 == fn.calls

    @pytest.mark.parametrize(
        ("verdict", "expected"),
        [
            (RetryAfter(7.0), [7.0]),
            (RetryAfter(timedelta(seconds=3)), [3.0]),
            (RetryAfter(0), []),
            (timedelta(seconds=2), [2.0]),
            (timedelta(0), []),
            (RetryAfter(500.0), [60.0]),
        ],
        ids=["after", "after-td", "after-0", "timedelta", "td-0", "capped"],
    )
    def test_predicate_dictates_delay(self, face, clock, verdict, expected):
        """
        A predicate returning a RetryAfter or a timedelta retries after
        that delay instead of the backoff, capped by retry_after_max.
        """
        retry = exp(clock, on=lambda e: verdict)

        assert "ok" == face(retry, Flaky(Boom()))
        assert expected == clock.sleeps

    @pytest.mark.parametrize(
        "answer",
        [True, 7.0, 3, "yes", [0]],
        ids=["true", "float", "int", "str", "list"],
    )
    def test_truthy_answer_uses_the_backoff(self, face, clock, answer):
        """
        Any other truthy answer, a number included, means "retry after
        the backoff": a number is never read as a delay.
        """
        retry = exp(clock, on=lambda e: answer)

        assert "ok" == face(retry, Flaky(Boom()))
        assert [1.0] == clock.sleeps

    @pytest.mark.parametrize(
        "answer", [False, 0, 0.0, "", []], ids=["false", "0", "0.0", "", "[]"]
    )
    def test_falsy_answer_does_not_retry(self, face, clock, answer):
        """
        A falsy answer, zero included, means "do not retry".
        """
        retry = exp(clock, on=lambda e: answer)
        fn = Flaky(Boom())

        with pytest.raises(Boom):
            face(retry, fn)

        assert 1 == fn.calls
        assert [] == clock.sleeps

    @pytest.mark.parametrize(
        ("retry_after", "expected"),
        [
            (3.0, [3.0]),
            (0, []),
            (None, [1.0]),
            (True, [1.0]),
            (False, [1.0]),
            ("2", [1.0]),
        ],
        ids=["float", "zero", "none", "true", "false", "str"],
    )
    def test_retry_after_attribute(self, face, clock, retry_after, expected):
        """
        An exception's numeric retry_after attribute sets the wait.
        """
        error = Boom()
        error.retry_after = retry_after  # type: ignore[attr-defined]

        face(exp(clock), Flaky(error))

        assert expected == clock.sleeps

    def test_rejections_wait_as_told(self, face, clock):
        """
        Around a breaker, the retry waits exactly the breaker's retry_after.
        """
        retry = Retry(on=CircuitOpenError, clock=clock, retry_after_max=10)
        fn = Flaky(CircuitOpenError("db", 2.5), CircuitOpenError("db", 30.0))

        face(retry, fn)

        assert [2.5, 10.0] == clock.sleeps

    def test_retry_after_can_be_ignored(self, face, clock):
        """
        use_retry_after=False keeps the backoff for an exception's
        retry_after attribute.
        """
        error = Boom()
        error.retry_after = 2.5  # type: ignore[attr-defined]
        retry = exp(clock, use_retry_after=False)

        face(retry, Flaky(error))

        assert [1.0] == clock.sleeps

    def test_retry_after_beyond_timeout_gives_up(self, face, clock):
        """
        A dictated wait that would cross the time budget gives up at once.
        """
        error = CircuitOpenError("db", 30.0)
        retry = Retry(on=CircuitOpenError, timeout=10.0, clock=clock)

        with pytest.raises(CircuitOpenError) as info:
            face(retry, Flaky(error))

        assert error is info.value
        assert [] == clock.sleeps


class TestResults:
    def test_bad_results_are_retried(self, result_face, clock):
        """
        on_result retries until the result is acceptable.
        """
        retry = exp(clock, on_result=lambda r: r is None)

        assert "ok" == result_face(retry, Flaky(None, None))
        assert [1.0, 2.0] == clock.sleeps

    def test_good_first_result(self, result_face, clock):
        """
        An acceptable first result is returned without retrying.
        """
        retry = exp(clock, on_result=lambda r: r is None)

        assert "ok" == result_face(retry, Flaky())
        assert (1, 0, 0) == counts(retry.statistics())

    def test_exhausted_returns_last_result(self, result_face, clock):
        """
        By default the last bad result is returned when attempts run out.
        """
        retry = exp(clock, attempts=2, on_result=lambda r: r != "ok")

        assert "b" == result_face(retry, Flaky("a", "b"))
        assert 1 == retry.statistics().give_ups

    def test_exhausted_can_raise(self, result_face, clock):
        """
        result_exhausted="raise" raises RetryExhaustedError with the result.
        """
        retry = exp(
            clock,
            name="fetch",
            attempts=2,
            on_result=lambda r: r != "ok",
            result_exhausted="raise",
        )

        with pytest.raises(RetryExhaustedError) as info:
            result_face(retry, Flaky("a", "b"))

        assert "b" == info.value.result
        assert 2 == info.value.attempts
        assert "fetch" == info.value.name
        assert "result still rejected after 2 attempt(s) by 'fetch'" == str(
            info.value
        )

    def test_exhausted_error_pickles(self):
        """
        RetryExhaustedError survives pickling with its attributes.
        """
        import pickle

        error = pickle.loads(pickle.dumps(RetryExhaustedError("db", [1], 3)))

        assert ("db", [1], 3) == (error.name, error.result, error.attempts)
        assert "RetryExhaustedError('db', [1], 3)" == repr(error)

    def test_result_predicate_dictates_delay(self, result_face, clock):
        """
        on_result may return the delay to wait (a Retry-After value).
        """
        retry = exp(
            clock, on_result=lambda r: RetryAfter(5) if r == "busy" else False
        )

        assert "ok" == result_face(retry, Flaky("busy"))
        assert [5.0] == clock.sleeps

    def test_a_count_is_not_a_delay(self, result_face, clock):
        """
        A predicate that counts errors retries while the count is not zero,
        after the backoff, and accepts a result whose count is zero.
        """
        retry = exp(clock, on_result=lambda r: len(r["errors"]))
        fn = Flaky({"errors": [1, 2]}, {"errors": []})

        assert {"errors": []} == result_face(retry, fn)
        assert [1.0] == clock.sleeps

    def test_errors_and_results_mix(self, result_face, clock):
        """
        Errors and bad results share one attempt count and one schedule.
        """
        retry = exp(clock, on_result=lambda r: r is None)

        assert "ok" == result_face(retry, Flaky(Boom(), None, Boom()))
        assert [1.0, 2.0, 4.0] == clock.sleeps

    def test_wait_function_sees_result(self, result_face, clock):
        """
        A wait callable receives the rejected result as the outcome.
        """
        seen = []

        def wait(attempt: int, outcome: object) -> float:
            seen.append(outcome)
            return 0.5

        retry = Retry(on_result=lambda r: r == "no", wait=wait, clock=clock)

        result_face(retry, Flaky("no"))

        assert ["no"] == seen


class TestEvents:
    def test_scheduled_and_gave_up(self, face, clock, events):
        """
        Hooks see each scheduled retry and the give-up, with times.
        """
        first, second = Boom(), Boom()
        retry = exp(clock, name="api", attempts=2, hooks=events.append)

        with pytest.raises(Boom):
            face(retry, Flaky(first, second))

        assert [
            RetryScheduled(
                primitive_name="api",
                at=0.0,
                attempt=1,
                wait=1.0,
                caused_by=first,
            ),
            RetryGaveUp(
                primitive_name="api",
                at=1.0,
                attempt=2,
                reason="attempts",
                caused_by=second,
            ),
        ] == events

    @pytest.mark.parametrize(
        ("setup", "reason"),
        [
            ({"timeout": 0.5}, "timeout"),
            ({"attempts": 1}, "attempts"),
        ],
        ids=["timeout", "attempts"],
    )
    def test_give_up_reasons(self, face, clock, events, setup, reason):
        """
        The give-up event names why retrying stopped.
        """
        retry = exp(clock, hooks=[events.append], **setup)

        with pytest.raises(Boom):
            face(retry, Flaky(Boom()))

        assert [reason] == [e.reason for e in events]

    def test_deadline_reason(self, face, clock, events):
        """
        Giving up on the enclosing deadline says "deadline".
        """
        retry = exp(clock, hooks=[events.append])

        with deadline_scope(0.5, clock), pytest.raises(Boom):
            face(retry, Flaky(Boom()))

        assert ["deadline"] == [e.reason for e in events]

    def test_result_events(self, result_face, clock, events):
        """
        Result retries carry the result and no exception.
        """
        retry = exp(clock, attempts=2, on_result=bool, hooks=[events.append])

        result_face(retry, Flaky(1, 2))

        assert [(None, 1), (None, 2)] == [
            (e.caused_by, e.result) for e in events
        ]

    def test_failing_hook_does_not_break_the_call(self, face, clock, caplog):
        """
        A hook that raises is logged and the retry goes on.
        """

        def bad(event: object) -> None:
            raise RuntimeError("hook")

        retry = exp(clock, hooks=[bad])

        assert "ok" == face(retry, Flaky(Boom()))
        assert "hook" in caplog.text


class TestAttemptLoop:
    def test_numbers(self, clock):
        """
        Each attempt exposes its number, starting at 1.
        """
        numbers = []
        fn = Flaky(Boom(), Boom())
        for attempt in exp(clock):
            with attempt:
                numbers.append(attempt.number)
                fn()

        assert [1, 2, 3] == numbers

    def test_async_numbers(self, clock):
        """
        The async loop numbers attempts the same way.
        """
        numbers = []
        fn = Flaky(Boom(), Boom())

        async def main() -> None:
            async for attempt in exp(clock):
                with attempt:
                    numbers.append(attempt.number)
                    fn()

        asyncio.run(main())

        assert [1, 2, 3] == numbers
        assert [1.0, 2.0] == clock.sleeps

    def test_body_without_attempt_ends_the_loop(self, clock):
        """
        A body that never enters its attempt counts as a success.
        """
        bodies = 0
        for _attempt in exp(clock):
            bodies += 1

        assert 1 == bodies

    def test_result_without_on_result(self, clock):
        """
        Without on_result, a result given to the attempt ends the loop.
        """
        bodies = 0
        for attempt in exp(clock):
            with attempt:
                bodies += 1
                attempt.set_result(None)

        assert 1 == bodies
        assert [] == clock.sleeps

    def test_error_after_result(self, clock):
        """
        An exception raised after set_result() is what the attempt judges.
        """
        retry = exp(clock, attempts=2, on_result=lambda r: False)

        with pytest.raises(Boom):
            for attempt in retry:
                with attempt:
                    attempt.set_result("fine")
                    raise Boom

        assert [1.0] == clock.sleeps

    def test_base_exception_after_result(self, clock):
        """
        A BaseException leaves the loop even when a bad result was set.
        """
        retry = exp(clock, on_result=lambda r: True)

        with pytest.raises(KeyboardInterrupt):
            for attempt in retry:
                with attempt:
                    attempt.set_result(None)
                    raise KeyboardInterrupt

        assert 0 == retry.statistics().retries

    def test_repr(self, clock):
        """
        An attempt's repr names its number and its retry.
        """
        attempt = next(iter(exp(clock, name="db")))

        assert "<Attempt 1 of 'db'>" == repr(attempt)


class TestDecorator:
    def test_keeps_metadata(self, clock):
        """
        The decorated function keeps its name, docstring and __wrapped__.
        """

        def fetch(x: int) -> int:
            """Fetch."""
            return x

        async def afetch(x: int) -> int:
            """Fetch async."""
            return x

        for fn in (fetch, afetch):
            for retry in (exp(clock), exp(clock, on_result=bool)):
                decorated = retry(fn)

                assert fn.__name__ == decorated.__name__
                assert fn.__doc__ == decorated.__doc__
                assert fn is decorated.__wrapped__  # type: ignore[attr-defined]

    def test_methods(self, clock):
        """
        Decorated methods receive self and retry like functions.
        """
        retry = exp(clock)

        class Client:
            def __init__(self) -> None:
                self.flaky = Flaky(Boom())

            @retry
            def get(self, path: str) -> str:
                return f"{self.flaky()}:{path}"

        assert "ok:/x" == Client().get("/x")

    def test_calls_counted_across_functions_and_faces(self, clock):
        """
        statistics() counts the calls of every function a retry decorates,
        sync and async, together with its other faces.
        """
        retry = exp(clock)
        sync_fn, async_fn = retry(Flaky(Boom())), retry(as_async(Flaky()))

        assert "ok" == sync_fn()
        assert "ok" == sync_fn()
        assert "ok" == asyncio.run(async_fn())
        assert "ok" == retry.call(Flaky())
        for attempt in retry:
            with attempt:
                pass

        assert (5, 1, 0) == counts(retry.statistics())

    def test_evolve(self, clock):
        """
        attrs.evolve builds a working copy with new settings.
        """
        import attrs

        retry = attrs.evolve(exp(clock), attempts=2, wait_initial=0.5)

        with pytest.raises(Boom):
            retry.call(Flaky(Boom(), Boom()))

        assert [0.5] == clock.sleeps

    def test_use_clock(self):
        """
        A retry built with the default clock follows use_clock().
        """
        retry = Retry(on=Boom, wait=3.0)
        with use_clock(FakeClock()) as clock:
            retry.call(Flaky(Boom()))

        assert [3.0] == clock.sleeps  # type: ignore[attr-defined]
