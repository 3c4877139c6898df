"""
The circuit breaker's decisions, as a pure state machine.

:class:`BreakerCore` is driven by its shell under the shell's lock: it is
told the time and the outcome of each call and keeps the state.  It never
reads a clock, locks or calls user code.

A few attributes are written so the shell may read them *without* the lock
(each is one attribute, so a read is atomic):

* ``gate``: the generation while calls are admitted without any check
  (CLOSED, DISABLED, METRICS_ONLY), ``-1`` otherwise;
* ``dirty``: whether a success admitted through the gate must be recorded
  (``False`` only while nothing would change: CLOSED with no failure
  streak under the consecutive policy, or DISABLED);
* ``refuse_until``: calls made before this time are refused without
  asking (the end of the open period, ``inf`` when forced open, ``-inf``
  otherwise);
* ``expires_at``: when a half-open breaker whose trials have not reported
  goes back to OPEN (``inf`` in any other state, or without
  *half_open_max_wait*), so a reader knows when the state it reads is
  stale.

While ``held`` is set (:meth:`hold`: the shell's per-call events are on),
the gate stays shut and ``dirty`` stays set in every state, so every call
takes the shell's slow path, which times it; :meth:`admit` then admits a
call in the states that admit every call.

When ``track`` is set, each transition is appended to ``log`` as a
:data:`Transition` record.  The shell may replace ``log`` with its own
queue (anything with ``append``), so transitions land there in the order
they were made, next to the shell's other events.

Every transition bumps ``generation``.  A call is admitted with the
generation of that moment (its *epoch*), and an outcome whose epoch is not
the current generation is counted in the totals but never changes the
state: a call admitted before the latest transition does not decide the
new state.
"""

from __future__ import annotations

import collections
import enum
import math

from typing import Any, final

from .windows import FAILURE, SLOW, BucketRing, CountRing


class CircuitState(enum.Enum):
    """
    The state of a :class:`~stalwart.CircuitBreaker`.

    * ``CLOSED``: calls run; outcomes are recorded and may open it.
    * ``OPEN``: calls are refused until the recovery time has passed.
    * ``HALF_OPEN``: a few trial calls run; their outcomes close or
      re-open it.
    * ``FORCED_OPEN``: every call is refused until
      :meth:`~stalwart.CircuitBreaker.reset`.
    * ``DISABLED``: every call runs and nothing is recorded.
    * ``METRICS_ONLY``: every call runs and is recorded; it never opens.

    .. versionadded:: 0.1.0
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    FORCED_OPEN = "forced_open"
    DISABLED = "disabled"
    METRICS_ONLY = "metrics_only"


CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN
FORCED_OPEN = CircuitState.FORCED_OPEN
DISABLED = CircuitState.DISABLED
METRICS_ONLY = CircuitState.METRICS_ONLY

_ADMITTING = frozenset({CLOSED, DISABLED, METRICS_ONLY})
"""The states that admit every call."""

Transition = tuple[CircuitState, CircuitState, float, float]
"""``(previous, state, at, recovery_time)``; recovery_time is the open
period for a transition to OPEN, ``0.0`` otherwise."""

Window = CountRing | BucketRing


@final
class BreakerCore:
    """
    The breaker's state machine.

    Exactly one policy is active: *failure_threshold* without a window
    (consecutive failures), *failure_threshold* with a window (failures in
    the window), or a rate policy (*failure_rate* and/or *slow_call_rate*,
    with a window and *minimum_calls*).
    """

    __slots__ = (
        "_cap",
        "_count_threshold",
        "_minimum_calls",
        "_multiplier",
        "_recovery_time",
        "consecutive_failures",
        "dirty",
        "entered",
        "expires_at",
        "failure_rate",
        "failure_threshold",
        "failures",
        "gate",
        "generation",
        "half_open_max_calls",
        "half_open_max_wait",
        "held",
        "ignored",
        "log",
        "open_for",
        "open_until",
        "rate_policy",
        "refuse_until",
        "slow_call_rate",
        "slow_calls",
        "state",
        "success_threshold",
        "successes",
        "track",
        "trial_failures",
        "trial_outcomes",
        "trial_slow",
        "trials_taken",
        "trips",
        "unlocked_successes",
        "window",
    )

    def __init__(
        self,
        *,
        failure_threshold: int | None,
        failure_rate: float | None = None,
        slow_call_rate: float | None = None,
        window: Window | None = None,
        minimum_calls: int = 1,
        recovery_time: float,
        recovery_multiplier: float = 1.0,
        recovery_max: float | None = None,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        half_open_max_wait: float | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.failure_rate = failure_rate
        self.slow_call_rate = slow_call_rate
        self.rate_policy = failure_threshold is None
        self._count_threshold = failure_threshold or 0
        self.window = window
        self._minimum_calls = minimum_calls if self.rate_policy else 1
        self._recovery_time = recovery_time
        self._multiplier = recovery_multiplier
        self._cap = recovery_time if recovery_max is None else recovery_max
        self.half_open_max_calls = half_open_max_calls
        self.success_threshold = success_threshold
        self.half_open_max_wait = half_open_max_wait
        self.track = False
        self.held = False
        self.log: collections.deque[Any] = collections.deque()
        # Transitions made, by the state entered.
        self.entered: dict[CircuitState, int] = dict.fromkeys(CircuitState, 0)
        # Totals of every recorded outcome, whatever its epoch.
        self.successes = 0
        self.failures = 0
        self.slow_calls = 0
        self.ignored = 0
        # Successes the shell counts without the lock (it owns this one).
        self.unlocked_successes = 0
        self.state = CLOSED
        self.generation = 0
        self.gate = 0
        self.refuse_until = -math.inf
        self.trips = 0
        self.open_for = 0.0
        self.open_until = -math.inf
        self.consecutive_failures = 0
        self.dirty = window is not None
        self.expires_at = math.inf
        self.trials_taken = 0
        self.trial_outcomes = 0
        self.trial_failures = 0
        self.trial_slow = 0

    # --- transitions -------------------------------------------------------

    def _enter(
        self, state: CircuitState, at: float, recovery_time: float = 0.0
    ) -> None:
        previous = self.state
        self.state = state
        self.generation += 1
        # Finite only while half-open: record() tests it alone.
        self.expires_at = math.inf
        if previous is not state:
            self.entered[state] += 1
            if self.track:
                self.log.append((previous, state, at, recovery_time))

    def _open(self, at: float) -> None:
        # Lock-free readers check gate first, then refuse_until: close the
        # gate before publishing the refusal time.
        self.gate = -1
        self.dirty = True
        self.trips += 1
        if self.trips == 1:
            self.open_for = self._recovery_time
        else:
            self.open_for = min(self.open_for * self._multiplier, self._cap)
        self.open_until = at + self.open_for
        self._enter(OPEN, at, self.open_for)
        self.refuse_until = self.open_until

    def _half_open(self, at: float) -> None:
        self.refuse_until = -math.inf
        self.trials_taken = 0
        self.trial_outcomes = 0
        self.trial_failures = 0
        self.trial_slow = 0
        self._enter(HALF_OPEN, at)
        if self.half_open_max_wait is not None:
            self.expires_at = at + self.half_open_max_wait

    def _admitting(self, state: CircuitState, at: float) -> None:
        """
        Enter CLOSED, DISABLED or METRICS_ONLY with a fresh window.
        """
        self.refuse_until = -math.inf
        self.consecutive_failures = 0
        if self.window is not None:
            self.window.clear()
        if state is CLOSED:
            self.trips = 0
        self._enter(state, at)
        self._reopen_gate()

    def _reopen_gate(self) -> None:
        """
        Set ``dirty`` and open the gate for an admitting state (or keep
        them shut and set while held).
        """
        # Disabled, outcomes change nothing, but slow calls are still
        # counted: a success must be recorded whenever it may be slow.
        self.dirty = self.held or (
            self.consecutive_failures > 0
            if self.window is None
            else self.state is not DISABLED or self.slow_call_rate is not None
        )
        self.gate = -1 if self.held else self.generation

    def hold(self, held: bool) -> None:
        """
        Keep the gate shut and ``dirty`` set (*held*), or stop doing so.
        """
        self.held = held
        if self.state in _ADMITTING:
            self._reopen_gate()

    def expire(self, now: float) -> None:
        """
        Send a half-open breaker whose trials did not report in time back
        to OPEN, as of the moment the wait ran out.
        """
        if now >= self.expires_at:
            self._open(self.expires_at)

    # --- calls -------------------------------------------------------------

    def admit(self, now: float) -> int:
        """
        Admit a call at *now*: return its epoch, or ``-1`` to refuse it.
        """
        if self.gate >= 0:
            return self.gate
        if self.held and self.state in _ADMITTING:
            return self.generation
        self.expire(now)
        if self.state is OPEN and now >= self.open_until:
            self._half_open(now)
        if (
            self.state is HALF_OPEN
            and self.trials_taken < self.half_open_max_calls
        ):
            self.trials_taken += 1
            return self.generation
        return -1

    def retry_after(self, now: float) -> float | None:
        """
        Return the seconds until a refused call could be admitted, ``None``
        when that cannot be known.

        A half-open breaker whose trials are all taken gives the time left
        until they must have reported (it is then closed or open again), or
        ``None`` without *half_open_max_wait*: a trial may report any
        moment or never.  It is never ``0``, so a caller that waits as long
        as it says never spins.
        """
        if self.state is OPEN:
            return max(0.0, self.open_until - now)
        if self.state is HALF_OPEN and self.expires_at < math.inf:
            # admit() expired it first: the deadline is still ahead, and
            # the difference of two distinct floats is never 0.
            return self.expires_at - now
        return None

    def record(self, now: float, epoch: int, flags: int) -> None:
        """
        Record the outcome *flags* of a call admitted at *epoch*.
        """
        if flags & FAILURE:
            self.failures += 1
        else:
            self.successes += 1
        if flags & SLOW:
            self.slow_calls += 1
        self.expire(now)
        state = self.state
        if epoch != self.generation or state is DISABLED:
            return
        if state is HALF_OPEN:
            self._trial(now, flags)
            return
        # CLOSED or METRICS_ONLY: OPEN and FORCED_OPEN admit no call, so
        # their generation never matches an epoch.
        window = self.window
        if window is None:
            if not flags & FAILURE:
                self.consecutive_failures = 0
                self.dirty = self.held
                return
            self.consecutive_failures += 1
            self.dirty = True
            if (
                state is CLOSED
                and self.consecutive_failures >= self._count_threshold
            ):
                self._open(now)
            return
        window.record(flags, now)
        if state is not CLOSED:
            return
        # record() moved the window to now: its totals are current.
        if self.rate_policy:
            calls = window.calls
            if calls >= self._minimum_calls and self._rates_trip(
                calls, window.failures, window.slow
            ):
                self._open(now)
        elif window.failures >= self._count_threshold:
            self._open(now)

    def _rates_trip(self, calls: int, failures: int, slow: int) -> bool:
        # Divide rather than multiply the threshold: 3 / 10 >= 0.3 holds,
        # 3 >= 0.3 * 10 does not in floating point.
        return (
            self.failure_rate is not None
            and failures / calls >= self.failure_rate
        ) or (
            self.slow_call_rate is not None
            and slow / calls >= self.slow_call_rate
        )

    def _trial(self, now: float, flags: int) -> None:
        self.trial_outcomes += 1
        self.trial_failures += flags & FAILURE
        self.trial_slow += (flags & SLOW) >> 1
        if self.rate_policy:
            if self.trial_outcomes >= self.half_open_max_calls:
                if self._rates_trip(
                    self.trial_outcomes, self.trial_failures, self.trial_slow
                ):
                    self._open(now)
                else:
                    self._admitting(CLOSED, now)
        elif flags & FAILURE:
            self._open(now)
        elif self.trial_outcomes - self.trial_failures >= (
            self.success_threshold
        ):
            self._admitting(CLOSED, now)

    def release(self, epoch: int) -> None:
        """
        Forget a call admitted at *epoch* that was neither a success nor a
        failure, giving back its trial slot if it held one.
        """
        self.ignored += 1
        self.undo(epoch)

    def undo(self, epoch: int) -> None:
        """
        Give back the trial slot of a call admitted at *epoch*, if it held
        one, as if the call had never been admitted: nothing is counted.
        """
        if epoch == self.generation and self.state is HALF_OPEN:
            self.trials_taken -= 1

    # --- manual control ----------------------------------------------------

    def force_open(self, now: float) -> None:
        """
        Refuse every call until :meth:`reset`.
        """
        if self.state is not FORCED_OPEN:
            self.gate = -1
            self.dirty = True
            self._enter(FORCED_OPEN, now)
            self.refuse_until = math.inf

    def disable(self, now: float) -> None:
        """
        Admit every call and record nothing.
        """
        if self.state is not DISABLED:
            self._admitting(DISABLED, now)

    def metrics_only(self, now: float) -> None:
        """
        Admit and record every call; never open.
        """
        if self.state is not METRICS_ONLY:
            self._admitting(METRICS_ONLY, now)

    def reset(self, now: float) -> None:
        """
        Close with an empty window and no trip history.
        """
        self._admitting(CLOSED, now)

    # --- reading -----------------------------------------------------------

    def drain(self) -> list[Transition]:
        """
        Return and forget the transitions logged since the last drain.
        """
        log = list(self.log)
        self.log.clear()
        return log

    def window_totals(self, now: float) -> tuple[int, int, int]:
        """
        Return ``(calls, failures, slow calls)`` in the window at *now*.
        """
        if self.window is None:
            return 0, 0, 0
        if self.state is HALF_OPEN:
            return self.trial_outcomes, self.trial_failures, self.trial_slow
        return self.window.totals(now)

    def rates(self, now: float) -> tuple[float | None, float | None]:
        """
        Return the failure rate and the slow-call rate of the window, each
        ``None`` while fewer than the minimum calls were recorded (or when
        the policy has no such rate).
        """
        calls, failures, slow = self.window_totals(now)
        return window_rates(
            self.state,
            (calls, failures, slow),
            windowed=self.window is not None,
            minimum_calls=self._minimum_calls,
            slow_rated=self.slow_call_rate is not None,
        )


def window_rates(
    state: CircuitState,
    totals: tuple[int, int, int],
    *,
    windowed: bool,
    minimum_calls: int,
    slow_rated: bool,
) -> tuple[float | None, float | None]:
    """
    Return the failure rate and the slow-call rate of a window holding
    *totals* (calls, failures, slow calls) in *state*: each ``None`` while
    fewer than the minimum calls were recorded (or without such a rate).
    """
    calls, failures, slow = totals
    # Trials have no minimum: their verdict comes after all of them.
    minimum = 1 if state is HALF_OPEN else minimum_calls
    if not windowed or calls < minimum:
        return None, None
    return failures / calls, slow / calls if slow_rated else None
