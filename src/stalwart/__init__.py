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
from ._clock import Clock, DefaultClock, SystemClock
from ._core.circuit import CircuitState
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
from ._events import (
    CallRejected,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    CircuitStateChanged,
    Event,
    Hook,
    LoggingHook,
)


# --- circuit breaker (end) ---
# --- retry (begin) ---
# --- retry (end) ---
# --- rate limiters (begin) ---
# --- rate limiters (end) ---
# --- bulkhead, timeout, fallback (begin) ---
# --- bulkhead, timeout, fallback (end) ---


__all__ = [
    "BulkheadFullError",
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
    "CountWindow",
    "Deadline",
    "DefaultClock",
    "Event",
    "Hook",
    "LoggingHook",
    "RateLimitExceededError",
    "RejectedError",
    "ResilienceError",
    "SystemClock",
    "TimeWindow",
    "TimeoutExceededError",
    "current_deadline",
    "remaining_time",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415  # lazy: importlib.metadata is slow to import

        return version("stalwart")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
