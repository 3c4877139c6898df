"""
ResourcePool: a small pool of reusable resources for one dependency.

The core (:mod:`stalwart._core.pool`) decides what to lend, create and
close; this shell runs the user's factory, validator and disposer outside
its lock, parks waiters (threads and tasks alike, through
:mod:`stalwart._waiters`) and reports events.
"""

from __future__ import annotations

import logging
import threading

from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import (
    Any,
    ClassVar,
    Generic,
    Literal,
    TypeVar,
    cast,
    final,
    overload,
)

import attrs

from ._clock import DEFAULT_CLOCK, Clock
from ._core.pool import CLOSED, CREATE, FULL, Entry, Outcome, PoolCore
from ._errors import ConfigurationError, PoolExhaustedError
from ._events import (
    CallRejected,
    Hook,
    ResourceClosed,
    ResourceCreated,
    emit,
)
from ._faces import (
    awaitable_result_error,
    blocking_on_loop,
    is_async_callable,
    is_awaitable,
    on_loop_thread,
)
from ._observe import LiveHooks, Observable, live_hooks
from ._statistics import Statistics
from ._typing import ExceptionSpec, Seconds
from ._validators import (
    ExceptionFilter,
    exception_filter,
    finite,
    hooks,
    integer,
    is_callable,
    non_empty_str,
    non_negative,
    number,
    optional_duration,
    optional_seconds,
    positive,
    valid_clock,
    valid_exception_filter,
    valid_hooks,
)
from ._waiters import (
    MAX_WAIT,
    QUEUED,
    Queued,
    Waiter,
    apark,
    one,
    park,
    queue_wait,
    wake,
)
from ._waiters import Timeout as _Timeout


R = TypeVar("R")

logger = logging.getLogger("stalwart")


@final
@attrs.frozen(kw_only=True)
class PoolStatistics(Statistics):
    """
    A snapshot of a :class:`ResourcePool`'s counters.

    Attributes:
        name: The pool's name.
        size: Resources alive now (idle, lent out or being created).
        idle: Resources waiting in the pool to be lent.
        in_use: Resources lent out now.
        waiting: Callers waiting for a resource now.
        created: Resources created so far.
        closed: Resources closed so far (broken, invalid, expired, or
            closed with the pool).
        refused: Checkouts refused so far (queue full, or the wait ran
            out).

    .. versionadded:: 0.2.0
    """

    kind: ClassVar[str] = "resource_pool"

    name: str
    size: int
    idle: int
    in_use: int
    waiting: int
    created: int
    closed: int
    refused: int


@final
class Lease(Generic[R]):
    """
    A checkout from a :class:`ResourcePool`, used as ``with lease as
    resource:`` or ``async with lease as resource:``; returned by
    :meth:`ResourcePool.acquire`.

    Entering it checks a resource out (waiting for one if need be);
    leaving it gives the resource back, or closes it if the block raised
    an exception matching the pool's *discard_on*, or a
    :class:`BaseException` that is not an :class:`Exception` (a cancelled
    or interrupted block may have left it mid-conversation), or if
    :meth:`discard` was called.  A lease can be entered again once it has
    been left.

    .. versionadded:: 0.2.0
    """

    __slots__ = ("_broken", "_entry", "_pool", "_timeout")

    def __init__(self, pool: ResourcePool[R], timeout: _Timeout) -> None:
        self._pool = pool
        self._timeout = timeout
        self._entry: Entry[R] | None = None
        self._broken = False

    def __repr__(self) -> str:
        state = "idle" if self._entry is None else "holding a resource"
        return f"<Lease of {self._pool.name!r}, {state}>"

    @property
    def resource(self) -> R:
        """
        The resource held.

        Raises:
            RuntimeError: If the lease is not entered.
        """
        return self._held().resource

    def discard(self) -> None:
        """
        Close the resource when the block ends instead of giving it back
        (it is broken).

        Raises:
            RuntimeError: If the lease is not entered.
        """
        self._held()
        self._broken = True

    def _held(self) -> Entry[R]:
        if self._entry is None:
            msg = "the lease holds no resource (enter it with `with`)"
            raise RuntimeError(msg)
        return self._entry

    def _enter(self) -> None:
        if self._entry is not None:
            msg = "the lease is already entered"
            raise RuntimeError(msg)

    def _leave(self, exc: BaseException | None) -> tuple[Entry[R], bool]:
        entry = self._held()
        self._entry = None
        broken, self._broken = self._broken, False
        if exc is not None and (
            not isinstance(exc, Exception)
            or self._pool.discard_on.matches(exc)
        ):
            broken = True
        return entry, broken

    def __enter__(self) -> R:
        self._enter()
        self._entry = self._pool._checkout_entry(self._timeout, "with")
        return self._entry.resource

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry, broken = self._leave(exc)
        self._pool._checkin(entry.resource, broken=broken)

    async def __aenter__(self) -> R:
        self._enter()
        self._entry = await self._pool._acheckout_entry(self._timeout)
        return self._entry.resource

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry, broken = self._leave(exc)
        await self._pool._acheckin(entry.resource, broken=broken)


def _factory(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if not callable(value):
        msg = f"{attr.name!r} must be callable (got {value!r})"
        raise ConfigurationError(msg)


@final
@attrs.frozen(kw_only=True, eq=False, init=False)
class ResourcePool(Observable, Generic[R]):
    """
    Lend at most *max_size* reusable resources (connections, clients,
    sessions) created by *factory*, one caller at a time each.

    A caller checks a resource out, uses it and gives it back, with
    ``with pool.acquire() as conn:`` / ``async with pool.acquire() as
    conn:`` or the explicit steps :meth:`checkout` / :meth:`acheckout` and
    :meth:`checkin` / :meth:`acheckin`.  A checkout lends the most
    recently returned idle resource (after *validate* says it is still
    good), or creates one if fewer than *max_size* exist; otherwise the
    caller waits in a FIFO queue (at most *max_queue* waiters) for at
    most *max_wait*, and never past the current deadline, then gets
    :class:`~stalwart.PoolExhaustedError`.  A resource given back goes
    straight to the longest waiter.

    Resources are closed (by *dispose*, if given) when given back broken,
    when they fail validation, when idle for *max_idle* or alive for
    *max_lifetime* (found at the next checkout or checkin: there is no
    background thread), and when the pool is closed.

    One pool per dependency keeps a slow dependency from tying up the
    resources of another.  It may be used from threads and event loops
    at once.  Each of *factory*, *validate* and *dispose* may be a plain
    or an ``async`` callable; the async faces accept both (a plain one
    runs on the event loop's thread: keep it quick), the sync faces only
    plain ones.

    Args:
        factory: Create a resource.
        max_size: The most resources alive at once.
        max_queue: The most callers waiting for one; ``None``: no limit.
        max_wait: How long a caller waits, in seconds; ``None`` waits as
            long as it takes (or until the deadline).
        max_idle: Close a resource idle for this long, in seconds.
        max_lifetime: Close a resource this old, in seconds.
        validate: Tell whether an idle resource is still good before it
            is lent; ``False`` or an exception closes it and another is
            tried.
        dispose: Close a resource the pool no longer keeps; what it
            raises is logged on the ``stalwart`` logger.
        discard_on: Exceptions that, raised in a ``with`` block, mean the
            resource is broken.
        name: Used in errors and events.
        clock: Where time is read and waited on.
        hooks: Receive :class:`~stalwart.ResourceCreated`,
            :class:`~stalwart.ResourceClosed` and
            :class:`~stalwart.CallRejected` events.

    .. versionadded:: 0.2.0
    """

    factory: Callable[[], R | Awaitable[R]] = attrs.field(validator=_factory)
    max_size: int = attrs.field(validator=(number, integer, positive))
    max_queue: int | None = attrs.field(
        default=None, validator=(integer, non_negative)
    )
    max_wait: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, non_negative, finite],
    )
    max_idle: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, positive],
    )
    max_lifetime: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, positive],
    )
    validate: Callable[[R], bool | Awaitable[bool]] | None = attrs.field(
        default=None, validator=is_callable, repr=False
    )
    dispose: Callable[[R], object] | None = attrs.field(
        default=None, validator=is_callable, repr=False
    )
    discard_on: ExceptionFilter = attrs.field(
        default=None,
        converter=exception_filter,
        validator=valid_exception_filter,
        repr=False,
    )
    name: str = attrs.field(default="<unnamed>", validator=non_empty_str)
    clock: Clock = attrs.field(
        default=DEFAULT_CLOCK, validator=valid_clock, repr=False
    )
    hooks: tuple[Hook, ...] = attrs.field(
        default=(), converter=hooks, validator=valid_hooks, repr=False
    )
    _core: PoolCore[R, Waiter] = attrs.field(
        init=False,
        repr=False,
        default=attrs.Factory(
            lambda self: PoolCore(
                self.max_size,
                self.max_queue,
                self.max_idle,
                self.max_lifetime,
            ),
            takes_self=True,
        ),
    )
    # The names of the callables that are async (the sync faces refuse).
    _async: tuple[str, ...] = attrs.field(
        init=False,
        repr=False,
        default=attrs.Factory(
            lambda self: tuple(
                name
                for name in ("factory", "validate", "dispose")
                if is_async_callable(getattr(self, name))
            ),
            takes_self=True,
        ),
    )
    # Held for O(1) core bookkeeping only; never across user code or a wait.
    _lock: threading.Lock = attrs.field(
        init=False, repr=False, factory=threading.Lock
    )
    _live: LiveHooks = attrs.field(init=False, repr=False)

    @overload
    def __init__(
        self,
        *,
        factory: Callable[[], Awaitable[R]],
        max_size: int,
        max_queue: int | None = None,
        max_wait: Seconds | None = None,
        max_idle: Seconds | None = None,
        max_lifetime: Seconds | None = None,
        validate: Callable[[R], bool | Awaitable[bool]] | None = None,
        dispose: Callable[[R], object] | None = None,
        discard_on: ExceptionSpec | None = None,
        name: str = "<unnamed>",
        clock: Clock = DEFAULT_CLOCK,
        hooks: Hook | Iterable[Hook] = (),
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        factory: Callable[[], R],
        max_size: int,
        max_queue: int | None = None,
        max_wait: Seconds | None = None,
        max_idle: Seconds | None = None,
        max_lifetime: Seconds | None = None,
        validate: Callable[[R], bool | Awaitable[bool]] | None = None,
        dispose: Callable[[R], object] | None = None,
        discard_on: ExceptionSpec | None = None,
        name: str = "<unnamed>",
        clock: Clock = DEFAULT_CLOCK,
        hooks: Hook | Iterable[Hook] = (),
    ) -> None: ...

    def __init__(self, **kwargs: Any) -> None:
        # The overloads let type checkers read R from a plain or an async
        # factory; attrs builds, converts and validates.
        self.__attrs_init__(**kwargs)
        live_hooks(self, self.hooks)

    # -- faces -----------------------------------------------------------

    def acquire(self, timeout: _Timeout = MAX_WAIT) -> Lease[R]:
        """
        Return a lease to check a resource out with ``with`` or ``async
        with``; nothing is checked out before the lease is entered.

        Args:
            timeout: How long to wait for a resource, in seconds;
                *max_wait* by default, ``None`` for as long as it takes.
                The current deadline caps it.

        .. versionadded:: 0.2.0
        """
        return Lease(self, timeout)

    def checkout(self, timeout: _Timeout = MAX_WAIT) -> R:
        """
        Check a resource out, waiting for one if need be; give it back
        with :meth:`checkin`.

        Args:
            timeout: How long to wait, in seconds; *max_wait* by default,
                ``None`` for as long as it takes.  The current deadline
                caps it.

        Raises:
            PoolExhaustedError: If no resource could be had in time, or
                the queue of waiters is full.
            RuntimeError: If the pool is closed, or the wait would block
                the thread of a running event loop.
            TypeError: If the factory or the validator is async (use
                :meth:`acheckout`).

        .. versionadded:: 0.2.0
        """
        return self._checkout_entry(timeout, "checkout()").resource

    async def acheckout(self, timeout: _Timeout = MAX_WAIT) -> R:  # noqa: ASYNC109  # the shared waiting vocabulary
        """
        Check a resource out, waiting for one if need be (async twin of
        :meth:`checkout`); give it back with :meth:`acheckin`.

        .. versionadded:: 0.2.0
        """
        return (await self._acheckout_entry(timeout)).resource

    def checkin(self, resource: R, *, broken: bool = False) -> None:
        """
        Give back a resource from :meth:`checkout`; a *broken* one is
        closed.

        Raises:
            RuntimeError: If *resource* is not checked out from this pool.
            TypeError: If the disposer is async (use :meth:`acheckin`).

        .. versionadded:: 0.2.0
        """
        if self._async:
            self._check_sync("checkin()", ("dispose",))
        self._checkin(resource, broken=broken)

    async def acheckin(self, resource: R, *, broken: bool = False) -> None:
        """
        Give back a resource from :meth:`acheckout` (async twin of
        :meth:`checkin`).

        .. versionadded:: 0.2.0
        """
        await self._acheckin(resource, broken=broken)

    def close(self) -> None:
        """
        Close the pool: close the idle resources, refuse new checkouts
        (``RuntimeError``), wake the waiters with the same error, and
        close resources lent out when they come back.

        Raises:
            TypeError: If the disposer is async (use :meth:`aclose`).

        .. versionadded:: 0.2.0
        """
        if self._async:
            self._check_sync("close()", ("dispose",))
        with self._lock:
            waiters = self._core.close()
            dead = self._core.take_dead()
        self._bury(dead)
        for waiter in waiters:
            self._wake(waiter)

    async def aclose(self) -> None:
        """
        Close the pool (async twin of :meth:`close`).

        .. versionadded:: 0.2.0
        """
        with self._lock:
            waiters = self._core.close()
            dead = self._core.take_dead()
        await self._abury(dead)
        for waiter in waiters:
            self._wake(waiter)

    def statistics(self) -> PoolStatistics:
        """
        Return a snapshot of the counters.

        .. versionadded:: 0.2.0
        """
        with self._lock:
            snap = self._core.snapshot()
        return PoolStatistics(
            name=self.name,
            size=snap.size,
            idle=snap.idle,
            in_use=snap.in_use,
            waiting=snap.waiting,
            created=snap.created,
            closed=snap.closed,
            refused=snap.refused,
        )

    # -- checkout, sync --------------------------------------------------

    def _checkout_entry(self, timeout: _Timeout, face: str) -> Entry[R]:
        if self._async:
            self._check_sync(face, ("factory", "validate", "dispose"))
        now = self.clock.now()
        with self._lock:
            outcome = self._core.checkout(now)
            dead = self._core.take_dead()
        if dead:
            self._bury(dead)
        while True:
            if outcome is CREATE:
                return self._create()
            if outcome is FULL:
                outcome = self._wait(self._queue_wait(timeout), face)
                continue
            if outcome is CLOSED:
                raise self._closed()
            validate = self.validate
            if validate is None or self._valid(validate, outcome):
                return outcome
            with self._lock:
                outcome = self._core.replace(outcome, self.clock.now())
                dead = self._core.take_dead()
            self._bury(dead)

    def _create(self) -> Entry[R]:
        try:
            resource = self.factory()
        except BaseException:
            self._create_failed()
            raise
        if is_awaitable(resource):
            self._create_failed()
            raise awaitable_result_error(
                "ResourcePool", self.name, "factory", "acheckout()", resource
            )
        return self._created(cast("R", resource))

    def _valid(
        self, validate: Callable[[R], bool | Awaitable[bool]], entry: Entry[R]
    ) -> bool:
        try:
            ok = validate(entry.resource)
        except Exception:
            return False
        except BaseException:
            self._checkin(entry.resource, broken=True)
            raise
        if is_awaitable(ok):
            self._checkin(entry.resource, broken=False)
            raise awaitable_result_error(
                "ResourcePool", self.name, "validate", "acheckout()", ok
            )
        return bool(ok)

    def _wait(self, wait: float | None, face: str) -> Entry[R] | Outcome:
        if on_loop_thread():
            raise blocking_on_loop(
                "ResourcePool", self.name, face, "acheckout()"
            )

        def enqueue(
            waiter: Waiter,
        ) -> Entry[R] | Outcome | Literal[Queued.QUEUED]:
            outcome, dead = self._enqueue(waiter)
            self._bury(dead)
            return outcome

        return park(
            self.clock,
            wait,
            enqueue,
            self._settle,
            lambda waiter: self._bury(self._abandon(waiter)),
        )

    # -- checkout, async -------------------------------------------------

    async def _acheckout_entry(self, timeout: _Timeout) -> Entry[R]:  # noqa: ASYNC109  # the shared waiting vocabulary
        now = self.clock.now()
        with self._lock:
            outcome = self._core.checkout(now)
            dead = self._core.take_dead()
        if dead:
            await self._abury(dead)
        while True:
            if outcome is CREATE:
                return await self._acreate()
            if outcome is FULL:
                outcome = await self._await(self._queue_wait(timeout))
                continue
            if outcome is CLOSED:
                raise self._closed()
            validate = self.validate
            if validate is None or await self._avalid(validate, outcome):
                return outcome
            with self._lock:
                outcome = self._core.replace(outcome, self.clock.now())
                dead = self._core.take_dead()
            await self._abury(dead)

    async def _acreate(self) -> Entry[R]:
        try:
            resource = self.factory()
            if is_awaitable(resource):
                resource = await cast("Awaitable[R]", resource)
        except BaseException:
            self._create_failed()
            raise
        return self._created(cast("R", resource))

    async def _avalid(
        self, validate: Callable[[R], bool | Awaitable[bool]], entry: Entry[R]
    ) -> bool:
        try:
            ok = validate(entry.resource)
            if is_awaitable(ok):
                ok = await cast("Awaitable[bool]", ok)
        except Exception:
            return False
        except BaseException:
            await self._acheckin(entry.resource, broken=True)
            raise
        return bool(ok)

    async def _await(self, wait: float | None) -> Entry[R] | Outcome:
        # Resources found dead while queueing are closed (awaiting an async
        # disposer) before the task parks, or at once if it need not.
        dead: list[tuple[Entry[R], str]] = []

        def enqueue(
            waiter: Waiter,
        ) -> Entry[R] | Outcome | Literal[Queued.QUEUED]:
            outcome, found = self._enqueue(waiter)
            dead.extend(found)
            return outcome

        def bury() -> Awaitable[None]:
            found = dead.copy()
            dead.clear()
            return self._abury(found)

        outcome = await apark(
            self.clock,
            wait,
            enqueue,
            self._settle,
            lambda waiter: self._abury(self._abandon(waiter)),
            then=bury,
        )
        await bury()
        return outcome

    # -- checkin ---------------------------------------------------------

    def _checkin(self, resource: R, *, broken: bool) -> None:
        now = self.clock.now()
        with self._lock:
            waiter = self._core.checkin(resource, now, broken=broken)
            dead = self._core.take_dead()
        if dead:
            self._bury(dead)
        if waiter is not None:
            self._wake(waiter)

    async def _acheckin(self, resource: R, *, broken: bool) -> None:
        now = self.clock.now()
        with self._lock:
            waiter = self._core.checkin(resource, now, broken=broken)
            dead = self._core.take_dead()
        if dead:
            await self._abury(dead)
        if waiter is not None:
            self._wake(waiter)

    # -- waiting, both faces ---------------------------------------------

    def _queue_wait(self, timeout: _Timeout) -> float | None:
        """
        Return how long a caller may wait, or raise if it may not wait.
        """
        wait = queue_wait(timeout, self.max_wait)
        if wait == 0:
            with self._lock:
                self._core.refuse()
            raise self._refusal()
        return wait

    def _enqueue(
        self, waiter: Waiter
    ) -> tuple[
        Entry[R] | Outcome | Literal[Queued.QUEUED], list[tuple[Entry[R], str]]
    ]:
        """
        Queue *waiter*, unless something freed up meanwhile.

        Returns:
            ``QUEUED`` if queued, else the outcome of the checkout that
            succeeded after all; and the resources to close.

        Raises:
            PoolExhaustedError: If the queue is full.
        """
        now = self.clock.now()
        with self._lock:
            outcome = self._core.checkout(now)
            refused = outcome is FULL and not self._core.enqueue(waiter)
            dead = self._core.take_dead()
        if refused:
            raise self._refusal()
        return (QUEUED if outcome is FULL else outcome), dead

    def _settle(self, waiter: Waiter) -> Entry[R] | Outcome:
        """
        After a wait ended normally: take what was handed to us, or report
        that the wait ran out.
        """
        with self._lock:
            timed_out = self._core.withdraw(waiter, refused=True)
            outcome = FULL if timed_out else self._core.claim(waiter)
        if timed_out:
            raise self._refusal()
        return outcome

    def _abandon(self, waiter: Waiter) -> list[tuple[Entry[R], str]]:
        """
        Leave the queue; what was handed to us meanwhile goes on.

        Returns:
            The resources to close (a resource handed to us that expired,
            or came back to a closed pool).
        """
        now = self.clock.now()
        with self._lock:
            if self._core.withdraw(waiter, refused=False):
                return []
            nxt = self._core.abandon(waiter, now)
            dead = self._core.take_dead()
        if nxt is not None:
            self._wake(nxt)
        return dead

    def _wake(self, waiter: Waiter) -> None:
        wake((waiter,), self._gone)

    def _gone(self, waiter: Waiter) -> tuple[Waiter, ...]:
        """
        Hand on what was handed to a waiter whose event loop is closed,
        rather than leak it.  A resource that must be closed meanwhile is
        left for the next operation to close: this may run where its
        disposer cannot.
        """
        now = self.clock.now()
        with self._lock:
            return one(self._core.abandon(waiter, now))

    # -- creating and closing resources ----------------------------------

    def _created(self, resource: R) -> Entry[R]:
        now = self.clock.now()
        with self._lock:
            entry = self._core.record_created(resource, now)
        if self._live.all:
            emit(
                self._live.all,
                ResourceCreated(
                    primitive_name=self.name, at=now, resource=resource
                ),
            )
        return entry

    def _create_failed(self) -> None:
        with self._lock:
            waiter = self._core.create_failed()
        if waiter is not None:
            self._wake(waiter)

    def _bury(self, dead: list[tuple[Entry[R], str]]) -> None:
        for entry, reason in dead:
            if self.dispose is not None:
                try:
                    self.dispose(entry.resource)
                except Exception:
                    logger.exception(
                        "stalwart pool %r could not close %r",
                        self.name,
                        entry.resource,
                    )
            self._report_closed(entry, reason)

    async def _abury(self, dead: list[tuple[Entry[R], str]]) -> None:
        for entry, reason in dead:
            if self.dispose is not None:
                try:
                    result = self.dispose(entry.resource)
                    if is_awaitable(result):
                        await cast("Awaitable[object]", result)
                except Exception:
                    logger.exception(
                        "stalwart pool %r could not close %r",
                        self.name,
                        entry.resource,
                    )
            self._report_closed(entry, reason)

    def _report_closed(self, entry: Entry[R], reason: str) -> None:
        if self._live.all:
            emit(
                self._live.all,
                ResourceClosed(
                    primitive_name=self.name,
                    at=self.clock.now(),
                    resource=entry.resource,
                    reason=reason,
                ),
            )

    # -- errors ----------------------------------------------------------

    def _check_sync(self, face: str, needs: tuple[str, ...]) -> None:
        used = [name for name in needs if name in self._async]
        if used:
            msg = (
                f"ResourcePool {self.name!r}: {face} cannot call the async"
                f" {' and '.join(used)}; use the async faces (async"
                " with pool.acquire(), acheckout(), acheckin(), aclose())"
            )
            raise TypeError(msg)

    def _refusal(self) -> PoolExhaustedError:
        error = PoolExhaustedError(self.name, self.max_size)
        if self._live.all:
            emit(
                self._live.all,
                CallRejected(
                    primitive_name=self.name, at=self.clock.now(), error=error
                ),
            )
        return error

    def _closed(self) -> RuntimeError:
        return RuntimeError(f"ResourcePool {self.name!r} is closed")
