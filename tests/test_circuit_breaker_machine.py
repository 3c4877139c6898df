"""
The circuit breaker against its reference model (``breaker_model.py``),
one Hypothesis state machine per policy.

Rules take permits, or open `with` blocks held across a generator's
`yield`, and report them in any order (so calls admitted before a
transition report after it, and blocks end out of order), run whole calls whose duration is spent on
the fake clock, move time, and use manual control; after each step the
state, the refusals (with their ``retry_after``), the transitions
announced to the hooks and the counters must match the model.
"""

from __future__ import annotations

import contextlib

from collections.abc import Generator
from typing import Any

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import stalwart

from breaker_model import Model, consecutive, count_in_window, rates
from helpers import Boom
from stalwart.testing import FakeClock


STEPS = st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.5, 4.0, 10.0, 31.0])
OUTCOMES = st.sampled_from(["success", "failure", "ignored", "cancelled"])
FACES = st.sampled_from(["permit", "block"])


class Ignored(Exception):
    """
    An exception the breaker is told to ignore.
    """


class Answered(Exception):
    """
    An exception that is neither a failure nor ignored: a success.
    """


class BreakerMachine(RuleBasedStateMachine):
    """
    Drive a breaker and its model with the same steps.
    """

    configs: Any = None

    def __init__(self) -> None:
        super().__init__()
        # (a permit or a generator holding a `with` block, its epoch in the
        # model, when it was admitted)
        self.held: list[tuple[Any, int, float]] = []

    @initialize(data=st.data())
    def build(self, data: st.DataObject) -> None:
        cfg = data.draw(self.configs)
        self.clock = FakeClock()
        self.events: list[stalwart.Event] = []
        self.breaker = stalwart.CircuitBreaker(
            name="machine",
            failure_on=Boom,
            ignore=Ignored,
            clock=self.clock,
            hooks=self.events.append,
            **cfg,
        )
        self.model = Model(cfg)
        self.totals = {"successes": 0, "failures": 0, "slow": 0}
        self.totals_ignored = 0
        self.rejected = 0

    def _block(self) -> Generator[None, str, None]:
        # A `with` block held open across a yield: blocks end in whatever
        # order the rules step them, as generators stepped alternately do.
        with self.breaker:
            outcome = yield
            if outcome == "failure":
                raise Boom
            if outcome == "ignored":
                raise Ignored

    def _admit(self, face: str) -> int | None:
        now = self.clock.now()
        epoch, retry_after = self.model.admit(now)
        try:
            if face == "permit":
                held: Any = self.breaker.acquire()
            else:
                held = self._block()
                next(held)
        except stalwart.CircuitOpenError as e:
            assert epoch is None
            assert retry_after == e.retry_after
            self.rejected += 1
            return None
        assert epoch is not None
        self.held.append((held, epoch, now))
        return len(self.held) - 1

    def _report(self, index: int, outcome: str) -> None:
        held, epoch, start = self.held.pop(index)
        now = self.clock.now()
        slow_after = self.breaker.slow_call_duration
        slow = slow_after is not None and now - start >= slow_after
        if outcome in {"success", "failure"}:
            failed = outcome == "failure"
            self.model.record(now, epoch, failed, slow)
            self.totals["failures" if failed else "successes"] += 1
            self.totals["slow"] += slow
        else:
            self.model.release(epoch)
            self.totals_ignored += 1
        if isinstance(held, stalwart.CircuitPermit):
            {
                "success": held.record_success,
                "failure": held.record_failure,
                "ignored": lambda: held.record_exception(Ignored()),
                "cancelled": held.release,
            }[outcome]()
        elif outcome == "cancelled":
            held.close()  # GeneratorExit in the block
        else:
            with contextlib.suppress(StopIteration, Boom, Ignored):
                held.send(outcome)

    @rule(face=FACES)
    def acquire(self, face: str) -> None:
        self._admit(face)

    @precondition(lambda self: self.held)
    @rule(data=st.data(), outcome=OUTCOMES)
    def report(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.integers(0, len(self.held) - 1))
        self._report(index, outcome)

    @rule(duration=STEPS, outcome=OUTCOMES, face=FACES)
    def call(self, duration: float, outcome: str, face: str) -> None:
        index = self._admit(face)
        if index is None:
            return
        self.clock.advance(duration)
        self._report(index, outcome)

    @rule(dt=STEPS)
    def advance(self, dt: float) -> None:
        self.clock.advance(dt)

    @rule(
        action=st.sampled_from(
            ["reset", "force_open", "disabled", "metrics_only"]
        )
    )
    def manual(self, action: str) -> None:
        self.model.manual(action, self.clock.now())
        {
            "reset": self.breaker.reset,
            "force_open": self.breaker.force_open,
            "disabled": self.breaker.disable,
            "metrics_only": self.breaker.metrics_only,
        }[action]()

    @invariant()
    def same_state(self) -> None:
        # Reading the state sends a half-open breaker whose trials are late
        # back to OPEN, as the model does when it is read.
        self.model.expire(self.clock.now())

        assert self.model.state == self.breaker.state.value

    @invariant()
    def same_transitions(self) -> None:
        self.model.expire(self.clock.now())
        self.breaker.state  # noqa: B018  # read: expires a late half-open
        announced = [
            (e.previous.value, e.state.value, e.at)
            for e in self.events
            if isinstance(e, stalwart.CircuitStateChanged)
        ]

        assert self.model.transitions == announced

    @invariant()
    def same_counters(self) -> None:
        self.model.expire(self.clock.now())
        stats = self.breaker.statistics()

        assert self.model.state == stats.state.value

        assert self.totals["successes"] == stats.successes
        assert self.totals["failures"] == stats.failures
        assert self.totals["slow"] == stats.slow_calls
        assert self.totals_ignored == stats.ignored
        assert self.rejected == stats.rejected
        assert self.rejected == sum(
            isinstance(e, stalwart.CallRejected) for e in self.events
        )


def _machine(name: str, configs: Any) -> Any:
    machine = type(name, (BreakerMachine,), {"configs": configs()})
    case = machine.TestCase
    case.settings = settings(
        max_examples=150, stateful_step_count=40, deadline=None
    )
    return case


TestConsecutive = _machine("ConsecutiveMachine", consecutive)
TestCountInWindow = _machine("CountInWindowMachine", count_in_window)
TestRates = _machine("RatesMachine", rates)


@pytest.mark.parametrize("configs", [consecutive, count_in_window, rates])
def test_strategies_build_valid_breakers(configs: Any) -> None:
    """
    Every configuration the machines draw is accepted by the breaker.
    """

    @settings(max_examples=50, deadline=None)
    @given(cfg=configs())
    def check(cfg: dict[str, Any]) -> None:
        stalwart.CircuitBreaker(**cfg)

    check()
