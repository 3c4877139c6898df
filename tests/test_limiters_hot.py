"""
The hand-inlined hot paths make exactly the core's decisions: every
limiter, on the default key and on a key, through every face.
"""

from __future__ import annotations

import asyncio
import copy

import pytest

from hypothesis import given
from hypothesis import strategies as st

from limiter_support import ALL, IDS
from stalwart import (
    RateLimitExceededError,
)
from stalwart._limiters import retry_after
from stalwart.testing import FakeClock
from strategies_limiters import live


operations = st.lists(
    st.tuples(
        st.sampled_from(["try", "acquire", "aacquire", "wait", "peek"]),
        st.integers(-8, 24).map(lambda n: n / 8),  # clock step, may go back
        st.sampled_from([1.0, 1.0, 2.0, 0.5]),
    ),
    max_size=40,
)


class SteppingClock(FakeClock):
    """
    A fake clock that can also step back (a thread that read it late).
    """

    def step(self, seconds: float) -> None:
        """
        Move by *seconds*, either way.
        """
        self._now += seconds


@pytest.mark.parametrize("key", [None, "k"], ids=["default", "keyed"])
@pytest.mark.parametrize("cls", ALL, ids=IDS)
@given(
    limit=st.integers(1, 4),
    period=st.sampled_from([0.5, 1.0, 2.0]),
    ops=operations,
)
def test_same_decisions_and_states_as_the_core(cls, key, limit, period, ops):
    """
    Whatever face a request takes, the limiter grants what the core grants,
    with the same ``retry_after``, and leaves the same state.
    """
    clock = SteppingClock(1e6 + 0.3)
    limiter = cls(rate=(limit, period), clock=clock)
    core = limiter._algorithm
    state = core.fresh()

    for op, step, cost in ops:
        clock.step(step)
        now = clock.now()
        max_wait = 10.0 if op == "wait" else 0.0
        if cost > core.capacity:
            continue
        before = live(core, state, now)
        after, granted, at = core.decide(
            copy.deepcopy(state), now, cost, max_wait
        )
        if op == "peek":
            assert granted == bool(limiter.peek(cost, key))
            if key is None or key in limiter._store.cells:
                core.ready(state, now, cost)  # a read: a log notes its time
            assert before == live(core, state, now)
            continue
        if op == "try":
            decision = limiter.try_acquire(cost, key)
            assert granted == bool(decision)
            remaining, reset_after, limit = core.status(
                copy.deepcopy(after), now
            )
            wait = 0.0 if granted else retry_after(now, at)
            assert (granted, remaining, wait, reset_after, limit) == decision
        else:
            try:
                if op == "aacquire":
                    asyncio.run(limiter.aacquire(cost, key, timeout=max_wait))
                else:
                    limiter.acquire(cost, key, timeout=max_wait)
            except RateLimitExceededError as e:
                assert not granted
                assert retry_after(now, at) == e.retry_after
            else:
                assert granted
        state = after
        cell = (
            limiter._store.default
            if key is None
            else limiter._store.cells[key]
        )
        assert live(core, state, now) == live(core, cell.state, now)
        if granted and at > now:  # the face slept until its slot
            assert at <= clock.now()
