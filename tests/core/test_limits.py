"""
Properties every rate-limiting core shares, checked on every algorithm
(several rates at once included), on the exact grid and at any magnitude.
"""

from __future__ import annotations

import copy
import math

from hypothesis import assume, given
from hypothesis import strategies as st

from stalwart._core.limits import (
    INF,
    BucketAlgorithm,
    FixedWindowAlgorithm,
    MultiRateAlgorithm,
    ShaperAlgorithm,
    earliest,
    window_of,
)
from strategies_limiters import (
    TOL,
    any_algorithm,
    any_steps,
    costs,
    forward_steps,
    live,
    max_waits,
    run,
    traces,
    wide_algorithms,
    wide_starts,
    wide_traces,
)


def _shaper(algorithm):
    return isinstance(algorithm, ShaperAlgorithm)


def _copy(state):
    return copy.deepcopy(state)


class TestEveryAlgorithm:
    @given(any_algorithm(), traces(any_steps), costs, max_waits, any_steps)
    def test_refused_changes_nothing(self, algorithm, trace, cost, wait, dt):
        """
        A refused request returns the state as it was, whatever the clock
        did before (a clock stepping back included).
        """
        state, results = run(algorithm, trace)
        now = results[-1][0] + dt
        before = live(algorithm, state, now)

        after, granted, _ = algorithm.decide(state, now, cost, wait)

        assume(not granted)
        assert before == live(algorithm, after, now)

    @given(any_algorithm(), traces(any_steps), costs)
    def test_ready_time_is_enough_and_later(self, algorithm, trace, cost):
        """
        A request refused at *now* is granted at once at its ready time,
        which is later than *now*; a little before, it is refused.
        """
        assume(cost <= algorithm.capacity)
        state, results = run(algorithm, trace)
        now = results[-1][0]
        for _ in range(20):  # take until refused
            after, granted, at = algorithm.decide(_copy(state), now, cost, 0.0)
            if not granted:
                break
            state = after

        early = algorithm.decide(_copy(state), at - 0.01, cost, 0.0)
        later = algorithm.decide(state, at, cost, 0.0)

        assert now < at < INF
        assert not early[1]
        assert (True, at) == later[1:]

    @given(st.data(), wide_algorithms(), wide_starts)
    def test_ready_time_at_any_magnitude(self, data, algorithm, start):
        """
        At clock values up to 1e9 s and rates from one a day to 1e9 a
        second, a refused request is granted at once at its ready time,
        which is later than the time it was refused at.
        """
        trace = data.draw(wide_traces(algorithm))
        cost = data.draw(st.sampled_from([1.0, algorithm.capacity]))
        state, results = run(algorithm, trace, start)
        now = results[-1][0]
        for _ in range(40):
            after, granted, at = algorithm.decide(_copy(state), now, cost, 0.0)
            if not granted:
                break
            state = after
        assume(not granted)

        later = algorithm.decide(state, at, cost, 0.0)

        assert now < at < INF
        assert later[1]

    @given(any_algorithm(), traces(), costs, max_waits)
    def test_wait_within_max_wait(self, algorithm, trace, cost, max_wait):
        """
        A request is granted exactly when its slot is at most *max_wait*
        away (a shaper also refuses when its queue is full), and the slot
        or ready time does not depend on *max_wait*.
        """
        assume(cost <= algorithm.capacity)
        state, results = run(algorithm, trace)
        now = results[-1][0]
        _, _, at_now = algorithm.decide(_copy(state), now, cost, 0.0)

        _, granted, at = algorithm.decide(state, now, cost, max_wait)

        assert at_now == at
        assert at >= now
        if granted:
            assert at - now <= max_wait
        elif not _shaper(algorithm):  # a full queue refuses whatever
            assert at - now > max_wait

    @given(any_algorithm(), traces(any_steps), traces(), forward_steps)
    def test_idle_state_is_fresh(self, algorithm, trace, probe, dt):
        """
        A state its algorithm calls idle answers every request exactly as a
        fresh state does, so evicting it never resets a live limit.
        """
        state, results = run(algorithm, trace)
        now = results[-1][0] + dt
        assume(algorithm.idle(state, now))

        _, mine = run(algorithm, probe, now, _copy(state))
        _, fresh = run(algorithm, probe, now)

        assert fresh == mine

    @given(any_algorithm(), traces(), forward_steps, costs)
    def test_later_is_never_worse(self, algorithm, trace, dt, cost):
        """
        For one state, a later time grants whatever an earlier time grants
        and shows at least as much room: a clock that steps back creates no
        capacity.
        """
        state, results = run(algorithm, trace)
        now = results[-1][0]
        early = algorithm.decide(_copy(state), now, cost, 0.0)
        late = algorithm.decide(_copy(state), now + dt, cost, 0.0)

        assert late[1] or not early[1]
        assert (
            algorithm.status(_copy(state), now)[0]
            <= algorithm.status(_copy(state), now + dt)[0]
        )

    @given(any_algorithm(), traces(any_steps), traces(), max_waits)
    def test_rewind_undoes_bookings(self, algorithm, trace, more, wait):
        """
        Rewinding to a mark undoes every booking made after it (the
        entries a log expired meanwhile aside).
        """
        state, results = run(algorithm, trace)
        now = results[-1][0]
        before = live(algorithm, state, now)
        mark = algorithm.mark(state)

        state, _ = run(
            algorithm, [(0.0, c, w) for _, c, w in more], now, state
        )
        state = algorithm.rewind(state, mark)

        assert before == live(algorithm, state, now)

    @given(any_algorithm(), traces(any_steps), costs, max_waits)
    def test_refund_of_latest_undoes_it(self, algorithm, trace, cost, wait):
        """
        Refunding a grant right after it was made restores the state it
        was made from.
        """
        state, results = run(algorithm, trace)
        now = results[-1][0]
        before = live(algorithm, state, now)
        mark = algorithm.mark(state)
        after, granted, at = algorithm.decide(state, now, cost, wait)
        assume(granted)

        restored = algorithm.refund(
            after,
            now,
            cost=cost,
            slot=at,
            before=mark,
            after=algorithm.mark(after),
        )

        assert before == live(algorithm, restored, now)

    @given(any_algorithm(), traces(any_steps))
    def test_status_is_sane(self, algorithm, trace):
        """
        ``remaining`` never exceeds the limit, ``reset_after`` is never
        negative, and a fresh key has the full limit.
        """
        state, results = run(algorithm, trace)
        now = results[-1][0]

        remaining, reset_after, limit = algorithm.status(state, now)
        fresh = algorithm.status(algorithm.fresh(), now)

        assert 0 <= remaining <= limit
        assert reset_after >= -TOL
        assert (1 if _shaper(algorithm) else algorithm.limit, 0.0) == fresh[:2]

    @given(any_algorithm(), st.floats(-1e6, 1e6), costs)
    def test_never_fits(self, algorithm, now, cost):
        """
        A cost above the capacity is refused with an infinite ready time.
        """
        state = algorithm.fresh()

        after, granted, at = algorithm.decide(
            state, now, algorithm.capacity + cost, math.inf
        )

        assert (False, math.inf) == (granted, at)
        assert after is state


class TestEarliest:
    @given(st.floats(-1e9, 1e9), st.integers(0, 2000))
    def test_finds_the_first_float(self, lo, ulps):
        """
        With a guess below the answer, the answer is the first float that
        fits, however far the guess is.
        """
        answer = lo
        for _ in range(ulps + 1):
            answer = math.nextafter(answer, INF)

        found = earliest(lambda t: t >= answer, lo, lo)

        assert answer == found

    def test_a_guess_that_fits_is_kept(self):
        """
        A guess that fits is the answer, even if smaller floats fit too.
        """
        assert 5.0 == earliest(lambda t: t >= 1.0, 0.0, 5.0)

    def test_far_answers(self):
        """
        An answer many orders of magnitude above the guess is found.
        """
        assert 1e6 == earliest(lambda t: t >= 1e6, 0.0, 1.0)


class TestWindowOf:
    @given(st.floats(0, 1e9), st.sampled_from([0.1, 0.3, 1 / 3, 7.0, 3600.0]))
    def test_window_holds_the_time(self, t, period):
        """
        The window of a time starts at or before it and ends after it,
        with the products taken in floats.
        """
        k = window_of(t, period)

        assert k * period <= t < (k + 1) * period

    def test_division_rounding_across_an_integer(self):
        """
        ``4.3 / 0.1`` rounds to just below 43, yet ``43 * 0.1`` is 4.3: the
        time belongs to window 43.
        """
        assert 43 == window_of(4.3, 0.1)

    def test_division_rounding_up_to_an_integer(self):
        """
        Where the division rounds up to an integer whose window starts
        after the time, the time belongs to the window before.
        """
        t, period = 218160.99999999997, 1 / 3

        k = window_of(t, period)

        assert 654483 == math.floor(t / period)
        assert 654482 == k


class TestBuckets:
    def test_level_below_the_slack_is_empty(self):
        """
        A bucket drained to rounding noise is empty, and so idle.
        """
        bucket = BucketAlgorithm(10.0, 2.0)

        assert bucket.idle((0.0, 1.0), 0.1)
        assert 0.0 == bucket.level((0.0, 1.0), 0.1)


class TestSeveralRates:
    def test_limit_is_the_smallest(self):
        """
        Several rates together advertise the smallest of their limits.
        """
        several = MultiRateAlgorithm(
            (BucketAlgorithm(1.0, 2.0), FixedWindowAlgorithm(3.0, 2.0))
        )

        assert 2 == several.limit
