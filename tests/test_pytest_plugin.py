"""
The pytest plugin, run the way users run it: small test files written as a
user would, in a fresh pytest session (pytester) where the plugin is loaded
through the installed ``pytest11`` entry point.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

from importlib.metadata import entry_points

import pytest


pytest_plugins = ["pytester"]

# A user's module: a retry built at import time, on the default clock.
SERVICE = """
import stalwart

retry = stalwart.Retry(attempts=3, on=ConnectionError, wait=2.0)
calls = []


@retry
def fetch() -> str:
    calls.append(1)
    if len(calls) % 3:
        raise ConnectionError
    return "ok"
"""


@pytest.fixture(name="user")
def _user(pytester: pytest.Pytester) -> pytest.Pytester:
    """
    A pytester project holding the user's service module.
    """
    pytester.makepyfile(service=SERVICE)
    pytester.syspathinsert()
    return pytester


class TestInstall:
    def test_entry_point_is_installed(self):
        """
        The package declares its plugin under pytest11, pointing at the
        top-level module that loads it.
        """
        (point,) = entry_points(group="pytest11", name="stalwart")

        assert "_stalwart_pytest" == point.value

    def test_importing_stalwart_does_not_import_pytest(self):
        """
        Importing stalwart (and stalwart.testing) loads neither pytest nor
        the plugin.
        """
        code = (
            "import sys, stalwart, stalwart.testing; "
            "print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in {'pytest', '_pytest', '_stalwart_pytest'}"
            " or m == 'stalwart._pytest_plugin'))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

        assert "[]\n" == out

    def test_active_in_a_fresh_interpreter(self, user):
        """
        A new pytest process finds the plugin through the entry point alone.
        """
        user.makepyfile(
            """
            def test_it(fake_clock):
                assert fake_clock.now() == 0.0
            """
        )

        result = user.runpytest_subprocess("-p", "no:cacheprovider")

        result.assert_outcomes(passed=1)

    def test_can_be_disabled(self, user):
        """
        -p no:stalwart turns the plugin off: its fixtures are unknown.
        """
        user.makepyfile("def test_it(fake_clock): pass")

        result = user.runpytest("-p", "no:stalwart")

        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*fixture 'fake_clock' not found*"])

    @pytest.mark.parametrize(
        "how",
        ["-p", "conftest"],
        ids=["command-line", "pytest_plugins"],
    )
    def test_loads_without_autoload(self, user, monkeypatch, how):
        """
        With plugin autoloading off, the plugin loads by name, from the
        command line or from a conftest's pytest_plugins.
        """
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        user.makepyfile(
            """
            import pytest
            import stalwart

            @pytest.mark.retry_attempts(1)
            def test_fixture_and_marker(fake_clock):
                assert fake_clock.now() == 0.0

            def test_real_sleep_checked():
                stalwart.SystemClock().asleep(60.0).close()
            """
        )
        user.makeini("[pytest]\nstalwart_no_real_sleep = true\n")
        if how == "conftest":
            user.makeconftest("pytest_plugins = ['_stalwart_pytest']")
            args: list[str] = []
        else:
            args = ["-p", "_stalwart_pytest"]

        result = user.runpytest("--strict-markers", *args)

        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["FAILED *::test_real_sleep_checked - *"])

    def test_markers_and_option_are_documented(self, user):
        """
        pytest --markers and --help describe what the plugin adds.
        """
        markers = user.runpytest("--markers")
        help_ = user.runpytest("--help")

        markers.stdout.fnmatch_lines(
            [
                (
                    "@pytest.mark.fake_clock(start=0.0, *, autojump=True, "
                    "wait_for_io=False): *"
                ),
                "@pytest.mark.retry_attempts(n): *",
                "@pytest.mark.no_real_sleep: *",
                "@pytest.mark.allow_real_sleep: *",
            ]
        )
        help_.stdout.fnmatch_lines(
            ["*--stalwart-no-real-sleep*", "*stalwart_no_real_sleep (bool)*"]
        )


class TestDocs:
    def test_examples_of_the_testing_page_pass(self, pytester):
        """
        The example files of docs/testing.md (```py blocks that open with
        ``# <module>.py``) pass as a pytest project.
        """
        page = pathlib.Path(__file__).parent.parent / "docs" / "testing.md"
        blocks = re.findall(
            r"^```py\n# (\w+)\.py\n(.*?)^```",
            page.read_text(),
            re.DOTALL | re.MULTILINE,
        )
        files = dict(blocks)
        tests = sum(
            code.count("\ndef test_")
            for name, code in files.items()
            if name.startswith("test_")
        )
        pytester.makepyfile(**files)
        pytester.syspathinsert()

        result = pytester.runpytest("--strict-markers")

        assert len(blocks) == len(files) >= 2
        assert tests >= 5
        result.assert_outcomes(passed=tests)

    def test_suite_wide_fixture_from_a_conftest(self, user):
        """
        An autouse conftest fixture that requests no_retry_waits (the
        page's suite-wide recipe) switches waits off in every test.
        """
        user.makeconftest(
            """
            import pytest

            @pytest.fixture(autouse=True)
            def _no_retry_waits(no_retry_waits):
                pass
            """
        )
        user.makepyfile(
            """
            import service

            def test_it(fake_clock):
                assert service.fetch() == "ok"
                assert fake_clock.sleeps == []
            """
        )

        result = user.runpytest()

        result.assert_outcomes(passed=1)


class TestFakeClock:
    def test_primitives_built_at_import_run_on_fake_time(self, user):
        """
        With fake_clock, a retry built at import time waits on fake time,
        and the test sees each wait; the next test is on the real clock
        again.
        """
        user.makepyfile(
            """
            import stalwart
            import service

            def test_waits_on_fake_time(fake_clock):
                assert service.fetch() == "ok"
                assert fake_clock.sleeps == [2.0, 2.0]
                assert fake_clock.now() == 4.0
                assert stalwart.Retry().clock.target is fake_clock

            def test_real_clock_afterwards():
                target = stalwart.Retry().clock.target
                assert isinstance(target, stalwart.SystemClock)
            """
        )

        result = user.runpytest()

        result.assert_outcomes(passed=2)

    def test_async_code_auto_jumps(self, user):
        """
        Async code under test on the fixture's clock runs on fake time,
        with concurrent sleeps overlapping.
        """
        user.makepyfile(
            """
            import asyncio
            import stalwart

            async def slow(seconds):
                await stalwart.Retry().clock.asleep(seconds)

            def test_it(fake_clock):
                async def main():
                    await asyncio.gather(slow(3.0), slow(5.0))
                asyncio.run(main())
                assert fake_clock.now() == 5.0
            """
        )

        result = user.runpytest()

        result.assert_outcomes(passed=1)

    def test_marker_sets_the_clock_options(self, user):
        """
        @pytest.mark.fake_clock(...) builds the fixture's clock with those
        options, at any level.
        """
        user.makepyfile(
            """
            import pytest

            pytestmark = pytest.mark.fake_clock(start=100.0)

            def test_module_level(fake_clock):
                assert fake_clock.now() == 100.0
                assert fake_clock.autojump

            @pytest.mark.fake_clock(5.0, autojump=False)
            def test_closest_wins(fake_clock):
                assert fake_clock.now() == 5.0
                assert not fake_clock.autojump

            @pytest.mark.fake_clock(wait_for_io=True)
            def test_wait_for_io(fake_clock):
                assert fake_clock.wait_for_io
            """
        )

        result = user.runpytest()

        result.assert_outcomes(passed=3)

    def test_bad_marker_options_error_the_test(self, user):
        """
        Clock options that FakeClock refuses make the test error with the
        ConfigurationError, naming the option.
        """
        user.makepyfile(
            """
            import pytest

            @pytest.mark.fake_clock(start=float("nan"))
            def test_it(fake_clock):
                pass
            """
        )

        result = user.runpytest()

        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            ["*ConfigurationError: 'start' must be finite (got nan)*"]
        )


class TestRetries:
    def test_no_retry_waits(self, user):
        """
        With no_retry_waits, retries retry at once, keeping their own
        attempt limit; after the test they wait again.
        """
        user.makepyfile(
            """
            import service

            def test_no_waits(no_retry_waits, fake_clock):
                assert service.fetch() == "ok"
                assert len(service.calls) == 3
                assert fake_clock.sleeps == []

            def test_waits_again(fake_clock):
                assert service.fetch() == "ok"
                assert fake_clock.sleeps == [2.0, 2.0]
            """
        )

        result = user.runpytest()

        result.assert_outcomes(passed=2)

    def test_retry_attempts_caps_attempts(self, user):
        """
        @pytest.mark.retry_attempts(n) makes every retry give up after n
        attempts, without waiting, alone or with no_retry_waits.
        """
        user.makepyfile(
            """
            import pytest
            import service

            @pytest.mark.retry_attempts(1)
            def test_one_attempt(fake_clock):
                with pytest.raises(ConnectionError):
                    service.fetch()
                assert len(service.calls) == 1
                assert fake_clock.sleeps == []

            @pytest.mark.retry_attempts(attempts=2)
            def test_with_the_fixture(no_retry_waits, fake_clock):
                service.calls.clear()
                with pytest.raises(ConnectionError):
                    service.fetch()
                assert len(service.calls) == 2
                assert fake_clock.sleeps == []
            """
        )

        result = user.runpytest()

        result.assert_outcomes(passed=2)

    def test_retry_attempts_on_a_module(self, user):
        """
        retry_attempts applies to every test of a module through pytestmark,
        fixtures' set-up included.
        """
        user.makepyfile(
            """
            import pytest
            import service

            pytestmark = pytest.mark.retry_attempts(1)

            @pytest.fixture
            def first_call():
                with pytest.raises(ConnectionError):
                    service.fetch()

            def test_it(first_call, fake_clock):
                assert len(service.calls) == 1
            """
        )

        result = user.runpytest()

        result.assert_outcomes(passed=1)

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            ("", "*retry_attempts takes the most attempts*got (), {}*"),
            ("1, 2", "*retry_attempts takes the most attempts*(1, 2)*"),
            ("tries=1", "*retry_attempts takes the most attempts*tries*"),
            ("0", "*'attempts' must be an int >= 1 (got 0)*"),
        ],
        ids=["none", "two", "unknown-keyword", "zero"],
    )
    def test_retry_attempts_misuse_errors(self, user, args, message):
        """
        A retry_attempts marker without exactly one valid cap makes the
        test error, saying how to use it.
        """
        user.makepyfile(
            f"""
            import pytest

            @pytest.mark.retry_attempts({args})
            def test_it():
                pass
            """
        )

        result = user.runpytest()

        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines([message])


class TestNoRealSleep:
    def test_real_retry_wait_fails_at_once(self, user):
        """
        A test marked no_real_sleep fails where a primitive is about to
        sleep on the real clock, before the sleep (an hour here) starts.
        """
        user.makepyfile(
            """
            import pytest
            import stalwart

            retry = stalwart.Retry(attempts=2, on=OSError, wait=3600.0,
                                   timeout=None)

            def boom():
                raise OSError

            @pytest.mark.no_real_sleep
            def test_it():
                retry.call(boom)
            """
        )

        result = user.runpytest()

        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                (
                    "*a stalwart sleep of 3600 s on the real clock: the test "
                    "forbids real sleeps (no_real_sleep)*"
                )
            ]
        )

    def test_fake_clock_passes(self, user):
        """
        The same code on the fake_clock fixture passes the check.
        """
        user.makepyfile(
            """
            import pytest
            import service

            @pytest.mark.no_real_sleep
            def test_it(fake_clock):
                assert service.fetch() == "ok"
            """
        )

        result = user.runpytest()

        result.assert_outcomes(passed=1)

    def test_swallowed_failure_still_fails_the_test(self, user):
        """
        Code under test that swallows the failure raised at the sleep does
        not hide it: the test fails at its end, naming the caller.
        """
        user.makepyfile(
            """
            import pytest
            import stalwart

            def careless():
                try:
                    stalwart.SystemClock().sleep(30.0)
                except BaseException:
                    pass

            @pytest.mark.no_real_sleep
            def test_it():
                careless()
            """
        )

        result = user.runpytest()

        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                (
                    "*stalwart waited on the real clock during a test that "
                    "forbids it (no_real_sleep):"
                ),
                (
                    "*a stalwart sleep of 30 s on the real clock, from "
                    "*test_swallowed_failure_still_fails_the_test.py:6 in "
                    "careless"
                ),
            ]
        )

    def test_async_sleep_and_timed_wait_are_caught(self, user):
        """
        Async sleeps and timed waits (a bulkhead queue) on the real clock
        fail the test too.
        """
        user.makepyfile(
            """
            import asyncio
            import threading
            import pytest
            import stalwart

            pytestmark = pytest.mark.no_real_sleep

            def test_async_sleep():
                retry = stalwart.Retry(attempts=2, on=OSError, wait=60.0,
                                       timeout=None)

                async def boom():
                    raise OSError

                asyncio.run(retry.acall(boom))

            def test_timed_wait():
                bulkhead = stalwart.Bulkhead(
                    max_concurrent=1, max_queue=1, max_wait=60.0
                )
                bulkhead.acquire()
                bulkhead.acquire()
            """
        )

        result = user.runpytest()

        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(
            [
                "*a stalwart async sleep of 60 s on the real clock*",
                "*a stalwart timed wait of 60 s on the real clock*",
            ]
        )

    def test_sleep_in_a_fixture_errors_the_test(self, user):
        """
        A real sleep in a fixture's set-up or tear-down is caught in that
        phase.
        """
        user.makepyfile(
            """
            import pytest
            import stalwart

            @pytest.fixture
            def slow_setup():
                stalwart.SystemClock().sleep(5.0)

            @pytest.fixture
            def slow_teardown():
                yield
                stalwart.SystemClock().sleep(6.0)

            @pytest.mark.no_real_sleep
            def test_setup(slow_setup):
                pass

            @pytest.mark.no_real_sleep
            def test_teardown(slow_teardown):
                pass
            """
        )

        result = user.runpytest()

        result.assert_outcomes(passed=1, errors=2)
        result.stdout.fnmatch_lines(
            [
                "*ERROR at setup of test_setup*",
                "*sleep of 5 s on the real clock*",
                "*ERROR at teardown of test_teardown*",
                "*sleep of 6 s on the real clock*",
            ]
        )

    @pytest.mark.parametrize(
        "switch",
        ["option", "ini"],
        ids=["--stalwart-no-real-sleep", "stalwart_no_real_sleep"],
    )
    def test_whole_suite_with_exemption(self, user, switch):
        """
        The command-line option or the ini setting checks every test;
        allow_real_sleep exempts one.
        """
        user.makepyfile(
            """
            import asyncio
            import pytest
            import stalwart

            def starts_a_real_sleep():
                # Never awaited: the sleep is started, not waited for.
                stalwart.SystemClock().asleep(60.0).close()

            def test_checked():
                starts_a_real_sleep()

            @pytest.mark.allow_real_sleep
            def test_exempt():
                starts_a_real_sleep()

            def test_quiet():
                pass
            """
        )
        if switch == "ini":
            user.makeini("[pytest]\nstalwart_no_real_sleep = true\n")
            args: list[str] = []
        else:
            args = ["--stalwart-no-real-sleep"]

        result = user.runpytest(*args)

        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(["FAILED *::test_checked - *"])

    def test_off_by_default(self, user):
        """
        Without the marker, option or ini setting, nothing is checked.
        """
        user.makepyfile(
            """
            import stalwart

            def test_it():
                stalwart.SystemClock().asleep(60.0).close()
            """
        )

        result = user.runpytest()

        result.assert_outcomes(passed=1)
