"""
Metrics against the real libraries: the Prometheus text exposition of a
CollectorRegistry and the OpenTelemetry SDK's in-memory reader, after the
scripted scenario of ``metrics_scenario`` on a FakeClock.
"""

from __future__ import annotations

import json

import pytest

import stalwart

from metrics_scenario import build, build_isolation, play, play_isolation
from stalwart.testing import FakeClock


prometheus_client = pytest.importorskip("prometheus_client")
otel_sdk = pytest.importorskip("opentelemetry.sdk.metrics")

from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from stalwart import otel, prometheus  # noqa: E402
from stalwart._metrics import METRICS  # noqa: E402


EXPOSITION = """\
# HELP stalwart_calls_total Calls by outcome: success, failure, ignored, rejected.
# TYPE stalwart_calls_total counter
stalwart_calls_total{name="payments",outcome="success",primitive="circuit_breaker"} 1.0
stalwart_calls_total{name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_calls_total{name="payments",outcome="ignored",primitive="circuit_breaker"} 0.0
stalwart_calls_total{name="payments",outcome="rejected",primitive="circuit_breaker"} 1.0
# HELP stalwart_circuit_breaker_state 1 for the breaker's current state, 0 for the others.
# TYPE stalwart_circuit_breaker_state gauge
stalwart_circuit_breaker_state{name="payments",primitive="circuit_breaker",state="closed"} 0.0
stalwart_circuit_breaker_state{name="payments",primitive="circuit_breaker",state="open"} 1.0
stalwart_circuit_breaker_state{name="payments",primitive="circuit_breaker",state="half_open"} 0.0
stalwart_circuit_breaker_state{name="payments",primitive="circuit_breaker",state="forced_open"} 0.0
stalwart_circuit_breaker_state{name="payments",primitive="circuit_breaker",state="disabled"} 0.0
stalwart_circuit_breaker_state{name="payments",primitive="circuit_breaker",state="metrics_only"} 0.0
# HELP stalwart_circuit_breaker_transitions_total Transitions, by the state entered.
# TYPE stalwart_circuit_breaker_transitions_total counter
stalwart_circuit_breaker_transitions_total{name="payments",primitive="circuit_breaker",state="closed"} 0.0
stalwart_circuit_breaker_transitions_total{name="payments",primitive="circuit_breaker",state="open"} 1.0
stalwart_circuit_breaker_transitions_total{name="payments",primitive="circuit_breaker",state="half_open"} 0.0
stalwart_circuit_breaker_transitions_total{name="payments",primitive="circuit_breaker",state="forced_open"} 0.0
stalwart_circuit_breaker_transitions_total{name="payments",primitive="circuit_breaker",state="disabled"} 0.0
stalwart_circuit_breaker_transitions_total{name="payments",primitive="circuit_breaker",state="metrics_only"} 0.0
# HELP stalwart_circuit_breaker_slow_calls_total Calls at least slow_call_duration long.
# TYPE stalwart_circuit_breaker_slow_calls_total counter
stalwart_circuit_breaker_slow_calls_total{name="payments",primitive="circuit_breaker"} 0.0
# HELP stalwart_retry_calls_total Calls started through the retry.
# TYPE stalwart_retry_calls_total counter
stalwart_retry_calls_total{name="fetch",primitive="retry"} 2.0
# HELP stalwart_retry_retries_total Retries made (waits started before another attempt).
# TYPE stalwart_retry_retries_total counter
stalwart_retry_retries_total{name="fetch",primitive="retry"} 3.0
# HELP stalwart_retry_give_ups_total Calls that ended on a bad outcome, by reason: attempts, timeout, deadline, budget, not_retryable.
# TYPE stalwart_retry_give_ups_total counter
stalwart_retry_give_ups_total{name="fetch",primitive="retry",reason="attempts"} 1.0
stalwart_retry_give_ups_total{name="fetch",primitive="retry",reason="timeout"} 0.0
stalwart_retry_give_ups_total{name="fetch",primitive="retry",reason="deadline"} 0.0
stalwart_retry_give_ups_total{name="fetch",primitive="retry",reason="budget"} 0.0
stalwart_retry_give_ups_total{name="fetch",primitive="retry",reason="not_retryable"} 0.0
# HELP stalwart_retry_wait_seconds_total Time spent waiting between attempts.
# TYPE stalwart_retry_wait_seconds_total counter
stalwart_retry_wait_seconds_total{name="fetch",primitive="retry"} 3.0
# HELP stalwart_call_duration_seconds How long calls took, by outcome.
# TYPE stalwart_call_duration_seconds histogram
stalwart_call_duration_seconds_bucket{le="0.005",name="payments",outcome="success",primitive="circuit_breaker"} 0.0
stalwart_call_duration_seconds_bucket{le="0.01",name="payments",outcome="success",primitive="circuit_breaker"} 0.0
stalwart_call_duration_seconds_bucket{le="0.025",name="payments",outcome="success",primitive="circuit_breaker"} 0.0
stalwart_call_duration_seconds_bucket{le="0.05",name="payments",outcome="success",primitive="circuit_breaker"} 0.0
stalwart_call_duration_seconds_bucket{le="0.1",name="payments",outcome="success",primitive="circuit_breaker"} 0.0
stalwart_call_duration_seconds_bucket{le="0.25",name="payments",outcome="success",primitive="circuit_breaker"} 1.0
stalwart_call_duration_seconds_bucket{le="0.5",name="payments",outcome="success",primitive="circuit_breaker"} 1.0
stalwart_call_duration_seconds_bucket{le="1.0",name="payments",outcome="success",primitive="circuit_breaker"} 1.0
stalwart_call_duration_seconds_bucket{le="2.5",name="payments",outcome="success",primitive="circuit_breaker"} 1.0
stalwart_call_duration_seconds_bucket{le="5.0",name="payments",outcome="success",primitive="circuit_breaker"} 1.0
stalwart_call_duration_seconds_bucket{le="10.0",name="payments",outcome="success",primitive="circuit_breaker"} 1.0
stalwart_call_duration_seconds_bucket{le="+Inf",name="payments",outcome="success",primitive="circuit_breaker"} 1.0
stalwart_call_duration_seconds_count{name="payments",outcome="success",primitive="circuit_breaker"} 1.0
stalwart_call_duration_seconds_sum{name="payments",outcome="success",primitive="circuit_breaker"} 0.2
stalwart_call_duration_seconds_bucket{le="0.005",name="payments",outcome="failure",primitive="circuit_breaker"} 0.0
stalwart_call_duration_seconds_bucket{le="0.01",name="payments",outcome="failure",primitive="circuit_breaker"} 0.0
stalwart_call_duration_seconds_bucket{le="0.025",name="payments",outcome="failure",primitive="circuit_breaker"} 0.0
stalwart_call_duration_seconds_bucket{le="0.05",name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_call_duration_seconds_bucket{le="0.1",name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_call_duration_seconds_bucket{le="0.25",name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_call_duration_seconds_bucket{le="0.5",name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_call_duration_seconds_bucket{le="1.0",name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_call_duration_seconds_bucket{le="2.5",name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_call_duration_seconds_bucket{le="5.0",name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_call_duration_seconds_bucket{le="10.0",name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_call_duration_seconds_bucket{le="+Inf",name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_call_duration_seconds_count{name="payments",outcome="failure",primitive="circuit_breaker"} 2.0
stalwart_call_duration_seconds_sum{name="payments",outcome="failure",primitive="circuit_breaker"} 0.09999999999999998
stalwart_call_duration_seconds_bucket{le="0.005",name="fetch",outcome="success",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.01",name="fetch",outcome="success",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.025",name="fetch",outcome="success",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.05",name="fetch",outcome="success",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.1",name="fetch",outcome="success",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.25",name="fetch",outcome="success",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.5",name="fetch",outcome="success",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="1.0",name="fetch",outcome="success",primitive="retry"} 1.0
stalwart_call_duration_seconds_bucket{le="2.5",name="fetch",outcome="success",primitive="retry"} 1.0
stalwart_call_duration_seconds_bucket{le="5.0",name="fetch",outcome="success",primitive="retry"} 1.0
stalwart_call_duration_seconds_bucket{le="10.0",name="fetch",outcome="success",primitive="retry"} 1.0
stalwart_call_duration_seconds_bucket{le="+Inf",name="fetch",outcome="success",primitive="retry"} 1.0
stalwart_call_duration_seconds_count{name="fetch",outcome="success",primitive="retry"} 1.0
stalwart_call_duration_seconds_sum{name="fetch",outcome="success",primitive="retry"} 1.0
stalwart_call_duration_seconds_bucket{le="0.005",name="fetch",outcome="failure",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.01",name="fetch",outcome="failure",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.025",name="fetch",outcome="failure",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.05",name="fetch",outcome="failure",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.1",name="fetch",outcome="failure",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.25",name="fetch",outcome="failure",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="0.5",name="fetch",outcome="failure",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="1.0",name="fetch",outcome="failure",primitive="retry"} 0.0
stalwart_call_duration_seconds_bucket{le="2.5",name="fetch",outcome="failure",primitive="retry"} 1.0
stalwart_call_duration_seconds_bucket{le="5.0",name="fetch",outcome="failure",primitive="retry"} 1.0
stalwart_call_duration_seconds_bucket{le="10.0",name="fetch",outcome="failure",primitive="retry"} 1.0
stalwart_call_duration_seconds_bucket{le="+Inf",name="fetch",outcome="failure",primitive="retry"} 1.0
stalwart_call_duration_seconds_count{name="fetch",outcome="failure",primitive="retry"} 1.0
stalwart_call_duration_seconds_sum{name="fetch",outcome="failure",primitive="retry"} 2.1499999999999995
# HELP stalwart_retry_attempts Attempts per call.
# TYPE stalwart_retry_attempts histogram
stalwart_retry_attempts_bucket{le="1.0",name="fetch",primitive="retry"} 0.0
stalwart_retry_attempts_bucket{le="2.0",name="fetch",primitive="retry"} 1.0
stalwart_retry_attempts_bucket{le="3.0",name="fetch",primitive="retry"} 2.0
stalwart_retry_attempts_bucket{le="4.0",name="fetch",primitive="retry"} 2.0
stalwart_retry_attempts_bucket{le="5.0",name="fetch",primitive="retry"} 2.0
stalwart_retry_attempts_bucket{le="7.0",name="fetch",primitive="retry"} 2.0
stalwart_retry_attempts_bucket{le="10.0",name="fetch",primitive="retry"} 2.0
stalwart_retry_attempts_bucket{le="15.0",name="fetch",primitive="retry"} 2.0
stalwart_retry_attempts_bucket{le="20.0",name="fetch",primitive="retry"} 2.0
stalwart_retry_attempts_bucket{le="+Inf",name="fetch",primitive="retry"} 2.0
stalwart_retry_attempts_count{name="fetch",primitive="retry"} 2.0
stalwart_retry_attempts_sum{name="fetch",primitive="retry"} 5.0
"""

ISOLATION = """\
# HELP stalwart_calls_total Calls by outcome: success, failure, ignored, rejected.
# TYPE stalwart_calls_total counter
stalwart_calls_total{name="workers",outcome="rejected",primitive="thread_pool_bulkhead"} 1.0
# HELP stalwart_in_flight Calls running now.
# TYPE stalwart_in_flight gauge
stalwart_in_flight{name="workers",primitive="thread_pool_bulkhead"} 0.0
# HELP stalwart_queued Callers waiting now.
# TYPE stalwart_queued gauge
stalwart_queued{name="workers",primitive="thread_pool_bulkhead"} 0.0
# HELP stalwart_timeouts_total Calls given up at their deadline.
# TYPE stalwart_timeouts_total counter
stalwart_timeouts_total{name="deadline",primitive="timeout"} 1.0
# HELP stalwart_fallbacks_total Fallbacks used, by cause: error, result.
# TYPE stalwart_fallbacks_total counter
stalwart_fallbacks_total{cause="error",name="cache",primitive="fallback"} 1.0
stalwart_fallbacks_total{cause="result",name="cache",primitive="fallback"} 0.0
# HELP stalwart_call_duration_seconds How long calls took, by outcome.
# TYPE stalwart_call_duration_seconds histogram
stalwart_call_duration_seconds_bucket{le="0.005",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 0.0
stalwart_call_duration_seconds_bucket{le="0.01",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 0.0
stalwart_call_duration_seconds_bucket{le="0.025",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 0.0
stalwart_call_duration_seconds_bucket{le="0.05",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 0.0
stalwart_call_duration_seconds_bucket{le="0.1",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 0.0
stalwart_call_duration_seconds_bucket{le="0.25",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="0.5",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 2.0
stalwart_call_duration_seconds_bucket{le="1.0",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 2.0
stalwart_call_duration_seconds_bucket{le="2.5",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 2.0
stalwart_call_duration_seconds_bucket{le="5.0",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 2.0
stalwart_call_duration_seconds_bucket{le="10.0",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 2.0
stalwart_call_duration_seconds_bucket{le="+Inf",name="workers",outcome="success",primitive="thread_pool_bulkhead"} 2.0
stalwart_call_duration_seconds_count{name="workers",outcome="success",primitive="thread_pool_bulkhead"} 2.0
stalwart_call_duration_seconds_sum{name="workers",outcome="success",primitive="thread_pool_bulkhead"} 0.75
stalwart_call_duration_seconds_bucket{le="0.005",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="0.01",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="0.025",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="0.05",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="0.1",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="0.25",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="0.5",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="1.0",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="2.5",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="5.0",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="10.0",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_bucket{le="+Inf",name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_count{name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 1.0
stalwart_call_duration_seconds_sum{name="workers",outcome="failure",primitive="thread_pool_bulkhead"} 0.0
stalwart_call_duration_seconds_bucket{le="0.005",name="deadline",outcome="success",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.01",name="deadline",outcome="success",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.025",name="deadline",outcome="success",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.05",name="deadline",outcome="success",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.1",name="deadline",outcome="success",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.25",name="deadline",outcome="success",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.5",name="deadline",outcome="success",primitive="timeout"} 1.0
stalwart_call_duration_seconds_bucket{le="1.0",name="deadline",outcome="success",primitive="timeout"} 1.0
stalwart_call_duration_seconds_bucket{le="2.5",name="deadline",outcome="success",primitive="timeout"} 1.0
stalwart_call_duration_seconds_bucket{le="5.0",name="deadline",outcome="success",primitive="timeout"} 1.0
stalwart_call_duration_seconds_bucket{le="10.0",name="deadline",outcome="success",primitive="timeout"} 1.0
stalwart_call_duration_seconds_bucket{le="+Inf",name="deadline",outcome="success",primitive="timeout"} 1.0
stalwart_call_duration_seconds_count{name="deadline",outcome="success",primitive="timeout"} 1.0
stalwart_call_duration_seconds_sum{name="deadline",outcome="success",primitive="timeout"} 0.5
stalwart_call_duration_seconds_bucket{le="0.005",name="deadline",outcome="failure",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.01",name="deadline",outcome="failure",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.025",name="deadline",outcome="failure",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.05",name="deadline",outcome="failure",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.1",name="deadline",outcome="failure",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.25",name="deadline",outcome="failure",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="0.5",name="deadline",outcome="failure",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="1.0",name="deadline",outcome="failure",primitive="timeout"} 0.0
stalwart_call_duration_seconds_bucket{le="2.5",name="deadline",outcome="failure",primitive="timeout"} 1.0
stalwart_call_duration_seconds_bucket{le="5.0",name="deadline",outcome="failure",primitive="timeout"} 1.0
stalwart_call_duration_seconds_bucket{le="10.0",name="deadline",outcome="failure",primitive="timeout"} 1.0
stalwart_call_duration_seconds_bucket{le="+Inf",name="deadline",outcome="failure",primitive="timeout"} 1.0
stalwart_call_duration_seconds_count{name="deadline",outcome="failure",primitive="timeout"} 1.0
stalwart_call_duration_seconds_sum{name="deadline",outcome="failure",primitive="timeout"} 2.0
stalwart_call_duration_seconds_bucket{le="0.005",name="cache",outcome="success",primitive="fallback"} 0.0
stalwart_call_duration_seconds_bucket{le="0.01",name="cache",outcome="success",primitive="fallback"} 0.0
stalwart_call_duration_seconds_bucket{le="0.025",name="cache",outcome="success",primitive="fallback"} 0.0
stalwart_call_duration_seconds_bucket{le="0.05",name="cache",outcome="success",primitive="fallback"} 0.0
stalwart_call_duration_seconds_bucket{le="0.1",name="cache",outcome="success",primitive="fallback"} 0.0
stalwart_call_duration_seconds_bucket{le="0.25",name="cache",outcome="success",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="0.5",name="cache",outcome="success",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="1.0",name="cache",outcome="success",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="2.5",name="cache",outcome="success",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="5.0",name="cache",outcome="success",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="10.0",name="cache",outcome="success",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="+Inf",name="cache",outcome="success",primitive="fallback"} 1.0
stalwart_call_duration_seconds_count{name="cache",outcome="success",primitive="fallback"} 1.0
stalwart_call_duration_seconds_sum{name="cache",outcome="success",primitive="fallback"} 0.10000000000000009
stalwart_call_duration_seconds_bucket{le="0.005",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="0.01",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="0.025",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="0.05",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="0.1",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="0.25",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="0.5",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="1.0",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="2.5",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="5.0",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="10.0",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_bucket{le="+Inf",name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_count{name="cache",outcome="failure",primitive="fallback"} 1.0
stalwart_call_duration_seconds_sum{name="cache",outcome="failure",primitive="fallback"} 0.0
# HELP stalwart_queue_wait_seconds How long callers waited to be admitted (queue, reservation, checkout).
# TYPE stalwart_queue_wait_seconds histogram
stalwart_queue_wait_seconds_bucket{le="0.005",name="workers",primitive="thread_pool_bulkhead"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.01",name="workers",primitive="thread_pool_bulkhead"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.025",name="workers",primitive="thread_pool_bulkhead"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.05",name="workers",primitive="thread_pool_bulkhead"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.1",name="workers",primitive="thread_pool_bulkhead"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.25",name="workers",primitive="thread_pool_bulkhead"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.5",name="workers",primitive="thread_pool_bulkhead"} 3.0
stalwart_queue_wait_seconds_bucket{le="1.0",name="workers",primitive="thread_pool_bulkhead"} 3.0
stalwart_queue_wait_seconds_bucket{le="2.5",name="workers",primitive="thread_pool_bulkhead"} 3.0
stalwart_queue_wait_seconds_bucket{le="5.0",name="workers",primitive="thread_pool_bulkhead"} 3.0
stalwart_queue_wait_seconds_bucket{le="10.0",name="workers",primitive="thread_pool_bulkhead"} 3.0
stalwart_queue_wait_seconds_bucket{le="+Inf",name="workers",primitive="thread_pool_bulkhead"} 3.0
stalwart_queue_wait_seconds_count{name="workers",primitive="thread_pool_bulkhead"} 3.0
stalwart_queue_wait_seconds_sum{name="workers",primitive="thread_pool_bulkhead"} 0.5
"""


def _limiter_scenario(clock: FakeClock) -> stalwart.TokenBucket:
    """
    A token bucket of two a minute: two granted at once, one refused,
    one granted after a wait of 30 s; then a minute goes by.
    """
    limiter = stalwart.TokenBucket(rate="2/minute", name="api", clock=clock)
    return limiter


def _play_limiter(clock: FakeClock, limiter: stalwart.TokenBucket) -> None:
    limiter.acquire()
    with limiter:
        pass
    limiter.try_acquire()
    limiter.acquire()
    clock.advance(60.0)


LIMITER = """\
# HELP stalwart_calls_total Calls by outcome: success, failure, ignored, rejected.
# TYPE stalwart_calls_total counter
stalwart_calls_total{name="api",outcome="rejected",primitive="rate_limiter"} 1.0
# HELP stalwart_rate_limiter_granted_total Requests a rate limiter granted (refusals are calls rejected).
# TYPE stalwart_rate_limiter_granted_total counter
stalwart_rate_limiter_granted_total{name="api",primitive="rate_limiter"} 3.0
# HELP stalwart_rate_limiter_remaining Permits left for the default key.
# TYPE stalwart_rate_limiter_remaining gauge
stalwart_rate_limiter_remaining{name="api",primitive="rate_limiter"} 2.0
# HELP stalwart_rate_limiter_keys Keys whose state a rate limiter holds.
# TYPE stalwart_rate_limiter_keys gauge
stalwart_rate_limiter_keys{name="api",primitive="rate_limiter"} 0.0
# HELP stalwart_queue_wait_seconds How long callers waited to be admitted (queue, reservation, checkout).
# TYPE stalwart_queue_wait_seconds histogram
stalwart_queue_wait_seconds_bucket{le="0.005",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.01",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.025",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.05",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.1",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.25",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="0.5",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="1.0",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="2.5",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="5.0",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="10.0",name="api",primitive="rate_limiter"} 2.0
stalwart_queue_wait_seconds_bucket{le="+Inf",name="api",primitive="rate_limiter"} 3.0
stalwart_queue_wait_seconds_count{name="api",primitive="rate_limiter"} 3.0
stalwart_queue_wait_seconds_sum{name="api",primitive="rate_limiter"} 30.0
"""


def exposition(registry: CollectorRegistry) -> str:
    """
    The registry's text exposition without the _created series (wall-clock
    times prometheus_client adds to every histogram).
    """
    text = generate_latest(registry).decode()
    return "".join(
        line + "\n" for line in text.splitlines() if "_created" not in line
    )


def otel_points(reader: InMemoryMetricReader) -> dict[str, list[tuple]]:
    """
    Every data point the reader collected: metric name -> sorted
    (attributes, value) pairs; a histogram's value is (count, sum, bucket
    counts).
    """
    found: dict[str, list[tuple]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points = []
                for point in metric.data.data_points:
                    attributes = tuple(sorted(point.attributes.items()))
                    if hasattr(point, "bucket_counts"):
                        value = (
                            point.count,
                            round(point.sum, 9),
                            tuple(point.bucket_counts),
                        )
                    else:
                        value = point.value
                    points.append((attributes, value))
                found[metric.name] = sorted(points)
    return found


class TestPrometheus:
    def test_scenario_exposition(self):
        """
        After the scenario, the exposition holds exactly the counters read
        from statistics and the histograms fed by per-call hooks.
        """
        clock = FakeClock()
        breaker, retry = build(clock)
        registry = CollectorRegistry()
        prometheus.instrument(breaker, registry=registry)
        prometheus.instrument(retry, registry=registry)
        play(clock, breaker, retry)

        assert EXPOSITION == exposition(registry)

    def test_isolation_exposition(self):
        """
        After the isolation scenario, the exposition holds the thread
        pool's, the timeout's and the fallback's counters and gauges, their
        call durations, and the pool's queue waits.
        """
        clock = FakeClock()
        primitives = build_isolation(clock)
        registry = CollectorRegistry()
        for primitive in primitives:
            prometheus.instrument(primitive, registry=registry)
        try:
            play_isolation(clock, *primitives)
        finally:
            primitives[0].shutdown()

        assert ISOLATION == exposition(registry)

    def test_limiter_exposition(self):
        """
        After the limiter scenario, the exposition holds its grants, its
        refusal, the default key's remaining permits and the waits of
        its admissions.
        """
        clock = FakeClock()
        limiter = _limiter_scenario(clock)
        registry = CollectorRegistry()
        prometheus.instrument(limiter, registry=registry)
        _play_limiter(clock, limiter)

        assert LIMITER == exposition(registry)

    def test_one_collector_per_registry(self):
        """
        Instrumenting twice (or the same primitive twice) adds nothing
        twice: one collector per registry, one series per primitive.
        """
        clock = FakeClock()
        breaker, retry = build(clock)
        registry = CollectorRegistry()
        first = prometheus.instrument(breaker, registry=registry)
        second = prometheus.instrument(breaker, registry=registry)
        play(clock, breaker, retry)

        assert first is second
        assert 1 == exposition(registry).count(
            'stalwart_calls_total{name="payments",outcome="success"'
        )
        assert 1 == len(breaker._live.calls)

    def test_registry_now_and_later(self):
        """
        Instrumenting a stalwart Registry covers the primitives it holds
        and those it creates later.
        """
        clock = FakeClock()
        primitives = stalwart.Registry(clock=clock)
        primitives.get(stalwart.CircuitBreaker, "before")
        registry = CollectorRegistry()
        prometheus.instrument(primitives, registry=registry)
        later = primitives.get(stalwart.CircuitBreaker, "after")
        later.call(lambda: None)
        text = exposition(registry)

        assert (
            'stalwart_calls_total{name="before",outcome="success",'
            'primitive="circuit_breaker"} 0.0'
        ) in text
        assert (
            'stalwart_call_duration_seconds_count{name="after",'
            'outcome="success",primitive="circuit_breaker"} 1.0'
        ) in text

    def test_not_instrumentable(self):
        """
        Something without statistics() is refused with TypeError.
        """
        with pytest.raises(TypeError, match="no statistics"):
            prometheus.instrument(object(), registry=CollectorRegistry())


class TestOpenTelemetry:
    def test_scenario_points(self):
        """
        The in-memory reader sees the same scenario: counters with
        semantic-convention names and attributes, and the histograms.
        """
        clock = FakeClock()
        breaker, retry = build(clock)
        reader = InMemoryMetricReader()
        provider = otel_sdk.MeterProvider(metric_readers=[reader])
        otel.instrument(breaker, meter_provider=provider)
        otel.instrument(retry, meter_provider=provider)
        play(clock, breaker, retry)
        points = otel_points(reader)
        payments = (
            ("stalwart.name", "payments"),
            ("stalwart.primitive", "circuit_breaker"),
        )
        fetch = (("stalwart.name", "fetch"), ("stalwart.primitive", "retry"))

        assert [
            ((payments[0], ("stalwart.outcome", "failure"), payments[1]), 2),
            ((payments[0], ("stalwart.outcome", "ignored"), payments[1]), 0),
            ((payments[0], ("stalwart.outcome", "rejected"), payments[1]), 1),
            ((payments[0], ("stalwart.outcome", "success"), payments[1]), 1),
        ] == points["stalwart.calls"]
        assert (
            1
            == {
                dict(a)["stalwart.state"]: v
                for a, v in points["stalwart.circuit_breaker.state"]
            }["open"]
        )
        assert [(fetch, 3)] == points["stalwart.retry.retries"]
        assert [(fetch, 3.0)] == points["stalwart.retry.wait"]
        assert [
            (fetch, (2, 5.0, (0, 1, 1, 0, 0, 0, 0, 0, 0, 0))),
        ] == points["stalwart.retry.attempts"]
        durations = dict(points["stalwart.call.duration"])
        assert (1, 0.2) == durations[
            (payments[0], ("stalwart.outcome", "success"), payments[1])
        ][:2]
        assert (1, 2.15) == durations[
            (fetch[0], ("stalwart.outcome", "failure"), fetch[1])
        ][:2]

    def test_isolation_points(self):
        """
        The in-memory reader sees the isolation scenario: counters, gauges,
        call durations and the pool's queue waits.
        """
        clock = FakeClock()
        primitives = build_isolation(clock)
        reader = InMemoryMetricReader()
        provider = otel_sdk.MeterProvider(metric_readers=[reader])
        for primitive in primitives:
            otel.instrument(primitive, meter_provider=provider)
        try:
            play_isolation(clock, *primitives)
        finally:
            primitives[0].shutdown()
        points = otel_points(reader)
        workers = (
            ("stalwart.name", "workers"),
            ("stalwart.primitive", "thread_pool_bulkhead"),
        )
        deadline = (
            ("stalwart.name", "deadline"),
            ("stalwart.primitive", "timeout"),
        )
        cache = (
            ("stalwart.name", "cache"),
            ("stalwart.primitive", "fallback"),
        )

        def outcome(base: tuple, value: str) -> tuple:
            return (base[0], ("stalwart.outcome", value), base[1])

        assert [(outcome(workers, "rejected"), 1)] == points["stalwart.calls"]
        assert [(workers, 0)] == points["stalwart.in_flight"]
        assert [(workers, 0)] == points["stalwart.queued"]
        assert [(deadline, 1)] == points["stalwart.timeouts"]
        assert [
            ((("stalwart.cause", "error"), *cache), 1),
            ((("stalwart.cause", "result"), *cache), 0),
        ] == points["stalwart.fallbacks"]
        assert [
            (workers, (3, 0.5, (2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0))),
        ] == points["stalwart.queue.wait"]
        durations = {
            attributes: value[:2]
            for attributes, value in points["stalwart.call.duration"]
        }
        assert {
            outcome(workers, "success"): (2, 0.75),
            outcome(workers, "failure"): (1, 0.0),
            outcome(deadline, "success"): (1, 0.5),
            outcome(deadline, "failure"): (1, 2.0),
            outcome(cache, "success"): (1, 0.1),
            outcome(cache, "failure"): (1, 0.0),
        } == durations

    def test_limiter_points(self):
        """
        The in-memory reader sees the limiter scenario: grants, refusal,
        remaining permits, keys, and the admissions' waits.
        """
        clock = FakeClock()
        limiter = _limiter_scenario(clock)
        reader = InMemoryMetricReader()
        provider = otel_sdk.MeterProvider(metric_readers=[reader])
        otel.instrument(limiter, meter_provider=provider)
        _play_limiter(clock, limiter)
        points = otel_points(reader)
        api = (
            ("stalwart.name", "api"),
            ("stalwart.primitive", "rate_limiter"),
        )

        assert [
            ((api[0], ("stalwart.outcome", "rejected"), api[1]), 1)
        ] == points["stalwart.calls"]
        assert [(api, 3)] == points["stalwart.rate_limiter.granted"]
        assert [(api, 2)] == points["stalwart.rate_limiter.remaining"]
        assert [(api, 0)] == points["stalwart.rate_limiter.keys"]
        [(attributes, (count, total, _))] = points["stalwart.queue.wait"]
        assert (api, 3, 30.0) == (attributes, count, total)

    def test_one_instrumentation_per_provider(self):
        """
        The instruments are created once per meter provider.
        """
        reader = InMemoryMetricReader()
        provider = otel_sdk.MeterProvider(metric_readers=[reader])
        first = otel.instrument(stalwart.Retry(), meter_provider=provider)
        second = otel.instrument(stalwart.Retry(), meter_provider=provider)

        assert first is second


class TestKinds:
    def test_pipeline_stages(self):
        """
        A pipeline is instrumented through its stages: each stage's
        counters under its own name, and hooks on each stage (a stage of
        your own without statistics is left out).
        """
        from pipeline_support import Runner

        clock = FakeClock()
        breaker, retry = build(clock)
        policy = stalwart.Pipeline(
            retry, Runner("custom", []), breaker, name="policy"
        )
        registry = CollectorRegistry()
        prometheus.instrument(policy, registry=registry)
        policy(lambda: "ok")()
        policy.call(lambda: "ok")
        text = exposition(registry)

        assert (
            'stalwart_retry_calls_total{name="fetch",primitive="retry"} 2.0'
            in text
        )
        assert (
            'stalwart_call_duration_seconds_count{name="payments",'
            'outcome="success",primitive="circuit_breaker"} 2.0'
        ) in text
        assert "custom" not in text
        assert "policy" not in text

    def test_pipeline_and_its_stage_read_once(self):
        """
        A stage instrumented on its own and through a pipeline (or a
        registry holding both) is read once and timed once.
        """
        clock = FakeClock()
        breaker, retry = build(clock)
        primitives = stalwart.Registry(clock=clock)
        primitives.register(breaker)
        primitives.register(stalwart.Pipeline(retry, breaker, name="policy"))
        registry = CollectorRegistry()
        prometheus.instrument(primitives, registry=registry)
        prometheus.instrument(breaker, registry=registry)
        breaker.call(lambda: "ok")
        text = exposition(registry)

        assert 1 == text.count(
            'stalwart_calls_total{name="payments",outcome="success"'
        )
        assert (
            'stalwart_call_duration_seconds_count{name="payments",'
            'outcome="success",primitive="circuit_breaker"} 1.0'
        ) in text
        assert 1 == len(breaker._live.calls)

    def test_statistics_only_primitives(self):
        """
        Counters and gauges come from statistics alone, for primitives that
        have no per-call hook (a bulkhead, a limiter) as for those that do (a
        timeout, a fallback, a thread pool).
        """
        clock = FakeClock()
        bulkhead = stalwart.Bulkhead(max_concurrent=1, name="db")
        limiter = stalwart.TokenBucket(
            rate=1, capacity=1, name="api", clock=clock
        )
        timeout = stalwart.Timeout(seconds=1, name="t")
        fallback = stalwart.Fallback(value=0, name="f")
        pool = stalwart.ThreadPoolBulkhead(max_workers=1, name="tp")
        registry = CollectorRegistry()
        for primitive in (bulkhead, limiter, timeout, fallback, pool):
            prometheus.instrument(primitive, registry=registry)
        limiter.try_acquire()
        limiter.try_acquire()
        fallback.call(_boom)
        with bulkhead:
            text = exposition(registry)
        pool.shutdown()

        for line in [
            'stalwart_in_flight{name="db",primitive="bulkhead"} 1.0',
            'stalwart_queued{name="db",primitive="bulkhead"} 0.0',
            'stalwart_calls_total{name="api",outcome="rejected",primitive="rate_limiter"} 1.0',
            'stalwart_rate_limiter_granted_total{name="api",primitive="rate_limiter"} 1.0',
            'stalwart_rate_limiter_keys{name="api",primitive="rate_limiter"} 0.0',
            'stalwart_timeouts_total{name="t",primitive="timeout"} 0.0',
            'stalwart_fallbacks_total{cause="error",name="f",primitive="fallback"} 1.0',
            'stalwart_in_flight{name="tp",primitive="thread_pool_bulkhead"} 0.0',
        ]:
            assert line in text

    def test_own_primitives(self):
        """
        Chaos, buffers, pools and retry budgets export their counters.
        """
        chaos = stalwart.Chaos(fault=OSError(), every=2, name="c")
        buffer: stalwart.BoundedBuffer[int] = stalwart.BoundedBuffer(
            capacity=1, when_full="drop_oldest", name="q"
        )
        resources = stalwart.ResourcePool(factory=object, max_size=2, name="p")
        budget = stalwart.RetryBudget(name="b")
        registry = CollectorRegistry()
        for primitive in (chaos, buffer, resources, budget):
            prometheus.instrument(primitive, registry=registry)
        chaos.call(lambda: None)
        buffer.put(1)
        buffer.put(2)
        with resources.acquire():
            text = exposition(registry)

        for line in [
            'stalwart_chaos_calls_total{name="c",primitive="chaos"} 1.0',
            'stalwart_chaos_injected_total{name="c",primitive="chaos"} 0.0',
            'stalwart_buffer_depth{name="q",primitive="bounded_buffer"} 1.0',
            'stalwart_buffer_items_total{event="dropped",name="q",primitive="bounded_buffer"} 1.0',
            'stalwart_queued{name="q",primitive="bounded_buffer"} 0.0',
            'stalwart_pool_resources{name="p",primitive="resource_pool",state="in_use"} 1.0',
            'stalwart_pool_resources_total{event="created",name="p",primitive="resource_pool"} 1.0',
            'stalwart_retry_budget_refused_total{name="b",primitive="retry_budget"} 0.0',
        ]:
            assert line in text

    def test_keyed_breaker_per_key_only_when_asked(self):
        """
        A keyed breaker is one primitive: totals and keys by state; each
        key's series (with a key label) only with per_key=True.
        """
        clock = FakeClock()
        keyed = stalwart.KeyedCircuitBreaker(
            breaker=stalwart.CircuitBreaker(failure_threshold=1, clock=clock),
            name="hosts",
        )
        plain, detailed = CollectorRegistry(), CollectorRegistry()
        prometheus.instrument(keyed, registry=plain)
        prometheus.instrument(keyed, registry=detailed, per_key=True)
        with pytest.raises(OSError):
            keyed.call(_boom, "a")
        keyed.call(lambda host: host, "b")

        assert (
            'stalwart_circuit_breaker_keys{name="hosts",'
            'primitive="keyed_circuit_breaker",state="open"} 1.0'
        ) in exposition(plain)
        assert "key=" not in exposition(plain)
        assert (
            'stalwart_circuit_breaker_state{key="a",name="hosts",'
            'primitive="keyed_circuit_breaker",state="open"} 1.0'
        ) in exposition(detailed)


def _boom(*args: object) -> None:
    raise OSError("boom")


class TestTable:
    def test_documented(self):
        """
        docs/operations.md lists every metric under both of its names.
        """
        import pathlib

        page = (
            pathlib.Path(__file__).parent.parent / "docs" / "operations.md"
        ).read_text()

        missing = [
            metric.key
            for metric in METRICS
            if f"`{metric.prometheus}`" not in page
            or f"`{metric.otel}`" not in page
        ]
        assert [] == missing

    def test_prometheus_conventions(self):
        """
        Counters end in _total, durations are in seconds, no OTel name has
        a unit suffix.
        """
        for metric in METRICS:
            assert metric.prometheus.startswith("stalwart_")
            assert metric.otel.startswith("stalwart.")
            assert (metric.type == "counter") == metric.prometheus.endswith(
                "_total"
            )
            if metric.unit == "s":
                assert "seconds" in metric.prometheus
            assert not metric.otel.endswith(("_total", "_seconds"))


def test_statistics_travel_as_json():
    """
    Every record of the scenario goes through json.dumps as is.
    """
    clock = FakeClock()
    breaker, retry = build(clock)
    play(clock, breaker, retry)

    assert (
        "open"
        == json.loads(json.dumps(breaker.statistics().to_dict()))["state"]
    )
    assert {"attempts": 1} == {
        k: v
        for k, v in retry.statistics().to_dict()["give_ups_by_reason"].items()
        if v
    }


class TestListener:
    def test_events(self):
        """
        The listener observes durations, attempts and waits, and nothing
        for a call without a duration or another event.
        """
        from stalwart._metrics import Listener, record_samples

        seen: list[tuple] = []
        listener = Listener(
            lambda metric, labels, value: seen.append(
                (metric.key, labels.get("outcome"), value)
            ),
            "bulkhead",
            "b",
        )
        listener(
            stalwart.CallFinished(
                primitive_name="b",
                at=0.0,
                primitive="bulkhead",
                outcome="success",
                duration=None,
            )
        )
        listener(
            stalwart.CallAdmitted(
                primitive_name="b", at=0.0, primitive="bulkhead", wait=0.5
            )
        )
        listener(stalwart.Event(primitive_name="b", at=0.0))

        assert [("queue_wait", None, 0.5)] == seen
        assert [] == list(record_samples(object(), "x"))
