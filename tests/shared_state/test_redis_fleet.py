"""
A fleet on one limit: 4 processes (spawned) × 8 threads hammer one limit
of N per period on the real server for about a second and a half each;
from the server times of the grants, no window of the limit ever holds
more than N, for every algorithm.
"""

from __future__ import annotations

import multiprocessing

import pytest

from redis_fleet import work
from stalwart._core.limits import window_of


PROCESSES = 4
THREADS = 8
N = 5
PERIOD = 0.2
SECONDS = 1.5
# A hair of slack for the float arithmetic of the checks themselves.
EPS = 1e-6


def windows_hold_at_most(times: list[float], n: float) -> None:
    """
    Every aligned window [k * PERIOD, (k + 1) * PERIOD) holds at most n.
    """
    counts: dict[int, int] = {}
    for t in times:
        k = window_of(t, PERIOD)  # the windows' bounds as the limiter has them
        counts[k] = counts.get(k, 0) + 1
    assert max(counts.values()) <= n


def sliding_windows_hold_at_most(times: list[float], n: int) -> None:
    """
    Every window (t - PERIOD, t] holds at most n.
    """
    for j in range(n, len(times)):
        assert times[j] - times[j - n] >= PERIOD - EPS


def bucket_holds(times: list[float], burst: int, rate: float) -> None:
    """
    Any interval [a, b] holds at most burst + (b - a) * rate grants.
    """
    lowest = float("inf")
    for j, t in enumerate(times):
        lowest = min(lowest, j - t * rate)
        assert j - t * rate - lowest <= burst - 1 + EPS


def run_fleet(url: str, kind: str) -> list[tuple[list[float], int]]:
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(
            target=work,
            args=(url, kind, (N, PERIOD), SECONDS, THREADS, ready, results),
        )
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    out = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join()
        assert process.exitcode == 0
    return out


@pytest.mark.parametrize(
    "kind",
    [
        "token_bucket",
        "gcra",
        "leaky_meter",
        "leaky_shaper",
        "fixed_window",
        "sliding_log",
        "sliding_counter",
    ],
)
def test_no_window_ever_holds_more_than_the_limit(redis_url, kind):
    results = run_fleet(redis_url, kind)
    times = sorted(t for granted, _ in results for t in granted)
    asked = sum(count for _, count in results)
    # Every process was granted something, and the limit was hammered.
    assert all(granted for granted, _ in results)
    assert asked > 3 * len(times)
    rate = N / PERIOD
    if kind in {"fixed_window", "sliding_counter"}:
        windows_hold_at_most(times, N)
    elif kind == "sliding_log":
        sliding_windows_hold_at_most(times, N)
    elif kind == "leaky_shaper":
        bucket_holds(times, 1, rate)
    else:
        bucket_holds(times, N, rate)
    # And the limit was used, not refused wholesale: at least half of it.
    assert len(times) >= 0.5 * rate * SECONDS
