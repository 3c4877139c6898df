"""
A pipeline in front of a flaky inventory service: a fallback, a total
timeout, a retry, a rate limiter and a circuit breaker, in the recommended
order, built once and used from sync and async code.

The service (played by a ``Chaos`` stage, innermost) fails every call
between t=2 s and t=40 s.  Watch the retry wait out the open breaker as
long as it says, give up on a wait that the total timeout (12 s a call)
leaves no time for, the fallback answer for what is left, and every
event say which pipeline it came from.

Time is a FakeClock, so this runs instantly and prints the same story
every time.  Run it: ``python examples/pipeline.py``.
"""

from __future__ import annotations

import asyncio

import stalwart

from stalwart.testing import FakeClock


clock = FakeClock()


def narrate(event: stalwart.Event) -> None:
    """Print what the stages decide, with the pipeline they ran in."""
    if isinstance(event, stalwart.RetryScheduled):
        what = f"retry in {event.wait:.1f}s"
    elif isinstance(event, stalwart.RetryGaveUp):
        what = f"retry gave up ({event.reason})"
    elif isinstance(event, stalwart.CircuitStateChanged):
        what = f"breaker {event.previous.value} -> {event.state.value}"
    elif isinstance(event, stalwart.FallbackUsed):
        what = "answered from the cache"
    else:
        return
    print(f"    t={event.at:5.1f}s [{event.pipeline}] {what}")


inventory = stalwart.Pipeline(
    stalwart.Fallback(
        value="unknown (cached)", name="cache", clock=clock, hooks=narrate
    ),
    stalwart.Timeout(seconds=12.0, name="total", clock=clock),
    stalwart.Retry(
        name="retry",
        attempts=5,
        on=ConnectionError,
        wait=1.0,
        clock=clock,
        hooks=narrate,
    ),
    stalwart.TokenBucket(rate=(10, 1.0), name="quota", clock=clock),
    stalwart.CircuitBreaker(
        name="inventory",
        failure_threshold=2,
        recovery_time=10.0,
        clock=clock,
        hooks=narrate,
    ),
    stalwart.Chaos(
        name="outage",
        fault=ConnectionError("inventory is down"),
        during=[(2.0, 40.0)],
        clock=clock,
    ),
    name="inventory",
)


@inventory
def stock(item: str) -> str:
    """The real inventory call (healthy when the outage is over)."""
    return f"{item}: 7 in stock"


async def astock(item: str) -> str:
    """The same call from async code."""
    return f"{item}: 3 in stock"


def main() -> None:
    for at in (0.0, 2.0, 25.0, 45.0):
        clock.advance(at - clock.now())
        print(f"t={clock.now():5.1f}s stock('lamp')")
        print(f"    -> {stock('lamp')}")
    answer = asyncio.run(inventory.acall(astock, "desk"))
    print(f"t={clock.now():5.1f}s acall(astock, 'desk')\n    -> {answer}")
    print("\nstatistics by stage:")
    for name, stats in inventory.statistics().stages.items():
        print(f"    {name}: {stats}")


if __name__ == "__main__":
    main()
