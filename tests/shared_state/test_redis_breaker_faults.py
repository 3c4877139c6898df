"""
The shared breaker when its server goes away (SIGKILL, restart) or is too
slow (CLIENT PAUSE): each failure policy as documented, no crash, and
correct decisions again once the server is back.
"""

from __future__ import annotations

import logging

from collections.abc import Iterator

import pytest
import redis

from helpers import Boom, boom, ok
from redis_breaker_support import Fleet
from redis_support import RedisServer
from stalwart import (
    CircuitOpenError,
    CircuitState,
    Event,
    LoggingHook,
    RejectedError,
    StoreUnavailable,
    StoreUnavailableError,
)


@pytest.fixture(name="fleet")
def _fleet(private_redis: RedisServer) -> Iterator[Fleet]:
    fleet = Fleet(private_redis.url)
    try:
        yield fleet
    finally:
        fleet.close()


def build(fleet: Fleet, policy: str, events: list[Event], **kwargs):
    store = fleet.store(on_unavailable=policy, timeout=0.2)
    kwargs.setdefault("failure_threshold", 2)
    return fleet.breaker(store=store, hooks=[events.append], **kwargs), store


def unavailable(events: list[Event]) -> list[str]:
    return [e.policy for e in events if isinstance(e, StoreUnavailable)]


class TestKilled:
    def test_fail_open_admits_and_records_nothing(self, fleet, private_redis):
        """
        fail_open: with the server dead, calls run as if closed, failures
        open nothing, each degraded decision is an event and a count; after
        the restart the breaker opens again on failures.
        """
        events: list[Event] = []
        cb, store = build(fleet, "fail_open", events)
        cb.call(ok)
        private_redis.kill()

        for _ in range(3):
            with pytest.raises(Boom):
                cb.call(boom)
        assert "ok" == cb.call(ok)
        assert 4 == store.statistics().degraded
        assert ["fail_open"] * 4 == unavailable(events)
        assert CircuitState.CLOSED == cb.state  # the last state it saw

        private_redis.restart()
        for _ in range(2):
            with pytest.raises(Boom):
                cb.call(boom)

        assert CircuitState.OPEN == cb.state

    def test_fail_open_on_the_async_client(self, fleet, private_redis):
        """
        fail_open on the async faces: the outcome is lost, the next call
        is admitted without the server.
        """
        events: list[Event] = []
        cb, store = build(fleet, "fail_open", events)
        fleet.run(cb.acall(ok_async))
        private_redis.kill()

        assert "ok" == fleet.run(cb.acall(ok_async))
        assert "ok" == fleet.run(cb.acall(ok_async))

        assert 2 == store.statistics().degraded

    def test_fail_closed_refuses(self, fleet, private_redis):
        """
        fail_closed: a call admitted on a fresh view keeps its result (its
        outcome is lost), the next ones are refused with
        StoreUnavailableError; after the restart calls run again.
        """
        events: list[Event] = []
        cb, store = build(fleet, "fail_closed", events)
        cb.call(ok)
        private_redis.kill()

        assert "ok" == cb.call(ok)
        with pytest.raises(StoreUnavailableError) as refused:
            cb.call(ok)
        with pytest.raises(RejectedError):
            fleet.run(cb.acall(ok_async))
        assert "payments" == refused.value.name
        assert isinstance(refused.value.__cause__, redis.ConnectionError)
        assert 2 == cb.statistics().rejected
        assert ["fail_closed"] * 4 == unavailable(events)

        private_redis.restart()

        assert "ok" == cb.call(ok)
        assert "ok" == fleet.run(cb.acall(ok_async))

    def test_raise_lets_the_error_through(self, fleet, private_redis):
        """
        raise: the connection error goes to the caller, from recording
        the outcome (the call ran) and then from the admission.
        """
        events: list[Event] = []
        ran = []
        cb, _ = build(fleet, "raise", events)
        cb.call(ok)
        private_redis.kill()

        with pytest.raises(redis.ConnectionError):
            cb.call(lambda: ran.append(1))
        with pytest.raises(redis.ConnectionError):
            cb.call(lambda: ran.append(2))
        assert [1] == ran

        private_redis.restart()

        assert "ok" == cb.call(ok)

    def test_an_open_breaker_refuses_without_the_server(
        self, fleet, private_redis
    ):
        """
        An open breaker goes on refusing from its view while the server is
        away, then applies the policy once the view is too old.
        """
        events: list[Event] = []
        cb, _ = build(
            fleet, "fail_closed", events, recovery_time=60, max_staleness=5
        )
        for _ in range(2):
            with pytest.raises(Boom):
                cb.call(boom)
        private_redis.kill()

        with pytest.raises(CircuitOpenError):
            cb.call(ok)
        assert [] == unavailable(events)
        fleet.clock.advance(5)

        with pytest.raises(StoreUnavailableError):
            cb.call(ok)

    def test_a_trial_lost_with_the_server(self, fleet, private_redis):
        """
        A trial whose outcome cannot be recorded leaves no slot behind: the
        restarted server starts closed, and trips again.
        """
        events: list[Event] = []
        cb, _ = build(fleet, "fail_open", events, recovery_time=1)
        for _ in range(2):
            with pytest.raises(Boom):
                cb.call(boom)
        fleet.clock.advance(1)
        permit = cb.acquire()
        private_redis.kill()
        permit.record_failure()
        private_redis.restart()

        assert "ok" == cb.call(ok)
        for _ in range(2):
            with pytest.raises(Boom):
                cb.call(boom)
        assert CircuitState.OPEN == cb.state

    @pytest.mark.parametrize("policy", ["fail_open", "fail_closed"])
    def test_a_manual_action_the_fleet_cannot_hear(
        self, fleet, private_redis, policy
    ):
        """
        A manual action that cannot reach the server raises
        StoreUnavailableError, whatever the policy.
        """
        events: list[Event] = []
        cb, _ = build(fleet, policy, events)
        private_redis.kill()

        with pytest.raises(StoreUnavailableError):
            cb.force_open()

        assert [policy] == unavailable(events)

    def test_a_degraded_decision_is_logged(self, fleet, private_redis, caplog):
        """
        LoggingHook logs each degraded decision as a warning naming the
        store and the policy.
        """
        cb, _ = build(fleet, "fail_open", [])
        cb.add_hook(LoggingHook())
        cb.call(ok)
        private_redis.kill()

        with caplog.at_level(logging.WARNING, logger="stalwart"):
            cb.call(ok)

        expected = (
            "circuit_breaker 'payments' could not reach store 'redis'"
            " (fail_open)"
        )
        assert [expected] == [
            r.getMessage().split(":")[0] for r in caplog.records
        ]

    def test_statistics_without_the_server(self, fleet, private_redis):
        """
        statistics() without the server gives the state last seen and this
        process's totals.
        """
        events: list[Event] = []
        cb, _ = build(fleet, "fail_open", events)
        cb.call(ok)
        private_redis.kill()

        stats = cb.statistics()

        assert (CircuitState.CLOSED, 1, 0) == (
            stats.state,
            stats.successes,
            stats.window_calls,
        )
        assert stats.open_until is None


async def ok_async() -> str:
    return "ok"


class TestSlow:
    @pytest.mark.parametrize("face", ["sync", "async"])
    def test_a_paused_server_times_out(self, fleet, face):
        """
        A server that does not answer within the store's timeout (CLIENT
        PAUSE) is unavailable: fail_closed refuses, on either client.
        """
        events: list[Event] = []
        cb, store = build(fleet, "fail_closed", events, max_staleness=0)
        cb.call(ok)
        fleet.admin.client_pause(1000)

        with pytest.raises(StoreUnavailableError) as refused:
            if face == "sync":
                cb.call(ok)
            else:
                fleet.run(cb.acall(ok_async))

        assert isinstance(
            refused.value.__cause__, TimeoutError | redis.TimeoutError
        )
        assert 1 == store.statistics().degraded
