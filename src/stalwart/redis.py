"""
Primitives' state shared across processes through Redis (the
``stalwart[redis]`` extra: ``redis``; ``hiredis`` optional).

Build one :class:`RedisStore` per server and pass it as ``store=`` to
rate limiters::

    from stalwart import TokenBucket
    from stalwart.redis import RedisStore

    store = RedisStore(url="redis://localhost:6379/0")
    limiter = TokenBucket(rate="100/minute", name="api", store=store)

See ``docs/redis.md``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from ._redis import RedisStore, RedisStoreStatistics


__all__ = ["RedisStore", "RedisStoreStatistics"]
