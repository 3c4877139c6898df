"""
A registry of named primitives with shared defaults, and their health.

:class:`Registry` gets or creates primitives by kind and name, with
defaults per kind (resilience4j's registries), from keyword arguments or a
plain dict (so from TOML, YAML or the environment), refuses a name used
twice with different settings, reports the health of everything it holds,
and tells the instruments that watch it about every primitive, now and
later.
"""

from __future__ import annotations

import importlib
import math
import re
import threading

from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, TypeVar, final

from ._adaptive_bulkhead import AdaptiveBulkhead
from ._bulkhead import Bulkhead
from ._chaos import Chaos
from ._circuit_breaker import CircuitBreaker, CountWindow, TimeWindow
from ._clock import Clock
from ._errors import ConfigurationError
from ._events import Hook
from ._fallback import Fallback
from ._keyed_breaker import KeyedCircuitBreaker
from ._limiters import (
    GCRA,
    FixedWindow,
    LeakyBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from ._observe import observable
from ._pipeline import Pipeline
from ._retry import Retry, RetryBudget
from ._statistics import Statistics, record_dict, record_kind, snake
from ._thread_pool import ThreadPoolBulkhead
from ._timeout import Timeout
from ._validators import to_hooks
from ._weighted_bulkhead import WeightedBulkhead


P = TypeVar("P")

KINDS: dict[str, type[Any]] = {
    snake(cls.__name__): cls
    for cls in (
        CircuitBreaker,
        KeyedCircuitBreaker,
        Retry,
        RetryBudget,
        Bulkhead,
        AdaptiveBulkhead,
        WeightedBulkhead,
        ThreadPoolBulkhead,
        Timeout,
        Fallback,
        TokenBucket,
        LeakyBucket,
        FixedWindow,
        SlidingWindowLog,
        SlidingWindowCounter,
        GCRA,
        Chaos,
    )
}
"""The kinds a registry builds, by their name in a configuration."""

# Settings read as durations (a number of seconds, a timedelta or a string
# such as "250ms", "30s", "5m", "1h").
_DURATIONS = frozenset(
    {
        "recovery_time",
        "recovery_max",
        "slow_call_duration",
        "half_open_max_wait",
        "timeout",
        "wait_initial",
        "wait_max",
        "retry_after_max",
        "max_wait",
        "seconds",
        "latency",
    }
)
_FRACTIONS = frozenset({"failure_rate", "slow_call_rate", "probability"})
_EXCEPTIONS = frozenset({"failure_on", "ignore", "on"})
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)\s*")
_FRACTION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*")


def parse_duration(value: object, field: str) -> object:
    """
    Return *value* in seconds when it is a duration string (``"250ms"``,
    ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``) or a
    :class:`~datetime.timedelta`; anything else unchanged.

    Raises:
        ConfigurationError: For a string that is not a duration.
    """
    if isinstance(value, timedelta):
        return value.total_seconds()
    if not isinstance(value, str):
        return value
    found = _DURATION.fullmatch(value)
    if found is None:
        msg = (
            f"{field!r} must be a number of seconds or a duration such as"
            f" '250ms', '30s', '5m', '1h' (got {value!r})"
        )
        raise ConfigurationError(msg)
    return float(found[1]) * _UNITS[found[2]]


def _parse_fraction(value: object, field: str) -> object:
    if not isinstance(value, str):
        return value
    found = _FRACTION.fullmatch(value)
    if found is None:
        msg = f"{field!r} must be a number or a percentage such as '50%' (got {value!r})"
        raise ConfigurationError(msg)
    return float(found[1]) / 100


def _resolve(name: str, field: str) -> type[BaseException]:
    module, _, attr = name.rpartition(".")
    try:
        found = getattr(importlib.import_module(module or "builtins"), attr)
    except (ImportError, AttributeError):
        found = None
    if not (isinstance(found, type) and issubclass(found, BaseException)):
        msg = f"{field!r} names {name!r}, which is not an exception class"
        raise ConfigurationError(msg)
    return found


def _parse_exceptions(value: object, field: str) -> object:
    if isinstance(value, str):
        return _resolve(value, field)
    if isinstance(value, list):
        return tuple(
            _resolve(item, field) if isinstance(item, str) else item
            for item in value
        )
    return value


def _parse_window(value: object) -> object:
    if not isinstance(value, Mapping):
        return value
    window = dict(value)
    if "calls" in window:
        return CountWindow(window.pop("calls"), **window)
    if "length" in window:
        length = parse_duration(window.pop("length"), "window")
        return TimeWindow(length, **window)  # type: ignore[arg-type]  # checked by TimeWindow
    msg = (
        "'window' must be {'calls': N} or {'length': duration,"
        f" 'buckets': N}} (got {value!r})"
    )
    raise ConfigurationError(msg)


def parse_settings(kind: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """
    Return *settings* with the plain values of a configuration turned into
    what the primitive of *kind* takes: durations and percentages from
    strings, windows from dicts, exception classes from their dotted names.
    """
    parsed: dict[str, Any] = {}
    for field, given in settings.items():
        value = given
        if field in _DURATIONS or (
            kind == "retry_budget" and field == "window"
        ):
            value = parse_duration(value, field)
        elif field in _FRACTIONS:
            value = _parse_fraction(value, field)
        elif field in _EXCEPTIONS:
            value = _parse_exceptions(value, field)
        elif field == "window":
            value = _parse_window(value)
        parsed[field] = value
    return parsed


def _kind_name(kind: str | type[Any]) -> str:
    name = kind if isinstance(kind, str) else snake(kind.__name__)
    if name not in KINDS:
        msg = f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}"
        raise ConfigurationError(msg)
    return name


def _same(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    return left == right


@final
class Registry:
    """
    Named primitives, got or created by kind and name with shared defaults,
    and their health.

    ``registry.get(stalwart.CircuitBreaker, "payments")`` returns the
    breaker named ``payments``, built on first use from the registry's
    defaults for circuit breakers and the settings given.  Getting it
    again with no settings, or the same ones, returns the same object;
    with different settings it is an error that says what differs.

    Every primitive it builds gets the registry's *clock* (unless its
    settings name one) and its *hooks*.  Instruments (``instrument(registry)``
    of :mod:`stalwart.prometheus` or :mod:`stalwart.otel`) watch every
    primitive it holds, now and later.

    It is safe to share between threads: get-or-create is atomic.

    Args:
        defaults: Settings per kind, by class or by name
            (``"circuit_breaker"``, ``"retry"``, ``"token_bucket"``...).
        clock: The clock of every primitive built (the default clock
            otherwise).
        hooks: Hooks attached to every primitive built or registered.

    Raises:
        ConfigurationError: For an unknown kind.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self,
        defaults: Mapping[str | type[Any], Mapping[str, Any]] | None = None,
        *,
        clock: Clock | None = None,
        hooks: Hook | tuple[Hook, ...] | list[Hook] = (),
    ) -> None:
        self._defaults: dict[str, dict[str, Any]] = {}
        for kind, settings in (defaults or {}).items():
            name = _kind_name(kind)
            self._defaults[name] = parse_settings(name, settings)
        self._clock = clock
        self._hooks = to_hooks(hooks, "hooks")
        self._lock = threading.RLock()
        self._primitives: dict[tuple[str, str], Any] = {}
        self._settings: dict[tuple[str, str], dict[str, Any]] = {}
        self._subscribers: list[Callable[[Any], None]] = []

    @classmethod
    def from_dict(
        cls,
        config: Mapping[str, Any],
        *,
        clock: Clock | None = None,
        hooks: Hook | tuple[Hook, ...] | list[Hook] = (),
    ) -> Registry:
        """
        Build a registry and its primitives from plain data (parsed from
        TOML, YAML, JSON or the environment)::

            {
                "defaults": {"circuit_breaker": {"failure_rate": "50%",
                             "window": {"calls": 100}}},
                "circuit_breaker": {"payments": {"recovery_time": "2m"}},
                "retry": {"payments": {"attempts": 3}},
            }

        Durations are numbers of seconds or strings (``"250ms"``,
        ``"30s"``, ``"5m"``, ``"1h"``); rates are fractions or percentages
        (``"50%"``); a breaker's window is ``{"calls": N}`` or
        ``{"length": duration, "buckets": N}``; exception settings
        (``on``, ``failure_on``, ``ignore``) name classes by dotted path
        (``"ConnectionError"``, ``"httpx.TransportError"``); a limiter's
        ``rate`` is a string such as ``"100/minute"``.

        Raises:
            ConfigurationError: For an unknown kind or an invalid setting.

        .. versionadded:: 0.2.0
        """
        registry = cls(config.get("defaults"), clock=clock, hooks=hooks)
        for kind, primitives in config.items():
            if kind == "defaults":
                continue
            kind_name = _kind_name(kind)
            for name, settings in primitives.items():
                registry.get(kind_name, name, **settings)
        return registry

    def get(self, kind: type[P] | str, name: str, /, **settings: Any) -> P:
        """
        Return the primitive of *kind* named *name*, built on first use
        from the defaults of its kind and *settings*.

        Args:
            kind: The class (``stalwart.CircuitBreaker``) or its name in a
                configuration (``"circuit_breaker"``).
            name: The primitive's name.
            settings: Its settings, over the kind's defaults; values may be
                given as in :meth:`from_dict`.  A
                :class:`~stalwart.KeyedCircuitBreaker` takes the settings
                of its breakers, and *key_func*.

        Raises:
            ConfigurationError: If the name is taken with other settings
                (listing each difference), the kind is unknown, or a
                setting is invalid.

        .. versionadded:: 0.2.0
        """
        kind_name = _kind_name(kind)
        resolved = {
            **self._defaults.get(kind_name, {}),
            **parse_settings(kind_name, settings),
        }
        key = (kind_name, name)
        with self._lock:
            existing = self._primitives.get(key)
            if existing is not None:
                if settings:
                    self._check_same(key, resolved)
                return existing  # type: ignore[no-any-return]  # of that kind
            primitive = self._build(kind_name, name, resolved)
            self._primitives[key] = primitive
            self._settings[key] = resolved
            subscribers = list(self._subscribers)
        self._announce(primitive, subscribers)
        return primitive  # type: ignore[return-value]  # of that kind

    def _check_same(
        self, key: tuple[str, str], resolved: dict[str, Any]
    ) -> None:
        known = self._settings[key]
        differences = [
            f"{field}={known.get(field, '<default>')!r} (got"
            f" {resolved.get(field, '<default>')!r})"
            for field in sorted(set(known) | set(resolved))
            if not _same(known.get(field), resolved.get(field))
        ]
        if differences:
            kind, name = key
            msg = (
                f"{kind} {name!r} already exists with other settings: "
                + ", ".join(differences)
            )
            raise ConfigurationError(msg)

    def _build(self, kind: str, name: str, settings: dict[str, Any]) -> object:
        cls = KINDS[kind]
        settings = dict(settings)
        if self._clock is not None and kind != "keyed_circuit_breaker":
            settings.setdefault("clock", self._clock)
        if kind == "keyed_circuit_breaker":
            key_func = settings.pop("key_func", None)
            if self._clock is not None:
                settings.setdefault("clock", self._clock)
            template = CircuitBreaker(name=name, **settings)
            primitive: Any = cls(
                breaker=template, key_func=key_func, name=name
            )
        else:
            primitive = cls(name=name, **settings)
        self._attach(primitive)
        return primitive

    def _attach(self, primitive: object) -> None:
        """
        Attach the registry's hooks to *primitive* (to each stage of a
        pipeline), once: a primitive that has one already (held on its
        own and as a pipeline's stage) does not get it twice.
        """
        targets = (
            primitive.stages
            if isinstance(primitive, Pipeline)
            else (primitive,)
        )
        for target in targets:
            live = observable(target)
            if live is None:
                continue
            for hook in self._hooks:
                if hook not in live.all:
                    target.add_hook(hook)  # type: ignore[attr-defined]  # an Observable

    def register(self, primitive: P) -> P:
        """
        Hold *primitive* (built elsewhere: a pool, a buffer, a pipeline)
        under its kind and name, for the health report and the
        instruments; return it.  A :class:`~stalwart.Pipeline` is held as
        one entry: its health looks into its stages, the instruments watch
        each stage, and the registry's hooks go to each stage (once, for a
        stage the registry also holds).

        Raises:
            ConfigurationError: If another primitive of its kind holds the
                name.
            TypeError: If it has no ``name`` or no ``statistics()``.

        .. versionadded:: 0.2.0
        """
        name = getattr(primitive, "name", None)
        if not isinstance(name, str) or not callable(
            getattr(primitive, "statistics", None)
        ):
            msg = f"cannot register {primitive!r}: it needs a name and statistics()"
            raise TypeError(msg)
        key = (snake(type(primitive).__name__), name)
        with self._lock:
            existing = self._primitives.get(key)
            if existing is primitive:
                return primitive
            if existing is not None:
                msg = f"{key[0]} {name!r} is already registered"
                raise ConfigurationError(msg)
            self._primitives[key] = primitive
            subscribers = list(self._subscribers)
        self._attach(primitive)
        self._announce(primitive, subscribers)
        return primitive

    def _announce(
        self, primitive: object, subscribers: list[Callable[[Any], None]]
    ) -> None:
        for subscriber in subscribers:
            subscriber(primitive)

    def _subscribe(self, subscriber: Callable[[Any], None]) -> None:
        """
        Call *subscriber* with every primitive held, now and later (the
        instruments' way in).
        """
        with self._lock:
            self._subscribers.append(subscriber)
            primitives = list(self._primitives.values())
        for primitive in primitives:
            subscriber(primitive)

    def __iter__(self) -> Iterator[Any]:
        """
        Iterate over the primitives held, in the order they were created.
        """
        with self._lock:
            return iter(list(self._primitives.values()))

    def __len__(self) -> int:
        """
        Return how many primitives it holds.
        """
        return len(self._primitives)

    def health(self) -> dict[str, Any]:
        """
        Return a JSON-ready snapshot of every primitive and an overall
        status.

        Each primitive's entry is its statistics as plain data (see
        :meth:`~stalwart.Statistics.to_dict`) with a ``status``:
        ``"degraded"`` for a breaker open, half-open or forced open (for a
        keyed breaker, any of its keys), a bulkhead or a thread pool with
        every permit taken, a resource pool with every resource lent out,
        a pipeline with such a stage (each of its ``stages`` has a
        ``status`` too); ``"ok"`` otherwise.  The overall ``status`` is
        ``"degraded"`` when any primitive is.

        .. versionadded:: 0.2.0
        """
        entries = []
        for primitive in self:
            stats = primitive.statistics()
            if isinstance(stats, Statistics):
                data = stats.to_dict()
            else:  # a primitive from outside stalwart
                data = record_dict(stats)
                data.setdefault("name", primitive.name)
            data["status"] = (
                "degraded" if _degraded(primitive, stats) else "ok"
            )
            if isinstance(primitive, Pipeline):
                for key, bad in _stage_health(primitive, stats).items():
                    stage_data = data["stages"][key]
                    if isinstance(stage_data, dict):
                        stage_data["status"] = "degraded" if bad else "ok"
            entries.append(data)
        status = (
            "degraded"
            if any(entry["status"] == "degraded" for entry in entries)
            else "ok"
        )
        return {"status": status, "primitives": entries}


_BAD_STATES = frozenset({"open", "half_open", "forced_open"})


def _stage_health(pipeline: Pipeline, stats: Any) -> dict[str, bool]:
    """
    Tell, by stage key, whether each stage of *pipeline* that has
    statistics (its record in *stats*) is degraded.
    """
    return {
        key: _degraded(stage, record)
        for (key, record), stage in zip(
            stats.stages.items(), pipeline.stages, strict=True
        )
        if record is not None
    }


def _degraded(primitive: Any, stats: Any) -> bool:
    if isinstance(primitive, Pipeline):
        return any(_stage_health(primitive, stats).values())
    kind = record_kind(stats)
    if kind == "circuit_breaker":
        return stats.state.value in _BAD_STATES
    if kind == "keyed_circuit_breaker":
        return any(stats.states[state] for state in _BAD_STATES)
    if kind == "bulkhead":
        return stats.in_flight >= primitive.max_concurrent  # type: ignore[no-any-return]
    if kind == "adaptive_bulkhead":
        return stats.in_flight >= stats.limit  # type: ignore[no-any-return]
    if kind == "weighted_bulkhead":
        return stats.weight >= primitive.max_weight  # type: ignore[no-any-return]
    if kind == "thread_pool_bulkhead":
        return stats.running >= primitive.max_workers  # type: ignore[no-any-return]
    if kind == "resource_pool":
        return stats.in_use >= primitive.max_size  # type: ignore[no-any-return]
    return False
