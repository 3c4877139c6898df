"""
The project's promises about itself: the README's commands and CI agree.
"""

from __future__ import annotations

import pathlib
import re


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
