"""
Every ```python block in README.md and docs/*.md runs, so the docs stay
true to the code.

Blocks of one file run in order in one namespace, under
``use_clock(FakeClock())``, so examples that wait do so instantly.  A block
fenced as ```py is an illustration and is not run.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from stalwart.testing import FakeClock, use_clock


ROOT = pathlib.Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_python_blocks_run(page: pathlib.Path) -> None:
    """
    The page's python blocks run without error, in order.
    """
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    with use_clock(FakeClock()):
        for number, match in enumerate(BLOCK.finditer(page.read_text())):
            code = compile(
                match.group(1), f"{page.name}[block {number}]", "exec"
            )
            exec(code, namespace)
