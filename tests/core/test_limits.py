"""
Properties every rate-limiting core shares, checked on every algorithm.
"""

from __future__ import annotations

import copy
import math

from hypothesis import assume, given
from hypothesis import strategies as st

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
)


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

        granted, after, _ = algorithm.reserve(state, now, cost, wait)

        assume(not granted)
        assert before == live(algorithm, after, now)

    @given(any_algorithm(), traces(), costs)
    def test_retry_after_is_exact(self, algorithm, trace, cost):
        """
        A request refused with ``retry_after`` is granted at once that much
        later, and not a little before.
        """
        assume(cost <= algorithm.capacity)
        state, results = run(algorithm, trace)
        now = results[-1][0]
        for _ in range(20):  # take until refused
            granted, after, retry_after = algorithm.reserve(
                copy.deepcopy(state), now, cost, 0.0
            )
            if not granted:
                break
            state = after

        early = algorithm.reserve(
            copy.deepcopy(state), now + retry_after - 0.01, cost, 0.0
        )
        later = algorithm.reserve(state, now + retry_after, cost, 0.0)

        assert 0 < retry_after < math.inf
        assert not early[0]
        assert later[0]

    @given(any_algorithm(), traces(), costs, max_waits)
    def test_wait_within_max_wait(self, algorithm, trace, cost, max_wait):
        """
        A request is granted exactly when its wait fits in *max_wait* (a
        shaper also refuses when its queue is full), and the wait does not
        depend on *max_wait*.
        """
        assume(cost <= algorithm.capacity)
        state, results = run(algorithm, trace)
        now = results[-1][0]
        _, _, wait_now = algorithm.reserve(
            copy.deepcopy(state), now, cost, 0.0
        )

        granted, _, wait = algorithm.reserve(state, now, cost, max_wait)

        assert wait_now == wait
        assert wait >= 0
        if granted:
            assert wait <= max_wait + 1e-9
        elif not _shaper(algorithm):  # a full queue refuses whatever
            assert wait > max_wait

    @given(any_algorithm(), traces(any_steps), traces(), forward_steps)
    def test_idle_state_is_fresh(self, algorithm, trace, probe, dt):
        """
        A state its algorithm calls idle answers every request exactly as a
        fresh state does, so evicting it never resets a live limit.
        """
        state, results = run(algorithm, trace)
        now = results[-1][0] + dt
        assume(algorithm.idle(state, now))

        _, mine = run_from(algorithm, state, probe, now)
        _, fresh = run_from(algorithm, algorithm.fresh(), probe, now)

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
        early = algorithm.reserve(copy.deepcopy(state), now, cost, 0.0)
        late = algorithm.reserve(copy.deepcopy(state), now + dt, cost, 0.0)

        assert late[0] or not early[0]
        assert (
            algorithm.status(copy.deepcopy(state), now)[0]
            <= algorithm.status(copy.deepcopy(state), now + dt)[0]
        )

    @given(any_algorithm(), traces(any_steps), costs, max_waits)
    def test_refund_of_latest_undoes_it(self, algorithm, trace, cost, wait):
        """
        Refunding a reservation right after it was made restores the state
        it was made from.
        """
        state, results = run(algorithm, trace)
        now = results[-1][0]
        before = live(algorithm, state, now)
        granted, after, waited = algorithm.reserve(state, now, cost, wait)
        assume(granted)

        restored = algorithm.refund(
            after,
            now,
            cost=cost,
            before=before if not isinstance(before, list) else after,
            after=after,
            slot=now + waited,
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

        remaining, reset_after = algorithm.status(state, now)
        fresh = algorithm.status(algorithm.fresh(), now)

        assert 0 <= remaining <= algorithm.limit
        assert reset_after >= -TOL
        assert (
            min(algorithm.limit, 1) if _shaper(algorithm) else algorithm.limit,
            0.0,
        ) == (
            fresh[0],
            fresh[1],
        )

    @given(any_algorithm(), st.floats(-1e6, 1e6), costs)
    def test_never_fits(self, algorithm, now, cost):
        """
        A cost above the capacity is refused with an infinite wait.
        """
        state = algorithm.fresh()

        granted, after, wait = algorithm.reserve(
            state, now, algorithm.capacity + cost, math.inf
        )

        assert not granted
        assert math.inf == wait
        assert after is state


def _shaper(algorithm):
    return getattr(algorithm, "shape", False)


def run_from(algorithm, state, trace, start):
    """
    Like ``run``, from a given state.
    """
    state = copy.deepcopy(state)
    now = start
    out = []
    for step, cost, max_wait in trace:
        now += step
        granted, after, wait = algorithm.reserve(state, now, cost, max_wait)
        if granted:
            state = after
        out.append((granted, wait))
    return state, out
