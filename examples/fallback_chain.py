"""
A fallback chain built by stacking Fallbacks: the primary source, then a
cache, then a default.

The primary call is guarded by a Timeout measured on a FakeClock, so the
"slow" call times out at once without any real sleep.
"""

from __future__ import annotations

import asyncio

import stalwart

from stalwart.testing import FakeClock


clock = FakeClock()
cache: dict[str, str] = {}


def note(event: stalwart.Event) -> None:
    """Print each fallback with its cause."""
    if isinstance(event, stalwart.FallbackUsed):
        cause = type(event.error).__name__ if event.error else "bad result"
        print(f"    [{event.primitive_name}] fell back because of {cause}")


def from_cache(error: BaseException) -> str:
    """Serve the last good answer, or fail on to the next fallback."""
    print(f"    primary failed ({type(error).__name__}); trying the cache")
    return cache["price"]  # KeyError when empty: the default takes over


@stalwart.Fallback(value="price unavailable", name="default", hooks=note)
@stalwart.Fallback(
    handler=from_cache,
    on=(TimeoutError, ConnectionError),
    name="cache",
    hooks=note,
)
@stalwart.Timeout(seconds=2.0, name="primary", clock=clock)
async def price(behaviour: str) -> str:
    """The primary source: answers, hangs, or fails on demand."""
    if behaviour == "hang":
        await clock.asleep(60)  # fake time: cut at 2 s, no real wait
    if behaviour == "down":
        raise ConnectionError("price service unreachable")
    answer = "42.00 EUR"
    cache["price"] = answer
    return answer


async def main() -> None:
    """Walk through the three links of the chain."""
    print("1. The primary source answers:")
    print(f"    -> {await price('ok')}")
    cache.clear()
    print("2. The primary hangs and the cache is empty:")
    print(f"    -> {await price('hang')}")
    await price("ok")
    print("3. The primary hangs; the cache has an answer:")
    print(f"    -> {await price('hang')}")
    print("4. The primary is down; the cache still answers:")
    print(f"    -> {await price('down')}")
    print(f"(fake time spent: {clock.now():g} s)")


if __name__ == "__main__":
    asyncio.run(main())
