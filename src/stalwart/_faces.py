"""
What the faces of every primitive share.

A primitive that admits a call and then hears how it ended (a circuit
breaker, a keyed one, a bulkhead, a rate limiter, an async timeout) is a
:class:`Guard`:
three steps, ``_enter`` / ``_aenter`` to take a token, ``_exit`` /
``_aexit`` to report the outcome on it, and ``_undo`` to give it back when
the call turned out never to have happened (a misuse refused by a face).
One that admits by the call's arguments (a keyed breaker, a limiter
with a ``key_func``) also has
``_enter_args`` / ``_aenter_args``, which take them.  The generic faces
below (:func:`guard_call`, :func:`guard_acall`, :func:`guard_decorate`,
:class:`GuardBlocks`) are derived from those steps; a primitive keeps its
own hand-tuned fast path where the benchmarks show it matters.  A
primitive that runs the call itself (a retry, a fallback) has the other
shape, :class:`RunStep` (``call`` / ``acall``), from which
:func:`run_step_decorate` derives a decorator.  A
:class:`~stalwart.Pipeline` composes primitives of both shapes through
these protocols.

This module also holds what every face needs whatever its shape:

* :class:`Blocks`, the state of each open ``with`` / ``async with`` block,
  keyed by the frame that entered it, so blocks that exit out of order
  (generators stepped alternately, an async generator stepped from several
  tasks) each get their own state back, and nothing is left in the caller's
  context;
* the misuse checks: a sync face given something awaitable, an async face
  given something that is not, an ``async def`` where a plain predicate or
  hook is expected, a sync face about to block the thread of a running
  event loop;
* guards for generator functions, so a decorator guards the whole
  iteration and not only the creation of the generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import sys

from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Generator,
)
from pathlib import Path
from types import (
    CodeType,
    CoroutineType,
    FrameType,
    FunctionType,
    GeneratorType,
    MethodType,
)
from typing import Any, Final, Generic, Protocol, TypeVar, cast

from ._typing import P, T


Tok = TypeVar("Tok")
S = TypeVar("S")
Y = TypeVar("Y")
R = TypeVar("R")


class _NoResult:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_RESULT"


NO_RESULT: Final = _NoResult()
"""The result reported by a ``with`` block, which has none."""


_getframe = sys._getframe

# -- event loops --------------------------------------------------------------

# The C function behind asyncio.get_running_loop(), without its exception:
# None when no loop runs on this thread.
_running_loop = asyncio.events._get_running_loop


def on_loop_thread() -> bool:
    """
    Tell whether an event loop is running on the calling thread.
    """
    return _running_loop() is not None


def blocking_on_loop(kind: str, name: str, face: str, aface: str) -> Exception:
    """
    Return the error for a sync *face* that would block the event loop
    running on this thread; *aface* is the async face to use instead.
    """
    return RuntimeError(
        f"{kind} {name!r}: {face} would block the event loop running on this"
        f" thread (and every task on it); in async code use {aface}"
    )


# -- warnings -----------------------------------------------------------------

_PACKAGE = str(Path(__file__).parent) + os.sep  # as in co_filename


def user_stacklevel() -> int:
    """
    Return the ``stacklevel`` that points a warning issued by the caller
    of this function at the first frame outside stalwart (the user's
    line, whichever face or constructor it went through).
    """
    frame = _getframe(2)  # the caller's caller, stacklevel 2
    level = 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(
        _PACKAGE
    ):
        frame = frame.f_back
        level += 1
    return level


# -- callables ----------------------------------------------------------------


def is_async_callable(fn: object) -> bool:
    """
    Tell whether calling *fn* returns a coroutine: an ``async def``
    function or method, a :func:`functools.partial` of one, or an object
    whose ``__call__`` is ``async def``.
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    if inspect.isroutine(fn) or isinstance(fn, type):
        return False
    # The class's __call__, not callable(): an async one makes calls return
    # coroutines.
    call = getattr(type(fn), "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(call)


ASYNC_FLAGS: Final = (
    inspect.CO_COROUTINE
    | inspect.CO_ITERABLE_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
)
"""The code flags of functions whose call returns a coroutine or an async
generator: a sync face on a hot path tests ``fn.__code__.co_flags &
ASYNC_FLAGS`` for a plain function, :func:`is_async_function` otherwise."""


def is_async_function(fn: object) -> bool:
    """
    Tell whether calling *fn* returns a coroutine (or an async
    generator), cheaply for plain functions and methods: what a sync
    ``call()`` face refuses before it takes anything.
    """
    kind = type(fn)
    if kind is MethodType:
        fn = cast("MethodType", fn).__func__
        kind = type(fn)
    if kind is FunctionType:
        return bool(cast("FunctionType", fn).__code__.co_flags & ASYNC_FLAGS)
    return is_async_callable(fn) or is_async_generator_function(fn)


def is_async_generator_function(fn: object) -> bool:
    """
    Tell whether *fn* is an ``async def`` with ``yield`` (or a partial of
    one).
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.isasyncgenfunction(fn)


def is_generator_function(fn: object) -> bool:
    """
    Tell whether *fn* is a ``def`` with ``yield`` (or a partial of one).
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.isgeneratorfunction(fn)


def is_any_generator_function(fn: object) -> bool:
    """
    Tell whether *fn* is a generator function of either kind (or a partial
    of one).
    """
    return is_generator_function(fn) or is_async_generator_function(fn)


def generator_function_error(
    kind: str, name: str, fn: object, why: str
) -> TypeError:
    """
    Return the error for a decorator that refuses the generator function
    *fn*; *why* says what guarding it would get wrong.
    """
    return TypeError(
        f"{kind} {name!r} cannot guard the generator function {fn!r}: {why}"
    )


def async_callable_error(name: str, value: object, why: str) -> TypeError:
    """
    Return the error for an ``async def`` given as *name*, where a plain
    callable is needed; *why* says what would go wrong.
    """
    return TypeError(
        f"{name!r} must be a plain (sync) callable, not an async one"
        f" (got {value!r}): {why}"
    )


# -- results ------------------------------------------------------------------

# Types whose instances were found not to be awaitable: a set lookup is
# cheaper than inspect.isawaitable.  Bounded, in case results come in an
# endless stream of new classes.
_PLAIN: set[type] = {type(None), bool, int, float, str, bytes, tuple, list}
_PLAIN_MAX = 4096

PLAIN: Final = _PLAIN
"""Types whose instances are never awaitable: a hand-tuned face tests
``type(result) not in PLAIN`` before calling :func:`is_awaitable`."""


def is_awaitable(value: object) -> bool:
    """
    Tell whether *value* can be awaited (a coroutine, a future, any object
    with ``__await__``).
    """
    kind = type(value)
    if kind in _PLAIN:
        return False
    if kind is CoroutineType or inspect.isawaitable(value):
        return True
    # A plain generator may be a generator-based coroutine next time.
    if kind is not GeneratorType and len(_PLAIN) < _PLAIN_MAX:
        _PLAIN.add(kind)
    return False


def awaitable_result_error(
    kind: str, name: str, face: str, aface: str, result: object
) -> TypeError:
    """
    Return the error for a sync *face* whose function returned the
    awaitable *result*, after closing it if it is a coroutine (so it does
    not warn that it was never awaited).
    """
    if isinstance(result, CoroutineType):
        result.close()
    return TypeError(
        f"{kind} {name!r}: {face} was given a function that returned"
        f" {type(result).__name__} {result!r}, which must be awaited; use"
        f" {aface} for async functions"
    )


def not_awaitable_error(
    kind: str, name: str, aface: str, face: str, value: object
) -> TypeError:
    """
    Return the error for an async *aface* whose function returned *value*,
    which cannot be awaited.
    """
    return TypeError(
        f"{kind} {name!r}: {aface} was given a function that returned"
        f" {type(value).__name__} {value!r}, which cannot be awaited; use"
        f" {face} for plain functions"
    )


# -- per-block state ----------------------------------------------------------


def _forwarders() -> frozenset[CodeType]:
    """
    The code of the standard library's functions that enter or exit a
    context manager on behalf of their caller.
    """
    names = {
        "enter_context",
        "enter_async_context",
        "__exit__",
        "__aexit__",
        "close",
        "aclose",
    }
    codes: set[CodeType] = set()
    for cls in (contextlib.ExitStack, contextlib.AsyncExitStack):
        for klass in cls.__mro__:
            for attr, value in vars(klass).items():
                if attr in names and inspect.isfunction(value):
                    codes.add(value.__code__)
    return frozenset(codes)


_FORWARDERS = set(_forwarders())

FORWARDING_GLOBALS: Final = vars(contextlib)
"""The globals of every function in :data:`_FORWARDERS` from the standard
library: a frame whose ``f_globals`` is not this dict (nor those of a
module that registered forwarders) is not a forwarder, which is much
cheaper to test than looking its code up (a code object's hash is computed
afresh at every lookup)."""

# The ids of the globals of every module with forwarders (contextlib's and
# those given to register_forwarders()).
_FORWARDING_MODULES = {id(FORWARDING_GLOBALS)}

FORWARDING_MODULES: Final = _FORWARDING_MODULES
"""The ids of the globals of every module with forwarders: a face on a hot
path calls :func:`caller` only when its caller's globals are in it."""


def register_forwarders(*functions: Callable[..., Any]) -> None:
    """
    Make :func:`caller` skip the frames of *functions*, which enter or
    exit blocks of other primitives on behalf of their own caller (a
    :class:`~stalwart.Pipeline`'s ``with`` face): a guard that keys its
    state by the frame of the block then finds its user's frame.
    """
    for function in functions:
        _FORWARDING_MODULES.add(id(function.__globals__))
        _FORWARDERS.add(function.__code__)


def caller(depth: int) -> FrameType:
    """
    Return the frame *depth* levels above the caller of this function,
    skipping :class:`contextlib.ExitStack`'s own frames (and those of the
    other forwarders, :func:`register_forwarders`), so that a block
    entered and exited through an exit stack is keyed by the frame that
    owns the stack.
    """
    frame = _getframe(depth + 1)
    while (
        id(frame.f_globals) in _FORWARDING_MODULES
        and frame.f_code in _FORWARDERS
        and frame.f_back is not None
    ):
        frame = frame.f_back
    return frame


class Blocks(Generic[S]):
    """
    The state of each open ``with`` block of one primitive.

    A block's state is stored under the frame that runs the ``with``
    statement (a generator's or a coroutine's own frame, whatever task or
    thread steps it), so it is found again at exit even when blocks exit
    out of order.  Blocks nested in one frame stack up, innermost last, as
    the syntax requires.  An exit from a frame that holds nothing (an exit
    stack closed from another function) takes the most recent open block,
    as a stack would.  A closed block leaves nothing behind.

    :attr:`held` maps each frame to the state of its innermost open block
    and :attr:`outer` to the states of the blocks around it, so a face on
    a hot path may inline :meth:`push` and :meth:`pop`: store into
    :attr:`held` when the frame is not in it yet, and after popping from
    it, call :meth:`unnest` only when :attr:`outer` is not empty.

    A frame runs on one thread at a time, so the dictionaries need no
    lock: each of their operations is atomic.
    """

    __slots__ = ("held", "outer")

    def __init__(self) -> None:
        self.held: dict[FrameType, S] = {}
        """The state of the innermost open block of each frame."""
        self.outer: dict[FrameType, list[S]] = {}
        """The states of the blocks around it in its frame, innermost
        last; a frame is here only while it has such blocks."""

    def __len__(self) -> int:
        return len(self.held)

    def push(self, frame: FrameType, state: S) -> None:
        """
        Store *state* for a block entered by *frame*.
        """
        held = self.held
        if frame in held:
            self.outer.setdefault(frame, []).append(held[frame])
        held[frame] = state

    def pop(self, frame: FrameType) -> S:
        """
        Take back the state of the innermost block of *frame*.

        Raises:
            RuntimeError: If no block is open at all.
        """
        held = self.held
        try:
            state = held.pop(frame)
        except KeyError:
            try:
                frame, state = held.popitem()
            except KeyError:
                msg = "__exit__ without a matching __enter__"
                raise RuntimeError(msg) from None
        if self.outer:
            self.unnest(frame)
        return state

    def unnest(self, frame: FrameType) -> None:
        """
        Make the block around the one just popped from *frame* (if any) its
        innermost open block again.
        """
        outer = self.outer.get(frame)
        if outer is not None:
            self.held[frame] = outer.pop()
            if not outer:
                del self.outer[frame]


# -- the guard protocol -------------------------------------------------------


class Guard(Protocol[Tok]):
    """
    A primitive that admits a call and then hears how it ended.

    ``_enter`` (sync, may block) and ``_aenter`` take a token or raise a
    :class:`~stalwart.RejectedError`.  ``_exit`` / ``_aexit`` report the
    outcome on the token: *exc* is the exception the call raised (``None``
    on success) and *result* what it returned (:data:`NO_RESULT` for a
    ``with`` block); they may raise another exception in its place (a
    timeout turns its own cancellation into
    :class:`~stalwart.TimeoutExceededError`).  ``_undo`` gives the token
    back as if the call had never been made.  ``_kind`` and ``name`` name
    the primitive in errors.
    """

    @property
    def name(self) -> str: ...

    @property
    def _kind(self) -> str: ...

    def _enter(self) -> Tok: ...

    async def _aenter(self) -> Tok: ...

    def _exit(
        self, token: Tok, exc: BaseException | None, result: object
    ) -> None: ...

    async def _aexit(
        self, token: Tok, exc: BaseException | None, result: object
    ) -> None: ...

    def _undo(self, token: Tok) -> None: ...


def guard_call(
    guard: Guard[Any],
    fn: Callable[..., T],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    """
    Run ``fn(*args, **kwargs)`` inside *guard* (its ``call`` face).

    Raises:
        TypeError: If *fn* returned something awaitable; the token is
            given back and nothing is counted.
    """
    token = guard._enter()
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:
        guard._exit(token, exc, NO_RESULT)
        raise
    if type(result) not in _PLAIN and is_awaitable(result):
        guard._undo(token)
        raise awaitable_result_error(
            guard._kind, guard.name, "call()", "acall()", result
        )
    guard._exit(token, None, result)
    return result


async def guard_acall(
    guard: Guard[Any],
    fn: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> T:
    """
    Await ``fn(*args, **kwargs)`` inside *guard* (its ``acall`` face).

    Raises:
        TypeError: If *fn* returned something that cannot be awaited; the
            token is given back and nothing is counted.
    """
    token = await guard._aenter()
    try:
        awaitable = fn(*args, **kwargs)
    except BaseException as exc:
        await guard._aexit(token, exc, NO_RESULT)
        raise
    if type(awaitable) is not CoroutineType and not is_awaitable(awaitable):
        guard._undo(token)
        raise not_awaitable_error(
            guard._kind, guard.name, "acall()", "call()", awaitable
        )
    try:
        result = await awaitable
    except BaseException as exc:
        await guard._aexit(token, exc, NO_RESULT)
        raise
    await guard._aexit(token, None, result)
    return result


def guard_generator(
    guard: Guard[Any], fn: Callable[P, Generator[Y, Any, R]]
) -> Callable[P, Generator[Y, Any, R]]:
    """
    Guard the whole iteration of the generator function *fn*: the token is
    taken at the first step and reported when the iteration ends (success),
    fails (its exception) or is closed early (a success: the consumer had
    what it wanted).
    """

    @functools.wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> Generator[Y, Any, R]:
        token = guard._enter()
        try:
            result = yield from fn(*args, **kwargs)
        except GeneratorExit:
            guard._exit(token, None, NO_RESULT)
            raise
        except BaseException as exc:
            guard._exit(token, exc, NO_RESULT)
            raise
        guard._exit(token, None, NO_RESULT)
        return result

    return guarded


def guard_async_generator(
    guard: Guard[Any], fn: Callable[P, AsyncGenerator[Y, Any]]
) -> Callable[P, AsyncGenerator[Y, Any]]:
    """
    Guard the whole iteration of the async generator function *fn*, as
    :func:`guard_generator` does; ``asend``, ``athrow`` and ``aclose`` are
    passed through to it.
    """

    @functools.wraps(fn)
    async def guarded(
        *args: P.args, **kwargs: P.kwargs
    ) -> AsyncGenerator[Y, Any]:
        token = await guard._aenter()
        try:
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
                pass
        except GeneratorExit:
            await guard._aexit(token, None, NO_RESULT)
            raise
        except BaseException as exc:
            await guard._aexit(token, exc, NO_RESULT)
            raise
        await guard._aexit(token, None, NO_RESULT)

    return guarded


def guard_decorate(guard: Guard[Any], fn: Callable[P, T]) -> Callable[P, T]:
    """
    Decorate *fn* with *guard*: an ``async def`` (or a callable whose
    ``__call__`` is one) goes through :func:`guard_acall`, a generator
    function or an async generator function through the generator guards,
    anything else through :func:`guard_call`.
    """
    if is_async_generator_function(fn):
        return cast(
            "Callable[P, T]", guard_async_generator(guard, cast("Any", fn))
        )
    if is_generator_function(fn):
        return cast("Callable[P, T]", guard_generator(guard, cast("Any", fn)))
    if is_async_callable(fn):
        afn = cast("Callable[P, Awaitable[Any]]", fn)

        @functools.wraps(fn)
        async def aguarded(*args: P.args, **kwargs: P.kwargs) -> Any:
            return await guard_acall(guard, afn, args, kwargs)

        return cast("Callable[P, T]", aguarded)

    @functools.wraps(fn)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        return guard_call(guard, fn, args, kwargs)

    return guarded


# -- the run-step protocol -----------------------------------------------------


class RunStep(Protocol):
    """
    A primitive that runs the call itself (a retry re-runs it, a fallback
    replaces its outcome): ``call(fn, *args, **kwargs)`` and its async twin
    ``acall``, which call *fn* as often as they need and return a result.
    ``name`` names the primitive in errors.
    """

    @property
    def name(self) -> str: ...

    def call(
        self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any: ...

    def acall(
        self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any
    ) -> Awaitable[Any]: ...


def run_step_decorate(stage: RunStep, fn: Callable[P, T]) -> Callable[P, T]:
    """
    Decorate *fn* with the run step of *stage*: an ``async def`` (or a
    callable whose ``__call__`` is one) goes through ``acall``, anything
    else through ``call``.

    Raises:
        TypeError: If *fn* is a generator function of either kind: ``call``
            would run only the creation of the generator, not its
            iteration.
    """
    if is_generator_function(fn) or is_async_generator_function(fn):
        kind = getattr(stage, "_kind", None) or type(stage).__name__
        msg = (
            f"{kind} {getattr(stage, 'name', '?')!r} has no decorator of its"
            f" own, and its call() would guard only the creation of the"
            f" generator {fn!r}, not its iteration"
        )
        raise TypeError(msg)
    if is_async_callable(fn):
        afn = cast("Callable[..., Awaitable[Any]]", fn)

        @functools.wraps(fn)
        async def arun(*args: Any, **kwargs: Any) -> Any:
            return await stage.acall(afn, *args, **kwargs)

        return cast("Callable[P, T]", arun)

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        result: T = stage.call(fn, *args, **kwargs)
        return result

    return run


class GuardBlocks:
    """
    The ``with`` / ``async with`` faces of a :class:`Guard`, keeping each
    block's token in a :class:`Blocks` stored as ``self._blocks``.
    """

    __slots__ = ()

    _blocks: Blocks[Any]

    def __enter__(self) -> None:
        guard = cast("Guard[Any]", self)
        self._blocks.push(caller(1), guard._enter())

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: object,
    ) -> None:
        guard = cast("Guard[Any]", self)
        guard._exit(self._blocks.pop(caller(1)), exc, NO_RESULT)

    async def __aenter__(self) -> None:
        guard = cast("Guard[Any]", self)
        frame = caller(1)
        self._blocks.push(frame, await guard._aenter())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: object,
    ) -> None:
        guard = cast("Guard[Any]", self)
        await guard._aexit(self._blocks.pop(caller(1)), exc, NO_RESULT)
