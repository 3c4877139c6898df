"""
Rate-limiting algorithms as pure functions over a small state.

Every algorithm is a frozen record of its configuration with the same five
methods (the :class:`Algorithm` protocol):

* ``fresh()``: the state of a key never seen (or forgotten).
* ``reserve(state, now, cost, max_wait) -> (granted, state, wait)``: book
  *cost* at the earliest time the algorithm allows, not before any earlier
  booking (so waiters are served in order).  If that time is at most
  *max_wait* seconds away, the request is granted, the new state is
  returned and *wait* says how long the caller must wait for its slot
  (``0.0``: go now).  Otherwise it is refused, the state is returned
  unchanged, and *wait* is the ``retry_after``: how long until the same
  request would be granted at once.
* ``status(state, now) -> (remaining, reset_after)``: how many requests of
  cost one would be granted now, and how long until the key is back to
  fresh.  Enough for the ``RateLimit`` HTTP headers.
* ``idle(state, now)``: whether *state* is indistinguishable from
  ``fresh()``, so a store may forget it without resetting a live limit.
* ``refund(state, now, *, cost, before, after, slot)``: give back a
  reservation abandoned before its *slot*; *before* and *after* are the
  states around its booking.  When the state is still *after*, nothing
  happened since and *before* is restored exactly; otherwise each
  algorithm says what it gives back.

Numeric states are tuples of floats, so a server-side store (Redis and
Lua) can run the same arithmetic atomically; only the sliding-window log
holds lists, and it updates them in place.

Time is a float of seconds.  A clock that steps backwards never creates
capacity: each algorithm treats a time earlier than one it has already
booked (the log: booked or expired up to) as that time.  Comparisons allow
:data:`EPSILON` of slack so that floating-point noise never refuses a
request that fits exactly (ten per second, a tenth of a second later).
"""

from __future__ import annotations

import math

from bisect import bisect_left
from typing import Protocol, TypeVar

import attrs


EPSILON = 1e-9
"""Slack, in units of cost, when testing whether a request fits."""

TIME_SLACK = 1e-9
"""Slack, in seconds, when testing whether a wait is short enough: a
caller who retries after exactly ``retry_after`` is never refused because
``now + retry_after`` rounded down."""

INF = math.inf

S = TypeVar("S")


class Algorithm(Protocol[S]):
    """
    What a store needs from an algorithm; see the module docstring.
    """

    @property
    def limit(self) -> int:
        """
        The nominal number of requests of cost one (for headers).
        """

    @property
    def capacity(self) -> float:
        """
        The largest cost that can ever be granted.
        """

    def fresh(self) -> S:
        """
        Return the state of a key never seen.
        """

    def reserve(
        self, state: S, now: float, cost: float, max_wait: float
    ) -> tuple[bool, S, float]:
        """
        Book *cost*; return ``(granted, new_state, wait_or_retry_after)``.
        """

    def status(self, state: S, now: float) -> tuple[int, float]:
        """
        Return ``(remaining, reset_after)`` at *now*.
        """

    def idle(self, state: S, now: float) -> bool:
        """
        Tell whether *state* is the same as ``fresh()`` at *now*.
        """

    def refund(
        self,
        state: S,
        now: float,
        *,
        cost: float,
        before: S,
        after: S,
        slot: float,
    ) -> S:
        """
        Give back a reservation of *cost* booked for *slot*.
        """


def _floor(value: float) -> int:
    return math.floor(value + EPSILON)


# --------------------------------------------------------------- token bucket

TokenState = tuple[float, float]
"""``(tokens, last)``: tokens held after the refill at time *last*."""


@attrs.frozen
class TokenBucketAlgorithm:
    """
    A bucket of *capacity* tokens refilled continuously at *rate* tokens a
    second; a request takes *cost* tokens.

    A reservation may take the bucket below zero (a debt that later
    requests must wait out), which serves waiters in order.  Refund adds
    the tokens back (capped at *capacity*): exact when the reservation is
    the latest, and otherwise it frees capacity for the next request
    without moving the slots already handed out.
    """

    rate: float
    capacity: float

    @property
    def limit(self) -> int:
        """
        The capacity, rounded down.
        """
        return _floor(self.capacity)

    def fresh(self) -> TokenState:
        """
        A full bucket.
        """
        return (self.capacity, -INF)

    def _refill(self, state: TokenState, now: float) -> TokenState:
        tokens, last = state
        if now > last:
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            last = now
        return tokens, last

    def reserve(
        self, state: TokenState, now: float, cost: float, max_wait: float
    ) -> tuple[bool, TokenState, float]:
        """
        Take *cost* tokens, waiting for the refill if need be.
        """
        if cost - self.capacity > EPSILON:
            return False, state, INF
        tokens, last = self._refill(state, now)
        short = cost - tokens
        wait = short / self.rate + (last - now) if short > EPSILON else 0.0
        if wait <= max_wait:
            return True, (tokens - cost, last), wait
        return False, state, wait

    def status(self, state: TokenState, now: float) -> tuple[int, float]:
        """
        Whole tokens available, and seconds until the bucket is full.
        """
        tokens, _ = self._refill(state, now)
        return (
            max(0, _floor(tokens)),
            max(0.0, (self.capacity - tokens) / self.rate),
        )

    def idle(self, state: TokenState, now: float) -> bool:
        """
        Whether the bucket is full.
        """
        return self._refill(state, now)[0] >= self.capacity

    def refund(
        self,
        state: TokenState,
        now: float,
        *,
        cost: float,
        before: TokenState,
        after: TokenState,
        slot: float,
    ) -> TokenState:
        """
        Put *cost* tokens back.
        """
        if state == after:
            return before
        tokens, last = self._refill(state, now)
        return min(self.capacity, tokens + cost), last


# ----------------------------------------------------------------------- GCRA

GCRAState = tuple[float, float]
"""``(tat, seen)``: the theoretical arrival time, and the latest time at
which a request was granted (so a clock stepping back creates nothing)."""


@attrs.frozen
class GCRAAlgorithm:
    """
    The generic cell rate algorithm: one timestamp instead of a token count.

    Each request of cost *c* pushes the theoretical arrival time (TAT) by
    ``c / rate``; it is granted while the TAT stays within ``burst / rate``
    of now.  With ``burst == capacity`` it makes exactly the decisions of
    :class:`TokenBucketAlgorithm`, refund included.
    """

    rate: float
    burst: float

    @property
    def limit(self) -> int:
        """
        The burst, rounded down.
        """
        return _floor(self.burst)

    @property
    def capacity(self) -> float:
        """
        The burst: the largest cost that can be granted.
        """
        return self.burst

    def fresh(self) -> GCRAState:
        """
        No request booked.
        """
        return (-INF, -INF)

    def _debt(self, state: GCRAState, now: float) -> tuple[float, float]:
        """
        Return the clamped time and the TAT no earlier than it.
        """
        tat, seen = state
        now = max(now, seen)
        return now, max(tat, now)

    def reserve(
        self, state: GCRAState, now: float, cost: float, max_wait: float
    ) -> tuple[bool, GCRAState, float]:
        """
        Push the TAT by ``cost / rate`` if it stays within the burst.
        """
        if cost - self.burst > EPSILON:
            return False, state, INF
        at, base = self._debt(state, now)
        short = (base - at) * self.rate + cost - self.burst
        wait = short / self.rate + (at - now) if short > EPSILON else 0.0
        if wait <= max_wait:
            return True, (base + cost / self.rate, at), wait
        return False, state, wait

    def status(self, state: GCRAState, now: float) -> tuple[int, float]:
        """
        Requests of cost one allowed now, and seconds until no debt.
        """
        at, base = self._debt(state, now)
        held = self.burst - (base - at) * self.rate
        return max(0, _floor(held)), max(0.0, base - at)

    def idle(self, state: GCRAState, now: float) -> bool:
        """
        Whether the TAT has passed.
        """
        return self._debt(state, now)[1] <= max(now, state[1])

    def refund(
        self,
        state: GCRAState,
        now: float,
        *,
        cost: float,
        before: GCRAState,
        after: GCRAState,
        slot: float,
    ) -> GCRAState:
        """
        Pull the TAT back by ``cost / rate``.
        """
        if state == after:
            return before
        at, base = self._debt(state, now)
        return max(at, base - cost / self.rate), at


# --------------------------------------------------------------- leaky bucket

LeakyState = tuple[float]
"""``(tat,)``: when the bucket will be empty (the last booked drop leaves)."""


@attrs.frozen
class LeakyBucketAlgorithm:
    """
    A bucket of *capacity* units leaking at *rate* units a second.

    As a *meter* a request is granted when its *cost* fits in the bucket
    now, and refused when it would overflow (a reservation waits until
    enough has leaked out, like a token bucket).  As a *shaper* (``shape``)
    requests leave the bucket one after the other, spaced at the rate: a
    request is released at its slot (when the requests before it have
    leaked out) and refused when the queue (the bucket) is full.

    Refund: the meter takes the water back out; the shaper frees the slot
    only when it is the latest one booked (the slots handed out after it
    keep their even spacing).
    """

    rate: float
    capacity: float
    shape: bool = False

    @property
    def limit(self) -> int:
        """
        The capacity, rounded down.
        """
        return _floor(self.capacity)

    def fresh(self) -> LeakyState:
        """
        An empty bucket.
        """
        return (-INF,)

    def reserve(
        self, state: LeakyState, now: float, cost: float, max_wait: float
    ) -> tuple[bool, LeakyState, float]:
        """
        Pour *cost* in; a shaper also waits for the slot.
        """
        if cost - self.capacity > EPSILON:
            return False, state, INF
        base = max(state[0], now)
        over = (base - now) * self.rate + cost - self.capacity
        if self.shape:
            wait = base - now
            if over > EPSILON:
                # The queue is full: refused whatever the timeout; granted
                # at once only when the queue is empty.
                return False, state, wait
        else:
            wait = over / self.rate if over > EPSILON else 0.0
        if wait <= max_wait + TIME_SLACK:
            return True, (base + cost / self.rate,), wait
        return False, state, wait

    def status(self, state: LeakyState, now: float) -> tuple[int, float]:
        """
        Units of room left now, and seconds until the bucket is empty.
        """
        level = max(0.0, state[0] - now) * self.rate
        if self.shape:
            room = min(1, self.limit) if level <= EPSILON else 0
        else:
            room = max(0, _floor(self.capacity - level))
        return room, level / self.rate

    def idle(self, state: LeakyState, now: float) -> bool:
        """
        Whether the bucket is empty.
        """
        return state[0] <= now

    def refund(
        self,
        state: LeakyState,
        now: float,
        *,
        cost: float,
        before: LeakyState,
        after: LeakyState,
        slot: float,
    ) -> LeakyState:
        """
        Take the water back out (a shaper only for its latest slot).
        """
        if state == after:
            return before
        if self.shape:
            return state
        return (max(now, state[0] - cost / self.rate),)


# --------------------------------------------------------------- fixed window


@attrs.frozen
class _PerWindow:
    """
    What the window algorithms share: at most *quota* per *period*.
    """

    quota: float
    period: float

    @property
    def limit(self) -> int:
        """
        The limit per window, rounded down.
        """
        return _floor(self.quota)

    @property
    def capacity(self) -> float:
        """
        The limit: the largest cost that can be granted.
        """
        return self.quota


WindowState = tuple[float, float]
"""``(window, count)``: the index of the window booked last, and its cost."""


@attrs.frozen
class FixedWindowAlgorithm(_PerWindow):
    """
    At most *limit* per aligned window ``[k * period, (k + 1) * period)``.

    A request that does not fit is booked at the start of the next window,
    and every later request follows it there (waiters in order).  Refund
    takes the cost off its window if that window is still the one booked.
    """

    def fresh(self) -> WindowState:
        """
        Nothing booked.
        """
        return (-INF, 0.0)

    def _at(self, state: WindowState, now: float) -> tuple[float, float]:
        window, count = state
        current = math.floor(now / self.period)
        if current > window:
            return current, 0.0
        return window, count

    def reserve(
        self, state: WindowState, now: float, cost: float, max_wait: float
    ) -> tuple[bool, WindowState, float]:
        """
        Count *cost* in the current window, or wait for the next one.
        """
        if cost - self.quota > EPSILON:
            return False, state, INF
        window, count = self._at(state, now)
        if count + cost - self.quota > EPSILON:
            window, count = window + 1, 0.0
        wait = max(0.0, window * self.period - now)
        if wait <= max_wait + TIME_SLACK:
            return True, (window, count + cost), wait
        return False, state, wait

    def status(self, state: WindowState, now: float) -> tuple[int, float]:
        """
        Room left in the current window, and seconds until it ends.
        """
        window, count = self._at(state, now)
        if not count:
            return self.limit, 0.0
        room = self.quota - count if window * self.period <= now else 0.0
        return max(0, _floor(room)), (window + 1) * self.period - now

    def idle(self, state: WindowState, now: float) -> bool:
        """
        Whether the window booked last has no cost or has ended.
        """
        return not self._at(state, now)[1]

    def refund(
        self,
        state: WindowState,
        now: float,
        *,
        cost: float,
        before: WindowState,
        after: WindowState,
        slot: float,
    ) -> WindowState:
        """
        Take *cost* off its window if that window is the one booked.
        """
        if state == after:
            return before
        window, count = state
        if window == after[0]:
            return window, max(0.0, count - cost)
        return state


# ---------------------------------------------------------- sliding counter

CounterState = tuple[float, float, float, float]
"""``(window, previous, current, last)``: the index of the window booked
last, the cost counted in the window before it and in it, and the latest
booked time (so waiters are served in order)."""


@attrs.frozen
class SlidingWindowCounterAlgorithm(_PerWindow):
    """
    Two fixed windows, the previous one weighted by how much of it still
    overlaps the sliding window: ``previous * (1 - elapsed) + current``.

    Bound: every aligned window holds at most *limit*, so any interval of
    length *period* holds less than ``2 * limit``; with evenly spread
    traffic the estimate is close to the exact sliding log.

    Refund takes the cost off the window it was counted in, while that
    window is still the current or the previous one.
    """

    def fresh(self) -> CounterState:
        """
        Nothing booked.
        """
        return (-INF, 0.0, 0.0, -INF)

    def _shift(
        self, state: CounterState, window: float
    ) -> tuple[float, float]:
        """
        Return ``(previous, current)`` as seen from *window*.
        """
        booked, previous, current, _ = state
        if window == booked:
            return previous, current
        if window == booked + 1:
            return current, 0.0
        return 0.0, 0.0

    def reserve(
        self, state: CounterState, now: float, cost: float, max_wait: float
    ) -> tuple[bool, CounterState, float]:
        """
        Book *cost* at the earliest time the weighted count allows.
        """
        if cost - self.quota > EPSILON:
            return False, state, INF
        at = max(now, state[3])
        window = max(state[0], math.floor(at / self.period))
        slot = at
        while True:
            previous, current = self._shift(state, window)
            room = self.quota - current - cost
            start = window * self.period
            if room >= -EPSILON:
                slot = at
                if previous > room + EPSILON:
                    slot = max(at, start + (1 - room / previous) * self.period)
                if slot < start + self.period:
                    break
            window += 1
            at = max(at, window * self.period)
        wait = max(0.0, slot - now)
        if wait <= max_wait + TIME_SLACK:
            return True, (window, previous, current + cost, slot), wait
        return False, state, wait

    def _estimate(self, state: CounterState, now: float) -> float:
        at = max(now, state[3])
        window = max(state[0], math.floor(at / self.period))
        previous, current = self._shift(state, window)
        elapsed = at / self.period - window
        return previous * (1 - elapsed) + current

    def status(self, state: CounterState, now: float) -> tuple[int, float]:
        """
        Room left under the weighted count, and seconds until it is zero.
        """
        booked, previous, current, _ = state
        if current:
            reset = (booked + 2) * self.period - now
        elif previous:
            reset = (booked + 1) * self.period - now
        else:
            reset = 0.0
        room = self.quota - self._estimate(state, now)
        return max(0, _floor(room)), max(0.0, reset)

    def idle(self, state: CounterState, now: float) -> bool:
        """
        Whether both counted windows have ended.
        """
        return self.status(state, now)[1] <= 0.0

    def refund(
        self,
        state: CounterState,
        now: float,
        *,
        cost: float,
        before: CounterState,
        after: CounterState,
        slot: float,
    ) -> CounterState:
        """
        Take *cost* off the window it was counted in.
        """
        if state == after:
            return before
        booked, previous, current, last = state
        if booked == after[0]:
            current = max(0.0, current - cost)
        elif booked == after[0] + 1:
            previous = max(0.0, previous - cost)
        return booked, previous, current, last


# --------------------------------------------------------------- sliding log


@attrs.define
class Log:
    """
    The entries of a sliding-window log, oldest first.

    ``totals[i]`` is the cost of every entry ever booked up to and
    including entry *i* (so the cost of a run of entries is a difference,
    and the entry that must expire is found by bisection); ``head`` skips
    the entries that have expired, and ``gone`` is their total.  ``latest``
    is the latest time the log was read at: its entries are expired up to
    that time, so it never serves an earlier one.
    """

    times: list[float] = attrs.Factory(list)
    totals: list[float] = attrs.Factory(list)
    head: int = 0
    gone: float = 0.0
    latest: float = -INF

    def __len__(self) -> int:
        """
        The number of entries not yet expired.
        """
        return len(self.times) - self.head


# Compact the expired prefix once it is this long and half the lists.
_COMPACT_AFTER = 64


@attrs.frozen
class SlidingWindowLogAlgorithm(_PerWindow):
    """
    Exact: at most *limit* in every window ``(t - period, t]``.

    Each granted request is logged with its time and cost; an entry stops
    counting *period* seconds after its time.  Granting, expiring and
    compacting are amortised O(1); finding when a refused request would
    fit is one bisection.  The log holds at most *limit* entries.

    Refund removes the entry while it is the latest one; an entry booked
    before other entries stays (it expires as usual).
    """

    def fresh(self) -> Log:
        """
        An empty log.
        """
        return Log()

    def _expire(self, log: Log, now: float) -> float:
        """
        Drop the entries expired at *now*; return the time the log stands
        at.  A caller whose clock lags (read before another caller's, used
        after it) is served at the latest time instead: entries expired
        then would otherwise free room inside its window.
        """
        if now < log.latest:
            now = log.latest
        else:
            log.latest = now
        times, head = log.times, log.head
        horizon = now - self.period
        size = len(times)
        while head < size and times[head] <= horizon:
            head += 1
        if head != log.head:
            log.gone = log.totals[head - 1]
            if head >= _COMPACT_AFTER and head * 2 >= size:
                del times[:head]
                del log.totals[:head]
                head = 0
            log.head = head
        return now

    def _slot(self, log: Log, now: float, cost: float) -> float:
        """
        Return the earliest time, not before the latest entry, at which
        *cost* fits (the log is expired up to *now*).
        """
        if log.head == len(log.times):
            return now
        at = max(now, log.times[-1])
        total = log.totals[-1]
        excess = total - log.gone + cost - self.quota
        if excess <= EPSILON:
            return at
        # The first entry whose expiry brings the total under the limit.
        index = bisect_left(log.totals, log.gone + excess - EPSILON, log.head)
        return max(at, log.times[index] + self.period)

    def reserve(
        self, state: Log, now: float, cost: float, max_wait: float
    ) -> tuple[bool, Log, float]:
        """
        Log *cost* at the earliest time it fits.
        """
        if cost - self.quota > EPSILON:
            return False, state, INF
        at = self._expire(state, now)
        wait = self._slot(state, at, cost) - now
        if wait <= max_wait + TIME_SLACK:
            last = state.totals[-1] if state.totals else state.gone
            state.times.append(now + wait)
            state.totals.append(last + cost)
            return True, state, wait
        return False, state, wait

    def status(self, state: Log, now: float) -> tuple[int, float]:
        """
        Room left in the window ending now, and seconds until the latest
        entry expires.
        """
        self._expire(state, now)
        if state.head == len(state.times):
            return self.limit, 0.0
        times = state.times
        held = state.totals[-1] - state.gone
        if times[-1] > now:
            held = self.quota
        return (
            max(0, _floor(self.quota - held)),
            times[-1] + self.period - now,
        )

    def idle(self, state: Log, now: float) -> bool:
        """
        Whether every entry has expired.
        """
        self._expire(state, now)
        return state.head == len(state.times)

    def refund(
        self,
        state: Log,
        now: float,
        *,
        cost: float,
        before: Log,
        after: Log,
        slot: float,
    ) -> Log:
        """
        Remove the entry booked for *slot* if it is still the latest.
        """
        times, totals = state.times, state.totals
        if not len(state) or times[-1] != slot:
            return state
        previous = totals[-2] if len(totals) > 1 else state.gone
        if totals[-1] - previous == cost:
            times.pop()
            totals.pop()
        return state
