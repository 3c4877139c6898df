"""
What instrumentation costs: a closed breaker, a successful retry, a
fallback that is not used, a draining token bucket, a bulkhead with room
and a timeout that does not fire, plain, with a hook
that asks for per-call events and does nothing (the cost of timing each
call and building its event), and with the Prometheus listener of
``stalwart.prometheus`` (one histogram observation per call), as ratios to
a plain call sampled in the same rounds.

The budget (issue #17): the instrumented hot path costs at most one hook
call more than the plain one.  "One hook call" is the floor row: what a
per-call hook costs at the least, written by hand around ``f(x)``: read
the clock twice (the call's duration), build the event the hook receives
(the :class:`~stalwart.CallFinished` the primitives send, with the same
builder they use) and call the hook.  The summary after the tables gives,
per primitive, (no-op hook row - plain row) / (floor row - plain call),
the median of the per-round ratios: at most 1.00 meets the budget.  It
gives the same against a second floor, "one guarded hook call": the event
handed to the hook through ``emit([hook], event)``, what stalwart's hook
contract costs (a hook's error is logged and swallowed; a hook removed
meanwhile never makes another miss the event).

The plain rows are the same statements as ``peers_breaker.py`` and
``peers_retry.py``'s: instrumentation must leave them as they were.
"""

from __future__ import annotations

import statistics

from collections.abc import Awaitable, Callable
from typing import Any

from harness import Suite, af, f


_KINDS = ("breaker", "retry", "fallback", "limiter", "bulkhead", "timeout")
_FLOOR = "one hook call (the floor)"
_GUARDED = "one guarded hook call (the hook contract)"


def _noop(event: object) -> None:
    """A per-call hook that does nothing."""


def floor(
    *, guarded: bool = False
) -> tuple[Callable[[int], int], Callable[[int], Awaitable[int]]]:
    """
    ``f(x)`` and ``await af(x)`` plus one hook call: two clock reads, the
    event built, the hook called; *guarded*, handed to the hook through
    ``emit([hook], event)`` (the hook contract: a hook's error is logged
    and swallowed, a hook removed meanwhile never makes another miss the
    event) instead of called directly.
    """
    import stalwart

    from stalwart._events import call_finished, emit

    clock = stalwart.SystemClock()
    if guarded:
        hooks = [_noop]  # a list, as a primitive's live hooks were

        def one_hook_call(x: int) -> int:
            began = clock.now()
            result = f(x)
            end = clock.now()
            emit(
                hooks,
                call_finished("bench", end, "retry", "success", end - began),
            )
            return result

        async def aone_hook_call(x: int) -> int:
            began = clock.now()
            result = await af(x)
            end = clock.now()
            emit(
                hooks,
                call_finished("bench", end, "retry", "success", end - began),
            )
            return result

        return one_hook_call, aone_hook_call
    hook = _noop

    def one_hook_call(x: int) -> int:
        began = clock.now()
        result = f(x)
        end = clock.now()
        hook(call_finished("bench", end, "retry", "success", end - began))
        return result

    async def aone_hook_call(x: int) -> int:
        began = clock.now()
        result = await af(x)
        end = clock.now()
        hook(call_finished("bench", end, "retry", "success", end - began))
        return result

    return one_hook_call, aone_hook_call


def _instrumented(kind: str) -> list[tuple[str, Any]]:
    import stalwart

    def build() -> Any:
        if kind == "breaker":
            return stalwart.CircuitBreaker(name="bench")
        if kind == "fallback":
            return stalwart.Fallback(name="bench", value=0)
        if kind == "bulkhead":
            return stalwart.Bulkhead(name="bench", max_concurrent=8)
        if kind == "timeout":
            return stalwart.Timeout(name="bench", seconds=60.0)
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


def _extra(suite: Suite, name: str, base: str) -> list[float]:
    """Row *name*'s samples less row *base*'s, round by round."""
    return [
        s - b
        for s, b in zip(
            suite.row(name).samples, suite.row(base).samples, strict=True
        )
    ]


def _summary(suite: Suite) -> str:
    """
    Each primitive's extra cost with a no-op per-call hook, against the
    floor's and the guarded floor's, per round (the median of the rounds).
    """
    lines = [
        "",
        "### instrumentation: extra cost of a per-call hook, against the floor",
        "",
        (
            "| primitive | face | extra ns/call | floor ns/call | extra / floor"
            " | guarded floor ns/call | extra / guarded floor |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for face, base in (("sync", "plain"), ("async", "await")):
        suffix = "" if face == "sync" else " async"
        floors = _extra(suite, f"{_FLOOR}{suffix}", base)
        guarded = _extra(suite, f"{_GUARDED}{suffix}", base)
        for kind in _KINDS:
            try:
                plain = suite.row(f"{kind} decorator{suffix}, plain")
                noop = suite.row(
                    f"{kind} decorator{suffix}, no-op per-call hook"
                )
            except StopIteration:  # a row skipped
                continue
            extra = [
                n - p for n, p in zip(noop.samples, plain.samples, strict=True)
            ]
            ratio = statistics.median(
                e / fl for e, fl in zip(extra, floors, strict=True)
            )
            gratio = statistics.median(
                e / fl for e, fl in zip(extra, guarded, strict=True)
            )
            lines.append(
                f"| {kind} | {face} | {statistics.median(extra):,.0f} |"
                f" {statistics.median(floors):,.0f} | {ratio:.2f} |"
                f" {statistics.median(guarded):,.0f} | {gratio:.2f} |"
            )
    return "\n".join(lines)


def rows(suite: Suite) -> None:
    """Add the instrumentation rows to *suite*."""
    for name, guarded in ((_FLOOR, False), (_GUARDED, True)):
        one_hook_call, aone_hook_call = floor(guarded=guarded)
        suite.add(
            "instrumentation", name, "g(x)", {"g": one_hook_call, "x": 1}
        )
        suite.add(
            "instrumentation",
            f"{name} async",
            "await g(x)",
            {"g": aone_hook_call, "x": 1},
            is_async=True,
        )
    for kind in _KINDS:
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
    suite.summaries.append(_summary)
