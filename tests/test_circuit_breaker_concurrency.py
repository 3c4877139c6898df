"""
The circuit breaker under many threads and many tasks: exact counts, no
serialisation of the guarded calls, no real sleeps.
"""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

import stalwart

from helpers import Boom, boom, ok
from stalwart import CircuitBreaker, CircuitOpenError, CircuitState, _gil
from stalwart.testing import FakeClock


# Only a guard against a hung test; no result depends on it.
GUARD = 10.0


def half_open(clock: FakeClock, **kwargs: object) -> CircuitBreaker:
    """
    A breaker that admits trial calls at the next call.
    """
    cb = CircuitBreaker(
        failure_threshold=1, recovery_time=1, clock=clock, **kwargs
    )
    with pytest.raises(Boom):
        cb.call(boom)
    clock.advance(1)
    return cb


class TestThreads:
    @pytest.mark.parametrize("slots", [1, 3])
    def test_half_open_admits_exactly_the_trial_slots(self, clock, slots):
        """
        32 threads released at once against a half-open breaker: exactly
        half_open_max_calls run, every other one is refused at once.
        """
        cb = half_open(
            clock, half_open_max_calls=slots, success_threshold=slots
        )
        threads = 32
        start = threading.Barrier(threads)
        all_refused = threading.Event()
        ran: list[int] = []
        refused: list[int] = []
        lock = threading.Lock()

        def trial(i: int) -> str:
            ran.append(i)
            # Hold the slot until every refusal happened.
            assert all_refused.wait(GUARD)
            return "ok"

        def worker(i: int) -> None:
            start.wait(GUARD)
            try:
                cb.call(trial, i)
            except CircuitOpenError as e:
                # No half_open_max_wait: when a slot frees is unknown.
                assert e.retry_after is None
                with lock:
                    refused.append(i)
                    if len(refused) == threads - slots:
                        all_refused.set()

        pool = [
            threading.Thread(target=worker, args=(i,)) for i in range(threads)
        ]
        for t in pool:
            t.start()
        for t in pool:
            t.join(GUARD)

        assert slots == len(ran)
        assert threads - slots == len(refused)
        assert CircuitState.CLOSED == cb.state
        assert threads - slots == cb.statistics().rejected

    @pytest.mark.parametrize("state", ["closed", "half_open"])
    def test_two_blocking_calls_are_not_serialised(self, clock, state):
        """
        Two threads both get inside the guarded call at once: the lock is
        never held across it.
        """
        if state == "closed":
            cb = CircuitBreaker(clock=clock)
        else:
            cb = half_open(clock, half_open_max_calls=2, success_threshold=2)
        inside = threading.Barrier(2)
        met: list[bool] = []

        def blocking() -> None:
            # Both threads must be in here together to pass the barrier.
            inside.wait(GUARD)
            met.append(True)

        pool = [
            threading.Thread(target=cb.call, args=(blocking,)) for _ in "ab"
        ]
        for t in pool:
            t.start()
        for t in pool:
            t.join(GUARD)

        assert [True, True] == met
        assert CircuitState.CLOSED == cb.state

    def test_concurrent_failures_open_exactly_once(self, clock):
        """
        64 threads failing at once open the breaker exactly once and the
        failure count is exact.
        """
        opened: list[object] = []
        cb = CircuitBreaker(
            failure_threshold=5,
            clock=clock,
            hooks=lambda e: (
                opened.append(e)
                if type(e).__name__ == "CircuitOpened"
                else None
            ),
        )
        threads = 64
        start = threading.Barrier(threads)
        outcomes: list[str] = []

        def worker() -> None:
            start.wait(GUARD)
            try:
                cb.call(boom)
            except Boom:
                outcomes.append("failed")
            except CircuitOpenError:
                outcomes.append("refused")

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(GUARD)
        stats = cb.statistics()

        assert 1 == len(opened)
        assert threads == len(outcomes)
        assert outcomes.count("failed") == stats.failures
        assert outcomes.count("refused") == stats.rejected

    @pytest.mark.parametrize(
        "cell_counting",
        [True, False],
        ids=["closure-cells", "free-threaded-route"],
    )
    def test_lock_free_counts_lose_nothing(
        self, clock, monkeypatch, cell_counting
    ):
        """
        Successes counted without the lock, and refusals, lose nothing
        under threads: with the decorator's and the with blocks' counters
        (GIL builds), through the atomic counters free-threaded builds
        use, and with the other faces mixed in.
        """
        monkeypatch.setattr(_gil, "CELL_COUNTING", cell_counting)
        cb = CircuitBreaker(failure_threshold=1, recovery_time=60, clock=clock)
        guarded, other = cb(ok), cb(lambda: "ok")
        threads, calls = 8, 1000
        start = threading.Barrier(threads)
        phase = threading.Barrier(threads + 1)  # with the main thread
        refused: list[int] = []

        def worker() -> None:
            start.wait(GUARD)
            for _ in range(calls):
                guarded()
                other()
                cb.call(ok)
                with cb:
                    pass
            phase.wait(GUARD)  # successes done
            phase.wait(GUARD)  # the breaker is open now
            mine = 0
            for _ in range(calls):
                try:
                    guarded()
                except CircuitOpenError:
                    mine += 1
            refused.append(mine)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)  # many more thread switches
        try:
            for t in pool:
                t.start()
            phase.wait(GUARD)
            with pytest.raises(Boom):
                cb.call(boom)  # opens it for 60 s of a clock that stays
            phase.wait(GUARD)
            for t in pool:
                t.join(GUARD)
        finally:
            sys.setswitchinterval(interval)
        stats = cb.statistics()

        assert 4 * threads * calls == stats.successes
        assert threads * calls == sum(refused) == stats.rejected


class TestTasks:
    @pytest.mark.parametrize("slots", [1, 4])
    def test_half_open_admits_exactly_the_trial_slots(self, clock, slots):
        """
        200 tasks against a half-open breaker: exactly half_open_max_calls
        run; the others are refused at once, never queued.
        """
        cb = half_open(
            clock, half_open_max_calls=slots, success_threshold=slots
        )
        tasks = 200

        async def main() -> tuple[int, int]:
            all_refused = asyncio.Event()
            ran = refused = 0

            async def trial() -> str:
                nonlocal ran
                ran += 1
                # Hold the slot until every other task was refused.
                await all_refused.wait()
                return "ok"

            async def worker() -> None:
                nonlocal refused
                try:
                    await cb.acall(trial)
                except CircuitOpenError:
                    refused += 1
                    if refused == tasks - slots:
                        all_refused.set()

            await asyncio.gather(*(worker() for _ in range(tasks)))
            return ran, refused

        started, refused = asyncio.run(main())

        assert slots == started
        assert tasks - slots == refused
        assert CircuitState.CLOSED == cb.state


class TestOrderedEvents:
    def test_slow_hook_does_not_reorder_transitions(self, clock):
        """
        A gauge fed by hooks ends on the breaker's state: while a slow hook
        announces the opening made by one thread, a reset by another
        thread returns at once and its CircuitClosed is delivered after
        the CircuitOpened, by the thread holding the delivery.
        """
        seen: list[stalwart.CircuitStateChanged] = []
        gauge: list[CircuitState] = []
        inside, release = threading.Event(), threading.Event()

        def hook(event: stalwart.Event) -> None:
            if isinstance(event, stalwart.CircuitOpened):
                inside.set()
                assert release.wait(GUARD)
            if isinstance(event, stalwart.CircuitStateChanged):
                seen.append(event)
                gauge[:] = [event.state]

        cb = CircuitBreaker(failure_threshold=1, clock=clock, hooks=hook)

        def fail() -> None:
            with pytest.raises(Boom):
                cb.call(boom)

        opener = threading.Thread(target=fail)
        opener.start()
        assert inside.wait(GUARD)
        cb.reset()  # returns while the opener's hook still runs

        assert [] == seen
        assert CircuitState.CLOSED == cb.state

        release.set()
        opener.join(GUARD)

        assert [CircuitState.CLOSED] == gauge
        assert [
            (CircuitState.CLOSED, CircuitState.OPEN),
            (CircuitState.OPEN, CircuitState.CLOSED),
        ] == [(e.previous, e.state) for e in seen]

    def test_transitions_from_many_threads_form_a_chain(self, clock):
        """
        Threads tripping, resetting and refusing at once, with frequent
        thread switches: the transitions the hooks see form one chain
        (each starts where the previous ended) that ends on the breaker's
        final state.
        """
        seen: list[stalwart.CircuitStateChanged] = []
        cb = CircuitBreaker(
            failure_threshold=1,
            recovery_time=60,
            clock=clock,
            hooks=lambda e: (
                seen.append(e)
                if isinstance(e, stalwart.CircuitStateChanged)
                else None
            ),
        )
        threads, rounds = 6, 1000
        start = threading.Barrier(threads)

        def work(i: int) -> None:
            start.wait(GUARD)
            for _ in range(rounds):
                if i % 2:
                    cb.reset()
                else:
                    try:
                        cb.call(boom)
                    except (Boom, CircuitOpenError):
                        pass

        pool = [
            threading.Thread(target=work, args=(i,)) for i in range(threads)
        ]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        try:
            for t in pool:
                t.start()
            for t in pool:
                t.join(GUARD)
        finally:
            sys.setswitchinterval(interval)

        assert seen
        assert all(
            before.state == after.previous
            for before, after in zip(seen, seen[1:], strict=False)
        )
        assert cb.state == seen[-1].state
