"""
HTTP building blocks that need no HTTP library: ``Retry-After`` parsing
(RFC 9110, section 10.2.3) and :class:`HTTPPolicy`, the predicates that
tell a :class:`~stalwart.Retry` what to retry and a
:class:`~stalwart.CircuitBreaker` what counts as a failure.

Errors are read by duck typing, so the predicates work with the exceptions
of the standard library (``urllib.error.HTTPError``, ``ConnectionError``,
``TimeoutError``), httpx, requests and aiohttp without importing any of
them: a status from ``error.response.status_code`` (or ``error.status``,
``error.status_code``, ``error.code``), headers from ``error.response`` or
``error.headers``, the method from ``error.request.method``.
"""

from __future__ import annotations

import calendar
import math
import re
import socket

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, Literal, final

import attrs

from ._clock import wall_time
from ._errors import ConfigurationError
from ._retry import RetryAfter
from ._validators import duration, non_negative, seconds


__all__ = ["HTTPPolicy", "parse_retry_after"]

_DAYS = "Mon|Tue|Wed|Thu|Fri|Sat|Sun"
_LONG_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
_MONTHS = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
]
_MONTH = "|".join(_MONTHS)
_TIME = "([0-9]{2}):([0-9]{2}):([0-9]{2})"
# The three forms RFC 9110 (section 5.6.7) makes recipients accept, exact
# and case-sensitive as it defines them; [0-9], not \d, which matches any
# Unicode digit.
_IMF_FIXDATE = re.compile(
    rf"(?:{_DAYS}), ([0-9]{{2}}) ({_MONTH}) ([0-9]{{4}}) {_TIME} GMT"
)
_RFC850 = re.compile(
    rf"(?:{_LONG_DAYS}), ([0-9]{{2}})-({_MONTH})-([0-9]{{2}}) {_TIME} GMT"
)
_ASCTIME = re.compile(
    rf"(?:{_DAYS}) ({_MONTH}) ([0-9]{{2}}| [0-9]) {_TIME} ([0-9]{{4}})"
)
_DELTA_SECONDS = re.compile("[0-9]+")
# Optional whitespace around a field value (RFC 9110, section 5.5).
_OWS = " \t"

DEFAULT_MAX_DELAY: Final = 86400.0
"""The longest ``Retry-After`` :func:`parse_retry_after` returns unless
told otherwise: a day."""


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return value


def _posix(
    year: int, month: str, day: int, hms: tuple[str, str, str]
) -> float | None:
    """
    The POSIX time of a date in UTC, or ``None`` if there is no such date.
    """
    hour, minute, second = (int(part) for part in hms)
    if year < 1:  # before the calendar starts
        return None
    days = calendar.monthrange(year, _MONTHS.index(month) + 1)[1]
    if not (1 <= day <= days and hour < 24 and minute < 60 and second <= 60):
        return None
    # A leap second (60) is read as the last second of its minute.
    return float(
        calendar.timegm(
            (
                year,
                _MONTHS.index(month) + 1,
                day,
                hour,
                minute,
                min(second, 59),
            )
        )
    )


def parse_http_date(
    value: str | bytes, *, now: Callable[[], float] = wall_time
) -> float | None:
    """
    Read an HTTP-date in any of RFC 9110's three forms as a POSIX time,
    or return ``None`` if it is not one.

    A two-digit year (the obsolete RFC 850 form) is read as the year with
    those digits from 49 years before the year of *now* (a function
    returning the POSIX time, asked only then) to 50 after it: RFC 9110
    reads a year more than 50 years ahead as the one a century before.
    """
    text = _text(value).strip(_OWS)
    if found := _IMF_FIXDATE.fullmatch(text):
        day, month, year, *hms = found.groups()
        return _posix(int(year), month, int(day), (hms[0], hms[1], hms[2]))
    if found := _ASCTIME.fullmatch(text):
        month, day, *hms, year = found.groups()
        return _posix(int(year), month, int(day), (hms[0], hms[1], hms[2]))
    if found := _RFC850.fullmatch(text):
        day, month, short_year, *hms = found.groups()
        try:
            this_year = datetime.fromtimestamp(now(), tz=UTC).year
        except (OverflowError, ValueError, OSError):
            return None  # no calendar year: the century cannot be told
        year = this_year - this_year % 100 + int(short_year)
        if year > this_year + 50:
            year -= 100
        elif year <= this_year - 50:
            year += 100
        return _posix(year, month, int(day), (hms[0], hms[1], hms[2]))
    return None


def retry_after_seconds(
    value: str | bytes,
    date: str | bytes | None,
    now: Callable[[], float],
    cap: float,
) -> float | None:
    """
    :func:`parse_retry_after` with the wall clock as a function (asked
    only for a date) and *cap* already checked.
    """
    text = _text(value).strip(_OWS)
    if _DELTA_SECONDS.fullmatch(text):
        # Past 18 digits the number exceeds any cap worth having (and
        # int() refuses strings of more than 4300 digits).
        wait = int(text) if len(text) <= 18 else math.inf
        return cap if wait >= cap else float(wait)
    reference = None if date is None else parse_http_date(date, now=now)
    if reference is None:
        reference = now()
    fixed = reference
    at = parse_http_date(text, now=lambda: fixed)
    if at is None:
        return None
    return min(max(0.0, at - reference), cap)


def parse_retry_after(
    value: str | bytes | None,
    *,
    date: str | bytes | None = None,
    now: float | None = None,
    max_delay: float | timedelta = DEFAULT_MAX_DELAY,
) -> float | None:
    """
    Read a ``Retry-After`` header as the seconds to wait, or ``None``.

    Both forms of RFC 9110 (section 10.2.3) are read: delta-seconds
    (``"120"``: digits only) and an HTTP-date (``"Wed, 21 Oct 2015
    07:28:00 GMT"``, and the two obsolete forms every recipient must
    accept).  A date is turned into a wait from the response's own *date*
    (its ``Date`` header) when that is a valid HTTP-date, so that two
    readings of the server's clock are compared and the client's clock
    skew does not matter; otherwise from *now*, the wall-clock time
    (POSIX seconds), read from the system when not given.  A date in the
    past is a wait of 0.  The result is in seconds, the unit of every
    stalwart clock: a :class:`~stalwart.Retry` waits it on its own clock
    (a :class:`~stalwart.testing.FakeClock` in tests).

    Anything else (a negative or fractional number, an unknown date form,
    an impossible date, ``None``) is ignored: the answer is ``None``,
    never an error.

    Args:
        value: The header's value, as ``str`` or ``bytes`` (Latin-1).
        date: The response's ``Date`` header, if any.
        now: The wall-clock time to measure a date from when *date* is
            missing or invalid; by default the system's.
        max_delay: The longest wait returned, in seconds: longer ones are
            cut to it (a day by default).

    Returns:
        The wait, in ``[0, max_delay]``, or ``None``.

    Raises:
        ConfigurationError: If *max_delay* is not a number of seconds
            >= 0.

    .. versionadded:: 0.2.0
    """
    cap: object = seconds(max_delay)
    if not isinstance(cap, float) or not cap >= 0:
        msg = (
            f"'max_delay' must be a number of seconds >= 0 (got {max_delay!r})"
        )
        raise ConfigurationError(msg)
    if value is None:
        return None
    return retry_after_seconds(
        value, date, wall_time if now is None else lambda: now, cap
    )


def _frozen_statuses(value: Iterable[int]) -> frozenset[int]:
    given: object = value
    if isinstance(given, str | bytes):
        return value  # type: ignore[return-value]  # refused by the validator
    try:
        return frozenset(value)
    except TypeError:
        return value  # type: ignore[return-value]  # refused by the validator


def _frozen_methods(value: Iterable[str]) -> frozenset[str]:
    given: object = value
    if isinstance(given, str):
        return value  # type: ignore[return-value]  # refused by the validator
    items: Iterable[object] = value
    try:
        return frozenset(
            method.upper() if isinstance(method, str) else method  # type: ignore[misc]  # others are refused by the validator
            for method in items
        )
    except TypeError:
        return value  # type: ignore[return-value]  # refused by the validator


def _statuses(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, frozenset) or not all(
        type(status) is int and 100 <= status <= 599 for status in value
    ):
        msg = (
            f"{attr.name!r} must be a collection of HTTP status codes"
            f" (ints from 100 to 599) (got {value!r})"
        )
        raise ConfigurationError(msg)


def _methods(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, frozenset) or not all(
        isinstance(method, str) and method.isalpha() for method in value
    ):
        msg = (
            f"{attr.name!r} must be a collection of HTTP method names"
            f" (got {value!r})"
        )
        raise ConfigurationError(msg)


def _finite(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if not math.isfinite(value):
        msg = f"{attr.name!r} must be finite (got {value!r})"
        raise ConfigurationError(msg)


def _callable(inst: object, attr: attrs.Attribute[Any], value: Any) -> None:
    if not callable(value):
        msg = f"{attr.name!r} must be callable (got {value!r})"
        raise TypeError(msg)


# Errors named by their class (and any subclass), so that nothing needs
# importing.  "unsent": the request never left (retrying it is safe for
# any method); "transient": a connection that failed or timed out, the
# request perhaps sent.
_ERRORS_BY_NAME: Final[dict[str, Literal["unsent", "transient"]]] = {
    "httpx.ConnectError": "unsent",
    "httpx.ConnectTimeout": "unsent",
    "httpx.PoolTimeout": "unsent",
    "httpx.TimeoutException": "transient",
    "httpx.NetworkError": "transient",
    "httpx.RemoteProtocolError": "transient",
    "requests.exceptions.ConnectTimeout": "unsent",
    "requests.exceptions.ConnectionError": "transient",
    "requests.exceptions.Timeout": "transient",
    "aiohttp.client_exceptions.ClientConnectorError": "unsent",
    "aiohttp.client_exceptions.ServerDisconnectedError": "transient",
    "aiohttp.client_exceptions.ServerTimeoutError": "transient",
    "aiohttp.client_exceptions.ClientOSError": "transient",
}


def error_kind(
    error: BaseException,
) -> Literal["unsent", "transient"] | None:
    """
    Tell whether *error* means the request was never sent (``"unsent"``:
    a refused connection, a failed name lookup, a connect timeout), that a
    connection failed or timed out once it may have been (``"transient"``),
    or neither (``None``: a bug, a bad URL, anything else).
    """
    for cls in type(error).__mro__:
        kind = _ERRORS_BY_NAME.get(f"{cls.__module__}.{cls.__qualname__}")
        if kind is not None:
            return kind
    if isinstance(error, ConnectionRefusedError | socket.gaierror):
        return "unsent"
    if isinstance(error, ConnectionError | TimeoutError):
        return "transient"
    # urllib.error.URLError carries the socket's error as its reason.
    reason = getattr(error, "reason", None)
    if isinstance(reason, BaseException) and reason is not error:
        return error_kind(reason)
    return None


def _attribute(obj: object, name: str) -> Any:
    """
    ``getattr(obj, name, None)``, also when the attribute is a property
    that raises (httpx's ``error.request`` does when it was not set).
    """
    try:
        return getattr(obj, name, None)
    except Exception:  # a failing property means "none"
        return None


def _status_of(value: object) -> int | None:
    for name in ("status_code", "status", "code"):
        status = _attribute(value, name)
        if type(status) is int and 100 <= status <= 599:
            return status
    return None


def read_error(
    error: BaseException,
) -> tuple[int | None, Any, str | None]:
    """
    Read the status, the headers and the request method an HTTP error
    carries, each ``None`` when it does not.
    """
    response = _attribute(error, "response")
    if response is not None and _status_of(response) is not None:
        status, headers = _status_of(response), _attribute(response, "headers")
    else:
        status, headers = _status_of(error), _attribute(error, "headers")
    request = _attribute(error, "request")
    method = _attribute(request, "method") if request is not None else None
    if method is None:
        # aiohttp keeps it in the request's info.
        info = _attribute(error, "request_info")
        method = _attribute(info, "method") if info is not None else None
    if isinstance(method, bytes):
        method = method.decode("latin-1")
    return status, headers, method if isinstance(method, str) else None


def header(headers: Any, name: str) -> str | bytes | None:
    """
    Read one header from a mapping of any HTTP library (case-insensitive
    ones, ``email.message.Message``, or a plain ``dict``).
    """
    if headers is None:
        return None
    try:
        value = headers.get(name)
        if value is None:
            value = headers.get(name.lower())
    except Exception:  # not a mapping: no header
        return None
    return value if isinstance(value, str | bytes) else None


@final
@attrs.frozen(kw_only=True)
class HTTPPolicy:
    """
    What to retry and what counts as a failure, for HTTP calls.

    * **Retried**: connection errors and timeouts, and the answers whose
      status is in *retry_statuses* (408, 429, 502, 503 and 504 by
      default), never the other 4xx, which will fail again.  Only for the
      idempotent methods of RFC 9110 (*retry_methods*: ``GET``, ``HEAD``,
      ``OPTIONS``, ``TRACE``, ``PUT``, ``DELETE``): add ``POST`` (say,
      for requests carrying an idempotency key) to opt in.  An error that
      shows the request never left (a refused connection, a failed name
      lookup, a connect timeout) is retried for every method.
    * **Retry-After** of the answers in *retry_after_statuses* (429 and
      503) is honoured: the predicate returns a
      :class:`~stalwart.RetryAfter`, so the retry waits what the server
      asked instead of its backoff.  One asking for more than
      *retry_after_max* is not retried: coming back sooner would be
      refused again.
    * **Failures** for a circuit breaker: the answers in
      *failure_statuses* (every 5xx), timeouts and connection errors;
      never the caller's own 4xx.

    Use its predicates with any HTTP library: ``Retry(on=policy.retry_on)``
    and ``CircuitBreaker(failure_on=policy.failure_on)`` read the status,
    headers and method from the exception; :meth:`retry_status` and
    :meth:`failure_status` judge an answer you hold.

    Args:
        retry_statuses: Statuses worth another attempt.
        retry_methods: Methods that may be sent again.
        retry_after_statuses: Statuses whose ``Retry-After`` is honoured.
        retry_after_max: The longest ``Retry-After`` honoured, in
            seconds; an answer asking for more is not retried.
        failure_statuses: Statuses that count as a breaker failure.
        wall_clock: Returns the wall-clock time (POSIX seconds), to read a
            ``Retry-After`` date when the answer has no valid ``Date``.

    Raises:
        ConfigurationError: If a setting is not valid.

    .. versionadded:: 0.2.0
    """

    IDEMPOTENT_METHODS: ClassVar[frozenset[str]] = frozenset(
        {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}
    )
    """The idempotent methods of RFC 9110, section 9.2.2."""

    retry_statuses: frozenset[int] = attrs.field(
        default=frozenset({408, 429, 502, 503, 504}),
        converter=_frozen_statuses,
        validator=_statuses,
    )
    retry_methods: frozenset[str] = attrs.field(
        default=IDEMPOTENT_METHODS,
        converter=_frozen_methods,
        validator=_methods,
    )
    retry_after_statuses: frozenset[int] = attrs.field(
        default=frozenset({429, 503}),
        converter=_frozen_statuses,
        validator=_statuses,
    )
    retry_after_max: float = attrs.field(
        default=60.0,
        converter=seconds,
        validator=[duration, non_negative, _finite],
    )
    failure_statuses: frozenset[int] = attrs.field(
        default=frozenset(range(500, 600)),
        converter=_frozen_statuses,
        validator=_statuses,
        repr=False,
    )
    wall_clock: Callable[[], float] = attrs.field(
        default=wall_time, validator=_callable, repr=False
    )

    def retry_status(
        self,
        method: str | None,
        status: int,
        headers: Mapping[str, str] | Any = None,
    ) -> bool | RetryAfter:
        """
        Tell whether an answer with *status* to a *method* request is
        worth another attempt.

        Args:
            method: The request's method; ``None`` when unknown, which is
                not retried.
            status: The answer's status.
            headers: The answer's headers, to read ``Retry-After`` (and
                ``Date``) from; any mapping with ``get``.

        Returns:
            ``False``; ``True`` (retry after the backoff); or a
            :class:`~stalwart.RetryAfter` with the server's wait.

        .. versionadded:: 0.2.0
        """
        if status not in self.retry_statuses or not self._may_resend(method):
            return False
        if status not in self.retry_after_statuses:
            return True
        value = header(headers, "Retry-After")
        if value is None:
            return True
        wait = retry_after_seconds(
            value, header(headers, "Date"), self.wall_clock, math.inf
        )
        if wait is None:
            return True  # garbage: ignored, the backoff applies
        if wait > self.retry_after_max:
            return False
        return RetryAfter(wait)

    def failure_status(self, status: int) -> bool:
        """
        Tell whether an answer with *status* means the server is in
        trouble (a breaker failure).

        .. versionadded:: 0.2.0
        """
        return status in self.failure_statuses

    def retry_on(
        self, error: BaseException, method: str | None = None
    ) -> bool | RetryAfter:
        """
        Tell whether the call that raised *error* is worth another
        attempt: the predicate for ``Retry(on=...)``.

        An error carrying an answer (``urllib.error.HTTPError``,
        ``httpx.HTTPStatusError``, ``requests.HTTPError``...) is judged by
        :meth:`retry_status`; a connection error or a timeout is retried
        when the request may be sent again.  Anything else is not.

        Args:
            error: What the call raised.
            method: The request's method, when *error* does not carry it
                (``urllib.error.HTTPError`` does not); it wins over the
                one *error* carries.

        .. versionadded:: 0.2.0
        """
        status, headers, carried = read_error(error)
        method = carried if method is None else method
        if status is not None:
            return self.retry_status(method, status, headers)
        kind = error_kind(error)
        if kind == "unsent":
            return True
        return kind == "transient" and self._may_resend(method)

    def failure_on(self, error: BaseException) -> bool:
        """
        Tell whether *error* means the server is in trouble: an answer
        whose status is in *failure_statuses*, a timeout or a connection
        error.  The predicate for ``CircuitBreaker(failure_on=...)``.

        .. versionadded:: 0.2.0
        """
        status, _, _ = read_error(error)
        if status is not None:
            return status in self.failure_statuses
        return error_kind(error) is not None

    def _may_resend(self, method: str | None) -> bool:
        return method is not None and method.upper() in self.retry_methods
