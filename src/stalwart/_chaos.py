"""
Chaos: inject faults, results, latency or a behavior into calls, on
purpose, to see how the rest of the system copes.

The decisions (which call, on what schedule, with what probability) live in
:mod:`stalwart._core.chaos`; this shell owns the switch, the predicate, the
clock, the random source, the lock, the hooks, and the user's exceptions,
results and callbacks.
"""

from __future__ import annotations

import functools
import inspect
import math
import random
import threading

from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
)
from types import CoroutineType, FunctionType, MethodType, TracebackType
from typing import Any, NamedTuple, cast, final

import attrs

from ._clock import DEFAULT_CLOCK, Clock
from ._core.chaos import ChaosCore, ChaosPlan, Injection
from ._errors import ConfigurationError
from ._events import ChaosInjected, Hook, emit
from ._faces import (
    async_callable_error,
    awaitable_result_error,
    blocking_on_loop,
    is_async_callable,
    is_async_generator_function,
    is_awaitable,
    is_generator_function,
    not_awaitable_error,
    on_loop_thread,
)
from ._observe import LiveHooks, Observable, live_hooks
from ._statistics import Statistics
from ._typing import P, T
from ._validators import (
    collect,
    hooks,
    non_empty_str,
    optional_seconds,
    sync_callable,
    valid_clock,
    valid_hooks,
)


class _Missing:
    __slots__ = ()


_MISSING: Any = _Missing()

# What an injection returns when the call must go on (no result injected).
_PROCEED: Any = _Missing()

_KIND = "Chaos"


class ChaosContext(NamedTuple):
    """
    What a :class:`Chaos`'s ``when=`` predicate sees of a call.

    *args* and *kwargs* are the ones the function is about to be called
    with: read them, do not change them.

    Attributes:
        fn: The function about to be called; ``None`` for a ``with``
            block.
        args: Its positional arguments (``()`` for a ``with`` block).
        kwargs: Its keyword arguments (``{}`` for a ``with`` block).

    .. versionadded:: 0.2.0
    """

    fn: Callable[..., Any] | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@final
@attrs.frozen(kw_only=True)
class ChaosStatistics(Statistics):
    """
    A snapshot of a :class:`Chaos`'s counters.

    Every injection applies every kind the chaos was given, so each
    per-kind count is either *injected* or ``0``; they are there so that
    reports need not know how the chaos was configured.

    Attributes:
        name: The chaos's name.
        calls: Calls the chaos was enabled for (its switch on and ``when``
            true), which its schedule numbers; calls made while it was
            disabled are not counted.
        injected: Calls that were injected.
        faults: Calls that were given the fault.
        results: Calls whose result was replaced.
        latencies: Calls that were delayed.
        behaviors: Calls that ran the behavior.

    .. versionadded:: 0.2.0
    """

    name: str
    calls: int
    injected: int
    faults: int
    results: int
    latencies: int
    behaviors: int


class _Switch:
    """The run-time on/off switch: one attribute, read on every call."""

    __slots__ = ("on",)

    def __init__(self, on: bool) -> None:
        self.on = on


def _to_switch(value: bool) -> _Switch:
    if type(value) is bool:
        return _Switch(value)
    return cast("_Switch", value)  # not a bool: refused by the checks


Period = tuple[float, float]


def _to_periods(
    value: Iterable[tuple[float, float]] | tuple[float, float],
) -> tuple[Period, ...]:
    """
    Converter: one ``(start, end)`` pair or an iterable of them to a tuple
    of float pairs; anything else is left for the checks to refuse.
    """
    given: object = value
    if _is_pair(given):
        given = (given,)
    try:
        pairs: tuple[Any, ...] = tuple(cast("Iterable[Any]", given))
        if all(_is_pair(pair) for pair in pairs):
            return tuple((float(start), float(end)) for start, end in pairs)
    except (TypeError, OverflowError):
        pass
    return cast("tuple[Period, ...]", value)  # refused by the checks


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _is_pair(value: object) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(_is_number(item) for item in value)
    )


def _is_async(fn: object) -> bool:
    """
    Tell whether *fn* is an async callable, at the cost of a flag test for
    plain functions and methods, the common case on every ``call()``.
    """
    kind = type(fn)
    if kind is MethodType:
        fn = cast("MethodType", fn).__func__
        kind = type(fn)
    if kind is FunctionType:
        # A def returning an awaitable is caught on its result instead.
        return bool(cast("FunctionType", fn).__code__.co_flags & _CO_ASYNC)
    return is_async_callable(fn)


_CO_ASYNC = inspect.CO_COROUTINE


def _to_draw(
    source: random.Random | Callable[[], float] | None, seed: int | None
) -> Callable[[], float]:
    if isinstance(source, random.Random):
        return source.random
    if source is not None:
        return source
    # Each Chaos gets its own generator: it never touches, nor depends on,
    # the global ``random`` state of the user's program.
    return random.Random(seed).random  # not cryptography


@final
@attrs.frozen(kw_only=True, eq=False, repr=False)
class Chaos(Observable):
    """
    Inject a fault, a result, latency or a behavior into calls, on purpose.

    What to inject (at least one; *fault* and *result* exclude each
    other, since both replace the call's outcome).  An injected call
    receives every kind given, in this order: the *behavior* runs, the
    *latency* is slept, then the *fault* is raised or the *result*
    returned instead of calling; with neither, the call then runs as usual.

    Which calls (all of the settings given must hold; with none, every
    call):

    * *probability*: the chance, in ``[0, 1]``, that a call otherwise
      eligible is injected (drawn from *random_source* or *seed*);
    * *every*: only every N-th call (calls N, 2N, 3N...);
    * *first* / *after*: only calls numbered up to *first* / above *after*
      (``after=3, first=5``: calls 4 and 5);
    * *during*: only while the clock's time (``clock.now()``) lies in one
      of the ``(start, end)`` periods given (start included, end
      excluded; *end* may be ``math.inf``).

    Calls are numbered from 1 among those the chaos is *enabled* for: its
    switch is on (*enabled*, :meth:`enable`, :meth:`disable`) and *when*,
    if given, returns true for the call.  A disabled chaos passes calls
    straight through and counts nothing, at next to no cost.
    :meth:`reset` numbers the calls from 1 again.

    Latency is slept on *clock*: a :class:`~stalwart.testing.FakeClock`
    makes it instant and exact in tests, and the async faces await
    ``clock.asleep()``.  It is not cut short by an enclosing deadline: it
    plays a slow dependency, and an enclosing
    :class:`~stalwart.Timeout` gives up on it as it would on one.

    Faces: the decorator (``def``, ``async def``, and generator functions,
    whose injection happens at their first step), :meth:`call` /
    :meth:`acall`, and ``with`` / ``async with``, where the block plays
    the call: a fault is raised and latency slept on entry.  A ``with``
    block has no result to replace, so a chaos with *result* or
    *result_factory* refuses it (and generator functions) with
    :class:`TypeError`: outcome injection needs the call faces.  An
    ``async def`` *behavior* is awaited by the async faces and refused by
    the sync ones.

    Args:
        fault: What to raise: an exception (raised as it is on every
            injected call, its traceback cleared first), an exception
            class, or a function returning an exception (called for each
            injected call).
        result: What to return instead of calling.
        result_factory: A function whose return value (for each injected
            call) is returned instead of calling.
        latency: The delay to add before the call, in seconds (> 0).
        behavior: A function to run before the call (``def`` or
            ``async def``), taking no arguments: restart a replica, drop
            a cache, tick a counter.
        probability: The chance that an eligible call is injected.
        every: Inject only calls whose number is a multiple of it.
        first: Inject only calls numbered up to it.
        after: Inject only calls numbered above it.
        during: Inject only while the clock is in one of these
            ``(start, end)`` periods (one pair, or an iterable of pairs).
        when: ``when(context)`` tells whether the chaos is enabled for a
            call, from a :class:`ChaosContext` carrying the function and
            its arguments (only in staging; only for a request carrying a
            header; only for one function).  A plain callable; it runs
            for every call while the switch is on.
        enabled: The switch's initial position.
        seed: Seed a private random generator, so the injected calls are
            the same on every run.
        random_source: Where draws come from instead: a
            :class:`random.Random` or a function returning floats in
            ``[0, 1)``.  Not both *seed* and *random_source*.
        name: Used in errors and events.
        clock: Where latency is slept and the time read.
        hooks: Receive a :class:`~stalwart.ChaosInjected` per injected
            call (more can be attached later with :meth:`~stalwart.Observable.add_hook`).

    Raises:
        ConfigurationError: Listing every setting that is wrong.
        TypeError: If an ``async def`` is given where a plain callable is
            needed (*when*, *result_factory*, *fault*, *random_source*,
            *hooks*).

    .. versionadded:: 0.2.0
    """

    fault: BaseException | Callable[[], BaseException] | None = None
    result: Any = _MISSING
    result_factory: Callable[[], Any] | None = attrs.field(
        default=None, repr=False
    )
    latency: float | None = attrs.field(
        default=None, converter=optional_seconds
    )
    behavior: Callable[[], object] | None = attrs.field(
        default=None, repr=False
    )
    probability: float = 1.0
    every: int | None = None
    first: int | None = None
    after: int = 0
    during: tuple[Period, ...] = attrs.field(default=(), converter=_to_periods)
    when: Callable[[ChaosContext], object] | None = attrs.field(
        default=None, repr=False
    )
    _on: _Switch = attrs.field(
        default=attrs.Factory(lambda: _Switch(True)),
        alias="enabled",
        converter=_to_switch,
    )
    seed: int | None = attrs.field(default=None, repr=False)
    random_source: random.Random | Callable[[], float] | None = attrs.field(
        default=None, repr=False
    )
    name: str = "<unnamed>"
    clock: Clock = attrs.field(default=DEFAULT_CLOCK, repr=False)
    hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=hooks, repr=False
    )
    _core: ChaosCore = attrs.field(init=False, repr=False)
    _draw: Callable[[], float] = attrs.field(init=False, repr=False)
    _async_behavior: bool = attrs.field(init=False, repr=False)
    _has_result: bool = attrs.field(init=False, repr=False)
    _reads_clock: bool = attrs.field(init=False, repr=False)
    _draws: bool = attrs.field(init=False, repr=False)
    _live: LiveHooks = attrs.field(init=False, repr=False)
    # Held for O(1) numbering only; never across user code or a sleep.
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )

    def __attrs_post_init__(self) -> None:
        self._refuse_async_callables()
        collect(self._problems())
        injection = Injection(
            behavior=self.behavior is not None,
            latency=self.latency,
            fault=self.fault is not None,
            result=self.result is not _MISSING
            or self.result_factory is not None,
        )
        plan = ChaosPlan(
            injection=injection,
            probability=float(self.probability),
            every=self.every,
            first=self.first,
            after=self.after,
            during=self.during,
        )
        setattr_ = object.__setattr__
        setattr_(self, "_core", ChaosCore(plan))
        setattr_(self, "_draw", _to_draw(self.random_source, self.seed))
        setattr_(self, "_async_behavior", is_async_callable(self.behavior))
        setattr_(self, "_has_result", injection.result)
        setattr_(self, "_reads_clock", plan.reads_clock)
        setattr_(self, "_draws", plan.draws)
        live_hooks(self, self.hooks)

    def __repr__(self) -> str:
        given = {
            "fault": self.fault is not None,
            "result": self.result is not _MISSING,
            "result_factory": self.result_factory is not None,
            "latency": self.latency is not None,
            "behavior": self.behavior is not None,
            "probability": self.probability != 1,
            "every": self.every is not None,
            "first": self.first is not None,
            "after": self.after != 0,
            "during": bool(self.during),
            "when": self.when is not None,
        }
        shown = [f"name={self.name!r}"]
        shown += [f"{k}={getattr(self, k)!r}" for k, on in given.items() if on]
        shown.append(f"enabled={self.enabled!r}")
        return f"Chaos({', '.join(shown)})"

    # -- configuration checks -------------------------------------------------

    def _refuse_async_callables(self) -> None:
        # when= and result_factory= are checked by sync_callable.
        for name, value, why in (
            ("fault", self.fault, "its coroutine is not an exception"),
            (
                "random_source",
                self.random_source,
                "its coroutine is not a number",
            ),
        ):
            if is_async_callable(value):
                raise async_callable_error(name, value, why)

    def _problems(self) -> list[str]:
        problems: list[str] = []
        fields = attrs.fields(Chaos)
        for check, attr, value in (
            (sync_callable, fields.when, self.when),
            (sync_callable, fields.result_factory, self.result_factory),
            (non_empty_str, fields.name, self.name),
            (valid_clock, fields.clock, self.clock),
            (valid_hooks, fields.hooks, self.hooks),
        ):
            try:
                check(self, attr, value)
            except ConfigurationError as exc:
                problems.append(str(exc))
        problems += self._what_problems()
        problems += self._which_problems()
        if type(self._on) is not _Switch:
            problems.append(_must("enabled", "a bool", self._on))
        return problems

    def _what_problems(self) -> list[str]:
        problems: list[str] = []
        fault = self.fault
        if not (
            fault is None
            or isinstance(fault, BaseException)
            or (isinstance(fault, type) and issubclass(fault, BaseException))
            or (not isinstance(fault, type) and callable(fault))
        ):
            problems.append(
                _must(
                    "fault",
                    "an exception, an exception class, or a function"
                    " returning an exception",
                    fault,
                )
            )
        if self.behavior is not None and not callable(self.behavior):
            problems.append(_must("behavior", "callable", self.behavior))
        has_result = self.result is not _MISSING
        if has_result and self.result_factory is not None:
            problems.append(
                "give at most one of 'result' and 'result_factory'"
            )
        if fault is not None and (
            has_result or self.result_factory is not None
        ):
            problems.append(
                "give 'fault' or 'result'/'result_factory', not both:"
                " both replace the call's outcome"
            )
        latency: object = self.latency
        if latency is not None and not (
            isinstance(latency, float) and 0 < latency < math.inf
        ):
            problems.append(
                _must("latency", "a finite number of seconds > 0", latency)
            )
        if (
            fault is None
            and not has_result
            and self.result_factory is None
            and latency is None
            and self.behavior is None
        ):
            problems.append(
                "nothing to inject: give at least one of 'fault', 'result',"
                " 'result_factory', 'latency' and 'behavior'"
            )
        return problems

    def _which_problems(self) -> list[str]:
        problems: list[str] = []
        p = self.probability
        if not (_is_number(p) and 0 <= p <= 1):
            problems.append(_must("probability", "a number in [0, 1]", p))
        for name, value, least in (
            ("every", self.every, 1),
            ("first", self.first, 1),
            ("after", self.after, 0),
        ):
            if value is None and name != "after":
                continue
            if type(value) is not int or value < least:
                problems.append(_must(name, f"an int >= {least}", value))
        first, after = self.first, cast("object", self.after)
        if type(first) is int and type(after) is int and 1 <= first <= after:
            problems.append(
                f"no call can be injected: 'first' ({first}) must be"
                f" > 'after' ({after})"
            )
        problems += _period_problems(self.during)
        if self.seed is not None and type(self.seed) is not int:
            problems.append(_must("seed", "an int", self.seed))
        source = self.random_source
        if not (
            source is None
            or callable(source)
            or isinstance(source, random.Random)
        ):
            problems.append(
                _must(
                    "random_source",
                    "a random.Random or a function returning floats in [0, 1)",
                    source,
                )
            )
        if source is not None and self.seed is not None:
            problems.append("give at most one of 'seed' and 'random_source'")
        return problems

    # -- the switch and the counters -----------------------------------------

    @property
    def enabled(self) -> bool:
        """
        Whether the switch is on (*when* may still exempt calls).

        .. versionadded:: 0.2.0
        """
        return self._on.on

    def enable(self) -> None:
        """
        Turn the switch on: calls are considered for injection.

        .. versionadded:: 0.2.0
        """
        self._on.on = True

    def disable(self) -> None:
        """
        Turn the switch off: calls pass straight through, uncounted.

        .. versionadded:: 0.2.0
        """
        self._on.on = False

    def reset(self) -> None:
        """
        Number the calls from 1 again and zero the statistics (the switch
        is left as it is).

        .. versionadded:: 0.2.0
        """
        with self._lock:
            self._core.reset()

    def statistics(self) -> ChaosStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            calls, injected = self._core.calls, self._core.injected
        injection = self._core.plan.injection
        return ChaosStatistics(
            name=self.name,
            calls=calls,
            injected=injected,
            faults=injected if injection.fault else 0,
            results=injected if injection.result else 0,
            latencies=injected if injection.latency is not None else 0,
            behaviors=injected if injection.behavior else 0,
        )

    # -- deciding and injecting ----------------------------------------------

    def _decide(
        self,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> tuple[int, Injection] | None:
        """
        Number an enabled call and decide its injection; ``None`` when the
        call is not enabled or not injected.
        """
        when = self.when
        if when is not None and not when(ChaosContext(fn, args, kwargs)):
            return None
        core = self._core
        # The clock and the draw are read before the lock is taken.
        now = self.clock.now() if self._reads_clock else 0.0
        u = self._draw() if self._draws else 0.0
        with self._lock:
            number, injection = core.next(now, u)
        if injection is None:
            return None
        return number, injection

    def _prepare(
        self, number: int, injection: Injection
    ) -> tuple[BaseException | None, Any]:
        """
        Build the fault or the result of an injected call and send the
        event; return the fault (or ``None``) and the result (or
        :data:`_PROCEED`).
        """
        fault: BaseException | None = None
        result = _PROCEED
        if injection.fault:
            fault = self._fault()
        elif injection.result:
            result = (
                self.result
                if self.result_factory is None
                else self.result_factory()
            )
        if self._live.all:
            emit(
                self._live.all,
                ChaosInjected(
                    primitive_name=self.name,
                    at=self.clock.now(),
                    call_number=number,
                    kinds=injection.kinds,
                    fault=fault,
                    result=None if result is _PROCEED else result,
                    latency=injection.latency,
                ),
            )
        return fault, result

    def _fault(self) -> BaseException:
        fault = self.fault
        if isinstance(fault, BaseException):
            # The same instance is raised again and again: clear what its
            # last raise left (a traceback that would otherwise grow, and
            # the exception that was being handled then).
            fault.__context__ = None
            return fault.with_traceback(None)
        made = cast("Callable[[], object]", fault)()
        if not isinstance(made, BaseException):
            raise TypeError(
                f"Chaos {self.name!r}: 'fault' returned {made!r}, which is"
                " not an exception"
            )
        return made

    def _inject(self, number: int, injection: Injection) -> Any:
        """
        Apply *injection* on the sync faces: run the behavior, sleep the
        latency, raise the fault; return the result or :data:`_PROCEED`.
        """
        fault, result = self._prepare(number, injection)
        if injection.behavior:
            cast("Callable[[], object]", self.behavior)()
        if injection.latency is not None:
            self.clock.sleep(injection.latency)
        if fault is not None:
            raise fault
        return result

    async def _ainject(self, number: int, injection: Injection) -> Any:
        """
        Apply *injection* on the async faces (the twin of :meth:`_inject`).
        """
        fault, result = self._prepare(number, injection)
        if injection.behavior:
            done = cast("Callable[[], object]", self.behavior)()
            if self._async_behavior:
                await cast("Awaitable[object]", done)
        if injection.latency is not None:
            await self.clock.asleep(injection.latency)
        if fault is not None:
            raise fault
        return result

    def _run(
        self,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """
        The sync faces' path while the switch is on: decide and inject;
        return the injected result or :data:`_PROCEED`.
        """
        if self.latency is not None and on_loop_thread():
            raise blocking_on_loop(
                _KIND,
                self.name,
                "its latency on a sync face",
                "acall(), `async with` or an async def",
            )
        decision = self._decide(fn, args, kwargs)
        if decision is None:
            return _PROCEED
        return self._inject(*decision)

    async def _arun(
        self,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """
        The async twin of :meth:`_run`.
        """
        decision = self._decide(fn, args, kwargs)
        if decision is None:
            return _PROCEED
        return await self._ainject(*decision)

    # -- misuse ----------------------------------------------------------------

    def _refuse_sync(self, face: str) -> None:
        if self._async_behavior:
            raise TypeError(
                f"Chaos {self.name!r} has an async behavior, which {face}"
                " cannot await; use acall(), `async with` or decorate an"
                " async def"
            )

    def _refuse_no_result(self, what: str) -> None:
        if self._has_result:
            raise TypeError(
                f"Chaos {self.name!r}: {what} has no result to replace;"
                " result injection (result=, result_factory=) needs the"
                " call faces: call(), acall() or the decorator on a def or"
                " an async def"
            )

    # -- faces -----------------------------------------------------------------

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Run ``fn(*args, **kwargs)``, injecting into it when the chaos
        decides so.

        Raises:
            TypeError: If *fn* is an ``async def`` (or returns something
                to await; use :meth:`acall`), or the behavior is.
            RuntimeError: If latency could be injected on a thread that
                runs an event loop, which it would block.

        .. versionadded:: 0.2.0
        """
        if _is_async(fn):
            raise TypeError(
                f"Chaos {self.name!r}: call() was given the async function"
                f" {fn!r}; use acall() for async functions"
            )
        if self._async_behavior:
            self._refuse_sync("call()")
        if self._on.on:
            injected = self._run(fn, args, kwargs)
            if injected is not _PROCEED:
                return cast("T", injected)
        result = fn(*args, **kwargs)
        if is_awaitable(result):
            raise awaitable_result_error(
                _KIND, self.name, "call()", "acall()", result
            )
        return result

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """
        Await ``fn(*args, **kwargs)``, injecting into it when the chaos
        decides so.

        Raises:
            TypeError: If *fn* returns something that cannot be awaited
                (use :meth:`call`).

        .. versionadded:: 0.2.0
        """
        if self._on.on:
            injected = await self._arun(fn, args, kwargs)
            if injected is not _PROCEED:
                return cast("T", injected)
        awaitable = fn(*args, **kwargs)
        if type(awaitable) is not CoroutineType and not is_awaitable(
            awaitable
        ):
            raise not_awaitable_error(
                _KIND, self.name, "acall()", "call()", awaitable
            )
        return await awaitable

    def __enter__(self) -> None:
        """
        Inject into the block: run the behavior, sleep the latency, raise
        the fault.

        Raises:
            TypeError: If the chaos injects results, or its behavior is
                ``async``.
        """
        if self._has_result or self._async_behavior:
            self._refuse_no_result("a `with` block")
            self._refuse_sync("a `with` block")
        if self._on.on:
            self._run(None, (), {})

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def __aenter__(self) -> None:
        """
        Inject into the block (the async twin of ``__enter__``).

        Raises:
            TypeError: If the chaos injects results.
        """
        if self._has_result:
            self._refuse_no_result("an `async with` block")
        if self._on.on:
            await self._arun(None, (), {})

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate a ``def``, an ``async def``, or a generator function
        (sync or async), keeping its exact signature.

        A generator function is injected at its first step (the fault is
        raised from the first ``next()``), as a ``with`` block around its
        body would be.

        Raises:
            TypeError: If a sync function (or generator function) is given
                to a chaos with an ``async`` behavior, or a generator
                function to one that injects results.

        .. versionadded:: 0.2.0
        """
        if is_async_generator_function(fn):
            self._refuse_no_result("a generator function")
            return cast("Callable[P, T]", self._wrap_agen(cast("Any", fn)))
        if is_generator_function(fn):
            self._refuse_no_result("a generator function")
            self._refuse_sync("a generator function")
            return cast("Callable[P, T]", self._wrap_gen(cast("Any", fn)))
        switch = self._on
        if is_async_callable(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)
            arun = self._arun

            @functools.wraps(fn)
            async def awrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                if switch.on:
                    injected = await arun(afn, args, kwargs)
                    if injected is not _PROCEED:
                        return injected
                return await afn(*args, **kwargs)

            return cast("Callable[P, T]", awrapper)
        self._refuse_sync("a sync function")
        run = self._run

        # Disabled, a call costs one attribute read more than the bare
        # wrapper: the switch is read from a closure, not through self.
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            if switch.on:
                injected = run(fn, args, kwargs)
                if injected is not _PROCEED:
                    return cast("T", injected)
            return fn(*args, **kwargs)

        return wrapper

    def _wrap_gen(
        self, fn: Callable[P, Generator[Any, Any, Any]]
    ) -> Callable[P, Generator[Any, Any, Any]]:
        switch = self._on
        run = self._run

        @functools.wraps(fn)
        def guarded(
            *args: P.args, **kwargs: P.kwargs
        ) -> Generator[Any, Any, Any]:
            if switch.on:
                run(fn, args, kwargs)
            return (yield from fn(*args, **kwargs))

        return guarded

    def _wrap_agen(
        self, fn: Callable[P, AsyncGenerator[Any, Any]]
    ) -> Callable[P, AsyncGenerator[Any, Any]]:
        switch = self._on
        arun = self._arun

        @functools.wraps(fn)
        async def guarded(
            *args: P.args, **kwargs: P.kwargs
        ) -> AsyncGenerator[Any, Any]:
            if switch.on:
                await arun(fn, args, kwargs)
            agen = fn(*args, **kwargs)
            try:
                item = await agen.__anext__()
                while True:
                    try:
                        sent = yield item
                    except GeneratorExit:
                        await agen.aclose()
                        raise
                    except BaseException as thrown:
                        item = await agen.athrow(thrown)
                    else:
                        item = await agen.asend(sent)
            except StopAsyncIteration:
                return

        return guarded


def _must(name: str, requirement: str, value: object) -> str:
    return f"{name!r} must be {requirement} (got {value!r})"


def _period_problems(during: object) -> list[str]:
    requirement = (
        "a (start, end) pair of numbers or an iterable of them, with"
        " start < end and start finite"
    )
    if not isinstance(during, tuple) or not all(
        _is_pair(pair) and type(pair[0]) is type(pair[1]) is float
        for pair in during
    ):
        return [_must("during", requirement, during)]
    for start, end in during:
        if not (math.isfinite(start) and start < end):
            return [_must("during", requirement, during)]
    return []
