"""
Resilience primitives with a sync and an async face and one injectable
clock: circuit breaker, retry, rate limiters, bulkhead, timeout and
fallback.
"""

from __future__ import annotations

# --- circuit breaker (begin) ---
from ._circuit_breaker import (
    CircuitBreaker,
    CircuitBreakerStatistics,
    CircuitPermit,
    CountWindow,
    TimeWindow,
)

# --- circuit breaker (end) ---
from ._clock import Clock, DefaultClock, SystemClock
from ._core.circuit import CircuitState  # circuit breaker
from ._deadline import Deadline, current_deadline, remaining_time

# --- retry (begin) ---
from ._errors import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    RateLimitExceededError,
    RejectedError,
    ResilienceError,
    RetryExhaustedError,
    TimeoutExceededError,
)
from ._events import (
    CallRejected,
    CircuitClosed,  # circuit breaker
    CircuitHalfOpened,  # circuit breaker
    CircuitOpened,  # circuit breaker
    CircuitStateChanged,  # circuit breaker
    Event,
    Hook,
    LoggingHook,
    RetryBudgetExhausted,
    RetryGaveUp,
    RetryScheduled,
)
from ._retry import (
    ConstantBackoff,
    DecorrelatedJitterBackoff,
    ExponentialBackoff,
    LinearBackoff,
    Retry,
    RetryBudget,
    RetryBudgetStatistics,
    RetryStatistics,
)


# --- retry (end) ---
# --- rate limiters (begin) ---
# isort: split
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
# isort: split
from ._bulkhead import Bulkhead, BulkheadStatistics
from ._events import FallbackUsed, TimeoutExceeded
from ._fallback import Fallback, FallbackStatistics
from ._thread_pool import ThreadPoolBulkhead, ThreadPoolBulkheadStatistics
from ._timeout import Timeout, TimeoutStatistics


# --- bulkhead, timeout, fallback (end) ---


__all__ = [  # noqa: RUF022  # plain sorted(), as tests/test_exports.py checks
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadStatistics",
    "CallRejected",
    "CircuitBreaker",
    "CircuitBreakerStatistics",
    "CircuitClosed",
    "CircuitHalfOpened",
    "CircuitOpenError",
    "CircuitOpened",
    "CircuitPermit",
    "CircuitState",
    "CircuitStateChanged",
    "Clock",
    "ConfigurationError",
    "ConstantBackoff",
    "CountWindow",
    "Deadline",
    "DecorrelatedJitterBackoff",
    "DefaultClock",
    "Event",
    "ExponentialBackoff",
    "Fallback",
    "FallbackStatistics",
    "FallbackUsed",
    "FixedWindow",
    "GCRA",
    "Hook",
    "LeakyBucket",
    "LinearBackoff",
    "LoggingHook",
    "Rate",
    "RateLimitDecision",
    "RateLimitExceededError",
    "RateLimiterStatistics",
    "RejectedError",
    "ResilienceError",
    "Retry",
    "RetryBudget",
    "RetryBudgetExhausted",
    "RetryBudgetStatistics",
    "RetryExhaustedError",
    "RetryGaveUp",
    "RetryScheduled",
    "RetryStatistics",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "SystemClock",
    "ThreadPoolBulkhead",
    "ThreadPoolBulkheadStatistics",
    "TimeWindow",
    "Timeout",
    "TimeoutExceeded",
    "TimeoutExceededError",
    "TimeoutStatistics",
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
