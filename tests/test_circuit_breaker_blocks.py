"""
The circuit breaker's ``with`` / ``async with`` faces keep each block's own
permit: blocks that exit out of order (generators stepped alternately, an
async generator stepped from several tasks, exit stacks), nested blocks,
and nothing left behind in the caller's context.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc

from collections.abc import AsyncGenerator, Generator

import pytest

from breaker_support import trip
from helpers import Boom, ok
from stalwart import CircuitBreaker, CircuitOpenError, CircuitState
from stalwart.testing import FakeClock


def half_open(clock: FakeClock, **kwargs: object) -> CircuitBreaker:
    """
    A breaker whose next call is a trial.
    """
    cb = CircuitBreaker(
        failure_threshold=1, recovery_time=1, clock=clock, **kwargs
    )
    trip(cb)
    clock.advance(1)
    return cb


class TestOutOfOrder:
    def test_generators_stepped_alternately(self, clock):
        """
        Two generators each holding a `with` block across a yield, left in
        the order they were not entered: a block admitted while closed
        succeeds late, during the trial, and changes nothing; the trial
        then fails and re-opens the breaker.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)

        def work(fail: bool) -> Generator[None, None, None]:
            with cb:
                yield
                if fail:
                    raise Boom

        old = work(fail=False)
        next(old)  # admitted while closed
        trip(cb)
        clock.advance(1)
        trial = work(fail=True)
        next(trial)  # the half-open trial
        next(old, None)
        with pytest.raises(Boom):
            next(trial)
        stats = cb.statistics()

        assert CircuitState.OPEN == cb.state
        assert (1, 2) == (stats.successes, stats.failures)
        assert 0 == len(cb._blocks)

    def test_late_old_block_cannot_close_a_half_open_breaker(self, clock):
        """
        A block admitted while closed that succeeds while the trial still
        runs leaves the breaker half-open; the trial's own success closes
        it.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)

        def work() -> Generator[None, None, None]:
            with cb:
                yield

        old = work()
        next(old)
        trip(cb)
        clock.advance(1)
        trial = work()
        next(trial)
        next(old, None)

        assert CircuitState.HALF_OPEN == cb.state

        next(trial, None)

        assert CircuitState.CLOSED == cb.state

    def test_async_generators_stepped_alternately(self, clock):
        """
        The same story with `async with` blocks in async generators: the
        late success of the old block does not close the breaker, the
        trial's failure re-opens it.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)

        async def work(fail: bool) -> AsyncGenerator[None, None]:
            async with cb:
                yield
                if fail:
                    raise Boom

        async def main() -> None:
            old = work(fail=False)
            await anext(old)
            trip(cb)
            clock.advance(1)
            trial = work(fail=True)
            await anext(trial)
            await anext(old, None)
            with pytest.raises(Boom):
                await anext(trial)

        asyncio.run(main())

        assert CircuitState.OPEN == cb.state
        assert 0 == len(cb._blocks)

    @pytest.mark.parametrize(
        "step", ["wait_for", "create_task"], ids=["wait_for", "create_task"]
    )
    def test_async_generator_stepped_from_other_tasks(self, clock, step):
        """
        An async generator whose `async with` block is entered in one task
        and left in another records its trial, without error.
        """
        cb = half_open(clock)

        async def work() -> AsyncGenerator[int, None]:
            async with cb:
                yield 1
                yield 2

        async def main() -> list[int]:
            gen = work()
            seen = []
            while True:
                if step == "wait_for":
                    pending = asyncio.wait_for(gen.__anext__(), 10)
                else:
                    pending = asyncio.create_task(gen.__anext__())
                try:
                    seen.append(await pending)
                except StopAsyncIteration:
                    return seen

        assert [1, 2] == asyncio.run(main())
        assert CircuitState.CLOSED == cb.state
        assert 1 == cb.statistics().successes

    def test_tasks_overlapping(self, clock):
        """
        Tasks whose blocks overlap and end in any order each report on
        their own permit: the trial's failure re-opens the breaker although
        an older block ends after it with a success.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=1, clock=clock)

        async def block(release: asyncio.Event, fail: bool) -> None:
            async with cb:
                await release.wait()
                if fail:
                    raise Boom

        async def main() -> None:
            old_done, trial_done = asyncio.Event(), asyncio.Event()
            old = asyncio.create_task(block(old_done, fail=False))
            await asyncio.sleep(0)
            trip(cb)
            clock.advance(1)
            trial = asyncio.create_task(block(trial_done, fail=True))
            await asyncio.sleep(0)
            trial_done.set()
            with pytest.raises(Boom):
                await trial
            old_done.set()
            await old

        asyncio.run(main())

        assert CircuitState.OPEN == cb.state

    def test_exit_stacks(self, clock):
        """
        Blocks entered through an ExitStack or an AsyncExitStack are keyed
        by the function that owns the stack, and close in its order.
        """
        cb = half_open(clock, half_open_max_calls=2, success_threshold=2)

        with contextlib.ExitStack() as stack:
            stack.enter_context(cb)

            async def inner() -> None:
                async with contextlib.AsyncExitStack() as astack:
                    await astack.enter_async_context(cb)

            asyncio.run(inner())

            assert CircuitState.HALF_OPEN == cb.state

        assert CircuitState.CLOSED == cb.state
        assert 0 == len(cb._blocks)

    def test_exit_stack_closed_elsewhere(self, clock):
        """
        An exit stack closed by another function than the one that filled
        it still reports on the block it holds.
        """
        cb = half_open(clock)

        def fill() -> contextlib.ExitStack:
            stack = contextlib.ExitStack()
            stack.enter_context(cb)
            return stack

        fill().close()

        assert CircuitState.CLOSED == cb.state
        assert 0 == len(cb._blocks)

    def test_exit_without_enter(self, clock):
        """
        Leaving a block that was never entered is a RuntimeError.
        """
        cb = CircuitBreaker(clock=clock)

        with pytest.raises(RuntimeError, match="without a matching"):
            cb.__exit__(None, None, None)

    def test_abandoned_generator_gives_the_trial_back(self, clock):
        """
        A generator dropped while its block holds the trial gives the slot
        back when it is collected (GeneratorExit is never a failure), so
        the next call is a trial.
        """
        cb = half_open(clock)

        def work() -> Generator[None, None, None]:
            with cb:
                yield

        gen = work()
        next(gen)
        with pytest.raises(CircuitOpenError):
            cb.call(ok)
        del gen
        gc.collect()

        assert "ok" == cb.call(ok)
        assert CircuitState.CLOSED == cb.state
        assert 0 == len(cb._blocks)


class TestNested:
    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    def test_inner_failure_outer_late(self, clock, is_async):
        """
        Nested blocks of one breaker in one function each keep their own
        permit: the inner failure opens the breaker, the outer success
        after it is stale and leaves it open.
        """
        cb = CircuitBreaker(failure_threshold=1, clock=clock)

        def run() -> None:
            with cb:
                with pytest.raises(Boom), cb:
                    raise Boom

        async def arun() -> None:
            async with cb:
                with pytest.raises(Boom):
                    async with cb:
                        raise Boom

        if is_async:
            asyncio.run(arun())
        else:
            run()
        stats = cb.statistics()

        assert CircuitState.OPEN == cb.state
        assert (1, 1) == (stats.successes, stats.failures)
        assert 0 == len(cb._blocks)
        assert {} == cb._outer

    @pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
    def test_nested_trials(self, clock, is_async):
        """
        Two nested blocks of a half-open breaker are its two trials; both
        successes close it, in either face.
        """
        cb = half_open(clock, half_open_max_calls=2, success_threshold=2)

        def run() -> CircuitState:
            with cb:
                with cb:
                    pass
                return cb.state

        async def arun() -> CircuitState:
            async with cb:
                async with cb:
                    pass
                return cb.state

        between = asyncio.run(arun()) if is_async else run()

        assert CircuitState.HALF_OPEN == between
        assert CircuitState.CLOSED == cb.state

    def test_nested_in_a_generator_and_its_caller(self, clock):
        """
        A generator's blocks and its caller's blocks, interleaved and
        nested, each end on their own permit.
        """
        cb = CircuitBreaker(clock=clock)

        def work() -> Generator[None, None, None]:
            with cb, cb:
                yield

        gen = work()
        with cb:
            next(gen)
            with cb:
                next(gen, None)

        assert 4 == cb.statistics().successes
        assert 0 == len(cb._blocks)


class TestNothingLeftBehind:
    def test_context_does_not_grow(self):
        """
        Ten thousand breakers each used once in `with` leave the caller's
        context as it was.
        """
        before = len(contextvars.copy_context())
        breakers = [CircuitBreaker() for _ in range(10_000)]
        for cb in breakers:
            with cb:
                pass

        assert before == len(contextvars.copy_context())
        assert all(len(cb._blocks) == 0 for cb in breakers)

    def test_context_does_not_grow_async(self):
        """
        The same with `async with`, inside one task.
        """

        async def main() -> tuple[int, int]:
            before = len(contextvars.copy_context())
            for _ in range(10_000):
                async with CircuitBreaker():
                    pass
            return before, len(contextvars.copy_context())

        before, after = asyncio.run(main())

        assert before == after

    def test_refused_block_holds_nothing(self, clock):
        """
        A block refused on entry stores nothing.
        """
        cb = CircuitBreaker(failure_threshold=1, recovery_time=10, clock=clock)
        trip(cb)
        with pytest.raises(CircuitOpenError), cb:
            pass  # pragma: no cover  (refused on entry)

        assert 0 == len(cb._blocks)


class TestTimedBlocks:
    def test_timed_blocks_out_of_order(self, clock):
        """
        A breaker that times its calls measures each block from its own
        entry, whatever the order the blocks end in.
        """
        cb = CircuitBreaker(
            slow_call_rate=0.5,
            slow_call_duration=5.0,
            window=__import__("stalwart").CountWindow(2),
            clock=clock,
        )

        def work() -> Generator[None, None, None]:
            with cb:
                yield

        long, short = work(), work()
        next(long)
        clock.advance(4.0)
        next(short)
        clock.advance(1.0)
        next(short, None)  # 1 s: fast
        stats = cb.statistics()

        assert (1, 0) == (stats.window_calls, stats.window_slow_calls)

        next(long, None)  # 5 s: slow

        assert CircuitState.OPEN == cb.state
