"""
The ASGI middleware: rate limits with the IETF RateLimit fields, and load
shedding, through httpx.ASGITransport (and once under uvicorn).
"""

from __future__ import annotations

import asyncio
import json
import socket

from collections.abc import Hashable
from typing import Any

import pytest

import stalwart


httpx = pytest.importorskip("httpx")
starlette = pytest.importorskip("starlette")

from starlette.applications import Starlette  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from stalwart.asgi import (  # noqa: E402
    Limit,
    LoadSheddingMiddleware,
    RateLimitMiddleware,
    Refusal,
    RequestInfo,
    client_ip,
    header,
)
from stalwart.testing import FakeClock  # noqa: E402


async def hello(scope: Any, receive: Any, send: Any) -> None:
    """A bare ASGI app answering 200 "hello", with a header of its own."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"x-app", b"yes")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


def get_all(
    app: Any,
    paths: list[str],
    *,
    peer: tuple[str, int] = ("203.0.113.7", 5000),
    headers: dict[str, str] | None = None,
    method: str = "GET",
) -> list[httpx.Response]:
    """Send requests to *app* one after the other; return the answers."""

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=peer)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver"
        ) as client:
            return [
                await client.request(method, path, headers=headers)
                for path in paths
            ]

    return asyncio.run(main())


def bucket(clock: FakeClock, **kwargs: Any) -> stalwart.TokenBucket:
    settings: dict[str, Any] = {"rate": "2/minute", "capacity": 2}
    settings.update(kwargs)
    return stalwart.TokenBucket(clock=clock, **settings)


class TestRefusals:
    def test_refused_with_headers_and_problem(self, clock):
        """
        Past the limit: 429, Retry-After, the draft's fields and a
        problem+json body naming the policy.
        """
        limit = Limit(limiter=bucket(clock), name="global")
        app = RateLimitMiddleware(hello, limits=[limit])

        first, second, third = get_all(app, ["/"] * 3)

        assert [200, 200, 429] == [
            r.status_code for r in (first, second, third)
        ]
        assert "30" == third.headers["retry-after"]
        assert '"global";q=2;w=60' == third.headers["ratelimit-policy"]
        assert '"global";r=0;t=30' == third.headers["ratelimit"]
        assert "application/problem+json" == third.headers["content-type"]
        assert {
            "type": "https://iana.org/assignments/http-problem-types"
            "#quota-exceeded",
            "title": "Too Many Requests",
            "status": 429,
            "violated-policies": ["global"],
        } == third.json()

    def test_granted_answers_carry_the_fields(self, clock):
        """
        A granted answer keeps the app's headers and gains the fields.
        """
        app = RateLimitMiddleware(
            hello, limits=[Limit(limiter=bucket(clock), name="global")]
        )

        (response,) = get_all(app, ["/"])

        assert "hello" == response.text
        assert "yes" == response.headers["x-app"]
        assert '"global";q=2;w=60' == response.headers["ratelimit-policy"]
        assert '"global";r=1;t=30' == response.headers["ratelimit"]

    def test_time_frees_the_limit(self, clock):
        """
        Once the limiter's clock moves past Retry-After, requests pass.
        """
        app = RateLimitMiddleware(
            hello, limits=[Limit(limiter=bucket(clock, capacity=1))]
        )

        refused = get_all(app, ["/", "/"])[1]
        clock.advance(float(refused.headers["retry-after"]))

        assert 200 == get_all(app, ["/"])[0].status_code

    def test_headers_only_on_refusals(self, clock):
        """
        headers="refused" leaves granted answers alone.
        """
        app = RateLimitMiddleware(
            hello,
            limits=[Limit(limiter=bucket(clock, capacity=1))],
            headers="refused",
        )

        granted, refused = get_all(app, ["/", "/"])

        assert "ratelimit" not in granted.headers
        assert '"default";r=0;t=30' == refused.headers["ratelimit"]

    def test_no_fields_at_all(self, clock):
        """
        headers="never" still tells a refused client when to come back.
        """
        app = RateLimitMiddleware(
            hello,
            limits=[Limit(limiter=bucket(clock, capacity=1))],
            headers="never",
        )

        granted, refused = get_all(app, ["/", "/"])

        assert "ratelimit" not in granted.headers
        assert "ratelimit" not in refused.headers
        assert "30" == refused.headers["retry-after"]

    def test_custom_answer(self, clock):
        """
        The app's own answer (a Starlette response) gets the headers.
        """
        refusals: list[Refusal] = []

        def slow_down(refusal: Refusal) -> PlainTextResponse:
            refusals.append(refusal)
            return PlainTextResponse("slow down", status_code=429)

        app = RateLimitMiddleware(
            hello,
            limits=[Limit(limiter=bucket(clock, capacity=1), name="mine")],
            response=slow_down,
        )

        refused = get_all(app, ["/", "/hi"])[1]

        assert (429, "slow down") == (refused.status_code, refused.text)
        assert "30" == refused.headers["retry-after"]
        assert '"mine";r=0;t=30' == refused.headers["ratelimit"]
        (refusal,) = refusals
        assert ("mine", 30.0, "/hi") == (
            refusal.limit.name,
            refusal.retry_after,
            refusal.request.path,
        )

    def test_cost_that_never_fits(self, clock):
        """
        A request costing more than the limit can ever grant is refused
        without a Retry-After.
        """
        app = RateLimitMiddleware(
            hello, limits=[Limit(limiter=bucket(clock), cost=3, name="big")]
        )

        (response,) = get_all(app, ["/"])

        assert 429 == response.status_code
        assert "retry-after" not in response.headers
        assert '"big";r=0' == response.headers["ratelimit"]
        assert "ratelimit-policy" not in response.headers


class TestKeys:
    def test_by_client_address(self, clock):
        """
        Keyed by client address, each client has its own limit.
        """
        app = RateLimitMiddleware(
            hello,
            limits=[Limit(limiter=bucket(clock, capacity=1), key=client_ip)],
        )

        first = get_all(app, ["/", "/"], peer=("198.51.100.1", 1))
        other = get_all(app, ["/"], peer=("198.51.100.2", 1))

        assert [200, 429, 200] == [r.status_code for r in (*first, *other)]

    def test_forwarded_for_from_a_trusted_proxy(self, clock):
        """
        Behind a trusted proxy, X-Forwarded-For names the client.
        """
        app = RateLimitMiddleware(
            hello,
            limits=[Limit(limiter=bucket(clock, capacity=1), key=client_ip)],
            trusted_proxies=["10.0.0.0/8"],
        )
        proxy = ("10.0.0.1", 1)

        alice = get_all(
            app, ["/", "/"], peer=proxy, headers={"X-Forwarded-For": "1.1.1.1"}
        )
        bob = get_all(
            app, ["/"], peer=proxy, headers={"X-Forwarded-For": "2.2.2.2"}
        )

        assert [200, 429, 200] == [r.status_code for r in (*alice, *bob)]

    def test_forwarded_for_ignored_from_anyone_else(self, clock):
        """
        From an untrusted peer, a forged X-Forwarded-For changes nothing.
        """
        app = RateLimitMiddleware(
            hello,
            limits=[Limit(limiter=bucket(clock, capacity=1), key=client_ip)],
            trusted_proxies=["10.0.0.1"],
        )
        peer = ("203.0.113.9", 1)

        first = get_all(
            app, ["/"], peer=peer, headers={"X-Forwarded-For": "1.1.1.1"}
        )
        second = get_all(
            app, ["/"], peer=peer, headers={"X-Forwarded-For": "2.2.2.2"}
        )

        assert [200, 429] == [r.status_code for r in (*first, *second)]

    @pytest.mark.parametrize(
        ("peer", "forwarded", "expected"),
        [
            (None, [], None),
            ("10.0.0.1", [], "10.0.0.1"),
            ("10.0.0.1", ["1.1.1.1, 10.0.0.2"], "1.1.1.1"),
            ("10.0.0.1", ["5.5.5.5, 1.1.1.1"], "1.1.1.1"),
            ("10.0.0.1", ["5.5.5.5", "1.1.1.1, 10.0.0.3"], "1.1.1.1"),
            ("10.0.0.1", ["10.0.0.7, 10.0.0.2"], "10.0.0.7"),
            ("10.0.0.1", ["unknown, 10.0.0.2"], "unknown"),
            ("10.0.0.1", [" , "], "10.0.0.1"),
            ("192.0.2.1", ["1.1.1.1"], "192.0.2.1"),
            ("::1", ["2001:db8::5"], "::1"),
        ],
    )
    def test_client_address_rules(self, peer, forwarded, expected):
        """
        The client is the first hop from the right that is no trusted
        proxy; an untrusted peer is the client.
        """
        scope = {
            "type": "http",
            "client": None if peer is None else (peer, 1),
            "headers": [(b"x-forwarded-for", v.encode()) for v in forwarded],
        }
        trusted = (
            stalwart.asgi._networks(["10.0.0.0/8"])  # type: ignore[attr-defined]
        )

        info = RequestInfo(scope, trusted)

        assert expected == info.client_ip
        assert expected == info.client_ip  # read once, then kept

    def test_by_api_key(self, clock):
        """
        Keyed by an API key, each key has its own limit, and a request
        without one is not limited by it.
        """
        app = RateLimitMiddleware(
            hello,
            limits=[
                Limit(
                    limiter=bucket(clock, capacity=1), key=header("X-API-Key")
                )
            ],
        )

        alice = get_all(app, ["/", "/"], headers={"x-api-key": "alice"})
        bob = get_all(app, ["/"], headers={"x-api-key": "bob"})
        anonymous = get_all(app, ["/", "/"])

        assert [200, 429, 200, 200, 200] == [
            r.status_code for r in (*alice, *bob, *anonymous)
        ]
        assert "ratelimit" not in anonymous[0].headers

    def test_by_user_from_the_scope(self, clock):
        """
        A key can come from anything in the scope (a user set by an
        authentication middleware).
        """

        async def with_user(scope: Any, receive: Any, send: Any) -> None:
            user = dict(scope["headers"]).get(b"x-user", b"").decode()
            await limited({**scope, "user": user}, receive, send)

        limited = RateLimitMiddleware(
            hello,
            limits=[
                Limit(
                    limiter=bucket(clock, capacity=1),
                    key=lambda request: request.scope["user"] or None,
                )
            ],
        )

        responses = get_all(with_user, ["/", "/"], headers={"x-user": "ada"})

        assert [200, 429] == [r.status_code for r in responses]


class TestSeveralLimits:
    def test_each_named_in_the_fields(self, clock):
        """
        Several limits at once: both in the fields, the refusing one in
        the problem; the first limit counted the refused request.
        """
        per_key = Limit(
            limiter=bucket(clock, capacity=5), name="per-key", key=header("k")
        )
        overall = Limit(limiter=bucket(clock, capacity=1), name="global")
        app = RateLimitMiddleware(hello, limits=[per_key, overall])

        granted, refused = get_all(app, ["/", "/"], headers={"k": "a"})

        assert (
            '"per-key";q=5;w=150, "global";q=1;w=30'
            == (granted.headers["ratelimit-policy"])
        )
        assert (
            '"per-key";r=3;t=60, "global";r=0;t=30'
            == (refused.headers["ratelimit"])
        )
        assert ["global"] == refused.json()["violated-policies"]

    def test_per_route(self, clock):
        """
        A limit on some paths and methods leaves the others alone.
        """
        search = Limit(
            limiter=bucket(clock, capacity=1),
            name="search",
            paths=["/search"],
            methods=["post"],
        )
        app = RateLimitMiddleware(hello, limits=[search])

        posts = get_all(
            app, ["/search", "/search/deep", "/searches"], method="POST"
        )
        gets = get_all(app, ["/search"])

        assert [200, 429, 200, 200] == [r.status_code for r in (*posts, *gets)]
        assert "ratelimit" not in gets[0].headers

    def test_per_method(self, clock):
        """
        A limit on a method only, on every path.
        """
        writes = Limit(limiter=bucket(clock, capacity=1), methods=["DELETE"])
        app = RateLimitMiddleware(hello, limits=[writes])

        deletes = get_all(app, ["/a", "/b"], method="DELETE")
        reads = get_all(app, ["/a"])

        assert [200, 429, 200] == [r.status_code for r in (*deletes, *reads)]

    def test_path_prefix_with_slash(self, clock):
        """
        A path ending with a slash covers what is below it.
        """
        limit = Limit(limiter=bucket(clock, capacity=1), paths=["/api/"])
        app = RateLimitMiddleware(hello, limits=[limit])

        responses = get_all(app, ["/api/a", "/api/b", "/other"])

        assert [200, 429, 200] == [r.status_code for r in responses]

    def test_costs(self, clock):
        """
        A cost function weighs requests: an export costs what five
        plain requests do.
        """
        limit = Limit(
            limiter=bucket(clock, capacity=6),
            cost=lambda request: 5 if request.path == "/export" else 1,
        )
        app = RateLimitMiddleware(hello, limits=[limit])

        responses = get_all(app, ["/export", "/", "/"])

        assert [200, 200, 429] == [r.status_code for r in responses]

    def test_allow_list(self, clock):
        """
        Exempt clients are never limited, and get no fields.
        """
        app = RateLimitMiddleware(
            hello,
            limits=[Limit(limiter=bucket(clock, capacity=1), key=client_ip)],
            exempt=lambda request: request.client_ip in {"192.0.2.10"},
        )

        responses = get_all(app, ["/"] * 3, peer=("192.0.2.10", 1))

        assert [200] * 3 == [r.status_code for r in responses]
        assert "ratelimit" not in responses[0].headers


class RemoteLimiter:
    """A limiter whose state is elsewhere: asked through atry_acquire."""

    name = "remote"

    def __init__(self, inner: stalwart.TokenBucket) -> None:
        self.inner = inner
        self.asked: list[tuple[float, Hashable | None]] = []

    def try_acquire(
        self, cost: float = 1, key: Hashable | None = None
    ) -> stalwart.RateLimitDecision:
        raise AssertionError("the middleware must not block the loop")

    async def atry_acquire(
        self, cost: float = 1, key: Hashable | None = None
    ) -> stalwart.RateLimitDecision:
        self.asked.append((cost, key))
        await asyncio.sleep(0)  # a round trip
        return self.inner.try_acquire(cost, key)


class TestLimiters:
    def test_async_limiter(self, clock):
        """
        A limiter with atry_acquire (a networked store) is awaited; one
        without a rate has no window in its policy.
        """
        remote = RemoteLimiter(bucket(clock, capacity=1))
        app = RateLimitMiddleware(
            hello, limits=[Limit(limiter=remote, key=client_ip)]
        )

        granted, refused = get_all(app, ["/", "/"])

        assert [(1, "203.0.113.7")] * 2 == remote.asked
        assert (200, 429) == (granted.status_code, refused.status_code)
        assert '"remote";q=1' == granted.headers["ratelimit-policy"]

    def test_a_limiter_with_only_the_sync_try(self, clock):
        """
        A limiter of the user's own that has only ``try_acquire`` (the
        protocol's minimum) is asked through it.
        """

        class Plain:
            name = "plain"

            def __init__(self) -> None:
                self.inner = bucket(clock, capacity=1)

            def try_acquire(
                self, cost: float = 1, key: Hashable | None = None
            ) -> stalwart.RateLimitDecision:
                return self.inner.try_acquire(cost, key)

        app = RateLimitMiddleware(hello, limits=[Limit(limiter=Plain())])

        granted, refused = get_all(app, ["/", "/"])

        assert (200, 429) == (granted.status_code, refused.status_code)

    @pytest.mark.parametrize(
        "limiter",
        [
            stalwart.GCRA(rate="10/second", burst=5),
            stalwart.FixedWindow(rate="100/hour"),
            stalwart.SlidingWindowLog(rate="100/hour"),
            stalwart.SlidingWindowCounter(rate="100/hour"),
            stalwart.LeakyBucket(rate="1/second", capacity=4),
        ],
        ids=lambda limiter: type(limiter).__name__,
    )
    def test_every_algorithm(self, limiter):
        """
        Every limiter plugs in; the window is the time to grant the quota
        again.
        """
        app = RateLimitMiddleware(hello, limits=[Limit(limiter=limiter)])

        (response,) = get_all(app, ["/"])

        policy = response.headers["ratelimit-policy"]
        assert policy in {
            '"default";q=5;w=1',
            '"default";q=100;w=3600',
            '"default";q=4;w=4',
        }

    def test_name_from_the_limiter_and_escaped(self, clock):
        """
        A limit is named after its limiter; quotes are escaped.
        """
        limit = Limit(limiter=bucket(clock, name='say "hi"'))

        app = RateLimitMiddleware(hello, limits=[limit])
        (response,) = get_all(app, ["/"])

        assert response.headers["ratelimit"].startswith('"say \\"hi\\"";')


class TestPassThrough:
    def test_other_scopes(self, clock):
        """
        Lifespan and websocket scopes reach the app untouched.
        """
        seen: list[str] = []

        async def app(scope: Any, receive: Any, send: Any) -> None:
            seen.append(scope["type"])

        limited = RateLimitMiddleware(
            app, limits=[Limit(limiter=bucket(clock))]
        )
        shed = LoadSheddingMiddleware(
            app, bulkhead=stalwart.Bulkhead(max_concurrent=1)
        )

        for middleware in (limited, shed):
            for kind in ("lifespan", "websocket"):
                asyncio.run(middleware({"type": kind}, None, None))

        assert ["lifespan", "websocket"] * 2 == seen

    def test_no_limit_applies(self, clock):
        """
        A request no limit applies to passes without fields.
        """
        limit = Limit(limiter=bucket(clock), paths=["/api"])
        app = RateLimitMiddleware(hello, limits=[limit])

        (response,) = get_all(app, ["/"])

        assert "ratelimit" not in response.headers

    def test_request_info(self):
        """
        The request view reads method, path and headers (repeated ones
        joined), and defaults sensibly.
        """
        info = RequestInfo(
            {
                "type": "http",
                "method": "PUT",
                "path": "/x",
                "headers": [(b"A", b"1"), (b"a", b"2")],
            }
        )

        assert ("PUT", "/x", {"a": "1, 2"}) == (
            info.method,
            info.path,
            info.headers,
        )
        assert info.headers is info.headers
        assert "<RequestInfo PUT /x>" == repr(info)
        assert ("GET", "/", {}) == (
            RequestInfo({"type": "http"}).method,
            RequestInfo({"type": "http"}).path,
            RequestInfo({"type": "http"}).headers,
        )
        assert "header('X-Key')" == header("X-Key").__name__


class TestStarlette:
    def test_add_middleware(self, clock):
        """
        Starlette's add_middleware builds the middleware with the app.
        """

        async def home(request: Any) -> PlainTextResponse:
            return PlainTextResponse("home")

        app = Starlette(routes=[Route("/", home)])
        app.add_middleware(
            RateLimitMiddleware,
            limits=[Limit(limiter=bucket(clock, capacity=1), key=client_ip)],
        )
        app.add_middleware(
            LoadSheddingMiddleware,
            bulkhead=stalwart.Bulkhead(max_concurrent=10),
        )

        responses = get_all(app, ["/", "/"])

        assert [200, 429] == [r.status_code for r in responses]
        assert "home" == responses[0].text


class TestLoadShedding:
    def test_sheds_when_full(self):
        """
        With every permit taken, a request is answered 503 with
        Retry-After, without reaching the app; the permit comes back.
        """
        bulkhead = stalwart.Bulkhead(max_concurrent=1)
        release = asyncio.Event
        state: dict[str, Any] = {}

        async def slow(scope: Any, receive: Any, send: Any) -> None:
            state["entered"].set()
            await state["release"].wait()
            await hello(scope, receive, send)

        app = LoadSheddingMiddleware(slow, bulkhead=bulkhead, retry_after=2.5)

        async def main() -> tuple[httpx.Response, httpx.Response]:
            state["entered"], state["release"] = release(), release()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://t"
            ) as client:
                first = asyncio.create_task(client.get("/"))
                await state["entered"].wait()
                shed = await client.get("/")
                state["release"].set()
                return await first, shed

        first, shed = asyncio.run(main())

        assert (200, 503) == (first.status_code, shed.status_code)
        assert "3" == shed.headers["retry-after"]
        assert (
            "https://iana.org/assignments/http-problem-types"
            "#temporary-reduced-capacity"
        ) == shed.json()["type"]
        assert 0 == bulkhead.statistics().in_flight

    def test_permit_back_when_the_app_fails(self):
        """
        An app that raises gives its permit back.
        """
        bulkhead = stalwart.Bulkhead(max_concurrent=1)

        async def broken(scope: Any, receive: Any, send: Any) -> None:
            raise RuntimeError("boom")

        app = LoadSheddingMiddleware(broken, bulkhead=bulkhead)

        with pytest.raises(RuntimeError):
            get_all(app, ["/"])

        assert 0 == bulkhead.statistics().in_flight

    def test_exempt_and_custom_answer(self):
        """
        Exempt requests bypass a full bulkhead; others get the app's own
        answer with Retry-After.
        """
        bulkhead = stalwart.Bulkhead(max_concurrent=1)
        bulkhead.try_acquire()
        app = LoadSheddingMiddleware(
            hello,
            bulkhead=bulkhead,
            exempt=lambda request: request.path == "/health",
            response=lambda request: PlainTextResponse(
                f"busy: {request.path}", status_code=503
            ),
        )

        health, busy = get_all(app, ["/health", "/work"])

        assert (200, "busy: /work", "1") == (
            health.status_code,
            busy.text,
            busy.headers["retry-after"],
        )
        bulkhead.release()


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"limiter": object()}, "'limiter'"),
            ({"name": ""}, "'name'"),
            ({"name": "é"}, "'name'"),
            ({"key": "ip"}, "'key'"),
            ({"cost": 0}, "'cost'"),
            ({"cost": "1"}, "'cost'"),
            ({"cost": True}, "'cost'"),
            ({"paths": "/api"}, "'paths'"),
            ({"paths": ["api"]}, "'paths'"),
            ({"methods": "GET"}, "'methods'"),
            ({"methods": ["G T"]}, "'methods'"),
        ],
    )
    def test_limit_refused(self, kwargs, match):
        """
        A bad limit is refused where it is built, named.
        """
        settings: dict[str, Any] = {"limiter": stalwart.GCRA(rate=1)}
        settings.update(kwargs)

        with pytest.raises((TypeError, ValueError), match=match):
            Limit(**settings)

    def test_middleware_refused(self):
        """
        Wrong types are listed; shared names, a bad header mode and bad
        proxies are refused.
        """
        limit = Limit(limiter=stalwart.GCRA(rate=1))

        with pytest.raises(
            TypeError, match="'app'.*'limits'.*'exempt'.*'response'"
        ):
            RateLimitMiddleware(
                None,  # type: ignore[arg-type]
                limits=limit,  # type: ignore[arg-type]
                exempt=1,  # type: ignore[arg-type]
                response=1,  # type: ignore[arg-type]
            )
        with pytest.raises(stalwart.ConfigurationError, match="distinct"):
            RateLimitMiddleware(hello, limits=[limit, limit])
        with pytest.raises(stalwart.ConfigurationError, match="'headers'"):
            RateLimitMiddleware(hello, limits=[limit], headers="all")  # type: ignore[arg-type]
        with pytest.raises(stalwart.ConfigurationError, match="proxies"):
            RateLimitMiddleware(hello, limits=[limit], trusted_proxies=["x"])
        with pytest.raises(stalwart.ConfigurationError, match="proxies"):
            RateLimitMiddleware(hello, limits=[limit], trusted_proxies=[1])  # type: ignore[list-item]
        assert RateLimitMiddleware(
            hello, limits=[limit], trusted_proxies="::1"
        )

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"bulkhead": 3}, TypeError),
            ({"retry_after": -1}, stalwart.ConfigurationError),
            ({"retry_after": float("inf")}, stalwart.ConfigurationError),
            ({"retry_after": True}, stalwart.ConfigurationError),
            ({"exempt": "health"}, TypeError),
        ],
    )
    def test_load_shedding_refused(self, kwargs, error):
        """
        A bad load-shedding setting is refused where it is built.
        """
        settings: dict[str, Any] = {
            "bulkhead": stalwart.Bulkhead(max_concurrent=1)
        }
        settings.update(kwargs)

        with pytest.raises(error):
            LoadSheddingMiddleware(hello, **settings)


def test_under_uvicorn_on_loopback():
    """
    End to end: the middleware under uvicorn on a free loopback port,
    answering real HTTP requests, then stopped.
    """
    uvicorn = pytest.importorskip("uvicorn")
    clock = FakeClock()
    app = RateLimitMiddleware(
        hello,
        limits=[Limit(limiter=bucket(clock, capacity=1), key=client_ip)],
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning")
    )

    async def main() -> list[httpx.Response]:
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:  # noqa: ASYNC110  # uvicorn has no event for it
                await asyncio.sleep(0)  # a yield to its startup, not a wait
            async with httpx.AsyncClient() as client:
                url = f"http://127.0.0.1:{port}/"
                return [await client.get(url), await client.get(url)]
        finally:
            server.should_exit = True
            await serving

    granted, refused = asyncio.run(main())
    sock.close()

    assert (200, 429) == (granted.status_code, refused.status_code)
    assert "30" == refused.headers["retry-after"]
    assert '"default";r=0;t=30' == refused.headers["ratelimit"]
    assert ["default"] == json.loads(refused.content)["violated-policies"]
