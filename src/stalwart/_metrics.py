"""
What stalwart exports as metrics, shared by :mod:`stalwart.prometheus` and
:mod:`stalwart.otel`: one table (:data:`METRICS`), the readers that turn a
statistics record into samples at collection time, and the listener that
turns per-call events into histogram observations.

Counters and gauges are read from ``statistics()`` when the exporter
collects (nothing is counted twice and the calls pay nothing); histograms
are fed by a per-call hook attached to each primitive
(:meth:`~stalwart.Observable.add_hook`).  A record field that a primitive
does not report (yet) is simply not exported.
"""

from __future__ import annotations

import threading
import weakref

from collections.abc import Callable, Iterator
from typing import Any, Final

import attrs

from ._events import CallAdmitted, CallFinished, Event
from ._observe import observable
from ._statistics import record_kind


@attrs.frozen
class Metric:
    """
    One exported metric: its name in each ecosystem, type, unit and the
    labels it has beyond ``primitive`` and ``name``.
    """

    key: str
    prometheus: str
    otel: str
    type: str  # "counter", "gauge", "updown" (a gauge of a count), "histogram"
    unit: str
    labels: tuple[str, ...]
    description: str
    source: str  # for the documentation table


def _m(  # noqa: PLR0917  # one table row, read positionally
    key: str,
    type_: str,
    unit: str,
    labels: tuple[str, ...],
    description: str,
    source: str,
    *,
    prometheus: str,
    otel: str,
) -> Metric:
    return Metric(
        key, prometheus, otel, type_, unit, labels, description, source
    )


METRICS: Final = (
    _m(
        "calls",
        "counter",
        "{call}",
        ("outcome",),
        "Calls by outcome: success, failure, ignored, rejected.",
        "statistics: circuit breakers (all four outcomes); bulkheads,"
        " thread pools, limiters, buffers and pools (rejected)",
        prometheus="stalwart_calls_total",
        otel="stalwart.calls",
    ),
    _m(
        "call_duration",
        "histogram",
        "s",
        ("outcome",),
        "How long calls took, by outcome.",
        "per-call events (CallFinished): every primitive that reports them",
        prometheus="stalwart_call_duration_seconds",
        otel="stalwart.call.duration",
    ),
    _m(
        "breaker_state",
        "gauge",
        "1",
        ("state",),
        "1 for the breaker's current state, 0 for the others.",
        "statistics: circuit breakers (per key when asked)",
        prometheus="stalwart_circuit_breaker_state",
        otel="stalwart.circuit_breaker.state",
    ),
    _m(
        "breaker_keys",
        "updown",
        "{key}",
        ("state",),
        "Keys of a keyed breaker, by the state of their breaker.",
        "statistics: keyed circuit breakers",
        prometheus="stalwart_circuit_breaker_keys",
        otel="stalwart.circuit_breaker.keys",
    ),
    _m(
        "breaker_transitions",
        "counter",
        "{transition}",
        ("state",),
        "Transitions, by the state entered.",
        "statistics: circuit breakers",
        prometheus="stalwart_circuit_breaker_transitions_total",
        otel="stalwart.circuit_breaker.transitions",
    ),
    _m(
        "breaker_slow_calls",
        "counter",
        "{call}",
        (),
        "Calls at least slow_call_duration long.",
        "statistics: circuit breakers",
        prometheus="stalwart_circuit_breaker_slow_calls_total",
        otel="stalwart.circuit_breaker.slow_calls",
    ),
    _m(
        "breaker_failure_rate",
        "gauge",
        "1",
        (),
        "Failure rate of the current window (absent below minimum_calls).",
        "statistics: circuit breakers with a window",
        prometheus="stalwart_circuit_breaker_failure_ratio",
        otel="stalwart.circuit_breaker.failure_rate",
    ),
    _m(
        "breaker_slow_call_rate",
        "gauge",
        "1",
        (),
        "Slow-call rate of the current window (absent below minimum_calls).",
        "statistics: circuit breakers with slow_call_rate",
        prometheus="stalwart_circuit_breaker_slow_call_ratio",
        otel="stalwart.circuit_breaker.slow_call_rate",
    ),
    _m(
        "retry_calls",
        "counter",
        "{call}",
        (),
        "Calls started through the retry.",
        "statistics: retries",
        prometheus="stalwart_retry_calls_total",
        otel="stalwart.retry.calls",
    ),
    _m(
        "retry_attempts",
        "histogram",
        "{attempt}",
        (),
        "Attempts per call.",
        "per-call events (CallFinished): retries",
        prometheus="stalwart_retry_attempts",
        otel="stalwart.retry.attempts",
    ),
    _m(
        "retries",
        "counter",
        "{retry}",
        (),
        "Retries made (waits started before another attempt).",
        "statistics: retries",
        prometheus="stalwart_retry_retries_total",
        otel="stalwart.retry.retries",
    ),
    _m(
        "retry_give_ups",
        "counter",
        "{call}",
        ("reason",),
        "Calls that ended on a bad outcome, by reason: attempts, timeout,"
        " deadline, budget, not_retryable.",
        "statistics: retries",
        prometheus="stalwart_retry_give_ups_total",
        otel="stalwart.retry.give_ups",
    ),
    _m(
        "retry_wait",
        "counter",
        "s",
        (),
        "Time spent waiting between attempts.",
        "statistics: retries",
        prometheus="stalwart_retry_wait_seconds_total",
        otel="stalwart.retry.wait",
    ),
    _m(
        "budget_available",
        "gauge",
        "{retry}",
        (),
        "Retries a retry budget would grant now.",
        "statistics: retry budgets",
        prometheus="stalwart_retry_budget_available",
        otel="stalwart.retry_budget.available",
    ),
    _m(
        "budget_refused",
        "counter",
        "{retry}",
        (),
        "Retries a retry budget refused.",
        "statistics: retry budgets",
        prometheus="stalwart_retry_budget_refused_total",
        otel="stalwart.retry_budget.refused",
    ),
    _m(
        "limiter_granted",
        "counter",
        "{request}",
        (),
        "Requests a rate limiter granted (refusals are calls rejected).",
        "statistics: rate limiters",
        prometheus="stalwart_rate_limiter_granted_total",
        otel="stalwart.rate_limiter.granted",
    ),
    _m(
        "limiter_remaining",
        "gauge",
        "{request}",
        (),
        "Permits left for the default key.",
        "statistics: rate limiters",
        prometheus="stalwart_rate_limiter_remaining",
        otel="stalwart.rate_limiter.remaining",
    ),
    _m(
        "limiter_keys",
        "updown",
        "{key}",
        (),
        "Keys whose state a rate limiter holds.",
        "statistics: rate limiters",
        prometheus="stalwart_rate_limiter_keys",
        otel="stalwart.rate_limiter.keys",
    ),
    _m(
        "queue_wait",
        "histogram",
        "s",
        (),
        "How long callers waited to be admitted (queue, reservation,"
        " checkout).",
        "per-call events (CallAdmitted): primitives that make callers wait"
        " (bulkheads, thread pools, rate limiters)",
        prometheus="stalwart_queue_wait_seconds",
        otel="stalwart.queue.wait",
    ),
    _m(
        "in_flight",
        "updown",
        "{call}",
        (),
        "Calls running now.",
        "statistics: bulkheads, thread pools (running), pools (in use)",
        prometheus="stalwart_in_flight",
        otel="stalwart.in_flight",
    ),
    _m(
        "queued",
        "updown",
        "{call}",
        (),
        "Callers waiting now.",
        "statistics: bulkheads, thread pools, pools, buffers (producers"
        " and consumers)",
        prometheus="stalwart_queued",
        otel="stalwart.queued",
    ),
    _m(
        "timeouts",
        "counter",
        "{call}",
        (),
        "Calls given up at their deadline.",
        "statistics: timeouts",
        prometheus="stalwart_timeouts_total",
        otel="stalwart.timeouts",
    ),
    _m(
        "fallbacks",
        "counter",
        "{call}",
        ("cause",),
        "Fallbacks used, by cause: error, result.",
        "statistics: fallbacks",
        prometheus="stalwart_fallbacks_total",
        otel="stalwart.fallbacks",
    ),
    _m(
        "chaos_calls",
        "counter",
        "{call}",
        (),
        "Calls a chaos was enabled for.",
        "statistics: chaos",
        prometheus="stalwart_chaos_calls_total",
        otel="stalwart.chaos.calls",
    ),
    _m(
        "chaos_injected",
        "counter",
        "{call}",
        (),
        "Calls a chaos injected into.",
        "statistics: chaos",
        prometheus="stalwart_chaos_injected_total",
        otel="stalwart.chaos.injected",
    ),
    _m(
        "buffer_depth",
        "updown",
        "{item}",
        (),
        "Items in a bounded buffer now.",
        "statistics: bounded buffers",
        prometheus="stalwart_buffer_depth",
        otel="stalwart.buffer.depth",
    ),
    _m(
        "buffer_items",
        "counter",
        "{item}",
        ("event",),
        "Items by what happened to them: accepted, taken, dropped.",
        "statistics: bounded buffers",
        prometheus="stalwart_buffer_items_total",
        otel="stalwart.buffer.items",
    ),
    _m(
        "pool_resources",
        "updown",
        "{resource}",
        ("state",),
        "Resources of a pool now, by state: idle, in_use.",
        "statistics: resource pools",
        prometheus="stalwart_pool_resources",
        otel="stalwart.pool.resources",
    ),
    _m(
        "pool_lifecycle",
        "counter",
        "{resource}",
        ("event",),
        "Resources created and closed.",
        "statistics: resource pools",
        prometheus="stalwart_pool_resources_total",
        otel="stalwart.pool.lifecycle",
    ),
    _m(
        "concurrency_limit",
        "updown",
        "{call}",
        (),
        "How many calls an adaptive bulkhead lets in at once now.",
        "statistics: adaptive bulkheads",
        prometheus="stalwart_concurrency_limit",
        otel="stalwart.concurrency_limit",
    ),
    _m(
        "dropped",
        "counter",
        "{call}",
        (),
        "Calls that signalled overload (timeouts, refusals further down,"
        " drop_on, drop_result).",
        "statistics: adaptive bulkheads",
        prometheus="stalwart_dropped_total",
        otel="stalwart.dropped",
    ),
    _m(
        "weight",
        "updown",
        "{unit}",
        ("state",),
        "Units of a weighted bulkhead, by state: in_flight, queued.",
        "statistics: weighted bulkheads",
        prometheus="stalwart_weight",
        otel="stalwart.weight",
    ),
)
"""Every metric stalwart exports, in the order of the documented table."""

BY_KEY: Final = {metric.key: metric for metric in METRICS}

DURATION_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
ATTEMPT_BUCKETS: Final = (1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 20.0)

Labels = dict[str, str]
Sample = tuple[Metric, Labels, float]
"""A metric, its labels (``primitive``, ``name``, ``key`` for a key's
breaker, then its own) and its value."""


def _labels(metric: Metric, base: Labels, values: tuple[str, ...]) -> Labels:
    return {**base, **dict(zip(metric.labels, values, strict=True))}


_STATES = (
    "closed",
    "open",
    "half_open",
    "forced_open",
    "disabled",
    "metrics_only",
)


def _value(record: object, field: str) -> float | None:
    value = getattr(record, field, None)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _fields(
    record: object, base: Labels, *pairs: tuple[str, str, tuple[str, ...]]
) -> Iterator[Sample]:
    """
    Yield a sample per (metric key, record field, label values) that the
    record has.
    """
    for key, field, values in pairs:
        value = _value(record, field)
        if value is not None:
            metric = BY_KEY[key]
            yield metric, _labels(metric, base, values), value


def _breaker(record: Any, base: Labels) -> Iterator[Sample]:
    yield from _fields(
        record,
        base,
        ("calls", "successes", ("success",)),
        ("calls", "failures", ("failure",)),
        ("calls", "ignored", ("ignored",)),
        ("calls", "rejected", ("rejected",)),
        ("breaker_slow_calls", "slow_calls", ()),
        ("breaker_failure_rate", "failure_rate", ()),
        ("breaker_slow_call_rate", "slow_call_rate", ()),
    )
    state = getattr(record.state, "value", record.state)
    for candidate in _STATES:
        yield (
            BY_KEY["breaker_state"],
            {**base, "state": candidate},
            1.0 if candidate == state else 0.0,
        )
    for entered, count in getattr(record, "transitions", {}).items():
        yield (
            BY_KEY["breaker_transitions"],
            {**base, "state": entered},
            float(count),
        )


def _keyed(record: Any, base: Labels, per_key: bool) -> Iterator[Sample]:
    yield from _fields(
        record,
        base,
        ("calls", "successes", ("success",)),
        ("calls", "failures", ("failure",)),
        ("calls", "ignored", ("ignored",)),
        ("calls", "rejected", ("rejected",)),
        ("breaker_slow_calls", "slow_calls", ()),
    )
    for state, count in record.states.items():
        yield BY_KEY["breaker_keys"], {**base, "state": state}, float(count)
    if per_key:
        for key, stats in record.breakers.items():
            yield from _breaker(stats, {**base, "key": key})


def _retry(record: Any, base: Labels) -> Iterator[Sample]:
    yield from _fields(
        record,
        base,
        ("retry_calls", "calls", ()),
        ("retries", "retries", ()),
        ("retry_wait", "total_wait", ()),
    )
    for reason, count in getattr(record, "give_ups_by_reason", {}).items():
        yield (
            BY_KEY["retry_give_ups"],
            {**base, "reason": reason},
            float(count),
        )


def _plain(
    *pairs: tuple[str, str, tuple[str, ...]],
) -> Callable[[Any, Labels], Iterator[Sample]]:
    def read(record: Any, base: Labels) -> Iterator[Sample]:
        return _fields(record, base, *pairs)

    return read


_REJECTED = ("calls", "refused", ("rejected",))

READERS: Final[dict[str, Callable[[Any, Labels], Iterator[Sample]]]] = {
    "circuit_breaker": _breaker,
    "retry": _retry,
    "retry_budget": _plain(
        ("budget_available", "available", ()),
        ("budget_refused", "refused", ()),
    ),
    "bulkhead": _plain(
        ("in_flight", "in_flight", ()), ("queued", "queued", ()), _REJECTED
    ),
    "adaptive_bulkhead": _plain(
        ("in_flight", "in_flight", ()),
        ("queued", "queued", ()),
        _REJECTED,
        ("concurrency_limit", "limit", ()),
        ("dropped", "dropped", ()),
    ),
    "weighted_bulkhead": _plain(
        ("in_flight", "in_flight", ()),
        ("queued", "queued", ()),
        _REJECTED,
        ("weight", "weight", ("in_flight",)),
        ("weight", "queued_weight", ("queued",)),
    ),
    "thread_pool_bulkhead": _plain(
        ("in_flight", "running", ()), ("queued", "queued", ()), _REJECTED
    ),
    "rate_limiter": _plain(
        ("limiter_granted", "granted", ()),
        _REJECTED,
        ("limiter_keys", "keys", ()),
        ("limiter_remaining", "remaining", ()),
    ),
    "timeout": _plain(("timeouts", "timeouts", ())),
    "fallback": _plain(
        ("fallbacks", "on_error", ("error",)),
        ("fallbacks", "on_result", ("result",)),
    ),
    "chaos": _plain(
        ("chaos_calls", "calls", ()), ("chaos_injected", "injected", ())
    ),
    "bounded_buffer": _plain(
        ("buffer_depth", "depth", ()),
        ("buffer_items", "accepted", ("accepted",)),
        ("buffer_items", "taken", ("taken",)),
        ("buffer_items", "dropped", ("dropped",)),
        ("queued", "producers_waiting", ()),
        ("queued", "consumers_waiting", ()),
        _REJECTED,
    ),
    "resource_pool": _plain(
        ("pool_resources", "idle", ("idle",)),
        ("pool_resources", "in_use", ("in_use",)),
        ("in_flight", "in_use", ()),
        ("queued", "waiting", ()),
        ("pool_lifecycle", "created", ("created",)),
        ("pool_lifecycle", "closed", ("closed",)),
        _REJECTED,
    ),
}


def record_samples(
    record: object, name: str, per_key: bool = False
) -> Iterator[Sample]:
    """
    Yield the samples of one statistics *record* of a primitive named
    *name* (the record's own ``name`` wins).
    """
    kind = record_kind(record)
    own = getattr(record, "name", None)
    base = {"primitive": kind, "name": own if isinstance(own, str) else name}
    if kind == "keyed_circuit_breaker":
        yield from _keyed(record, base, per_key)
        return
    reader = READERS.get(kind)
    if reader is not None:
        yield from reader(record, base)


def sum_queued(samples: Iterator[Sample]) -> Iterator[Sample]:
    """
    Add up samples of one metric with the same labels (a buffer's
    producers and consumers both wait), keeping the first one's order.
    """
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], list[Any]] = {}
    for metric, labels, value in samples:
        key = (metric.key, tuple(labels.items()))
        if key in totals:
            totals[key][2] += value
        else:
            totals[key] = [metric, labels, value]
    for metric, labels, value in totals.values():
        yield metric, labels, value


Observe = Callable[[Metric, Labels, float], None]
"""Records one histogram observation: metric, labels, value."""


@attrs.frozen(eq=False)
class Listener:
    """
    The per-call hook an exporter attaches to a primitive: it turns
    :class:`~stalwart.CallFinished` and :class:`~stalwart.CallAdmitted`
    into histogram observations.
    """

    observe: Observe
    kind: str
    name: str
    per_call: bool = attrs.field(default=True, init=False)

    def __call__(self, event: Event, /) -> None:
        """
        Observe *event*'s duration, attempts or wait.
        """
        base = {"primitive": self.kind, "name": self.name}
        if isinstance(event, CallFinished):
            if event.duration is not None:
                self.observe(
                    BY_KEY["call_duration"],
                    {**base, "outcome": event.outcome},
                    event.duration,
                )
            if event.primitive == "retry":
                self.observe(
                    BY_KEY["retry_attempts"], base, float(event.attempts)
                )
        elif isinstance(event, CallAdmitted):
            self.observe(BY_KEY["queue_wait"], base, event.wait)


@attrs.frozen(eq=False)
class _Target:
    primitive: Any
    name: str
    per_key: bool


class Tracker:
    """
    What one exporter watches: primitives (read at collection time, with a
    :class:`Listener` attached to each that takes hooks) and registries
    (every primitive they hold, now and later).
    """

    def __init__(self, observe: Observe) -> None:
        self._observe = observe
        self._targets: dict[int, _Target] = {}
        self._lock = threading.Lock()
        self._listeners: weakref.WeakKeyDictionary[Any, Listener] = (
            weakref.WeakKeyDictionary()
        )

    def add(self, target: object, per_key: bool = False) -> None:
        """
        Watch *target*: a primitive, a pipeline (each of its stages that
        has statistics, as a primitive of its own: a stage also watched
        on its own, or through a registry, is read once), or anything with
        a ``_subscribe(callback)`` (a registry).
        """
        subscribe = getattr(target, "_subscribe", None)
        if subscribe is not None:
            subscribe(lambda primitive: self.add(primitive, per_key))
            return
        stages = getattr(target, "stages", None)
        if type(stages) is tuple:
            for stage in stages:
                if callable(getattr(stage, "statistics", None)):
                    self.add(stage, per_key)
            return
        if not callable(getattr(target, "statistics", None)):
            msg = f"cannot instrument {target!r}: it has no statistics()"
            raise TypeError(msg)
        name = getattr(target, "name", "<unnamed>")
        with self._lock:
            if id(target) in self._targets:
                return
            self._targets[id(target)] = _Target(target, name, per_key)
        self._listen(target)

    def _listen(self, primitive: object) -> None:
        live = observable(primitive)
        if live is None or primitive in self._listeners:
            return
        kind = record_kind(primitive.statistics())  # type: ignore[attr-defined]  # checked by add()
        listener = Listener(
            self._observe, kind, getattr(primitive, "name", "<unnamed>")
        )
        self._listeners[primitive] = listener
        primitive.add_hook(listener)  # type: ignore[attr-defined]  # an Observable

    def samples(self) -> Iterator[Sample]:
        """
        Yield the samples of every watched primitive, read now.
        """
        with self._lock:
            targets = list(self._targets.values())
        for target in targets:
            yield from sum_queued(
                record_samples(
                    target.primitive.statistics(), target.name, target.per_key
                )
            )
