"""
attrs converters and validators that raise :class:`ConfigurationError`.

Messages follow attrs' shape and always name the field and the value:
``'failure_threshold' must be > 0 (got 0)``.
"""

from __future__ import annotations

import math

from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import attrs

from ._errors import ConfigurationError
from ._typing import ExceptionPredicate, ExceptionSpec


def _fail(name: str, requirement: str, value: object) -> ConfigurationError:
    return ConfigurationError(
        f"{name!r} must be {requirement} (got {value!r})"
    )


def _to_seconds(value: object, field: attrs.Attribute[Any]) -> float:
    return to_seconds(value, field.name)


def to_seconds(value: object, name: str) -> float:
    """
    Convert a number of seconds or a :class:`~datetime.timedelta` to a
    finite ``float``, or raise :class:`ConfigurationError` naming *name*.
    """
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, "a number of seconds or a timedelta", value)
    seconds = float(value)
    if math.isnan(seconds):
        raise _fail(name, "a number, not NaN", value)
    return seconds


def _to_optional_seconds(
    value: object, field: attrs.Attribute[Any]
) -> float | None:
    return None if value is None else to_seconds(value, field.name)


seconds = attrs.Converter(_to_seconds, takes_field=True)
"""Converter: ``float | timedelta`` to ``float`` seconds."""

optional_seconds = attrs.Converter(_to_optional_seconds, takes_field=True)
"""Converter: like :data:`seconds`, but ``None`` stays ``None``."""


@attrs.frozen(repr=False)
class _Compare:
    op: str
    bound: float
    check: Callable[[float, float], bool]

    def __call__(
        self, inst: object, attr: attrs.Attribute[Any], value: Any
    ) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(attr.name, "a number", value)
        if math.isnan(value) or not self.check(value, self.bound):
            raise _fail(attr.name, f"{self.op} {self.bound:g}", value)

    def __repr__(self) -> str:
        return f"<validator {self.op} {self.bound:g}>"


def gt(bound: float) -> _Compare:
    """Validator: the value is ``> bound`` (``None`` passes)."""
    return _Compare(">", bound, lambda v, b: v > b)


def ge(bound: float) -> _Compare:
    """Validator: the value is ``>= bound`` (``None`` passes)."""
    return _Compare(">=", bound, lambda v, b: v >= b)


def le(bound: float) -> _Compare:
    """Validator: the value is ``<= bound`` (``None`` passes)."""
    return _Compare("<=", bound, lambda v, b: v <= b)


positive = gt(0)
non_negative = ge(0)


def finite(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    """Validator: the value is a finite number (``None`` passes)."""
    if value is not None and not math.isfinite(value):
        raise _fail(attr.name, "finite", value)


def integer(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    """Validator: the value is an ``int`` and not a ``bool`` (``None``
    passes)."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int)
    ):
        raise _fail(attr.name, "an int", value)


def non_empty_str(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    """Validator: the value is a non-empty ``str``."""
    if not isinstance(value, str) or not value:
        raise _fail(attr.name, "a non-empty str", value)


def is_callable(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    """Validator: the value is callable (``None`` passes)."""
    if value is not None and not callable(value):
        raise _fail(attr.name, "callable", value)


@attrs.frozen
class ExceptionFilter:
    """
    A normalised :data:`~stalwart._typing.ExceptionSpec`: a tuple of types
    (fast to test with ``except`` or ``isinstance``) and/or a predicate.

    ``ExceptionFilter.NONE`` matches nothing.
    """

    types: tuple[type[BaseException], ...] = ()
    predicate: ExceptionPredicate | None = None

    def matches(self, exc: BaseException) -> bool:
        """
        Tell whether *exc* is covered by this filter.
        """
        if self.types and isinstance(exc, self.types):
            return True
        return self.predicate is not None and self.predicate(exc)

    def __bool__(self) -> bool:
        return bool(self.types) or self.predicate is not None


def to_exception_filter(value: object, name: str) -> ExceptionFilter:
    """
    Convert an exception type, a tuple of them, a predicate, ``None`` (which
    matches nothing) or an :class:`ExceptionFilter`, or raise
    :class:`ConfigurationError` naming *name*.
    """
    if isinstance(value, ExceptionFilter):
        return value
    if value is None:
        return ExceptionFilter()
    if isinstance(value, type):
        value = (value,)
    if isinstance(value, tuple):
        for item in value:
            if not (
                isinstance(item, type) and issubclass(item, BaseException)
            ):
                raise _fail(
                    name,
                    "an exception type, a tuple of them, or a predicate",
                    value,
                )
        return ExceptionFilter(types=value)
    if callable(value):
        return ExceptionFilter(predicate=value)
    raise _fail(
        name, "an exception type, a tuple of them, or a predicate", value
    )


def _to_exception_filter(
    value: ExceptionSpec | ExceptionFilter | None, field: attrs.Attribute[Any]
) -> ExceptionFilter:
    return to_exception_filter(value, field.name)


exception_filter = attrs.Converter(_to_exception_filter, takes_field=True)
"""Converter: an :data:`ExceptionSpec` (or ``None``) to an
:class:`ExceptionFilter`."""


def _to_hooks(value: object, field: attrs.Attribute[Any]) -> tuple[Any, ...]:
    return to_hooks(value, field.name)


def to_hooks(value: object, name: str) -> tuple[Any, ...]:
    """
    Convert a hook or an iterable of hooks to a tuple of hooks, or raise
    :class:`ConfigurationError` naming *name*.
    """
    if callable(value):
        value = (value,)
    if not isinstance(value, Iterable) or isinstance(value, str | bytes):
        raise _fail(name, "an iterable of callables", value)
    hooks = tuple(value)
    for hook in hooks:
        if not callable(hook):
            raise _fail(name, "an iterable of callables", value)
    return hooks


hooks = attrs.Converter(_to_hooks, takes_field=True)
"""Converter: a hook or an iterable of hooks to a tuple of hooks."""


def collect(problems: list[str]) -> None:
    """
    Raise one :class:`ConfigurationError` listing every problem, if any.

    Use in ``__attrs_post_init__`` for rules that span several fields.
    """
    if len(problems) == 1:
        raise ConfigurationError(problems[0])
    if problems:
        raise ConfigurationError(
            "invalid configuration:\n"
            + "\n".join(f"- {problem}" for problem in problems)
        )
