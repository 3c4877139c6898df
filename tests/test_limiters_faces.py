"""
The rate limiters' faces under composition: one guard path for every face,
misuse refused before a permit is taken, blocks that exit out of order,
cancellation, hooks that raise, per-call events, statistics that travel,
and a limiter inside a retry and a pipeline.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import warnings

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import stalwart

from limiter_support import ALL, IDS
from stalwart import (
    CallAdmitted,
    CallRejected,
    RateLimitExceededError,
    TokenBucket,
)
from stalwart.testing import FakeClock


@pytest.fixture(name="cls", params=ALL, ids=IDS)
def _cls(request: pytest.FixtureRequest) -> Any:
    """
    Every limiter class.
    """
    return request.param


def _one_per_minute(cls: Any, clock: FakeClock, **kwargs: Any) -> Any:
    """
    A limiter of *cls* that grants one request a minute.
    """
    return cls(rate="1/minute", clock=clock, **kwargs)


def _per_key(item: str) -> str:
    return item


def _echo(item: str) -> str:
    return item


async def _aecho(item: str) -> str:
    return item


class TestAsyncTry:
    def test_decides_as_try_acquire_in_memory(self, cls: Any) -> None:
        """
        ``atry_acquire`` is the async twin of ``try_acquire``: the same
        decisions, counters and refusal events, key by key.
        """
        clock = FakeClock()
        events: list[object] = []
        heard: list[object] = []
        sync = cls(rate=(2, 1.0), clock=clock, hooks=[heard.append])
        both = cls(rate=(2, 1.0), clock=clock, hooks=[events.append])

        async def run() -> None:
            for step, key in [(0, None), (0, None), (0, None), (0, "k")]:
                clock.advance(step)
                assert sync.try_acquire(1, key) == await both.atry_acquire(
                    1, key
                )
            clock.advance(1.0)
            assert sync.try_acquire() == await both.atry_acquire()

        asyncio.run(run())
        assert sync.statistics().to_dict() | {"name": "x"} == (
            both.statistics().to_dict() | {"name": "x"}
        )
        assert [type(e) for e in heard] == [type(e) for e in events]
        assert CallRejected in map(type, events)

    def test_a_bad_cost_is_refused(self, cls: Any) -> None:
        limiter = cls(rate=(2, 1.0), clock=FakeClock())
        with pytest.raises(TypeError, match="'cost' must be a number"):
            asyncio.run(limiter.atry_acquire("1"))
        with pytest.raises(RateLimitExceededError) as info:
            asyncio.run(limiter.atry_acquire(3))
        assert info.value.retry_after is None


class TestMisuse:
    def test_call_refuses_an_async_function_taking_nothing(self, cls, clock):
        """
        call() given an async function raises TypeError naming acall()
        before anything is taken or counted (and leaves no coroutine
        behind to warn).
        """
        limiter = _one_per_minute(cls, clock, name="api")

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(TypeError, match=r"'api'.*use acall\(\)"):
                limiter.call(_aecho, "x")

        assert (0, 0) == (
            limiter.statistics().granted,
            limiter.statistics().refused,
        )
        assert limiter.try_acquire()

    def test_call_refuses_an_awaitable_result(self, clock):
        """
        call() given a plain function that returns a coroutine raises
        TypeError naming acall() and closes the coroutine; the function
        was called, so its permit is spent.
        """
        limiter = TokenBucket(rate="1/minute", clock=clock, name="api")

        def lazy() -> Any:
            return _aecho("x")

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(TypeError, match=r"use acall\(\)"):
                limiter.call(lazy)

        assert 1 == limiter.statistics().granted

    def test_acall_refuses_a_plain_result(self, clock):
        """
        acall() given a function whose result cannot be awaited raises
        TypeError naming call().
        """
        limiter = TokenBucket(rate=10, clock=clock, name="api")

        with pytest.raises(TypeError, match=r"use call\(\)"):
            asyncio.run(limiter.acall(_echo, "x"))  # type: ignore[arg-type]

    @pytest.mark.parametrize("key_func", [None, _per_key], ids=["", "keyed"])
    def test_decorated_misuse(self, clock, key_func):
        """
        A decorated def that returns a coroutine, and a decorated async
        def-like callable that returns a plain value, are refused naming
        the right face.
        """
        limiter = TokenBucket(rate=10, clock=clock, key_func=key_func)

        @limiter
        def lazy(item: str) -> Any:
            return _aecho(item)

        class Plain:
            async def __call__(self, item: str) -> str:
                return item  # pragma: no cover  # replaced below

        plain = Plain()
        limited = limiter(plain)
        plain.__class__ = type(
            "Sync", (), {"__call__": lambda self, item: item}
        )

        with pytest.raises(TypeError, match=r"use acall\(\)"):
            lazy("x")
        with pytest.raises(TypeError, match=r"use call\(\)"):
            asyncio.run(limited("x"))

    def test_async_key_func_and_hooks_refused_where_built(self, cls):
        """
        An async key_func or hook is refused when the limiter is built.
        """

        async def key(*args: object) -> str:
            return "k"  # pragma: no cover  # never called

        async def hook(event: object) -> None:
            pass  # pragma: no cover  # never called

        with pytest.raises(TypeError, match="key_func"):
            cls(rate=1, key_func=key)
        with pytest.raises(TypeError, match="hook"):
            cls(rate=1, hooks=[hook])
        with pytest.raises(TypeError, match="hook"):
            cls(rate=1).add_hook(hook)


class TestBlockingOnALoop:
    @pytest.mark.parametrize(
        ("face", "names"),
        [
            ("with", r"`with limiter` .*use `async with limiter`"),
            ("acquire", r"acquire\(\) .*use await limiter.aacquire\(\)"),
            ("call", r"call\(\) .*use acall\(\)"),
            ("decorator", r"call\(\) .*use acall\(\)"),
        ],
    )
    def test_refused_and_booking_given_back(self, cls, clock, face, names):
        """
        A sync face that would have to wait, used on the thread of a
        running event loop, raises RuntimeError naming its async twin and
        gives its booking back: the next async caller gets the same slot.
        """
        limiter = _one_per_minute(cls, clock, name="api")
        limiter.acquire()
        slot = limiter.peek().retry_after

        async def main() -> float:
            with pytest.raises(RuntimeError, match=names):
                if face == "with":
                    with limiter:
                        pass  # pragma: no cover  # never entered
                elif face == "acquire":
                    limiter.acquire()
                elif face == "call":
                    limiter.call(_echo, "x")
                else:
                    limiter(_echo)("x")
            assert 0.0 == clock.now()
            await limiter.aacquire()
            return clock.now()

        assert slot == asyncio.run(main())
        assert (2, 0) == (
            limiter.statistics().granted,
            limiter.statistics().refused,
        )

    def test_granted_at_once_on_a_loop(self, clock):
        """
        A sync face granted at once never blocks, so it is allowed on a
        loop's thread.
        """
        limiter = TokenBucket(rate=10, clock=clock)

        async def main() -> None:
            with limiter:
                pass
            limiter.acquire()

        asyncio.run(main())

        assert 2 == limiter.statistics().granted


class TestGenerators:
    @pytest.mark.parametrize("key_func", [None, _per_key], ids=["", "keyed"])
    def test_generator_takes_its_permit_when_iterated(self, clock, key_func):
        """
        A decorated generator function takes one permit at its first step
        (not when called), for the whole iteration.
        """
        limiter = TokenBucket(
            rate="2/minute", clock=clock, key_func=key_func, timeout=0
        )

        @limiter
        def items(item: str) -> Iterator[str]:
            yield item
            yield item

        made = [items("a"), items("a"), items("a")]
        assert 0 == limiter.statistics().granted
        assert ["a", "a"] == list(made[0])
        assert ["a", "a"] == list(made[1])
        with pytest.raises(RateLimitExceededError):
            next(made[2])
        assert (2, 1) == (
            limiter.statistics().granted,
            limiter.statistics().refused,
        )

    @pytest.mark.parametrize("key_func", [None, _per_key], ids=["", "keyed"])
    def test_async_generator(self, clock, key_func):
        """
        A decorated async generator function takes one permit at its
        first step, waiting for it.
        """
        limiter = TokenBucket(rate="1/minute", clock=clock, key_func=key_func)

        @limiter
        async def items(item: str) -> AsyncIterator[str]:
            yield item
            yield item

        async def main() -> list[tuple[str, float]]:
            made = [items("a"), items("a")]
            seen = []
            for agen in made:
                async for item in agen:
                    seen.append((item, clock.now()))
            return seen

        assert [("a", 0.0), ("a", 0.0), ("a", 60.0), ("a", 60.0)] == (
            asyncio.run(main())
        )

    def test_decorated_functions_by_key(self, clock):
        """
        Decorated def and async def, call() and acall() take the key from
        the call's arguments, each key its own allowance.
        """
        limiter = TokenBucket(
            rate="1/minute", clock=clock, key_func=_per_key, timeout=0
        )
        echo, aecho = limiter(_echo), limiter(_aecho)

        assert "a" == echo("a")
        assert "b" == asyncio.run(aecho("b"))
        assert "c" == limiter.call(_echo, "c")
        assert "d" == asyncio.run(limiter.acall(_aecho, "d"))
        with pytest.raises(RateLimitExceededError):
            echo("a")
        with pytest.raises(RateLimitExceededError):
            asyncio.run(limiter.acall(_aecho, "d"))
        assert (4, 2) == (
            limiter.statistics().granted,
            limiter.statistics().refused,
        )


class TestBlocks:
    def test_generators_stepped_alternately(self, cls, clock):
        """
        Two generators, each with a `with limiter:` around a yield,
        stepped alternately: each block takes its own permit and both
        finish.
        """
        limiter = cls(rate="2/minute", clock=clock, timeout=0)

        def worker(name: str) -> Iterator[str]:
            with limiter:
                yield name
            yield f"{name} done"

        first, second = worker("a"), worker("b")
        steps = [next(first), next(second), next(first), next(second)]

        assert ["a", "b", "a done", "b done"] == steps
        assert 2 == limiter.statistics().granted
        with pytest.raises(RateLimitExceededError):
            next(worker("c"))

    def test_async_generator_stepped_from_tasks(self, clock):
        """
        An async generator holding `async with limiter` stepped from
        different tasks (wait_for and create_task) raises nothing and
        takes one permit a block.
        """
        limiter = TokenBucket(rate="1/minute", clock=clock)

        async def agen() -> AsyncIterator[float]:
            for _ in range(2):
                async with limiter:
                    yield clock.now()

        async def main() -> list[float]:
            it = agen()
            first = await asyncio.wait_for(it.__anext__(), 1000)
            second = await asyncio.create_task(it.__anext__())
            with pytest.raises(StopAsyncIteration):
                await asyncio.create_task(it.__anext__())
            return [first, second]

        assert [0.0, 60.0] == asyncio.run(main())
        assert 2 == limiter.statistics().granted

    def test_nested_blocks(self, clock):
        """
        Nested blocks of one limiter each take a permit.
        """
        limiter = TokenBucket(rate="2/minute", clock=clock, timeout=0)

        with limiter, limiter:
            pass

        assert 2 == limiter.statistics().granted
        with pytest.raises(RateLimitExceededError), limiter:
            pass  # pragma: no cover  # refused

    def test_no_context_growth(self, clock):
        """
        10,000 limiters used once each in `with` leave the caller's
        context as it was.
        """
        before = len(contextvars.copy_context())

        for _ in range(10_000):
            with TokenBucket(rate=1, clock=clock):
                pass

        assert before == len(contextvars.copy_context())


class TestCancellation:
    def test_cancelled_wait_gives_the_booking_back(self, cls):
        """
        A task cancelled while it waits in aacquire (its only await) gives
        its booking back: the waiter behind it moves up to its slot.
        """
        clock = FakeClock(autojump=False)
        limiter = _one_per_minute(cls, clock)
        limiter.acquire()
        slot = limiter.peek().retry_after

        async def main() -> float:
            first = asyncio.create_task(limiter.aacquire())
            second = asyncio.create_task(limiter.aacquire())
            await asyncio.sleep(0)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            clock.advance(slot)
            await second
            return clock.now()

        assert slot == asyncio.run(main())
        assert 2 == limiter.statistics().granted


class TestQueue:
    @pytest.mark.parametrize("key", [None, "k"], ids=["default", "keyed"])
    def test_try_acquire_never_jumps_a_waiter(self, cls, key):
        """
        While a task waits for its booked slot on a key, try_acquire on
        that key is refused even once the slot has room, until the waiter
        is served.
        """
        clock = FakeClock(autojump=False)
        limiter = _one_per_minute(cls, clock)
        limiter.acquire(key=key)
        slot = limiter.peek(key=key).retry_after

        async def main() -> tuple[bool, bool]:
            waiter = asyncio.create_task(limiter.aacquire(key=key))
            for _ in range(3):  # the waiter parks on the clock
                await asyncio.sleep(0)
            refused = limiter.try_acquire(key=key)
            clock.advance(slot)
            await waiter
            return bool(refused), bool(limiter.try_acquire(key=key))

        assert (False, False) == asyncio.run(main())
        assert 2 == limiter.statistics().granted


class TestHooksThatRaise:
    def test_base_exception_on_admission(self, clock):
        """
        A KeyboardInterrupt from a per-call hook at admission reaches the
        caller; the grant is counted once, and the next request is
        decided on it.
        """
        limiter = TokenBucket(rate="2/minute", clock=clock, timeout=0)

        def hook(event: object) -> None:
            if isinstance(event, CallAdmitted):
                raise KeyboardInterrupt

        limiter.add_hook(hook, per_call=True)
        with pytest.raises(KeyboardInterrupt):
            limiter.call(_echo, "x")
        limiter.remove_hook(hook)

        assert "y" == limiter.call(_echo, "y")
        with pytest.raises(RateLimitExceededError):
            limiter.call(_echo, "z")
        assert (2, 1) == (
            limiter.statistics().granted,
            limiter.statistics().refused,
        )

    def test_base_exception_on_refusal(self, clock):
        """
        A KeyboardInterrupt from a hook at a refusal reaches the caller;
        the refusal is counted once and nothing is granted.
        """

        def hook(event: object) -> None:
            raise KeyboardInterrupt

        limiter = TokenBucket(
            rate="1/minute", clock=clock, timeout=0, hooks=[hook]
        )
        limiter.acquire()

        with pytest.raises(KeyboardInterrupt):
            limiter.acquire(timeout=0)

        assert (1, 1) == (
            limiter.statistics().granted,
            limiter.statistics().refused,
        )


class TestEvents:
    def test_hook_attached_later_hears_refusals(self, clock):
        """
        A hook attached with add_hook receives the refusals, as one given
        in hooks= does; removed, it hears nothing more.
        """
        events: list[object] = []
        limiter = TokenBucket(rate="1/minute", clock=clock, name="api")
        limiter.add_hook(events.append)
        limiter.try_acquire()
        limiter.try_acquire()
        limiter.remove_hook(events.append)
        limiter.try_acquire()

        assert [CallRejected] == [type(event) for event in events]
        assert () == limiter.hooks

    def test_admissions_with_their_wait(self, clock):
        """
        Per-call hooks receive a CallAdmitted for every admitted caller,
        with how long it waited; other hooks do not.
        """
        calls: list[Any] = []
        others: list[Any] = []
        limiter = TokenBucket(
            rate="1/minute", clock=clock, name="api", hooks=[others.append]
        )
        limiter.add_hook(calls.append, per_call=True)

        async def main() -> None:
            async with limiter:
                pass
            await limiter.aacquire()

        with limiter:
            pass
        asyncio.run(main())

        assert [
            ("api", "rate_limiter", 0.0, 0.0),
            ("api", "rate_limiter", 60.0, 60.0),
            ("api", "rate_limiter", 60.0, 120.0),
        ] == [(e.primitive_name, e.primitive, e.wait, e.at) for e in calls]
        assert [] == others

    def test_admitted_at_once_waits_nothing(self, clock):
        """
        A caller admitted at once waited exactly 0.0 (the decision's
        time), on either face; one that waited is admitted at its slot.
        """
        calls: list[Any] = []
        limiter = TokenBucket(rate="1/minute", clock=clock)
        limiter.add_hook(calls.append, per_call=True)

        asyncio.run(limiter.aacquire())
        limiter.acquire()
        clock.advance(60.0)
        limiter.acquire()

        assert [(0.0, 0.0), (60.0, 60.0), (0.0, 120.0)] == [
            (e.wait, e.at) for e in calls
        ]


class TestStatistics:
    def test_remaining_and_json(self, cls, clock):
        """
        Statistics are a Statistics with the limiter's name, the permits
        of cost one the default key has now, and a to_dict() json.dumps
        takes.
        """
        limiter = cls(rate="3/minute", clock=clock, name="api")
        before = limiter.statistics()
        limiter.try_acquire()
        limiter.try_acquire(key="k")
        after = limiter.statistics()
        for _ in range(2):
            limiter.try_acquire()
        limiter.try_acquire()

        assert isinstance(after, stalwart.Statistics)
        assert (3, 2, 0) == (
            before.remaining,
            after.remaining,
            limiter.statistics().remaining,
        )
        assert {
            "primitive": "rate_limiter",
            "name": "api",
            "granted": 2,
            "refused": 0,
            "keys": 1,
            "remaining": 2,
        } == json.loads(json.dumps(after.to_dict()))


class TestRegistry:
    def test_from_a_dict_with_health(self):
        """
        A registry builds limiters from a plain dict, attaches its hooks
        to them, and reports them in health().
        """
        clock = FakeClock()
        events: list[object] = []
        registry = stalwart.Registry.from_dict(
            {
                "token_bucket": {"api": {"rate": "2/minute"}},
                "sliding_window_log": {"search": {"rate": "1/second"}},
            },
            clock=clock,
            hooks=[events.append],
        )
        api = registry.get(TokenBucket, "api")
        for _ in range(3):
            api.try_acquire()

        health = registry.health()

        assert "ok" == health["status"]
        assert [
            {
                "primitive": "rate_limiter",
                "name": "api",
                "granted": 2,
                "refused": 1,
                "keys": 0,
                "remaining": 0,
                "status": "ok",
            },
            {
                "primitive": "rate_limiter",
                "name": "search",
                "granted": 0,
                "refused": 0,
                "keys": 0,
                "remaining": 1,
                "status": "ok",
            },
        ] == health["primitives"]
        assert [CallRejected] == [type(event) for event in events]


class TestComposition:
    def test_retry_waits_as_the_limiter_says(self, clock):
        """
        A Retry around a limiter that refuses retries after the refusal's
        retry_after, whatever its on= says.
        """
        limiter = TokenBucket(rate="1/minute", clock=clock, timeout=0)
        retry = stalwart.Retry(attempts=2, on=(), clock=clock, timeout=None)
        limiter.acquire()

        assert "x" == retry.call(limiter.call, _echo, "x")
        assert 60.0 == clock.now()

    def test_pipeline_retry_around_a_limiter(self, clock, invoke):
        """
        In a pipeline, a Retry outside a limiter retries its refusal after
        the refusal's retry_after.
        """
        limiter = TokenBucket(rate="1/minute", clock=clock, timeout=0)
        retry = stalwart.Retry(attempts=2, on=(), clock=clock, timeout=None)
        pipeline = stalwart.Pipeline(retry, limiter)
        limiter.acquire()

        assert "x" == invoke(pipeline, _echo, "x")
        assert 60.0 == clock.now()
        assert (2, 1) == (
            limiter.statistics().granted,
            limiter.statistics().refused,
        )

    def test_pipeline_with_faces(self, cls, clock):
        """
        A pipeline holding a limiter has `with` and `async with` faces
        (the limiter is a guard), and its calls take the limiter's
        permits.
        """
        limiter = cls(rate="2/minute", clock=clock, timeout=0)
        breaker = stalwart.CircuitBreaker(clock=clock)
        pipeline = stalwart.Pipeline(breaker, limiter, name="p")

        async def main() -> None:
            async with pipeline:
                pass

        with pipeline:
            pass
        asyncio.run(main())

        with pytest.raises(RateLimitExceededError):
            pipeline.call(_echo, "x")
        assert 2 == limiter.statistics().granted
        assert 2 == breaker.statistics().successes

    def test_pipeline_keyed_by_the_arguments(self, clock, invoke):
        """
        A limiter with a key_func is entered by the call's arguments in a
        pipeline (each key its own allowance), which then has no `with`
        face.
        """
        limiter = TokenBucket(
            rate="1/minute", clock=clock, timeout=0, key_func=_per_key
        )
        pipeline = stalwart.Pipeline(
            stalwart.Bulkhead(max_concurrent=2), limiter
        )

        assert "a" == invoke(pipeline, _echo, "a")
        assert "b" == invoke(pipeline, _echo, "b")
        with pytest.raises(RateLimitExceededError):
            invoke(pipeline, _echo, "a")
        with pytest.raises(TypeError, match="admits a call by its arguments"):
            with pipeline:
                pass  # pragma: no cover  # refused
        assert 2 == limiter.statistics().keys

    def test_pipeline_misuse_spends_nothing_up_front(self, clock):
        """
        A pipeline refuses an async function given to call() before its
        limiter is asked.
        """
        limiter = TokenBucket(rate="1/minute", clock=clock)
        pipeline = stalwart.Pipeline(limiter)

        with pytest.raises(TypeError, match="acall"):
            pipeline.call(_aecho, "x")

        assert 0 == limiter.statistics().granted
