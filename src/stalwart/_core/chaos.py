"""
Pure fault-injection decisions: given a call's number, the time and a
uniform draw, say what to inject into the call, if anything.

The shell (:mod:`stalwart._chaos`) owns the switch, the predicate, the
clock, the random source, the hooks and the user's exceptions, results and
callbacks; this module only decides.
"""

from __future__ import annotations

import attrs


@attrs.frozen
class Injection:
    """
    What an injected call receives, applied in this order: the behavior,
    then the latency, then the fault or the result (never both).

    Attributes:
        behavior: Run the behavior callback.
        latency: The delay to add, in seconds; ``None`` for none.
        fault: Raise the fault instead of calling.
        result: Return the result instead of calling.
        kinds: The names of the kinds injected, in the order applied
            (``"behavior"``, ``"latency"``, ``"fault"``, ``"result"``).
    """

    behavior: bool = False
    latency: float | None = None
    fault: bool = False
    result: bool = False
    kinds: tuple[str, ...] = attrs.field(init=False)

    @kinds.default
    def _kinds(self) -> tuple[str, ...]:
        flags = (
            ("behavior", self.behavior),
            ("latency", self.latency is not None),
            ("fault", self.fault),
            ("result", self.result),
        )
        return tuple(name for name, on in flags if on)


@attrs.frozen
class ChaosPlan:
    """
    When to inject, and what.

    A call is *eligible* when its number and the time match every schedule
    setting given; an eligible call is injected with probability
    *probability*.

    Attributes:
        injection: What every injected call receives.
        probability: The chance that an eligible call is injected, in
            ``[0, 1]``.
        every: Only calls whose number is a multiple of it; ``None``: any.
        first: Only calls numbered up to it; ``None``: no limit.
        after: Only calls numbered above it (``0``: from the first).
        during: Only while the time is inside one of these
            ``(start, end)`` periods (start included, end excluded);
            empty: any time.
    """

    injection: Injection
    probability: float = 1.0
    every: int | None = None
    first: int | None = None
    after: int = 0
    during: tuple[tuple[float, float], ...] = ()

    @property
    def draws(self) -> bool:
        """
        Whether :meth:`decide` reads its uniform draw (a probability
        strictly between 0 and 1); otherwise any draw will do.
        """
        return 0.0 < self.probability < 1.0

    @property
    def reads_clock(self) -> bool:
        """
        Whether :meth:`decide` reads the time; otherwise any time will do.
        """
        return bool(self.during)

    def decide(self, number: int, now: float, u: float) -> Injection | None:
        """
        Decide what call number *number* receives.

        Args:
            number: The call's number, ``1`` for the first.
            now: The time of the call, in seconds (read only with
                *during*).
            u: A uniform draw in ``[0, 1)`` (read only when *draws*).

        Returns:
            The injection, or ``None`` to let the call through untouched.
        """
        if number <= self.after:
            return None
        if self.first is not None and number > self.first:
            return None
        if self.every is not None and number % self.every:
            return None
        if self.during and not any(
            start <= now < end for start, end in self.during
        ):
            return None
        if self.probability < 1.0 and not u < self.probability:
            return None
        return self.injection


class ChaosCore:
    """
    A plan with its counters: numbers the calls and counts the injections.

    Not thread-safe: the shell calls it under its lock.
    """

    __slots__ = ("calls", "injected", "plan")

    def __init__(self, plan: ChaosPlan) -> None:
        self.plan = plan
        self.calls = 0
        self.injected = 0

    def next(self, now: float, u: float) -> tuple[int, Injection | None]:
        """
        Number the next call and decide what it receives.

        Returns:
            The call's number and its injection (``None``: untouched).
        """
        self.calls += 1
        injection = self.plan.decide(self.calls, now, u)
        if injection is not None:
            self.injected += 1
        return self.calls, injection

    def reset(self) -> None:
        """
        Number the calls from 1 again and zero the counters.
        """
        self.calls = 0
        self.injected = 0
