"""
Every exception stalwart raises on its own account::

    ResilienceError(Exception)
    ├── ConfigurationError(ResilienceError, ValueError)
    └── RejectedError(ResilienceError)
        ├── CircuitOpenError          .name .retry_after
        ├── BulkheadFullError         .name .max_concurrent
        ├── RateLimitExceededError    .name .retry_after
        ├── TimeoutExceededError(RejectedError, TimeoutError)  .name .timeout
        ├── RetryExhaustedError       .name .result .attempts
        ├── BufferFullError           .name .retry_after .capacity
        ├── BufferEmptyError          .name .timeout
        ├── PoolExhaustedError        .name .max_size
        └── StoreUnavailableError     .name .store (__cause__: the error)

And one warning category, :class:`PipelineOrderWarning` (a
:class:`UserWarning`), for pipelines built in an order known to be a
mistake.

Exceptions raised by the user's own code are never wrapped.

Rejections are raised on hot paths, so their messages are built lazily from
their attributes in ``__str__``; they pickle by their attributes.
"""

from __future__ import annotations

import math

from typing import Any


_INF = math.inf


class ResilienceError(Exception):
    """
    The base of every exception raised by stalwart itself.

    .. versionadded:: 0.1.0
    """


class ConfigurationError(ResilienceError, ValueError):
    """
    A primitive was built with an invalid configuration.

    Raised where the primitive is built, never on a call.  It signals a bug
    in the caller's set-up and should not be caught.

    .. versionadded:: 0.1.0
    """


class RejectedError(ResilienceError):
    """
    A primitive refused or abandoned a call.

    Catch this to shed load whatever refused it.

    Attributes:
        name: The name of the primitive that refused.
        retry_after: Seconds until a new call could be admitted, or
            ``None`` where that cannot be known.

    .. versionadded:: 0.1.0
    """

    name: str
    retry_after: float | None

    def __init__(self, name: str, retry_after: float | None = None) -> None:
        # No super().__init__(): args are derived in __reduce__, and the
        # message in __str__, to keep the refusal path cheap.
        self.name = name
        self.retry_after = retry_after

    def _reason(self) -> str:
        return "call rejected"

    def __str__(self) -> str:
        text = f"{self._reason()} by {self.name!r}"
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:.3f}s"
        return text

    def __repr__(self) -> str:
        args = ", ".join(map(repr, self._init_args()))
        return f"{type(self).__name__}({args})"

    def _init_args(self) -> tuple[Any, ...]:
        return (self.name, self.retry_after)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._init_args())


class CircuitOpenError(RejectedError):
    """
    The circuit breaker is open (or half-open with every trial slot taken)
    and refused the call without running it.

    Attributes:
        name: The breaker's name.
        retry_after: Seconds until the breaker will admit a trial call;
            when it is half-open with every trial slot taken, the time
            left until the trials must have reported, or ``None`` when
            that is unknown (no ``half_open_max_wait``); ``None`` too when
            it was forced open and will not recover on its own.  Never
            ``0``.

    .. versionadded:: 0.1.0
    """

    # Built on every refused call.  Its attributes live in ``args``, so the
    # breaker builds it with the C-level ``BaseException.__new__`` alone
    # (``CircuitOpenError.__new__(CircuitOpenError, name, retry_after)``),
    # skipping this __init__: raising it is then about 2.5x cheaper.  The
    # breaker passes ``inf`` when forced open, read back as ``None``, so its
    # refusing path needs no test for that case.
    def __init__(self, name: str, retry_after: float | None = None) -> None:
        self.args = (name, retry_after)

    @property
    def name(self) -> str:
        name: str = self.args[0]
        return name

    @name.setter
    def name(self, value: str) -> None:
        self.args = (value, *self.args[1:])

    @property
    def retry_after(self) -> float | None:
        retry_after: float | None = self.args[1]
        return None if retry_after == _INF else retry_after

    @retry_after.setter
    def retry_after(self, value: float | None) -> None:
        self.args = (self.args[0], value)

    def _reason(self) -> str:
        return "circuit open"


class BulkheadFullError(RejectedError):
    """
    The bulkhead had no free slot (and no room, or no time, to wait).

    Attributes:
        name: The bulkhead's name.
        max_concurrent: How many calls it lets in at once.

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        name: str,
        max_concurrent: int,
        retry_after: float | None = None,
    ) -> None:
        self.name = name
        self.max_concurrent = max_concurrent
        self.retry_after = retry_after

    def _reason(self) -> str:
        return f"bulkhead full ({self.max_concurrent} concurrent)"

    def _init_args(self) -> tuple[Any, ...]:
        return (self.name, self.max_concurrent, self.retry_after)


class RateLimitExceededError(RejectedError):
    """
    The rate limiter could not grant the request (in time).

    Attributes:
        name: The limiter's name.
        retry_after: Seconds until the request could be granted, or
            ``None`` when it can never be (its cost exceeds the capacity).

    .. versionadded:: 0.1.0
    """

    def _reason(self) -> str:
        return "rate limit exceeded"


class TimeoutExceededError(RejectedError, TimeoutError):
    """
    The call did not finish within its time limit.

    It is also a :class:`TimeoutError`, so existing handlers catch it.

    Attributes:
        name: The timeout's name.
        timeout: The limit that was exceeded, in seconds.

    .. versionadded:: 0.1.0
    """

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        self.retry_after = None

    def _reason(self) -> str:
        return f"timed out after {self.timeout:g}s"

    def _init_args(self) -> tuple[Any, ...]:
        return (self.name, self.timeout)


class RetryExhaustedError(RejectedError):
    """
    A :class:`~stalwart.Retry` built with ``result_exhausted="raise"`` gave
    up while ``on_result`` still rejected the result.

    Exceptions are never wrapped in it: when a retry gives up on an
    exception, that exception itself is raised.

    Attributes:
        name: The retry's name.
        result: The last result, rejected by ``on_result``.
        attempts: How many attempts were made.

    .. versionadded:: 0.1.0
    """

    def __init__(self, name: str, result: object, attempts: int) -> None:
        self.name = name
        self.result = result
        self.attempts = attempts
        self.retry_after = None

    def _reason(self) -> str:
        return f"result still rejected after {self.attempts} attempt(s)"

    def _init_args(self) -> tuple[Any, ...]:
        return (self.name, self.result, self.attempts)


class BufferFullError(RejectedError):
    """
    A :class:`~stalwart.BoundedBuffer` had no room for an item: its policy
    is ``"reject"``, or ``"block"`` and the wait for room ran out (or the
    deadline left no time to wait).

    Attributes:
        name: The buffer's name.
        retry_after: An estimate of the seconds until room frees up (the
            smoothed interval between the consumers' recent takes), or
            ``None`` before the consumers have taken two items.
        capacity: How many items the buffer holds.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self, name: str, capacity: int, retry_after: float | None = None
    ) -> None:
        self.name = name
        self.capacity = capacity
        self.retry_after = retry_after

    def _reason(self) -> str:
        return f"buffer full ({self.capacity} items)"

    def _init_args(self) -> tuple[Any, ...]:
        return (self.name, self.capacity, self.retry_after)


class BufferEmptyError(RejectedError):
    """
    A :class:`~stalwart.BoundedBuffer` had no item for a consumer within
    its wait (or before the deadline).

    Attributes:
        name: The buffer's name.
        timeout: How long the consumer waited, in seconds.
        retry_after: Always ``None``: producers' pace is not estimated.

    .. versionadded:: 0.2.0
    """

    def __init__(self, name: str, timeout: float) -> None:
        self.name = name
        self.timeout = timeout
        self.retry_after = None

    def _reason(self) -> str:
        return f"buffer still empty after {self.timeout:g}s"

    def _init_args(self) -> tuple[Any, ...]:
        return (self.name, self.timeout)


class PoolExhaustedError(RejectedError):
    """
    A :class:`~stalwart.ResourcePool` had no resource to lend: all
    *max_size* were in use and the queue of waiters was full, or the wait
    ran out (or the deadline left no time to wait).

    Attributes:
        name: The pool's name.
        max_size: How many resources the pool may hold.
        retry_after: Always ``None``: a pool cannot tell when a resource
            comes back.

    .. versionadded:: 0.2.0
    """

    def __init__(self, name: str, max_size: int) -> None:
        self.name = name
        self.max_size = max_size
        self.retry_after = None

    def _reason(self) -> str:
        return f"pool exhausted ({self.max_size} resources in use)"

    def _init_args(self) -> tuple[Any, ...]:
        return (self.name, self.max_size)


class StoreUnavailableError(RejectedError):
    """
    A primitive whose state is shared through a store (a
    :class:`~stalwart.redis.RedisStore` built with
    ``on_unavailable="fail_closed"``) refused a call because the store
    could not be reached in time.

    Its ``__cause__`` is the connection error or timeout.

    Attributes:
        name: The primitive's name.
        store: The store's name.
        retry_after: Always ``None``: when the store comes back cannot be
            known.

    .. versionadded:: 0.2.0
    """

    def __init__(self, name: str, store: str) -> None:
        self.name = name
        self.store = store
        self.retry_after = None

    def _reason(self) -> str:
        return f"store {self.store!r} unavailable"

    def _init_args(self) -> tuple[Any, ...]:
        return (self.name, self.store)


# -- warnings -----------------------------------------------------------------


class PipelineOrderWarning(UserWarning):
    """
    A :class:`~stalwart.Pipeline` was built with its stages in an order
    known to be a mistake (a fallback that is not outermost, a retry inside
    a circuit breaker, a bulkhead or a rate limiter outside a retry, two
    retries).

    The message names the stages and says what goes wrong.  Filter it like
    any warning (``warnings.filterwarnings("ignore",
    category=stalwart.PipelineOrderWarning)``) where the order is meant, or
    turn it into an error (``"error"``) to refuse such pipelines.

    .. versionadded:: 0.2.0
    """
