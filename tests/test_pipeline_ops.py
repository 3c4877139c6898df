"""
The pipeline's side of the operations contract: a keyed breaker as a
stage (its key from the call's arguments), hooks attached to every stage
and events tagged with the pipeline as hooks come and go, statistics that
travel.
"""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import warnings

from collections.abc import Callable
from typing import Any

import pytest

import stalwart

from helpers import Boom, as_async, boom, ok
from stalwart import (
    CallFinished,
    CircuitBreaker,
    CircuitOpenError,
    KeyedCircuitBreaker,
    Pipeline,
    Retry,
)
from stalwart.testing import FakeClock


def keyed(clock: FakeClock, **kwargs: Any) -> KeyedCircuitBreaker[Any]:
    """
    A keyed breaker whose keys open after one failure, for 30 s.
    """
    return KeyedCircuitBreaker(
        breaker=CircuitBreaker(
            failure_threshold=1, recovery_time=30, clock=clock
        ),
        name="hosts",
        **kwargs,
    )


def fetch(host: str, path: str = "/") -> str:
    """
    Fail for the host ``"down"``, answer for any other.
    """
    if host == "down":
        raise Boom(host)
    return f"{host}{path}"


class TestKeyedStage:
    @pytest.mark.parametrize(
        "key_func",
        [None, lambda host, path="/": host],
        ids=["first argument", "key_func"],
    )
    def test_key_from_the_call(
        self, clock: FakeClock, invoke: Callable[..., Any], key_func: Any
    ) -> None:
        """
        Each call goes through the breaker of the key its arguments give,
        through call() and acall(), with or without a key_func.
        """
        hosts = keyed(clock, key_func=key_func)
        policy = Pipeline(CircuitBreaker(name="all", clock=clock), hosts)

        with pytest.raises(Boom):
            invoke(policy, fetch, "down")
        with pytest.raises(CircuitOpenError) as refused:
            invoke(policy, fetch, "down", path="/x")

        assert "up/x" == invoke(policy, fetch, "up", path="/x")
        assert ("hosts:down", 30.0) == (
            refused.value.name,
            refused.value.retry_after,
        )
        stats = hosts.statistics()
        assert (2, 1, 1, 1) == (
            stats.keys,
            stats.states["open"],
            stats.successes,
            stats.rejected,
        )
        # The outer breaker saw the refusal as a failure, as a stack would.
        assert 2 == policy.statistics()["all"].failures

    def test_decorator(self, clock: FakeClock) -> None:
        """
        The pipeline's decorator stacks the keyed breaker's own, sync and
        async.
        """
        hosts = keyed(clock)
        policy = Pipeline(hosts)
        guarded, aguarded = policy(fetch), policy(as_async(fetch))

        with pytest.raises(Boom):
            guarded("down")
        with pytest.raises(CircuitOpenError):
            asyncio.run(aguarded("down"))

        assert "up/" == asyncio.run(aguarded("up"))
        assert {"down", "up"} == set(hosts.statistics().breakers)

    def test_retry_around_it_waits_for_the_key(
        self, clock: FakeClock, invoke: Callable[..., Any]
    ) -> None:
        """
        A retry around the keyed breaker waits out the refusal of the
        call's key, and its trial closes that key again.
        """
        hosts = keyed(clock)
        answers = iter([Boom("reset"), "ok"])

        def flaky(host: str) -> str:
            answer = next(answers)
            if isinstance(answer, Exception):
                raise answer
            return f"{host}: {answer}"

        policy = Pipeline(
            Retry(attempts=3, on=Boom, wait=1.0, clock=clock), hosts
        )

        assert "a: ok" == invoke(policy, flaky, "a")
        assert 30.0 == clock.now()
        assert "closed" == hosts.key("a").state.value

    def test_misuse_gives_the_permit_back(self, clock: FakeClock) -> None:
        """
        call() given a function that returns an awaitable raises TypeError
        and the key's breaker counts nothing; acall() given one that does
        not, likewise.
        """
        hosts = keyed(clock)
        policy = Pipeline(hosts, name="p")
        coroutine = as_async(ok)()

        with pytest.raises(TypeError, match="acall"):
            policy.call(lambda host: coroutine, "a")
        coroutine.close()
        with pytest.raises(TypeError, match=r"call\(\)"):
            asyncio.run(policy.acall(ok, "a"))

        stats = hosts.statistics()
        assert (0, 0, 0) == (stats.successes, stats.failures, stats.ignored)

    def test_with_and_attempt_loop_refused(self, clock: FakeClock) -> None:
        """
        A block and an attempt have no arguments to take a key from: the
        with faces and the attempt loop raise a TypeError that says so.
        """
        plain = Pipeline(CircuitBreaker(clock=clock), keyed(clock), name="p")
        looped = Pipeline(Retry(clock=clock), keyed(clock), name="r")
        message = (
            "Pipeline 'p' has no `with` face: its stage 1,"
            " KeyedCircuitBreaker 'hosts', admits a call by its arguments"
            " (its key), which a `with` block has not; use call() /"
            " acall(), or decorate a function"
        )

        with pytest.raises(TypeError) as sync_block, plain:
            pass
        with pytest.raises(TypeError) as async_block:
            asyncio.run(_async_block(plain))
        with pytest.raises(TypeError, match="which an attempt has not"):
            iter(looped)
        with pytest.raises(TypeError, match=r"re-runs the call.*use call\(\)"):
            looped.__enter__()

        assert message == str(sync_block.value)
        assert message == str(async_block.value)

    def test_retry_inside_warns(self, clock: FakeClock) -> None:
        """
        A retry inside a keyed breaker is the same mistake as inside a
        breaker, and warns.
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Pipeline(keyed(clock), Retry(clock=clock))

        assert [stalwart.PipelineOrderWarning] == [w.category for w in caught]

    def test_events_carry_the_pipeline(self, clock: FakeClock) -> None:
        """
        The key's breaker's events reach the keyed breaker's hooks with
        the pipeline's name.
        """
        events: list[stalwart.Event] = []
        hosts = keyed(clock, hooks=events.append)
        policy = Pipeline(hosts, name="policy")

        with pytest.raises(Boom):
            policy.call(fetch, "down")

        assert [("CircuitOpened", "hosts:down", "policy")] == [
            (type(e).__name__, e.primitive_name, e.pipeline) for e in events
        ]


async def _async_block(pipeline: Pipeline) -> None:
    async with pipeline:
        pass


class TestHooks:
    def test_add_hook_reaches_every_stage_once(self, clock: FakeClock) -> None:
        """
        A hook attached to the pipeline is attached to each distinct
        stage that takes hooks, with per_call as asked; removed, it leaves
        them all.
        """
        breaker = CircuitBreaker(name="b", clock=clock)
        retry = Retry(name="r", clock=clock, wait=0)
        policy = Pipeline(retry, breaker, breaker, name="p")
        events: list[stalwart.Event] = []
        policy.add_hook(events.append, per_call=True)
        policy.call(ok)

        assert [events.append] == retry._live.calls == breaker._live.calls
        assert [("r", "p"), ("b", "p"), ("b", "p")] == [
            (e.primitive_name, e.pipeline)
            for e in events
            if isinstance(e, CallFinished)
        ][::-1]
        policy.remove_hook(events.append)
        assert [] == retry._live.all == breaker._live.all

    def test_refusals(self, clock: FakeClock) -> None:
        """
        A hook that is not a plain callable, a pipeline whose stages take
        no hooks, and removing a hook no stage has are refused.
        """
        from pipeline_support import Gate

        policy = Pipeline(CircuitBreaker(clock=clock), name="p")

        with pytest.raises(TypeError, match="must be callable"):
            policy.add_hook(3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="none of its stages takes hooks"):
            Pipeline(Gate("g", []), name="q").add_hook(print)
        with pytest.raises(ValueError, match="is not a hook of"):
            policy.remove_hook(print)

    def test_tag_follows_hooks_attached_later(
        self, clock: FakeClock, invoke: Callable[..., Any]
    ) -> None:
        """
        Events of hooks attached to a stage after the pipeline was built
        carry its name in call() and acall(), and the function itself runs
        untagged; once the hooks are gone, nothing is tagged.
        """
        breaker = CircuitBreaker(name="b", failure_threshold=1, clock=clock)
        policy = Pipeline(breaker, name="policy")
        events: list[stalwart.Event] = []
        inner: list[str | None] = []

        def failing() -> None:
            inner.append(stalwart._events.running_pipeline.get())
            raise Boom

        breaker.add_hook(events.append)
        with pytest.raises(Boom):
            invoke(policy, failing)
        breaker.remove_hook(events.append)

        assert [("CircuitOpened", "policy")] == [
            (type(e).__name__, e.pipeline) for e in events
        ]
        assert [None] == inner
        assert not policy._tagged

    @pytest.mark.parametrize("count", [1, 2], ids=["one guard", "two"])
    def test_blocks_tagged_and_across_a_change(
        self, clock: FakeClock, count: int
    ) -> None:
        """
        The with faces tag events once a hook comes, and a block entered
        before a hook came (or went) is left as it should be.
        """
        breakers = [
            CircuitBreaker(name=f"b{i}", failure_threshold=1, clock=clock)
            for i in range(count)
        ]
        policy = Pipeline(*breakers, name="policy")
        events: list[stalwart.Event] = []

        with pytest.raises(Boom), policy:
            policy.add_hook(events.append)
            boom()
        for breaker in breakers:
            breaker.reset()
        with pytest.raises(Boom), policy:
            policy.remove_hook(events.append)
            boom()

        assert count * [("CircuitOpened", "policy")] == [
            (type(e).__name__, e.pipeline)
            for e in events
            if isinstance(e, stalwart.CircuitOpened)
        ]
        assert [1] * count == [b.statistics().trips for b in breakers]

    def test_async_blocks_and_attempts_tagged(self, clock: FakeClock) -> None:
        """
        async with and the attempt loops tag events of hooks attached after
        the pipeline was built.
        """
        breaker = CircuitBreaker(name="b", clock=clock)
        retry = Retry(name="r", attempts=2, wait=0, on=Boom, clock=clock)
        events: list[stalwart.Event] = []
        blocks, loop = (
            Pipeline(breaker, name="blocks"),
            Pipeline(retry, breaker, name="loop"),
        )
        loop.add_hook(events.append, per_call=True)

        async def main() -> None:
            async with blocks:
                pass
            async for attempt in loop:
                async with attempt:
                    pass

        asyncio.run(main())
        for attempt in loop:
            with attempt:
                pass

        assert [
            ("b", "blocks"),
            ("b", "loop"),
            ("r", "loop"),
            ("b", "loop"),
            ("r", "loop"),
        ] == [
            (e.primitive_name, e.pipeline)
            for e in events
            if isinstance(e, CallFinished)
        ]

    def test_tagged_block_finds_the_users_frame(self) -> None:
        """
        A tagged pipeline's with block enters its guards through the tag
        steps without a frame of their own: a sync timeout keyed by the
        block's frame still interrupts the block.
        """
        events: list[stalwart.Event] = []
        timeout = stalwart.Timeout(seconds=0.001)
        policy = Pipeline(timeout, name="policy")
        policy.add_hook(events.append, per_call=True)

        with pytest.raises(stalwart.TimeoutExceededError), policy:
            while True:
                pass

        assert [("failure", "policy")] == [
            (e.outcome, e.pipeline)
            for e in events
            if isinstance(e, CallFinished)
        ]

    def test_decorated_before_a_hook_stays_untagged(
        self, clock: FakeClock
    ) -> None:
        """
        A function decorated while no stage had a hook keeps the plain
        stacked decorators (its events reach later hooks untagged); one
        decorated once a hook is there is tagged.
        """
        breaker = CircuitBreaker(name="b", clock=clock)
        policy = Pipeline(breaker, name="policy")
        before = policy(ok)
        events: list[stalwart.Event] = []
        policy.add_hook(events.append, per_call=True)
        after = policy(ok)
        before()
        after()

        assert [None, "policy"] == [e.pipeline for e in events]

    def test_a_collected_pipeline_is_forgotten(self, clock: FakeClock) -> None:
        """
        A stage does not keep a pipeline alive; the next change of its
        hooks forgets it.
        """
        breaker = CircuitBreaker(clock=clock)
        Pipeline(breaker)
        Pipeline(breaker)
        gc.collect()
        breaker.add_hook(print)

        assert [] == breaker._live._watchers

    def test_hooks_change_while_calls_run(self, clock: FakeClock) -> None:
        """
        Hooks coming and going through the pipeline while threads call it
        never break a call or a block: every one is counted.
        """
        breaker = CircuitBreaker(name="b", clock=clock)
        policy = Pipeline(breaker, name="policy")
        done = threading.Event()

        def toggle() -> None:
            while not done.is_set():
                policy.add_hook(_nothing)
                policy.remove_hook(_nothing)

        def calls() -> None:
            for _ in range(2000):
                policy.call(ok)
                with policy:
                    pass

        toggler = threading.Thread(target=toggle)
        toggler.start()
        workers = [threading.Thread(target=calls) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        done.set()
        toggler.join()

        assert 8000 == breaker.statistics().successes


def _nothing(event: stalwart.Event) -> None:
    """A hook that does nothing."""


class TestStatistics:
    def test_travel_nested(self, clock: FakeClock) -> None:
        """
        The pipeline's statistics carry its name and turn into JSON with
        each stage's record nested (None for a stage without one).
        """
        from pipeline_support import Runner

        policy = Pipeline(
            stalwart.Fallback(value=0, name="f", clock=clock),
            Runner("custom", []),
            stalwart.Timeout(seconds=1, name="t", clock=clock),
            name="policy",
        )
        data = json.loads(json.dumps(policy.statistics().to_dict()))

        assert {
            "primitive": "pipeline",
            "name": "policy",
            "stages": {
                "f": {
                    "primitive": "fallback",
                    "name": "f",
                    "on_error": 0,
                    "on_result": 0,
                },
                "custom": None,
                "t": {"primitive": "timeout", "name": "t", "timeouts": 0},
            },
        } == data
