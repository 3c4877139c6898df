"""
Shared converters and validators: messages name the field and the value.
"""

from __future__ import annotations

from datetime import timedelta

import attrs
import pytest

from stalwart import ConfigurationError
from stalwart._validators import (
    ExceptionFilter,
    collect,
    duration,
    exception_filter,
    finite,
    ge,
    hooks,
    integer,
    is_callable,
    le,
    non_empty_str,
    number,
    optional_duration,
    optional_seconds,
    positive,
    seconds,
    sync_callable,
    to_exception_filter,
    to_seconds,
    valid_clock,
    valid_exception_filter,
    valid_hooks,
)
from stalwart.testing import FakeClock


@attrs.frozen(kw_only=True)
class Config:
    wait: float = attrs.field(
        default=1.0, converter=seconds, validator=[duration, positive]
    )
    limit: float | None = attrs.field(
        default=None,
        converter=optional_seconds,
        validator=[optional_duration, ge(0), finite],
    )
    count: int = attrs.field(default=1, validator=[integer, positive])
    ratio: float = attrs.field(default=0.5, validator=[positive, le(1)])
    name: str = attrs.field(default="x", validator=non_empty_str)
    fn: object = attrs.field(default=None, validator=is_callable)
    on: ExceptionFilter = attrs.field(
        default=None,
        converter=exception_filter,
        validator=valid_exception_filter,
    )
    hooks: tuple[object, ...] = attrs.field(
        default=(), converter=hooks, validator=valid_hooks
    )
    predicate: object = attrs.field(default=None, validator=sync_callable)
    clock: object = attrs.field(factory=FakeClock, validator=valid_clock)
    amount: object = attrs.field(default=1, validator=[number, ge(0)])


async def _async_predicate(value: object) -> bool:
    """
    An async predicate: its coroutine is always truthy.
    """
    return False


class _AsyncHook:
    """
    A hook object whose __call__ is async.
    """

    async def __call__(self, event: object) -> None:
        """
        Never awaited by a primitive.
        """


class TestSeconds:
    def test_timedelta_converted(self):
        """
        A timedelta becomes a float number of seconds.
        """
        assert 90.0 == Config(wait=timedelta(minutes=1.5)).wait
        assert 2.0 == Config(limit=timedelta(seconds=2)).limit
        assert Config().limit is None

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (
                "1",
                "'wait' must be a number of seconds or a timedelta (got '1')",
            ),
            (
                True,
                "'wait' must be a number of seconds or a timedelta (got True)",
            ),
            (float("nan"), "'wait' must be a number, not NaN (got nan)"),
            (0, "'wait' must be > 0 (got 0.0)"),
            (
                None,
                "'wait' must be a number of seconds or a timedelta (got None)",
            ),
        ],
        ids=["str", "bool", "nan", "zero", "none"],
    )
    def test_bad_values(self, value, message):
        """
        Bad durations raise ConfigurationError naming field and value.
        """
        with pytest.raises(ConfigurationError) as info:
            Config(wait=value)

        assert message == str(info.value)

    def test_to_seconds_names_the_field(self):
        """
        The functional form converts or raises naming the given field.
        """
        assert 2.0 == to_seconds(2, "wait")
        with pytest.raises(
            ConfigurationError, match="^'delay' must be a number"
        ):
            to_seconds("2", "delay")

    def test_infinite_rejected_where_finite_required(self):
        """
        The finite validator refuses infinity.
        """
        with pytest.raises(ConfigurationError, match="'limit' must be finite"):
            Config(limit=float("inf"))


class TestNumbers:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"count": 1.5}, "'count' must be an int (got 1.5)"),
            ({"count": True}, "'count' must be an int (got True)"),
            ({"count": 0}, "'count' must be > 0 (got 0)"),
            ({"ratio": 1.5}, "'ratio' must be <= 1 (got 1.5)"),
            ({"ratio": "a"}, "'ratio' must be a number (got 'a')"),
            ({"name": ""}, "'name' must be a non-empty str (got '')"),
            ({"fn": 3}, "'fn' must be callable (got 3)"),
        ],
        ids=["float", "bool", "zero", "above", "str", "empty-name", "fn"],
    )
    def test_bad_values(self, kwargs, message):
        """
        Each validator names the field and shows the value.
        """
        with pytest.raises(ConfigurationError) as info:
            Config(**kwargs)

        assert message == str(info.value)

    def test_validator_repr(self):
        """
        Comparison validators have a readable repr.
        """
        assert "<validator >= 0>" == repr(ge(0))


class TestExceptionFilter:
    def test_type_and_tuple(self):
        """
        A type or a tuple of types matches instances of them.
        """
        single = to_exception_filter(KeyError, "on")
        pair = to_exception_filter((KeyError, OSError), "on")

        assert single.matches(KeyError())
        assert not single.matches(ValueError())
        assert pair.matches(ConnectionError())
        assert (KeyError, OSError) == pair.types

    def test_predicate(self):
        """
        A predicate decides by itself.
        """
        f = to_exception_filter(lambda e: "retry" in str(e), "on")

        assert f.matches(ValueError("please retry"))
        assert not f.matches(ValueError("no"))
        assert f

    def test_none_matches_nothing(self):
        """
        None converts to a filter that matches nothing and is falsy.
        """
        f = Config().on

        assert not f
        assert not f.matches(Exception())
        assert f is to_exception_filter(f, "on")

    @pytest.mark.parametrize(
        "value", [int, (KeyError, 3), 3], ids=["not-exc", "tuple", "int"]
    )
    def test_bad_specs(self, value):
        """
        Anything else is refused, naming the field.
        """
        with pytest.raises(
            ConfigurationError, match="^'on' must be an exception"
        ):
            Config(on=value)


class TestHooks:
    def test_single_and_iterable(self):
        """
        One hook or an iterable of hooks become a tuple.
        """
        assert (print,) == Config(hooks=print).hooks
        assert (print, len) == Config(hooks=[print, len]).hooks

    @pytest.mark.parametrize(
        "value", ["ab", [1], 3], ids=["str", "item", "int"]
    )
    def test_bad_hooks(self, value):
        """
        Non-callables are refused.
        """
        with pytest.raises(
            ConfigurationError, match="'hooks' must be an iterable"
        ):
            Config(hooks=value)


class TestCollect:
    def test_nothing(self):
        """
        No problems, no error.
        """
        collect([])

    def test_one(self):
        """
        One problem is raised as it is.
        """
        with pytest.raises(ConfigurationError) as info:
            collect(["'a' must be > 'b'"])

        assert "'a' must be > 'b'" == str(info.value)

    def test_many(self):
        """
        Several problems are listed in one error.
        """
        with pytest.raises(ConfigurationError) as info:
            collect(["first", "second"])

        assert "invalid configuration:\n- first\n- second" == str(info.value)


class TestAsyncCallablesRefused:
    @pytest.mark.parametrize(
        ("kwargs", "name"),
        [
            ({"predicate": _async_predicate}, "predicate"),
            ({"on": _async_predicate}, "on"),
            ({"hooks": _async_predicate}, "hooks"),
            ({"hooks": [print, _AsyncHook()]}, "hooks"),
        ],
        ids=["predicate", "exception-predicate", "hook", "hook-object"],
    )
    def test_refused_with_type_error(self, kwargs, name):
        """
        An async callable where a plain one is needed is a TypeError
        naming the field.
        """
        with pytest.raises(TypeError) as info:
            Config(**kwargs)

        assert str(info.value).startswith(
            f"{name!r} must be a plain (sync) callable, not an async one"
        )

    def test_plain_callables_accepted(self):
        """
        Plain predicates and hooks are accepted.
        """
        config = Config(predicate=bool, on=lambda e: True, hooks=print)

        assert (print,) == config.hooks


class TestClockAndNumber:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            (
                {"clock": object()},
                "'clock' must be a Clock (with now(), sleep() and asleep())",
            ),
            ({"amount": None}, "'amount' must be a number (got None)"),
            ({"amount": True}, "'amount' must be a number (got True)"),
        ],
        ids=["clock", "none", "bool"],
    )
    def test_refused(self, kwargs, message):
        """
        A clock without the Clock methods, and a missing number, are
        refused where the object is built.
        """
        with pytest.raises(ConfigurationError) as info:
            Config(**kwargs)

        assert str(info.value).startswith(message)

    def test_huge_int_seconds_refused(self):
        """
        An int too large for a float is refused as a duration, not an
        OverflowError.
        """
        with pytest.raises(ConfigurationError) as info:
            Config(wait=10**400)

        assert str(info.value).startswith(
            "'wait' must be a number of seconds that fits a float (got 1000"
        )

    def test_huge_ints_compared_exactly(self):
        """
        Comparison and finiteness checks take ints of any size without an
        OverflowError.
        """
        assert 10**400 == Config(count=10**400, amount=10**400).count
        with pytest.raises(ConfigurationError, match="'ratio' must be <= 1"):
            Config(ratio=10**400)
