"""
Event records and the hooks that receive them.

Every primitive takes ``hooks=``: callables that receive frozen event
records.  Hooks run outside every lock, after the decision they report was
made.  A hook that raises an :class:`Exception` is logged on the
``stalwart`` logger and never breaks the protected call.

A primitive whose events must reach its hooks in the order they happened,
whichever thread made them, posts them to a :class:`Delivery`.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import threading

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import attrs

from ._core.circuit import CircuitState
from ._errors import RejectedError


logger = logging.getLogger("stalwart")

# The name of the Pipeline whose stage is running, set by the pipeline
# only while it runs a stage of its own (and only when a stage has hooks):
# an event built then carries it.  Read once per event built, so code that
# builds no event pays nothing for it.
running_pipeline: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "stalwart_pipeline", default=None
)


@attrs.frozen(kw_only=True)
class Event:
    """
    The base of every event.

    Attributes:
        primitive_name: The ``name`` of the primitive that emitted it.
        at: The time of the event, read from the primitive's clock.
        pipeline: The ``name`` of the :class:`~stalwart.Pipeline` whose
            stage emitted it, or ``None`` for a primitive used on its own
            (or inside the function a pipeline guards).  Set when the
            event is built.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0 *pipeline*.
    """

    primitive_name: str
    at: float
    # Left out of the repr, so events outside pipelines read as before;
    # LoggingHook adds it when it is set.
    pipeline: str | None = attrs.field(
        factory=running_pipeline.get, repr=False
    )


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


def _not_an_event(item: object) -> Event:
    msg = f"posted {item!r}, which is not an Event, without a render="
    raise TypeError(msg)


class Delivery:
    """
    Deliver one primitive's events to its hooks in the order they were
    posted, without a lock held across a hook.

    The primitive posts under its own lock (:meth:`post`, or a core
    appending to :attr:`queue` directly), so the queue's order is the
    order in which its decisions were made: the queue is the sequence.  A
    decision made without the lock (a lock-free refusal) is posted right
    after it is made: after every event it could have observed.
    Once its lock is released it calls :meth:`deliver`.  One thread at a
    time holds the right to deliver: it runs the hooks on every queued
    event, oldest first, until the queue is empty.  A thread that finds
    the right taken returns at once, and the holder delivers its events
    too, after the ones before them; so under contention a call may
    return before its own events reached the hooks (they will, in order,
    before the holder returns).  Without contention a call's events are
    delivered before it returns.  A hook that calls back into its
    primitive (making new events) has them delivered after it returns,
    by the same loop.

    A hook that raises an :class:`Exception` is logged and delivery goes
    on.  A :class:`BaseException` (a ``KeyboardInterrupt`` landing in a
    hook) stops this delivery and propagates from :meth:`deliver`; the
    events still queued go to the hooks at the next :meth:`deliver`.

    Args:
        hooks: The hooks, called in order for each event.
        render: Turns a posted item that is not yet an :class:`Event`
            (such as a core's compact transition record) into one; it runs
            outside the lock, at delivery.
    """

    __slots__ = ("_hooks", "_render", "_right", "queue")

    def __init__(
        self,
        hooks: Iterable[Hook],
        render: Callable[[Any], Event] | None = None,
    ) -> None:
        self._hooks = tuple(hooks)
        self._render = render or _not_an_event
        self._right = threading.Lock()
        self.queue: collections.deque[Any] = collections.deque()
        """Posted items, oldest first; append under the primitive's lock."""

    def post(self, item: object) -> None:
        """
        Queue *item* (an :class:`Event`, or what *render* turns into one).
        """
        self.queue.append(item)

    def deliver(self) -> None:
        """
        Run the hooks on every queued item, in order, unless another thread
        is doing so (it will deliver them).

        Raises:
            BaseException: What a hook raised that is not an
                :class:`Exception`.
        """
        queue, right = self.queue, self._right
        # Re-checked after the right is given back: an item posted by a
        # thread that found the right taken just before it was given back
        # is then delivered here.
        while queue:
            if not right.acquire(blocking=False):
                return
            try:
                while queue:
                    item = queue.popleft()
                    if not isinstance(item, Event):
                        item = self._render(item)
                    emit(self._hooks, item)
            finally:
                right.release()


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

    Rejections log at ``WARNING``, everything else at ``INFO``.  An event
    sent by a stage of a :class:`~stalwart.Pipeline` is logged with the
    pipeline's name.

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
        if event.pipeline is None:
            self.logger.log(level, "%s", event)
        else:
            self.logger.log(level, "%s in pipeline %r", event, event.pipeline)


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


# --- chaos ---


@attrs.frozen(kw_only=True)
class ChaosInjected(Event):
    """
    A :class:`~stalwart.Chaos` is about to inject something into a call;
    sent before the injection takes effect (before the behavior runs, the
    latency is slept, the fault is raised or the result returned).

    Attributes:
        call_number: The call's number among the calls the chaos was
            enabled for, ``1`` for the first.
        kinds: What is injected, in the order applied: some of
            ``"behavior"``, ``"latency"``, then ``"fault"`` or
            ``"result"``.
        fault: The exception about to be raised, or ``None``.
        result: The result about to be returned instead of the call's
            (``None`` unless *kinds* holds ``"result"``).
        latency: The delay about to be added, in seconds, or ``None``.

    .. versionadded:: 0.2.0
    """

    call_number: int
    kinds: tuple[str, ...]
    fault: BaseException | None
    result: object
    latency: float | None


# --- bounded buffer, resource pool ---


@attrs.frozen(kw_only=True)
class ItemDropped(Event):
    """
    A :class:`~stalwart.BoundedBuffer` dropped an item because it was full.

    Attributes:
        item: The item dropped: the new one (``"drop_newest"``) or the
            oldest one in the buffer (``"drop_oldest"``).
        policy: The buffer's ``when_full`` policy.

    .. versionadded:: 0.2.0
    """

    item: object
    policy: str


@attrs.frozen(kw_only=True)
class ResourceCreated(Event):
    """
    A :class:`~stalwart.ResourcePool` created a resource with its factory.

    Attributes:
        resource: The new resource.

    .. versionadded:: 0.2.0
    """

    resource: object


@attrs.frozen(kw_only=True)
class ResourceClosed(Event):
    """
    A :class:`~stalwart.ResourcePool` closed a resource (with its
    ``dispose`` callable, if any) and forgot it.

    Attributes:
        resource: The resource.
        reason: ``"broken"`` (given back as broken), ``"invalid"`` (failed
            validation at checkout), ``"idle"`` (idle longer than
            ``max_idle``), ``"lifetime"`` (older than ``max_lifetime``) or
            ``"closed"`` (the pool was closed).

    .. versionadded:: 0.2.0
    """

    resource: object
    reason: str
