"""
Prometheus metrics for stalwart's primitives (the ``stalwart[prometheus]``
extra: ``prometheus-client``).

One call instruments a primitive, a pipeline (its stages) or a
:class:`~stalwart.Registry` (every primitive it holds, now and later)::

    from stalwart.prometheus import instrument

    instrument(registry)          # on prometheus_client.REGISTRY

Counters and gauges are read from each primitive's ``statistics()`` when
Prometheus scrapes; histograms are fed by a per-call hook.  The metrics are
listed in ``docs/operations.md``: ``stalwart_..._total`` counters, base
units (seconds), and ``primitive`` and ``name`` labels (plus ``key`` for
the breakers of a :class:`~stalwart.KeyedCircuitBreaker`, when asked).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import threading
import weakref

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
)
from prometheus_client.core import (
    Metric as PromMetric,
)
from prometheus_client.registry import Collector

from ._metrics import (
    ATTEMPT_BUCKETS,
    DURATION_BUCKETS,
    METRICS,
    Labels,
    Metric,
    Tracker,
)


__all__ = ["StalwartCollector", "instrument"]


class StalwartCollector(Collector):
    """
    A Prometheus collector of the primitives it was given.

    Register it in a :class:`~prometheus_client.CollectorRegistry` (or let
    :func:`instrument` do it) and :meth:`add` primitives, pipelines or
    registries to it.

    .. versionadded:: 0.2.0
    """

    def __init__(self) -> None:
        self._tracker = Tracker(self._observe)
        self._lock = threading.Lock()
        self._histograms: dict[str, Histogram] = {}
        self._children: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}

    def add(self, target: object, *, per_key: bool = False) -> None:
        """
        Collect *target*'s metrics: a primitive, a pipeline or a registry.

        Args:
            target: What to instrument.
            per_key: Also export each key's breaker of a
                :class:`~stalwart.KeyedCircuitBreaker`, with a ``key``
                label (one series per key: mind the cardinality).

        Raises:
            TypeError: If *target* has no ``statistics()``.

        .. versionadded:: 0.2.0
        """
        self._tracker.add(target, per_key)

    def _observe(self, metric: Metric, labels: Labels, value: float) -> None:
        key = (metric.key, tuple(labels.items()))
        child = self._children.get(key)
        if child is None:
            with self._lock:
                histogram = self._histograms.get(metric.key)
                if histogram is None:
                    histogram = self._histograms[metric.key] = Histogram(
                        metric.prometheus,
                        metric.description,
                        labelnames=list(labels),
                        buckets=(
                            ATTEMPT_BUCKETS
                            if metric.key == "retry_attempts"
                            else DURATION_BUCKETS
                        ),
                        registry=None,
                    )
                child = histogram.labels(**labels)
                self._children[key] = child
        child.observe(value)

    def describe(self) -> list[PromMetric]:
        """
        Describe nothing ahead of time: the series depend on the
        primitives added later.
        """
        return []

    def collect(self) -> Iterator[PromMetric]:
        """
        Read every primitive's statistics now, and the histograms.
        """
        families: dict[str, PromMetric] = {}
        for metric, labels, value in self._tracker.samples():
            family = families.get(metric.key)
            if family is None:
                family = families[metric.key] = _family(metric)
            sample = metric.prometheus
            family.add_sample(sample, labels, value)
        for metric in METRICS:
            if metric.key in families:
                yield families[metric.key]
        with self._lock:
            histograms = [
                self._histograms[m.key]
                for m in METRICS
                if m.key in self._histograms
            ]
        for histogram in histograms:
            yield from histogram.collect()


def _family(metric: Metric) -> PromMetric:
    if metric.type == "counter":
        return CounterMetricFamily(metric.prometheus, metric.description)
    return GaugeMetricFamily(metric.prometheus, metric.description)


_COLLECTORS: weakref.WeakKeyDictionary[
    CollectorRegistry, StalwartCollector
] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def instrument(
    target: object,
    *,
    registry: CollectorRegistry = REGISTRY,
    per_key: bool = False,
) -> StalwartCollector:
    """
    Export *target*'s metrics on *registry*: a primitive, a pipeline, or a
    :class:`~stalwart.Registry` (every primitive it holds, now and later).

    The first call for a registry registers a :class:`StalwartCollector`
    in it; later calls add to that one.  Instrumenting the same primitive
    twice changes nothing.

    Args:
        target: What to instrument.
        registry: The Prometheus registry; the default one
            (``prometheus_client.REGISTRY``) unless given.
        per_key: Export each key's breaker of a keyed breaker with a
            ``key`` label.

    Returns:
        The collector of *registry*.

    .. versionadded:: 0.2.0
    """
    with _LOCK:
        collector = _COLLECTORS.get(registry)
        if collector is None:
            collector = _COLLECTORS[registry] = StalwartCollector()
            registry.register(collector)
    collector.add(target, per_key=per_key)
    return collector
