"""
The httpx transport, with real httpx clients against a real server on
127.0.0.1 answering from a script; time waited comes from a FakeClock.
"""

from __future__ import annotations

import asyncio
import email.utils

from collections.abc import Iterator

import pytest

import stalwart


httpx = pytest.importorskip("httpx")

from http_support import (  # noqa: E402
    Answer,
    Drop,
    Hold,
    Recording,
    ScriptedServer,
    Truncated,
    achunks,
    chunks,
    send,
    send_many,
)
from stalwart.httpx import (  # noqa: E402
    BUFFER_LIMIT,
    AsyncResilientTransport,
    ResilientTransport,
    StatusError,
    host,
)
from stalwart.testing import FakeClock  # noqa: E402


@pytest.fixture(name="server")
def _server() -> Iterator[ScriptedServer]:
    """
    A scripted server on 127.0.0.1, stopped after the test.
    """
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture(name="face", params=["sync", "async"])
def _face(request: pytest.FixtureRequest) -> str:
    """
    The client's face: httpx.Client or httpx.AsyncClient.
    """
    return request.param


def retry(clock: FakeClock, **kwargs: object) -> stalwart.Retry:
    settings: dict[str, object] = {"attempts": 4, "wait": 1.0, "clock": clock}
    settings.update(kwargs)
    return stalwart.Retry(**settings)  # type: ignore[arg-type]


def http_date(posix: float) -> str:
    return email.utils.formatdate(posix, usegmt=True)


class TestRetries:
    def test_transient_statuses_then_success(self, server, face, clock):
        """
        503 and 502 are retried after the backoff; the answer is the 200.
        """
        server.answer(Answer(503), Answer(502), Answer(200, body=b"fine"))

        response, _ = send(
            face, "GET", server.url(), retry=retry(clock), clock=clock
        )

        assert (200, b"fine") == (response.status_code, response.content)
        assert 3 == len(server.seen)
        assert [1.0, 1.0] == clock.sleeps

    def test_retry_after_seconds(self, server, face, clock):
        """
        A 429's Retry-After in seconds is waited instead of the backoff.
        """
        server.answer(Answer(429, {"Retry-After": "3"}), Answer())

        response, _ = send(
            face, "GET", server.url(), retry=retry(clock), clock=clock
        )

        assert 200 == response.status_code
        assert [3.0] == clock.sleeps

    def test_retry_after_date(self, server, face, clock):
        """
        A 503's Retry-After date is measured from the answer's Date.
        """
        now = 1_700_000_000.0
        headers = {"Date": http_date(now), "Retry-After": http_date(now + 7)}
        server.answer(Answer(503, headers), Answer())

        response, _ = send(
            face,
            "GET",
            server.url(),
            client={"timeout": 30.0},
            retry=retry(clock),
            clock=clock,
        )

        assert 200 == response.status_code
        assert [7.0] == clock.sleeps

    def test_retry_after_too_long(self, server, face, clock):
        """
        An answer asking for more than retry_after_max comes back at once.
        """
        server.answer(Answer(429, {"Retry-After": "61"}, b"later"))

        response, _ = send(
            face, "GET", server.url(), retry=retry(clock), clock=clock
        )

        assert (429, b"later") == (response.status_code, response.content)
        assert ([], 1) == (clock.sleeps, len(server.seen))

    def test_retry_after_past_the_request_timeout(self, server, face, clock):
        """
        A wait that would end past the request's own timeout is not made:
        the answer comes back.
        """
        server.answer(Answer(503, {"Retry-After": "10"}))

        response, _ = send(
            face,
            "GET",
            server.url(),
            client={"timeout": 5.0},
            retry=retry(clock),
            clock=clock,
        )

        assert 503 == response.status_code
        assert ([], 1) == (clock.sleeps, len(server.seen))

    def test_last_answer_when_attempts_run_out(self, server, face, clock):
        """
        When the retry gives up, the last answer is returned whole.
        """
        server.answer(*[Answer(503, body=b"busy %d" % n) for n in range(3)])

        response, _ = send(
            face,
            "GET",
            server.url(),
            retry=retry(clock, attempts=3),
            clock=clock,
        )

        assert (503, b"busy 2") == (response.status_code, response.content)

    @pytest.mark.parametrize("status", [400, 401, 404, 409, 500, 501])
    def test_not_retried_statuses(self, server, face, clock, status):
        """
        Other 4xx, and a 500, are answered at once.
        """
        server.answer(Answer(status))

        response, _ = send(
            face, "GET", server.url(), retry=retry(clock), clock=clock
        )

        assert (status, 1) == (response.status_code, len(server.seen))

    def test_post_is_not_retried(self, server, face, clock):
        """
        A POST's 503 comes back at once.
        """
        server.answer(Answer(503))

        response, _ = send(
            face, "POST", server.url(), retry=retry(clock), clock=clock
        )

        assert (503, 1) == (response.status_code, len(server.seen))

    def test_post_opt_in(self, server, face, clock):
        """
        A policy that lists POST retries it, sending its body again.
        """
        server.answer(Answer(503))
        policy = stalwart.HTTPPolicy(
            retry_methods=stalwart.HTTPPolicy.IDEMPOTENT_METHODS | {"POST"}
        )

        response, _ = send(
            face,
            "POST",
            server.url(),
            client={"content": b"order"},
            retry=retry(clock),
            policy=policy,
            clock=clock,
        )

        assert 200 == response.status_code
        assert [b"order", b"order"] == [seen.body for seen in server.seen]

    def test_retry_on_narrows(self, server, face, clock):
        """
        The retry's own on= can narrow what the policy retries.
        """
        server.answer(Answer(503))

        response, _ = send(
            face,
            "GET",
            server.url(),
            retry=retry(clock, on=httpx.TransportError),
            clock=clock,
        )

        assert (503, 1) == (response.status_code, len(server.seen))


class TestConnections:
    def test_dropped_connection_is_retried(self, server, face, clock):
        """
        A connection dropped without an answer is retried for a GET.
        """
        server.answer(Drop(), Answer())

        response, _ = send(
            face, "GET", server.url(), retry=retry(clock), clock=clock
        )

        assert (200, 2) == (response.status_code, len(server.seen))

    def test_dropped_connection_of_a_post(self, server, face, clock):
        """
        A POST whose connection dropped is not sent again; the error is
        raised and the breaker counts it.
        """
        server.answer(Drop())

        with pytest.raises(httpx.RemoteProtocolError):
            send(face, "POST", server.url(), retry=retry(clock), clock=clock)

        assert 1 == len(server.seen)

    def test_read_timeout_is_retried(self, server, face, clock):
        """
        A read that times out is retried for a GET.
        """
        server.answer(Hold(), Answer(body=b"second"))

        response, _ = send(
            face,
            "GET",
            server.url(),
            client={"timeout": httpx.Timeout(5.0, read=0.05)},
            retry=retry(clock),
            clock=clock,
        )

        assert (200, b"second") == (response.status_code, response.content)

    def test_refused_connection_retried_for_post(self, face, clock):
        """
        A refused connection never sent the request: retried for a POST.
        """
        unused = ScriptedServer()
        url = unused.url()
        unused.close()
        inner = Recording()

        with pytest.raises(httpx.ConnectError):
            send(
                face,
                "POST",
                url,
                transport=inner,
                retry=retry(clock, attempts=3),
                clock=clock,
            )

        assert 3 == len(inner.timeouts)
        assert [1.0, 1.0] == clock.sleeps

    def test_connection_errors_count_as_failures(self, server, face, clock):
        """
        Dropped connections open the host's breaker; then calls are
        refused without reaching the server.
        """
        server.answer(*[Drop()] * 2)
        breaker = stalwart.CircuitBreaker(failure_threshold=2, clock=clock)

        with pytest.raises(stalwart.CircuitOpenError) as refused:
            send(
                face,
                "GET",
                server.url(),
                retry=retry(clock, attempts=3, honor_rejections=False),
                breaker=breaker,
                clock=clock,
            )

        assert 2 == len(server.seen)
        assert refused.value.name == f"http.breaker:127.0.0.1:{server.port}"

    def test_caller_errors_are_not_failures(self, face, clock):
        """
        A mistake of the caller (an unsupported scheme) is raised as it
        is, neither retried nor counted.
        """
        with pytest.raises(httpx.UnsupportedProtocol):
            send(face, "GET", "ftp://example.org/", retry=retry(clock))

    def test_caller_errors_not_counted(self, face, clock):
        """
        The breaker's statistics count no failure for a caller's mistake.
        """
        transport = (
            ResilientTransport if face == "sync" else AsyncResilientTransport
        )(transport=httpx.MockTransport(_raise_protocol_error))

        with pytest.raises(httpx.LocalProtocolError):
            _through(face, transport, "GET", "http://example.org/")

        stats = transport.statistics()["http.breaker"]
        assert (0, 1) == (stats.failures, stats.successes)


def _raise_protocol_error(request: httpx.Request) -> httpx.Response:
    raise httpx.LocalProtocolError("bad header")


def _through(face: str, transport: object, method: str, url: str) -> object:
    if face == "sync":
        with httpx.Client(transport=transport) as client:  # type: ignore[arg-type]
            return client.request(method, url)

    async def main() -> object:
        async with httpx.AsyncClient(transport=transport) as client:  # type: ignore[arg-type]
            return await client.request(method, url)

    return asyncio.run(main())


class TestBreakers:
    def test_caller_errors_never_open(self, server, face, clock):
        """
        4xx answers (429 included) never open the breaker; 5xx do.
        """
        server.answer(*[Answer(404)] * 5, *[Answer(429)] * 5)
        server.answer(*[Answer(500)] * 5)
        breaker = stalwart.CircuitBreaker(failure_threshold=5, clock=clock)
        requests = [("GET", server.url(), {})] * 15

        responses, transport = send_many(
            face, requests, retry=None, breaker=breaker, clock=clock
        )

        assert [404] * 5 + [429] * 5 + [500] * 5 == [
            r.status_code for r in responses
        ]
        stats = transport.statistics()["http.breaker"]
        assert ({"open": 1}, 5, 10) == (
            {k: v for k, v in stats.states.items() if v},
            stats.failures,
            stats.successes,
        )

    def test_one_breaker_per_host(self, server, face, clock):
        """
        An open breaker for one host leaves the others alone.
        """
        other = ScriptedServer()
        try:
            server.answer(Answer(500))
            breaker = stalwart.CircuitBreaker(failure_threshold=1, clock=clock)
            requests = [
                ("GET", server.url(), {}),
                ("GET", other.url(host="localhost"), {}),
            ]

            responses, transport = send_many(
                face, requests, retry=None, breaker=breaker, clock=clock
            )
        finally:
            other.close()

        assert [500, 200] == [r.status_code for r in responses]
        stats = transport.statistics()["http.breaker"]
        assert {
            f"127.0.0.1:{server.port}": "open",
            f"localhost:{other.port}": "closed",
        } == {key: s.state.value for key, s in stats.breakers.items()}

    def test_one_breaker_for_every_host(self, server, face, clock):
        """
        key=None shares one breaker (and one limiter) between hosts.
        """
        server.answer(Answer(500))
        breaker = stalwart.CircuitBreaker(failure_threshold=1, clock=clock)

        with pytest.raises(stalwart.CircuitOpenError):
            send_many(
                face,
                [
                    ("GET", server.url(), {}),
                    ("GET", server.url(host="localhost"), {}),
                ],
                retry=None,
                breaker=breaker,
                key=None,
                clock=clock,
            )

        assert stalwart.CircuitState.OPEN is breaker.state

    def test_keyed_breaker_with_its_own_key(self, server, face, clock):
        """
        A KeyedCircuitBreaker keeps its own key function of the request.
        """
        keyed = stalwart.KeyedCircuitBreaker(
            breaker=stalwart.CircuitBreaker(clock=clock),
            key_func=lambda request: request.url.path,
            name="by-path",
        )

        send(face, "GET", server.url("/a"), retry=None, breaker=keyed)
        send(face, "GET", server.url("/b"), retry=None, breaker=keyed)

        assert ["/a", "/b"] == sorted(keyed.statistics().breakers)

    def test_keyed_breaker_with_the_transports_key(self, server, face):
        """
        A KeyedCircuitBreaker without a key function uses the host.
        """
        keyed = stalwart.KeyedCircuitBreaker(breaker=stalwart.CircuitBreaker())

        send(face, "GET", server.url(), retry=None, breaker=keyed)

        assert [f"127.0.0.1:{server.port}"] == list(
            keyed.statistics().breakers
        )

    def test_retry_waits_for_an_open_breaker(self, server, face, clock):
        """
        A retry around an open breaker waits its recovery, then the trial
        call gets through.
        """
        server.answer(Answer(503), Answer(503))
        breaker = stalwart.CircuitBreaker(
            failure_threshold=2, recovery_time=20.0, clock=clock
        )

        response, _ = send(
            face,
            "GET",
            server.url(),
            client={"timeout": 60.0},
            retry=retry(clock),
            breaker=breaker,
            clock=clock,
        )

        assert 200 == response.status_code
        # 503, backoff, 503 (the breaker opens), backoff, refused: 19 s
        # of the recovery left, then the trial call.
        assert [1.0, 1.0, 19.0] == clock.sleeps


class TestBodies:
    def test_answer_cut_short(self, server, face, clock):
        """
        A judged answer whose body is cut short is a failed attempt:
        counted, and retried.
        """
        server.answer(Truncated(503), Answer(body=b"whole"))

        response, transport = send(
            face, "GET", server.url(), retry=retry(clock), clock=clock
        )

        assert (200, b"whole") == (response.status_code, response.content)
        assert 1 == transport.statistics()["http.breaker"].failures

    def test_long_answer_replaced(self, server, face, clock):
        """
        A long answer the fallback replaced is closed.
        """
        server.answer(Answer(500, body=b"e" * (2 * BUFFER_LIMIT)))
        inner = Recording()

        response, _ = send(
            face,
            "GET",
            server.url(),
            transport=inner,
            fallback=stalwart.Fallback(value=httpx.Response(299)),
            clock=clock,
        )

        assert 299 == response.status_code
        assert [True] == [r.is_closed for r in inner.responses]

    def test_streamed_body_partly_sent(self, server, face, clock):
        """
        A PUT whose streamed body was sent is not sent again.
        """
        server.answer(Drop())
        body = chunks(b"a", b"b") if face == "sync" else achunks(b"a", b"b")

        with pytest.raises(httpx.RemoteProtocolError):
            send(
                face,
                "PUT",
                server.url(),
                client={"content": body() if face == "sync" else body},
                retry=retry(clock),
                clock=clock,
            )

        assert [b"ab"] == [seen.body for seen in server.seen]

    def test_bytes_body_is_sent_again(self, server, face, clock):
        """
        A PUT whose body is bytes is sent again, whole.
        """
        server.answer(Drop())

        response, _ = send(
            face,
            "PUT",
            server.url(),
            client={"content": b"payload"},
            retry=retry(clock),
            clock=clock,
        )

        assert 200 == response.status_code
        assert [b"payload"] * 2 == [seen.body for seen in server.seen]

    def test_streamed_body_not_started(self, server, face, clock):
        """
        A streamed body whose sending never started may be sent: after a
        connect error, it goes out once, whole.
        """
        inner = Recording(fail=[httpx.ConnectError("refused")])
        body = chunks(b"x", b"y") if face == "sync" else achunks(b"x", b"y")

        response, _ = send(
            face,
            "POST",
            server.url(),
            transport=inner,
            client={"content": body() if face == "sync" else body},
            retry=retry(clock),
            clock=clock,
        )

        assert 200 == response.status_code
        assert [b"xy"] == [seen.body for seen in server.seen]

    def test_answers_closed_before_the_retry(self, server, face, clock):
        """
        Each answer passed over is closed before the next attempt.
        """
        server.answer(Answer(503), Answer(502), Answer())
        inner = Recording()

        send(
            face,
            "GET",
            server.url(),
            transport=inner,
            retry=retry(clock),
            clock=clock,
        )

        assert [True, True, True] == inner.closed_before
        assert all(r.is_closed for r in inner.responses)

    def test_long_answer_kept_whole(self, server, face, clock):
        """
        An answer longer than the buffer is returned whole when it is the
        last one, and closed when passed over.
        """
        big = bytes(range(256)) * (BUFFER_LIMIT // 128)
        server.answer(Answer(503, body=big), Answer(503, body=big[::-1]))
        inner = Recording()

        response, _ = send(
            face,
            "GET",
            server.url(),
            transport=inner,
            retry=retry(clock, attempts=2),
            clock=clock,
        )

        assert (503, big[::-1]) == (response.status_code, response.content)
        assert [True, True] == inner.closed_before

    def test_streamed_answer_passes_through(self, server, face):
        """
        A 200 is not read by the transport: the client streams it.
        """
        big = b"z" * (3 * BUFFER_LIMIT)
        server.answer(Answer(body=big))
        transport = (
            ResilientTransport if face == "sync" else AsyncResilientTransport
        )()

        if face == "sync":
            with httpx.Client(transport=transport) as client:
                with client.stream("GET", server.url()) as response:
                    got = b"".join(response.iter_raw())
        else:

            async def main() -> bytes:
                async with httpx.AsyncClient(transport=transport) as client:
                    async with client.stream("GET", server.url()) as response:
                        return b"".join(
                            [c async for c in response.aiter_raw()]
                        )

            got = asyncio.run(main())

        assert big == got


class TestDeadlines:
    def test_attempts_cut_to_the_request_timeout(self, server, face, clock):
        """
        The request's timeout is a deadline: later attempts get what is
        left of it, and the request keeps its own.
        """
        server.answer(Answer(503), Answer(503))
        inner = Recording()

        response, _ = send(
            face,
            "GET",
            server.url(),
            transport=inner,
            client={"timeout": httpx.Timeout(5.0, connect=1.0)},
            retry=retry(clock, wait=2.0),
            clock=clock,
        )

        assert 200 == response.status_code
        assert [
            {"connect": 1.0, "read": 5.0, "write": 5.0, "pool": 5.0},
            {"connect": 1.0, "read": 3.0, "write": 3.0, "pool": 3.0},
            {"connect": 1.0, "read": 1.0, "write": 1.0, "pool": 1.0},
        ] == inner.timeouts
        assert 5.0 == response.request.extensions["timeout"]["read"]

    def test_without_request_deadline(self, server, face, clock):
        """
        request_deadline=False leaves httpx's timeouts per operation.
        """
        server.answer(Answer(503, {"Retry-After": "10"}))
        inner = Recording()

        response, _ = send(
            face,
            "GET",
            server.url(),
            transport=inner,
            client={"timeout": 5.0},
            retry=retry(clock),
            request_deadline=False,
            clock=clock,
        )

        assert 200 == response.status_code
        assert [10.0] == clock.sleeps
        assert [5.0, 5.0] == [t["read"] for t in inner.timeouts]

    def test_no_timeout_no_deadline(self, server, face, clock):
        """
        A request without a timeout has no deadline of its own.
        """
        server.answer(Answer(503, {"Retry-After": "30"}))

        response, _ = send(
            face,
            "GET",
            server.url(),
            client={"timeout": None},
            retry=retry(clock),
            clock=clock,
        )

        assert 200 == response.status_code
        assert [30.0] == clock.sleeps

    def test_total_timeout_stage(self, server, face):
        """
        A timeout stage's deadline cuts each attempt's timeouts too.
        """
        # Fake time stands still while a request is in flight (no
        # connection is left open between attempts).
        clock = FakeClock(wait_for_io=True)
        close = {"Connection": "close"}
        server.answer(Answer(503, close), Answer(200, close))
        inner = Recording()

        send(
            face,
            "GET",
            server.url(),
            transport=inner,
            client={"timeout": None},
            retry=retry(clock, wait=3.0),
            timeout=stalwart.Timeout(seconds=4.0, clock=clock),
            clock=clock,
        )

        assert [4.0, 1.0] == [t["read"] for t in inner.timeouts]

    def test_spent_deadline(self, server, face, clock):
        """
        A request whose timeout is 0 is not sent: the deadline has passed.
        """
        with pytest.raises(stalwart.TimeoutExceededError):
            send(
                face,
                "GET",
                server.url(),
                client={"timeout": 0.0},
                retry=retry(clock),
                clock=clock,
            )

        assert [] == server.seen

    def test_attempt_timeout_counts_as_failure(self, server):
        """
        An attempt cut by the attempt timeout is a breaker failure and is
        retried; auto-jumping fake time cuts it at once.
        """
        clock = FakeClock()
        server.answer(Hold(), Hold())
        breaker = stalwart.CircuitBreaker(failure_threshold=5, clock=clock)
        transport = AsyncResilientTransport(
            retry=retry(clock, attempts=2),
            breaker=breaker,
            attempt_timeout=stalwart.Timeout(seconds=2.0, clock=clock),
            clock=clock,
        )

        async def main() -> None:
            async with httpx.AsyncClient(transport=transport) as client:
                await client.get(server.url(), timeout=None)

        with pytest.raises(stalwart.TimeoutExceededError):
            asyncio.run(main())

        assert 2 == transport.statistics()["http.breaker"].failures


class TestLimitsAndBulkheads:
    def test_limiter_per_host(self, server, face, clock):
        """
        A limiter takes a permit per attempt for the request's host: a
        second request to the host waits, one to another host does not.
        """
        limiter = stalwart.TokenBucket(rate=1, capacity=1, clock=clock)
        requests = [
            ("GET", server.url(), {}),
            ("GET", server.url(host="localhost"), {}),
            ("GET", server.url(), {}),
        ]

        send_many(face, requests, retry=None, limiter=limiter, clock=clock)

        assert [1.0] == clock.sleeps
        assert 2 == limiter.statistics().keys

    def test_limiter_refusal_is_retried(self, server, face, clock):
        """
        A limiter that does not wait refuses; the retry comes back when it
        said.
        """
        limiter = stalwart.TokenBucket(
            rate=0.5, capacity=1, timeout=0, clock=clock
        )
        requests = [("GET", server.url(), {})] * 2

        send_many(
            face, requests, retry=retry(clock), limiter=limiter, clock=clock
        )

        assert [2.0] == clock.sleeps

    def test_limiters_own_key(self, server, face, clock):
        """
        A limiter's own key_func (of the request) wins over the host.
        """
        limiter = stalwart.TokenBucket(
            rate=1,
            capacity=1,
            key_func=lambda request: "everyone",
            clock=clock,
        )
        requests = [
            ("GET", server.url(), {}),
            ("GET", server.url(host="localhost"), {}),
        ]

        send_many(face, requests, retry=None, limiter=limiter, clock=clock)

        assert [1.0] == clock.sleeps

    def test_bulkhead_sheds_load(self, server):
        """
        With the bulkhead full, a request is refused at once, and the
        permit comes back when the first one ends.
        """
        server.answer(Hold())
        bulkhead = stalwart.Bulkhead(max_concurrent=1)
        transport = AsyncResilientTransport(retry=None, bulkhead=bulkhead)

        async def main() -> tuple[int, type]:
            async with httpx.AsyncClient(transport=transport) as client:
                first = asyncio.create_task(client.get(server.url()))
                await asyncio.to_thread(server.arrived.wait, 10.0)
                try:
                    await client.get(server.url())
                except stalwart.BulkheadFullError as error:
                    refused = type(error)
                server.released.set()
                return (await first).status_code, refused

        assert (200, stalwart.BulkheadFullError) == asyncio.run(main())
        assert 0 == bulkhead.statistics().in_flight

    def test_cancelled_request_gives_back(self, server):
        """
        A request cancelled in flight gives its bulkhead permit back and
        leaves the transport usable.
        """
        server.answer(Hold())
        bulkhead = stalwart.Bulkhead(max_concurrent=1)
        transport = AsyncResilientTransport(bulkhead=bulkhead)

        async def main() -> int:
            async with httpx.AsyncClient(transport=transport) as client:
                task = asyncio.create_task(client.get(server.url()))
                await asyncio.to_thread(server.arrived.wait, 10.0)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                return (await client.get(server.url())).status_code

        assert 200 == asyncio.run(main())
        assert 0 == bulkhead.statistics().in_flight


class TestFallback:
    def test_replaces_the_last_answer(self, server, face, clock):
        """
        A fallback replaces an answer the retry gave up on; its handler
        sees the StatusError.
        """
        server.answer(Answer(503), Answer(503))
        seen: list[object] = []

        def cached(error: Exception) -> httpx.Response:
            seen.append(error)
            return httpx.Response(200, text="cached")

        response, _ = send(
            face,
            "GET",
            server.url(),
            retry=retry(clock, attempts=2),
            fallback=stalwart.Fallback(handler=cached),
            clock=clock,
        )

        assert (200, "cached") == (response.status_code, response.text)
        (error,) = seen
        assert isinstance(error, StatusError)
        assert isinstance(error, httpx.HTTPStatusError)
        assert 503 == error.response.status_code

    def test_sees_answers_not_retried(self, server, face, clock):
        """
        A 500 (not retried) reaches the fallback too; a 404 does not.
        """
        server.answer(Answer(500), Answer(404))
        fallback = stalwart.Fallback(value=httpx.Response(299))

        responses, _ = send_many(
            face,
            [("GET", server.url(), {})] * 2,
            retry=retry(clock),
            fallback=fallback,
            clock=clock,
        )

        assert [299, 404] == [r.status_code for r in responses]

    def test_sees_errors_and_refusals(self, server, face, clock):
        """
        Connection errors (a POST's) reach the fallback.
        """
        server.answer(Drop())
        fallback = stalwart.Fallback(
            value=httpx.Response(299), on=httpx.TransportError
        )

        response, _ = send(
            face,
            "POST",
            server.url(),
            retry=retry(clock),
            fallback=fallback,
            clock=clock,
        )

        assert 299 == response.status_code

    def test_without_retry(self, server, face):
        """
        Without a retry, a 429 still reaches the fallback.
        """
        server.answer(Answer(429))

        response, _ = send(
            face,
            "GET",
            server.url(),
            retry=None,
            fallback=stalwart.Fallback(value=httpx.Response(299)),
        )

        assert 299 == response.status_code

    def test_answer_must_be_a_response(self, server, face):
        """
        A fallback that answers something else than a Response is refused.
        """
        server.answer(Answer(503))

        with pytest.raises(TypeError, match="httpx.Response"):
            send(
                face,
                "GET",
                server.url(),
                retry=None,
                fallback=stalwart.Fallback(value="cached"),
            )


class TestWithoutStages:
    def test_no_breaker(self, server, face, clock):
        """
        breaker=None: only the retry.
        """
        server.answer(Answer(500), Answer(503))

        responses, transport = send_many(
            face,
            [("GET", server.url(), {})] * 2,
            breaker=None,
            retry=retry(clock),
            clock=clock,
        )

        assert [500, 200] == [r.status_code for r in responses]
        assert ["<unnamed>", "http.policy"] == list(
            transport.statistics().stages
        )

    def test_nothing_at_all(self, server, face):
        """
        With every stage left out, answers and errors pass as they are.
        """
        server.answer(Answer(503), Drop())

        response, _ = send(face, "GET", server.url(), retry=None, breaker=None)

        assert 503 == response.status_code
        with pytest.raises(httpx.RemoteProtocolError):
            send(face, "GET", server.url(), retry=None, breaker=None)

    def test_request_without_timeout_under_a_deadline(self, server, face):
        """
        A request without timeouts, under a deadline, gets the time left
        as each of its timeouts.
        """
        inner = Recording()
        request = httpx.Request("GET", server.url())
        # Time stands still while the request is in flight.
        timeout = stalwart.Timeout(
            seconds=7.0, clock=FakeClock(wait_for_io=True)
        )
        if face == "sync":
            transport = ResilientTransport(transport=inner, timeout=timeout)
            transport.handle_request(request).read()
            transport.close()
        else:

            async def main() -> None:
                transport = AsyncResilientTransport(
                    transport=inner, timeout=timeout
                )
                response = await transport.handle_async_request(request)
                await response.aread()
                await transport.aclose()

            asyncio.run(main())

        assert [dict.fromkeys(["connect", "read", "write", "pool"], 7.0)] == [
            inner.timeouts[0]
        ]

    def test_request_without_timeout_extension(self, server, face):
        """
        A request built by hand, without httpx's timeout extension, is
        sent without a deadline.
        """
        request = httpx.Request("GET", server.url())
        if face == "sync":
            transport = ResilientTransport(
                transport=httpx.HTTPTransport(verify=False)
            )
            response = transport.handle_request(request)
            response.read()
            transport.close()
        else:

            async def main() -> httpx.Response:
                transport = AsyncResilientTransport(
                    transport=httpx.AsyncHTTPTransport(verify=False)
                )
                response = await transport.handle_async_request(request)
                await response.aread()
                await transport.aclose()
                return response

            response = asyncio.run(main())

        assert 200 == response.status_code


class TestConfiguration:
    def test_wrong_types_listed(self):
        """
        Every setting of the wrong type is named, together.
        """
        with pytest.raises(TypeError) as error:
            ResilientTransport(
                retry="3",  # type: ignore[arg-type]
                breaker=stalwart.Retry(),  # type: ignore[arg-type]
                limiter=object(),  # type: ignore[arg-type]
                bulkhead=1,  # type: ignore[arg-type]
                timeout=5.0,  # type: ignore[arg-type]
                attempt_timeout=5.0,  # type: ignore[arg-type]
                fallback=None,
                policy={},  # type: ignore[arg-type]
                key="host",  # type: ignore[arg-type]
                request_deadline=1,  # type: ignore[arg-type]
            )

        message = str(error.value)
        for name in (
            "retry",
            "breaker",
            "limiter",
            "bulkhead",
            "'timeout'",
            "attempt_timeout",
            "policy",
            "'key'",
            "request_deadline",
        ):
            assert name in message

    def test_one_problem(self):
        """
        A single problem is the whole message.
        """
        with pytest.raises(TypeError, match="^'fallback' must be a Fallback"):
            ResilientTransport(fallback=42)  # type: ignore[arg-type]

    def test_on_result_refused(self):
        """
        A retry with on_result is refused: the policy judges answers.
        """
        with pytest.raises(TypeError, match="on_result"):
            ResilientTransport(retry=stalwart.Retry(on_result=bool))

    @pytest.mark.parametrize(
        ("cls", "inner"),
        [
            (ResilientTransport, httpx.AsyncHTTPTransport()),
            (AsyncResilientTransport, httpx.HTTPTransport()),
        ],
    )
    def test_transport_of_the_other_face(self, cls, inner):
        """
        The wrapped transport must be of the same face.
        """
        with pytest.raises(TypeError, match="'transport'"):
            cls(transport=inner)

    def test_keyed_breaker_needs_a_key(self):
        """
        A KeyedCircuitBreaker without a key, and key=None: refused.
        """
        keyed = stalwart.KeyedCircuitBreaker(breaker=stalwart.CircuitBreaker())

        with pytest.raises(TypeError, match="needs a key"):
            ResilientTransport(breaker=keyed, key=None)

    def test_name_is_checked(self):
        """
        The name must be a non-empty string.
        """
        with pytest.raises(stalwart.ConfigurationError, match="'name'"):
            ResilientTransport(name="")

    def test_pipeline_order(self):
        """
        The stages go in the recommended order, the transport's own in
        between, named after the transport.
        """
        transport = ResilientTransport(
            name="api",
            limiter=stalwart.GCRA(rate=10, name="rate"),
            bulkhead=stalwart.Bulkhead(max_concurrent=5, name="slots"),
            timeout=stalwart.Timeout(seconds=30, name="total"),
            attempt_timeout=stalwart.Timeout(seconds=5, name="attempt"),
            fallback=stalwart.Fallback(value=None, name="cache"),
        )

        assert [
            "cache",
            "api.outcome",
            "total",
            "api.retry",
            "api.policy",
            "rate",
            "slots",
            "api.breaker",
            "attempt",
        ] == list(transport.statistics().stages)
        assert transport.pipeline is transport.pipeline

    def test_host_key(self):
        """
        The default key is the host and its port, when it has one.
        """
        assert "example.org" == host(
            httpx.Request("GET", "https://example.org/x")
        )
        assert "127.0.0.1:81" == host(
            httpx.Request("GET", "http://127.0.0.1:81")
        )

    @pytest.mark.parametrize("face", ["sync", "async"])
    def test_close_closes_the_inner_transport(self, face):
        """
        Closing the transport closes the one it wraps.
        """
        closed: list[str] = []

        class Inner(httpx.BaseTransport, httpx.AsyncBaseTransport):
            def close(self) -> None:
                closed.append("sync")

            async def aclose(self) -> None:
                closed.append("async")

        if face == "sync":
            ResilientTransport(transport=Inner()).close()
        else:
            asyncio.run(AsyncResilientTransport(transport=Inner()).aclose())

        assert [face] == closed
