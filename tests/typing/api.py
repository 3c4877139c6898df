"""
User-side code checked by ``mypy --strict`` (never executed).

Each block uses the public API the way a user would; a regression in the
library's annotations makes mypy fail here.
"""

from __future__ import annotations

from datetime import timedelta

from typing_extensions import assert_type

import stalwart

from stalwart.testing import FakeClock, use_clock


def clocks() -> None:
    clock: stalwart.Clock = FakeClock()
    assert_type(clock.now(), float)
    system: stalwart.Clock = stalwart.SystemClock()
    system.sleep(0.0)
    with use_clock(FakeClock()) as fake:
        assert_type(fake, stalwart.Clock)
    deadline = stalwart.current_deadline()
    if deadline is not None:
        assert_type(deadline.remaining(), float)
    assert_type(stalwart.remaining_time(), float | None)
    _ = timedelta(seconds=1)


def errors(error: stalwart.RejectedError) -> None:
    assert_type(error.name, str)
    assert_type(error.retry_after, float | None)
    if isinstance(error, stalwart.BulkheadFullError):
        assert_type(error.max_concurrent, int)
    if isinstance(error, stalwart.TimeoutExceededError):
        assert_type(error.timeout, float)
