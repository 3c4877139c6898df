"""
Two worker processes sharing one rate limit through Redis.

Each worker builds its own ``TokenBucket`` named ``"partner-api"`` on a
``RedisStore``; both ask for 8 calls at once against a limit of 5 a
minute.  In memory each would grant 5 (10 in all); through the store the
two share the limit and grant 5 between them.

It uses the server at ``REDIS_URL``, or starts a throw-away
``redis-server`` on a free port if that variable is unset (Debian:
``apt-get install redis-server``).  Needs ``pip install
'stalwart[redis]'``.  Run it: ``python examples/redis_workers.py``.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from stalwart import TokenBucket
from stalwart.redis import RedisStore


def worker(url: str, name: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = RedisStore(url=url, prefix="example")
    limiter = TokenBucket(rate="5/minute", name="partner-api", store=store)
    granted = sum(bool(limiter.try_acquire()) for _ in range(8))
    store.close()
    results.put((name, granted))


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("set REDIS_URL, or install redis-server")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", tempfile.gettempdir()],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(500):  # until it answers (starting takes a moment)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.01)
    return server, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    server = None
    url = os.environ.get("REDIS_URL")
    if url is None:
        server, url = start_server()
    try:
        store = RedisStore(url=url, prefix="example")
        TokenBucket(rate="5/minute", name="partner-api", store=store).reset()
        store.close()
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        workers = [
            context.Process(target=worker, args=(url, name, results))
            for name in ("worker-1", "worker-2")
        ]
        for process in workers:
            process.start()
        granted = dict(results.get() for _ in workers)
        for process in workers:
            process.join()
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    print("granted in all:", sum(granted.values()), "of 16 asked (limit 5)")


if __name__ == "__main__":
    main()
