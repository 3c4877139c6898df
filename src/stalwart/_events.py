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
