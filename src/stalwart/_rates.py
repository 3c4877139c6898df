"""
Rates: a number of requests (or units of cost) per period.

A rate is written as a number per second (``10``), a pair
``(limit, period)`` (``(100, 60.0)`` or ``(100, timedelta(minutes=1))``),
or a readable string: ``"100/minute"``, ``"10/s"``, ``"5 per second"``,
``"1000/2h"``, ``"3/500ms"``.
"""

from __future__ import annotations

import math
import re

from datetime import timedelta
from typing import TypeAlias, final

import attrs

from ._errors import ConfigurationError


_UNITS = {
    "ms": 0.001,
    "millisecond": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
}

_PATTERN = re.compile(
    r"""
    \s*(?P<limit>\d+(?:\.\d*)?|\.\d+)\s*
    (?:/|\bper\b)\s*
    (?P<count>\d+(?:\.\d*)?|\.\d+)?\s*
    (?P<unit>[a-z]+)\s*
    """,
    re.VERBOSE | re.IGNORECASE,
)


@final
@attrs.frozen
class Rate:
    """
    *limit* requests (or units of cost) per *period* seconds.

    Build one from any accepted spelling with :meth:`parse`; every limiter
    does so for its ``rate`` argument.

    Attributes:
        limit: How many per period.
        period: The period, in seconds.

    .. versionadded:: 0.1.0
    """

    limit: float
    period: float

    @property
    def per_second(self) -> float:
        """
        The rate in units per second.
        """
        return self.limit / self.period

    def __str__(self) -> str:
        return f"{self.limit:g}/{self.period:g}s"

    @classmethod
    def parse(cls, value: object, name: str = "rate") -> Rate:
        """
        Turn a number per second, a ``(limit, period)`` pair or a string
        such as ``"100/minute"`` into a :class:`Rate`.

        Raises:
            ConfigurationError: If *value* is none of those, or its limit
                or period is not a finite number > 0.  The message names
                *name* and shows *value*.
        """
        if isinstance(value, Rate):
            return value
        limit: object
        period: object
        if isinstance(value, str):
            limit, period = _parse_text(value, name)
        elif isinstance(value, tuple) and len(value) == 2:
            limit, period = value
            if isinstance(period, timedelta):
                period = period.total_seconds()
        else:
            limit, period = value, 1.0
        numbers: list[float] = []
        for number in (limit, period):
            if (
                isinstance(number, bool)
                or not isinstance(number, int | float)
                or not math.isfinite(number)
                or number <= 0
            ):
                raise _bad(name, value)
            numbers.append(float(number))
        return cls(*numbers)


def _bad(name: str, value: object) -> ConfigurationError:
    return ConfigurationError(
        f"{name!r} must be a number per second, a (limit, period) pair or "
        f"a string such as '100/minute', with both > 0 (got {value!r})"
    )


def _parse_text(text: str, name: str) -> tuple[float, float]:
    match = _PATTERN.fullmatch(text)
    if not match:
        raise _bad(name, text)
    word = match["unit"].lower()
    unit = _UNITS.get(word, _UNITS.get(word.removesuffix("s")))
    if unit is None:
        raise _bad(name, text)
    count = float(match["count"]) if match["count"] else 1.0
    return float(match["limit"]), count * unit


RateSpec: TypeAlias = float | tuple[float, float | timedelta] | str | Rate
"""What a limiter accepts as its ``rate``."""
