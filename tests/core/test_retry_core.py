"""
The pure retry stop rules and the retry budget's sliding window.
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
    precondition,
    rule,
)

from stalwart._core.budget import BudgetCore
from stalwart._core.retry import GiveUp, RetryCore


class TestDecide:
    def test_attempts(self):
        """
        The loop gives up once the attempt that failed was the last one.
        """
        core = RetryCore(attempts=3, timeout=None, retry_after_max=60.0)

        assert 1.0 == core.decide(2, 0.0, 1.0, None)
        assert GiveUp.ATTEMPTS is core.decide(3, 0.0, 1.0, None)

    def test_unbounded_attempts(self):
        """
        Without an attempt limit only time stops the loop.
        """
        core = RetryCore(attempts=None, timeout=None, retry_after_max=60.0)

        assert 2.0 == core.decide(10_000, 1e9, 2.0, None)

    @pytest.mark.parametrize(
        ("elapsed", "delay", "expected"),
        [
            (4.0, 0.5, 0.5),
            (4.0, 1.0, GiveUp.TIMEOUT),
            (4.5, 1.0, GiveUp.TIMEOUT),
            (5.0, 0.0, GiveUp.TIMEOUT),
            (4.999, 0.0, 0.0),
        ],
        ids=["inside", "reaches", "crosses", "spent", "zero-wait"],
    )
    def test_timeout(self, elapsed, delay, expected):
        """
        The loop never waits up to or past its time budget.
        """
        core = RetryCore(attempts=None, timeout=5.0, retry_after_max=60.0)

        assert expected == core.decide(1, elapsed, delay, None)

    @pytest.mark.parametrize(
        ("left", "delay", "expected"),
        [
            (2.0, 1.0, 1.0),
            (2.0, 2.0, GiveUp.DEADLINE),
            (0.0, 0.0, GiveUp.DEADLINE),
            (0.1, 0.0, 0.0),
        ],
        ids=["inside", "reaches", "expired", "zero-wait"],
    )
    def test_deadline(self, left, delay, expected):
        """
        The loop never waits up to or past the enclosing call's deadline.
        """
        core = RetryCore(attempts=None, timeout=None, retry_after_max=60.0)

        assert expected == core.decide(1, 0.0, delay, left)

    @given(
        attempts=st.integers(1, 20) | st.none(),
        timeout=st.floats(0, 100) | st.none(),
        attempt=st.integers(1, 30),
        elapsed=st.floats(0, 200),
        delay=st.floats(0, 50),
        left=st.floats(-10, 100) | st.none(),
    )
    def test_never_crosses_a_limit(  # noqa: PLR0917  # one per strategy
        self, attempts, timeout, attempt, elapsed, delay, left
    ):
        """
        A granted wait ends strictly inside every limit.
        """
        core = RetryCore(attempts=attempts, timeout=timeout, retry_after_max=9)

        decision = core.decide(attempt, elapsed, delay, left)

        if not isinstance(decision, GiveUp):
            assert delay == decision
            assert attempts is None or attempt < attempts
            assert timeout is None or elapsed + delay < timeout
            assert left is None or delay < left

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [(3.0, 3.0), (100.0, 60.0), (-1.0, 0.0), (math.nan, 0.0)],
        ids=["inside", "capped", "negative", "nan"],
    )
    def test_server_delay(self, raw, expected):
        """
        Server-dictated delays are kept within [0, retry_after_max].
        """
        core = RetryCore(attempts=None, timeout=None, retry_after_max=60.0)

        assert expected == core.server_delay(raw)

    def test_capped(self):
        """
        A cap lowers the attempt limit but never raises it.
        """
        core = RetryCore(attempts=5, timeout=None, retry_after_max=1.0)

        assert 2 == core.capped(2).attempts
        assert core is core.capped(9)
        assert core is core.capped(None)
        assert 3 == RetryCore(None, None, 1.0).capped(3).attempts


class TestBudgetCore:
    def test_reserve_without_calls(self):
        """
        The minimum rate alone allows min_per_second * window retries.
        """
        core = BudgetCore(ratio=0.5, min_per_second=0.2, window=10.0)

        granted = [core.withdraw(1.0) for _ in range(3)]

        assert [True, True, False] == granted

    def test_ratio_of_calls(self):
        """
        Each call adds ratio retries to the budget.
        """
        core = BudgetCore(ratio=0.5, min_per_second=0.0, window=10.0)
        for _ in range(4):
            core.deposit(0.0)

        granted = [core.withdraw(0.5) for _ in range(3)]

        assert [True, True, False] == granted
        assert 4 == core.calls
        assert 2 == core.retries
        assert 0.0 == core.allowance(0.5)

    def test_window_slides(self):
        """
        Calls and retries older than the window are forgotten.
        """
        core = BudgetCore(ratio=1.0, min_per_second=0.0, window=10.0)
        core.deposit(0.0)
        assert core.withdraw(0.0)
        core.deposit(5.0)

        assert 1.0 == core.allowance(9.9)
        assert 1.0 == core.allowance(10.0)
        assert 1 == core.calls
        assert 0 == core.retries
        assert 0.0 == core.allowance(100.0)
        assert 0 == core.calls

    @pytest.mark.parametrize(
        "now", [math.inf, -math.inf, math.nan, 1e300], ids=str
    )
    def test_times_no_slot_can_hold(self, now):
        """
        A time too far out for a slot index counts in the newest slot,
        first operation included, instead of failing.
        """
        core = BudgetCore(ratio=1.0, min_per_second=0.0, window=0.001)
        core.deposit(now)
        core.deposit(now)

        assert core.withdraw(now)
        assert 2 == core.calls
        assert 1 == core.retries
        assert 1.0 == core.allowance(now)

    def test_clock_going_backwards(self):
        """
        A clock that goes backwards counts in the newest slot.
        """
        core = BudgetCore(ratio=1.0, min_per_second=0.0, window=10.0)
        core.deposit(50.0)
        core.deposit(20.0)

        assert 2 == core.calls
        assert 2.0 == core.allowance(59.0)


class BudgetMachine(RuleBasedStateMachine):
    """
    The slotted budget agrees with a reference model that keeps every
    event and counts those in the last *slots* slots.
    """

    @initialize(
        ratio=st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.0]),
        min_per_second=st.sampled_from([0.0, 0.1, 1.0]),
        window=st.sampled_from([1.0, 10.0, 60.0]),
        slots=st.integers(1, 12),
    )
    def build(self, ratio, min_per_second, window, slots):
        """
        Build a core and an empty model.
        """
        self.core = BudgetCore(ratio, min_per_second, window, slots)
        self.ratio, self.reserve = ratio, min_per_second * window
        self.width, self.slots = window / slots, slots
        self.now = 0.0
        self.head = None
        self.events: list[tuple[int, str]] = []

    def _index(self) -> int:
        index = math.floor(self.now / self.width)
        self.head = index if self.head is None else max(self.head, index)
        return self.head

    def _count(self, kind: str) -> int:
        head = self._index()
        return sum(
            1
            for index, k in self.events
            if k == kind and index > head - self.slots
        )

    @rule(dt=st.floats(0, 30))
    def advance(self, dt):
        """
        Let time pass.
        """
        self.now += dt

    @rule(dt=st.floats(0, 5))
    def go_back(self, dt):
        """
        A misbehaving clock goes backwards.
        """
        self.now = max(0.0, self.now - dt)

    @rule()
    def deposit(self):
        """
        Count a call.
        """
        self.core.deposit(self.now)
        self.events.append((self._index(), "call"))

    @rule()
    def withdraw(self):
        """
        Ask for a retry; the model grants it exactly when the core does.
        """
        calls, retries = self._count("call"), self._count("retry")
        expected = retries + 1 <= self.ratio * calls + self.reserve

        granted = self.core.withdraw(self.now)

        assert expected is granted
        if granted:
            self.events.append((self._index(), "retry"))

    @precondition(lambda self: hasattr(self, "core"))
    @invariant()
    def counts_agree(self):
        """
        The core's window counts equal the model's.
        """
        self.core.allowance(self.now)
        assert self._count("call") == self.core.calls
        assert self._count("retry") == self.core.retries


TestBudgetMachine = BudgetMachine.TestCase
