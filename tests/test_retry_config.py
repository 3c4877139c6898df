"""
Retry's configuration: validation at build, warnings for surprising
values, and the test-mode switch users flip in their own suites.
"""

from __future__ import annotations

import math
import random

from datetime import timedelta
from typing import Any

import pytest

from helpers import Boom, boom
from stalwart import (
    ConfigurationError,
    ConstantBackoff,
    ExponentialBackoff,
    Retry,
    RetryBudget,
)
from stalwart.testing import FakeClock, retry_testing, set_retry_testing


async def _apredicate(*args: Any) -> bool:
    """
    An async predicate, hook or wait function: always refused.
    """
    return True  # never awaited


class TestValidation:
    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            ({"name": ""}, "'name' must be a non-empty str (got '')"),
            ({"attempts": 0}, "'attempts' must be >= 1 (got 0)"),
            ({"attempts": 2.5}, "'attempts' must be an int (got 2.5)"),
            ({"timeout": -1}, "'timeout' must be >= 0 (got -1.0)"),
            ({"timeout": math.inf}, "'timeout' must be finite (got inf)"),
            (
                {"on": KeyboardInterrupt},
                (
                    "'on' must name Exception subclasses; KeyboardInterrupt is "
                    "never retried (got <class 'KeyboardInterrupt'>)"
                ),
            ),
            (
                {"on": 42},
                (
                    "'on' must be an exception type, a tuple of them, or a "
                    "predicate (got 42)"
                ),
            ),
            ({"on_result": 1}, "'on_result' must be callable (got 1)"),
            (
                {"result_exhausted": "never"},
                "'result_exhausted' must be 'return' or 'raise' (got 'never')",
            ),
            (
                {"wait_initial": 2, "wait_max": 1},
                "'wait_max' must be >= 'wait_initial' (got 1.0 < 2.0)",
            ),
            (
                {"wait_multiplier": 0.5},
                "'wait_multiplier' must be >= 1 (got 0.5)",
            ),
            ({"wait_max": -1}, "'wait_max' must be >= 0 (got -1.0)"),
            (
                {"jitter": "lots"},
                (
                    "'jitter' must be 'none', 'full', 'equal' or a fraction in "
                    "(0, 1] (got 'lots')"
                ),
            ),
            (
                {"wait": "x"},
                (
                    "'wait' must be a backoff, a number of seconds or a callable "
                    "(got 'x')"
                ),
            ),
            (
                {"wait": -1},
                "'wait' must be a number of seconds in [0, 1e+09] (got -1)",
            ),
            (
                {"wait": math.inf},
                "'wait' must be a number of seconds in [0, 1e+09] (got inf)",
            ),
            (
                {"use_retry_after": "yes"},
                "'use_retry_after' must be a bool (got 'yes')",
            ),
            (
                {"retry_after_max": -1},
                "'retry_after_max' must be >= 0 (got -1.0)",
            ),
            (
                {"jitter_source": 3},
                (
                    "'jitter_source' must be a random.Random or a callable "
                    "(got 3)"
                ),
            ),
            (
                {"budget": 3},
                "'budget' must be a RetryBudget or None (got 3)",
            ),
            (
                {"hooks": 3},
                "'hooks' must be an iterable of callables (got 3)",
            ),
            (
                {"on": None},
                (
                    "'on' must be an exception type, a tuple of them, or a "
                    "predicate (got None); on=() retries no exception"
                ),
            ),
            (
                {"wait_multiplier": None},
                "'wait_multiplier' must be a number (got None)",
            ),
            (
                {"wait_multiplier": 10**400},
                f"'wait_multiplier' must be finite (got {10**400})",
            ),
            (
                {"wait_max": 1e300},
                "'wait_max' must be <= 1e+09 (got 1e+300)",
            ),
            (
                {"wait_max": math.nan},
                "'wait_max' must be a number, not NaN (got nan)",
            ),
            (
                {"retry_after_max": math.inf},
                "'retry_after_max' must be <= 1e+09 (got inf)",
            ),
            (
                {"wait": 1e300},
                "'wait' must be a number of seconds in [0, 1e+09] (got 1e+300)",
            ),
            (
                {"wait": 10**400},
                f"'wait' must be a number of seconds in [0, 1e+09] (got {10**400})",
            ),
            (
                {"wait": math.nan},
                "'wait' must be a number of seconds in [0, 1e+09] (got nan)",
            ),
            (
                {"attempts": True},
                "'attempts' must be an int (got True)",
            ),
            (
                {"timeout": 10**400},
                (
                    "'timeout' must be a number of seconds that fits a "
                    f"float (got {10**400})"
                ),
            ),
            (
                {"honor_rejections": None},
                "'honor_rejections' must be a bool (got None)",
            ),
            (
                {"wait_initial": 10},
                "'wait_max' must be >= 'wait_initial' (got 5.0 (the default) < 10.0)",
            ),
        ],
        ids=lambda v: (
            "-".join(f"{k}={str(x)[:12]}" for k, x in v.items())
            if isinstance(v, dict)
            else None
        ),
    )
    def test_single_field(self, settings, message):
        """
        Each bad value raises ConfigurationError naming field and value.
        """
        with pytest.raises(ConfigurationError) as info:
            Retry(**settings)

        assert message == str(info.value)

    def test_wait_conflicts_are_collected(self):
        """
        wait= with other wait settings lists every conflict at once.
        """
        with pytest.raises(ConfigurationError) as info:
            Retry(
                wait=ConstantBackoff(),
                wait_initial=1,
                wait_max=9,
                jitter="none",
            )

        assert (
            "invalid configuration:\n"
            "- 'wait_initial' cannot be set together with 'wait' (got 1.0)\n"
            "- 'jitter' cannot be set together with 'wait' (got 'none')\n"
            "- 'wait_max' cannot be set together with 'wait' (got 9.0)"
        ) == str(info.value)

    def test_wait_function_takes_wait_max(self):
        """
        A wait callable may be combined with wait_max, its cap.
        """
        retry = Retry(wait=lambda attempt, outcome: 1.0, wait_max=2.0)

        assert 2.0 == retry.wait_max

    def test_wait_max_defaults_to_none(self):
        """
        wait_max is None unless given: the default backoff caps at 5 s,
        a wait callable is not capped.
        """
        assert Retry().wait_max is None
        assert 5.0 == Retry()._strategy.cap  # type: ignore[union-attr]

    def test_huge_attempt_limit(self):
        """
        An attempt limit beyond the float range is a fine limit.
        """
        clock = FakeClock()
        retry = Retry(attempts=10**400, on=Boom, wait=1, clock=clock)
        calls = []

        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise Boom
            return "ok"

        assert "ok" == retry.call(flaky)
        assert [1.0, 1.0] == clock.sleeps

    @pytest.mark.parametrize(
        ("settings", "name"),
        [
            ({"on": _apredicate}, "on"),
            ({"on_result": _apredicate}, "on_result"),
            ({"hooks": [_apredicate]}, "hooks"),
            ({"wait": _apredicate}, "wait"),
            ({"jitter_source": _apredicate}, "jitter_source"),
        ],
        ids=["on", "on_result", "hooks", "wait", "jitter_source"],
    )
    def test_async_callables_refused(self, settings, name):
        """
        An async def where a plain callable is needed raises a TypeError
        naming the field: its coroutine would never be an answer.
        """
        with pytest.raises(TypeError) as info:
            Retry(**settings)

        assert str(info.value).startswith(
            f"{name!r} must be a plain (sync) callable, not an async one"
        )

    def test_jitter_source_accepts_random(self):
        """
        A random.Random instance is used through its random() method.
        """
        rng = random.Random(3)

        retry = Retry(jitter_source=rng)

        assert random.Random(3).random() == retry.jitter_source()

    def test_defaults(self):
        """
        Defaults bound both attempts and time, and back off exponentially.
        """
        retry = Retry()

        assert 10 == retry.attempts
        assert 45.0 == retry.timeout
        assert ExponentialBackoff(initial=0.1, cap=5.0) == retry._strategy

    def test_durations_accept_timedelta(self):
        """
        Durations may be given as timedelta and are kept as float seconds.
        """
        retry = Retry(
            timeout=timedelta(minutes=1), wait_max=timedelta(seconds=1)
        )

        assert 60.0 == retry.timeout
        assert 1.0 == retry.wait_max

    def test_repr_hides_machinery(self):
        """
        The repr shows the configuration, not the clock or the counters.
        """
        text = repr(Retry(name="db", clock=FakeClock()))

        assert text.startswith("Retry(name='db', attempts=10, timeout=45.0")
        assert "clock" not in text
        assert "_core" not in text


class TestWarnings:
    def test_unbounded(self):
        """
        attempts=None with timeout=None warns at the caller's line.
        """
        with pytest.warns(UserWarning, match="retries forever") as record:
            Retry(attempts=None, timeout=None)

        assert __file__ == record[0].filename

    def test_zero_timeout(self):
        """
        timeout=0 warns that the retry can never retry.
        """
        with pytest.warns(UserWarning, match="never retries") as record:
            Retry(timeout=0)

        assert __file__ == record[0].filename

    def test_empty_budget(self):
        """
        A budget that can never grant a retry warns at the caller's line.
        """
        with pytest.warns(UserWarning, match="never allows") as record:
            RetryBudget(ratio=0, min_per_second=0)

        assert __file__ == record[0].filename


class TestTestingMode:
    def test_waits_off(self):
        """
        In test mode retries happen without any wait, even dictated ones.
        """
        clock = FakeClock()
        retry = Retry(on=Boom, wait=5.0, clock=clock)
        calls = []

        def flaky() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise Boom
            return "ok"

        with retry_testing():
            assert "ok" == retry.call(flaky)

        assert [] == clock.sleeps
        assert 3 == len(calls)

    def test_attempts_capped(self):
        """
        Test mode may cap the attempts of every retry.
        """
        clock = FakeClock()
        retry = Retry(on=Boom, attempts=10, clock=clock)
        calls: list[Any] = []

        def failing() -> None:
            calls.append(1)
            raise Boom

        with retry_testing(attempts=2), pytest.raises(Boom):
            retry.call(failing)

        assert 2 == len(calls)

    def test_switch(self):
        """
        set_retry_testing turns test mode on and off for every retry.
        """
        clock = FakeClock()
        retry = Retry(on=Boom, attempts=2, wait=1.0, clock=clock)
        try:
            set_retry_testing(True, attempts=1)
            with pytest.raises(Boom):
                retry.call(boom)
            assert 1 == retry.statistics().give_ups
        finally:
            set_retry_testing(False)

        with pytest.raises(Boom):
            retry.call(boom)

        assert [1.0] == clock.sleeps

    def test_context_manager_restores(self):
        """
        Nested retry_testing blocks restore the previous mode on exit.
        """
        from stalwart import _retry

        with retry_testing(attempts=3):
            with retry_testing():
                assert _retry._testing is not None
                assert _retry._testing.attempts is None
            assert 3 == _retry._testing.attempts

        assert _retry._testing is None

    @pytest.mark.parametrize("attempts", [0, 1.5, True])
    def test_bad_attempts(self, attempts):
        """
        A bad attempt cap raises ConfigurationError.
        """
        with pytest.raises(ConfigurationError) as info:
            set_retry_testing(True, attempts=attempts)

        assert f"'attempts' must be an int >= 1 (got {attempts!r})" == str(
            info.value
        )
