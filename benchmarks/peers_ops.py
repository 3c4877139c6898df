"""
What instrumentation costs: a closed breaker, a successful retry, a
fallback that is not used and a draining token bucket, plain, with a hook that asks for per-call events and does nothing (the
cost of timing each call and building its event), and with the Prometheus
listener of ``stalwart.prometheus`` (one histogram observation per call),
as ratios to a plain call sampled in the same rounds.

The plain rows are the same statements as ``peers_breaker.py`` and
``peers_retry.py``'s: instrumentation must leave them as they were.
"""

from __future__ import annotations

from typing import Any

from harness import Suite, af, f


def _noop(event: object) -> None:
    """A per-call hook that does nothing."""


def _instrumented(kind: str) -> list[tuple[str, Any]]:
    import stalwart

    def build() -> Any:
        if kind == "breaker":
            return stalwart.CircuitBreaker(name="bench")
        if kind == "fallback":
            return stalwart.Fallback(name="bench", value=0)
        if kind == "limiter":
            return stalwart.TokenBucket(
                name="bench",
                rate=(10**9, 3600.0),
                clock=stalwart.SystemClock(),
            )
        return stalwart.Retry(name="bench", attempts=3, wait=0)

    plain = build()
    noop = build()
    noop.add_hook(_noop, per_call=True)
    rows = [("plain", plain), ("no-op per-call hook", noop)]
    try:
        from prometheus_client import CollectorRegistry

        from stalwart.prometheus import instrument
    except ImportError:  # the extra is not installed
        return rows
    prom = build()
    instrument(prom, registry=CollectorRegistry())
    rows.append(("Prometheus", prom))
    return rows


def rows(suite: Suite) -> None:
    """Add the instrumentation rows to *suite*."""
    for kind in ("breaker", "retry", "fallback", "limiter"):
        for label, primitive in _instrumented(kind):
            suite.add(
                "instrumentation",
                f"{kind} decorator, {label}",
                "g(x)",
                {"g": primitive(f), "x": 1},
            )
            suite.add(
                "instrumentation",
                f"{kind} decorator async, {label}",
                "await g(x)",
                {"g": primitive(af), "x": 1},
                is_async=True,
            )
