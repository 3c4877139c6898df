"""
Retry against a reference model: for any stop settings, backoff and
sequence of outcomes (with how long each attempt takes), the fake clock
sees exactly the waits the model predicts, and the call ends the same way.
"""

from __future__ import annotations

import asyncio

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from helpers import Boom
from stalwart import ExponentialBackoff, Retry, RetryScheduled
from stalwart.testing import FakeClock


def model(
    *,
    attempts: int | None,
    timeout: float | None,
    initial: float,
    multiplier: float,
    cap: float,
    outcomes: list[tuple[bool, float]],
    lag: float,
) -> tuple[str, list[float]]:
    """
    Predict how a call ends ("ok" or "raise") and the waits it makes.
    """
    now, sleeps = 0.0, []
    for attempt, (fails, takes) in enumerate(outcomes, start=1):
        now += takes
        if not fails:
            return "ok", sleeps
        if attempts is not None and attempt >= attempts:
            return "raise", sleeps
        delay = min(initial * multiplier ** (attempt - 1), cap)
        if timeout is not None and now + delay >= timeout:  # from the start
            return "raise", sleeps
        now += lag  # a hook, or the loop body after its block
        if timeout is not None and now + delay >= timeout:  # checked again
            return "raise", sleeps
        if delay > 0:
            sleeps.append(delay)
            now += delay
    raise AssertionError("outcomes end with a success")


outcome_lists = st.lists(
    st.tuples(st.just(True), st.sampled_from([0.0, 0.25, 1.0, 3.0])),
    max_size=12,
).flatmap(
    lambda fails: st.sampled_from([0.0, 0.5]).map(
        lambda takes: [*fails, (False, takes)]
    )
)


class TestAgainstModel:
    @given(
        attempts=st.none() | st.integers(1, 8),
        timeout=st.none() | st.sampled_from([0.5, 2.0, 10.0, 60.0]),
        initial=st.sampled_from([0.0, 0.1, 1.0]),
        multiplier=st.sampled_from([1.0, 2.0, 3.0]),
        cap=st.sampled_from([0.0, 1.0, 5.0]),
        outcomes=outcome_lists,
        face=st.sampled_from(
            [
                "call",
                "decorator",
                "loop",
                "acall",
                "async-decorator",
                "async-loop",
            ]
        ),
        lag=st.sampled_from([0.0, 0.25, 2.0]),
    )
    def test_schedule(  # noqa: PLR0917  # one argument per drawn setting
        self, attempts, timeout, initial, multiplier, cap, outcomes, face, lag
    ):
        """
        The waits and the ending match the model exactly, when time also
        passes between a decision and its wait (a slow hook, or a loop
        body after its block).
        """
        if attempts is None and timeout is None:
            timeout = 60.0
        clock = FakeClock()
        retry = Retry(
            on=Boom,
            attempts=attempts,
            timeout=timeout,
            wait=ExponentialBackoff(
                initial=initial, multiplier=multiplier, cap=cap, jitter="none"
            ),
            clock=clock,
            hooks=() if "loop" in face else _lagging(clock, lag),
        )
        pending = iter(outcomes)

        def attempt() -> str:
            fails, takes = next(pending)
            clock.advance(takes)
            if fails:
                raise Boom
            return "ok"

        async def aattempt() -> str:
            return attempt()

        try:
            if face == "call":
                ending = retry.call(attempt)
            elif face == "decorator":
                ending = retry(attempt)()
            elif face == "acall":
                ending = asyncio.run(retry.acall(aattempt))
            elif face == "async-decorator":
                ending = asyncio.run(retry(aattempt)())
            elif face == "loop":
                for each in retry:
                    failed = True
                    with each:
                        ending = attempt()
                        failed = False
                    if failed:  # swallowed: it will be retried
                        clock.advance(lag)
            else:

                async def aloop() -> str:
                    async for each in retry:
                        failed = True
                        with each:
                            result = await aattempt()
                            failed = False
                        if failed:
                            clock.advance(lag)
                    return result

                ending = asyncio.run(aloop())
        except Boom:
            ending = "raise"

        expected = model(
            attempts=attempts,
            timeout=timeout,
            initial=initial,
            multiplier=multiplier,
            cap=cap,
            outcomes=outcomes,
            lag=lag,
        )
        assert expected == (ending, clock.sleeps)


def _lagging(clock: FakeClock, lag: float) -> Callable[[object], None]:
    """
    A hook that takes *lag* seconds on every scheduled retry.
    """

    def hook(event: object) -> None:
        if isinstance(event, RetryScheduled):
            clock.advance(lag)

    return hook
