"""
The scripted scenario the metrics tests read back through Prometheus and
OpenTelemetry: a breaker that serves one slow call, opens after two
failures and refuses one; a retry that succeeds at its second attempt and
gives up after its third.
"""

from __future__ import annotations

import contextlib

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
