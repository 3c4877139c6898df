"""
Resilience primitives with a sync and an async face and one injectable
clock: circuit breaker, retry, rate limiters, bulkhead, timeout and
fallback.
"""

from __future__ import annotations

from ._clock import Clock, DefaultClock, SystemClock
from ._deadline import Deadline, current_deadline, remaining_time
from ._errors import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    RateLimitExceededError,
    RejectedError,
    ResilienceError,
    TimeoutExceededError,
)
from ._events import CallRejected, Event, Hook, LoggingHook

# --- circuit breaker (begin) ---
# --- circuit breaker (end) ---
# --- retry (begin) ---
# --- retry (end) ---
# --- rate limiters (begin) ---
from ._limiters import (
    GCRA,
    FixedWindow,
    LeakyBucket,
    RateLimitDecision,
    RateLimiterStatistics,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from ._rates import Rate


# --- rate limiters (end) ---
# --- bulkhead, timeout, fallback (begin) ---
# --- bulkhead, timeout, fallback (end) ---


__all__ = [  # noqa: RUF022  # plain sorted(), as tests/test_exports.py checks
    "BulkheadFullError",
    "CallRejected",
    "CircuitOpenError",
    "Clock",
    "ConfigurationError",
    "Deadline",
    "DefaultClock",
    "Event",
    "FixedWindow",
    "GCRA",
    "Hook",
    "LeakyBucket",
    "LoggingHook",
    "Rate",
    "RateLimitDecision",
    "RateLimitExceededError",
    "RateLimiterStatistics",
    "RejectedError",
    "ResilienceError",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "SystemClock",
    "TimeoutExceededError",
    "TokenBucket",
    "current_deadline",
    "remaining_time",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415  # lazy: importlib.metadata is slow to import

        return version("stalwart")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
