"""
A resilient transport for httpx (the ``stalwart[httpx]`` extra).

:class:`ResilientTransport` (for :class:`httpx.Client`) and
:class:`AsyncResilientTransport` (for :class:`httpx.AsyncClient`) wrap
another transport and send every request through a
:class:`~stalwart.Pipeline` of stalwart's primitives, in the recommended
order: fallback, total timeout, retry, rate limiter, bulkhead, circuit
breaker, per-attempt timeout::

    client = httpx.Client(transport=ResilientTransport())

An :class:`~stalwart.HTTPPolicy` decides what each stage sees:

* the breaker (one per host by default) counts the answers in
  ``failure_statuses`` (5xx), timeouts and connection errors, nothing
  else;
* the retry retries what the policy retries (the transient statuses, for
  idempotent methods, ``Retry-After`` honoured), whatever its own ``on=``
  says (``on=`` may only narrow it), and never a request whose streamed
  body was partly sent;
* the fallback sees every error, and every answer whose status the policy
  retries or counts as a failure, once nothing inside saved it.

What they do not replace comes back as httpx would give it: the last
answer (a 503 the retry gave up on is returned, not raised), or the
error.  Refusals of the primitives (:class:`~stalwart.CircuitOpenError`,
:class:`~stalwart.RateLimitExceededError`...) are raised from the client
call.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from typing import Any, Final, TypeAlias, final

import attrs
import httpx

from ._bulkhead import Bulkhead
from ._circuit_breaker import CircuitBreaker
from ._clock import DEFAULT_CLOCK, Clock
from ._deadline import current_deadline, enter_deadline, exit_deadline
from ._errors import RejectedError, TimeoutExceededError
from ._fallback import Fallback
from ._http import HTTPPolicy
from ._keyed_breaker import KeyedCircuitBreaker
from ._limiters import (
    GCRA,
    FixedWindow,
    LeakyBucket,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from ._pipeline import Pipeline, PipelineStatistics
from ._retry import Retry, RetryAfter
from ._timeout import Timeout
from ._validators import non_empty_str, valid_clock


__all__ = [
    "AsyncResilientTransport",
    "ResilientTransport",
    "StatusError",
    "host",
]

BUFFER_LIMIT: Final = 65536
"""An answer that the transport judges (a retried or failed status) has
its body read into memory, up to this many bytes, and its connection
released at once; a longer one is kept open until the call moves on."""


Limiter: TypeAlias = (
    TokenBucket
    | LeakyBucket
    | FixedWindow
    | SlidingWindowLog
    | SlidingWindowCounter
    | GCRA
)
"""The rate limiters a transport takes."""


def host(request: httpx.Request) -> str:
    """
    Return the host of *request*, with its port when it has one
    (``"api.example.org"``, ``"127.0.0.1:8000"``): the default key of the
    per-host breakers and limiters.

    .. versionadded:: 0.2.0
    """
    return request.url.netloc.decode("ascii")


class StatusError(httpx.HTTPStatusError):
    """
    An answer whose status the transport's policy retries or counts as a
    failure, travelling through the pipeline as an exception.

    The stages see it (a breaker counts it, a retry retries it, a
    fallback replaces it); when it ends the call, the client gets
    :attr:`response` back, not this error.  Its body is already read (up
    to :data:`BUFFER_LIMIT` bytes), so the answer is whole whoever uses
    it.

    Attributes:
        request: The request.
        response: The answer.
        retry_after: The wait the server asked for (``Retry-After``), in
            seconds, when the policy honours it; ``None`` otherwise.  A
            :class:`~stalwart.Retry` waits it instead of its backoff.

    .. versionadded:: 0.2.0
    """

    def __init__(
        self, response: httpx.Response, request: httpx.Request
    ) -> None:
        super().__init__(
            f"{response.status_code} {response.reason_phrase} for"
            f" {request.method} {request.url}",
            request=request,
            response=response,
        )
        self.retry_after: float | None = None


@final
class _RequestTimeout:
    """The owner of a request's own deadline (see ``_deadline.Owner``)."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def cut(self) -> TimeoutExceededError:
        return TimeoutExceededError("<request timeout>", self.seconds)


@final
class _Outcome:
    """
    An error carried past a stage that must not see it (as a return
    value): a breaker does not count it, a retry does not retry it.
    """

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


@final
class _Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """
    A streamed request body that remembers whether sending it started.
    """

    __slots__ = ("inner", "started")

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.started = False

    def __iter__(self) -> Iterator[bytes]:
        self.started = True
        yield from self.inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.started = True
        async for chunk in self.inner:
            yield chunk


@final
class _Rest(httpx.SyncByteStream, httpx.AsyncByteStream):
    """
    The body of an answer too long to buffer: the chunks already read,
    then the rest, from the original answer (closed with it).
    """

    __slots__ = ("chunks", "original", "rest")

    def __init__(
        self, chunks: list[bytes], rest: Any, original: httpx.Response
    ) -> None:
        self.chunks = chunks
        self.rest = rest
        self.original = original

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        yield from self.rest

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        async for chunk in self.rest:
            yield chunk

    def close(self) -> None:
        self.original.close()

    async def aclose(self) -> None:
        await self.original.aclose()


@final
class _Call:
    """
    One request's way through the pipeline: what every attempt shares.
    """

    __slots__ = ("body", "open", "request")

    def __init__(self, request: httpx.Request, body: _Body | None) -> None:
        self.request = request
        self.body = body
        # Answers kept open (too long to buffer), closed once passed over.
        self.open: list[httpx.Response] = []


def _rebuilt(response: httpx.Response, stream: Any) -> httpx.Response:
    return httpx.Response(
        response.status_code,
        headers=response.headers,
        stream=stream,
        extensions=response.extensions,
    )


_NO_TIMEOUT: Final[dict[str, float | None]] = dict.fromkeys(
    ("connect", "read", "write", "pool")
)


def _capped(timeout: dict[str, float | None], left: float) -> dict[str, Any]:
    left = max(left, 0.0)
    return {
        name: left if value is None or value > left else value
        for name, value in timeout.items()
    }


def _whole_time(request: httpx.Request) -> float | None:
    """
    The request's own timeout as one duration: the longest of its
    connect, read, write and pool timeouts, or ``None`` without any.
    """
    timeout = request.extensions.get("timeout")
    if not timeout:
        return None
    values = [value for value in timeout.values() if value is not None]
    return max(values) if values else None


# -- the stages of our own ------------------------------------------------------


@final
class _Gate:
    """
    Just inside the retry: lets through what the policy retries, and
    carries past the retry what it does not.
    """

    __slots__ = ("judge", "name")

    def __init__(self, name: str, judge: Callable[[_Call, Exception], Any]):
        self.name = name
        self.judge = judge

    def call(self, fn: Callable[[_Call], Any], call: _Call) -> Any:
        try:
            result = fn(call)
        except RejectedError as refusal:
            if not isinstance(refusal, TimeoutExceededError):
                raise  # never sent: the retry knows when to come back
            return self.judge(call, refusal)
        except Exception as error:  # judged: raised or carried
            return self.judge(call, error)
        if result.__class__ is _Outcome:
            return self.judge(call, result.error)
        return result

    async def acall(self, fn: Callable[[_Call], Any], call: _Call) -> Any:
        try:
            result = await fn(call)
        except RejectedError as refusal:
            if not isinstance(refusal, TimeoutExceededError):
                raise
            return self.judge(call, refusal)
        except Exception as error:  # judged: raised or carried
            return self.judge(call, error)
        if result.__class__ is _Outcome:
            return self.judge(call, result.error)
        return result


@final
class _Unwrap:
    """
    Just inside the fallback: raises the errors carried past the stages
    inside it, so that the fallback sees them.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def call(self, fn: Callable[[_Call], Any], call: _Call) -> Any:
        result = fn(call)
        if result.__class__ is _Outcome:
            raise result.error
        return result

    async def acall(self, fn: Callable[[_Call], Any], call: _Call) -> Any:
        result = await fn(call)
        if result.__class__ is _Outcome:
            raise result.error
        return result


@final
class _BreakerStage:
    """A :class:`KeyedCircuitBreaker`, one breaker per key."""

    __slots__ = ("breakers", "key", "name")

    def __init__(
        self,
        breakers: KeyedCircuitBreaker[Any],
        key: Callable[[httpx.Request], Hashable],
    ) -> None:
        self.breakers = breakers
        self.key = key
        self.name = breakers.name

    def call(self, fn: Callable[[_Call], Any], call: _Call) -> Any:
        return self.breakers.key(self.key(call.request)).call(fn, call)

    async def acall(self, fn: Callable[[_Call], Any], call: _Call) -> Any:
        breaker = self.breakers.key(self.key(call.request))
        return await breaker.acall(fn, call)

    def statistics(self) -> Any:
        return self.breakers.statistics()


@final
class _LimiterStage:
    """A rate limiter, taking one permit per attempt for the key."""

    __slots__ = ("key", "limiter", "name")

    def __init__(
        self,
        limiter: Any,
        key: Callable[[httpx.Request], Hashable | None] | None,
    ) -> None:
        self.limiter = limiter
        self.key = key
        self.name = limiter.name

    def call(self, fn: Callable[[_Call], Any], call: _Call) -> Any:
        key = None if self.key is None else self.key(call.request)
        self.limiter.acquire(1, key, self.limiter.timeout)
        return fn(call)

    async def acall(self, fn: Callable[[_Call], Any], call: _Call) -> Any:
        key = None if self.key is None else self.key(call.request)
        await self.limiter.aacquire(1, key, self.limiter.timeout)
        return await fn(call)

    def statistics(self) -> Any:
        return self.limiter.statistics()


# -- the transports --------------------------------------------------------------


def _default_retry(self: _Resilient) -> Retry:
    return Retry(name=f"{self.name}.retry", attempts=3, wait_initial=0.25)


def _default_breaker(self: _Resilient) -> CircuitBreaker:
    return CircuitBreaker(name=f"{self.name}.breaker")


_LIMITER_STEPS = ("acquire", "aacquire", "statistics")


@attrs.frozen(kw_only=True, eq=False)
class _Resilient:
    """
    What the two transports share: the settings, the pipeline and the
    judging of outcomes.
    """

    name: str = attrs.field(default="http", validator=non_empty_str)
    retry: Retry | None = attrs.field(
        default=attrs.Factory(_default_retry, takes_self=True)
    )
    breaker: CircuitBreaker | KeyedCircuitBreaker[Any] | None = attrs.field(
        default=attrs.Factory(_default_breaker, takes_self=True)
    )
    limiter: Limiter | None = None
    bulkhead: Bulkhead | None = None
    timeout: Timeout | None = None
    attempt_timeout: Timeout | None = None
    fallback: Fallback | None = None
    policy: HTTPPolicy = attrs.field(factory=HTTPPolicy)
    key: Callable[[httpx.Request], Hashable] | None = host
    request_deadline: bool = True
    clock: Clock = attrs.field(default=DEFAULT_CLOCK, validator=valid_clock)

    _pipeline: Pipeline = attrs.field(init=False, repr=False)
    _watched: frozenset[int] = attrs.field(init=False, repr=False)
    _tracks_bodies: bool = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._check()
        stages: list[Any] = []
        if self.fallback is not None:
            stages += [self.fallback, _Unwrap(f"{self.name}.outcome")]
        if self.timeout is not None:
            stages.append(self.timeout)
        if self.retry is not None:
            stages += [self.retry, _Gate(f"{self.name}.policy", self._judge)]
        if self.limiter is not None:
            stages.append(_LimiterStage(self.limiter, self._limiter_key()))
        if self.bulkhead is not None:
            stages.append(self.bulkhead)
        if self.breaker is not None:
            stages.append(self._breaker_stage(self.breaker))
        if self.attempt_timeout is not None:
            stages.append(self.attempt_timeout)
        policy = self.policy
        object.__setattr__(
            self, "_pipeline", Pipeline(*stages, name=self.name)
        )
        object.__setattr__(
            self,
            "_watched",
            policy.retry_statuses | policy.failure_statuses,
        )
        object.__setattr__(self, "_tracks_bodies", self.retry is not None)

    def _check(self) -> None:
        problems: list[str] = []
        wanted: list[tuple[str, object, tuple[type, ...], str]] = [
            ("retry", self.retry, (Retry,), "a Retry"),
            (
                "breaker",
                self.breaker,
                (CircuitBreaker, KeyedCircuitBreaker),
                "a CircuitBreaker or a KeyedCircuitBreaker",
            ),
            ("bulkhead", self.bulkhead, (Bulkhead,), "a Bulkhead"),
            ("timeout", self.timeout, (Timeout,), "a Timeout"),
            ("attempt_timeout", self.attempt_timeout, (Timeout,), "a Timeout"),
            ("fallback", self.fallback, (Fallback,), "a Fallback"),
            ("policy", self.policy, (HTTPPolicy,), "an HTTPPolicy"),
        ]
        for name, value, types, what in wanted:
            if value is not None and not isinstance(value, types):
                problems.append(
                    f"{name!r} must be {what} or None (got {value!r})"
                )
        limiter = self.limiter
        if limiter is not None and not all(
            callable(getattr(limiter, step, None)) for step in _LIMITER_STEPS
        ):
            problems.append(
                "'limiter' must be a rate limiter (with acquire(),"
                f" aacquire() and statistics()) or None (got {limiter!r})"
            )
        if self.key is not None and not callable(self.key):
            problems.append(
                f"'key' must be callable or None (got {self.key!r})"
            )
        if type(self.request_deadline) is not bool:
            problems.append(
                f"'request_deadline' must be a bool (got {self.request_deadline!r})"
            )
        if isinstance(self.retry, Retry) and self.retry.on_result is not None:
            problems.append(
                "'retry' must not have an on_result: the transport's policy"
                " judges the answers"
            )
        if len(problems) == 1:
            raise TypeError(problems[0])
        if problems:
            raise TypeError(
                "invalid configuration:\n"
                + "\n".join(f"- {problem}" for problem in problems)
            )

    def _limiter_key(
        self,
    ) -> Callable[[httpx.Request], Hashable | None] | None:
        own = getattr(self.limiter, "key_func", None)
        return own if own is not None else self.key

    def _breaker_stage(
        self, breaker: CircuitBreaker | KeyedCircuitBreaker[Any]
    ) -> Any:
        if isinstance(breaker, KeyedCircuitBreaker):
            key = (
                breaker.key_func if breaker.key_func is not None else self.key
            )
            if key is None:
                msg = (
                    "'breaker': a KeyedCircuitBreaker needs a key: give it a"
                    " key_func (of the request) or leave the transport's key"
                )
                raise TypeError(msg)
            return _BreakerStage(breaker, key)
        if self.key is None:
            return breaker
        name = breaker.name
        if name == "<unnamed>":
            name = f"{self.name}.breaker"
        return _BreakerStage(
            KeyedCircuitBreaker(breaker=breaker, name=name), self.key
        )

    @property
    def pipeline(self) -> Pipeline:
        """
        The pipeline every request goes through (the stages given, in the
        recommended order, with the transport's own in between).

        .. versionadded:: 0.2.0
        """
        return self._pipeline

    def statistics(self) -> PipelineStatistics:
        """
        Return the statistics of every stage, by stage name.

        .. versionadded:: 0.2.0
        """
        return self._pipeline.statistics()

    # -- shared by both faces ---------------------------------------------------

    def _start(self, request: httpx.Request) -> _Call:
        stream = request.stream
        body = None
        if self._tracks_bodies and not isinstance(stream, httpx.ByteStream):
            body = _Body(stream)
            request.stream = body
        return _Call(request, body)

    def _deadline_of(self, request: httpx.Request) -> float | None:
        return _whole_time(request) if self.request_deadline else None

    def _prepare(self, call: _Call) -> dict[str, Any] | None:
        """
        Before an attempt: close the answers passed over, and cut the
        request's timeouts to the deadline.  Returns the extensions to
        restore after the attempt, or ``None``.

        Raises:
            TimeoutExceededError: If the deadline has passed.
        """
        for response in call.open:
            response.close()
        call.open.clear()
        deadline = current_deadline()
        if deadline is None:
            return None
        left = deadline.remaining()
        if left <= 0.0:
            raise deadline.cut()
        request = call.request
        saved = request.extensions
        timeout = {**_NO_TIMEOUT, **(saved.get("timeout") or {})}
        for value in timeout.values():
            if value is None or value > left:
                break
        else:  # every timeout ends before the deadline: nothing to cut
            return None
        request.extensions = {**saved, "timeout": _capped(timeout, left)}
        return saved

    def _judged(self, call: _Call, response: httpx.Response) -> Any:
        """
        The outcome of an attempt that got *response* (already buffered
        if its status is watched): the answer, or the status error raised
        for the breaker or carried past it.
        """
        error = StatusError(response, call.request)
        if response.status_code in self.policy.failure_statuses:
            raise error
        return _Outcome(error)

    def _failed(self, error: Exception) -> _Outcome:
        """
        The outcome of an attempt that raised *error*: raised for the
        breaker if it is a failure, carried past it otherwise.
        """
        if self.policy.failure_on(error):
            raise error
        return _Outcome(error)

    def _judge(self, call: _Call, error: Exception) -> _Outcome:
        """
        Raise *error* for the retry if the policy retries it, or carry it
        past the retry.
        """
        body = call.body
        if body is not None and body.started:
            return _Outcome(error)  # a streamed body cannot be sent again
        request = call.request
        if isinstance(error, StatusError):
            response = error.response
            verdict = self.policy.retry_status(
                request.method, response.status_code, response.headers
            )
            if verdict is False:
                return _Outcome(error)
            if isinstance(verdict, RetryAfter):
                error.retry_after = verdict.seconds
            raise error
        if not self.policy.retry_on(error, request.method):
            return _Outcome(error)
        raise error

    def _finish(self, result: Any) -> httpx.Response:
        """
        The client's answer from the pipeline's result.
        """
        if result.__class__ is _Outcome:
            error = result.error
            if not isinstance(error, StatusError):
                raise error
            result = error.response
        if not isinstance(result, httpx.Response):
            msg = (
                f"Transport {self.name!r}: the pipeline returned {result!r},"
                " not an httpx.Response (a fallback must answer with one)"
            )
            raise TypeError(msg)
        return result

    def _release(self, call: _Call, result: object) -> None:
        """
        Give the request its body back and close every answer passed
        over.
        """
        if call.body is not None:
            call.request.stream = call.body.inner
        for response in call.open:
            if response is not result:
                response.close()


@final
@attrs.frozen(kw_only=True, eq=False)
class ResilientTransport(_Resilient, httpx.BaseTransport):
    """
    An httpx transport that sends each request through stalwart's
    primitives: for :class:`httpx.Client`.

    The stages given are put in the recommended order (fallback, total
    timeout, retry, limiter, bulkhead, breaker, per-attempt timeout); leave
    one out with ``None``.  By default, a retry (3 attempts, exponential
    backoff from 0.25 s with full jitter) and a circuit breaker per host
    (5 failures in a row open it for 30 s).

    The breaker and the limiter are kept per *key* (the host, by
    default): a :class:`~stalwart.CircuitBreaker` given is the template of
    each host's breaker (a :class:`~stalwart.KeyedCircuitBreaker`, named
    after it, holds them); a :class:`~stalwart.KeyedCircuitBreaker` given
    uses its own *key_func* of the request, or *key*; a limiter takes one
    permit per attempt with the key its *key_func* (of the request) or
    *key* returns, waiting up to its own *timeout*.  ``key=None`` shares
    one breaker and one limiter key between every host.

    The request's own timeout (httpx's ``timeout=``) is also a deadline
    for the whole call, attempts and waits included (*request_deadline*):
    its longest value, from when the transport is called.  Every attempt's
    timeouts are cut to the time left before the deadline in force (the
    request's, a *timeout* stage's, or an enclosing
    :class:`~stalwart.Timeout`'s), so no attempt waits on the network past
    it.

    Answers the policy judges have their body read (up to
    :data:`BUFFER_LIMIT` bytes) and their connection released before the
    retry waits; an answer passed over is always closed.  A request whose
    body is streamed (an iterator, a generator, a file) is not sent again
    once sending its body started.

    Args:
        transport: The transport that sends each attempt; a new
            :class:`httpx.HTTPTransport` by default.
        name: Names the pipeline (and the default retry and breaker).
        retry: Retries what *policy* retries; its own *on* can only
            narrow that, and it must not have an *on_result*.
        breaker: Counts what *policy* calls a failure, per key.
        limiter: A rate limiter (:class:`~stalwart.TokenBucket`...), per
            key, one permit per attempt.
        bulkhead: Caps the attempts in flight, over every host.
        timeout: The time budget of the whole call.
        attempt_timeout: The time limit of each attempt (the breaker counts
            it as a failure).
        fallback: Replaces a failed call's outcome; its handler receives
            the error (a :class:`StatusError` for an answer) and must
            return an :class:`httpx.Response`.
        policy: What is retried and what is a failure.
        key: A function of the request returning the key of its breaker
            and limiter; ``None`` for one of each.
        request_deadline: Whether the request's own timeout is a deadline
            for the whole call.
        clock: The clock of that deadline.

    Raises:
        TypeError: If a setting has the wrong type (every problem listed).

    .. versionadded:: 0.2.0
    """

    transport: httpx.BaseTransport = attrs.field(factory=httpx.HTTPTransport)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.transport, httpx.BaseTransport):
            msg = (
                "'transport' must be an httpx.BaseTransport"
                f" (got {self.transport!r})"
            )
            raise TypeError(msg)
        super().__attrs_post_init__()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """
        Send *request* through the pipeline.

        .. versionadded:: 0.2.0
        """
        call = self._start(request)
        response = None
        try:
            response = self._finish(self._run(call))
        finally:
            self._release(call, response)
        return response

    def _run(self, call: _Call) -> Any:
        seconds = self._deadline_of(call.request)
        deadline = None
        if seconds is not None:
            deadline = enter_deadline(
                seconds, self.clock, _RequestTimeout(seconds)
            )
        try:
            return self._pipeline.call(self._send, call)
        except StatusError as error:
            return error.response
        finally:
            if deadline is not None:
                exit_deadline(deadline)

    def _send(self, call: _Call) -> Any:
        """
        One attempt: the answer, or the outcome for the stages to judge.
        """
        saved = None
        try:
            saved = self._prepare(call)
            response = self.transport.handle_request(call.request)
            if response.status_code not in self._watched:
                return response
            response = self._buffer(call, response)
        except Exception as error:  # judged: raised or carried
            return self._failed(error)
        finally:
            if saved is not None:
                call.request.extensions = saved
        return self._judged(call, response)

    def _buffer(self, call: _Call, response: httpx.Response) -> httpx.Response:
        chunks: list[bytes] = []
        size = 0
        rest = iter(response.stream)  # type: ignore[arg-type]  # a sync transport's
        try:
            for chunk in rest:
                chunks.append(chunk)
                size += len(chunk)
                if size > BUFFER_LIMIT:
                    kept = _rebuilt(response, _Rest(chunks, rest, response))
                    call.open.append(kept)
                    return kept
        except BaseException:
            response.close()
            raise
        response.close()
        return _rebuilt(response, httpx.ByteStream(b"".join(chunks)))

    def close(self) -> None:
        """
        Close the wrapped transport.

        .. versionadded:: 0.2.0
        """
        self.transport.close()


@final
@attrs.frozen(kw_only=True, eq=False)
class AsyncResilientTransport(_Resilient, httpx.AsyncBaseTransport):
    """
    The async twin of :class:`ResilientTransport`, for
    :class:`httpx.AsyncClient`: the same settings, with an
    :class:`httpx.AsyncHTTPTransport` by default.

    .. versionadded:: 0.2.0
    """

    transport: httpx.AsyncBaseTransport = attrs.field(
        factory=httpx.AsyncHTTPTransport
    )

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.transport, httpx.AsyncBaseTransport):
            msg = (
                "'transport' must be an httpx.AsyncBaseTransport"
                f" (got {self.transport!r})"
            )
            raise TypeError(msg)
        super().__attrs_post_init__()

    async def handle_async_request(
        self, request: httpx.Request
    ) -> httpx.Response:
        """
        Send *request* through the pipeline.

        .. versionadded:: 0.2.0
        """
        call = self._start(request)
        response = None
        try:
            response = self._finish(await self._arun(call))
        finally:
            await self._arelease(call, response)
        return response

    async def _arun(self, call: _Call) -> Any:
        seconds = self._deadline_of(call.request)
        deadline = None
        if seconds is not None:
            deadline = enter_deadline(
                seconds, self.clock, _RequestTimeout(seconds)
            )
        try:
            return await self._pipeline.acall(self._asend, call)
        except StatusError as error:
            return error.response
        finally:
            if deadline is not None:
                exit_deadline(deadline)

    async def _asend(self, call: _Call) -> Any:
        saved = None
        try:
            saved = await self._aprepare(call)
            response = await self.transport.handle_async_request(call.request)
            if response.status_code not in self._watched:
                return response
            response = await self._abuffer(call, response)
        except Exception as error:  # judged: raised or carried
            return self._failed(error)
        finally:
            if saved is not None:
                call.request.extensions = saved
        return self._judged(call, response)

    async def _aprepare(self, call: _Call) -> dict[str, Any] | None:
        for response in call.open:
            await response.aclose()
        call.open.clear()
        return self._prepare(call)

    async def _abuffer(
        self, call: _Call, response: httpx.Response
    ) -> httpx.Response:
        chunks: list[bytes] = []
        size = 0
        rest = aiter(response.stream)  # type: ignore[arg-type]  # an async transport's
        try:
            async for chunk in rest:
                chunks.append(chunk)
                size += len(chunk)
                if size > BUFFER_LIMIT:
                    kept = _rebuilt(response, _Rest(chunks, rest, response))
                    call.open.append(kept)
                    return kept
        except BaseException:
            await response.aclose()
            raise
        await response.aclose()
        return _rebuilt(response, httpx.ByteStream(b"".join(chunks)))

    async def _arelease(self, call: _Call, result: object) -> None:
        if call.body is not None:
            call.request.stream = call.body.inner
        for response in call.open:
            if response is not result:
                await response.aclose()

    async def aclose(self) -> None:
        """
        Close the wrapped transport.

        .. versionadded:: 0.2.0
        """
        await self.transport.aclose()
