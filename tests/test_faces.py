"""
The shared machinery of the faces: per-block state, misuse checks and
guarded generators, driven through a recording guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import sys
import threading

from collections.abc import AsyncGenerator, Generator
from typing import Any

import pytest

from stalwart._faces import (
    FORWARDING_GLOBALS,
    NO_RESULT,
    Blocks,
    GuardBlocks,
    async_callable_error,
    blocking_on_loop,
    generator_function_error,
    guard_acall,
    guard_call,
    guard_decorate,
    is_any_generator_function,
    is_async_callable,
    is_awaitable,
    on_loop_thread,
)


class Recorder(GuardBlocks):
    """
    A guard that numbers its tokens and records every step.
    """

    __slots__ = ("_blocks", "_numbers", "log")

    name = "rec"
    _kind = "Recorder"

    def __init__(self) -> None:
        self._blocks: Blocks[int] = Blocks()
        self._numbers = itertools.count(1)
        self.log: list[tuple[str, int, object]] = []

    def _enter(self) -> int:
        token = next(self._numbers)
        self.log.append(("enter", token, None))
        return token

    async def _aenter(self) -> int:
        return self._enter()

    def _exit(
        self, token: int, exc: BaseException | None, result: object
    ) -> None:
        outcome = type(exc).__name__ if exc is not None else result
        self.log.append(("exit", token, outcome))

    async def _aexit(
        self, token: int, exc: BaseException | None, result: object
    ) -> None:
        self._exit(token, exc, result)

    def _undo(self, token: int) -> None:
        self.log.append(("undo", token, None))


@pytest.fixture(name="guard")
def _guard() -> Recorder:
    """
    A fresh recording guard.
    """
    return Recorder()


class Boom(Exception):
    """
    A failure.
    """


class TestBlocks:
    def test_generators_stepped_alternately(self, guard: Recorder) -> None:
        """
        Two generators whose `with` blocks exit out of order each report on
        the token their own block took.
        """

        def gen(fail: bool) -> Generator[int, None, None]:
            with guard:
                yield 1
                if fail:
                    raise Boom

        first, second = gen(fail=True), gen(fail=False)
        next(first)
        next(second)
        with pytest.raises(Boom):
            next(first)
        next(second, None)

        assert [
            ("enter", 1, None),
            ("enter", 2, None),
            ("exit", 1, "Boom"),
            ("exit", 2, NO_RESULT),
        ] == guard.log
        assert 0 == len(guard._blocks)

    def test_nested_blocks_in_one_frame(self, guard: Recorder) -> None:
        """
        Blocks nested in one function exit innermost first, each with its
        own token.
        """
        with guard, guard:
            with pytest.raises(Boom), guard:
                raise Boom

        assert [
            ("exit", 3, "Boom"),
            ("exit", 2, NO_RESULT),
            ("exit", 1, NO_RESULT),
        ] == [step for step in guard.log if step[0] == "exit"]
        assert 0 == len(guard._blocks)

    def test_exit_stack(self, guard: Recorder) -> None:
        """
        Blocks entered through an ExitStack are keyed by the function that
        owns the stack, so they close in the stack's order.
        """
        with contextlib.ExitStack() as stack:
            stack.enter_context(guard)
            stack.enter_context(guard)

        assert [("exit", 2, NO_RESULT), ("exit", 1, NO_RESULT)] == [
            step for step in guard.log if step[0] == "exit"
        ]

    def test_exit_stack_closed_elsewhere(self, guard: Recorder) -> None:
        """
        An exit stack closed by another function still gets its tokens
        back, most recent first.
        """

        def open_stack() -> contextlib.ExitStack:
            stack = contextlib.ExitStack()
            stack.enter_context(guard)
            return stack

        open_stack().close()

        assert [("enter", 1, None), ("exit", 1, NO_RESULT)] == guard.log
        assert 0 == len(guard._blocks)

    def test_nests_unwind_completely(self, guard: Recorder) -> None:
        """
        Blocks nested three deep in one frame leave nothing in `held` or
        `outer` once they are all closed, and an exit from a frame holding
        nothing takes the innermost open block of the most recent frame.
        """
        blocks = guard._blocks
        with guard, guard, guard:
            assert 1 == len(blocks)
            assert 2 == len(blocks.outer[sys._getframe()])

        assert ({}, {}) == (blocks.held, blocks.outer)

        frame = sys._getframe()
        blocks.push(frame, 1)
        blocks.push(frame, 2)

        assert 2 == blocks.pop(sys._getframe(1))  # a frame holding nothing
        assert 1 == blocks.pop(frame)
        assert ({}, {}) == (blocks.held, blocks.outer)

    def test_forwarding_globals(self) -> None:
        """
        The cheap test for a forwarding frame is its globals: every
        forwarder's globals are contextlib's, and a plain frame's are not.
        """
        stack = contextlib.ExitStack()
        seen: list[bool] = []

        class Probe:
            def __enter__(self) -> None:
                seen.append(sys._getframe(1).f_globals is FORWARDING_GLOBALS)

            def __exit__(self, *exc: object) -> None:
                seen.append(sys._getframe(1).f_globals is FORWARDING_GLOBALS)

        with stack:
            stack.enter_context(Probe())
        with Probe():
            pass

        assert [True, True, False, False] == seen

    def test_exit_without_enter(self, guard: Recorder) -> None:
        """
        Leaving a block that was never entered is a RuntimeError.
        """
        with pytest.raises(RuntimeError, match="without a matching"):
            guard.__exit__(None, None, None)

    def test_nothing_left_in_the_context(self) -> None:
        """
        Ten thousand guards used once in `with` leave the caller's context
        as it was.
        """
        before = len(contextvars.copy_context())
        guards = [Recorder() for _ in range(10_000)]
        for guard in guards:
            with guard:
                pass

        assert before == len(contextvars.copy_context())
        assert all(len(guard._blocks) == 0 for guard in guards)

    def test_threads_do_not_mix(self, guard: Recorder) -> None:
        """
        Blocks open on several threads at once each get their own token.
        """
        barrier = threading.Barrier(8)
        seen: list[tuple[int, int]] = []

        def work() -> None:
            with guard:
                barrier.wait()
            seen.append((threading.get_ident(), 0))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        entered = sorted(t for step, t, _ in guard.log if step == "enter")
        exited = sorted(t for step, t, _ in guard.log if step == "exit")
        assert list(range(1, 9)) == entered == exited
        assert 0 == len(guard._blocks)


class TestAsyncBlocks:
    def test_async_generator_stepped_from_tasks(self, guard: Recorder) -> None:
        """
        An async generator whose `async with` block is entered in one task
        and left in another reports on its own token, without error.
        """

        async def agen() -> AsyncGenerator[int, None]:
            async with guard:
                yield 1
                yield 2

        async def main() -> None:
            gen = agen()
            await asyncio.create_task(anext(gen))
            await asyncio.wait_for(anext(gen), 10)
            with pytest.raises(StopAsyncIteration):
                await asyncio.create_task(anext(gen))

        asyncio.run(main())

        assert [("enter", 1, None), ("exit", 1, NO_RESULT)] == guard.log
        assert 0 == len(guard._blocks)

    def test_interleaved_tasks(self, guard: Recorder) -> None:
        """
        Tasks whose blocks overlap and end in any order each report on
        their own token.
        """

        async def block(hold: asyncio.Event, fail: bool) -> None:
            async with guard:
                await hold.wait()
                if fail:
                    raise Boom

        async def main() -> None:
            first, second = asyncio.Event(), asyncio.Event()
            one = asyncio.create_task(block(first, fail=True))
            two = asyncio.create_task(block(second, fail=False))
            await asyncio.sleep(0)
            second.set()
            await two
            first.set()
            with pytest.raises(Boom):
                await one

        asyncio.run(main())

        assert [("exit", 2, NO_RESULT), ("exit", 1, "Boom")] == [
            step for step in guard.log if step[0] == "exit"
        ]


def plain(x: int) -> int:
    """
    Return *x* doubled.
    """
    return 2 * x


async def coro(x: int) -> int:
    """
    Return *x* doubled, asynchronously.
    """
    return 2 * x


class AsyncCallable:
    """
    An object whose __call__ is async.
    """

    async def __call__(self) -> int:
        return 1


class TestMisuse:
    @pytest.mark.parametrize(
        ("fn", "expected"),
        [
            (plain, False),
            (coro, True),
            (functools.partial(coro, 1), True),
            (functools.partial(functools.partial(coro), 1), True),
            (AsyncCallable(), True),
            (AsyncCallable, False),
            (lambda: coro(1), False),
            (print, False),
            (object(), False),
        ],
        ids=[
            "def",
            "async-def",
            "partial",
            "nested-partial",
            "async-call-object",
            "class",
            "lambda-returning-coro",
            "builtin",
            "not-callable",
        ],
    )
    def test_is_async_callable(self, fn: object, expected: bool) -> None:
        """
        Async functions are recognised through partials and __call__.
        """
        assert expected is is_async_callable(fn)

    def test_call_refuses_a_coroutine(self, guard: Recorder) -> None:
        """
        call() given an async function raises TypeError naming acall(),
        gives the token back and leaves no un-awaited coroutine behind.
        """
        with pytest.raises(TypeError, match=r"use acall\(\)"):
            guard_call(guard, coro, (1,), {})

        assert [("enter", 1, None), ("undo", 1, None)] == guard.log

    def test_call_refuses_any_awaitable(self, guard: Recorder) -> None:
        """
        A plain function returning a future is refused too.
        """

        async def main() -> None:
            future = asyncio.get_running_loop().create_future()
            with pytest.raises(TypeError, match="Future"):
                guard_call(guard, lambda: future, (), {})

        asyncio.run(main())

        assert ("undo", 1, None) == guard.log[-1]

    def test_call_passes_plain_results(self, guard: Recorder) -> None:
        """
        A plain function's result is returned and reported.
        """
        assert 4 == guard_call(guard, plain, (2,), {})
        assert ("exit", 1, 4) == guard.log[-1]

    def test_acall_refuses_a_plain_function(self, guard: Recorder) -> None:
        """
        acall() given a plain function raises TypeError naming call(), and
        counts nothing.
        """
        with pytest.raises(TypeError, match=r"use call\(\)"):
            asyncio.run(guard_acall(guard, plain, (1,), {}))  # type: ignore[arg-type]  # the misuse under test

        assert [("enter", 1, None), ("undo", 1, None)] == guard.log

    def test_acall_reports_outcomes(self, guard: Recorder) -> None:
        """
        acall() reports a result, and a raised exception, on the token.
        """

        async def fail() -> None:
            raise Boom

        async def main() -> None:
            assert 6 == await guard_acall(guard, coro, (3,), {})
            with pytest.raises(Boom):
                await guard_acall(guard, fail, (), {})

        asyncio.run(main())

        assert [("exit", 1, 6), ("exit", 2, "Boom")] == [
            step for step in guard.log if step[0] == "exit"
        ]

    def test_exception_raised_by_the_function_call(
        self, guard: Recorder
    ) -> None:
        """
        A function that raises before returning an awaitable reports the
        exception, sync and async.
        """

        def broken() -> Any:
            raise Boom

        with pytest.raises(Boom):
            guard_call(guard, broken, (), {})
        with pytest.raises(Boom):
            asyncio.run(guard_acall(guard, broken, (), {}))

        assert [("exit", 1, "Boom"), ("exit", 2, "Boom")] == [
            step for step in guard.log if step[0] == "exit"
        ]

    def test_awaitable_cache(self) -> None:
        """
        Plain values are never awaitable, however often they are seen, and
        coroutines always are.
        """
        value = coro(1)

        assert not is_awaitable(object())
        assert not is_awaitable(object())
        assert is_awaitable(value)
        value.close()

    def test_generator_based_coroutine_not_cached_away(self) -> None:
        """
        A plain generator seen first does not hide a generator-based
        coroutine seen later.
        """
        import types

        def gen() -> Generator[None, None, None]:
            yield

        @types.coroutine
        def old_style() -> Generator[None, None, None]:
            yield

        assert not is_awaitable(gen())
        assert is_awaitable(old_style())

    def test_loop_thread(self) -> None:
        """
        on_loop_thread() is true inside a running loop only.
        """

        async def inside() -> bool:
            return on_loop_thread()

        assert not on_loop_thread()
        assert asyncio.run(inside())

    def test_messages(self) -> None:
        """
        The errors name the primitive, the faces and the value.
        """
        blocking = blocking_on_loop(
            "Bulkhead", "db", "`with bulkhead`", "`async with bulkhead`"
        )
        wrong = async_callable_error("on", coro, "its result is truthy")

        assert (
            "Bulkhead 'db': `with bulkhead` would block the event loop"
            " running on this thread (and every task on it); in async code"
            " use `async with bulkhead`"
        ) == str(blocking)
        assert str(wrong).startswith(
            "'on' must be a plain (sync) callable, not an async one"
        )


class TestDecorate:
    def test_sync_and_async(self, guard: Recorder) -> None:
        """
        A def and an async def keep working through the decorator.
        """
        assert 4 == guard_decorate(guard, plain)(2)
        assert 6 == asyncio.run(guard_decorate(guard, coro)(3))

    def test_async_callable_object(self, guard: Recorder) -> None:
        """
        An object with an async __call__ is awaited through acall.
        """
        assert 1 == asyncio.run(guard_decorate(guard, AsyncCallable())())

    def test_generator_whole_iteration(self, guard: Recorder) -> None:
        """
        A decorated generator holds its token from the first step to the
        end of the iteration, not only while it is created.
        """

        @functools.partial(guard_decorate, guard)
        def numbers() -> Generator[int, int, str]:
            got = yield 1
            yield got
            return "done"

        gen = numbers()
        assert [] == guard.log
        assert 1 == next(gen)
        assert 5 == gen.send(5)
        assert [("enter", 1, None)] == guard.log
        with pytest.raises(StopIteration) as stop:
            next(gen)

        assert "done" == stop.value.value
        assert ("exit", 1, NO_RESULT) == guard.log[-1]

    def test_generator_failure_and_close(self, guard: Recorder) -> None:
        """
        A failing generator reports its exception; one closed early
        reports success.
        """

        @functools.partial(guard_decorate, guard)
        def numbers() -> Generator[int, None, None]:
            yield 1
            raise Boom

        failing = numbers()
        next(failing)
        with pytest.raises(Boom):
            next(failing)
        closed = numbers()
        next(closed)
        closed.close()

        assert [("exit", 1, "Boom"), ("exit", 2, NO_RESULT)] == [
            step for step in guard.log if step[0] == "exit"
        ]

    def test_partials_of_generator_functions(self, guard: Recorder) -> None:
        """
        Partials of generator functions are guarded as generators, and the
        result marker reads as its name.
        """

        def numbers(n: int) -> Generator[int, None, None]:
            yield from range(n)

        async def anumbers(n: int) -> AsyncGenerator[int, None]:
            for i in range(n):
                yield i

        async def collect() -> list[int]:
            agen = guard_decorate(guard, functools.partial(anumbers, 2))()
            return [i async for i in agen]

        assert [0, 1, 2] == list(
            guard_decorate(guard, functools.partial(numbers, 3))()
        )
        assert [0, 1] == asyncio.run(collect())
        assert "NO_RESULT" == repr(NO_RESULT)
        assert [("exit", 1, NO_RESULT), ("exit", 2, NO_RESULT)] == [
            step for step in guard.log if step[0] == "exit"
        ]

    def test_async_generator(self, guard: Recorder) -> None:
        """
        A decorated async generator passes asend, athrow and aclose
        through, and reports once at the end.
        """

        @functools.partial(guard_decorate, guard)
        async def numbers() -> AsyncGenerator[int, int]:
            try:
                got = yield 1
                yield got
            except Boom:
                yield -1

        async def main() -> list[int]:
            gen = numbers()
            seen = [await anext(gen), await gen.asend(7)]
            seen.append(await gen.athrow(Boom()))
            with pytest.raises(StopAsyncIteration):
                await anext(gen)
            return seen

        assert [1, 7, -1] == asyncio.run(main())
        assert [("enter", 1, None), ("exit", 1, NO_RESULT)] == guard.log

    def test_async_generator_failure_and_close(self, guard: Recorder) -> None:
        """
        A failing async generator reports its exception; one closed early
        reports success; an empty one reports success.
        """

        @functools.partial(guard_decorate, guard)
        async def numbers(fail: bool) -> AsyncGenerator[int, None]:
            yield 1
            if fail:
                raise Boom

        @functools.partial(guard_decorate, guard)
        async def empty() -> AsyncGenerator[int, None]:
            return
            yield  # pragma: no cover

        async def main() -> None:
            failing = numbers(True)
            await anext(failing)
            with pytest.raises(Boom):
                await anext(failing)
            closed = numbers(False)
            await anext(closed)
            await closed.aclose()
            assert [] == [item async for item in empty()]

        asyncio.run(main())

        assert [
            ("exit", 1, "Boom"),
            ("exit", 2, NO_RESULT),
            ("exit", 3, NO_RESULT),
        ] == [step for step in guard.log if step[0] == "exit"]


class TestGeneratorRefusals:
    def test_any_generator_function(self) -> None:
        """
        Generator functions of both kinds, and partials of them, are told
        apart from plain and async functions.
        """

        def gen() -> Generator[int, None, None]:
            yield 1

        async def agen() -> AsyncGenerator[int, None]:
            yield 1

        assert is_any_generator_function(gen)
        assert is_any_generator_function(functools.partial(agen))
        assert not is_any_generator_function(plain)
        assert not is_any_generator_function(coro)

    def test_message(self) -> None:
        """
        The refusal names the primitive, the function and the reason.
        """
        error = generator_function_error("Fallback", "f", plain, "no items")

        assert str(error).startswith(
            "Fallback 'f' cannot guard the generator function <function plain"
        )
        assert str(error).endswith(": no items")


class TestWarnings:
    def test_user_stacklevel_skips_stalwart_s_frames(self) -> None:
        """
        A warning issued through frames of stalwart's own files points at
        the first frame outside the package.
        """
        import pathlib
        import warnings

        import stalwart

        from stalwart._faces import user_stacklevel

        def warn() -> None:
            warnings.warn("here", UserWarning, stacklevel=user_stacklevel())

        # Two helpers compiled as if they were files of the package, the
        # way a constructor and the face calling it would be.
        inside = str(pathlib.Path(stalwart.__file__).parent / "_fake.py")
        namespace: dict[str, object] = {"warn": warn}
        exec(  # noqa: S102  # our own two lines, compiled under another name
            compile(
                "def outer():\n    inner()\ndef inner():\n    warn()\n",
                inside,
                "exec",
            ),
            namespace,
        )

        with pytest.warns(UserWarning) as caught:
            namespace["outer"]()  # type: ignore[operator]  # defined above

        assert __file__ == caught[0].filename
