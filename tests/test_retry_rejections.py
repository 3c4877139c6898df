"""
Retry around stalwart's own refusals: a rejection that says when to come
back is retried after exactly that wait, whatever ``on=`` says, when the
wait fits; one that does not say is left to ``on=`` and never retried at
once; and a retry around a stuck half-open breaker never spins.
"""

from __future__ import annotations

import asyncio

from collections.abc import Callable
from typing import Any

import pytest

from helpers import Boom
from retry_support import FACES, Flaky, counts, exp
from stalwart import (
    BulkheadFullError,
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    RateLimitExceededError,
    RejectedError,
    Retry,
    RetryExhaustedError,
    TimeoutExceededError,
)
from stalwart.testing import FakeClock


@pytest.fixture(name="face", params=list(FACES))
def _face(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """
    Run ``retry`` around ``fn(*args)`` through one of the six faces.
    """
    return FACES[request.param]


@pytest.fixture(name="events")
def _events() -> list[Any]:
    """
    A list that a hook appends every event to.
    """
    return []


REJECTIONS = {
    "circuit-open": lambda after: CircuitOpenError("db", after),
    "rate-limit": lambda after: RateLimitExceededError("api", after),
    "bulkhead-full": lambda after: BulkheadFullError("pool", 4, after),
    "rejected": lambda after: RejectedError("any", after),
}


@pytest.fixture(name="rejection", params=list(REJECTIONS))
def _rejection(request: pytest.FixtureRequest) -> Callable[..., Exception]:
    """
    Build one kind of stalwart rejection with a given retry_after.
    """
    return REJECTIONS[request.param]


class TestHonored:
    def test_waits_as_told_whatever_on_says(self, face, clock, rejection):
        """
        A rejection carrying retry_after is retried after exactly that
        wait, even though *on* covers only Boom.
        """
        retry = exp(clock)
        fn = Flaky(rejection(2.5), rejection(0.75))

        assert "ok" == face(retry, fn)
        assert [2.5, 0.75] == clock.sleeps
        assert (1, 2, 0) == counts(retry.statistics())

    def test_capped_by_retry_after_max(self, face, clock, rejection):
        """
        A longer retry_after is cut to retry_after_max.
        """
        retry = exp(clock, retry_after_max=10.0)

        face(retry, Flaky(rejection(30.0)))

        assert [10.0] == clock.sleeps

    def test_not_when_it_does_not_fit(self, face, clock, events):
        """
        A wait that would end at or past the time budget is not started:
        the rejection is raised at once.
        """
        error = CircuitOpenError("db", 30.0)
        retry = exp(clock, timeout=10.0, hooks=events.append)

        with pytest.raises(CircuitOpenError) as info:
            face(retry, Flaky(error))

        assert error is info.value
        assert [] == clock.sleeps
        assert ["timeout"] == [e.reason for e in events]

    def test_counts_attempts(self, face, clock):
        """
        Honored rejections are attempts like any other.
        """
        retry = exp(clock, attempts=2)
        fn = Flaky(*(CircuitOpenError("db", 1.0) for _ in range(3)))

        with pytest.raises(CircuitOpenError):
            face(retry, fn)

        assert 2 == fn.calls

    def test_predicate_not_asked(self, face, clock):
        """
        A rejection that says when to come back does not go through *on*.
        """
        asked = []
        retry = exp(clock, on=lambda e: asked.append(e) or False)

        assert "ok" == face(retry, Flaky(CircuitOpenError("db", 1.0)))
        assert [] == asked

    def test_can_be_turned_off(self, face, clock):
        """
        honor_rejections=False leaves rejections to *on* like any other
        exception.
        """
        error = CircuitOpenError("db", 2.5)
        retry = exp(clock, honor_rejections=False)

        with pytest.raises(CircuitOpenError) as info:
            face(retry, Flaky(error))

        assert error is info.value
        assert [] == clock.sleeps

    def test_turned_off_but_covered(self, face, clock):
        """
        With honor_rejections=False, a rejection *on* covers still waits
        its retry_after (use_retry_after), or the backoff without it.
        """
        face(
            exp(clock, on=RejectedError, honor_rejections=False),
            Flaky(CircuitOpenError("db", 2.5)),
        )
        face(
            exp(
                clock,
                on=RejectedError,
                honor_rejections=False,
                use_retry_after=False,
            ),
            Flaky(CircuitOpenError("db", 2.5)),
        )

        assert [2.5, 1.0] == clock.sleeps


class TestWithoutRetryAfter:
    @pytest.mark.parametrize(
        "after", [None, 0.0, 0, -1.0, float("nan")], ids=str
    )
    def test_left_to_on(self, face, clock, after):
        """
        A rejection that does not say when to come back (None, or no
        positive wait) is not retried when *on* does not cover it.
        """
        error = CircuitOpenError("db", after)
        retry = exp(clock)

        with pytest.raises(CircuitOpenError) as info:
            face(retry, Flaky(error))

        assert error is info.value
        assert (1, 0, 1) == counts(retry.statistics())

    @pytest.mark.parametrize("after", [None, 0.0], ids=str)
    def test_covered_waits_the_backoff(self, face, clock, after):
        """
        When *on* covers it, it is retried after the backoff, not at once.
        """
        retry = exp(clock, on=RejectedError)

        face(retry, Flaky(CircuitOpenError("db", after)))

        assert [1.0] == clock.sleeps

    @pytest.mark.parametrize("after", [None, 0.0], ids=str)
    def test_never_retried_at_once(self, face, clock, events, after):
        """
        With a zero backoff, a covered rejection is not retried at all:
        asking again at once would be refused again.
        """
        error = CircuitOpenError("db", after)
        retry = Retry(on=Exception, wait=0, hooks=events.append, clock=clock)
        fn = Flaky(error)

        with pytest.raises(CircuitOpenError) as info:
            face(retry, fn)

        assert error is info.value
        assert 1 == fn.calls
        assert ["not_retryable"] == [e.reason for e in events]

    def test_test_mode_still_retries(self, clock):
        """
        In test mode (no waits at all) rejections are retried at once.
        """
        from stalwart.testing import retry_testing

        retry = Retry(on=Exception, clock=clock)
        fn = Flaky(CircuitOpenError("db", None))

        with retry_testing(attempts=3):
            assert "ok" == retry.call(fn)

        assert 2 == fn.calls

    @pytest.mark.parametrize(
        "error",
        [
            TimeoutExceededError("t", 1.0),
            RetryExhaustedError("r", None, 2),
        ],
        ids=["timeout", "exhausted"],
    )
    def test_other_rejections(self, face, clock, error):
        """
        Rejections that never carry a retry_after follow *on*.
        """
        with pytest.raises(type(error)):
            face(exp(clock), Flaky(error))

        face(exp(clock, on=RejectedError), Flaky(error))

        assert [1.0] == clock.sleeps


def _stuck_half_open(clock: FakeClock) -> CircuitBreaker:
    """
    Build a breaker that is half-open with its one trial slot taken and
    never given back: every call is refused.
    """
    breaker = CircuitBreaker(
        name="db", failure_threshold=1, recovery_time=10.0, clock=clock
    )
    with pytest.raises(Boom):
        breaker.call(Flaky(Boom()))
    clock.advance(10.0)
    breaker.acquire()  # the trial, never finished
    assert CircuitState.HALF_OPEN is breaker.state
    return breaker


class TestAroundABreaker:
    def test_stuck_half_open_never_spins(self, face, clock):
        """
        A retry with no attempt limit around a breaker that refuses every
        call while half-open waits its backoff between refusals, so a
        30-second budget holds a handful of attempts, not thousands.
        """
        breaker = _stuck_half_open(clock)
        calls = []

        def fetch() -> str:
            calls.append(clock.now())
            return breaker.call(lambda: "ok")

        retry = Retry(
            attempts=None,
            timeout=30.0,
            wait_initial=0.1,
            wait_max=5.0,
            jitter="none",
            clock=clock,
        )

        with pytest.raises(CircuitOpenError):
            face(retry, fetch)

        # From t=10: waits of 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, then 5 s each
        # until the next wait would end past t=40.
        assert [
            10.0,
            10.1,
            10.3,
            10.7,
            11.5,
            13.1,
            16.3,
            21.3,
            26.3,
            31.3,
            36.3,
        ] == [round(t, 6) for t in calls]

    def test_stuck_half_open_with_zero_wait(self, face, clock):
        """
        With a zero backoff, the refusal is not retried at all.
        """
        breaker = _stuck_half_open(clock)
        calls = []

        def fetch() -> str:
            calls.append(1)
            return breaker.call(lambda: "ok")

        retry = Retry(attempts=None, timeout=30.0, wait=0, clock=clock)

        with pytest.raises(CircuitOpenError):
            face(retry, fetch)

        assert [1] == calls

    def test_waits_for_an_open_breaker(self, clock):
        """
        @retry over @breaker: once the breaker opens, the retry waits as
        long as it says, and the trial call then gets through.
        """
        breaker = CircuitBreaker(
            name="payments",
            failure_threshold=3,
            recovery_time=30.0,
            failure_on=ConnectionError,
            clock=clock,
        )
        retry = Retry(
            attempts=5,
            timeout=60.0,
            on=ConnectionError,
            wait=0.5,
            clock=clock,
        )
        outcomes = Flaky(*(ConnectionError() for _ in range(3)))

        @retry
        @breaker
        def fetch(url: str) -> str:
            return f"{outcomes()} {url}"

        assert "ok /x" == fetch("/x")
        # Three failures 0.5 s apart open the breaker at t=1.0; the retry
        # of the third is refused at t=1.5 with 29.5 s to go, and the
        # trial at t=31.0 succeeds.
        assert [0.5, 0.5, 0.5, 29.5] == clock.sleeps
        assert CircuitState.CLOSED is breaker.state

    def test_async_waits_for_an_open_breaker(self, clock):
        """
        The same through the async decorators.
        """
        breaker = CircuitBreaker(
            failure_threshold=1, recovery_time=20.0, clock=clock
        )
        retry = Retry(on=ConnectionError, wait=0.5, clock=clock)
        outcomes = Flaky(ConnectionError())

        @retry
        @breaker
        async def fetch() -> str:
            return outcomes()

        assert "ok" == asyncio.run(fetch())
        assert [0.5, 19.5] == clock.sleeps


def test_readme_example_waits_for_the_breaker():
    """
    The README's retry around its breaker, on a fake clock: after five
    failures open the breaker, the next call waits the 30 s the breaker
    says and gets through.
    """
    import stalwart

    from stalwart.testing import use_clock

    with use_clock(FakeClock()) as clock:
        breaker = stalwart.CircuitBreaker(
            name="payments",
            failure_threshold=5,
            recovery_time=30.0,
            failure_on=ConnectionError,
        )
        retry = stalwart.Retry(
            attempts=5,
            timeout=60.0,
            on=ConnectionError,
            wait_initial=0.1,
            wait_max=10.0,
            jitter="full",
        )
        down = Flaky(*(ConnectionError() for _ in range(5)))

        @retry
        @breaker
        def fetch(url: str) -> str:
            return f"{down()} {url}"

        with pytest.raises(ConnectionError):
            fetch("https://example.org")  # five failures: it opens
        opened_at = clock.now()

        assert "ok https://example.org" == fetch("https://example.org")
        assert 30.0 == clock.now() - opened_at
