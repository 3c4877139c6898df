"""
A real HTTP server on 127.0.0.1 for the transport's tests: a thread of the
standard library's server answering from a script (statuses, headers,
bodies, dropped connections, answers held back until the test ends).
"""

from __future__ import annotations

import asyncio
import threading

from collections import deque
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import httpx

from stalwart.httpx import AsyncResilientTransport, ResilientTransport


class Answer(NamedTuple):
    """Answer with this status, these headers and this body."""

    status: int = 200
    headers: dict[str, str] = {}  # noqa: RUF012  # never mutated
    body: bytes = b"ok"


class Drop(NamedTuple):
    """Read the request, then close the connection without answering."""


class Truncated(NamedTuple):
    """Answer with this status and a body cut short: the connection closes
    before the Content-Length is reached."""

    status: int = 503


class Hold(NamedTuple):
    """Read the request, then answer 200 only once the test ends."""


class Seen(NamedTuple):
    """A request the server received."""

    method: str
    path: str
    body: bytes
    headers: dict[str, str]


class ScriptedServer:
    """
    A server answering each request with the next action of its script
    (200 "ok" once the script is empty), on a free port of 127.0.0.1.
    """

    def __init__(self) -> None:
        self.script: deque[Answer | Drop | Hold | Truncated] = deque()
        self.seen: list[Seen] = []
        self.released = threading.Event()
        self.arrived = threading.Event()  # set by each request
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.scripted = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, *actions: Answer | Drop | Hold | Truncated) -> None:
        self.script.extend(actions)

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(length)

    def _serve(self) -> None:
        scripted: ScriptedServer = self.server.scripted  # type: ignore[attr-defined]
        body = self._body()
        scripted.seen.append(
            Seen(self.command, self.path, body, dict(self.headers))
        )
        scripted.arrived.set()
        try:
            action = scripted.script.popleft()
        except IndexError:
            action = Answer()
        if isinstance(action, Drop):
            self.close_connection = True
            return
        if isinstance(action, Truncated):
            self.close_connection = True
            self.send_response_only(action.status)
            self.send_header("Content-Length", "100")
            self._headers_buffer.append(b"\r\nonly ten b")  # type: ignore[attr-defined]
            self.flush_headers()
            return
        if isinstance(action, Hold):
            scripted.released.wait()
            action = Answer()
        try:
            self.send_response_only(action.status)
            for name, value in action.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(action.body)))
            # One write: headers and body in two would wait on a delayed
            # acknowledgement.
            self._headers_buffer.append(b"\r\n" + action.body)  # type: ignore[attr-defined]
            self.flush_headers()
        except ConnectionError:  # the client gave up (a timeout)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class Recording(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """
    A transport in front of the real one that records what each attempt
    was given and got, and can fail the first attempts before they reach
    the network.
    """

    def __init__(self, fail: list[Exception] | None = None) -> None:
        self.sync = httpx.HTTPTransport(verify=False)
        self.async_ = httpx.AsyncHTTPTransport(verify=False)
        self.fail = list(fail or [])
        self.timeouts: list[dict[str, float | None]] = []
        self.responses: list[httpx.Response] = []
        # For each attempt: were the answers of the earlier ones closed?
        self.closed_before: list[bool] = []

    def _record(self, request: httpx.Request) -> None:
        self.timeouts.append(dict(request.extensions.get("timeout", {})))
        self.closed_before.append(all(r.is_closed for r in self.responses))
        if self.fail:
            raise self.fail.pop(0)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._record(request)
        response = self.sync.handle_request(request)
        self.responses.append(response)
        return response

    async def handle_async_request(
        self, request: httpx.Request
    ) -> httpx.Response:
        self._record(request)
        response = await self.async_.handle_async_request(request)
        self.responses.append(response)
        return response

    def close(self) -> None:
        self.sync.close()

    async def aclose(self) -> None:
        await self.async_.aclose()


def send(
    face: str,
    method: str,
    url: str,
    *,
    transport: Any = None,
    client: dict[str, Any] | None = None,
    **settings: Any,
) -> tuple[httpx.Response, Any]:
    """
    Send one request through a resilient transport on the sync or the
    async face; return the answer (read) and the transport.
    """
    responses, built = send_many(
        face,
        [(method, url, client or {})],
        transport=transport,
        **settings,
    )
    return responses[0], built


def send_many(
    face: str,
    requests: list[tuple[str, str, dict[str, Any]]],
    *,
    transport: Any = None,
    **settings: Any,
) -> tuple[list[httpx.Response], Any]:
    """
    Send requests one after the other through one resilient transport.
    """
    if face == "sync":
        built = ResilientTransport(
            transport=transport or httpx.HTTPTransport(verify=False),
            **settings,
        )
        with httpx.Client(transport=built) as client:
            return [
                client.request(method, url, **kwargs)
                for method, url, kwargs in requests
            ], built

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=abuilt) as client:
            return [
                await client.request(method, url, **kwargs)
                for method, url, kwargs in requests
            ]

    abuilt = AsyncResilientTransport(
        transport=transport or httpx.AsyncHTTPTransport(verify=False),
        **settings,
    )
    return asyncio.run(main()), abuilt


def chunks(*parts: bytes) -> Callable[[], Iterator[bytes]]:
    """A streamed body: a generator of *parts*, for one face or the other."""

    def generate() -> Iterator[bytes]:
        yield from parts

    return generate


async def achunks(*parts: bytes) -> Any:
    for part in parts:
        yield part
