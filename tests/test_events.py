"""
Events, hooks, and hook isolation.
"""

from __future__ import annotations

import logging

import attrs
import pytest

from stalwart import CallRejected, Event, LoggingHook, RejectedError
from stalwart._events import emit


class TestEmit:
    def test_hooks_receive_events_in_order(self):
        """
        Every hook receives the event.
        """
        seen: list[tuple[str, Event]] = []
        event = Event(primitive_name="p", at=1.0)

        emit(
            [lambda e: seen.append(("a", e)), lambda e: seen.append(("b", e))],
            event,
        )

        assert [("a", event), ("b", event)] == seen

    def test_failing_hook_is_logged_and_isolated(self, caplog):
        """
        A hook that raises is logged on 'stalwart'; later hooks still run.
        """
        seen: list[Event] = []

        def bad(event: Event) -> None:
            raise RuntimeError("hook bug")

        with caplog.at_level(logging.ERROR, logger="stalwart"):
            emit([bad, seen.append], Event(primitive_name="p", at=0.0))

        assert 1 == len(seen)
        assert "hook" in caplog.records[0].getMessage()
        assert "stalwart" == caplog.records[0].name

    def test_events_are_frozen(self):
        """
        Event records cannot be changed by a hook.
        """
        event = Event(primitive_name="p", at=0.0)

        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            event.at = 1.0  # type: ignore[misc]


class TestLoggingHook:
    def test_levels(self, caplog):
        """
        Rejections log at WARNING, other events at INFO.
        """
        hook = LoggingHook()
        with caplog.at_level(logging.INFO, logger="stalwart"):
            hook(Event(primitive_name="p", at=0.0))
            hook(
                CallRejected(
                    primitive_name="p", at=0.0, error=RejectedError("p")
                )
            )

        assert [logging.INFO, logging.WARNING] == [
            r.levelno for r in caplog.records
        ]
        assert "primitive_name='p'" in caplog.records[0].getMessage()
