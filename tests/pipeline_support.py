"""
Test doubles for pipelines: a guard and a call stage that write every step
to a shared log (importable as ``pipeline_support``).
"""

from __future__ import annotations

import itertools

from collections.abc import Awaitable, Callable
from typing import Any

from stalwart._faces import NO_RESULT


Log = list[tuple[Any, ...]]


def outcome(exc: BaseException | None, result: object) -> object:
    """
    Name an outcome in the log: the exception's class name, or the result
    (``"block"`` for a ``with`` block's).
    """
    if exc is not None:
        return type(exc).__name__
    return "block" if result is NO_RESULT else result


class Gate:
    """
    A guard (the steps of ``stalwart._faces.Guard``, no decorator of its
    own) that numbers its tokens and logs each step as ``(name, step,
    token, outcome)``.

    *refuse* is raised by the next entries (set it to ``None`` to admit
    again); *replace* is raised from an exit that saw an exception, in
    its place.
    """

    _kind = "Gate"

    def __init__(
        self,
        name: str,
        log: Log,
        *,
        refuse: BaseException | None = None,
        replace: BaseException | None = None,
        hooks: tuple[Any, ...] = (),
    ) -> None:
        self.name = name
        self.log = log
        self.refuse = refuse
        self.replace = replace
        self.hooks = hooks
        self._numbers = itertools.count(1)
        self.open: set[int] = set()

    def _enter(self) -> int:
        if self.refuse is not None:
            self.log.append((self.name, "refuse"))
            raise self.refuse
        token = next(self._numbers)
        self.open.add(token)
        self.log.append((self.name, "enter", token))
        return token

    async def _aenter(self) -> int:
        return self._enter()

    def _exit(
        self, token: int, exc: BaseException | None, result: object
    ) -> None:
        self.open.remove(token)
        self.log.append((self.name, "exit", token, outcome(exc, result)))
        if exc is not None and self.replace is not None:
            raise self.replace

    async def _aexit(
        self, token: int, exc: BaseException | None, result: object
    ) -> None:
        self._exit(token, exc, result)

    def _undo(self, token: int) -> None:
        self.open.remove(token)
        self.log.append((self.name, "undo", token))

    def statistics(self) -> tuple[str, int]:
        """
        The gate's name and how many blocks it holds open.
        """
        return self.name, len(self.open)


class Runner:
    """
    A stage run through its call faces (no decorator of its own) that
    logs ``(name, "call")`` and calls the function once.
    """

    _kind = "Runner"

    def __init__(self, name: str, log: Log) -> None:
        self.name = name
        self.log = log

    def call(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        self.log.append((self.name, "call"))
        result = fn(*args, **kwargs)
        self.log.append((self.name, "returned", result))
        return result

    async def acall(
        self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any
    ) -> Any:
        self.log.append((self.name, "call"))
        result = await fn(*args, **kwargs)
        self.log.append((self.name, "returned", result))
        return result
