"""
The project's promises about itself: the README's commands and CI agree,
and the commands work on a machine whatever its Python 3.11+ is called.
"""

from __future__ import annotations

import pathlib
import re
import subprocess

import pytest


ROOT = pathlib.Path(__file__).parent.parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```sh\n(.*?)\n```", text, re.MULTILINE | re.DOTALL)


class TestReadme:
    def test_opens_with_two_commands(self):
        """
        The README's first two code blocks are the example and the tests.
        """
        example, tests = _readme_commands()[:2]

        assert "examples/" in example
        assert "pytest" in tests
        assert "'.[test]'" in tests

    def test_ci_runs_the_readme_test_command(self):
        """
        .ci/run runs the README's test command verbatim.
        """
        tests = _readme_commands()[1]
        ci = (ROOT / ".ci" / "run").read_text().splitlines()

        assert tests in ci

    def test_example_exists(self):
        """
        The example the README runs is in the repository.
        """
        example = _readme_commands()[0]
        path = re.search(r"(examples/\S+\.py)", example)

        assert path is not None
        assert (ROOT / path.group(1)).is_file()


# A stand-in for a Python interpreter on a simulated machine: it passes the
# README's version check if it stands for Python 3.11 or newer, and "-m venv
# DIR" creates DIR/bin/pip and DIR/bin/python, which log their arguments.
_FAKE_PYTHON = """#!/bin/sh
if [ "$1" = -c ]; then exit {too_old}; fi
if [ "$1 $2" = "-m venv" ]; then
  /bin/mkdir -p "$3/bin"
  for tool in pip python; do
    printf '#!/bin/sh\\necho "{name}-venv/%s $*" >> "{log}"\\n' "$tool" \\
      > "$3/bin/$tool"
    /bin/chmod +x "$3/bin/$tool"
  done
  exit 0
fi
exit 3
"""

SHELLS = [sh for sh in ("/bin/sh", "/bin/bash") if pathlib.Path(sh).exists()]


# A stand-in for sh, which the test command uses to run the script that
# installs redis-server: it logs what it was asked to run.
_FAKE_SH = """#!/bin/sh
echo "sh $*" >> "{log}"
"""


def _machine(tmp_path: pathlib.Path, pythons: dict[str, bool]) -> pathlib.Path:
    """
    A PATH directory holding one fake interpreter per name in *pythons*
    (name -> whether it is 3.11 or newer), a fake sh, and nothing else.
    """
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    fake_sh = bin_dir / "sh"
    fake_sh.write_text(_FAKE_SH.format(log=tmp_path / "log"))
    fake_sh.chmod(0o755)
    for name, recent in pythons.items():
        script = bin_dir / name
        script.write_text(
            _FAKE_PYTHON.format(
                too_old=0 if recent else 1,
                name=name,
                log=tmp_path / "log",
            )
        )
        script.chmod(0o755)
    return bin_dir


@pytest.mark.parametrize("shell", SHELLS)
class TestReadmeCommandsOnAFreshMachine:
    @pytest.mark.parametrize(
        ("pythons", "chosen"),
        [
            ({"python3": True}, "python3"),
            ({"python3": False, "python3.11": True}, "python3.11"),
            ({"python3.13": True, "python3.11": True}, "python3.13"),
            ({"python3.12": True}, "python3.12"),
        ],
        ids=[
            "python3-only",
            "old-python3",
            "newest-versioned",
            "versioned-only",
        ],
    )
    def test_commands_use_a_recent_python(
        self, tmp_path, shell, pythons, chosen
    ):
        """
        Both commands create the venv with a Python 3.11+ found under
        whatever name it has, then run their steps in that venv.
        """
        bin_dir = _machine(tmp_path, pythons)
        example, tests = _readme_commands()[:2]
        for command in (example, tests):
            subprocess.run(
                [shell, "-c", command],
                cwd=tmp_path,
                env={"PATH": str(bin_dir)},
                check=True,
            )

        assert [
            f"{chosen}-venv/pip install -q .",
            f"{chosen}-venv/python examples/breaker_flaky_dependency.py",
            "sh .ci/ensure-redis-server",
            f"{chosen}-venv/pip install -q -e .[test]",
            (
                f"{chosen}-venv/python -m pytest --cov=stalwart --cov-branch "
                "--cov-report=term-missing:skip-covered"
            ),
        ] == (tmp_path / "log").read_text().splitlines()

    @pytest.mark.parametrize(
        "pythons", [{}, {"python3": False}], ids=["none", "too-old"]
    )
    def test_commands_say_what_is_missing(self, tmp_path, shell, pythons):
        """
        Without a Python 3.11+, each command stops at once and says so.
        """
        bin_dir = _machine(tmp_path, pythons)
        for command in _readme_commands()[:2]:
            done = subprocess.run(
                [shell, "-c", command],
                cwd=tmp_path,
                env={"PATH": str(bin_dir)},
                capture_output=True,
                text=True,
            )

            assert 0 != done.returncode
            assert "needs Python 3.11 or newer" in done.stderr
        # Nothing ran in a venv (installing redis-server may have).
        assert ["sh .ci/ensure-redis-server"] == (
            tmp_path / "log"
        ).read_text().splitlines()


def test_the_redis_install_script_leaves_an_installed_server_alone(
    tmp_path,
):
    """
    With redis-server on the PATH, .ci/ensure-redis-server installs
    nothing (it would need apt-get, which this PATH does not have).
    """
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    server = bin_dir / "redis-server"
    server.write_text("#!/bin/sh\nexit 0\n")
    server.chmod(0o755)
    done = subprocess.run(
        ["/bin/sh", str(ROOT / ".ci" / "ensure-redis-server")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
    )
    assert (0, "") == (done.returncode, done.stderr)
