"""
Rate limiting and load shedding for any ASGI application (the
``stalwart[asgi]`` extra, which needs nothing: this is pure ASGI).

:class:`RateLimitMiddleware` checks each HTTP request against one or more
:class:`Limit` s (each a stalwart rate limiter, keyed by what a function of
the request returns: the client's address, an API key, a user, a route, or
nothing for one global limit) and answers a refused request itself with
``429 Too Many Requests``, ``Retry-After`` and the ``RateLimit`` /
``RateLimit-Policy`` fields of the IETF httpapi draft
(draft-ietf-httpapi-ratelimit-headers-10).  :class:`LoadSheddingMiddleware`
puts a :class:`~stalwart.Bulkhead` in front of the application and answers
``503 Service Unavailable`` with ``Retry-After`` when it is full.

Both pass every other scope (``lifespan``, ``websocket``) through
untouched.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import ipaddress
import json
import math

from collections.abc import (
    Awaitable,
    Callable,
    Hashable,
    Iterable,
    MutableMapping,
    Sequence,
)
from typing import Any, Final, Literal, Protocol, TypeAlias, final

import attrs

from ._bulkhead import Bulkhead
from ._errors import (
    BulkheadFullError,
    ConfigurationError,
    RateLimitExceededError,
)
from ._limiters import RateLimitDecision


__all__ = [
    "ASGIApp",
    "Limit",
    "Limiter",
    "LoadSheddingMiddleware",
    "RateLimitMiddleware",
    "Refusal",
    "RequestInfo",
    "client_ip",
    "header",
]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
"""Any ASGI 3 application, such as what Starlette, FastAPI and Litestar
build, or a Starlette ``Response``."""

DRAFT: Final = "draft-ietf-httpapi-ratelimit-headers-10"
"""The draft whose ``RateLimit`` and ``RateLimit-Policy`` fields are sent."""

QUOTA_EXCEEDED: Final = (
    "https://iana.org/assignments/http-problem-types#quota-exceeded"
)
REDUCED_CAPACITY: Final = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"


class Limiter(Protocol):
    """
    What a :class:`Limit` needs of its limiter: every stalwart rate
    limiter has it, whatever its store.

    A limiter that also has ``async def atry_acquire(cost, key)`` is asked
    through it, so that the event loop never blocks: every stalwart
    limiter has it, and one on a Redis store answers it on the store's
    async client.

    .. versionadded:: 0.2.0
    """

    @property
    def name(self) -> str:
        """The limiter's name."""
        ...

    def try_acquire(
        self, cost: float = 1, key: Hashable | None = None
    ) -> RateLimitDecision:
        """Take *cost* for *key* now if the limit allows it."""
        ...


# -- the request, as the functions of the configuration see it ----------------


@final
class RequestInfo:
    """
    An HTTP request as the middleware's functions see it (a key, a cost,
    an exemption): a read-only view of its ASGI scope.

    Attributes:
        scope: The ASGI scope itself.
        method: ``"GET"``, ``"POST"``...
        path: The path, without the query string.

    .. versionadded:: 0.2.0
    """

    __slots__ = (
        "_client_ip",
        "_headers",
        "_trusted",
        "method",
        "path",
        "scope",
    )

    def __init__(
        self,
        scope: Scope,
        trusted: tuple[
            ipaddress.IPv4Network | ipaddress.IPv6Network, ...
        ] = (),
    ) -> None:
        self.scope = scope
        self.method: str = scope.get("method", "GET")
        self.path: str = scope.get("path", "/")
        self._trusted = trusted
        self._headers: dict[str, str] | None = None
        self._client_ip: str | Literal[False] | None = False

    def __repr__(self) -> str:
        return f"<RequestInfo {self.method} {self.path}>"

    @property
    def headers(self) -> dict[str, str]:
        """
        The headers, by lower-case name; a repeated header's values are
        joined with ``", "``.
        """
        headers = self._headers
        if headers is None:
            headers = {}
            for raw_name, raw_value in self.scope.get("headers", ()):
                name = raw_name.decode("latin-1").lower()
                value = raw_value.decode("latin-1")
                old = headers.get(name)
                headers[name] = value if old is None else f"{old}, {value}"
            self._headers = headers
        return headers

    @property
    def client_ip(self) -> str | None:
        """
        The client's address, which is the peer's, or, when the peer is
        one of the middleware's *trusted_proxies*, the address those
        proxies put in
        ``X-Forwarded-For`` (read from the right, skipping the trusted
        ones).  ``None`` when the server does not say (``scope["client"]``
        missing).
        """
        found = self._client_ip
        if found is False:
            found = self._client_ip = _client_ip(self)
        return found


def _trusted(
    address: str,
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...],
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _client_ip(request: RequestInfo) -> str | None:
    client = request.scope.get("client")
    peer: str | None = client[0] if client else None
    networks = request._trusted
    if peer is None or not networks or not _trusted(peer, networks):
        return peer
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded is None:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    # Each trusted proxy appended the address it got the request from; the
    # first from the right that is not a trusted proxy is the client.
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def client_ip(request: RequestInfo) -> str | None:
    """
    Key by the client's address (see :attr:`RequestInfo.client_ip`).

    .. versionadded:: 0.2.0
    """
    return request.client_ip


def header(name: str) -> Callable[[RequestInfo], str | None]:
    """
    Return a key function reading the header *name* (an API key, say); a
    request without it has no key, and the limit does not apply to it.

    .. versionadded:: 0.2.0
    """
    lowered = name.lower()

    def key(request: RequestInfo) -> str | None:
        return request.headers.get(lowered)

    key.__name__ = f"header({name!r})"
    return key


# -- limits ---------------------------------------------------------------------


def _check_limiter(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if not callable(getattr(value, "try_acquire", None)):
        msg = f"'limiter' must be a rate limiter (got {value!r})"
        raise TypeError(msg)


def _policy_name(self: Limit) -> str:
    name = getattr(self.limiter, "name", None)
    return name if isinstance(name, str) and name != "<unnamed>" else "default"


def _check_name(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if not (
        isinstance(value, str)
        and value
        and all(" " <= char <= "~" for char in value)
    ):
        msg = (
            f"'name' must be a non-empty string of printable ASCII (it is"
            f" sent in the RateLimit headers) (got {value!r})"
        )
        raise ConfigurationError(msg)


def _check_optional_callable(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if value is not None and not callable(value):
        msg = f"{attr.name!r} must be callable or None (got {value!r})"
        raise TypeError(msg)


def _check_cost(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if callable(value):
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"'cost' must be a number or a function of the request (got {value!r})"
        raise TypeError(msg)
    if not (value > 0 and math.isfinite(value)):
        msg = f"'cost' must be > 0 and finite (got {value!r})"
        raise ConfigurationError(msg)


def _to_strings(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None or isinstance(value, str):
        return value  # type: ignore[return-value]  # a str is refused next
    return tuple(value)


def _to_methods(value: Iterable[str] | None) -> tuple[str, ...] | None:
    strings = _to_strings(value)
    if not isinstance(strings, tuple):
        return strings
    items: tuple[object, ...] = strings
    return tuple(
        method.upper() if isinstance(method, str) else method  # type: ignore[misc]  # others are refused by the validator
        for method in items
    )


def _check_paths(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not all(
        isinstance(path, str) and path.startswith("/") for path in value
    ):
        msg = (
            f"'paths' must be a collection of paths starting with '/'"
            f" (got {value!r})"
        )
        raise ConfigurationError(msg)


def _check_methods(
    inst: object, attr: attrs.Attribute[Any], value: Any
) -> None:
    if value is None:
        return
    if not isinstance(value, tuple) or not all(
        isinstance(method, str) and method.isalpha() for method in value
    ):
        msg = f"'methods' must be a collection of method names (got {value!r})"
        raise ConfigurationError(msg)


@final
@attrs.frozen(kw_only=True, eq=False)
class Limit:
    """
    One rate limit of a :class:`RateLimitMiddleware`: a limiter, whom it
    applies to and what a request costs.

    Args:
        limiter: Any stalwart rate limiter (its algorithm, rate, store and
            clock are its own): ``TokenBucket(rate="100/minute")``...
        name: The policy's name in the ``RateLimit`` headers; the
            limiter's name by default (``"default"`` if it has none).
        key: A function of the :class:`RequestInfo` returning the key to
            limit by (:func:`client_ip`, :func:`header` for an API key, a
            user from the scope, ``(request.path, ip)`` for a limit per
            route and client); a request whose key is ``None`` is not
            limited by this limit.  ``None`` (the default): one limit
            shared by every request.
        cost: What a request takes from the limit: a number, or a
            function of the request.
        paths: Only requests whose path is one of these or below one
            (``"/api"`` covers ``/api`` and ``/api/items``, not
            ``/apis``); ``None`` for every path.
        methods: Only requests with one of these methods; ``None`` for
            every method.

    .. versionadded:: 0.2.0
    """

    limiter: Limiter = attrs.field(validator=_check_limiter)
    name: str = attrs.field(
        default=attrs.Factory(_policy_name, takes_self=True),
        validator=_check_name,
    )
    key: Callable[[RequestInfo], Hashable | None] | None = attrs.field(
        default=None, validator=_check_optional_callable
    )
    cost: float | Callable[[RequestInfo], float] = attrs.field(
        default=1, validator=_check_cost
    )
    paths: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_strings, validator=_check_paths
    )
    methods: tuple[str, ...] | None = attrs.field(
        default=None, converter=_to_methods, validator=_check_methods
    )
    _policies: dict[int, str] = attrs.field(
        init=False, repr=False, factory=dict
    )

    @property
    def _scoped(self) -> bool:
        return self.paths is not None or self.methods is not None

    def _applies(self, request: RequestInfo) -> bool:
        methods = self.methods
        if methods is not None and request.method not in methods:
            return False
        paths = self.paths
        if paths is None:
            return True
        path = request.path
        return any(
            path == prefix
            or path.startswith(
                prefix if prefix.endswith("/") else prefix + "/"
            )
            for prefix in paths
        )

    @property
    def _quoted(self) -> str:
        return _sf_string(self.name)

    def _policy(self, quota: int) -> str:
        """
        The ``RateLimit-Policy`` item of this limit for *quota* (the same
        for every decision of one limiter: kept once built).
        """
        cached = self._policies.get(quota)
        if cached is None:
            cached = f"{self._quoted};q={quota}"
            window = self._window(quota)
            if window is not None:
                cached += f";w={window}"
            self._policies[quota] = cached
        return cached

    def _window(self, quota: int) -> int | None:
        """
        The policy's window, in whole seconds: how long the limiter takes
        to grant *quota* again at its rate (``None`` if it has no rate).
        """
        per_second = getattr(
            getattr(self.limiter, "rate", None), "per_second", None
        )
        if not isinstance(per_second, int | float) or not per_second > 0:
            return None
        return max(1, math.ceil(quota / per_second - 1e-9))


@final
@attrs.frozen
class Refusal:
    """
    A request a :class:`RateLimitMiddleware` refused, given to its
    *response* function.

    Attributes:
        request: The request.
        limit: The limit that refused it.
        retry_after: Seconds until it could be granted; ``None`` if its
            cost can never be.
        headers: The headers the middleware adds to the answer
            (``Retry-After`` and the ``RateLimit`` fields), as ASGI
            header pairs.

    .. versionadded:: 0.2.0
    """

    request: RequestInfo
    limit: Limit
    retry_after: float | None
    headers: list[tuple[bytes, bytes]] = attrs.field(repr=False)


def _sf_string(value: str) -> str:
    """A structured-field String (RFC 9651): quoted, with escapes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _whole(seconds: float) -> int:
    return max(0, math.ceil(seconds - 1e-9))


def _problem(status: int, kind: str, title: str, **extra: Any) -> bytes:
    return json.dumps(
        {"type": kind, "title": title, "status": status, **extra},
        separators=(",", ":"),
    ).encode()


async def _answer(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    """
    Wrap *send* so that the answer's start carries *extra* headers too.
    """

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {
                **message,
                "headers": [*message.get("headers", ()), *extra],
            }
        await send(message)

    return sending


def _networks(
    value: Iterable[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if isinstance(value, str):
        value = (value,)
    networks = []
    for item in value:
        try:
            if not isinstance(item, str):
                raise TypeError  # noqa: TRY301  # refused below, like a bad string
            networks.append(ipaddress.ip_network(item, strict=False))
        except (TypeError, ValueError):
            msg = (
                "'trusted_proxies' must be IP addresses or networks"
                f" (got {item!r})"
            )
            raise ConfigurationError(msg) from None
    return tuple(networks)


HeaderMode: TypeAlias = Literal["always", "refused", "never"]


@final
class RateLimitMiddleware:
    """
    Rate-limit the HTTP requests of an ASGI application.

    Each request is checked against the *limits* that apply to it, in
    order; the first that refuses ends the check, and the request is
    answered ``429 Too Many Requests`` with ``Retry-After`` (whole
    seconds, rounded up), the ``RateLimit`` and ``RateLimit-Policy``
    fields, and a short ``application/problem+json`` body (the draft's
    ``quota-exceeded`` problem, naming the policy), or whatever
    *response* builds.  A granted request's answer carries the fields too
    (*headers*).  Limits checked before the one that refused have counted
    the request: put the narrowest limits first.

    The fields follow draft-ietf-httpapi-ratelimit-headers-10 (September
    2025), as structured fields: ``RateLimit-Policy: "per-key";q=100;w=60``
    for each limit checked (its quota and, when its limiter has a rate,
    the seconds it takes to grant the quota again), and ``RateLimit:
    "per-key";r=42;t=18`` (what is left, and the seconds until the quota
    is back: for a refused request, the seconds until it would be
    granted, which ``Retry-After`` also says).  No partition key (``pk``)
    is sent: keys are often secrets (API keys).

    Args:
        app: The ASGI application.
        limits: The limits, checked in order.
        exempt: A function of the :class:`RequestInfo`; a request for
            which it returns true is not limited at all (allow-listed
            clients, health checks).
        trusted_proxies: Addresses or networks (``"10.0.0.0/8"``) of the
            proxies in front of the application, whose ``X-Forwarded-For``
            names the client (:attr:`RequestInfo.client_ip`).  Empty by
            default: the peer is the client, and the header is ignored,
            as anyone can send it.
        headers: Which answers carry the ``RateLimit`` fields:
            ``"always"``, ``"refused"`` (only 429s), or ``"never"`` (a 429
            still has its ``Retry-After``).
        response: A function of the :class:`Refusal` returning the ASGI
            application that answers a refused request (a Starlette
            ``PlainTextResponse("slow down", status_code=429)``, say); the
            middleware adds ``Retry-After`` and the fields to its answer.

    Raises:
        ConfigurationError: If two limits share a name, or a setting is not
            valid.
        TypeError: If a setting has the wrong type.

    .. versionadded:: 0.2.0
    """

    __slots__ = (
        "_exempt",
        "_granted",
        "_limits",
        "_refused",
        "_response",
        "_trusted",
        "app",
    )

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Sequence[Limit],
        exempt: Callable[[RequestInfo], bool] | None = None,
        trusted_proxies: Iterable[str] = (),
        headers: HeaderMode = "always",
        response: Callable[[Refusal], ASGIApp] | None = None,
    ) -> None:
        problems = []
        if not callable(app):
            problems.append(f"'app' must be an ASGI application (got {app!r})")
        given: object = limits
        if isinstance(given, Limit) or not all(
            isinstance(limit, Limit) for limit in limits
        ):
            problems.append(
                f"'limits' must be a sequence of Limit (got {limits!r})"
            )
        for name, value in (("exempt", exempt), ("response", response)):
            if value is not None and not callable(value):
                problems.append(
                    f"{name!r} must be callable or None (got {value!r})"
                )
        if problems:
            raise TypeError("; ".join(problems))
        names = [limit.name for limit in limits]
        shared = sorted({name for name in names if names.count(name) > 1})
        if shared:
            msg = f"'limits' must have distinct names (shared: {shared!r})"
            raise ConfigurationError(msg)
        if headers not in ("always", "refused", "never"):
            msg = (
                "'headers' must be 'always', 'refused' or 'never'"
                f" (got {headers!r})"
            )
            raise ConfigurationError(msg)
        self.app = app
        self._limits = tuple(limits)
        self._exempt = exempt
        self._trusted = _networks(trusted_proxies)
        self._granted = headers == "always"
        self._refused = headers != "never"
        self._response = response

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """
        Check an HTTP request, then answer it or pass it on.
        """
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = RequestInfo(scope, self._trusted)
        exempt = self._exempt
        if exempt is not None and exempt(request):
            await self.app(scope, receive, send)
            return
        checked: list[tuple[Limit, RateLimitDecision | None]] = []
        for limit in self._limits:
            if limit._scoped and not limit._applies(request):
                continue
            key = None
            if limit.key is not None:
                key = limit.key(request)
                if key is None:
                    continue
            cost = limit.cost(request) if callable(limit.cost) else limit.cost
            decision = await _decide(limit.limiter, cost, key)
            checked.append((limit, decision))
            if decision is None or not decision.granted:
                await self._refuse(request, checked, send, receive)
                return
        if checked and self._granted:
            send = _with_headers(send, self._fields(checked))
        await self.app(scope, receive, send)

    def _fields(
        self, checked: list[tuple[Limit, RateLimitDecision | None]]
    ) -> list[tuple[bytes, bytes]]:
        policies = []
        limits = []
        for limit, decision in checked:
            name = limit._quoted
            if decision is None:  # its cost can never be granted
                limits.append(f"{name};r=0")
                continue
            policies.append(limit._policy(decision.limit))
            reset = (
                decision.reset_after
                if decision.granted
                else decision.retry_after
            )
            limits.append(f"{name};r={decision.remaining};t={_whole(reset)}")
        fields = [(b"ratelimit", ", ".join(limits).encode())]
        if policies:
            fields.insert(
                0, (b"ratelimit-policy", ", ".join(policies).encode())
            )
        return fields

    async def _refuse(
        self,
        request: RequestInfo,
        checked: list[tuple[Limit, RateLimitDecision | None]],
        send: Send,
        receive: Receive,
    ) -> None:
        limit, decision = checked[-1]
        retry_after = None if decision is None else decision.retry_after
        headers = []
        if retry_after is not None:
            headers.append(
                (b"retry-after", str(max(1, _whole(retry_after))).encode())
            )
        if self._refused:
            headers += self._fields(checked)
        if self._response is not None:
            app = self._response(Refusal(request, limit, retry_after, headers))
            await app(request.scope, receive, _with_headers(send, headers))
            return
        body = _problem(
            429,
            QUOTA_EXCEEDED,
            "Too Many Requests",
            **{"violated-policies": [limit.name]},
        )
        await _answer(send, 429, headers, body)


async def _decide(
    limiter: Limiter, cost: float, key: Hashable | None
) -> RateLimitDecision | None:
    """
    Ask *limiter*; ``None`` when *cost* can never be granted.
    """
    atry: Any = getattr(limiter, "atry_acquire", None)
    try:
        if atry is not None:
            decision: RateLimitDecision = await atry(cost, key)
            return decision
        return limiter.try_acquire(cost, key)
    except RateLimitExceededError:
        return None


@final
class LoadSheddingMiddleware:
    """
    Put a :class:`~stalwart.Bulkhead` in front of an ASGI application:
    requests beyond its capacity (and its queue) are answered ``503
    Service Unavailable`` with ``Retry-After`` and a short
    ``application/problem+json`` body (the draft's
    ``temporary-reduced-capacity`` problem), without reaching the
    application.

    A request holds its permit until the application has finished with
    it (its whole answer sent, or it failed, or the client went away).

    Args:
        app: The ASGI application.
        bulkhead: The bulkhead: ``Bulkhead(max_concurrent=100,
            max_queue=50, max_wait=0.5)`` lets 100 requests in, and 50
            more wait up to half a second.
        retry_after: The ``Retry-After`` of the 503, in seconds (rounded
            up to whole seconds).
        exempt: A function of the :class:`RequestInfo`; a request for
            which it returns true bypasses the bulkhead (health checks).
        response: A function of the :class:`RequestInfo` returning the
            ASGI application that answers a shed request; the middleware
            adds ``Retry-After`` to its answer.

    .. versionadded:: 0.2.0
    """

    __slots__ = ("_exempt", "_response", "_retry_after", "app", "bulkhead")

    def __init__(
        self,
        app: ASGIApp,
        *,
        bulkhead: Bulkhead,
        retry_after: float = 1.0,
        exempt: Callable[[RequestInfo], bool] | None = None,
        response: Callable[[RequestInfo], ASGIApp] | None = None,
    ) -> None:
        if not isinstance(bulkhead, Bulkhead):
            msg = f"'bulkhead' must be a Bulkhead (got {bulkhead!r})"
            raise TypeError(msg)
        seconds: object = retry_after
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not (retry_after >= 0 and math.isfinite(retry_after))
        ):
            msg = f"'retry_after' must be a number of seconds >= 0 (got {retry_after!r})"
            raise ConfigurationError(msg)
        for name, value in (("exempt", exempt), ("response", response)):
            if value is not None and not callable(value):
                msg = f"{name!r} must be callable or None (got {value!r})"
                raise TypeError(msg)
        self.app = app
        self.bulkhead = bulkhead
        self._retry_after = str(_whole(retry_after)).encode()
        self._exempt = exempt
        self._response = response

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """
        Let an HTTP request in if the bulkhead has room, or shed it.
        """
        if scope["type"] != "http" or (
            self._exempt is not None and self._exempt(RequestInfo(scope))
        ):
            await self.app(scope, receive, send)
            return
        bulkhead = self.bulkhead
        try:
            await bulkhead.aacquire()
        except BulkheadFullError:
            await self._shed(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            bulkhead.release()

    async def _shed(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"retry-after", self._retry_after)]
        if self._response is not None:
            app = self._response(RequestInfo(scope))
            await app(scope, receive, _with_headers(send, headers))
            return
        body = _problem(503, REDUCED_CAPACITY, "Service Unavailable")
        await _answer(send, 503, headers, body)
