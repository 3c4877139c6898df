"""
Per-request overhead of the HTTP integrations, measured in the same run as
what they wrap.

* The httpx transport: a request through ``httpx.Client`` (and
  ``AsyncClient``) on a ``MockTransport`` answering 200 at once (no
  network, so the rows show the transport's own cost), bare and wrapped by
  a resilient transport with no stage, with its defaults (a retry and a
  breaker per host), and with a limiter per host and a bulkhead as well.
  Ratios are to the bare request.
* The ASGI middleware: a bare ASGI application answering 200, awaited
  directly with a minimal ``receive`` and ``send`` (no server, no client),
  bare and behind the rate-limit middleware (one global limit; one keyed
  by client address; the headers on granted answers or not) and the
  load-shedding middleware.  Ratios are to the bare application.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import stalwart

from harness import abatch, batch
from stalwart.asgi import (
    Limit,
    LoadSheddingMiddleware,
    RateLimitMiddleware,
    client_ip,
)
from stalwart.httpx import AsyncResilientTransport, ResilientTransport


URL = "http://api.example.org/items"


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"ok")


def _unlimited() -> stalwart.TokenBucket:
    # A limit that is never reached: the rows measure a granted permit.
    return stalwart.TokenBucket(rate=(10**9, 1.0))


def _transport(kind: str, face: str) -> Any:
    inner = httpx.MockTransport(_ok)
    if kind == "bare":
        return inner
    cls = ResilientTransport if face == "sync" else AsyncResilientTransport
    if kind == "empty":
        return cls(transport=inner, retry=None, breaker=None)
    if kind == "defaults":
        return cls(transport=inner)
    return cls(
        transport=inner,
        limiter=_unlimited(),
        bulkhead=stalwart.Bulkhead(max_concurrent=100),
    )


KINDS = ["bare", "empty", "defaults", "retry-limiter-bulkhead-breaker"]


@pytest.mark.parametrize("kind", KINDS)
def test_httpx_sync(benchmark: Any, kind: str) -> None:
    """A GET through httpx.Client, bare or on a resilient transport."""
    client = httpx.Client(transport=_transport(kind, "sync"))
    if kind != "bare":
        benchmark.extra_info["baseline"] = "test_httpx_sync[bare]"
    benchmark(batch("client.get(url)", {"client": client, "url": URL}))
    client.close()


@pytest.mark.parametrize("kind", KINDS)
def test_httpx_async(benchmark: Any, kind: str) -> None:
    """A GET through httpx.AsyncClient, bare or on a resilient transport."""
    client = httpx.AsyncClient(transport=_transport(kind, "async"))
    if kind != "bare":
        benchmark.extra_info["baseline"] = "test_httpx_async[bare]"
    benchmark(abatch("await client.get(url)", {"client": client, "url": URL}))


SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "GET",
    "scheme": "http",
    "path": "/items",
    "raw_path": b"/items",
    "query_string": b"",
    "headers": [(b"host", b"api"), (b"x-api-key", b"alice")],
    "client": ("203.0.113.7", 4321),
    "server": ("127.0.0.1", 8000),
}


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None


def _asgi(kind: str) -> Any:
    if kind == "bare":
        return _app
    if kind == "global-limit":
        return RateLimitMiddleware(_app, limits=[Limit(limiter=_unlimited())])
    if kind == "global-limit-no-headers":
        return RateLimitMiddleware(
            _app, limits=[Limit(limiter=_unlimited())], headers="never"
        )
    if kind == "limit-per-client-ip":
        return RateLimitMiddleware(
            _app, limits=[Limit(limiter=_unlimited(), key=client_ip)]
        )
    return LoadSheddingMiddleware(
        _app, bulkhead=stalwart.Bulkhead(max_concurrent=100)
    )


ASGI_KINDS = [
    "bare",
    "global-limit",
    "global-limit-no-headers",
    "limit-per-client-ip",
    "load-shedding",
]


@pytest.mark.parametrize("kind", ASGI_KINDS)
def test_asgi(benchmark: Any, kind: str) -> None:
    """An ASGI request answered 200, bare or behind a middleware."""
    if kind != "bare":
        benchmark.extra_info["baseline"] = "test_asgi[bare]"
    ns = {
        "app": _asgi(kind),
        "scope": SCOPE,
        "receive": _receive,
        "send": _send,
    }
    benchmark(abatch("await app(scope, receive, send)", ns))
