"""
stalwart's pytest plugin: fixtures and markers for testing code that uses
stalwart.

* ``fake_clock``: a :class:`~stalwart.testing.FakeClock` installed with
  :func:`~stalwart.testing.use_clock` for the test (options from
  ``@pytest.mark.fake_clock(...)``).
* ``no_retry_waits`` and ``@pytest.mark.retry_attempts(n)``: every
  :class:`~stalwart.Retry` in test mode for the test.
* ``@pytest.mark.no_real_sleep``, ``--stalwart-no-real-sleep`` and the
  ``stalwart_no_real_sleep`` ini option: fail a test during which a
  primitive sleeps or waits on the real clock (``allow_real_sleep``
  exempts one).

pytest registers it through the top-level ``_stalwart_pytest`` entry point
(see there why).  Importing stalwart never imports this module, nor pytest.
Documented in ``docs/testing.md``.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import os
import pathlib
import sys

from collections.abc import Generator, Iterator

import pytest

from ._clock import observe_real_waits
from .testing import FakeClock, retry_testing, use_clock


_PACKAGE = str(pathlib.Path(__file__).parent) + os.sep

_MARKERS = (
    (
        "fake_clock(start=0.0, *, autojump=True, wait_for_io=False): "
        "the options of the FakeClock the fake_clock fixture installs"
    ),
    (
        "retry_attempts(n): every stalwart.Retry makes at most n attempts "
        "during the test, without waiting between them"
    ),
    (
        "no_real_sleep: fail the test if a stalwart primitive sleeps or "
        "waits on the real clock during it"
    ),
    (
        "allow_real_sleep: exempt the test from no_real_sleep and "
        "--stalwart-no-real-sleep"
    ),
)

_WAITS = {"sleep": "sleep", "asleep": "async sleep", "wait": "timed wait"}


def pytest_addoption(parser: pytest.Parser) -> None:
    """
    Add ``--stalwart-no-real-sleep`` and its ini twin.
    """
    help_text = (
        "fail every test during which a stalwart primitive sleeps or waits "
        "on the real clock, as if it were marked no_real_sleep"
    )
    parser.getgroup("stalwart").addoption(
        "--stalwart-no-real-sleep",
        action="store_true",
        default=False,
        dest="stalwart_no_real_sleep",
        help=help_text,
    )
    parser.addini(
        "stalwart_no_real_sleep", help_text, type="bool", default=False
    )


def pytest_configure(config: pytest.Config) -> None:
    """
    Declare the markers (for ``--strict-markers`` and ``pytest --markers``).
    """
    for line in _MARKERS:
        config.addinivalue_line("markers", line)


# --- fake time --------------------------------------------------------------


@pytest.fixture
def fake_clock(request: pytest.FixtureRequest) -> Iterator[FakeClock]:
    """
    A FakeClock that every stalwart primitive using the default clock
    follows during the test (stalwart.testing.use_clock), so code under test
    that builds its own primitives runs on fake time, with no real sleeps.
    Options: @pytest.mark.fake_clock(start=..., autojump=...,
    wait_for_io=...).
    """
    marker = request.node.get_closest_marker("fake_clock")
    if marker is None:
        clock = FakeClock()
    else:
        clock = FakeClock(*marker.args, **marker.kwargs)
    with use_clock(clock):
        yield clock


# --- retries ----------------------------------------------------------------


def _retry_attempts(request: pytest.FixtureRequest) -> int | None:
    """
    The cap of the closest ``retry_attempts`` marker, or ``None``.
    """
    marker = request.node.get_closest_marker("retry_attempts")
    if marker is None:
        return None
    args = [*marker.args, *marker.kwargs.values()]
    if len(args) != 1 or set(marker.kwargs) - {"attempts"}:
        pytest.fail(
            "@pytest.mark.retry_attempts takes the most attempts, as in "
            f"retry_attempts(1) (got {marker.args!r}, {marker.kwargs!r})",
            pytrace=False,
        )
    attempts: int = args[0]
    return attempts


@pytest.fixture(autouse=True)
def _stalwart_retry_attempts(request: pytest.FixtureRequest) -> Iterator[None]:
    """
    Apply ``@pytest.mark.retry_attempts(n)``.
    """
    if request.node.get_closest_marker("retry_attempts") is None:
        yield
        return
    with retry_testing(attempts=_retry_attempts(request)):
        yield


@pytest.fixture
def no_retry_waits(request: pytest.FixtureRequest) -> Iterator[None]:
    """
    Every stalwart.Retry retries without waiting during the test
    (stalwart.testing.retry_testing); each keeps its own attempt limit
    unless @pytest.mark.retry_attempts(n) caps it.
    """
    with retry_testing(attempts=_retry_attempts(request)):
        yield


# --- real sleeps ------------------------------------------------------------


def _forbids_real_sleep(item: pytest.Item) -> bool:
    """
    Whether *item* is checked: ``allow_real_sleep`` wins, then
    ``no_real_sleep``, then the option and the ini setting.
    """
    if item.get_closest_marker("allow_real_sleep") is not None:
        return False
    if item.get_closest_marker("no_real_sleep") is not None:
        return True
    config = item.config
    # getoption's default: a plugin registered after the command line was
    # parsed (pytest_plugins in a conftest) has no such option.
    return bool(
        config.getoption("stalwart_no_real_sleep", default=False)
        or config.getini("stalwart_no_real_sleep")
    )


def _caller() -> str:
    """
    Where the code that made stalwart wait is: the innermost frame outside
    the stalwart package.
    """
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(
        _PACKAGE
    ):
        frame = frame.f_back
    code = frame.f_code
    return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"


def _watch(item: pytest.Item) -> Generator[None, object, object]:
    """
    Run one phase of *item*; if real sleeps are forbidden, fail the test at
    the first one (where it is about to start), and at the end of the phase
    if that failure was swallowed or raised in another thread.
    """
    if not _forbids_real_sleep(item):
        return (yield)
    seen: list[str] = []

    def refuse(kind: str, seconds: float) -> None:
        __tracebackhide__ = True  # pytest shows the caller's frames
        wait = f"a stalwart {_WAITS[kind]} of {seconds:g} s on the real clock"
        seen.append(f"{wait}, from {_caller()}")
        pytest.fail(
            f"{wait}: the test forbids real sleeps (no_real_sleep); run it "
            "on a FakeClock (the fake_clock fixture), or mark it "
            "allow_real_sleep"
        )

    with observe_real_waits(refuse):
        result = yield
    if seen:
        pytest.fail(
            "stalwart waited on the real clock during a test that forbids "
            "it (no_real_sleep):\n" + "\n".join(f"  {s}" for s in seen),
            pytrace=False,
        )
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    """
    Watch the set-up of a test that forbids real sleeps.
    """
    return (yield from _watch(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """
    Watch a test that forbids real sleeps.
    """
    return (yield from _watch(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item,
) -> Generator[None, object, object]:
    """
    Watch the tear-down of a test that forbids real sleeps.
    """
    return (yield from _watch(item))
