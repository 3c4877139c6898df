"""
An obviously correct reference model of the circuit breaker, and
Hypothesis strategies for its configurations (one per policy).

The model keeps every outcome since the breaker last closed in a plain
list and recomputes the window from it on each call; it shares no code
with the library.
"""

from __future__ import annotations

import math

from typing import Any

from hypothesis import strategies as st

import stalwart


class Model:
    """
    The breaker's documented behaviour, written the slow and plain way.
    """

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        window = cfg.get("window")
        self.count_size = (
            window.size if isinstance(window, stalwart.CountWindow) else None
        )
        self.time_window = (
            (window.length, window.buckets)
            if isinstance(window, stalwart.TimeWindow)
            else None
        )
        self.rated = (
            cfg.get("failure_rate") is not None
            or cfg.get("slow_call_rate") is not None
        )
        self.threshold = cfg.get("failure_threshold", 5)
        minimum = cfg.get("minimum_calls")
        if minimum is None:
            minimum = self.count_size if self.count_size is not None else 10
        self.minimum = minimum
        self.state = "closed"
        self.generation = 0
        self.trips = 0
        self.open_for = 0.0
        self.open_until = -math.inf
        self.half_open_deadline = math.inf
        self.outcomes: list[tuple[float, bool, bool]] = []
        self.streak = 0
        self.trials: list[tuple[bool, bool]] = []
        self.taken = 0
        self.transitions: list[tuple[str, str, float]] = []

    # --- transitions -------------------------------------------------------

    def _go(self, state: str, at: float) -> None:
        if state != self.state:
            self.transitions.append((self.state, state, at))
        self.state = state
        self.generation += 1

    def _trip(self, at: float) -> None:
        self.trips += 1
        if self.trips == 1:
            self.open_for = self.cfg.get("recovery_time", 30.0)
        else:
            self.open_for = min(
                self.open_for * self.cfg.get("recovery_multiplier", 1.0),
                self.cfg.get("recovery_max") or self.open_for,
            )
        self.open_until = at + self.open_for
        self._go("open", at)

    def _close(self, at: float) -> None:
        self.trips = 0
        self.outcomes = []
        self.streak = 0
        self._go("closed", at)

    def expire(self, now: float) -> None:
        """
        Send a half-open breaker whose trials are late back to OPEN.
        """
        if self.state == "half_open" and now >= self.half_open_deadline:
            self._trip(self.half_open_deadline)

    # --- window ------------------------------------------------------------

    def window(self, now: float) -> list[tuple[float, bool, bool]]:
        if self.count_size is not None:
            return self.outcomes[-self.count_size :]
        length, buckets = self.time_window  # type: ignore[misc]
        width = length / buckets
        return [
            o
            for o in self.outcomes
            if math.floor(now / width) - math.floor(o[0] / width) < buckets
        ]

    def _rates_trip(self, calls: int, failures: int, slow: int) -> bool:
        rate = self.cfg.get("failure_rate")
        slow_rate = self.cfg.get("slow_call_rate")
        return (rate is not None and failures / calls >= rate) or (
            slow_rate is not None and slow / calls >= slow_rate
        )

    def _tripped(self, now: float) -> bool:
        window = self.window(now)
        failures = sum(1 for _, failed, _ in window if failed)
        if not self.rated:
            return failures >= self.threshold
        if len(window) < self.minimum:
            return False
        slow = sum(1 for _, _, slow in window if slow)
        return self._rates_trip(len(window), failures, slow)

    # --- calls -------------------------------------------------------------

    def admit(self, now: float) -> tuple[int | None, float | None]:
        """
        Return ``(epoch, None)`` for an admitted call or ``(None,
        retry_after)`` for a refused one.
        """
        self.expire(now)
        if self.state == "forced_open":
            return None, None
        if self.state in {"closed", "disabled", "metrics_only"}:
            return self.generation, None
        if self.state == "open":
            if now < self.open_until:
                return None, self.open_until - now
            self.trials = []
            self.taken = 0
            wait = self.cfg.get("half_open_max_wait")
            self.half_open_deadline = math.inf if wait is None else now + wait
            self._go("half_open", now)
        if self.taken < self.cfg.get("half_open_max_calls", 1):
            self.taken += 1
            return self.generation, None
        # Every trial is taken: wait until they must have reported, if
        # that is known.
        if self.half_open_deadline == math.inf:
            return None, None
        return None, self.half_open_deadline - now

    def record(self, now: float, epoch: int, failed: bool, slow: bool) -> None:
        self.expire(now)
        if epoch != self.generation or self.state == "disabled":
            return
        if self.state == "half_open":
            self.trials.append((failed, slow))
            if self.rated:
                if len(self.trials) == self.cfg.get("half_open_max_calls", 1):
                    failures = sum(1 for f, _ in self.trials if f)
                    slows = sum(1 for _, s in self.trials if s)
                    if self._rates_trip(len(self.trials), failures, slows):
                        self._trip(now)
                    else:
                        self._close(now)
            elif failed:
                self._trip(now)
            elif sum(1 for f, _ in self.trials if not f) >= self.cfg.get(
                "success_threshold", 1
            ):
                self._close(now)
            return
        if self.cfg.get("window") is None:
            self.streak = self.streak + 1 if failed else 0
            if self.state == "closed" and self.streak >= self.threshold:
                self._trip(now)
            return
        self.outcomes.append((now, failed, slow))
        if self.state == "closed" and self._tripped(now):
            self._trip(now)

    def release(self, epoch: int) -> None:
        if epoch == self.generation and self.state == "half_open":
            self.taken -= 1

    # --- manual control ----------------------------------------------------

    def manual(self, action: str, now: float) -> None:
        if action == "reset":
            self._close(now)
        elif action == "force_open":
            if self.state != "forced_open":
                self._go("forced_open", now)
        elif self.state != action:
            self.outcomes = []
            self.streak = 0
            self._go(action, now)


# --- configurations, one strategy per policy --------------------------------

_recovery = st.fixed_dictionaries(
    {},
    optional={
        "recovery_time": st.sampled_from([0.0, 1.0, 5.0, 30.0]),
        "half_open_max_wait": st.sampled_from([None, 2.0, 20.0]),
    },
)


@st.composite
def _common(draw: st.DrawFn, rated: bool) -> dict[str, Any]:
    cfg = dict(draw(_recovery))
    if draw(st.booleans()):
        cfg["recovery_multiplier"] = draw(st.sampled_from([1.5, 2.0]))
        cfg["recovery_max"] = cfg.get("recovery_time", 30.0) * 4 or 10.0
        if cfg.get("recovery_time") == 0.0:
            cfg["recovery_time"] = 0.5
    cfg["half_open_max_calls"] = draw(st.integers(1, 3))
    if not rated:
        cfg["success_threshold"] = draw(
            st.integers(1, cfg["half_open_max_calls"])
        )
    return cfg


@st.composite
def consecutive(draw: st.DrawFn) -> dict[str, Any]:
    """
    The consecutive-failures policy.
    """
    cfg = draw(_common(rated=False))
    cfg["failure_threshold"] = draw(st.integers(1, 4))
    return cfg


@st.composite
def count_in_window(draw: st.DrawFn) -> dict[str, Any]:
    """
    "N of the last M calls" and "N failures within T seconds".
    """
    cfg = draw(_common(rated=False))
    size = draw(st.integers(1, 6))
    cfg["window"] = draw(
        st.sampled_from(
            [
                stalwart.CountWindow(size),
                stalwart.TimeWindow(10.0, buckets=5),
                stalwart.TimeWindow(7.0, buckets=3),
            ]
        )
    )
    cfg["failure_threshold"] = draw(st.integers(1, size))
    return cfg


@st.composite
def rates(draw: st.DrawFn) -> dict[str, Any]:
    """
    Failure rate and/or slow-call rate over a count or a time window.
    """
    cfg = draw(_common(rated=True))
    size = draw(st.integers(1, 6))
    cfg["window"] = draw(
        st.sampled_from(
            [stalwart.CountWindow(size), stalwart.TimeWindow(10.0, buckets=4)]
        )
    )
    kind = draw(st.sampled_from(["failure", "slow", "both"]))
    if kind in {"failure", "both"}:
        cfg["failure_rate"] = draw(st.sampled_from([0.2, 0.5, 0.75, 1.0]))
    if kind in {"slow", "both"}:
        cfg["slow_call_rate"] = draw(st.sampled_from([0.3, 0.5, 1.0]))
        cfg["slow_call_duration"] = draw(st.sampled_from([1.0, 2.5]))
    cfg["minimum_calls"] = draw(st.integers(1, size))
    return cfg
