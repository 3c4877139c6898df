"""
The connections a Redis store keeps out of its clients' pools
(``stalwart._redis_kept``), on a real server: reused, never left with an
answer unread, given back, and never shared with a forked child.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import warnings

import pytest
import redis
import redis.asyncio

from redis_support import RedisServer
from stalwart import FixedWindow, _redis_kept
from stalwart.redis import RedisStore
from stalwart.testing import FakeClock


# Answers with its argument, so that an answer can be told from another.
ECHO = "return {ARGV[1], redis.call('INCR', KEYS[1])}"


def named(client: redis.Redis) -> list[dict[str, object]]:
    """
    The server's connections named as the store's clients are.
    """
    return [c for c in client.client_list() if c["name"] == "kept"]


def sync_store(url: str, **kwargs: object) -> RedisStore:
    client = redis.Redis.from_url(url, client_name="kept", **kwargs)
    return RedisStore(client=client, timeout=0.1)


class TestReused:
    def test_one_caller_keeps_one_connection(self, redis_url):
        store = sync_store(redis_url)
        limiter = FixedWindow(
            rate=(1000, 60.0), store=store, name="l", clock=FakeClock()
        )
        for _ in range(50):
            assert limiter.try_acquire()
        watcher = redis.Redis.from_url(redis_url)
        assert len(named(watcher)) == 1
        # Sent on a connection the store keeps, not checked out each time.
        kept = store._kept._lane
        assert kept is not None
        assert kept.held == 1
        assert len(kept.idle) == 1
        assert limiter.peek().remaining == 949
        store.close()
        watcher.close()

    def test_threads_each_decide_once_on_a_few_connections(self, redis_url):
        store = sync_store(redis_url)
        limiter = FixedWindow(
            rate=(10_000, 60.0), store=store, name="l", clock=FakeClock()
        )
        barrier = threading.Barrier(12)

        def work() -> None:
            barrier.wait()
            for _ in range(100):
                assert limiter.try_acquire()

        threads = [threading.Thread(target=work) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert limiter.peek().remaining == 10_000 - 1201
        # At most 8 kept; callers beyond them used the client's pool.
        kept = store._kept._lane
        assert kept is not None
        assert kept.held <= 8
        store.close()

    def test_async_tasks_share_the_kept_connections(self, redis_url):
        async def main() -> int:
            client = redis.asyncio.Redis.from_url(
                redis_url, client_name="kept"
            )
            store = RedisStore(aclient=client)
            limiter = FixedWindow(
                rate=(10_000, 60.0), store=store, name="l", clock=FakeClock()
            )

            async def work() -> None:
                for _ in range(50):
                    assert await limiter.atry_acquire()

            await asyncio.gather(*(work() for _ in range(20)))
            left = (await limiter.atry_acquire()).remaining
            await store.aclose()
            return left

        assert asyncio.run(main()) == 10_000 - 1001

    def test_threads_and_an_event_loop_on_one_store_at_once(self, redis_url):
        store = RedisStore(
            client=redis.Redis.from_url(redis_url),
            aclient=redis.asyncio.Redis.from_url(redis_url),
        )
        limiter = FixedWindow(
            rate=(10_000, 60.0), store=store, name="l", clock=FakeClock()
        )
        barrier = threading.Barrier(5)

        def sync_work() -> None:
            barrier.wait()
            for _ in range(100):
                assert limiter.try_acquire()

        def loop_work() -> None:
            async def main() -> None:
                async def task() -> None:
                    for _ in range(50):
                        assert await limiter.atry_acquire()

                barrier.wait()
                await asyncio.gather(*(task() for _ in range(4)))
                await store.aclose()

            asyncio.run(main())

        threads = [threading.Thread(target=sync_work) for _ in range(4)]
        threads.append(threading.Thread(target=loop_work))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Every decision counted once: 400 from threads, 200 from tasks.
        assert limiter.peek().remaining == 10_000 - 601
        store.close()

    def test_one_store_on_event_loops_one_after_the_other(self, redis_url):
        client = redis.asyncio.Redis.from_url(redis_url)
        store = RedisStore(aclient=client)
        limiter = FixedWindow(
            rate=(10, 60.0), store=store, name="l", clock=FakeClock()
        )

        async def one() -> int:
            try:
                return (await limiter.atry_acquire()).remaining
            finally:
                await store.aclose()

        assert [asyncio.run(one()) for _ in range(3)] == [9, 8, 7]

    # The first loop's socket can no longer be closed properly: Python
    # warns when it is collected.
    @pytest.mark.filterwarnings(
        "ignore::pytest.PytestUnraisableExceptionWarning"
    )
    def test_aclose_after_a_loop_that_ended_without_it(self, redis_url):
        def run() -> list[int]:
            client = redis.asyncio.Redis.from_url(redis_url)
            store = RedisStore(aclient=client)
            limiter = FixedWindow(
                rate=(10, 60.0), store=store, name="l", clock=FakeClock()
            )
            first = asyncio.run(limiter.atry_acquire()).remaining

            async def last() -> int:
                left = (await limiter.atry_acquire()).remaining
                await store.aclose()  # does not raise for the closed loop's
                return left

            return [first, asyncio.run(last())]

        assert run() == [9, 8]
        gc.collect()

    @pytest.mark.parametrize(
        "kwargs",
        [{"single_connection_client": True}, {"max_connections": 1}],
        ids=["single connection", "one connection in the pool"],
    )
    def test_a_client_with_no_connection_to_spare_is_used_as_it_is(
        self, redis_url, kwargs
    ):
        store = sync_store(redis_url, **kwargs)
        limiter = FixedWindow(
            rate=(10, 60.0), store=store, name="l", clock=FakeClock()
        )
        for _ in range(3):
            assert limiter.try_acquire()
        assert limiter.peek().remaining == 6
        kept = store._kept._lane
        assert kept is not None
        assert kept.held == 0
        store.close()


class TestGivenBack:
    def test_close_gives_the_connections_back_to_the_pool(self, redis_url):
        pool = redis.BlockingConnectionPool.from_url(
            redis_url, max_connections=2, timeout=0.01
        )
        client = redis.Redis(connection_pool=pool)
        store = RedisStore(client=client)
        limiter = FixedWindow(
            rate=(10, 60.0), store=store, name="l", clock=FakeClock()
        )
        assert limiter.try_acquire()
        store.close()
        # Both of the pool's connections can be had again.
        first = pool.get_connection()
        second = pool.get_connection()
        pool.release(first)
        pool.release(second)
        pool.disconnect()

    def test_aclose_gives_the_connections_back_to_the_pool(self, redis_url):
        async def main() -> None:
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                redis_url, max_connections=2, timeout=0.01
            )
            client = redis.asyncio.Redis(connection_pool=pool)
            store = RedisStore(aclient=client)
            limiter = FixedWindow(
                rate=(10, 60.0), store=store, name="l", clock=FakeClock()
            )
            assert await limiter.atry_acquire()
            await store.aclose()
            first = await pool.get_connection()
            second = await pool.get_connection()
            await pool.release(first)
            await pool.release(second)
            await pool.disconnect()

        asyncio.run(main())


class TestBroken:
    def kill_kept(self, url: str) -> None:
        watcher = redis.Redis.from_url(url)
        for connection in named(watcher):
            watcher.client_kill_filter(_id=connection["id"])
        watcher.close()

    def test_a_connection_killed_meanwhile_is_replaced_unseen(self, redis_url):
        store = sync_store(redis_url)
        limiter = FixedWindow(
            rate=(10, 60.0), store=store, name="l", clock=FakeClock()
        )
        assert limiter.try_acquire()
        self.kill_kept(redis_url)
        # Decided once, on a new connection.
        assert limiter.try_acquire().remaining == 8
        assert limiter.try_acquire().remaining == 7
        assert store.statistics().degraded == 0
        store.close()

    def test_an_async_connection_killed_meanwhile_is_replaced_unseen(
        self, redis_url
    ):
        async def main() -> list[int]:
            client = redis.asyncio.Redis.from_url(
                redis_url, client_name="kept"
            )
            store = RedisStore(aclient=client)
            limiter = FixedWindow(
                rate=(10, 60.0), store=store, name="l", clock=FakeClock()
            )
            assert await limiter.atry_acquire()
            self.kill_kept(redis_url)
            left = [(await limiter.atry_acquire()).remaining for _ in range(2)]
            assert store.statistics().degraded == 0
            await store.aclose()
            return left

        assert asyncio.run(main()) == [8, 7]


class TestNothingLeftUnread:
    """
    A call that gave up before its answer came leaves no answer behind:
    the next call hears its own.
    """

    def asleep(self, server: RedisServer, seconds: str) -> threading.Thread:
        other = server.client()
        sleeper = threading.Thread(
            target=other.execute_command, args=("DEBUG", "SLEEP", seconds)
        )
        sleeper.start()
        return sleeper

    def test_after_a_timeout(self, private_redis: RedisServer):
        store = RedisStore(url=private_redis.url, timeout=0.05)
        script = store._script(ECHO)
        assert store._run(script, ["k"], ["first"])[0] == b"first"
        sleeper = self.asleep(private_redis, "0.5")
        timed_out = 0
        try:
            # Until the server is asleep, the calls are answered.
            for _ in range(1000):
                try:
                    store._run(script, ["k"], ["lost"])
                except Exception:  # noqa: BLE001  # Unavailable, checked below
                    timed_out += 1
                    break
        finally:
            sleeper.join()
        assert timed_out == 1
        assert store._run(script, ["k"], ["mine"])[0] == b"mine"
        store.close()

    def test_after_an_async_timeout(self, private_redis: RedisServer):
        async def main() -> bytes:
            store = RedisStore(url=private_redis.url, timeout=0.05)
            script = store._script(ECHO)
            await store._arun(script, ["k"], ["first"])
            sleeper = self.asleep(private_redis, "0.5")
            try:
                for _ in range(1000):
                    try:
                        await store._arun(script, ["k"], ["lost"])
                    except Exception:  # noqa: BLE001  # Unavailable
                        break
                else:
                    pytest.fail("the server never fell asleep")
            finally:
                await asyncio.to_thread(sleeper.join)
            answer = await store._arun(script, ["k"], ["mine"])
            await store.aclose()
            return bytes(answer[0])

        assert asyncio.run(main()) == b"mine"

    def test_after_a_cancellation(self, private_redis: RedisServer):
        async def main() -> bytes:
            store = RedisStore(url=private_redis.url, timeout=5.0)
            script = store._script(ECHO)
            await store._arun(script, ["k"], ["first"])
            paused = private_redis.client()
            # Paused for half a second: the call waits for its answer.
            paused.client_pause(500)
            try:
                task = asyncio.ensure_future(
                    store._arun(script, ["k"], ["lost"])
                )
                lane = store._kept._alanes[asyncio.get_running_loop()]
                while lane.idle:  # noqa: ASYNC110  # until it took its connection: no event says so
                    await asyncio.sleep(0)
                await asyncio.sleep(0)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            finally:
                await asyncio.to_thread(paused.client_unpause)
                paused.close()
            answer = await store._arun(script, ["k"], ["mine"])
            await store.aclose()
            return bytes(answer[0])

        assert asyncio.run(main()) == b"mine"


class TestForked:
    def test_a_forked_child_opens_its_own_connections(self, redis_url):
        store = sync_store(redis_url)
        limiter = FixedWindow(
            rate=(10, 60.0), store=store, name="l", clock=FakeClock()
        )
        assert limiter.try_acquire()
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork() with threads running (the
            # test server's log reader): the child only talks to Redis.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover  # the child: coverage is the parent's
            code = 1
            try:
                lane = store._kept._lane
                ok = lane is None and limiter.try_acquire().remaining == 8
                code = 0 if ok else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's connection was never used by the child.
        assert limiter.try_acquire().remaining == 7
        store.close()


class TestPacked:
    @pytest.mark.parametrize(
        "command",
        [
            (
                "FCALL",
                "stalwart_f",
                2,
                "p:rl:{l:ключ}",
                b"p:rl:{l:\xff}:q",
                "decide",
                "1.5",
                "",
            ),
            ("EVALSHA", "0" * 40, 1, "k", "a"),
            ("FUNCTION", "LOAD", "REPLACE", "#!lua name=x\nreturn 1\n"),
        ],
        ids=["fcall", "evalsha", "function load"],
    )
    @pytest.mark.parametrize(
        "connection",
        [redis.Connection, redis.asyncio.Connection],
        ids=["sync", "async"],
    )
    def test_as_the_connection_packs_it(self, command, connection):
        conn = connection()
        assert b"".join(_redis_kept.pack(conn, command)) == b"".join(
            _redis_kept.python_pack(conn, command)
        )
