"""
What every bulkhead shares: permits taken from one
:class:`~stalwart._core.bulkhead.BulkheadCore`, waiting in its queue, the
permits held by explicit steps, refusals, and the per-call events.

:class:`Bulkhead <stalwart.Bulkhead>`, :class:`~stalwart.WeightedBulkhead`
and :class:`~stalwart.AdaptiveBulkhead` are three shells over the same
core, whose limit may change and whose permits may have a cost: each
derives from :class:`BulkheadBase`, which holds everything but their hot
paths (the faces a call goes through when a permit is free), which each
tunes for what it must do there: count, weigh, or time the call for its
limit.

**Per-call events.**  While a hook that asked for per-call events listens
(:mod:`stalwart._observe`), each call reports its admission
(:class:`~stalwart.CallAdmitted`, with the time it waited in the queue)
and its end (:class:`~stalwart.CallFinished`: ``"success"``,
``"failure"`` for an :class:`Exception`, ``"ignored"`` for another
:class:`BaseException` or a permit given back by an explicit step, and
its duration).  The counting shells keep their fast paths free of the
test: their faces read the core through :attr:`BulkheadBase._gate`, which
is the core itself, or an :class:`Observing` stand-in while such a hook
listens.  The stand-in grants a token to nobody on the fast path, so
those faces take their slow path, which times the call; an anonymous
permit it takes at once but answers ``None``, not ``True``, so the face
times the call from its admission (it waited exactly 0.0) without a
second try; and it gives permits back as the core does but always
returns a list, so the face goes on to report the call's end.  A call that began before the hook came has no start time:
its duration is ``None``.
"""

from __future__ import annotations

import asyncio
import threading

from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Final,
    Generic,
    Literal,
    TypeVar,
)

import attrs

from ._clock import Clock
from ._core.bulkhead import BulkheadCore
from ._errors import BulkheadFullError
from ._events import (
    CallRejected,
    call_admitted,
    call_finished,
    emit,
)
from ._faces import Blocks, blocking_on_loop
from ._observe import LiveHooks, Observable
from ._waiters import (
    MAX_WAIT,
    QUEUED,
    Default,
    Queued,
    Waiter,
    apark,
    park,
    queue_wait,
    wake,
)


W = TypeVar("W")

_running_loop = asyncio.events._get_running_loop
_current_task = asyncio.current_task

WITH_FACES: Final = ("`with bulkhead`", "`async with bulkhead`")
CALL_FACES: Final = ("call()", "acall()")
ACQUIRE_FACES: Final = ("acquire()", "await bulkhead.aacquire()")


def holder() -> object:
    """
    The task running now, or this thread outside any task: who holds a
    permit taken by an explicit step.
    """
    loop = _running_loop()
    if loop is not None:
        task = _current_task(loop)
        if task is not None:
            return task
    return threading.get_ident()


def outcome_of(exc: BaseException | None) -> str:
    """
    Name how a call ended: ``"success"``, ``"failure"`` (an
    :class:`Exception`) or ``"ignored"`` (any other
    :class:`BaseException`: a cancellation, an interrupt).
    """
    if exc is None:
        return "success"
    return "failure" if isinstance(exc, Exception) else "ignored"


class Observing(Generic[W]):
    """
    Stands in for a bulkhead's core on its fast paths while a per-call
    hook listens (see the module's docstring).
    """

    __slots__ = ("core",)

    def __init__(self, core: BulkheadCore[W]) -> None:
        self.core = core

    def try_enter(self) -> bool | None:
        """
        Take an anonymous permit if a unit is free: ``None`` if taken (the
        face times the call from now, admitted at once), ``False`` if not
        (the face takes its slow path).
        """
        return None if self.core.try_enter() else False

    def try_take(self, cost: int = 1) -> int:
        """
        Grant nothing: the face takes its slow path, which times the call.
        """
        return 0

    def exit(self) -> list[W]:
        """
        Give back an anonymous permit; return the waiters served (a list,
        even empty, so the face reports the call's end).
        """
        return self.core.exit() or []

    def give_back(self, token: int) -> list[W]:
        """
        Give back the permit *token*; return the waiters served (a list,
        even empty).
        """
        return self.core.give_back(token) or []


@attrs.frozen(kw_only=True, eq=False)
class BulkheadBase(Observable):
    """
    The machinery of every bulkhead shell (see the module's docstring).

    A shell is a frozen attrs class deriving from this one, with its
    configuration (at least ``name``, ``clock``, ``max_wait`` and
    ``hooks``), that calls :meth:`_init_base` with its core, then builds
    its live hooks, in ``__attrs_post_init__``.
    """

    if TYPE_CHECKING:
        # The shells' own fields.
        name: str
        clock: Clock
        max_wait: float | None

    # The shared state, set by _init_base (and the live hooks).
    _core: BulkheadCore[Waiter] = attrs.field(init=False, repr=False)
    # Held for O(1) bookkeeping only; never across user code, a wait or a
    # hook.
    _lock: threading.Lock = attrs.field(init=False, repr=False)
    # The tokens taken by explicit steps, by holder.
    _held: dict[object, list[int]] = attrs.field(init=False, repr=False)
    # The start time of each token whose call is timed, and of each timed
    # `with` block (by frame).
    _starts: dict[int, float] = attrs.field(init=False, repr=False)
    _blocks: Blocks[float] = attrs.field(init=False, repr=False)
    # The core, or the stand-in while a per-call hook listens.
    _gate: BulkheadCore[Waiter] | Observing[Waiter] = attrs.field(
        init=False, repr=False
    )
    _observing: bool = attrs.field(init=False, repr=False)
    _live: LiveHooks = attrs.field(init=False, repr=False)

    _kind: ClassVar[str]
    """The class's name, in messages."""
    _primitive: ClassVar[str]
    """The kind of primitive, in snake case, in per-call events."""

    # -- set-up ----------------------------------------------------------

    def _init_base(self, core: BulkheadCore[Waiter]) -> None:
        """
        Set the private state every shell has.
        """
        set_private = object.__setattr__
        set_private(self, "_core", core)
        set_private(self, "_lock", threading.Lock())
        set_private(self, "_held", {})
        set_private(self, "_starts", {})
        set_private(self, "_blocks", Blocks())
        set_private(self, "_gate", core)
        set_private(self, "_observing", False)

    def _hooks_changed(self) -> None:
        """
        Follow the live hooks: time every call while one asks for per-call
        events.
        """
        observing = bool(self._live.calls)
        with self._lock:
            if observing == self._observing:
                return
            object.__setattr__(self, "_observing", observing)
            object.__setattr__(
                self,
                "_gate",
                Observing(self._core) if observing else self._core,
            )
            if not observing:
                # Calls under way end untimed; nothing is kept for them.
                self._starts.clear()
                self._blocks.held.clear()
                self._blocks.outer.clear()

    # -- explicit steps --------------------------------------------------

    def _try_acquire(self, cost: int = 1) -> bool:
        """
        Take a permit of *cost* now, held by the calling task or thread;
        never wait.
        """
        owner = holder()
        lock = self._lock
        lock.acquire()
        try:
            token = self._gate.try_take(cost)
            if token:
                # Not setdefault(owner, []): no list built for nothing.
                tokens = self._held.get(owner)
                if tokens is None:
                    self._held[owner] = [token]
                else:
                    tokens.append(token)
        finally:
            lock.release()
        if token:
            return True
        return self._try_acquire_slow(owner, cost)

    def _try_acquire_slow(self, owner: object, cost: int) -> bool:
        """
        The slow path of :meth:`_try_acquire`: refuse, or take a timed
        permit.
        """
        observing = self._observing
        start = self.clock.now() if observing else 0.0
        with self._lock:
            token = self._core.try_take(cost) if observing else 0
            if not token:
                self._core.refuse()
        if not token:
            self._refusal()
            return False
        self._token_admitted(token, start, start)
        with self._lock:
            self._hold(owner, token)
        return True

    def _acquire(self, wait: float | None, cost: int = 1) -> None:
        """
        Take a permit of *cost*, waiting at most *wait* seconds, held by
        the calling task or thread.
        """
        owner = holder()
        token = self._take(wait, ACQUIRE_FACES, cost)
        with self._lock:
            self._hold(owner, token)

    async def _aacquire(self, wait: float | None, cost: int = 1) -> None:
        """
        Take a permit of *cost*, waiting at most *wait* seconds (async twin
        of :meth:`_acquire`).
        """
        owner = holder()
        token = await self._atake(wait, cost)
        with self._lock:
            self._hold(owner, token)

    def _hold(self, owner: object, token: int) -> None:
        """
        Record that *owner* holds the permit *token* (under the lock).
        """
        self._held.setdefault(owner, []).append(token)

    def release(self) -> None:
        """
        Give back the permit that the calling task (or thread, outside any
        task) took last with ``try_acquire()``, ``acquire()`` or
        ``aacquire()``, handing it on to the longest waiters.

        Per-call hooks get a :class:`~stalwart.CallFinished` whose outcome
        is ``"ignored"``: an explicit step does not say how the work went.

        Raises:
            RuntimeError: If the caller holds no such permit: a second
                ``release()`` for one permit, or a permit taken by another
                task or thread.

        .. versionadded:: 0.1.0
        """
        owner = holder()
        lock = self._lock
        token = 0
        served = None
        lock.acquire()
        try:
            tokens = self._held.get(owner)
            if tokens:
                token = tokens.pop()
                if not tokens:
                    del self._held[owner]
                served = self._gate.give_back(token)
        finally:
            lock.release()
        if not token:
            msg = (
                f"{self._kind} {self.name!r}: release() without a permit"
                " held by this task or thread (a second release() of one"
                " permit, or a permit taken elsewhere: give a permit back"
                " where it was taken)"
            )
            raise RuntimeError(msg)
        if served is not None:
            self._finished(
                served, self._starts.pop(token, None), None, outcome="ignored"
            )

    # -- taking a token (the guard steps, explicit steps) -------------------

    def _take(
        self,
        wait: float | Literal[Default.MAX_WAIT] | None,
        faces: tuple[str, str],
        cost: int = 1,
    ) -> int:
        """
        Take a permit of *cost* as a token, waiting if need be (the slow
        path of a guard's entry and the explicit steps: the fast one found
        no unit free, or the call is timed); while timing, remember when
        its call began and report its admission.
        """
        start, token = self._first_take(cost)
        if token:
            return self._taken(token, start, start)
        return self._taken(self._wait(wait, faces, cost), start, None)

    async def _atake(
        self, wait: float | Literal[Default.MAX_WAIT] | None, cost: int = 1
    ) -> int:
        """
        Take a permit of *cost* as a token, waiting if need be (async twin
        of :meth:`_take`).
        """
        start, token = self._first_take(cost)
        if token:
            return self._taken(token, start, start)
        return self._taken(await self._await(wait, cost), start, None)

    def _first_take(self, cost: int) -> tuple[float | None, int]:
        """
        Try the core for a permit of *cost*.

        Returns:
            When the call began (``None`` unless it is timed), and the
            token (``0`` if the caller must queue).
        """
        start = self.clock.now() if self._observing else None
        with self._lock:
            return start, self._core.try_take(cost)

    def _taken(
        self, token: int, start: float | None, admitted: float | None
    ) -> int:
        """
        Return *token*; if its call is timed, report its admission first
        (*admitted*: ``None`` for now).
        """
        if start is not None:
            self._token_admitted(
                token,
                start,
                self.clock.now() if admitted is None else admitted,
            )
        return token

    def _first_enter(self) -> tuple[float | None, bool]:
        """
        Try the core for an anonymous permit, on the slow path of a face
        that takes those.

        Returns:
            When the call began and whether it entered, for a timed call;
            ``(None, False)`` otherwise (the fast path found no permit).
        """
        if not self._observing:
            return None, False
        start = self.clock.now()
        with self._lock:
            return start, self._core.try_enter()

    def _entered(
        self, start: float | None, entered: bool
    ) -> tuple[float, float] | None:
        """
        Return when a timed call began and when it was admitted (``None``
        for a call that is not timed).
        """
        if start is None:
            return None
        return start, start if entered else self.clock.now()

    def _token_admitted(
        self, token: int, start: float, admitted: float
    ) -> None:
        """
        Report the admission of the permit *token*; a hook that raises a
        :class:`BaseException` gives the permit back.
        """
        try:
            self._admitted(token, start, admitted)
        except BaseException:
            self._give_back(token, None, report=False)
            raise

    def _give_back(
        self,
        token: int,
        exc: BaseException | None,
        *,
        report: bool = True,
        outcome: str | None = None,
    ) -> None:
        """
        Give back the permit *token* (the slow path of an exit, and
        explicit steps); while timing, report how the call ended.
        """
        with self._lock:
            served = self._core.give_back(token)
        self._finished(
            served, self._starts.pop(token, None), exc, report, outcome
        )

    def _finished(
        self,
        served: list[Waiter] | None,
        start: float | None,
        exc: BaseException | None,
        report: bool = True,
        outcome: str | None = None,
    ) -> None:
        """
        After a permit came back: wake the waiters it served, and report
        the call's end to the per-call hooks (if any): its *outcome*, or
        the one *exc* makes.
        """
        if served:
            self._wake(served)
        calls = self._live.calls_now
        if report and calls:
            now = self.clock.now()
            emit(
                calls,
                call_finished(
                    self.name,
                    now,
                    self._primitive,
                    outcome or outcome_of(exc),
                    None if start is None else now - start,
                    exc,
                ),
            )

    def _admitted(self, token: int, start: float, admitted: float) -> None:
        """
        Remember when the call holding *token* began, and report its
        admission (after a wait of ``admitted - start``).
        """
        self._starts[token] = admitted
        self._report_admitted(start, admitted)

    def _report_admitted(self, start: float, admitted: float) -> None:
        calls = self._live.calls_now
        if calls:
            emit(
                calls,
                call_admitted(
                    self.name, admitted, self._primitive, admitted - start
                ),
            )

    # -- decorated calls, observed -------------------------------------------

    def _refund(self) -> None:
        """
        Give back an anonymous permit whose admission a hook refused (it
        raised a :class:`BaseException`): the call never ran, so nothing
        is reported.
        """
        with self._lock:
            served = self._core.exit()
        self._finished(served, None, None, report=False)

    # -- with blocks, timed ------------------------------------------------

    def _block_admitted(
        self, frame: Any, start: float, admitted: float
    ) -> None:
        """
        Remember when the block entered by *frame* began (it holds an
        anonymous permit), and report its admission; a hook that raises a
        :class:`BaseException` gives the permit back.
        """
        self._blocks.push(frame, admitted)
        try:
            self._report_admitted(start, admitted)
        except BaseException:
            self._block_start(frame)
            self._refund()
            raise

    def _block_start(self, frame: Any) -> float | None:
        """
        Take back the start time of the innermost timed block of *frame*,
        or ``None`` if it was not timed.
        """
        blocks = self._blocks
        start = blocks.held.pop(frame, None)
        if start is not None and blocks.outer:
            blocks.unnest(frame)
        return start

    # -- waiting (the slow path) --------------------------------------------

    def _wait(
        self,
        wait: float | Literal[Default.MAX_WAIT] | None,
        faces: tuple[str, str],
        cost: int = 1,
        *,
        anonymous: bool = False,
    ) -> int:
        """
        Queue the calling thread and park it until a permit of *cost* is
        handed to it.

        Args:
            wait: The longest wait, in seconds (``None``: no limit), or
                ``MAX_WAIT`` for *max_wait*; the deadline caps it.
            faces: The sync face waiting and its async twin, named in the
                error when waiting would block an event loop.
            cost: The units of the permit.
            anonymous: Keep the permit anonymous (see the core).

        Returns:
            The token of the permit it now holds (unless *anonymous*).
        """
        if wait is MAX_WAIT:
            wait = queue_wait(MAX_WAIT, self.max_wait)
        blocking = faces if _running_loop() is not None else None
        token = park(
            self.clock,
            wait,
            lambda waiter: self._enqueue(waiter, wait, cost, blocking),
            self._settle,
            self._abandon,
        )
        return self._keep(token, anonymous)

    async def _await(
        self,
        wait: float | Literal[Default.MAX_WAIT] | None,
        cost: int = 1,
        *,
        anonymous: bool = False,
    ) -> int:
        """
        Queue the calling task and park it until a permit of *cost* is
        handed to it (async twin of :meth:`_wait`).
        """
        if wait is MAX_WAIT:
            wait = queue_wait(MAX_WAIT, self.max_wait)
        token = await apark(
            self.clock,
            wait,
            lambda waiter: self._enqueue(waiter, wait, cost, None),
            self._settle,
            self._abandon,
        )
        return self._keep(token, anonymous)

    def _enqueue(
        self,
        waiter: Waiter,
        wait: float | None,
        cost: int,
        blocking: tuple[str, str] | None,
    ) -> int | Literal[Queued.QUEUED]:
        """
        Queue *waiter*, or raise if that is not possible (*blocking*: the
        sync face and its async twin, when waiting would block an event
        loop).

        Returns:
            The token of a permit that was free after all (now held), or
            ``QUEUED``.
        """
        with self._lock:
            token = self._core.try_take(cost)
            if token:
                return token
            refused = blocked = False
            if wait == 0:
                self._core.refuse()
                refused = True
            elif blocking is not None and self._core.would_queue():
                blocked = True  # refused below, and not counted
            elif not self._core.enqueue(waiter, cost):
                refused = True
        if blocked and blocking is not None:
            raise blocking_on_loop(self._kind, self.name, *blocking)
        if refused:
            raise self._refusal()
        return QUEUED

    def _settle(self, waiter: Waiter) -> int:
        """
        After a wait ended normally: keep the permit or report a timeout.
        """
        with self._lock:
            token, served = self._core.withdraw(waiter, refused=True)
        if served:
            self._wake(served)
        if not token:
            raise self._refusal()
        return token

    def _keep(self, token: int, anonymous: bool) -> int:
        """
        Keep the permit *token*, made anonymous for the faces that count
        permits only (see the core).
        """
        if anonymous:
            with self._lock:
                self._core.anonymize(token)
        return token

    def _abandon(self, waiter: Waiter) -> None:
        """
        Leave the queue; a permit that reached us meanwhile goes on (and
        so does what we had reserved at its head).
        """
        with self._lock:
            token, served = self._core.withdraw(waiter, refused=False)
            if token:
                served = self._core.give_back(token)
        if served:
            self._wake(served)

    def _wake(self, served: list[Waiter]) -> None:
        wake(served, self._gone)

    def _gone(self, waiter: Waiter) -> list[Waiter] | None:
        """
        Hand on the permit given to a waiter whose event loop is closed:
        it will never take it.
        """
        with self._lock:
            token, _ = self._core.withdraw(waiter, refused=False)
            return self._core.give_back(token)

    # -- refusals --------------------------------------------------------

    def _full(self) -> BulkheadFullError:
        """
        Return the error for a refusal (each shell says what it is full of).
        """
        raise AssertionError("unreachable")  # every shell defines it

    def _refusal(self) -> BulkheadFullError:
        return self._refused(self._full())

    def _refused(self, error: BulkheadFullError) -> BulkheadFullError:
        """
        Report *error*, a refusal, to the hooks and return it.
        """
        hooks = self._live.all
        if hooks:
            emit(
                hooks,
                CallRejected(
                    primitive_name=self.name, at=self.clock.now(), error=error
                ),
            )
        return error
