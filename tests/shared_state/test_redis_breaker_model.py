"""
The Lua state machine decides as the in-memory breaker does: the same
sequence of calls, outcomes, clock steps and manual actions, fed to both,
gives the same admissions, refusals, states and statistics at every step.
"""

from __future__ import annotations

import itertools

from typing import Any

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import Boom, boom, ok
from redis_breaker_support import Fleet
from stalwart import CircuitBreaker, CircuitOpenError, CountWindow, TimeWindow
from stalwart.testing import FakeClock


CONFIGS: list[dict[str, Any]] = [
    {"failure_threshold": 3},
    {"failure_threshold": 2, "window": CountWindow(4)},
    {"failure_threshold": 3, "window": TimeWindow(6, buckets=3)},
    {
        "failure_rate": 0.5,
        "window": CountWindow(4),
        "minimum_calls": 2,
        "half_open_max_calls": 2,
    },
    {
        "failure_rate": 0.6,
        "slow_call_rate": 0.5,
        "slow_call_duration": 2,
        "window": TimeWindow(10, buckets=5),
        "minimum_calls": 3,
    },
    {
        "failure_threshold": 1,
        "recovery_multiplier": 2,
        "recovery_max": 8,
        "half_open_max_calls": 2,
        "success_threshold": 2,
    },
    {"failure_threshold": 1, "recovery_time": 0},
]

STEPS = st.one_of(
    st.tuples(st.just("advance"), st.sampled_from([0.5, 1, 2, 3, 7])),
    st.tuples(st.sampled_from(["ok", "fail", "slow", "hold"]), st.none()),
    st.tuples(st.just("report"), st.booleans()),
    st.tuples(
        st.sampled_from(["force_open", "disable", "metrics_only", "reset"]),
        st.none(),
    ),
)

_names = itertools.count()


def snapshot(cb: CircuitBreaker) -> tuple[Any, ...]:
    stats = cb.statistics()
    return (
        stats.state,
        stats.consecutive_failures,
        stats.window_calls,
        stats.window_failures,
        stats.window_slow_calls,
        stats.failure_rate,
        stats.slow_call_rate,
        stats.trips,
        stats.open_until,
        stats.half_open_calls,
        stats.transitions,
    )


def step(cb: CircuitBreaker, clock: FakeClock, held: list, op: str, arg):
    if op == "advance":
        return None
    if op in {"force_open", "disable", "metrics_only", "reset"}:
        getattr(cb, op)()
        return None
    if op == "report":
        if not held:
            return None
        permit = held.pop(0)
        if arg:
            permit.record_success()
        else:
            permit.record_failure()
        return None
    try:
        if op == "hold":
            held.append(cb.acquire())
            return "held"
        if op == "slow":

            def slow() -> str:
                clock.advance(2)
                return "ok"

            return cb.call(slow)
        return cb.call(ok if op == "ok" else boom)
    except Boom:
        return "failed"
    except CircuitOpenError as e:
        return ("refused", e.retry_after)


@pytest.mark.parametrize("config", CONFIGS, ids=range(len(CONFIGS)))
def test_same_decisions_as_in_memory(redis_url: str, config) -> None:
    """
    Step by step, the shared breaker (asking the server at every call)
    and the in-memory breaker agree on everything.
    """
    fleet = Fleet(redis_url)
    store = fleet.store()
    settings_ = {"recovery_time": 4, "half_open_max_wait": 5, **config}

    @settings(max_examples=30, deadline=None)
    @given(steps=st.lists(STEPS, min_size=10, max_size=60))
    def agree(steps) -> None:
        name = f"model-{next(_names)}"
        local_clock, shared_clock = FakeClock(), FakeClock()
        local = CircuitBreaker(name=name, clock=local_clock, **settings_)
        shared = CircuitBreaker(
            name=name,
            clock=shared_clock,
            store=store,
            max_staleness=0,
            **settings_,
        )
        held: tuple[list, list] = ([], [])
        for op, arg in steps:
            if op == "advance":
                local_clock.advance(arg)
                shared_clock.advance(arg)
            assert step(local, local_clock, held[0], op, arg) == step(
                shared, shared_clock, held[1], op, arg
            ), (op, arg)
            assert snapshot(local) == snapshot(shared), (op, arg)

    try:
        agree()
    finally:
        fleet.close()
