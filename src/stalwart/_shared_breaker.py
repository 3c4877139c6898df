"""
A circuit breaker whose state is shared by a fleet of processes, in a
store (:class:`~stalwart.redis.RedisStore`).

``CircuitBreaker(..., store=store)`` builds a :class:`SharedCircuitBreaker`
(see ``CircuitBreaker.__new__``): the same settings, faces and events, but
every decision that changes the state is one run of
``_redis_breaker.lua`` (the in-memory breaker's state machine, in Lua) on
the server, atomic for the whole fleet.

Round trips.  Each process keeps a *view* of the fleet's state: the state,
its generation and, while OPEN, the end of the open period, refreshed by
the reply to every script it runs.  A call is admitted or refused from
the view while the view is at most ``max_staleness`` seconds old (read
on the breaker's clock, from the moment the request that refreshed it
was sent):

* CLOSED (DISABLED, METRICS_ONLY): admitted without asking; its outcome
  is one round trip (``record``), whose reply refreshes the view.  A
  DISABLED breaker records nothing: no round trip at all.
* OPEN before the end of its open period, FORCED_OPEN: refused without
  asking.
* HALF_OPEN, OPEN once its period is over, or a view too old: one round
  trip (``admit``) decides; a trial's outcome is one more.

So a busy closed breaker costs one round trip per call, an open one none,
and a process acts on the state the fleet had when it last heard from the
server, at most ``max_staleness`` seconds earlier (plus the reply's
travel time).  A call's outcome counts toward the
state only if no transition happened since it was admitted (its epoch is
the current generation), as in the in-memory breaker.

The trial slots are taken on the server, so at most
``half_open_max_calls`` trials run fleet-wide per half-open period.  A
trial whose process died never reports: the half-open wait is always
bounded (``half_open_max_wait``, else ``recovery_time`` with a floor of
one second), after which the breaker goes back to OPEN as of the end of
the wait, and a new period starts with fresh slots.

Totals (successes, failures, slow calls, ignored, rejected) are this
process's; everything describing the state (state, window, rates, trips,
open period, trial slots, transitions) is the fleet's, read from the
server by ``state`` and ``statistics()``.
"""

from __future__ import annotations

import asyncio
import math
import pathlib
import threading

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, cast, final

from ._circuit_breaker import (
    _IGNORED,
    CircuitBreaker,
    CircuitBreakerStatistics,
    CountWindow,
    TimeWindow,
    _value,
)
from ._core.circuit import (
    _ADMITTING,
    FORCED_OPEN,
    OPEN,
    CircuitState,
    window_rates,
)
from ._core.windows import FAILURE, SLOW
from ._errors import StoreUnavailableError
from ._faces import NO_RESULT, GuardBlocks, guard_acall, guard_call
from ._faces import guard_decorate as _decorate
from ._redis import Unavailable
from ._typing import P, T


if TYPE_CHECKING:
    from ._redis import RedisStore


SCRIPT = pathlib.Path(__file__).with_name("_redis_breaker.lua").read_text()
"""The breaker's script: every decision of a shared breaker."""

DEFAULT_STALENESS: Final = 1.0
"""``max_staleness`` of a shared breaker, by default (seconds)."""

MIN_TRIAL_WAIT: Final = 1.0
"""The shortest half-open wait of a shared breaker without
``half_open_max_wait`` (its ``recovery_time`` otherwise)."""

IDLE_TTL: Final = 86_400.0
"""A closed breaker that nobody used for this long is forgotten (its
keys expire): a day."""

_UNRECORDED: Final = -1
"""The epoch of a call admitted without the store (``fail_open``): its
outcome is not recorded."""

_STATES: dict[bytes | str, CircuitState] = {
    name: state
    for state in CircuitState
    for name in (state.value, state.value.encode())
}
"""The states by the script's names for them, as bytes or as str (a
client built with ``decode_responses=True``)."""

_ACTIONS = {
    "force_open": "force_open",
    "disable": "disabled",
    "metrics_only": "metrics_only",
    "reset": "reset",
}
"""The core's control methods, by the script's name for them."""

_NEVER: Final = (CircuitState.CLOSED, -1, -math.inf, -math.inf, None)
"""A view that is always too old: the first decision asks the server."""

_ORDER = (
    CircuitState.CLOSED,
    CircuitState.OPEN,
    CircuitState.HALF_OPEN,
    CircuitState.FORCED_OPEN,
    CircuitState.DISABLED,
    CircuitState.METRICS_ONLY,
)
"""The states in the order the script counts their entries."""

_View = tuple[CircuitState, int, float, float, bytes | str | None]
"""``(state, generation, refuse_until, fresh_until, incarnation)``, times
on the breaker's clock."""


@final
class _Totals:
    """This process's counts of outcomes, under a lock."""

    __slots__ = ("failures", "ignored", "lock", "slow_calls", "successes")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.successes = self.failures = self.slow_calls = self.ignored = 0


@final
class _Link:
    """
    What a shared breaker holds besides its settings: the store, its keys
    and script, the settings as script arguments, the view and the totals.
    """

    __slots__ = (
        "keys",
        "lock",
        "minimum",
        "pending",
        "script",
        "settings",
        "staleness",
        "store",
        "totals",
        "view",
    )

    def __init__(self, breaker: SharedCircuitBreaker) -> None:
        store = cast("RedisStore", breaker.store)
        self.store = store
        key = store._key("breaker", breaker.name, None)
        window = (
            key + b":window" if isinstance(key, bytes) else key + ":window"
        )
        self.keys = (key, window)
        self.script = store._script(SCRIPT)
        self.settings, self.minimum = _settings(breaker)
        staleness = breaker.max_staleness
        self.staleness = DEFAULT_STALENESS if staleness is None else staleness
        self.lock = threading.Lock()
        self.view: _View = _NEVER
        self.totals = _Totals()
        # Slots being given back from tasks (see _undo): kept alive here.
        self.pending: set[asyncio.Task[None]] = set()


def _settings(breaker: CircuitBreaker) -> tuple[tuple[str, str, str], int]:
    """
    The script's arguments 3 to 5, from the breaker's settings (the
    window's kind, the idle expiry in ms, and the rest in one string), and
    the calls a rate needs.
    """
    window = breaker.window
    if isinstance(window, CountWindow):
        ring, size, width = "count", window.size, 0.0
        minimum = breaker.minimum_calls or window.size
    elif isinstance(window, TimeWindow):
        ring, size = "time", window.buckets
        width = window.length / window.buckets
        minimum = breaker.minimum_calls or 10
    else:
        ring, size, width, minimum = "none", 0, 0.0, 1
    if breaker.failure_threshold is None:
        threshold = 0
    else:
        threshold = breaker.failure_threshold
        minimum = 1
    wait = breaker.half_open_max_wait
    if wait is None:
        wait = max(breaker.recovery_time, MIN_TRIAL_WAIT)
    recovery = breaker.recovery_time
    cap = recovery if breaker.recovery_max is None else breaker.recovery_max
    rest = (
        threshold,
        breaker.failure_rate or 0.0,
        breaker.slow_call_rate or 0.0,
        size,
        width,
        minimum,
        recovery,
        breaker.recovery_multiplier,
        cap,
        breaker.half_open_max_calls,
        breaker.success_threshold,
        wait,
    )
    idle = str(int(IDLE_TTL * 1000))
    return (ring, idle, " ".join(map(repr, rest))), minimum


class SharedCircuitBreaker(GuardBlocks, CircuitBreaker):
    """
    A :class:`~stalwart.CircuitBreaker` built with a *store*: see the
    module's docstring.  Every face goes through the guard's steps
    (``_enter`` / ``_aenter``...), the sync ones on the store's sync
    client and the async ones on its async client.
    """

    __slots__ = ("_link",)

    _link: _Link

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        object.__setattr__(self, "_link", _Link(self))

    # --- the view ----------------------------------------------------------

    def _args(self, op: str, now: float, *extra: object) -> list[object]:
        link = self._link
        when = "" if link.store.time == "server" else repr(now)
        return [op, when, *link.settings, *extra]

    def _apply(self, reply: Sequence[Any], now: float) -> tuple[int, Any]:
        """
        Refresh the view from *reply* (a request sent at *now*), queue the
        transitions it reports and deliver them; return the decision and
        the refusal's ``retry_after``.
        """
        decision, state_name, generation, incarnation = reply[:4]
        remaining, retry, then, transitions = reply[4:8]
        state = _STATES[state_name]
        if state is OPEN:
            refuse_until = now + float(remaining)
        elif state is FORCED_OPEN:
            refuse_until = math.inf
        else:
            refuse_until = -math.inf
        link = self._link
        view = (state, generation, refuse_until, now + link.staleness)
        with link.lock:
            old = link.view
            # Replies of concurrent calls may arrive out of order: a newer
            # generation wins, unless the state was created afresh.
            if generation >= old[1] or incarnation != old[4]:
                link.view = (*view, incarnation)
        if transitions and self._hooked:
            # Transitions happened on the server's timeline: shift them to
            # this breaker's clock (the same one with time="clock").
            offset = now - float(then)
            queue = self._events.queue
            for index in range(0, len(transitions), 4):
                previous, entered, at, recovery = transitions[
                    index : index + 4
                ]
                queue.append(
                    (
                        _STATES[previous],
                        _STATES[entered],
                        float(at) + offset,
                        float(recovery),
                    )
                )
            self._events.deliver()
        return decision, float(retry) if retry else None

    def _local(self, now: float) -> int | None:
        """
        Admit or refuse a call from the view, if it is fresh enough:
        return its epoch, raise, or return ``None`` to ask the server.
        """
        state, generation, refuse_until, fresh_until, _ = self._link.view
        if now >= fresh_until:
            return None
        if state in _ADMITTING:
            return generation << 1
        if now < refuse_until:
            raise self._refuse(now, refuse_until - now)
        return None

    def _admitted(self, reply: Sequence[Any], now: float) -> int:
        # A trial's epoch is odd: giving it back frees its slot.
        epoch: int = int(reply[2]) << 1 | (reply[0] == 2)
        try:
            decision, retry_after = self._apply(reply, now)
        except BaseException:
            # A hook raised while the transitions were delivered: the
            # call will not run, so its slot goes back to the fleet.
            self._undo(epoch)
            raise
        if decision == 0:
            raise self._refuse(now, retry_after)
        return epoch

    def _down(self, error: Unavailable, now: float, admitting: bool) -> None:
        """
        Apply the store's policy to a decision the server could not make
        (forget the view: the next call asks again).  When an outcome
        could not be recorded (*admitting* false) the call has run: a
        ``fail_closed`` policy loses the outcome, never the result.
        """
        self._link.view = _NEVER
        try:
            self._link.store._fallback(
                error,
                primitive="circuit_breaker",
                name=self.name,
                hooks=self._hooked,
                at=now,
            )
        except StoreUnavailableError:
            if admitting:
                next(self._rejected)
                raise

    def _stamp(self, epoch: int) -> Any:
        if self._timed:
            return epoch, self.clock.now()
        return epoch

    # --- the guard's steps -------------------------------------------------

    def _enter(self) -> Any:
        now = self.clock.now()
        epoch = self._local(now)
        if epoch is None:
            link = self._link
            try:
                reply = link.store._run(
                    link.script, link.keys, self._args("admit", now)
                )
            except Unavailable as error:
                self._down(error, now, admitting=True)
                epoch = _UNRECORDED
            else:
                epoch = self._admitted(reply, now)
        return self._stamp(epoch)

    async def _aenter(self) -> Any:
        now = self.clock.now()
        epoch = self._local(now)
        if epoch is None:
            link = self._link
            try:
                reply = await link.store._arun(
                    link.script, link.keys, self._args("admit", now)
                )
            except Unavailable as error:
                self._down(error, now, admitting=True)
                epoch = _UNRECORDED
            else:
                epoch = self._admitted(reply, now)
        return self._stamp(epoch)

    def _verdict(self, exc: BaseException | None, result: object) -> int:
        """
        Classify an outcome: ``FAILURE``, ``0`` (a success) or ``_IGNORED``;
        what a predicate raises goes through.
        """
        if exc is not None:
            return self._classify(exc)
        check = self.failure_result
        if result is NO_RESULT or check is None:
            return 0
        return FAILURE if check(result) else 0

    def _exit(
        self, token: Any, exc: BaseException | None, result: object
    ) -> None:
        epoch, start = token if isinstance(token, tuple) else (token, None)
        try:
            flags = self._verdict(exc, result)
        except BaseException:
            self._release(epoch, start)
            raise
        if flags == _IGNORED:
            self._release(epoch, start, exc)
        else:
            self._finish(epoch, start, flags, exc)

    async def _aexit(
        self, token: Any, exc: BaseException | None, result: object
    ) -> None:
        epoch, start = token if isinstance(token, tuple) else (token, None)
        try:
            flags = self._verdict(exc, result)
        except BaseException:
            await self._arelease(epoch, start)
            raise
        if flags == _IGNORED:
            await self._arelease(epoch, start, exc)
        else:
            await self._afinish(epoch, start, flags, exc)

    def _undo(self, token: Any) -> None:
        epoch = token[0] if isinstance(token, tuple) else token
        if epoch > 0 and epoch & 1:
            now = self.clock.now()
            args = self._args("release", now, epoch >> 1)
            if self._link.store.client is not None:
                self._send(args, now)
                return
            # Only an async client, so this is an async face (a sync one
            # could not have taken the slot): the slot goes back from a
            # task on the running loop (the guard's _undo cannot wait).
            task = asyncio.get_running_loop().create_task(
                self._asend(args, now)
            )
            pending = self._link.pending
            pending.add(task)
            task.add_done_callback(pending.discard)

    # --- outcomes ----------------------------------------------------------

    def _outcome(
        self,
        epoch: int,
        start: float | None,
        flags: int,
        error: BaseException | None,
    ) -> tuple[float, list[object] | None]:
        """
        Count an outcome in this process's totals (and post its per-call
        event); return the time and the script's arguments to record it,
        ``None`` when nothing is to be recorded.
        """
        now = self.clock.now()
        slow_after = self.slow_call_duration
        if slow_after is not None and now - cast("float", start) >= slow_after:
            flags |= SLOW
        totals = self._link.totals
        with totals.lock:
            if flags & FAILURE:
                totals.failures += 1
            else:
                totals.successes += 1
            totals.slow_calls += (flags & SLOW) >> 1
        if self._observed:
            outcome = "failure" if flags & FAILURE else "success"
            # Delivered once the outcome is recorded (before the
            # transition it caused): a hook cannot stop the recording.
            self._events.post(self._call_finished(now, start, outcome, error))
        # Disabled, the fleet records nothing (the totals are this
        # process's, counted above).
        if epoch < 0 or self._link.view[0] is CircuitState.DISABLED:
            return now, None
        return now, self._args("record", now, epoch >> 1, flags)

    def _success(self, epoch: int, start: float | None) -> None:
        self._finish(epoch, start, 0)

    def _finish(
        self,
        epoch: int,
        start: float | None,
        flags: int,
        error: BaseException | None = None,
    ) -> None:
        now, args = self._outcome(epoch, start, flags, error)
        if args is not None:
            self._send(args, now)
        self._deliver()

    async def _afinish(
        self,
        epoch: int,
        start: float | None,
        flags: int,
        error: BaseException | None = None,
    ) -> None:
        now, args = self._outcome(epoch, start, flags, error)
        if args is not None:
            await self._asend(args, now)
        self._deliver()

    def _given_back(
        self, epoch: int, start: float | None, error: BaseException | None
    ) -> tuple[float, list[object] | None]:
        """
        Count a call that was neither a success nor a failure; return the
        script's arguments to free its trial slot, if it held one.
        """
        totals = self._link.totals
        with totals.lock:
            totals.ignored += 1
        now = self.clock.now()
        if self._observed:
            self._events.post(
                self._call_finished(now, start, "ignored", error)
            )
        if epoch > 0 and epoch & 1:
            return now, self._args("release", now, epoch >> 1)
        return now, None

    def _release(
        self,
        epoch: int,
        start: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        now, args = self._given_back(epoch, start, error)
        if args is not None:
            self._send(args, now)
        self._deliver()

    async def _arelease(
        self,
        epoch: int,
        start: float | None = None,
        error: BaseException | None = None,
    ) -> None:
        now, args = self._given_back(epoch, start, error)
        if args is not None:
            await self._asend(args, now)
        self._deliver()

    def _deliver(self) -> None:
        """
        Hand the queued per-call events to the hooks (the transitions
        were delivered with them, by :meth:`_apply`).
        """
        if self._events.queue:
            self._events.deliver()

    def _send(self, args: list[object], now: float) -> None:
        """
        Run the script with *args* on the sync client and apply the reply;
        a store that cannot be reached loses the outcome (or raises, by
        its policy).
        """
        link = self._link
        try:
            reply = link.store._run(link.script, link.keys, args)
        except Unavailable as error:
            self._down(error, self.clock.now(), admitting=False)
        else:
            self._apply(reply, now)

    async def _asend(self, args: list[object], now: float) -> None:
        """
        The async twin of :meth:`_send`.
        """
        link = self._link
        try:
            reply = await link.store._arun(link.script, link.keys, args)
        except Unavailable as error:
            self._down(error, self.clock.now(), admitting=False)
        else:
            self._apply(reply, now)

    # --- faces -------------------------------------------------------------

    def call(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        return guard_call(self, fn, args, kwargs)

    async def acall(
        self,
        fn: Callable[P, Awaitable[T]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        return await guard_acall(self, fn, args, kwargs)

    def __call__(self, fn: Callable[P, T], /) -> Callable[P, T]:
        return _decorate(self, fn)

    # --- reading and control -----------------------------------------------

    def _read(
        self, op: str, *extra: object, strict: bool = False
    ) -> tuple[float, Any]:
        """
        Run *op* on the sync client and apply its reply: return the time
        and the reply, or ``None`` for a server that could not be reached
        (by a policy that lets the caller go on, unless *strict*: then
        :class:`~stalwart.StoreUnavailableError`).
        """
        now = self.clock.now()
        link = self._link
        try:
            reply = link.store._run(
                link.script, link.keys, self._args(op, now, *extra)
            )
        except Unavailable as error:
            self._down(error, now, admitting=False)
            if strict:
                raise StoreUnavailableError(
                    self.name, link.store.name
                ) from error.cause
            return now, None
        self._apply(reply, now)
        return now, reply

    @property
    def state(self) -> CircuitState:
        """
        The fleet's state, read from the server (one round trip); the
        state this process last saw when the server cannot be reached.
        """
        _, reply = self._read("read")
        return self._link.view[0] if reply is None else _STATES[reply[1]]

    def _control(self, action: Callable[[float], None]) -> None:
        # The fleet must hear a manual action, or its caller must know.
        self._read("control", _ACTIONS[action.__name__], strict=True)

    def statistics(self) -> CircuitBreakerStatistics:
        """
        Return the fleet's state (one round trip) with this process's
        totals.
        """
        now, reply = self._read("read")
        totals = self._link.totals
        cells = self._fast[2]()
        if reply is None:
            state, numbers, open_until = self._link.view[0], [0] * 16, None
        else:
            state, stats = _STATES[reply[1]], reply[8]
            numbers = [0 if i == 5 else int(n) for i, n in enumerate(stats)]
            # On this breaker's clock, as the transitions' times are.
            open_until = now + float(stats[5]) - float(reply[6])
        streak, calls, failures, slow, trips = numbers[:5]
        taken = numbers[6]
        if self.window is None:
            calls = failures = slow = 0
        elif state is CircuitState.HALF_OPEN:
            calls, failures, slow = numbers[7:10]
        failure_rate, slow_rate = window_rates(
            state,
            (calls, failures, slow),
            windowed=self.window is not None,
            minimum_calls=self._link.minimum,
            slow_rated=self.slow_call_rate is not None,
        )
        with totals.lock:
            return CircuitBreakerStatistics(
                name=self.name,
                state=state,
                successes=totals.successes,
                failures=totals.failures,
                slow_calls=totals.slow_calls,
                ignored=totals.ignored,
                rejected=_value(self._rejected) + cells[1],
                consecutive_failures=streak,
                window_calls=calls,
                window_failures=failures,
                window_slow_calls=slow,
                failure_rate=failure_rate,
                slow_call_rate=slow_rate,
                trips=trips,
                open_until=open_until if state is OPEN else None,
                half_open_calls=(
                    taken if state is CircuitState.HALF_OPEN else 0
                ),
                transitions=dict(
                    zip(
                        (s.value for s in _ORDER),
                        numbers[10:16],
                        strict=True,
                    )
                ),
            )

    _kind: ClassVar[str] = "CircuitBreaker"
