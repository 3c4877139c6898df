"""
ResourcePool: configuration, leases and explicit steps on both faces,
creation and validation, expiry, closing, waiting on the fake clock,
cancellation and interruption, and isolation between dependencies.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import threading

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from helpers import Boom
from stalwart import (
    CallRejected,
    ConfigurationError,
    Event,
    Lease,
    PoolExhaustedError,
    PoolStatistics,
    RejectedError,
    ResourceClosed,
    ResourceCreated,
    ResourcePool,
)
from stalwart._deadline import deadline_scope
from stalwart._waiters import TaskWaiter
from stalwart.testing import FakeClock, use_clock


def _until(predicate: Callable[[], bool]) -> None:
    """
    Spin until *predicate* holds (a state, never a duration).
    """
    while not predicate():
        pass


def _start(target: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """
    Run *target* on a thread; its result or exception lands in the list.
    """
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(target())
        except BaseException as e:
            out.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


class Conn:
    """
    A fake connection: numbered, closable, breakable.
    """

    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False
        self.healthy = True

    def __repr__(self) -> str:
        return f"Conn({self.number})"

    def close(self) -> None:
        """
        Close it.
        """
        self.closed = True


class Factory:
    """
    Create numbered connections, remembering each.
    """

    def __init__(self) -> None:
        self.count = itertools.count()
        self.made: list[Conn] = []

    def __call__(self) -> Conn:
        conn = Conn(next(self.count))
        self.made.append(conn)
        return conn


def _pool(**kwargs: Any) -> ResourcePool[Conn]:
    """
    A pool of fake connections, closed with Conn.close.
    """
    kwargs.setdefault("factory", Factory())
    kwargs.setdefault("max_size", 2)
    kwargs.setdefault("dispose", Conn.close)
    return ResourcePool(**kwargs)


def _stats(name: str = "<unnamed>", **kwargs: int) -> PoolStatistics:
    """
    Statistics with every counter zero but those given.
    """
    fields = dict.fromkeys(
        ("size", "idle", "in_use", "waiting", "created", "closed", "refused"),
        0,
    )
    fields.update(kwargs)
    return PoolStatistics(name=name, **fields)


class _Faces:
    """
    Check a connection out and back in through the sync or async face.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def use(
        self,
        pool: ResourcePool[Conn],
        body: Callable[[Conn], Any] = lambda c: c,
        **kwargs: Any,
    ) -> Any:
        """
        Run *body* on a connection held in a with / async with block.
        """
        if self.kind == "sync":
            with pool.acquire(**kwargs) as conn:
                return body(conn)

        async def main() -> Any:
            async with pool.acquire(**kwargs) as conn:
                return body(conn)

        return asyncio.run(main())


@pytest.fixture(name="face", params=["sync", "async"])
def _face(request: pytest.FixtureRequest) -> _Faces:
    """
    Run each scenario through the sync and the async faces.
    """
    return _Faces(request.param)


class TestConfig:
    def test_repr(self):
        """
        The repr shows the sizes and times, not the callables.
        """
        pool = ResourcePool(factory=object, max_size=3, name="db")

        assert (
            "ResourcePool(factory=<class 'object'>, max_size=3, max_queue=None,"
            " max_wait=None, max_idle=None, max_lifetime=None, name='db')"
            == repr(pool)
        )

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"factory": None}, "'factory' must be callable (got None)"),
            ({"max_size": 0}, "'max_size' must be > 0 (got 0)"),
            ({"max_queue": -1}, "'max_queue' must be >= 0 (got -1)"),
            ({"max_wait": -1}, "'max_wait' must be >= 0 (got -1.0)"),
            ({"max_idle": 0}, "'max_idle' must be > 0 (got 0.0)"),
            (
                {"max_lifetime": "1"},
                (
                    "'max_lifetime' must be a number of"
                    " seconds or a timedelta (got '1')"
                ),
            ),
            ({"validate": 3}, "'validate' must be callable (got 3)"),
            (
                {"discard_on": 3},
                (
                    "'discard_on' must be an exception type, a tuple of them,"
                    " or a predicate (got 3)"
                ),
            ),
        ],
        ids=[
            "factory",
            "size",
            "queue",
            "wait",
            "idle",
            "life",
            "validate",
            "discard",
        ],
    )
    def test_rejects_bad_values(self, kwargs, message):
        """
        Bad settings fail where the pool is built, naming field and value.
        """
        with pytest.raises(ConfigurationError) as e:
            _pool(**kwargs)

        assert message == str(e.value)

    def test_timedeltas(self):
        """
        Durations accept timedeltas.
        """
        pool = _pool(
            max_wait=timedelta(seconds=1),
            max_idle=timedelta(minutes=1),
            max_lifetime=timedelta(hours=1),
        )

        assert (1.0, 60.0, 3600.0) == (
            pool.max_wait,
            pool.max_idle,
            pool.max_lifetime,
        )


class TestLending:
    def test_lease_reuses_resource(self, face):
        """
        A resource given back is lent again; only one is created.
        """
        events: list[Event] = []
        factory = Factory()
        pool = _pool(factory=factory, hooks=events.append, clock=FakeClock())

        first = face.use(pool)
        second = face.use(pool)

        assert first is second is factory.made[0]
        assert _stats(size=1, idle=1, created=1) == pool.statistics()
        assert [
            ResourceCreated(primitive_name="<unnamed>", at=0.0, resource=first)
        ] == events

    def test_lease_holds_resource(self):
        """
        Inside the block the resource is lent and the lease shows it;
        outside it holds nothing.
        """
        pool = _pool()
        lease = pool.acquire()

        with lease as conn:
            inside = (lease.resource, pool.statistics().in_use, repr(lease))

        async def main() -> tuple[Conn, Conn, int]:
            async with lease as aconn:
                return aconn, lease.resource, pool.statistics().in_use

        assert (conn, 1, "<Lease of '<unnamed>', holding a resource>") == (
            inside
        )
        assert (conn, conn, 1) == asyncio.run(main())
        assert "<Lease of '<unnamed>', idle>" == repr(lease)

    def test_explicit_steps(self):
        """
        checkout / checkin and their async twins lend and take back.
        """
        pool = _pool()

        a = pool.checkout()
        b = pool.checkout()
        pool.checkin(a)

        async def main() -> Conn:
            c = await pool.acheckout()
            await pool.acheckin(b)
            return c

        assert a is asyncio.run(main())
        assert _stats(size=2, idle=1, in_use=1, created=2) == pool.statistics()

    def test_unknown_resource(self):
        """
        Giving back what the pool did not lend raises.
        """
        pool = _pool()
        conn = pool.checkout()
        pool.checkin(conn)

        with pytest.raises(RuntimeError, match="not checked out"):
            pool.checkin(conn)
        with pytest.raises(RuntimeError, match="not checked out"):
            asyncio.run(pool.acheckin(Conn(9)))

    def test_user_error_keeps_resource(self, face):
        """
        An exception not in discard_on passes through; the resource is
        given back for reuse.
        """
        pool = _pool(discard_on=ConnectionError)

        def body(conn: Conn) -> None:
            raise Boom

        with pytest.raises(Boom):
            face.use(pool, body)
        assert _stats(size=1, idle=1, created=1) == pool.statistics()

    def test_discard_on_closes_resource(self, face):
        """
        An exception in discard_on passes through; the resource is closed.
        """
        events: list[Event] = []
        pool = _pool(
            discard_on=ConnectionError, hooks=events.append, clock=FakeClock()
        )

        def body(conn: Conn) -> None:
            raise ConnectionResetError

        with pytest.raises(ConnectionResetError):
            face.use(pool, body)
        conn = pool.checkout()

        assert 1 == conn.number
        assert _stats(size=1, in_use=1, created=2, closed=1) == (
            pool.statistics()
        )
        closed = [e for e in events if isinstance(e, ResourceClosed)]
        assert ["broken"] == [e.reason for e in closed]
        assert closed[0].resource.closed

    def test_base_exception_closes_resource(self, face):
        """
        A KeyboardInterrupt in the block may have left the resource
        mid-conversation: it is closed.
        """
        pool = _pool()

        def body(conn: Conn) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            face.use(pool, body)
        assert _stats(created=1, closed=1) == pool.statistics()

    def test_cancelled_block_closes_resource(self, clock):
        """
        A task cancelled inside the block gives its resource back closed.
        """
        pool = _pool(clock=clock)

        async def main() -> None:
            async def hold() -> None:
                async with pool.acquire():
                    await clock.asleep(10)

            task = asyncio.create_task(hold())
            await clock.asleep(1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(main())

        assert _stats(created=1, closed=1) == pool.statistics()

    def test_discard(self):
        """
        lease.discard() closes the resource at the end of the block, in
        with and async with.
        """
        pool = _pool()
        lease = pool.acquire()

        with lease as conn:
            lease.discard()

        async def main() -> Conn:
            async with lease as aconn:
                lease.discard()
                return aconn

        aconn = asyncio.run(main())

        assert conn.closed
        assert aconn.closed
        assert conn is not aconn
        assert _stats(created=2, closed=2) == pool.statistics()

    def test_lease_misuse(self):
        """
        A lease holds one resource at a time and says so.
        """
        pool = _pool()
        lease = pool.acquire()

        with pytest.raises(RuntimeError, match="holds no resource"):
            lease.resource  # noqa: B018
        with pytest.raises(RuntimeError, match="holds no resource"):
            lease.discard()
        with lease, pytest.raises(RuntimeError, match="already entered"):
            lease.__enter__()
        with lease:
            pass
        assert isinstance(lease, Lease)


class TestCreation:
    def test_factory_error_passes_through(self, face):
        """
        What the factory raises passes through unchanged; the slot is
        freed.
        """

        def broken() -> Conn:
            raise Boom

        pool = _pool(factory=broken, max_size=1)

        with pytest.raises(Boom):
            face.use(pool)
        assert _stats() == pool.statistics()

    def test_async_factory(self):
        """
        An async factory is awaited by the async faces.
        """

        async def connect() -> Conn:
            return Conn(7)

        pool = ResourcePool(factory=connect, max_size=1)

        async def main() -> int:
            async with pool.acquire() as conn:
                return conn.number

        assert 7 == asyncio.run(main())

    def test_sync_faces_refuse_async_callables(self):
        """
        The sync faces cannot call an async factory, validator or
        disposer, and say which.
        """

        async def connect() -> Conn:
            return Conn(7)

        async def close(conn: Conn) -> None:
            pass

        pool = ResourcePool(factory=connect, max_size=1, dispose=close)

        with pytest.raises(TypeError, match="async factory and dispose"):
            pool.checkout()
        with pytest.raises(TypeError, match="async dispose"):
            pool.checkin(Conn(1))
        with pytest.raises(TypeError, match="async dispose"):
            pool.close()

    def test_sync_checkin_with_async_validator(self):
        """
        checkin() needs only the disposer to be plain: a pool with an
        async validator takes resources back through it.
        """

        async def validate(conn: Conn) -> bool:
            return True

        pool = _pool(validate=validate)

        conn = asyncio.run(pool.acheckout())
        pool.checkin(conn)

        assert _stats(size=1, idle=1, created=1) == pool.statistics()

    def test_no_disposer(self):
        """
        Without a disposer the pool just forgets the resources it closes.
        """
        pool = _pool(dispose=None)
        conn = pool.checkout()
        pool.checkin(conn, broken=True)
        aconn = asyncio.run(pool.acheckout())
        asyncio.run(pool.acheckin(aconn, broken=True))

        assert not conn.closed
        assert not aconn.closed
        assert _stats(created=2, closed=2) == pool.statistics()

    def test_factory_returning_awaitable_in_sync_face(self):
        """
        A plain factory that returns a coroutine is refused by the sync
        faces (and the coroutine closed); the slot is freed.
        """

        async def connect() -> Conn:
            return Conn(7)

        pool = ResourcePool(factory=lambda: connect(), max_size=1)

        with pytest.raises(TypeError, match="must be awaited"):
            pool.checkout()
        assert 7 == asyncio.run(pool.acheckout()).number

    def test_failed_creation_hands_slot_to_waiter(self, clock):
        """
        When a creation fails while someone waits, the waiter gets the
        slot and creates its own.
        """
        gate = asyncio.Event()
        calls = [0]

        async def connect() -> Conn:
            calls[0] += 1
            if calls[0] == 1:
                await gate.wait()
                raise Boom
            return Conn(calls[0])

        pool = ResourcePool(factory=connect, max_size=1, clock=clock)

        async def main() -> int:
            first = asyncio.create_task(pool.acheckout())
            await clock.asleep(0)  # `first` is creating: the only slot
            second = asyncio.create_task(pool.acheckout())
            await clock.asleep(0)
            assert 1 == pool.statistics().waiting
            gate.set()
            with pytest.raises(Boom):
                await first
            return (await second).number

        assert 2 == asyncio.run(main())
        assert _stats(size=1, in_use=1, created=1) == pool.statistics()

    def test_cancelled_creation_frees_slot(self, clock):
        """
        A task cancelled while its factory runs gives the slot back.
        """

        async def connect() -> Conn:
            await clock.asleep(10)
            return Conn(0)

        pool = ResourcePool(factory=connect, max_size=1, clock=clock)

        async def main() -> None:
            task = asyncio.create_task(pool.acheckout())
            await clock.asleep(1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(main())

        assert _stats() == pool.statistics()


class TestValidation:
    def test_invalid_resource_replaced(self, face):
        """
        An idle resource that fails validation is closed and another is
        lent.
        """
        events: list[Event] = []
        pool = _pool(
            validate=lambda c: c.healthy,
            hooks=events.append,
            clock=FakeClock(),
        )
        first = face.use(pool)
        first.healthy = False

        second = face.use(pool)

        assert first is not second
        assert first.closed
        assert ["invalid"] == [
            e.reason for e in events if isinstance(e, ResourceClosed)
        ]

    def test_validator_error_means_invalid(self, face):
        """
        A validator that raises marks the resource invalid.
        """

        def validate(conn: Conn) -> bool:
            raise Boom

        pool = _pool(validate=validate)
        first = face.use(pool)

        assert first is not face.use(pool)

    def test_async_validator(self):
        """
        An async validator is awaited by the async faces.
        """

        async def validate(conn: Conn) -> bool:
            return conn.number > 0

        pool = _pool(validate=validate)

        async def main() -> list[int]:
            numbers = []
            for _ in range(2):
                async with pool.acquire() as conn:
                    numbers.append(conn.number)
            return numbers

        assert [0, 1] == asyncio.run(main())

    def test_interrupted_validator_closes_resource(self, face):
        """
        A validator interrupted by a BaseException closes the resource
        and lets the exception through.
        """
        calls = []

        def validate(conn: Conn) -> bool:
            calls.append(conn)
            raise KeyboardInterrupt

        pool = _pool(validate=validate)
        face.use(pool)

        with pytest.raises(KeyboardInterrupt):
            face.use(pool)
        assert calls[0].closed
        assert _stats(created=1, closed=1) == pool.statistics()

    def test_validator_returning_awaitable_in_sync_face(self):
        """
        A plain validator that returns a coroutine is refused by the sync
        faces; the resource is given back.
        """

        async def check(conn: Conn) -> bool:
            return True

        pool = _pool(validate=lambda c: check(c))
        pool.checkin(pool.checkout())

        with pytest.raises(TypeError, match="must be awaited"):
            pool.checkout()
        assert _stats(size=1, idle=1, created=1) == pool.statistics()


class TestExpiry:
    def test_idle_too_long(self, clock, face):
        """
        A resource idle for max_idle is closed at the next checkout.
        """
        events: list[Event] = []
        pool = _pool(max_idle=30.0, clock=clock, hooks=events.append)
        conn = face.use(pool)
        clock.advance(30.0)

        fresh = face.use(pool)

        assert fresh is not conn
        assert conn.closed
        assert ["idle"] == [
            e.reason for e in events if isinstance(e, ResourceClosed)
        ]

    def test_lifetime(self, clock, face):
        """
        A resource older than max_lifetime is closed when it comes back.
        """
        pool = _pool(max_lifetime=60.0, clock=clock)

        def body(conn: Conn) -> Conn:
            clock.advance(60.0)
            return conn

        conn = face.use(pool, body)

        assert conn.closed
        assert _stats(created=1, closed=1) == pool.statistics()

    def test_dispose_error_is_logged(self, caplog):
        """
        A disposer that raises is logged; the pool goes on.
        """

        def dispose(conn: Conn) -> None:
            raise Boom

        pool = _pool(dispose=dispose, name="db")
        conn = pool.checkout()

        with caplog.at_level(logging.ERROR, logger="stalwart"):
            pool.checkin(conn, broken=True)

        assert "stalwart pool 'db' could not close Conn(0)" in caplog.text
        assert _stats("db", created=1, closed=1) == pool.statistics()

    def test_async_dispose(self):
        """
        An async disposer is awaited by the async faces; its errors are
        logged.
        """
        closed: list[Conn] = []

        async def dispose(conn: Conn) -> None:
            closed.append(conn)
            if conn.number:
                raise Boom

        pool = _pool(dispose=dispose)

        async def main() -> None:
            a = await pool.acheckout()
            b = await pool.acheckout()
            await pool.acheckin(a, broken=True)
            await pool.acheckin(b, broken=True)

        asyncio.run(main())

        assert [0, 1] == [c.number for c in closed]


class TestWaiting:
    def test_waiter_gets_returned_resource(self, clock):
        """
        A task waiting for a resource gets the one given back.
        """
        pool = _pool(max_size=1, clock=clock)

        async def main() -> bool:
            conn = await pool.acheckout()
            waiter = asyncio.create_task(pool.acheckout())
            await clock.asleep(0)
            assert 1 == pool.statistics().waiting
            await pool.acheckin(conn)
            return (await waiter) is conn

        assert asyncio.run(main())

    def test_wait_runs_out_on_fake_clock(self, clock):
        """
        A task's wait ends with PoolExhaustedError exactly at max_wait.
        """
        events: list[Event] = []
        pool = _pool(
            max_size=1,
            max_wait=2.0,
            clock=clock,
            hooks=events.append,
            name="db",
        )
        pool.checkout()

        with pytest.raises(PoolExhaustedError) as e:
            asyncio.run(pool.acheckout())

        assert 2.0 == clock.now()
        assert ("db", 1, None) == (
            e.value.name,
            e.value.max_size,
            e.value.retry_after,
        )
        assert [CallRejected(primitive_name="db", at=2.0, error=e.value)] == [
            ev for ev in events if isinstance(ev, CallRejected)
        ]
        assert (
            _stats("db", size=1, in_use=1, created=1, refused=1)
            == pool.statistics()
        )

    def test_zero_wait_and_full_queue_refuse_at_once(self, face, clock):
        """
        With no time to wait, or no room in the queue, a checkout is
        refused at once.
        """
        pool = _pool(max_size=1, max_queue=0, clock=clock)
        pool.checkout()

        with pytest.raises(PoolExhaustedError):
            face.use(pool, timeout=0)
        with pytest.raises(PoolExhaustedError):
            face.use(pool)
        assert 2 == pool.statistics().refused
        assert 0.0 == clock.now()

    def test_timeout_argument(self, clock):
        """
        acquire(timeout=) overrides max_wait; negative means no wait.
        """
        pool = _pool(max_size=1, max_wait=100.0, clock=clock)
        pool.checkout()

        async def main() -> None:
            with pytest.raises(PoolExhaustedError):
                async with pool.acquire(timeout=timedelta(seconds=3)):
                    pass
            with pytest.raises(PoolExhaustedError):
                await pool.acheckout(timeout=-1)

        asyncio.run(main())

        assert 3.0 == clock.now()

    def test_deadline_caps_wait(self, clock):
        """
        A wait never goes past the current deadline.
        """
        pool = _pool(max_size=1, clock=clock)
        pool.checkout()

        async def main() -> None:
            with deadline_scope(1.5, clock):
                await pool.acheckout(timeout=None)

        with pytest.raises(PoolExhaustedError):
            asyncio.run(main())
        assert 1.5 == clock.now()

    def test_thread_waits_and_times_out(self, clock):
        """
        A thread waits for a resource; it gets one given back, or is
        refused when the fake clock passes its wait.
        """
        pool = _pool(max_size=1, max_wait=2.0, clock=clock)
        conn = pool.checkout()
        thread, out = _start(pool.checkout)
        _until(lambda: pool.statistics().waiting == 1)
        pool.checkin(conn)
        thread.join()
        assert [conn] == out

        thread, out = _start(pool.checkout)
        _until(lambda: pool.statistics().waiting == 1)
        clock.advance(2.0)
        thread.join()

        assert isinstance(out[0], PoolExhaustedError)

    def test_broken_return_gives_waiter_a_slot(self, clock):
        """
        A resource given back broken while someone waits lets the waiter
        create a new one.
        """
        pool = _pool(max_size=1, clock=clock)

        async def main() -> int:
            conn = await pool.acheckout()
            waiter = asyncio.create_task(pool.acheckout())
            await clock.asleep(0)
            await pool.acheckin(conn, broken=True)
            return (await waiter).number

        assert 1 == asyncio.run(main())

    def test_resource_returned_while_queueing(self):
        """
        A resource given back after a checkout found none, but before it
        queued, is lent at once.
        """
        trigger = _TriggerClock()
        pool = _pool(max_size=1, clock=trigger)
        conn = pool.checkout()
        trigger.action = lambda: None
        trigger.then = lambda: pool._core.checkin(conn, 0.0, broken=False)

        assert conn is pool.checkout()

    def test_resource_returned_while_queueing_async(self):
        """
        The async face also takes a resource freed while it queued.
        """
        trigger = _TriggerClock()
        pool = _pool(max_size=1, clock=trigger)
        conn = pool.checkout()
        trigger.action = lambda: None
        trigger.then = lambda: pool._core.checkin(conn, 0.0, broken=False)

        assert conn is asyncio.run(pool.acheckout())


class _TriggerClock(FakeClock):
    """
    A fake clock that runs *action* on the first read of the time after it
    is armed, then *then* on the next one.
    """

    def __init__(self) -> None:
        super().__init__()
        self.action: Callable[[], object] | None = None
        self.then: Callable[[], object] | None = None

    def now(self) -> float:
        """
        Run the armed action, then read the time.
        """
        action, self.action, self.then = self.action, self.then, None
        if action is not None:
            action()
        return super().now()


class _HookClock(FakeClock):
    """
    A fake clock whose thread waits run a callback instead of blocking.
    """

    def __init__(self, on_wait: Callable[[], None]) -> None:
        super().__init__()
        self.on_wait = on_wait

    def wait_event(self, event: threading.Event, until: float | None) -> None:
        """
        Run the callback: it decides how the wait ends.
        """
        self.on_wait()


class TestCancellation:
    def test_cancelled_waiter_leaves_queue(self, clock):
        """
        A task cancelled while waiting leaves the queue.
        """
        pool = _pool(max_size=1, clock=clock)

        async def main() -> None:
            await pool.acheckout()
            waiter = asyncio.create_task(pool.acheckout())
            await clock.asleep(0)
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)

        asyncio.run(main())

        assert _stats(size=1, in_use=1, created=1) == pool.statistics()

    def test_cancel_after_handover_passes_resource_on(self, clock):
        """
        A waiter cancelled just as a resource reached it passes the
        resource to the next waiter.
        """
        pool = _pool(max_size=1, clock=clock)

        async def main() -> bool:
            conn = await pool.acheckout()
            first = asyncio.create_task(pool.acheckout())
            second = asyncio.create_task(pool.acheckout())
            await clock.asleep(0)
            await pool.acheckin(conn)  # handed to `first`...
            first.cancel()  # ...which is cancelled before it runs
            await asyncio.gather(first, return_exceptions=True)
            return (await second) is conn

        assert asyncio.run(main())
        assert _stats(size=1, in_use=1, created=1) == pool.statistics()

    def test_cancel_after_handover_to_closed_pool(self, clock):
        """
        A waiter cancelled as a resource reached it, after the pool was
        closed, closes that resource.
        """
        pool = _pool(max_size=1, clock=clock)

        async def main() -> Conn:
            conn = await pool.acheckout()
            first = asyncio.create_task(pool.acheckout())
            await clock.asleep(0)
            await pool.acheckin(conn)  # handed to `first`
            await pool.aclose()  # closed before `first` runs
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            return conn

        assert asyncio.run(main()).closed

    def test_interrupted_thread(self):
        """
        A thread interrupted while waiting leaves the queue; one
        interrupted as a resource reached it passes it on (to the idle
        set here).
        """
        pool = _pool(max_size=1, clock=_HookClock(_interrupt))
        conn = pool.checkout()

        with pytest.raises(KeyboardInterrupt):
            pool.checkout()

        def hand_then_interrupt() -> None:
            pool.checkin(conn)
            raise KeyboardInterrupt

        pool.clock.on_wait = hand_then_interrupt  # type: ignore[attr-defined]
        with pytest.raises(KeyboardInterrupt):
            pool.checkout()
        assert _stats(size=1, idle=1, created=1) == pool.statistics()

    def test_handover_at_timeout_is_used(self):
        """
        A thread whose wait ends just as a resource reaches it uses it.
        """
        pool = _pool(
            max_size=1,
            max_wait=1.0,
            clock=_HookClock(lambda: pool.checkin(conn)),
        )
        conn = pool.checkout()

        assert conn is pool.checkout()

    def test_closed_loop_waiter_is_skipped(self):
        """
        A resource handed to a waiter whose loop is closed goes on.
        """
        pool = _pool(max_size=1)
        loop = asyncio.new_event_loop()
        dead = TaskWaiter(loop)
        loop.close()
        conn = pool.checkout()
        with pool._lock:
            pool._core.enqueue(dead)

        pool.checkin(conn)

        assert _stats(size=1, idle=1, created=1) == pool.statistics()


def _interrupt() -> None:
    raise KeyboardInterrupt


class TestClose:
    def test_close(self, clock):
        """
        close() closes idle resources, wakes waiters with RuntimeError,
        refuses checkouts and closes lent ones when they come back.
        """
        events: list[Event] = []
        pool = _pool(max_size=2, clock=clock, hooks=events.append)
        idle = pool.checkout()
        lent = pool.checkout()
        pool.checkin(idle)
        pool.checkout()  # idle again lent
        thread, out = _start(pool.checkout)
        _until(lambda: pool.statistics().waiting == 1)

        pool.close()
        thread.join()

        assert isinstance(out[0], RuntimeError)
        with pytest.raises(RuntimeError, match="is closed"):
            pool.checkout()
        pool.checkin(lent)
        assert lent.closed
        assert ["closed"] == [
            e.reason for e in events if isinstance(e, ResourceClosed)
        ]

    def test_aclose(self):
        """
        aclose() awaits an async disposer for every idle resource.
        """
        closed: list[Conn] = []

        async def dispose(conn: Conn) -> None:
            closed.append(conn)

        pool = _pool(dispose=dispose)

        async def main() -> None:
            for _ in range(2):
                conn = await pool.acheckout()
                await pool.acheckin(conn)
            await pool.aclose()
            with pytest.raises(RuntimeError, match="is closed"):
                await pool.acheckout()

        asyncio.run(main())

        assert [0] == [c.number for c in closed]

    def test_aclose_wakes_waiters(self, clock):
        """
        aclose() wakes tasks waiting for a resource with RuntimeError.
        """
        pool = _pool(max_size=1, clock=clock)

        async def main() -> None:
            await pool.acheckout()
            waiter = asyncio.create_task(pool.acheckout())
            await clock.asleep(0)
            await pool.aclose()
            with pytest.raises(RuntimeError, match="is closed"):
                await waiter

        asyncio.run(main())


class TestMisuse:
    def test_sync_face_refuses_to_block_a_loop(self):
        """
        A sync checkout that would wait raises on an event loop's thread.
        """
        pool = _pool(max_size=1)

        async def main() -> None:
            conn = pool.checkout()  # no wait needed: fine
            with pytest.raises(RuntimeError, match="acheckout"):
                pool.checkout()
            pool.checkin(conn)

        asyncio.run(main())

    def test_use_clock_drives_default(self):
        """
        A pool on the default clock follows use_clock for thread waits.
        """
        clock = FakeClock()
        pool = _pool(max_size=1, max_wait=1.0)
        pool.checkout()
        with use_clock(clock):
            thread, out = _start(pool.checkout)
            _until(lambda: pool.statistics().waiting == 1)
            clock.advance(1.0)
            thread.join()

        assert isinstance(out[0], PoolExhaustedError)

    def test_error_message_and_pickle(self):
        """
        PoolExhaustedError says what happened and survives pickling.
        """
        error = PoolExhaustedError("db", 4)
        copy = pickle.loads(pickle.dumps(error))

        assert "pool exhausted (4 resources in use) by 'db'" == str(error)
        assert isinstance(error, RejectedError)
        assert vars(error) == vars(copy)


class TestIsolation:
    def test_slow_dependency_cannot_drain_another(self, clock):
        """
        With a pool per dependency, callers stuck on a slow dependency
        hold only its resources; the other dependency's callers are
        served at once.
        """
        slow = _pool(max_size=2, max_wait=1.0, clock=clock, name="slow")
        fast = _pool(max_size=2, max_wait=1.0, clock=clock, name="fast")
        served: list[tuple[str, float]] = []
        refused: list[tuple[str, float]] = []

        async def call(pool: ResourcePool[Conn], hold: float) -> None:
            try:
                async with pool.acquire():
                    await clock.asleep(hold)
                    served.append((pool.name, clock.now()))
            except PoolExhaustedError:
                refused.append((pool.name, clock.now()))

        async def main() -> None:
            calls = [call(slow, 30.0) for _ in range(5)]
            calls += [call(fast, 0.1) for _ in range(4)]
            await asyncio.gather(*calls)

        asyncio.run(main())

        assert [("fast", 0.1)] * 2 + [("fast", 0.2)] * 2 + [
            ("slow", 30.0)
        ] * 2 == sorted(served)
        assert [("slow", 1.0)] * 3 == refused


class TestThreadsAndTasks:
    def test_never_lent_twice(self):
        """
        Threads and tasks of two loops hammering one pool never hold one
        resource at once, never exceed max_size, and give everything back.
        """
        pool = _pool(max_size=3, validate=lambda c: c.number % 7 != 3)
        holders: dict[int, int] = {}
        lock = threading.Lock()
        clashes: list[int] = []
        peak = [0]

        def hold(conn: Conn) -> None:
            with lock:
                if conn.number in holders:
                    clashes.append(conn.number)
                holders[conn.number] = 1
                peak[0] = max(peak[0], len(holders))

        def let_go(conn: Conn) -> None:
            with lock:
                del holders[conn.number]

        def thread_user() -> None:
            for _ in range(200):
                with pool.acquire() as conn:
                    hold(conn)
                    let_go(conn)

        def loop_user() -> None:
            async def task() -> None:
                for i in range(100):
                    lease = pool.acquire()
                    async with lease as conn:
                        hold(conn)
                        await asyncio.sleep(0)
                        let_go(conn)
                        if i % 33 == 0:
                            lease.discard()

            async def main() -> None:
                await asyncio.gather(*(task() for _ in range(3)))

            asyncio.run(main())

        threads = [threading.Thread(target=thread_user) for _ in range(3)]
        threads += [threading.Thread(target=loop_user) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = pool.statistics()

        assert [] == clashes
        assert peak[0] <= 3
        assert 0 == stats.in_use == stats.waiting
        assert stats.size == stats.idle <= 3
        assert stats.created - stats.closed == stats.size
