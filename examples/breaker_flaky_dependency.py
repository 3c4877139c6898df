"""
A circuit breaker protecting a flaky dependency.

The inventory service below goes down for a while.  The breaker notices the
failures, opens, and refuses further calls at once (telling the caller when
to come back) instead of letting every request wait on a dead service.
After ``recovery_time`` one trial call goes through; it succeeds, and the
breaker closes again.

Time is a FakeClock, so this runs instantly and prints the same story every
time.  Run it: ``python examples/breaker_flaky_dependency.py``.
"""

from __future__ import annotations

import stalwart

from stalwart.testing import FakeClock


clock = FakeClock()


class InventoryService:
    """A dependency that is down between *down_from* and *down_until*."""

    def __init__(self, down_from: float, down_until: float) -> None:
        self.down_from = down_from
        self.down_until = down_until
        self.requests = 0

    def stock(self, item: str) -> int:
        self.requests += 1
        if self.down_from <= clock.now() < self.down_until:
            raise ConnectionError("inventory service unreachable")
        return 42


service = InventoryService(down_from=10.0, down_until=40.0)


def narrate(event: stalwart.Event) -> None:
    """Print the breaker's state changes as they happen."""
    notes = {
        stalwart.CircuitState.OPEN: "stop calling the service",
        stalwart.CircuitState.HALF_OPEN: "let one trial call through",
        stalwart.CircuitState.CLOSED: "the trial worked, back to normal",
    }
    if isinstance(event, stalwart.CircuitStateChanged):
        print(
            f"  t={event.at:5.1f}s  breaker {event.previous.value}"
            f" -> {event.state.value}: {notes[event.state]}"
        )


breaker = stalwart.CircuitBreaker(
    name="inventory",
    failure_threshold=3,  # three failures in a row open it
    recovery_time=30.0,  # then it waits 30 s before a trial call
    failure_on=ConnectionError,
    clock=clock,
    hooks=[narrate],
)


@breaker
def stock(item: str) -> int:
    return service.stock(item)


def request(item: str) -> None:
    try:
        print(f"t={clock.now():5.1f}s  {item}: {stock(item)} in stock")
    except stalwart.CircuitOpenError as e:
        print(
            f"t={clock.now():5.1f}s  {item}: refused at once,"
            f" retry in {e.retry_after:.0f}s"
        )
    except ConnectionError as e:
        print(f"t={clock.now():5.1f}s  {item}: failed ({e})")


def main() -> None:
    for _ in range(12):  # a request every 5 seconds for a minute
        request("widget")
        clock.advance(5.0)
    stats = breaker.statistics()
    print(
        f"\n{service.requests} requests reached the service;"
        f" {stats.rejected} were refused by the breaker"
        f" without touching it. Final state: {stats.state.value}."
    )
    if stats.state is not stalwart.CircuitState.CLOSED:
        raise SystemExit("the breaker should have closed again")


if __name__ == "__main__":
    main()
