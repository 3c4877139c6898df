"""
Pipeline: several primitives applied to one call, outermost first.

A pipeline composes its stages only through their protocols (STYLE.md,
layering rule 3), never by importing their shells:

* a :class:`~stalwart._faces.Guard` (a breaker, a bulkhead, the async
  timeout: every primitive that admits a call and then hears how it
  ended) is entered and exited through its steps: a run of consecutive
  guards is entered in one loop, in one frame, and left in reverse order;
* a guard that admits by the call's arguments (a keyed breaker, a limiter
  with a ``key_func``: its key
  comes from them) has ``_enter_args(args, kwargs)`` and
  ``_aenter_args(args, kwargs)`` in place of ``_enter`` / ``_aenter``, and
  is entered through those, in a frame of its own;
* any other stage (a retry, a fallback, chaos, the sync timeout, a
  thread-pool bulkhead, a weighted bulkhead that weighs calls by their
  arguments) runs the rest of the pipeline through its ``call`` /
  ``acall``;
* the decorator stacks each stage's own decorator (a stage without one is
  wrapped through its protocol), so ``@pipeline`` costs what the stacked
  decorators cost, hand-tuned fast paths included.

Which primitive a stage is (for the order checks and the faces it cannot
have) is read from the package's public names, not from imports.

Misuse found where the user's function is called (``call()`` given
something that returned an awaitable, ``acall()`` something that did not)
travels out as :class:`_Misuse`, a :class:`BaseException`: every stage
lets those through without counting, retrying or replacing them, and the
guards of the pipeline give their permits back with ``_undo``.  The entry
point turns it back into the :class:`TypeError` it carries.
"""

from __future__ import annotations

import functools
import sys
import threading
import warnings

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterator,
    Mapping,
)
from types import (
    CoroutineType,
    FunctionType,
    MappingProxyType,
    TracebackType,
)
from typing import Any, Final, Protocol, TypeAlias, cast, final

import attrs

from ._errors import ConfigurationError, PipelineOrderWarning
from ._events import Hook, running_pipeline
from ._faces import (
    ASYNC_FLAGS,
    FORWARDING_MODULES,
    NO_RESULT,
    PLAIN,
    Blocks,
    caller,
    guard_decorate,
    is_async_callable,
    is_async_function,
    is_async_generator_function,
    is_awaitable,
    is_generator_function,
    not_awaitable_error,
    register_forwarders,
    run_step_decorate,
    user_stacklevel,
)
from ._faces import awaitable_result_error as _awaitable_result_error
from ._observe import LiveHooks, check_hook, observable
from ._statistics import Statistics
from ._typing import P, T


_KIND = "Pipeline"

_getframe = sys._getframe
_set_tag = running_pipeline.set
_reset_tag = running_pipeline.reset

_STEPS = ("_enter", "_aenter", "_exit", "_aexit", "_undo")
"""The steps of the guard protocol (:class:`stalwart._faces.Guard`)."""

_ARGS_STEPS = ("_enter_args", "_aenter_args")
"""The steps of a guard that admits by the call's arguments."""


# -- what each stage is -------------------------------------------------------

FALLBACK: Final = "fallback"
RETRY: Final = "retry"
BREAKER: Final = "breaker"
BULKHEAD: Final = "bulkhead"
THREAD_POOL: Final = "thread pool"
LIMITER: Final = "limiter"
TIMEOUT: Final = "timeout"
CHAOS: Final = "chaos"

_ROLE_NAMES: Final = {
    "Fallback": FALLBACK,
    "Retry": RETRY,
    "CircuitBreaker": BREAKER,
    "KeyedCircuitBreaker": BREAKER,
    "Bulkhead": BULKHEAD,
    "AdaptiveBulkhead": BULKHEAD,
    "WeightedBulkhead": BULKHEAD,
    "WeightedHold": BULKHEAD,
    "ThreadPoolBulkhead": THREAD_POOL,
    "TokenBucket": LIMITER,
    "LeakyBucket": LIMITER,
    "FixedWindow": LIMITER,
    "SlidingWindowLog": LIMITER,
    "SlidingWindowCounter": LIMITER,
    "GCRA": LIMITER,
    "Timeout": TIMEOUT,
    "Chaos": CHAOS,
}
"""The role of each of stalwart's primitives, by its public name."""


@functools.cache
def _roles() -> dict[type, str]:
    """
    Map each of stalwart's primitive classes to its role, read from the
    package's public names (so this module imports no shell); the package
    is initialised by the time a pipeline is built.
    """
    package = sys.modules[__package__]
    return {getattr(package, name): role for name, role in _ROLE_NAMES.items()}


def _is_guard(stage: object) -> bool:
    return all(callable(getattr(stage, step, None)) for step in _STEPS)


def _admits_by_args(stage: object) -> bool:
    """
    Tell whether *stage* is a guard entered with the call's arguments.
    """
    return all(callable(getattr(stage, step, None)) for step in _ARGS_STEPS)


def _is_call_stage(stage: object) -> bool:
    return callable(getattr(stage, "call", None)) and callable(
        getattr(stage, "acall", None)
    )


def _describe(stage: object) -> str:
    """
    Name *stage* in messages: ``Retry 'fetch'``.
    """
    kind = getattr(stage, "_kind", None) or type(stage).__name__
    name = getattr(stage, "name", None)
    return f"{kind} {name!r}" if isinstance(name, str) else repr(stage)


def _not_a_stage(index: int, stage: object) -> str:
    missing_calls = [
        f"{face}()"
        for face in ("call", "acall")
        if not callable(getattr(stage, face, None))
    ]
    missing_steps = [
        f"{step}()"
        for step in _STEPS
        if not callable(getattr(stage, step, None))
    ]
    return (
        f"stage {index} ({stage!r}) is not a pipeline stage: a stage has"
        f" call() and acall() (it lacks {' and '.join(missing_calls)}), or"
        " the guard steps _enter(), _aenter(), _exit(), _aexit() and"
        f" _undo() (it lacks {', '.join(missing_steps)})"
    )


# -- misuse found at the innermost call ---------------------------------------


class _Misuse(BaseException):  # a signal, not an error
    """
    Carries the :class:`TypeError` for a misuse found where the user's
    function was called, out through every stage without being counted,
    retried or replaced (stages let a :class:`BaseException` through and
    give back what they hold); the pipeline's entry point raises the
    :class:`TypeError` itself.
    """


def _unwrap_misuse(misuse: _Misuse) -> TypeError:
    error: TypeError = misuse.args[0]
    return error


# -- running a run of guards --------------------------------------------------


def _exit_all(
    guards: tuple[Any, ...],
    tokens: list[Any],
    exc: BaseException | None,
    result: object,
) -> BaseException | None:
    """
    Report the outcome to each entered guard, innermost first; an
    exception a guard raises from its exit (a timeout turning its own
    cancellation into an error) is what the guards around it see.

    Returns:
        The exception the guards leave: *exc*, one raised in its place,
        or ``None``.
    """
    for index in range(len(tokens) - 1, -1, -1):
        try:
            guards[index]._exit(tokens[index], exc, result)
        except BaseException as replaced:  # handed outward
            exc, result = replaced, NO_RESULT
    return exc


async def _aexit_all(
    guards: tuple[Any, ...],
    tokens: list[Any],
    exc: BaseException | None,
    result: object,
) -> BaseException | None:
    """
    The async twin of :func:`_exit_all`.
    """
    for index in range(len(tokens) - 1, -1, -1):
        try:
            await guards[index]._aexit(tokens[index], exc, result)
        except BaseException as replaced:  # handed outward
            exc, result = replaced, NO_RESULT
    return exc


def _undo_all(guards: tuple[Any, ...], tokens: list[Any]) -> None:
    """
    Give every entered guard its token back, innermost first, as if the
    call had never been made.
    """
    for index in range(len(tokens) - 1, -1, -1):
        guards[index]._undo(tokens[index])


def _enter_all(guards: tuple[Any, ...]) -> list[Any]:
    """
    Enter each guard, outermost first; if one refuses, the guards already
    entered see its refusal as the call's outcome (as stacked decorators
    would), and the refusal (or what replaced it) is raised.
    """
    tokens: list[Any] = []
    try:
        for guard in guards:
            tokens.append(guard._enter())  # noqa: PERF401  # one by one: a refusal exits those before it
    except BaseException as refusal:
        error = _exit_all(guards, tokens, refusal, NO_RESULT)
        if error is refusal:
            raise
        raise cast("BaseException", error)  # noqa: B904  # chained to what it replaced already
    return tokens


async def _aenter_all(guards: tuple[Any, ...]) -> list[Any]:
    """
    The async twin of :func:`_enter_all`.
    """
    tokens: list[Any] = []
    try:
        for guard in guards:
            tokens.append(await guard._aenter())  # noqa: PERF401  # one by one, as above
    except BaseException as refusal:
        error = await _aexit_all(guards, tokens, refusal, NO_RESULT)
        if error is refusal:
            raise
        raise cast("BaseException", error)  # noqa: B904  # chained to what it replaced already
    return tokens


def _left(
    guards: tuple[Any, ...], tokens: list[Any], exc: BaseException
) -> None:
    """
    Report *exc* to every entered guard, innermost first, and raise what
    replaced it, if a guard's exit raised something else; the caller
    re-raises *exc* otherwise.
    """
    error = _exit_all(guards, tokens, exc, NO_RESULT)
    if error is not exc:
        raise cast(
            "BaseException", error
        )  # chained to what it replaced already


async def _aleft(
    guards: tuple[Any, ...], tokens: list[Any], exc: BaseException
) -> None:
    """
    The async twin of :func:`_left`.
    """
    error = await _aexit_all(guards, tokens, exc, NO_RESULT)
    if error is not exc:
        raise cast(
            "BaseException", error
        )  # chained to what it replaced already


# -- the chains of the call faces ---------------------------------------------

_Run: TypeAlias = Callable[..., Any]
"""``run(fn, *args, **kwargs)``: the rest of the pipeline around *fn*."""


def _misuse_sync(name: str, result: object) -> _Misuse:
    return _Misuse(
        _awaitable_result_error(_KIND, name, "call()", "acall()", result)
    )


def _misuse_async(name: str, value: object) -> _Misuse:
    return _Misuse(
        not_awaitable_error(_KIND, name, "acall()", "call()", value)
    )


def _sync_plain(name: str) -> _Run:
    """
    The innermost step when no guard is left: call *fn*, refuse an
    awaitable result.
    """

    def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if type(result) not in PLAIN and is_awaitable(result):
            raise _misuse_sync(name, result)
        return result

    return run


def _sync_guards(
    guards: tuple[Any, ...], inner: _Run | None, name: str
) -> _Run:
    """
    Run a run of guards around *inner* (the rest of the pipeline), or
    around the user's function when they are innermost.
    """
    if len(guards) == 1:
        return _sync_guard(guards[0], inner, name)

    def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        tokens = _enter_all(guards)
        try:
            if inner is None:
                result = fn(*args, **kwargs)
            else:
                result = inner(fn, *args, **kwargs)
        except _Misuse:
            _undo_all(guards, tokens)
            raise
        except BaseException as exc:
            _left(guards, tokens, exc)
            raise
        if (
            inner is None
            and type(result) not in PLAIN
            and is_awaitable(result)
        ):
            _undo_all(guards, tokens)
            raise _misuse_sync(name, result)
        error = _exit_all(guards, tokens, None, result)
        if error is not None:
            raise error
        return result

    return run


def _sync_guard(guard: Any, inner: _Run | None, name: str) -> _Run:
    """
    :func:`_sync_guards` for a run of one guard: its steps, no loop.
    """
    enter, exit_, undo = guard._enter, guard._exit, guard._undo

    if inner is None:

        def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            token = enter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                exit_(token, exc, NO_RESULT)
                raise
            if type(result) not in PLAIN and is_awaitable(result):
                undo(token)
                raise _misuse_sync(name, result)
            exit_(token, None, result)
            return result

        return run

    def run_around(
        fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        token = enter()
        try:
            result = inner(fn, *args, **kwargs)
        except _Misuse:
            undo(token)
            raise
        except BaseException as exc:
            exit_(token, exc, NO_RESULT)
            raise
        exit_(token, None, result)
        return result

    return run_around


def _sync_args_guard(guard: Any, inner: _Run) -> _Run:
    """
    Run *inner* (the rest of the pipeline) inside a guard that admits by
    the call's arguments: ``_enter_args(args, kwargs)``.
    """
    enter, exit_, undo = guard._enter_args, guard._exit, guard._undo

    def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        token = enter(args, kwargs)
        try:
            result = inner(fn, *args, **kwargs)
        except _Misuse:
            undo(token)
            raise
        except BaseException as exc:
            exit_(token, exc, NO_RESULT)
            raise
        exit_(token, None, result)
        return result

    return run


def _sync_stage(stage: Any, inner: _Run) -> _Run:
    """
    Run the rest of the pipeline (*inner*, given the user's function)
    through *stage*'s ``call``.
    """
    call = stage.call
    partial = functools.partial

    def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return call(partial(inner, fn), *args, **kwargs)

    return run


def _async_plain(name: str) -> _Run:
    """
    The async twin of :func:`_sync_plain`: refuse what cannot be awaited.
    """

    async def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        awaitable = fn(*args, **kwargs)
        if type(awaitable) is not CoroutineType and not is_awaitable(
            awaitable
        ):
            raise _misuse_async(name, awaitable)
        return await awaitable

    return run


def _async_guards(
    guards: tuple[Any, ...], inner: _Run | None, name: str
) -> _Run:
    """
    The async twin of :func:`_sync_guards`.
    """
    if len(guards) == 1:
        return _async_guard(guards[0], inner, name)

    async def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        tokens = await _aenter_all(guards)
        try:
            if inner is None:
                awaitable = fn(*args, **kwargs)
            else:
                awaitable = inner(fn, *args, **kwargs)
        except BaseException as exc:
            await _aleft(guards, tokens, exc)
            raise
        if (
            inner is None
            and type(awaitable) is not CoroutineType
            and not is_awaitable(awaitable)
        ):
            _undo_all(guards, tokens)
            raise _misuse_async(name, awaitable)
        try:
            result = await awaitable
        except _Misuse:
            _undo_all(guards, tokens)
            raise
        except BaseException as exc:
            await _aleft(guards, tokens, exc)
            raise
        error = await _aexit_all(guards, tokens, None, result)
        if error is not None:
            raise error
        return result

    return run


def _async_guard(guard: Any, inner: _Run | None, name: str) -> _Run:
    """
    :func:`_async_guards` for a run of one guard.
    """
    aenter, aexit, undo = guard._aenter, guard._aexit, guard._undo

    if inner is None:

        async def run(
            fn: Callable[..., Any], /, *args: Any, **kwargs: Any
        ) -> Any:
            token = await aenter()
            try:
                awaitable = fn(*args, **kwargs)
            except BaseException as exc:
                await aexit(token, exc, NO_RESULT)
                raise
            if type(awaitable) is not CoroutineType and not is_awaitable(
                awaitable
            ):
                undo(token)
                raise _misuse_async(name, awaitable)
            try:
                result = await awaitable
            except _Misuse:
                undo(token)
                raise
            except BaseException as exc:
                await aexit(token, exc, NO_RESULT)
                raise
            await aexit(token, None, result)
            return result

        return run

    async def run_around(
        fn: Callable[..., Any], /, *args: Any, **kwargs: Any
    ) -> Any:
        token = await aenter()
        try:
            result = await inner(fn, *args, **kwargs)
        except _Misuse:
            undo(token)
            raise
        except BaseException as exc:
            await aexit(token, exc, NO_RESULT)
            raise
        await aexit(token, None, result)
        return result

    return run_around


def _async_args_guard(guard: Any, inner: _Run) -> _Run:
    """
    The async twin of :func:`_sync_args_guard`: ``await
    _aenter_args(args, kwargs)``.
    """
    aenter, aexit, undo = guard._aenter_args, guard._aexit, guard._undo

    async def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        token = await aenter(args, kwargs)
        try:
            result = await inner(fn, *args, **kwargs)
        except _Misuse:
            undo(token)
            raise
        except BaseException as exc:
            await aexit(token, exc, NO_RESULT)
            raise
        await aexit(token, None, result)
        return result

    return run


def _async_stage(stage: Any, inner: _Run) -> _Run:
    """
    Run the rest of the pipeline through *stage*'s ``acall``.
    """
    acall = stage.acall
    partial = functools.partial

    async def run(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return await acall(partial(inner, fn), *args, **kwargs)

    return run


@final
class _ByArgs:
    """A segment of one guard entered with the call's arguments."""

    __slots__ = ("guard",)

    def __init__(self, guard: object) -> None:
        self.guard = guard


def _segments(stages: tuple[object, ...], guards: list[bool]) -> list[Any]:
    """
    Cut *stages* into runs of consecutive guards (a tuple; ``guards[i]``
    tells whether stage *i* is entered by its steps), guards entered with
    the call's arguments (a :class:`_ByArgs` each) and single stages run
    by their call faces.
    """
    segments: list[Any] = []
    run: list[object] = []
    for stage, is_guard in zip(stages, guards, strict=True):
        if is_guard and not _admits_by_args(stage):
            run.append(stage)
            continue
        if run:
            segments.append(tuple(run))
            run = []
        segments.append(_ByArgs(stage) if is_guard else stage)
    if run:
        segments.append(tuple(run))
    return segments


def _chain(segments: list[Any], name: str, *, is_async: bool) -> _Run:
    """
    Build ``run(fn, *args, **kwargs)`` for the segments, outermost first.

    A run of guards innermost checks the function's result itself; a
    stage run by its call faces innermost is handed the function wrapped
    in that check, so every misuse is found by the pipeline, not by a
    stage that would count it.
    """
    plain = _async_plain(name) if is_async else _sync_plain(name)
    guards_run = _async_guards if is_async else _sync_guards
    args_run = _async_args_guard if is_async else _sync_args_guard
    stage_run = _async_stage if is_async else _sync_stage
    inner: _Run | None = None
    for segment in reversed(segments):
        if type(segment) is tuple:
            inner = guards_run(segment, inner, name)
        elif type(segment) is _ByArgs:
            inner = args_run(segment.guard, plain if inner is None else inner)
        else:
            inner = stage_run(segment, plain if inner is None else inner)
    return plain if inner is None else inner


# -- the name tag of events ----------------------------------------------------


def _tag_call(fn: Callable[P, T], value: str | None) -> Callable[P, T]:
    """
    Wrap *fn* so that it runs with the pipeline tag of events set to
    *value*; the wrapper is of *fn*'s kind (a plain function, a coroutine
    function, a generator function or an async generator function), and
    a generator's tag is set for each of its steps.
    """
    wrapper: Callable[..., Any]
    if is_async_generator_function(fn):
        agen_fn = cast("Callable[..., AsyncGenerator[Any, Any]]", fn)

        async def agen_wrapper(
            *args: Any, **kwargs: Any
        ) -> AsyncGenerator[Any, Any]:
            agen = _step(value, agen_fn, *args, **kwargs)
            method: Callable[[Any], Awaitable[Any]] = agen.asend
            arg: Any = None
            while True:
                try:
                    item = await _astep(value, method, arg)
                except StopAsyncIteration:
                    return
                try:
                    arg = yield item
                    method = agen.asend
                except GeneratorExit:
                    await _astep(value, agen.aclose)
                    raise
                except BaseException as thrown:  # passed on
                    method, arg = agen.athrow, thrown

        wrapper = agen_wrapper
    elif is_generator_function(fn):
        gen_fn = cast("Callable[..., Generator[Any, Any, Any]]", fn)

        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            gen = _step(value, gen_fn, *args, **kwargs)
            method: Callable[[Any], Any] = gen.send
            arg: Any = None
            while True:
                try:
                    item = _step(value, method, arg)
                except StopIteration as stop:
                    return stop.value
                try:
                    arg = yield item
                    method = gen.send
                except GeneratorExit:
                    _step(value, gen.close)
                    raise
                except BaseException as thrown:  # passed on
                    method, arg = gen.throw, thrown

        wrapper = gen_wrapper
    elif is_async_callable(fn):
        afn = cast("Callable[..., Awaitable[Any]]", fn)

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _set_tag(value)
            try:
                return await afn(*args, **kwargs)
            finally:
                _reset_tag(token)

        wrapper = async_wrapper
    else:

        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _set_tag(value)
            try:
                return fn(*args, **kwargs)
            finally:
                _reset_tag(token)

        wrapper = sync_wrapper
    return cast("Callable[P, T]", functools.wraps(fn)(wrapper))


def _untagged(fn: Callable[..., T]) -> Callable[..., T]:
    """
    Wrap *fn* for one call: it runs with no pipeline tag, so events of
    the primitives it uses itself are not the pipeline's.
    """

    def untagged(*args: Any, **kwargs: Any) -> T:
        token = _set_tag(None)
        try:
            return fn(*args, **kwargs)
        finally:
            _reset_tag(token)

    return untagged


def _auntagged(
    fn: Callable[..., Awaitable[T]], name: str
) -> Callable[..., Awaitable[T]]:
    """
    The async twin of :func:`_untagged`: the tag is cleared while *fn*
    is called and while what it returned is awaited (which it checks, as
    the pipeline's innermost step would, since it is that step's
    function now).
    """

    async def untagged(*args: Any, **kwargs: Any) -> T:
        token = _set_tag(None)
        try:
            awaitable = fn(*args, **kwargs)
            if type(awaitable) is not CoroutineType and not is_awaitable(
                awaitable
            ):
                raise _misuse_async(name, awaitable)
            return await awaitable
        finally:
            _reset_tag(token)

    return untagged


def _step(
    value: str | None, method: Callable[..., T], /, *args: Any, **kwargs: Any
) -> T:
    """
    Call ``method(*args, **kwargs)`` with the tag of events set to *value*.
    """
    token = _set_tag(value)
    try:
        return method(*args, **kwargs)
    finally:
        _reset_tag(token)


async def _astep(
    value: str | None, method: Callable[..., Awaitable[T]], /, *args: Any
) -> T:
    """
    Await ``method(*args)`` with the tag of events set to *value* (the
    tag is set and reset in the task that runs this step).
    """
    token = _set_tag(value)
    try:
        return await method(*args)
    finally:
        _reset_tag(token)


# -- statistics -----------------------------------------------------------------


@final
@attrs.frozen(kw_only=True)
class PipelineStatistics(Statistics):
    """
    A snapshot of every stage of a :class:`Pipeline`, from
    :meth:`Pipeline.statistics`.

    ``stats["payments-breaker"]`` is the same as
    ``stats.stages["payments-breaker"]``.  :meth:`~Statistics.to_dict`
    nests each stage's record as its own ``to_dict()``.

    Attributes:
        name: The pipeline's name.
        stages: Each stage's own statistics record (what its
            ``statistics()`` returned; ``None`` for a stage without one),
            by stage name, outermost first.  A name that several stages
            share is told apart by the stage's position, from 0:
            ``"<unnamed>#0"``, ``"<unnamed>#2"``.

    .. versionadded:: 0.2.0
    """

    name: str
    stages: Mapping[str, Any] = attrs.field(hash=False)

    def __getitem__(self, key: str) -> Any:
        """
        Return the statistics of the stage named *key*.
        """
        return self.stages[key]


def _keys(stages: tuple[object, ...]) -> tuple[str, ...]:
    names = [
        str(getattr(stage, "name", type(stage).__name__)) for stage in stages
    ]
    return tuple(
        name if names.count(name) == 1 else f"{name}#{index}"
        for index, name in enumerate(names)
    )


# -- order checks -----------------------------------------------------------------


def _order_problems(
    stages: tuple[object, ...], roles: list[str | None]
) -> list[str]:
    """
    The orders known to be mistakes, each with what goes wrong.
    """
    problems: list[str] = []
    retries = [i for i, role in enumerate(roles) if role == RETRY]
    for index, role in enumerate(roles):
        stage = _describe(stages[index])
        if role == FALLBACK:
            outer = [i for i in range(index) if roles[i] != FALLBACK]
            if outer:
                problems.append(
                    f"the fallback {stage} (stage {index}) is inside"
                    f" {_describe(stages[outer[0]])} (stage {outer[0]}):"
                    " a stage outside a fallback never sees a failure it"
                    " replaced (a retry does not retry it, a breaker does"
                    " not count it), and what that stage raises itself (a"
                    " refusal, a timeout) is not replaced; put fallbacks"
                    " outermost"
                )
        if role == BREAKER:
            inner_retries = [i for i in retries if i > index]
            if inner_retries:
                retry = _describe(stages[inner_retries[0]])
                problems.append(
                    f"the retry {retry} (stage {inner_retries[0]}) is inside"
                    f" the circuit breaker {stage} (stage {index}): the"
                    " breaker sees one outcome per call, after every attempt,"
                    " not one per attempt (a dependency failing every"
                    " attempt counts once), a half-open trial becomes a"
                    " whole retry loop, and the retry never waits for the"
                    " breaker's refusals; put the retry outside the breaker"
                )
        if role in {BULKHEAD, THREAD_POOL, LIMITER}:
            inner_retries = [i for i in retries if i > index]
            if inner_retries:
                retry = _describe(stages[inner_retries[0]])
                if role == LIMITER:
                    why = (
                        "the limiter is asked once per call, so the retries"
                        " reach the dependency unlimited (the limit no longer"
                        " bounds the requests sent), and its refusals are not"
                        " retried after their retry_after"
                    )
                else:
                    why = (
                        "a call holds its permit through every attempt and"
                        " every backoff wait, so callers that sleep keep"
                        " others out, and its refusals are not retried"
                    )
                problems.append(
                    f"the {'limiter' if role == LIMITER else 'bulkhead'}"
                    f" {stage} (stage {index}) is outside the retry {retry}"
                    f" (stage {inner_retries[0]}): {why}; put it inside the"
                    " retry"
                )
    if len(retries) > 1:
        first, second = retries[0], retries[1]
        problems.append(
            f"two retries, {_describe(stages[first])} (stage {first}) and"
            f" {_describe(stages[second])} (stage {second}): their attempts"
            " multiply (3 attempts around 3 attempts make 9 calls), and"
            " the inner one's waits eat the outer one's time budget; keep"
            " one retry"
        )
    return problems


# -- the pipeline -------------------------------------------------------------------


class CallStage(Protocol):
    """
    A stage that runs the call itself (a retry, a fallback, chaos): a
    pipeline hands it the rest of the pipeline as the function.

    ``call(fn, *args, **kwargs)`` calls ``fn(*args, **kwargs)`` (as
    often as it likes) and returns a result; ``acall`` is its async twin.
    If the stage is callable, calling it with a function must decorate
    that function: the pipeline's decorator uses it.
    """

    def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """
        Run ``fn(*args, **kwargs)`` through the stage.
        """

    def acall(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """
        Await ``fn(*args, **kwargs)`` through the stage.
        """


class GuardStage(Protocol):
    """
    A stage that admits a call and then hears how it ended (a circuit
    breaker, a keyed one, a bulkhead, the async timeout): the guard
    protocol of ``stalwart._faces``.

    ``_enter()`` (sync, may block) and ``await _aenter()`` take a token or
    raise a :class:`~stalwart.RejectedError`; ``_exit(token, exc,
    result)`` and ``await _aexit(token, exc, result)`` report the outcome
    (*exc* is ``None`` on success) and may raise another exception in its
    place; ``_undo(token)`` gives the token back as if the call had never
    been made.  A pipeline enters a run of consecutive guards in one loop,
    and only a pipeline of guards has ``with`` / ``async with`` faces.

    A guard that admits by the call's arguments (a
    :class:`~stalwart.KeyedCircuitBreaker` reads its key from them) also
    has ``_enter_args(args, kwargs)`` and ``await _aenter_args(args,
    kwargs)``: the call faces enter it through those, and a pipeline
    holding one has no ``with`` face (a block has no arguments).
    """

    def _enter(self) -> Any: ...

    def _aenter(self) -> Any: ...

    def _exit(self, token: Any, exc: Any, result: Any, /) -> Any: ...

    def _aexit(self, token: Any, exc: Any, result: Any, /) -> Any: ...

    def _undo(self, token: Any, /) -> Any: ...


Stage: TypeAlias = "CallStage | GuardStage | Pipeline"
"""What a :class:`Pipeline` takes as a stage: one of stalwart's
primitives, another pipeline, or any object with ``call`` and ``acall``
(or the steps of a guard)."""


@final
class Pipeline:
    """
    Apply several primitives to a call, in order, outermost first.

    ``Pipeline(fallback, retry, breaker, timeout)`` guards a call as the
    decorators ``@fallback @retry @breaker @timeout`` stacked in that
    order would: the fallback sees what the retry gives up on, the retry
    re-runs the breaker and the timeout, and the timeout limits each
    attempt.  Build it once and use any of its faces:

    * as a decorator on a ``def`` or an ``async def`` (each stage's own
      decorator, stacked), or on a generator function or an async one
      (each stage applies its own generator rules);
    * :meth:`call` / :meth:`acall`;
    * ``with`` / ``async with``, when every stage is a guard that does not
      need the call's arguments: a :class:`~stalwart.CircuitBreaker`, a
      :class:`~stalwart.Bulkhead`, an async :class:`~stalwart.Timeout`
      (``async with``; a sync ``with`` block on the main thread), or a
      stage of your own with the guard steps; a retry cannot run a
      ``with`` block again, nor a fallback replace its outcome, and a
      :class:`~stalwart.KeyedCircuitBreaker` takes its key from the call's
      arguments, which a block has not;
    * ``for attempt in pipeline: with attempt:`` (``async for`` /
      ``async with``), when the pipeline is a :class:`~stalwart.Retry`
      followed only by guards: each attempt enters the guards.

    Building it checks the order of the stages and warns with
    :class:`~stalwart.PipelineOrderWarning` about the orders known to be
    mistakes.  A pipeline given as a stage is unpacked into its stages.
    An empty pipeline changes nothing.

    While a pipeline runs a stage, the events that stage emits carry the
    pipeline's name (:attr:`~stalwart.Event.pipeline`); events of
    primitives used inside the guarded function do not.  The call faces,
    the ``with`` faces and the attempt loops follow the stages' hooks as
    they come and go; a function decorated while no stage had a hook runs
    untagged (its decorators stay the stacked ones, at their cost).
    :meth:`add_hook` attaches a hook to every stage.

    Args:
        stages: The stages, outermost first: stalwart's primitives, other
            pipelines, or any object with ``call`` and ``acall`` (or the
            steps of a guard).
        name: Names the pipeline in errors, events and statistics.

    Raises:
        TypeError: If a stage has neither protocol.
        ConfigurationError: If *name* is not a non-empty string.

    .. versionadded:: 0.2.0
    """

    __slots__ = (
        "__weakref__",
        "_arun",
        "_async_refusal",
        "_block_aenter",
        "_block_aexit",
        "_block_enter",
        "_block_exit",
        "_blocks",
        "_held",
        "_keys",
        "_lives",
        "_no_loop",
        "_no_with",
        "_retag_lock",
        "_run",
        "_tagged",
        "name",
        "stages",
    )

    def __init__(self, *stages: Stage, name: str = "<unnamed>") -> None:
        given: object = name
        if not isinstance(given, str) or not given:
            msg = f"'name' must be a non-empty str (got {name!r})"
            raise ConfigurationError(msg)
        flat: list[object] = []
        for stage in stages:
            if isinstance(stage, Pipeline):
                flat.extend(stage.stages)
            else:
                flat.append(stage)
        self.name = name
        """The pipeline's name."""
        self.stages: tuple[object, ...] = tuple(flat)
        """The stages, outermost first (those of a pipeline given as a
        stage in its place)."""
        guards = [_is_guard(stage) for stage in flat]
        problems = [
            _not_a_stage(index, stage)
            for index, stage in enumerate(flat)
            if not guards[index] and not _is_call_stage(stage)
        ]
        if problems:
            raise TypeError(f"Pipeline {name!r}: " + "; ".join(problems))
        table = _roles()
        roles = [table.get(type(stage)) for stage in flat]
        order = _order_problems(self.stages, roles)
        for problem in order:
            warnings.warn(
                f"Pipeline {name!r}: {problem}",
                PipelineOrderWarning,
                stacklevel=user_stacklevel(),
            )
        self._keys = _keys(self.stages)
        # The sync call faces run the timeout through its call(), which
        # runs the function on a worker thread (its sync steps, where it
        # has them, serve `with` blocks only).
        sync_guards = [
            is_guard and role != TIMEOUT
            for is_guard, role in zip(guards, roles, strict=True)
        ]
        self._run = _chain(
            _segments(self.stages, sync_guards), name, is_async=False
        )
        self._arun = _chain(
            _segments(self.stages, guards), name, is_async=True
        )
        self._blocks: Blocks[Any] = Blocks()
        self._held = self._blocks.held
        self._no_with = self._with_problem(roles, guards)
        self._no_loop = self._loop_problem(roles, guards)
        # The hooks of every stage: the events are tagged with the
        # pipeline's name while a stage has one.  Each stage that takes
        # hooks later tells the pipeline when its hooks come and go (a
        # weak reference: the stage does not keep the pipeline alive).
        # Stages' hooks may change from several threads at once: each
        # change recomputes the tag from their state now, under this lock,
        # so the last one leaves it right.  Never taken by a call.
        self._retag_lock = threading.Lock()
        self._lives: tuple[LiveHooks | None, ...] = tuple(
            observable(stage) for stage in _distinct(self.stages)
        )
        for live in self._lives:
            if live is not None:
                live.watch(self._hooks_changed)
        self._hooks_changed()
        pool = [
            stage
            for stage, role in zip(flat, roles, strict=True)
            if role == THREAD_POOL
        ]
        self._async_refusal = (
            None
            if not pool
            else (
                f"Pipeline {name!r} holds {_describe(pool[0])}, which runs"
                " blocking functions on its threads, so the pipeline has"
                " sync faces only (call(), a decorated def); from async"
                " code, run a pipeline without it on the pool:"
                " `await pool.acall(pipeline.call, fn, ...)`"
            )
        )

    def _hooks_changed(self) -> None:
        """
        Tag events with the pipeline's name while any stage has a hook,
        and choose the ``with`` faces' steps to match.
        """
        with self._retag_lock:
            tagged = any(
                bool(
                    live.all
                    if live is not None
                    else getattr(stage, "hooks", ())
                )
                for live, stage in zip(
                    self._lives, _distinct(self.stages), strict=True
                )
            )
            # The block steps of either kind take and give the same
            # tokens, so a block entered before the change is left after it
            # as it should be.
            (
                self._block_enter,
                self._block_exit,
                self._block_aenter,
                self._block_aexit,
            ) = _block_steps(
                self.stages, self._no_with, self.name if tagged else None
            )
            self._tagged = tagged

    def _with_problem(
        self, roles: list[str | None], guards: list[bool]
    ) -> str | None:
        """
        Say why this pipeline has no ``with`` face, if it has none.
        """
        for index, stage in enumerate(self.stages):
            if guards[index] and _admits_by_args(stage):
                return (
                    f"Pipeline {self.name!r} has no `with` face: its stage"
                    f" {index}, {_describe(stage)}, admits a call by its"
                    " arguments (its key), which a `with` block has not;"
                    " use call() / acall(), or decorate a function"
                )
            if guards[index]:
                continue
            role = roles[index]
            if role == RETRY:
                why = (
                    "re-runs the call, and a `with` block cannot be run again"
                )
            elif role == FALLBACK:
                why = (
                    "replaces the call's outcome, which a `with` block cannot"
                )
            else:
                why = (
                    "is not a guard: it runs the call itself, through its"
                    " call() / acall()"
                )
            offer = (
                "; use its attempt loop: `for attempt in pipeline: with"
                " attempt: ...` (`async for` / `async with` in coroutines)"
                if self._loop_problem(roles, guards) is None
                else "; use call() / acall(), or decorate a function"
            )
            return (
                f"Pipeline {self.name!r} has no `with` face: its stage"
                f" {index}, {_describe(stage)}, {why}{offer}"
            )
        return None

    def _loop_problem(
        self, roles: list[str | None], guards: list[bool]
    ) -> str | None:
        """
        Say why this pipeline has no attempt loop, if it has none.
        """
        if roles[:1] == [RETRY] and all(guards[1:]):
            keyed = [
                index
                for index, stage in enumerate(self.stages)
                if _admits_by_args(stage)
            ]
            if not keyed:
                return None
            return (
                f"Pipeline {self.name!r} has no attempt loop: its stage"
                f" {keyed[0]}, {_describe(self.stages[keyed[0]])}, admits a"
                " call by its arguments (its key), which an attempt has"
                " not; use call() / acall(), or decorate a function"
            )
        return (
            f"Pipeline {self.name!r} has no attempt loop: it needs a Retry"
            " as its first stage, followed only by guards (circuit"
            " breakers, bulkheads, async timeouts)"
        )

    def __repr__(self) -> str:
        stages = ", ".join(_describe(stage) for stage in self.stages)
        return f"<Pipeline {self.name!r}: {stages}>"

    # -- hooks ----------------------------------------------------------------

    def add_hook(self, hook: Hook, /, *, per_call: bool | None = None) -> None:
        """
        Attach *hook* to every stage that takes hooks (each one once), as
        its :meth:`~stalwart.Observable.add_hook` does: from now on it
        receives their events, tagged with the pipeline's name while the
        pipeline runs them.

        Args:
            hook: A callable receiving events.
            per_call: Whether it also receives per-call events
                (:class:`~stalwart.CallFinished`); by default, what the
                hook's own ``per_call`` attribute says.

        Raises:
            TypeError: If *hook* is not a plain callable, or no stage
                takes hooks.

        .. versionadded:: 0.2.0
        """
        check_hook(hook)
        stages = self._observed_stages()
        if not stages:
            msg = f"{self!r}: none of its stages takes hooks"
            raise TypeError(msg)
        for stage in stages:
            stage.add_hook(hook, per_call=per_call)

    def remove_hook(self, hook: Hook, /) -> None:
        """
        Detach *hook* from every stage it is attached to.

        Raises:
            ValueError: If no stage has it.

        .. versionadded:: 0.2.0
        """
        stages = [
            stage
            for stage, live in zip(
                _distinct(self.stages), self._lives, strict=True
            )
            if live is not None and hook in live.all
        ]
        if not stages:
            msg = f"{hook!r} is not a hook of {self!r}"
            raise ValueError(msg)
        for stage in stages:
            stage.remove_hook(hook)  # type: ignore[attr-defined]  # an Observable

    def _observed_stages(self) -> list[Any]:
        """
        The distinct stages that take hooks, outermost first.
        """
        return [
            stage
            for stage, live in zip(
                _distinct(self.stages), self._lives, strict=True
            )
            if live is not None
        ]

    # -- statistics ----------------------------------------------------------

    def statistics(self) -> PipelineStatistics:
        """
        Return each stage's statistics, by stage name.

        .. versionadded:: 0.2.0
        """
        stages = {}
        for key, stage in zip(self._keys, self.stages, strict=True):
            read = getattr(stage, "statistics", None)
            stages[key] = read() if callable(read) else None
        return PipelineStatistics(
            name=self.name, stages=MappingProxyType(stages)
        )

    # -- the call faces --------------------------------------------------------

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Call ``fn(*args, **kwargs)`` through every stage.

        Returns:
            What *fn* returned (or a stage, such as a fallback, in its
            place).

        Raises:
            TypeError: If *fn* is an ``async`` function or returned
                something to await (use :meth:`acall`); no stage counts
                it.

        .. versionadded:: 0.2.0
        """
        if fn.__class__ is FunctionType:
            if fn.__code__.co_flags & ASYNC_FLAGS:
                raise self._async_given(fn)
        elif is_async_function(fn):
            raise self._async_given(fn)
        if self._tagged:
            tagged: T = self._tagged_call(fn, args, kwargs)
            return tagged
        try:
            result: T = self._run(fn, *args, **kwargs)
        except _Misuse as misuse:
            raise _unwrap_misuse(misuse) from None
        return result

    def _async_given(self, fn: object) -> TypeError:
        return TypeError(
            f"{_KIND} {self.name!r}: call() was given the async function"
            f" {fn!r}; use acall() for async functions"
        )

    def _tagged_call(
        self, fn: Callable[..., Any], args: Any, kwargs: Any
    ) -> Any:
        """
        :meth:`call` with the pipeline's name set for its stages' events
        (and cleared again for *fn*).
        """
        token = _set_tag(self.name)
        try:
            return self._run(_untagged(fn), *args, **kwargs)
        except _Misuse as misuse:
            raise _unwrap_misuse(misuse) from None
        finally:
            _reset_tag(token)

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """
        Await ``fn(*args, **kwargs)`` through every stage.

        Raises:
            TypeError: If *fn* returned something that cannot be awaited
                (use :meth:`call`), or the pipeline holds a
                :class:`~stalwart.ThreadPoolBulkhead`; no stage counts it.

        .. versionadded:: 0.2.0
        """
        if self._async_refusal is not None:
            raise TypeError(self._async_refusal)
        if self._tagged:
            tagged: T = await self._tagged_acall(fn, args, kwargs)
            return tagged
        try:
            result: T = await self._arun(fn, *args, **kwargs)
        except _Misuse as misuse:
            raise _unwrap_misuse(misuse) from None
        return result

    async def _tagged_acall(
        self, fn: Callable[..., Awaitable[Any]], args: Any, kwargs: Any
    ) -> Any:
        """
        :meth:`acall` with the pipeline's name set for its stages' events.
        """
        token = _set_tag(self.name)
        try:
            return await self._arun(_auntagged(fn, self.name), *args, **kwargs)
        except _Misuse as misuse:
            raise _unwrap_misuse(misuse) from None
        finally:
            _reset_tag(token)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Decorate *fn* with every stage's decorator, stacked outermost
        first, as ``@s0 @s1 ... def fn`` would (a stage without a
        decorator of its own is applied through its protocol).

        *fn* may be a ``def``, an ``async def`` (or an object whose
        ``__call__`` is one), a generator function or an async generator
        function: each stage applies its own rules to it.  An empty
        pipeline returns *fn* itself.

        Raises:
            TypeError: If *fn* is not callable, or a stage refuses it.

        .. versionadded:: 0.2.0
        """
        if not callable(fn):
            msg = f"{_KIND} {self.name!r} decorates callables (got {fn!r})"
            raise TypeError(msg)
        if not self.stages:
            return fn
        if self._async_refusal is not None and (
            is_async_callable(fn) or is_async_generator_function(fn)
        ):
            raise TypeError(self._async_refusal)
        wrapped = _tag_call(fn, None) if self._tagged else fn
        for stage in reversed(self.stages):
            wrapped = _decorate(stage, wrapped)
        if self._tagged:
            wrapped = _tag_call(wrapped, self.name)
        return wrapped

    # -- the with faces ----------------------------------------------------------

    # They inline Blocks.push / Blocks.pop, as the breaker's do, around the
    # steps chosen at build (_block_steps): a block then costs its guards'
    # steps and a dictionary entry.

    def __enter__(self) -> None:
        """
        Enter every stage, outermost first.

        Raises:
            TypeError: If a stage is not a guard (a retry, a fallback).
            RejectedError: If a stage refused the block; the stages
                entered before it saw the refusal as its outcome.
        """
        token = self._block_enter()
        frame = _getframe(1)
        if id(frame.f_globals) in FORWARDING_MODULES:
            frame = caller(1)
        held = self._held
        if frame in held:
            self._blocks.push(frame, token)
        else:
            held[frame] = token

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """
        Report the block's outcome to every stage, innermost first.
        """
        frame = _getframe(1)
        try:
            token = self._held.pop(frame)
        except KeyError:
            # Left through an exit stack (keyed by the frame that owns
            # it), or from another frame than the one that entered.
            token = self._blocks.pop(caller(1))
        else:
            if self._blocks.outer:
                self._blocks.unnest(frame)
        self._block_exit(token, exc, NO_RESULT)

    async def __aenter__(self) -> None:
        """
        Enter every stage, outermost first (``async with``).

        Raises:
            TypeError: If a stage is not a guard (a retry, a fallback).
            RejectedError: If a stage refused the block.
        """
        token = await self._block_aenter()
        frame = _getframe(1)
        if id(frame.f_globals) in FORWARDING_MODULES:
            frame = caller(1)
        held = self._held
        if frame in held:
            self._blocks.push(frame, token)
        else:
            held[frame] = token

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """
        Report the block's outcome to every stage, innermost first.
        """
        frame = _getframe(1)
        try:
            token = self._held.pop(frame)
        except KeyError:
            token = self._blocks.pop(caller(1))
        else:
            if self._blocks.outer:
                self._blocks.unnest(frame)
        await self._block_aexit(token, exc, NO_RESULT)

    # -- the attempt loops ----------------------------------------------------------

    def __iter__(self) -> Iterator[PipelineAttempt]:
        """
        Iterate over attempts: ``for attempt in pipeline: with attempt:``.

        The pipeline's first stage, a :class:`~stalwart.Retry`, runs the
        loop; the guards after it are entered as each attempt is handed
        out (a refusal is that attempt's outcome, retried as the retry
        says) and left when its ``with`` block ends.

        Raises:
            TypeError: If the pipeline is not a retry followed by guards.

        .. versionadded:: 0.2.0
        """
        if self._no_loop is not None:
            raise TypeError(self._no_loop)
        return self._attempts()

    def __aiter__(self) -> AsyncIterator[PipelineAttempt]:
        """
        Iterate over attempts in a coroutine: ``async for attempt in
        pipeline: async with attempt:``.

        Raises:
            TypeError: If the pipeline is not a retry followed by guards.

        .. versionadded:: 0.2.0
        """
        if self._no_loop is not None:
            raise TypeError(self._no_loop)
        return self._aattempts()

    def _attempts(self) -> Generator[PipelineAttempt, None, None]:
        retry, guards = self.stages[0], self.stages[1:]
        tag = self.name if self._tagged else None
        attempts = _step(tag, iter, retry)
        try:
            while True:
                try:
                    attempt = _step(tag, next, attempts)
                except StopIteration:
                    return
                try:
                    tokens = _step(tag, _enter_all, guards)
                except Exception as refusal:  # the attempt's outcome
                    if _step(
                        tag,
                        attempt.__exit__,
                        type(refusal),
                        refusal,
                        refusal.__traceback__,
                    ):
                        continue
                    raise
                held = PipelineAttempt(
                    attempt, guards, tokens, tag, is_async=False
                )
                try:
                    yield held
                finally:
                    held._abandon()
        finally:
            attempts.close()

    async def _aattempts(self) -> AsyncGenerator[PipelineAttempt, None]:
        retry, guards = self.stages[0], self.stages[1:]
        tag = self.name if self._tagged else None
        attempts = _step(tag, aiter, retry)
        try:
            while True:
                try:
                    attempt = await _astep(tag, anext, attempts)
                except StopAsyncIteration:
                    return
                try:
                    tokens = await _astep(tag, _aenter_all, guards)
                except Exception as refusal:  # the attempt's outcome
                    if _step(
                        tag,
                        attempt.__exit__,
                        type(refusal),
                        refusal,
                        refusal.__traceback__,
                    ):
                        continue
                    raise
                held = PipelineAttempt(
                    attempt, guards, tokens, tag, is_async=True
                )
                try:
                    yield held
                finally:
                    held._abandon()
        finally:
            await attempts.aclose()


_BlockSteps: TypeAlias = tuple[
    Callable[[], Any],
    Callable[[Any, "BaseException | None", object], None],
    Callable[[], Awaitable[Any]],
    Callable[[Any, "BaseException | None", object], Awaitable[None]],
]


def _distinct(stages: tuple[object, ...]) -> list[object]:
    """
    The stages without repeats (a stage given twice counts once),
    outermost first.
    """
    seen: dict[int, object] = {}
    for stage in stages:
        seen.setdefault(id(stage), stage)
    return list(seen.values())


def _block_steps(
    guards: tuple[Any, ...], problem: str | None, tag: str | None
) -> _BlockSteps:
    """
    Choose the steps of the ``with`` faces: enter the guards (returning
    the block's token), and report an outcome on that token (raising what
    replaced the block's exception, if a guard's exit raised something
    else).  One untagged guard's own steps serve as they are.

    The tagged steps are partials of registered forwarders (no frame of
    their own), so a guard that keys its blocks by frame finds the
    user's; and they take the same tokens as the untagged ones (one
    guard's own, a list for several), so a block entered before hooks
    came or went is left as it should be.
    """
    if problem is not None:

        def refuse(*args: object) -> Any:
            raise TypeError(problem)

        async def arefuse(*args: object) -> Any:
            raise TypeError(problem)

        # No block is ever entered, so the exits are never called.
        return refuse, refuse, arefuse, arefuse
    partial = functools.partial
    if len(guards) == 1:
        guard = guards[0]
        if tag is None:
            return guard._enter, guard._exit, guard._aenter, guard._aexit
        return (
            partial(_step, tag, guard._enter),
            partial(_step, tag, guard._exit),
            partial(_astep, tag, guard._aenter),
            partial(_astep, tag, guard._aexit),
        )
    if tag is None:
        return (
            partial(_enter_all, guards),
            partial(_exit_guards, guards),
            partial(_aenter_all, guards),
            partial(_aexit_guards, guards),
        )
    return (
        partial(_step, tag, _enter_all, guards),
        partial(_step, tag, _exit_guards, guards),
        partial(_astep, tag, _aenter_all, guards),
        partial(_astep, tag, _aexit_guards, guards),
    )


def _exit_guards(
    guards: tuple[Any, ...],
    tokens: list[Any],
    exc: BaseException | None,
    result: object,
) -> None:
    """
    Report the outcome to every guard; raise what replaced *exc*.
    """
    error = _exit_all(guards, tokens, exc, result)
    if error is not exc:
        raise cast("BaseException", error)


async def _aexit_guards(
    guards: tuple[Any, ...],
    tokens: list[Any],
    exc: BaseException | None,
    result: object,
) -> None:
    """
    The async twin of :func:`_exit_guards`.
    """
    error = await _aexit_all(guards, tokens, exc, result)
    if error is not exc:
        raise cast("BaseException", error)


def _decorate(stage: object, fn: Callable[P, T]) -> Callable[P, T]:
    """
    Apply *stage* to *fn* as a decorator: its own, or one derived from
    its protocol.
    """
    if callable(stage):
        return cast("Callable[P, T]", stage(fn))
    if _is_guard(stage):
        return guard_decorate(cast("Any", stage), fn)
    return run_step_decorate(cast("Any", stage), fn)


@final
class PipelineAttempt:
    """
    One attempt of a pipeline's attempt loop: ``for attempt in pipeline:
    with attempt:`` (``async for`` / ``async with`` in coroutines).

    The guards after the pipeline's retry were entered when the attempt
    was handed out; leaving the ``with`` block reports its outcome to
    them, innermost first, then to the retry, which swallows an exception
    it retries (the loop then waits and hands out the next attempt).

    Attributes:
        number: The attempt's number, ``1`` for the first.

    .. versionadded:: 0.2.0
    """

    __slots__ = ("_attempt", "_guards", "_is_async", "_tag", "_tokens")

    def __init__(
        self,
        attempt: Any,
        guards: tuple[Any, ...],
        tokens: list[Any] | None,
        tag: str | None,
        *,
        is_async: bool,
    ) -> None:
        self._attempt = attempt
        self._guards = guards
        self._tokens = tokens
        self._tag = tag
        self._is_async = is_async

    def __repr__(self) -> str:
        return f"<PipelineAttempt {self.number}>"

    @property
    def number(self) -> int:
        """
        The attempt's number, ``1`` for the first.
        """
        number: int = self._attempt.number
        return number

    def set_result(self, value: object) -> None:
        """
        Give the retry this attempt's result, for its ``on_result``, as
        a retry's own attempt does.

        .. versionadded:: 0.2.0
        """
        self._attempt.set_result(value)

    def _take(self, face: str) -> list[Any]:
        tokens = self._tokens
        if tokens is None:
            msg = f"{self!r} was already used; take the next attempt"
            raise RuntimeError(msg)
        if self._is_async != face.startswith("async"):
            loop = "async for" if self._is_async else "for"
            msg = (
                f"{self!r} comes from `{loop} attempt in pipeline`: leave"
                f" it with `{'async with' if self._is_async else 'with'}"
                f" attempt`, not `{face} attempt`"
            )
            raise TypeError(msg)
        self._tokens = None
        return tokens

    def _abandon(self) -> None:
        """
        Give the guards back their tokens if the attempt was never used.
        """
        if self._tokens is not None:
            _undo_all(self._guards, self._tokens)
            self._tokens = None

    def _decide(
        self, error: BaseException | None, exc: BaseException | None
    ) -> bool:
        """
        Hand the outcome the guards left to the retry's attempt; return
        whether the ``with`` statement swallows the block's exception (the
        retry will try again), or raise what replaced it.
        """
        if error is None:
            return bool(
                _step(self._tag, self._attempt.__exit__, None, None, None)
            )
        if _step(
            self._tag,
            self._attempt.__exit__,
            type(error),
            error,
            error.__traceback__,
        ):
            return True
        if error is not exc:
            raise error
        return False

    def __enter__(self) -> PipelineAttempt:
        if self._is_async:
            self._take("with")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        tokens = self._take("with")
        error = _step(
            self._tag, _exit_all, self._guards, tokens, exc, NO_RESULT
        )
        return self._decide(error, exc)

    async def __aenter__(self) -> PipelineAttempt:
        if not self._is_async:
            self._take("async with")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        tokens = self._take("async with")
        error = await _astep(
            self._tag, _aexit_all, self._guards, tokens, exc, NO_RESULT
        )
        return self._decide(error, exc)


register_forwarders(
    Pipeline.__enter__,
    Pipeline.__exit__,
    Pipeline.__aenter__,
    Pipeline.__aexit__,
    Pipeline._attempts,
    Pipeline._aattempts,
    PipelineAttempt.__exit__,
    PipelineAttempt.__aexit__,
    _enter_all,
    _aenter_all,
    _exit_all,
    _aexit_all,
    _exit_guards,
    _aexit_guards,
    _step,
    _astep,
)
