"""
Adaptive concurrency limits: pure algorithms that read how calls went and
return the number of calls that may run at once.

An :class:`~stalwart.AdaptiveBulkhead` calls :meth:`AIMD.observe` or
:meth:`Gradient.observe` under its lock when a call ends, in O(1), and
admits calls while ``in_flight < limit``.  Each sample
is one finished call:

* *now*: when it ended, on the bulkhead's clock;
* *rtt*: how long it took, in seconds (``now - start``);
* *in_flight*: the calls in flight when it was admitted, itself included;
* *dropped*: whether it ended in a way that signals overload: it timed
  out, the downstream refused it, or it failed in a way the user names.

Both algorithms keep the limit within ``[min_limit, max_limit]`` whatever
they are fed, and neither grows the limit while it is not what holds the
calls back (fewer than half of it in use, as Netflix's concurrency-limits
does).

**AIMD** (additive increase, multiplicative decrease; the loss-based
controller of TCP, as in concurrency-limits' ``AIMDLimit``): each call that
ends well adds one; a dropped call multiplies the limit by
``backoff_ratio`` (rounding down).  Unlike ``AIMDLimit``, which cuts on
every drop, only drops of calls admitted after the last cut count (TCP's
one reduction per window): when an overload makes fifty calls time out
together, the limit is cut once, not fifty times.

**Gradient** (latency-based; concurrency-limits' ``Gradient2Limit`` update,
halving after a drop as its first ``GradientLimit`` does, on the no-load
latency of ``VegasLimit`` and Envoy's adaptive concurrency filter): calls are summarised in windows of at least *window* seconds and
*window_samples* calls; at the end of each window, with ``rtt`` the mean
latency of the window and ``rtt_noload`` the latency without queueing::

    gradient  = clamp(rtt_noload / rtt, 0.5, 1.0)
    target    = estimate * gradient + queue_size     # estimate / 2 after a drop
    estimate  = estimate * (1 - smoothing) + target * smoothing
    limit     = floor(clamp(estimate, min_limit, max_limit))

A downstream that is not queueing (``rtt == rtt_noload``) lets the limit
grow by ``smoothing * queue_size`` per window; one whose latency doubled
under load pulls it towards half, plus the headroom.  For a downstream
that serves ``C`` calls at once and queues the rest, the limit settles at
about ``C + queue_size``.

``rtt_noload`` is measured as Envoy does: at the start and then every
*probe_interval* seconds the limit drops to *min_limit* until
*probe_samples* calls admitted at that concurrency have ended; their mean
latency is the new ``rtt_noload``, and the limit goes back to the
estimate.  Between probes a window faster than ``rtt_noload`` lowers it.
Gradient2 uses a long-term average latency instead, which under sustained
load drifts up to the loaded latency and lets the limit creep up with it;
measuring at low concurrency keeps the reference honest, and lets it
follow a downstream that became slower for good.  With
``probe_interval=None`` there is no probing and ``rtt_noload`` is the
fastest window seen (Vegas without its resets).
"""

from __future__ import annotations

import math

from typing import Final, Protocol

import attrs


MIN_GRADIENT: Final = 0.5
"""The deepest cut one window may ask for (Gradient2's outlier filter)."""

RTT_SMOOTHING: Final = 0.1
"""The weight of each new latency in :class:`AIMD`'s average."""


def free_in(rtt: float | None, limit: int, ahead: int) -> float | None:
    """
    Estimate the seconds until a permit frees for a caller with *ahead*
    callers queued before it: with *limit* calls in flight, each taking
    about *rtt* seconds, one ends every ``rtt / limit`` seconds on average
    (Little's law), so ``rtt * (ahead + 1) / limit``.

    Returns:
        The estimate, or ``None`` before any latency was measured.
    """
    if rtt is None:
        return None
    return rtt * (ahead + 1) / max(1, limit)


class LimitAlgorithm(Protocol):
    """
    What an adaptive bulkhead needs from an algorithm.
    """

    @property
    def limit(self) -> int:
        """
        How many calls may run at once now.
        """
        ...

    def observe(
        self, now: float, rtt: float, in_flight: int, dropped: bool
    ) -> int:
        """
        Record one finished call and return the new limit.
        """
        ...


@attrs.frozen
class AIMDSnapshot:
    """
    The state of an :class:`AIMD` at one moment.

    Attributes:
        limit: Calls that may run at once now.
        last_cut_at: When the limit was last cut (``-inf``: never).
        rtt: The average latency of the calls that ended well (an
            exponentially weighted moving average), or ``None`` before
            the first.
    """

    limit: int
    last_cut_at: float
    rtt: float | None = None


class AIMD:
    """
    Grow the limit by one for each call that ends well while at least half
    the limit is in use; multiply it by *backoff_ratio* for a dropped call
    admitted after the last cut, or one slower than *timeout* seconds.

    The arguments are validated by the shell: ``1 <= min_limit <= initial
    <= max_limit``, ``0 < backoff_ratio < 1``, ``timeout > 0`` or ``None``.
    """

    __slots__ = (
        "_cut_at",
        "backoff_ratio",
        "limit",
        "max_limit",
        "min_limit",
        "rtt",
        "timeout",
    )

    def __init__(
        self,
        *,
        initial: int,
        min_limit: int,
        max_limit: int,
        backoff_ratio: float = 0.9,
        timeout: float | None = None,
    ) -> None:
        self.limit = initial
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.backoff_ratio = backoff_ratio
        self.timeout = timeout
        self._cut_at = -math.inf
        # The average latency of the calls that ended well (statistics and
        # the shell's retry_after estimates; not the limit's).
        self.rtt: float | None = None

    def observe(
        self, now: float, rtt: float, in_flight: int, dropped: bool
    ) -> int:
        """
        Record one finished call and return the new limit.
        """
        limit = self.limit
        timeout = self.timeout
        if dropped or (timeout is not None and rtt > timeout):
            if now - rtt <= self._cut_at:
                # Admitted under the limit before the last cut (or at the
                # same instant): that cut already answered the overload
                # this call saw.
                return limit
            self._cut_at = now
            limit = max(self.min_limit, math.floor(limit * self.backoff_ratio))
        else:
            average = self.rtt
            self.rtt = (
                rtt
                if average is None
                else average + RTT_SMOOTHING * (rtt - average)
            )
            if in_flight * 2 >= limit and limit < self.max_limit:
                limit += 1
        self.limit = limit
        return limit

    def snapshot(self) -> AIMDSnapshot:
        """
        Copy the state.
        """
        return AIMDSnapshot(
            limit=self.limit, last_cut_at=self._cut_at, rtt=self.rtt
        )


@attrs.frozen
class GradientSnapshot:
    """
    The state of a :class:`Gradient` at one moment.

    Attributes:
        limit: Calls that may run at once now (*min_limit* while probing).
        estimate: The smoothed limit the algorithm converges on.
        rtt_noload: The latency without queueing, or ``None`` before the
            first measure.
        rtt: The mean latency of the last window, or ``None``.
        probing: Whether it is measuring ``rtt_noload`` now.
    """

    limit: int
    estimate: float
    rtt_noload: float | None
    rtt: float | None
    probing: bool


class Gradient:
    """
    Move the limit by the ratio of the no-load latency to the latency of
    each window of calls, with some headroom (see the module's docstring
    for the formula and its sources).

    The arguments are validated by the shell: ``1 <= min_limit <= initial
    <= max_limit``; ``0 < smoothing <= 1``; ``queue_size >= 0``; *window*
    ``>= 0``; *window_samples*, *probe_samples* ``>= 1``; *probe_interval*
    ``> 0`` or ``None``.
    """

    __slots__ = (
        "_count",
        "_dropped",
        "_max_in_flight",
        "_next_probe",
        "_probe_count",
        "_probe_every",
        "_probe_sum",
        "_sum",
        "_window_start",
        "estimate",
        "limit",
        "max_limit",
        "min_limit",
        "probe_interval",
        "probe_samples",
        "probing",
        "queue_size",
        "rtt",
        "rtt_noload",
        "smoothing",
        "window",
        "window_samples",
    )

    def __init__(
        self,
        *,
        initial: int,
        min_limit: int,
        max_limit: int,
        smoothing: float = 0.2,
        queue_size: float = 4.0,
        window: float = 1.0,
        window_samples: int = 10,
        probe_interval: float | None = 60.0,
        probe_samples: int = 10,
    ) -> None:
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.smoothing = smoothing
        self.queue_size = queue_size
        self.window = window
        self.window_samples = window_samples
        self.probe_interval = probe_interval
        self.probe_samples = probe_samples
        self.estimate = float(initial)
        self.rtt_noload: float | None = None
        self.rtt: float | None = None
        self._window_start: float | None = None
        self._sum = 0.0
        self._count = 0
        self._max_in_flight = 0
        self._dropped = False
        self._probe_sum = 0.0
        self._probe_count = 0
        self._next_probe = math.inf
        self._probe_every = (
            math.inf if probe_interval is None else probe_interval
        )
        # Measure the no-load latency first, unless told not to probe.
        self.probing = probe_interval is not None
        self.limit = min_limit if self.probing else initial

    def observe(
        self, now: float, rtt: float, in_flight: int, dropped: bool
    ) -> int:
        """
        Record one finished call and return the new limit.
        """
        if self.probing:
            if not dropped and in_flight <= self.min_limit:
                self._probe_sum += max(0.0, rtt)
                self._probe_count += 1
                if self._probe_count >= self.probe_samples:
                    self._end_probe(now)
            return self.limit
        start = self._window_start
        if start is None:
            self._window_start = start = now
        self._sum += max(0.0, rtt)
        self._count += 1
        self._max_in_flight = max(self._max_in_flight, in_flight)
        self._dropped = self._dropped or dropped
        if now - start >= self.window and self._count >= self.window_samples:
            self._update(now)
            if now >= self._next_probe:
                self.probing = True
                self.limit = self.min_limit
        return self.limit

    def snapshot(self) -> GradientSnapshot:
        """
        Copy the state.
        """
        return GradientSnapshot(
            limit=self.limit,
            estimate=self.estimate,
            rtt_noload=self.rtt_noload,
            rtt=self.rtt,
            probing=self.probing,
        )

    def _end_probe(self, now: float) -> None:
        self.rtt_noload = self._probe_sum / self._probe_count
        self._probe_sum = 0.0
        self._probe_count = 0
        self.probing = False
        self._next_probe = now + self._probe_every
        self._reset_window(now)
        # The estimate is kept within [min_limit, max_limit].
        self.limit = math.floor(self.estimate)

    def _update(self, now: float) -> None:
        """
        Close the window: move the estimate, then the limit.
        """
        rtt = self._sum / self._count
        self.rtt = rtt
        noload = self.rtt_noload
        if noload is None or rtt < noload:
            self.rtt_noload = noload = rtt
        estimate = self.estimate
        if self._dropped:
            target = estimate * MIN_GRADIENT
        else:
            gradient = (
                1.0 if rtt <= noload else max(MIN_GRADIENT, noload / rtt)
            )
            target = estimate * gradient + self.queue_size
        new = estimate + self.smoothing * (target - estimate)
        if new > estimate and self._max_in_flight * 2 < estimate:
            # Fewer than half the limit in use: the limit is not what
            # holds calls back, so growing it would be a guess.
            new = estimate
        self.estimate = new = min(
            float(self.max_limit), max(float(self.min_limit), new)
        )
        self.limit = math.floor(new)
        self._reset_window(now)

    def _reset_window(self, now: float) -> None:
        # The next window starts where this one ends.
        self._window_start = now
        self._sum = 0.0
        self._count = 0
        self._max_in_flight = 0
        self._dropped = False
