"""
A simulated downstream and a load generator for the adaptive limits
(importable as ``adaptive_sim``).

The downstream is a FIFO queue in front of *servers* workers that take
*service* seconds per call (an M/D/c queue when arrivals are random; here
they are evenly spaced): with more calls in flight than servers, calls
queue and their latency grows with the concurrency.  It refuses at once a
call that would wait longer than *max_queue_wait* (a downstream that
sheds load), and its number of servers can change during a run (an
overload from elsewhere takes some away).

The client admits an arriving call while ``in_flight < limit`` and sheds
it otherwise; it gives up on a call after *timeout* seconds (the
downstream still does the work).  Every finished call is fed to the
algorithm.  Time is a :class:`~stalwart.testing.FakeClock`, advanced from
one event to the next, so a run is exact and takes no real time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from collections.abc import Sequence

import attrs

import stalwart

from stalwart._core.adaptive import LimitAlgorithm
from stalwart.testing import FakeClock


class Downstream:
    """
    *servers* workers behind one FIFO queue, *service* seconds a call.
    """

    def __init__(
        self,
        servers: int,
        service: float,
        max_queue_wait: float | None = None,
    ) -> None:
        self.service = service
        self.max_queue_wait = max_queue_wait
        # When each worker is next free, earliest first.
        self.free_at: list[float] = [0.0] * servers

    def resize(self, servers: int, now: float) -> None:
        """
        Add workers (free now) or retire the ones busy longest (their
        current calls still finish).
        """
        free = sorted(self.free_at)
        if servers >= len(free):
            free += [now] * (servers - len(free))
        else:
            free = free[:servers]
        heapq.heapify(free)
        self.free_at = free

    def arrive(self, now: float) -> float | None:
        """
        Queue a call arriving at *now*: return when it will finish, or
        ``None`` if it is refused.
        """
        start = max(now, self.free_at[0])
        if (
            self.max_queue_wait is not None
            and start - now > self.max_queue_wait
        ):
            return None
        heapq.heapreplace(self.free_at, start + self.service)
        return start + self.service


@attrs.define
class Phase:
    """
    From *at* seconds on, the downstream has *servers* workers.
    """

    at: float
    servers: int


@attrs.define
class Trace:
    """
    What a run observed.

    Attributes:
        limits: ``(time, limit)`` after every finished call.
        admitted: Calls admitted, per phase.
        shed: Calls shed by the client's limit, per phase.
        dropped: Calls that timed out or were refused downstream, per
            phase.
        latencies: Latencies of the calls that ended well, per phase.
        completions: ``(time, latency)`` of every call that ended well.
    """

    limits: list[tuple[float, int]] = attrs.Factory(list)
    admitted: list[int] = attrs.Factory(list)
    shed: list[int] = attrs.Factory(list)
    dropped: list[int] = attrs.Factory(list)
    latencies: list[list[float]] = attrs.Factory(list)
    completions: list[tuple[float, float]] = attrs.Factory(list)

    def between(self, start: float, end: float) -> list[int]:
        """
        The limits seen from *start* to *end* seconds.
        """
        return [limit for t, limit in self.limits if start <= t < end]


def run(
    algorithm: LimitAlgorithm,
    *,
    phases: Sequence[Phase],
    end: float,
    service: float,
    rate: float,
    timeout: float,
    max_queue_wait: float | None = None,
) -> Trace:
    """
    Offer *rate* calls a second to the downstream through *algorithm*'s
    limit until *end* seconds, changing the downstream at each phase.
    """
    clock = FakeClock()
    downstream = Downstream(phases[0].servers, service, max_queue_wait)
    trace = Trace()
    seq = itertools.count()
    # (time, seq, kind, payload): arrivals, completions, phase changes.
    events: list[tuple[float, int, str, tuple[float, int, bool]]] = []
    for phase in phases:
        heapq.heappush(
            events, (phase.at, next(seq), "phase", (0.0, phase.servers, False))
        )
    heapq.heappush(events, (0.0, next(seq), "arrive", (0.0, 0, False)))
    in_flight = 0
    current = -1
    gap = 1.0 / rate
    arrivals = 0

    while events:
        at, _, kind, (started, admitted_with, dropped) = heapq.heappop(events)
        if at >= end:
            break
        clock.advance(at - clock.now())
        now = clock.now()
        if kind == "phase":
            current += 1
            downstream.resize(admitted_with, now)
            trace.admitted.append(0)
            trace.shed.append(0)
            trace.dropped.append(0)
            trace.latencies.append([])
        elif kind == "arrive":
            arrivals += 1
            heapq.heappush(
                events,
                (arrivals * gap, next(seq), "arrive", (0.0, 0, False)),
            )
            if in_flight >= algorithm.limit:
                trace.shed[current] += 1
                continue
            in_flight += 1
            trace.admitted[current] += 1
            finish = downstream.arrive(now)
            if finish is None:
                done, failed = now, True
            elif finish - now > timeout:
                done, failed = now + timeout, True
            else:
                done, failed = finish, False
            heapq.heappush(
                events, (done, next(seq), "done", (now, in_flight, failed))
            )
        else:
            in_flight -= 1
            rtt = now - started
            if dropped:
                trace.dropped[current] += 1
            else:
                trace.latencies[current].append(rtt)
                trace.completions.append((now, rtt))
            limit = algorithm.observe(now, rtt, admitted_with, dropped)
            trace.limits.append((now, limit))
    return trace


class Refused(Exception):
    """
    The downstream refused a call at once (it would have waited too long).
    """


def run_shell(
    bulkhead: stalwart.AdaptiveBulkhead | stalwart.Bulkhead,
    clock: FakeClock,
    *,
    phases: Sequence[Phase],
    end: float,
    service: float,
    rate: float,
    timeout: float,
    max_queue_wait: float | None = None,
) -> Trace:
    """
    Offer *rate* calls a second to the downstream through the real
    *bulkhead* (``acall`` in a task per call, on *clock*, which must be
    the bulkhead's; a fixed one for comparison) until *end* seconds, changing the downstream at each
    phase; the bulkhead sheds what it refuses.

    A call that the downstream refuses raises :class:`Refused`; one that
    would take longer than *timeout* raises :class:`TimeoutError` after
    *timeout* seconds (the downstream still does the work).  The limits
    are read after every finished call.
    """
    downstream = Downstream(phases[0].servers, service, max_queue_wait)
    trace = Trace()
    starts = [phase.at for phase in phases]

    async def downstream_call() -> None:
        now = clock.now()
        finish = downstream.arrive(now)
        if finish is None:
            raise Refused
        if finish - now > timeout:
            await clock.asleep(timeout)
            raise TimeoutError
        await clock.asleep(finish - now)

    async def one(phase: int) -> None:
        arrived = clock.now()
        try:
            await bulkhead.acall(downstream_call)
        except stalwart.BulkheadFullError:
            trace.shed[phase] += 1
            return
        except (TimeoutError, Refused):
            trace.admitted[phase] += 1
            trace.dropped[phase] += 1
        else:
            now = clock.now()
            trace.admitted[phase] += 1
            trace.latencies[phase].append(now - arrived)
            trace.completions.append((now, now - arrived))
        limit = (
            bulkhead.limit
            if isinstance(bulkhead, stalwart.AdaptiveBulkhead)
            else bulkhead.max_concurrent
        )
        trace.limits.append((clock.now(), limit))

    async def main() -> None:
        tasks = []
        gap = 1.0 / rate
        arrivals = 0
        phase = -1
        while (at := arrivals * gap) < end:
            await clock.asleep(at - clock.now())
            while phase + 1 < len(starts) and starts[phase + 1] <= at:
                phase += 1
                downstream.resize(phases[phase].servers, clock.now())
                trace.admitted.append(0)
                trace.shed.append(0)
                trace.dropped.append(0)
                trace.latencies.append([])
            tasks.append(asyncio.ensure_future(one(phase)))
            arrivals += 1
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return trace
