"""
Two worker processes share one rate limit and one circuit breaker through
Redis.

Each worker builds its own ``RedisStore`` (its own connections), a
``FixedWindow`` of 4 calls a minute and a ``CircuitBreaker`` that opens
after 3 failures, all under the same names: the limit holds for both
workers together, and once worker 1 has tripped the breaker, worker 2 is
refused without calling the failing service at all.

Uses ``REDIS_URL`` if it is set; otherwise it starts a throwaway
``redis-server`` (the binary must be installed: on Debian, ``apt-get
install redis-server``) on a free port and stops it at the end.

Run: ``python examples/redis_workers.py``
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from collections.abc import Iterator

import redis

import stalwart

from stalwart.redis import RedisStore


PREFIX = "example-workers"


class PaymentsDownError(Exception):
    """The payments service failed."""


def charge() -> str:
    raise PaymentsDownError


def worker(url: str, number: int, turn: list, lines: list) -> None:
    """
    One process: take 4 permits from the shared limit (both workers at
    once), then call the payments service through the shared breaker, in
    turn: worker 1 first, then worker 2.
    """
    store = RedisStore(url=url, prefix=PREFIX, time="server")
    limit = stalwart.FixedWindow(rate=(4, 60.0), name="api", store=store)
    breaker = stalwart.CircuitBreaker(
        name="payments",
        failure_threshold=3,
        recovery_time=60,
        failure_on=PaymentsDownError,
        store=store,
    )
    granted = sum(bool(limit.try_acquire()) for _ in range(4))
    lines.append((number, 0, granted))
    turn[number - 1].wait()
    seen = []
    for _ in range(4):
        try:
            breaker.call(charge)
        except PaymentsDownError:
            seen.append("failed")
        except stalwart.CircuitOpenError:
            seen.append("refused")
    lines.append((number, 1, f"{', '.join(seen)} ({breaker.state.value})"))
    if number == 1:
        turn[1].set()
    store.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """
    ``REDIS_URL``, or a throwaway server of our own.
    """
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit(
            "set REDIS_URL or install redis-server"
            " (Debian: apt-get install redis-server)"
        )
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", folder],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        try:
            for _ in range(500):  # up to 5 s for the server to start
                with contextlib.suppress(redis.ConnectionError):
                    client.ping()
                    break
                time.sleep(0.01)
            yield url
        finally:
            client.close()
            server.terminate()
            server.wait()


def main() -> None:
    with redis_url() as url:
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{PREFIX}:*"):
            client.delete(key)  # a fresh start on a server of your own
        client.close()
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            turn = [manager.Event(), manager.Event()]
            turn[0].set()
            lines = manager.list()
            workers = [
                context.Process(target=worker, args=(url, n, turn, lines))
                for n in (1, 2)
            ]
            for process in workers:
                process.start()
            for process in workers:
                process.join()
            seen = sorted(lines)
            for number, step, what in seen:
                if step == 0:
                    print(f"worker {number}: the limit granted {what} of 4")
                else:
                    print(f"worker {number}: payments {what}")
            granted = sum(what for _, step, what in seen if step == 0)
            print(f"together: {granted} granted (4 a minute for both)")
            failed = [p.exitcode for p in workers if p.exitcode != 0]
    if failed:
        sys.exit(f"a worker failed: exit codes {failed}")


if __name__ == "__main__":
    main()
