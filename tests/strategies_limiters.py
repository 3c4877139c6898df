"""
Hypothesis strategies and trace runners for the rate-limiter cores.

Times, periods and rates are drawn from grids (multiples of 1/16 s, whole
rates, periods that are powers of two) so that the arithmetic of the
reference models is exact and a property fails only on a real defect.
"""

from __future__ import annotations

import copy

from typing import Any

from hypothesis import strategies as st

from stalwart._core.limits import (
    FixedWindowAlgorithm,
    GCRAAlgorithm,
    LeakyBucketAlgorithm,
    Log,
    SlidingWindowCounterAlgorithm,
    SlidingWindowLogAlgorithm,
    TokenBucketAlgorithm,
)


TOL = 1e-6

rates = st.integers(1, 8).map(float)
capacities = st.integers(1, 8).map(float)
periods = st.sampled_from([0.25, 0.5, 1.0, 2.0, 4.0])

# A forward step of the clock: mostly small, sometimes none, sometimes long.
forward_steps = st.integers(0, 48).map(lambda n: n / 16)
# A step that may go backwards.
any_steps = st.integers(-32, 48).map(lambda n: n / 16)
costs = st.integers(1, 4).map(float)
# The longest wait a request accepts: none, a bit, or unbounded.
max_waits = st.sampled_from([0.0, 0.0, 0.5, 2.0, float("inf")])


@st.composite
def traces(
    draw: st.DrawFn, steps: st.SearchStrategy[float] = forward_steps
) -> list[tuple[float, float, float]]:
    """
    A list of ``(step, cost, max_wait)``: move the clock by *step*, then
    ask for *cost* waiting at most *max_wait*.
    """
    return draw(
        st.lists(st.tuples(steps, costs, max_waits), min_size=1, max_size=40)
    )


def token_buckets() -> st.SearchStrategy[TokenBucketAlgorithm]:
    """Token bucket cores."""
    return st.builds(TokenBucketAlgorithm, rates, capacities)


def gcras() -> st.SearchStrategy[GCRAAlgorithm]:
    """GCRA cores."""
    return st.builds(GCRAAlgorithm, rates, capacities)


def leaky_buckets(shape: bool | None = None) -> st.SearchStrategy[Any]:
    """Leaky bucket cores, meters or shapers or both."""
    shapes = st.booleans() if shape is None else st.just(shape)
    return st.builds(LeakyBucketAlgorithm, rates, capacities, shapes)


def fixed_windows() -> st.SearchStrategy[FixedWindowAlgorithm]:
    """Fixed window cores."""
    return st.builds(FixedWindowAlgorithm, capacities, periods)


def sliding_logs() -> st.SearchStrategy[SlidingWindowLogAlgorithm]:
    """Sliding-window log cores."""
    return st.builds(SlidingWindowLogAlgorithm, capacities, periods)


def sliding_counters() -> st.SearchStrategy[SlidingWindowCounterAlgorithm]:
    """Sliding-window counter cores."""
    return st.builds(SlidingWindowCounterAlgorithm, capacities, periods)


def any_algorithm() -> st.SearchStrategy[Any]:
    """Any core."""
    return st.one_of(
        token_buckets(),
        gcras(),
        leaky_buckets(),
        fixed_windows(),
        sliding_logs(),
        sliding_counters(),
    )


def live(algorithm: Any, state: Any, now: float) -> Any:
    """
    A comparable copy of *state* as seen at *now* (for a log: its entries
    not yet expired, as ``(time, cost)``; a tuple state as it is).
    """
    if not isinstance(state, Log):
        return state
    log = copy.deepcopy(state)
    algorithm._expire(log, now)
    totals = [log.gone, *log.totals[log.head :]]
    return [
        (t, b - a)
        for t, a, b in zip(log.times[log.head :], totals, totals[1:])
    ]


def run(
    algorithm: Any,
    trace: list[tuple[float, float, float]],
    start: float = 0.0,
) -> tuple[Any, list[tuple[float, float, bool, float]]]:
    """
    Feed *trace* to *algorithm* from a fresh state.

    Returns:
        The final state and one ``(now, cost, granted, wait)`` per step.
    """
    state = algorithm.fresh()
    now = start
    out = []
    for step, cost, max_wait in trace:
        now += step
        granted, after, wait = algorithm.reserve(state, now, cost, max_wait)
        if granted:
            state = after
        out.append((now, cost, granted, wait))
    return state, out


def granted_slots(
    results: list[tuple[float, float, bool, float]],
) -> list[tuple[float, float]]:
    """
    The ``(slot, cost)`` of every granted request, in slot order.
    """
    return sorted(
        (now + wait, cost) for now, cost, granted, wait in results if granted
    )
