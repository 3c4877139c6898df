"""
Connections a :class:`~stalwart.redis.RedisStore` keeps checked out of
its clients' pools, to send its scripts on.

A command sent through ``client.execute_command`` checks a connection out
of the pool and back in every time: the pool tests the process id, tests
that the connection has nothing left to read (a ``poll``), and keeps its
books (redis-py 8 also times the call for its own metrics).  On loopback
that costs more than the round trip itself.  A store sends a decision on
a connection it keeps instead, and reads the answer off it: the same
parsing and socket timeouts as the client's, without the checkout.
Commands are packed by hiredis when it is installed (as redis-py's sync
connections pack them; its async ones pack in pure Python, several times
slower).  A client whose ``execute_command`` is not redis-py's own (a
subclass's, one set on the instance, one wrapped by an instrumentation
such as OpenTelemetry's) keeps its own path: the store never goes around
code the user put there.

A connection is kept only while it is clean.  After an answer read whole
(an error answer such as ``NOSCRIPT`` is read whole too) it goes back to
the store's list; after any other failure redis-py has disconnected it,
and it connects again when it is next used.  A connection found broken
(the server restarted since its last use) gets the command once more
through the client's own path, with the client's retry policy; a timeout
is never sent again.

The connections stay the pool's: checked out with ``get_connection()``
(so ``max_connections`` counts them), given back by
:meth:`KeptConnections.release` / :meth:`KeptConnections.arelease`, and
closed with the client.  A store keeps at most ``_KEEP`` connections (and
never more than half the pool's ``max_connections``); callers beyond that
use the client's path.  Async connections belong to the event loop that
opened them, so they are kept per loop.  A child process made by
``fork()`` forgets the connections of its parent (they are the parent's
sockets); the pool does the same by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import types
import weakref

from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError


# How many connections one store keeps out of one pool, at most.
_KEEP = 8


def python_pack(conn: Any, command: tuple[Any, ...]) -> Any:
    """
    *command* in the wire format (a list of bytes), by *conn*'s own
    packer.
    """
    return conn.pack_command(*command)


try:
    import hiredis
except ImportError:  # pragma: no cover  # hiredis is in the test extra
    pack = python_pack
else:

    def pack(conn: Any, command: tuple[Any, ...]) -> Any:
        """
        *command* in the wire format, by hiredis's packer: what redis-py's
        sync connections use when hiredis is installed (``str`` as UTF-8),
        now for the async ones too (whose packer is pure Python, and
        several times slower).
        """
        return [hiredis.pack_command(command)]


_ALL: weakref.WeakSet[KeptConnections] = weakref.WeakSet()
_CREATING = threading.Lock()


def _forget_all() -> None:  # pragma: no cover  # runs in a forked child
    for kept in list(_ALL):
        kept.forget()


os.register_at_fork(after_in_child=_forget_all)


def _stock(client: Any) -> bool:
    """
    Whether *client* sends commands as redis-py does: its
    ``execute_command`` is not overridden (by a subclass, on the instance,
    or wrapped by an instrumentation such as OpenTelemetry's), which the
    store would otherwise bypass.
    """
    execute = type(client).execute_command
    return (
        isinstance(execute, types.FunctionType)
        and execute.__module__ in {"redis.client", "redis.asyncio.client"}
        and "execute_command" not in vars(client)
    )


def _limit(client: Any) -> int:
    """
    How many connections to keep out of *client*'s pool: none for a
    client with a single connection of its own, or whose commands go
    through code of its own.
    """
    if getattr(client, "connection", None) is not None or not _stock(client):
        return 0
    pool = client.connection_pool
    return min(_KEEP, getattr(pool, "max_connections", 0) // 2)


class _Lane:
    """
    The connections kept out of one pool (for async ones: on one loop).
    """

    __slots__ = ("held", "idle", "limit", "lock")

    def __init__(self, limit: int) -> None:
        self.idle: list[Any] = []
        self.held = 0  # checked out, idle or busy
        self.limit = limit
        self.lock = threading.Lock()

    def reserve(self) -> bool:
        """
        Whether one more connection may be checked out (counted if so).
        """
        with self.lock:
            if self.held >= self.limit:
                return False
            self.held += 1
            return True

    def unreserve(self) -> None:
        with self.lock:
            self.held -= 1


class KeptConnections:
    """
    The connections one store keeps, for its sync and its async client.
    """

    def __init__(self) -> None:
        self._lane: _Lane | None = None
        self._alanes: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, _Lane
        ] = weakref.WeakKeyDictionary()
        _ALL.add(self)

    def forget(self) -> None:  # pragma: no cover  # in a forked child
        """
        Drop every connection without closing it (a forked child's).
        """
        self._lane = None
        self._alanes = weakref.WeakKeyDictionary()

    def _new_lane(
        self, client: Any, loop: asyncio.AbstractEventLoop | None = None
    ) -> _Lane:
        """
        The lane of *client* (of its connections on *loop*, for an async
        client), made once even if two threads ask at once.
        """
        with _CREATING:
            if loop is None:
                lane = self._lane = self._lane or _Lane(_limit(client))
            else:
                lane = self._alanes.get(loop) or _Lane(_limit(client))
                self._alanes[loop] = lane
        return lane

    # ------------------------------------------------------------- sync

    def execute(self, client: Any, command: tuple[Any, ...]) -> Any:
        """
        Send *command* on a kept connection of *client*'s; return the
        answer (raise what redis-py raises).
        """
        lane = self._lane or self._new_lane(client)
        try:
            conn = lane.idle.pop()
        except IndexError:  # all busy, or none yet
            conn = None
        if conn is None:
            if not lane.reserve():
                return client.execute_command(*command)
            try:
                conn = client.connection_pool.get_connection()
            except BaseException:
                lane.unreserve()
                raise
        try:
            conn.send_packed_command(pack(conn, command), check_health=False)
            answer = conn.read_response()
        except ResponseError:
            lane.idle.append(conn)  # the answer was read whole
            raise
        except RedisConnectionError:
            # Broken, most likely since its last use: redis-py has
            # disconnected it; the client's own path sends it again.
            conn.disconnect()
            lane.idle.append(conn)
            return client.execute_command(*command)
        except BaseException:
            conn.disconnect()  # whatever was left to read goes with it
            lane.idle.append(conn)
            raise
        lane.idle.append(conn)
        return answer

    def release(self, client: Any) -> None:
        """
        Give the kept sync connections back to *client*'s pool.
        """
        lane, self._lane = self._lane, None
        if lane is None:
            return
        for conn in lane.idle:
            client.connection_pool.release(conn)

    # ------------------------------------------------------------ async

    async def aexecute(
        self,
        client: Any,
        loop: asyncio.AbstractEventLoop,
        command: tuple[Any, ...],
    ) -> Any:
        """
        :meth:`execute` on the async client, in *loop*.
        """
        lane = self._alanes.get(loop) or self._new_lane(client, loop)
        try:
            conn = lane.idle.pop()
        except IndexError:  # all busy, or none yet
            conn = None
        if conn is None:
            if not lane.reserve():
                return await client.execute_command(*command)
            try:
                conn = await client.connection_pool.get_connection()
            except BaseException:
                lane.unreserve()
                raise
        try:
            await conn.send_packed_command(
                pack(conn, command), check_health=False
            )
            answer = await conn.read_response()
        except ResponseError:
            lane.idle.append(conn)
            raise
        except RedisConnectionError:
            await conn.disconnect(nowait=True)
            lane.idle.append(conn)
            return await client.execute_command(*command)
        except BaseException:
            await conn.disconnect(nowait=True)
            lane.idle.append(conn)
            raise
        lane.idle.append(conn)
        return answer

    async def arelease(self, client: Any) -> None:
        """
        Give the kept async connections (of every loop) back to
        *client*'s pool.  Those of a loop that was closed meanwhile
        cannot be closed properly any more; they are let go of (redis-py's
        own pool cannot use them either).
        """
        lanes = list(self._alanes.items())
        self._alanes = weakref.WeakKeyDictionary()
        for loop, lane in lanes:
            for conn in lane.idle:
                if loop.is_closed():
                    with contextlib.suppress(RuntimeError):  # "loop closed"
                        await conn.disconnect(nowait=True)
                await client.connection_pool.release(conn)
