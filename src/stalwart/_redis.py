"""
The Redis store: state shared by every process that talks to one server.

:class:`RedisStore` is the user's object: the clients, the key prefix,
the failure policy, the per-call timeout and the time source.  A
primitive built with ``store=RedisStore(...)`` runs each of its decisions
as one Lua script on the server, loaded once and then run by its digest
(``EVALSHA``): one round trip per decision, atomic, with no ``WATCH`` and
no check-then-act in the client.

What primitives use (private, shared by the limiters and the breaker):

* :meth:`RedisStore._script` wraps a Lua source into a :class:`Script`;
* :meth:`RedisStore._run` / :meth:`RedisStore._arun` run it (``EVALSHA``;
  after ``SCRIPT FLUSH`` or a server restart, the ``NOSCRIPT`` answer is
  met by sending the source once with ``EVAL``, which loads it again);
  a connection error or a timeout is raised as :class:`Unavailable`,
  carrying the cause, so that each caller applies the policy
  (:meth:`RedisStore._fallback` counts it and says what to do); the
  commands go out on connections the store keeps checked out of the
  client's pool (:mod:`stalwart._redis_kept`);
* :meth:`RedisStore._key` builds ``{prefix}:{kind}:{name:key}``: the hash
  tag (the part in braces) puts every key of one state in one Redis
  Cluster slot.

This module imports ``redis`` (the ``stalwart[redis]`` extra); ``import
stalwart`` never imports it.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading

from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs
import redis
import redis.asyncio

from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    InvalidResponse,
    NoPermissionError,
    NoScriptError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)
from redis.retry import Retry

from ._errors import ConfigurationError, StoreUnavailableError
from ._events import Hook, StoreUnavailable, emit
from ._redis_kept import KeptConnections
from ._validators import non_empty_str


UnavailablePolicy = Literal["fail_open", "fail_closed", "raise"]
"""What a primitive does when its store cannot be reached in time."""

TimeSource = Literal["clock", "server"]
"""Where a decision's time comes from (the primitive's clock, or the
Redis server's ``TIME``)."""

_POLICIES = ("fail_open", "fail_closed", "raise")
_TIMES = ("clock", "server")
_SCHEMES = ("redis", "rediss", "unix")

# What a store cannot be reached by: the connection failed, broke, or
# did not answer within the per-call timeout.
_DOWN = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


class Unavailable(Exception):  # noqa: N818  # a signal between store and primitive, never seen by users
    """
    The store could not be reached in time; :attr:`cause` is why.
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(cause)
        self.cause = cause


@attrs.frozen
class Script:
    """
    A Lua script and its SHA-1 digest (what ``EVALSHA`` runs it by).
    """

    source: str
    sha: str = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: hashlib.sha1(  # noqa: S324  # Redis names scripts by SHA-1
                self.source.encode()
            ).hexdigest(),
            takes_self=True,
        ),
    )


def _function_name(source: str) -> str:
    digest = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324  # a name, not a secret
    return f"stalwart_{digest[:20]}"


@attrs.frozen
class Function:
    """
    A Lua source defining ``local function main(KEYS, ARGV)``, run as a
    Redis Functions library (``FUNCTION LOAD`` once, then ``FCALL``: the
    library's top level is built once, not on every call), or, on a
    server without functions (before Redis 7), as :attr:`script`.
    """

    source: str
    name: str = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: _function_name(self.source), takes_self=True
        ),
    )
    library: str = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: (
                f"#!lua name={self.name}\n{self.source}\n"
                f"redis.register_function('{self.name}', main)\n"
            ),
            takes_self=True,
        ),
        repr=False,
    )
    script: Script = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: Script(f"{self.source}\nreturn main(KEYS, ARGV)\n"),
            takes_self=True,
        ),
        repr=False,
    )


@attrs.frozen
class RedisStoreStatistics:
    """
    A snapshot of a :class:`RedisStore`'s counters, in this process.

    Attributes:
        name: The store's name.
        policy: Its ``on_unavailable`` policy.
        degraded: Decisions made without the server (it could not be
            reached in time), by the policy.
        reloads: Scripts sent again after the server forgot them
            (``SCRIPT FLUSH``, a restart).

    .. versionadded:: 0.2.0
    """

    name: str
    policy: str
    degraded: int
    reloads: int


def _check_prefix(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if not isinstance(value, str):
        msg = f"'prefix' must be a str (got {value!r})"
        raise TypeError(msg)
    if not value or any(c.isspace() or c in "{}" for c in value):
        msg = (
            f"'prefix' must be a non-empty str without spaces or braces "
            f"(got {value!r}): it starts every key the store writes"
        )
        raise ConfigurationError(msg)


def _check_choice(choices: Sequence[str]) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            allowed = ", ".join(map(repr, choices))
            msg = f"{attr.name!r} must be one of {allowed} (got {value!r})"
            raise ConfigurationError(msg)

    return check


def _check_timeout(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"'timeout' must be a number of seconds (got {value!r})"
        raise TypeError(msg)
    if not 0 < value < float("inf"):
        msg = f"'timeout' must be > 0 and finite (got {value!r})"
        raise ConfigurationError(msg)


def _check_url(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        msg = f"'url' must be a str (got {value!r})"
        raise TypeError(msg)
    scheme = urlsplit(value).scheme
    if scheme not in _SCHEMES:
        msg = (
            f"'url' must start with redis://, rediss:// or unix:// "
            f"(got {value!r})"
        )
        raise ConfigurationError(msg)


def _check_client(kind: type, name: str) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, kind):
            msg = (
                f"'{name}' must be a {kind.__module__}.{kind.__qualname__} "
                f"(got {value!r})"
            )
            raise TypeError(msg)

    return check


@attrs.define(kw_only=True, eq=False)
class RedisStore:
    """
    Keep primitives' state in Redis (or Valkey), shared by every process
    that uses the same server and prefix.

    Pass it as ``store=`` to a rate limiter.  Each decision is one atomic
    Lua script (one round trip); the state of a key is a Redis hash that
    ``redis-cli HGETALL`` shows, under ``{prefix}:{kind}:{name:key}``,
    with a TTL so that idle keys expire by themselves.

    Args:
        client: A :class:`redis.Redis` for the sync faces (``try_acquire``,
            ``acquire``...).  Its own ``socket_timeout`` bounds each call.
        aclient: A :class:`redis.asyncio.Redis` for the async faces
            (``aacquire``...); each call is bounded by *timeout*.
        url: ``redis://host:port/db`` (or ``rediss://``, ``unix://``):
            builds both clients, with *timeout* as the sync client's
            socket timeout and both clients' connect timeout, and one
            immediate retry after a broken connection (a server that
            restarted).  Not with *client* or *aclient*.
        prefix: Starts every key (no spaces or braces).
        on_unavailable: When the server cannot be reached in time:
            ``"fail_open"`` admits (as if there were no limit),
            ``"fail_closed"`` refuses with
            :class:`~stalwart.StoreUnavailableError`, ``"raise"`` lets the
            connection error through.  Every such decision sends a
            :class:`~stalwart.StoreUnavailable` event to the primitive's
            hooks and is counted in :meth:`statistics`.
        timeout: Seconds each call to the server may take.
        time: ``"clock"`` decides at the primitive's clock reading (a
            :class:`~stalwart.testing.FakeClock` drives it; every process
            must read the same timeline, for instance one host's monotonic
            clock); ``"server"`` uses the server's ``TIME``, one timeline
            for a fleet whose clocks disagree.
        name: Used in errors, events and statistics.

    .. versionadded:: 0.2.0
    """

    client: redis.Redis | None = attrs.field(
        default=None,
        validator=_check_client(redis.Redis, "client"),
        repr=False,
    )
    aclient: redis.asyncio.Redis | None = attrs.field(
        default=None,
        validator=_check_client(redis.asyncio.Redis, "aclient"),
        repr=False,
    )
    url: str | None = attrs.field(default=None, validator=_check_url)
    prefix: str = attrs.field(default="stalwart", validator=_check_prefix)
    on_unavailable: UnavailablePolicy = attrs.field(
        default="fail_open", validator=_check_choice(_POLICIES)
    )
    timeout: float = attrs.field(default=0.25, validator=_check_timeout)
    time: TimeSource = attrs.field(
        default="clock", validator=_check_choice(_TIMES)
    )
    name: str = attrs.field(default="redis", validator=non_empty_str)
    _lock: threading.Lock = attrs.field(
        init=False, factory=threading.Lock, repr=False
    )
    _degraded: int = attrs.field(init=False, default=0, repr=False)
    _reloads: int = attrs.field(init=False, default=0, repr=False)
    # False once the server said it has no FCALL: scripts from then on.
    _functions: bool = attrs.field(init=False, default=True, repr=False)
    _kept: KeptConnections = attrs.field(
        init=False, factory=KeptConnections, repr=False
    )

    def __attrs_post_init__(self) -> None:
        if self.url is None:
            if self.client is None and self.aclient is None:
                msg = (
                    "RedisStore needs 'client' (redis.Redis), 'aclient' "
                    "(redis.asyncio.Redis) or 'url' (got none of them)"
                )
                raise ConfigurationError(msg)
            return
        if self.client is not None or self.aclient is not None:
            msg = (
                f"'url' ({self.url!r}) builds the clients: give either "
                "'url' or 'client' / 'aclient', not both"
            )
            raise ConfigurationError(msg)
        timeout = self.timeout
        self.client = redis.Redis.from_url(
            self.url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(
                NoBackoff(), 1, supported_errors=(RedisConnectionError,)
            ),
        )
        # No socket timeout (redis-py 8 would set one of 5 s): each call
        # has its deadline (_arun), and redis.asyncio's per-read and
        # per-write timeouts cost more than the round trip's own work.
        self.aclient = redis.asyncio.Redis.from_url(
            self.url,
            socket_timeout=None,
            socket_connect_timeout=timeout,
            retry=AsyncRetry(
                NoBackoff(), 1, supported_errors=(RedisConnectionError,)
            ),
        )

    def statistics(self) -> RedisStoreStatistics:
        """
        Return a snapshot of the counters (this process's).
        """
        return RedisStoreStatistics(
            name=self.name,
            policy=self.on_unavailable,
            degraded=self._degraded,
            reloads=self._reloads,
        )

    def close(self) -> None:
        """
        Close the sync client's connections (the async client's: see
        :meth:`aclose`).
        """
        if self.client is not None:
            self._kept.release(self.client)
            self.client.close()

    async def aclose(self) -> None:
        """
        Close the async client's connections.
        """
        if self.aclient is not None:
            await self._kept.arelease(self.aclient)
            await self.aclient.aclose()

    # ------------------------------------------------- for the primitives

    def _limiter_store(self, algorithm: Any, limiter: Any) -> Any:
        """
        The store of one rate limiter's keys (a
        :class:`~stalwart._redis_limits.RedisLimiterStore`).
        """
        from ._redis_limits import RedisLimiterStore  # noqa: PLC0415  # imports this module

        return RedisLimiterStore(self, algorithm, limiter)

    def _key(self, kind: str, name: str, key: object) -> str | bytes:
        """
        The Redis key of *name*'s state for *key* (``None``: the default
        key): ``{prefix}:{kind}:{name:key}`` (bytes for a bytes key).
        Everything in braces is the hash tag, so the keys derived from it
        (suffixes) live in the same cluster slot.
        """
        if key is None:
            return f"{self.prefix}:{kind}:{{{name}}}"
        if isinstance(key, str):
            return f"{self.prefix}:{kind}:{{{name}:{key}}}"
        if isinstance(key, bytes):
            head = f"{self.prefix}:{kind}:{{{name}:".encode()
            return head + key + b"}"
        msg = (
            f"a key of a Redis-backed primitive must be a str or bytes "
            f"(got {key!r}, a {type(key).__name__})"
        )
        raise TypeError(msg)

    @staticmethod
    def _script(source: str) -> Script:
        """
        Wrap *source* for :meth:`_run` and :meth:`_arun`.
        """
        return Script(source)

    def _sync_client(self) -> redis.Redis:
        client = self.client
        if client is None:
            msg = (
                f"RedisStore {self.name!r} has no sync client: a sync face "
                "needs 'client' (redis.Redis) or 'url'"
            )
            raise ConfigurationError(msg)
        return client

    def _async_client(self) -> redis.asyncio.Redis:
        client = self.aclient
        if client is None:
            msg = (
                f"RedisStore {self.name!r} has no async client: an async "
                "face needs 'aclient' (redis.asyncio.Redis) or 'url'"
            )
            raise ConfigurationError(msg)
        return client

    def _not_redis(self, error: InvalidResponse) -> ConfigurationError:
        return ConfigurationError(
            f"RedisStore {self.name!r}: the server does not answer as "
            f"Redis does ({error})"
        )

    def _load_function(self, error: ResponseError) -> bool:
        """
        Whether *error*, the answer to an ``FCALL``, means the function
        is to be loaded (the server forgot it: ``FUNCTION FLUSH``, a
        restart); ``False`` if the server has no functions, or the
        client may not call them (the script is run instead, from now
        on); else raise it.
        """
        text = str(error).lower()
        if isinstance(error, NoPermissionError) or text.startswith(
            "unknown command 'fcall'"
        ):
            self._functions = False
            return False
        if not text.startswith("function not found"):
            raise error
        with self._lock:
            self._reloads += 1
        return True

    @staticmethod
    def _loading(function: Function) -> tuple[str, ...]:
        return ("FUNCTION", "LOAD", "REPLACE", function.library)

    def _run(
        self,
        script: Script | Function,
        keys: Sequence[Any],
        args: Sequence[Any],
    ) -> Any:
        """
        Run *script* on the sync client; raise :class:`Unavailable` if the
        server cannot be reached in time.
        """
        client = self._sync_client()
        execute = self._kept.execute
        try:
            if isinstance(script, Function):
                if self._functions:
                    call = ("FCALL", script.name, len(keys), *keys, *args)
                    try:
                        return execute(client, call)
                    except ResponseError as error:
                        if self._load_function(error):
                            try:
                                execute(client, self._loading(script))
                            except NoPermissionError:  # may not load
                                self._functions = False
                            else:
                                return execute(client, call)
                script = script.script
            try:
                return execute(
                    client, ("EVALSHA", script.sha, len(keys), *keys, *args)
                )
            except NoScriptError:
                with self._lock:
                    self._reloads += 1
                return execute(
                    client, ("EVAL", script.source, len(keys), *keys, *args)
                )
        except _DOWN as error:
            raise Unavailable(error) from error
        except InvalidResponse as error:
            raise self._not_redis(error) from error

    async def _arun(
        self,
        script: Script | Function,
        keys: Sequence[Any],
        args: Sequence[Any],
    ) -> Any:
        """
        Run *script* on the async client, within *timeout*; raise
        :class:`Unavailable` if the server cannot be reached in time.
        """
        client = self._async_client()
        task = asyncio.current_task()
        loop = asyncio.get_running_loop() if task is None else task.get_loop()
        cancelling = 0 if task is None else task.cancelling()
        execute = self._kept.aexecute
        try:
            async with asyncio.timeout(self.timeout):
                if isinstance(script, Function):
                    if self._functions:
                        call = ("FCALL", script.name, len(keys), *keys, *args)
                        try:
                            return await execute(client, loop, call)
                        except ResponseError as error:
                            if self._load_function(error):
                                try:
                                    await execute(
                                        client, loop, self._loading(script)
                                    )
                                except NoPermissionError:  # may not load
                                    self._functions = False
                                else:
                                    return await execute(client, loop, call)
                    script = script.script
                sha = script.sha
                try:
                    return await execute(
                        client, loop, ("EVALSHA", sha, len(keys), *keys, *args)
                    )
                except NoScriptError:
                    with self._lock:
                        self._reloads += 1
                    source = script.source
                    return await execute(
                        client, loop, ("EVAL", source, len(keys), *keys, *args)
                    )
        except _DOWN as error:
            raise Unavailable(error) from error
        except InvalidResponse as error:
            raise self._not_redis(error) from error
        finally:
            # redis-py may finish a command whose task was cancelled
            # meanwhile, and return its answer: the cancellation still
            # stands (the caller then takes back what the answer granted).
            if task is not None and task.cancelling() > cancelling:
                raise asyncio.CancelledError

    def _fallback(
        self,
        unavailable: Unavailable,
        *,
        primitive: str,
        name: str,
        hooks: Sequence[Hook],
        at: float,
        refuse: bool = True,
    ) -> None:
        """
        Apply the policy to a decision the server could not make: count
        it, send :class:`~stalwart.StoreUnavailable` to *hooks*, then
        return (``"fail_open"``: the caller admits) or raise
        (:class:`~stalwart.StoreUnavailableError`, or the cause).

        Args:
            unavailable: What :meth:`_run` / :meth:`_arun` raised.
            primitive: The primitive's kind (``"rate_limiter"``...).
            name: The primitive's name.
            hooks: The primitive's hooks.
            at: The primitive's clock reading.
            refuse: ``False`` for an operation that is not a decision
                (giving a reservation back, reporting a result): counted
                and told to the hooks, and the caller goes on.
        """
        policy = self.on_unavailable
        with self._lock:
            self._degraded += 1
        cause = unavailable.cause
        if hooks:
            emit(
                hooks,
                StoreUnavailable(
                    primitive_name=name,
                    at=at,
                    primitive=primitive,
                    store=self.name,
                    policy=policy,
                    error=cause,
                ),
            )
        if not refuse:
            return
        if policy == "fail_closed":
            raise StoreUnavailableError(name, self.name) from cause
        if policy == "raise":
            raise cause
