"""
GCRA as the bucket core sees it: a theoretical arrival time kept relative
to the last update, exact at any clock value.
"""

from __future__ import annotations

from hypothesis import given

from stalwart._core.limits import BucketAlgorithm
from strategies_limiters import buckets, run, traces


def tat(bucket, state):
    """
    GCRA's theoretical arrival time for a bucket state.
    """
    at, level, _ = state
    return at + level / bucket.rate


class TestGCRA:
    @given(buckets(), traces())
    def test_granted_while_tat_within_burst(self, bucket, trace):
        """
        Without waiting, a request of cost *c* is granted exactly when
        the TAT it leaves is at most ``burst / rate`` ahead of now, as
        GCRA states it.
        """
        trace = [(step, cost, 0.0) for step, cost, _ in trace]
        state = bucket.fresh()
        now = 0.0

        for step, cost, _ in trace:
            now += step
            ahead = max(tat(bucket, state), now) + cost / bucket.rate - now
            after, granted, _ = bucket.decide(state, now, cost, 0.0)

            assert (ahead <= bucket.capacity / bucket.rate + 1e-9) == granted
            state = after

    def test_example(self):
        """
        Ten per second with a burst of two: two at once, then every 0.1 s;
        the TAT is 0.2 s ahead after the burst.
        """
        gcra = BucketAlgorithm(rate=10.0, capacity=2.0)
        state = gcra.fresh()

        state, ok1, _ = gcra.decide(state, 0.0, 1, 0.0)
        state, ok2, _ = gcra.decide(state, 0.0, 1, 0.0)
        _, refused, at = gcra.decide(state, 0.0, 1, 0.0)

        assert (True, True, False) == (ok1, ok2, refused)
        assert 0.1 == at
        assert 0.2 == tat(gcra, state)
        assert (0, 0.2, 2) == gcra.status(state, 0.0)
        assert not gcra.idle(state, 0.1)
        assert gcra.idle(state, 0.2)

    @given(buckets(), traces())
    def test_tat_never_more_than_burst_ahead_without_waits(
        self, bucket, trace
    ):
        """
        Requests that do not wait never push the TAT further than
        ``burst / rate`` past now.
        """
        trace = [(step, cost, 0.0) for step, cost, _ in trace]
        state, results = run(bucket, trace)

        now = results[-1][0]
        assert tat(bucket, state) - now <= bucket.capacity / bucket.rate + 1e-9
