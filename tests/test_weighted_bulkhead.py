"""
WeightedBulkhead: permits with a cost, served in FIFO order so a large
request is never starved by small ones, a cost above the total refused at
once, waiters that give up letting those behind them move up, every face
(holds, cost_func, explicit steps), and threads and tasks sharing one.
"""

from __future__ import annotations

import asyncio
import json
import pickle
import random
import threading

from typing import Any

import pytest

import stalwart

from bulkhead_faces import FACES, threads_and_tasks
from helpers import as_async, ok
from stalwart import (
    BulkheadFullError,
    ConfigurationError,
    Event,
    WeightedBulkhead,
)
from stalwart.testing import FakeClock


MiB = 1024 * 1024


def _memory(clock: FakeClock, **kwargs: Any) -> WeightedBulkhead:
    settings: dict[str, Any] = {
        "max_weight": 10,
        "max_queue": None,
        "name": "memory",
        "clock": clock,
    }
    settings.update(kwargs)
    return WeightedBulkhead(**settings)


class TestConfig:
    def test_defaults(self):
        """
        Nobody queues by default, and each call costs 1.
        """
        b = WeightedBulkhead(max_weight=512 * MiB)

        assert (0, None, None, "<unnamed>") == (
            b.max_queue,
            b.max_wait,
            b.cost_func,
            b.name,
        )

    @pytest.mark.parametrize(
        ("kwargs", "error", "message"),
        [
            (
                {"max_weight": 0},
                ConfigurationError,
                "'max_weight' must be > 0 (got 0)",
            ),
            (
                {"max_weight": None},
                ConfigurationError,
                "'max_weight' must be a number (got None)",
            ),
            (
                {"max_weight": 1.5},
                ConfigurationError,
                "'max_weight' must be an int (got 1.5)",
            ),
            (
                {"max_weight": 8, "cost_func": 3},
                ConfigurationError,
                "'cost_func' must be callable (got 3)",
            ),
            (
                {"max_weight": 8, "cost_func": as_async(len)},
                TypeError,
                "'cost_func' must be a plain (sync) callable",
            ),
        ],
        ids=["zero", "none", "float", "not-callable", "async"],
    )
    def test_refused_where_built(self, kwargs, error, message):
        """
        A bad setting is refused where the bulkhead is built, naming it.
        """
        with pytest.raises(error) as e:
            WeightedBulkhead(**kwargs)

        assert str(e.value).startswith(message)


class TestCosts:
    def test_weights_add_up_to_the_limit(self, clock):
        """
        Permits are granted while their costs fit in max_weight.
        """
        b = _memory(clock)

        assert b.try_acquire(6)
        assert b.try_acquire(4)
        assert not b.try_acquire(1)
        stats = b.statistics()
        assert (2, 10, 10, 1) == (
            stats.in_flight,
            stats.weight,
            stats.high_water,
            stats.refused,
        )

    @pytest.mark.parametrize(
        "take",
        [
            lambda b: b.try_acquire(11),
            lambda b: b.acquire(11),
            lambda b: asyncio.run(b.aacquire(11)),
            lambda b: b.hold(11),
            lambda b: b.call(len, "x" * 11),
        ],
        ids=["try_acquire", "acquire", "aacquire", "hold", "cost_func"],
    )
    def test_cost_above_the_total_refused_at_once(self, take, clock):
        """
        A cost that can never fit is refused at once, whatever the face,
        with an error that says so; it is counted and reported.
        """
        events: list[Event] = []
        b = _memory(clock, cost_func=len, hooks=events.append)

        with pytest.raises(BulkheadFullError) as e:
            take(b)

        assert (
            "cost 11 can never be granted (max_weight 10) by 'memory'"
            == str(e.value)
        )
        assert (11, 10, None) == (
            e.value.cost,
            e.value.max_weight,
            e.value.retry_after,
        )
        assert 1 == b.statistics().refused
        assert e.value is events[0].error
        assert 0.0 == clock.now()
        assert repr(e.value) == repr(pickle.loads(pickle.dumps(e.value)))

    def test_bad_cost_from_cost_func(self, clock):
        """
        A cost_func answering with something that is not a cost is an error
        that names it and what it returned, and nothing is counted.
        """
        b = stalwart.WeightedBulkhead(
            max_weight=4, cost_func=lambda *args: "ok", clock=clock
        )

        with pytest.raises(TypeError) as e:
            b.call(lambda: None)

        assert (
            "'cost_func' returned 'ok': 'cost' must be an int (got 'ok')"
            == str(e.value)
        )
        assert (0, 0) == (b.statistics().refused, b.statistics().in_flight)

    @pytest.mark.parametrize(
        ("cost", "error", "message"),
        [
            (-1, ConfigurationError, "'cost' must be >= 0 (got -1)"),
            (1.5, TypeError, "'cost' must be an int (got 1.5)"),
            (True, TypeError, "'cost' must be an int (got True)"),
        ],
        ids=["negative", "float", "bool"],
    )
    def test_bad_cost(self, cost, error, message, clock):
        """
        A cost that is not a whole number of units >= 0 is an error.
        """
        b = _memory(clock)

        with pytest.raises(error) as e:
            b.try_acquire(cost)

        assert message == str(e.value)
        assert 0 == b.statistics().refused

    def test_int_subclass_cost(self, clock):
        """
        A cost of an int subclass (an IntEnum, numpy-like) counts as its
        value.
        """

        class Units(int):
            pass

        b = _memory(clock)

        assert 4 == b.hold(Units(4)).cost

    def test_zero_cost_never_waits(self, clock):
        """
        A cost of 0 holds nothing, so it is granted at once, even while
        others wait.
        """
        b = _memory(clock)
        b.try_acquire(10)

        assert b.try_acquire(0)
        assert (2, 10) == (b.statistics().in_flight, b.statistics().weight)

    def test_full_error(self, clock):
        """
        A refusal names the weight the bulkhead caps.
        """
        b = _memory(clock, max_queue=0)
        b.try_acquire(10)

        with pytest.raises(BulkheadFullError) as e:
            b.acquire(1)

        assert "bulkhead full (max_weight 10) by 'memory'" == str(e.value)
        assert 10 == e.value.max_weight


class TestFifo:
    def test_large_request_is_not_starved(self, clock):
        """
        A large request waits for enough room; small ones that come later
        wait behind it, even when they would fit, until it is served.
        """
        b = _memory(clock)
        served: list[tuple[str, float]] = []

        async def caller(
            name: str, cost: int, arrive: float, hold: float
        ) -> None:
            await clock.asleep(arrive)
            async with b.hold(cost):
                served.append((name, clock.now()))
                await clock.asleep(hold)

        async def main() -> None:
            await asyncio.gather(
                caller("a", 6, 0.0, 2.0),
                caller("big", 8, 0.5, 1.0),
                caller("s1", 2, 1.0, 1.0),
                caller("s2", 2, 1.5, 1.0),
            )

        asyncio.run(main())

        assert [
            ("a", 0.0),
            ("big", 2.0),
            ("s1", 2.0),
            ("s2", 3.0),
        ] == served

    def test_waiter_giving_up_lets_those_behind_move_up(self, clock):
        """
        When the large request at the head gives up, the small ones behind
        it that fit go at once.
        """
        b = _memory(clock)
        served: list[tuple[str, float]] = []

        async def small(name: str) -> None:
            async with b.hold(2):
                served.append((name, clock.now()))

        async def main() -> None:
            await b.aacquire(6)
            big = asyncio.ensure_future(b.aacquire(8))
            await asyncio.sleep(0)
            smalls = [asyncio.ensure_future(small(n)) for n in ("s1", "s2")]
            await clock.asleep(1.0)
            assert [] == served
            big.cancel()
            await asyncio.gather(*smalls)
            b.release()

        asyncio.run(main())

        assert [("s1", 1.0), ("s2", 1.0)] == served
        assert (0, 0) == (b.statistics().weight, b.statistics().queued)

    def test_head_timing_out_lets_those_behind_move_up(self, clock):
        """
        A head whose wait runs out passes its reservation on, too.
        """
        b = _memory(clock, max_wait=1.0)
        served: list[tuple[str, float]] = []

        async def main() -> None:
            await b.aacquire(6)

            async def big() -> None:
                with pytest.raises(BulkheadFullError):
                    await b.aacquire(8)

            async def small() -> None:
                await asyncio.sleep(0)
                await b.aacquire(2, timeout=5.0)
                served.append(("small", clock.now()))
                b.release()

            await asyncio.gather(big(), small())
            b.release()

        asyncio.run(main())

        assert [("small", 1.0)] == served
        assert 1 == b.statistics().refused

    def test_thread_waiters_in_order(self, clock):
        """
        Threads waiting with costs that cannot be served together are
        served one after the other, in arrival order.
        """
        b = _memory(clock)
        b.try_acquire(10)
        served: list[str] = []
        threads = []
        for name, cost in [("a", 7), ("b", 6), ("c", 5)]:
            queued = b.statistics().queued

            def run(name: str = name, cost: int = cost) -> None:
                with b.hold(cost):
                    served.append(name)

            thread = threading.Thread(target=run)
            thread.start()
            threads.append(thread)
            while b.statistics().queued == queued:
                pass
        b.release()
        for thread in threads:
            thread.join()

        assert ["a", "b", "c"] == served


class TestFaces:
    @pytest.mark.parametrize("face", sorted(FACES))
    def test_hold_faces(self, face, clock):
        """
        A hold takes its cost for the call through every face, and gives
        it back.
        """
        b = _memory(clock)
        hold = b.hold(4)
        seen: list[int] = []

        def check() -> str:
            seen.append(b.statistics().weight)
            return "x"

        assert "x" == FACES[face](hold, clock, 0.0, check)
        assert [4] == seen
        assert (0, 4) == (b.statistics().weight, b.statistics().high_water)

    @pytest.mark.parametrize(
        "face", sorted(set(FACES) - {"with", "async-with"})
    )
    def test_cost_func_weighs_each_call(self, face, clock):
        """
        The bulkhead's own faces weigh each call with cost_func.
        """
        b = _memory(clock, cost_func=lambda *args: 7)

        FACES[face](b, clock, 0.0, "x")

        assert (7, 0) == (b.statistics().high_water, b.statistics().weight)

    def test_cost_func_reads_the_arguments(self, clock):
        """
        cost_func gets the call's arguments.
        """
        b = _memory(clock, cost_func=lambda payload: len(payload))

        @b
        def upload(payload: bytes) -> int:
            return b.statistics().weight

        assert 5 == upload(b"12345")
        assert 3 == b.call(lambda payload: b.statistics().weight, b"abc")

    def test_without_cost_func_each_call_costs_one(self, clock):
        """
        Without cost_func, each call costs 1.
        """
        b = _memory(clock)

        assert 1 == b.call(lambda: b.statistics().weight)

    def test_hold_is_reusable_and_shared(self, clock):
        """
        One hold serves nested and out-of-order blocks, each with its own
        permit.
        """
        b = _memory(clock)
        hold = b.hold(3)

        def gen() -> Any:
            with hold:
                yield

        one, two = gen(), gen()
        next(one)
        next(two)
        assert 6 == b.statistics().weight
        for g in (one, two):
            with pytest.raises(StopIteration):
                next(g)
        with hold, hold:
            assert 6 == b.statistics().weight

        assert 0 == b.statistics().weight
        assert "<WeightedHold of 3 of 'memory'>" == repr(hold)
        assert (b, 3, "memory") == (hold.bulkhead, hold.cost, hold.name)

    def test_explicit_steps(self, clock):
        """
        Explicit steps take a cost and give the permit back with release.
        """
        b = _memory(clock)

        b.acquire(3)
        assert b.try_acquire(4)
        assert 7 == b.statistics().weight
        b.release()
        b.release()
        with pytest.raises(RuntimeError, match="release\\(\\) without"):
            b.release()

    def test_acquire_timeout(self, clock):
        """
        acquire(cost, timeout=) waits at most that long, and validates it.
        """
        b = _memory(clock, max_queue=1)
        b.try_acquire(10)

        async def main() -> None:
            with pytest.raises(BulkheadFullError):
                await b.aacquire(1, timeout=1.5)

        asyncio.run(main())
        with pytest.raises(ConfigurationError, match="'timeout' must be"):
            b.acquire(1, timeout=-1)
        assert 1.5 == clock.now()


class TestPipeline:
    def test_hold_as_a_guard(self, clock):
        """
        A hold is a pipeline stage like any guard, with the with face.
        """
        b = _memory(clock)
        pipeline = stalwart.Pipeline(b.hold(4))

        assert 4 == pipeline.call(lambda: b.statistics().weight)
        with pipeline:
            assert 4 == b.statistics().weight

    def test_bulkhead_as_a_call_stage(self, clock):
        """
        The bulkhead, which weighs calls by their arguments, runs through
        its call()/acall() in a pipeline.
        """
        b = _memory(clock, cost_func=len)
        retry = stalwart.Retry(attempts=2, timeout=None, clock=clock)
        pipeline = stalwart.Pipeline(retry, b)

        async def aweight(payload: str) -> int:
            return b.statistics().weight

        assert 3 == pipeline.call(lambda payload: b.statistics().weight, "abc")
        assert 2 == asyncio.run(pipeline.acall(aweight, "ab"))


class TestMisuse:
    def test_call_with_an_async_function(self, clock):
        """
        call() refuses an async function; the permit comes back.
        """
        b = _memory(clock)

        with pytest.raises(TypeError, match="use acall"):
            b.call(as_async(ok))

        assert 0 == b.statistics().weight

    def test_sync_face_that_would_block_a_loop(self, clock):
        """
        A sync face that would wait on a loop's thread raises.
        """
        b = _memory(clock)

        async def main() -> None:
            await b.aacquire(10)
            with pytest.raises(RuntimeError, match="would block"):
                b.acquire(1)
            with pytest.raises(RuntimeError, match="would block"):
                with b.hold(1):
                    pass
            b.release()

        asyncio.run(main())

        assert 0 == b.statistics().weight


class TestStatistics:
    def test_to_dict(self, clock):
        """
        The statistics carry the name and go through json as they are.
        """
        b = _memory(clock)
        b.try_acquire(4)

        assert {
            "primitive": "weighted_bulkhead",
            "name": "memory",
            "in_flight": 1,
            "weight": 4,
            "queued": 0,
            "queued_weight": 0,
            "refused": 0,
            "high_water": 4,
        } == json.loads(json.dumps(b.statistics().to_dict()))
        b.release()


class TestConcurrency:
    @pytest.mark.parametrize("seed", range(4))
    def test_no_lost_permit(self, seed):
        """
        Two threads and two tasks of an event loop taking random costs (a
        task cancelled while it waits or holds): the weight never exceeds
        the total, and every unit comes back.
        """
        b = WeightedBulkhead(max_weight=10, max_queue=None)
        rng = random.Random(seed)
        plans = [[rng.randint(0, 10) for _ in range(50)] for _ in range(4)]
        over: list[int] = []

        def check() -> None:
            weight = b.statistics().weight
            if weight > 10:
                over.append(weight)

        def thread_calls(plan: list[int]) -> None:
            for cost in plan:
                try:
                    with b.hold(cost):
                        check()
                except BulkheadFullError:
                    pass

        async def task_calls(plan: list[int]) -> None:
            for cost in plan:
                try:
                    async with b.hold(cost):
                        check()
                        await asyncio.sleep(0)
                except BulkheadFullError:
                    pass

        threads_and_tasks(plans, thread_calls, task_calls, cancel_last=True)

        stats = b.statistics()
        assert [] == over
        assert (0, 0, 0) == (stats.weight, stats.in_flight, stats.queued)
        assert stats.high_water <= 10
        assert b.try_acquire(10)
