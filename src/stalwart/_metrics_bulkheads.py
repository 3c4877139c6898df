"""
What the weighted and adaptive bulkheads export as metrics: their rows of
the metric table and the readers of their statistics, in the shape of
:mod:`stalwart._metrics` (to be merged into its ``METRICS`` and
``READERS``; until then, nothing reads them).

Both export what every bulkhead does (calls in flight, callers queued,
calls rejected; the queue-wait and call-duration histograms come from
their per-call events), plus: the adaptive bulkhead's current limit and
its dropped calls, and the weighted bulkhead's weight in flight and
queued.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

from ._metrics import BY_KEY, Labels, Metric, Sample


METRICS: Final = (
    Metric(
        "concurrency_limit",
        prometheus="stalwart_concurrency_limit",
        otel="stalwart.concurrency_limit",
        type="updown",
        unit="{call}",
        labels=(),
        description="How many calls an adaptive bulkhead lets in at once now.",
        source="statistics: adaptive bulkheads",
    ),
    Metric(
        "dropped",
        prometheus="stalwart_dropped_total",
        otel="stalwart.dropped",
        type="counter",
        unit="{call}",
        labels=(),
        description="Calls that signalled overload (timeouts, refusals"
        " further down, drop_on, drop_result).",
        source="statistics: adaptive bulkheads",
    ),
    Metric(
        "weight",
        prometheus="stalwart_weight",
        otel="stalwart.weight",
        type="updown",
        unit="{unit}",
        labels=("state",),
        description="Units of a weighted bulkhead, by state: in_flight,"
        " queued.",
        source="statistics: weighted bulkheads",
    ),
)
"""The rows these bulkheads add to the metric table."""

_BY_KEY: Final = {**BY_KEY, **{metric.key: metric for metric in METRICS}}


def _samples(
    record: object, base: Labels, *pairs: tuple[str, str, tuple[str, ...]]
) -> Iterator[Sample]:
    """
    Yield a sample per (metric key, record field, label values).
    """
    for key, field, values in pairs:
        metric = _BY_KEY[key]
        labels = {**base, **dict(zip(metric.labels, values, strict=True))}
        yield metric, labels, float(getattr(record, field))


_PAIRS: Final = {
    "adaptive_bulkhead": (
        ("in_flight", "in_flight", ()),
        ("queued", "queued", ()),
        ("calls", "refused", ("rejected",)),
        ("concurrency_limit", "limit", ()),
        ("dropped", "dropped", ()),
    ),
    "weighted_bulkhead": (
        ("in_flight", "in_flight", ()),
        ("queued", "queued", ()),
        ("calls", "refused", ("rejected",)),
        ("weight", "weight", ("in_flight",)),
        ("weight", "queued_weight", ("queued",)),
    ),
}
"""What each kind exports: (metric key, statistics field, label values)."""


def _reader(
    pairs: tuple[tuple[str, str, tuple[str, ...]], ...],
) -> Callable[[Any, Labels], Iterator[Sample]]:
    def read(record: Any, base: Labels) -> Iterator[Sample]:
        return _samples(record, base, *pairs)

    return read


READERS: Final[dict[str, Callable[[Any, Labels], Iterator[Sample]]]] = {
    kind: _reader(pairs) for kind, pairs in _PAIRS.items()
}
"""The readers of these bulkheads' statistics, by kind."""
