"""
A real ``redis-server`` for the tests, started and stopped by them.

The server listens on a free loopback port with persistence off.  The
fault tests kill it (``SIGKILL``), restart it on the same port, and pause
it; everything else shares one server per session and starts each test on
an empty database (see ``tests/shared_state/conftest.py``).

If no ``redis-server`` can be found, the fixture fails (it never skips)
with a message saying how to install one: ``.ci/ensure-redis-server``,
which the README's test command runs, installs Debian's package.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

import redis

from redis.backoff import NoBackoff
from redis.retry import Retry


INSTALL_HINT = (
    "the Redis tests need a redis-server binary: run "
    "'sh .ci/ensure-redis-server' (installs Debian's redis-server package "
    "as root) or install Redis 7 with your system's package manager"
)

# How long a starting server may take to say it is ready (real time:
# starting a process is not something a fake clock can drive; no test
# decides on it).
START_TIMEOUT = 20.0


def _read_log(
    process: subprocess.Popen[bytes], ready: threading.Event, log: list[bytes]
) -> None:
    """
    Read the server's log to its end; set *ready* once it accepts
    connections, or once it has exited (the caller tells the two apart).
    """
    assert process.stdout is not None
    with process.stdout:
        for line in process.stdout:
            log.append(line)
            if b"Ready to accept connections" in line:
                ready.set()
    ready.set()


def find_redis_server() -> str:
    """
    The path of ``redis-server``, or fail saying how to install it.
    """
    for candidate in (
        "redis-server",
        "/usr/bin/redis-server",
        "/usr/sbin/redis-server",
    ):
        found = shutil.which(candidate)
        if found:
            return found
    raise RuntimeError(INSTALL_HINT)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """
    One ``redis-server`` process on ``127.0.0.1:port``.
    """

    def __init__(self, port: int | None = None, *options: str) -> None:
        self.binary = find_redis_server()
        self.options = options
        self.port = free_port() if port is None else port
        self._dir = tempfile.TemporaryDirectory(prefix="stalwart-redis-")
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """
        A client that fails at once when the server is away (redis-py
        retries a failed command three times by default).
        """
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir.name,
                "--protected-mode", "yes",
                "--enable-debug-command", "local",
                *self.options,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        # The server says when it accepts connections; a thread reads its
        # log to the end (so the pipe never fills) and tells.
        ready = threading.Event()
        log: list[bytes] = []
        threading.Thread(
            target=_read_log, args=(self.process, ready, log), daemon=True
        ).start()
        if not ready.wait(START_TIMEOUT) or self.process.poll() is not None:
            self.kill()
            msg = (
                f"redis-server did not start on port {self.port}: "
                + b"".join(log[-5:]).decode(errors="replace")
            )
            raise RuntimeError(msg)

    def kill(self) -> None:
        """
        ``SIGKILL`` the server (no shutdown, no goodbye to clients).
        """
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        """
        Start again on the same port (after :meth:`kill` or :meth:`stop`):
        an empty server, as after a crash without persistence.
        """
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            self._dir.cleanup()


def started_server(*options: str) -> RedisServer:
    """
    A server started with *options* (``redis-server`` arguments) too.
    """
    server = RedisServer(None, *options)
    server.start()
    return server
