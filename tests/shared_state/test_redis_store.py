"""
The Redis store's core, on a real server: building it, the keys, the
script runner (by digest, reloaded after ``SCRIPT FLUSH`` and restarts),
the failure policies and their events.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading

import pytest
import redis
import redis.asyncio

from redis.crc import key_slot

from redis_support import RedisServer, started_server
from stalwart import (
    ConfigurationError,
    StoreUnavailable,
    StoreUnavailableError,
)
from stalwart._redis import Function, Unavailable
from stalwart.redis import RedisStore, RedisStoreStatistics


ECHO = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}"

# A library's function: its top level runs once (when loaded), main on
# every call; 'calls' counts the calls since the top level ran.
LIBRARY = """
local calls = 0
local function main(KEYS, ARGV)
  calls = calls + 1
  return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1]), calls}
end
"""


class TestBuilt:
    @pytest.mark.parametrize(
        ("kwargs", "words"),
        [
            ({}, "'client'"),
            ({"url": "http://localhost"}, "'url' must start"),
            ({"url": "redis://h", "prefix": "a b"}, "'a b'"),
            ({"url": "redis://h", "prefix": ""}, "'prefix'"),
            ({"url": "redis://h", "prefix": "a{b"}, "braces"),
            ({"url": "redis://h", "on_unavailable": "open"}, "'open'"),
            ({"url": "redis://h", "time": "local"}, "'local'"),
            ({"url": "redis://h", "timeout": 0}, "'timeout'"),
            ({"url": "redis://h", "timeout": float("inf")}, "'timeout'"),
            ({"url": "redis://h", "name": ""}, "'name'"),
        ],
    )
    def test_bad_configuration_is_refused_naming_it(self, kwargs, words):
        with pytest.raises(ConfigurationError, match=words):
            RedisStore(**kwargs)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"url": 6379},
            {"url": "redis://h", "prefix": 1},
            {"url": "redis://h", "timeout": "1"},
            {"url": "redis://h", "timeout": True},
            {"client": "redis://h"},
            {"aclient": redis.Redis()},
        ],
    )
    def test_wrong_types_are_type_errors(self, kwargs):
        with pytest.raises(TypeError):
            RedisStore(**kwargs)

    def test_url_and_a_client_are_not_both_given(self):
        with pytest.raises(ConfigurationError, match="not both"):
            RedisStore(url="redis://h", client=redis.Redis())

    def test_importing_stalwart_does_not_import_redis(self):
        code = (
            "import sys, stalwart; "
            "sys.exit(1 if 'redis' in sys.modules else 0)"
        )
        done = subprocess.run([sys.executable, "-c", code], check=False)
        assert done.returncode == 0

    def test_a_url_builds_both_clients_with_the_timeout(self):
        store = RedisStore(url="redis://127.0.0.1:1/3", timeout=0.5)
        assert isinstance(store.client, redis.Redis)
        assert isinstance(store.aclient, redis.asyncio.Redis)
        kwargs = store.client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 0.5
        assert kwargs["db"] == 3
        assert "client" not in repr(store)


class TestKeys:
    def test_layout_with_a_hash_tag(self):
        store = RedisStore(url="redis://h", prefix="app")
        assert store._key("rl", "api", None) == "app:rl:{api}"
        assert store._key("rl", "api", "user-1") == "app:rl:{api:user-1}"
        assert store._key("rl", "api", b"\xff") == b"app:rl:{api:\xff}"

    @pytest.mark.parametrize("key", [1, 1.5, ("a",), object()])
    def test_a_key_that_is_not_str_or_bytes_is_a_type_error(self, key):
        store = RedisStore(url="redis://h")
        with pytest.raises(TypeError, match="str or bytes"):
            store._key("rl", "api", key)

    def test_every_key_of_one_state_is_in_one_cluster_slot(self):
        store = RedisStore(url="redis://h")
        for key in ("a", "b}c", "{x}", "", b"\x00}"):
            base = store._key("rl", "n", key)
            suffixes = (
                (b":q", b":log0")
                if isinstance(base, bytes)
                else (":q", ":log0")
            )
            slots = {key_slot(_b(base + s)) for s in ("",) * 0 + suffixes}
            slots.add(key_slot(_b(base)))
            assert len(slots) == 1
        # Different keys are spread over slots.
        spread = {
            key_slot(_b(store._key("rl", "n", str(i)))) for i in range(50)
        }
        assert len(spread) > 40


def _b(key: str | bytes) -> bytes:
    return key if isinstance(key, bytes) else key.encode()


class TestFunctions:
    def test_loaded_once_then_called(self, redis_url):
        store = RedisStore(url=redis_url)
        function = Function(LIBRARY)
        assert store._run(function, ["k"], ["a"]) == [b"k", b"a", 1, 1]
        # Built once: the count goes on.
        assert store._run(function, ["k"], ["a"]) == [b"k", b"a", 2, 2]
        assert store.statistics().reloads == 1
        (library,) = store.client.function_list()
        assert library[library.index(b"library_name") + 1] == (
            function.name.encode()
        )
        store.close()

    def test_loaded_again_after_function_flush(self, redis_url):
        store = RedisStore(url=redis_url)
        function = Function(LIBRARY)
        store._run(function, ["k"], ["a"])
        store.client.function_flush()
        assert store._run(function, ["k"], ["a"]) == [b"k", b"a", 2, 1]
        assert store.statistics().reloads == 2

        async def main():
            await store.aclient.function_flush()
            answer = await store._arun(function, ["k"], ["a"])
            await store.aclose()
            return answer

        assert asyncio.run(main()) == [b"k", b"a", 3, 1]
        assert store.statistics().reloads == 3
        store.close()

    def test_an_error_of_the_function_is_raised_as_it_is(self, redis_url):
        store = RedisStore(url=redis_url)
        failing = Function(
            "local function main(KEYS, ARGV)\n"
            "  return redis.error_reply('no such thing')\n"
            "end\n"
        )
        with pytest.raises(redis.ResponseError, match="no such thing"):
            store._run(failing, [], [])

        async def main():
            try:
                await store._arun(failing, [], [])
            finally:
                await store.aclose()

        with pytest.raises(redis.ResponseError, match="no such thing"):
            asyncio.run(main())
        store.close()

    @pytest.mark.parametrize("face", ["sync", "async"])
    def test_a_server_without_functions_runs_the_script(self, face):
        # Redis 6 has no FCALL; this server has it renamed away.
        server = started_server("--rename-command", "FCALL", "")
        try:
            store = RedisStore(url=server.url)
            function = Function(LIBRARY)
            if face == "sync":
                first = store._run(function, ["k"], ["a"])
                second = store._run(function, ["k"], ["a"])
            else:

                async def main():
                    first = await store._arun(function, ["k"], ["a"])
                    second = await store._arun(function, ["k"], ["a"])
                    await store.aclose()
                    return first, second

                first, second = asyncio.run(main())
            # As a script, its top level runs on every call.
            assert first == [b"k", b"a", 1, 1]
            assert second == [b"k", b"a", 2, 1]
            assert store.client.script_exists(function.script.sha) == [True]
            # Loaded as a script once; no library was ever loaded.
            assert store.statistics().reloads == 1
            assert store.client.function_list() == []
            store.close()
        finally:
            server.close()

    @pytest.mark.parametrize("face", ["sync", "async"])
    @pytest.mark.parametrize("denied", ["-fcall", "-function"])
    def test_a_client_that_may_not_use_functions_runs_the_script(
        self, private_redis: RedisServer, face, denied
    ):
        admin = private_redis.client()
        admin.acl_setuser(
            "app",
            enabled=True,
            passwords=["+pw"],
            keys=["*"],
            commands=["+@all", denied],
        )
        admin.close()
        url = f"redis://app:pw@127.0.0.1:{private_redis.port}/0"
        store = RedisStore(url=url)
        function = Function(LIBRARY)
        if face == "sync":
            answers = [store._run(function, ["k"], ["a"]) for _ in "ab"]
        else:

            async def main():
                answers = [
                    await store._arun(function, ["k"], ["a"]) for _ in "ab"
                ]
                await store.aclose()
                return answers

            answers = asyncio.run(main())
        assert answers == [[b"k", b"a", 1, 1], [b"k", b"a", 2, 1]]
        store.close()


class TestRunner:
    def test_runs_by_digest_once_loaded(self, redis_url):
        store = RedisStore(url=redis_url)
        script = store._script(ECHO)
        assert store._run(script, ["k"], ["a"]) == [b"k", b"a", 1]
        assert store._run(script, ["k"], ["a"]) == [b"k", b"a", 2]
        # The first run loaded it: a reload, then none.
        assert store.statistics().reloads == 1
        assert store.client.script_exists(script.sha) == [True]

    def test_reloads_after_script_flush(self, redis_url):
        store = RedisStore(url=redis_url)
        script = store._script(ECHO)
        store._run(script, ["k"], ["a"])
        store.client.script_flush()
        assert store._run(script, ["k"], ["a"])[2] == 2
        assert store.statistics().reloads == 2

    def test_async_runs_and_reloads(self, redis_url):
        store = RedisStore(url=redis_url)
        script = store._script(ECHO)

        async def main():
            first = await store._arun(script, ["k"], ["a"])
            await store.aclient.script_flush()
            second = await store._arun(script, ["k"], ["a"])
            await store.aclose()
            return first, second

        assert asyncio.run(main()) == ([b"k", b"a", 1], [b"k", b"a", 2])

    def test_a_restarted_server_is_used_again_without_a_new_store(
        self, private_redis: RedisServer
    ):
        store = RedisStore(url=private_redis.url)
        script = store._script(ECHO)
        assert store._run(script, ["k"], ["a"])[2] == 1
        private_redis.kill()
        with pytest.raises(Unavailable) as info:
            store._run(script, ["k"], ["a"])
        assert isinstance(info.value.cause, redis.ConnectionError)
        private_redis.restart()
        # Scripts and data are gone; the script is sent again.
        assert store._run(script, ["k"], ["a"])[2] == 1

    def test_a_slow_server_times_out(self, private_redis: RedisServer):
        store = RedisStore(url=private_redis.url, timeout=0.1)
        script = store._script(ECHO)
        store._run(script, ["k"], ["a"])
        other = private_redis.client()
        sleeper = threading.Thread(
            target=other.execute_command, args=("DEBUG", "SLEEP", "1")
        )
        sleeper.start()
        try:
            with pytest.raises(Unavailable) as info:
                # Wait for the server to be asleep: PING answers until then.
                for _ in range(1000):
                    store._run(script, ["k"], ["a"])
            assert isinstance(info.value.cause, redis.TimeoutError)
        finally:
            sleeper.join()
            other.close()
        assert store._run(script, ["k"], ["a"])[2] >= 2

    def test_async_slow_server_times_out_on_the_stores_own_client(
        self, private_redis: RedisServer
    ):
        store = RedisStore(url=private_redis.url, timeout=0.1)
        script = store._script(ECHO)
        store._run(script, ["k"], ["a"])
        other = private_redis.client()
        other.client_pause(2000)
        try:

            async def main():
                try:
                    await store._arun(script, ["k"], ["a"])
                finally:
                    await store.aclose()

            with pytest.raises(Unavailable) as info:
                asyncio.run(main())
            assert isinstance(info.value.cause, TimeoutError)
        finally:
            other.client_unpause()
            other.close()
        store.close()

    def test_async_slow_server_times_out(self, private_redis: RedisServer):
        other = private_redis.client()
        other.client_pause(2000)
        try:

            async def main():
                client = redis.asyncio.Redis.from_url(private_redis.url)
                store = RedisStore(aclient=client, timeout=0.1)
                try:
                    await store._arun(store._script(ECHO), ["k"], ["a"])
                finally:
                    await client.aclose()

            with pytest.raises(Unavailable) as info:
                asyncio.run(main())
            assert isinstance(info.value.cause, TimeoutError)
        finally:
            other.client_unpause()
            other.close()

    def test_a_face_without_its_client_says_which_is_missing(self, redis_url):
        sync_only = RedisStore(client=redis.Redis.from_url(redis_url))
        script = sync_only._script(ECHO)
        with pytest.raises(ConfigurationError, match="no async client"):
            asyncio.run(sync_only._arun(script, ["k"], ["a"]))
        async_only = RedisStore(
            aclient=redis.asyncio.Redis.from_url(redis_url)
        )
        with pytest.raises(ConfigurationError, match="no sync client"):
            async_only._run(script, ["k"], ["a"])
        sync_only.close()

    def test_close_closes_what_there_is(self, redis_url):
        sync_only = RedisStore(client=redis.Redis.from_url(redis_url))
        asyncio.run(sync_only.aclose())
        sync_only.close()
        async_only = RedisStore(
            aclient=redis.asyncio.Redis.from_url(redis_url)
        )
        async_only.close()
        asyncio.run(async_only.aclose())

    @pytest.mark.parametrize("face", ["sync", "async"])
    def test_a_server_that_is_not_redis_is_named(self, face):
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]

            def answer():
                conn, _ = listener.accept()
                with conn:
                    conn.recv(1024)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                    conn.recv(1024)

            thread = threading.Thread(target=answer)
            thread.start()
            store = RedisStore(url=f"redis://127.0.0.1:{port}/0", timeout=2)
            try:
                script = store._script(ECHO)
                with pytest.raises(ConfigurationError, match="not answer as"):
                    if face == "sync":
                        store._run(script, ["k"], ["a"])
                    else:
                        asyncio.run(store._arun(script, ["k"], ["a"]))
            finally:
                store.close()
                thread.join()

    def test_a_wrong_url_is_unavailable(self):
        store = RedisStore(url=f"redis://127.0.0.1:{_closed_port()}/0")
        with pytest.raises(Unavailable):
            store._run(store._script(ECHO), ["k"], ["a"])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestPolicies:
    def _fallback(self, policy, hooks):
        store = RedisStore(url="redis://h", on_unavailable=policy, name="s")
        cause = redis.ConnectionError("down")
        store._fallback(
            Unavailable(cause),
            primitive="rate_limiter",
            name="api",
            hooks=hooks,
            at=5.0,
        )
        return store, cause

    def test_fail_open_returns_and_tells_the_hooks(self):
        events = []
        store, cause = self._fallback("fail_open", [events.append])
        assert events == [
            StoreUnavailable(
                primitive_name="api",
                at=5.0,
                primitive="rate_limiter",
                store="s",
                policy="fail_open",
                error=cause,
            )
        ]
        assert store.statistics() == RedisStoreStatistics(
            name="s", policy="fail_open", degraded=1, reloads=0
        )

    def test_fail_closed_refuses_with_the_cause(self):
        events = []
        with pytest.raises(StoreUnavailableError) as info:
            self._fallback("fail_closed", [events.append])
        error = info.value
        assert (error.name, error.store, error.retry_after) == (
            "api",
            "s",
            None,
        )
        assert isinstance(error.__cause__, redis.ConnectionError)
        assert str(error) == "store 's' unavailable by 'api'"
        assert [e.policy for e in events] == ["fail_closed"]

    def test_raise_lets_the_cause_through(self):
        events = []
        with pytest.raises(redis.ConnectionError, match="down"):
            self._fallback("raise", [events.append])
        assert [e.policy for e in events] == ["raise"]

    def test_no_hooks_no_event(self):
        store, _ = self._fallback("fail_open", [])
        assert store.statistics().degraded == 1

    def test_the_error_pickles(self):
        import pickle

        error = pickle.loads(pickle.dumps(StoreUnavailableError("a", "s")))
        assert (error.name, error.store) == ("a", "s")


def test_the_logging_hook_says_what_happened(caplog):
    import logging

    from stalwart import LoggingHook

    store = RedisStore(url="redis://h", name="shared")
    cause = redis.ConnectionError("refused")
    with caplog.at_level(logging.WARNING, logger="stalwart"):
        store._fallback(
            Unavailable(cause),
            primitive="rate_limiter",
            name="api",
            hooks=[LoggingHook()],
            at=1.0,
        )
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        f"rate_limiter 'api' could not reach store 'shared' (fail_open): "
        f"{cause!r}"
    )
    assert record.stalwart_event == "store_unavailable"
