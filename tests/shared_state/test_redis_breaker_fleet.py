"""
A fleet of real processes (spawned) sharing one breaker on a real server:
at most one trial per half-open period, across all of them.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing

import pytest
import redis

from helpers import Boom
from redis_breaker_support import FLEET_KEY, fleet_breaker, hammer


PROCESSES = 4
THREADS = 8
SECONDS = 2.0  # real time each process hammers; no result depends on it


def test_one_trial_per_half_open_period(redis_url: str) -> None:
    """
    4 processes x 8 threads against one breaker with one trial slot:
    every call admitted is the only trial of its half-open period, and
    every period had exactly one.
    """
    opener = fleet_breaker(redis_url)
    with pytest.raises(Boom):
        opener.call(lambda: (_ for _ in ()).throw(Boom()))
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        PROCESSES, mp_context=context
    ) as pool:
        admitted = sum(
            pool.map(
                hammer,
                [redis_url] * PROCESSES,
                [SECONDS] * PROCESSES,
                [THREADS] * PROCESSES,
            )
        )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    trials = client.hgetall("trials")
    periods = int(client.hget(FLEET_KEY, "entered_half_open") or 0)
    client.close()
    opener.store.close()  # type: ignore[union-attr]  # built with one

    assert {"1"} == set(trials.values())
    assert all(period.startswith("half_open:") for period in trials)
    assert admitted == len(trials) == periods
    assert periods >= 2
