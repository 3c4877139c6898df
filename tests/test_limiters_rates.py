"""
Rates written as numbers, pairs and readable strings.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from stalwart import ConfigurationError, Rate


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
        "value",
        [
            "abc",
            "10/fortnight",
            "0/s",
            "-1/s",
            (1, 0),
            (1, 2, 3),
            True,
            None,
            float("inf"),
            float("nan"),
        ],
    )
    def test_invalid(self, value):
        """
        Anything else is a ConfigurationError naming the field and value.
        """
        with pytest.raises(ConfigurationError) as e:
            Rate.parse(value, "speed")

        assert str(e.value).startswith("'speed' must be a number per second")
        assert str(e.value).endswith(f"(got {value!r})")

    def test_per_second_and_str(self):
        """
        A rate converts to units per second and prints compactly.
        """
        rate = Rate.parse("90/minute")

        assert 1.5 == rate.per_second
        assert "90/60s" == str(rate)
