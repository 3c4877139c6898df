"""
Properties of the pure backoff arithmetic and of the backoff strategies.
"""

from __future__ import annotations

import math

import pytest

from hypothesis import given
from hypothesis import strategies as st

from stalwart import (
    ConstantBackoff,
    DecorrelatedJitterBackoff,
    ExponentialBackoff,
    LinearBackoff,
)
from stalwart._core import backoff


delays = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
caps = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
multipliers = st.floats(min_value=1.0, max_value=1e3, allow_nan=False)
attempts = st.integers(min_value=1, max_value=10_000)
uniforms = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
# What a misbehaving jitter source may return.
any_draws = st.floats() | st.integers(-(10**30), 10**30)
fractions = st.floats(min_value=0.0, max_value=1.0, exclude_min=True)
jitters = st.sampled_from(["none", "full", "equal"]) | fractions


def within(delay: float, cap: float) -> bool:
    """
    Tell whether *delay* is a finite wait in ``[0, cap]``.
    """
    return math.isfinite(delay) and 0.0 <= delay <= cap


class TestClamp:
    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            (-1.0, 0.0),
            (math.nan, 0.0),
            (math.inf, 5.0),
            (2.5, 2.5),
            (7.0, 5.0),
            (3, 3.0),
        ],
        ids=["negative", "nan", "inf", "inside", "above", "int"],
    )
    def test_clamp(self, raw, expected):
        """
        Clamping keeps waits in [0, cap] and turns NaN into zero.
        """
        result = backoff.clamp(raw, 5.0)

        assert expected == result
        assert float is type(result)


class TestUnit:
    @pytest.mark.parametrize(
        ("draw", "expected"),
        [
            (0.25, 0.25),
            (1.5, 1.0),
            (-0.5, 0.0),
            (math.nan, 0.0),
            (math.inf, 1.0),
            (-math.inf, 0.0),
        ],
        ids=["inside", "above", "below", "nan", "inf", "-inf"],
    )
    def test_unit(self, draw, expected):
        """
        A draw is brought into [0, 1]; NaN counts as 0.
        """
        assert expected == backoff.unit(draw)

    def test_clamp_huge_int(self):
        """
        An int beyond the float range clamps to the cap.
        """
        assert 5.0 == backoff.clamp(10**400, 5.0)


class TestAnyDraw:
    @given(
        delay=delays,
        cap=caps,
        kind=jitters,
        u=any_draws,
    )
    def test_jitter_within_cap(self, delay, cap, kind, u):
        """
        Whatever the draw, a jittered wait stays within [0, cap].
        """
        delay = min(delay, cap)

        assert within(backoff.jitter(delay, kind, cap, u), cap)

    @given(
        previous=delays,
        initial=delays,
        multiplier=multipliers,
        cap=caps,
        u=any_draws,
    )
    def test_decorrelated_within_cap(
        self, previous, initial, multiplier, cap, u
    ):
        """
        Whatever the draw, a decorrelated wait stays within [0, cap].
        """
        delay = backoff.decorrelated(previous, initial, multiplier, cap, u)

        assert within(delay, cap)


class TestExponential:
    @given(attempt=attempts, initial=delays, multiplier=multipliers, cap=caps)
    def test_bounded(self, attempt, initial, multiplier, cap):
        """
        Every exponential delay is finite and within [0, cap].
        """
        delay = backoff.exponential(attempt, initial, multiplier, cap)

        assert within(delay, cap)

    @given(attempt=attempts, initial=delays, multiplier=multipliers, cap=caps)
    def test_monotonic(self, attempt, initial, multiplier, cap):
        """
        Exponential delays never decrease from one attempt to the next.
        """
        first = backoff.exponential(attempt, initial, multiplier, cap)
        second = backoff.exponential(attempt + 1, initial, multiplier, cap)

        assert first <= second

    def test_exact_values(self):
        """
        The delays are initial * multiplier ** (n - 1) until the cap.
        """
        delays = [backoff.exponential(n, 0.5, 2.0, 5.0) for n in range(1, 6)]

        assert [0.5, 1.0, 2.0, 4.0, 5.0] == delays

    @pytest.mark.parametrize("attempt", [1_100, 10_000, 10**9])
    def test_no_overflow(self, attempt):
        """
        Huge attempt numbers give the cap, not an OverflowError.
        """
        assert 30.0 == backoff.exponential(attempt, 0.1, 2.0, 30.0)

    def test_zero_initial(self):
        """
        A zero initial delay stays zero whatever the attempt.
        """
        assert 0.0 == backoff.exponential(10_000, 0.0, 2.0, 30.0)


class TestLinear:
    @given(attempt=attempts, initial=delays, increment=delays, cap=caps)
    def test_bounded_and_monotonic(self, attempt, initial, increment, cap):
        """
        Linear delays stay within [0, cap] and never decrease.
        """
        first = backoff.linear(attempt, initial, increment, cap)
        second = backoff.linear(attempt + 1, initial, increment, cap)

        assert within(first, cap)
        assert first <= second

    def test_exact_values(self):
        """
        The delays are initial + increment * (n - 1) until the cap.
        """
        delays = [backoff.linear(n, 1.0, 0.5, 2.5) for n in range(1, 6)]

        assert [1.0, 1.5, 2.0, 2.5, 2.5] == delays


class TestConstant:
    @given(delay=delays, cap=caps)
    def test_bounded(self, delay, cap):
        """
        A constant delay is clamped to the cap.
        """
        assert min(delay, cap) == backoff.constant(delay, cap)


class TestJitter:
    @given(delay=delays, u=uniforms)
    def test_full(self, delay, u):
        """
        Full jitter draws from [0, delay].
        """
        assert 0.0 <= backoff.jitter(delay, "full", delay, u) <= delay

    @given(delay=delays, u=uniforms)
    def test_equal(self, delay, u):
        """
        Equal jitter draws from [delay / 2, delay].
        """
        jittered = backoff.jitter(delay, "equal", delay, u)

        assert delay / 2 <= jittered <= delay

    def test_none(self):
        """
        No jitter keeps the delay as it is.
        """
        assert 3.0 == backoff.jitter(3.0, "none", 5.0, 0.9)

    @given(delay=delays, cap=caps, fraction=fractions, u=uniforms)
    def test_fraction_never_above_cap(self, delay, cap, fraction, u):
        """
        A +/- fraction stays within its band and never above the cap.
        """
        delay = min(delay, cap)
        jittered = backoff.jitter(delay, fraction, cap, u)

        assert within(jittered, cap)
        assert delay * (1 - fraction) * (1 - 1e-12) <= jittered
        assert jittered <= delay * (1 + fraction) * (1 + 1e-12)

    def test_fraction_exact(self):
        """
        u=0 gives the bottom of the band, u near 1 the top (capped).
        """
        assert 0.5 == backoff.jitter(1.0, 0.5, 5.0, 0.0)
        assert 1.2 == backoff.jitter(1.0, 0.5, 1.2, 0.999999)

    def test_unknown_kind(self):
        """
        An unknown kind is a bug caught at build time, unreachable here.
        """
        with pytest.raises(AssertionError, match="unreachable"):
            backoff.jitter(1.0, "bogus", 5.0, 0.5)


class TestDecorrelated:
    @given(
        previous=delays,
        initial=delays,
        multiplier=multipliers,
        cap=caps,
        u=uniforms,
    )
    def test_bounded(self, previous, initial, multiplier, cap, u):
        """
        Decorrelated jitter stays within [min(initial, cap), cap].
        """
        delay = backoff.decorrelated(previous, initial, multiplier, cap, u)

        assert within(delay, cap)
        assert min(initial, cap) <= delay

    def test_first_draw(self):
        """
        Before any wait the draw spans [initial, initial * multiplier].
        """
        assert 1.0 == backoff.decorrelated(0.0, 1.0, 3.0, 100.0, 0.0)
        assert 2.0 == backoff.decorrelated(0.0, 1.0, 3.0, 100.0, 0.5)

    def test_huge_previous(self):
        """
        A previous wait whose product overflows draws up to the cap.
        """
        assert 1.0 + 0.99 * 6.0 == backoff.decorrelated(
            1e308, 1.0, 10.0, 7.0, 0.99
        )

    @given(
        initial=delays, multiplier=multipliers, cap=caps, us=st.lists(uniforms)
    )
    def test_sequence_bounded(self, initial, multiplier, cap, us):
        """
        A whole sequence of decorrelated waits stays within bounds.
        """
        previous = 0.0
        for u in us:
            previous = backoff.decorrelated(
                previous, initial, multiplier, cap, u
            )

            assert within(previous, cap)


class TestStrategies:
    @given(
        attempt=attempts,
        initial=delays,
        multiplier=multipliers,
        cap=caps,
        jitter=jitters,
        u=uniforms,
    )
    def test_exponential(  # noqa: PLR0917  # one argument per strategy
        self, attempt, initial, multiplier, cap, jitter, u
    ):
        """
        ExponentialBackoff never goes above its cap, jitter included.
        """
        strategy = ExponentialBackoff(
            initial=initial, multiplier=multiplier, cap=cap, jitter=jitter
        )

        assert within(strategy.compute(attempt, 0.0, u), cap)

    @given(
        attempt=attempts,
        initial=delays,
        increment=delays,
        cap=caps,
        jitter=jitters,
        u=uniforms,
    )
    def test_linear(  # noqa: PLR0917  # one argument per strategy
        self, attempt, initial, increment, cap, jitter, u
    ):
        """
        LinearBackoff never goes above its cap, jitter included.
        """
        strategy = LinearBackoff(
            initial=initial, increment=increment, cap=cap, jitter=jitter
        )

        assert within(strategy.compute(attempt, 0.0, u), cap)

    @given(
        previous=delays,
        initial=delays,
        multiplier=multipliers,
        cap=caps,
        u=uniforms,
    )
    def test_decorrelated(self, previous, initial, multiplier, cap, u):
        """
        DecorrelatedJitterBackoff never goes above its cap.
        """
        strategy = DecorrelatedJitterBackoff(
            initial=initial, multiplier=multiplier, cap=cap
        )

        assert within(strategy.compute(1, previous, u), cap)

    def test_constant(self):
        """
        ConstantBackoff always gives its delay and draws nothing.
        """
        strategy = ConstantBackoff(delay=2.0)

        assert 2.0 == strategy.compute(10_000, 5.0, 0.3)
        assert not strategy.uses_random

    @pytest.mark.parametrize(
        ("strategy", "uses_random"),
        [
            (ExponentialBackoff(jitter="none"), False),
            (ExponentialBackoff(jitter="full"), True),
            (LinearBackoff(), False),
            (LinearBackoff(jitter=0.1), True),
            (DecorrelatedJitterBackoff(), True),
        ],
        ids=["exp-none", "exp-full", "linear-none", "linear-frac", "decor"],
    )
    def test_uses_random(self, strategy, uses_random):
        """
        A strategy asks for a random draw only when it jitters.
        """
        assert uses_random is strategy.uses_random

    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (
                lambda: ConstantBackoff(delay=-1),
                "'delay' must be >= 0 (got -1.0)",
            ),
            (
                lambda: ExponentialBackoff(multiplier=0.5),
                "'multiplier' must be >= 1 (got 0.5)",
            ),
            (
                lambda: ExponentialBackoff(cap=math.inf),
                "'cap' must be <= 1e+09 (got inf)",
            ),
            (
                lambda: LinearBackoff(jitter="half"),
                (
                    "'jitter' must be 'none', 'full', 'equal' or a fraction in "
                    "(0, 1] (got 'half')"
                ),
            ),
            (
                lambda: LinearBackoff(jitter=1.5),
                (
                    "'jitter' must be 'none', 'full', 'equal' or a fraction in "
                    "(0, 1] (got 1.5)"
                ),
            ),
            (
                lambda: LinearBackoff(jitter=True),
                (
                    "'jitter' must be 'none', 'full', 'equal' or a fraction in "
                    "(0, 1] (got True)"
                ),
            ),
            (
                lambda: DecorrelatedJitterBackoff(initial="1"),
                "'initial' must be a number of seconds or a timedelta (got '1')",
            ),
        ],
        ids=[
            "negative",
            "multiplier",
            "inf",
            "jitter-str",
            "jitter-big",
            "jitter-bool",
            "type",
        ],
    )
    def test_validation(self, build, message):
        """
        Bad backoff settings raise ConfigurationError naming field and value.
        """
        from stalwart import ConfigurationError

        with pytest.raises(ConfigurationError) as info:
            build()

        assert message == str(info.value)
