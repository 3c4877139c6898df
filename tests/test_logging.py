"""
LoggingHook: one readable line per event, its fields in ``extra=``, at the
level a person would pick; read back through the standard library's
logging (text and a JSON formatter) and through structlog.
"""

from __future__ import annotations

import json
import logging

import pytest

import stalwart

from stalwart import (
    CallFinished,
    CallRejected,
    CircuitOpenError,
    CircuitState,
    Event,
    LoggingHook,
    RejectedError,
)
from stalwart._events import event_fields, event_kind, event_level
from stalwart.testing import FakeClock


# The attributes every LogRecord has: no field may shadow one.
RECORD_ATTRIBUTES = set(
    vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", (), None))
) | {"message", "asctime"}


class ListHandler(logging.Handler):
    """
    Keep every record handled.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class JsonFormatter(logging.Formatter):
    """
    A structured formatter as log shippers use: the message, the level and
    every extra field, as one JSON object built from ``record.__dict__``.
    """

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "message": record.getMessage(),
            "level": record.levelname,
            "logger": record.name,
        }
        data.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in RECORD_ATTRIBUTES
        )
        return json.dumps(data)


@pytest.fixture(name="logged")
def _logged():
    """
    A fresh logger at DEBUG with a handler keeping its records.
    """
    logger = logging.getLogger(f"test.stalwart.{id(object())}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = ListHandler()
    logger.addHandler(handler)
    yield logger, handler.records
    logger.removeHandler(handler)


def scenario(logger: logging.Logger) -> FakeClock:
    """
    A breaker that opens after two failures and refuses the next call.
    """
    clock = FakeClock()
    breaker = stalwart.CircuitBreaker(
        name="payments",
        failure_threshold=2,
        recovery_time=30,
        clock=clock,
        hooks=[LoggingHook(logger)],
    )
    for _ in range(2):
        with pytest.raises(ConnectionError):
            breaker.call(_fail)
    clock.advance(10)
    with pytest.raises(CircuitOpenError):
        breaker.call(_ok)
    return clock


def _fail() -> None:
    raise ConnectionError("refused")


def _ok() -> str:
    return "ok"


class TestText:
    def test_lines_read_as_sentences(self, logged):
        """
        The transition and the refusal read as one sentence each.
        """
        logger, records = logged
        scenario(logger)

        assert [
            "circuit_breaker 'payments' opened (closed -> open) for 30s",
            (
                "circuit_breaker 'payments' rejected a call: circuit open;"
                " retry after 20s"
            ),
        ] == [r.getMessage() for r in records]

    def test_levels(self, logged):
        """
        Opening and refusing log at WARNING.
        """
        logger, records = logged
        scenario(logger)

        assert [logging.WARNING, logging.WARNING] == [
            r.levelno for r in records
        ]

    def test_below_the_level_nothing_is_built(self, logged):
        """
        An event below the logger's level logs nothing.
        """
        logger, records = logged
        logger.setLevel(logging.ERROR)
        scenario(logger)

        assert [] == records


class TestFields:
    def test_extra_fields(self, logged):
        """
        The refusal carries kind, name, event and retry_after as fields.
        """
        logger, records = logged
        scenario(logger)
        refusal = records[1]

        assert "circuit_breaker" == refusal.stalwart_primitive
        assert "payments" == refusal.stalwart_name
        assert "call_rejected" == refusal.stalwart_event
        assert 20.0 == refusal.stalwart_retry_after
        assert "test.stalwart" in refusal.name  # the logger's own name

    def test_no_field_shadows_a_record_attribute(self):
        """
        Every field starts with stalwart_ and none is a LogRecord
        attribute.
        """
        events = [
            stalwart.CircuitOpened(
                primitive_name="p",
                at=1.0,
                previous=CircuitState.CLOSED,
                state=CircuitState.OPEN,
                recovery_time=3.0,
            ),
            stalwart.RetryScheduled(
                primitive_name="p",
                at=1.0,
                attempt=1,
                wait=0.5,
                caused_by=OSError(),
            ),
            CallFinished(
                primitive_name="p",
                at=1.0,
                primitive="retry",
                outcome="failure",
                duration=2.0,
                error=OSError("x"),
                attempts=3,
            ),
        ]

        for event in events:
            fields = event_fields(event)

            assert all(key.startswith("stalwart_") for key in fields)
            assert set() == set(fields) & RECORD_ATTRIBUTES

    def test_other_values_as_strings(self):
        """
        A field holding another kind of object is logged as its str.
        """
        import attrs as attrs_

        @attrs_.frozen(kw_only=True)
        class Odd(Event):
            thing: object

        assert (
            "{1, 2}"
            == event_fields(Odd(primitive_name="p", at=0.0, thing={1, 2}))[
                "stalwart_thing"
            ]
        )

    def test_json_formatter_gets_fields_not_a_repr(self, logged):
        """
        A JSON formatter built from record.__dict__ emits every field as a
        JSON value: states as strings, durations as numbers.
        """
        logger, records = logged
        scenario(logger)
        formatter = JsonFormatter()
        lines = [json.loads(formatter.format(r)) for r in records]

        assert {
            "message": "circuit_breaker 'payments' opened (closed -> open)"
            " for 30s",
            "level": "WARNING",
            "logger": logger.name,
            "stalwart_primitive": "circuit_breaker",
            "stalwart_name": "payments",
            "stalwart_event": "circuit_opened",
            "stalwart_at": 0.0,
            "stalwart_previous_state": "closed",
            "stalwart_state": "open",
            "stalwart_recovery_time": 30.0,
        } == lines[0]
        assert (
            "CircuitOpenError('payments', 20.0)" == lines[1]["stalwart_error"]
        )


class TestStructlog:
    def test_stdlib_integration_renders_fields(self, logged):
        """
        structlog's ProcessorFormatter with ExtraAdder renders the fields
        of the standard library's record as JSON keys.
        """
        structlog = pytest.importorskip("structlog")
        logger, records = logged
        scenario(logger)
        formatter = structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ExtraAdder(),
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(sort_keys=True),
            ]
        )
        line = json.loads(formatter.format(records[1]))
        # Set on the record by whichever handler formatted it first.
        line.pop("message", None)

        assert {
            "event": "circuit_breaker 'payments' rejected a call: circuit"
            " open; retry after 20s",
            "stalwart_at": 10.0,
            "stalwart_error": "CircuitOpenError('payments', 20.0)",
            "stalwart_event": "call_rejected",
            "stalwart_name": "payments",
            "stalwart_primitive": "circuit_breaker",
            "stalwart_retry_after": 20.0,
        } == line


class TestLevels:
    @pytest.mark.parametrize(
        ("event", "level"),
        [
            (
                CallRejected(
                    primitive_name="p", at=0.0, error=RejectedError("p")
                ),
                logging.WARNING,
            ),
            (
                stalwart.RetryGaveUp(
                    primitive_name="p",
                    at=0.0,
                    attempt=3,
                    reason="attempts",
                    caused_by=OSError(),
                ),
                logging.WARNING,
            ),
            (
                stalwart.CircuitStateChanged(
                    primitive_name="p",
                    at=0.0,
                    previous=CircuitState.CLOSED,
                    state=CircuitState.FORCED_OPEN,
                ),
                logging.WARNING,
            ),
            (
                stalwart.CircuitHalfOpened(
                    primitive_name="p",
                    at=0.0,
                    previous=CircuitState.OPEN,
                    state=CircuitState.HALF_OPEN,
                ),
                logging.INFO,
            ),
            (
                stalwart.RetryScheduled(
                    primitive_name="p",
                    at=0.0,
                    attempt=1,
                    wait=1.0,
                    caused_by=None,
                ),
                logging.INFO,
            ),
            (
                stalwart.TimeoutExceeded(
                    primitive_name="p", at=0.0, timeout=1
                ),
                logging.WARNING,
            ),
            (
                stalwart.ItemDropped(
                    primitive_name="p", at=0.0, item=1, policy="drop_oldest"
                ),
                logging.WARNING,
            ),
            (
                CallFinished(
                    primitive_name="p",
                    at=0.0,
                    primitive="circuit_breaker",
                    outcome="success",
                    duration=0.1,
                ),
                logging.DEBUG,
            ),
            (
                CallFinished(
                    primitive_name="p",
                    at=0.0,
                    primitive="circuit_breaker",
                    outcome="failure",
                    duration=0.1,
                ),
                logging.INFO,
            ),
            (
                stalwart.ResourceClosed(
                    primitive_name="p", at=0.0, resource=1, reason="broken"
                ),
                logging.INFO,
            ),
            (
                stalwart.ResourceClosed(
                    primitive_name="p", at=0.0, resource=1, reason="idle"
                ),
                logging.DEBUG,
            ),
            (
                stalwart.ResourceCreated(
                    primitive_name="p", at=0.0, resource=1
                ),
                logging.DEBUG,
            ),
            (
                stalwart.CallAdmitted(
                    primitive_name="p", at=0.0, primitive="bulkhead", wait=0.5
                ),
                logging.DEBUG,
            ),
            (
                stalwart.FallbackUsed(
                    primitive_name="p", at=0.0, error=None, result=1
                ),
                logging.INFO,
            ),
            (Event(primitive_name="p", at=0.0), logging.INFO),
        ],
        ids=lambda value: getattr(type(value), "__name__", str(value)),
    )
    def test_level(self, event, level):
        """
        Each event logs at the level a person would pick.
        """
        assert level == event_level(event)


class TestMessages:
    @pytest.mark.parametrize(
        ("event", "message"),
        [
            (
                stalwart.RetryScheduled(
                    primitive_name="r",
                    at=0.0,
                    attempt=1,
                    wait=0.5,
                    caused_by=OSError("x"),
                ),
                "retry 'r' retries after attempt 1 in 0.5s (OSError('x'))",
            ),
            (
                stalwart.RetryBudgetExhausted(
                    primitive_name="r",
                    at=0.0,
                    attempt=2,
                    reason="budget",
                    caused_by=None,
                    budget_name="b",
                ),
                (
                    "retry 'r' gave up after attempt 2 (budget): a rejected"
                    " result"
                ),
            ),
            (
                stalwart.CircuitClosed(
                    primitive_name="c",
                    at=0.0,
                    previous=CircuitState.HALF_OPEN,
                    state=CircuitState.CLOSED,
                ),
                "circuit_breaker 'c' went half_open -> closed",
            ),
            (
                CallFinished(
                    primitive_name="r",
                    at=0.0,
                    primitive="retry",
                    outcome="failure",
                    duration=1.5,
                    error=OSError("x"),
                    attempts=3,
                ),
                (
                    "retry 'r' call ended: failure in 1.5s after 3 attempts"
                    " (OSError('x'))"
                ),
            ),
            (
                CallFinished(
                    primitive_name="c",
                    at=0.0,
                    primitive="circuit_breaker",
                    outcome="success",
                    duration=None,
                ),
                "circuit_breaker 'c' call ended: success",
            ),
            (
                stalwart.CallAdmitted(
                    primitive_name="b", at=0.0, primitive="bulkhead", wait=0.25
                ),
                "bulkhead 'b' admitted a call after 0.25s",
            ),
            (
                stalwart.TimeoutExceeded(
                    primitive_name="t", at=0.0, timeout=2
                ),
                "timeout 't' gave up on a call after 2s",
            ),
            (
                stalwart.FallbackUsed(
                    primitive_name="f",
                    at=0.0,
                    error=KeyError("k"),
                    result=None,
                ),
                "fallback 'f' replaced the outcome of a call (KeyError('k'))",
            ),
            (
                stalwart.FallbackUsed(
                    primitive_name="f", at=0.0, error=None, result=0
                ),
                (
                    "fallback 'f' replaced the outcome of a call (a rejected"
                    " result)"
                ),
            ),
            (
                stalwart.ChaosInjected(
                    primitive_name="x",
                    at=0.0,
                    call_number=3,
                    kinds=("latency", "fault"),
                    fault=OSError(),
                    result=None,
                    latency=1.0,
                ),
                "chaos 'x' injected latency+fault into call 3",
            ),
            (
                stalwart.ItemDropped(
                    primitive_name="q", at=0.0, item=1, policy="drop_oldest"
                ),
                "bounded_buffer 'q' dropped an item (drop_oldest)",
            ),
            (
                stalwart.ResourceCreated(
                    primitive_name="p", at=0.0, resource=1
                ),
                "resource_pool 'p' created a resource",
            ),
            (
                stalwart.ResourceClosed(
                    primitive_name="p", at=0.0, resource=1, reason="idle"
                ),
                "resource_pool 'p' closed a resource (idle)",
            ),
            (
                CallRejected(
                    primitive_name="b",
                    at=0.0,
                    error=stalwart.BulkheadFullError("b", 3),
                ),
                "bulkhead 'b' rejected a call: bulkhead full (3 concurrent)",
            ),
            (
                Event(primitive_name="p", at=0.0),
                "primitive 'p': Event",
            ),
        ],
        ids=lambda value: getattr(type(value), "__name__", str(value)),
    )
    def test_message(self, event, message, logged):
        """
        Each event reads as one sentence naming its primitive.
        """
        logger, records = logged
        LoggingHook(logger)(event)

        assert message == records[0].getMessage()

    def test_kind_of_an_unknown_refusal(self):
        """
        A refusal by an error stalwart does not know names no kind.
        """
        event = CallRejected(
            primitive_name="p", at=0.0, error=RejectedError("p")
        )

        assert "primitive" == event_kind(event)


class TestPerCall:
    def test_per_call_lines(self, logged):
        """
        LoggingHook(per_call=True) also logs each call's end, at DEBUG
        for a success and INFO for a failure, with its duration.
        """
        logger, records = logged
        clock = FakeClock()
        breaker = stalwart.CircuitBreaker(
            name="db", clock=clock, hooks=[LoggingHook(logger, per_call=True)]
        )

        @breaker
        def slow() -> None:
            clock.advance(0.25)

        slow()
        with pytest.raises(ConnectionError):
            breaker.call(_fail)

        assert [
            (
                logging.DEBUG,
                "circuit_breaker 'db' call ended: success in 0.25s",
            ),
            (
                logging.INFO,
                (
                    "circuit_breaker 'db' call ended: failure in 0s"
                    " (ConnectionError('refused'))"
                ),
            ),
        ] == [(r.levelno, r.getMessage()) for r in records]
        assert 0.25 == records[0].stalwart_duration
        assert "success" == records[0].stalwart_outcome

    def test_default_is_off(self, logged):
        """
        A plain LoggingHook logs no per-call line.
        """
        logger, records = logged
        breaker = stalwart.CircuitBreaker(hooks=[LoggingHook(logger)])
        breaker.call(_ok)

        assert [] == records
