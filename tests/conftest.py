"""
Fixtures shared by the whole suite.
"""

from __future__ import annotations

import asyncio
import os

from collections.abc import Callable
from typing import Any

import pytest

from hypothesis import HealthCheck, settings

from helpers import as_async
from stalwart.testing import FakeClock


settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(name="clock")
def _clock() -> FakeClock:
    """
    A fresh fake clock at t=0.
    """
    return FakeClock()


@pytest.fixture(name="invoke", params=["sync", "async"])
def _invoke(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """
    Run a primitive's call through its sync or its async face.

    ``invoke(primitive, fn, *args, **kwargs)`` calls ``primitive.call`` or
    awaits ``primitive.acall`` on an ``async def`` twin of *fn* in a fresh
    event loop.  Tests that use it run the same scenario on both faces.
    """
    if request.param == "sync":
        return lambda prim, fn, *args, **kwargs: prim.call(fn, *args, **kwargs)

    def run(
        prim: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Any:
        return asyncio.run(prim.acall(as_async(fn), *args, **kwargs))

    return run
