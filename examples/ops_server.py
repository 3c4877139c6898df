"""
Serve ``/metrics`` (Prometheus) and ``/health`` (JSON) for a registry of
named primitives, with the standard library's HTTP server on 127.0.0.1.

By default (``--once``) it starts on a free port, plays a little traffic
through the primitives, fetches both endpoints from itself, prints what it
got and exits.  ``--serve`` keeps serving until interrupted.
"""

from __future__ import annotations

import argparse
import json
import threading
import urllib.request

from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
)

import stalwart

from stalwart.prometheus import instrument
from stalwart.testing import FakeClock


CONFIG = {
    "defaults": {"circuit_breaker": {"failure_threshold": 2}},
    "circuit_breaker": {"payments": {"recovery_time": "30s"}},
    "retry": {"payments": {"attempts": 3, "wait": 0.5, "on": "OSError"}},
    "bulkhead": {"reports": {"max_concurrent": 2}},
}


def build() -> tuple[stalwart.Registry, CollectorRegistry]:
    """The primitives, and a Prometheus registry that reads them."""
    primitives = stalwart.Registry.from_dict(CONFIG, clock=FakeClock())
    metrics = CollectorRegistry()
    instrument(primitives, registry=metrics)
    return primitives, metrics


def traffic(primitives: stalwart.Registry) -> None:
    """A flaky call that a retry recovers, then a dependency that is down."""
    retry = primitives.get(stalwart.Retry, "payments")
    breaker = primitives.get(stalwart.CircuitBreaker, "payments")
    answers = iter([OSError("reset"), "paid"])

    def charge() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    print("charge:", retry.call(charge))
    for _ in range(3):
        try:
            breaker.call(lambda: 1 / 0)
        except (ZeroDivisionError, stalwart.CircuitOpenError) as error:
            print("payments:", type(error).__name__)


def handler(
    primitives: stalwart.Registry, metrics: CollectorRegistry
) -> type[BaseHTTPRequestHandler]:
    """A request handler serving the two endpoints."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, kind = generate_latest(metrics), CONTENT_TYPE_LATEST
                status = 200
            elif self.path == "/health":
                health = primitives.health()
                body = json.dumps(health, indent=2).encode()
                kind = "application/json"
                status = 200 if health["status"] == "ok" else 503
            else:
                body, kind, status = b"not found\n", "text/plain", 404
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002  # the base class's name
            return

    return Handler


def fetch(url: str) -> tuple[int, str]:
    """GET *url*; return its status and body (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def main() -> None:
    """Serve, fetch both endpoints once (or serve until interrupted)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    primitives, metrics = build()
    traffic(primitives)
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), handler(primitives, metrics)
    )
    host, port = server.server_address[:2]
    if args.serve:
        print(f"serving on http://{host}:{port}/metrics and /health")
        server.serve_forever()
        return
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, body = fetch(f"http://{host}:{port}/health")
        print("/health", status, json.loads(body)["status"])
        status, body = fetch(f"http://{host}:{port}/metrics")
        wanted = ("stalwart_calls_total", "stalwart_retry_attempts_count")
        print("/metrics", status)
        for line in body.splitlines():
            if line.startswith(wanted):
                print(" ", line)
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
