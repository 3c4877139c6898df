"""
Type aliases shared by the public API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeAlias, TypeVar

from typing_extensions import ParamSpec


P = ParamSpec("P")
T = TypeVar("T")

Seconds: TypeAlias = float | timedelta
"""A duration: a number of seconds or a :class:`~datetime.timedelta`."""

ExceptionPredicate: TypeAlias = Callable[[BaseException], bool]
ExceptionSpec: TypeAlias = (
    type[BaseException] | tuple[type[BaseException], ...] | ExceptionPredicate
)
"""Which exceptions a setting applies to: a type, a tuple of types, or a
predicate that receives the exception."""
