"""
Fixtures of the shared-state tests: a real ``redis-server``.

``redis_server`` is one server for the session; ``redis_url`` gives each
test that server with its databases and script cache emptied first.  ``private_redis``
starts a server of the test's own, for the tests that kill, restart or
pause it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from redis_support import RedisServer, started_server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = started_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    client = redis_server.client()
    try:
        client.flushall()
        client.script_flush()
        client.function_flush()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = started_server()
    try:
        yield server
    finally:
        server.close()
