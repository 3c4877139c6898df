"""
Every public constructor, fuzzed with extreme and wrong values: each input
is either refused where the object is built (``ConfigurationError`` or
``TypeError``), or accepted, and then a first call through every face the
object has works (it returns, refuses with a ``RejectedError``, or lets the
user's own exception through).  Nothing may fail later, far from the
mistake, with an error that does not name it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import warnings

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

import stalwart

from stalwart.testing import FakeClock


class Boom(Exception):
    """
    The user's own failure, which primitives let through.
    """


def _ok(*args: Any, **kwargs: Any) -> str:
    return "ok"


async def _aok(*args: Any, **kwargs: Any) -> str:
    return "ok"


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise Boom


async def _aboom(*args: Any, **kwargs: Any) -> Any:
    raise Boom


async def _async_predicate(*args: Any) -> bool:
    return True  # pragma: no cover  # refused before it is ever called


def _hook(event: object) -> None:
    pass


MISSING = object()
"""Leave the parameter out."""

EXTREMES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    3,
    2**31,
    2**63,
    10**400,
    -(10**400),
    0.0,
    -0.0,
    5e-324,
    1e-320,
    1e-10,
    0.5,
    1e10,
    1e12,
    1e308,
    math.inf,
    -math.inf,
    math.nan,
    "1",
    "",
    "x",
    "10/second",
    "10/sek",
    "0.5/s",
    "1e308/1e-10s",
    b"x",
    timedelta(seconds=-1),
    timedelta(days=999_999_999),
    timedelta(microseconds=1),
    object(),
    (),
    (1,),
    (1, 5e-324),
    (1e308, 1e-10),
    (10, 0.1),
    (0, 1),
    [1, 2],
    {"a": 1},
    _ok,
    _async_predicate,
    Exception,
    (ValueError,),
    BaseException,
    logging.getLogger("fuzz"),
]
"""Values every parameter is tried with, sensible or not."""

SENSIBLE: dict[str, list[object]] = {
    "name": ["svc"],
    "rate": [10, 2.5, "10/second", "5/minute", (10, 1.0), (3, 0.25)],
    "capacity": [1, 5, 2.5],
    "burst": [1, 5],
    "mode": ["meter", "shaper"],
    "timeout": [None, 0.0, 1.0],
    "key_func": [None, lambda *args, **kwargs: "k"],
    "hooks": [(), [_hook]],
    "max_concurrent": [1, 4],
    "max_queue": [0, 4],
    "max_wait": [None, 0.0, 1.0],
    "max_workers": [1, 2],
    "seconds": [0.5, 1.0, timedelta(seconds=2)],
    "value": ["fallback"],
    "handler": [None, lambda *args: "handled"],
    "on": [Exception, Boom, (Boom, OSError), lambda exc: True],
    "on_result": [None, lambda result: False],
    "attempts": [1, 3, None],
    "wait_initial": [0.0, 0.1],
    "wait_max": [1.0, 5.0],
    "wait_multiplier": [1.0, 2.0],
    "jitter": ["full", "none", None],
    "failure_threshold": [1, 3],
    "failure_rate": [0.5, 1.0],
    "slow_call_rate": [0.5],
    "slow_call_duration": [1.0],
    "minimum_calls": [1, 2],
    "recovery_time": [0.0, 1.0, 30.0],
    "recovery_multiplier": [1.0, 2.0],
    "recovery_max": [60.0],
    "half_open_max_calls": [1, 2],
    "success_threshold": [1],
    "half_open_max_wait": [None, 1.0],
    "failure_on": [Exception, Boom],
    "ignore": [None, KeyError],
    "failure_result": [None, lambda result: False],
    "window": [None],
    "size": [1, 10],
    "length": [1.0, 60.0],
    "buckets": [1, 10],
    "delay": [0.0, 1.0],
    "initial": [0.0, 0.1, 1.0],
    "increment": [0.0, 0.5],
    "multiplier": [1.0, 2.0, 3.0],
    "cap": [1.0, 10.0],
    "ratio": [0.1, 0.5],
    "min_per_second": [0.0, 1.0],
    "limit": [1, 10],
    "period": [1.0, 60.0],
    "start": [0.0, 1e9],
    "logger": [None, logging.getLogger("fuzz")],
    "fault": [None, Boom, Boom()],
    "result": ["injected"],
    "result_factory": [None, lambda: "made"],
    "latency": [None, 0.0, 0.5],
    "behavior": [None, lambda: None],
    "probability": [0.0, 0.5, 1.0],
    "every": [None, 1, 2],
    "first": [None, 1],
    "after": [None, 1],
    "during": [None, [(0.0, 10.0)]],
    "when": [None, lambda ctx: True],
    "_on": [True, False],
    "seed": [None, 1],
    "random_source": [None, lambda: 0.5],
    "when_full": ["block", "drop_newest", "drop_oldest", "reject"],
    "factory": [object, lambda: object()],
    "max_size": [1, 2],
    "max_idle": [None, 1.0],
    "max_lifetime": [None, 10.0],
    "validate": [None, lambda resource: True],
    "dispose": [None, lambda resource: None],
    "discard_on": [None, OSError],
    "breaker": [stalwart.CircuitBreaker(failure_threshold=1)],
    "retry_statuses": [{429, 503}, ()],
    "retry_methods": [{"GET"}, ("GET", "POST")],
    "retry_after_statuses": [{429}],
    "retry_after_max": [60.0, 0.0],
    "failure_statuses": [{500, 503}],
    "wall_clock": [lambda: 0.0],
    "min_limit": [1, 2],
    "max_limit": [4, 200],
    "initial_limit": [None, 2],
    "algorithm": [stalwart.AIMDLimit(), stalwart.GradientLimit()],
    "drop_on": [TimeoutError, None],
    "drop_result": [None, lambda result: False],
    "max_weight": [1, 10],
    "cost_func": [None, lambda *args, **kwargs: 1],
    "backoff_ratio": [0.5, 0.9],
    "smoothing": [0.2],
    "queue_size": [4, None],
    "window_samples": [10],
    "probe_interval": [None, 60.0],
    "probe_samples": [5],
}


def _parameters(cls: type) -> list[str]:
    if attrs.has(cls):
        return [f.name for f in attrs.fields(cls) if f.init]
    return ["start"]  # FakeClock


def _kwargs(cls: type) -> st.SearchStrategy[dict[str, object]]:
    """
    Draw keyword arguments for *cls*: up to two parameters get any value,
    sensible or extreme; the others are left out or sensible, so that the
    objects that are accepted are many and varied.
    """
    names = [name for name in _parameters(cls) if name != "clock"]

    @st.composite
    def draw(data: st.DrawFn) -> dict[str, object]:
        wild = set(
            data(st.lists(st.sampled_from(names), max_size=2, unique=True))
        )
        kwargs = {}
        for name in names:
            sensible = SENSIBLE.get(name, [])
            choices = (
                [*sensible, *EXTREMES]
                if name in wild
                else [MISSING, *sensible]
            )
            value = data(st.sampled_from(choices))
            if value is not MISSING:
                kwargs[name] = value
        return kwargs

    return draw()


def _build(cls: type, kwargs: dict[str, object]) -> object | None:
    """
    Build *cls*; return None when it refuses the input as it should.
    """
    with warnings.catch_warnings():
        # Legal but surprising values warn: that is a fine answer too.
        warnings.simplefilter("ignore")
        try:
            return cls(**kwargs)
        except (stalwart.ConfigurationError, TypeError):
            return None


def _first_call(fn: Callable[[], object]) -> None:
    """
    Run a first call; only a refusal or the user's own error may escape.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn()
        except (stalwart.RejectedError, Boom):
            pass
        except stalwart.RetryExhaustedError:
            pass
        except TypeError as exc:
            # A face refusing the wrong kind of function for it (a pool's
            # sync face given an async factory), or a user's callable
            # answering with the wrong kind of value: both are only known
            # at the call, and the message says what to do.
            message = str(exc)
            hints = ("use acall()", "use call()", "use the async", "returned")
            if not any(hint in message for hint in hints):
                raise


def _both_faces(prim: Any, sync_fn: Callable[..., Any], async_fn: Any) -> None:
    _first_call(lambda: prim.call(sync_fn))
    _first_call(lambda: asyncio.run(prim.acall(async_fn)))


PRIMITIVES: dict[type, Callable[[Any], None]] = {}


def exercise(cls: type) -> Callable[[Callable[[Any], None]], Any]:
    """
    Register how a first call through an instance of *cls* is made.
    """

    def register(fn: Callable[[Any], None]) -> Any:
        PRIMITIVES[cls] = fn
        return fn

    return register


@exercise(stalwart.CircuitBreaker)
def _breaker(breaker: stalwart.CircuitBreaker) -> None:
    for _ in range(3):
        _both_faces(breaker, _boom, _aboom)
    _both_faces(breaker, _ok, _aok)
    breaker.statistics()


@exercise(stalwart.CountWindow)
@exercise(stalwart.TimeWindow)
def _window(window: Any) -> None:
    clock = FakeClock()
    breaker = stalwart.CircuitBreaker(
        failure_rate=0.5, window=window, minimum_calls=1, clock=clock
    )
    for _ in range(3):
        _both_faces(breaker, _boom, _aboom)
        clock.advance(0.7)
    breaker.statistics()


def _flaky(failures: int) -> tuple[Callable[[], str], Any]:
    """
    A function, and its async twin, that fail *failures* times each, then
    succeed (so a retry told to retry for ever still ends).
    """
    left = [failures, failures]

    def flaky() -> str:
        left[0] -= 1
        if left[0] >= 0:
            raise Boom
        return "ok"

    async def aflaky() -> str:
        left[1] -= 1
        if left[1] >= 0:
            raise Boom
        return "ok"

    return flaky, aflaky


@exercise(stalwart.Retry)
def _retry(retry: stalwart.Retry) -> None:
    _both_faces(retry, *_flaky(3))
    _both_faces(retry, _ok, _aok)
    retry.statistics()


@exercise(stalwart.ConstantBackoff)
@exercise(stalwart.LinearBackoff)
@exercise(stalwart.ExponentialBackoff)
@exercise(stalwart.DecorrelatedJitterBackoff)
def _backoff(backoff: Any) -> None:
    retry = stalwart.Retry(attempts=4, wait=backoff, clock=FakeClock())
    _both_faces(retry, _boom, _aboom)


@exercise(stalwart.RetryBudget)
def _budget(budget: stalwart.RetryBudget) -> None:
    retry = stalwart.Retry(attempts=3, budget=budget, clock=FakeClock())
    _both_faces(retry, _boom, _aboom)
    budget.statistics()


@exercise(stalwart.TokenBucket)
@exercise(stalwart.LeakyBucket)
@exercise(stalwart.FixedWindow)
@exercise(stalwart.SlidingWindowLog)
@exercise(stalwart.SlidingWindowCounter)
@exercise(stalwart.GCRA)
def _limiter(limiter: Any) -> None:
    for _ in range(3):
        decision = limiter.try_acquire()
        decision.headers()
    _first_call(lambda: limiter.acquire(timeout=1.0))
    _both_faces(limiter, _ok, _aok)
    limiter.statistics()


@exercise(stalwart.Rate)
def _rate(rate: stalwart.Rate) -> None:
    limiter = stalwart.TokenBucket(rate=rate, clock=FakeClock())
    _limiter(limiter)


@exercise(stalwart.Bulkhead)
def _bulkhead(bulkhead: stalwart.Bulkhead) -> None:
    _both_faces(bulkhead, _ok, _aok)
    if bulkhead.try_acquire():
        bulkhead.release()
    bulkhead.statistics()


@exercise(stalwart.ThreadPoolBulkhead)
def _pool(pool: stalwart.ThreadPoolBulkhead) -> None:
    try:
        # Both faces run a blocking function on the pool's threads.
        _both_faces(pool, _ok, _ok)
        pool.statistics()
    finally:
        pool.shutdown()


@exercise(stalwart.Timeout)
def _timeout(timeout: stalwart.Timeout) -> None:
    _both_faces(timeout, _ok, _aok)
    timeout.statistics()


@exercise(stalwart.Fallback)
def _fallback(fallback: stalwart.Fallback) -> None:
    _both_faces(fallback, _boom, _aboom)
    _both_faces(fallback, _ok, _aok)
    fallback.statistics()


@exercise(stalwart.Chaos)
def _chaos(chaos: stalwart.Chaos) -> None:
    for _ in range(3):
        try:
            _both_faces(chaos, _ok, _aok)
        except BaseException:
            # The fault it was told to inject, whatever its type.
            if chaos.fault is None:
                raise
    chaos.statistics()


@exercise(stalwart.BoundedBuffer)
def _buffer(buffer: Any) -> None:
    for item in range(3):
        buffer.try_put(item)
    _first_call(lambda: buffer.put(3, timeout=0.0))
    buffer.try_get()
    _first_call(lambda: buffer.get(timeout=0.0))
    buffer.statistics()


@exercise(stalwart.ResourcePool)
def _resource_pool(pool: Any) -> None:
    def use() -> None:
        with pool.acquire() as resource:
            assert resource is not None

    async def ause() -> None:
        async with pool.acquire() as resource:
            assert resource is not None

    _first_call(use)
    _first_call(lambda: asyncio.run(ause()))
    pool.statistics()
    _first_call(pool.close)


@exercise(stalwart.KeyedCircuitBreaker)
def _keyed(keyed: Any) -> None:
    for key in ("a", "b", "a"):
        _first_call(lambda k=key: keyed.call(_boom, k))
        _first_call(lambda k=key: asyncio.run(keyed.acall(_aboom, k)))
    keyed.statistics()


@exercise(stalwart.AdaptiveBulkhead)
@exercise(stalwart.WeightedBulkhead)
def _other_bulkheads(bulkhead: Any) -> None:
    for _ in range(3):
        _both_faces(bulkhead, _ok, _aok)
        _both_faces(bulkhead, _boom, _aboom)
    bulkhead.statistics()


@exercise(stalwart.AIMDLimit)
@exercise(stalwart.GradientLimit)
def _limit_algorithm(algorithm: Any) -> None:
    clock = FakeClock()
    bulkhead = stalwart.AdaptiveBulkhead(algorithm=algorithm, clock=clock)

    def slow() -> str:
        clock.advance(0.1)
        return "ok"

    for _ in range(20):
        _first_call(lambda: bulkhead.call(slow))
    bulkhead.statistics()


@exercise(stalwart.HTTPPolicy)
def _http_policy(policy: Any) -> None:
    policy.retry_on(ConnectionError(), "GET")
    policy.failure_on(TimeoutError())
    policy.retry_status("GET", 503, {"Retry-After": "5"})
    policy.failure_status(500)


@exercise(stalwart.RetryAfter)
def _retry_after(after: Any) -> None:
    retry = stalwart.Retry(
        attempts=2, on_result=lambda r: after, clock=FakeClock()
    )
    _both_faces(retry, _ok, _aok)


@exercise(FakeClock)
def _clock(clock: FakeClock) -> None:
    clock.advance(1.0)
    clock.sleep(0.5)
    asyncio.run(clock.asleep(0.25))
    retry = stalwart.Retry(attempts=2, wait_initial=0.1, clock=clock)
    _both_faces(retry, _boom, _aboom)
    limiter = stalwart.TokenBucket(rate=1, clock=clock)
    _limiter(limiter)
    assert not math.isnan(clock.now())


@exercise(stalwart.LoggingHook)
def _logging_hook(hook: stalwart.LoggingHook) -> None:
    breaker = stalwart.CircuitBreaker(
        failure_threshold=1, hooks=hook, clock=FakeClock()
    )
    _both_faces(breaker, _boom, _aboom)


class Hang(Exception):
    """
    A first call that did not return.
    """


@contextlib.contextmanager
def _hang_guard(cls: type) -> Iterator[None]:
    """
    Turn a first call that hangs into a failure Hypothesis can shrink.
    """

    def hang(signum: int, frame: object) -> None:
        raise Hang(f"a first call through {cls.__name__} did not return")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.setitimer(signal.ITIMER_REAL, 20.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@st.composite
def _case(draw: st.DrawFn, cls: type) -> tuple[type, dict[str, object]]:
    kwargs = draw(_kwargs(cls))
    if "clock" in _parameters(cls):
        kwargs["clock"] = draw(
            st.sampled_from(["fake", "fake", "fake", "wrong"]).map(
                lambda kind: FakeClock() if kind == "fake" else object()
            )
        )
    return cls, kwargs


@pytest.mark.parametrize(
    "cls", list(PRIMITIVES), ids=[c.__name__ for c in PRIMITIVES]
)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_refused_at_construction_or_working(
    cls: type, data: st.DataObject
) -> None:
    """
    Any input is either refused where the object is built, or the object
    works on its first calls.
    """
    _, kwargs = data.draw(_case(cls), label="kwargs")
    built = _build(cls, kwargs)
    if built is not None:
        with _hang_guard(cls):
            PRIMITIVES[cls](built)


def test_every_public_constructor_is_fuzzed() -> None:
    """
    Every public class users configure is in the fuzzer.
    """
    configurable = {
        obj
        for name in stalwart.__all__
        if isinstance(obj := getattr(stalwart, name), type)
        and attrs.has(obj)
        and not name.endswith(("Statistics", "Error"))
        and not issubclass(obj, stalwart.Event)
        and obj is not stalwart.Deadline
    }

    assert set() == configurable - set(PRIMITIVES)


@pytest.mark.parametrize(
    "build",
    [
        lambda: stalwart.BoundedBuffer(capacity=None),
        lambda: stalwart.ResourcePool(factory=object, max_size=None),
    ],
    ids=["buffer-capacity", "pool-max-size"],
)
def test_none_refused_where_a_number_is_required(build: Any) -> None:
    """
    None where a count is required is refused where the object is built
    (it used to fail at the first put or checkout).
    """
    with pytest.raises(stalwart.ConfigurationError, match="must be a number"):
        build()
