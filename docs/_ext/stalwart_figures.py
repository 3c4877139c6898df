"""
Pictures of the primitives at work, drawn at build time from the library
itself on a FakeClock.

Each figure runs a real primitive through its public API (``stalwart`` and
``stalwart.testing`` only) on fake time and plots what the library
reported: the waits a retry slept, the breaker's state changes, a token
bucket's decisions, a bulkhead's statistics.  Nothing is drawn from a model
of the primitive, so a figure changes when the behaviour does.

``` {stalwart-figure} backoff
Caption text.
```

writes ``backoff.png`` into the build directory (``<doctrees>/figures``),
never into ``docs/``, and includes it as a figure.  ``FIGURES_AT_END`` in
``conf.py`` appends figures to pages without editing them.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import random

from collections.abc import Callable
from typing import Any

from docutils import nodes
from matplotlib.figure import Figure
from sphinx.application import Sphinx
from sphinx.directives.patches import Figure as FigureDirective
from sphinx.util import logging

import stalwart

from stalwart.testing import FakeClock


logger = logging.getLogger(__name__)

GREEN, RED, GREY, BLUE, ORANGE = (
    "#2a9d55",
    "#d1495b",
    "#8d99ae",
    "#2e6fba",
    "#e07a1f",
)


def _figure(rows: int = 1, cols: int = 1, **kw: Any) -> tuple[Figure, Any]:
    # A Figure without pyplot: no backend, no global state to close.
    fig = Figure(figsize=(7.2, 2.6 * rows), layout="constrained")
    return fig, fig.subplots(rows, cols, **kw)


# ------------------------------------------------------------------ backoff


def _waits(
    wait: stalwart.ConstantBackoff
    | stalwart.LinearBackoff
    | stalwart.ExponentialBackoff
    | stalwart.DecorrelatedJitterBackoff,
    draws: Callable[[], float],
    attempts: int,
) -> list[float]:
    """
    The waits a Retry with this backoff schedules before attempts 2, 3...
    """
    scheduled: list[stalwart.Event] = []
    retry = stalwart.Retry(
        attempts=attempts,
        timeout=None,
        wait=wait,
        jitter_source=draws,
        clock=FakeClock(),
        hooks=[scheduled.append],
    )

    def fail() -> None:
        raise ConnectionError

    try:
        retry.call(fail)
    except ConnectionError:
        pass
    # The events, not clock.sleeps: a zero wait is not slept.
    return [
        e.wait for e in scheduled if isinstance(e, stalwart.RetryScheduled)
    ]


def backoff() -> Figure:
    """
    The wait before each attempt, per strategy, with and without jitter.
    """
    attempts = 8
    x = list(range(2, attempts + 1))
    low, high = (lambda: 0.0), (lambda: 0.999999)
    fig, axes = _figure(2, 2, sharex=True)
    panels = [
        ("ConstantBackoff(delay=1)", stalwart.ConstantBackoff(delay=1.0), []),
        (
            "LinearBackoff(initial=0.5, increment=0.5)",
            stalwart.LinearBackoff(initial=0.5, increment=0.5),
            ["equal", "full"],
        ),
        (
            "ExponentialBackoff(initial=0.25, cap=8)",
            stalwart.ExponentialBackoff(initial=0.25, cap=8.0, jitter="none"),
            ["full", 0.25],
        ),
        (
            "DecorrelatedJitterBackoff(initial=0.25, cap=8)",
            stalwart.DecorrelatedJitterBackoff(
                initial=0.25, multiplier=3.0, cap=8.0
            ),
            [],
        ),
    ]
    for ax, (title, wait, jitters) in zip(axes.flat, panels, strict=True):
        ax.set_title(title, fontsize=8, family="monospace")
        if isinstance(wait, stalwart.DecorrelatedJitterBackoff):
            lo, hi = _waits(wait, low, attempts), _waits(wait, high, attempts)
            ax.fill_between(x, lo, hi, color=BLUE, alpha=0.15, step=None)
            rng = random.Random(7)
            for seed in range(5):
                draws = random.Random(seed).random
                ax.plot(
                    x,
                    _waits(wait, draws, attempts),
                    marker=".",
                    lw=0.8,
                    color=BLUE,
                    alpha=0.4 + 0.1 * rng.random(),
                )
            ax.plot([], [], color=BLUE, label="five random runs")
            ax.fill_between([], [], [], color=BLUE, alpha=0.15, label="range")
        else:
            ax.plot(
                x,
                _waits(wait, low, attempts),
                marker="o",
                color="black",
                lw=1.2,
                label='no jitter ("none")',
            )
            for jitter, colour in zip(jitters, (ORANGE, BLUE), strict=False):
                jittered = type(wait)(**{**_fields(wait), "jitter": jitter})
                lo = _waits(jittered, low, attempts)
                hi = _waits(jittered, high, attempts)
                ax.fill_between(
                    x,
                    lo,
                    hi,
                    facecolor=colour,
                    edgecolor=colour,
                    alpha=0.25,
                    lw=1.2,
                    label=f"jitter={jitter!r}",
                )
        ax.set_ylim(0, ax.get_ylim()[1] * 1.45)  # room for the legend
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    for ax in axes[1]:
        ax.set_xlabel("attempt")
    for ax in axes[:, 0]:
        ax.set_ylabel("wait before it (s)")
    return fig


def _fields(wait: Any) -> dict[str, Any]:
    names = ("delay", "initial", "increment", "multiplier", "cap")
    return {n: getattr(wait, n) for n in names if hasattr(wait, n)}


# ------------------------------------------------------------------ breaker


def breaker() -> Figure:
    """
    A breaker's state over time against the outcomes of the calls.
    """
    clock = FakeClock()
    changes: list[stalwart.Event] = []
    cb = stalwart.CircuitBreaker(
        failure_threshold=3,
        recovery_time=8.0,
        clock=clock,
        hooks=[changes.append],
    )
    down = [(10.0, 30.0), (41.0, 43.0)]  # when the dependency fails

    def dependency() -> None:
        if any(start <= clock.now() < end for start, end in down):
            raise ConnectionError

    outcomes: dict[str, list[float]] = {"ok": [], "failed": [], "refused": []}
    for _ in range(60):  # a call a second
        try:
            cb.call(dependency)
            outcomes["ok"].append(clock.now())
        except ConnectionError:
            outcomes["failed"].append(clock.now())
        except stalwart.CircuitOpenError:
            outcomes["refused"].append(clock.now())
        clock.advance(1.0)

    fig, (top, bottom) = _figure(2, 1, sharex=True, height_ratios=[1, 1.4])
    for start, end in down:
        for ax in (top, bottom):
            ax.axvspan(start, end, color=RED, alpha=0.08, lw=0)
    top.text(20, 1.35, "dependency down", ha="center", fontsize=8, color=RED)
    marks = {
        "ok": ("o", GREEN, "succeeded"),
        "failed": ("x", RED, "failed"),
        "refused": ("s", GREY, "refused (CircuitOpenError)"),
    }
    for kind, (marker, colour, label) in marks.items():
        times = outcomes[kind]
        top.scatter(
            times, [1] * len(times), marker=marker, color=colour, label=label
        )
    top.set_yticks([])
    top.set_ylim(0.5, 1.6)
    top.legend(fontsize=7, ncol=3, loc="lower center")
    top.set_title(
        "CircuitBreaker(failure_threshold=3, recovery_time=8), a call a second",
        fontsize=8,
    )

    levels = {
        stalwart.CircuitState.CLOSED: 0,
        stalwart.CircuitState.HALF_OPEN: 1,
        stalwart.CircuitState.OPEN: 2,
    }
    times, states = [0.0], [0]
    for event in changes:
        if not isinstance(event, stalwart.CircuitStateChanged):
            continue  # a CallRejected
        times.append(event.at)
        states.append(levels[event.state])
    times.append(clock.now())
    states.append(states[-1])
    bottom.step(times, states, where="post", color=BLUE, lw=2)
    bottom.set_yticks(list(levels.values()), [s.name for s in levels])
    bottom.set_ylim(-0.4, 2.4)
    bottom.set_xlabel("time (s)")
    bottom.grid(alpha=0.3)
    return fig


# ------------------------------------------------------------- token bucket


def token_bucket() -> Figure:
    """
    A token bucket's level, and the requests it admitted and refused.
    """
    clock = FakeClock()
    bucket = stalwart.TokenBucket(rate=2, capacity=5, clock=clock)
    capacity, rate = 5.0, bucket.rate.per_second
    arrivals = sorted(
        [1.0 + 0.1 * i for i in range(8)]  # a burst of 8
        + [4.0 + 0.25 * i for i in range(16)]  # 4 a second for 4 s
        + [11.0 + 0.1 * i for i in range(4)]  # a burst of 4 after a rest
    )
    points: list[tuple[float, float]] = [(0.0, capacity)]
    admitted, refused = [], []
    for at in arrivals:
        clock.advance(at - clock.now())
        decision = bucket.try_acquire()
        # reset_after: the time to refill to capacity, from the library.
        level = capacity - decision.reset_after * rate
        before = level + 1 if decision.granted else level
        last_t, last_level = points[-1]
        full_at = last_t + (capacity - last_level) / rate
        if full_at < at:  # the bucket was full before this request
            points.append((full_at, capacity))
        points += [(at, before), (at, level)]
        (admitted if decision.granted else refused).append((at, level))
    points.append((14.0, min(capacity, points[-1][1] + rate * (14 - at))))

    fig, ax = _figure()
    ax.plot(*zip(*points, strict=True), color=BLUE, lw=1.5, label="tokens")
    ax.axhline(capacity, color=GREY, ls="--", lw=1, label="capacity")
    if admitted:
        ax.scatter(
            *zip(*admitted, strict=True),
            color=GREEN,
            marker="o",
            s=18,
            zorder=3,
            label="admitted",
        )
    if refused:
        ax.scatter(
            *zip(*refused, strict=True),
            color=RED,
            marker="x",
            s=30,
            zorder=3,
            label="refused",
        )
    ax.set_title(
        "TokenBucket(rate=2, capacity=5): a burst of 8, 4 requests a second,"
        " a rest, a burst of 4",
        fontsize=8,
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("tokens")
    ax.set_ylim(-0.3, capacity + 0.8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=4, loc="upper right")
    return fig


# ----------------------------------------------------------------- bulkhead


def bulkhead() -> Figure:
    """
    A bulkhead's calls in flight and callers queued over time.
    """
    clock = FakeClock()
    bh = stalwart.Bulkhead(
        max_concurrent=3, max_queue=3, max_wait=2.5, clock=clock
    )
    arrivals = [(1.0 + 0.05 * i, 3.0) for i in range(8)]  # 8 at once, 3 s
    arrivals += [(6.0 + 0.8 * i, 1.5) for i in range(6)]  # a steady trickle
    samples: list[tuple[float, int, int]] = []
    refused: list[float] = []

    async def caller(at: float, work: float) -> None:
        await clock.asleep(at - clock.now())
        try:
            async with bh:
                await clock.asleep(work)
        except stalwart.BulkheadFullError:
            refused.append(clock.now())

    async def sample(until: float) -> None:
        while clock.now() <= until:
            stats = bh.statistics()
            samples.append((clock.now(), stats.in_flight, stats.queued))
            await clock.asleep(0.05)

    async def main() -> None:
        await asyncio.gather(
            sample(14.0), *(caller(at, work) for at, work in arrivals)
        )

    asyncio.run(main())

    fig, ax = _figure()
    times = [t for t, _, _ in samples]
    in_flight = [n for _, n, _ in samples]
    queued = [q for _, _, q in samples]
    ax.stackplot(
        times,
        in_flight,
        queued,
        colors=[BLUE, ORANGE],
        alpha=0.7,
        labels=["in flight", "queued"],
        step="post",
    )
    ax.axhline(3, color=BLUE, ls="--", lw=1)
    ax.axhline(6, color=ORANGE, ls="--", lw=1)
    ax.text(14.1, 3, "max_concurrent", va="center", fontsize=7)
    ax.text(14.1, 6, "+ max_queue", va="center", fontsize=7)
    ax.scatter(
        refused,
        [6.6] * len(refused),
        marker="x",
        color=RED,
        zorder=3,
        label="refused (BulkheadFullError)",
    )
    ax.set_title(
        "Bulkhead(max_concurrent=3, max_queue=3, max_wait=2.5): 8 calls of"
        " 3 s at once, then one call of 1.5 s every 0.8 s",
        fontsize=8,
    )
    ax.set_xlim(0, 14)
    ax.set_ylim(0, 7.2)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("callers")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=3, loc="upper right")
    return fig


# ------------------------------------------------------- adaptive bulkhead

SPIKE = (20.0, 40.0)  # when the offered load triples
SPIKE_END = 60.0


class _Downstream:
    """
    *servers* workers behind one FIFO queue, *service* seconds a call: with
    more calls in flight than workers, calls queue and latency grows.
    """

    def __init__(self, servers: int, service: float) -> None:
        self.service = service
        self.free_at = [0.0] * servers

    def finish(self, now: float) -> float:
        """
        Queue a call arriving at *now*; return when it will be done.
        """
        earliest = min(range(len(self.free_at)), key=self.free_at.__getitem__)
        done = max(now, self.free_at[earliest]) + self.service
        self.free_at[earliest] = done
        return done


def _spike(bulkhead: Any, clock: FakeClock) -> list[tuple[float, float]]:
    """
    Offer 150 calls a second to a downstream that serves 200 (20 workers,
    100 ms a call), 450 a second during the spike, through *bulkhead*;
    the client gives up on a call after 0.5 s (the downstream still does
    the work).

    Returns:
        ``(time, latency)`` of every call that ended well.
    """
    downstream = _Downstream(20, 0.1)
    done: list[tuple[float, float]] = []

    async def call() -> None:
        now = clock.now()
        wait = downstream.finish(now) - now
        if wait > 0.5:
            await clock.asleep(0.5)
            raise TimeoutError
        await clock.asleep(wait)

    async def one() -> None:
        start = clock.now()
        try:
            await bulkhead.acall(call)
        except (TimeoutError, stalwart.BulkheadFullError):
            return
        done.append((clock.now(), clock.now() - start))

    async def main() -> None:
        tasks = []
        at = 0.0
        while at < SPIKE_END:
            await clock.asleep(at - clock.now())
            tasks.append(asyncio.ensure_future(one()))
            at += 1 / (450 if SPIKE[0] <= at < SPIKE[1] else 150)
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return done


def _per_second(
    done: list[tuple[float, float]],
) -> tuple[list[int], list[int], list[float]]:
    """
    Goodput and median latency (ms) in each second.
    """
    seconds = list(range(int(SPIKE_END)))
    buckets: list[list[float]] = [[] for _ in seconds]
    for at, latency in done:
        if at < SPIKE_END:
            buckets[int(at)].append(latency)
    medians = [
        1000 * sorted(b)[len(b) // 2] if b else float("nan") for b in buckets
    ]
    return seconds, [len(b) for b in buckets], medians


def adaptive_bulkhead() -> Figure:
    """
    Goodput and latency through a load spike: a fixed limit against an
    adaptive one.
    """
    fixed_clock, adaptive_clock = FakeClock(), FakeClock()
    limits: list[tuple[float, int]] = []

    def on_event(event: stalwart.Event) -> None:
        if isinstance(event, stalwart.LimitChanged):
            limits.append((event.at, event.limit))

    adaptive = stalwart.AdaptiveBulkhead(
        min_limit=2, max_limit=150, clock=adaptive_clock, hooks=[on_event]
    )
    limits.append((0.0, adaptive.limit))
    runs = {
        "Bulkhead(max_concurrent=150)": _spike(
            stalwart.Bulkhead(max_concurrent=150, clock=fixed_clock),
            fixed_clock,
        ),
        "AdaptiveBulkhead(min_limit=2, max_limit=150)": _spike(
            adaptive, adaptive_clock
        ),
    }
    fig, (top, middle, bottom) = _figure(3, 1, sharex=True)
    fig.set_figheight(6.6)
    for ax in (top, middle, bottom):
        ax.axvspan(*SPIKE, color=ORANGE, alpha=0.08, lw=0)
        ax.grid(alpha=0.3)
    for (label, done), colour in zip(runs.items(), (RED, BLUE), strict=True):
        seconds, goodput, medians = _per_second(done)
        top.step(seconds, goodput, where="post", color=colour, label=label)
        middle.step(seconds, medians, where="post", color=colour, label=label)
    top.axhline(200, color=GREY, ls="--", lw=1)
    top.text(0.5, 205, "downstream capacity", fontsize=7, color=GREY)
    top.text(30, 225, "load x3", ha="center", fontsize=8, color=ORANGE)
    top.set_ylabel("calls ended\nwell per s")
    top.set_ylim(0, 260)
    top.legend(fontsize=7, loc="lower left")
    middle.set_ylabel("median\nlatency (ms)")
    middle.set_ylim(0, 600)
    times = [t for t, _ in limits] + [SPIKE_END]
    values = [limit for _, limit in limits] + [limits[-1][1]]
    bottom.step(times, values, where="post", color=BLUE)
    bottom.axhline(150, color=RED, ls="--", lw=1)
    bottom.text(0.5, 140, "the fixed limit", fontsize=7, color=RED, va="top")
    bottom.set_ylabel("limit")
    bottom.set_ylim(0, 165)
    bottom.set_xlim(0, SPIKE_END)
    bottom.set_xlabel("time (s)")
    top.set_title(
        "20 workers serving 200 calls/s, offered 150/s, then 450/s from"
        " 20 s to 40 s; the client gives up after 0.5 s",
        fontsize=8,
    )
    return fig


FIGURES: dict[str, Callable[[], Figure]] = {
    "backoff": backoff,
    "breaker": breaker,
    "token-bucket": token_bucket,
    "bulkhead": bulkhead,
    "adaptive-bulkhead": adaptive_bulkhead,
}


def render(name: str, directory: pathlib.Path) -> pathlib.Path:
    """
    Draw the figure *name* into *directory* (once per build); return its
    path.
    """
    path = directory / f"{name}.png"
    fig = FIGURES[name]()
    directory.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=144)
    return path


class StalwartFigure(FigureDirective):
    """
    ``stalwart-figure NAME``: a figure drawn by this module, with the
    directive's content as its caption.
    """

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        name = self.arguments[0]
        if name not in FIGURES:
            msg = f"unknown figure {name!r}; known: {', '.join(FIGURES)}"
            raise self.error(msg)
        directory = pathlib.Path(env.app.doctreedir) / "figures"
        drawn: set[str] = env.app.__dict__.setdefault("_stalwart_drawn", set())
        path = directory / f"{name}.png"
        if name not in drawn or not path.exists():
            render(name, directory)
            drawn.add(name)
        source_dir = pathlib.Path(env.doc2path(env.docname)).parent
        self.arguments[0] = pathlib.Path(
            os.path.relpath(path, source_dir)
        ).as_posix()
        caption = " ".join(self.content).split(". ")[0]
        self.options.setdefault("alt", caption or name)
        return super().run()


def _append_figures(app: Sphinx, docname: str, source: list[str]) -> None:
    """
    Append the figures conf.py's ``stalwart_figures_at_end`` gives a page.
    """
    for name, caption in app.config.stalwart_figures_at_end.get(docname, []):
        source[0] += f"\n\n```{{stalwart-figure}} {name}\n{caption}\n```\n"


def _check_pages(app: Sphinx, env: Any, docnames: list[str]) -> None:
    """
    Warn (an error under -W) about a page of the config that is not found.
    """
    for docname in app.config.stalwart_figures_at_end:
        if docname not in env.found_docs:
            logger.warning(
                "stalwart_figures_at_end names %r, which is not a page",
                docname,
            )


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("stalwart-figure", StalwartFigure)
    app.add_config_value("stalwart_figures_at_end", {}, "env", dict)
    app.connect("source-read", _append_figures)
    app.connect("env-before-read-docs", _check_pages)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
