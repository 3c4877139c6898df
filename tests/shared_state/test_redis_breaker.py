"""
A circuit breaker shared by processes through Redis, on a real server:
every face, one state for two "processes" (two stores, two connection
pools), the windows and rates, the trial slots, the manual states, the
growing recovery time, what a process sees and when, and the round trips
each decision costs.
"""

from __future__ import annotations

import asyncio
import threading

from collections.abc import Generator, Iterator

import attrs
import pytest
import redis
import redis.asyncio

from redis.crc import key_slot

from helpers import Boom, boom, ok
from redis_breaker_support import FACES, Fleet, through
from stalwart import (
    CallFinished,
    CallRejected,
    CircuitBreaker,
    CircuitClosed,
    CircuitHalfOpened,
    CircuitOpened,
    CircuitOpenError,
    CircuitState,
    ConfigurationError,
    CountWindow,
    Event,
    KeyedCircuitBreaker,
    TimeWindow,
)
from stalwart._shared_breaker import SharedCircuitBreaker
from stalwart.redis import RedisStore


KEY = "stalwart:breaker:{payments}"


@pytest.fixture(name="fleet")
def _fleet(redis_url: str) -> Iterator[Fleet]:
    fleet = Fleet(redis_url)
    try:
        yield fleet
    finally:
        fleet.close()


async def decoding(url: str) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(url, decode_responses=True)


async def aok() -> str:
    return "ok"


async def boom_async() -> None:
    raise Boom


def fail(fleet: Fleet, face: str, cb: CircuitBreaker) -> None:
    with pytest.raises(Boom):
        through(fleet, face, cb, boom)


class TestBuilt:
    def test_a_store_makes_a_shared_breaker(self, fleet):
        """
        CircuitBreaker(store=...) is still a CircuitBreaker, one that
        shares; without a store it is the in-memory breaker.
        """
        shared = fleet.breaker()

        assert isinstance(shared, CircuitBreaker)
        assert isinstance(shared, SharedCircuitBreaker)
        assert type(CircuitBreaker()) is CircuitBreaker

    def test_evolve_keeps_or_drops_the_store(self, fleet):
        """
        attrs.evolve gives a shared breaker while a store is set, and an
        in-memory one once it is removed.
        """
        shared = fleet.breaker()

        renamed = attrs.evolve(shared, name="other")
        local = attrs.evolve(shared, store=None)

        assert isinstance(renamed, SharedCircuitBreaker)
        assert "other" == renamed.name
        assert type(local) is CircuitBreaker
        assert "payments" == local.name

    def test_clients_that_decode_responses(self, fleet):
        """
        A store on clients built with decode_responses=True works alike.
        """
        store = RedisStore(
            client=redis.Redis.from_url(fleet.url, decode_responses=True),
            aclient=fleet.loop.run_until_complete(decoding(fleet.url)),
        )
        fleet.stores.append(store)
        cb = fleet.breaker(store=store, failure_threshold=1, recovery_time=5)
        fail(fleet, "call", cb)

        with pytest.raises(CircuitOpenError) as refused:
            fleet.run(cb.acall(aok))
        assert 5.0 == refused.value.retry_after
        assert CircuitState.OPEN == cb.statistics().state

    def test_store_of_the_wrong_type(self):
        """
        A store that is not a RedisStore is refused where built.
        """
        with pytest.raises(TypeError, match="'store' must be"):
            CircuitBreaker(store="redis://localhost")

    @pytest.mark.parametrize(
        ("value", "words"),
        [(1.0, "applies only with a 'store'"), (-1, "'max_staleness'")],
        ids=["without-store", "negative"],
    )
    def test_bad_max_staleness(self, value, words):
        """
        max_staleness needs a store and a non-negative number.
        """
        with pytest.raises(ConfigurationError, match=words):
            CircuitBreaker(max_staleness=value)


class TestFaces:
    @pytest.mark.parametrize("face", FACES)
    def test_one_state_for_two_processes(self, fleet, face):
        """
        Through every face, failures in two processes add up, both refuse
        once open (the other one once its view is max_staleness old), and
        a trial in one closes it for both.
        """
        a = fleet.breaker(failure_threshold=2, recovery_time=10)
        b = fleet.breaker(failure_threshold=2, recovery_time=10)

        assert "ok" == through(fleet, face, a, ok)
        fail(fleet, face, a)
        fail(fleet, face, b)
        with pytest.raises(CircuitOpenError) as here:
            through(fleet, face, b, ok)
        fleet.clock.advance(1)
        with pytest.raises(CircuitOpenError) as there:
            through(fleet, face, a, ok)
        fleet.clock.advance(9)
        assert "ok" == through(fleet, face, a, ok)

        assert (10.0, 9.0) == (
            here.value.retry_after,
            there.value.retry_after,
        )
        assert CircuitState.CLOSED == b.state

    def test_generators_are_one_call(self, fleet):
        """
        A decorated generator's whole iteration is one call, on the sync
        and the async client.
        """
        cb = fleet.breaker(failure_threshold=2)

        @cb
        def numbers() -> Generator[int, None, None]:
            yield 1
            raise Boom

        @cb
        async def anumbers():  # noqa: RUF029  # an async generator
            yield 1
            raise Boom

        async def drain() -> None:
            async for _ in anumbers():
                pass

        with pytest.raises(Boom):
            list(numbers())
        with pytest.raises(Boom):
            fleet.run(drain())

        assert CircuitState.OPEN == cb.state

    def test_ignored_and_failure_result(self, fleet):
        """
        Ignored exceptions and failing results are classified as the
        in-memory breaker does, on both clients.
        """
        cb = fleet.breaker(
            failure_threshold=2,
            ignore=KeyError,
            failure_result=lambda value: value == "bad",
        )

        async def bad() -> str:
            return "bad"

        async def missing() -> None:
            raise KeyError

        with pytest.raises(KeyError):
            cb.call(lambda: {}["x"])
        with pytest.raises(KeyError):
            fleet.run(cb.acall(missing))
        assert "bad" == cb.call(lambda: "bad")
        assert "bad" == fleet.run(cb.acall(bad))
        stats = cb.statistics()

        assert CircuitState.OPEN == stats.state
        assert (0, 2, 2) == (stats.successes, stats.failures, stats.ignored)

    def test_a_raising_predicate_gives_the_trial_back(self, fleet):
        """
        A failure_result predicate that raises lets its error out and
        frees the trial slot, on both clients.
        """
        cb = fleet.breaker(
            failure_threshold=1,
            recovery_time=1,
            failure_result=lambda value: 1 / 0,
        )
        fail(fleet, "call", cb)
        fleet.clock.advance(1)

        async def one() -> int:
            return 1

        with pytest.raises(ZeroDivisionError):
            cb.call(lambda: 1)
        with pytest.raises(ZeroDivisionError):
            fleet.run(cb.acall(one))
        permit = cb.acquire()

        assert CircuitState.HALF_OPEN == cb.state
        permit.release()
        assert 0 == cb.statistics().half_open_calls

    def test_an_awaitable_result_gives_the_permit_back(self, fleet):
        """
        call() on an async function gives the permit (the trial) back and
        says so; nothing is counted.
        """
        cb = fleet.breaker(failure_threshold=1, recovery_time=1)

        async def coro() -> None:
            pass

        with pytest.raises(TypeError, match="acall"):
            cb.call(coro)
        assert 0 == cb.statistics().calls
        fail(fleet, "call", cb)
        fleet.clock.advance(1)

        with pytest.raises(TypeError, match="acall"):
            cb.call(coro)
        with pytest.raises(TypeError, match="call"):
            fleet.run(cb.acall(ok))

        assert "ok" == cb.call(ok)
        assert CircuitState.CLOSED == cb.state

    def test_an_async_client_alone_gives_the_trial_back(self, fleet):
        """
        With only an async client, a trial given back by an async face
        (acall of a function that is not async) frees its slot from a task.
        """
        store = RedisStore(
            aclient=fleet.loop.run_until_complete(decoding(fleet.url))
        )
        fleet.stores.append(store)
        cb = fleet.breaker(store=store, failure_threshold=1, recovery_time=1)

        async def main() -> str:
            with pytest.raises(Boom):
                await cb.acall(boom_async)
            fleet.clock.advance(1)
            with pytest.raises(TypeError, match="call"):
                await cb.acall(ok)
            await asyncio.gather(*cb._link.pending)
            return await cb.acall(aok)

        assert "ok" == fleet.run(main())
        assert not cb._link.pending

    def test_cancelled_trial_frees_its_slot(self, fleet):
        """
        A trial task cancelled mid-call frees its slot for the fleet.
        """
        a = fleet.breaker(failure_threshold=1, recovery_time=1)
        b = fleet.breaker(failure_threshold=1, recovery_time=1)
        fail(fleet, "call", a)
        fleet.clock.advance(1)

        async def main() -> None:
            started = asyncio.Event()

            async def trial() -> None:
                async with a:
                    started.set()
                    await asyncio.Event().wait()  # until cancelled

            task = asyncio.ensure_future(trial())
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        fleet.run(main())

        assert "ok" == b.call(ok)
        assert CircuitState.CLOSED == a.state


class TestPolicies:
    def test_count_window_of_the_fleet(self, fleet):
        """
        "3 failures in the last 5 calls" counts the calls of every
        process in one window.
        """
        a, b = (
            fleet.breaker(failure_threshold=3, window=CountWindow(5))
            for _ in range(2)
        )
        fail(fleet, "call", a)
        for _ in range(4):
            b.call(ok)
        fail(fleet, "call", b)
        fail(fleet, "call", a)
        stats = a.statistics()
        assert (CircuitState.CLOSED, 5, 2) == (
            stats.state,
            stats.window_calls,
            stats.window_failures,
        )

        fail(fleet, "call", b)

        assert CircuitState.OPEN == a.state

    def test_time_window_forgets(self, fleet):
        """
        A time window drops failures older than its length for every
        process.
        """
        a, b = (
            fleet.breaker(failure_threshold=2, window=TimeWindow(10))
            for _ in range(2)
        )
        fail(fleet, "call", a)
        fleet.clock.advance(10)
        fail(fleet, "call", b)
        assert CircuitState.CLOSED == b.state
        assert 1 == a.statistics().window_failures

        fail(fleet, "call", a)

        assert CircuitState.OPEN == b.state

    def test_rates_need_minimum_calls(self, fleet):
        """
        A failure rate over the fleet's calls opens once the window holds
        the minimum calls, and statistics give the rates.
        """
        a, b = (
            fleet.breaker(
                failure_rate=0.5, window=CountWindow(10), minimum_calls=4
            )
            for _ in range(2)
        )
        fail(fleet, "call", a)
        fail(fleet, "call", b)
        a.call(ok)
        assert (None, None) == (
            a.statistics().failure_rate,
            a.statistics().slow_call_rate,
        )

        b.call(ok)

        assert CircuitState.OPEN == a.state
        assert 0.5 == a.statistics().failure_rate

    def test_slow_call_rate(self, fleet):
        """
        Calls timed on the breaker's clock count as slow, fleet-wide.
        """
        a, b = (
            fleet.breaker(
                slow_call_rate=1.0,
                slow_call_duration=2,
                window=CountWindow(2),
            )
            for _ in range(2)
        )

        def slow_ok() -> str:
            fleet.clock.advance(2)
            return "ok"

        a.call(slow_ok)
        assert (1, 1) == (
            a.statistics().slow_calls,
            a.statistics().window_slow_calls,
        )
        b.call(slow_ok)
        stats = a.statistics()

        assert CircuitState.OPEN == stats.state
        assert (0.0, 1.0) == (stats.failure_rate, stats.slow_call_rate)

    def test_rate_verdict_after_every_trial(self, fleet):
        """
        Under a rate policy, the half-open verdict comes after every
        trial of the fleet has reported.
        """
        a, b = (
            fleet.breaker(
                failure_rate=0.5,
                window=CountWindow(2),
                half_open_max_calls=2,
                recovery_time=1,
            )
            for _ in range(2)
        )
        fail(fleet, "call", a)
        fail(fleet, "call", a)
        fleet.clock.advance(1)
        first, second = a.acquire(), b.acquire()
        first.record_success()
        assert CircuitState.HALF_OPEN == b.state
        assert 1 == b.statistics().window_calls

        second.record_failure()

        assert CircuitState.OPEN == a.state


class TestHalfOpen:
    def test_trial_slots_are_the_fleets(self, fleet):
        """
        half_open_max_calls trials run across all processes; any other
        caller is refused until the wait for them runs out.
        """
        a, b = (
            fleet.breaker(
                failure_threshold=1,
                recovery_time=5,
                half_open_max_calls=2,
                success_threshold=2,
                half_open_max_wait=30,
            )
            for _ in range(2)
        )
        fail(fleet, "call", a)
        fleet.clock.advance(5)
        first, second = a.acquire(), b.acquire()
        with pytest.raises(CircuitOpenError) as refused:
            b.call(ok)
        stats = a.statistics()
        assert (CircuitState.HALF_OPEN, 2) == (
            stats.state,
            stats.half_open_calls,
        )
        assert 30.0 == refused.value.retry_after

        first.record_success()
        second.record_success()

        assert CircuitState.CLOSED == a.state

    def test_a_trial_that_never_reports_is_reclaimed(self, fleet):
        """
        A trial whose process died (its permit never used) holds its slot
        for recovery_time at most: the breaker goes back to OPEN as of
        then, and the next period has a fresh slot.
        """
        a = fleet.breaker(failure_threshold=1, recovery_time=5)
        b = fleet.breaker(failure_threshold=1, recovery_time=5)
        fail(fleet, "call", a)
        fleet.clock.advance(5)
        a.acquire()  # the process holding it dies
        with pytest.raises(CircuitOpenError):
            b.call(ok)
        fleet.clock.advance(5)
        assert CircuitState.OPEN == b.state
        assert 15.0 == b.statistics().open_until
        fleet.clock.advance(5)

        assert "ok" == b.call(ok)
        assert CircuitState.CLOSED == a.state

    def test_a_hook_interrupting_the_admission_frees_the_slot(self, fleet):
        """
        A hook raising KeyboardInterrupt on the half-open transition stops
        the call, and its trial slot goes back to the fleet.
        """

        def interrupt(event: Event) -> None:
            if isinstance(event, CircuitHalfOpened):
                raise KeyboardInterrupt

        a = fleet.breaker(failure_threshold=1, recovery_time=1)
        b = fleet.breaker(failure_threshold=1, recovery_time=1)
        fail(fleet, "call", a)
        fleet.clock.advance(1)
        a.add_hook(interrupt)

        with pytest.raises(KeyboardInterrupt):
            a.call(ok)

        assert 0 == b.statistics().half_open_calls
        assert "ok" == b.call(ok)

    def test_threads_of_two_processes_take_one_slot(self, fleet):
        """
        Sixteen threads in two processes, one slot: exactly one trial.
        """
        a, b = (
            fleet.breaker(
                failure_threshold=1, recovery_time=1, max_staleness=0
            )
            for _ in range(2)
        )
        fail(fleet, "call", a)
        fleet.clock.advance(1)
        barrier = threading.Barrier(16)
        permits = []
        refused = []

        def attempt(cb: CircuitBreaker) -> None:
            barrier.wait()
            try:
                permits.append(cb.acquire())
            except CircuitOpenError as e:
                refused.append(e)

        threads = [
            threading.Thread(target=attempt, args=(cb,)) for cb in [a, b] * 8
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert (1, 15) == (len(permits), len(refused))

    def test_tasks_take_one_slot(self, fleet):
        """
        Concurrent tasks on the async client: exactly one trial.
        """
        cb = fleet.breaker(failure_threshold=1, recovery_time=1)
        fail(fleet, "call", cb)
        fleet.clock.advance(1)
        release = asyncio.Event()
        seen = []

        def count(what: str) -> None:
            seen.append(what)
            if len(seen) == 10:  # every task is in or refused
                release.set()

        async def trial() -> str:
            try:
                async with cb:
                    count("trial")
                    await release.wait()
            except CircuitOpenError:
                count("refused")
            return seen[-1]

        async def main() -> list[str]:
            return await asyncio.gather(*(trial() for _ in range(10)))

        outcomes = fleet.run(main())

        assert 10 == len(outcomes)
        assert (1, 9) == (seen.count("trial"), seen.count("refused"))

    def test_recovery_time_grows_for_the_fleet(self, fleet):
        """
        Consecutive trips grow the open period, whichever process trips
        it, and closing starts it over.
        """
        a, b = (
            fleet.breaker(
                failure_threshold=1,
                recovery_time=1,
                recovery_multiplier=2,
                recovery_max=3,
            )
            for _ in range(2)
        )
        opened: list[float] = []
        for cb in (a, b, a):
            fail(fleet, "call", cb)
            opened.append(cb.statistics().open_until - fleet.clock.now())
            fleet.clock.advance(opened[-1])
        b.call(ok)
        fail(fleet, "call", b)

        assert [1.0, 2.0, 3.0] == opened
        assert fleet.clock.now() + 1 == a.statistics().open_until


class TestManual:
    def test_forced_open_and_reset_reach_the_fleet(self, fleet):
        """
        force_open in one process refuses in another (once its view is
        max_staleness old), without retry_after; reset reopens it.
        """
        a = fleet.breaker()
        b = fleet.breaker(max_staleness=2)
        b.call(ok)
        a.force_open()
        assert "ok" == b.call(ok)  # its view is fresh: admitted
        with pytest.raises(CircuitOpenError) as refused:
            b.call(ok)  # the record's reply told it
        assert refused.value.retry_after is None
        b.reset()
        fleet.clock.advance(2)

        assert "ok" == a.call(ok)
        assert CircuitState.CLOSED == a.state

    def test_disabled_and_metrics_only(self, fleet):
        """
        A disabled fleet admits and records nothing; metrics_only records
        and never opens.
        """
        a = fleet.breaker(failure_threshold=1, window=CountWindow(5))
        b = fleet.breaker(failure_threshold=1, window=CountWindow(5))
        a.disable()
        fail(fleet, "call", b)
        assert (CircuitState.DISABLED, 0) == (
            a.state,
            a.statistics().window_calls,
        )
        b.metrics_only()
        fleet.clock.advance(1)  # a's view: DISABLED until then
        fail(fleet, "call", a)
        fail(fleet, "call", b)
        stats = b.statistics()

        assert (CircuitState.METRICS_ONLY, 2) == (
            stats.state,
            stats.window_failures,
        )
        assert {"disabled": 1, "metrics_only": 1} == {
            k: v for k, v in stats.transitions.items() if v
        }


class TestWhatAProcessSees:
    def test_a_fresh_view_admits_until_the_next_reply(self, fleet):
        """
        A process whose view is CLOSED admits without asking until a
        reply (or max_staleness) tells it the fleet opened.
        """
        a = fleet.breaker(failure_threshold=1, recovery_time=60)
        b = fleet.breaker(failure_threshold=1, recovery_time=60)
        c = fleet.breaker(failure_threshold=1, recovery_time=60)
        b.call(ok)
        c.call(ok)
        fail(fleet, "call", a)

        assert "ok" == b.call(ok)  # admitted on its view, not counted
        with pytest.raises(CircuitOpenError):
            b.call(ok)
        fleet.clock.advance(1)  # c's view is now max_staleness old
        with pytest.raises(CircuitOpenError):
            c.call(ok)
        assert CircuitState.OPEN == a.state

    def test_round_trips(self, fleet):
        """
        One round trip per success and per failure, none per refusal
        while open, one per half-open refusal, two per trial.
        """
        cb = fleet.breaker(failure_threshold=2, recovery_time=10)
        cb.call(ok)  # the first call asks: admit and record
        counts = []

        def costs(fn) -> None:
            before = fleet.round_trips()
            fn()
            counts.append(fleet.round_trips() - before)

        def refused() -> None:
            with pytest.raises(CircuitOpenError):
                cb.call(ok)

        costs(lambda: cb.call(ok))
        costs(lambda: fail(fleet, "call", cb))
        costs(lambda: fail(fleet, "call", cb))
        costs(refused)
        fleet.clock.advance(10)
        permit = cb.acquire()
        costs(refused)
        costs(permit.record_success)

        assert [1, 1, 1, 0, 1, 1] == counts
        assert CircuitState.CLOSED == cb.state

    def test_a_disabled_breaker_costs_nothing(self, fleet):
        """
        Disabled, a call costs no round trip while the view is fresh.
        """
        cb = fleet.breaker()
        cb.disable()
        before = fleet.round_trips()

        for _ in range(3):
            cb.call(ok)
            fail(fleet, "call", cb)

        assert before == fleet.round_trips()
        assert (3, 3) == (
            cb.statistics().successes,
            cb.statistics().failures,
        )

    def test_events_of_this_process_transitions(self, fleet):
        """
        Each process's hooks hear the transitions it made (on its clock)
        and its refusals.
        """
        events: list[Event] = []
        a = fleet.breaker(
            failure_threshold=1, recovery_time=5, hooks=[events.append]
        )
        b = fleet.breaker(failure_threshold=1, recovery_time=5)
        fleet.clock.advance(1)
        fail(fleet, "call", a)
        with pytest.raises(CircuitOpenError):
            a.call(ok)
        fleet.clock.advance(5)
        b.call(ok)  # b's transitions: not a's to tell
        fail(fleet, "call", b)
        fleet.clock.advance(5)
        a.call(ok)

        assert [
            (CircuitOpened, 1.0),
            (CallRejected, 1.0),
            (CircuitHalfOpened, 11.0),
            (CircuitClosed, 11.0),
        ] == [(type(e), e.at) for e in events]

    def test_per_call_events(self, fleet):
        """
        A hook asking for per-call events hears each outcome.
        """
        outcomes: list[str] = []
        cb = fleet.breaker(ignore=KeyError)
        cb.add_hook(
            lambda e: outcomes.append(getattr(e, "outcome", "")),
            per_call=True,
        )
        cb.call(ok)
        fail(fleet, "call", cb)
        with pytest.raises(KeyError):
            cb.call(lambda: {}["x"])

        assert ["success", "failure", "ignored"] == outcomes

    def test_a_per_call_hook_cannot_stop_the_recording(self, fleet):
        """
        A per-call hook raising KeyboardInterrupt on a trial's outcome
        lets it out, after the outcome was recorded for the fleet.
        """
        cb = fleet.breaker(failure_threshold=1, recovery_time=1)
        fail(fleet, "call", cb)
        fleet.clock.advance(1)

        def interrupt(event: Event) -> None:
            if isinstance(event, CallFinished):
                raise KeyboardInterrupt

        cb.add_hook(interrupt, per_call=True)

        with pytest.raises(KeyboardInterrupt):
            cb.call(ok)

        assert CircuitState.CLOSED == cb.state

    def test_the_state_is_readable_in_redis(self, fleet):
        """
        The state is a hash under the breaker's hash-tagged key, which
        expires while closed and persists while open.
        """
        cb = fleet.breaker(failure_threshold=1)
        cb.call(ok)
        assert b"closed" == fleet.admin.hget(KEY, "state")
        assert fleet.admin.ttl(KEY) > 0

        fail(fleet, "call", cb)

        assert b"open" == fleet.admin.hget(KEY, "state")
        assert -1 == fleet.admin.ttl(KEY)

    def test_an_older_reply_does_not_replace_a_newer_view(self, fleet):
        """
        Replies of concurrent calls may arrive out of order: one about an
        older generation leaves the view alone.
        """
        cb = fleet.breaker(failure_threshold=1, recovery_time=60)
        link = cb._link
        older = link.store._run(link.script, link.keys, cb._args("read", 0.0))
        fail(fleet, "call", cb)

        cb._apply(older, 0.0)

        with pytest.raises(CircuitOpenError):
            cb.call(ok)

    def test_one_cluster_slot_per_breaker(self, fleet):
        """
        A breaker's state and its window share one Redis Cluster slot.
        """
        cb = fleet.breaker(failure_threshold=1, window=CountWindow(3))
        cb.call(ok)

        keys = sorted(fleet.admin.keys("*"))

        assert [KEY.encode(), f"{KEY}:window".encode()] == keys
        assert 1 == len({key_slot(key) for key in keys})

    def test_scripts_flushed_are_loaded_again(self, fleet):
        """
        After SCRIPT FLUSH the next decision loads the script again.
        """
        cb = fleet.breaker(failure_threshold=1)
        cb.call(ok)
        fleet.admin.script_flush()

        fail(fleet, "call", cb)

        assert CircuitState.OPEN == cb.state

    def test_a_state_created_afresh_is_seen(self, fleet):
        """
        When the state vanishes (expired, a server restarted), a process
        that saw it open sees the fresh closed state once its view is old.
        """
        cb = fleet.breaker(failure_threshold=1, recovery_time=60)
        fail(fleet, "call", cb)
        fleet.admin.flushall()
        fleet.clock.advance(1)

        assert "ok" == cb.call(ok)
        assert CircuitState.CLOSED == cb.state


class TestTimeSources:
    def test_server_time_rules_the_open_period(self, fleet):
        """
        With time="server" the open period runs on the server's clock:
        the breaker's own clock jumping does not end it, and its end is
        told on the breaker's clock.
        """
        cb = fleet.breaker(
            store=fleet.store(time="server"),
            failure_threshold=1,
            recovery_time=3600,
        )
        fail(fleet, "call", cb)
        fleet.clock.advance(7200)

        with pytest.raises(CircuitOpenError) as refused:
            cb.call(ok)
        stats = cb.statistics()

        assert 0 < refused.value.retry_after <= 3600
        assert CircuitState.OPEN == stats.state
        # On this breaker's clock, from the server's timeline.
        assert 7200 < stats.open_until <= 7200 + 3600

    def test_server_time_zero_recovery(self, fleet):
        """
        With time="server" and no recovery time, the next call is a trial.
        """
        cb = fleet.breaker(
            store=fleet.store(time="server"),
            failure_threshold=1,
            recovery_time=0,
        )
        fail(fleet, "call", cb)

        assert "ok" == cb.call(ok)
        assert CircuitState.CLOSED == cb.state


class TestKeyed:
    def test_keyed_breakers_share_per_key(self, fleet):
        """
        A keyed breaker built on a shared template shares each key's
        state with the other processes, key by key.
        """
        a, b = (
            KeyedCircuitBreaker(
                name="hosts",
                breaker=fleet.breaker(failure_threshold=1),
            )
            for _ in range(2)
        )
        with pytest.raises(Boom):
            a.key("x").call(boom)

        assert CircuitState.OPEN == b.key("x").state
        assert "ok" == b.key("y").call(ok)
