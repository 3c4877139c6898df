"""
The adaptive limits against a simulated downstream (``adaptive_sim``): a
FIFO queue in front of C workers, offered 1.5 times what it can serve, that
loses three quarters of its workers for a while and then gets them back.
The limit must settle near what the downstream can take, follow it down,
grow back once the overload passes, and never leave [min, max].
"""

from __future__ import annotations

import statistics

from collections.abc import Callable

import pytest

from adaptive_sim import Downstream, Phase, Trace, run
from stalwart._core.adaptive import AIMD, Gradient, LimitAlgorithm


SERVICE = 0.1  # seconds per call, per worker
WORKERS = 20  # so the downstream serves 200 calls a second
DEGRADED = 5  # workers left during the overload
RATE = 300.0  # calls offered per second: 1.5 times the capacity
PHASES = [Phase(0.0, WORKERS), Phase(40.0, DEGRADED), Phase(80.0, WORKERS)]
END = 120.0


def _gradient() -> Gradient:
    return Gradient(
        initial=10, min_limit=2, max_limit=200, probe_interval=30.0
    )


def _aimd() -> AIMD:
    return AIMD(initial=10, min_limit=2, max_limit=200)


def _run_gradient(algorithm: LimitAlgorithm) -> Trace:
    return run(
        algorithm,
        phases=PHASES,
        end=END,
        service=SERVICE,
        rate=RATE,
        timeout=0.5,
    )


def _run_aimd(algorithm: LimitAlgorithm) -> Trace:
    # The downstream refuses calls that would wait more than half a
    # service time: AIMD's signal.  It then takes at most 1.5 * workers.
    return run(
        algorithm,
        phases=PHASES,
        end=END,
        service=SERVICE,
        rate=RATE,
        timeout=0.5,
        max_queue_wait=SERVICE / 2,
    )


def _settled(trace: Trace, start: float, end: float, floor: int) -> list[int]:
    """
    The limits from *start* to *end*, leaving out no-load probes.
    """
    return [limit for limit in trace.between(start, end) if limit > floor]


class TestDownstream:
    def test_queueing_latency(self):
        """
        Calls beyond the workers wait their turn: latency grows with the
        concurrency.
        """
        downstream = Downstream(2, 1.0)

        assert [1.0, 1.0, 2.0, 2.0, 3.0] == [
            downstream.arrive(0.0) for _ in range(5)
        ]

    def test_refuses_long_waits(self):
        """
        A call that would wait more than max_queue_wait is refused.
        """
        downstream = Downstream(1, 1.0, max_queue_wait=1.0)

        assert [1.0, 2.0, None] == [downstream.arrive(0.0) for _ in range(3)]

    def test_resize(self):
        """
        Retired workers finish their call; new ones are free at once.
        """
        downstream = Downstream(2, 1.0)
        downstream.arrive(0.0)
        downstream.arrive(0.5)

        downstream.resize(1, 0.5)
        assert 2.0 == downstream.arrive(0.5)
        downstream.resize(3, 0.6)
        assert 1.6 == downstream.arrive(0.6)


@pytest.fixture(scope="module", name="gradient_trace")
def _gradient_trace() -> Trace:
    """
    One run of the scenario through Gradient, shared by its tests.
    """
    return _run_gradient(_gradient())


@pytest.fixture(scope="module", name="aimd_trace")
def _aimd_trace() -> Trace:
    """
    One run of the scenario through AIMD, shared by its tests.
    """
    return _run_aimd(_aimd())


class TestGradientConverges:
    @pytest.fixture(name="trace")
    def _trace(self, gradient_trace: Trace) -> Trace:
        """
        The Gradient run.
        """
        return gradient_trace

    def test_never_leaves_bounds(self, trace):
        """
        Every limit of the run is within [min_limit, max_limit].
        """
        assert all(2 <= limit <= 200 for _, limit in trace.limits)

    def test_settles_near_capacity(self, trace):
        """
        With all workers, the limit settles between the workers and the
        workers plus the headroom (queue_size = 4).
        """
        settled = _settled(trace, 25.0, 40.0, 2)

        assert settled
        assert all(WORKERS <= limit <= WORKERS + 5 for limit in settled)

    def test_follows_the_overload_down(self, trace):
        """
        With a quarter of the workers, the limit settles near the workers
        left plus the headroom.
        """
        settled = _settled(trace, 65.0, 80.0, 2)

        assert settled
        assert all(DEGRADED <= limit <= DEGRADED + 5 for limit in settled)

    def test_grows_back(self, trace):
        """
        Once the workers are back, the limit grows back near capacity.
        """
        settled = _settled(trace, 105.0, 120.0, 2)

        assert settled
        assert all(WORKERS <= limit <= WORKERS + 5 for limit in settled)

    def test_latency_stays_bounded(self, trace):
        """
        Under 1.5x overload the calls let in queue little: the median
        latency stays within twice the service time, and nothing times
        out.
        """
        assert [0, 0, 0] == trace.dropped
        for latencies in trace.latencies:
            assert statistics.median(latencies) <= 2 * SERVICE

    def test_probes_are_brief(self, trace):
        """
        Probing for the no-load latency holds the limit at min_limit for
        a small share of the calls.
        """
        probing = sum(1 for _, limit in trace.limits if limit == 2)

        assert probing / len(trace.limits) < 0.02


class TestAIMDConverges:
    @pytest.fixture(name="trace")
    def _trace(self, aimd_trace: Trace) -> Trace:
        """
        The AIMD run.
        """
        return aimd_trace

    def test_never_leaves_bounds(self, trace):
        """
        Every limit of the run is within [min_limit, max_limit].
        """
        assert all(2 <= limit <= 200 for _, limit in trace.limits)

    @pytest.mark.parametrize(
        ("start", "end", "workers"),
        [
            (10.0, 40.0, WORKERS),
            (50.0, 80.0, DEGRADED),
            (90.0, 120.0, WORKERS),
        ],
        ids=["full", "overload", "recovered"],
    )
    def test_saw_tooth_around_capacity(self, trace, start, end, workers):
        """
        The limit saw-tooths around what the downstream takes before it
        refuses (its workers plus half as many waiting): its mean stays
        within 20% of that, and follows the overload down and back up.
        """
        limits = trace.between(start, end)
        takes = 1.5 * workers

        assert 0.8 * takes <= statistics.mean(limits) <= 1.2 * takes
        assert max(limits) <= 2 * takes


class TestAgainstFixedLimit:
    def test_fixed_high_limit_collapses_where_adaptive_does_not(self):
        """
        Under the same overload a fixed limit of 200 lets the queue grow
        until every call times out (no goodput), while the adaptive limit
        keeps the calls it admits fast.
        """

        class Fixed:
            limit = 200

            def observe(
                self, now: float, rtt: float, in_flight: int, dropped: bool
            ) -> int:
                return self.limit

        phases = [Phase(0.0, WORKERS)]
        fixed = run(
            Fixed(),
            phases=phases,
            end=40.0,
            service=SERVICE,
            rate=RATE,
            timeout=0.5,
        )
        adaptive = run(
            _gradient(),
            phases=phases,
            end=40.0,
            service=SERVICE,
            rate=RATE,
            timeout=0.5,
        )
        goodput: Callable[[Trace], float] = lambda t: (
            len(t.latencies[0]) / 40.0
        )

        assert goodput(fixed) < 0.3 * WORKERS / SERVICE
        assert goodput(adaptive) > 0.8 * WORKERS / SERVICE
