"""
Rate-limiting algorithms as pure functions over a small state.

Every algorithm is a frozen record of its configuration with the methods of
the :class:`Algorithm` protocol.  The one a store calls for a request is

* ``decide(state, now, cost, max_wait) -> (new_state, granted, at)``: grant
  *cost* at once, or book it for the earliest time the limit allows (a
  *slot*, not before any earlier booking, so waiters are served in the
  order they asked) if that is at most *max_wait* seconds away, or refuse
  it.  Granted: *at* is the slot (*now* when it goes at once).  Refused:
  the state is returned unchanged and *at* is the *ready time*, the
  earliest clock value at which the same request would be granted at once
  (``inf`` if it never can).

built from two smaller steps, which a store may also call on their own
(several rates at once, rescheduling):

* ``ready(state, now, cost)``: *now* if *cost* would be granted at once,
  else the ready time.
* ``book(state, now, slot, cost)``: the state after granting *cost* at
  *slot* (``slot >= ready(state, now, cost)``).

and, for the rest of a limiter's operations:

* ``fresh()``: the state of a key never seen (or forgotten);
* ``status(state, now) -> (remaining, reset_after, limit)``: how many
  requests of cost one would be granted now, how long until the key is
  back to fresh, and the nominal allowance (what the ``RateLimit`` HTTP
  headers need);
* ``idle(state, now)``: whether *state* answers every request from *now*
  on exactly as ``fresh()`` does, so a store may forget it;
* ``mark(state)`` and ``rewind(state, mark)``: undo every booking made
  since the mark (to take back a reservation that is still waiting, and
  rebook the waiters behind it);
* ``refund(state, now, cost, slot, before, after)``: give back a grant
  whose slot has passed; *before* and *after* are the marks around its
  booking.

Exactness.  Each algorithm grants a request at once exactly when a
*monotone* condition holds at the request's time: a later time never
grants less.  The ready time is a float later than *now* at which that
very condition, evaluated with the same floating-point expressions,
holds: the breakpoint itself where it is known (a window's start, a log
entry's expiry), else the closed-form answer, kept if it holds (the slack
of :data:`SLACK` absorbs its rounding) and otherwise replaced by the first
float above it that does (where the floats are coarser than the
arithmetic: a large clock value, a high rate).  So a request refused at
*now* is granted at once at any clock value from its ready time on.
Times are never advanced by small increments: the buckets keep a level
(in units of cost) and the time it was measured at, instead of an
absolute timestamp, so a level of 1e-9 s worth of cost is still counted
at a clock value of 1e9 s.

States are tuples of plain numbers, so a server-side store (Redis and Lua)
can run the same arithmetic atomically; only the sliding-window log holds
lists, which it updates in place.  A clock that steps backwards never
creates capacity.
"""

from __future__ import annotations

import math

from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import attrs


INF = math.inf

S = TypeVar("S")

_nextafter = math.nextafter
_floor = math.floor

SLACK = 2.0**-44
"""Relative slack when comparing amounts of cost: a request fits when
``count + cost <= capacity + slack`` and a bucket whose level has drained
below ``slack`` is empty, with ``slack = capacity * SLACK`` (at most
:data:`MAX_SLACK`).  It absorbs the rounding of the arithmetic (``0.1 *
10`` is a hair below ``1``), so that a closed-form ready time such as
``0.1`` s is exact; it lets through at most a millionth of a request more
than the limit."""

MAX_SLACK = 2.0**-20
"""The largest slack, in units of cost."""


def _slack(capacity: float) -> float:
    return min(capacity * SLACK, MAX_SLACK)


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

    @property
    def horizon(self) -> float:
        """
        The longest a key takes to become idle after one request that
        did not wait: how often a store looks for idle keys.
        """

    def fresh(self) -> S:
        """
        Return the state of a key never seen.
        """

    def ready(self, state: S, now: float, cost: float) -> float:
        """
        Return *now* if *cost* fits at once, else when it will.
        """

    def book(self, state: S, now: float, slot: float, cost: float) -> S:
        """
        Return the state after granting *cost* at *slot*.
        """

    def decide(
        self, state: S, now: float, cost: float, max_wait: float
    ) -> tuple[S, bool, float]:
        """
        Grant, book or refuse *cost*; return ``(state, granted, at)``.
        """

    def status(self, state: S, now: float) -> tuple[int, float, int]:
        """
        Return ``(remaining, reset_after, limit)`` at *now*.
        """

    def idle(self, state: S, now: float) -> bool:
        """
        Tell whether *state* acts as ``fresh()`` from *now* on.
        """

    def mark(self, state: S) -> Any:
        """
        Return a mark to :meth:`rewind` to.
        """

    def rewind(self, state: S, mark: Any) -> S:
        """
        Undo every booking made since *mark*.
        """

    def refund(
        self,
        state: S,
        now: float,
        *,
        cost: float,
        slot: float,
        before: Any,
        after: Any,
    ) -> S:
        """
        Give back a grant of *cost* at *slot* (a slot already past).
        """


def earliest(fits: Callable[[float], bool], lo: float, guess: float) -> float:
    """
    Return a float ``t > lo`` for which *fits* holds: *guess* if it does,
    else the smallest float above *guess* that does.

    *fits* must be monotone (false up to some float, true from it on) and
    false at *lo*.  *guess* is the closed-form answer, which the slack of
    :data:`SLACK` makes fit unless the floats near it are coarser than the
    arithmetic (a large clock value and a high rate): then the answer is
    found by walking a few floats up, and by bisection when it is further.
    """
    t = guess if guess > lo else _nextafter(lo, INF)
    if fits(t):
        return t
    for _ in range(4):
        t = _nextafter(t, INF)
        if fits(t):
            return t
    lo = t
    gap = abs(t) * 2.0**-40 + 2.0**-1000
    hi = lo + gap
    while not fits(hi):
        lo = hi
        gap *= 2.0
        hi = lo + gap
    while True:
        mid = lo + (hi - lo) / 2.0
        if not lo < mid < hi:
            return hi
        if fits(mid):
            hi = mid
        else:
            lo = mid


def window_of(t: float, period: float) -> int:
    """
    Return the index *k* of the aligned window holding *t*: the one with
    ``k * period <= t < (k + 1) * period``, the products taken in floats.

    ``floor(t / period)`` alone is one off wherever the division rounds
    across an integer (``4.3 / 0.1`` is ``42.99...`` while ``43 * 0.1`` is
    ``4.3``), which would let two windows overlap.
    """
    k = _floor(t / period)
    while k * period > t:
        k -= 1
    while (k + 1) * period <= t:
        k += 1
    return k


class _Decide:
    """
    :meth:`decide` for the algorithms whose slot is their ready time.
    """

    @property
    def capacity(self) -> float:
        raise NotImplementedError  # pragma: no cover  # every subclass has one

    def ready(self, state: Any, now: float, cost: float) -> float:
        raise NotImplementedError  # pragma: no cover  # every subclass has one

    def book(self, state: Any, now: float, slot: float, cost: float) -> Any:
        raise NotImplementedError  # pragma: no cover  # every subclass has one

    def decide(
        self, state: Any, now: float, cost: float, max_wait: float
    ) -> tuple[Any, bool, float]:
        """
        Grant *cost* at once, book it for its ready time if that is at
        most *max_wait* away, or refuse it.
        """
        if cost > self.capacity:
            return state, False, INF
        at = self.ready(state, now, cost)
        if at <= now:
            return self.book(state, now, now, cost), True, now
        if at - now <= max_wait:
            return self.book(state, now, at, cost), True, at
        return state, False, at

    def mark(self, state: Any) -> Any:
        """
        The state itself: states are immutable tuples.
        """
        return state

    def rewind(self, state: Any, mark: Any) -> Any:
        """
        The state that was marked.
        """
        return mark


# -------------------------------------------------------------------- buckets

BucketState = tuple[float, float, float]
"""``(at, level, booked)``: the level of the bucket, in units of cost, at
time *at* (it drains at *rate* units a second), and the latest slot booked
for a waiting request (no request goes at once before it).  ``at`` is
later than the clock while a booked request waits for its slot."""

ShaperState = tuple[float, float]
"""``(at, level)``: the cost queued at time *at*."""


@attrs.frozen
class _Level(_Decide):
    """
    What the buckets share: a level that drains at *rate* units a second
    into a bucket of *capacity* units.
    """

    rate: float
    capacity: float
    top: float = attrs.field(
        init=False,
        repr=False,
        eq=False,
        default=attrs.Factory(
            lambda self: self.capacity + _slack(self.capacity), takes_self=True
        ),
    )
    """The most a bucket holds, with the slack of :data:`SLACK`."""
    eps: float = attrs.field(
        init=False,
        repr=False,
        eq=False,
        default=attrs.Factory(
            lambda self: _slack(self.capacity), takes_self=True
        ),
    )
    """A level this low is an empty bucket (the slack of :data:`SLACK`)."""

    @property
    def limit(self) -> int:
        """
        The capacity, rounded down.
        """
        return _floor(self.capacity)

    @property
    def horizon(self) -> float:
        """
        The time a full bucket takes to drain.
        """
        return self.capacity / self.rate

    def level(self, state: Sequence[float], t: float) -> float:
        """
        The level at time *t* (the state's, if *t* is earlier).
        """
        at = state[0]
        level = state[1]
        if t > at:
            level -= (t - at) * self.rate
            if level <= self.eps:
                level = 0.0
        return level

    def _reset(
        self, state: Sequence[float], level: float, now: float
    ) -> float:
        reset = level / self.rate
        if state[0] > now:
            reset += state[0] - now
        return reset

    def idle(self, state: Sequence[float], now: float) -> bool:
        """
        Whether the bucket is empty now, with nothing booked later.
        """
        return state[0] <= now and self.level(state, now) == 0.0


@attrs.frozen
class BucketAlgorithm(_Level):
    """
    A bucket of *capacity* units that drains at *rate* units a second; a
    request of cost *c* fits when ``level + c <= capacity``.

    This is the token bucket (its tokens are ``capacity - level``), the
    leaky bucket used as a meter (its water is the level), and GCRA (its
    theoretical arrival time is ``at + level / rate``, kept relative to
    *at* so that it stays exact at any clock value): three names for one
    algorithm, which therefore make exactly the same decisions.

    A reservation books the request for the time the level has drained
    enough, and no request goes at once before that slot, so every later
    request waits after it.  A request stamped before the bucket's own
    time, but not before a booked slot (a thread that read the clock
    just before another), is counted at the bucket's time.  Refund of a
    past grant takes its cost back out of the bucket: exact when nothing
    was granted since, and otherwise it frees room for the next request.
    """

    def fresh(self) -> BucketState:
        """
        An empty bucket (a full token bucket).
        """
        return (-INF, 0.0, -INF)

    def _fits(self, state: BucketState, t: float, cost: float) -> bool:
        return t >= state[2] and self.level(state, t) + cost <= self.top

    def ready(self, state: BucketState, now: float, cost: float) -> float:
        """
        When the level will have drained to ``capacity - cost`` (and not
        before the latest booked slot).
        """
        if self._fits(state, now, cost):
            return now
        at, level, booked = state
        excess = level + cost - self.capacity
        # Waiting only for the booked slot, or for the level to drain.
        guess = booked if excess <= 0.0 else at + excess / self.rate
        return earliest(lambda t: self._fits(state, t, cost), now, guess)

    def book(
        self, state: BucketState, now: float, slot: float, cost: float
    ) -> BucketState:
        """
        Add *cost* to the level at *slot* (or at the bucket's own time,
        if that is later); a slot later than *now* is booked.
        """
        at, _, booked = state
        at = max(slot, at)
        if slot > now:
            booked = slot
        return (at, self.level(state, at) + cost, booked)

    def status(self, state: BucketState, now: float) -> tuple[int, float, int]:
        """
        Whole units of room left now, seconds until the bucket is empty (a
        token bucket: full), and the limit.
        """
        level = self.level(state, now)
        room = self.capacity - level if state[2] <= now else 0.0
        return (
            int(room) if room > 0.0 else 0,
            self._reset(state, level, now),
            self.limit,
        )

    def refund(
        self,
        state: BucketState,
        now: float,
        *,
        cost: float,
        slot: float,
        before: Any,
        after: Any,
    ) -> BucketState:
        """
        Take *cost* back out of the bucket.
        """
        if state == after:
            return before  # type: ignore[no-any-return]  # a mark is a state
        at, _, booked = state
        at = max(now, at)
        return (at, max(0.0, self.level(state, at) - cost), booked)


@attrs.frozen
class ShaperAlgorithm(_Level):
    """
    A leaky bucket used as a shaper: requests leave the bucket one after
    the other, spaced at *rate* units a second.

    A request is granted at once only when no one is queued; with a wait
    it is booked for the time the requests before it have leaked out, and
    refused when the queue (the bucket, of *capacity* units) is full,
    whatever the wait.  The ready time of a refusal is when the queue is
    empty.  Refund of a past slot leaves the bucket alone, so that the
    slots handed out after it keep their spacing.
    """

    def fresh(self) -> ShaperState:
        """
        An empty queue.
        """
        return (-INF, 0.0)

    def ready(self, state: ShaperState, now: float, cost: float) -> float:
        """
        When the queue will be empty.
        """
        if self.level(state, now) == 0.0:
            return now
        at, level = state
        return earliest(
            lambda t: self.level(state, t) == 0.0, now, at + level / self.rate
        )

    def book(
        self, state: ShaperState, now: float, slot: float, cost: float
    ) -> ShaperState:
        """
        Queue *cost* behind what is queued now.
        """
        at = max(now, state[0])
        return (at, self.level(state, at) + cost)

    def decide(
        self, state: ShaperState, now: float, cost: float, max_wait: float
    ) -> tuple[ShaperState, bool, float]:
        """
        Release *cost* at once if no one is queued, queue it if there is
        room and its slot is at most *max_wait* away, or refuse it.
        """
        if cost > self.capacity:
            return state, False, INF
        at = self.ready(state, now, cost)
        if at <= now:
            return self.book(state, now, now, cost), True, now
        if self.level(state, now) + cost <= self.top and at - now <= max_wait:
            return self.book(state, now, at, cost), True, at
        return state, False, at

    def status(self, state: ShaperState, now: float) -> tuple[int, float, int]:
        """
        One when no one is queued (else zero), seconds until the queue is
        empty, and the limit.
        """
        level = self.level(state, now)
        return (
            1 if level == 0.0 else 0,
            self._reset(state, level, now),
            self.limit,
        )

    def refund(
        self,
        state: ShaperState,
        now: float,
        *,
        cost: float,
        slot: float,
        before: Any,
        after: Any,
    ) -> ShaperState:
        """
        Restore the state if the slot was the last one booked, else keep
        the later slots' spacing.
        """
        if state == after:
            return before  # type: ignore[no-any-return]  # a mark is a state
        return state


# -------------------------------------------------------------------- windows


@attrs.frozen
class _PerWindow(_Decide):
    """
    What the window algorithms share: at most *quota* per *period*.
    """

    quota: float
    period: float
    top: float = attrs.field(
        init=False,
        repr=False,
        eq=False,
        default=attrs.Factory(
            lambda self: self.quota + _slack(self.quota), takes_self=True
        ),
    )
    """The limit, with the slack of :data:`SLACK`."""

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

    @property
    def horizon(self) -> float:
        """
        One period.
        """
        return self.period


WindowState = tuple[float, float]
"""``(window, count)``: the index of the window booked last, and the cost
counted in it."""


@attrs.frozen
class FixedWindowAlgorithm(_PerWindow):
    """
    At most *quota* per aligned window ``[k * period, (k + 1) * period)``.

    A request that does not fit is booked at the start of the next window,
    and every later request follows it there (waiters in order).  Refund
    of a past grant takes its cost off its window while that window is
    still the one counted.
    """

    def fresh(self) -> WindowState:
        """
        Nothing booked.
        """
        return (-INF, 0.0)

    def ready(self, state: WindowState, now: float, cost: float) -> float:
        """
        Now if the window has room, else the next window's start (or the
        booked window's start, after a clock step back).
        """
        window, count = state
        k = window_of(now, self.period)
        if k > window or (k == window and count + cost <= self.top):
            return now
        if count + cost <= self.top:
            return window * self.period
        return (window + 1) * self.period

    def book(
        self, state: WindowState, now: float, slot: float, cost: float
    ) -> WindowState:
        """
        Count *cost* in the window of *slot*.
        """
        window, count = state
        k = window_of(slot, self.period)
        if k > window:
            return (k, cost)
        return (window, count + cost)

    def status(self, state: WindowState, now: float) -> tuple[int, float, int]:
        """
        Room left in the current window, seconds until it ends, and the
        limit.
        """
        window, count = state
        k = window_of(now, self.period)
        if k > window:
            return self.limit, 0.0, self.limit
        room = self.quota - count if k == window else 0.0
        return (
            int(room) if room > 0.0 else 0,
            (window + 1) * self.period - now,
            self.limit,
        )

    def idle(self, state: WindowState, now: float) -> bool:
        """
        Whether the window booked last has ended.
        """
        return window_of(now, self.period) > state[0]

    def refund(
        self,
        state: WindowState,
        now: float,
        *,
        cost: float,
        slot: float,
        before: Any,
        after: Any,
    ) -> WindowState:
        """
        Take *cost* off its window if that window is the one counted.
        """
        if state == after:
            return before  # type: ignore[no-any-return]  # a mark is a state
        window, count = state
        if window_of(slot, self.period) == window:
            return window, max(0.0, count - cost)
        return state


CounterState = tuple[float, float, float, float]
"""``(window, previous, current, booked)``: the index of the window counted
last, the cost counted in the window before it and in it, and the latest
slot booked for a waiting request (so later requests wait after it)."""


@attrs.frozen
class SlidingWindowCounterAlgorithm(_PerWindow):
    """
    Two fixed windows, the previous one weighted by how much of it still
    overlaps the sliding window: ``previous * (1 - elapsed) + current``.

    Bound: every aligned window holds at most *quota*, so any interval of
    length *period* holds less than ``2 * quota``; with evenly spread
    traffic the estimate is close to the exact sliding log.

    Refund of a past grant takes its cost off the window it was counted
    in, while that window is still the current or the previous one.
    """

    @property
    def horizon(self) -> float:
        """
        Two periods: a request counts in its window and the next.
        """
        return 2.0 * self.period

    def fresh(self) -> CounterState:
        """
        Nothing booked.
        """
        return (-INF, 0.0, 0.0, -INF)

    def _counts(self, state: CounterState, k: float) -> tuple[float, float]:
        """
        ``(previous, current)`` as seen from window *k* (not before the
        window counted last).
        """
        window, previous, current, _ = state
        if k == window:
            return previous, current
        if k == window + 1:
            return current, 0.0
        return 0.0, 0.0

    def _fits(self, state: CounterState, t: float, cost: float) -> bool:
        if t < state[3]:
            return False
        period = self.period
        k = window_of(t, period)
        if k < state[0]:
            return False
        previous, current = self._counts(state, k)
        elapsed = (t - k * period) / period
        return previous * (1.0 - elapsed) + current + cost <= self.top

    def ready(self, state: CounterState, now: float, cost: float) -> float:
        """
        The earliest time the weighted count leaves room for *cost*.
        """
        if self._fits(state, now, cost):
            return now
        period = self.period
        start = max(now, state[3])
        first = int(max(window_of(start, period), state[0]))

        def fits(t: float) -> bool:
            return self._fits(state, t, cost)

        for k in range(first, first + 2):
            previous, current = self._counts(state, k)
            room = self.quota - current - cost
            if room >= self.quota - self.top:  # it fits, with the slack
                room = max(room, 0.0)
                guess = k * period
                if previous > room:
                    guess += (1.0 - room / previous) * period
                guess = max(guess, start)
                if guess < (k + 1) * period:
                    return earliest(fits, now, guess)
        # Two windows on, both counts are empty and any cost fits.
        return earliest(fits, now, max((first + 2) * period, start))

    def book(
        self, state: CounterState, now: float, slot: float, cost: float
    ) -> CounterState:
        """
        Count *cost* in the window of *slot*.
        """
        window, _, _, booked = state
        k = max(window_of(slot, self.period), window)
        previous, current = self._counts(state, k)
        if slot > now:
            booked = max(booked, slot)
        return (k, previous, current + cost, booked)

    def status(
        self, state: CounterState, now: float
    ) -> tuple[int, float, int]:
        """
        Room left under the weighted count, seconds until it is zero, and
        the limit.
        """
        window, previous, current, booked = state
        if current:
            reset = (window + 2) * self.period - now
        elif previous:
            reset = (window + 1) * self.period - now
        else:
            reset = 0.0
        period = self.period
        k = window_of(now, period)
        room = 0.0
        if k >= window and booked <= now:
            previous, current = self._counts(state, k)
            elapsed = (now - k * period) / period
            room = self.quota - (previous * (1.0 - elapsed) + current)
        return (
            int(room) if room > 0.0 else 0,
            max(0.0, reset),
            self.limit,
        )

    def idle(self, state: CounterState, now: float) -> bool:
        """
        Whether both counted windows have ended, with nothing booked later.
        """
        k = window_of(now, self.period)
        return (
            state[3] <= now
            and k >= state[0]
            and self._counts(state, k) == (0.0, 0.0)
        )

    def refund(
        self,
        state: CounterState,
        now: float,
        *,
        cost: float,
        slot: float,
        before: Any,
        after: Any,
    ) -> CounterState:
        """
        Take *cost* off the window it was counted in.
        """
        if state == after:
            return before  # type: ignore[no-any-return]  # a mark is a state
        window, previous, current, booked = state
        k = window_of(slot, self.period)
        if k == window:
            current = max(0.0, current - cost)
        elif k == window - 1:
            previous = max(0.0, previous - cost)
        return window, previous, current, booked


# ---------------------------------------------------------------- sliding log


@attrs.define
class Log:
    """
    The entries of a sliding-window log, oldest first.

    ``times[i]`` is when entry *i* was granted (or booked for), and
    ``totals[i]`` the cost of every entry up to and including it since the
    log was last empty, so the cost of a run of entries is a difference
    and the entry that must expire is found by bisection.  ``head`` skips
    the entries that have expired (``gone`` is their total), and
    ``dropped`` counts the entries compacted away before ``times[0]``
    (marks count entries from the first).  ``latest`` is the latest time
    the log was read at: its entries are expired up to that time, so a
    request stamped earlier is served as if at that time.
    """

    times: list[float] = attrs.Factory(list)
    totals: list[float] = attrs.Factory(list)
    head: int = 0
    gone: float = 0.0
    latest: float = -INF
    dropped: int = 0

    def __len__(self) -> int:
        """
        The number of entries not yet expired.
        """
        return len(self.times) - self.head


# Compact the expired prefix once it is this long and half the lists.
COMPACT_AFTER = 64


@attrs.frozen
class SlidingWindowLogAlgorithm(_PerWindow):
    """
    Exact: at most *quota* in every window ``(t - period, t]``.

    Each granted request is logged with its time and cost; an entry stops
    counting at ``time + period``.  Granting, expiring and compacting are
    amortised O(1); finding when a refused request would fit is one
    bisection.  The log holds at most *quota* entries of cost one.

    Refund of a past grant removes its entry while it is the latest one;
    an entry booked before other entries stays (it expires as usual).
    """

    def fresh(self) -> Log:
        """
        An empty log.
        """
        return Log()

    def expire(self, log: Log, now: float) -> float:
        """
        Drop the entries expired at *now*; return the time the log stands
        at (*now*, or the latest time it was read at if that is later).
        """
        if now < log.latest:
            now = log.latest
        else:
            log.latest = now
        times = log.times
        head = log.head
        size = len(times)
        period = self.period
        while head < size and times[head] + period <= now:
            head += 1
        if head != log.head:
            if head == size:  # empty: start the totals afresh
                times.clear()
                log.totals.clear()
                log.dropped += size
                log.gone = 0.0
                head = 0
            else:
                log.gone = log.totals[head - 1]
                if head >= COMPACT_AFTER and head * 2 >= size:
                    del times[:head]
                    del log.totals[:head]
                    log.dropped += head
                    head = 0
            log.head = head
        return now

    def ready(self, state: Log, now: float, cost: float) -> float:
        """
        Now if the entries of the window leave room, else when enough of
        the oldest will have expired (and not before the latest entry).
        """
        at = self.expire(state, now)
        times = state.times
        if state.head == len(times):
            return now
        top = self.top
        total = state.totals[-1]
        last = times[-1]
        if last <= at and total - state.gone + cost <= top:
            return now
        if total - state.gone + cost <= top:
            return last
        # The first entry whose expiry leaves room for cost.
        index = bisect_left(
            state.totals,
            True,  # the key maps entries to bools
            state.head,
            key=lambda done: total - done + cost <= top,
        )
        return max(last, times[index] + self.period)

    def book(self, state: Log, now: float, slot: float, cost: float) -> Log:
        """
        Log *cost* at *slot* (at the time the log stands at, if later).
        """
        slot = max(slot, state.latest)
        totals = state.totals
        state.times.append(slot)
        totals.append((totals[-1] if totals else state.gone) + cost)
        return state

    def status(self, state: Log, now: float) -> tuple[int, float, int]:
        """
        Room left in the window ending now, seconds until the latest entry
        expires, and the limit.
        """
        at = self.expire(state, now)
        times = state.times
        if state.head == len(times):
            return self.limit, 0.0, self.limit
        held = state.totals[-1] - state.gone
        if times[-1] > at:
            held = self.quota
        room = self.quota - held
        return (
            int(room) if room > 0.0 else 0,
            times[-1] + self.period - now,
            self.limit,
        )

    def idle(self, state: Log, now: float) -> bool:
        """
        Whether every entry has expired.
        """
        self.expire(state, now)
        return state.head == len(state.times)

    def mark(self, state: Log) -> int:
        """
        How many entries were ever logged.
        """
        return state.dropped + len(state.times)

    def rewind(self, state: Log, mark: Any) -> Log:
        """
        Remove the entries logged after *mark* (entries still waiting for
        their slots, so never expired).
        """
        keep = mark - state.dropped
        del state.times[keep:]
        del state.totals[keep:]
        return state

    def refund(
        self,
        state: Log,
        now: float,
        *,
        cost: float,
        slot: float,
        before: Any,
        after: Any,
    ) -> Log:
        """
        Remove the entry if it is still the latest one.
        """
        if after == self.mark(state) and before - state.dropped >= state.head:
            return self.rewind(state, before)
        return state


# ----------------------------------------------------------------- multi-rate


@attrs.frozen
class MultiRateAlgorithm(_Decide):
    """
    Several algorithms at once: a request is granted only if every one
    grants it, and then it is booked in all of them at one slot (the
    latest of their ready times); refused, it changes none.

    Status reports the algorithm with the least room left: its remaining,
    its reset and its limit.
    """

    parts: tuple[Any, ...]

    @property
    def limit(self) -> int:
        """
        The smallest limit.
        """
        limit: int = min(part.limit for part in self.parts)
        return limit

    @property
    def capacity(self) -> float:
        """
        The smallest capacity.
        """
        capacity: float = min(part.capacity for part in self.parts)
        return capacity

    @property
    def horizon(self) -> float:
        """
        The longest horizon.
        """
        horizon: float = max(part.horizon for part in self.parts)
        return horizon

    def fresh(self) -> tuple[Any, ...]:
        """
        Every part fresh.
        """
        return tuple(part.fresh() for part in self.parts)

    def ready(self, state: Sequence[Any], now: float, cost: float) -> float:
        """
        The latest of the parts' ready times.
        """
        ready: float = max(
            part.ready(sub, now, cost)
            for part, sub in zip(self.parts, state, strict=True)
        )
        return ready

    def book(
        self, state: Sequence[Any], now: float, slot: float, cost: float
    ) -> tuple[Any, ...]:
        """
        Book *cost* at *slot* in every part.
        """
        return tuple(
            part.book(sub, now, slot, cost)
            for part, sub in zip(self.parts, state, strict=True)
        )

    def status(
        self, state: Sequence[Any], now: float
    ) -> tuple[int, float, int]:
        """
        The status of the part with the least room.
        """
        status: tuple[int, float, int] = min(
            (
                part.status(sub, now)
                for part, sub in zip(self.parts, state, strict=True)
            ),
            key=lambda status: status[0],
        )
        return status

    def idle(self, state: Sequence[Any], now: float) -> bool:
        """
        Whether every part is idle.
        """
        return all(
            part.idle(sub, now)
            for part, sub in zip(self.parts, state, strict=True)
        )

    def mark(self, state: Sequence[Any]) -> tuple[Any, ...]:
        """
        Every part's mark.
        """
        return tuple(
            part.mark(sub) for part, sub in zip(self.parts, state, strict=True)
        )

    def rewind(self, state: Sequence[Any], mark: Any) -> tuple[Any, ...]:
        """
        Rewind every part to its mark.
        """
        return tuple(
            part.rewind(sub, m)
            for part, sub, m in zip(self.parts, state, mark, strict=True)
        )

    def refund(
        self,
        state: Sequence[Any],
        now: float,
        *,
        cost: float,
        slot: float,
        before: Any,
        after: Any,
    ) -> tuple[Any, ...]:
        """
        Refund in every part.
        """
        return tuple(
            part.refund(sub, now, cost=cost, slot=slot, before=b, after=a)
            for part, sub, b, a in zip(
                self.parts, state, before, after, strict=True
            )
        )
