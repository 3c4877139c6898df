"""
Registry: get-or-create by kind and name with defaults per kind, from a
plain dict, conflicts that say what differs, health, thread safety.
"""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

import stalwart

from helpers import Boom
from stalwart import (
    CircuitBreaker,
    ConfigurationError,
    CountWindow,
    Registry,
    Retry,
    TimeWindow,
)
from stalwart._registry import parse_duration


class TestGet:
    def test_defaults_per_kind_and_overrides(self, clock):
        """
        A primitive takes its kind's defaults, overridden by its own
        settings, and the registry's clock.
        """
        registry = Registry(
            {
                CircuitBreaker: {
                    "failure_rate": 0.5,
                    "window": CountWindow(100),
                },
            },
            clock=clock,
        )
        payments = registry.get(CircuitBreaker, "payments", recovery_time=60)
        search = registry.get("circuit_breaker", "search")

        assert (0.5, CountWindow(100), 60.0) == (
            payments.failure_rate,
            payments.window,
            payments.recovery_time,
        )
        assert 30.0 == search.recovery_time
        assert clock is payments.clock
        assert "payments" == payments.name

    def test_same_name_same_object(self, clock):
        """
        Getting a name again, with no settings or the same ones (however
        written), returns the same object.
        """
        registry = Registry(clock=clock)
        first = registry.get(CircuitBreaker, "p", recovery_time="1m")

        assert first is registry.get(CircuitBreaker, "p")
        assert first is registry.get(
            CircuitBreaker, "p", recovery_time=dt.timedelta(minutes=1)
        )
        assert 1 == len(registry)

    def test_conflict_says_what_differs(self, clock):
        """
        The same name with other settings is an error listing each
        difference.
        """
        registry = Registry(clock=clock)
        registry.get(
            CircuitBreaker, "p", recovery_time=10, failure_threshold=3
        )

        with pytest.raises(ConfigurationError) as error:
            registry.get(
                CircuitBreaker, "p", recovery_time=20, half_open_max_calls=2
            )

        assert (
            "circuit_breaker 'p' already exists with other settings:"
            " failure_threshold=3 (got '<default>'), half_open_max_calls="
            "'<default>' (got 2), recovery_time=10 (got 20)"
        ) == str(error.value)

    def test_kinds_are_separate(self, clock):
        """
        A breaker and a retry may share a name.
        """
        registry = Registry(clock=clock)

        assert registry.get(CircuitBreaker, "p") is not registry.get(
            Retry, "p"
        )
        assert 2 == len(list(registry))

    def test_unknown_kind(self):
        """
        An unknown kind is refused, naming the known ones.
        """
        with pytest.raises(ConfigurationError, match="unknown kind 'nope'"):
            Registry().get("nope", "x")
        with pytest.raises(ConfigurationError, match="unknown kind"):
            Registry({dict: {}})

    def test_get_or_create_is_atomic(self, clock):
        """
        Threads asking for one name at once all get the same object.
        """
        registry = Registry(clock=clock)
        found: list[object] = []
        barrier = threading.Barrier(8)

        def ask() -> None:
            barrier.wait()
            found.append(registry.get(CircuitBreaker, "shared"))

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert 1 == len({id(p) for p in found})
        assert 8 == len(found)

    def test_hooks_reach_every_primitive(self, clock):
        """
        The registry's hooks are attached to what it builds and registers.
        """
        events: list[stalwart.Event] = []
        registry = Registry(clock=clock, hooks=[events.append])
        breaker = registry.get(CircuitBreaker, "p", failure_threshold=1)
        chaos = registry.register(stalwart.Chaos(fault=OSError(), name="c"))
        bulkhead = registry.get(stalwart.Bulkhead, "b", max_concurrent=1)
        with pytest.raises(Boom):
            breaker.call(_boom)
        with pytest.raises(OSError):
            chaos.call(lambda: None)

        assert ["CircuitOpened", "ChaosInjected"] == [
            type(e).__name__ for e in events
        ]
        assert bulkhead is registry.get(stalwart.Bulkhead, "b")

    def test_keyed_breaker(self, clock):
        """
        A keyed breaker takes the settings of its breakers, and key_func.
        """
        registry = Registry(clock=clock)
        keyed = registry.get(
            stalwart.KeyedCircuitBreaker,
            "hosts",
            failure_threshold=1,
            key_func=lambda host: host,
        )
        with pytest.raises(Boom):
            keyed.call(_boom, "a")

        assert stalwart.CircuitState.OPEN == keyed.key("a").state
        assert clock is keyed.breaker.clock
        assert Registry().get(stalwart.KeyedCircuitBreaker, "k").name == "k"


def _boom(*args: object) -> None:
    raise Boom


class TestFromDict:
    def test_schema(self, clock):
        """
        Durations, percentages, windows and exception names are read from
        plain data.
        """
        registry = Registry.from_dict(
            {
                "defaults": {
                    "circuit_breaker": {
                        "failure_rate": "50%",
                        "window": {"length": "1m", "buckets": 6},
                        "minimum_calls": 5,
                        "failure_on": [
                            "ConnectionError",
                            "builtins.TimeoutError",
                        ],
                    },
                    "retry": {"wait_initial": "250ms", "on": "OSError"},
                },
                "circuit_breaker": {
                    "payments": {"recovery_time": "2m", "ignore": "KeyError"},
                    "counted": {"window": {"calls": 10}},
                },
                "retry": {"fetch": {"timeout": "1h"}},
                "retry_budget": {"shared": {"window": "30s"}},
                "token_bucket": {"api": {"rate": "100/minute"}},
            },
            clock=clock,
        )
        payments = registry.get(CircuitBreaker, "payments")
        fetch = registry.get(Retry, "fetch")

        assert 0.5 == payments.failure_rate
        assert TimeWindow(60.0, buckets=6) == payments.window
        assert 120.0 == payments.recovery_time
        assert (ConnectionError, TimeoutError) == payments.failure_on.types
        assert (KeyError,) == payments.ignore.types
        assert (
            CountWindow(10) == registry.get(CircuitBreaker, "counted").window
        )
        assert (0.25, 3600.0, (OSError,)) == (
            fetch.wait_initial,
            fetch.timeout,
            fetch.on.types,
        )
        assert 30.0 == registry.get(stalwart.RetryBudget, "shared").window
        assert 100 == registry.get(stalwart.TokenBucket, "api").rate.limit

    @pytest.mark.parametrize(
        ("settings", "message"),
        [
            ({"recovery_time": "soon"}, "'recovery_time' must be a number"),
            ({"failure_rate": "half"}, "'failure_rate' must be a number or a"),
            ({"failure_on": "no.such.Error"}, "not an exception class"),
            ({"failure_on": "str"}, "not an exception class"),
            ({"window": {"size": 3}}, "'window' must be"),
        ],
        ids=["duration", "fraction", "module", "not-exception", "window"],
    )
    def test_bad_values(self, settings, message):
        """
        A value that cannot be read says which setting and what it got.
        """
        with pytest.raises(ConfigurationError, match=message):
            Registry.from_dict({"circuit_breaker": {"p": settings}})

    def test_plain_values_pass_through(self):
        """
        Numbers, timedeltas, classes and windows given as objects are kept.
        """
        assert 1.5 == parse_duration(dt.timedelta(seconds=1.5), "x")
        assert 3 == parse_duration(3, "x")
        registry = Registry.from_dict(
            {
                "circuit_breaker": {
                    "p": {
                        "failure_on": [OSError],
                        "ignore": KeyError,
                        "failure_rate": 0.25,
                        "window": CountWindow(4),
                    }
                }
            }
        )

        assert (OSError,) == registry.get(CircuitBreaker, "p").failure_on.types


class TestRegister:
    def test_register_and_conflicts(self, clock):
        """
        A primitive built elsewhere joins once; another with its kind and
        name is refused; something without statistics is a TypeError.
        """
        registry = Registry(clock=clock)
        pool = stalwart.ResourcePool(factory=object, max_size=1, name="db")

        assert pool is registry.register(pool)
        assert pool is registry.register(pool)
        with pytest.raises(ConfigurationError, match="already registered"):
            registry.register(
                stalwart.ResourcePool(factory=object, max_size=1, name="db")
            )
        with pytest.raises(TypeError, match="needs a name"):
            registry.register(object())


class TestHealth:
    def test_a_primitive_from_outside(self):
        """
        A registered primitive from outside stalwart, whose statistics
        are a plain attrs record, is reported with its name.
        """
        import attrs

        @attrs.frozen
        class GateStatistics:
            opened: int

        class Gate:
            name = "gate"

            def statistics(self) -> GateStatistics:
                return GateStatistics(opened=2)

        registry = Registry()
        registry.register(Gate())

        assert {
            "status": "ok",
            "primitives": [
                {
                    "primitive": "gate",
                    "opened": 2,
                    "name": "gate",
                    "status": "ok",
                }
            ],
        } == json.loads(json.dumps(registry.health()))

    def test_ok_and_degraded(self, clock):
        """
        Health is ok until a breaker opens or a bulkhead, thread pool or
        resource pool has nothing left; it is JSON as it is.
        """
        registry = Registry(clock=clock)
        breaker = registry.get(CircuitBreaker, "p", failure_threshold=1)
        bulkhead = registry.get(stalwart.Bulkhead, "b", max_concurrent=1)
        keyed = registry.get(
            stalwart.KeyedCircuitBreaker, "hosts", failure_threshold=1
        )
        pool = registry.register(
            stalwart.ResourcePool(factory=object, max_size=1, name="db")
        )
        threads = registry.get(
            stalwart.ThreadPoolBulkhead, "tp", max_workers=1
        )
        registry.get(stalwart.Timeout, "t", seconds=1)

        assert "ok" == registry.health()["status"]

        with pytest.raises(Boom):
            breaker.call(_boom)
        with pytest.raises(Boom):
            keyed.call(_boom, "a")
        with bulkhead, pool.acquire():
            health = json.loads(json.dumps(registry.health()))
        threads.shutdown()

        assert "degraded" == health["status"]
        assert {
            "p": "degraded",
            "b": "degraded",
            "hosts": "degraded",
            "db": "degraded",
            "tp": "ok",
            "t": "ok",
        } == {e["name"]: e["status"] for e in health["primitives"]}
        assert "open" == health["primitives"][0]["state"]
        assert {
            "primitive": "timeout",
            "name": "t",
            "timeouts": 0,
            "status": "ok",
        } == health["primitives"][-1]

    def test_thread_pool_saturated(self, clock):
        """
        A thread pool whose workers are all busy is degraded.
        """
        registry = Registry(clock=clock)
        threads = registry.get(
            stalwart.ThreadPoolBulkhead, "tp", max_workers=1, max_queue=1
        )
        release = threading.Event()
        future = threads.submit(release.wait)
        try:
            while threads.statistics().running < 1:
                release.wait(0.001)
            status = registry.health()["status"]
        finally:
            release.set()
            future.result()
            threads.shutdown()

        assert "degraded" == status

    def test_adaptive_and_weighted_bulkheads_saturated(self, clock):
        """
        An adaptive bulkhead at its current limit, and a weighted one with
        all its weight in flight, are degraded; built by kind name too.
        """
        registry = Registry(clock=clock)
        adaptive = registry.get(
            "adaptive_bulkhead",
            "a",
            algorithm=stalwart.AIMDLimit(),
            min_limit=1,
            max_limit=1,
            initial_limit=1,
        )
        weighted = registry.get("weighted_bulkhead", "w", max_weight=3)

        assert "ok" == registry.health()["status"]
        with adaptive:
            one = {
                e["name"]: e["status"] for e in registry.health()["primitives"]
            }
        with weighted.hold(2):
            partly = registry.health()["status"]
            with weighted.hold(1):
                full = registry.health()["status"]

        assert {"a": "degraded", "w": "ok"} == one
        assert ("ok", "degraded") == (partly, full)
        assert isinstance(adaptive, stalwart.AdaptiveBulkhead)


class TestPipeline:
    def test_health_looks_into_the_stages(self, clock):
        """
        A registered pipeline is degraded while a stage breaker is open or
        half-open, or a stage bulkhead is full; each stage has a status.
        """
        from pipeline_support import Runner

        class Custom(Runner):
            def statistics(self) -> str:
                return "no counters"

        registry = Registry(clock=clock)
        breaker = CircuitBreaker(
            name="db", failure_threshold=1, recovery_time=10, clock=clock
        )
        bulkhead = stalwart.Bulkhead(max_concurrent=1, name="slots")
        policy = registry.register(
            stalwart.Pipeline(
                stalwart.Fallback(value=None, on=OSError, name="r"),
                Runner("custom", []),
                Custom("own", []),
                bulkhead,
                breaker,
                name="policy",
            )
        )

        def status() -> tuple[str, str, dict[str, object]]:
            health = json.loads(json.dumps(registry.health()))
            entry = health["primitives"][0]
            return (
                health["status"],
                entry["status"],
                {
                    key: stage["status"] if isinstance(stage, dict) else stage
                    for key, stage in entry["stages"].items()
                },
            )

        healthy = status()
        with pytest.raises(Boom):
            policy.call(_boom)
        opened = status()
        clock.advance(10)
        with breaker:  # its trial call
            half_open = (breaker.state.value, status())
        with bulkhead:
            full = status()

        assert "pipeline" == registry.health()["primitives"][0]["primitive"]
        assert (
            "ok",
            "ok",
            {
                "r": "ok",
                "custom": None,
                "own": "no counters",
                "slots": "ok",
                "db": "ok",
            },
        ) == healthy
        assert (
            "degraded",
            "degraded",
            {
                "r": "ok",
                "custom": None,
                "own": "no counters",
                "slots": "ok",
                "db": "degraded",
            },
        ) == opened
        assert ("half_open", opened) == half_open
        assert (
            "degraded",
            "degraded",
            {
                "r": "ok",
                "custom": None,
                "own": "no counters",
                "slots": "degraded",
                "db": "ok",
            },
        ) == full

    def test_hooks_reach_each_stage_once(self, clock):
        """
        The registry's hooks go to each stage of a registered pipeline,
        once for a stage it also holds, whichever came first.
        """
        events: list[stalwart.Event] = []
        registry = Registry(clock=clock, hooks=events.append)
        held = registry.get(CircuitBreaker, "held", failure_threshold=1)
        stage = CircuitBreaker(name="stage", failure_threshold=1, clock=clock)
        later = CircuitBreaker(name="later", failure_threshold=1, clock=clock)
        registry.register(stalwart.Pipeline(held, stage, later, name="policy"))
        registry.register(later)

        assert [events.append] == held._live.all
        assert [events.append] == stage._live.all
        assert [events.append] == later._live.all
