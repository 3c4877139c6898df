"""
The pure fault-injection decisions: schedules, probability, numbering.
"""

from __future__ import annotations

import math

import pytest

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from stalwart._core.chaos import ChaosCore, ChaosPlan, Injection


FAULT = Injection(fault=True)


def injected(plan: ChaosPlan, calls: int, now: float = 0.0) -> list[int]:
    """
    The numbers of the calls among 1..calls that *plan* injects.
    """
    return [n for n in range(1, calls + 1) if plan.decide(n, now, 0.0)]


class TestInjection:
    @pytest.mark.parametrize(
        ("injection", "kinds"),
        [
            (Injection(fault=True), ("fault",)),
            (Injection(result=True), ("result",)),
            (Injection(latency=0.5), ("latency",)),
            (Injection(behavior=True), ("behavior",)),
            (
                Injection(behavior=True, latency=1.0, fault=True),
                ("behavior", "latency", "fault"),
            ),
            (Injection(latency=1.0, result=True), ("latency", "result")),
        ],
        ids=["fault", "result", "latency", "behavior", "all", "slow-result"],
    )
    def test_kinds_in_order(self, injection, kinds):
        """
        The kinds are named in the order the shell applies them.
        """
        assert kinds == injection.kinds


class TestSchedules:
    def test_every_call_by_default(self):
        """
        With no schedule and probability 1, every call is injected.
        """
        assert list(range(1, 11)) == injected(ChaosPlan(FAULT), 10)

    @pytest.mark.parametrize(
        ("settings", "expected"),
        [
            ({"every": 3}, [3, 6, 9]),
            ({"first": 2}, [1, 2]),
            ({"after": 7}, [8, 9, 10]),
            ({"after": 3, "first": 5}, [4, 5]),
            ({"every": 2, "after": 4}, [6, 8, 10]),
            ({"every": 2, "first": 5}, [2, 4]),
            ({"every": 1}, list(range(1, 11))),
        ],
        ids=[
            "every",
            "first",
            "after",
            "window",
            "every-after",
            "every-first",
            "every-1",
        ],
    )
    def test_call_numbers(self, settings, expected):
        """
        Schedules on call numbers combine: every setting must hold.
        """
        assert expected == injected(ChaosPlan(FAULT, **settings), 10)

    @pytest.mark.parametrize(
        ("now", "expected"),
        [
            (9.999, False),
            (10.0, True),
            (19.999, True),
            (20.0, False),
            (30.0, True),
            (1e12, True),
        ],
        ids=["before", "start", "inside", "end", "open-ended", "far"],
    )
    def test_during(self, now, expected):
        """
        Periods include their start and exclude their end; an infinite
        end never closes.
        """
        plan = ChaosPlan(FAULT, during=((10.0, 20.0), (30.0, math.inf)))

        assert expected is (plan.decide(1, now, 0.0) is not None)
        assert plan.reads_clock

    def test_no_period_reads_no_clock(self):
        """
        Without periods the time is ignored.
        """
        plan = ChaosPlan(FAULT)

        assert not plan.reads_clock
        assert FAULT is plan.decide(1, math.nan, 0.0)


class TestProbability:
    @pytest.mark.parametrize(
        ("u", "expected"),
        [(0.0, True), (0.2999, True), (0.3, False), (0.99, False)],
        ids=["zero", "below", "equal", "above"],
    )
    def test_draw_below_probability_injects(self, u, expected):
        """
        A call is injected when its draw is below the probability.
        """
        plan = ChaosPlan(FAULT, probability=0.3)

        assert expected is (plan.decide(1, 0.0, u) is not None)
        assert plan.draws

    def test_certain_and_impossible_need_no_draw(self):
        """
        Probabilities 1 and 0 decide without a draw: any draw gives the
        same answer, even a source that returns 1.0.
        """
        always = ChaosPlan(FAULT, probability=1.0)
        never = ChaosPlan(FAULT, probability=0.0)

        assert not always.draws
        assert not never.draws
        assert FAULT is always.decide(1, 0.0, 1.0)
        assert None is never.decide(1, 0.0, 0.0)

    def test_schedule_first_then_probability(self):
        """
        A call outside the schedule is never injected, whatever its draw.
        """
        plan = ChaosPlan(FAULT, every=2, probability=0.5)

        assert None is plan.decide(1, 0.0, 0.0)
        assert FAULT is plan.decide(2, 0.0, 0.0)
        assert None is plan.decide(2, 0.0, 0.7)


def _model(
    n: int,
    now: float,
    u: float,
    *,
    probability: float,
    every: int | None,
    first: int | None,
    after: int,
    during: tuple[tuple[float, float], ...],
) -> bool:
    """
    The reference: a call is injected when each setting allows it.
    """
    by_number = (
        n > after
        and (first is None or n <= first)
        and (every is None or n % every == 0)
    )
    by_time = not during or any(s <= now < e for s, e in during)
    by_chance = probability == 1.0 or u < probability
    return by_number and by_time and by_chance


periods = st.lists(
    st.tuples(st.floats(0, 100), st.floats(0.001, 50)).map(
        lambda p: (p[0], p[0] + p[1])
    ),
    max_size=3,
).map(tuple)


settings = st.fixed_dictionaries(
    {
        "probability": st.floats(0, 1),
        "every": st.none() | st.integers(1, 20),
        "first": st.none() | st.integers(1, 10_000),
        "after": st.integers(0, 10_000),
        "during": periods,
    }
)


@given(
    n=st.integers(1, 10_000),
    now=st.floats(0, 200),
    u=st.floats(0, 1, exclude_max=True),
    config=settings,
)
def test_decide_matches_the_model(n, now, u, config):
    """
    decide() injects exactly when the reference model says so.
    """
    plan = ChaosPlan(FAULT, **config)
    expected = _model(n, now, u, **config)

    assert expected is (plan.decide(n, now, u) is FAULT)


@given(calls=st.integers(0, 500), every=st.integers(1, 50))
def test_every_injects_a_fixed_share(calls, every):
    """
    Over any number of calls, every=N injects exactly calls // N of them.
    """
    core = ChaosCore(ChaosPlan(FAULT, every=every))
    for _ in range(calls):
        core.next(0.0, 0.0)

    assert calls // every == core.injected
    assert calls == core.calls


class CoreMachine(RuleBasedStateMachine):
    """
    The core numbers calls from 1 without gaps, counts exactly the calls
    it injects, and starts again from 1 after a reset.
    """

    @initialize(
        every=st.none() | st.integers(1, 5),
        first=st.none() | st.integers(1, 30),
        after=st.integers(0, 10),
        probability=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    )
    def build(self, every, first, after, probability):
        self.settings = {
            "every": every,
            "first": first,
            "after": after,
            "probability": probability,
        }
        self.core = ChaosCore(ChaosPlan(FAULT, **self.settings))
        self.calls = 0
        self.injected = 0

    @rule(u=st.floats(0, 1, exclude_max=True), now=st.floats(0, 100))
    def call(self, u, now):
        number, injection = self.core.next(now, u)
        self.calls += 1
        expected = _model(number, now, u, during=(), **self.settings)
        self.injected += expected

        assert self.calls == number
        assert expected is (injection is FAULT)

    @rule()
    def reset(self):
        self.core.reset()
        self.calls = 0
        self.injected = 0

    @invariant()
    def counts_agree(self):
        assert self.calls == self.core.calls
        assert self.injected == self.core.injected


TestCoreMachine = CoreMachine.TestCase
