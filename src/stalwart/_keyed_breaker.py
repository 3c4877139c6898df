"""
One circuit breaker per key (per host, per tenant), with the same settings.

A :class:`KeyedCircuitBreaker` holds a :class:`~stalwart.CircuitBreaker`
per key, built on first use from its template and forgotten once it is
indistinguishable from a fresh one: CLOSED, with no failure or slow call
in its state (no streak, nothing bad in its window), and unused since the
previous sweep.  Sweeps run when the number of keys has doubled since the
last one (at least every 64 new keys), so memory stays bounded by the keys
with live state and the calls do not pay for it.  The counts of forgotten
breakers are kept in the totals, so the statistics (and the metrics read
from them) never go backwards.

The key comes from the call's arguments through *key_func* (the
decorator, :meth:`KeyedCircuitBreaker.call` / :meth:`~KeyedCircuitBreaker.acall`),
or is given: :meth:`KeyedCircuitBreaker.key` returns the key's breaker,
with every face of a breaker (``with``, ``async with``, permits).

It is a :class:`~stalwart._faces.Guard` whose token carries the key's
breaker; ``_enter_args(args, kwargs)`` and ``_aenter_args(args, kwargs)``
take the key from a call's arguments, for a composition that has them (a
:class:`~stalwart.Pipeline`'s call faces).
"""

from __future__ import annotations

import functools
import threading

from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Generator,
    Hashable,
)
from typing import Any, ClassVar, Generic, TypeVar, cast, final

import attrs

from ._circuit_breaker import CircuitBreaker, CircuitBreakerStatistics
from ._core.circuit import CircuitState
from ._events import Event, Hook, emit
from ._faces import (
    guard_async_generator,
    guard_generator,
    is_async_callable,
    is_async_generator_function,
    is_generator_function,
)
from ._observe import LiveHooks, Observable, live_hooks
from ._statistics import Statistics
from ._typing import P, T
from ._validators import hooks, non_empty_str, sync_callable, valid_hooks


K = TypeVar("K", bound=Hashable)

_SWEEP_AT_LEAST = 64
_TOTALS = ("successes", "failures", "slow_calls", "ignored", "rejected")


def _check_template(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if not isinstance(value, CircuitBreaker):
        msg = f"'breaker' must be a CircuitBreaker (got {value!r})"
        raise TypeError(msg)


@final
@attrs.frozen(kw_only=True)
class KeyedCircuitBreakerStatistics(Statistics):
    """
    A snapshot of a :class:`KeyedCircuitBreaker`, from
    :meth:`KeyedCircuitBreaker.statistics`.

    Attributes:
        name: The keyed breaker's name.
        keys: Keys whose breaker is held now.
        states: How many of them are in each state, by the state's value.
        successes: Successful calls, over every key (forgotten ones too).
        failures: Failed calls, likewise.
        slow_calls: Slow calls, likewise.
        ignored: Calls counted as neither, likewise.
        rejected: Refused calls, likewise.
        forgotten: Keys forgotten so far.
        breakers: The statistics of each key's breaker, by ``str(key)``.

    .. versionadded:: 0.2.0
    """

    name: str
    keys: int
    states: dict[str, int] = attrs.field(hash=False)
    successes: int
    failures: int
    slow_calls: int
    ignored: int
    rejected: int
    forgotten: int
    breakers: dict[str, CircuitBreakerStatistics] = attrs.field(hash=False)


@final
class _Entry:
    """A key's breaker, and whether it was used since the last sweep."""

    __slots__ = ("breaker", "used")

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.breaker = breaker
        self.used = True


@final
@attrs.frozen(kw_only=True, eq=False)
class KeyedCircuitBreaker(Observable, Generic[K]):
    """
    An independent circuit breaker per key, all with the settings of
    *breaker*: a service calling 300 hosts gets one breaker per host.

    Each key's breaker is built on first use (``attrs.evolve`` of
    *breaker*, named ``"<name>:<key>"``) and forgotten once it is CLOSED
    with no failure or slow call in its state and unused since the
    previous sweep, so memory stays bounded by the keys with live state.
    An outcome reported after its breaker was forgotten (a call running
    across two sweeps) is counted in the totals but not in a new breaker
    for the key.

    Faces: the decorator (``def``, ``async def``, generator functions) and
    :meth:`call` / :meth:`acall` take the key from the call's arguments
    with *key_func*; :meth:`key` returns the breaker of a key, with every
    face of a :class:`~stalwart.CircuitBreaker` (``with``, ``async with``,
    :meth:`~stalwart.CircuitBreaker.acquire`).  Refusals are the key
    breaker's :class:`~stalwart.CircuitOpenError`, named
    ``"<name>:<key>"``.

    Hooks receive the events of every key's breaker (their
    ``primitive_name`` names the key); the registry and the metrics see
    one primitive, with a ``key`` label only when asked for.

    Args:
        breaker: The template: its settings (and clock) are those of each
            key's breaker; its own hooks are not used.
        key_func: A function of the call's arguments returning the key;
            ``None`` uses the first positional argument.
        name: Names it in events, errors and metrics.
        hooks: Receive the events of every key's breaker.

    .. versionadded:: 0.2.0
    """

    breaker: CircuitBreaker = attrs.field(validator=_check_template)
    key_func: Callable[..., K] | None = attrs.field(
        default=None, validator=sync_callable
    )
    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=hooks, validator=valid_hooks, repr=False
    )

    _kind: ClassVar[str] = "KeyedCircuitBreaker"

    _live: LiveHooks = attrs.field(init=False, repr=False)
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )
    _entries: dict[K, _Entry] = attrs.field(
        init=False, repr=False, factory=dict
    )
    # Totals of the forgotten breakers, their count, and the key count at
    # which the next sweep runs.
    _retired: dict[str, int] = attrs.field(
        init=False, repr=False, factory=lambda: dict.fromkeys(_TOTALS, 0)
    )
    _sweep: list[int] = attrs.field(
        init=False, repr=False, factory=lambda: [0, _SWEEP_AT_LEAST]
    )

    def __attrs_post_init__(self) -> None:
        live_hooks(self, self.hooks, self._hooks_changed)

    # -- keys -----------------------------------------------------------------

    def key(self, key: K) -> CircuitBreaker:
        """
        Return the breaker of *key*, built on first use.

        Use it at once (a ``with`` block, a permit, a call): a breaker
        kept aside may be forgotten by a later sweep once it is closed
        and clean.

        .. versionadded:: 0.2.0
        """
        entry = self._entries.get(key)
        if entry is not None:
            entry.used = True
            return entry.breaker
        return self._create(key)

    def _create(self, key: K) -> CircuitBreaker:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if len(self._entries) >= self._sweep[1]:
                    self._collect()
                live = self._live
                breaker = attrs.evolve(
                    self.breaker,
                    name=f"{self.name}:{key}",
                    hooks=(),
                )
                if live.all:
                    breaker.add_hook(self._forward, per_call=bool(live.calls))
                entry = self._entries[key] = _Entry(breaker)
            entry.used = True
            return entry.breaker

    def _collect(self) -> None:
        """
        Forget the breakers that are fresh again and unused since the last
        sweep (under the lock).
        """
        for key, entry in list(self._entries.items()):
            if not entry.used and _fresh(entry.breaker):
                del self._entries[key]
                stats = entry.breaker.statistics()
                for total in _TOTALS:
                    self._retired[total] += getattr(stats, total)
                self._sweep[0] += 1
            else:
                entry.used = False
        self._sweep[1] = max(_SWEEP_AT_LEAST, 2 * len(self._entries))

    def _key_of(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> K:
        key_func = self.key_func
        if key_func is not None:
            return key_func(*args, **kwargs)
        if not args:
            msg = (
                f"KeyedCircuitBreaker {self.name!r}: without a key_func, the"
                " key is the first positional argument, and there is none"
            )
            raise TypeError(msg)
        return args[0]  # type: ignore[no-any-return]  # K is the caller's

    def __len__(self) -> int:
        """
        Return how many keys hold a breaker now.
        """
        return len(self._entries)

    # -- hooks ----------------------------------------------------------------

    def _forward(self, event: Event, /) -> None:
        emit(self._live.all, event)

    def _hooks_changed(self) -> None:
        live = self._live
        with self._lock:
            breakers = [entry.breaker for entry in self._entries.values()]
        for breaker in breakers:
            if self._forward in breaker._live.all:
                breaker.remove_hook(self._forward)
            if live.all:
                breaker.add_hook(self._forward, per_call=bool(live.calls))

    # -- faces ----------------------------------------------------------------

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        Call ``fn(*args, **kwargs)`` through the breaker of the key
        *key_func* reads from the arguments.

        Raises:
            CircuitOpenError: If the key's breaker refused the call.

        .. versionadded:: 0.2.0
        """
        return self.key(self._key_of(args, kwargs)).call(fn, *args, **kwargs)

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """
        Await ``fn(*args, **kwargs)`` through the breaker of the key
        *key_func* reads from the arguments.

        Raises:
            CircuitOpenError: If the key's breaker refused the call.

        .. versionadded:: 0.2.0
        """
        breaker = self.key(self._key_of(args, kwargs))
        return await breaker.acall(fn, *args, **kwargs)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        """
        Guard *fn* (a ``def``, an ``async def``, a generator function or an
        async one): each call goes through the breaker of its key.

        .. versionadded:: 0.2.0
        """
        if is_async_generator_function(fn):
            agen = cast("Callable[..., AsyncGenerator[Any, Any]]", fn)

            @functools.wraps(fn)
            def aguarded_gen(*args: Any, **kwargs: Any) -> Any:
                breaker = self.key(self._key_of(args, kwargs))
                return guard_async_generator(breaker, agen)(*args, **kwargs)

            return cast("Callable[P, T]", aguarded_gen)
        if is_generator_function(fn):
            gen = cast("Callable[..., Generator[Any, Any, Any]]", fn)

            @functools.wraps(fn)
            def guarded_gen(*args: Any, **kwargs: Any) -> Any:
                breaker = self.key(self._key_of(args, kwargs))
                return guard_generator(breaker, gen)(*args, **kwargs)

            return cast("Callable[P, T]", guarded_gen)
        if is_async_callable(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def aguarded(*args: P.args, **kwargs: P.kwargs) -> Any:
                return await self.acall(afn, *args, **kwargs)

            return cast("Callable[P, T]", aguarded)

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call(fn, *args, **kwargs)

        return guarded

    # -- the guard's steps ----------------------------------------------------

    def _enter_args(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[CircuitBreaker, Any]:
        """
        Admit a call with these arguments: return its token (the key's
        breaker and its token) or raise its refusal.
        """
        breaker = self.key(self._key_of(args, kwargs))
        return breaker, breaker._enter()

    async def _aenter_args(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[CircuitBreaker, Any]:
        """
        Admit a call with these arguments (it never waits): see
        :meth:`_enter_args`.
        """
        return self._enter_args(args, kwargs)

    def _enter(self) -> tuple[CircuitBreaker, Any]:
        """
        Refuse: a keyed breaker needs the call's arguments (or a key).

        Raises:
            TypeError: Always.
        """
        msg = (
            f"KeyedCircuitBreaker {self.name!r} needs a key: use"
            " .key(key) for a block or a permit, or the call faces"
        )
        raise TypeError(msg)

    async def _aenter(self) -> tuple[CircuitBreaker, Any]:
        return self._enter()

    def _exit(
        self,
        token: tuple[CircuitBreaker, Any],
        exc: BaseException | None,
        result: object,
    ) -> None:
        breaker, inner = token
        breaker._exit(inner, exc, result)

    async def _aexit(
        self,
        token: tuple[CircuitBreaker, Any],
        exc: BaseException | None,
        result: object,
    ) -> None:
        self._exit(token, exc, result)

    def _undo(self, token: tuple[CircuitBreaker, Any]) -> None:
        breaker, inner = token
        breaker._undo(inner)

    # -- reading --------------------------------------------------------------

    def statistics(self) -> KeyedCircuitBreakerStatistics:
        """
        Return a snapshot: the totals over every key, the keys by state,
        and each key's breaker's statistics.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            entries = list(self._entries.items())
            retired = dict(self._retired)
            forgotten = self._sweep[0]
        breakers = {
            str(key): entry.breaker.statistics() for key, entry in entries
        }
        states = dict.fromkeys((state.value for state in CircuitState), 0)
        totals = dict(retired)
        for stats in breakers.values():
            states[stats.state.value] += 1
            for total in _TOTALS:
                totals[total] += getattr(stats, total)
        return KeyedCircuitBreakerStatistics(
            name=self.name,
            keys=len(breakers),
            states=states,
            forgotten=forgotten,
            breakers=breakers,
            **totals,
        )


def _fresh(breaker: CircuitBreaker) -> bool:
    """
    Tell whether *breaker* would decide as a fresh one: closed, with no
    failure streak and nothing bad in its window.
    """
    core = breaker._core
    return (
        core.state is CircuitState.CLOSED
        and core.consecutive_failures == 0
        and (
            core.window is None
            or (core.window.failures == 0 and core.window.slow == 0)
        )
        and core.trips == 0
    )
