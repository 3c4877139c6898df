"""
The documentation's code runs as it is written, and the API reference
lists every public name.

The rules for a page's code blocks (also in docs/about-the-docs.md):

* Every ```python block runs **on its own**: in a fresh namespace, with
  nothing set up for it (no fake clock, no earlier block's names), and
  importing only the standard library and stalwart.  A block that needs
  fake time builds its ``FakeClock`` itself, visibly.
* A ```python block followed directly by an ```output block must print
  exactly that output.
* A block fenced as ```py is an illustration (a sketch with ``...``) and is
  not run.
* A block leaves no global state behind: the default clock is the system
  clock again and retry test mode is off once it ends.
"""

from __future__ import annotations

import ast
import contextlib
import io
import pathlib
import re
import sys

from collections.abc import Iterator
from typing import NamedTuple

import pytest

import stalwart
import stalwart.testing

from stalwart import SystemClock
from stalwart._clock import DEFAULT_CLOCK
from stalwart._retry import _set_testing


ROOT = pathlib.Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")


class Block(NamedTuple):
    """
    A fenced ```python block of a page, and the output it must print.
    """

    page: pathlib.Path
    number: int  # among the page's python blocks, from 0
    line: int  # of the opening fence, from 1
    code: str
    output: str | None  # the ```output block right after it, if any

    @property
    def id(self) -> str:
        return f"{self.page.name}:{self.line}"


def fences(text: str) -> Iterator[tuple[str, int, int, str]]:
    """
    Yield each top-level fenced block: info string, first and last line
    numbers (of the fences, from 1), and its content.
    """
    lines = text.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index].rstrip("\n"))
        if opening is None:
            index += 1
            continue
        fence = opening["fence"]
        for end in range(index + 1, len(lines)):
            closing = lines[end].rstrip()
            if closing.startswith(fence[0] * len(fence)) and not closing.strip(
                fence[0]
            ):
                break
        else:
            msg = f"unclosed fence at line {index + 1}"
            raise AssertionError(msg)
        content = "".join(lines[index + 1 : end])
        yield opening["info"].strip(), index + 1, end + 1, content
        index = end + 1


def blocks(page: pathlib.Path) -> list[Block]:
    """
    The page's ```python blocks, each with the ```output block after it.
    """
    text = page.read_text()
    lines = text.splitlines()
    found: list[Block] = []
    previous: tuple[str, int] = ("", 0)  # the last fence's info, end line
    for info, start, end, content in fences(text):
        if info == "output":
            between = "".join(lines[previous[1] : start - 1])
            assert previous[0] == "python" and not between.strip(), (
                f"{page.name}:{start}: an output block must follow a python"
                " block directly"
            )
            found[-1] = found[-1]._replace(output=content)
        elif info == "python":
            found.append(Block(page, len(found), start, content, None))
        previous = (info, end)
    return found


def _standalone_blocks() -> list[Block]:
    return [block for page in PAGES for block in blocks(page)]


def run(block: Block, namespace: dict[str, object]) -> str:
    """
    Run *block* in *namespace*; return what it printed.
    """
    code = compile(block.code, block.id, "exec")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(code, namespace)
    return printed.getvalue()


def check_output(block: Block, printed: str) -> None:
    """
    *printed* is the block's ```output block, if it has one.
    """
    if block.output is not None:
        assert block.output.rstrip() == printed.rstrip(), block.id


def _imports(code: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            modules.update(
                alias.name.partition(".")[0] for alias in node.names
            )
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module.partition(".")[0])
    return modules


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """
    A real ``redis-server`` for the blocks of the Redis page, which read
    its address from ``REDIS_URL`` (as a reader's would).
    """
    from redis_support import started_server  # noqa: PLC0415  # only for that page

    server = started_server()
    try:
        yield server.url
    finally:
        server.close()


@pytest.mark.parametrize(
    "block", _standalone_blocks(), ids=lambda block: block.id
)
def test_block_runs_alone(
    block: Block,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """
    The block runs alone in a fresh namespace and prints its output block.
    """
    if block.page.name == "redis.md":
        monkeypatch.setenv("REDIS_URL", request.getfixturevalue("redis_url"))
    outside = _imports(block.code) - set(sys.stdlib_module_names)

    # The operations page shows the metrics extras at work, the HTTP page
    # the httpx extra.
    extras = {
        "operations.md": {"prometheus_client", "opentelemetry"},
        "http.md": {"httpx"},
    }
    allowed = {"stalwart"} | extras.get(block.page.name, set())

    assert set() == outside - allowed, f"{block.id} needs {outside}"

    try:
        printed = run(block, {"__name__": "__main__"})
    finally:
        # A block that leaves a seam switched would change the next ones.
        left_clock = DEFAULT_CLOCK.target
        left_testing = _set_testing(None)
        while not isinstance(DEFAULT_CLOCK.target, SystemClock):
            DEFAULT_CLOCK.pop(DEFAULT_CLOCK.target)

    assert isinstance(left_clock, SystemClock), f"{block.id} left use_clock"
    assert None is left_testing, f"{block.id} left retry test mode on"
    check_output(block, printed)


class TestFences:
    """
    The block reader finds python blocks and their output blocks.
    """

    def test_output_follows_its_block(self, tmp_path: pathlib.Path) -> None:
        """
        An output block right after a python block is that block's output;
        other fences are not python blocks.
        """
        page = tmp_path / "page.md"
        page.write_text(
            "text\n\n```python\nprint(1)\n```\n\n```output\n1\n```\n\n"
            "````md\n```python\nnot a block\n```\n````\n\n"
            "```py\nillustration\n```\n\n```python\nx = 1\n```\n"
        )

        found = blocks(page)

        assert [("print(1)\n", "1\n", 3), ("x = 1\n", None, 21)] == [
            (b.code, b.output, b.line) for b in found
        ]

    def test_output_must_follow_directly(self, tmp_path: pathlib.Path) -> None:
        """
        An output block separated from its python block by prose is refused.
        """
        page = tmp_path / "page.md"
        page.write_text(
            "```python\nprint(1)\n```\n\nprose\n\n```output\n1\n```\n"
        )

        with pytest.raises(AssertionError, match="must follow"):
            blocks(page)

    def test_wrong_output_fails(self, tmp_path: pathlib.Path) -> None:
        """
        A block that prints something else than its output block fails.
        """
        page = tmp_path / "page.md"
        page.write_text("```python\nprint(2)\n```\n```output\n1\n```\n")
        (block,) = blocks(page)

        with pytest.raises(AssertionError):
            check_output(block, run(block, {}))


def _api_names() -> dict[str, list[str]]:
    """
    The names api.rst documents, by module.
    """
    names: dict[str, list[str]] = {}
    module = None
    for line in (DOCS / "api.rst").read_text().splitlines():
        if found := re.match(r"\.\. module:: (\S+)$", line):
            module = found[1]
        elif found := re.match(r"\.\. auto\w+:: (\w+)$", line):
            assert module is not None
            names.setdefault(module, []).append(found[1])
    return names


@pytest.mark.parametrize(
    "module", [stalwart, stalwart.testing], ids=lambda m: m.__name__
)
def test_api_reference_lists_every_public_name(module: object) -> None:
    """
    docs/api.rst documents each name of the module's __all__ exactly once.
    """
    listed = _api_names().get(module.__name__, [])  # type: ignore[attr-defined]

    assert sorted(module.__all__) == sorted(listed)  # type: ignore[attr-defined]


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page: pathlib.Path) -> None:
    """
    Every relative link of the page names a file of the repository, so it
    works on GitHub as on the site.
    """
    targets = [
        link.partition("#")[0]
        for link in LINK.findall(page.read_text())
        if not re.match(r"[a-z]+:|#", link)
    ]
    missing = [t for t in targets if not (page.parent / t).exists()]

    assert [] == missing
