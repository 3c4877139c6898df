"""
The adaptive concurrency limits' cores: AIMD and Gradient, with examples
of each rule and properties over any sequence of samples.
"""

from __future__ import annotations

import math

import pytest

from hypothesis import given
from hypothesis import strategies as st

from stalwart._core.adaptive import (
    AIMD,
    AIMDSnapshot,
    Gradient,
    GradientSnapshot,
    LimitAlgorithm,
    free_in,
)


# A finished call: (seconds since the previous one, rtt, in_flight, dropped).
samples = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.001, 0.05, 0.3, 1.0, 5.0]),
        st.floats(min_value=0.0, max_value=10.0, allow_nan=False),
        st.integers(min_value=0, max_value=300),
        st.booleans(),
    ),
    max_size=300,
)


@st.composite
def bounds(draw: st.DrawFn) -> tuple[int, int, int]:
    """
    (min_limit, initial, max_limit) with 1 <= min <= initial <= max.
    """
    low = draw(st.integers(min_value=1, max_value=20))
    high = draw(st.integers(min_value=low, max_value=low + 100))
    initial = draw(st.integers(min_value=low, max_value=high))
    return low, initial, high


@st.composite
def aimds(draw: st.DrawFn) -> AIMD:
    """
    Any valid AIMD.
    """
    low, initial, high = draw(bounds())
    return AIMD(
        initial=initial,
        min_limit=low,
        max_limit=high,
        backoff_ratio=draw(st.floats(min_value=0.05, max_value=0.99)),
        timeout=draw(st.none() | st.floats(min_value=0.01, max_value=5.0)),
    )


@st.composite
def gradients(draw: st.DrawFn) -> Gradient:
    """
    Any valid Gradient.
    """
    low, initial, high = draw(bounds())
    return Gradient(
        initial=initial,
        min_limit=low,
        max_limit=high,
        smoothing=draw(st.floats(min_value=0.01, max_value=1.0)),
        queue_size=draw(st.floats(min_value=0.0, max_value=20.0)),
        window=draw(st.sampled_from([0.0, 0.5, 1.0])),
        window_samples=draw(st.integers(min_value=1, max_value=5)),
        probe_interval=draw(st.none() | st.sampled_from([1.0, 10.0])),
        probe_samples=draw(st.integers(min_value=1, max_value=5)),
    )


def _feed(
    algorithm: LimitAlgorithm, data: list[tuple[float, float, int, bool]]
):
    """
    Feed samples in time order; yield (limit before, limit after).
    """
    now = 0.0
    for dt, rtt, in_flight, dropped in data:
        now += dt
        before = algorithm.limit
        yield before, algorithm.observe(now, rtt, in_flight, dropped)


class TestAIMD:
    def test_grows_by_one(self):
        """
        A call that ends well with at least half the limit in use adds one.
        """
        aimd = AIMD(initial=10, min_limit=1, max_limit=100)

        assert [11, 12] == [aimd.observe(1.0, 0.1, 6, False) for _ in "ab"]

    def test_app_limited_does_not_grow(self):
        """
        With fewer than half the limit in use the limit stays.
        """
        aimd = AIMD(initial=10, min_limit=1, max_limit=100)

        assert 10 == aimd.observe(1.0, 0.1, 4, False)

    def test_drop_cuts_by_ratio(self):
        """
        A dropped call multiplies the limit by the ratio, rounding down.
        """
        aimd = AIMD(initial=10, min_limit=1, max_limit=100, backoff_ratio=0.75)

        assert 7 == aimd.observe(1.0, 0.1, 10, True)
        assert AIMDSnapshot(limit=7, last_cut_at=1.0) == aimd.snapshot()

    def test_average_latency(self):
        """
        The latency of calls that end well is averaged (each new one
        weighs a tenth); drops do not count.
        """
        aimd = AIMD(initial=10, min_limit=1, max_limit=100)

        assert aimd.snapshot().rtt is None
        aimd.observe(1.0, 1.0, 10, False)
        aimd.observe(2.0, 3.0, 10, False)
        aimd.observe(3.0, 9.0, 10, True)
        assert 1.2 == pytest.approx(aimd.snapshot().rtt)

    def test_timeout_counts_as_drop(self):
        """
        A call slower than timeout is a drop, even if it succeeded.
        """
        aimd = AIMD(initial=10, min_limit=1, max_limit=100, timeout=2.0)

        assert 9 == aimd.observe(5.0, 2.5, 10, False)
        assert 10 == aimd.observe(6.0, 2.0, 10, False)

    def test_one_cut_per_overload(self):
        """
        Drops of calls admitted before the last cut do not cut again;
        the first drop of a call admitted after it does.
        """
        aimd = AIMD(initial=20, min_limit=1, max_limit=100, backoff_ratio=0.5)

        assert 10 == aimd.observe(5.0, 1.0, 20, True)
        assert 10 == aimd.observe(5.5, 1.0, 20, True)  # started at 4.5
        assert 10 == aimd.observe(6.0, 1.0, 20, True)  # started at the cut
        assert 5 == aimd.observe(6.5, 1.0, 20, True)  # started after it

    def test_bounds(self):
        """
        The limit stops at max_limit and min_limit.
        """
        aimd = AIMD(initial=3, min_limit=2, max_limit=4, backoff_ratio=0.1)

        assert [4, 4] == [aimd.observe(1.0, 0.0, 4, False) for _ in "ab"]
        assert 2 == aimd.observe(2.0, 0.0, 4, True)

    @given(aimd=aimds(), data=samples)
    def test_never_leaves_bounds(self, aimd, data):
        """
        Whatever it is fed, the limit stays in [min_limit, max_limit].
        """
        for _, after in _feed(aimd, data):
            assert aimd.min_limit <= after <= aimd.max_limit

    @given(aimd=aimds(), data=samples)
    def test_each_step_follows_the_rules(self, aimd, data):
        """
        Each sample leaves the limit unchanged, adds exactly one, or cuts
        it to floor(limit * ratio) (at least min_limit).
        """
        for before, after in _feed(aimd, data):
            cut = max(aimd.min_limit, math.floor(before * aimd.backoff_ratio))
            assert after in {before, min(aimd.max_limit, before + 1), cut}

    @given(aimd=aimds(), data=samples)
    def test_drop_never_grows(self, aimd, data):
        """
        A dropped call never raises the limit, and a counted one lowers it
        unless it is already at min_limit.
        """
        now = 0.0
        for dt, rtt, in_flight, _ in data:
            now += dt
            before = aimd.limit
            last_cut = aimd.snapshot().last_cut_at
            after = aimd.observe(now, rtt, in_flight, True)

            assert after <= before
            if now - rtt > last_cut and before > aimd.min_limit:
                assert after < before


class TestGradient:
    def _steady(self, **kwargs: object) -> Gradient:
        """
        A gradient past its first probe, with rtt_noload = 1.0.
        """
        options: dict[str, object] = {
            "initial": 20,
            "min_limit": 1,
            "max_limit": 100,
            "window": 1.0,
            "window_samples": 1,
            "probe_samples": 1,
        }
        options.update(kwargs)
        gradient = Gradient(**options)  # type: ignore[arg-type]
        gradient.observe(0.0, 1.0, 1, False)
        return gradient

    def test_first_probe(self):
        """
        It starts at min_limit, measuring the no-load latency from calls
        admitted at that concurrency, then moves to the initial limit.
        """
        gradient = Gradient(
            initial=20, min_limit=2, max_limit=100, probe_samples=2
        )

        assert 2 == gradient.limit
        assert 2 == gradient.observe(0.5, 9.0, 5, False)  # too concurrent
        assert 2 == gradient.observe(0.6, 9.0, 2, True)  # dropped
        assert 2 == gradient.observe(1.0, 0.1, 2, False)
        assert 20 == gradient.observe(1.1, 0.3, 1, False)
        assert GradientSnapshot(20, 20.0, 0.2, None, False) == (
            gradient.snapshot()
        )

    def test_no_queueing_grows_by_headroom(self):
        """
        A window at the no-load latency moves the limit towards
        limit + queue_size by the smoothing factor.
        """
        gradient = self._steady(smoothing=0.5, queue_size=4.0)

        assert 20 == gradient.observe(0.5, 1.0, 20, False)  # window open
        assert 22 == gradient.observe(1.5, 1.0, 20, False)

    def test_queueing_shrinks(self):
        """
        A window at twice the no-load latency halves the target, plus the
        headroom.
        """
        gradient = self._steady(smoothing=1.0, queue_size=4.0)

        gradient.observe(1.0, 2.0, 20, False)

        # 20 * 0.5 + 4
        assert 14.0 == gradient.estimate
        assert 2.0 == gradient.snapshot().rtt

    def test_gradient_floor(self):
        """
        However slow the window, one window at most halves the target.
        """
        gradient = self._steady(smoothing=1.0, queue_size=0.0)

        assert 10 == gradient.observe(1.0, 50.0, 20, False)

    def test_drop_halves_without_headroom(self):
        """
        A window with a dropped call targets half the estimate.
        """
        gradient = self._steady(smoothing=0.5, queue_size=4.0)

        gradient.observe(1.0, 1.0, 20, True)

        assert 15.0 == gradient.estimate

    def test_app_limited_does_not_grow(self):
        """
        A window in which fewer than half the limit were in use does not
        grow it.
        """
        gradient = self._steady(smoothing=1.0)

        assert 20 == gradient.observe(1.0, 1.0, 9, False)

    def test_faster_window_lowers_noload(self):
        """
        Between probes, a window faster than rtt_noload becomes it.
        """
        gradient = self._steady()

        gradient.observe(1.0, 0.5, 20, False)

        assert 0.5 == gradient.rtt_noload

    def test_window_needs_time_and_samples(self):
        """
        A window closes only after window seconds and window_samples calls.
        """
        gradient = self._steady(smoothing=1.0, window_samples=3)

        gradient.observe(1.0, 2.0, 20, False)
        gradient.observe(5.0, 2.0, 20, False)
        assert 20.0 == gradient.estimate
        gradient.observe(5.0, 2.0, 20, False)
        assert 14.0 == gradient.estimate

    def test_probes_again_after_interval(self):
        """
        After probe_interval the limit drops to min_limit until a new
        no-load latency is measured, then returns to the estimate.
        """
        gradient = self._steady(
            probe_interval=10.0, min_limit=3, smoothing=0.5, queue_size=2.0
        )

        assert 21 == gradient.observe(5.0, 1.0, 20, False)
        assert 3 == gradient.observe(11.0, 1.0, 20, False)
        assert gradient.probing
        assert 22.0 == gradient.estimate
        assert 22 == gradient.observe(11.5, 3.0, 3, False)
        assert 3.0 == gradient.rtt_noload

    def test_no_probing(self):
        """
        With probe_interval=None it starts at the initial limit and takes
        the fastest window as rtt_noload.
        """
        gradient = Gradient(
            initial=20,
            min_limit=1,
            max_limit=100,
            probe_interval=None,
            window=0.0,
            window_samples=1,
        )

        assert 20 == gradient.limit
        gradient.observe(1.0, 2.0, 20, False)
        gradient.observe(2.0, 1.0, 20, False)
        assert 1.0 == gradient.rtt_noload
        assert not gradient.probing

    def test_instant_calls(self):
        """
        Calls that take no time (a fake clock) neither divide by zero nor
        stall the probe.
        """
        gradient = Gradient(
            initial=5,
            min_limit=1,
            max_limit=10,
            window=0.0,
            window_samples=1,
            probe_samples=1,
        )

        for now in range(1, 30):
            gradient.observe(float(now), 0.0, gradient.limit, False)

        assert 10 == gradient.limit

    @given(gradient=gradients(), data=samples)
    def test_never_leaves_bounds(self, gradient, data):
        """
        Whatever it is fed, the limit and the estimate stay in
        [min_limit, max_limit], and the limit is min_limit while probing.
        """
        for _, after in _feed(gradient, data):
            assert gradient.min_limit <= after <= gradient.max_limit
            assert (
                gradient.min_limit <= gradient.estimate <= gradient.max_limit
            )
            if gradient.probing:
                assert gradient.min_limit == after

    @given(gradient=gradients(), data=samples)
    def test_growth_per_window_is_bounded(self, gradient, data):
        """
        One sample never raises the estimate by more than smoothing *
        queue_size, nor lowers it by more than half the smoothing.
        """
        now = 0.0
        for dt, rtt, in_flight, dropped in data:
            now += dt
            before = gradient.estimate
            gradient.observe(now, rtt, in_flight, dropped)
            after = gradient.estimate
            s = gradient.smoothing

            assert after <= before + s * gradient.queue_size + 1e-9
            assert after >= min(before, before * (1 - s / 2)) - 1e-9 or (
                after == gradient.min_limit
            )

    @given(gradient=gradients(), data=samples)
    def test_drops_never_grow(self, gradient, data):
        """
        A sample that is dropped never raises the estimate.
        """
        now = 0.0
        for dt, rtt, in_flight, _ in data:
            now += dt
            before = gradient.estimate
            gradient.observe(now, rtt, in_flight, True)

            assert gradient.estimate <= before


class TestFreeIn:
    @pytest.mark.parametrize(
        ("rtt", "limit", "ahead", "expected"),
        [
            (None, 10, 0, None),
            (1.0, 10, 0, 0.1),
            (1.0, 10, 4, 0.5),
            (0.5, 0, 1, 1.0),
        ],
        ids=["unknown", "next", "behind-four", "limit-zero"],
    )
    def test_estimate(self, rtt, limit, ahead, expected):
        """
        With *limit* calls of *rtt* seconds in flight, one ends every
        rtt / limit seconds: a caller waits that long for each one ahead
        and its own.
        """
        assert expected == free_in(rtt, limit, ahead)
