"""
Rates: a number of requests (or units of cost) per period.

A rate is written as a number per second (``10``), a pair
``(limit, period)`` (``(100, 60.0)`` or ``(100, timedelta(minutes=1))``),
or a readable string: ``"100/minute"``, ``"10/s"``, ``"5 per second"``,
``"1000/2h"``, ``"3/500ms"``.  Several rates at once are a list of those,
or one string with ``;`` between them: ``"10/second;1000/hour"``.
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
_UNIT_NAMES = "ms, s, second, m, minute, h, hour, d, day"

MIN_PER_SECOND = 1e-12
"""The slowest rate accepted, per second (one per 31,000 years)."""
MAX_PER_SECOND = 1e12
"""The fastest rate accepted, per second."""

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_SPLIT = re.compile(r"\s*(?P<limit>.*?)\s*(?:/|\bper\b)\s*(?P<period>.*?)\s*")
_LIMIT = re.compile(rf"[-+]?{_NUMBER}")
_PERIOD = re.compile(
    rf"(?P<count>{_NUMBER})?\s*(?P<unit>[a-z]*)", re.IGNORECASE
)


def _to_float(value: object) -> float:
    """
    Converter: an int to a float; anything else (or an int too large for a
    float) is left for :func:`_positive` to refuse.
    """
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            pass
    return value  # type: ignore[return-value]  # refused by the validator


def _positive(
    inst: object, attr: attrs.Attribute[float], value: object
) -> None:
    """
    Validator: a finite float > 0.
    """
    if type(value) is not float or not (math.isfinite(value) and value > 0):
        msg = f"{attr.name!r} must be a finite number > 0 (got {value!r})"
        raise ConfigurationError(msg)


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

    limit: float = attrs.field(converter=_to_float, validator=_positive)
    period: float = attrs.field(converter=_to_float, validator=_positive)

    def __attrs_post_init__(self) -> None:
        _check_range(self.limit, self.period, self, "rate")

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
                or period is not a finite number > 0, or the rate is not
                between ``1e-12`` and ``1e12`` per second.  The message names *name*, says which part is
                wrong, and shows *value*.
        """
        if isinstance(value, Rate):
            return value
        limit: object
        period: object
        if isinstance(value, str):
            if ";" in value:
                msg = (
                    f"{name!r} must be one rate here, not several "
                    f"(got {value!r})"
                )
                raise ConfigurationError(msg)
            return _parse_text(value, value, name)
        if isinstance(value, tuple) and len(value) == 2:
            limit, period = value
            if isinstance(period, timedelta):
                period = period.total_seconds()
        elif isinstance(value, int | float) and not isinstance(value, bool):
            limit, period = value, 1.0
        else:
            raise _bad(name, value)
        numbers = []
        for part, number in (("limit", limit), ("period", period)):
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise _bad(name, value)
            converted = _to_float(number)
            if type(converted) is not float or not (
                math.isfinite(converted) and converted > 0
            ):
                msg = f"{name!r} must have a finite {part} > 0 (got {value!r})"
                raise ConfigurationError(msg)
            numbers.append(converted)
        return _checked(numbers[0], numbers[1], value, name)

    @classmethod
    def parse_many(cls, value: object, name: str = "rate") -> tuple[Rate, ...]:
        """
        Turn one rate or several (a list of rates, or a string with ``;``
        between them, such as ``"10/second;1000/hour"``) into a tuple of
        :class:`Rate`.

        Raises:
            ConfigurationError: As :meth:`parse` does, for the part that is
                wrong; or if there is no rate at all.

        .. versionadded:: 0.2.0
        """
        if isinstance(value, str) and ";" in value:
            parts = value.split(";")
            if any(not part.strip() for part in parts):
                msg = f"{name!r} has an empty part in {value!r}"
                raise ConfigurationError(msg)
            return tuple(_parse_text(part, value, name) for part in parts)
        if isinstance(value, list):
            if not value:
                msg = f"{name!r} must hold at least one rate (got {value!r})"
                raise ConfigurationError(msg)
            return tuple(cls.parse(item, name) for item in value)
        return (cls.parse(value, name),)


def _bad(name: str, value: object) -> ConfigurationError:
    return ConfigurationError(
        f"{name!r} must be a number per second, a (limit, period) pair, a "
        f"string such as '100/minute', or a list of those (got {value!r})"
    )


def _check_range(
    limit: float, period: float, value: object, name: str
) -> None:
    per_second = limit / period
    if not MIN_PER_SECOND <= per_second <= MAX_PER_SECOND:
        msg = (
            f"{name!r} of {per_second:g} per second is out of range; a rate "
            f"must be between {MIN_PER_SECOND:g} and {MAX_PER_SECOND:g} per "
            f"second (got {value!r})"
        )
        raise ConfigurationError(msg)


def _checked(limit: float, period: float, value: object, name: str) -> Rate:
    _check_range(limit, period, value, name)
    return Rate(limit, period)


def _parse_text(text: str, whole: str, name: str) -> Rate:
    """
    Parse one ``<limit>/<count><unit>`` of *whole*, saying which part is
    wrong.
    """
    where = f"in {whole!r}"
    if text != whole:
        where = f"in {text.strip()!r} of {whole!r}"
    split = _SPLIT.fullmatch(text)
    if split is None:
        msg = (
            f"{name!r}: no '/' or 'per' between the limit and the period "
            f"{where}; write it as '100/minute'"
        )
        raise ConfigurationError(msg)
    limit_text, period_text = split["limit"], split["period"]
    if not _LIMIT.fullmatch(limit_text):
        msg = f"{name!r}: the limit {limit_text!r} {where} is not a number"
        raise ConfigurationError(msg)
    period = _PERIOD.fullmatch(period_text)
    if period is None:
        msg = (
            f"{name!r}: the period {period_text!r} {where} is not a number "
            f"and a unit; use {_UNIT_NAMES}"
        )
        raise ConfigurationError(msg)
    word = period["unit"].lower()
    unit = _UNITS.get(word, _UNITS.get(word.removesuffix("s")))
    if unit is None:
        what = f"unknown unit {word!r}" if word else "no unit"
        msg = f"{name!r}: {what} {where}; use {_UNIT_NAMES}"
        raise ConfigurationError(msg)
    limit = float(limit_text)
    count = float(period["count"]) if period["count"] else 1.0
    for part, number in (("limit", limit), ("period", count * unit)):
        if not (math.isfinite(number) and number > 0):
            msg = f"{name!r}: the {part} must be > 0 {where}"
            raise ConfigurationError(msg)
    return _checked(limit, count * unit, whole, name)


RateSpec: TypeAlias = float | tuple[float, float | timedelta] | str | Rate
"""One rate, as a limiter accepts it."""

RatesSpec: TypeAlias = RateSpec | list[RateSpec]
"""One rate or several, as a limiter accepts its ``rate``."""
