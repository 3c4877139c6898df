"""
The Redis store makes the decisions of the in-memory store: the same
operations (requests with and without waits, cancelled reservations,
peeks, resets) fed to both, every answer compared, for every algorithm
and several rates at once, on the grid and at wide clock values and
rates.
"""

from __future__ import annotations

import itertools
import math

from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stalwart._redis_limits import RedisLimiterStore
from stalwart._stores import MemoryStore
from stalwart.redis import RedisStore
from strategies_limiters import (
    any_algorithm,
    costs,
    forward_steps,
    max_waits,
    wide_algorithms,
    wide_starts,
)


_names = itertools.count()

keys = st.sampled_from([None, "a", b"b"])
ops = st.one_of(
    st.tuples(st.just("decide"), forward_steps, keys, costs, max_waits),
    st.tuples(st.just("decide"), forward_steps, keys, costs, max_waits),
    st.tuples(st.just("decide"), forward_steps, keys, costs, max_waits),
    st.tuples(st.just("cancel"), forward_steps, st.integers(0, 7)),
    st.tuples(st.just("peek"), forward_steps, keys, costs),
    st.tuples(st.just("reset"), forward_steps, keys),
)


def _pair(
    url: str, algorithm: Any
) -> tuple[MemoryStore[Any], RedisLimiterStore]:
    limiter = SimpleNamespace(name=f"model{next(_names)}", hooks=())
    shared = RedisLimiterStore(RedisStore(url=url), algorithm, limiter)
    return MemoryStore(algorithm), shared


def _fits(algorithm: Any, cost: float) -> bool:
    return cost <= algorithm.capacity


def _same(memory: Any, redis: Any) -> None:
    (*mine, reservation), (*theirs, shared) = memory, redis
    assert theirs == mine
    assert (reservation is None) == (shared is None)
    if reservation is not None:
        assert shared.slot == reservation.slot


def _check(url: str, algorithm: Any, trace: list[Any], start: float) -> None:
    memory, shared = _pair(url, algorithm)
    now = start
    booked: list[tuple[Any, Any]] = []
    try:
        for op, step, *args in trace:
            now += step
            if op == "decide":
                key, cost, max_wait = args
                if not _fits(algorithm, cost):
                    continue
                mine = memory.decide(key, now, cost, max_wait)
                theirs = shared.decide(key, now, cost, max_wait)
                _same(mine, theirs)
                if mine[5] is not None:
                    booked.append((mine[5], theirs[5]))
            elif op == "cancel":
                if not booked:
                    continue
                mine_r, theirs_r = booked.pop(args[0] % len(booked))
                moved = memory.cancel(mine_r, now)
                moved_shared = shared.cancel(theirs_r, now)
                assert len(moved) == len(moved_shared)
                for m, r in booked:
                    assert r.slot == m.slot
            elif op == "peek":
                key, cost = args
                if not _fits(algorithm, cost):
                    continue
                _same(memory.peek(key, now, cost), shared.peek(key, now, cost))
            else:
                (key,) = args
                memory.reset(key, now)
                shared.reset(key, now)
                for m, r in booked:
                    assert r.slot == m.slot
        assert shared.counts() == memory.counts()
    finally:
        shared.store.close()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(algorithm=any_algorithm(), trace=st.lists(ops, min_size=1, max_size=40))
def test_same_answers_as_the_memory_store(redis_server, algorithm, trace):
    _check(redis_server.url, algorithm, trace, 0.0)


@st.composite
def wide(draw: st.DrawFn) -> tuple[Any, list[Any], float]:
    algorithm = draw(wide_algorithms())
    unit = algorithm.horizon / algorithm.capacity
    step = st.floats(0.0, 3.0).map(lambda f: f * unit)
    cost = st.one_of(
        st.just(1.0),
        st.floats(0.01, 1.0).map(lambda f: f * algorithm.capacity),
    )
    wait = st.sampled_from([0.0, 0.0, 10.0 * unit, math.inf])
    trace = draw(
        st.lists(
            st.one_of(
                st.tuples(st.just("decide"), step, keys, cost, wait),
                st.tuples(st.just("decide"), step, keys, cost, wait),
                st.tuples(st.just("cancel"), step, st.integers(0, 7)),
                st.tuples(st.just("peek"), step, keys, cost),
            ),
            min_size=1,
            max_size=25,
        )
    )
    start = draw(wide_starts)
    # Window indices as doubles are exact below 2^53 (documented).
    period = getattr(algorithm, "period", math.inf)
    assume((start + 3.0 * unit * len(trace)) / period < 2.0**52)
    return algorithm, trace, start


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=wide())
def test_same_answers_at_any_clock_value_and_rate(redis_server, case):
    algorithm, trace, start = case
    _check(redis_server.url, algorithm, trace, start)


def test_the_state_reads_as_a_person_expects(redis_url):
    from stalwart import SlidingWindowLog, TokenBucket
    from stalwart.testing import FakeClock

    store = RedisStore(url=redis_url, prefix="app")
    clock = FakeClock(100.0)
    bucket = TokenBucket(rate=(10, 1.0), name="api", clock=clock, store=store)
    bucket.try_acquire(cost=3, key="user-1")
    client = store.client
    assert client.hgetall("app:rl:{api:user-1}") == {
        b"at": b"100",
        b"level": b"3",
        b"booked": b"-inf",
    }
    # Idle once the level has drained (at 100.3), rounded up to the next
    # whole second, plus a second of margin.
    assert 1300 < client.pttl("app:rl:{api:user-1}") <= 2000
    log = SlidingWindowLog(
        rate=(2, 10.0), name="log", clock=clock, store=store
    )
    log.try_acquire()
    clock.advance(1)
    log.try_acquire(cost=0.5)
    assert client.lrange("app:rl:{log}:log0", 0, -1) == [b"100 1", b"101 1.5"]
    assert client.hgetall("app:rl:{log}") == {
        b"gone": b"0",
        b"latest": b"101",
        b"dropped": b"0",
    }
    store.close()
