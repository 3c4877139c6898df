"""
Every limiter on the Redis store, through every face, on a real server:
decisions and headers, booked waits and timeouts, cancellation giving the
booking back, keys, peek / reset / clear, several rates, the server's
time, and the failure policies (the server killed and restarted, a slow
server).
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis

from limiter_support import ALL, IDS
from redis_support import RedisServer
from stalwart import (
    CallRejected,
    FixedWindow,
    RateLimitExceededError,
    StoreUnavailable,
    StoreUnavailableError,
    TokenBucket,
)
from stalwart.redis import RedisStore
from stalwart.testing import FakeClock


@pytest.fixture(name="cls", params=ALL, ids=IDS)
def _cls(request):
    return request.param


@pytest.fixture(name="store")
def _store(redis_url):
    store = RedisStore(url=redis_url)
    yield store
    store.close()


def pair(cls, store, clock=None, **kwargs):
    """
    The same limiter in memory and on the store.
    """
    clock = clock or FakeClock(1000.0)
    kwargs.setdefault("rate", (3, 1.0))
    memory = cls(clock=clock, name="m", **kwargs)
    shared = cls(clock=clock, name="s", store=store, **kwargs)
    return clock, memory, shared


class _Watched:
    """
    A fake clock that tells when tasks went to sleep on it (a booked
    wait), so a test acts once a waiter is asleep, not while its answer
    is still on its way from the server.
    """

    def __init__(self, inner: FakeClock) -> None:
        self.inner = inner
        self.sleeping = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.inner.now()

    def advance(self, seconds: float) -> None:
        self.inner.advance(seconds)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)  # pragma: no cover  # async tests only

    async def asleep(self, seconds: float) -> None:
        self.sleeping += 1
        for count, fut in self._waiters:
            if count <= self.sleeping and not fut.done():
                fut.set_result(None)
        await self.inner.asleep(seconds)

    async def slept(self, count: int = 1) -> None:
        """
        Return once tasks went to sleep on this clock *count* times in all.
        """
        if self.sleeping < count:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append((count, fut))
            await fut


class TestDecisions:
    @pytest.mark.parametrize("key", [None, "user-1", b"user-2"])
    def test_try_acquire_and_peek_answer_as_in_memory(self, cls, store, key):
        clock, memory, shared = pair(cls, store)
        for step in [0.0, 0.0, 0.0, 0.0, 0.1, 0.25, 0.5, 1.0, 0.0, 2.5]:
            clock.advance(step)
            assert shared.peek(key=key) == memory.peek(key=key)
            mine, theirs = (
                memory.try_acquire(key=key),
                shared.try_acquire(key=key),
            )
            assert theirs == mine
            assert theirs.headers() == mine.headers()
        assert shared.statistics().granted == memory.statistics().granted
        assert shared.statistics().refused == memory.statistics().refused

    def test_atry_acquire_answers_as_in_memory_on_the_async_client(
        self, cls, store
    ):
        clock, memory, shared = pair(cls, store)

        async def run():
            for step in [0.0, 0.0, 0.0, 0.0, 0.5, 1.0]:
                clock.advance(step)
                assert await shared.atry_acquire() == memory.try_acquire()
            with pytest.raises(RateLimitExceededError):
                await shared.atry_acquire(99)  # never fits: not asked
            await store.aclose()

        asyncio.run(run())
        assert shared.statistics().refused == memory.statistics().refused + 1

    def test_keys_are_independent(self, store):
        limiter = FixedWindow(rate=(1, 1.0), store=store, clock=FakeClock())
        assert limiter.try_acquire(key="a")
        assert not limiter.try_acquire(key="a")
        assert limiter.try_acquire(key="b")
        assert limiter.try_acquire()

    def test_limiters_of_other_names_and_prefixes_are_independent(
        self, redis_url
    ):
        one, two = (
            RedisStore(url=redis_url),
            RedisStore(url=redis_url, prefix="other"),
        )
        clock = FakeClock()
        a = FixedWindow(rate=(1, 1.0), name="a", store=one, clock=clock)
        b = FixedWindow(rate=(1, 1.0), name="b", store=one, clock=clock)
        c = FixedWindow(rate=(1, 1.0), name="a", store=two, clock=clock)
        assert a.try_acquire() and b.try_acquire() and c.try_acquire()
        # One name and prefix: one limit, whoever holds the object.
        again = FixedWindow(rate=(1, 1.0), name="a", store=one, clock=clock)
        assert not again.try_acquire()

    def test_a_key_that_is_not_str_or_bytes_is_a_type_error(self, cls, store):
        limiter = cls(rate=(3, 1.0), store=store, clock=FakeClock())
        for face in (limiter.try_acquire, limiter.acquire, limiter.peek):
            with pytest.raises(TypeError, match="str or bytes"):
                face(key=42)
        with pytest.raises(TypeError, match="str or bytes"):
            asyncio.run(limiter.aacquire(key=("a",)))

    def test_a_cost_that_never_fits_is_refused_and_counted(self, cls, store):
        events = []
        limiter = cls(
            rate=(3, 1.0),
            store=store,
            clock=FakeClock(),
            hooks=[events.append],
        )
        with pytest.raises(RateLimitExceededError) as info:
            limiter.try_acquire(cost=4)
        assert info.value.retry_after is None
        assert limiter.statistics().refused == 1
        assert isinstance(events[0], CallRejected)

    def test_statistics_read_the_fleets_room(self, cls, store):
        """
        ``remaining`` is the shared room, as another process left it; a
        store with only an async client cannot read it from a sync call
        and says ``None``.
        """
        clock, memory, shared = pair(cls, store)
        other = cls(clock=clock, name="s", store=store, rate=(3, 1.0))
        other.try_acquire()
        memory.try_acquire()
        assert memory.statistics().remaining == shared.statistics().remaining
        async_only = RedisStore(aclient=store.aclient)
        limiter = cls(clock=clock, name="s", store=async_only, rate=(3, 1.0))
        assert limiter.statistics().remaining is None

    def test_a_store_that_is_not_one_is_refused(self):
        with pytest.raises(TypeError, match="'store'"):
            TokenBucket(rate=1, store="redis://localhost")

    def test_several_rates_at_once(self, store):
        clock, memory, shared = pair(
            TokenBucket, store, rate="2/second;3/10seconds"
        )
        for step in [0, 0, 0, 1, 1, 1, 5, 5]:
            clock.advance(step)
            assert shared.try_acquire() == memory.try_acquire()


class TestWaits:
    def test_acquire_waits_for_its_booked_slot(self, cls, store):
        waited = []
        for shared in (None, store):
            clock = FakeClock(1000.0)
            limiter = cls(rate=(3, 1.0), clock=clock, store=shared)
            limiter.try_acquire(cost=3)
            limiter.acquire()
            limiter.acquire(cost=2)
            waited.append(clock.now() - 1000.0)
        assert waited[0] > 0
        assert waited[1] == waited[0]

    def test_acquire_refuses_beyond_its_timeout_consuming_nothing(
        self, cls, store
    ):
        clock, _, shared = pair(cls, store)
        shared.try_acquire(cost=3)
        before = shared.peek()
        with pytest.raises(RateLimitExceededError) as info:
            shared.acquire(timeout=0.01)
        assert info.value.retry_after > 0.01
        assert shared.peek() == before

    def test_aacquire_waits_on_the_async_client(self, cls, store):
        clock, _, shared = pair(cls, store)
        shared.try_acquire(cost=3)

        async def main():
            start = clock.now()
            await shared.aacquire()
            async with shared:
                pass
            await store.aclose()
            return clock.now() - start

        assert asyncio.run(main()) > 0

    def test_a_cancelled_task_gives_its_booking_back(self, cls, store):
        clock = _Watched(FakeClock(1000.0, autojump=False))
        limiter = cls(rate=(3, 1.0), store=store, clock=clock, name="c")
        limiter.try_acquire(cost=3)
        before = limiter.peek(cost=1)

        async def main():
            task = asyncio.ensure_future(limiter.aacquire())
            await clock.slept()  # booked, and asleep
            assert store.client.exists("stalwart:rl:{c}:q")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await store.aclose()

        asyncio.run(main())
        assert limiter.peek(cost=1) == before
        assert not store.client.exists("stalwart:rl:{c}:q")

    def test_an_interrupted_thread_gives_its_booking_back(self, cls, store):
        class Interrupting(FakeClock):
            def sleep(self, seconds):
                raise KeyboardInterrupt

        clock = Interrupting(1000.0)
        limiter = cls(rate=(3, 1.0), store=store, clock=clock, name="i")
        limiter.try_acquire(cost=3)
        before = limiter.peek()
        with pytest.raises(KeyboardInterrupt):
            limiter.acquire()
        assert limiter.peek() == before
        assert limiter.statistics().granted == 1

    def test_waiters_behind_a_cancelled_one_move_up(self, store):
        clock = _Watched(FakeClock(autojump=False))
        bucket = TokenBucket(
            rate=1, capacity=3, clock=clock, store=store, name="up"
        )
        bucket.try_acquire(3)
        served = {}

        async def waiter(name, cost):
            await bucket.aacquire(cost)
            served[name] = clock.now()

        async def main():
            a = asyncio.ensure_future(waiter("A", 3))
            await clock.slept(1)
            b = asyncio.ensure_future(waiter("B", 1))
            await clock.slept(2)
            assert 2 == store.client.llen("stalwart:rl:{up}:q")
            a.cancel()  # B was booked at 4 s, behind A: it moves to 1 s
            await asyncio.wait({a})  # its booking given back on the server
            assert 1 == store.client.llen("stalwart:rl:{up}:q")
            clock.advance(1.0)
            await asyncio.gather(a, b, return_exceptions=True)
            await store.aclose()
            return a.cancelled()

        assert asyncio.run(main())
        assert served == {"B": 1.0}

    def test_decorator_call_and_context_faces(self, store):
        clock = FakeClock()
        limiter = TokenBucket(rate=1, capacity=1, clock=clock, store=store)

        @limiter
        def f(x):
            return x

        @limiter
        async def g(x):
            return x

        with limiter:
            pass
        assert f(1) == 1
        assert limiter.call(f, 2) == 2

        async def main():
            assert await g(3) == 3
            assert await limiter.acall(g, 4) == 4
            await store.aclose()

        asyncio.run(main())
        # Seven permits (call and acall of a decorated function take two),
        # one a second, the first at once.
        assert clock.now() == 6.0


class TestOperations:
    def test_reset_forgets_one_key(self, cls, store):
        limiter = cls(rate=(1, 1.0), store=store, clock=FakeClock())
        limiter.try_acquire(key="a")
        limiter.try_acquire(key="b")
        limiter.reset("a")
        assert limiter.try_acquire(key="a")
        assert not limiter.try_acquire(key="b")

    def test_clear_forgets_every_key_of_this_limiter_only(self, cls, store):
        clock = FakeClock()
        limiter = cls(rate=(1, 1.0), store=store, clock=clock, name="x*")
        other = cls(rate=(1, 1.0), store=store, clock=clock, name="y")
        for key in (None, "a", b"\xffb", "c}d"):
            limiter.try_acquire(key=key)
        other.try_acquire()
        limiter.clear()
        for key in (None, "a", b"\xffb", "c}d"):
            assert limiter.try_acquire(key=key)
        assert not other.try_acquire()

    def test_many_keys_are_told_apart(self, cls, store, monkeypatch):
        # The names of the keys' state are kept for a few keys at a time.
        monkeypatch.setattr("stalwart._redis_limits._KEYS_KEPT", 2)
        limiter = cls(rate=(1, 1.0), store=store, clock=FakeClock(), name="m")
        for key in ("a", "b", "c", "a", "d", "b"):
            limiter.try_acquire(key=key)
        assert [limiter.peek(key=k).granted for k in "abcde"] == [
            False, False, False, False, True,
        ]  # fmt: skip

    def test_idle_keys_expire(self, cls, store):
        limiter = cls(rate=(3, 1.0), store=store, clock=FakeClock(), name="t")
        limiter.try_acquire(key="k")
        ttl = store.client.pttl("stalwart:rl:{t:k}")
        # Idle within two periods of the clock, plus a second of margin.
        assert 1000 <= ttl <= 3000


class TestServerTime:
    def test_processes_whose_clocks_disagree_share_one_timeline(
        self, redis_url
    ):
        store = RedisStore(url=redis_url, time="server")
        early = FixedWindow(rate=(2, 3600.0), store=store, clock=FakeClock(0))
        late = FixedWindow(rate=(2, 3600.0), store=store, clock=FakeClock(1e6))
        assert early.try_acquire()
        assert late.try_acquire()
        refused = early.try_acquire()
        assert not refused
        assert 0 < refused.retry_after <= 3600
        assert not late.peek()

    def test_a_booked_wait_sleeps_on_the_callers_clock(self, redis_url):
        store = RedisStore(url=redis_url, time="server")
        clock = FakeClock(5.0)
        limiter = TokenBucket(rate=1000, capacity=1, store=store, clock=clock)
        limiter.try_acquire()
        limiter.acquire()
        assert 0 < clock.now() - 5.0 <= 0.002

    def test_a_cancelled_server_time_booking_is_given_back(self, redis_url):
        store = RedisStore(url=redis_url, time="server")

        class Interrupting(FakeClock):
            def sleep(self, seconds):
                raise KeyboardInterrupt

        limiter = TokenBucket(
            rate=(1, 3600.0), store=store, clock=Interrupting(), name="st"
        )
        limiter.try_acquire()
        with pytest.raises(KeyboardInterrupt):
            limiter.acquire()
        assert not store.client.exists("stalwart:rl:{st}:q")


class TestFailurePolicies:
    @pytest.fixture(name="down")
    def _down(self, private_redis: RedisServer):
        yield private_redis
        if private_redis.process.poll() is not None:
            private_redis.restart()

    def make(self, server, policy, **kwargs):
        events = []
        store = RedisStore(url=server.url, on_unavailable=policy, timeout=0.5)
        limiter = TokenBucket(
            rate=(1, 3600.0),
            store=store,
            clock=FakeClock(),
            hooks=[events.append],
            name=policy,
            **kwargs,
        )
        return store, limiter, events

    def test_fail_open_admits_tells_and_counts(self, down):
        store, limiter, events = self.make(down, "fail_open")
        assert limiter.try_acquire()
        down.kill()
        for _ in range(3):
            assert limiter.try_acquire()
        limiter.acquire()
        assert limiter.peek()
        asyncio.run(limiter.aacquire())
        assert asyncio.run(limiter.atry_acquire())
        assert [type(e) for e in events] == [StoreUnavailable] * 7
        assert events[0].policy == "fail_open"
        assert events[0].primitive == "rate_limiter"
        assert isinstance(events[0].error, redis.ConnectionError)
        assert store.statistics().degraded == 7
        # Counted as granted (peek is not a request).
        assert limiter.statistics().granted == 7

    @pytest.mark.parametrize("policy", ["fail_open", "fail_closed", "raise"])
    def test_statistics_never_fail(self, down, policy):
        """
        Statistics (read by a metrics scrape or a health check) say what
        they can when the server is away: ``remaining`` is ``None`` then,
        and the read is neither a decision nor a degraded one.
        """
        store, limiter, events = self.make(down, policy)
        assert limiter.try_acquire()
        assert 0 == limiter.statistics().remaining  # rate=(1, 3600)
        down.kill()
        stats = limiter.statistics()
        assert (1, 0, None) == (stats.granted, stats.refused, stats.remaining)
        assert ([], 0) == (events, store.statistics().degraded)
        down.restart()
        assert 1 == limiter.statistics().remaining  # a new, empty server

    def test_hooks_attached_later_hear_degraded_decisions(self, down):
        """
        An instrument attached after the limiter was built (a registry's,
        a metrics listener) is told of every degraded decision too.
        """
        store, limiter, _ = self.make(down, "fail_open")
        later = []
        limiter.add_hook(later.append)
        down.kill()
        assert limiter.try_acquire()
        assert [StoreUnavailable] == [type(e) for e in later]

    def test_fail_closed_refuses_with_the_cause(self, down):
        store, limiter, events = self.make(down, "fail_closed")
        down.kill()
        for face in (limiter.try_acquire, limiter.acquire, limiter.peek):
            with pytest.raises(StoreUnavailableError) as info:
                face()
            assert isinstance(info.value.__cause__, redis.ConnectionError)
        with pytest.raises(StoreUnavailableError):
            asyncio.run(limiter.aacquire())
        assert len(events) == 4
        assert store.statistics().degraded == 4
        assert limiter.statistics().refused == 3  # peek is not a request

    def test_raise_lets_the_connection_error_through(self, down):
        _, limiter, events = self.make(down, "raise")
        down.kill()
        with pytest.raises(redis.ConnectionError):
            limiter.try_acquire()
        with pytest.raises(redis.ConnectionError):
            limiter.reset()
        assert [e.policy for e in events] == ["raise", "raise"]

    def test_recovers_after_a_restart_without_a_new_store(self, down):
        for policy in ("fail_open", "fail_closed", "raise"):
            store, limiter, _ = self.make(down, policy)
            assert limiter.try_acquire()
            down.kill()
            with pytest.raises(Exception):  # noqa: B017, PT011  # whatever the policy raises
                limiter.try_acquire()
                raise RuntimeError  # fail_open: granted
            down.restart()
            # The server restarted empty: one permit, then refused.
            assert limiter.try_acquire()
            assert not limiter.try_acquire()
            store.close()

    def test_a_cancel_that_cannot_reach_the_server_is_told(self, down):
        store, limiter, events = self.make(down, "fail_closed")

        class KillingClock(FakeClock):
            def sleep(self, seconds):
                down.kill()
                raise KeyboardInterrupt

        limiter = TokenBucket(
            rate=(1, 3600.0),
            store=store,
            clock=KillingClock(),
            hooks=[events.append],
        )
        limiter.try_acquire()
        with pytest.raises(KeyboardInterrupt):
            limiter.acquire()
        assert [e.policy for e in events] == ["fail_closed"]

    def test_an_async_cancel_that_cannot_reach_the_server_is_told(self, down):
        store, limiter, events = self.make(down, "fail_open")
        clock = _Watched(FakeClock(autojump=False))
        limiter = TokenBucket(
            rate=(1, 3600.0), store=store, clock=clock, hooks=[events.append]
        )
        limiter.try_acquire()

        async def main():
            task = asyncio.ensure_future(limiter.aacquire())
            # Booked and asleep (not still waiting for the answer, where
            # a cancellation takes another way back).
            await clock.slept()
            down.kill()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert [e.policy for e in events] == ["fail_open"]

    def test_a_slow_server_times_out_by_the_policy(self, down):
        store, limiter, events = self.make(down, "fail_open")
        store = RedisStore(url=down.url, timeout=0.05)
        limiter = FixedWindow(
            rate=(1, 3600.0), store=store, hooks=[events.append]
        )
        assert limiter.try_acquire()
        other = down.client()
        sleeper = threading.Thread(
            target=other.execute_command, args=("DEBUG", "SLEEP", "0.5")
        )
        sleeper.start()
        try:
            # Refused until the server sleeps; then admitted, and told.
            degraded = []
            while not degraded:
                if limiter.try_acquire():
                    degraded = [
                        e for e in events if isinstance(e, StoreUnavailable)
                    ]
        finally:
            sleeper.join()
            other.close()
        assert isinstance(degraded[0].error, redis.TimeoutError)
        assert not limiter.try_acquire()

    def test_clear_when_the_server_is_down_raises(self, down):
        _, limiter, events = self.make(down, "fail_open")
        down.kill()
        with pytest.raises(redis.ConnectionError):
            limiter.clear()
        assert len(events) == 1

    def test_clear_when_the_server_goes_while_it_looks_for_keys(self, down):
        store, limiter, events = self.make(down, "fail_open")
        scan = store.client.scan_iter

        def dying_scan(*args, **kwargs):
            down.kill()
            return scan(*args, **kwargs)

        store.client.scan_iter = dying_scan
        with pytest.raises(redis.ConnectionError):
            limiter.clear()
        assert len(events) == 1


class TestKilledMidRun:
    @pytest.mark.parametrize("policy", ["fail_open", "fail_closed", "raise"])
    def test_threads_through_a_kill_and_a_restart(
        self, private_redis: RedisServer, policy
    ):
        """
        Eight threads ask a limit of 20 per hour, the server is killed
        while they do and restarted: every call ends as the policy says
        (never another error), and after the restart the limit holds
        again on the fresh server: at most 20 more are granted.
        """
        store = RedisStore(
            url=private_redis.url, on_unavailable=policy, timeout=0.5
        )
        limiter = FixedWindow(rate=(20, 3600.0), store=store, name="k")
        outcomes: list[str] = []
        lock = threading.Lock()
        killed = threading.Event()
        restarted = threading.Event()

        def ask(phase_done: threading.Event | None) -> None:
            for _ in range(40):
                try:
                    outcome = "granted" if limiter.try_acquire() else "refused"
                except StoreUnavailableError:
                    outcome = "closed"
                except redis.ConnectionError:
                    outcome = "raised"
                with lock:
                    outcomes.append(outcome)
                if phase_done is not None and phase_done.is_set():
                    return

        def before_and_during() -> None:
            ask(killed)
            killed.wait()
            ask(None)

        threads = [
            threading.Thread(target=before_and_during) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        while len(outcomes) < 30:
            pass
        private_redis.kill()
        killed.set()
        for thread in threads:
            thread.join()
        during = set(outcomes[30:])
        expected = {
            "fail_open": "granted",
            "fail_closed": "closed",
            "raise": "raised",
        }[policy]
        assert expected in during
        assert during <= {"granted", "refused", expected}
        private_redis.restart()
        restarted.set()
        outcomes.clear()
        threads = [
            threading.Thread(target=ask, args=(None,)) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes.count("granted") == 20
        assert outcomes.count("refused") == 8 * 40 - 20
        store.close()


class LosingClient(redis.Redis):
    """
    A client whose caller is interrupted once the script has run, before
    it hears the answer (a KeyboardInterrupt at the worst moment).
    """

    lose = False

    def execute_command(self, *args, **kwargs):
        answer = super().execute_command(*args, **kwargs)
        if args[0] == "FCALL":
            self.ops.append(args[3 + args[2]])
        if self.lose and args[0] == "FCALL" and "decide" in args:
            raise KeyboardInterrupt
        return answer

    @property
    def ops(self):
        """
        The operations run, in order.
        """
        return self.__dict__.setdefault("_ops", [])


class TestInterruptedWithTheAnswerOnItsWay:
    def test_a_grant_without_a_wait_stays_and_nothing_is_sent(
        self, redis_url, cls
    ):
        client = LosingClient.from_url(redis_url)
        store = RedisStore(client=client)
        limiter = cls(rate=(3, 1.0), store=store, clock=FakeClock(), name="l")
        client.lose = True
        with pytest.raises(KeyboardInterrupt):
            limiter.try_acquire()
        client.lose = False
        # Nothing can have been booked: no "cancel" follows the decision.
        assert client.ops == ["decide"]
        assert limiter.peek().remaining == 1
        client.close()

    def test_an_async_grant_without_a_wait_stays(self, redis_url):
        store = RedisStore(url=redis_url)
        limiter = TokenBucket(rate=3, store=store, clock=FakeClock())
        aclient = store.aclient
        original = aclient.execute_command
        ops = []

        async def execute_command(*args, **kwargs):
            answer = await original(*args, **kwargs)
            if args[0] != "FCALL":  # loading the function
                return answer
            ops.append(args[3 + args[2]])
            raise asyncio.CancelledError

        aclient.execute_command = execute_command

        async def main():
            with pytest.raises(asyncio.CancelledError):
                await limiter.aacquire(timeout=0)
            await store.aclose()

        asyncio.run(main())
        assert ops == ["decide"]
        assert limiter.peek().remaining == 1
        store.close()

    def test_a_booking_made_meanwhile_is_taken_back(self, redis_url, cls):
        client = LosingClient.from_url(redis_url)
        store = RedisStore(client=client)
        clock = FakeClock()
        limiter = cls(rate=(3, 1.0), store=store, clock=clock, name="l")
        limiter.try_acquire(cost=3)
        before = limiter.peek()
        client.lose = True
        with pytest.raises(KeyboardInterrupt):
            limiter.acquire()
        client.lose = False
        assert limiter.peek() == before
        assert not client.exists("stalwart:rl:{l}:q")
        client.close()

    def test_when_the_server_is_gone_too_it_is_told(
        self, private_redis: RedisServer
    ):
        class Killing(LosingClient):
            def execute_command(self, *args, **kwargs):
                answer = redis.Redis.execute_command(self, *args, **kwargs)
                if self.lose and args[0] == "FCALL":
                    private_redis.kill()
                    raise KeyboardInterrupt
                return answer

        events = []
        client = Killing.from_url(private_redis.url)
        store = RedisStore(client=client)
        limiter = TokenBucket(rate=1, store=store, hooks=[events.append])
        limiter.peek()  # the script is loaded
        client.lose = True
        with pytest.raises(KeyboardInterrupt):
            limiter.acquire()
        assert [type(e) for e in events] == [StoreUnavailable]

    def test_an_async_forget_when_the_server_is_gone_is_told(
        self, private_redis: RedisServer
    ):
        events = []
        store = RedisStore(url=private_redis.url, timeout=0.5)
        clock = FakeClock(autojump=False)
        limiter = TokenBucket(
            rate=1, store=store, clock=clock, hooks=[events.append]
        )
        limiter.try_acquire()  # the script is loaded
        aclient = store.aclient
        original = aclient.execute_command

        async def execute_command(*args, **kwargs):
            await original(*args, **kwargs)
            private_redis.kill()
            raise asyncio.CancelledError

        aclient.execute_command = execute_command

        async def main():
            with pytest.raises(asyncio.CancelledError):
                await limiter.aacquire()

        asyncio.run(main())
        assert [e.policy for e in events] == ["fail_open"]


class TestProcesses:
    def test_reservations_of_a_forked_child_have_their_own_names(self, store):
        import os

        limiter = TokenBucket(rate=1, store=store)
        shared = limiter._store
        parent = shared._new_id()
        read, write = os.pipe()
        pid = os.fork()
        if (
            pid == 0
        ):  # pragma: no cover  # the child; its coverage is not collected
            os.write(write, shared._new_id().encode())
            os._exit(0)
        os.waitpid(pid, 0)
        child = os.read(read, 100).decode()
        os.close(read)
        os.close(write)
        assert child.rsplit(".", 2)[0] != parent.rsplit(".", 2)[0]
        assert shared._new_id().rsplit(".", 1)[0] == parent.rsplit(".", 1)[0]
        # What the child did, seen from here: a token of another pid.
        shared._token = "feedf00d.1"
        assert not shared._new_id().startswith("feedf00d.")

    def test_another_processs_waiter_moves_up_without_being_woken(
        self, redis_url
    ):
        clock = FakeClock()
        mine = TokenBucket(
            rate=1,
            capacity=3,
            clock=clock,
            name="two",
            store=RedisStore(url=redis_url),
        )
        theirs = TokenBucket(
            rate=1,
            capacity=3,
            clock=clock,
            name="two",
            store=RedisStore(url=redis_url),
        )
        mine.try_acquire(3)
        first = mine._store.decide(None, clock.now(), 3, 10.0)[5]
        second = theirs._store.decide(None, clock.now(), 1, 10.0)[5]
        third = mine._store.decide(None, clock.now(), 1, 10.0)[5]
        assert (first.slot, second.slot, third.slot) == (3.0, 4.0, 5.0)
        moved = mine._store.cancel(first, clock.now())
        # Mine moved and is told; theirs moved on the server only.
        assert moved == [third]
        assert third.slot == 2.0
        assert second.slot == 4.0

    def test_a_waiter_whose_slot_stays_is_not_woken(self, store):
        clock = FakeClock()
        window = FixedWindow(rate=(3, 1.0), clock=clock, store=store)
        window.try_acquire(3)
        a = window._store.decide(None, 0.0, 1, 10.0)[5]
        b = window._store.decide(None, 0.0, 1, 10.0)[5]
        assert (a.slot, b.slot) == (1.0, 1.0)
        assert window._store.cancel(a, 0.0) == []
        assert b.slot == 1.0

    def test_clear_leaves_other_keys_alone(self, store):
        limiter = TokenBucket(rate=1, store=store, name="n", clock=FakeClock())
        limiter.try_acquire(key="a")
        store.client.set("stalwart:rl:{n:a}:note", "x")
        limiter.clear()
        assert store.client.get("stalwart:rl:{n:a}:note") == b"x"
        assert limiter.try_acquire(key="a")


class TestInsideOthers:
    def test_a_pipeline_falls_back_when_the_shared_limit_refuses(self, store):
        import stalwart

        clock = FakeClock()
        limiter = FixedWindow(
            rate=(1, 60.0), store=store, clock=clock, timeout=0, name="pl"
        )
        policy = stalwart.Pipeline(
            stalwart.Fallback(value="later", name="fb"), limiter, name="p"
        )

        @policy
        def call():
            return "now"

        async def acall():
            return "now"

        assert [call(), call()] == ["now", "later"]
        guarded = policy(acall)

        async def main():
            answer = await guarded()
            await store.aclose()
            return answer

        assert asyncio.run(main()) == "later"

    def test_a_fail_closed_refusal_is_a_rejection_a_fallback_catches(
        self, private_redis: RedisServer
    ):
        import stalwart

        store = RedisStore(url=private_redis.url, on_unavailable="fail_closed")
        limiter = TokenBucket(rate=10, store=store, timeout=0)
        policy = stalwart.Pipeline(
            stalwart.Fallback(value="degraded", on=stalwart.RejectedError),
            limiter,
        )
        private_redis.kill()
        assert policy.call(lambda: "fresh") == "degraded"
