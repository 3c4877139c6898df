"""
KeyedCircuitBreaker: an independent breaker per key, every face, bounded
memory, totals that never go backwards, one primitive for hooks.
"""

from __future__ import annotations

import asyncio
import json

import pytest

import stalwart

from helpers import Boom, boom, ok
from stalwart import (
    CircuitBreaker,
    CircuitOpenError,
    CircuitState,
    KeyedCircuitBreaker,
)


def hosts(clock, **settings) -> KeyedCircuitBreaker[str]:
    """
    A keyed breaker opening after two failures, keyed by the first
    argument.
    """
    template = CircuitBreaker(
        failure_threshold=2, recovery_time=10, clock=clock, **settings
    )
    return KeyedCircuitBreaker(breaker=template, name="hosts")


def fetch(host: str) -> str:
    """
    Fail for hosts whose name says so.
    """
    if host.startswith("bad"):
        raise Boom(host)
    return host


class TestKeys:
    def test_each_key_has_its_own_state(self, invoke, clock):
        """
        Failures of one key open its breaker only; other keys still run.
        """
        keyed = hosts(clock)
        for _ in range(2):
            with pytest.raises(Boom):
                invoke(keyed, fetch, "bad.example")

        with pytest.raises(CircuitOpenError) as refused:
            invoke(keyed, fetch, "bad.example")
        assert "good.example" == invoke(keyed, fetch, "good.example")
        assert "hosts:bad.example" == refused.value.name
        assert CircuitState.OPEN == keyed.key("bad.example").state
        assert CircuitState.CLOSED == keyed.key("good.example").state

    def test_key_func(self, clock):
        """
        key_func reads the key from any argument.
        """
        keyed = KeyedCircuitBreaker(
            breaker=CircuitBreaker(failure_threshold=1, clock=clock),
            key_func=lambda path, *, host: host,
        )

        def get(path: str, *, host: str) -> str:
            raise Boom

        with pytest.raises(Boom):
            keyed.call(get, "/", host="a")

        with pytest.raises(CircuitOpenError):
            keyed.call(get, "/x", host="a")
        assert ["a"] == list(keyed._entries)

    def test_no_argument_no_key(self, clock):
        """
        Without key_func, a call without a positional argument is refused.
        """
        keyed = hosts(clock)

        with pytest.raises(TypeError, match="first positional argument"):
            keyed.call(ok)

    def test_template_is_checked(self):
        """
        The template must be a CircuitBreaker and key_func callable.
        """
        with pytest.raises(TypeError, match="'breaker' must be"):
            KeyedCircuitBreaker(breaker=object())  # type: ignore[arg-type]
        with pytest.raises(
            stalwart.ConfigurationError, match="'key_func' must be callable"
        ):
            KeyedCircuitBreaker(breaker=CircuitBreaker(), key_func=3)  # type: ignore[arg-type]

    def test_async_key_func_is_refused(self):
        """
        An async key function would answer with a coroutine, never a key
        (every call would share one breaker): refused where built.
        """

        async def host(*args: object) -> str:
            return "a"  # pragma: no cover  # refused before any call

        with pytest.raises(TypeError, match="'key_func' must be a plain"):
            KeyedCircuitBreaker(breaker=CircuitBreaker(), key_func=host)


class TestFaces:
    def test_decorator_sync_and_async(self, clock):
        """
        The decorator guards a def and an async def per key.
        """
        keyed = hosts(clock)
        sync_fetch = keyed(fetch)

        @keyed
        async def afetch(host: str) -> str:
            return fetch(host)

        for _ in range(2):
            with pytest.raises(Boom):
                sync_fetch("bad")

        with pytest.raises(CircuitOpenError):
            asyncio.run(afetch("bad"))
        assert "ok" == asyncio.run(afetch("ok"))
        assert "ok" == sync_fetch("ok")

    def test_generators(self, clock):
        """
        A generator function's whole iteration is one call of its key.
        """
        keyed = hosts(clock)

        @keyed
        def lines(host: str):
            yield host
            raise Boom

        @keyed
        async def alines(host: str):
            yield host
            raise Boom

        async def drain(host: str) -> list[str]:
            return [line async for line in alines(host)]

        with pytest.raises(Boom):
            list(lines("a"))
        with pytest.raises(Boom):
            asyncio.run(drain("a"))

        assert CircuitState.OPEN == keyed.key("a").state

    def test_blocks_and_permits_through_key(self, clock):
        """
        key() gives the key's breaker: with, async with and permits.
        """
        keyed = hosts(clock)
        with pytest.raises(Boom), keyed.key("a"):
            raise Boom

        async def block() -> None:
            async with keyed.key("a"):
                raise Boom

        with pytest.raises(Boom):
            asyncio.run(block())
        permit = keyed.key("b").acquire()
        permit.record_failure()

        with pytest.raises(CircuitOpenError), keyed.key("a"):
            pass
        assert 1 == keyed.key("b").statistics().failures

    def test_guard_steps(self, clock):
        """
        The guard's steps take the key from the arguments; _enter() without
        them is refused; _undo gives the permit back.
        """
        keyed = hosts(clock)
        token = keyed._enter_args(("a",), {})
        keyed._exit(token, Boom(), None)
        token = keyed._enter_args(("a",), {})
        asyncio.run(keyed._aexit(token, Boom(), None))
        undone = keyed._enter_args(("b",), {})
        keyed._undo(undone)

        with pytest.raises(TypeError, match="needs a key"):
            keyed._enter()
        with pytest.raises(TypeError, match="needs a key"):
            asyncio.run(keyed._aenter())
        assert CircuitState.OPEN == keyed.key("a").state
        assert 0 == keyed.key("b").statistics().calls


class TestMemory:
    def test_many_keys_stay_bounded(self, clock):
        """
        20,000 keys that only succeed leave at most a sweep's worth of
        breakers behind, and the totals count every call.
        """
        keyed = hosts(clock)
        for n in range(20_000):
            keyed.call(fetch, f"host{n}")

        stats = keyed.statistics()
        assert len(keyed) <= 128
        assert 20_000 == stats.successes
        assert 20_000 - len(keyed) == stats.forgotten

    def test_keys_with_state_are_kept(self, clock):
        """
        A key with a failure streak, an open breaker or a failure in its
        window is never forgotten, however many keys come and go.
        """
        keyed = hosts(clock)
        windowed = KeyedCircuitBreaker(
            breaker=CircuitBreaker(
                failure_threshold=3,
                window=stalwart.CountWindow(10),
                clock=clock,
            )
        )
        with pytest.raises(Boom):
            keyed.call(boom, "streak")
        for _ in range(2):
            with pytest.raises(Boom):
                keyed.call(boom, "open")
        with pytest.raises(Boom):
            windowed.call(boom, "w")
        for n in range(1000):
            keyed.call(fetch, f"host{n}")
            windowed.call(fetch, f"host{n}")

        assert 1 == keyed.key("streak").statistics().consecutive_failures
        assert CircuitState.OPEN == keyed.key("open").state
        assert 1 == windowed.key("w").statistics().window_failures
        assert keyed.statistics().forgotten > 0

    def test_a_key_used_since_the_last_sweep_is_kept(self, clock):
        """
        A clean key used between two sweeps survives the second.
        """
        keyed = hosts(clock)
        first = keyed.key("kept")
        for n in range(200):
            keyed.key("kept")
            keyed.call(fetch, f"host{n}")

        assert first is keyed.key("kept")


class TestStatistics:
    def test_snapshot_travels(self, clock):
        """
        The snapshot counts keys by state and every key's calls, and
        json.dumps takes its to_dict as is.
        """
        keyed = hosts(clock)
        for _ in range(2):
            with pytest.raises(Boom):
                keyed.call(fetch, "bad")
        keyed.call(fetch, "good")
        with pytest.raises(CircuitOpenError):
            keyed.call(fetch, "bad")
        data = json.loads(json.dumps(keyed.statistics().to_dict()))

        assert "keyed_circuit_breaker" == data["primitive"]
        assert 2 == data["keys"]
        assert 1 == data["states"]["open"]
        assert 1 == data["states"]["closed"]
        assert (1, 2, 1) == (
            data["successes"],
            data["failures"],
            data["rejected"],
        )
        assert "open" == data["breakers"]["bad"]["state"]


class TestHooks:
    def test_events_of_every_key_reach_its_hooks(self, clock):
        """
        Hooks given or attached later receive each key's events, named by
        the key; per-call hooks get CallFinished too.
        """
        given: list[stalwart.Event] = []
        later: list[stalwart.Event] = []
        keyed = KeyedCircuitBreaker(
            breaker=CircuitBreaker(failure_threshold=1, clock=clock),
            name="hosts",
            hooks=[given.append],
        )
        with pytest.raises(Boom):
            keyed.call(boom, "a")
        keyed.add_hook(later.append, per_call=True)
        keyed.call(ok, "b")
        with pytest.raises(Boom):
            keyed.call(boom, "c")

        assert ["hosts:a", "hosts:c"] == [
            e.primitive_name
            for e in given
            if isinstance(e, stalwart.CircuitOpened)
        ]
        assert [("hosts:b", "success"), ("hosts:c", "failure")] == [
            (e.primitive_name, e.outcome)
            for e in later
            if isinstance(e, stalwart.CallFinished)
        ]
        keyed.remove_hook(later.append)
        keyed.remove_hook(given.append)
        keyed.call(ok, "b")
        assert [] == keyed.key("b")._live.all


class TestRaces:
    def test_create_finds_a_key_made_meanwhile(self, clock):
        """
        Creating a key another thread just created returns that breaker.
        """
        keyed = hosts(clock)
        first = keyed._create("a")

        assert first is keyed._create("a")

    def test_hooks_attached_after_keys_exist(self, clock):
        """
        A hook attached once keys exist reaches their breakers too.
        """
        keyed = hosts(clock)
        keyed.key("bad")
        events: list[stalwart.Event] = []
        keyed.add_hook(events.append)
        for _ in range(2):
            with pytest.raises(Boom):
                keyed.call(fetch, "bad")

        assert ["hosts:bad"] == [
            e.primitive_name
            for e in events
            if isinstance(e, stalwart.CircuitOpened)
        ]
