"""
The HTTP building blocks: Retry-After parsing and HTTPPolicy's predicates,
with no HTTP library (the standard library's errors, and duck-typed ones).
"""

from __future__ import annotations

import email.message
import math
import socket
import urllib.error

from datetime import UTC, datetime, timedelta

import pytest

from hypothesis import assume, example, given
from hypothesis import strategies as st

import stalwart

from stalwart import HTTPPolicy, RetryAfter, parse_retry_after
from stalwart._http import error_kind, header, parse_http_date
from stalwart.testing import FakeClock


DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
DAYS.append("Sunday")
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


def imf_fixdate(moment: datetime) -> str:
    return (
        f"{DAYS[moment.weekday()][:3]}, {moment.day:02d}"
        f" {MONTHS[moment.month - 1]} {moment.year:04d}"
        f" {moment:%H:%M:%S} GMT"
    )


def rfc850(moment: datetime) -> str:
    return (
        f"{DAYS[moment.weekday()]}, {moment.day:02d}"
        f"-{MONTHS[moment.month - 1]}-{moment.year % 100:02d}"
        f" {moment:%H:%M:%S} GMT"
    )


def asctime(moment: datetime) -> str:
    return (
        f"{DAYS[moment.weekday()][:3]} {MONTHS[moment.month - 1]}"
        f" {moment.day:2d} {moment:%H:%M:%S} {moment.year:04d}"
    )


FORMATS = [imf_fixdate, rfc850, asctime]

moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1)
).map(lambda d: d.replace(microsecond=0, tzinfo=UTC))


class TestParseRetryAfter:
    @given(st.integers(min_value=0, max_value=10**40))
    def test_delta_seconds(self, number):
        """
        Digits are a wait in seconds, cut to the cap.
        """
        assert float(min(number, 86400)) == parse_retry_after(str(number))

    @pytest.mark.parametrize("cap", [60.0, math.inf])
    def test_more_digits_than_int_reads(self, cap):
        """
        A number of 5,000 digits is the cap, not an error.
        """
        assert cap == parse_retry_after("9" * 5000, max_delay=cap)

    @given(
        moment=moments,
        reference=moments,
        form=st.sampled_from([imf_fixdate, asctime]),
    )
    def test_dates_from_now(self, moment, reference, form):
        """
        A date is the time from *now* to it, 0 once past, capped.
        """
        expected = min(max(0.0, (moment - reference).total_seconds()), 1e9)

        assert expected == parse_retry_after(
            form(moment), now=reference.timestamp(), max_delay=1e9
        )

    @given(
        reference=moments,
        years=st.integers(min_value=-49, max_value=50),
        seconds=st.integers(min_value=-(10**7), max_value=10**7),
    )
    def test_rfc850_two_digit_years(self, reference, years, seconds):
        """
        The obsolete form's two-digit year is read within 50 years ahead of
        the reference's year and less than 50 behind, as RFC 9110 says.
        """
        try:
            moment = reference.replace(
                year=reference.year + years, day=min(reference.day, 28)
            ) + timedelta(seconds=seconds)
        except (ValueError, OverflowError):
            assume(False)
        assume(-49 <= moment.year - reference.year <= 50)
        expected = max(0.0, (moment - reference).total_seconds())

        assert expected == parse_retry_after(
            rfc850(moment), now=reference.timestamp(), max_delay=math.inf
        )

    @given(
        date=moments,
        offset=st.integers(min_value=-(10**9), max_value=10**9),
        form=st.sampled_from(FORMATS),
    )
    def test_measured_from_the_response_date(self, date, offset, form):
        """
        A valid Date header is the reference, whatever the local clock says.
        """
        try:
            moment = date + timedelta(seconds=offset)
        except OverflowError:
            assume(False)
        assume(abs(moment.year - date.year) < 49)
        expected = min(max(0.0, (moment - date).total_seconds()), 3600.0)

        assert expected == parse_retry_after(
            form(moment),
            date=imf_fixdate(date).encode(),
            now=0.0,
            max_delay=timedelta(hours=1),
        )

    @given(st.one_of(st.text(), st.binary()), st.floats(0, 1e12))
    @example("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480.0)
    def test_anything_else_is_ignored(self, value, now):
        """
        Any input gives None or a wait in [0, cap], and never raises.
        """
        wait = parse_retry_after(value, date=value, now=now, max_delay=60)

        assert wait is None or 0.0 <= wait <= 60.0

    @pytest.mark.parametrize(
        "value",
        [
            "-1",
            "1.5",
            "1e3",
            " ",
            "",
            "٣",  # a digit, but not an ASCII one
            "wed, 21 Oct 2015 07:28:00 GMT",  # HTTP-date is case-sensitive
            "Wed, 21 Oct 2015 07:28:00 UTC",
            "Wed, 31 Feb 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 24:28:00 GMT",
            "Wed, 21 Oct 0000 07:28:00 GMT",
            "Wed, 21 Oct 15 07:28:00 GMT",
        ],
    )
    def test_garbage(self, value):
        """
        What is neither delta-seconds nor an HTTP-date reads as None.
        """
        assert None is parse_retry_after(value, now=0.0)

    @pytest.mark.parametrize(
        ("reference", "date", "year"),
        [
            (2026, "Sunday, 06-Nov-94 08:49:37 GMT", 1994),
            (1999, "Saturday, 01-Jan-00 00:00:00 GMT", 2000),
            (2026, "Tuesday, 06-Nov-40 08:49:37 GMT", 2040),
        ],
    )
    def test_rfc850_centuries(self, reference, date, year):
        """
        A two-digit year more than 50 years ahead is in the century
        before; one 50 years behind or more, in the century after.
        """
        now = datetime(reference, 6, 1, tzinfo=UTC).timestamp()

        posix = parse_http_date(date, now=lambda: now)

        assert year == datetime.fromtimestamp(posix, tz=UTC).year

    def test_none_and_whitespace(self):
        """
        No header reads as None; surrounding whitespace is allowed.
        """
        assert None is parse_retry_after(None)
        assert 3.0 == parse_retry_after(b" \t3 ")

    def test_leap_second(self):
        """
        A leap second reads as the last second of its minute.
        """
        assert 59.0 == parse_retry_after(
            "Thu, 01 Jan 1970 00:00:60 GMT", now=0.0
        )

    def test_invalid_date_header_falls_back_to_now(self):
        """
        A Date header that is not an HTTP-date is ignored for *now*.
        """
        assert 60.0 == parse_retry_after(
            "Thu, 01 Jan 1970 00:01:00 GMT", date="yesterday", now=0.0
        )

    def test_wall_clock_by_default(self):
        """
        Without a Date or *now*, a date is measured from the system's time.
        """
        soon = datetime.now(UTC) + timedelta(hours=2)

        wait = parse_retry_after(imf_fixdate(soon))

        assert wait is not None
        assert 3600.0 < wait <= 7200.0

    def test_rfc850_without_calendar_year(self):
        """
        A two-digit year cannot be placed from a reference beyond the
        calendar: ignored.
        """
        assert None is parse_http_date(
            "Sunday, 06-Nov-94 08:49:37 GMT", now=lambda: 1e300
        )

    @pytest.mark.parametrize("cap", [-1.0, math.nan, "60", True])
    def test_bad_cap(self, cap):
        """
        The cap must be a number of seconds >= 0.
        """
        with pytest.raises(stalwart.ConfigurationError, match="max_delay"):
            parse_retry_after("1", max_delay=cap)


def http_error(
    status: int, headers: dict[str, str] | None = None
) -> urllib.error.HTTPError:
    message = email.message.Message()
    for name, value in (headers or {}).items():
        message[name] = value
    return urllib.error.HTTPError("http://h/", status, "x", message, None)


class _Request:
    def __init__(self, method):
        self.method = method


class _Response:
    def __init__(self, status, headers):
        self.status_code = status
        self.headers = headers


class DuckStatusError(Exception):
    """An error shaped like httpx's and requests' HTTPStatusError."""

    def __init__(self, method, status, headers=None):
        self.request = _Request(method)
        self.response = _Response(status, headers or {})


class TestRetryStatus:
    @pytest.mark.parametrize("status", [408, 429, 502, 503, 504])
    @pytest.mark.parametrize("method", sorted(HTTPPolicy.IDEMPOTENT_METHODS))
    def test_transient_statuses_of_idempotent_methods(self, status, method):
        """
        The transient statuses are retried for every idempotent method.
        """
        assert True is HTTPPolicy().retry_status(method, status, {})

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500])
    def test_other_statuses(self, status):
        """
        Other 4xx (and a 500) are never retried.
        """
        assert False is HTTPPolicy().retry_status("GET", status, {})

    @pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT", None])
    def test_other_methods(self, method):
        """
        A method that is not idempotent (or unknown) is not sent again.
        """
        assert False is HTTPPolicy().retry_status(method, 503, {})

    def test_opt_in(self):
        """
        Adding POST to the retry methods opts it in (case-insensitively).
        """
        policy = HTTPPolicy(
            retry_methods=HTTPPolicy.IDEMPOTENT_METHODS | {"post"},
            retry_statuses=[500],
        )

        assert True is policy.retry_status("Post", 500, {})

    @pytest.mark.parametrize("status", [429, 503])
    def test_retry_after_seconds(self, status):
        """
        429 and 503 answer with the server's wait.
        """
        assert RetryAfter(7.0) == HTTPPolicy().retry_status(
            "GET", status, {"Retry-After": "7"}
        )

    def test_retry_after_date_against_date_header(self):
        """
        A date is measured from the answer's Date, not the local clock.
        """
        policy = HTTPPolicy(wall_clock=lambda: 0.0)
        headers = {
            "retry-after": "Wed, 21 Oct 2015 07:28:30 GMT",
            "date": "Wed, 21 Oct 2015 07:28:00 GMT",
        }

        assert RetryAfter(30.0) == policy.retry_status("GET", 429, headers)

    def test_retry_after_date_against_wall_clock(self):
        """
        Without a Date, a date is measured from the policy's wall clock.
        """
        policy = HTTPPolicy(wall_clock=lambda: 1445412480.0 - 12)
        headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}

        assert RetryAfter(12.0) == policy.retry_status("GET", 503, headers)

    def test_retry_after_only_where_configured(self):
        """
        A 502's Retry-After is not read: the backoff applies.
        """
        assert True is HTTPPolicy().retry_status(
            "GET", 502, {"Retry-After": "7"}
        )

    @pytest.mark.parametrize("value", ["soon", "-3", None])
    def test_garbage_retry_after(self, value):
        """
        A missing or unreadable Retry-After leaves the backoff.
        """
        headers = {} if value is None else {"Retry-After": value}

        assert True is HTTPPolicy().retry_status("GET", 429, headers)

    def test_too_long_retry_after(self):
        """
        A wait longer than retry_after_max is not retried at all.
        """
        policy = HTTPPolicy(retry_after_max=timedelta(seconds=30))

        assert False is policy.retry_status("GET", 429, {"Retry-After": "31"})
        assert RetryAfter(30.0) == policy.retry_status(
            "GET", 429, {"Retry-After": "30"}
        )

    @pytest.mark.parametrize("status", [500, 501, 502, 503, 504, 599])
    def test_failure_statuses(self, status):
        """
        Every 5xx is a breaker failure.
        """
        assert True is HTTPPolicy().failure_status(status)

    @pytest.mark.parametrize("status", [200, 301, 400, 404, 408, 429])
    def test_not_failures(self, status):
        """
        The caller's own 4xx (429 and 408 included) are not failures.
        """
        assert False is HTTPPolicy().failure_status(status)


class TestRetryOn:
    def test_urllib_error_needs_the_method(self):
        """
        urllib's HTTPError carries no method: retried only when told it.
        """
        error = http_error(503, {"Retry-After": "2"})
        policy = HTTPPolicy()

        assert False is policy.retry_on(error)
        assert RetryAfter(2.0) == policy.retry_on(error, "GET")
        assert False is policy.retry_on(error, "POST")

    def test_duck_typed_errors_carry_their_method(self):
        """
        Errors with .request.method and .response are read by shape.
        """
        policy = HTTPPolicy()

        assert True is policy.retry_on(DuckStatusError("GET", 502))
        assert False is policy.retry_on(DuckStatusError("POST", 502))
        assert False is policy.retry_on(DuckStatusError("GET", 404))

    def test_given_method_wins(self):
        """
        A method given to retry_on wins over the one the error carries.
        """
        error = DuckStatusError(b"POST", 502)

        assert True is HTTPPolicy().retry_on(error, "GET")
        assert False is HTTPPolicy().retry_on(error)

    @pytest.mark.parametrize(
        "error",
        [
            ConnectionRefusedError(),
            socket.gaierror(),
            urllib.error.URLError(ConnectionRefusedError()),
        ],
        ids=["refused", "dns", "urllib-refused"],
    )
    def test_unsent_errors_for_every_method(self, error):
        """
        A request that never left may be sent again, even a POST.
        """
        assert True is HTTPPolicy().retry_on(error, "POST")
        assert "unsent" == error_kind(error)

    @pytest.mark.parametrize(
        "error",
        [ConnectionResetError(), TimeoutError(), BrokenPipeError()],
        ids=["reset", "timeout", "pipe"],
    )
    def test_transient_errors_for_idempotent_methods(self, error):
        """
        A connection lost once the request may have been sent is retried
        for idempotent methods only.
        """
        assert True is HTTPPolicy().retry_on(error, "PUT")
        assert False is HTTPPolicy().retry_on(error, "POST")
        assert False is HTTPPolicy().retry_on(error)

    @pytest.mark.parametrize(
        "error",
        [ValueError("bug"), urllib.error.URLError("bad url"), KeyError()],
    )
    def test_other_errors(self, error):
        """
        Errors that are no connection trouble are neither retried nor
        failures.
        """
        assert False is HTTPPolicy().retry_on(error, "GET")
        assert False is HTTPPolicy().failure_on(error)

    @pytest.mark.parametrize(
        ("module", "name", "kind"),
        [
            ("requests.exceptions", "ConnectTimeout", "unsent"),
            ("requests.exceptions", "ConnectionError", "transient"),
            ("aiohttp.client_exceptions", "ClientConnectorError", "unsent"),
            (
                "aiohttp.client_exceptions",
                "ServerDisconnectedError",
                "transient",
            ),
        ],
    )
    def test_other_libraries_by_name(self, module, name, kind):
        """
        Errors of requests and aiohttp (and their subclasses) are known by
        their class's name, without importing those libraries.
        """
        base = type(name, (OSError,), {"__module__": module})
        base.__qualname__ = name
        sub = type("Mine", (base,), {})

        assert kind == error_kind(sub())
        assert (kind == "unsent") is HTTPPolicy().retry_on(sub(), "POST")

    def test_a_failing_property_reads_as_missing(self):
        """
        An error whose .request property raises is read without it.
        """

        class Odd(ConnectionResetError):
            @property
            def request(self):
                raise RuntimeError("not set")

        assert False is HTTPPolicy().retry_on(Odd())


class TestFailureOn:
    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (http_error(500), True),
            (http_error(503), True),
            (http_error(404), False),
            (http_error(429), False),
            (ConnectionRefusedError(), True),
            (TimeoutError(), True),
            (DuckStatusError("GET", 502), True),
            (DuckStatusError("GET", 400), False),
        ],
    )
    def test_server_trouble_only(self, error, expected):
        """
        5xx, timeouts and connection errors are failures; 4xx are not.
        """
        assert expected is HTTPPolicy().failure_on(error)


class TestHeaders:
    def test_header_sources(self):
        """
        Headers are read from any mapping, case-insensitively where it is.
        """
        message = email.message.Message()
        message["Retry-After"] = "3"

        assert "3" == header(message, "retry-after")
        assert "4" == header({"retry-after": "4"}, "Retry-After")
        assert None is header({"Retry-After": 5}, "Retry-After")
        assert None is header(None, "Retry-After")
        assert None is header(object(), "Retry-After")


class TestConfiguration:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"retry_statuses": [99]}, "retry_statuses"),
            ({"retry_statuses": "429"}, "retry_statuses"),
            ({"retry_statuses": 429}, "retry_statuses"),
            ({"retry_after_statuses": [True]}, "retry_after_statuses"),
            ({"failure_statuses": [600]}, "failure_statuses"),
            ({"retry_methods": "GET"}, "retry_methods"),
            ({"retry_methods": ["GET", 1]}, "retry_methods"),
            ({"retry_methods": 3}, "retry_methods"),
            ({"retry_methods": ["GE T"]}, "retry_methods"),
            ({"retry_after_max": -1}, "retry_after_max"),
            ({"retry_after_max": math.inf}, "retry_after_max"),
            ({"retry_after_max": "60"}, "retry_after_max"),
        ],
    )
    def test_refused(self, kwargs, field):
        """
        A bad setting is refused where the policy is built, named.
        """
        with pytest.raises(stalwart.ConfigurationError, match=repr(field)):
            HTTPPolicy(**kwargs)

    def test_wall_clock_must_be_callable(self):
        """
        The wall clock must be a function.
        """
        with pytest.raises(TypeError, match="wall_clock"):
            HTTPPolicy(wall_clock=0.0)


class TestWithPrimitives:
    def test_retry_waits_what_the_server_said(self):
        """
        Retry(on=policy.retry_on) waits each Retry-After on its clock.
        """
        clock = FakeClock()
        policy = HTTPPolicy()
        retry = stalwart.Retry(
            on=lambda e: policy.retry_on(e, "GET"), wait=1.0, clock=clock
        )
        answers = [
            http_error(503, {"Retry-After": "4"}),
            http_error(502),
            http_error(429, {"Retry-After": "2"}),
        ]

        def fetch() -> str:
            if answers:
                raise answers.pop(0)
            return "200 OK"

        assert "200 OK" == retry.call(fetch)
        assert [4.0, 1.0, 2.0] == clock.sleeps

    def test_breaker_ignores_the_callers_mistakes(self):
        """
        A breaker with failure_on=policy.failure_on opens on 5xx, not 4xx.
        """
        breaker = stalwart.CircuitBreaker(
            failure_threshold=2, failure_on=HTTPPolicy().failure_on
        )

        def answer(status: int) -> None:
            raise http_error(status)

        for status in (404, 429, 404, 500, 403):
            with pytest.raises(urllib.error.HTTPError):
                breaker.call(answer, status)
        assert stalwart.CircuitState.CLOSED is breaker.state
        with pytest.raises(urllib.error.HTTPError):
            breaker.call(answer, 503)
        with pytest.raises(urllib.error.HTTPError):
            breaker.call(answer, 503)

        assert stalwart.CircuitState.OPEN is breaker.state
