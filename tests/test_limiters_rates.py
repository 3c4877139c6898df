"""
Rates written as numbers, pairs, readable strings and lists, and the
errors that say which part of a rate is wrong.
"""

from __future__ import annotations

import math

from datetime import timedelta

import pytest

from stalwart import (
    GCRA,
    ConfigurationError,
    FixedWindow,
    LeakyBucket,
    Rate,
    SlidingWindowLog,
    TokenBucket,
)
from stalwart.testing import FakeClock


UNITS = "use ms, s, second, m, minute, h, hour, d, day"


class TestRate:
    @pytest.mark.parametrize(
        ("text", "limit", "period"),
        [
            ("100/minute", 100.0, 60.0),
            ("10/s", 10.0, 1.0),
            ("5 per second", 5.0, 1.0),
            ("1000/2h", 1000.0, 7200.0),
            ("3/500ms", 3.0, 0.5),
            ("10/5 minutes", 10.0, 300.0),
            ("2/secs", 2.0, 1.0),
            ("1.5/hr", 1.5, 3600.0),
            (" 7 / DAY ", 7.0, 86400.0),
            ("1e3/s", 1000.0, 1.0),
        ],
    )
    def test_strings(self, text, limit, period):
        """
        Readable strings give the limit and the period in seconds.
        """
        assert Rate(limit, period) == Rate.parse(text)

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (3, Rate(3.0, 1.0)),
            (0.5, Rate(0.5, 1.0)),
            ((100, 60), Rate(100.0, 60.0)),
            ((100, timedelta(minutes=1)), Rate(100.0, 60.0)),
            (Rate(1.0, 2.0), Rate(1.0, 2.0)),
        ],
        ids=["int", "float", "pair", "timedelta", "rate"],
    )
    def test_numbers(self, value, expected):
        """
        A number is per second; a pair is ``(limit, period)``.
        """
        assert expected == Rate.parse(value)

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (
                "10/sek",
                f"'speed': unknown unit 'sek' in '10/sek'; {UNITS}",
            ),
            (
                "10/fortnight",
                f"'speed': unknown unit 'fortnight' in '10/fortnight'; {UNITS}",
            ),
            ("10/5", f"'speed': no unit in '10/5'; {UNITS}"),
            (
                "10/5 6s",
                (
                    "'speed': the period '5 6s' in '10/5 6s' is not a "
                    f"number and a unit; {UNITS}"
                ),
            ),
            (
                "abc",
                (
                    "'speed': no '/' or 'per' between the limit and the "
                    "period in 'abc'; write it as '100/minute'"
                ),
            ),
            ("ten/s", "'speed': the limit 'ten' in 'ten/s' is not a number"),
            ("0/s", "'speed': the limit must be > 0 in '0/s'"),
            ("-1/s", "'speed': the limit must be > 0 in '-1/s'"),
            ("1/0s", "'speed': the period must be > 0 in '1/0s'"),
            ("1e400/s", "'speed': the limit must be > 0 in '1e400/s'"),
            (
                "10/s;5/m",
                "'speed' must be one rate here, not several (got '10/s;5/m')",
            ),
            ((1, 0), "'speed' must have a finite period > 0 (got (1, 0))"),
            (0, "'speed' must have a finite limit > 0 (got 0)"),
            (
                float("inf"),
                "'speed' must have a finite limit > 0 (got inf)",
            ),
            (
                float("nan"),
                "'speed' must have a finite limit > 0 (got nan)",
            ),
            (
                (1e308, 1e-10),
                (
                    "'speed' of inf per second is out of range; a rate must "
                    "be between 1e-12 and 1e+12 per second "
                    "(got (1e+308, 1e-10))"
                ),
            ),
            (
                1e-320,
                (
                    "'speed' of 9.99989e-321 per second is out of range; a "
                    "rate must be between 1e-12 and 1e+12 per second "
                    "(got 1e-320)"
                ),
            ),
            (
                "1/100000000d",
                (
                    "'speed' of 1.15741e-13 per second is out of range; a "
                    "rate must be between 1e-12 and 1e+12 per second "
                    "(got '1/100000000d')"
                ),
            ),
        ],
    )
    def test_errors_name_the_wrong_part(self, value, message):
        """
        A rate that is not one says which part is wrong, naming the field
        and the value.
        """
        with pytest.raises(ConfigurationError) as e:
            Rate.parse(value, "speed")

        assert message == str(e.value)

    @pytest.mark.parametrize(
        "value", [(1, 2, 3), True, None, ("1", 2), (1, True)]
    )
    def test_not_a_rate_at_all(self, value):
        """
        Anything else gets the message listing every accepted spelling.
        """
        with pytest.raises(ConfigurationError) as e:
            Rate.parse(value, "speed")

        assert (
            "'speed' must be a number per second, a (limit, period) pair, "
            "a string such as '100/minute', or a list of those "
            f"(got {value!r})"
        ) == str(e.value)

    def test_per_second_and_str(self):
        """
        A rate converts to units per second and prints compactly.
        """
        rate = Rate.parse("90/minute")

        assert 1.5 == rate.per_second
        assert "90/60s" == str(rate)


class TestSeveralRates:
    @pytest.mark.parametrize(
        "value",
        [
            "10/second;1000/hour",
            " 10/s ; 1000 per hour ",
            ["10/s", (1000, 3600)],
            [10, "1000/h"],
        ],
    )
    def test_spellings(self, value):
        """
        Several rates are a string with ``;`` between them or a list.
        """
        assert (Rate(10.0, 1.0), Rate(1000.0, 3600.0)) == Rate.parse_many(
            value
        )

    def test_one_rate_is_a_tuple_of_one(self):
        """
        One rate, however written, is a tuple of one.
        """
        assert (Rate(5.0, 60.0),) == Rate.parse_many("5/minute")

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("10/s;;5/m", "'rate' has an empty part in '10/s;;5/m'"),
            ("10/s;", "'rate' has an empty part in '10/s;'"),
            ([], "'rate' must hold at least one rate (got [])"),
            (
                "10/s;5/sek",
                f"'rate': unknown unit 'sek' in '5/sek' of '10/s;5/sek'; {UNITS}",
            ),
            (
                ["10/s", "x"],
                (
                    "'rate': no '/' or 'per' between the limit and the "
                    "period in 'x'; write it as '100/minute'"
                ),
            ),
        ],
    )
    def test_errors_name_the_wrong_part(self, value, message):
        """
        The error names the part of several rates that is wrong.
        """
        with pytest.raises(ConfigurationError) as e:
            Rate.parse_many(value)

        assert message == str(e.value)

    @pytest.mark.parametrize(
        "cls", [TokenBucket, GCRA, LeakyBucket, FixedWindow, SlidingWindowLog]
    )
    def test_limiters_keep_them(self, cls):
        """
        A limiter built from several rates keeps them, in order.
        """
        limiter = cls(rate="10/second;1000/hour")

        assert (Rate(10.0, 1.0), Rate(1000.0, 3600.0)) == limiter.rates
        assert (Rate(10.0, 1.0),) == cls(rate=10).rates

    @pytest.mark.parametrize(
        ("cls", "name"),
        [
            (TokenBucket, "capacity"),
            (GCRA, "burst"),
            (LeakyBucket, "capacity"),
        ],
    )
    def test_no_capacity_with_several_rates(self, cls, name):
        """
        A bucket's capacity is each rate's limit when there are several.
        """
        with pytest.raises(ConfigurationError) as e:
            cls(rate="10/s;1000/h", **{name: 5})

        assert (
            f"{name!r} cannot be given with several rates: each rate's limit "
            f"is its {name} in {cls.__name__}"
        ) == str(e.value)

    def test_no_shaper_with_several_rates(self):
        """
        A shaper spaces requests at one rate only.
        """
        with pytest.raises(ConfigurationError) as e:
            LeakyBucket(rate="10/s;1000/h", mode="shaper")

        assert (
            "'rate' must be one rate for a shaper, which spaces requests at "
            "one rate (got 2 rates)"
        ) == str(e.value)


class TestBelowOneRequest:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"rate": 1, "capacity": 0.5}, "capacity"),
            ({"rate": 1, "burst": 0.5}, "burst"),
            ({"rate": 1, "capacity": 2.0**51}, "capacity"),
        ],
    )
    def test_buckets_refuse_it_where_built(self, kwargs, name):
        """
        A bucket smaller than one request (or too large to count one) is
        refused where it is built, naming the fix.
        """
        cls = GCRA if name == "burst" else TokenBucket

        with pytest.raises(ConfigurationError) as e:
            cls(**kwargs)

        assert str(e.value).startswith(
            f"{name!r} must be between 1 and 1.1259e+15 "
            f"(got {kwargs[name]!r}): a bucket smaller than one request "
            "refuses every request; for one request every 2 s, use "
            f"rate=0.5 and {name}=1"
        )

    @pytest.mark.parametrize("cls", [FixedWindow, SlidingWindowLog])
    def test_windows_make_it_one_per_longer_period(self, cls):
        """
        Half a request per second is one request every 2 s.
        """
        clock = FakeClock()
        limiter = cls(rate=0.5, clock=clock)

        first = limiter.try_acquire()
        second = limiter.try_acquire()
        clock.advance(second.retry_after)

        assert (True, False) == (bool(first), bool(second))
        assert 2.0 == second.retry_after
        assert limiter.try_acquire()

    def test_window_too_large_to_count(self):
        """
        A window limit too large to count one request is refused.
        """
        with pytest.raises(ConfigurationError) as e:
            FixedWindow(rate=(2.0**51, 1e6))

        assert (
            "'rate' must allow at most 1.1259e+15 per window "
            "(got 2.2518e+15/1e+06s)"
        ) == str(e.value)


class TestRateBuiltDirectly:
    @pytest.mark.parametrize(
        ("limit", "period", "message"),
        [
            (None, 1.0, "'limit' must be a finite number > 0 (got None)"),
            (False, 1.0, "'limit' must be a finite number > 0 (got False)"),
            (1, -1, "'period' must be a finite number > 0 (got -1.0)"),
            (1, math.nan, "'period' must be a finite number > 0 (got nan)"),
            (10**400, 1, "'limit' must be a finite number > 0 (got 1000"),
            (
                1e300,
                1e-300,
                (
                    "'rate' of inf per second is out of range; a rate must"
                    " be between 1e-12 and 1e+12 per second"
                ),
            ),
        ],
        ids=["none", "bool", "negative", "nan", "huge-int", "infinite-rate"],
    )
    def test_refused_where_built(self, limit, period, message):
        """
        A Rate built by hand is checked like a parsed one, so a limiter
        never receives one it would hang or overflow on.
        """
        with pytest.raises(ConfigurationError) as info:
            Rate(limit, period)

        assert str(info.value).startswith(message)

    def test_ints_become_floats(self):
        """
        Whole numbers are kept as floats, as parsing gives them.
        """
        assert Rate(10.0, 1.0) == Rate(10, 1)
        assert 10.0 == Rate(10, 1).per_second
