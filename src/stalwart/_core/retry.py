"""
Pure retry decisions: given the attempt that just failed, the time spent
and the delay proposed, retry after that delay or give up, and why.
"""

from __future__ import annotations

import enum

import attrs


class GiveUp(enum.Enum):
    """
    Why a retry loop stopped retrying.
    """

    ATTEMPTS = "attempts"
    """Every allowed attempt was made."""
    TIMEOUT = "timeout"
    """The next wait would reach the retry's own time budget."""
    DEADLINE = "deadline"
    """The next wait would reach the deadline of the enclosing call."""
    BUDGET = "budget"
    """The shared retry budget had nothing left (decided by the budget)."""
    NOT_RETRYABLE = "not_retryable"
    """The outcome is not one to retry (decided by the shell's filters)."""


@attrs.frozen
class RetryCore:
    """
    The stop rules of a retry loop.

    Attributes:
        attempts: Most attempts allowed, counting the first call; ``None``
            for no limit.
        timeout: The time budget in seconds, counted from the start of
            the call, every attempt and every wait included; ``None`` for
            no limit.
        retry_after_max: The longest server-dictated delay honoured, in
            seconds; longer ones are cut to it.
    """

    attempts: int | None
    timeout: float | None
    retry_after_max: float

    def decide(
        self,
        attempt: int,
        elapsed: float,
        delay: float,
        deadline_left: float | None,
    ) -> float | GiveUp:
        """
        Decide what follows the failure of attempt number *attempt*.

        Args:
            attempt: The attempt that just failed, ``1`` for the first.
            elapsed: Seconds since the call started (only read when
                there is a *timeout*).
            delay: The delay proposed for the next attempt, within bounds.
            deadline_left: Seconds left before the enclosing call's
                deadline, or ``None`` when there is none.

        Returns:
            The delay to wait before the next attempt, or why to give up.
            The loop never waits up to or past a time limit: it gives up
            at once instead, since the next attempt would have no time.
            Asked again right before the wait (with the time spent since),
            it gives the same answer unless a limit came closer.
        """
        if self.attempts is not None and attempt >= self.attempts:
            return GiveUp.ATTEMPTS
        if self.timeout is not None and elapsed + delay >= self.timeout:
            return GiveUp.TIMEOUT
        if deadline_left is not None and delay >= deadline_left:
            return GiveUp.DEADLINE
        return delay

    def server_delay(self, seconds: float) -> float:
        """
        Bound a delay dictated by the callee (``retry_after``) to
        ``[0, retry_after_max]``; ``NaN`` counts as ``0``.
        """
        if not seconds > 0.0:
            return 0.0
        return min(seconds, self.retry_after_max)

    def capped(self, attempts: int | None) -> RetryCore:
        """
        Return a copy allowing at most *attempts* (``None``: unchanged).
        """
        if attempts is None or (
            self.attempts is not None and self.attempts <= attempts
        ):
            return self
        return attrs.evolve(self, attempts=attempts)
