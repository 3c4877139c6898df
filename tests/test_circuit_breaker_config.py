"""
The circuit breaker's configuration: every bad value and every bad
combination raises ConfigurationError at construction, with a pinned
message.
"""

from __future__ import annotations

import pytest

from stalwart import (
    CircuitBreaker,
    CircuitOpenError,
    ConfigurationError,
    CountWindow,
    TimeWindow,
)


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
