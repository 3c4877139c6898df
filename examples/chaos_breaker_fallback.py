"""
Fault injection: watch a circuit breaker and a fallback cope with an
outage that we cause on purpose.

A ``Chaos`` stage sits innermost, right in front of the pricing service,
and makes every call fail between t=10 s and t=40 s of the clock.  The
breaker sees those failures as the service's, opens, and later tries one
trial call; the fallback answers with a cached price whenever the call
fails or is refused.  Nothing in the service or its callers changed: only
the chaos stage, which a test or a staging environment switches on.

Time is a FakeClock, so this runs instantly and prints the same story every
time.  Run it: ``python examples/chaos_breaker_fallback.py``.
"""

from __future__ import annotations

import stalwart

from stalwart.testing import FakeClock


clock = FakeClock()
transitions: list[str] = []


def narrate(event: stalwart.Event) -> None:
    """Note the breaker's state changes, printed under each request."""
    if isinstance(event, stalwart.CircuitStateChanged):
        transitions.append(f"{event.previous.value} -> {event.state.value}")


def cached_price(cause: BaseException) -> str:
    """The fallback: a cached price, labelled with why it was used."""
    why = (
        "breaker open"
        if isinstance(cause, stalwart.CircuitOpenError)
        else f"failed: {cause}"
    )
    return f"9.99 (cached; {why})"


chaos = stalwart.Chaos(
    name="pricing-outage",
    fault=ConnectionError("injected outage"),
    during=[(10.0, 40.0)],  # an outage from t=10 s to t=40 s
    clock=clock,
)
breaker = stalwart.CircuitBreaker(
    name="pricing",
    failure_threshold=3,
    recovery_time=15.0,
    clock=clock,
    hooks=[narrate],
)
fallback = stalwart.Fallback(handler=cached_price, name="pricing")


@fallback  # outermost: answers for failures and refusals alike
@breaker  # counts the failures, refuses while open
@chaos  # innermost: plays the failing dependency
def price(item: str) -> str:
    """The real pricing call (here: always healthy)."""
    return "10.49 (fresh)"


def main() -> None:
    for _ in range(12):  # a request every 5 seconds for a minute
        print(f"t={clock.now():4.0f}s  widget: {price('widget')}")
        for transition in transitions:
            print(f"         breaker {transition}")
        transitions.clear()
        clock.advance(5.0)

    injected = chaos.statistics()
    stats = breaker.statistics()
    print(
        f"\n{injected.injected} of {injected.calls} calls reaching the"
        f" service were failed on purpose; the breaker refused"
        f" {stats.rejected} more without calling. Final state:"
        f" {stats.state.value}."
    )
    if stats.state is not stalwart.CircuitState.CLOSED:
        raise SystemExit("the breaker should have closed again")


if __name__ == "__main__":
    main()
