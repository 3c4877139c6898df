"""
Retry with backoff, on a fake clock: a flaky service, a server that says
when to come back, a time budget, and a retry budget shared by two clients.

Runs instantly: every wait goes to a FakeClock, which records it.
"""

from __future__ import annotations

import asyncio
import random

import stalwart

from stalwart.testing import FakeClock


clock = FakeClock()


def log(event: stalwart.Event) -> None:
    """Print each retry event as it happens."""
    if isinstance(event, stalwart.RetryScheduled):
        print(
            f"  t={event.at:5.2f}s attempt {event.attempt} failed "
            f"({event.caused_by!r}); waiting {event.wait:.2f}s"
        )
    elif isinstance(event, stalwart.RetryGaveUp):
        print(
            f"  t={event.at:5.2f}s giving up after attempt {event.attempt} "
            f"(reason: {event.reason})"
        )


class Flaky:
    """A service that fails *failures* times, then answers."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error

    def __call__(self) -> str:
        if self.failures:
            self.failures -= 1
            raise self.error
        return "200 OK"


print("1. Exponential backoff with jitter, reproducible from a seed")
retry = stalwart.Retry(
    name="catalog",
    on=ConnectionError,
    attempts=5,
    wait_initial=0.5,
    wait_max=4.0,
    jitter=0.2,
    jitter_source=random.Random(2024),
    hooks=log,
    clock=clock,
)
print(f"  -> {retry.call(Flaky(3, ConnectionError('reset')))}")
print(f"  waits: {[round(s, 3) for s in clock.sleeps]}")

print("\n2. The server says when to come back")
clock.sleeps.clear()
# A stalwart refusal carrying retry_after is retried after exactly that
# wait, even though on= names only ConnectionError.
breaker_says = stalwart.CircuitOpenError("payments", retry_after=2.5)
retry = stalwart.Retry(
    name="payments", on=ConnectionError, hooks=log, clock=clock
)
print(f"  -> {retry.call(Flaky(1, breaker_says))}")
print(f"  waited exactly {clock.sleeps}")


class ThrottledError(Exception):
    """An HTTP 429 with its Retry-After header, in seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"429, retry after {retry_after}s")
        self.header = retry_after


def on_throttled(error: Exception) -> bool | stalwart.RetryAfter:
    """Retry a 429 after what its header says; nothing else."""
    if isinstance(error, ThrottledError):
        return stalwart.RetryAfter(error.header)
    return False


clock.sleeps.clear()
retry = stalwart.Retry(name="api", on=on_throttled, hooks=log, clock=clock)
print(f"  -> {retry.call(Flaky(1, ThrottledError(4.0)))}")
print(f"  waited exactly {clock.sleeps}")

print("\n3. A 3-second time budget: never wait past it")
clock.sleeps.clear()
retry = stalwart.Retry(
    name="search",
    on=TimeoutError,
    attempts=None,
    timeout=3.0,
    wait=1.0,
    hooks=log,
    clock=clock,
)
try:
    retry.call(Flaky(10, TimeoutError("slow")))
except TimeoutError as e:
    print(f"  -> re-raised the last error unchanged: {e!r}")

print("\n4. Async, and a retry budget shared by two clients")
budget = stalwart.RetryBudget(
    name="backend", ratio=0.1, min_per_second=0.2, window=10.0, clock=clock
)
users = stalwart.Retry(
    name="users", on=OSError, wait=0.1, budget=budget, hooks=log, clock=clock
)
orders = stalwart.Retry(
    name="orders", on=OSError, wait=0.1, budget=budget, hooks=log, clock=clock
)


async def main() -> None:
    """Two clients retry against one outage until the budget is spent."""
    for client in (users, orders, users):
        try:
            await client.acall(_down)
        except OSError:
            print(f"  {client.name}: failed; the shared budget said stop")


async def _down() -> str:
    raise OSError("backend down")


asyncio.run(main())
stats = budget.statistics()
print(
    f"  budget: {stats.calls} calls, {stats.retries} retries granted, "
    f"{stats.refused} refused, {stats.available:.1f} left"
)
print(f"  users:  {users.statistics()}")
