"""
Event records and the hooks that receive them.

Every primitive takes ``hooks=``: callables that receive frozen event
records.  Hooks run outside every lock, after the decision they report was
made.  A hook that raises is logged on the ``stalwart`` logger and never
breaks the protected call.
"""

from __future__ import annotations

import logging

from collections.abc import Iterable
from typing import Protocol

import attrs

from ._core.circuit import CircuitState
from ._errors import RejectedError


logger = logging.getLogger("stalwart")


@attrs.frozen(kw_only=True)
class Event:
    """
    The base of every event.

    Attributes:
        primitive_name: The ``name`` of the primitive that emitted it.
        at: The time of the event, read from the primitive's clock.

    .. versionadded:: 0.1.0
    """

    primitive_name: str
    at: float


class Hook(Protocol):
    """
    Anything that can receive events: ``hook(event) -> None``.

    .. versionadded:: 0.1.0
    """

    def __call__(self, event: Event, /) -> None:
        """
        Receive *event*.
        """


def emit(hooks: Iterable[Hook], event: Event) -> None:
    """
    Hand *event* to every hook; log and swallow what a hook raises.
    """
    for hook in hooks:
        try:
            hook(event)
        except Exception:
            logger.exception(
                "stalwart hook %r failed on %s; the call goes on",
                hook,
                type(event).__name__,
            )


@attrs.frozen(kw_only=True)
class CallRejected(Event):
    """
    A primitive refused a call; *error* is the exception it raised.

    .. versionadded:: 0.1.0
    """

    error: RejectedError


@attrs.frozen
class LoggingHook:
    """
    A hook that logs every event on a :mod:`logging` logger.

    Rejections log at ``WARNING``, everything else at ``INFO``.

    Args:
        logger: The logger to use; the ``stalwart`` logger by default.

    .. versionadded:: 0.1.0
    """

    logger: logging.Logger = attrs.field(
        factory=lambda: logging.getLogger("stalwart")
    )

    def __call__(self, event: Event, /) -> None:
        """
        Log *event*.
        """
        level = (
            logging.WARNING
            if isinstance(event, CallRejected)
            else logging.INFO
        )
        self.logger.log(level, "%s", event)


# --- retry ---


@attrs.frozen(kw_only=True)
class RetryScheduled(Event):
    """
    A :class:`~stalwart.Retry` will try again after *wait* seconds.

    Attributes:
        attempt: The attempt that just failed, ``1`` for the first call.
        wait: The delay before the next attempt, in seconds.
        caused_by: The exception that failed the attempt, or ``None`` when
            its result was rejected by ``on_result``.
        result: The rejected result (``None`` when *caused_by* is set).

    .. versionadded:: 0.1.0
    """

    attempt: int
    wait: float
    caused_by: BaseException | None
    result: object = None


@attrs.frozen(kw_only=True)
class RetryGaveUp(Event):
    """
    A :class:`~stalwart.Retry` stopped retrying; the call ends with the
    last outcome.

    Attributes:
        attempt: The last attempt made, ``1`` for the first call.
        reason: ``"attempts"``, ``"timeout"`` (the retry's own time
            budget), ``"deadline"`` (the enclosing call's deadline),
            ``"budget"`` (a shared :class:`~stalwart.RetryBudget`) or
            ``"not_retryable"`` (an outcome it does not retry).
        caused_by: The exception that failed the last attempt, or ``None``
            when its result was rejected by ``on_result``.
        result: The rejected result (``None`` when *caused_by* is set).

    .. versionadded:: 0.1.0
    """

    attempt: int
    reason: str
    caused_by: BaseException | None
    result: object = None


@attrs.frozen(kw_only=True)
class RetryBudgetExhausted(RetryGaveUp):
    """
    A :class:`~stalwart.Retry` gave up because its shared
    :class:`~stalwart.RetryBudget` was spent (*reason* is ``"budget"``).

    Attributes:
        budget_name: The ``name`` of the budget.

    .. versionadded:: 0.1.0
    """

    budget_name: str


# --- circuit breaker ---


@attrs.frozen(kw_only=True)
class CircuitStateChanged(Event):
    """
    A circuit breaker changed state; emitted once per real transition.

    Manual control (``force_open()``, ``disable()``, ``metrics_only()``)
    emits this class itself; the automatic transitions emit the
    subclasses :class:`CircuitOpened`, :class:`CircuitHalfOpened` and
    :class:`CircuitClosed` (``reset()`` emits :class:`CircuitClosed`).

    Attributes:
        previous: The state it left.
        state: The state it entered.

    .. versionadded:: 0.1.0
    """

    previous: CircuitState
    state: CircuitState


@attrs.frozen(kw_only=True)
class CircuitOpened(CircuitStateChanged):
    """
    A circuit breaker opened (from CLOSED or HALF_OPEN).

    Attributes:
        recovery_time: How long it stays open before a trial call, in
            seconds.

    .. versionadded:: 0.1.0
    """

    recovery_time: float


@attrs.frozen(kw_only=True)
class CircuitHalfOpened(CircuitStateChanged):
    """
    A circuit breaker's open period ended: trial calls may run.

    .. versionadded:: 0.1.0
    """


@attrs.frozen(kw_only=True)
class CircuitClosed(CircuitStateChanged):
    """
    A circuit breaker closed (its trials succeeded, or it was reset).

    .. versionadded:: 0.1.0
    """


# --- bulkhead, timeout, fallback ---


@attrs.frozen(kw_only=True)
class TimeoutExceeded(Event):
    """
    A :class:`~stalwart.Timeout` gave up on a call at its deadline.

    Attributes:
        timeout: The limit, in seconds.

    .. versionadded:: 0.1.0
    """

    timeout: float


@attrs.frozen(kw_only=True)
class FallbackUsed(Event):
    """
    A :class:`~stalwart.Fallback` replaced the outcome of a call.

    Attributes:
        error: The exception that caused it, or ``None``.
        result: The result that caused it (``None`` when *error* is set).

    .. versionadded:: 0.1.0
    """

    error: BaseException | None
    result: object
