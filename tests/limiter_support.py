"""
What the rate limiters' tests share: every limiter class, and their ids.
"""

from __future__ import annotations

from stalwart import (
    GCRA,
    FixedWindow,
    LeakyBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)


ALL = [
    TokenBucket,
    GCRA,
    LeakyBucket,
    FixedWindow,
    SlidingWindowLog,
    SlidingWindowCounter,
]
"""Every rate limiter class, for parametrized tests."""

IDS = [cls.__name__ for cls in ALL]
"""Their test ids."""
