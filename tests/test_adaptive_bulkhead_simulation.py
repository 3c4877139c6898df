"""
The real AdaptiveBulkhead against the simulated downstream of
``adaptive_sim``, on a FakeClock: a task per call through ``acall``, the
scenario of ``test_adaptive_simulation`` (a FIFO queue in front of 20
workers, offered 1.5 times what it can serve, that loses three quarters
of them from 40 s to 80 s).  The limit must settle near what the
downstream can take, follow it down, grow back once the overload passes,
never leave [min, max], and beat a fixed limit set too high.
"""

from __future__ import annotations

import statistics

import pytest

import stalwart

from adaptive_sim import Phase, Refused, Trace, run_shell
from stalwart import AdaptiveBulkhead, AIMDLimit, Event, GradientLimit
from stalwart.testing import FakeClock


SERVICE = 0.1  # seconds per call, per worker
WORKERS = 20  # so the downstream serves 200 calls a second
DEGRADED = 5  # workers left during the overload
RATE = 300.0  # calls offered per second: 1.5 times the capacity
PHASES = [Phase(0.0, WORKERS), Phase(40.0, DEGRADED), Phase(80.0, WORKERS)]
END = 120.0
DROPS = (TimeoutError, Refused)


class Run:
    """
    One run of the scenario through a real bulkhead: its trace, and every
    limit its hooks saw.
    """

    def __init__(self, algorithm: AIMDLimit | GradientLimit) -> None:
        clock = FakeClock()
        self.events: list[Event] = []
        self.bulkhead = AdaptiveBulkhead(
            min_limit=2,
            max_limit=200,
            initial_limit=10,
            algorithm=algorithm,
            drop_on=DROPS,
            clock=clock,
            hooks=self.events.append,
        )
        self.trace: Trace = run_shell(
            self.bulkhead,
            clock,
            phases=PHASES,
            end=END,
            service=SERVICE,
            rate=RATE,
            timeout=0.5,
            # AIMD's signal: the downstream refuses calls that would wait
            # more than half a service time (it then takes 1.5 * workers).
            max_queue_wait=SERVICE / 2
            if isinstance(algorithm, AIMDLimit)
            else None,
        )

    def limits_seen(self) -> list[int]:
        """
        Every limit the bulkhead moved to.
        """
        return [
            e.limit
            for e in self.events
            if isinstance(e, stalwart.LimitChanged)
        ]

    def settled(self, start: float, end: float) -> list[int]:
        """
        The limits from *start* to *end*, leaving out no-load probes.
        """
        return [limit for limit in self.trace.between(start, end) if limit > 2]


@pytest.fixture(scope="module", name="gradient")
def _gradient() -> Run:
    """
    One Gradient run, shared by its tests.
    """
    return Run(GradientLimit(probe_interval=30.0))


@pytest.fixture(scope="module", name="aimd")
def _aimd() -> Run:
    """
    One AIMD run, shared by its tests.
    """
    return Run(AIMDLimit())


@pytest.mark.parametrize("algorithm", ["gradient", "aimd"])
def test_never_leaves_bounds(algorithm, request):
    """
    Every limit the bulkhead moved to, through the whole run, is within
    [min_limit, max_limit].
    """
    run: Run = request.getfixturevalue(algorithm)
    limits = run.limits_seen()

    assert limits
    assert all(2 <= limit <= 200 for limit in limits)


class TestGradient:
    @pytest.mark.parametrize(
        ("start", "end", "workers"),
        [
            (25.0, 40.0, WORKERS),
            (65.0, 80.0, DEGRADED),
            (105.0, 120.0, WORKERS),
        ],
        ids=["full", "overload", "recovered"],
    )
    def test_settles_near_capacity(self, gradient, start, end, workers):
        """
        The limit settles between the workers and the workers plus the
        headroom (queue_size = 4): near capacity, down with the overload,
        and back up after it.
        """
        settled = gradient.settled(start, end)

        assert settled
        assert all(workers <= limit <= workers + 5 for limit in settled)

    def test_latency_stays_bounded(self, gradient):
        """
        Under 1.5x overload the calls let in queue little downstream: the
        median latency stays within twice the service time, nothing times
        out, and the rest is shed at once by the bulkhead.
        """
        trace = gradient.trace

        assert [0, 0, 0] == trace.dropped
        for latencies in trace.latencies:
            assert statistics.median(latencies) <= 2 * SERVICE
        assert sum(trace.shed) == gradient.bulkhead.statistics().refused

    def test_statistics_after_the_run(self, gradient):
        """
        The bulkhead reports its latency estimates: the no-load latency is
        the service time.
        """
        stats = gradient.bulkhead.statistics()

        assert stats.rtt_noload == pytest.approx(SERVICE)
        assert (0, 0) == (stats.in_flight, stats.queued)


class TestAIMD:
    @pytest.mark.parametrize(
        ("start", "end", "workers"),
        [
            (10.0, 40.0, WORKERS),
            (50.0, 80.0, DEGRADED),
            (90.0, 120.0, WORKERS),
        ],
        ids=["full", "overload", "recovered"],
    )
    def test_saw_tooth_around_capacity(self, aimd, start, end, workers):
        """
        The limit saw-tooths around what the downstream takes before it
        refuses (its workers plus half as many waiting), follows the
        overload down and grows back.
        """
        limits = aimd.trace.between(start, end)
        takes = 1.5 * workers

        assert 0.8 * takes <= statistics.mean(limits) <= 1.2 * takes
        assert max(limits) <= 2 * takes

    def test_drops_are_counted(self, aimd):
        """
        The bulkhead counts every call the downstream refused as dropped.
        """
        assert sum(aimd.trace.dropped) == aimd.bulkhead.statistics().dropped


def test_fixed_limit_set_too_high_collapses():
    """
    Under the same overload a Bulkhead fixed at 200 lets the downstream's
    queue grow until every call times out (no goodput), while the
    adaptive bulkhead keeps the calls it admits fast.
    """
    phases = [Phase(0.0, WORKERS)]

    def goodput(
        bulkhead: AdaptiveBulkhead | stalwart.Bulkhead, clock: FakeClock
    ) -> float:
        trace = run_shell(
            bulkhead,
            clock,
            phases=phases,
            end=40.0,
            service=SERVICE,
            rate=RATE,
            timeout=0.5,
        )
        return len(trace.latencies[0]) / 40.0

    fixed_clock, adaptive_clock = FakeClock(), FakeClock()
    fixed = goodput(
        stalwart.Bulkhead(max_concurrent=200, clock=fixed_clock), fixed_clock
    )
    adaptive = goodput(
        AdaptiveBulkhead(
            min_limit=2,
            max_limit=200,
            initial_limit=10,
            algorithm=GradientLimit(probe_interval=30.0),
            drop_on=DROPS,
            clock=adaptive_clock,
        ),
        adaptive_clock,
    )

    assert fixed < 0.3 * WORKERS / SERVICE
    assert adaptive > 0.8 * WORKERS / SERVICE
