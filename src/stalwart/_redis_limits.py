"""
A rate limiter's store on Redis: the operations of
:class:`~stalwart._stores.MemoryStore` (see the interface in
:mod:`stalwart._stores`), each one run of ``_redis_limits.lua``.

One function serves every algorithm (a Redis Functions library, loaded
once; a script on a server without functions): the limiter's algorithm
is sent as one argument (its kind and parameters, per rate), the
function applies the arithmetic of :mod:`stalwart._core.limits` to the
key's state atomically and answers in one round trip.

Reservations across processes.  A booked wait is a queue entry on the
server (``{key}:q``); its caller sleeps on its own clock until the slot.
Cancelling it books the waiters behind it again (their slots only move
earlier); the callers in this process are woken, those in other
processes are not, and are served at their old slot, which is still
within the limit.  A reservation is admitted once: when its slot comes,
the entry is dropped, and a cancelled one is taken out of the queue.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import threading
import weakref

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, cast

from ._core.limits import (
    INF,
    Algorithm,
    BucketAlgorithm,
    FixedWindowAlgorithm,
    MultiRateAlgorithm,
    ShaperAlgorithm,
    SlidingWindowCounterAlgorithm,
)
from ._errors import StoreUnavailableError
from ._redis import _DOWN, Function, Unavailable
from ._stores import Outcome, Reservation


if TYPE_CHECKING:
    from ._redis import RedisStore

SCRIPT = Function(
    (pathlib.Path(__file__).with_name("_redis_limits.lua")).read_text()
)

# How many keys' names a store keeps built (then it starts afresh).
_KEYS_KEPT = 1024

# How many numbers a part's mark takes, by kind.
_WIDTH = {"bucket": 3, "shaper": 2, "fixed": 2, "counter": 4, "log": 1}


def _parts(algorithm: Algorithm[Any]) -> list[tuple[str, tuple[float, ...]]]:
    """
    Each rate's kind and its four parameters, as the script reads them.
    """
    parts = (
        algorithm.parts
        if isinstance(algorithm, MultiRateAlgorithm)
        else (algorithm,)
    )
    out: list[tuple[str, tuple[float, ...]]] = []
    for part in parts:
        if isinstance(part, BucketAlgorithm | ShaperAlgorithm):
            kind = "bucket" if isinstance(part, BucketAlgorithm) else "shaper"
            out.append((kind, (part.rate, part.capacity, part.top, part.eps)))
        else:
            kind = (
                "fixed"
                if isinstance(part, FixedWindowAlgorithm)
                else "counter"
                if isinstance(part, SlidingWindowCounterAlgorithm)
                else "log"
            )
            out.append((kind, (part.quota, part.period, part.top, 0.0)))
    return out


def _num(value: float) -> str:
    return repr(float(value))


class RemoteReservation(Reservation):
    """
    A reservation booked on the server.

    Attributes:
        id: Its queue entry's name.
        keys: The keys of its state.
        at: Its slot on the store's timeline (:attr:`slot` is on the
            caller's clock: the same, unless the store uses the server's
            time).
    """

    __slots__ = ("__weakref__", "at", "id", "keys")

    def __init__(  # noqa: PLR0917  # one per attribute
        self,
        id: str,  # noqa: A002  # the queue entry's name
        keys: list[str | bytes],
        cost: float,
        slot: float,
        at: float,
        before: list[float],
        after: list[float],
    ) -> None:
        self.id = id
        self.keys = keys
        self.cost = cost
        self.slot = slot
        self.at = at
        self.before = before
        self.after = after
        self.waker = None


class RedisLimiterStore:
    """
    One limiter's keys in a :class:`~stalwart.redis.RedisStore`.

    Counters (granted, refused) are this process's; the number of keys
    held is 0: the state is on the server.
    """

    def __init__(
        self, store: RedisStore, algorithm: Algorithm[Any], limiter: Any
    ) -> None:
        self.store = store
        self.algorithm = algorithm
        self.limiter = limiter
        parts = _parts(algorithm)
        self._logs = sum(kind == "log" for kind, _ in parts)
        self._width = sum(_WIDTH[kind] for kind, _ in parts)
        params = [str(len(parts))]
        for kind, values in parts:
            params += [kind, *map(_num, values)]
        self._params = (" ".join(params),)
        self._built: dict[Hashable | None, list[str | bytes]] = {}
        self._server_time = store.time == "server"
        self._lock = threading.Lock()
        self.granted = 0
        self.refused = 0
        self._ids = itertools.count()
        self._token = f"{os.urandom(4).hex()}.{os.getpid()}"
        self._live: weakref.WeakValueDictionary[str, RemoteReservation] = (
            weakref.WeakValueDictionary()
        )

    def __len__(self) -> int:
        return 0

    def counts(self) -> tuple[int, int]:
        """
        ``(granted, refused)`` by this process.
        """
        with self._lock:
            return self.granted, self.refused

    def _count(self, granted: bool) -> None:
        with self._lock:
            if granted:
                self.granted += 1
            else:
                self.refused += 1

    # -------------------------------------------------------- arguments

    def _keys(self, key: Hashable | None) -> list[str | bytes]:
        built = self._built
        try:
            return built[key]
        except KeyError:
            pass
        keys = self._new_keys(key)
        if len(built) >= _KEYS_KEPT:
            built.clear()
        built[key] = keys
        return keys

    def _new_keys(self, key: Hashable | None) -> list[str | bytes]:
        base = self.store._key("rl", self.limiter.name, key)
        if isinstance(base, bytes):
            keys: list[str | bytes] = [base, base + b":q"]
            keys += [base + f":log{i}".encode() for i in range(self._logs)]
        else:
            keys = [base, base + ":q"]
            keys += [f"{base}:log{i}" for i in range(self._logs)]
        return keys

    def _args(self, op: str, now: float, *more: str) -> tuple[str, ...]:
        return (
            op,
            "" if self._server_time else _num(now),
            *self._params,
            *more,
        )

    def _new_id(self) -> str:
        pid = os.getpid()
        if not self._token.endswith(f".{pid}"):  # a forked child
            self._token = f"{os.urandom(4).hex()}.{pid}"
        return f"{self._token}.{next(self._ids)}"

    @staticmethod
    def _local(now: float, server_now: float, at: float) -> float:
        """
        *at* on the server's timeline, on the caller's clock.
        """
        return now + (at - server_now)

    def _fail(
        self, unavailable: Unavailable, now: float, *, refuse: bool
    ) -> None:
        limiter = self.limiter
        self.store._fallback(
            unavailable,
            primitive="rate_limiter",
            name=limiter.name,
            hooks=limiter._live.all,
            at=now,
            refuse=refuse,
        )

    def _degraded(self, unavailable: Unavailable, now: float) -> Outcome:
        """
        A request decided by the policy: admitted (counted as granted),
        or refused (counted as refused) with the error raised.
        """
        try:
            self._fail(unavailable, now, refuse=True)
        except StoreUnavailableError:
            self._count(False)
            raise
        self._count(True)
        return self._open()

    def _open(self) -> Outcome:
        """
        The outcome of a request admitted without the server.
        """
        limit = self.algorithm.limit
        return True, -INF, limit, 0.0, limit, None

    # ------------------------------------------------------- operations

    def _decided(
        self,
        keys: list[str | bytes],
        now: float,
        cost: float,
        id: str,  # noqa: A002
        answer: Sequence[Any],
    ) -> Outcome:
        granted = answer[0] == 1
        at = now
        reservation = None
        if len(answer) > 4:  # refused, booked for later, or server time
            at = server_at = float(answer[4])
            server_now = float(answer[5])
            if self._server_time:
                at = self._local(now, server_now, at)
            if granted and server_at > server_now:
                width = self._width
                marks = [float(x) for x in answer[6 : 6 + 2 * width]]
                reservation = RemoteReservation(
                    id, keys, cost, at, server_at, marks[:width], marks[width:]
                )
                self._live[id] = reservation
        self._count(granted)
        return (
            granted,
            at,
            int(float(answer[1])),
            float(answer[3]),
            int(float(answer[2])),
            reservation,
        )

    def _decide_args(
        self, key: Hashable | None, now: float, cost: float, max_wait: float
    ) -> tuple[list[str | bytes], tuple[str, ...], str]:
        keys = self._keys(key)
        # Without a wait nothing is booked: no name, nothing to take back.
        id = self._new_id() if max_wait > 0.0 else ""  # noqa: A001
        args = self._args("decide", now, _num(cost), _num(max_wait), id)
        return keys, args, id

    def decide(
        self, key: Hashable | None, now: float, cost: float, max_wait: float
    ) -> Outcome:
        """
        Grant, book or refuse *cost* for *key* (see :mod:`stalwart._stores`).
        """
        keys, args, id = self._decide_args(key, now, cost, max_wait)  # noqa: A001
        try:
            answer = self.store._run(SCRIPT, keys, args)
        except Unavailable as unavailable:
            return self._degraded(unavailable, now)
        except BaseException:
            # Interrupted with the answer on its way: a booking made
            # meanwhile is taken back (a grant at once stays consumed).
            if id:
                self._run_quietly(keys, self._args("cancel", now, id), now)
            raise
        return self._decided(keys, now, cost, id, answer)

    async def adecide(
        self, key: Hashable | None, now: float, cost: float, max_wait: float
    ) -> Outcome:
        """
        :meth:`decide` on the async client.
        """
        keys, args, id = self._decide_args(key, now, cost, max_wait)  # noqa: A001
        try:
            answer = await self.store._arun(SCRIPT, keys, args)
        except Unavailable as unavailable:
            return self._degraded(unavailable, now)
        except BaseException:
            # As in decide(); the task goes on being cancelled after it.
            if id:
                forget = self._args("cancel", now, id)
                try:
                    await self.store._arun(SCRIPT, keys, forget)
                except Unavailable as unavailable:
                    self._fail(unavailable, now, refuse=False)
            raise
        return self._decided(keys, now, cost, id, answer)

    def _run_quietly(
        self, keys: list[str | bytes], args: tuple[str, ...], now: float
    ) -> None:
        try:
            self.store._run(SCRIPT, keys, args)
        except Unavailable as unavailable:
            self._fail(unavailable, now, refuse=False)

    def refuse(self, key: Hashable | None, now: float) -> None:
        """
        Count a request refused without asking the server.
        """
        self._keys(key)  # a key of the wrong type says so
        self._count(False)

    def peek(self, key: Hashable | None, now: float, cost: float) -> Outcome:
        """
        What :meth:`decide` would return with no wait, changing nothing.
        """
        try:
            answer = self.store._run(
                SCRIPT, self._keys(key), self._args("peek", now, _num(cost))
            )
        except Unavailable as unavailable:
            self._fail(unavailable, now, refuse=True)
            return self._open()
        at = float(answer[1])
        if self._server_time:
            at = self._local(now, float(answer[5]), at)
        return (
            answer[0] == b"1",
            at,
            int(float(answer[2])),
            float(answer[3]),
            int(float(answer[4])),
            None,
        )

    def remaining(self, now: float) -> int | None:
        """
        The default key's room for requests of cost one, or ``None`` when
        the server cannot say (unreachable, or no sync client): read for
        statistics, so neither a decision nor a degraded one.
        """
        if self.store.client is None:
            return None
        try:
            answer = self.store._run(
                SCRIPT, self._keys(None), self._args("peek", now, _num(1.0))
            )
        except Unavailable:
            return None
        granted: bool = answer[0] == b"1"
        return int(float(answer[2])) + granted

    def _cancel_args(
        self, reservation: RemoteReservation, now: float
    ) -> tuple[str, ...]:
        return self._args(
            "cancel",
            now,
            reservation.id,
            _num(reservation.cost),
            _num(reservation.at),
            *map(_num, reservation.before),
            *map(_num, reservation.after),
        )

    def _moved(self, now: float, answer: Sequence[bytes]) -> list[Reservation]:
        """
        Update this process's reservations that were booked again; return
        those whose slots moved.
        """
        server_now = float(answer[0])
        width = self._width
        moved: list[Reservation] = []
        step = 3 + 2 * width
        for i in range(2, len(answer), step):
            reservation = self._live.get(answer[i].decode())
            if reservation is None:
                continue  # another process's, or already served
            at = float(answer[i + 1])
            marks = [float(x) for x in answer[i + 3 : i + step]]
            reservation.at = at
            reservation.before = marks[:width]
            reservation.after = marks[width:]
            if answer[i + 2] == b"1":
                reservation.slot = (
                    self._local(now, server_now, at)
                    if self._server_time
                    else at
                )
                moved.append(reservation)
        return moved

    def _cancelled(self, reservation: Reservation) -> None:
        with self._lock:
            self.granted -= 1
        self._live.pop(reservation.id, None)  # type: ignore[attr-defined]  # a RemoteReservation

    def cancel(
        self, reservation: Reservation, now: float
    ) -> list[Reservation]:
        """
        Give *reservation* back; return this process's reservations whose
        slots moved.  If the server cannot be reached, the booking stays
        (and is served or expires); the event says so.
        """
        reservation = cast("RemoteReservation", reservation)  # its own
        self._cancelled(reservation)
        try:
            answer = self.store._run(
                SCRIPT, reservation.keys, self._cancel_args(reservation, now)
            )
        except Unavailable as unavailable:
            self._fail(unavailable, now, refuse=False)
            return []
        return self._moved(now, answer)

    async def acancel(
        self, reservation: Reservation, now: float
    ) -> list[Reservation]:
        """
        :meth:`cancel` on the async client.
        """
        reservation = cast("RemoteReservation", reservation)  # its own
        self._cancelled(reservation)
        try:
            answer = await self.store._arun(
                SCRIPT, reservation.keys, self._cancel_args(reservation, now)
            )
        except Unavailable as unavailable:
            self._fail(unavailable, now, refuse=False)
            return []
        return self._moved(now, answer)

    def _reset_keys(
        self, keys: Sequence[str | bytes], now: float
    ) -> list[Reservation]:
        try:
            answer = self.store._run(SCRIPT, keys, self._args("reset", now))
        except Unavailable as unavailable:
            self._fail(unavailable, now, refuse=False)
            raise unavailable.cause from None
        return self._moved(now, answer)

    def reset(self, key: Hashable | None, now: float) -> list[Reservation]:
        """
        Forget *key*'s state; book its queued reservations again.  Raises
        the connection error if the server cannot be reached.
        """
        return self._reset_keys(self._keys(key), now)

    def clear(self, now: float) -> list[Reservation]:
        """
        Forget every key's state (one key after the other, not atomically
        across keys).
        """
        moved = self.reset(None, now)
        default = cast("str", self._keys(None)[0])  # the default key's: a str
        pattern = _glob(default[:-1]) + ":*}"
        client = self.store._sync_client()
        try:
            found = list(client.scan_iter(match=pattern, count=1000))
        except _DOWN as error:
            self._fail(Unavailable(error), now, refuse=False)
            raise
        # The pattern ends with the brace: a state's key, never a suffix.
        for base in found:
            keys = [base, base + b":q"]
            keys += [base + f":log{i}".encode() for i in range(self._logs)]
            moved += self._reset_keys(keys, now)
        return moved


def _glob(text: str) -> str:
    """
    *text* as a literal in a ``SCAN MATCH`` pattern.
    """
    for special in "\\*?[]":
        text = text.replace(special, "\\" + special)
    return text
