"""
Pipeline: stalwart's primitives working together through a pipeline (the
interplay rules of issue #10 section 3, deadlines flowing inward, each
kind of stage), on a FakeClock.
"""

from __future__ import annotations

import asyncio
import threading

from collections.abc import Callable
from typing import Any

import pytest

import stalwart

from helpers import Boom
from stalwart.testing import FakeClock


@pytest.fixture(name="events")
def _events() -> list[stalwart.Event]:
    """
    A list that collects events as a hook.
    """
    return []


def payments(
    clock: FakeClock, hooks: Any = ()
) -> tuple[stalwart.Retry, stalwart.CircuitBreaker]:
    """
    The README's retry and breaker, on *clock* (jitter drawn at the
    middle, so waits are exact).
    """
    breaker = stalwart.CircuitBreaker(
        name="payments",
        failure_threshold=2,
        recovery_time=30.0,
        clock=clock,
        hooks=hooks,
    )
    retry = stalwart.Retry(
        name="fetch",
        attempts=5,
        timeout=60.0,
        on=ConnectionError,
        wait_initial=0.1,
        wait_max=10.0,
        jitter="full",
        jitter_source=lambda: 1.0,
        clock=clock,
        hooks=hooks,
    )
    return retry, breaker


class TestRetryAroundBreaker:
    def test_waits_as_long_as_the_open_breaker_says(
        self, invoke: Callable[..., Any], events: list[stalwart.Event]
    ) -> None:
        """
        The README example as a pipeline: the breaker opens after two
        failures, the retry waits exactly until it admits a trial, and the
        trial succeeds; it is never given CircuitOpenError in on=.
        """
        clock = FakeClock()
        retry, breaker = payments(clock, hooks=events.append)
        policy = stalwart.Pipeline(retry, breaker, name="payments-policy")
        calls = []

        def fetch(url: str) -> str:
            calls.append(clock.now())
            if len(calls) <= 2:
                raise ConnectionError
            return f"fetched {url}"

        assert "fetched x" == invoke(policy, fetch, "x")

        assert [0.0, pytest.approx(0.1)] == calls[:2]
        assert pytest.approx(30.1) == calls[2]
        assert stalwart.CircuitState.CLOSED == breaker.state
        waits = [
            e.wait for e in events if isinstance(e, stalwart.RetryScheduled)
        ]
        assert [
            pytest.approx(0.1),
            pytest.approx(0.2),
            pytest.approx(29.8),
        ] == (waits)
        assert {"payments-policy"} == {event.pipeline for event in events}

    def test_decorator(self) -> None:
        """
        The decorator face of the same pipeline behaves the same.
        """
        clock = FakeClock()
        retry, breaker = payments(clock)
        calls = []

        @stalwart.Pipeline(retry, breaker)
        def fetch() -> str:
            calls.append(clock.now())
            if len(calls) <= 2:
                raise ConnectionError
            return "fetched"

        assert "fetched" == fetch()
        assert pytest.approx(30.1) == calls[-1]

    def test_half_open_breaker_never_makes_a_retry_spin(
        self, invoke: Callable[..., Any]
    ) -> None:
        """
        A half-open breaker whose trial is taken refuses without a time
        to come back: a retry that does not cover refusals gives up at
        once, and one that does waits its own backoff, never zero.
        """
        clock = FakeClock()
        breaker = stalwart.CircuitBreaker(
            failure_threshold=1, recovery_time=1.0, clock=clock
        )
        with pytest.raises(Boom):
            breaker.call(_raise)
        clock.advance(1.0)
        trial = breaker.acquire()  # another caller's trial, still running
        narrow = stalwart.Retry(attempts=100, on=Boom, clock=clock)
        broad = stalwart.Retry(attempts=5, wait=0.5, timeout=None, clock=clock)
        calls = []

        for retry in (narrow, broad):
            with pytest.raises(stalwart.CircuitOpenError):
                invoke(stalwart.Pipeline(retry, breaker), calls.append, 1)

        assert [] == calls
        assert (1, 0) == (
            narrow.statistics().give_ups,
            narrow.statistics().retries,
        )
        assert 4 == broad.statistics().retries
        assert [0.5] * 4 == [wait for wait in clock.sleeps if wait > 0]
        trial.record_success()

    def test_every_failure_counted(
        self, invoke: Callable[..., Any], events: list[stalwart.Event]
    ) -> None:
        """
        A failure the retry does not retry still counts as a give-up,
        sends its event (with the pipeline's name) and reaches the
        breaker.
        """
        clock = FakeClock()
        retry, breaker = payments(clock, hooks=events.append)
        policy = stalwart.Pipeline(retry, breaker, name="p")

        def fail() -> None:
            raise KeyError

        with pytest.raises(KeyError):
            invoke(policy, fail)

        assert 1 == retry.statistics().give_ups
        assert 1 == breaker.statistics().failures
        gave_up = [e for e in events if isinstance(e, stalwart.RetryGaveUp)]
        assert [("not_retryable", "p")] == [
            (event.reason, event.pipeline) for event in gave_up
        ]


class TestDeadlines:
    def test_outer_timeout_ends_the_retry_backoff(
        self, invoke: Callable[..., Any], events: list[stalwart.Event]
    ) -> None:
        """
        A retry inside a timeout never starts a wait that would end past
        the deadline: it gives up, with reason "deadline", and the last
        failure is raised.
        """
        clock = FakeClock()
        retry = stalwart.Retry(
            attempts=10, on=Boom, wait=4.0, clock=clock, hooks=events.append
        )
        policy = stalwart.Pipeline(
            stalwart.Timeout(seconds=10.0, clock=clock), retry
        )
        calls = []

        def fail() -> None:
            calls.append(clock.now())
            raise Boom

        with pytest.raises(Boom):
            invoke(policy, fail)

        assert [0.0, 4.0, 8.0] == calls
        assert ["deadline"] == [
            e.reason for e in events if isinstance(e, stalwart.RetryGaveUp)
        ]

    def test_outer_timeout_shortens_an_open_breaker_s_wait(
        self, invoke: Callable[..., Any], events: list[stalwart.Event]
    ) -> None:
        """
        Around the README pipeline, a 10-second timeout leaves no time to
        wait out the open breaker: the retry gives up on the refusal.
        """
        clock = FakeClock()
        retry, breaker = payments(clock, hooks=events.append)
        policy = stalwart.Pipeline(
            stalwart.Timeout(seconds=10.0, clock=clock), retry, breaker
        )

        def fail() -> None:
            raise ConnectionError

        with pytest.raises(stalwart.CircuitOpenError):
            invoke(policy, fail)

        assert pytest.approx(0.3) == clock.now()
        assert ["deadline"] == [
            e.reason for e in events if isinstance(e, stalwart.RetryGaveUp)
        ]

    def test_outer_timeout_shortens_a_limiter_booking(
        self, invoke: Callable[..., Any]
    ) -> None:
        """
        A limiter whose next token is 5 s away books it when nothing limits
        the wait, and refuses at once, consuming nothing, when an outer
        timeout leaves 2 s.
        """
        clock = FakeClock()
        limiter = stalwart.TokenBucket(rate=(1, 5.0), capacity=1, clock=clock)
        assert limiter.try_acquire()

        bounded = stalwart.Pipeline(
            stalwart.Timeout(seconds=2.0, clock=clock), limiter
        )
        with pytest.raises(stalwart.RateLimitExceededError) as refused:
            invoke(bounded, lambda: "sent")
        assert 0.0 == clock.now()
        assert pytest.approx(5.0) == refused.value.retry_after

        assert "sent" == invoke(stalwart.Pipeline(limiter), lambda: "sent")
        assert pytest.approx(5.0) == clock.now()

    def test_outer_timeout_shortens_a_bulkhead_queue(self) -> None:
        """
        A call queued behind a full bulkhead that would wait as long as it
        takes stops waiting at an outer timeout's deadline, and leaves the
        queue.
        """
        clock = FakeClock()
        bulkhead = stalwart.Bulkhead(
            max_concurrent=1, max_queue=1, clock=clock
        )
        policy = stalwart.Pipeline(
            stalwart.Timeout(seconds=2.0, clock=clock), bulkhead
        )

        async def main() -> BaseException:
            await bulkhead.aacquire()  # the slot, held throughout
            try:
                await policy.acall(asyncio.sleep, 0)
            except stalwart.RejectedError as error:
                return error
            finally:
                bulkhead.release()
            return AssertionError("not refused")

        error = asyncio.run(main())

        assert isinstance(
            error, stalwart.TimeoutExceededError | stalwart.BulkheadFullError
        )
        assert 2.0 == clock.now()
        assert 0 == bulkhead.statistics().queued


class TestStages:
    def test_sync_timeout_runs_the_rest_on_a_worker(self) -> None:
        """
        A sync pipeline runs the stages inside a timeout on the timeout's
        worker thread, where the deadline is set.
        """
        clock = FakeClock()
        breaker = stalwart.CircuitBreaker()
        policy = stalwart.Pipeline(
            stalwart.Timeout(seconds=3.0, clock=clock), breaker
        )
        seen = []

        def where() -> str:
            seen.append(stalwart.remaining_time())
            return threading.current_thread().name

        assert threading.current_thread().name != policy.call(where)
        assert [3.0] == seen
        assert 1 == breaker.statistics().successes

    def test_fallback_outermost(
        self, invoke: Callable[..., Any], events: list[stalwart.Event]
    ) -> None:
        """
        A fallback outermost answers for a call the retry gave up on.
        """
        retry = stalwart.Retry(attempts=2, wait=0.0)
        policy = stalwart.Pipeline(
            stalwart.Fallback(value="cached", name="f", hooks=events.append),
            retry,
            stalwart.CircuitBreaker(),
            name="p",
        )

        assert "cached" == invoke(policy, _raise)
        assert 1 == retry.statistics().retries
        assert [("f", "p")] == [
            (event.primitive_name, event.pipeline) for event in events
        ]

    def test_chaos_innermost(self, invoke: Callable[..., Any]) -> None:
        """
        Faults injected innermost are retried like the dependency's own.
        """
        chaos = stalwart.Chaos(fault=ConnectionError, first=2)
        policy = stalwart.Pipeline(stalwart.Retry(attempts=3, wait=0.0), chaos)

        assert "ok" == invoke(policy, lambda: "ok")
        assert 2 == chaos.statistics().injected

    def test_thread_pool_innermost(self) -> None:
        """
        A thread-pool bulkhead runs the function on its own threads, inside
        a retry and a breaker.
        """
        with stalwart.ThreadPoolBulkhead(max_workers=1, name="io") as pool:
            policy = stalwart.Pipeline(
                stalwart.Retry(attempts=2, wait=0.0),
                stalwart.CircuitBreaker(),
                pool,
            )

            assert policy.call(lambda: threading.current_thread().name) == (
                policy(lambda: threading.current_thread().name)()
            )
            assert "stalwart-io" in policy.call(
                lambda: threading.current_thread().name
            )

    def test_threads_through_a_pipeline(self) -> None:
        """
        Threads calling one pipeline at once are all counted, and the
        bulkhead inside never lets more than its limit run.
        """
        breaker = stalwart.CircuitBreaker(failure_threshold=1000)
        bulkhead = stalwart.Bulkhead(max_concurrent=2, max_queue=100)
        policy = stalwart.Pipeline(
            stalwart.Retry(attempts=2, wait=0.0), bulkhead, breaker
        )
        lock = threading.Lock()
        running = [0, 0]  # now, most at once
        barrier = threading.Barrier(8)

        def body(i: int) -> int:
            with lock:
                running[0] += 1
                running[1] = max(running[1], running[0])
            with lock:
                running[0] -= 1
            return i

        work = policy(body)

        def thread_body(i: int) -> None:
            barrier.wait()
            for _ in range(50):
                work(i)
                policy.call(body, i)

        threads = [
            threading.Thread(target=thread_body, args=(i,)) for i in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert 800 == breaker.statistics().successes
        assert running[1] <= 2
        assert 0 == bulkhead.statistics().in_flight


def _raise() -> Any:
    raise Boom
