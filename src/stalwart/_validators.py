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

from ._clock import Clock
from ._errors import ConfigurationError
from ._events import Hook
from ._faces import async_callable_error, is_async_callable
from ._typing import ExceptionPredicate, ExceptionSpec


def _fail(name: str, requirement: str, value: object) -> ConfigurationError:
    return ConfigurationError(
        f"{name!r} must be {requirement} (got {value!r})"
    )


# Converters are named one-argument functions, because mypy's attrs plugin
# types each ``__init__`` parameter from a converter's signature only for
# those.  They do not know the field's name, so they let a value they cannot
# convert through unchanged, and the field's validator (which knows the
# name) refuses it.  Every field with one of these converters therefore
# also has the matching validator.


def to_seconds(value: object, name: str) -> float:
    """
    Convert a number of seconds or a :class:`~datetime.timedelta` to a
    ``float``, or raise :class:`ConfigurationError` naming *name*.
    """
    converted = seconds(value)  # type: ignore[arg-type]  # checked next
    _check_duration(name, converted)
    return converted


def seconds(value: float | timedelta) -> float:
    """
    Converter: a :class:`~datetime.timedelta` or a number of seconds to a
    ``float``; anything else is left for :func:`duration` to refuse.
    """
    if isinstance(value, timedelta):
        return value.total_seconds()
    if type(value) is int:  # bool is left to the validator
        try:
            return float(value)
        except OverflowError:
            return value  # an int too large for a float: refused next
    return value


def optional_seconds(value: float | timedelta | None) -> float | None:
    """
    Converter: like :func:`seconds`, but ``None`` stays ``None``.
    """
    return None if value is None else seconds(value)


def _check_duration(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, float):
        raise _fail(name, "a number of seconds or a timedelta", value)
    if math.isnan(value):
        raise _fail(name, "a number, not NaN", value)


def duration(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    """
    Validator: the value is a number of seconds, not NaN; pairs with the
    :func:`seconds` converter.
    """
    _check_duration(attr.name, value)


def optional_duration(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    """
    Validator: like :func:`duration`, but ``None`` passes; pairs with the
    :func:`optional_seconds` converter.
    """
    if value is not None:
        _check_duration(attr.name, value)


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
        # `value != value` is NaN, without converting a huge int to float.
        if value != value or not self.check(value, self.bound):  # noqa: PLR0124
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


def number(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    """Validator: the value is an ``int`` or a ``float``, not a ``bool`` and
    not ``None`` (which the comparison validators let pass)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(attr.name, "a number", value)


def is_callable(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    """Validator: the value is callable (``None`` passes)."""
    if value is not None and not callable(value):
        raise _fail(attr.name, "callable", value)


def sync_callable(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    """Validator: the value is a plain callable, not an ``async def``
    (``None`` passes).

    Raises:
        TypeError: For an async callable, whose result (a coroutine) would
            always read as true.
    """
    is_callable(inst, attr, value)
    if is_async_callable(value):
        raise async_callable_error(
            attr.name, value, "it would return a coroutine, never an answer"
        )


def valid_clock(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    """Validator: the value is a :class:`~stalwart.Clock` (it has ``now``,
    ``sleep`` and ``asleep``)."""
    if not isinstance(value, Clock):
        raise _fail(
            attr.name, "a Clock (with now(), sleep() and asleep())", value
        )


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
        if is_async_callable(value):
            raise async_callable_error(
                name, value, "its coroutine would match every exception"
            )
        return ExceptionFilter(predicate=value)
    raise _fail(
        name, "an exception type, a tuple of them, or a predicate", value
    )


def exception_filter(
    value: ExceptionSpec | ExceptionFilter | None,
) -> ExceptionFilter:
    """
    Converter: an :data:`~stalwart._typing.ExceptionSpec` (or ``None``) to
    an :class:`ExceptionFilter`; anything else is left for
    :func:`valid_exception_filter` to refuse.
    """
    try:
        return to_exception_filter(value, "")
    except (ConfigurationError, TypeError):
        return value  # type: ignore[return-value]  # refused by the validator


def valid_exception_filter(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    """
    Validator: pairs with the :func:`exception_filter` converter.
    """
    to_exception_filter(value, attr.name)


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
        if is_async_callable(hook):
            raise async_callable_error(
                name, hook, "hooks are called, never awaited"
            )
    return hooks


def hooks(value: Hook | Iterable[Hook]) -> tuple[Hook, ...]:
    """
    Converter: a hook or an iterable of hooks to a tuple; anything else is
    left for :func:`valid_hooks` to refuse.
    """
    try:
        return to_hooks(value, "")
    except (ConfigurationError, TypeError):
        return value  # type: ignore[return-value]  # refused by the validator


def valid_hooks(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    """
    Validator: pairs with the :func:`hooks` converter.
    """
    to_hooks(value, attr.name)


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
