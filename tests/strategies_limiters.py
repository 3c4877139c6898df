"""
Hypothesis strategies and trace runners for the rate-limiter cores.

Two kinds of configurations:

* on a *grid* (multiples of 1/16 s, whole rates, periods that are powers
  of two), where the arithmetic is exact, so that a reference model can
  state the exact behaviour;
* *wide*: clock values up to 1e9 s and rates from one a day to 1e9 a
  second, where only the properties that must hold at any magnitude are
  checked (a ready time is always enough, and always later than now).
"""

from __future__ import annotations

import copy
import math

from typing import Any

from hypothesis import strategies as st

from stalwart._core.limits import (
    BucketAlgorithm,
    FixedWindowAlgorithm,
    Log,
    MultiRateAlgorithm,
    ShaperAlgorithm,
    SlidingWindowCounterAlgorithm,
    SlidingWindowLogAlgorithm,
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

Trace = list[tuple[float, float, float]]


@st.composite
def traces(
    draw: st.DrawFn, steps: st.SearchStrategy[float] = forward_steps
) -> Trace:
    """
    A list of ``(step, cost, max_wait)``: move the clock by *step*, then
    ask for *cost* waiting at most *max_wait*.
    """
    return draw(
        st.lists(st.tuples(steps, costs, max_waits), min_size=1, max_size=40)
    )


def buckets() -> st.SearchStrategy[BucketAlgorithm]:
    """Token bucket / GCRA / leaky meter cores."""
    return st.builds(BucketAlgorithm, rates, capacities)


def shapers() -> st.SearchStrategy[ShaperAlgorithm]:
    """Leaky bucket shaper cores."""
    return st.builds(ShaperAlgorithm, rates, capacities)


def fixed_windows() -> st.SearchStrategy[FixedWindowAlgorithm]:
    """Fixed window cores."""
    return st.builds(FixedWindowAlgorithm, capacities, periods)


def sliding_logs() -> st.SearchStrategy[SlidingWindowLogAlgorithm]:
    """Sliding-window log cores."""
    return st.builds(SlidingWindowLogAlgorithm, capacities, periods)


def sliding_counters() -> st.SearchStrategy[SlidingWindowCounterAlgorithm]:
    """Sliding-window counter cores."""
    return st.builds(SlidingWindowCounterAlgorithm, capacities, periods)


def multi_rates() -> st.SearchStrategy[MultiRateAlgorithm]:
    """Two or three cores of the same kind at once (not shapers)."""
    single = st.one_of(
        buckets(), fixed_windows(), sliding_logs(), sliding_counters()
    )
    return st.lists(single, min_size=2, max_size=3).map(
        lambda parts: MultiRateAlgorithm(tuple(parts))
    )


def any_algorithm() -> st.SearchStrategy[Any]:
    """Any core on the grid, several rates at once included."""
    return st.one_of(
        buckets(),
        shapers(),
        fixed_windows(),
        sliding_logs(),
        sliding_counters(),
        multi_rates(),
    )


# ----------------------------------------------------------------- wide

# Rates per second from one a day to 1e9, log-uniform.
wide_rates = st.floats(-4.94, 9.0).map(lambda e: 10.0**e)
wide_capacities = st.one_of(st.integers(1, 20).map(float), st.floats(1.0, 1e6))
# Clock values where a float's step is coarse.
wide_starts = st.one_of(
    st.sampled_from([0.0, 0.3, 1e5, 1e6, 1e7, 2.0**24, 1e9, 1e9 + 0.3]),
    st.floats(0.0, 1e9),
)


@st.composite
def wide_algorithms(draw: st.DrawFn) -> Any:
    """
    Any core with a rate from one a day to 1e9 a second.
    """
    per_second = draw(wide_rates)
    capacity = draw(wide_capacities)
    kind = draw(
        st.sampled_from(["bucket", "shaper", "fixed", "log", "counter"])
    )
    if kind == "bucket":
        return BucketAlgorithm(per_second, capacity)
    if kind == "shaper":
        return ShaperAlgorithm(per_second, capacity)
    # A window of *capacity* requests at this rate.
    period = capacity / per_second
    make = {
        "fixed": FixedWindowAlgorithm,
        "log": SlidingWindowLogAlgorithm,
        "counter": SlidingWindowCounterAlgorithm,
    }[kind]
    return make(capacity, period)


@st.composite
def wide_traces(draw: st.DrawFn, algorithm: Any) -> Trace:
    """
    Requests spaced by fractions of the time one unit of cost takes at
    the algorithm's rate, with costs up to its capacity.
    """
    unit = algorithm.horizon / algorithm.capacity
    steps = st.floats(0.0, 3.0).map(lambda f: f * unit)
    cost = st.one_of(
        st.just(1.0),
        st.floats(0.01, 1.0).map(lambda f: f * algorithm.capacity),
    )
    return draw(
        st.lists(
            st.tuples(steps, cost, st.sampled_from([0.0, 0.0, 10.0 * unit])),
            min_size=1,
            max_size=30,
        )
    )


# -------------------------------------------------------------- runners


def live(algorithm: Any, state: Any, now: float) -> Any:
    """
    A comparable copy of *state* as seen at *now* (for a log: its entries
    not yet expired, as ``(time, cost)``; a tuple state as it is).
    """
    if isinstance(algorithm, MultiRateAlgorithm):
        return tuple(
            live(part, sub, now)
            for part, sub in zip(algorithm.parts, state, strict=True)
        )
    if not isinstance(state, Log):
        return state
    log = copy.deepcopy(state)
    algorithm.expire(log, now)
    totals = [log.gone, *log.totals[log.head :]]
    return [
        (t, b - a)
        for t, a, b in zip(log.times[log.head :], totals, totals[1:])
    ]


def run(
    algorithm: Any, trace: Trace, start: float = 0.0, state: Any = None
) -> tuple[Any, list[tuple[float, float, bool, float]]]:
    """
    Feed *trace* to *algorithm* from *state* (a fresh one by default).

    Returns:
        The final state and one ``(now, cost, granted, at)`` per step.
    """
    if state is None:
        state = algorithm.fresh()
    now = start
    out = []
    for step, cost, max_wait in trace:
        now += step
        state, granted, at = algorithm.decide(state, now, cost, max_wait)
        out.append((now, cost, granted, at))
    return state, out


def granted_slots(
    results: list[tuple[float, float, bool, float]],
) -> list[tuple[float, float]]:
    """
    The ``(slot, cost)`` of every granted request, in slot order.

    A request is served at its slot, or, if the clock stepped back, not
    before the latest time read so far: the time it really is (a thread
    that read the clock just before another).  A cost that can never fit
    is left out: it never reaches the algorithm.
    """
    seen = -math.inf
    slots = []
    for now, cost, granted, at in results:
        if at == math.inf:
            continue
        seen = max(seen, now)
        if granted:
            slots.append((max(at, seen), cost))
    return sorted(slots)
