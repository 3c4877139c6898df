"""
Test doubles shared by the retry tests (importable as ``retry_support``).
"""

from __future__ import annotations

from typing import Any

from stalwart.testing import FakeClock


class Flaky:
    """
    Produce the given outcomes in turn (raising exceptions, returning
    anything else), then return ``"ok"``; each call may take fake time.
    """

    def __init__(
        self,
        *outcomes: object,
        clock: FakeClock | None = None,
        takes: float = 0.0,
    ) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.args: list[tuple[Any, ...]] = []
        self.clock = clock
        self.takes = takes

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.args.append((args, kwargs))
        if self.clock is not None and self.takes:
            self.clock.advance(self.takes)
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        return "ok"
