"""
Type aliases and protocols shared by the modules and the public API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Protocol, TypeAlias, TypeVar

from typing_extensions import ParamSpec


P = ParamSpec("P")
T = TypeVar("T")

Seconds: TypeAlias = float | timedelta
"""A duration is a number of seconds or a :class:`~datetime.timedelta`."""

ExceptionPredicate: TypeAlias = Callable[[BaseException], bool]
ExceptionSpec: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | ExceptionPredicate
)
"""Which exceptions a setting applies to, as a type, a tuple of types, or a
predicate that receives the exception."""


class Decorator(Protocol):
    """A decorator of ``def`` functions that keeps their exact type."""

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]: ...


class AsyncDecorator(Protocol):
    """A decorator of ``async def`` functions that keeps their exact type."""

    def __call__(
        self, fn: Callable[P, Awaitable[T]], /
    ) -> Callable[P, Awaitable[T]]: ...
