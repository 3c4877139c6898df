"""
What instrumentation costs per call (see ``peers_ops.py``): a closed
breaker's, a successful retry's, an unused fallback's and a draining
token bucket's decorator, plain and with a per-call hook, as ratios to the
plain call of ``test_baselines.py``; and the floor they are held to, one
hook call around the plain call: two clock reads, the event built (the
:class:`~stalwart.CallFinished` the primitives send, with their builder),
the hook called.  The budget: (per-call - plain) <= (floor - plain call).
"""

from __future__ import annotations

import pytest

import stalwart

from harness import batch, f
from peers_ops import floor


def _noop(event: object) -> None:
    """A per-call hook that does nothing."""


def test_one_hook_call(benchmark):
    """The floor: f(x) timed, its event built and handed to a hook."""
    one_hook_call, _ = floor()
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": one_hook_call, "x": 1}))


def test_one_guarded_hook_call(benchmark):
    """
    The guarded floor: the same, the event handed to the hook through
    ``emit([hook], event)`` (a hook's error logged and swallowed).
    """
    one_hook_call, _ = floor(guarded=True)
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": one_hook_call, "x": 1}))


@pytest.mark.parametrize("hooked", [False, True], ids=["plain", "per-call"])
@pytest.mark.parametrize("kind", ["breaker", "retry", "fallback", "limiter"])
def test_decorator(benchmark, kind, hooked):
    """A decorated call, with or without a per-call hook."""
    primitive: (
        stalwart.CircuitBreaker
        | stalwart.Retry
        | stalwart.Fallback
        | stalwart.TokenBucket
    )
    if kind == "breaker":
        primitive = stalwart.CircuitBreaker(name="bench")
    elif kind == "fallback":
        primitive = stalwart.Fallback(name="bench", value=0)
    elif kind == "limiter":
        primitive = stalwart.TokenBucket(
            name="bench", rate=(10**9, 3600.0), clock=stalwart.SystemClock()
        )
    else:
        primitive = stalwart.Retry(name="bench", wait=0)
    if hooked:
        primitive.add_hook(_noop, per_call=True)
    benchmark.extra_info["baseline"] = "test_plain_call"
    benchmark(batch("g(x)", {"g": primitive(f), "x": 1}))
