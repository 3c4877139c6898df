"""
AdaptiveBulkhead: configuration, each face feeding its calls to the limit,
what counts as a drop, queueing and refusals with retry_after, explicit
steps, the pipeline, misuse, and threads and tasks sharing one instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading

from typing import Any

import pytest

import stalwart

from bulkhead_faces import (
    FACES,
    SYNC_FACES,
    awork,
    threads_and_tasks,
    work,
)
from helpers import as_async, ok
from stalwart import (
    AdaptiveBulkhead,
    AIMDLimit,
    BulkheadFullError,
    ConfigurationError,
    Event,
    GradientLimit,
    LimitChanged,
)
from stalwart._deadline import deadline_scope
from stalwart.testing import FakeClock


def _aimd(clock: FakeClock, **kwargs: Any) -> AdaptiveBulkhead:
    """
    An AIMD bulkhead from 1 to 10, starting at 1, halving on a drop.
    """
    settings: dict[str, Any] = {
        "min_limit": 1,
        "max_limit": 10,
        "initial_limit": 1,
        "algorithm": AIMDLimit(backoff_ratio=0.5),
        "clock": clock,
        "name": "api",
    }
    settings.update(kwargs)
    return AdaptiveBulkhead(**settings)


def _limits(events: list[Event]) -> list[tuple[int, int]]:
    return [
        (e.previous_limit, e.limit)
        for e in events
        if isinstance(e, LimitChanged)
    ]


class TestConfig:
    def test_defaults(self):
        """
        By default the limit is a Gradient between 1 and 200, starting
        with a probe at 1, then 20; nobody queues.
        """
        b = AdaptiveBulkhead()
        stats = b.statistics()

        assert (1, 200, None, 0, None) == (
            b.min_limit,
            b.max_limit,
            b.initial_limit,
            b.max_queue,
            b.max_wait,
        )
        assert GradientLimit() == b.algorithm
        assert (1, True) == (stats.limit, stats.probing)

    @pytest.mark.parametrize(
        ("kwargs", "limit"),
        [
            ({"min_limit": 30, "max_limit": 50}, 30),
            ({"min_limit": 1, "max_limit": 8}, 8),
            ({"min_limit": 2, "max_limit": 50, "initial_limit": 7}, 7),
        ],
        ids=["above-min", "below-max", "given"],
    )
    def test_initial_limit(self, kwargs, limit):
        """
        The limit starts at initial_limit, or 20 kept within the bounds.
        """
        b = AdaptiveBulkhead(algorithm=AIMDLimit(), **kwargs)

        assert limit == b.limit

    @pytest.mark.parametrize(
        ("kwargs", "error", "message"),
        [
            (
                {"min_limit": 5, "max_limit": 3},
                ConfigurationError,
                "'min_limit' must be <= 'max_limit' 3 (got 5)",
            ),
            (
                {"min_limit": 2, "max_limit": 5, "initial_limit": 6},
                ConfigurationError,
                (
                    "'initial_limit' must be within [min_limit, max_limit] ="
                    " [2, 5] (got 6)"
                ),
            ),
            (
                {"min_limit": 0},
                ConfigurationError,
                "'min_limit' must be > 0 (got 0)",
            ),
            (
                {"max_limit": 2.5},
                ConfigurationError,
                "'max_limit' must be an int (got 2.5)",
            ),
            (
                {"algorithm": "aimd"},
                TypeError,
                (
                    "'algorithm' must be a stalwart.AIMDLimit or a"
                    " stalwart.GradientLimit (got 'aimd')"
                ),
            ),
            (
                {"drop_on": 3},
                ConfigurationError,
                (
                    "'drop_on' must be an exception type, a tuple of them, or a"
                    " predicate (got 3)"
                ),
            ),
        ],
        ids=["min-max", "initial", "min", "max", "algorithm", "drop_on"],
    )
    def test_refused_where_built(self, kwargs, error, message):
        """
        A bad setting is refused where the bulkhead is built, naming it.
        """
        with pytest.raises(error) as e:
            AdaptiveBulkhead(**kwargs)

        assert message == str(e.value)

    @pytest.mark.parametrize(
        ("build", "message"),
        [
            (
                lambda: AIMDLimit(backoff_ratio=1.0),
                "'backoff_ratio' must be <= 0.999999 (got 1.0)",
            ),
            (
                lambda: AIMDLimit(timeout=0),
                "'timeout' must be > 0 (got 0.0)",
            ),
            (
                lambda: GradientLimit(smoothing=0),
                "'smoothing' must be > 0 (got 0)",
            ),
            (
                lambda: GradientLimit(queue_size=-1),
                "'queue_size' must be >= 0 (got -1)",
            ),
            (
                lambda: GradientLimit(window_samples=0),
                "'window_samples' must be > 0 (got 0)",
            ),
            (
                lambda: GradientLimit(probe_interval=0),
                "'probe_interval' must be > 0 (got 0.0)",
            ),
            (
                lambda: GradientLimit(window=None),
                (
                    "'window' must be a number of seconds or a timedelta"
                    " (got None)"
                ),
            ),
        ],
        ids=[
            "ratio",
            "timeout",
            "smoothing",
            "queue_size",
            "window_samples",
            "probe_interval",
            "window-none",
        ],
    )
    def test_algorithm_settings_validated(self, build, message):
        """
        The algorithms' settings are validated where they are built.
        """
        with pytest.raises(ConfigurationError) as e:
            build()

        assert message == str(e.value)


class TestSamples:
    @pytest.mark.parametrize("face", sorted(FACES))
    def test_each_face_feeds_the_limit(self, face, clock):
        """
        A call that ends well through any face is a latency sample: AIMD
        grows the limit by one, and hooks see the move.
        """
        events: list[Event] = []
        b = _aimd(clock, hooks=events.append)

        assert "done" == FACES[face](b, clock, 0.25, "done")
        stats = b.statistics()
        assert (2, 0, 0.25) == (stats.limit, stats.in_flight, stats.rtt)
        assert [(1, 2)] == _limits(events)
        assert "api" == events[0].primitive_name

    @pytest.mark.parametrize("face", sorted(FACES))
    def test_drop_cuts_the_limit(self, face, clock):
        """
        A call that times out (drop_on's default) cuts the limit, through
        any face, and counts as dropped.
        """
        b = _aimd(clock, initial_limit=8)

        with pytest.raises(TimeoutError):
            FACES[face](b, clock, 1.0, TimeoutError())

        assert (4, 1, 0) == (
            b.limit,
            b.statistics().dropped,
            b.statistics().in_flight,
        )

    @pytest.mark.parametrize("face", sorted(FACES))
    def test_other_failures_are_ignored(self, face, clock):
        """
        An exception outside drop_on teaches the limit nothing (a fast
        failure is no latency sample), and gives the permit back.
        """
        b = _aimd(clock)

        with pytest.raises(ValueError):
            FACES[face](b, clock, 0.5, ValueError())

        stats = b.statistics()
        assert (1, None, 0, 0) == (
            stats.limit,
            stats.rtt,
            stats.dropped,
            stats.in_flight,
        )

    @pytest.mark.parametrize("face", sorted(SYNC_FACES))
    def test_base_exceptions_are_ignored(self, face, clock):
        """
        A KeyboardInterrupt is neither a sample nor a drop; the permit
        comes back.
        """
        b = _aimd(clock)

        with pytest.raises(KeyboardInterrupt):
            FACES[face](b, clock, 0.5, KeyboardInterrupt())

        assert (1, None, 0) == (
            b.limit,
            b.statistics().rtt,
            b.statistics().in_flight,
        )

    def test_cancelled_call_is_ignored(self, clock):
        """
        A cancelled call is neither a sample nor a drop, and gives its
        permit back.
        """
        b = _aimd(clock)

        async def main() -> None:
            task = asyncio.ensure_future(b.acall(awork, clock, 5.0, "x"))
            await clock.asleep(1.0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())

        assert (1, None, 0) == (
            b.limit,
            b.statistics().rtt,
            b.statistics().in_flight,
        )

    def test_drop_on_names_failures(self, clock):
        """
        drop_on decides which exceptions signal overload; a predicate
        works too.
        """
        b = _aimd(
            clock,
            initial_limit=8,
            drop_on=lambda e: isinstance(e, OSError) and e.errno == 503,
        )

        with pytest.raises(OSError):
            b.call(work, clock, 0.1, OSError(503, "unavailable"))
        with pytest.raises(OSError):
            b.call(work, clock, 0.1, OSError(404, "not found"))

        assert (4, 1) == (b.limit, b.statistics().dropped)

    def test_drop_result(self, clock):
        """
        drop_result marks results that signal overload; they are still
        returned.
        """
        b = _aimd(clock, initial_limit=8, drop_result=lambda r: r == 503)

        assert 503 == b.call(work, clock, 0.1, 503)
        assert 200 == b.call(work, clock, 0.1, 200)
        assert (4, 1) == (b.limit, b.statistics().dropped)

    @pytest.mark.parametrize("face", sorted(FACES))
    def test_failing_predicate_gives_the_permit_back(self, face, clock):
        """
        A drop_result that raises lets its exception out and leaks no
        permit.
        """

        def broken(result: object) -> bool:
            raise LookupError

        b = _aimd(clock, drop_result=broken)

        with pytest.raises(LookupError):
            FACES[face](b, clock, 0.1, "x")

        assert (0, 1) == (b.statistics().in_flight, b.limit)

    def test_slow_call_drops_under_aimd_timeout(self, clock):
        """
        AIMDLimit(timeout=...) counts a slow success as a drop.
        """
        b = _aimd(
            clock,
            initial_limit=8,
            algorithm=AIMDLimit(backoff_ratio=0.5, timeout=1.0),
        )

        b.call(work, clock, 2.0, "slow")

        assert 4 == b.limit

    def test_gradient_probes_then_moves(self, clock):
        """
        Gradient measures the no-load latency at min_limit first, then
        takes its estimate, and reports both latencies.
        """
        events: list[Event] = []
        b = AdaptiveBulkhead(
            min_limit=2,
            max_limit=50,
            initial_limit=10,
            algorithm=GradientLimit(probe_samples=3, window_samples=1),
            clock=clock,
            hooks=events.append,
        )
        for _ in range(3):
            b.call(work, clock, 0.1, None)
        stats = b.statistics()

        assert (10, False) == (stats.limit, stats.probing)
        assert 0.1 == pytest.approx(stats.rtt_noload)
        assert [(2, 10)] == _limits(events)


class TestQueue:
    def test_waiters_and_retry_after(self, clock):
        """
        Beyond the limit, callers queue; beyond the queue, they are refused
        at once with retry_after estimated from the latency and the limit.
        """
        b = _aimd(clock, max_queue=1, max_wait=10.0)
        b.call(work, clock, 0.5, None)  # limit 2, rtt 0.5
        done: list[tuple[str, float]] = []

        async def caller(name: str) -> None:
            try:
                await b.acall(awork, clock, 1.0, None)
            except BulkheadFullError as e:
                done.append((f"{name} refused ({e.retry_after})", clock.now()))
            else:
                done.append((name, clock.now()))

        async def main() -> None:
            await asyncio.gather(*(caller(name) for name in "abcd"))

        asyncio.run(main())

        assert [
            ("d refused (0.5)", 0.5),
            ("a", 1.5),
            ("b", 1.5),
            ("c", 2.5),
        ] == done

    def test_higher_limit_serves_every_waiter_that_fits(self, clock):
        """
        When a call ends well and the limit grows, its permit and the new
        one go to two waiters at once.
        """
        b = _aimd(clock, max_queue=None)
        admitted: list[tuple[str, float]] = []

        async def caller(name: str) -> None:
            await b.acall(awork, clock, 1.0, None)
            admitted.append((name, clock.now()))

        async def main() -> None:
            await asyncio.gather(*(caller(name) for name in "abc"))

        asyncio.run(main())

        assert [("a", 1.0), ("b", 2.0), ("c", 2.0)] == admitted
        assert 2 == b.statistics().high_water

    def test_lower_limit_revokes_nothing(self, clock):
        """
        A cut below the calls in flight lets them finish; newcomers are
        refused until enough have ended.
        """
        b = _aimd(clock, initial_limit=4)

        async def main() -> None:
            calls = [
                asyncio.ensure_future(b.acall(awork, clock, t, None))
                for t in (1.0, 2.0, 3.0)
            ]
            await asyncio.sleep(0)
            with pytest.raises(TimeoutError):
                await b.acall(awork, clock, 0.5, TimeoutError())
            assert (2, 3) == (b.limit, b.statistics().in_flight)
            with pytest.raises(BulkheadFullError):
                await b.acall(awork, clock, 0.0, None)
            await asyncio.gather(*calls)

        asyncio.run(main())

        assert 0 == b.statistics().in_flight

    def test_no_retry_after_before_a_sample(self, clock):
        """
        Before any call ended, a refusal carries no retry_after.
        """
        b = _aimd(clock)
        b.try_acquire()

        with pytest.raises(BulkheadFullError) as e:
            b.call(ok)

        assert e.value.retry_after is None
        assert 1 == e.value.max_concurrent

    def test_deadline_caps_wait(self, clock):
        """
        A queue wait never goes past the current deadline.
        """
        b = _aimd(clock, max_queue=1)

        async def main() -> None:
            held = asyncio.ensure_future(b.acall(awork, clock, 10.0, None))
            await asyncio.sleep(0)
            with deadline_scope(2.0, clock):
                with pytest.raises(BulkheadFullError):
                    await b.acall(awork, clock, 0.0, None)
            assert 2.0 == clock.now()
            await held

        asyncio.run(main())

    def test_sync_waiter_on_a_fake_clock(self, clock):
        """
        A thread waits in the queue until a permit comes back.
        """
        b = _aimd(clock, max_queue=1)
        b.try_acquire()
        got: list[str] = []
        thread = threading.Thread(target=lambda: got.append(b.call(ok)))
        thread.start()
        while not b.statistics().queued:
            pass
        b.release()
        thread.join()

        assert ["ok"] == got


class TestExplicitSteps:
    @pytest.mark.parametrize(
        ("outcome", "limit", "dropped"),
        [("success", 2, 0), ("dropped", 1, 1), ("ignored", 1, 0)],
    )
    def test_release_says_how_it_went(self, outcome, limit, dropped, clock):
        """
        release(outcome) feeds the limit a sample, a drop, or nothing.
        """
        b = _aimd(clock)
        b.acquire()
        clock.advance(0.3)
        b.release(outcome)

        assert (limit, dropped, 0) == (
            b.limit,
            b.statistics().dropped,
            b.statistics().in_flight,
        )

    def test_try_acquire(self, clock):
        """
        try_acquire takes a free permit, or says no (counted, reported).
        """
        events: list[Event] = []
        b = _aimd(clock, hooks=events.append)

        assert b.try_acquire()
        assert not b.try_acquire()
        b.release()
        assert 1 == b.statistics().refused
        assert isinstance(events[0], stalwart.CallRejected)

    def test_aacquire(self, clock):
        """
        aacquire waits for a permit held by another task.
        """
        b = _aimd(clock, max_queue=1)

        async def holder() -> None:
            await b.aacquire()
            await clock.asleep(2.0)
            b.release()

        async def waiter() -> float:
            await asyncio.sleep(0)
            await b.aacquire(timeout=5.0)
            b.release()
            return clock.now()

        async def main() -> float:
            _, at = await asyncio.gather(holder(), waiter())
            return at

        assert 2.0 == asyncio.run(main())

    def test_release_misuse(self, clock):
        """
        A release without a permit, or with an unknown outcome, is refused.
        """
        b = _aimd(clock)

        with pytest.raises(RuntimeError, match="release\\(\\) without"):
            b.release()
        b.acquire()
        with pytest.raises(ValueError, match="'outcome' must be one of"):
            b.release("maybe")  # type: ignore[arg-type]  # the misuse tested
        b.release()
        assert 0 == b.statistics().in_flight

    def test_acquire_timeout_validated(self, clock):
        """
        acquire(timeout=) is checked like configuration.
        """
        b = _aimd(clock)

        with pytest.raises(ConfigurationError, match="'timeout' must be"):
            b.acquire(timeout=-1)


class TestPipeline:
    def test_chained_in_a_pipeline(self, clock):
        """
        A pipeline chains the adaptive bulkhead as a guard: every attempt
        through it is a sample, and the retry sees its outcome.
        """
        b = _aimd(clock)
        retry = stalwart.Retry(
            attempts=2, on=ConnectionError, wait=0, timeout=None, clock=clock
        )
        pipeline = stalwart.Pipeline(retry, b)
        tries = iter([ConnectionError(), "ok"])

        def flaky() -> str:
            clock.advance(0.5)
            outcome = next(tries)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        assert "ok" == pipeline.call(flaky)
        # The failure was no sample; the success grew the limit.
        assert (2, 0.5, 0) == (
            b.limit,
            b.statistics().rtt,
            b.statistics().in_flight,
        )

    def test_async_pipeline(self, clock):
        """
        The async faces of a pipeline take and give back its permits.
        """
        b = _aimd(clock)
        pipeline = stalwart.Pipeline(b)

        async def main() -> str:
            async with pipeline:
                await clock.asleep(0.25)
            return await pipeline.acall(awork, clock, 0.25, "done")

        assert "done" == asyncio.run(main())
        assert 3 == b.limit


class TestMisuse:
    def test_call_with_an_async_function(self, clock):
        """
        call() refuses an async function and gives the permit back.
        """
        b = _aimd(clock)

        with pytest.raises(TypeError, match="use acall"):
            b.call(as_async(ok))

        assert (0, 1) == (b.statistics().in_flight, b.limit)

    def test_decorated_def_returning_a_coroutine(self, clock):
        """
        A decorated def returning a coroutine is refused, not sampled.
        """
        b = _aimd(clock)

        @b
        def sneaky() -> Any:
            return as_async(ok)()

        with pytest.raises(TypeError, match="use acall"):
            sneaky()

        assert (0, 1) == (b.statistics().in_flight, b.limit)

    def test_acall_with_a_plain_function(self, clock):
        """
        acall() refuses a plain function and gives the permit back.
        """
        b = _aimd(clock)

        with pytest.raises(TypeError, match="use call"):
            asyncio.run(b.acall(ok))  # type: ignore[arg-type]  # the misuse tested

        assert 0 == b.statistics().in_flight

    def test_sync_face_that_would_block_a_loop(self, clock):
        """
        A sync face that would wait on a loop's thread raises, naming its
        async twin.
        """
        b = _aimd(clock, max_queue=1)

        async def main() -> None:
            await b.aacquire()
            with pytest.raises(RuntimeError, match="aacquire"):
                b.acquire()
            with pytest.raises(RuntimeError, match="async with"):
                with b:
                    pass
            b.release()

        asyncio.run(main())

        assert (0, 0) == (b.statistics().in_flight, b.statistics().refused)

    def test_exit_without_enter(self, clock):
        """
        __exit__ without a block is an error, not a permit made up.
        """
        b = _aimd(clock)

        with pytest.raises(RuntimeError, match="without a matching"):
            b.__exit__(None, None, None)


class TestBlocks:
    def test_blocks_in_generators_stepped_alternately(self, clock):
        """
        Two generators holding `with b:` across a yield, stepped
        alternately, each time their own block.
        """
        b = AdaptiveBulkhead(
            min_limit=2,
            max_limit=10,
            initial_limit=2,
            algorithm=AIMDLimit(),
            clock=clock,
        )

        def gen(seconds: float) -> Any:
            with b:
                yield
                clock.advance(seconds)

        one, two = gen(1.0), gen(3.0)
        next(one)
        next(two)
        with contextlib.suppress(StopIteration):
            next(one)
        assert 1.0 == b.statistics().rtt
        with contextlib.suppress(StopIteration):
            next(two)

        stats = b.statistics()
        # Admitted with 1 then 2 in flight: both grow AIMD's limit; the
        # second block took 4 s (1.0 + 0.1 * (4.0 - 1.0) on average).
        assert (0, 4) == (stats.in_flight, stats.limit)
        assert 1.3 == pytest.approx(stats.rtt)

    def test_nested_blocks(self, clock):
        """
        Nested blocks in one function hold two permits and time
        themselves.
        """
        b = AdaptiveBulkhead(
            min_limit=2, initial_limit=2, algorithm=AIMDLimit(), clock=clock
        )

        with b:
            clock.advance(1.0)
            with b:
                clock.advance(1.0)
                assert 2 == b.statistics().in_flight
            assert 1.0 == b.statistics().rtt

        assert 0 == b.statistics().in_flight


class TestStatistics:
    def test_to_dict(self, clock):
        """
        The statistics carry the name and go through json as they are.
        """
        b = _aimd(clock)
        b.call(work, clock, 0.5, None)

        assert {
            "primitive": "adaptive_bulkhead",
            "name": "api",
            "limit": 2,
            "in_flight": 0,
            "queued": 0,
            "refused": 0,
            "dropped": 0,
            "high_water": 1,
            "rtt": 0.5,
            "rtt_noload": None,
            "probing": False,
        } == json.loads(json.dumps(b.statistics().to_dict()))


class TestConcurrency:
    @pytest.mark.parametrize("seed", range(4))
    def test_threads_and_tasks_share_one_limit(self, seed):
        """
        Two threads and two tasks of an event loop calling at once, with
        random outcomes: the limit stays within its bounds, every caller
        is admitted, and every permit comes back.
        """
        b = AdaptiveBulkhead(
            min_limit=2,
            max_limit=6,
            initial_limit=4,
            algorithm=AIMDLimit(backoff_ratio=0.5),
            max_queue=None,
        )
        rng = random.Random(seed)
        plans = [
            [rng.choice(["ok", "timeout", "value"]) for _ in range(60)]
            for _ in range(4)
        ]
        counts = {"ok": 0, "failed": 0}
        lock = threading.Lock()
        limits: list[int] = []

        def outcome(plan: str) -> None:
            if plan == "timeout":
                raise TimeoutError
            if plan == "value":
                raise ValueError

        def count(key: str) -> None:
            with lock:
                counts[key] += 1
                limits.append(b.limit)

        def thread_calls(plan: list[str]) -> None:
            for step in plan:
                try:
                    b.call(outcome, step)
                except (TimeoutError, ValueError):
                    count("failed")
                else:
                    count("ok")

        async def task_calls(plan: list[str]) -> None:
            for step in plan:
                try:
                    async with b:
                        await asyncio.sleep(0)
                        outcome(step)
                except (TimeoutError, ValueError):
                    count("failed")
                else:
                    count("ok")

        threads_and_tasks(plans, thread_calls, task_calls)

        stats = b.statistics()
        steps = [step for plan in plans for step in plan]
        assert steps.count("ok") == counts["ok"]
        assert steps.count("timeout") == stats.dropped
        assert (0, 0, 0) == (stats.in_flight, stats.queued, stats.refused)
        assert all(2 <= limit <= 6 for limit in [*limits, stats.limit])
        assert stats.high_water <= 6


class TestLogging:
    def test_limit_changes_read_well(self, clock, caplog):
        """
        LoggingHook logs a limit that grew at DEBUG and one that was cut at
        INFO, as one readable line with the fields.
        """
        caplog.set_level("DEBUG", logger="stalwart")
        b = _aimd(clock, initial_limit=2, hooks=stalwart.LoggingHook())
        b.call(work, clock, 0.1, None)
        with pytest.raises(TimeoutError):
            b.call(work, clock, 0.1, TimeoutError())

        assert [
            ("DEBUG", "adaptive_bulkhead 'api' moved its limit 2 -> 3"),
            ("INFO", "adaptive_bulkhead 'api' moved its limit 3 -> 1"),
        ] == [(r.levelname, r.getMessage()) for r in caplog.records]
        assert (3, 1) == (
            caplog.records[1].stalwart_previous_limit,
            caplog.records[1].stalwart_limit,
        )
