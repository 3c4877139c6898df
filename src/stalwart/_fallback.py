"""
Fallback: replace a failed call, or a bad result, with something else.
"""

from __future__ import annotations

import functools
import threading

from collections.abc import Awaitable, Callable
from types import CoroutineType
from typing import Any, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock
from ._errors import ConfigurationError
from ._events import FallbackUsed, Hook, call_finished, emit, hook_failed
from ._faces import (
    PLAIN,
    awaitable_result_error,
    generator_function_error,
    is_any_generator_function,
    is_async_callable,
    is_awaitable,
    not_awaitable_error,
)
from ._observe import LiveHooks, Observable, live_hooks
from ._statistics import Statistics
from ._typing import ExceptionSpec, P, T
from ._validators import (
    ExceptionFilter,
    collect,
    hooks,
    is_callable,
    non_empty_str,
    sync_callable,
    to_exception_filter,
    valid_clock,
    valid_hooks,
)


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
_KIND = "fallback"
"""The kind its per-call events name."""


def _on(value: ExceptionSpec | ExceptionFilter) -> ExceptionFilter:
    """
    Converter: like :func:`~stalwart._validators.exception_filter`, but
    ``None`` is left for :func:`_valid_on` to refuse.
    """
    if value is None:
        return value
    try:
        return to_exception_filter(value, "on")
    except (ConfigurationError, TypeError):
        return value  # type: ignore[return-value]  # refused by the validator


def _valid_on(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    """
    Validator: an exception spec, not ``None`` (which would silently match
    nothing); ``on=()`` says "results only".
    """
    if value is None:
        msg = (
            "'on' must be an exception type, a tuple of them, or a predicate"
            " (got None); use on=() to fall back on results only"
        )
        raise ConfigurationError(msg)
    to_exception_filter(value, attr.name)


@final
@attrs.frozen(kw_only=True)
class FallbackStatistics(Statistics):
    """
    A snapshot of a :class:`Fallback`'s counters.

    Attributes:
        name: The fallback's name.
        on_error: Fallbacks caused by an exception so far.
        on_result: Fallbacks caused by a bad result so far.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
       Carries the fallback's *name*; its fields are keyword-only.
    """

    name: str
    on_error: int
    on_result: int


@final
@attrs.frozen(kw_only=True, eq=False)
class Fallback(Observable):
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

    Faces: the decorator (``def`` and ``async def``; generator functions
    are refused) and :meth:`call` / :meth:`acall`.  There is no ``with``
    form: a ``with`` block cannot replace its own outcome.  A misused face
    (``call`` with an ``async`` function, ``acall`` with a plain one, an
    ``async`` handler in a sync face) raises :class:`TypeError` and never
    answers with the fallback value.

    While a hook asks for per-call events (``add_hook(hook,
    per_call=True)``), each call ends with a :class:`~stalwart.CallFinished`
    whose outcome is the guarded call's own: ``"success"``, ``"failure"``
    (it raised an :class:`Exception`, or returned a result *on_result*
    rejects, whether the fallback replaced it or not) or ``"ignored"`` (a
    ``BaseException`` such as a cancellation); its duration includes the
    handler's.

    Args:
        value: What to return instead.
        handler: ``handler(exception_or_result)`` returns what to return
            instead.
        on: Which exceptions trigger the fallback: a type, a tuple of types
            or a predicate; :class:`Exception` by default; ``()`` for
            results only (``None`` is refused).
        on_result: A plain predicate on results; a result it accepts
            triggers the fallback too.
        name: Used in events.
        clock: Where event times are read.
        hooks: Receive a :class:`~stalwart.FallbackUsed` per fallback
            (more can be attached later with
            :meth:`~stalwart.Observable.add_hook`).

    .. versionadded:: 0.1.0
    """

    value: Any = attrs.field(default=_MISSING)
    handler: Callable[[Any], Any] | None = attrs.field(
        default=None, validator=is_callable, repr=False
    )
    on: ExceptionFilter = attrs.field(
        default=ExceptionFilter(types=(Exception,)),
        converter=_on,
        validator=_valid_on,
    )
    on_result: Callable[[Any], bool] | None = attrs.field(
        default=None, validator=sync_callable, repr=False
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
    _live: LiveHooks = attrs.field(init=False, repr=False)

    @_async_handler.default
    def _is_async(self) -> bool:
        return is_async_callable(self.handler)

    def __attrs_post_init__(self) -> None:
        problems = []
        given = (self.value is not _MISSING) + (self.handler is not None)
        if given != 1:
            which = "both" if given else "neither"
            problems.append(
                "exactly one of 'value' and 'handler' must be given "
                f"(got {which})"
            )
        if not self.on and self.on_result is None:
            problems.append(
                "the fallback can never be used: 'on' matches no exception"
                " and 'on_result' is not given"
            )
        collect(problems)
        live_hooks(self, self.hooks)

    def statistics(self) -> FallbackStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.1.0
        """
        with self._lock:
            on_error, on_result = self._counts
        return FallbackStatistics(
            name=self.name, on_error=on_error, on_result=on_result
        )

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run ``fn(*args, **kwargs)``; on a matching exception or result,
        return the fallback instead.

        Raises:
            TypeError: If the handler is ``async``, if *fn* returned
                something awaitable (an ``async`` function), or if the
                handler did: use :meth:`acall`.  Nothing is counted.

        .. versionadded:: 0.1.0
        """
        if self._async_handler:
            raise self._sync_misuse()
        if self._live.calls:
            return self._observed_call(fn, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except Exception as exc:
            if not self.on.matches(exc):
                raise
            return cast("T", self._recover(exc, None))
        if is_awaitable(result):
            raise awaitable_result_error(
                "Fallback", self.name, "call()", "acall()", result
            )
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

        An exception raised by calling *fn* is a failure like one raised
        while awaiting it.

        Raises:
            TypeError: If *fn* returned something that cannot be awaited
                (never answered with the fallback); use :meth:`call`.

        .. versionadded:: 0.1.0
        """
        if self._live.calls:
            return await self._aobserved_call(fn, args, kwargs)
        try:
            awaitable = fn(*args, **kwargs)
        except Exception as exc:
            if not self.on.matches(exc):
                raise
            return cast("T", await self._arecover(exc, None))
        if type(awaitable) is not CoroutineType and not is_awaitable(
            awaitable
        ):
            raise not_awaitable_error(
                "Fallback", self.name, "acall()", "call()", awaitable
            )
        try:
            result = await awaitable
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
            TypeError: If *fn* is a ``def`` and the handler is ``async``,
                or if *fn* is a generator function of either kind (a
                fallback cannot stand in for the items of an iteration).

        .. versionadded:: 0.1.0
        """
        if is_any_generator_function(fn):
            raise generator_function_error(
                "Fallback",
                self.name,
                fn,
                "it replaces one outcome, and an iteration has one per item;"
                " guard the code that consumes it instead",
            )
        # The live list of per-call hooks (its identity never changes): a
        # wrapper tests it per call, as cheap as a test gets.
        live = self._live
        calls = live.calls
        if is_async_callable(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)
            # In one closure variable: each one costs a copy at every call.
            aobserved = (
                self.clock,
                self.name,
                live,
                self._acaught,
                self._ajudged,
            )

            # The wrappers repeat call/acall inline: one frame less per call;
            # observed, the success too (see _observed_call).
            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                if not calls:
                    try:
                        result = await afn(*args, **kwargs)
                    except Exception as exc:
                        if not self.on.matches(exc):
                            raise
                        return await self._arecover(exc, None)
                    if self.on_result is not None and self.on_result(result):
                        return await self._arecover(None, result)
                    return result
                start = aobserved[0].now()
                try:
                    result = await afn(*args, **kwargs)
                except BaseException as exc:
                    return await aobserved[3](start, exc)
                if self.on_result is not None:
                    return await aobserved[4](start, result)
                now = aobserved[0].now()
                event = call_finished(
                    aobserved[1], now, _KIND, "success", now - start
                )
                for hook in aobserved[2].calls_now:
                    try:
                        hook(event)
                    except Exception:
                        hook_failed(hook, event)
                return result

            return cast("Callable[P, T]", awrapper)
        if self._async_handler:
            raise self._sync_misuse()
        observed = (self.clock, self.name, live, self._caught, self._judged)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            if not calls:
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    if not self.on.matches(exc):
                        raise
                    return cast("T", self._recover(exc, None))
                if is_awaitable(result):
                    raise awaitable_result_error(
                        "Fallback", self.name, "call()", "acall()", result
                    )
                if self.on_result is not None and self.on_result(result):
                    return cast("T", self._recover(None, result))
                return result
            start = observed[0].now()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                return cast("T", observed[3](start, exc))
            if result.__class__ not in PLAIN or self.on_result is not None:
                return observed[4](start, result)
            now = observed[0].now()
            event = call_finished(
                observed[1], now, _KIND, "success", now - start
            )
            for hook in observed[2].calls_now:
                try:
                    hook(event)
                except Exception:
                    hook_failed(hook, event)
            return result

        return wrapper

    # -- per-call events -----------------------------------------------------

    def _observed_call(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """
        :meth:`call` while a hook asks for per-call events: time the call
        and report it.  A misuse (an awaitable result) is not reported.
        The decorator inlines it, with the same helpers.
        """
        start = self.clock.now()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            return cast("T", self._caught(start, exc))
        return self._judged(start, result)

    async def _aobserved_call(
        self,
        fn: Callable[..., Awaitable[T]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> T:
        """
        The async twin of :meth:`_observed_call`: :meth:`acall`.
        """
        start = self.clock.now()
        try:
            awaitable: Any = fn(*args, **kwargs)
            if awaitable.__class__ is CoroutineType or is_awaitable(awaitable):
                result: T = await awaitable
            else:
                result = _MISSING  # a misuse, raised below
        except BaseException as exc:
            return cast("T", await self._acaught(start, exc))
        if result is _MISSING:  # raised as it is, not reported
            raise not_awaitable_error(
                "Fallback", self.name, "acall()", "call()", awaitable
            )
        return cast("T", await self._ajudged(start, result))

    def _caught(self, start: float, exc: BaseException) -> Any:
        """
        An observed call that started at *start* raised *exc* (called from
        its ``except`` clause): answer with the fallback, or raise *exc*;
        report the call either way.
        """
        if not isinstance(exc, Exception):
            self._finished(start, "ignored", exc)
            raise exc
        try:
            if not self.on.matches(exc):
                raise exc
            return self._recover(exc, None)
        finally:
            self._finished(start, "failure", exc)

    async def _acaught(self, start: float, exc: BaseException) -> Any:
        """The async twin of :meth:`_caught`."""
        if not isinstance(exc, Exception):
            self._finished(start, "ignored", exc)
            raise exc
        try:
            if not self.on.matches(exc):
                raise exc
            return await self._arecover(exc, None)
        finally:
            self._finished(start, "failure", exc)

    def _judged(self, start: float, result: T) -> T:
        """
        An observed call that started at *start* returned *result*: refuse
        a misuse (not reported), ask *on_result*, report the call.
        """
        if result.__class__ not in PLAIN and is_awaitable(result):
            raise awaitable_result_error(
                "Fallback", self.name, "call()", "acall()", result
            )
        if self.on_result is not None and self._rejects(start, result):
            try:
                return cast("T", self._recover(None, result))
            finally:
                self._finished(start, "failure", None)
        self._finished(start, "success", None)
        return result

    async def _ajudged(self, start: float, result: T) -> T:
        """The async twin of :meth:`_judged` (no misuse to refuse)."""
        if self.on_result is not None and self._rejects(start, result):
            try:
                return cast("T", await self._arecover(None, result))
            finally:
                self._finished(start, "failure", None)
        self._finished(start, "success", None)
        return result

    def _rejects(self, start: float, result: object) -> bool:
        """
        Ask *on_result* about *result*; a call whose check raised is
        reported as ignored.
        """
        try:
            return bool(
                cast("Callable[[Any], object]", self.on_result)(result)
            )
        except BaseException:
            self._finished(start, "ignored", None)
            raise

    def _finished(
        self, start: float, outcome: str, error: BaseException | None
    ) -> None:
        """
        Send the :class:`~stalwart.CallFinished` of a call that started at
        *start*.
        """
        now = self.clock.now()
        emit(
            self._live.calls_now,
            call_finished(self.name, now, _KIND, outcome, now - start, error),
        )

    def _recover(self, error: BaseException | None, result: object) -> Any:
        if self.handler is None:
            self._record(error, result)
            return self.value
        try:
            out = self.handler(result if error is None else error)
        except Exception:
            self._record(error, result)
            raise
        if is_awaitable(out):
            raise awaitable_result_error(
                "Fallback", self.name, "call()", "acall()", out
            )
        self._record(error, result)
        return out

    def _sync_misuse(self) -> TypeError:
        return TypeError(
            f"Fallback {self.name!r} has an async handler, which a sync call "
            "cannot await; use acall() or decorate an async def"
        )

    async def _arecover(
        self, error: BaseException | None, result: object
    ) -> Any:
        if self.handler is None:
            self._record(error, result)
            return self.value
        try:
            out = self.handler(result if error is None else error)
            if is_awaitable(out):
                out = await out
        except Exception:
            self._record(error, result)
            raise
        self._record(error, result)
        return out

    def _record(self, error: BaseException | None, result: object) -> None:
        with self._lock:
            self._counts[error is None] += 1
        if self._live.all:
            emit(
                self._live.all,
                FallbackUsed(
                    primitive_name=self.name,
                    at=self.clock.now(),
                    error=error,
                    result=result,
                ),
            )
