"""
Retry rows for ``compare_peers.py``: stalwart, hand-written floors, and
tenacity, stamina, backoff, pyresilience and hyx (async only), on the
success path and on one failure then success with a zero wait, sync and
async.

Success rows are ratios to a plain call (``plain`` / ``await``); failure
rows to a hand-written inline retry measured in the same rounds
(``inline retry`` / ``async inline retry``).  Two floors: a bare retry
loop, and one doing inline the per-call work of a default ``Retry`` (a
clock read as the call starts, since its time budget starts there).
"""

from __future__ import annotations

import asyncio
import time

from collections.abc import Callable
from typing import Any

from harness import (
    AINLINE_RETRY,
    INLINE_RETRY,
    Boom,
    Suite,
    af,
    aflaky,
    f,
    flaky,
)
from stalwart import RejectedError, Retry
from stalwart._deadline import _current


_monotonic = time.monotonic
_get_deadline = _current.get


SUCCESS = "retry, success on the first attempt"
FAILURE = "retry, one failure then success, zero wait"
INLINE = "inline retry"
AINLINE = "async inline retry"


def floor_retry(fn: Callable[..., Any], attempts: int = 3) -> Any:
    """A minimal hand-written retry decorator (no features)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        left = attempts
        while True:
            try:
                return fn(*args, **kwargs)
            except Boom:
                left -= 1
                if left <= 0:
                    raise

    return wrapper


def floor_retry_kept(fn: Callable[..., Any], attempts: int = 3) -> Any:
    """
    A hand-written retry doing, inline, the per-call work a default
    ``Retry`` must do: count calls and read the clock as the call starts
    (its time budget starts there); on a failure read the clock, the
    deadline context variable and the exception's ``retry_after``, tell a
    stalwart refusal apart, apply the stop rules and count the retry.
    """
    calls = retries = 0
    timeout, delay = 45.0, 0.0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls, retries
        calls += 1
        start = _monotonic()
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001  # judged below, as Retry does
            error = e
        attempt = 1
        while True:
            if isinstance(error, RejectedError) or not isinstance(error, Boom):
                raise error
            wait = getattr(error, "retry_after", None)
            if wait is None:
                wait = delay
            now = _monotonic()
            deadline = _get_deadline()
            if (
                attempt >= attempts
                or now - start + wait >= timeout
                or (deadline is not None and wait >= deadline.remaining())
            ):
                raise error
            retries += 1
            if wait > 0.0:
                time.sleep(wait)
            attempt += 1
            try:
                del error  # no frame <-> traceback cycle left to the GC
                return fn(*args, **kwargs)
            except Exception as e:  # noqa: BLE001  # judged above
                error = e

    return wrapper


def afloor_retry_kept(fn: Callable[..., Any], attempts: int = 3) -> Any:
    """The async twin of :func:`floor_retry_kept` (success path only)."""
    calls = 0

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        start = _monotonic()
        try:
            return await fn(*args, **kwargs)
        except Boom:
            if _monotonic() - start >= 45.0:
                raise
            return await fn(*args, **kwargs)

    return wrapper


def afloor_retry(fn: Callable[..., Any], attempts: int = 3) -> Any:
    """The async twin of :func:`floor_retry`."""

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        left = attempts
        while True:
            try:
                return await fn(*args, **kwargs)
            except Boom:
                left -= 1
                if left <= 0:
                    raise

    return wrapper


def rows(suite: Suite) -> None:
    """Add the retry rows (ours, floors, peers) to *suite*."""
    suite.add(
        FAILURE,
        INLINE,
        INLINE_RETRY,
        {"fl": flaky(), "Boom": Boom, "x": 1},
        kind="base",
    )
    suite.add(
        FAILURE,
        AINLINE,
        AINLINE_RETRY,
        {"fl": aflaky(), "Boom": Boom, "x": 1},
        is_async=True,
        kind="base",
    )

    makers: list[
        tuple[str, Callable[[Callable[..., Any]], Any], str, bool]
    ] = []

    def both(
        name: str,
        make: Callable[[Callable[..., Any]], Any],
        kind: str = "ours",
        *,
        sync: bool = True,
    ) -> None:
        """Register one retry decorator factory for every row."""
        makers.append((name, make, kind, sync))

    both(
        "stalwart Retry(attempts=3, on=Boom, wait=0)",
        Retry(attempts=3, on=Boom, wait=0),
    )
    both(
        "stalwart Retry(..., timeout=None)",
        Retry(attempts=3, on=Boom, wait=0, timeout=None),
    )
    both(
        "floor: hand-written retry",
        lambda fn: (
            afloor_retry(fn)
            if asyncio.iscoroutinefunction(fn)
            else floor_retry(fn)
        ),
        kind="floor",
    )

    try:
        import tenacity

        both(
            "tenacity retry(stop_after_attempt(3), wait_none())",
            tenacity.retry(
                stop=tenacity.stop_after_attempt(3),
                wait=tenacity.wait_none(),
                retry=tenacity.retry_if_exception_type(Boom),
            ),
            kind="peer",
        )
    except ImportError:
        suite.skipped.append(("tenacity", "not installed"))

    try:
        import stamina

        # Its default on-retry hook logs a WARNING per retry; switch hooks
        # off so the figure is the retry bookkeeping itself.
        stamina.instrumentation.set_on_retry_hooks([])
        both(
            "stamina retry(on=Boom, attempts=3, wait_*=0)",
            stamina.retry(
                on=Boom,
                attempts=3,
                wait_initial=0,
                wait_max=0,
                wait_jitter=0,
            ),
            kind="peer",
        )
    except ImportError:
        suite.skipped.append(("stamina", "not installed"))

    try:
        import backoff

        both(
            "backoff on_exception(constant, interval=0)",
            backoff.on_exception(
                backoff.constant,
                Boom,
                max_tries=3,
                interval=0,
                jitter=None,
                logger=None,
            ),
            kind="peer",
        )
    except ImportError:
        suite.skipped.append(("backoff", "not installed"))

    try:
        import pyresilience

        both(
            "pyresilience resilient(retry=RetryConfig(delay=0, jitter=False))",
            pyresilience.resilient(
                retry=pyresilience.RetryConfig(
                    max_attempts=3, delay=0.0, jitter=False, retry_on=(Boom,)
                )
            ),
            kind="peer",
        )
    except ImportError:
        suite.skipped.append(("pyresilience", "not installed"))

    try:
        from hyx.retry import retry as hyx_retry

        both(
            "hyx retry(on=Boom, attempts=3, backoff=0)",
            hyx_retry(on=Boom, attempts=3, backoff=0),
            kind="peer",
            sync=False,
        )
    except ImportError:
        suite.skipped.append(("hyx", "not installed"))

    # Row names are unique across sections: ratios are keyed by name.
    for name, make, kind, sync in makers:
        if sync:
            suite.add(SUCCESS, name, "g(x)", {"g": make(f), "x": 1}, kind=kind)
        suite.add(
            SUCCESS,
            f"{name} async",
            "await g(x)",
            {"g": make(af), "x": 1},
            is_async=True,
            kind=kind,
        )
    for name, make, kind, sync in makers:
        if sync:
            suite.add(
                FAILURE,
                f"{name} [1 failure]",
                "g(x)",
                {"g": make(flaky()), "x": 1},
                baseline=INLINE,
                kind=kind,
            )
        suite.add(
            FAILURE,
            f"{name} [1 failure] async",
            "await g(x)",
            {"g": make(aflaky()), "x": 1},
            is_async=True,
            baseline=AINLINE,
            kind=kind,
        )
    kept = "floor: hand-written retry, with a default Retry's work"
    suite.add(
        SUCCESS, kept, "g(x)", {"g": floor_retry_kept(f), "x": 1}, kind="floor"
    )
    suite.add(
        SUCCESS,
        f"{kept} async",
        "await g(x)",
        {"g": afloor_retry_kept(af), "x": 1},
        is_async=True,
        kind="floor",
    )
    retry = Retry(attempts=3, on=Boom, wait=0)
    suite.add(
        SUCCESS,
        "stalwart Retry(...).call(f, x)",
        "r.call(f, x)",
        {"r": retry, "f": f, "x": 1},
    )
    suite.add(
        SUCCESS,
        "stalwart await Retry(...).acall(af, x)",
        "await r.acall(af, x)",
        {"r": retry, "af": af, "x": 1},
        is_async=True,
    )
    suite.add(
        FAILURE,
        f"{kept} [1 failure]",
        "g(x)",
        {"g": floor_retry_kept(flaky()), "x": 1},
        baseline=INLINE,
        kind="floor",
    )
