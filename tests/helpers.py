"""
Small helpers shared by tests (importable as ``helpers``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def as_async(fn: Callable[..., Any]) -> Callable[..., Any]:
    """
    Wrap a plain function into an ``async def`` that calls it.
    """

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


class Boom(Exception):
    """
    A failure raised by test doubles.
    """


def boom(*args: Any, **kwargs: Any) -> Any:
    """
    Raise :class:`Boom`.
    """
    raise Boom


def ok(*args: Any, **kwargs: Any) -> str:
    """
    Return ``"ok"``.
    """
    return "ok"
