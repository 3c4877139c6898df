"""
RetryBudget: a budget of retries shared by several retries, which stops
retry storms.
"""

from __future__ import annotations

import math
import threading

import pytest

from helpers import Boom, boom, ok
from retry_support import counts
from stalwart import (
    ConfigurationError,
    Retry,
    RetryBudget,
    RetryBudgetExhausted,
    RetryBudgetStatistics,
    RetryGaveUp,
)


class TestBudget:
    def test_shared_by_several_retries(self, invoke, clock):
        """
        Two retries draw on one budget; once spent, neither retries.
        """
        budget = RetryBudget(ratio=0.5, min_per_second=0, clock=clock)
        first = Retry(on=Boom, attempts=3, wait=0, budget=budget, clock=clock)
        second = Retry(on=Boom, attempts=3, wait=0, budget=budget, clock=clock)
        invoke(first, ok)
        invoke(second, ok)
        calls = []

        def failing() -> None:
            calls.append(1)
            raise Boom

        with pytest.raises(Boom):
            invoke(first, failing)
        with pytest.raises(Boom):
            invoke(second, failing)

        # Three calls allow 1.5 retries: the first failing call retries once
        # and is refused the second; the fourth call lifts the allowance to
        # 2.0, so the second failing call retries once, then is refused.
        assert 4 == len(calls)
        assert (
            RetryBudgetStatistics(
                name=budget.name, calls=4, retries=2, refused=2, available=0.0
            )
            == budget.statistics()
        )
        assert (2, 1, 1) == counts(first.statistics())

    def test_fails_with_last_error_at_once(self, invoke, clock, events):
        """
        A refused retry re-raises the last error without waiting, and says
        so in a RetryBudgetExhausted event.
        """
        budget = RetryBudget(
            name="db-budget", ratio=0, min_per_second=0.1, clock=clock
        )
        retry = Retry(
            name="db",
            on=Boom,
            wait=1.0,
            budget=budget,
            clock=clock,
            hooks=events.append,
        )
        errors = [Boom("a"), Boom("b")]

        def failing() -> None:
            raise errors.pop(0)

        with pytest.raises(Boom, match="b"):
            invoke(retry, failing)

        assert [1.0] == clock.sleeps
        exhausted = events[-1]
        assert isinstance(exhausted, RetryBudgetExhausted)
        assert isinstance(exhausted, RetryGaveUp)
        assert "budget" == exhausted.reason
        assert "db-budget" == exhausted.budget_name
        assert 2 == exhausted.attempt

    def test_window_refills(self, clock):
        """
        Retries spent leave the window after *window* seconds.
        """
        budget = RetryBudget(
            ratio=0, min_per_second=0.1, window=10.0, clock=clock
        )
        retry = Retry(on=Boom, attempts=2, wait=0, budget=budget, clock=clock)
        with pytest.raises(Boom):
            retry.call(boom)
        with pytest.raises(Boom):
            retry.call(boom)
        assert 0.0 == budget.statistics().available

        clock.advance(10.0)

        assert 1.0 == budget.statistics().available

    def test_result_retries_use_the_budget(self, invoke, clock):
        """
        Retries on bad results draw on the budget too.
        """
        budget = RetryBudget(ratio=0, min_per_second=0.1, clock=clock)
        retry = Retry(
            on_result=lambda r: r == "ok",
            attempts=5,
            wait=0,
            budget=budget,
            clock=clock,
        )

        assert "ok" == invoke(retry, ok)
        assert 1 == budget.statistics().retries

    def test_decorators_deposit(self, clock):
        """
        Calls through the sync and async decorators count in the budget.
        """
        import asyncio

        budget = RetryBudget(clock=clock)
        retry = Retry(budget=budget, clock=clock)

        async def aok() -> str:
            return "ok"

        retry(ok)()
        asyncio.run(retry(aok)())

        assert 2 == budget.statistics().calls

    def test_loop_face_deposits(self, clock):
        """
        The attempt loop counts its call in the budget.
        """
        budget = RetryBudget(clock=clock)
        retry = Retry(budget=budget, clock=clock)
        for attempt in retry:
            with attempt:
                pass

        assert 1 == budget.statistics().calls

    def test_threads_never_overspend(self, clock):
        """
        Threads racing for the budget never get more than it allows.
        """
        budget = RetryBudget(ratio=0, min_per_second=2.0, clock=clock)
        barrier = threading.Barrier(8)
        granted = []

        def worker() -> None:
            barrier.wait(timeout=10)
            granted.extend(budget._withdraw() for _ in range(10))

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert 20 == sum(granted)
        assert 60 == budget.statistics().refused

    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            ({"ratio": -1}, "'ratio' must be >= 0 (got -1)"),
            ({"ratio": math.nan}, "'ratio' must be >= 0 (got nan)"),
            (
                {"min_per_second": -0.5},
                "'min_per_second' must be >= 0 (got -0.5)",
            ),
            ({"window": 0}, "'window' must be >= 0.001 (got 0.0)"),
            ({"name": ""}, "'name' must be a non-empty str (got '')"),
        ],
        ids=["ratio", "nan", "min", "window", "name"],
    )
    def test_validation(self, settings, message):
        """
        Bad budget settings raise ConfigurationError naming field and value.
        """
        with pytest.raises(ConfigurationError) as info:
            RetryBudget(**settings)

        assert message == str(info.value)


@pytest.fixture(name="events")
def _events() -> list[object]:
    """
    A list that a hook appends every event to.
    """
    return []
