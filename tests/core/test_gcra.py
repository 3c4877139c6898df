"""
The GCRA core, and its equivalence with the token bucket.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from stalwart._core.limits import GCRAAlgorithm, TokenBucketAlgorithm
from strategies_limiters import any_steps, capacities, rates, traces


# A state no reservation ever leaves (nan equals nothing), to test the
# refund of a reservation that is no longer the latest.
NEVER = (math.nan, math.nan)


def _twins(rate, capacity):
    return GCRAAlgorithm(rate, capacity), TokenBucketAlgorithm(rate, capacity)


class TestGCRA:
    @given(
        rates,
        capacities,
        traces(any_steps),
        st.lists(st.booleans(), max_size=40),
    )
    def test_agrees_with_token_bucket(self, rate, capacity, trace, refunds):
        """
        On any trace (a clock stepping back and refunds included), GCRA
        and the token bucket grant the same requests with the same waits
        and show the same room.
        """
        gcra, bucket = _twins(rate, capacity)
        g, b = gcra.fresh(), bucket.fresh()
        now = 0.0
        refunds = [*refunds, *[False] * len(trace)]

        for (step, cost, max_wait), refund in zip(trace, refunds):
            now += step
            g_ok, g_after, g_wait = gcra.reserve(g, now, cost, max_wait)
            b_ok, b_after, b_wait = bucket.reserve(b, now, cost, max_wait)

            assert b_ok == g_ok
            assert math.isclose(b_wait, g_wait, abs_tol=1e-9)
            if g_ok and refund:
                g_after = gcra.refund(
                    g_after,
                    now,
                    cost=cost,
                    before=g_after,
                    after=NEVER,
                    slot=now,
                )
                b_after = bucket.refund(
                    b_after,
                    now,
                    cost=cost,
                    before=b_after,
                    after=NEVER,
                    slot=now,
                )
            if g_ok:
                g, b = g_after, b_after
            assert bucket.status(b, now)[0] == gcra.status(g, now)[0]

    def test_example(self):
        """
        Ten per second with a burst of two: two at once, then every 0.1 s.
        """
        gcra = GCRAAlgorithm(rate=10.0, burst=2.0)
        state = gcra.fresh()

        ok1, state, _ = gcra.reserve(state, 0.0, 1, 0.0)
        ok2, state, _ = gcra.reserve(state, 0.0, 1, 0.0)
        refused, _, retry_after = gcra.reserve(state, 0.0, 1, 0.0)

        assert (True, True, False) == (ok1, ok2, refused)
        assert math.isclose(0.1, retry_after)
        assert (0, 0.2) == gcra.status(state, 0.0)
        assert 2 == gcra.limit
        assert not gcra.idle(state, 0.1)
        assert gcra.idle(state, 0.2)
