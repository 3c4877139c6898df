"""
OpenTelemetry metrics for stalwart's primitives (the ``stalwart[otel]``
extra: ``opentelemetry-api``; install the SDK and an exporter in the
application).

One call instruments a primitive, a pipeline (its stages) or a
:class:`~stalwart.Registry` (every primitive it holds, now and later)::

    from stalwart.otel import instrument

    instrument(registry)          # on the global meter provider

Metric names follow OpenTelemetry's semantic conventions
(``stalwart.calls``, ``stalwart.call.duration`` in ``s``...), with
attributes rather than name suffixes: ``stalwart.primitive``,
``stalwart.name``, and ``stalwart.outcome``, ``stalwart.state``... for
each metric's own.  Counters and gauges are observable instruments whose
callbacks read ``statistics()``; histograms are fed by a per-call hook.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import threading

from collections.abc import Iterable
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from ._metrics import (
    ATTEMPT_BUCKETS,
    DURATION_BUCKETS,
    METRICS,
    Labels,
    Metric,
    Tracker,
)


__all__ = ["OtelInstrumentation", "instrument"]


def _attributes(labels: Labels) -> dict[str, str]:
    return {f"stalwart.{key}": value for key, value in labels.items()}


class OtelInstrumentation:
    """
    The instruments of one meter, and the primitives they read.

    .. versionadded:: 0.2.0
    """

    def __init__(self, meter_provider: MeterProvider | None = None) -> None:
        from importlib.metadata import version  # noqa: PLC0415  # only when instrumenting

        provider = meter_provider or metrics.get_meter_provider()
        meter = provider.get_meter("stalwart", version("stalwart"))
        self._tracker = Tracker(self._observe)
        self._histograms: dict[str, Any] = {}
        for metric in METRICS:
            if metric.type == "histogram":
                self._histograms[metric.key] = meter.create_histogram(
                    metric.otel,
                    unit=metric.unit,
                    description=metric.description,
                    explicit_bucket_boundaries_advisory=list(
                        ATTEMPT_BUCKETS
                        if metric.key == "retry_attempts"
                        else DURATION_BUCKETS
                    ),
                )
                continue
            create = {
                "counter": meter.create_observable_counter,
                "updown": meter.create_observable_up_down_counter,
                "gauge": meter.create_observable_gauge,
            }[metric.type]
            create(
                metric.otel,
                callbacks=[self._callback(metric)],
                unit=metric.unit,
                description=metric.description,
            )

    def add(self, target: object, *, per_key: bool = False) -> None:
        """
        Read *target*'s metrics: a primitive, a pipeline or a registry.

        Args:
            target: What to instrument.
            per_key: Also report each key's breaker of a keyed breaker,
                with a ``stalwart.key`` attribute.

        Raises:
            TypeError: If *target* has no ``statistics()``.

        .. versionadded:: 0.2.0
        """
        self._tracker.add(target, per_key)

    def _callback(self, metric: Metric) -> Any:
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            return [
                Observation(value, _attributes(labels))
                for sample, labels, value in self._tracker.samples()
                if sample.key == metric.key
            ]

        return observe

    def _observe(self, metric: Metric, labels: Labels, value: float) -> None:
        self._histograms[metric.key].record(value, _attributes(labels))


_INSTRUMENTATIONS: dict[int, tuple[object, OtelInstrumentation]] = {}
_LOCK = threading.Lock()


def instrument(
    target: object,
    *,
    meter_provider: MeterProvider | None = None,
    per_key: bool = False,
) -> OtelInstrumentation:
    """
    Report *target*'s metrics through OpenTelemetry: a primitive, a
    pipeline, or a :class:`~stalwart.Registry` (every primitive it holds,
    now and later).

    The instruments are created once per meter provider; later calls add
    to them.

    Args:
        target: What to instrument.
        meter_provider: Where the meter comes from; the global provider
            unless given.
        per_key: Report each key's breaker of a keyed breaker with a
            ``stalwart.key`` attribute.

    Returns:
        The instrumentation of the provider.

    .. versionadded:: 0.2.0
    """
    provider = meter_provider or metrics.get_meter_provider()
    with _LOCK:
        known = _INSTRUMENTATIONS.get(id(provider))
        if known is None or known[0] is not provider:
            known = (provider, OtelInstrumentation(provider))
            _INSTRUMENTATIONS[id(provider)] = known
    known[1].add(target, per_key=per_key)
    return known[1]
