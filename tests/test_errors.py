"""
The exception tree: bases, attributes, messages and pickling.
"""

from __future__ import annotations

import pickle

import pytest

import stalwart

from stalwart import (
    BulkheadFullError,
    CircuitOpenError,
    ConfigurationError,
    RateLimitExceededError,
    RejectedError,
    ResilienceError,
    TimeoutExceededError,
)


REJECTIONS = [
    CircuitOpenError("payments", 1.5),
    BulkheadFullError("db", 10),
    RateLimitExceededError("api", 0.25),
    TimeoutExceededError("slow", 2.0),
]
IDS = ["circuit", "bulkhead", "rate", "timeout"]


class TestTree:
    def test_configuration_error_is_a_value_error(self):
        """
        ConfigurationError is a ResilienceError and a ValueError.
        """
        assert issubclass(ConfigurationError, ResilienceError)
        assert issubclass(ConfigurationError, ValueError)

    @pytest.mark.parametrize("error", REJECTIONS, ids=IDS)
    def test_rejections_derive_from_rejected_error(self, error):
        """
        Every refusal is a RejectedError carrying the primitive's name.
        """
        assert isinstance(error, RejectedError)
        assert isinstance(error, ResilienceError)
        assert error.name in str(error)

    def test_timeout_is_a_timeout_error(self):
        """
        TimeoutExceededError is caught by `except TimeoutError`.
        """
        with pytest.raises(TimeoutError):
            raise TimeoutExceededError("t", 1.0)

    def test_all_exported_flat(self):
        """
        The whole tree is importable from the top-level package.
        """
        for cls in (ResilienceError, ConfigurationError, RejectedError):
            assert getattr(stalwart, cls.__name__) is cls


class TestAttributes:
    def test_circuit_open(self):
        """
        CircuitOpenError carries name and retry_after, and says both.
        """
        err = CircuitOpenError("payments", 1.5)

        assert "payments" == err.name
        assert 1.5 == err.retry_after
        assert "circuit open by 'payments'; retry after 1.500s" == str(err)
        assert "CircuitOpenError('payments', 1.5)" == repr(err)

    def test_circuit_open_without_retry_after(self):
        """
        A forced-open breaker's error has no retry_after and does not
        promise one.
        """
        err = CircuitOpenError("payments")

        assert err.retry_after is None
        assert "circuit open by 'payments'" == str(err)

    def test_bulkhead_full(self):
        """
        BulkheadFullError carries max_concurrent.
        """
        err = BulkheadFullError("db", 10)

        assert 10 == err.max_concurrent
        assert err.retry_after is None
        assert "bulkhead full (10 concurrent) by 'db'" == str(err)

    def test_rate_limited(self):
        """
        RateLimitExceededError carries retry_after.
        """
        err = RateLimitExceededError("api", 0.25)

        assert 0.25 == err.retry_after
        assert "rate limit exceeded by 'api'; retry after 0.250s" == str(err)

    def test_timeout(self):
        """
        TimeoutExceededError carries the timeout.
        """
        err = TimeoutExceededError("slow", 2.0)

        assert 2.0 == err.timeout
        assert "timed out after 2s by 'slow'" == str(err)

    def test_plain_rejected(self):
        """
        The base class has a generic message.
        """
        assert "call rejected by 'x'" == str(RejectedError("x"))

    @pytest.mark.parametrize("error", REJECTIONS, ids=IDS)
    def test_pickle_round_trip(self, error):
        """
        Rejections survive pickling (multiprocessing, distributed tasks).
        """
        copy = pickle.loads(pickle.dumps(error))

        assert type(error) is type(copy)
        assert str(error) == str(copy)
        assert vars(error) == vars(copy)
