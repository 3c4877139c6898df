"""
Values the platform cannot hold, given to Retry, its backoffs, RetryAfter
and RetryBudget: every one is accepted and a first call works, or refused
where the object is built with a ConfigurationError or a TypeError that
names the parameter.
"""

from __future__ import annotations

import math
import warnings

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import attrs
import pytest

from hypothesis import given
from hypothesis import strategies as st

from helpers import Boom
from retry_support import Flaky
from stalwart import (
    ConfigurationError,
    ConstantBackoff,
    DecorrelatedJitterBackoff,
    ExponentialBackoff,
    LinearBackoff,
    Retry,
    RetryAfter,
    RetryBudget,
)
from stalwart.testing import FakeClock


EXTREMES: list[Any] = [
    None,
    True,
    False,
    0,
    -0.0,
    -1,
    1,
    0.5,
    5e-324,
    1e-320,
    1e9,
    1e308,
    -1e308,
    10**400,
    -(10**400),
    2**63,
    math.nan,
    math.inf,
    -math.inf,
    "1",
    b"1",
    (),
    [],
    object(),
    timedelta(0),
    timedelta(seconds=-1),
    timedelta.max,
]

extremes = st.sampled_from(EXTREMES)


def _works(
    build: Callable[[], Any], name: str, use: Callable[[Any], Any]
) -> None:
    """
    Build with an extreme value: either it is refused naming *name*, or
    *use* runs on what was built without any error but the user's own
    (Boom) or a warning about the setting.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # surprising but legal settings
        try:
            built = build()
        except (ConfigurationError, TypeError) as e:
            assert repr(name) in str(e)
            return
        try:
            use(built)
        except Boom:
            pass


def _call_twice(retry: Retry) -> None:
    """
    Make a call that fails twice, then one that succeeds.
    """
    try:
        retry.call(Flaky(Boom(), Boom()))
    finally:
        assert "ok" == retry.call(Flaky())


RETRY_FIELDS = [
    "attempts",
    "timeout",
    "wait",
    "wait_initial",
    "wait_max",
    "wait_multiplier",
    "jitter",
    "retry_after_max",
    "use_retry_after",
    "honor_rejections",
    "result_exhausted",
    "name",
    "on",
    "on_result",
    "jitter_source",
    "budget",
    "hooks",
]


BACKOFFS = [
    ConstantBackoff,
    LinearBackoff,
    ExponentialBackoff,
    DecorrelatedJitterBackoff,
]


class TestEveryExtreme:
    @pytest.mark.parametrize("field", RETRY_FIELDS)
    def test_retry(self, field):
        """
        Retry takes every extreme value for each field, or refuses it.
        """
        for value in EXTREMES:
            clock = FakeClock()

            _works(
                lambda: Retry(**{"on": Boom, "clock": clock, field: value}),  # noqa: B023  # called at once
                field,
                _call_twice,
            )

    @pytest.mark.parametrize(
        ("kind", "field"),
        [
            (kind, field)
            for kind in BACKOFFS
            for field in attrs.fields_dict(kind)
        ],
        ids=lambda v: getattr(v, "__name__", v),
    )
    def test_backoffs(self, kind, field):
        """
        Every backoff takes every extreme value for each of its fields,
        or refuses it; an accepted one gives waits a clock can sleep.
        """
        for value in EXTREMES:
            clock = FakeClock()

            def use(backoff: Any) -> None:
                _call_twice(
                    Retry(on=Boom, wait=backoff, timeout=None, clock=clock)  # noqa: B023  # called at once
                )
                assert all(0.0 <= s <= 1e9 for s in clock.sleeps)  # noqa: B023  # called at once

            _works(lambda: kind(**{field: value}), field, use)  # noqa: B023  # called at once

    @pytest.mark.parametrize(
        "field", ["ratio", "min_per_second", "window", "name"]
    )
    def test_budget(self, field):
        """
        RetryBudget takes every extreme value for each field, or refuses
        it.
        """
        for value in EXTREMES:
            clock = FakeClock()

            def use(budget: RetryBudget) -> None:
                _call_twice(Retry(on=Boom, wait=0, budget=budget, clock=clock))  # noqa: B023  # called at once
                clock.advance(1e6)  # noqa: B023  # called at once
                budget.statistics()

            _works(
                lambda: RetryBudget(**{field: value, "clock": clock}),  # noqa: B023  # called at once
                field,
                use,
            )

    @given(value=extremes | st.floats() | st.integers())
    def test_retry_after(self, value):
        """
        RetryAfter takes any number of seconds, or refuses it; an accepted
        one is a wait a retry can sleep.
        """
        clock = FakeClock()

        def use(after: RetryAfter) -> None:
            _call_twice(Retry(on=lambda e: after, clock=clock))
            assert all(0.0 <= s <= 60.0 for s in clock.sleeps)

        _works(lambda: RetryAfter(value), "seconds", use)


class TestFromTheIssue:
    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (
                lambda: RetryBudget(window=5e-324),
                "'window' must be >= 0.001 (got 5e-324)",
            ),
            (
                lambda: ConstantBackoff(delay=10**400),
                (
                    "'delay' must be a number of seconds that fits a "
                    f"float (got {10**400})"
                ),
            ),
            (
                lambda: ExponentialBackoff(initial=10**400),
                (
                    "'initial' must be a number of seconds that fits a "
                    f"float (got {10**400})"
                ),
            ),
            (
                lambda: ConstantBackoff(delay=1e300),
                "'delay' must be <= 1e+09 (got 1e+300)",
            ),
            (
                lambda: DecorrelatedJitterBackoff(multiplier=None),
                "'multiplier' must be a number (got None)",
            ),
            (
                lambda: ExponentialBackoff(multiplier=None),
                "'multiplier' must be a number (got None)",
            ),
            (
                lambda: ExponentialBackoff(multiplier=10**400),
                f"'multiplier' must be finite (got {10**400})",
            ),
            (
                lambda: Retry(wait_multiplier=None),
                "'wait_multiplier' must be a number (got None)",
            ),
            (
                lambda: RetryBudget(ratio=None),
                "'ratio' must be a number (got None)",
            ),
            (
                lambda: RetryBudget(min_per_second=None),
                "'min_per_second' must be a number (got None)",
            ),
            (
                lambda: RetryBudget(ratio=10**400),
                f"'ratio' must be finite (got {10**400})",
            ),
            (
                lambda: RetryBudget(min_per_second=True),
                "'min_per_second' must be a number (got True)",
            ),
            (
                lambda: RetryAfter(-1),
                "'seconds' must be >= 0 (got -1.0)",
            ),
            (
                lambda: RetryAfter(math.nan),
                "'seconds' must be a number, not NaN (got nan)",
            ),
        ],
        ids=[
            "budget-window",
            "constant-huge-int",
            "exponential-huge-int",
            "constant-huge",
            "decorrelated-none",
            "exponential-none",
            "exponential-huge-int-multiplier",
            "retry-multiplier-none",
            "budget-ratio-none",
            "budget-min-none",
            "budget-ratio-huge-int",
            "budget-min-bool",
            "after-negative",
            "after-nan",
        ],
    )
    def test_refused_where_built(self, build, message):
        """
        Each is refused where it is built, naming the field and the value.
        """
        with pytest.raises(ConfigurationError) as info:
            build()

        assert message == str(info.value)

    def test_huge_budget_works(self):
        """
        A budget with the largest finite settings grants retries.
        """
        clock = FakeClock()
        budget = RetryBudget(
            ratio=1e308, min_per_second=1e308, window=1e308, clock=clock
        )
        retry = Retry(on=Boom, wait=0, budget=budget, clock=clock)

        assert "ok" == retry.call(Flaky(Boom(), Boom()))
        assert 2 == budget.statistics().retries
