"""
An HTTP API with per-API-key rate limits, and a client that retries
through a circuit breaker.

The server is a Starlette application behind stalwart's ASGI middleware:
load shedding (a bulkhead answering 503 when full), then rate limits per
API key (and per client address for requests without a key), answering
429 with ``Retry-After`` and the ``RateLimit`` headers.  The client is an
``httpx.AsyncClient`` on stalwart's transport: a retry that honours
``Retry-After``, in front of a circuit breaker per host.

It serves on a free port of 127.0.0.1 with uvicorn, makes its requests,
prints what happened and stops.  Time is a FakeClock shared by both sides,
so the waits the server asks for take no real time.
"""

from __future__ import annotations

import asyncio
import socket

import httpx
import uvicorn

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import stalwart

from stalwart.asgi import (
    Limit,
    LoadSheddingMiddleware,
    RateLimitMiddleware,
    client_ip,
    header,
)
from stalwart.httpx import AsyncResilientTransport
from stalwart.testing import FakeClock


clock = FakeClock()
flaky_answers = [503, 502]  # /reports fails twice, then works


async def items(request: Request) -> JSONResponse:
    return JSONResponse({"items": ["lamp", "desk"]})


async def reports(request: Request) -> JSONResponse:
    if flaky_answers:
        return JSONResponse(
            {"error": "busy"}, status_code=flaky_answers.pop(0)
        )
    return JSONResponse({"report": "ready"})


async def down(request: Request) -> JSONResponse:
    return JSONResponse({"error": "database down"}, status_code=500)


def build_app() -> Starlette:
    """The API, behind load shedding and rate limits."""
    app = Starlette(
        routes=[
            Route("/items", items),
            Route("/reports", reports),
            Route("/down", down),
        ]
    )
    app.add_middleware(
        RateLimitMiddleware,
        limits=[
            Limit(
                limiter=stalwart.TokenBucket(
                    rate="30/minute", capacity=3, clock=clock
                ),
                name="per-key",
                key=header("X-API-Key"),
            ),
            Limit(
                limiter=stalwart.GCRA(rate="60/minute", burst=2, clock=clock),
                name="anonymous",
                key=lambda request: (
                    None
                    if "x-api-key" in request.headers
                    else client_ip(request)
                ),
            ),
        ],
    )
    app.add_middleware(
        LoadSheddingMiddleware,
        bulkhead=stalwart.Bulkhead(max_concurrent=50, name="api"),
    )
    return app


def resilient_client(
    base_url: str, api_key: str, timeout: float = 60.0
) -> httpx.AsyncClient:
    """A client whose requests retry through a breaker per host."""
    transport = AsyncResilientTransport(
        retry=stalwart.Retry(attempts=5, wait=0.5, clock=clock),
        breaker=stalwart.CircuitBreaker(
            failure_threshold=3, recovery_time=30.0, clock=clock
        ),
        clock=clock,
    )
    return httpx.AsyncClient(
        transport=transport,
        base_url=base_url,
        headers={"X-API-Key": api_key},
        timeout=timeout,  # also the deadline of each call, retries included
    )


async def play(base_url: str) -> None:
    """The client side: what a user of the API sees."""
    async with resilient_client(base_url, "alice") as alice:
        start = clock.now()
        codes = [(await alice.get("/items")).status_code for _ in range(4)]
        print(f"alice, 4 requests: {codes} in {clock.now() - start:g} s")
        print("  the 4th got a 429, and the retry waited its Retry-After")

    async with resilient_client(base_url, "dave") as dave:
        start = clock.now()
        report = await dave.get("/reports")
        print(
            f"dave, /reports: {report.status_code} {report.json()}"
            f" in {clock.now() - start:g} s"
        )
        print("  after a 503 and a 502, each retried after the backoff")

    async with httpx.AsyncClient(base_url=base_url) as plain:
        headers = {"X-API-Key": "bob"}
        answers = [
            await plain.get("/items", headers=headers) for _ in range(4)
        ]
        answer = answers[-1]
        print(f"bob, without retries: {answer.status_code}")
        print(f"  Retry-After: {answer.headers['Retry-After']}")
        print(f"  RateLimit: {answer.headers['RateLimit']}")
        print(f"  RateLimit-Policy: {answer.headers['RateLimit-Policy']}")
        codes = [(await plain.get("/items")).status_code for _ in range(3)]
        print(f"anonymous, 3 requests: {codes}")

    # A 10 s budget: too short to wait for the breaker's 30 s recovery.
    async with resilient_client(base_url, "carol", timeout=10.0) as carol:
        for _ in range(4):
            try:
                answer = await carol.get("/down")
                print(f"carol, /down: {answer.status_code}")
            except stalwart.CircuitOpenError as error:
                print(
                    "carol, /down: refused by the open breaker, back in"
                    f" {error.retry_after:g} s"
                )


async def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(build_app(), lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:  # noqa: ASYNC110  # uvicorn has no event for it
            await asyncio.sleep(0.01)
        await play(f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        await serving
        sock.close()


if __name__ == "__main__":
    asyncio.run(main())
