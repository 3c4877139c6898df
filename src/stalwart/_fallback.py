"""
Fallback: replace a failed call, or a bad result, with something else.
"""

from __future__ import annotations

import functools
import inspect
import threading

from collections.abc import Awaitable, Callable
from typing import Any, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock
from ._events import FallbackUsed, Hook, emit
from ._typing import P, T
from ._validators import (
    ExceptionFilter,
    collect,
    exception_filter,
    hooks,
    is_callable,
    non_empty_str,
    valid_clock,
    valid_exception_filter,
    valid_hooks,
)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


@final
@attrs.frozen
class FallbackStatistics:
    """
    A snapshot of a :class:`Fallback`'s counters.

    Attributes:
        on_error: Fallbacks caused by an exception so far.
        on_result: Fallbacks caused by a bad result so far.

    .. versionadded:: 0.1.0
    """

    on_error: int
    on_result: int


@final
@attrs.frozen(kw_only=True, eq=False)
class Fallback:
    """
    Replace the outcome of a call that failed, or returned a bad result.

    Give exactly one of *value* (returned as is) or *handler* (called with
    the exception, or with the bad result, and whose return value is used;
    it may be ``async`` when the call is).  If the handler raises, that
    exception propagates, chained to the original one by Python's usual
    ``__context__``.

    Stack fallbacks to build a chain: the outer one catches what the inner
    one's handler raises (primary, then cache, then a default).

    Only :class:`Exception` subclasses trigger a fallback:
    ``KeyboardInterrupt``, ``SystemExit`` and cancellation always pass
    through.

    Faces: the decorator (``def`` and ``async def``) and :meth:`call` /
    :meth:`acall`.  There is no ``with`` form: a ``with`` block cannot
    replace its own outcome.

    Args:
        value: What to return instead.
        handler: ``handler(exception_or_result)`` returns what to return
            instead.
        on: Which exceptions trigger the fallback: a type, a tuple of types
            or a predicate; :class:`Exception` by default.
        on_result: A predicate on results; a result it accepts triggers the
            fallback too.
        name: Used in events.
        clock: Where event times are read.
        hooks: Receive a :class:`~stalwart.FallbackUsed` per fallback.

    .. versionadded:: 0.1.0
    """

    value: Any = attrs.field(default=_MISSING)
    handler: Callable[[Any], Any] | None = attrs.field(
        default=None, validator=is_callable, repr=False
    )
    on: ExceptionFilter = attrs.field(
        default=ExceptionFilter(types=(Exception,)),
        converter=exception_filter,
        validator=valid_exception_filter,
    )
    on_result: Callable[[Any], bool] | None = attrs.field(
        default=None, validator=is_callable, repr=False
    )
    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    clock: Clock = attrs.field(
        default=DEFAULT_CLOCK, validator=valid_clock, repr=False
    )
    hooks: tuple[Hook, ...] = attrs.field(
        default=(),
        converter=hooks,
        validator=valid_hooks,
        repr=False,
    )
    _async_handler: bool = attrs.field(init=False, repr=False)
    _counts: list[int] = attrs.field(
        init=False, repr=False, factory=lambda: [0, 0]
    )
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )

    @_async_handler.default
    def _is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.handler)

    def __attrs_post_init__(self) -> None:
        given = (self.value is not _MISSING) + (self.handler is not None)
        if given != 1:
            which = "both" if given else "neither"
            problem = (
                "exactly one of 'value' and 'handler' must be given "
                f"(got {which})"
            )
            collect([problem])

    def statistics(self) -> FallbackStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            return FallbackStatistics(*self._counts)

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run ``fn(*args, **kwargs)``; on a matching exception or result,
        return the fallback instead.

        Raises:
            TypeError: If the handler is ``async``; use :meth:`acall`.

        .. versionadded:: 0.1.0
        """
        if self._async_handler:
            raise self._sync_misuse()
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if not self.on.matches(exc):
                raise
            return cast("T", self._recover(exc, None))
        if self.on_result is not None and self.on_result(result):
            return cast("T", self._recover(None, result))
        return result

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """
        Await ``fn(*args, **kwargs)``; on a matching exception or result,
        return the fallback instead (awaiting an ``async`` handler).

        .. versionadded:: 0.1.0
        """
        try:
            result = await fn(*args, **kwargs)
        except Exception as exc:
            if not self.on.matches(exc):
                raise
            return cast("T", await self._arecover(exc, None))
        if self.on_result is not None and self.on_result(result):
            return cast("T", await self._arecover(None, result))
        return result

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate a ``def`` (through :meth:`call`) or an ``async def``
        (through :meth:`acall`).

        Raises:
            TypeError: If *fn* is a ``def`` and the handler is ``async``.

        .. versionadded:: 0.1.0
        """
        if inspect.iscoroutinefunction(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)

            # The wrappers repeat call/acall inline: one frame less per call.
            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                try:
                    result = await afn(*args, **kwargs)
                except Exception as exc:
                    if not self.on.matches(exc):
                        raise
                    return await self._arecover(exc, None)
                if self.on_result is not None and self.on_result(result):
                    return await self._arecover(None, result)
                return result

            return cast("Callable[P, T]", awrapper)
        if self._async_handler:
            raise self._sync_misuse()

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                if not self.on.matches(exc):
                    raise
                return cast("T", self._recover(exc, None))
            if self.on_result is not None and self.on_result(result):
                return cast("T", self._recover(None, result))
            return result

        return wrapper

    def _recover(self, error: BaseException | None, result: object) -> Any:
        self._record(error, result)
        if self.handler is None:
            return self.value
        return self.handler(result if error is None else error)

    def _sync_misuse(self) -> TypeError:
        return TypeError(
            f"Fallback {self.name!r} has an async handler, which a sync call "
            "cannot await; use acall() or decorate an async def"
        )

    async def _arecover(
        self, error: BaseException | None, result: object
    ) -> Any:
        self._record(error, result)
        if self.handler is None:
            return self.value
        out = self.handler(result if error is None else error)
        if inspect.isawaitable(out):
            out = await out
        return out

    def _record(self, error: BaseException | None, result: object) -> None:
        with self._lock:
            self._counts[error is None] += 1
        if self.hooks:
            emit(
                self.hooks,
                FallbackUsed(
                    primitive_name=self.name,
                    at=self.clock.now(),
                    error=error,
                    result=result,
                ),
            )
