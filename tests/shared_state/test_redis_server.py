"""
The test server itself: started, emptied between tests, killed and
restarted on its port.
"""

from __future__ import annotations

import pytest
import redis

from redis_support import RedisServer


def test_each_test_starts_on_an_empty_server(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.dbsize() == 0
        client.set("left-behind", 1)
    finally:
        client.close()


def test_the_next_test_does_not_see_it(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.get("left-behind") is None
    finally:
        client.close()


def test_a_killed_server_restarts_empty_on_its_port(
    private_redis: RedisServer,
) -> None:
    client = private_redis.client()
    try:
        client.set("k", 1)
        private_redis.kill()
        with pytest.raises(redis.ConnectionError):
            client.get("k")
        private_redis.restart()
        assert client.get("k") is None
    finally:
        client.close()
