"""
The scripted scenario the metrics tests read back through Prometheus and
OpenTelemetry: a breaker that serves one slow call, opens after two
failures and refuses one; a retry that succeeds at its second attempt and
gives up after its third.  The isolation scenario does the same for a
thread pool, a timeout and a fallback.
"""

from __future__ import annotations

import contextlib
import threading

import stalwart

from stalwart.testing import FakeClock


def build(clock: FakeClock) -> tuple[stalwart.CircuitBreaker, stalwart.Retry]:
    """
    The breaker and the retry of the scenario, on *clock*.
    """
    breaker = stalwart.CircuitBreaker(
        name="payments", failure_threshold=2, recovery_time=30, clock=clock
    )
    retry = stalwart.Retry(
        name="fetch",
        attempts=3,
        on=ConnectionError,
        wait=1.0,
        timeout=None,
        clock=clock,
    )
    return breaker, retry


def play(
    clock: FakeClock, breaker: stalwart.CircuitBreaker, retry: stalwart.Retry
) -> None:
    """
    Run the scenario (after the primitives were instrumented).
    """

    @breaker
    def pay() -> str:
        clock.advance(0.2)
        return "paid"

    def fail() -> None:
        clock.advance(0.05)
        raise ConnectionError

    pay()
    for _ in range(2):
        with contextlib.suppress(ConnectionError):
            breaker.call(fail)
    with contextlib.suppress(stalwart.CircuitOpenError):
        pay()

    tries = iter([ConnectionError(), None])

    @retry
    def flaky() -> str:
        error = next(tries)
        if error is not None:
            raise error
        return "ok"

    flaky()
    with contextlib.suppress(ConnectionError):
        retry.call(fail)


def build_isolation(
    clock: FakeClock,
) -> tuple[stalwart.ThreadPoolBulkhead, stalwart.Timeout, stalwart.Fallback]:
    """
    The thread pool, the timeout and the fallback of the isolation
    scenario, on *clock*.
    """
    pool = stalwart.ThreadPoolBulkhead(
        name="workers", max_workers=1, max_queue=1, clock=clock
    )
    timeout = stalwart.Timeout(name="deadline", seconds=2, clock=clock)
    fallback = stalwart.Fallback(
        name="cache", value="cached", on=ConnectionError, clock=clock
    )
    return pool, timeout, fallback


def play_isolation(
    clock: FakeClock,
    pool: stalwart.ThreadPoolBulkhead,
    timeout: stalwart.Timeout,
    fallback: stalwart.Fallback,
) -> None:
    """
    Run the isolation scenario (after the primitives were instrumented):
    the pool runs one call for 0.5 s while a second waits 0.5 s in its
    queue and a third is refused, then one that fails; the timeout lets
    one call through in 0.5 s and gives up on one at 2 s; the fallback
    serves one call in 0.1 s and replaces one failure.
    """
    gate = threading.Event()
    first = pool.submit(gate.wait)
    while pool.statistics().running < 1:
        threading.Event().wait(0.001)

    def second() -> str:
        clock.advance(0.25)
        return "done"

    queued = pool.submit(second)
    with contextlib.suppress(stalwart.BulkheadFullError):
        pool.submit(second)
    clock.advance(0.5)
    gate.set()
    first.result()
    queued.result()
    with contextlib.suppress(ConnectionError):
        pool.call(_fail)

    def quick() -> str:
        clock.advance(0.5)
        return "ok"

    stuck = threading.Event()

    def slow() -> None:
        clock.advance(2.0)
        stuck.wait()

    timeout.call(quick)
    with contextlib.suppress(stalwart.TimeoutExceededError):
        timeout.call(slow)
    stuck.set()

    def served() -> str:
        clock.advance(0.1)
        return "fresh"

    fallback.call(served)
    fallback.call(_fail)


def _fail() -> None:
    raise ConnectionError
