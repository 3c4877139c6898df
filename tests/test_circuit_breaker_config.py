"""
The circuit breaker's configuration: every bad value and every bad
combination raises ConfigurationError at construction, with a pinned
message.
"""

from __future__ import annotations

import math
import sys

from typing import Any

import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from breaker_model import consecutive, count_in_window, rates
from helpers import Boom, boom, ok
from stalwart import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    CountWindow,
    TimeWindow,
)
from stalwart.testing import FakeClock


class TestFields:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"name": ""}, "'name' must be a non-empty str (got '')"),
            (
                {"failure_threshold": 0},
                "'failure_threshold' must be >= 1 (got 0)",
            ),
            (
                {"failure_threshold": 1.5},
                "'failure_threshold' must be an int (got 1.5)",
            ),
            (
                {"failure_rate": 0, "window": CountWindow(5)},
                "'failure_rate' must be > 0 (got 0)",
            ),
            (
                {"failure_rate": 1.5, "window": CountWindow(5)},
                "'failure_rate' must be <= 1 (got 1.5)",
            ),
            ({"recovery_time": -1}, "'recovery_time' must be >= 0 (got -1.0)"),
            (
                {"recovery_time": float("inf")},
                "'recovery_time' must be finite (got inf)",
            ),
            (
                {"recovery_multiplier": 0.5},
                "'recovery_multiplier' must be >= 1 (got 0.5)",
            ),
            (
                {"half_open_max_calls": 0},
                "'half_open_max_calls' must be >= 1 (got 0)",
            ),
            (
                {"half_open_max_wait": 0},
                "'half_open_max_wait' must be > 0 (got 0.0)",
            ),
            (
                {"window": 5},
                "'window' must be a CountWindow, a TimeWindow or None (got 5)",
            ),
            (
                {"failure_on": 5},
                "'failure_on' must be an exception type, a tuple of them, or a predicate (got 5)",
            ),
            (
                {"failure_result": 5},
                "'failure_result' must be callable (got 5)",
            ),
            ({"hooks": 5}, "'hooks' must be an iterable of callables (got 5)"),
        ],
        ids=lambda v: str(v)[:40] if isinstance(v, dict) else "",
    )
    def test_bad_value(self, kwargs, message):
        """
        A bad value names the field and the value.
        """
        with pytest.raises(ConfigurationError) as e:
            CircuitBreaker(**kwargs)

        assert message == str(e.value)

    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (lambda: CountWindow(0), "'size' must be >= 1 (got 0)"),
            (lambda: CountWindow(2.0), "'size' must be an int (got 2.0)"),
            (lambda: TimeWindow(0), "'length' must be > 0 (got 0.0)"),
            (
                lambda: TimeWindow(1, buckets=0),
                "'buckets' must be >= 1 (got 0)",
            ),
        ],
        ids=["count-0", "count-float", "time-0", "buckets-0"],
    )
    def test_bad_window(self, build, message):
        """
        Windows validate their own fields.
        """
        with pytest.raises(ConfigurationError) as e:
            build()

        assert message == str(e.value)


class TestCombinations:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {"failure_threshold": None},
                (
                    "a policy is needed: 'failure_threshold', 'failure_rate' or"
                    " 'slow_call_rate' (got none)"
                ),
            ),
            (
                {"failure_rate": 0.5},
                (
                    "'failure_rate' and 'slow_call_rate' need a 'window' (a"
                    " CountWindow or a TimeWindow)"
                ),
            ),
            (
                {"minimum_calls": 3},
                (
                    "'minimum_calls' applies only with 'failure_rate' or"
                    " 'slow_call_rate' (got 3)"
                ),
            ),
            (
                {"failure_threshold": 4, "window": CountWindow(3)},
                "'failure_threshold' must be <= the window's size 3 (got 4)",
            ),
            (
                {"recovery_multiplier": 2},
                (
                    "'recovery_max' is required when 'recovery_multiplier' > 1"
                    " (got recovery_multiplier=2)"
                ),
            ),
            (
                {"recovery_max": 60},
                (
                    "'recovery_max' needs a 'recovery_multiplier' > 1 (got"
                    " recovery_max=60.0)"
                ),
            ),
            (
                {"recovery_multiplier": 2, "recovery_max": 10},
                "'recovery_max' must be >= 'recovery_time' 30 (got 10.0)",
            ),
            (
                {"success_threshold": 2},
                (
                    "'success_threshold' must be <= 'half_open_max_calls' 1"
                    " (got 2)"
                ),
            ),
        ],
        ids=[
            "no-policy",
            "rate-without-window",
            "minimum-without-rate",
            "threshold-above-window",
            "multiplier-without-max",
            "max-without-multiplier",
            "max-below-recovery",
            "success-above-slots",
        ],
    )
    def test_single_problem(self, kwargs, message):
        """
        A bad combination raises with its own message.
        """
        with pytest.raises(ConfigurationError) as e:
            CircuitBreaker(**kwargs)

        assert message == str(e.value)

    def test_every_problem_listed(self):
        """
        Several problems are reported together.
        """
        with pytest.raises(ConfigurationError) as e:
            CircuitBreaker(
                failure_threshold=3,
                failure_rate=0.5,
                slow_call_rate=0.5,
                window=CountWindow(4),
                minimum_calls=5,
                success_threshold=2,
            )

        assert (
            "invalid configuration:\n"
            "- 'failure_threshold' cannot be combined with 'failure_rate' or"
            " 'slow_call_rate' (got failure_threshold=3)\n"
            "- 'slow_call_rate' and 'slow_call_duration' go together (got"
            " slow_call_rate=0.5, slow_call_duration=None)\n"
            "- 'minimum_calls' must be <= the window's size 4 (got 5)\n"
            "- 'success_threshold' applies only to 'failure_threshold'"
            " policies; a rate policy decides after 'half_open_max_calls'"
            " trials (got 2)"
        ) == str(e.value)

    def test_failure_threshold_defaults_to_five(self):
        """
        Without a rate the policy is 5 consecutive failures; with one,
        failure_threshold is None.
        """
        rated = CircuitBreaker(failure_rate=0.5, window=TimeWindow(60))

        assert 5 == CircuitBreaker().failure_threshold
        assert rated.failure_threshold is None


class TestCircuitOpenError:
    def test_attributes_can_be_set(self):
        """
        The attributes read from args can still be assigned.
        """
        err = CircuitOpenError("a", 1.0)
        err.name = "b"
        err.retry_after = 2.0

        assert ("b", 2.0) == (err.name, err.retry_after)
        assert ("b", 2.0) == err.args

    def test_keyword_and_fast_construction(self):
        """
        Built with keywords, or by the breaker with __new__ alone, the
        error is the same.
        """
        by_keyword = CircuitOpenError("a", retry_after=1.5)
        fast = CircuitOpenError.__new__(CircuitOpenError, "a", 1.5)

        assert repr(by_keyword) == repr(fast)
        assert str(by_keyword) == str(fast)
        assert 1.5 == fast.retry_after


class TestExtremes:
    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (
                lambda: CountWindow(2**63),
                (
                    "'size' must be <= 9223372036854775807 (sys.maxsize, the"
                    " most outcomes this platform can hold) (got"
                    " 9223372036854775808)"
                ),
            ),
            (lambda: CountWindow(None), "'size' must be an int (got None)"),
            (lambda: CountWindow(True), "'size' must be an int (got True)"),
            (
                lambda: TimeWindow(1e-320),
                (
                    "'length' must be at least 1e-09 s per bucket (>= 1e-08"
                    " with 10 buckets) (got 1e-320)"
                ),
            ),
            (
                lambda: TimeWindow(1.0, buckets=2**63),
                "'buckets' must be <= 100000 (got 9223372036854775808)",
            ),
            (
                lambda: TimeWindow(1.0, buckets=None),
                "'buckets' must be an int (got None)",
            ),
            (
                lambda: TimeWindow(float("nan")),
                "'length' must be a number, not NaN (got nan)",
            ),
            (
                lambda: TimeWindow(float("inf")),
                "'length' must be finite (got inf)",
            ),
            (
                lambda: CircuitBreaker(half_open_max_calls=None),
                "'half_open_max_calls' must be an int (got None)",
            ),
            (
                lambda: CircuitBreaker(success_threshold=None),
                "'success_threshold' must be an int (got None)",
            ),
            (
                lambda: CircuitBreaker(recovery_multiplier=None),
                "'recovery_multiplier' must be a number (got None)",
            ),
            (
                lambda: CircuitBreaker(recovery_multiplier=float("nan")),
                "'recovery_multiplier' must be finite (got nan)",
            ),
            (
                lambda: CircuitBreaker(recovery_time=True),
                (
                    "'recovery_time' must be a number of seconds or a"
                    " timedelta (got True)"
                ),
            ),
        ],
        ids=[
            "count-2**63",
            "count-None",
            "count-bool",
            "time-1e-320",
            "buckets-2**63",
            "buckets-None",
            "time-nan",
            "time-inf",
            "trials-None",
            "successes-None",
            "multiplier-None",
            "multiplier-nan",
            "recovery-bool",
        ],
    )
    def test_refused_where_built(self, build, message):
        """
        Values the platform cannot hold, NaN, infinities, bools and None
        where a number is needed are refused where they are built, naming
        the field.
        """
        with pytest.raises(ConfigurationError) as e:
            build()

        assert message == str(e.value)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {"recovery_multiplier": 10**400, "recovery_max": 60},
                "'recovery_multiplier' must be finite",
            ),
            ({"failure_rate": 10**400}, "'failure_rate' must be <= 1"),
            ({"half_open_max_calls": -(10**400)}, "'half_open_max_calls'"),
        ],
        ids=["multiplier", "rate", "trials"],
    )
    def test_huge_ints_are_named(self, kwargs, message):
        """
        Ints too large for a float are compared as ints: the error is a
        ConfigurationError naming the field, not an OverflowError.
        """
        with pytest.raises(ConfigurationError, match=message):
            CircuitBreaker(window=CountWindow(5), **kwargs)

    def test_zero_recovery_time_cannot_grow(self):
        """
        recovery_time=0 with a recovery_multiplier above 1 is refused: a
        zero open period would never grow.
        """
        with pytest.raises(ConfigurationError) as e:
            CircuitBreaker(
                recovery_time=0, recovery_multiplier=2, recovery_max=10
            )

        assert (
            "'recovery_time' must be > 0 when 'recovery_multiplier' > 1: a"
            " zero open period never grows (got recovery_time=0.0,"
            " recovery_multiplier=2)"
        ) == str(e.value)

    def test_largest_count_window_works(self, clock):
        """
        The largest CountWindow is accepted and works: its memory follows
        the calls recorded, not its size.
        """
        cb = CircuitBreaker(
            failure_rate=0.5,
            window=CountWindow(sys.maxsize),
            minimum_calls=2,
            clock=clock,
        )
        cb.call(ok)
        with pytest.raises(Boom):
            cb.call(boom)

        assert CircuitState.OPEN == cb.state
        assert 2 == len(cb._core.window._flags)  # type: ignore[union-attr]

    def test_tiny_half_open_wait(self):
        """
        A half_open_max_wait too small for the clock's scale ends at once:
        the next call finds the breaker open again, never a refusal with
        retry_after 0.
        """
        clock = FakeClock(start=1e6)
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=1,
            half_open_max_wait=5e-324,
            clock=clock,
        )
        with pytest.raises(Boom):
            cb.call(boom)
        clock.advance(1)
        cb.acquire()
        with pytest.raises(CircuitOpenError) as e:
            cb.call(ok)

        assert 1.0 == e.value.retry_after
        assert CircuitState.OPEN == cb.state


EXTREMES = [
    None,
    True,
    False,
    0,
    -0.0,
    1,
    -1,
    0.5,
    2,
    2**63,
    -(2**63),
    10**400,
    5e-324,
    1e-320,
    1e308,
    -1e308,
    math.inf,
    -math.inf,
    math.nan,
    "1",
    object(),
]

FIELDS = [
    "name",
    "failure_rate",
    "slow_call_rate",
    "failure_threshold",
    "minimum_calls",
    "slow_call_duration",
    "recovery_time",
    "recovery_multiplier",
    "recovery_max",
    "half_open_max_calls",
    "success_threshold",
    "half_open_max_wait",
    "failure_on",
    "ignore",
    "failure_result",
    "hooks",
    "clock",
]


@st.composite
def windows(draw: st.DrawFn) -> Any:
    """
    None, or a window built from extreme values (or what building it
    raised).
    """
    kind = draw(st.sampled_from(["none", "count", "time"]))
    if kind == "none":
        return None
    try:
        if kind == "count":
            return CountWindow(draw(st.sampled_from(EXTREMES)))
        return TimeWindow(
            draw(st.sampled_from(EXTREMES)),
            buckets=draw(st.sampled_from([*EXTREMES, 10])),
        )
    except (ConfigurationError, TypeError) as e:
        return e


class TestFuzz:
    @settings(max_examples=400, deadline=None)
    @given(
        base=st.one_of(consecutive(), count_in_window(), rates()),
        extremes=st.dictionaries(
            st.sampled_from(FIELDS),
            st.sampled_from(EXTREMES),
            max_size=2,
        ),
        window=st.one_of(st.just("base"), windows()),
        advance=st.sampled_from([0.0, 1.0, 1e6, 1e300]),
    )
    def test_refused_where_built_or_working(
        self, base, extremes, window, advance
    ):
        """
        A valid configuration with extreme values put into one or two of
        its fields (or its window) is either refused where the breaker or
        its window is built, with ConfigurationError or TypeError, or gives
        a breaker whose calls, refusals, trials and reads all work.
        """
        if isinstance(window, Exception):
            return  # refused where the window was built
        cfg = {**base, **extremes}
        if window != "base":
            cfg["window"] = window
        clock = FakeClock()
        try:
            cb = CircuitBreaker(**{"clock": clock, **cfg})
        except (ConfigurationError, TypeError):
            return
        for _ in range(4):
            for fn in (boom, ok):
                try:
                    cb.call(fn)
                except (Boom, CircuitOpenError):
                    pass
                except Exception as e:  # noqa: BLE001
                    # failure_on / failure_result were given extreme values
                    # that are accepted only as predicates: none is callable
                    raise AssertionError(cfg) from e
            clock.advance(advance)
        stats = cb.statistics()

        assert stats.state == cb.state
        assert stats.calls + stats.rejected == 8
