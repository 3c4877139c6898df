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
import enum
import logging
import re

from collections.abc import Callable, Iterable
from typing import Any, Protocol, cast

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

    A list (the live hooks of a primitive, see :mod:`stalwart._observe`)
    is copied first: a hook removed meanwhile never makes another one miss
    the event.
    """
    if type(hooks) is list:
        hooks = tuple(hooks)
    for hook in hooks:
        try:
            hook(event)
        except Exception:
            hook_failed(hook, event)


def hook_failed(hook: Hook, event: Event) -> None:
    """
    Log that *hook* raised on *event* (call it from the ``except
    Exception`` clause around the hook call): what :func:`emit` does, for
    the per-call paths that iterate a snapshot of the hooks inline
    (:attr:`stalwart._observe.LiveHooks.calls_now`).
    """
    logger.error(
        "stalwart hook %r failed on %s; the call goes on",
        hook,
        type(event).__name__,
        exc_info=True,  # noqa: LOG014  # called from an except clause
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
        hooks: The hooks, called in order for each event: a tuple, or a
            list (copied at each delivery).
        render: Turns a posted item that is not yet an :class:`Event`
            (such as a core's compact transition record) into one; it runs
            outside the lock, at delivery.
        calls: The hooks that receive per-call events
            (:class:`CallFinished`) instead of *hooks*, likewise.
        live: A primitive's :class:`~stalwart._observe.LiveHooks`, in
            place of *hooks* and *calls*: its snapshots ``all_now`` and
            ``calls_now``, read at each delivery.
    """

    __slots__ = ("_live", "_render", "_right", "queue")

    def __init__(
        self,
        hooks: Iterable[Hook] = (),
        render: Callable[[Any], Event] | None = None,
        calls: Iterable[Hook] = (),
        *,
        live: Snapshots | None = None,
    ) -> None:
        self._live = _Fixed(hooks, calls) if live is None else live
        self._render = render or _not_an_event
        # The right to deliver, a token: taken by pop(), given back by
        # append(), each one atomic list operation (with or without the
        # GIL), and a fifth of a lock's acquire(False) and release().
        self._right = [True]
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
            try:
                right.pop()
            except IndexError:  # another thread delivers
                return
            try:
                while queue:
                    item = queue.popleft()
                    # A CallFinished, the most frequent, skips the tests.
                    if item.__class__ is not CallFinished:
                        if not isinstance(item, Event):
                            item = self._render(item)
                        if not isinstance(item, CallFinished):
                            emit(self._live.all_now, item)
                            continue
                    for hook in self._live.calls_now:
                        try:
                            hook(item)
                        except Exception:
                            hook_failed(hook, item)
            finally:
                right.append(True)

    def send(self, event: CallFinished) -> None:
        """
        Post *event*, made without the primitive's lock, and deliver it:
        at once, without the queue, when nothing is queued and no thread
        delivers (the events another thread posts meanwhile come after
        it, delivered next by this call).

        Raises:
            BaseException: What a hook raised that is not an
                :class:`Exception`.
        """
        queue, right = self.queue, self._right
        if not queue:
            try:
                right.pop()
            except IndexError:  # another thread delivers
                pass
            else:
                try:
                    if not queue:
                        for hook in self._live.calls_now:
                            try:
                                hook(event)
                            except Exception:
                                hook_failed(hook, event)
                    else:  # posted before it: delivered first, below
                        queue.append(event)
                finally:
                    right.append(True)
                if queue:
                    self.deliver()
                return
        queue.append(event)
        self.deliver()


class Snapshots(Protocol):
    """
    The hooks a :class:`Delivery` reads at each delivery.
    """

    @property
    def all_now(self) -> tuple[Hook, ...]:
        """Every hook."""

    @property
    def calls_now(self) -> tuple[Hook, ...]:
        """The hooks that receive per-call events."""


class _Fixed:
    """
    The :class:`Snapshots` of the hooks a :class:`Delivery` was given: a
    tuple as it is, a list copied at each read.
    """

    __slots__ = ("_all", "_calls")

    def __init__(self, hooks: Iterable[Hook], calls: Iterable[Hook]) -> None:
        self._all = hooks if type(hooks) is list else tuple(hooks)
        self._calls = calls if type(calls) is list else tuple(calls)

    @property
    def all_now(self) -> tuple[Hook, ...]:
        return tuple(self._all)

    @property
    def calls_now(self) -> tuple[Hook, ...]:
        return tuple(self._calls)


@attrs.frozen(kw_only=True)
class CallRejected(Event):
    """
    A primitive refused a call; *error* is the exception it raised.

    .. versionadded:: 0.1.0
    """

    error: RejectedError


@attrs.frozen(kw_only=True)
class CallFinished(Event):
    """
    A call through a primitive ended: a **per-call event**, sent only to
    the hooks that asked for them (``add_hook(hook, per_call=True)``, or a
    hook whose ``per_call`` attribute is true, such as
    ``LoggingHook(per_call=True)``).

    Attributes:
        primitive: The kind of primitive, in snake case
            (``"circuit_breaker"``, ``"retry"``...).
        outcome: ``"success"``, ``"failure"``, or ``"ignored"`` (neither:
            an exception the primitive ignores, a ``BaseException`` such
            as a cancellation, a permit given back without an outcome).
        duration: How long the call took, in seconds on the primitive's
            clock, or ``None`` when the call started before per-call
            events were asked for.
        error: The exception the call ended with, if any.
        attempts: How many attempts the call took (more than 1 only
            through a :class:`~stalwart.Retry`).

    .. versionadded:: 0.2.0
    """

    primitive: str
    outcome: str
    duration: float | None
    error: BaseException | None = None
    attempts: int = 1


@attrs.frozen(kw_only=True)
class CallAdmitted(Event):
    """
    A primitive that makes callers wait (a bulkhead's queue, a limiter's
    reservation, a pool's checkout) admitted one: a **per-call event**
    (see :class:`CallFinished`).

    Attributes:
        primitive: The kind of primitive, in snake case.
        wait: How long the caller waited, in seconds (``0.0`` when it was
            admitted at once).

    .. versionadded:: 0.2.0
    """

    primitive: str
    wait: float


# --- building per-call events ---
#
# Per-call events are built on every call while a hook asks for them, and
# the keyword constructor attrs writes sets each field through
# object.__setattr__ (the class is frozen): 0.9 us for a CallFinished.  The
# builders below make the same object four times faster: they fill an
# instance of a *draft* class, a mutable twin of the event class (the same
# slots on the same base, so plain slot stores fill it), then turn it into
# the event class by assigning ``__class__``, which CPython allows between
# classes whose layouts match.  The result is an ordinary instance of the
# event class: equal to, and indistinguishable from, the one the keyword
# constructor builds (the tests compare them field by field).

_new = object.__new__
_pipeline = running_pipeline.get


def _draft(cls: type[Event]) -> type[Any]:
    """
    Return the mutable twin of the frozen event class *cls*.
    """
    return type(
        f"_{cls.__name__}Draft",
        (cls.__mro__[1],),
        {
            "__slots__": cls.__dict__["__slots__"],
            # Both, or the class keeps a slot setattr and stores are slow.
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
        },
    )


_CallFinishedDraft = _draft(CallFinished)
_CallAdmittedDraft = _draft(CallAdmitted)


def call_finished(  # noqa: PLR0917  # positional: built per call
    primitive_name: str,
    at: float,
    primitive: str,
    outcome: str,
    duration: float | None,
    error: BaseException | None = None,
    attempts: int = 1,
) -> CallFinished:
    """
    Build ``CallFinished(primitive_name=..., at=..., ...)``, with
    ``pipeline`` from the running pipeline, as the keyword constructor
    does, at a quarter of its cost.
    """
    event = _new(_CallFinishedDraft)
    event.primitive_name = primitive_name
    event.at = at
    event.pipeline = _pipeline()
    event.primitive = primitive
    event.outcome = outcome
    event.duration = duration
    event.error = error
    event.attempts = attempts
    event.__class__ = CallFinished
    return cast("CallFinished", event)


def call_admitted(
    primitive_name: str, at: float, primitive: str, wait: float
) -> CallAdmitted:
    """
    Build ``CallAdmitted(primitive_name=..., at=..., ...)`` as the keyword
    constructor does: see :func:`call_finished`.
    """
    event = _new(_CallAdmittedDraft)
    event.primitive_name = primitive_name
    event.at = at
    event.pipeline = _pipeline()
    event.primitive = primitive
    event.wait = wait
    event.__class__ = CallAdmitted
    return cast("CallAdmitted", event)


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


# --- adaptive bulkhead ---


@attrs.frozen(kw_only=True)
class LimitChanged(Event):
    """
    An :class:`~stalwart.AdaptiveBulkhead` moved its concurrency limit.

    Attributes:
        limit: The new limit: how many calls may run at once now.
        previous_limit: The limit before.

    .. versionadded:: 0.2.0
    """

    limit: int
    previous_limit: int


# --- shared state ---


@attrs.frozen(kw_only=True)
class StoreUnavailable(Event):
    """
    A primitive whose state lives in a shared store (a
    :class:`~stalwart.redis.RedisStore`) could not reach it in time, and
    made its decision by the store's ``on_unavailable`` policy: sent on
    every such degraded decision.

    Attributes:
        primitive: The kind of primitive (``"rate_limiter"``,
            ``"circuit_breaker"``).
        store: The store's name.
        policy: ``"fail_open"`` (the call was admitted), ``"fail_closed"``
            (refused with :class:`~stalwart.StoreUnavailableError`) or
            ``"raise"`` (the error went to the caller).
        error: The connection error or timeout.

    .. versionadded:: 0.2.0
    """

    primitive: str
    store: str
    policy: str
    error: BaseException


# --- logging ---


_EVENT_KINDS: dict[str, str] = {
    "RetryScheduled": "retry",
    "RetryGaveUp": "retry",
    "RetryBudgetExhausted": "retry",
    "CircuitStateChanged": "circuit_breaker",
    "CircuitOpened": "circuit_breaker",
    "CircuitHalfOpened": "circuit_breaker",
    "CircuitClosed": "circuit_breaker",
    "TimeoutExceeded": "timeout",
    "FallbackUsed": "fallback",
    "ChaosInjected": "chaos",
    "ItemDropped": "bounded_buffer",
    "ResourceCreated": "resource_pool",
    "ResourceClosed": "resource_pool",
    "LimitChanged": "adaptive_bulkhead",
}
# Refusals name their primitive by their error.
_ERROR_KINDS: dict[str, str] = {
    "CircuitOpenError": "circuit_breaker",
    "BulkheadFullError": "bulkhead",
    "RateLimitExceededError": "rate_limiter",
    "TimeoutExceededError": "timeout",
    "RetryExhaustedError": "retry",
    "BufferFullError": "bounded_buffer",
    "BufferEmptyError": "bounded_buffer",
    "PoolExhaustedError": "resource_pool",
}
_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_OPEN_STATES = frozenset({CircuitState.OPEN, CircuitState.FORCED_OPEN})
# Fields logged under another key (or not at all: user objects such as
# results, items and resources may be large or private).
_RENAMED = {"previous": "previous_state", "caused_by": "error"}
_SKIPPED = frozenset(
    {"primitive_name", "primitive", "result", "item", "resource", "pipeline"}
)


def event_kind(event: Event) -> str:
    """
    Return the kind of primitive that sent *event*, in snake case
    (``"primitive"`` when it cannot be told).
    """
    kind = getattr(event, "primitive", None)
    if isinstance(kind, str):
        return kind
    if isinstance(event, CallRejected):
        for cls in type(event.error).__mro__:
            if cls.__name__ in _ERROR_KINDS:
                return _ERROR_KINDS[cls.__name__]
    for cls in type(event).__mro__:
        if cls.__name__ in _EVENT_KINDS:
            return _EVENT_KINDS[cls.__name__]
    return "primitive"


def _plain(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, BaseException):
        return repr(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return str(value)


def event_fields(event: Event) -> dict[str, object]:
    """
    Return *event* as flat fields for a log record's ``extra=``: every key
    starts with ``stalwart_`` (so none clashes with a
    :class:`logging.LogRecord` attribute or a structlog key), states are
    strings, durations seconds, exceptions their ``repr``.
    """
    fields: dict[str, object] = {
        "stalwart_primitive": event_kind(event),
        "stalwart_name": event.primitive_name,
        "stalwart_event": _WORD.sub("_", type(event).__name__).lower(),
    }
    for field in attrs.fields(type(event)):
        if field.name in _SKIPPED:
            continue
        key = _RENAMED.get(field.name, field.name)
        fields[f"stalwart_{key}"] = _plain(getattr(event, field.name))
    if isinstance(event, CallRejected):
        fields["stalwart_retry_after"] = _plain(
            getattr(event.error, "retry_after", None)
        )
    if event.pipeline is not None:
        fields["stalwart_pipeline"] = event.pipeline
    return fields


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:g}s"


def _message(event: Event, kind: str) -> str:  # one line per event
    who = f"{kind} {event.primitive_name!r}"
    if isinstance(event, CallRejected):
        error = event.error
        text = f"{who} rejected a call: {error._reason()}"
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, float | int):
            text += f"; retry after {_seconds(retry_after)}"
        return text
    if isinstance(event, CircuitOpened):
        return (
            f"{who} opened ({event.previous.value} -> open) for"
            f" {_seconds(event.recovery_time)}"
        )
    if isinstance(event, CircuitStateChanged):
        return f"{who} went {event.previous.value} -> {event.state.value}"
    if isinstance(event, RetryScheduled):
        return (
            f"{who} retries after attempt {event.attempt} in"
            f" {_seconds(event.wait)} ({_cause(event.caused_by)})"
        )
    if isinstance(event, RetryGaveUp):
        return (
            f"{who} gave up after attempt {event.attempt} ({event.reason}):"
            f" {_cause(event.caused_by)}"
        )
    if isinstance(event, CallFinished):
        text = f"{who} call ended: {event.outcome}"
        if event.duration is not None:
            text += f" in {_seconds(event.duration)}"
        if event.attempts != 1:
            text += f" after {event.attempts} attempts"
        if event.error is not None:
            text += f" ({event.error!r})"
        return text
    if isinstance(event, CallAdmitted):
        return f"{who} admitted a call after {_seconds(event.wait)}"
    if isinstance(event, TimeoutExceeded):
        return f"{who} gave up on a call after {_seconds(event.timeout)}"
    if isinstance(event, FallbackUsed):
        cause = (
            "a rejected result" if event.error is None else repr(event.error)
        )
        return f"{who} replaced the outcome of a call ({cause})"
    if isinstance(event, ChaosInjected):
        return (
            f"{who} injected {'+'.join(event.kinds)} into call"
            f" {event.call_number}"
        )
    if isinstance(event, ItemDropped):
        return f"{who} dropped an item ({event.policy})"
    if isinstance(event, ResourceCreated):
        return f"{who} created a resource"
    if isinstance(event, ResourceClosed):
        return f"{who} closed a resource ({event.reason})"
    if isinstance(event, StoreUnavailable):
        return (
            f"{who} could not reach store {event.store!r}"
            f" ({event.policy}): {event.error!r}"
        )
    if isinstance(event, LimitChanged):
        return f"{who} moved its limit {event.previous_limit} -> {event.limit}"
    return f"{who}: {type(event).__name__}"


def _cause(error: BaseException | None) -> str:
    return "a rejected result" if error is None else repr(error)


def event_level(event: Event) -> int:
    """
    Return the level :class:`LoggingHook` logs *event* at: ``WARNING`` for
    refusals, give-ups, timeouts, dropped items and a breaker opening;
    ``DEBUG`` for successful calls, admissions, resources created or
    closed in the normal course and a concurrency limit that grew;
    ``INFO`` for the rest.
    """
    if isinstance(
        event,
        CallRejected
        | RetryGaveUp
        | TimeoutExceeded
        | ItemDropped
        | StoreUnavailable,
    ):
        return logging.WARNING
    if isinstance(event, CircuitStateChanged):
        return logging.WARNING if event.state in _OPEN_STATES else logging.INFO
    if isinstance(event, CallFinished):
        return logging.INFO if event.outcome == "failure" else logging.DEBUG
    if isinstance(event, CallAdmitted | ResourceCreated):
        return logging.DEBUG
    if isinstance(event, ResourceClosed):
        return (
            logging.INFO
            if event.reason in {"broken", "invalid"}
            else logging.DEBUG
        )
    if isinstance(event, LimitChanged):
        # AIMD grows its limit by one call after another: only cuts inform.
        return (
            logging.INFO
            if event.limit < event.previous_limit
            else logging.DEBUG
        )
    return logging.INFO


@attrs.frozen
class LoggingHook:
    """
    A hook that logs one line per event on a :mod:`logging` logger.

    The message reads as a sentence (``circuit_breaker 'payments' opened
    (closed -> open) for 30s``) and the event's fields go in ``extra=``,
    so structured handlers (a JSON formatter, structlog's standard-library
    integration) get them as fields: ``stalwart_primitive`` (the kind),
    ``stalwart_name``, ``stalwart_event`` (``circuit_opened``...), then
    the event's own fields (``stalwart_state``, ``stalwart_wait``,
    ``stalwart_retry_after``...) with states as strings, durations in
    seconds and exceptions as their ``repr``.  Every key starts with
    ``stalwart_``, so none clashes with a
    :class:`~logging.LogRecord` attribute (``name`` is the logger's).

    Levels: ``WARNING`` for refusals, give-ups, timeouts, dropped items and
    a breaker opening; ``INFO`` for the other transitions, retries,
    fallbacks, chaos and failed calls; ``DEBUG`` for successful calls.
    An event below the logger's level costs one level check.

    Args:
        logger: The logger to use; the ``stalwart`` logger by default.
        per_call: Also log every call's end (:class:`CallFinished`), the
            full event stream: a line per call, so off by default.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       One readable line with the fields in ``extra=``, at levels by
       event; *per_call*.
    """

    logger: logging.Logger = attrs.field(
        factory=lambda: logging.getLogger("stalwart")
    )
    per_call: bool = attrs.field(default=False, kw_only=True)

    def __call__(self, event: Event, /) -> None:
        """
        Log *event*.
        """
        level = event_level(event)
        if self.logger.isEnabledFor(level):
            text = _message(event, event_kind(event))
            if event.pipeline is not None:
                text = f"{text} in pipeline {event.pipeline!r}"
            self.logger.log(level, "%s", text, extra=event_fields(event))
