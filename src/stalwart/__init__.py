"""
Resilience primitives with a sync and an async face and one injectable
clock: circuit breaker, retry, rate limiters, bulkhead, timeout and
fallback, pipelines that compose them, and fault injection (chaos) to test
them.
"""

from __future__ import annotations

from ._adaptive_bulkhead import (
    AdaptiveBulkhead,
    AdaptiveBulkheadStatistics,
    AIMDLimit,
    GradientLimit,
)
from ._buffer import BoundedBuffer, BufferDecision, BufferStatistics
from ._bulkhead import Bulkhead, BulkheadStatistics
from ._chaos import Chaos, ChaosContext, ChaosStatistics
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
    BufferEmptyError,
    BufferFullError,
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    PipelineOrderWarning,
    PoolExhaustedError,
    RateLimitExceededError,
    RejectedError,
    ResilienceError,
    RetryExhaustedError,
    StoreUnavailableError,
    TimeoutExceededError,
)
from ._events import (
    CallAdmitted,
    CallFinished,
    CallRejected,
    ChaosInjected,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    CircuitStateChanged,
    Event,
    FallbackUsed,
    Hook,
    ItemDropped,
    LimitChanged,
    LoggingHook,
    ResourceClosed,
    ResourceCreated,
    RetryBudgetExhausted,
    RetryGaveUp,
    RetryScheduled,
    StoreUnavailable,
    TimeoutExceeded,
)
from ._fallback import Fallback, FallbackStatistics
from ._http import HTTPPolicy, parse_retry_after
from ._keyed_breaker import KeyedCircuitBreaker, KeyedCircuitBreakerStatistics
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
from ._observe import Observable
from ._pipeline import Pipeline, PipelineStatistics
from ._pool import Lease, PoolStatistics, ResourcePool
from ._rates import Rate
from ._registry import Registry
from ._retry import (
    ConstantBackoff,
    DecorrelatedJitterBackoff,
    ExponentialBackoff,
    LinearBackoff,
    Retry,
    RetryAfter,
    RetryBudget,
    RetryBudgetStatistics,
    RetryStatistics,
)
from ._statistics import Statistics
from ._thread_pool import ThreadPoolBulkhead, ThreadPoolBulkheadStatistics
from ._timeout import Timeout, TimeoutStatistics
from ._weighted_bulkhead import (
    WeightedBulkhead,
    WeightedBulkheadStatistics,
    WeightedHold,
)


__all__ = [
    "GCRA",
    "AIMDLimit",
    "AdaptiveBulkhead",
    "AdaptiveBulkheadStatistics",
    "BoundedBuffer",
    "BufferDecision",
    "BufferEmptyError",
    "BufferFullError",
    "BufferStatistics",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadStatistics",
    "CallAdmitted",
    "CallFinished",
    "CallRejected",
    "Chaos",
    "ChaosContext",
    "ChaosInjected",
    "ChaosStatistics",
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
    "GradientLimit",
    "HTTPPolicy",
    "Hook",
    "ItemDropped",
    "KeyedCircuitBreaker",
    "KeyedCircuitBreakerStatistics",
    "LeakyBucket",
    "Lease",
    "LimitChanged",
    "LinearBackoff",
    "LoggingHook",
    "Observable",
    "Pipeline",
    "PipelineOrderWarning",
    "PipelineStatistics",
    "PoolExhaustedError",
    "PoolStatistics",
    "Rate",
    "RateLimitDecision",
    "RateLimitExceededError",
    "RateLimiterStatistics",
    "Registry",
    "RejectedError",
    "ResilienceError",
    "ResourceClosed",
    "ResourceCreated",
    "ResourcePool",
    "Retry",
    "RetryAfter",
    "RetryBudget",
    "RetryBudgetExhausted",
    "RetryBudgetStatistics",
    "RetryExhaustedError",
    "RetryGaveUp",
    "RetryScheduled",
    "RetryStatistics",
    "SlidingWindowCounter",
    "SlidingWindowLog",
    "Statistics",
    "StoreUnavailable",
    "StoreUnavailableError",
    "SystemClock",
    "ThreadPoolBulkhead",
    "ThreadPoolBulkheadStatistics",
    "TimeWindow",
    "Timeout",
    "TimeoutExceeded",
    "TimeoutExceededError",
    "TimeoutStatistics",
    "TokenBucket",
    "WeightedBulkhead",
    "WeightedBulkheadStatistics",
    "WeightedHold",
    "current_deadline",
    "parse_retry_after",
    "remaining_time",
]


def __getattr__(name: str) -> str:
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415  # lazy: importlib.metadata is slow to import

        return version("stalwart")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
