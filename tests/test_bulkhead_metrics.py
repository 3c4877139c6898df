"""
The bulkheads' metrics against the real libraries, after a scripted
scenario on a FakeClock (as the breaker's are tested in test_metrics): the
Prometheus text exposition of a CollectorRegistry and the OpenTelemetry
SDK's in-memory reader, with exact values, the queue-wait histogram
included.
"""

from __future__ import annotations

import asyncio

from typing import Any

import pytest

import stalwart

from stalwart.testing import FakeClock


prometheus_client = pytest.importorskip("prometheus_client")
otel_sdk = pytest.importorskip("opentelemetry.sdk.metrics")

from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from prometheus_client import CollectorRegistry  # noqa: E402

from stalwart import otel, prometheus  # noqa: E402
from test_metrics import exposition, otel_points  # noqa: E402


def play(bulkhead: Any, clock: FakeClock, face: Any = None) -> None:
    """
    The scenario: one call of 0.2 s that succeeds; one that waits in the
    queue for it, then fails after 0.05 s; one refused (the queue is full).
    """
    face = bulkhead if face is None else face

    async def work(seconds: float, fail: bool) -> None:
        await clock.asleep(seconds)
        if fail:
            raise ValueError

    async def main() -> None:
        first = asyncio.ensure_future(face.acall(work, 0.2, False))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(face.acall(work, 0.05, True))
        await asyncio.sleep(0)
        with pytest.raises(stalwart.BulkheadFullError):
            await face.acall(work, 0.0, False)
        await first
        with pytest.raises(ValueError):
            await second

    asyncio.run(main())


def _histogram(
    metric: str, labels: str, counts: list[float], total: str
) -> str:
    """
    The exposition lines of one histogram series with the default
    duration buckets.
    """
    bounds = [
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "2.5",
        "5.0",
        "10.0",
        "+Inf",
    ]
    lines = [
        f'{metric}_bucket{{le="{le}",{labels}}} {count}'
        for le, count in zip(bounds, counts, strict=True)
    ]
    lines.append(f"{metric}_count{{{labels}}} {counts[-1]}")
    lines.append(f"{metric}_sum{{{labels}}} {total}")
    return "\n".join(lines) + "\n"


def _durations(primitive: str) -> str:
    labels = f'name="db",outcome="{{}}",primitive="{primitive}"'
    return (
        "# HELP stalwart_call_duration_seconds How long calls took, by"
        " outcome.\n"
        "# TYPE stalwart_call_duration_seconds histogram\n"
        + _histogram(
            "stalwart_call_duration_seconds",
            labels.format("success"),
            [0.0] * 5 + [1.0] * 7,
            "0.2",
        )
        + _histogram(
            "stalwart_call_duration_seconds",
            labels.format("failure"),
            [0.0] * 3 + [1.0] * 9,
            "0.04999999999999999",
        )
    )


def _waits(primitive: str) -> str:
    return (
        "# HELP stalwart_queue_wait_seconds How long callers waited to be"
        " admitted (queue, reservation, checkout).\n"
        "# TYPE stalwart_queue_wait_seconds histogram\n"
        + _histogram(
            "stalwart_queue_wait_seconds",
            f'name="db",primitive="{primitive}"',
            [1.0] * 5 + [2.0] * 7,
            "0.2",
        )
    )


class TestBulkhead:
    def test_prometheus_exposition(self):
        """
        After the scenario the exposition holds exactly the bulkhead's
        gauges and refusals, read from its statistics, and the histograms
        fed by its per-call events: durations by outcome and queue waits.
        """
        clock = FakeClock()
        bulkhead = stalwart.Bulkhead(
            max_concurrent=1, max_queue=1, name="db", clock=clock
        )
        registry = CollectorRegistry()
        prometheus.instrument(bulkhead, registry=registry)
        play(bulkhead, clock)

        assert (
            "# HELP stalwart_calls_total Calls by outcome: success, failure,"
            " ignored, rejected.\n"
            "# TYPE stalwart_calls_total counter\n"
            'stalwart_calls_total{name="db",outcome="rejected",'
            'primitive="bulkhead"} 1.0\n'
            "# HELP stalwart_in_flight Calls running now.\n"
            "# TYPE stalwart_in_flight gauge\n"
            'stalwart_in_flight{name="db",primitive="bulkhead"} 0.0\n'
            "# HELP stalwart_queued Callers waiting now.\n"
            "# TYPE stalwart_queued gauge\n"
            'stalwart_queued{name="db",primitive="bulkhead"} 0.0\n'
            + _durations("bulkhead")
            + _waits("bulkhead")
        ) == exposition(registry)

    def test_opentelemetry_points(self):
        """
        The in-memory reader sees the same scenario.
        """
        clock = FakeClock()
        bulkhead = stalwart.Bulkhead(
            max_concurrent=1, max_queue=1, name="db", clock=clock
        )
        reader = InMemoryMetricReader()
        provider = otel_sdk.MeterProvider(metric_readers=[reader])
        otel.instrument(bulkhead, meter_provider=provider)
        play(bulkhead, clock)
        points = otel_points(reader)
        db = (("stalwart.name", "db"), ("stalwart.primitive", "bulkhead"))

        assert [
            ((db[0], ("stalwart.outcome", "rejected"), db[1]), 1)
        ] == points["stalwart.calls"]
        assert [(db, 0)] == points["stalwart.in_flight"]
        assert [(db, 0)] == points["stalwart.queued"]
        assert [
            (db, (2, 0.2, (1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)))
        ] == points["stalwart.queue.wait"]
        durations = dict(points["stalwart.call.duration"])
        assert (1, 0.2) == durations[
            (db[0], ("stalwart.outcome", "success"), db[1])
        ][:2]
        assert (1, 0.05) == durations[
            (db[0], ("stalwart.outcome", "failure"), db[1])
        ][:2]


class TestAdaptiveBulkhead:
    def test_prometheus_exposition(self):
        """
        The adaptive bulkhead exports what every bulkhead does, plus its
        current limit and the calls it counted as dropped.
        """
        clock = FakeClock()
        bulkhead = stalwart.AdaptiveBulkhead(
            min_limit=1,
            max_limit=1,
            algorithm=stalwart.AIMDLimit(),
            drop_on=ValueError,
            max_queue=1,
            name="db",
            clock=clock,
        )
        registry = CollectorRegistry()
        prometheus.instrument(bulkhead, registry=registry)
        play(bulkhead, clock)

        assert (
            "# HELP stalwart_calls_total Calls by outcome: success, failure,"
            " ignored, rejected.\n"
            "# TYPE stalwart_calls_total counter\n"
            'stalwart_calls_total{name="db",outcome="rejected",'
            'primitive="adaptive_bulkhead"} 1.0\n'
            "# HELP stalwart_in_flight Calls running now.\n"
            "# TYPE stalwart_in_flight gauge\n"
            'stalwart_in_flight{name="db",primitive="adaptive_bulkhead"} 0.0\n'
            "# HELP stalwart_queued Callers waiting now.\n"
            "# TYPE stalwart_queued gauge\n"
            'stalwart_queued{name="db",primitive="adaptive_bulkhead"} 0.0\n'
            "# HELP stalwart_concurrency_limit How many calls an adaptive"
            " bulkhead lets in at once now.\n"
            "# TYPE stalwart_concurrency_limit gauge\n"
            'stalwart_concurrency_limit{name="db",'
            'primitive="adaptive_bulkhead"} 1.0\n'
            "# HELP stalwart_dropped_total Calls that signalled overload"
            " (timeouts, refusals further down, drop_on, drop_result).\n"
            "# TYPE stalwart_dropped_total counter\n"
            'stalwart_dropped_total{name="db",'
            'primitive="adaptive_bulkhead"} 1.0\n'
            + _durations("adaptive_bulkhead")
            + _waits("adaptive_bulkhead")
        ) == exposition(registry)

    def test_opentelemetry_points(self):
        """
        The in-memory reader sees the limit and the drops.
        """
        clock = FakeClock()
        bulkhead = stalwart.AdaptiveBulkhead(
            min_limit=1,
            max_limit=1,
            algorithm=stalwart.AIMDLimit(),
            drop_on=ValueError,
            max_queue=1,
            name="db",
            clock=clock,
        )
        reader = InMemoryMetricReader()
        provider = otel_sdk.MeterProvider(metric_readers=[reader])
        otel.instrument(bulkhead, meter_provider=provider)
        play(bulkhead, clock)
        points = otel_points(reader)
        db = (
            ("stalwart.name", "db"),
            ("stalwart.primitive", "adaptive_bulkhead"),
        )

        assert [(db, 1)] == points["stalwart.concurrency_limit"]
        assert [(db, 1)] == points["stalwart.dropped"]
        assert (2, 0.2) == points["stalwart.queue.wait"][0][1][:2]


class TestWeightedBulkhead:
    def test_prometheus_exposition(self):
        """
        The weighted bulkhead exports what every bulkhead does, plus the
        weight in flight and queued.
        """
        clock = FakeClock()
        bulkhead = stalwart.WeightedBulkhead(
            max_weight=4, max_queue=1, name="db", clock=clock
        )
        registry = CollectorRegistry()
        prometheus.instrument(bulkhead, registry=registry)
        play(bulkhead, clock, bulkhead.hold(3))

        assert (
            "# HELP stalwart_calls_total Calls by outcome: success, failure,"
            " ignored, rejected.\n"
            "# TYPE stalwart_calls_total counter\n"
            'stalwart_calls_total{name="db",outcome="rejected",'
            'primitive="weighted_bulkhead"} 1.0\n'
            "# HELP stalwart_in_flight Calls running now.\n"
            "# TYPE stalwart_in_flight gauge\n"
            'stalwart_in_flight{name="db",primitive="weighted_bulkhead"} 0.0\n'
            "# HELP stalwart_queued Callers waiting now.\n"
            "# TYPE stalwart_queued gauge\n"
            'stalwart_queued{name="db",primitive="weighted_bulkhead"} 0.0\n'
            "# HELP stalwart_weight Units of a weighted bulkhead, by state:"
            " in_flight, queued.\n"
            "# TYPE stalwart_weight gauge\n"
            'stalwart_weight{name="db",primitive="weighted_bulkhead",'
            'state="in_flight"} 0.0\n'
            'stalwart_weight{name="db",primitive="weighted_bulkhead",'
            'state="queued"} 0.0\n'
            + _durations("weighted_bulkhead")
            + _waits("weighted_bulkhead")
        ) == exposition(registry)

    def test_weight_while_held(self):
        """
        The weight gauges read the units held and asked for now.
        """
        clock = FakeClock()
        bulkhead = stalwart.WeightedBulkhead(
            max_weight=4, max_queue=1, name="db", clock=clock
        )
        registry = CollectorRegistry()
        prometheus.instrument(bulkhead, registry=registry)

        async def main() -> str:
            async with bulkhead.hold(3):
                waiter = asyncio.ensure_future(bulkhead.aacquire(2))
                await asyncio.sleep(0)
                text = exposition(registry)
                waiter.cancel()
                return text

        text = asyncio.run(main())

        assert (
            'stalwart_weight{name="db",primitive="weighted_bulkhead",'
            'state="in_flight"} 3.0'
        ) in text
        assert (
            'stalwart_weight{name="db",primitive="weighted_bulkhead",'
            'state="queued"} 2.0'
        ) in text


def test_hold_in_a_pipeline_reports_its_bulkhead():
    """
    A pipeline with a weighted hold as a stage reports the hold's
    bulkhead: its statistics, and the histograms of its per-call events.
    """
    clock = FakeClock()
    bulkhead = stalwart.WeightedBulkhead(max_weight=4, name="db", clock=clock)
    hold = bulkhead.hold(3)
    pipeline = stalwart.Pipeline(hold, name="policy")
    registry = CollectorRegistry()
    prometheus.instrument(pipeline, registry=registry)
    pipeline.call(lambda: None)
    text = exposition(registry)

    assert hold.statistics() == bulkhead.statistics()
    assert pipeline.statistics().stages["db"] == (bulkhead.statistics())
    assert (
        'stalwart_queue_wait_seconds_count{name="db",'
        'primitive="weighted_bulkhead"} 1.0'
    ) in text
    hook = bulkhead._live.all[0]
    hold.remove_hook(hook)
    assert [] == bulkhead._live.all
    hold.add_hook(hook)
    assert [hook] == bulkhead._live.all
