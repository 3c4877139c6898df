"""
The ASGI rate-limit middleware on a Redis-backed limiter: two apps (two
workers of one service) share one limit, decided on the store's async
client, so the event loop never waits on the network.
"""

from __future__ import annotations

import asyncio

from typing import Any

import httpx
import redis.asyncio

import stalwart

from stalwart.asgi import Limit, RateLimitMiddleware, client_ip
from stalwart.redis import RedisStore
from stalwart.testing import FakeClock


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def worker(store: RedisStore, clock: FakeClock) -> RateLimitMiddleware:
    """
    One worker's app: its own limiter object on the shared store.
    """
    limiter = stalwart.TokenBucket(
        rate="3/minute", name="api", clock=clock, store=store
    )
    return RateLimitMiddleware(
        hello,
        limits=[
            Limit(
                limiter=limiter,
                name="per-client",
                key=client_ip,
            )
        ],
    )


def test_two_workers_share_one_limit(redis_url: str) -> None:
    """
    Three requests a minute per client across both workers: the fourth
    is refused by whichever worker gets it, with the shared fields; another
    client has its own room.
    """
    clock = FakeClock(1000.0)

    async def main() -> list[httpx.Response]:
        # Only an async client: a sync call would fail, not block.
        aclient = redis.asyncio.Redis.from_url(redis_url)
        store = RedisStore(aclient=aclient)
        apps = [worker(store, clock), worker(store, clock)]
        answers = []
        try:
            for app, peer in [
                (apps[0], "203.0.113.7"),
                (apps[1], "203.0.113.7"),
                (apps[0], "203.0.113.7"),
                (apps[1], "203.0.113.7"),
                (apps[1], "198.51.100.1"),
            ]:
                transport = httpx.ASGITransport(app=app, client=(peer, 5000))
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://testserver"
                ) as client:
                    answers.append(await client.get("/"))
        finally:
            await aclient.aclose()
        return answers

    answers = asyncio.run(main())

    assert [200, 200, 200, 429, 200] == [a.status_code for a in answers]
    refused = answers[3]
    assert "20" == refused.headers["retry-after"]
    assert '"per-client";r=0;t=20' == refused.headers["ratelimit"]
    assert '"per-client";r=2;t=20' == answers[4].headers["ratelimit"]
